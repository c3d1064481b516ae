//! The purge: claim a request whose grace has ended, plan its shards into
//! the ledger, and purge them with as many workers (Lambda invocations) as
//! configured, each taking free shards under a lease; the last one to find
//! every shard done verifies by listing again and completes the request
//! with a receipt.
//!
//! One module per phase, each stating the invariants it keeps:
//!
//! - `claim`: `SCHEDULED → PURGING` by a conditional write, the plan (by
//!   sub-prefix or key range), and the loop that takes free shards under a
//!   lease, each taker starting more workers while free shards outnumber
//!   them.
//! - `flat`: a flat prefix cut into key ranges by probing.
//! - `take`: a free shard found in O(1) reads (a counter, then the index
//!   of open shards).
//! - `window`: DeleteObjects calls in flight, halved on S3's `SlowDown`.
//! - `pages`: a shard's uploads aborted and its pages deleted, each page
//!   recorded as a key range before its delete and counted after it (a
//!   killed worker's successor recovers the range).
//! - `rewrites` and `objects`: a regulation's shards, whose objects are
//!   rewritten without the subjects' events.
//! - `verify`: the last worker lists every prefix again.
//! - `finish`: the receipt, and a failure written conditionally.
//!
//! Every state change is a conditional write; a lost race is judged again
//! from a fresh read (`crate::retry`), a lost shard lease ends the
//! worker's turn on it (`PurgeOutcome::LostLease`).

use std::sync::Arc;
use std::time::Duration as StdDuration;
use tokio::time::Instant;

use chrono::Duration;

use crate::datamap::DataMap;
use crate::error::{LedgerError, ServiceError, StoreError};
use crate::ids::RequestId;
use crate::model::{Counts, DeletionRequest, PrefixReceipt, Receipt, Shard, Status};
use crate::ports::ReceiptSigner;
use crate::ports::{Clock, Entry, EntryKind, Holds, Ledger, ObjectStore, Regulations, Timers};
use crate::regulation::RewriteCounts;
use crate::requests::apply_suppression;

mod claim;
mod finish;
mod flat;
mod lanes;
mod objects;
mod pages;
mod rewrites;
mod subjects;
mod take;
pub use take::{next_free, Next};
mod verify;
mod window;

use objects::Scratch;
use window::Window;

/// Tuning of the purge.
#[derive(Debug, Clone)]
pub struct PurgeConfig {
    /// How long a shard (or the verification) stays with a worker without
    /// news; longer than one invocation can live.
    pub lease: Duration,
    /// Entries per listing page and per DeleteObjects call (at most 1,000).
    pub page_size: i32,
    /// DeleteObjects calls in flight per worker.
    pub deletes_in_flight: usize,
    /// Workers (invocations) per request at once.
    pub workers: u32,
    /// Shards one worker purges side by side (`lanes`), each with its own
    /// listing and deletes.
    pub shards_in_flight: u32,
    /// A worker with less time than this left hands its shard back.
    pub handoff_margin: StdDuration,
    /// How often a DeleteObjects batch is retried for the keys it refused.
    pub delete_retries: u32,
    /// Pause before the first retry (doubled each time).
    pub retry_backoff: StdDuration,
    /// Bytes of temporary storage a regulation's rewrites may take at once
    /// (copies of the objects in flight); an object that needs more than
    /// all of it is reported as not rewritten.
    pub scratch_bytes: u64,
    /// A shard purged for this many pages in one turn, with more to list,
    /// is split at its cursor and the rest offered to another worker
    /// (0: never).
    pub split_after_pages: u64,
    /// How far ahead a worker arms the timers that start other workers
    /// (fan-out, hand-off): the grace-timer's `TIMER_MIN_LEAD_SECONDS`, so
    /// no one-shot schedule is created for a time already past.
    pub wake_lead: Duration,
}

impl Default for PurgeConfig {
    fn default() -> Self {
        PurgeConfig {
            lease: Duration::minutes(16),
            page_size: 1000,
            deletes_in_flight: 8,
            workers: 4,
            // One at a time unless configured (the purge function's
            // SHARDS_IN_FLIGHT): every step of a lane is then in order.
            shards_in_flight: 1,
            handoff_margin: StdDuration::from_secs(60),
            delete_retries: 3,
            retry_backoff: StdDuration::from_millis(200),
            // Of the purge function's 4 GiB of /tmp, with room to spare.
            scratch_bytes: 3584 * 1024 * 1024,
            wake_lead: Duration::zero(),
            // About 100,000 entries: half a minute at one S3 partition's rate.
            split_after_pages: 100,
        }
    }
}

/// What a purge invocation ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeOutcome {
    Completed {
        receipt: Box<Receipt>,
    },
    /// The purge stopped; the request is `FAILED` with this reason.
    Failed {
        reason: String,
    },
    NotFound,
    NotDue,
    /// Other workers hold the remaining work (or the verification).
    Busy,
    /// Nothing to do: the request is already in this state.
    Settled {
        status: Status,
    },
    /// The worker lost a race for its shard or the request and stopped.
    LostLease,
    /// Near its time limit, the worker handed its shard back and armed a
    /// timer for a worker that continues.
    HandedOff,
    /// A legal hold stands on the workspace: the request waits `ON_HOLD`.
    OnHold,
}

/// Why a shard stopped.
enum ShardStop {
    Store(StoreError),
    Refused(String),
    /// A DeleteObjects answer kept refusing keys; the rest was deleted.
    PartlyRefused {
        reason: String,
        deleted: Counts,
        /// Every key left was refused with `SlowDown`: load, not a refusal.
        slow_down: bool,
    },
    LostLease,
    Ledger(LedgerError),
    OutOfTime(Box<Shard>),
    /// A legal hold stands: the shard as last checkpointed, to hand back.
    Held(Box<Shard>),
    /// S3 throttled the shard into the time limit: handed back, and the
    /// worker's successor noted.
    Yielded,
    /// S3 kept asking for less with one delete in flight: the lane stops
    /// at this checkpoint (`Window::step_down`).
    SteppedDown(Box<Shard>),
}

impl From<StoreError> for ShardStop {
    fn from(e: StoreError) -> Self {
        ShardStop::Store(e)
    }
}

impl From<LedgerError> for ShardStop {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Conflict => ShardStop::LostLease,
            e => ShardStop::Ledger(e),
        }
    }
}

pub struct Purger<L, S, T, C> {
    ledger: L,
    store: S,
    timers: T,
    clock: C,
    map: DataMap,
    config: PurgeConfig,
    signer: Option<Arc<dyn ReceiptSigner>>,
    scratch: Scratch,
    /// DeleteObjects calls in flight, by S3's `SlowDown` (`window`).
    window: Window,
    /// The request whose free shards this worker last counted, and when.
    topped_up: std::sync::Mutex<Option<(RequestId, chrono::DateTime<chrono::Utc>)>>,
}
impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    pub fn new(ledger: L, store: S, timers: T, clock: C, map: DataMap, config: PurgeConfig) -> Self {
        Purger {
            ledger,
            store,
            timers,
            clock,
            map,
            scratch: Scratch::new(config.scratch_bytes),
            window: Window::new(config.deletes_in_flight),
            topped_up: std::sync::Mutex::new(None),
            config,
            signer: None,
        }
    }

    /// Signs every receipt with `signer` (without one, receipts are
    /// unsigned: only for tests that do not look at them).
    /// The store it purges (its counters say what an invocation did).
    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn with_signer(mut self, signer: Arc<dyn ReceiptSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Runs (or joins, or resumes) the purge of a request as worker
    /// `owner`, until `deadline` (the invocation's end) if any.
    pub async fn run(
        &self,
        id: &RequestId,
        owner: &str,
        retry: bool,
        deadline: Option<Instant>,
    ) -> Result<PurgeOutcome, ServiceError> {
        // A bucket's versioning, say, as it is now, not as an earlier run saw it.
        self.store.look_afresh();
        // Whoever started it, every worker starts more as it takes shards.
        let (mut request, _started) = match self.claim(id, owner, retry).await? {
            Ok(claimed) => claimed,
            Err(outcome) => return Ok(outcome),
        };
        // A regulation's suppression change the intake could not finish.
        request = apply_suppression(&self.ledger, request, None, self.clock.now()).await?;
        if request.status == Status::Purging {
            self.plan(&request).await?;
            match self.work_lanes(&request, owner, deadline).await? {
                None => {}
                Some(outcome) => return Ok(outcome),
            }
            request = match self.start_verification(id, owner).await? {
                Ok(request) => request,
                Err(outcome) => return Ok(outcome),
            };
        }
        self.verify_and_complete(&request, owner).await
    }

    /// A request as the ledger has it. Reads only.
    pub async fn request(&self, id: &RequestId) -> Result<Option<DeletionRequest>, ServiceError> {
        Ok(self.ledger.get(id).await?)
    }

    /// The request a grace reminder is about, if it is still in grace (a
    /// revoked or purged one needs none). Reads only.
    pub async fn due_for_reminder(&self, id: &RequestId) -> Result<Option<DeletionRequest>, ServiceError> {
        Ok(self
            .ledger
            .get(id)
            .await?
            .filter(|r| r.status == Status::Scheduled && self.clock.now() < r.grace_ends_at))
    }
}

pub(super) fn lease_or_err(e: LedgerError) -> Result<PurgeOutcome, ServiceError> {
    match e {
        LedgerError::Conflict => Ok(PurgeOutcome::LostLease),
        e => Err(e.into()),
    }
}

/// The data-map prefixes of a request's shards, in plan order, with what
/// was deleted (or rewritten) under each.
pub fn roots(shards: &[Shard]) -> Vec<PrefixReceipt> {
    let mut roots: Vec<PrefixReceipt> = Vec::new();
    for s in shards {
        let root = s.root();
        match roots.iter_mut().find(|r| r.bucket == s.bucket && r.prefix == root) {
            Some(r) => {
                r.deleted.add(&s.counts);
                if let Some(rw) = &s.rewrite {
                    r.rewritten.get_or_insert_with(RewriteCounts::default).add(rw);
                }
            }
            None => roots.push(PrefixReceipt {
                store: s.store.clone(),
                bucket: s.bucket.clone(),
                prefix: root.to_owned(),
                deleted: s.counts,
                rewritten: s.rewrite.clone(),
            }),
        }
    }
    roots
}

/// What a set of deleted entries amounts to.
pub(super) fn count<'a>(entries: impl Iterator<Item = &'a Entry>) -> Counts {
    let mut counts = Counts::default();
    for e in entries {
        match e.kind {
            EntryKind::Current => counts.objects += 1,
            EntryKind::Noncurrent => counts.versions += 1,
            EntryKind::DeleteMarker => counts.delete_markers += 1,
        }
        counts.bytes += e.size;
    }
    counts
}

#[cfg(test)]
mod lane_tests;
#[cfg(test)]
mod range_tests;
#[cfg(test)]
mod tests;
