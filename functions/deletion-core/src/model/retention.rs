//! Retention policies: how many whole days of a workspace's archive each
//! source keeps (storage limitation), and what the ledger records of them.
//!
//! Invariants:
//! - A window is 1 to `MAX_DAYS` whole days, or unlimited (`None`); a
//!   policy names at most `MAX_SOURCE_OVERRIDES` sources, so its ledger
//!   item stays far below DynamoDB's 400 KB whatever the input.
//! - A day is out of a window of `n` days on `today` when it is before
//!   `today - n`: with the smallest window (1) that still keeps today and
//!   yesterday, the days still being written.
//! - What the ledger keeps of a workspace's retention is bounded: the last
//!   `MAX_CHANGES` changes (and a count of all), the last run's first
//!   `MAX_RUN_REQUESTS` requests (and a count of all).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::ids::{RequestId, SourceId, WorkspaceId};

/// Shortest window, in days.
pub const MIN_DAYS: u32 = 1;
/// Longest window, in days (ten years).
pub const MAX_DAYS: u32 = 3660;
/// Most per-source overrides in one policy.
pub const MAX_SOURCE_OVERRIDES: usize = 500;
/// Changes of a policy the ledger keeps (the count goes on).
pub const MAX_CHANGES: usize = 50;
/// Requests of a run the ledger names (the count goes on).
pub const MAX_RUN_REQUESTS: usize = 100;

/// A window: whole days kept, or `None` for unlimited.
pub type Window = Option<u32>;

/// A workspace's retention policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    /// The window of every source not named in `sources`.
    pub default_days: Window,
    /// Per-source windows (`None`: unlimited, whatever the default).
    pub sources: BTreeMap<SourceId, Window>,
}

fn check_days(what: &str, days: Window) -> Result<(), InputError> {
    match days {
        Some(d) if !(MIN_DAYS..=MAX_DAYS).contains(&d) => Err(InputError::InvalidBody(format!(
            "{what}: {d} days is outside {MIN_DAYS} to {MAX_DAYS} (whole days; null for unlimited)"
        ))),
        _ => Ok(()),
    }
}

impl Policy {
    /// A validated policy.
    pub fn new(default_days: Window, sources: BTreeMap<SourceId, Window>) -> Result<Policy, InputError> {
        check_days("default_days", default_days)?;
        if sources.len() > MAX_SOURCE_OVERRIDES {
            return Err(InputError::InvalidBody(format!(
                "sources: {} overrides, at most {MAX_SOURCE_OVERRIDES}",
                sources.len()
            )));
        }
        for (source, days) in &sources {
            check_days(&format!("sources.{source}"), *days)?;
        }
        Ok(Policy { default_days, sources })
    }

    /// The window of one source.
    pub fn window(&self, source: &SourceId) -> Window {
        match self.sources.get(source) {
            Some(days) => *days,
            None => self.default_days,
        }
    }

    /// Whether any window is limited.
    pub fn limits_anything(&self) -> bool {
        self.default_days.is_some() || self.sources.values().any(Option::is_some)
    }
}

/// The window of a source under an optional policy (none: unlimited).
pub fn window_of(policy: Option<&Policy>, source: &SourceId) -> Window {
    policy.and_then(|p| p.window(source))
}

/// Whether `new` keeps less than `old` for some source: a change that
/// deletes data, which waits its grace.
pub fn shortens(old: Option<&Policy>, new: Option<&Policy>) -> bool {
    let shorter = |o: Window, n: Window| match (o, n) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(o), Some(n)) => n < o,
    };
    let default = |p: Option<&Policy>| p.and_then(|p| p.default_days);
    if shorter(default(old), default(new)) {
        return true;
    }
    let named = old
        .into_iter()
        .chain(new)
        .flat_map(|p| p.sources.keys())
        .collect::<std::collections::BTreeSet<_>>();
    named.into_iter().any(|s| shorter(window_of(old, s), window_of(new, s)))
}

/// The longer of two windows.
pub fn longer(a: Window, b: Window) -> Window {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

/// Whether `day` is out of a window of `days` on `today`.
pub fn out_of_window(day: NaiveDate, days: u32, today: NaiveDate) -> bool {
    today
        .checked_sub_signed(Duration::days(i64::from(days)))
        .is_some_and(|first_kept| day < first_kept)
}

/// A change that shortens a window, waiting for its grace to end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    pub policy: Policy,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// When it takes effect (its grace ends).
    pub effective_at: DateTime<Utc>,
    /// When the reminder that it is about to take effect fired.
    pub reminded_at: Option<DateTime<Utc>>,
}

/// What a recorded change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A policy put in force at once (nothing it keeps is shorter).
    Set,
    /// A shortening put in grace.
    Scheduled,
    /// A shortening whose grace ended: now in force.
    Applied,
    /// A shortening revoked in its grace.
    Revoked,
    /// The policy removed: everything is kept.
    Removed,
}

/// One change of a workspace's policy: who, when, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChange {
    pub at: DateTime<Utc>,
    pub by: String,
    pub kind: ChangeKind,
    /// The policy's default window after the change.
    pub default_days: Window,
    /// How many sources it names.
    pub sources: usize,
}

/// One enforcement run over a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRun {
    pub at: DateTime<Utc>,
    /// The day it ran for: the next run is due on a later day.
    pub day: NaiveDate,
    /// Days found out of their window (and handed to a deletion request).
    pub days: u64,
    /// The requests it created or found under way, the first ones.
    pub requests: Vec<RequestId>,
    pub request_count: u64,
}

/// Everything the ledger keeps about one workspace's retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub workspace: WorkspaceId,
    /// The policy in force (none: everything is kept).
    pub policy: Option<Policy>,
    pub pending: Option<PendingChange>,
    /// The latest changes, oldest first.
    pub changes: Vec<PolicyChange>,
    pub changes_total: u64,
    pub last_run: Option<RetentionRun>,
    /// 0 before the first write; each write adds one (conditional writes).
    pub version: u64,
}

impl Retention {
    /// A workspace with no retention recorded.
    pub fn empty(workspace: WorkspaceId) -> Retention {
        Retention {
            workspace,
            policy: None,
            pending: None,
            changes: Vec::new(),
            changes_total: 0,
            last_run: None,
            version: 0,
        }
    }
}
