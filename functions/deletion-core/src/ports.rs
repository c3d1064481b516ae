//! The narrow interfaces the domain needs from the outside world.
//! AWS adapters implement them in `deletion-aws`; nothing here knows AWS.
//!
//! Traits only (and the two clocks): the values they take and give are in
//! `model` and re-exported here.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::SignError;
use crate::error::{DeliveryError, LedgerError, StoreError, TimerError};
use crate::ids::{AccountId, IdempotencyKey, RequestId, SourceId, WorkspaceId};
use crate::model::callbacks::CallbackState;
use crate::model::quota::{MonthUsage, Quota};
use crate::model::retention::Retention;
use crate::model::{DeletionRequest, Listing, ReceiptSignature, Scope, Shard};

pub use crate::model::ledger::{
    Hold, Membership, OpenShard, PendingPage, RequestPage, Role, SubjectRecord, Suppression, SweepMark, Undecodable,
    Wake,
};
pub use crate::model::store::{Children, DeleteFailure, Downloaded, Entry, EntryKind, EntryPage, Upload, UploadPage};
use crate::regulation::{Subjects, UserId};

/// The sweep's place, kept in the ledger.
#[async_trait]
pub trait SweepMarks: Send + Sync {
    /// The stored mark (version 0 and no cursor if there is none).
    async fn sweep_mark(&self) -> Result<SweepMark, LedgerError>;
    /// Writes `next` only if the stored version is `next.version - 1`
    /// (version 0: none stored), else `Conflict`.
    async fn put_sweep_mark(&self, next: &SweepMark) -> Result<(), LedgerError>;
}

/// The deletion ledger: the single source of truth.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Stores a new request and makes it the active holder of its scope
    /// (and of the idempotency key, if any), atomically.
    /// Fails with `ScopeBusy` or `IdempotencyKeyUsed` naming the holder.
    /// A request with a parent is stored only while the parent exists and
    /// is not final (else `Conflict`).
    async fn insert(
        &self,
        request: &DeletionRequest,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<(), LedgerError>;

    async fn get(&self, id: &RequestId) -> Result<Option<DeletionRequest>, LedgerError>;

    /// Writes `next` only if the stored version is `next.version - 1`
    /// (else `Conflict`). A version that `releases_scope()` (a terminal
    /// status, a failed request given up) releases the scope in the same
    /// write.
    async fn update(&self, next: &DeletionRequest) -> Result<(), LedgerError>;

    /// The request that holds the scope, if any.
    async fn active_for(&self, scope: &Scope) -> Result<Option<RequestId>, LedgerError>;

    /// Marks a completed request's shards (`indexes`), its plan and any
    /// page left to expire at `at` (the table's TTL). A ledger without
    /// expiry keeps them.
    async fn expire_work(&self, _id: &RequestId, _indexes: &[u32], _at: DateTime<Utc>) -> Result<(), LedgerError> {
        Ok(())
    }

    /// The request an idempotency key was used for, if any and if the key
    /// has not expired by `now` (`IDEMPOTENCY_KEY_LIFETIME` after the
    /// request's creation: then the key is free again).
    async fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<RequestId>, LedgerError>;

    /// The requests of a listing (a workspace's deletions or regulations,
    /// or an account's requests; see `Scope::listing`), newest first. A
    /// cursor is one this listing returned (another is `InvalidCursor`).
    async fn list(&self, listing: &Listing, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError>;

    /// Every request not in a final state (for the sweep), in pages.
    async fn active(&self, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError>;

    /// Stores shards that are not stored yet (idempotent), then the plan's
    /// count of them, which marks the plan complete and starts the counter
    /// `next_unstarted` hands out.
    async fn insert_shards(&self, shards: &[Shard]) -> Result<(), LedgerError>;

    /// Every shard of a request (read once per purge, not per claim).
    async fn shards(&self, id: &RequestId) -> Result<Vec<Shard>, LedgerError>;

    /// How many shards the request's plan holds, once it is complete.
    async fn shards_planned(&self, id: &RequestId) -> Result<Option<u32>, LedgerError>;

    /// Hands out, atomically, the next shard number no worker was handed
    /// yet; `None` once every one was (or without a plan): the first pass
    /// over the shards costs one write per shard, whatever their number.
    async fn next_unstarted(&self, id: &RequestId) -> Result<Option<u32>, LedgerError>;

    /// One shard, read consistently.
    async fn shard(&self, id: &RequestId, index: u32) -> Result<Option<Shard>, LedgerError>;

    /// Up to `limit` shards not done, as (number, lease end; `None`: no
    /// lease), the earliest lease end first, so the free ones (no lease,
    /// or one run out) come first. An index read: it may lag the shards
    /// by a moment, so what it says is read again before anything is
    /// decided on it.
    async fn open_shards(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError>;

    /// Up to `limit` shards not done, the latest lease end first (empty:
    /// every shard is done, or none was planned): one index read whatever
    /// the number of shards, so the sweep asks "does anyone work on it?"
    /// and a worker counts the shards held in O(1). It may lag the shards
    /// by a moment, like `open_shards`.
    async fn latest_leases(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError>;

    /// Writes a shard checkpoint only if the stored version is
    /// `next.version - 1` (else `Conflict`).
    async fn update_shard(&self, next: &Shard) -> Result<(), LedgerError>;

    /// A shard cut in two, at once or not at all: `mine` written as
    /// `update_shard` would, `new` stored as the plan's next shard (its
    /// number the plan's count, which grows by one). Else `Conflict`.
    async fn split_shard(&self, mine: &Shard, new: &Shard) -> Result<(), LedgerError>;

    /// Records a page before its DeleteObjects is sent (write-ahead).
    async fn put_page(&self, page: &PendingPage) -> Result<(), LedgerError>;

    /// The pages of a shard still recorded, in order.
    async fn pages(&self, id: &RequestId, shard: u32) -> Result<Vec<PendingPage>, LedgerError>;

    /// Forgets a page once its delete is counted in a checkpoint.
    async fn drop_page(&self, id: &RequestId, shard: u32, seq: u64) -> Result<(), LedgerError>;
}

/// The membership directory: which accounts belong to which workspaces.
#[async_trait]
pub trait Directory: Send + Sync {
    async fn put_member(&self, workspace: &WorkspaceId, account: &AccountId, role: Role) -> Result<(), LedgerError>;
    /// Returns whether the membership existed.
    async fn remove_member(&self, workspace: &WorkspaceId, account: &AccountId) -> Result<bool, LedgerError>;
    /// Every workspace the account belongs to, by workspace id.
    async fn memberships(&self, account: &AccountId) -> Result<Vec<Membership>, LedgerError>;
    /// The account's role in one workspace, if it is a member.
    async fn role(&self, workspace: &WorkspaceId, account: &AccountId) -> Result<Option<Role>, LedgerError> {
        Ok(self
            .memberships(account)
            .await?
            .into_iter()
            .find(|m| &m.workspace == workspace)
            .map(|m| m.role))
    }
}

/// What a `start_after` cursor begins with (a store's own cursors never do).
pub const START_AFTER: &str = "after:";

/// A cursor every store accepts, beside its own: list from just after
/// `key` (how a key-range shard starts its listing).
pub fn start_after(key: &str) -> String {
    format!("{START_AFTER}{key}")
}

/// The key a `start_after` cursor names, if `cursor` is one.
pub fn parse_start_after(cursor: &str) -> Option<&str> {
    cursor.strip_prefix(START_AFTER)
}

/// The object store (S3).
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Lists every version, delete marker (or, in a never-versioned bucket,
    /// every object) under `prefix`, up to `max` entries, from `cursor`: one
    /// this store gave, or a `start_after(key)` one (keys after `key`).
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        max: i32,
    ) -> Result<EntryPage, StoreError>;

    /// Like `list_page`, but lists every version and delete marker
    /// whatever the store believes about the bucket's versioning (the
    /// verification's listing: it must not trust a cached "never
    /// versioned"). A store that knows no versioning lists as `list_page`.
    async fn list_every_version(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        max: i32,
    ) -> Result<EntryPage, StoreError> {
        self.list_page(bucket, prefix, cursor, max).await
    }

    /// Deletes up to 1,000 entries by key and version. Returns the entries
    /// the store refused: they were *not* deleted.
    async fn delete_batch(&self, bucket: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError>;

    async fn list_uploads(&self, bucket: &str, prefix: &str, cursor: Option<&str>) -> Result<UploadPage, StoreError>;

    /// Aborts an upload; one already gone is success.
    async fn abort_upload(&self, bucket: &str, upload: &Upload) -> Result<(), StoreError>;

    /// The sub-prefixes directly under `prefix` (up to `cap`), to split a
    /// large prefix over several workers. A store that cannot tell answers
    /// "nothing to split".
    async fn list_children(&self, _bucket: &str, _prefix: &str, _cap: usize) -> Result<Children, StoreError> {
        Ok(Children::default())
    }

    /// Forgets what the store remembers of buckets' settings that may
    /// change (on S3: that a bucket never had versioning), so that a purge
    /// run sees its buckets as they are when it starts. A store that
    /// remembers nothing does nothing.
    fn look_afresh(&self) {}

    /// How many answers of this store so far asked for fewer requests (S3:
    /// `503 SlowDown`), counting the attempts the SDK retried and that
    /// then went through: what a purge slows down on before any call
    /// fails. A store that cannot tell says 0.
    fn slow_downs(&self) -> u64 {
        0
    }

    /// How many object versions (and delete markers) this store's batch
    /// deletes removed (or found gone already) so far. A store that cannot
    /// tell says 0.
    fn deleted(&self) -> u64 {
        0
    }

    /// Downloads an object (the given version, or the current one) into
    /// the file `to`, streaming. `None` when it is gone (no such key or
    /// version, or the current version is a delete marker).
    async fn download(
        &self,
        bucket: &str,
        _key: &str,
        _version_id: Option<&str>,
        _to: &std::path::Path,
    ) -> Result<Option<Downloaded>, StoreError> {
        Err(StoreError::Unavailable(format!(
            "this store cannot read objects of {bucket}"
        )))
    }

    /// Writes the file `from` as the new content of `key`, with the
    /// attributes of the version `read`, only if the key's current ETag is
    /// still the one `read` had: else `StoreError::Changed`, and nothing is
    /// written. Returns the new version's id, if any.
    async fn replace_if_match(
        &self,
        bucket: &str,
        _key: &str,
        _from: &std::path::Path,
        _read: &Downloaded,
    ) -> Result<Option<String>, StoreError> {
        Err(StoreError::Unavailable(format!(
            "this store cannot write objects of {bucket}"
        )))
    }
}

/// Legal holds, one per workspace, in the ledger.
#[async_trait]
pub trait Holds: Send + Sync {
    /// Places the hold unless one stands; returns the one that stands.
    async fn place_hold(&self, hold: &Hold) -> Result<Hold, LedgerError>;
    async fn hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError>;
    /// Removes the hold; returns it, if there was one.
    async fn release_hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError>;
}

/// Each workspace's retention (policy, change in grace, history, last
/// run), one record per workspace, and a listing of every workspace that
/// has one (for the daily enforcement).
#[async_trait]
pub trait RetentionLedger: Send + Sync {
    async fn retention(&self, workspace: &WorkspaceId) -> Result<Option<Retention>, LedgerError>;

    /// Writes `next` if the stored record is still at `next.version - 1`
    /// (none stored: version 0); else `Conflict`.
    async fn put_retention(&self, next: &Retention) -> Result<(), LedgerError>;

    /// A page of every workspace's record, in workspace order, and where
    /// the next page starts.
    async fn retention_page(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<Retention>, Option<String>), LedgerError>;
}

/// What the ledger keeps for regulations: their subject ids, and each
/// workspace's suppression list (one item per user, read in one call), at
/// the workspace's level (`source: None`) and per source.
#[async_trait]
pub trait Regulations: Send + Sync {
    /// Stores a regulation's subject ids (before the request itself).
    async fn put_subjects(&self, id: &RequestId, subjects: &Subjects) -> Result<(), LedgerError>;

    /// A regulation's subject ids (none once forgotten).
    async fn subjects(&self, id: &RequestId) -> Result<Subjects, LedgerError>;

    /// Removes a regulation's raw subject ids (none left is success).
    async fn forget_subjects(&self, id: &RequestId) -> Result<(), LedgerError>;

    /// Records that `regulation` (created at `created_at`, scoped to
    /// `source` if given) names the subject of each keyed digest, before
    /// the regulation is written, so the lookup never misses one; the raw
    /// ids are not in these records.
    async fn put_subject_refs(
        &self,
        regulation: &RequestId,
        created_at: DateTime<Utc>,
        source: Option<&SourceId>,
        digests: &[String],
    ) -> Result<(), LedgerError>;

    /// Removes the records `put_subject_refs` wrote for a regulation that
    /// was then not created (none left is success).
    async fn remove_subject_refs(
        &self,
        regulation: &RequestId,
        created_at: DateTime<Utc>,
        digests: &[String],
    ) -> Result<(), LedgerError>;

    /// What the ledger holds about the subject of `digest`: a page of the
    /// regulations that named it (newest first; a record whose regulation
    /// was never written is left out) and, for a user id (`suppression_of`),
    /// its workspace entry and those of the sources the page's regulations
    /// were scoped to. Two reads: the records, then the regulations and the
    /// entries together.
    async fn subject_record(
        &self,
        digest: &str,
        suppression_of: Option<(&WorkspaceId, &UserId)>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<SubjectRecord, LedgerError>;

    /// Sets each id's state in the workspace's list (or `source`'s) as
    /// `regulation` (created at `since`) says, unless a regulation created
    /// later already set it: of two regulations about one user, the later
    /// one wins whatever the order their writes land in.
    async fn set_suppressed(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
        suppressed: bool,
        regulation: &RequestId,
        since: DateTime<Utc>,
    ) -> Result<(), LedgerError>;

    /// Lifts each id's suppression (in the workspace's list, or
    /// `source`'s) that `regulation` set (an entry a later regulation set,
    /// or none, is left as it is): a cancelled regulation takes back what
    /// it did.
    async fn lift_suppressions(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
        regulation: &RequestId,
    ) -> Result<(), LedgerError>;

    /// One user's workspace entry, in one read.
    async fn suppression(&self, workspace: &WorkspaceId, id: &UserId) -> Result<Option<Suppression>, LedgerError>;

    /// The entries of several users (those that have one): the workspace's
    /// and, with `source`, that source's, in one batch.
    async fn suppressions(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
    ) -> Result<Vec<Suppression>, LedgerError>;

    /// A page of a workspace's entries (its own and its sources'), the
    /// latest set first (by `since`, then id), and where the next page
    /// starts.
    async fn suppression_page(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<Suppression>, Option<String>), LedgerError>;
}

/// Each workspace's quotas and what it used: calls of the regulations API
/// per minute, subjects named by regulations per UTC month.
#[async_trait]
pub trait QuotaLedger: Send + Sync {
    /// The quotas an operator set for the workspace, if any.
    async fn quota(&self, workspace: &WorkspaceId) -> Result<Option<Quota>, LedgerError>;

    /// Writes `next` if the stored one is at `next.version - 1` (none
    /// stored: version 0); else `Conflict`.
    async fn put_quota(&self, next: &Quota) -> Result<(), LedgerError>;

    /// Counts one call in `minute` unless `limit` are counted already: the
    /// count with it, or `None` (nothing counted).
    async fn count_call(
        &self,
        workspace: &WorkspaceId,
        minute: DateTime<Utc>,
        limit: u32,
    ) -> Result<Option<u32>, LedgerError>;

    /// The calls counted in `minute`.
    async fn calls(&self, workspace: &WorkspaceId, minute: DateTime<Utc>) -> Result<u32, LedgerError>;

    /// Adds one regulation of `subjects` to `month`'s use unless the
    /// subjects would pass `limit`: the use with it, or the use as it
    /// stands (nothing added).
    async fn reserve_subjects(
        &self,
        workspace: &WorkspaceId,
        month: &str,
        subjects: u64,
        limit: u64,
    ) -> Result<Result<MonthUsage, MonthUsage>, LedgerError>;

    /// Takes back a reservation whose regulation was not created.
    async fn release_subjects(&self, workspace: &WorkspaceId, month: &str, subjects: u64) -> Result<(), LedgerError>;

    /// `month`'s use.
    async fn month_usage(&self, workspace: &WorkspaceId, month: &str) -> Result<MonthUsage, LedgerError>;
}

/// One-shot timers that start the purge.
#[async_trait]
pub trait Timers: Send + Sync {
    /// Arms the request's grace timer (idempotent: an existing one is
    /// success). Only the grace-timer's reconciler arms and removes it.
    async fn arm(&self, id: &RequestId, at: DateTime<Utc>) -> Result<(), TimerError>;
    /// Removes the request's grace timer and its reminder (a missing one
    /// is success).
    async fn disarm(&self, id: &RequestId) -> Result<(), TimerError>;
    /// Arms a one-shot timer that starts a purge worker for `why`
    /// (idempotent per request and reason).
    async fn wake(&self, id: &RequestId, why: Wake, at: DateTime<Utc>) -> Result<(), TimerError>;
}

/// Where each request's status callbacks stand.
#[async_trait]
pub trait CallbackLedger: Send + Sync {
    async fn callback_state(&self, id: &RequestId) -> Result<Option<CallbackState>, LedgerError>;
    /// Writes `next` only if the stored version is `next.version - 1`
    /// (version 0: none stored), else `Conflict`.
    async fn put_callback_state(&self, next: &CallbackState) -> Result<(), LedgerError>;
    /// Requests whose callback waits for a retry due by `now`, soonest first.
    async fn due_callbacks(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RequestId>, LedgerError>;
}

/// Sends one callback: an HTTP POST; the answer's status code.
#[async_trait]
pub trait CallbackSender: Send + Sync {
    async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Result<u16, DeliveryError>;
}

/// Signs and checks receipts.
#[async_trait]
pub trait ReceiptSigner: Send + Sync {
    async fn sign(&self, message: &[u8]) -> Result<ReceiptSignature, SignError>;
    /// Whether `signature` is this signer's over `message` (a signature of
    /// another key or algorithm is not).
    async fn verify(&self, message: &[u8], signature: &ReceiptSignature) -> Result<bool, SignError>;
    /// The public keys anyone may check this signer's signatures with
    /// (none for an HMAC key).
    async fn public_keys(&self) -> Result<Vec<crate::model::keys::Jwk>, SignError> {
        Ok(Vec::new())
    }
}

/// The time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Milliseconds: every stored and shown time has the same precision.
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound;
        Utc::now().trunc_subsecs(3)
    }
}

/// A clock that moves only when told: for tests and the local runner.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        ManualClock(Arc::new(Mutex::new(at)))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl<T: Ledger + ?Sized> Ledger for Arc<T> {
    async fn insert(&self, r: &DeletionRequest, k: Option<&IdempotencyKey>) -> Result<(), LedgerError> {
        (**self).insert(r, k).await
    }
    async fn get(&self, id: &RequestId) -> Result<Option<DeletionRequest>, LedgerError> {
        (**self).get(id).await
    }
    async fn update(&self, next: &DeletionRequest) -> Result<(), LedgerError> {
        (**self).update(next).await
    }
    async fn active_for(&self, scope: &Scope) -> Result<Option<RequestId>, LedgerError> {
        (**self).active_for(scope).await
    }
    async fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<RequestId>, LedgerError> {
        (**self).by_idempotency_key(key, now).await
    }
    async fn list(&self, listing: &Listing, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        (**self).list(listing, limit, cursor).await
    }
    async fn active(&self, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        (**self).active(limit, cursor).await
    }
    async fn insert_shards(&self, shards: &[Shard]) -> Result<(), LedgerError> {
        (**self).insert_shards(shards).await
    }
    async fn shards(&self, id: &RequestId) -> Result<Vec<Shard>, LedgerError> {
        (**self).shards(id).await
    }
    async fn shards_planned(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        (**self).shards_planned(id).await
    }
    async fn next_unstarted(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        (**self).next_unstarted(id).await
    }
    async fn shard(&self, id: &RequestId, index: u32) -> Result<Option<Shard>, LedgerError> {
        (**self).shard(id, index).await
    }
    async fn open_shards(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        (**self).open_shards(id, limit).await
    }
    async fn latest_leases(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        (**self).latest_leases(id, limit).await
    }
    async fn update_shard(&self, next: &Shard) -> Result<(), LedgerError> {
        (**self).update_shard(next).await
    }
    async fn split_shard(&self, mine: &Shard, new: &Shard) -> Result<(), LedgerError> {
        (**self).split_shard(mine, new).await
    }
    async fn put_page(&self, page: &PendingPage) -> Result<(), LedgerError> {
        (**self).put_page(page).await
    }
    async fn pages(&self, id: &RequestId, shard: u32) -> Result<Vec<PendingPage>, LedgerError> {
        (**self).pages(id, shard).await
    }
    async fn drop_page(&self, id: &RequestId, shard: u32, seq: u64) -> Result<(), LedgerError> {
        (**self).drop_page(id, shard, seq).await
    }
}
