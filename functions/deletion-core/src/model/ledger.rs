//! What the ledger's ports hand back beside requests: pages of requests,
//! items that could not be decoded, the sweep's mark, pending delete pages,
//! memberships, holds, suppressions, and what a timer wakes.
//!
//! Plain values: the traits that produce them are in `ports`.

use chrono::{DateTime, Utc};

use super::store::Entry;
use super::DeletionRequest;
use crate::ids::{RequestId, SourceId, WorkspaceId};
use crate::regulation::UserId;

/// How long an idempotency key names its request: a retry within it is
/// given the same request; after it the key is free (and its ledger item
/// expires by TTL).
pub const IDEMPOTENCY_KEY_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// How long a completed request's shards, plan and pages stay after its
/// receipt is written (for a look at how it ran), before they expire.
pub const WORK_KEPT_AFTER_COMPLETION: chrono::Duration = chrono::Duration::days(7);

/// How long a request's callback state stays after its last status was
/// delivered (well past the stream's 24 hours of replays).
pub const CALLBACK_STATE_KEPT: chrono::Duration = chrono::Duration::days(7);

/// A shard not done, as the ledger's index of open shards knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenShard {
    pub index: u32,
    /// When its lease ends; `None`: no worker holds it.
    pub lease_until: Option<DateTime<Utc>>,
}

impl OpenShard {
    /// Whether a worker may take it at `now` (as the index says).
    pub fn looks_free(&self, now: DateTime<Utc>) -> bool {
        self.lease_until.is_none_or(|u| u <= now)
    }
}

/// One page of requests and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestPage {
    pub items: Vec<DeletionRequest>,
    /// Opaque cursor for the next page; `None` at the end.
    pub next: Option<String>,
    /// Items of the page that could not be decoded (only `active` reports
    /// them; a listing fails instead): skipped, not dropped silently.
    pub undecodable: Vec<Undecodable>,
}
/// A ledger item a page skipped because it could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undecodable {
    /// The item's key, as the ledger names it.
    pub key: String,
    /// The request the item belongs to, if its key names one.
    pub request_id: Option<RequestId>,
    pub reason: String,
}
/// Where the last sweep stopped in the `active` listing, so the next one
/// goes on from there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SweepMark {
    /// The `active` cursor to resume at; `None`: the beginning.
    pub cursor: Option<String>,
    /// Bumped by every write (0: never written).
    pub version: u64,
}
/// A page of a shard, recorded before it is deleted, so a worker that takes
/// over a shard whose worker died can delete it again (harmlessly) and
/// count it exactly once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingPage {
    pub request_id: RequestId,
    pub shard: u32,
    /// The page's place in the shard: the shard's `pages_done` when the
    /// page is checkpointed.
    pub seq: u64,
    pub entries: Vec<Entry>,
    /// Where the listing goes on after this page.
    pub after: Option<String>,
}
/// A workspace member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
}
/// One workspace an account belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub workspace: WorkspaceId,
    pub role: Role,
}
/// An operator's legal hold on a workspace: while it stands, nothing of the
/// workspace is purged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub workspace: WorkspaceId,
    pub reason: String,
    pub placed_by: String,
    pub since: DateTime<Utc>,
}
/// An end user's place on a workspace's suppression list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppression {
    pub user_id: UserId,
    /// The source whose data it blocks; `None`: the whole workspace's.
    pub source: Option<SourceId>,
    pub suppressed: bool,
    /// When the regulation that set this state was created.
    pub since: DateTime<Utc>,
    pub regulation: RequestId,
}
/// What the ledger holds about one subject (found by its keyed digest):
/// a page of the regulations that named it, newest first, and, when asked
/// for a user id, its suppression entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubjectRecord {
    /// The workspace's entry, if any.
    pub suppression: Option<Suppression>,
    /// The entries of the sources whose regulations on this page named the
    /// subject (suppressing or not), those that exist.
    pub source_suppressions: Vec<Suppression>,
    pub regulations: Vec<crate::model::DeletionRequest>,
    /// Where the next page of regulations starts.
    pub next: Option<String>,
}
/// Why a purge worker is woken, apart from the end of the grace. Each has
/// its own one-shot timer, so none removes another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// One more worker of a purge that fans out (`n` ≥ 1).
    Worker(u32),
    /// A worker that continues the shard (its index) one near its time
    /// limit handed back: a timer per shard, so workers that hand back
    /// several shards at once leave as many workers.
    HandOff(u32),
    /// The sweep starts a purge nobody works on; `retry` restarts a failed one.
    Sweep { retry: bool },
    /// A reminder that the grace ends soon (it purges nothing).
    Reminder,
}
