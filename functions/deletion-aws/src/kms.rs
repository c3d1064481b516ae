//! Receipt signatures with an HMAC key kept in KMS (`GenerateMac` and
//! `VerifyMac`, HMAC_SHA_256): the key never leaves KMS. A receipt is
//! checked under the deployment's configured key only; the key id inside
//! it must name that key.

use async_trait::async_trait;
use aws_sdk_kms::error::SdkError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use aws_sdk_kms::Client;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use deletion_core::signing::{ReceiptSignature, ReceiptSigner, SignError, HMAC_SHA_256};

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
