//! Signed receipts: proof of what a purge deleted. A completed request's
//! receipt is signed over its canonical JSON (the receipt without its
//! signature, fields in their fixed order); anyone holding the receipt can
//! have it checked, and a changed byte fails the check.
//!
//! Receipts are signed with an asymmetric key ([`keys`]): in AWS a KMS
//! ECC_NIST_P256 key (`Sign`; its public key published), locally an
//! Ed25519 key from configuration. Receipts signed earlier with the HMAC
//! key (KMS `GenerateMac`/`VerifyMac`, or a local HMAC-SHA-256 key) are
//! still checked, through a [`KeyRing`].

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub use crate::error::SignError;
use crate::model::Receipt;
pub use crate::model::ReceiptSignature;
pub use crate::ports::ReceiptSigner;

pub mod keys;
pub use crate::model::keys::{Jwk, Jwks};
pub use keys::{verify_message_offline, verify_offline, Ed25519Signer, KeyRing, Signs, ECDSA_SHA_256, ED25519};

/// The HMAC signers' algorithm.
pub const HMAC_SHA_256: &str = "HMAC_SHA_256";

/// The bytes a receipt is signed over: its JSON without the signature.
pub fn canonical(receipt: &Receipt) -> Result<Vec<u8>, SignError> {
    let mut unsigned = receipt.clone();
    unsigned.signature = None;
    serde_json::to_vec(&unsigned).map_err(|e| SignError::Encoding(e.to_string()))
}

/// Signs a receipt in place.
pub async fn sign_receipt(signer: &dyn ReceiptSigner, receipt: &mut Receipt) -> Result<(), SignError> {
    let signature = signer.sign(&canonical(receipt)?).await?;
    receipt.signature = Some(signature);
    Ok(())
}

/// Checks a receipt's signature; false when it has none.
pub async fn verify_receipt(signer: &dyn ReceiptSigner, receipt: &Receipt) -> Result<bool, SignError> {
    match &receipt.signature {
        Some(signature) => signer.verify(&canonical(receipt)?, signature).await,
        None => Ok(false),
    }
}

/// HMAC-SHA-256 with a key from configuration (local runs and tests).
pub struct HmacSigner {
    key: Vec<u8>,
    key_id: String,
}

impl HmacSigner {
    pub fn new(name: &str, key: &[u8]) -> HmacSigner {
        HmacSigner {
            key: key.to_vec(),
            key_id: format!("local:{name}"),
        }
    }

    fn mac(&self, message: &[u8]) -> Result<Hmac<Sha256>, SignError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|e| SignError::Encoding(e.to_string()))?;
        mac.update(message);
        Ok(mac)
    }
}

#[async_trait]
impl ReceiptSigner for HmacSigner {
    async fn sign(&self, message: &[u8]) -> Result<ReceiptSignature, SignError> {
        Ok(ReceiptSignature {
            algorithm: HMAC_SHA_256.into(),
            key_id: self.key_id.clone(),
            value: STANDARD.encode(self.mac(message)?.finalize().into_bytes()),
        })
    }

    async fn verify(&self, message: &[u8], signature: &ReceiptSignature) -> Result<bool, SignError> {
        if signature.algorithm != HMAC_SHA_256 || signature.key_id != self.key_id {
            return Ok(false);
        }
        let Ok(value) = STANDARD.decode(&signature.value) else {
            return Ok(false);
        };
        // Constant-time comparison.
        Ok(self.mac(message)?.verify_slice(&value).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_hmac_signature_checks_out_and_breaks_on_any_change() {
        let signer = HmacSigner::new("k1", b"secret");
        let sig = signer.sign(b"receipt").await.unwrap();
        assert_eq!(sig.algorithm, HMAC_SHA_256);
        assert_eq!(sig.key_id, "local:k1");
        assert!(signer.verify(b"receipt", &sig).await.unwrap());
        assert!(!signer.verify(b"receipt!", &sig).await.unwrap());
        let other = HmacSigner::new("k1", b"other secret");
        assert!(!other.verify(b"receipt", &sig).await.unwrap(), "another key");
        let renamed = HmacSigner::new("k2", b"secret");
        assert!(!renamed.verify(b"receipt", &sig).await.unwrap(), "another key id");
        let garbled = ReceiptSignature {
            value: "not base64!".into(),
            ..sig.clone()
        };
        assert!(!signer.verify(b"receipt", &garbled).await.unwrap());
    }
}
