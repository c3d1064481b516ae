//! The purge: claim a request whose grace has ended, plan its shards into
//! the ledger, and purge them with as many workers (Lambda invocations) as
//! configured, each taking free shards under a lease; the last one to find
//! every shard done verifies by listing again and completes the request
//! with a receipt.
//!
//! - A worker checkpoints (cursor and counts) after every page; one that is
//!   killed leaves a shard whose lease expires, and the next worker resumes
//!   it from the checkpoint.
//! - A worker near its time limit hands its shard back with the checkpoint
//!   and arms a one-shot timer for a worker that continues.
//! - Within a worker, several DeleteObjects calls are in flight while the
//!   next page is listed; checkpoints advance in page order.
//! - A conflicting write when verification starts is judged again from a
//!   fresh read: only a request already `VERIFYING` is left to another.
//! - A regulation's rewrites in flight never hold more temporary storage
//!   than `PurgeConfig::scratch_bytes`: each reserves room for its copies
//!   before it reads, and an object that can never fit is that object's
//!   failure (reported), never the shard's.
//! - A rewritten key is settled only once a listing of its versions shows
//!   none written since the shard's listing that the rewrite did not read
//!   (those are scrubbed too): ETags cannot tell identical bytes.
//! - A line the filter cannot read that may hold a subject makes its object
//!   a failure, named with the line numbers (see `rewrite`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Duration;
use futures::stream::{self, FuturesOrdered, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};

use crate::datamap::DataMap;
use crate::error::{LedgerError, ServiceError, StoreError};
use crate::ids::RequestId;
use crate::lifecycle::Claim;
use crate::model::{Counts, DeletionRequest, Lease, PrefixReceipt, Receipt, Shard, Status};
use crate::ports::ReceiptSigner;
use crate::ports::{Clock, Entry, EntryKind, Holds, Ledger, ObjectStore, PendingPage, Regulations, Timers, Wake};
use crate::regulation::{RewriteCounts, Subjects, UserId};
use crate::requests::apply_suppression;
use crate::retry::{raced, retry_on_conflict};
use crate::rewrite::{EventFilter, FilterReport, RewriteError, TempFile};
use crate::signing::sign_receipt;

/// Object versions listed per page of a regulation's rewrite (each is
/// read, and checkpointed with its page).
const REWRITE_PAGE: i32 = 100;
/// How often a rewrite reads an object again after a concurrent writer
/// changed it.
const MAX_CHANGED: usize = 5;
/// The largest object one PutObject writes back.
const MAX_REWRITE_BYTES: u64 = 5 * 1024 * 1024 * 1024;

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
}

impl Default for PurgeConfig {
    fn default() -> Self {
        PurgeConfig {
            lease: Duration::minutes(16),
            page_size: 1000,
            deletes_in_flight: 8,
            workers: 4,
            handoff_margin: StdDuration::from_secs(60),
            delete_retries: 3,
            retry_backoff: StdDuration::from_millis(200),
            // Of the purge function's 4 GiB of /tmp, with room to spare.
            scratch_bytes: 3584 * 1024 * 1024,
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
    },
    LostLease,
    Ledger(LedgerError),
    OutOfTime(Box<Shard>),
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
            config,
            signer: None,
        }
    }

    /// Signs every receipt with `signer` (without one, receipts are
    /// unsigned: only for tests that do not look at them).
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
        let (mut request, started) = match self.claim(id, owner, retry).await? {
            Ok(claimed) => claimed,
            Err(outcome) => return Ok(outcome),
        };
        // A regulation's suppression change the intake could not finish.
        request = apply_suppression(&self.ledger, request, None, self.clock.now()).await?;
        if request.status == Status::Purging {
            let shards = self.plan(&request).await?;
            if started {
                self.fan_out(id, &shards).await;
            }
            match self.work(&request, owner, deadline).await? {
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

    /// The request a grace reminder is about, if it is still in grace (a
    /// revoked or purged one needs none). Reads only.
    pub async fn due_for_reminder(&self, id: &RequestId) -> Result<Option<DeletionRequest>, ServiceError> {
        Ok(self
            .ledger
            .get(id)
            .await?
            .filter(|r| r.status == Status::Scheduled && self.clock.now() < r.grace_ends_at))
    }

    /// Takes the request with a conditional write (or joins a purge under
    /// way), or says why not. The flag tells whether this worker started it.
    async fn claim(
        &self,
        id: &RequestId,
        owner: &str,
        retry: bool,
    ) -> Result<Result<(DeletionRequest, bool), PurgeOutcome>, ServiceError> {
        retry_on_conflict(id, || async {
            let Some(current) = self.ledger.get(id).await? else {
                return Ok(Err(PurgeOutcome::NotFound));
            };
            let due = current.status == Status::Scheduled && self.clock.now() >= current.grace_ends_at;
            if due || current.status == Status::Purging {
                match self.hold_on(&current, owner).await? {
                    Some(Ok(())) => return Ok(Err(PurgeOutcome::OnHold)),
                    Some(Err(())) => return raced(), // changed meanwhile: judge again
                    None => {}
                }
            }
            match current.claim(self.clock.now(), owner, self.config.lease, retry) {
                Claim::Granted { next, resumed } => {
                    self.ledger.update(&next).await?;
                    info!(request_id = %id, resumed, status = %next.status, "purge claimed");
                    let started = next.status == Status::Purging;
                    Ok(Ok((*next, started)))
                }
                Claim::Join => Ok(Ok((current, false))),
                Claim::NotDue { grace_ends_at } => {
                    info!(request_id = %id, %grace_ends_at, "grace not over; nothing to do");
                    Ok(Err(PurgeOutcome::NotDue))
                }
                Claim::Busy { lease } => {
                    info!(request_id = %id, holder = %lease.owner, "another worker verifies");
                    Ok(Err(PurgeOutcome::Busy))
                }
                Claim::Settled { status } => {
                    info!(request_id = %id, %status, "nothing to do");
                    Ok(Err(PurgeOutcome::Settled { status }))
                }
            }
        })
        .await
    }

    /// If a legal hold stands on the request's workspace, puts the request
    /// `ON_HOLD` (conditionally): `Some(Ok)` when it is on hold now,
    /// `Some(Err)` when it changed meanwhile, `None` when no hold stands.
    async fn hold_on(&self, request: &DeletionRequest, owner: &str) -> Result<Option<Result<(), ()>>, ServiceError> {
        let Some(workspace) = request.scope.workspace() else {
            return Ok(None);
        };
        let Some(hold) = self.ledger.hold(workspace).await? else {
            return Ok(None);
        };
        let next = request.put_on_hold(self.clock.now(), owner, &hold.reason)?;
        match self.ledger.update(&next).await {
            Ok(()) => {
                info!(request_id = %request.id, workspace = %workspace, "legal hold: the purge waits");
                Ok(Some(Ok(())))
            }
            Err(LedgerError::Conflict) => Ok(Some(Err(()))),
            Err(e) => Err(e.into()),
        }
    }

    /// The request's shards: planned once from the data map, then read back.
    async fn plan(&self, request: &DeletionRequest) -> Result<Vec<Shard>, ServiceError> {
        let existing = self.ledger.shards(&request.id).await?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        let mut shards: Vec<Shard> = Vec::new();
        for p in self.map.expand(&request.scope) {
            for prefix in self.split(&p.bucket, &p.prefix).await {
                shards.push(Shard {
                    request_id: request.id.clone(),
                    index: shards.len() as u32,
                    store: p.store.clone(),
                    bucket: p.bucket.clone(),
                    prefix,
                    root: p.prefix.clone(),
                    done: false,
                    cursor: None,
                    uploads_done: false,
                    counts: Counts::default(),
                    lease: None,
                    pages_done: 0,
                    rewrite: None,
                    version: 1,
                });
            }
        }
        self.ledger.insert_shards(&shards).await?;
        Ok(self.ledger.shards(&request.id).await?)
    }

    /// The prefixes a data-map prefix is purged by: its sub-prefixes when
    /// everything under it sits in two or more of them (so several workers
    /// can share it), else the prefix itself. Verification lists the
    /// prefix itself, so data written under a new sub-prefix is still found.
    async fn split(&self, bucket: &str, prefix: &str) -> Vec<String> {
        if self.config.workers < 2 {
            // One worker gains nothing from shards, and each costs a listing.
            return vec![prefix.to_owned()];
        }
        match self.store.list_children(bucket, prefix, MAX_SPLIT).await {
            Ok(c) if c.prefixes.len() >= 2 && !c.direct_entries && !c.truncated => {
                if c.prefixes
                    .iter()
                    .all(|sub| sub.starts_with(prefix) && sub.ends_with('/') && sub.len() > prefix.len())
                {
                    return c.prefixes;
                }
                warn!(
                    bucket,
                    prefix, "the store listed sub-prefixes outside the prefix; not splitting"
                );
                vec![prefix.to_owned()]
            }
            Ok(_) => vec![prefix.to_owned()],
            Err(e) => {
                // The purge of the whole prefix meets (and reports) it.
                warn!(bucket, prefix, error = %e, "could not list sub-prefixes; not splitting");
                vec![prefix.to_owned()]
            }
        }
    }

    /// Starts more workers, one per free shard up to the configured number.
    async fn fan_out(&self, id: &RequestId, shards: &[Shard]) {
        let open = shards.iter().filter(|s| !s.done).count() as u32;
        let extra = open.min(self.config.workers).saturating_sub(1);
        for n in 1..=extra {
            // Best effort: the sweep re-drives a purge nobody works on.
            if let Err(e) = self.timers.wake(id, Wake::Worker(n), self.clock.now()).await {
                warn!(request_id = %id, worker = n, error = %e, "could not start a worker");
            }
        }
    }

    /// Takes free shards one after another until none is left. `None` when
    /// every shard is done; otherwise why this worker stopped.
    async fn work(
        &self,
        request: &DeletionRequest,
        owner: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<PurgeOutcome>, ServiceError> {
        let mut subjects: Option<Subjects> = None;
        loop {
            let shards = self.ledger.shards(&request.id).await?;
            if shards.iter().all(|s| s.done) {
                return Ok(None);
            }
            let now = self.clock.now();
            let Some(free) = shards
                .into_iter()
                .find(|s| !s.done && s.lease.as_ref().is_none_or(|l| l.until <= now))
            else {
                return Ok(Some(PurgeOutcome::Busy));
            };
            // The request may have failed or moved on under another worker,
            // or a legal hold may have been placed since the last shard.
            match self.ledger.get(&request.id).await? {
                Some(current) if current.status == Status::Purging => match self.hold_on(&current, owner).await? {
                    Some(Ok(())) => return Ok(Some(PurgeOutcome::OnHold)),
                    Some(Err(())) => continue, // changed meanwhile: judge again
                    None => {}
                },
                Some(current) => return Ok(Some(PurgeOutcome::Settled { status: current.status })),
                None => return Ok(Some(PurgeOutcome::NotFound)),
            }
            let mut mine = free.clone();
            mine.lease = Some(Lease {
                owner: owner.to_owned(),
                until: now + self.config.lease,
            });
            mine.version += 1;
            match self.ledger.update_shard(&mine).await {
                Ok(()) => {}
                Err(LedgerError::Conflict) => continue, // another worker took it
                Err(e) => return Err(e.into()),
            }
            let worked = if request.scope.regulation().is_some() {
                if subjects.is_none() {
                    subjects = Some(self.ledger.subjects(&request.id).await?);
                }
                let ids = subjects.as_ref().map(Subjects::ids).unwrap_or_default();
                self.rewrite_shard(mine, ids, deadline).await
            } else {
                self.purge_shard(mine, deadline).await
            };
            match worked {
                Ok(()) => continue,
                Err(ShardStop::LostLease) => continue,
                Err(ShardStop::Ledger(e)) => return Err(e.into()),
                Err(ShardStop::Store(e)) => {
                    self.release(&request.id, free.index, owner).await;
                    return self.fail(&request.id, owner, &e.to_string()).await.map(Some);
                }
                Err(ShardStop::Refused(reason) | ShardStop::PartlyRefused { reason, .. }) => {
                    self.release(&request.id, free.index, owner).await;
                    return self.fail(&request.id, owner, &reason).await.map(Some);
                }
                Err(ShardStop::OutOfTime(shard)) => {
                    let mut back = *shard;
                    back.lease = None;
                    back.version += 1;
                    self.ledger.update_shard(&back).await?;
                    self.timers
                        .wake(&request.id, Wake::HandOff, self.clock.now())
                        .await
                        .map_err(ServiceError::from)?;
                    info!(request_id = %request.id, shard = back.index, "handed the shard back before the time limit");
                    return Ok(Some(PurgeOutcome::HandedOff));
                }
            }
        }
    }

    /// Gives a shard this worker holds back (best effort: else its lease
    /// expires), so a retry can take it at once.
    async fn release(&self, id: &RequestId, index: u32, owner: &str) {
        let Ok(shards) = self.ledger.shards(id).await else {
            return;
        };
        let Some(shard) = shards.into_iter().find(|s| s.index == index) else {
            return;
        };
        if shard.lease.as_ref().is_some_and(|l| l.owner == owner) {
            let mut back = shard;
            back.lease = None;
            back.version += 1;
            if let Err(e) = self.ledger.update_shard(&back).await {
                warn!(request_id = %id, shard = index, error = %e, "could not release the shard");
            }
        }
    }

    fn out_of_time(&self, deadline: Option<Instant>) -> bool {
        deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) < self.config.handoff_margin)
    }

    /// Purges one shard this worker holds, checkpointing after each page.
    async fn purge_shard(&self, mut shard: Shard, deadline: Option<Instant>) -> Result<(), ShardStop> {
        // Uploads first: an upload completed later would leave an object behind.
        while !shard.uploads_done {
            if self.out_of_time(deadline) {
                return Err(ShardStop::OutOfTime(Box::new(shard)));
            }
            let page = self
                .store
                .list_uploads(&shard.bucket, &shard.prefix, shard.cursor.as_deref())
                .await?;
            let mut next = shard.clone();
            for upload in &page.uploads {
                ensure_in_prefix(&shard, &upload.key)?;
                self.store.abort_upload(&shard.bucket, upload).await?;
                next.counts.uploads_aborted += 1;
            }
            next.cursor = page.next;
            next.uploads_done = next.cursor.is_none();
            next.version += 1;
            self.ledger.update_shard(&next).await?;
            shard = next;
        }
        shard = self.recover_pages(shard).await?;
        // List ahead while earlier pages are being deleted; checkpoint each
        // page, in order, once its delete is confirmed. Each page is recorded
        // before its delete is sent, so a worker that dies anywhere leaves
        // pages the next one deletes again and counts exactly once.
        let mut in_flight = FuturesOrdered::new();
        let mut listed_to: VecDeque<Option<String>> = VecDeque::new();
        let mut cursor = shard.cursor.clone();
        let mut listing_done = shard.done;
        loop {
            while !listing_done && in_flight.len() < self.config.deletes_in_flight.max(1) {
                if self.out_of_time(deadline) {
                    break;
                }
                // Everything listed before is deleted once nothing is in
                // flight: the listing starts over, and what it finds is
                // what is left. (A cursor names the last entry listed,
                // which a delete may have removed: some stores then list
                // nothing after it.) Only pages listed ahead of deletes
                // in flight go by the cursor.
                let from = if in_flight.is_empty() { None } else { cursor.as_deref() };
                let page = self
                    .store
                    .list_page(&shard.bucket, &shard.prefix, from, self.config.page_size)
                    .await?;
                for entry in &page.entries {
                    ensure_in_prefix(&shard, &entry.key)?;
                }
                cursor = page.next;
                listing_done = cursor.is_none();
                let record = PendingPage {
                    request_id: shard.request_id.clone(),
                    shard: shard.index,
                    seq: shard.pages_done + listed_to.len() as u64,
                    entries: page.entries.clone(),
                    after: cursor.clone(),
                };
                self.ledger.put_page(&record).await?;
                listed_to.push_back(cursor.clone());
                let bucket = shard.bucket.clone();
                in_flight.push_back(async move { self.delete_all(&bucket, &page.entries).await });
            }
            let Some(deleted) = in_flight.next().await else {
                break;
            };
            let deleted = match deleted {
                Ok(deleted) => deleted,
                Err(ShardStop::PartlyRefused { reason, deleted }) => {
                    // Count what the store did delete, in this page and in
                    // the pages still in flight, keeping the cursor where it
                    // was: the page is listed again on the retry.
                    let mut counted = deleted;
                    while let Some(more) = in_flight.next().await {
                        match more {
                            Ok(c) | Err(ShardStop::PartlyRefused { deleted: c, .. }) => counted.add(&c),
                            Err(_) => {}
                        }
                    }
                    let mut next = shard.clone();
                    next.counts.add(&counted);
                    next.version += 1;
                    self.ledger.update_shard(&next).await?;
                    // Counted: the retry lists these pages again instead.
                    self.drop_pages_from(&next, next.pages_done).await?;
                    return Err(ShardStop::Refused(reason));
                }
                Err(e) => return Err(e),
            };
            let mut next = shard.clone();
            next.counts.add(&deleted);
            next.pages_done += 1;
            next.cursor = listed_to.pop_front().flatten();
            next.done = next.cursor.is_none() && listed_to.is_empty() && listing_done;
            self.checkpoint(&mut next);
            self.ledger.update_shard(&next).await?;
            self.ledger
                .drop_page(&next.request_id, next.index, next.pages_done - 1)
                .await?;
            shard = next;
        }
        if shard.done {
            Ok(())
        } else {
            Err(ShardStop::OutOfTime(Box::new(shard)))
        }
    }

    /// A page's checkpoint: a done shard's lease ends, another's is renewed.
    fn checkpoint(&self, next: &mut Shard) {
        if next.done {
            next.lease = None;
        } else if let Some(lease) = next.lease.as_mut() {
            lease.until = self.clock.now() + self.config.lease;
        }
        next.version += 1;
    }

    /// A regulation's shard: reads every object version under the prefix
    /// and rewrites the current ones without the subjects' events,
    /// checkpointing after each page. The older versions that held any are
    /// deleted only once the whole prefix is listed (recorded in the ledger
    /// per page until then), so no listing cursor ever names a version that
    /// is gone. Redoing a page (after a killed worker) finds the rewritten
    /// objects clean: nothing is rewritten twice.
    async fn rewrite_shard(
        &self,
        mut shard: Shard,
        subjects: &[UserId],
        deadline: Option<Instant>,
    ) -> Result<(), ShardStop> {
        let Some(records) = self.map.store(&shard.store).and_then(|s| s.user_records.as_ref()) else {
            return Err(ShardStop::Refused(format!(
                "store {} declares no user records in the data map",
                shard.store
            )));
        };
        let filter = Arc::new(EventFilter::new(
            subjects.iter().map(UserId::as_str),
            &records.user_id_field,
        ));
        while shard.pages_done == 0 || shard.cursor.is_some() {
            if self.out_of_time(deadline) {
                return Err(ShardStop::OutOfTime(Box::new(shard)));
            }
            let page = self
                .store
                .list_page(
                    &shard.bucket,
                    &shard.prefix,
                    shard.cursor.as_deref(),
                    self.config.page_size.min(REWRITE_PAGE),
                )
                .await?;
            for entry in &page.entries {
                ensure_in_prefix(&shard, &entry.key)?;
            }
            let results: Vec<Result<(RewriteCounts, Vec<Entry>), StoreError>> = stream::iter(
                page.entries
                    .iter()
                    .filter(|e| e.kind != EntryKind::DeleteMarker)
                    .map(|e| self.rewrite_entry(&shard.bucket, e, &filter)),
            )
            .buffer_unordered(self.config.deletes_in_flight.max(1))
            .collect()
            .await;
            let mut counts = RewriteCounts::default();
            let mut old_versions = Vec::new();
            for r in results {
                let (c, doomed) = r?;
                counts.add(&c);
                old_versions.extend(doomed);
            }
            if !old_versions.is_empty() {
                self.ledger
                    .put_page(&PendingPage {
                        request_id: shard.request_id.clone(),
                        shard: shard.index,
                        seq: shard.pages_done,
                        entries: old_versions,
                        after: None,
                    })
                    .await?;
            }
            let mut next = shard.clone();
            next.rewrite.get_or_insert_with(RewriteCounts::default).add(&counts);
            next.cursor = page.next;
            next.pages_done += 1;
            self.checkpoint(&mut next);
            self.ledger.update_shard(&next).await?;
            shard = next;
        }
        // Listed to the end: now the older versions holding the subjects' events go.
        for page in self.ledger.pages(&shard.request_id, shard.index).await? {
            let mut counts = RewriteCounts::default();
            for chunk in page.entries.chunks(1000) {
                let refused = self.store.delete_batch(&shard.bucket, chunk).await?;
                counts.versions_deleted += (chunk.len() - refused.len().min(chunk.len())) as u64;
                for f in refused {
                    counts.objects_failed += 1;
                    counts.note(format!(
                        "s3://{}/{} version {}: the delete was refused ({}: {})",
                        shard.bucket,
                        f.key,
                        f.version_id.unwrap_or_default(),
                        f.code,
                        f.message
                    ));
                }
            }
            let mut next = shard.clone();
            next.rewrite.get_or_insert_with(RewriteCounts::default).add(&counts);
            self.checkpoint(&mut next);
            self.ledger.update_shard(&next).await?;
            self.ledger.drop_page(&shard.request_id, shard.index, page.seq).await?;
            shard = next;
        }
        let mut next = shard.clone();
        next.done = true;
        self.checkpoint(&mut next);
        self.ledger.update_shard(&next).await?;
        Ok(())
    }

    /// One listed version: the current one is rewritten without the
    /// subjects' events; an older one that holds any is deleted.
    async fn rewrite_entry(
        &self,
        bucket: &str,
        entry: &Entry,
        filter: &Arc<EventFilter>,
    ) -> Result<(RewriteCounts, Vec<Entry>), StoreError> {
        let mut counts = RewriteCounts::default();
        let mut doomed = Vec::new();
        match entry.kind {
            EntryKind::DeleteMarker => {}
            EntryKind::Noncurrent => {
                let version = entry.version_id.as_deref();
                self.scrub_version(
                    bucket,
                    &entry.key,
                    version,
                    entry.size,
                    filter,
                    &mut counts,
                    &mut doomed,
                )
                .await?
            }
            EntryKind::Current => {
                self.rewrite_current(bucket, entry, filter, &mut counts, &mut doomed)
                    .await?
            }
        }
        Ok((counts, doomed))
    }

    /// Rewrites the current version of a key, conditionally on the ETag
    /// read: a concurrent writer's version is read and judged again, never
    /// overwritten. Once settled, the key's versions are listed again: a
    /// version written since the listing that no read saw (an ETag compare
    /// cannot tell identical bytes re-uploaded, nor two writes in a row) is
    /// scrubbed too. In a versioned bucket the versions that held the
    /// subjects' events are deleted once the clean one is written.
    async fn rewrite_current(
        &self,
        bucket: &str,
        entry: &Entry,
        filter: &Arc<EventFilter>,
        counts: &mut RewriteCounts,
        doomed: &mut Vec<Entry>,
    ) -> Result<(), StoreError> {
        let key = &entry.key;
        let mut size = entry.size;
        let mut seen = Seen::default();
        let mut settled = false;
        for _ in 0..MAX_CHANGED {
            let attempt = self.rewrite_once(bucket, key, size, filter, counts).await?;
            match seen.take(attempt, counts) {
                Step::Gone => {
                    settled = true; // deleted meanwhile: nothing left to rewrite
                    break;
                }
                Step::Stop => return Ok(()),
                Step::Again(larger) => {
                    info!(bucket, key, "object changed during its rewrite; reading it again");
                    size = larger.unwrap_or(size);
                    continue;
                }
                Step::Check => {}
            }
            let unread = self
                .unread_versions(
                    bucket,
                    key,
                    entry.version_id.as_deref(),
                    &seen.read,
                    seen.written.as_deref(),
                )
                .await?;
            if let Some(current) = unread.current {
                size = current; // a newer current version: rewrite it too
                continue;
            }
            for (version, size) in unread.older {
                self.scrub_version(bucket, key, Some(&version), size, filter, counts, doomed)
                    .await?;
            }
            settled = true;
            break;
        }
        if !settled {
            counts.objects_failed += 1;
            counts.note(format!(
                "s3://{bucket}/{key}: changed by another writer {MAX_CHANGED} times during its rewrite; not rewritten"
            ));
        }
        if let Some(report) = &seen.last {
            note_malformed(counts, bucket, key, None, report);
        }
        // The listed version, if the object moved on before it was read.
        if let Some(listed) = &entry.version_id {
            if !seen.read.contains(listed) && listed != "null" {
                self.scrub_version(bucket, key, Some(listed), entry.size, filter, counts, doomed)
                    .await?;
            }
        }
        // Never the version just written, nor the one a write replaced in
        // place (`null`, in a bucket with versioning suspended).
        let written = seen.written;
        seen.holding.retain(|v| v != "null" && Some(v) != written.as_ref());
        doomed.extend(seen.holding.into_iter().map(|v| old_version(key, v)));
        Ok(())
    }

    /// One read of a key's current version, into temporary storage reserved
    /// for `size` bytes (waiting for room), and its conditional write back
    /// without the subjects' events. An object that cannot fit in the
    /// whole budget is that object's failure, never the shard's.
    async fn rewrite_once(
        &self,
        bucket: &str,
        key: &str,
        size: u64,
        filter: &Arc<EventFilter>,
        counts: &mut RewriteCounts,
    ) -> Result<Attempt, StoreError> {
        if size > MAX_REWRITE_BYTES {
            counts.objects_failed += 1;
            counts.note(format!(
                "s3://{bucket}/{key}: {size} bytes, over the 5 GiB one write can put back; not rewritten"
            ));
            return Ok(Attempt::Failed);
        }
        let need = rewrite_scratch(size);
        let Some(_room) = self.scratch.reserve(need).await else {
            counts.objects_failed += 1;
            counts.note(format!(
                "s3://{bucket}/{key}: {size} bytes need about {need} bytes of temporary storage to rewrite, \
                 more than the {} bytes the rewrite may use; not rewritten",
                self.config.scratch_bytes
            ));
            return Ok(Attempt::Failed);
        };
        let input = TempFile::new("in");
        let Some(read) = self.store.download(bucket, key, None, input.path()).await? else {
            return Ok(Attempt::Gone);
        };
        if read.size > size {
            // Grown since listed: read again with room for what it is now.
            return Ok(Attempt::Larger { size: read.size });
        }
        counts.objects_scanned += 1;
        counts.bytes_scanned += read.size;
        let output = TempFile::new("out");
        let report = match self.filter(filter, &input, Some(&output)).await? {
            Ok(report) => report,
            Err(reason) => {
                counts.objects_failed += 1;
                counts.note(format!("s3://{bucket}/{key}: {reason}; left as it was"));
                return Ok(Attempt::Failed);
            }
        };
        drop(input);
        if report.removed == 0 {
            return Ok(Attempt::Clean {
                read: read.version_id,
                report,
            });
        }
        match self.store.replace_if_match(bucket, key, output.path(), &read).await {
            Ok(new) => Ok(Attempt::Written {
                read: read.version_id,
                new,
                report,
            }),
            Err(StoreError::Changed { .. }) => Ok(Attempt::Changed { read: read.version_id }),
            Err(e) => Err(e),
        }
    }

    /// The versions of `key` newer than the listed one that no read of
    /// this rewrite saw and its write did not make (the listed one and
    /// older ones are in the shard's own listing). Nothing in a bucket
    /// without versions, where nothing can hide.
    async fn unread_versions(
        &self,
        bucket: &str,
        key: &str,
        listed: Option<&str>,
        read: &[String],
        written: Option<&str>,
    ) -> Result<Unread, StoreError> {
        let mut unread = Unread::default();
        if read.is_empty() {
            return Ok(unread);
        }
        let mut cursor: Option<String> = None;
        'pages: loop {
            let page = self.store.list_page(bucket, key, cursor.as_deref(), 1000).await?;
            // Newest first within a key; the exact key sorts before longer ones.
            for e in page.entries.iter().filter(|e| e.kind != EntryKind::DeleteMarker) {
                let Some(version) = e.version_id.as_deref() else {
                    continue;
                };
                if e.key != key || Some(version) == listed {
                    break 'pages;
                }
                if read.iter().any(|r| r == version) || Some(version) == written {
                    continue;
                }
                match e.kind {
                    EntryKind::Current => unread.current = Some(e.size),
                    _ => unread.older.push((version.to_owned(), e.size)),
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(unread)
    }

    /// Marks an older version that holds any of the subjects' events for
    /// deletion (`size`: its listed size, which a version never changes).
    #[allow(clippy::too_many_arguments)]
    async fn scrub_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        size: u64,
        filter: &Arc<EventFilter>,
        counts: &mut RewriteCounts,
        doomed: &mut Vec<Entry>,
    ) -> Result<(), StoreError> {
        let Some(version) = version_id else {
            return Ok(());
        };
        let Some(_room) = self.scratch.reserve(size).await else {
            counts.objects_failed += 1;
            counts.note(format!(
                "s3://{bucket}/{key} version {version}: {size} bytes, more than the {} bytes of temporary storage \
                 the rewrite may use; not read",
                self.config.scratch_bytes
            ));
            return Ok(());
        };
        let input = TempFile::new("old");
        let Some(read) = self.store.download(bucket, key, Some(version), input.path()).await? else {
            return Ok(()); // gone already
        };
        counts.objects_scanned += 1;
        counts.bytes_scanned += read.size;
        match self.filter(filter, &input, None).await? {
            Ok(report) if report.removed > 0 => {
                doomed.push(old_version(key, version.to_owned()));
                Ok(())
            }
            Ok(report) => {
                note_malformed(counts, bucket, key, Some(version), &report);
                Ok(())
            }
            Err(reason) => {
                counts.objects_failed += 1;
                counts.note(format!(
                    "s3://{bucket}/{key} version {version}: {reason}; left as it was"
                ));
                Ok(())
            }
        }
    }

    /// Runs the filter off the async threads. The outer error is the
    /// function's own storage failing; the inner one an unreadable object.
    async fn filter(
        &self,
        filter: &Arc<EventFilter>,
        input: &TempFile,
        output: Option<&TempFile>,
    ) -> Result<Result<FilterReport, String>, StoreError> {
        let filter = filter.clone();
        let input = input.path().to_owned();
        let output = output.map(|o| o.path().to_owned());
        let joined = tokio::task::spawn_blocking(move || filter.filter_file(&input, output.as_deref())).await;
        match joined {
            Ok(Ok(report)) => Ok(Ok(report)),
            Ok(Err(RewriteError::Unreadable(reason))) => Ok(Err(reason)),
            Ok(Err(RewriteError::Io(reason))) => Err(StoreError::Unavailable(format!("temporary storage: {reason}"))),
            Err(e) => Err(StoreError::Unavailable(format!("rewrite task: {e}"))),
        }
    }

    /// Deletes again, in order, the pages a dead worker recorded but did not
    /// checkpoint (a delete of what is already gone succeeds), counting each
    /// once, and moves the checkpoint past them.
    async fn recover_pages(&self, mut shard: Shard) -> Result<Shard, ShardStop> {
        for page in self.ledger.pages(&shard.request_id, shard.index).await? {
            if page.seq != shard.pages_done {
                // Counted already (or, out of order, never sent: listed again).
                self.ledger.drop_page(&shard.request_id, shard.index, page.seq).await?;
                continue;
            }
            for entry in &page.entries {
                ensure_in_prefix(&shard, &entry.key)?;
            }
            let deleted = match self.delete_all(&shard.bucket, &page.entries).await {
                Ok(deleted) => deleted,
                Err(ShardStop::PartlyRefused { reason, deleted }) => {
                    let mut next = shard.clone();
                    next.counts.add(&deleted);
                    next.version += 1;
                    self.ledger.update_shard(&next).await?;
                    self.drop_pages_from(&next, next.pages_done).await?;
                    return Err(ShardStop::Refused(reason));
                }
                Err(e) => return Err(e),
            };
            info!(request_id = %shard.request_id, shard = shard.index, seq = page.seq, "recovered a page of a dead worker");
            let mut next = shard.clone();
            next.counts.add(&deleted);
            next.pages_done += 1;
            next.cursor = page.after.clone();
            next.done = page.after.is_none();
            if next.done {
                next.lease = None;
            }
            next.version += 1;
            self.ledger.update_shard(&next).await?;
            self.ledger.drop_page(&shard.request_id, shard.index, page.seq).await?;
            shard = next;
        }
        Ok(shard)
    }

    async fn drop_pages_from(&self, shard: &Shard, seq: u64) -> Result<(), LedgerError> {
        for page in self.ledger.pages(&shard.request_id, shard.index).await? {
            if page.seq >= seq {
                self.ledger.drop_page(&shard.request_id, shard.index, page.seq).await?;
            }
        }
        Ok(())
    }

    /// Deletes a page, retrying the keys the store refused. Only what the
    /// store confirmed is counted.
    async fn delete_all(&self, bucket: &str, entries: &[Entry]) -> Result<Counts, ShardStop> {
        let mut pending: Vec<Entry> = entries.to_vec();
        let mut backoff = self.config.retry_backoff;
        for attempt in 0..=self.config.delete_retries {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            let mut failures = Vec::new();
            for chunk in pending.chunks(1000) {
                failures.extend(self.store.delete_batch(bucket, chunk).await?);
            }
            if !failures.is_empty() {
                warn!(bucket, refused = failures.len(), attempt, "DeleteObjects refused keys");
            }
            pending.retain(|e| failures.iter().any(|f| f.key == e.key && f.version_id == e.version_id));
            if attempt == self.config.delete_retries && !pending.is_empty() {
                let sample = failures
                    .iter()
                    .take(3)
                    .map(|f| format!("{} ({}: {})", f.key, f.code, f.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let confirmed = entries
                    .iter()
                    .filter(|e| !pending.iter().any(|p| p.key == e.key && p.version_id == e.version_id));
                return Err(ShardStop::PartlyRefused {
                    reason: format!(
                        "{} keys in bucket {bucket} could not be deleted after {} attempts: {sample}",
                        pending.len(),
                        self.config.delete_retries + 1
                    ),
                    deleted: count(confirmed),
                });
            }
        }
        Ok(count(entries.iter()))
    }

    /// `PURGING → VERIFYING` by this worker, or why another carries on.
    /// A conflicting write is judged again from a fresh read: only another
    /// worker's verification (the request then `VERIFYING`) means someone
    /// else verifies; any other write (a callback's, the deadline's) is
    /// retried, so the request is never left `PURGING` with nobody on it.
    async fn start_verification(
        &self,
        id: &RequestId,
        owner: &str,
    ) -> Result<Result<DeletionRequest, PurgeOutcome>, ServiceError> {
        retry_on_conflict(id, || async {
            let Some(current) = self.ledger.get(id).await? else {
                return Ok(Err(PurgeOutcome::NotFound));
            };
            let next = match current.begin_verification(self.clock.now(), owner, self.config.lease) {
                Ok(next) => next,
                Err(_) => {
                    return Ok(Err(match current.status {
                        Status::Verifying => PurgeOutcome::Busy,
                        status => PurgeOutcome::Settled { status },
                    }))
                }
            };
            if next.version == current.version {
                return Ok(Ok(next)); // this worker verifies already
            }
            self.ledger.update(&next).await?; // a conflict: judged again
            Ok(Ok(next))
        })
        .await
    }

    async fn verify_and_complete(&self, request: &DeletionRequest, owner: &str) -> Result<PurgeOutcome, ServiceError> {
        let shards = self.ledger.shards(&request.id).await?;
        let roots = roots(&shards);
        // A regulation keeps the prefixes' other data: there is no "nothing
        // left" to list for; each rewrite was checked as it was written.
        let listed = if request.scope.regulation().is_some() {
            Ok(Vec::new())
        } else {
            self.verify(&roots).await
        };
        match listed {
            Ok(leftovers) if leftovers.is_empty() => {}
            Ok(leftovers) => {
                // Purge each of those prefixes whole on the next attempt.
                let mut again = Vec::new();
                for (n, root) in leftovers.iter().enumerate() {
                    again.push(Shard {
                        request_id: request.id.clone(),
                        index: shards.len() as u32 + n as u32,
                        store: root.store.clone(),
                        bucket: root.bucket.clone(),
                        prefix: root.prefix.clone(),
                        root: root.prefix.clone(),
                        done: false,
                        cursor: None,
                        uploads_done: false,
                        counts: Counts::default(),
                        lease: None,
                        pages_done: 0,
                        rewrite: None,
                        version: 1,
                    });
                }
                self.ledger.insert_shards(&again).await?;
                let where_ = leftovers
                    .iter()
                    .map(|r| format!("s3://{}/{}", r.bucket, r.prefix))
                    .collect::<Vec<_>>()
                    .join(", ");
                return self
                    .fail(
                        &request.id,
                        owner,
                        &format!("verification found data left under {where_}"),
                    )
                    .await;
            }
            Err(e) => return self.fail(&request.id, owner, &e.to_string()).await,
        }
        let mut receipt = self.receipt(request, &shards);
        if let Some(signer) = &self.signer {
            // Unsigned is never completed: the attempt fails and is retried.
            sign_receipt(signer.as_ref(), &mut receipt).await?;
        }
        let next = request.complete(self.clock.now(), owner, receipt.clone())?;
        if let Err(e) = self.ledger.update(&next).await {
            return lease_or_err(e);
        }
        info!(request_id = %request.id, objects = receipt.totals.objects, versions = receipt.totals.versions,
              delete_markers = receipt.totals.delete_markers, "purge completed and verified");
        Ok(PurgeOutcome::Completed {
            receipt: Box::new(receipt),
        })
    }

    /// Lists every data-map prefix again, versions and uploads included.
    /// Returns those under which anything is left.
    async fn verify(&self, roots: &[PrefixReceipt]) -> Result<Vec<PrefixReceipt>, StoreError> {
        let mut leftovers = Vec::new();
        for root in roots {
            let page = self
                .store
                .list_every_version(&root.bucket, &root.prefix, None, 1)
                .await?;
            let uploads = self.store.list_uploads(&root.bucket, &root.prefix, None).await?;
            if !page.entries.is_empty() || !uploads.uploads.is_empty() {
                warn!(bucket = %root.bucket, prefix = %root.prefix, "verification found data left");
                leftovers.push(root.clone());
            }
        }
        Ok(leftovers)
    }

    fn receipt(&self, request: &DeletionRequest, shards: &[Shard]) -> Receipt {
        let now = self.clock.now();
        let prefixes = roots(shards);
        let mut totals = Counts::default();
        for p in &prefixes {
            totals.add(&p.deleted);
        }
        let verification = if request.scope.regulation().is_some() {
            format!(
                "every object version under {} prefix(es) was read; each holding the subjects' events was rewritten \
                 conditionally on the version read, or deleted by version id",
                prefixes.len()
            )
        } else {
            format!(
                "a listing of every version, delete marker and unfinished upload under {} prefix(es) found nothing",
                prefixes.len()
            )
        };
        Receipt {
            request_id: request.id.clone(),
            scope: request.scope.clone(),
            prefixes,
            totals,
            purge_started_at: request.purge_started_at.unwrap_or(now),
            purge_finished_at: now,
            verified_at: now,
            verification,
            signature: None,
        }
    }

    async fn fail(&self, id: &RequestId, owner: &str, reason: &str) -> Result<PurgeOutcome, ServiceError> {
        warn!(request_id = %id, reason, "purge failed");
        retry_on_conflict(id, || async {
            let current = self
                .ledger
                .get(id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
            let Ok(next) = current.fail(self.clock.now(), owner, reason) else {
                // Already failed, or verified by another worker.
                return Ok(PurgeOutcome::Settled { status: current.status });
            };
            self.ledger.update(&next).await?;
            Ok(PurgeOutcome::Failed {
                reason: reason.to_owned(),
            })
        })
        .await
    }
}

fn lease_or_err(e: LedgerError) -> Result<PurgeOutcome, ServiceError> {
    match e {
        LedgerError::Conflict => Ok(PurgeOutcome::LostLease),
        e => Err(e.into()),
    }
}

/// Sub-prefixes a data-map prefix is split into, at most.
const MAX_SPLIT: usize = 256;

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
fn count<'a>(entries: impl Iterator<Item = &'a Entry>) -> Counts {
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

/// An older version of a key, to delete by its id.
fn old_version(key: &str, version: String) -> Entry {
    Entry {
        key: key.to_owned(),
        version_id: Some(version),
        kind: EntryKind::Noncurrent,
        size: 0,
    }
}

/// Reports the malformed lines an object (or an older version of it)
/// kept. One that may hold a subject's event makes the object a failure,
/// named with the lines' numbers.
fn note_malformed(counts: &mut RewriteCounts, bucket: &str, key: &str, version: Option<&str>, report: &FilterReport) {
    let what = match version {
        Some(v) => format!("s3://{bucket}/{key} version {v}"),
        None => format!("s3://{bucket}/{key}"),
    };
    if report.malformed > 0 && version.is_none() {
        counts.malformed_lines += report.malformed;
        counts.note(format!(
            "{what}: {} line(s) are not JSON objects and were kept untouched (lines {:?})",
            report.malformed, report.malformed_at
        ));
    }
    if report.suspect > 0 {
        counts.objects_failed += 1;
        counts.note(format!(
            "{what}: {} line(s) could not be read and may hold the subjects' events; kept as they were (lines {:?})",
            report.suspect, report.suspect_at
        ));
    }
}

/// What one read (and write back) of a key's current version did.
enum Attempt {
    /// Gone meanwhile (deleted, or a delete marker now).
    Gone,
    /// Not rewritten; the counts say why.
    Failed,
    /// Larger than the room reserved for it: read again with more.
    Larger { size: u64 },
    /// Holds none of the subjects' events.
    Clean { read: Option<String>, report: FilterReport },
    Written {
        read: Option<String>,
        new: Option<String>,
        report: FilterReport,
    },
    /// Another writer changed it since it was read: nothing written.
    Changed { read: Option<String> },
}

/// What the reads and writes of one key's rewrite saw so far.
#[derive(Default)]
struct Seen {
    /// Versions read.
    read: Vec<String>,
    /// Versions read that held the subjects' events.
    holding: Vec<String>,
    /// The version written, if any.
    written: Option<String>,
    /// The filter's report on the last version read and settled.
    last: Option<FilterReport>,
}

/// What a rewrite does after an attempt.
enum Step {
    /// The key is gone: nothing to rewrite.
    Gone,
    /// Not rewritten; the counts say why.
    Stop,
    /// Read again (with room for this many bytes, if more).
    Again(Option<u64>),
    /// Settled for now: look for versions no read saw.
    Check,
}

impl Seen {
    fn take(&mut self, attempt: Attempt, counts: &mut RewriteCounts) -> Step {
        match attempt {
            Attempt::Gone => Step::Gone,
            Attempt::Failed => Step::Stop,
            Attempt::Larger { size } => Step::Again(Some(size)),
            Attempt::Changed { read } => {
                self.read.extend(read.clone());
                self.holding.extend(read);
                Step::Again(None)
            }
            Attempt::Clean { read, report } => {
                self.read.extend(read);
                self.last = Some(report);
                Step::Check
            }
            Attempt::Written { read, new, report } => {
                self.read.extend(read.clone());
                self.holding.extend(read);
                counts.objects_rewritten += 1;
                counts.events_removed += report.removed;
                self.written = new;
                self.last = Some(report);
                Step::Check
            }
        }
    }
}

/// Versions of a key that a rewrite never read.
#[derive(Default)]
struct Unread {
    /// The current version's size, if it is one of them.
    current: Option<u64>,
    /// Older ones, with their sizes.
    older: Vec<(String, u64)>,
}

/// Temporary storage a rewrite of an object of `size` bytes takes: the
/// object read, and the one written (recompressed, it may come out a
/// little larger).
fn rewrite_scratch(size: u64) -> u64 {
    size.saturating_mul(2)
        .saturating_add(size / 8)
        .saturating_add(64 * 1024)
}

/// Bytes per permit of the scratch budget (a semaphore counts in `u32`).
const SCRATCH_UNIT: u64 = 1024;

/// The function's temporary storage as a budget of bytes that the reads
/// and writes in flight share: each reserves what its files take before
/// it downloads anything, and gives it back once they are removed.
struct Scratch {
    permits: Arc<Semaphore>,
    /// The whole budget, in units.
    total: u64,
}

impl Scratch {
    fn new(bytes: u64) -> Scratch {
        let total = (bytes / SCRATCH_UNIT).min(u64::from(u32::MAX));
        Scratch {
            // Within `Semaphore::MAX_PERMITS` on every 64-bit target.
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Waits until `bytes` fit; `None` when they never can.
    async fn reserve(&self, bytes: u64) -> Option<OwnedSemaphorePermit> {
        let units = bytes.div_ceil(SCRATCH_UNIT).max(1);
        if units > self.total {
            return None;
        }
        // Never closed; `units` fits in `u32` since `total` does.
        self.permits.clone().acquire_many_owned(units as u32).await.ok()
    }
}

/// A store that lists a key outside the asked prefix is never trusted with
/// a delete.
fn ensure_in_prefix(shard: &Shard, key: &str) -> Result<(), ShardStop> {
    if key.starts_with(&shard.prefix) {
        Ok(())
    } else {
        Err(ShardStop::Refused(format!(
            "the store listed key {key:?} outside prefix {:?} of bucket {}; nothing of that page was deleted",
            shard.prefix, shard.bucket
        )))
    }
}
