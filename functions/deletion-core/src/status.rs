//! The lifecycle states of a request: the bottom layer with the ids and
//! the errors (which name a status), depending on nothing.
//! The transitions between them are in `lifecycle`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The lifecycle states of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// In grace: revocable.
    Scheduled,
    Purging,
    Verifying,
    Completed,
    Revoked,
    /// The purge stopped on an error; retryable, with the reason kept.
    Failed,
    /// The grace ended (or the purge was under way) while an operator's
    /// legal hold was on the workspace: it waits for the release, its
    /// deadline paused.
    OnHold,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Scheduled,
        Status::Purging,
        Status::Verifying,
        Status::Completed,
        Status::Revoked,
        Status::Failed,
        Status::OnHold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Scheduled => "SCHEDULED",
            Status::Purging => "PURGING",
            Status::Verifying => "VERIFYING",
            Status::Completed => "COMPLETED",
            Status::Revoked => "REVOKED",
            Status::Failed => "FAILED",
            Status::OnHold => "ON_HOLD",
        }
    }

    pub fn parse(value: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == value)
    }

    /// A final state: the request will never change again.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Completed | Status::Revoked)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
