//! Keyed digests of end users' ids: what the ledger keeps of a subject
//! once its regulation is done, so "was this person deleted?" can still be
//! answered without the raw id being stored.
//!
//! Invariants:
//! - A digest is HMAC-SHA-256 under a key derived once from the
//!   deployment's subject key (a KMS HMAC key in AWS: one `GenerateMac`
//!   per process, whatever the number of subjects), over the workspace,
//!   the subject type and the id, each length-prefixed: the same person in
//!   another workspace, or the same string as another type, has another
//!   digest, and none can be reversed or brute-forced without the key.
//! - A set's digest (a regulation's scope, its receipt) is keyed the same
//!   way, over the sorted per-subject digests.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::sync::OnceCell;

use crate::error::SignError;
use crate::ids::WorkspaceId;
use crate::ports::ReceiptSigner;
use crate::regulation::{SubjectType, Subjects, UserId};

/// What the subject key signs to give the digest key (a label, so the
/// key's MAC of anything else is never the digest key).
pub const DERIVATION_LABEL: &[u8] = b"deletion-service/subject-digest/v1";

/// The key the digests are made with.
#[derive(Clone)]
pub struct SubjectKey(Hmac<Sha256>);

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubjectKey(..)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl SubjectKey {
    /// The digest key `signer` gives (its MAC of the label).
    pub async fn derive(signer: &dyn ReceiptSigner) -> Result<SubjectKey, SignError> {
        let signature = signer.sign(DERIVATION_LABEL).await?;
        let bytes = STANDARD
            .decode(&signature.value)
            .map_err(|e| SignError::Encoding(format!("the subject key's MAC is not base64: {e}")))?;
        if bytes.len() < 32 {
            return Err(SignError::Encoding(format!(
                "the subject key's MAC has {} bytes; at least 32 are needed",
                bytes.len()
            )));
        }
        let mac = Hmac::<Sha256>::new_from_slice(&bytes).map_err(|e| SignError::Encoding(e.to_string()))?;
        Ok(SubjectKey(mac))
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        hex(&mac.finalize().into_bytes())
    }

    /// One subject's digest.
    pub fn digest(&self, workspace: &WorkspaceId, subject_type: &SubjectType, id: &UserId) -> String {
        self.mac(&[
            b"subject",
            workspace.as_str().as_bytes(),
            subject_type.as_str().as_bytes(),
            id.as_str().as_bytes(),
        ])
    }

    /// Each subject's digest, in the order of `subjects`.
    pub fn digests(&self, workspace: &WorkspaceId, subject_type: &SubjectType, subjects: &Subjects) -> Vec<String> {
        subjects
            .ids()
            .iter()
            .map(|id| self.digest(workspace, subject_type, id))
            .collect()
    }

    /// The set's digest: order and duplicates do not matter.
    pub fn set_digest(&self, workspace: &WorkspaceId, subject_type: &SubjectType, subjects: &Subjects) -> String {
        let sorted: BTreeSet<String> = self.digests(workspace, subject_type, subjects).into_iter().collect();
        let mut parts: Vec<&[u8]> = vec![b"set"];
        parts.extend(sorted.iter().map(|d| d.as_bytes()));
        self.mac(&parts)
    }
}

/// The subject key of a process: derived on first use, then kept.
#[derive(Clone)]
pub struct SubjectKeys {
    source: Arc<dyn ReceiptSigner>,
    derived: Arc<OnceCell<SubjectKey>>,
}

impl SubjectKeys {
    pub fn new(source: Arc<dyn ReceiptSigner>) -> SubjectKeys {
        SubjectKeys {
            source,
            derived: Arc::new(OnceCell::new()),
        }
    }

    /// The digest key (one call to the source, the first time).
    pub async fn key(&self) -> Result<&SubjectKey, SignError> {
        self.derived
            .get_or_try_init(|| SubjectKey::derive(self.source.as_ref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::HmacSigner;

    fn ws(s: &str) -> WorkspaceId {
        WorkspaceId::parse(s).unwrap()
    }
    fn user(s: &str) -> UserId {
        UserId::parse(s).unwrap()
    }

    async fn key(secret: &[u8]) -> SubjectKey {
        SubjectKey::derive(&HmacSigner::new("subjects", secret)).await.unwrap()
    }

    #[tokio::test]
    async fn a_digest_depends_on_the_key_workspace_type_and_id() {
        let k = key(b"one").await;
        let t = SubjectType::user_id();
        let d = k.digest(&ws("acme"), &t, &user("bob"));
        assert_eq!(d.len(), 64);
        assert!(!d.contains("bob"));
        assert_eq!(d, key(b"one").await.digest(&ws("acme"), &t, &user("bob")), "stable");
        assert_ne!(d, key(b"two").await.digest(&ws("acme"), &t, &user("bob")), "keyed");
        assert_ne!(d, k.digest(&ws("other"), &t, &user("bob")), "per workspace");
        assert_ne!(d, k.digest(&ws("acme"), &t, &user("bobby")));
        let email = SubjectType::parse("EMAIL").unwrap();
        assert_ne!(d, k.digest(&ws("acme"), &email, &user("bob")), "per type");
        // Length-prefixed: ("acme", "ab") and ("acmea", "b") differ.
        assert_ne!(
            k.digest(&ws("acme"), &t, &user("ab")),
            k.digest(&ws("acmea"), &t, &user("b"))
        );
    }

    #[tokio::test]
    async fn a_set_digest_ignores_order_and_duplicates() {
        let k = key(b"one").await;
        let t = SubjectType::user_id();
        let a = Subjects::parse(&["u1".into(), "u2".into(), "u1".into()]).unwrap();
        let b = Subjects::parse(&["u2".into(), "u1".into()]).unwrap();
        let c = Subjects::parse(&["u1".into()]).unwrap();
        assert_eq!(k.set_digest(&ws("w"), &t, &a), k.set_digest(&ws("w"), &t, &b));
        assert_ne!(k.set_digest(&ws("w"), &t, &a), k.set_digest(&ws("w"), &t, &c));
        assert_ne!(k.set_digest(&ws("w"), &t, &c), k.digest(&ws("w"), &t, &user("u1")));
        assert_ne!(k.set_digest(&ws("w"), &t, &a), c.digest(), "not the unkeyed digest");
    }

    #[tokio::test]
    async fn the_key_is_derived_once() {
        struct Counting(std::sync::atomic::AtomicU32, HmacSigner);
        #[async_trait::async_trait]
        impl ReceiptSigner for Counting {
            async fn sign(&self, m: &[u8]) -> Result<crate::model::ReceiptSignature, SignError> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                self.1.sign(m).await
            }
            async fn verify(&self, m: &[u8], s: &crate::model::ReceiptSignature) -> Result<bool, SignError> {
                self.1.verify(m, s).await
            }
        }
        let source = Arc::new(Counting(Default::default(), HmacSigner::new("s", b"k")));
        let keys = SubjectKeys::new(source.clone());
        let first = keys
            .key()
            .await
            .unwrap()
            .digest(&ws("w"), &SubjectType::user_id(), &user("u"));
        let again = keys.clone();
        let second = again
            .key()
            .await
            .unwrap()
            .digest(&ws("w"), &SubjectType::user_id(), &user("u"));
        assert_eq!(first, second);
        assert_eq!(source.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
