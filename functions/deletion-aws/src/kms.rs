//! Signatures with keys kept in KMS; no private key ever leaves it.
//!
//! - [`KmsReceiptSigner`]: receipts, with an asymmetric ECC_NIST_P256 key
//!   (`Sign` of the canonical receipt's SHA-256 digest, ECDSA_SHA_256); its
//!   public key (`GetPublicKey`, read once per process) is published and
//!   checks signatures offline.
//! - [`KmsSigner`]: an HMAC key (`GenerateMac` and `VerifyMac`,
//!   HMAC_SHA_256): callback secrets, subject digests, and the receipts
//!   issued before the asymmetric key.
//!
//! A signature is checked under the deployment's configured keys only; the
//! key id inside it must name one of them.

use async_trait::async_trait;
use aws_sdk_kms::error::SdkError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MacAlgorithmSpec, MessageType, SigningAlgorithmSpec};
use aws_sdk_kms::Client;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use deletion_core::signing::{
    verify_message_offline, verify_offline, Jwk, ReceiptSignature, ReceiptSigner, SignError, Signs, ECDSA_SHA_256,
    HMAC_SHA_256,
};
use tokio::sync::OnceCell;

/// Largest message KMS signs as it is (MessageType RAW).
const MAX_RAW_MESSAGE: usize = 4096;

use crate::describe;

#[derive(Clone, Debug)]
pub struct KmsSigner {
    client: Client,
    key_id: String,
}

impl KmsSigner {
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        KmsSigner {
            client,
            key_id: key_id.into(),
        }
    }
}

#[async_trait]
impl ReceiptSigner for KmsSigner {
    async fn sign(&self, message: &[u8]) -> Result<ReceiptSignature, SignError> {
        let out = self
            .client
            .generate_mac()
            .key_id(&self.key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .send()
            .await
            .map_err(|e| SignError::Unavailable(describe(&e)))?;
        let mac = out
            .mac()
            .ok_or_else(|| SignError::Unavailable("GenerateMac answered no MAC".into()))?;
        Ok(ReceiptSignature {
            algorithm: HMAC_SHA_256.into(),
            // The key's ARN when KMS gives it: stable across aliases.
            key_id: out.key_id().unwrap_or(&self.key_id).to_owned(),
            value: STANDARD.encode(mac.as_ref()),
        })
    }

    /// Checks under this deployment's key only, never the key the receipt
    /// names (anyone may make a key of their own): a receipt is valid only
    /// if it names this key (as configured, or as the ARN KMS answers for
    /// it) and its MAC checks out under it.
    async fn verify(&self, message: &[u8], signature: &ReceiptSignature) -> Result<bool, SignError> {
        if signature.algorithm != HMAC_SHA_256 {
            return Ok(false);
        }
        let Ok(mac) = STANDARD.decode(&signature.value) else {
            return Ok(false);
        };
        let result = self
            .client
            .verify_mac()
            .key_id(&self.key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .mac(Blob::new(mac))
            .send()
            .await;
        match result {
            Ok(out) => {
                let ours = signature.key_id == self.key_id || out.key_id() == Some(signature.key_id.as_str());
                Ok(ours && out.mac_valid())
            }
            // A MAC that does not match, or a key that is not ours.
            Err(SdkError::ServiceError(e))
                if e.err().is_kms_invalid_mac_exception()
                    || e.err().is_not_found_exception()
                    || e.err().is_invalid_key_usage_exception() =>
            {
                Ok(false)
            }
            Err(e) => Err(SignError::Unavailable(describe(&e))),
        }
    }
}

/// Receipts signed by a KMS ECC_NIST_P256 key. Its public key is read once
/// per process (`GetPublicKey`); every signature names the key by the
/// `kid` it is published under (the ARN GetPublicKey answers, as
/// configured if it answers none), so the two never differ, and each
/// signature is checked under it before it is handed out.
#[derive(Debug)]
pub struct KmsReceiptSigner {
    client: Client,
    key_id: String,
    public: OnceCell<Jwk>,
    signs: Signs,
}

impl KmsReceiptSigner {
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        KmsReceiptSigner {
            client,
            key_id: key_id.into(),
            public: OnceCell::new(),
            signs: Signs::Digest,
        }
    }

    /// Signs messages themselves (OpenDSR bodies), not their digests: up
    /// to 4 KB as KMS `RAW` messages, larger ones as their SHA-256 digest
    /// (`DIGEST`), which ECDSA_SHA_256 signs to the same signature.
    pub fn signing_messages(mut self) -> Self {
        self.signs = Signs::Message;
        self
    }

    fn checks(&self, keys: &[Jwk], message: &[u8], signature: &ReceiptSignature) -> bool {
        match self.signs {
            Signs::Digest => verify_offline(keys, message, signature),
            Signs::Message => verify_message_offline(keys, message, signature),
        }
    }

    async fn public(&self) -> Result<&Jwk, SignError> {
        self.public
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_public_key()
                    .key_id(&self.key_id)
                    .send()
                    .await
                    .map_err(|e| SignError::Unavailable(describe(&e)))?;
                let der = out
                    .public_key()
                    .ok_or_else(|| SignError::Unavailable("GetPublicKey answered no key".into()))?;
                Jwk::p256_from_spki(out.key_id().unwrap_or(&self.key_id), der.as_ref())
            })
            .await
    }
}

#[async_trait]
impl ReceiptSigner for KmsReceiptSigner {
    async fn sign(&self, message: &[u8]) -> Result<ReceiptSignature, SignError> {
        let public = self.public().await?;
        let input = self.signs.input(message);
        let (kind, input) = if input.len() > MAX_RAW_MESSAGE {
            // KMS takes at most 4 KB raw: the digest it would compute.
            (
                MessageType::Digest,
                deletion_core::signing::keys::digest(&input).to_vec(),
            )
        } else {
            (MessageType::Raw, input.into_owned())
        };
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .message_type(kind)
            .message(Blob::new(input))
            .send()
            .await
            .map_err(|e| SignError::Unavailable(describe(&e)))?;
        let value = out
            .signature()
            .ok_or_else(|| SignError::Unavailable("Sign answered no signature".into()))?;
        let signature = ReceiptSignature {
            algorithm: ECDSA_SHA_256.into(),
            key_id: public.kid.clone(),
            value: STANDARD.encode(value.as_ref()),
        };
        // A signature the published key would not vouch for is never given.
        if !self.checks(std::slice::from_ref(public), message, &signature) {
            return Err(SignError::Unavailable(format!(
                "KMS signed with a key other than {} publishes",
                public.kid
            )));
        }
        Ok(signature)
    }

    /// Offline, under the public key (no KMS call once it is read).
    async fn verify(&self, message: &[u8], signature: &ReceiptSignature) -> Result<bool, SignError> {
        if signature.algorithm != ECDSA_SHA_256 {
            return Ok(false);
        }
        Ok(self.checks(std::slice::from_ref(self.public().await?), message, signature))
    }

    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError> {
        Ok(vec![self.public().await?.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
    use aws_sdk_kms::operation::get_public_key::GetPublicKeyOutput;
    use aws_sdk_kms::operation::sign::{SignInput, SignOutput};
    use aws_smithy_mocks::mock;

    /// The SubjectPublicKeyInfo prefix of a P-256 key (before its point).
    const SPKI: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];

    /// A message KMS signs as given (RAW, up to 4 KB) or by its digest, the
    /// signature the same either way: the mock answers with a signature of
    /// the message only if the request is what KMS expects.
    async fn signs(len: usize, expect: impl Fn(&SignInput, &[u8]) -> bool + Send + Sync + 'static) -> bool {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).unwrap();
        let der = [&SPKI[..], pair.public_key().as_ref()].concat();
        let message = vec![b'x'; len];
        let signature = pair.sign(&rng, &message).unwrap().as_ref().to_vec();
        let sent = message.clone();
        let public = mock!(aws_sdk_kms::Client::get_public_key).then_output(move || {
            GetPublicKeyOutput::builder()
                .key_id("arn:k")
                .public_key(Blob::new(der.clone()))
                .build()
        });
        let sign = mock!(aws_sdk_kms::Client::sign)
            .match_requests(move |r| expect(r, &sent))
            .then_output(move || SignOutput::builder().signature(Blob::new(signature.clone())).build());
        let client = Client::from_conf(mocked_config!(aws_sdk_kms, &[&public, &sign]));
        let signer = KmsReceiptSigner::new(client, "arn:k").signing_messages();
        match signer.sign(&message).await {
            Ok(s) => signer.verify(&message, &s).await.unwrap(),
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn a_message_over_4_kb_is_signed_by_its_digest_and_a_smaller_one_raw() {
        let raw = |r: &SignInput, m: &[u8]| {
            r.message_type() == Some(&MessageType::Raw) && r.message().map(|b| b.as_ref()) == Some(m)
        };
        let digest = |r: &SignInput, m: &[u8]| {
            r.message_type() == Some(&MessageType::Digest)
                && r.message().map(|b| b.as_ref()) == Some(&deletion_core::signing::keys::digest(m)[..])
        };
        assert!(signs(4096, raw).await, "4 KB: raw");
        // (A request other than the expected one fails the mock.)
        assert!(signs(64 * 1024, digest).await, "64 KB: its digest");
    }
}
