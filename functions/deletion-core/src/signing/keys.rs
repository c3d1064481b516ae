//! Asymmetric receipt signatures: anyone holding a deployment's published
//! keys (`GET /.well-known/jwks.json`) checks a receipt offline.
//!
//! What is signed is the SHA-256 digest of the receipt's canonical JSON
//! (32 bytes), for every asymmetric algorithm: a receipt of any size then
//! fits KMS's `Sign` (a RAW message of at most 4 KB), and a third party
//! checks it with any library (`openssl dgst -sha256 -binary` of the
//! canonical JSON, then `openssl dgst -sha256 -verify` of that digest).
//!
//! - `ED25519` (local runs): the 64-byte signature, base64.
//! - `ECDSA_SHA_256` (KMS `ECC_NIST_P256`): the DER signature KMS gives
//!   (as OpenSSL writes it), base64.
//!
//! Invariant: a signature is checked only under the key whose `kid` is the
//! signature's `key_id`, with that key's own algorithm; any other
//! combination is "not valid", never an error.

use async_trait::async_trait;
use aws_lc_rs::signature::{
    Ed25519KeyPair, KeyPair, UnparsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ED25519 as ED25519_ALG,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::SignError;
use crate::model::keys::Jwk;
use crate::model::ReceiptSignature;
use crate::ports::ReceiptSigner;

/// Local Ed25519 signatures.
pub const ED25519: &str = "ED25519";
/// KMS ECC_NIST_P256 signatures.
pub const ECDSA_SHA_256: &str = "ECDSA_SHA_256";

/// The bytes an asymmetric signature signs: SHA-256 of `message`.
pub fn digest(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

/// The DER prefix of a P-256 public key (SubjectPublicKeyInfo with the
/// named curve prime256v1), before its 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl Jwk {
    /// An Ed25519 public key (32 bytes).
    pub fn ed25519(kid: &str, public: &[u8]) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(public),
            y: None,
            kid: kid.into(),
            alg: "EdDSA".into(),
            usage: "sig".into(),
        }
    }

    /// A P-256 key from its DER SubjectPublicKeyInfo (what KMS's
    /// `GetPublicKey` gives).
    pub fn p256_from_spki(kid: &str, der: &[u8]) -> Result<Jwk, SignError> {
        let point = der
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .filter(|p| p.len() == 65 && p[0] == 0x04)
            .ok_or_else(|| SignError::Unavailable(format!("key {kid} is not an uncompressed P-256 public key")))?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .parse()
            .map_err(|e| SignError::Unavailable(format!("key {kid}: {e}")))?;
        Ok(Jwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: URL_SAFE_NO_PAD.encode(&point[1..33]),
            y: Some(URL_SAFE_NO_PAD.encode(&point[33..])),
            kid: kid.into(),
            alg: "ES256".into(),
            usage: "sig".into(),
        })
    }

    /// The receipt algorithm this key checks, its verifier and its public
    /// bytes; None for a key of another kind or a malformed one.
    fn verifier(&self) -> Option<(&'static str, &'static dyn VerificationAlgorithm, Vec<u8>)> {
        let x = URL_SAFE_NO_PAD.decode(&self.x).ok()?;
        match (self.kty.as_str(), self.crv.as_str(), self.y.as_deref()) {
            ("OKP", "Ed25519", None) if x.len() == 32 => Some((ED25519, &ED25519_ALG, x)),
            ("EC", "P-256", Some(y)) => {
                let y = URL_SAFE_NO_PAD.decode(y).ok()?;
                if x.len() != 32 || y.len() != 32 {
                    return None;
                }
                let mut point = vec![0x04];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Some((ECDSA_SHA_256, &ECDSA_P256_SHA256_ASN1, point))
            }
            _ => None,
        }
    }
}

/// What a signer signs of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signs {
    /// Its SHA-256 digest (receipts, of any size).
    Digest,
    /// The message itself, as protocols that sign a body expect (OpenDSR's
    /// `X-OpenDSR-Signature`: ECDSA-SHA256 or Ed25519 over the body).
    Message,
}

impl Signs {
    /// The bytes signed for `message`.
    pub fn input(self, message: &[u8]) -> std::borrow::Cow<'_, [u8]> {
        match self {
            Signs::Digest => std::borrow::Cow::Owned(digest(message).to_vec()),
            Signs::Message => std::borrow::Cow::Borrowed(message),
        }
    }
}

/// Whether `signature` over `message` checks out under the key of `keys`
/// it names. Pure: no network, no clock.
pub fn verify_offline(keys: &[Jwk], message: &[u8], signature: &ReceiptSignature) -> bool {
    verify_with(keys, Signs::Digest, message, signature)
}

/// The same for a signature over the message itself ([`Signs::Message`]).
pub fn verify_message_offline(keys: &[Jwk], message: &[u8], signature: &ReceiptSignature) -> bool {
    verify_with(keys, Signs::Message, message, signature)
}

fn verify_with(keys: &[Jwk], signs: Signs, message: &[u8], signature: &ReceiptSignature) -> bool {
    let Some(key) = keys.iter().find(|k| k.kid == signature.key_id) else {
        return false;
    };
    let Some((algorithm, verifier, public)) = key.verifier() else {
        return false;
    };
    let Ok(value) = STANDARD.decode(&signature.value) else {
        return false;
    };
    algorithm == signature.algorithm
        && UnparsedPublicKey::new(verifier, public)
            .verify(&signs.input(message), &value)
            .is_ok()
}

/// Ed25519 with a key derived from a configured secret (local runs and
/// tests): the same secret gives the same key in every process.
pub struct Ed25519Signer {
    pair: Ed25519KeyPair,
    key_id: String,
    signs: Signs,
}

impl Ed25519Signer {
    /// A key of its own for each `name` (receipts, OpenDSR) and secret;
    /// it signs receipts' digests.
    pub fn from_secret(name: &str, secret: &[u8]) -> Result<Ed25519Signer, SignError> {
        let mut seed = Sha256::new();
        seed.update(b"deletion ed25519\0");
        seed.update(name.as_bytes());
        seed.update(b"\0");
        seed.update(secret);
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed.finalize())
            .map_err(|e| SignError::Encoding(format!("an Ed25519 key: {e}")))?;
        Ok(Ed25519Signer {
            pair,
            key_id: format!("local:{name}"),
            signs: Signs::Digest,
        })
    }

    /// The same key, signing messages themselves ([`Signs::Message`]).
    pub fn signing_messages(mut self) -> Ed25519Signer {
        self.signs = Signs::Message;
        self
    }

    pub fn jwk(&self) -> Jwk {
        Jwk::ed25519(&self.key_id, self.pair.public_key().as_ref())
    }
}

#[async_trait]
impl ReceiptSigner for Ed25519Signer {
    async fn sign(&self, message: &[u8]) -> Result<ReceiptSignature, SignError> {
        Ok(ReceiptSignature {
            algorithm: ED25519.into(),
            key_id: self.key_id.clone(),
            value: STANDARD.encode(self.pair.sign(&self.signs.input(message)).as_ref()),
        })
    }

    async fn verify(&self, message: &[u8], signature: &ReceiptSignature) -> Result<bool, SignError> {
        Ok(verify_with(&[self.jwk()], self.signs, message, signature))
    }

    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError> {
        Ok(vec![self.jwk()])
    }
}

/// A deployment's receipt keys: signs with the current one, checks a
/// signature under any (receipts issued under an earlier key, such as the
/// HMAC key before the asymmetric one, stay valid), publishes every
/// public key.
pub struct KeyRing {
    current: std::sync::Arc<dyn ReceiptSigner>,
    earlier: Vec<std::sync::Arc<dyn ReceiptSigner>>,
}

impl KeyRing {
    pub fn new(current: std::sync::Arc<dyn ReceiptSigner>) -> KeyRing {
        KeyRing {
            current,
            earlier: Vec::new(),
        }
    }

    /// Also checks signatures of `key` (it signs nothing more).
    pub fn with_earlier(mut self, key: std::sync::Arc<dyn ReceiptSigner>) -> KeyRing {
        self.earlier.push(key);
        self
    }

    fn all(&self) -> impl Iterator<Item = &std::sync::Arc<dyn ReceiptSigner>> {
        std::iter::once(&self.current).chain(&self.earlier)
    }
}

#[async_trait]
impl ReceiptSigner for KeyRing {
    async fn sign(&self, message: &[u8]) -> Result<ReceiptSignature, SignError> {
        self.current.sign(message).await
    }

    async fn verify(&self, message: &[u8], signature: &ReceiptSignature) -> Result<bool, SignError> {
        for key in self.all() {
            if key.verify(message, signature).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn public_keys(&self) -> Result<Vec<Jwk>, SignError> {
        let mut keys = Vec::new();
        for key in self.all() {
            keys.extend(key.public_keys().await?);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::signing::HmacSigner;

    fn local(secret: &[u8]) -> Ed25519Signer {
        Ed25519Signer::from_secret("receipts", secret).unwrap()
    }

    #[tokio::test]
    async fn an_ed25519_signature_checks_out_offline_and_breaks_on_any_change() {
        let signer = local(b"secret");
        let sig = signer.sign(b"receipt").await.unwrap();
        assert_eq!(
            (sig.algorithm.as_str(), sig.key_id.as_str()),
            (ED25519, "local:receipts")
        );
        let keys = signer.public_keys().await.unwrap();
        assert_eq!(keys[0].kid, sig.key_id);
        assert!(verify_offline(&keys, b"receipt", &sig));
        assert!(!verify_offline(&keys, b"receipt!", &sig), "a changed byte");
        assert!(!verify_offline(&[], b"receipt", &sig), "no key");
        let other = local(b"other").public_keys().await.unwrap();
        assert!(
            !verify_offline(&other, b"receipt", &sig),
            "another key under the same id"
        );
        let mut renamed = sig.clone();
        renamed.algorithm = ECDSA_SHA_256.into();
        assert!(
            !verify_offline(&keys, b"receipt", &renamed),
            "the key's own algorithm only"
        );
        let mut garbled = sig.clone();
        garbled.value = "not base64!".into();
        assert!(!verify_offline(&keys, b"receipt", &garbled));
        // The same secret is the same key in another process; another
        // name is another key.
        assert_eq!(local(b"secret").jwk(), keys[0]);
        let other_name = Ed25519Signer::from_secret("opendsr", b"secret").unwrap().jwk();
        assert_ne!(other_name.x, keys[0].x);
    }

    #[tokio::test]
    async fn a_message_signer_signs_the_message_itself() {
        let signer = local(b"secret").signing_messages();
        let sig = signer.sign(b"{\"a\":1}").await.unwrap();
        let keys = signer.public_keys().await.unwrap();
        assert!(verify_message_offline(&keys, b"{\"a\":1}", &sig));
        assert!(!verify_offline(&keys, b"{\"a\":1}", &sig), "not over the digest");
        assert!(!verify_message_offline(&keys, b"{\"a\":2}", &sig));
        // Any Ed25519 library checks it against the body as sent.
        let public = aws_lc_rs::signature::UnparsedPublicKey::new(&ED25519_ALG, signer.pair.public_key().as_ref());
        assert!(public
            .verify(b"{\"a\":1}", &STANDARD.decode(&sig.value).unwrap())
            .is_ok());
    }

    #[tokio::test]
    async fn a_key_ring_signs_with_the_current_key_and_checks_under_every_key() {
        let hmac = Arc::new(HmacSigner::new("receipts", b"old"));
        let issued = hmac.sign(b"old receipt").await.unwrap();
        let ring = KeyRing::new(Arc::new(local(b"new"))).with_earlier(hmac);
        let signed = ring.sign(b"new receipt").await.unwrap();
        assert_eq!(signed.algorithm, ED25519);
        assert!(ring.verify(b"new receipt", &signed).await.unwrap());
        assert!(
            ring.verify(b"old receipt", &issued).await.unwrap(),
            "an HMAC receipt issued before"
        );
        assert!(!ring.verify(b"old receipt!", &issued).await.unwrap());
        assert!(!ring.verify(b"new receipt!", &signed).await.unwrap());
        let keys = ring.public_keys().await.unwrap();
        assert_eq!(keys.len(), 1, "an HMAC key has nothing to publish: {keys:?}");
    }

    #[test]
    fn a_p256_key_from_kms_becomes_a_jwk_and_a_malformed_one_is_refused() {
        // A P-256 public key (SubjectPublicKeyInfo), as GetPublicKey answers.
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING)
            .unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(&point);
        let jwk = Jwk::p256_from_spki("arn:key", &der).unwrap();
        assert_eq!(
            (jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_str()),
            ("EC", "P-256", "ES256")
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let message = b"receipt";
        let sig = ReceiptSignature {
            algorithm: ECDSA_SHA_256.into(),
            key_id: "arn:key".into(),
            value: STANDARD.encode(pair.sign(&rng, &digest(message)).unwrap().as_ref()),
        };
        assert!(verify_offline(std::slice::from_ref(&jwk), message, &sig));
        assert!(!verify_offline(&[jwk], b"receipt.", &sig));
        assert!(Jwk::p256_from_spki("k", &der[..90]).is_err(), "cut short");
        let mut off_curve = der.clone();
        off_curve[60] ^= 1;
        assert!(
            Jwk::p256_from_spki("k", &off_curve).is_err(),
            "not a point of the curve"
        );
    }
}
