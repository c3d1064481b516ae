//! Regulations: per-end-user deletion and suppression (the GDPR rights to
//! erasure and to object), per workspace.
//!
//! A regulation is a request of the ledger like any deletion (same
//! lifecycle, timers, workers and sweep) with no grace: its scope names the
//! workspace, the regulation type and a digest of its subject ids, which are
//! kept beside it in the ledger. Its shards rewrite the archive objects that
//! hold the subjects' events instead of deleting whole prefixes.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::InputError;
use crate::status::Status;

/// Most subject ids in one regulation.
pub const MAX_SUBJECTS: usize = 5000;
/// Longest subject id, in bytes of UTF-8.
pub const MAX_USER_ID_BYTES: usize = 512;

/// What a regulation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegulationType {
    /// Suppress new data about the subjects and delete what is stored.
    SuppressWithDelete,
    /// Delete what is stored in every store with user records; no suppression.
    DeleteOnly,
    /// Suppress new data; delete nothing.
    SuppressOnly,
    /// Lift a suppression.
    Unsuppress,
    /// Delete from the archive stores only; no suppression.
    DeleteArchiveOnly,
}

impl RegulationType {
    pub const ALL: [RegulationType; 5] = [
        RegulationType::SuppressWithDelete,
        RegulationType::DeleteOnly,
        RegulationType::SuppressOnly,
        RegulationType::Unsuppress,
        RegulationType::DeleteArchiveOnly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RegulationType::SuppressWithDelete => "SUPPRESS_WITH_DELETE",
            RegulationType::DeleteOnly => "DELETE_ONLY",
            RegulationType::SuppressOnly => "SUPPRESS_ONLY",
            RegulationType::Unsuppress => "UNSUPPRESS",
            RegulationType::DeleteArchiveOnly => "DELETE_ARCHIVE_ONLY",
        }
    }

    pub fn parse(value: &str) -> Option<RegulationType> {
        RegulationType::ALL.into_iter().find(|t| t.as_str() == value)
    }

    /// Whether stored events are deleted.
    pub fn deletes(self) -> bool {
        matches!(
            self,
            RegulationType::SuppressWithDelete | RegulationType::DeleteOnly | RegulationType::DeleteArchiveOnly
        )
    }

    /// The suppression state the regulation sets, if any.
    pub fn suppression(self) -> Option<bool> {
        match self {
            RegulationType::SuppressWithDelete | RegulationType::SuppressOnly => Some(true),
            RegulationType::Unsuppress => Some(false),
            RegulationType::DeleteOnly | RegulationType::DeleteArchiveOnly => None,
        }
    }

    /// Whether only the archive stores (layouts with `{day}`) are rewritten.
    pub fn archive_only(self) -> bool {
        self == RegulationType::DeleteArchiveOnly
    }
}

impl fmt::Display for RegulationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of id a regulation's subjects are: `USER_ID` (events'
/// `userId`), `ANONYMOUS_ID` (`anonymousId`), or an identifier a store of
/// the data map declares (`EMAIL`, `PHONE`, ...): upper-case letters,
/// digits and `_`, at most 32.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubjectType(String);

impl SubjectType {
    pub const USER_ID: &'static str = "USER_ID";
    pub const ANONYMOUS_ID: &'static str = "ANONYMOUS_ID";

    pub fn parse(value: &str) -> Result<SubjectType, InputError> {
        let ok = (1..=32).contains(&value.len())
            && value.as_bytes()[0].is_ascii_uppercase()
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(InputError::InvalidId {
                kind: "subject type",
                value: value.chars().take(40).collect(),
                reason: "must be 1 to 32 upper-case letters, digits and '_', starting with a letter",
            });
        }
        Ok(SubjectType(value.to_owned()))
    }

    pub fn user_id() -> SubjectType {
        SubjectType(SubjectType::USER_ID.to_owned())
    }

    pub fn is_user_id(&self) -> bool {
        self.0 == SubjectType::USER_ID
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for SubjectType {
    fn default() -> Self {
        SubjectType::user_id()
    }
}

impl TryFrom<String> for SubjectType {
    type Error = InputError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SubjectType::parse(&value)
    }
}

impl From<SubjectType> for String {
    fn from(value: SubjectType) -> String {
        value.0
    }
}

impl fmt::Display for SubjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An end user's id (of any subject type: a user id, an anonymous id, an
/// e-mail address, ...), as the events carry it. It never reaches
/// an S3 key; in the ledger it sits inside a sort key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    pub fn parse(value: &str) -> Result<UserId, InputError> {
        let invalid = |reason: &'static str| InputError::InvalidId {
            kind: "user",
            value: value.chars().take(80).collect(),
            reason,
        };
        if value.trim().is_empty() {
            return Err(invalid("must not be empty or blank"));
        }
        if value.len() > MAX_USER_ID_BYTES {
            return Err(invalid("must be at most 512 bytes"));
        }
        if value.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters"));
        }
        Ok(UserId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserId {
    type Error = InputError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        UserId::parse(&value)
    }
}

impl From<UserId> for String {
    fn from(value: UserId) -> String {
        value.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The subject ids of a regulation: validated, without duplicates, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects(Vec<UserId>);

impl Subjects {
    /// Validates every id (naming the first bad one), drops duplicates and
    /// bounds the count.
    pub fn parse(raw: &[String]) -> Result<Subjects, InputError> {
        if raw.is_empty() {
            return Err(InputError::InvalidBody("subject_ids must hold at least one id".into()));
        }
        if raw.len() > MAX_SUBJECTS {
            return Err(InputError::InvalidBody(format!(
                "subject_ids holds {} ids; at most {MAX_SUBJECTS} are accepted in one regulation",
                raw.len()
            )));
        }
        let mut seen = BTreeSet::new();
        let mut ids = Vec::with_capacity(raw.len());
        for (i, value) in raw.iter().enumerate() {
            let id = UserId::parse(value).map_err(|e| InputError::InvalidBody(format!("subject_ids[{i}]: {e}")))?;
            if seen.insert(id.clone()) {
                ids.push(id);
            }
        }
        Ok(Subjects(ids))
    }

    pub fn from_ids(ids: Vec<UserId>) -> Subjects {
        let mut seen = BTreeSet::new();
        Subjects(ids.into_iter().filter(|id| seen.insert(id.clone())).collect())
    }

    pub fn ids(&self) -> &[UserId] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A digest of the set (order and duplicates do not matter), so the
    /// same ids asked twice at once find the regulation under way.
    pub fn digest(&self) -> String {
        let sorted: BTreeSet<&str> = self.0.iter().map(UserId::as_str).collect();
        let mut hasher = Sha256::new();
        for id in sorted {
            hasher.update((id.len() as u64).to_be_bytes());
            hasher.update(id.as_bytes());
        }
        hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The status a regulation shows, from its request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegulationStatus {
    Initialized,
    Running,
    Finished,
    /// Finished, but some objects could not be rewritten (see the stores).
    PartialSuccess,
    Failed,
    /// Waiting for a legal hold on the workspace to be released.
    OnHold,
    /// Cancelled before any worker took it (its request `REVOKED`).
    Cancelled,
}

impl RegulationStatus {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RegulationStatus::Initialized => "INITIALIZED",
            RegulationStatus::Running => "RUNNING",
            RegulationStatus::Finished => "FINISHED",
            RegulationStatus::PartialSuccess => "PARTIAL_SUCCESS",
            RegulationStatus::Failed => "FAILED",
            RegulationStatus::OnHold => "ON_HOLD",
            RegulationStatus::Cancelled => "CANCELLED",
        }
    }

    /// `object_failures`: objects the workers could not rewrite.
    pub fn from_request(status: Status, object_failures: u64) -> RegulationStatus {
        match status {
            Status::Scheduled => RegulationStatus::Initialized,
            Status::Purging | Status::Verifying => RegulationStatus::Running,
            Status::Completed if object_failures > 0 => RegulationStatus::PartialSuccess,
            Status::Completed => RegulationStatus::Finished,
            Status::Failed => RegulationStatus::Failed,
            Status::Revoked => RegulationStatus::Cancelled,
            Status::OnHold => RegulationStatus::OnHold,
        }
    }
}

/// What the rewrite of a shard's objects did so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewriteCounts {
    /// Object versions read.
    pub objects_scanned: u64,
    /// Current objects written again without the subjects' events.
    pub objects_rewritten: u64,
    /// Versions holding the subjects' events deleted by version id.
    pub versions_deleted: u64,
    pub events_removed: u64,
    /// Lines that are not JSON objects: kept untouched, reported.
    pub malformed_lines: u64,
    /// Objects that could not be rewritten (reasons in `errors`).
    pub objects_failed: u64,
    pub bytes_scanned: u64,
    /// The first few problems (malformed lines, failed objects).
    #[serde(default)]
    pub errors: Vec<String>,
}

/// Problems kept per shard, at most.
pub const MAX_ERRORS: usize = 20;

impl RewriteCounts {
    pub fn add(&mut self, other: &RewriteCounts) {
        self.objects_scanned += other.objects_scanned;
        self.objects_rewritten += other.objects_rewritten;
        self.versions_deleted += other.versions_deleted;
        self.events_removed += other.events_removed;
        self.malformed_lines += other.malformed_lines;
        self.objects_failed += other.objects_failed;
        self.bytes_scanned += other.bytes_scanned;
        for e in &other.errors {
            self.note(e.clone());
        }
    }

    pub fn note(&mut self, error: String) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_and_say_what_they_do() {
        for t in RegulationType::ALL {
            assert_eq!(RegulationType::parse(t.as_str()), Some(t));
        }
        assert_eq!(RegulationType::parse("DELETE"), None);
        assert!(RegulationType::SuppressWithDelete.deletes());
        assert_eq!(RegulationType::SuppressWithDelete.suppression(), Some(true));
        assert!(!RegulationType::SuppressOnly.deletes());
        assert_eq!(RegulationType::Unsuppress.suppression(), Some(false));
        assert_eq!(RegulationType::DeleteOnly.suppression(), None);
        assert!(RegulationType::DeleteArchiveOnly.archive_only());
        assert!(!RegulationType::DeleteOnly.archive_only());
    }

    #[test]
    fn user_ids_are_bounded_and_printable() {
        assert!(UserId::parse("user-1@example.com").is_ok());
        assert!(UserId::parse("a/b/../c").is_ok(), "never reaches a key");
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("   ").is_err());
        assert!(UserId::parse("a\nb").is_err());
        assert!(UserId::parse(&"x".repeat(513)).is_err());
        assert!(UserId::parse(&"x".repeat(512)).is_ok());
    }

    #[test]
    fn subjects_drop_duplicates_and_digest_ignores_order() {
        let a = Subjects::parse(&["u1".into(), "u2".into(), "u1".into()]).unwrap();
        assert_eq!(a.len(), 2);
        let b = Subjects::parse(&["u2".into(), "u1".into()]).unwrap();
        assert_eq!(a.digest(), b.digest());
        let c = Subjects::parse(&["u1".into(), "u3".into()]).unwrap();
        assert_ne!(a.digest(), c.digest());
        // Length-prefixed: ["ab","c"] and ["a","bc"] differ.
        let d = Subjects::parse(&["ab".into(), "c".into()]).unwrap();
        let e = Subjects::parse(&["a".into(), "bc".into()]).unwrap();
        assert_ne!(d.digest(), e.digest());
    }

    #[test]
    fn subjects_are_bounded() {
        assert!(Subjects::parse(&[]).is_err());
        let many: Vec<String> = (0..=MAX_SUBJECTS).map(|i| format!("u{i}")).collect();
        let err = Subjects::parse(&many).unwrap_err().to_string();
        assert!(err.contains("5000"), "{err}");
        let err = Subjects::parse(&["ok".into(), "bad\u{7}".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("subject_ids[1]"), "{err}");
    }

    #[test]
    fn statuses_map_to_regulation_statuses() {
        use RegulationStatus::*;
        assert_eq!(RegulationStatus::from_request(Status::Scheduled, 0), Initialized);
        assert_eq!(RegulationStatus::from_request(Status::Purging, 0), Running);
        assert_eq!(RegulationStatus::from_request(Status::Verifying, 0), Running);
        assert_eq!(RegulationStatus::from_request(Status::Completed, 0), Finished);
        assert_eq!(RegulationStatus::from_request(Status::Completed, 2), PartialSuccess);
        assert_eq!(RegulationStatus::from_request(Status::Failed, 0), Failed);
        assert_eq!(RegulationStatus::from_request(Status::Revoked, 0), Cancelled);
        for s in [
            Initialized,
            Running,
            Finished,
            PartialSuccess,
            Failed,
            OnHold,
            Cancelled,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str(), "named as it serialises");
        }
    }
}
