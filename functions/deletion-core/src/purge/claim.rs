//! Claiming a request and taking its shards: `SCHEDULED → PURGING` (or
//! `ON_HOLD` while a legal hold stands) by a conditional write, the plan
//! written once into the ledger, the fan-out of more workers, and a loop
//! that takes free shards one after another under a lease.
//!
//! - The plan is written once, its count last; a worker that finds the
//!   count does not read the shards.
//! - A shard is found in O(1) reads whatever their number (`take`), and
//!   taken only with a conditional write of its lease; a lost write means
//!   another worker took it, and the next free one is tried.
//! - A worker near its time limit hands its shard back (lease expired at
//!   once) and arms a one-shot timer for a worker that continues.
//! - S3 throttling is back-pressure, never a failure: on a shard S3 kept
//!   throttling past the SDK's retries the worker's delete window halves
//!   and the lane waits with its lease (15 s doubling to 5 min), then goes
//!   on from the checkpoint; a wait that would cross the time limit hands
//!   the shard back to the worker's successor instead.
//! - Reads by time, not by shard: a lane reads the request (has it failed
//!   or moved on? a hold?) at its first shard, after a hold stopped one,
//!   and then once a minute; a worker counts free shards to start more at
//!   its first shard and then every 30 s. Each page's delete reads the hold
//!   itself, so a hold still bites within a page.

use tokio::time::Instant;

use chrono::{DateTime, Duration, Utc};

use tracing::{info, warn};

use super::take::Next;
use super::{PurgeOutcome, Purger, ShardStop};
use crate::datamap::PlannedPrefix;
use crate::error::{LedgerError, ServiceError, StoreError};
use crate::ids::RequestId;
use crate::lifecycle::Claim;
use crate::model::{DeletionRequest, Shard, Status};
use crate::ports::{Clock, Holds, Ledger, ObjectStore, Regulations, Timers, Wake};
use crate::regulation::Subjects;
use crate::retry::{raced, retry_on_conflict};

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    /// Takes the request with a conditional write (or joins a purge under
    /// way), or says why not. The flag tells whether this worker started it.
    pub(super) async fn claim(
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
    pub(super) async fn hold_on(
        &self,
        request: &DeletionRequest,
        owner: &str,
    ) -> Result<Option<Result<(), ()>>, ServiceError> {
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

    /// The request's shards, planned once from the data map; a plan is
    /// complete once its count is stored (after the shards).
    pub(super) async fn plan(&self, request: &DeletionRequest) -> Result<(), ServiceError> {
        if self.ledger.shards_planned(&request.id).await?.is_some() {
            return Ok(());
        }
        let existing = self.ledger.shards(&request.id).await?;
        if !existing.is_empty() {
            // Planned, but not counted yet (or before plans were counted).
            self.ledger.insert_shards(&existing).await?;
            return Ok(());
        }
        let mut shards: Vec<Shard> = Vec::new();
        for p in self.map.expand(&request.scope) {
            if let Some(prefixes) = self.subjects_own_prefixes(request, &p).await? {
                for prefix in prefixes {
                    let index = shards.len() as u32;
                    shards.push(Shard::planned(
                        &request.id,
                        index,
                        &p.store,
                        &p.bucket,
                        &prefix,
                        &p.prefix,
                    ));
                }
                continue;
            }
            let cuts = self.split(&p.bucket, &p.prefix).await;
            // One listing of the prefix's open uploads instead of one per
            // shard: with none, no shard lists them (one begun later is
            // found by the verification, which lists uploads too).
            let no_uploads = cuts.len() > 1 && self.no_uploads(&p.bucket, &p.prefix).await;
            for cut in cuts {
                let index = shards.len() as u32;
                shards.push(Shard {
                    after: cut.after,
                    upto: cut.upto,
                    uploads_done: no_uploads,
                    ..Shard::planned(&request.id, index, &p.store, &p.bucket, &cut.prefix, &p.prefix)
                });
            }
        }
        self.ledger.insert_shards(&shards).await?;
        Ok(())
    }

    /// A regulation's shards of a store whose `{user}` part comes right
    /// after the prefix the scope fixes (`{workspace}/users/{user}/`): one
    /// per subject, over that subject's own prefix, instead of one listing
    /// of the whole store, for up to `OWN_PREFIXES` subjects. An id with a
    /// `/` cannot be one segment of a key, so it holds nothing there.
    /// `None`: plan the data-map prefix as any other.
    async fn subjects_own_prefixes(
        &self,
        request: &DeletionRequest,
        planned: &PlannedPrefix,
    ) -> Result<Option<Vec<String>>, ServiceError> {
        let Some(store) = self
            .map
            .store(&planned.store)
            .filter(|s| s.user_type.is_some() && !s.user_case_insensitive)
        else {
            return Ok(None);
        };
        let follows = request
            .scope
            .bindings()
            .first()
            .and_then(|b| store.prefix_before(b, "user"))
            .is_some_and(|fixed| fixed == planned.prefix);
        let asked = request.scope.subject_count().unwrap_or_default();
        if request.scope.regulation().is_none() || !follows || asked > OWN_PREFIXES {
            return Ok(None);
        }
        let subjects = self.ledger.subjects(&request.id).await?;
        if subjects.ids().len() != asked {
            // The rewrite refuses such a regulation; plan it whole.
            return Ok(None);
        }
        let mut prefixes: Vec<String> = subjects
            .ids()
            .iter()
            .filter(|id| !id.as_str().contains('/'))
            .map(|id| format!("{}{}/", planned.prefix, id.as_str()))
            .collect();
        prefixes.sort();
        prefixes.dedup();
        Ok(Some(prefixes))
    }

    /// Whether no multipart upload is open under the prefix (an error says
    /// "not known": the shards then list their own).
    async fn no_uploads(&self, bucket: &str, prefix: &str) -> bool {
        match self.store.list_uploads(bucket, prefix, None).await {
            Ok(page) => page.uploads.is_empty() && page.next.is_none(),
            Err(e) => {
                warn!(bucket, prefix, error = %e, "could not list the open uploads; each shard lists its own");
                false
            }
        }
    }

    /// How a data-map prefix is shared among workers: by its sub-prefixes
    /// when everything under it sits in 2 to `range_width` of them; by
    /// contiguous key ranges of its sub-prefixes (`range_width` of them)
    /// when there are more, or keys sit directly under it too (the ranges
    /// cover those keys as well); a flat prefix of more than a page by key
    /// ranges found by probing (`flat`); else whole.
    /// Verification lists the prefix itself, so data written under a new
    /// sub-prefix is still found.
    pub(super) async fn split(&self, bucket: &str, prefix: &str) -> Vec<Cut> {
        let whole = vec![Cut::whole(prefix)];
        if self.config.workers.max(1) * self.lanes() < 2 {
            // One lane gains nothing from shards, and each costs a listing.
            return whole;
        }
        let children = match self.store.list_children(bucket, prefix, MAX_CHILDREN).await {
            Ok(c) => c,
            Err(e) => {
                // The purge of the whole prefix meets (and reports) it.
                warn!(bucket, prefix, error = %e, "could not list sub-prefixes; not splitting");
                return whole;
            }
        };
        if children.prefixes.len() < 2 {
            if !children.direct_entries {
                return whole;
            }
            return match self.cut_flat(bucket, prefix).await {
                Ok(Some(cuts)) => cuts,
                Ok(None) => whole,
                Err(e) => {
                    warn!(bucket, prefix, error = %e, "could not cut the prefix into key ranges; not splitting");
                    whole
                }
            };
        }
        if !children
            .prefixes
            .iter()
            .all(|sub| sub.starts_with(prefix) && sub.ends_with('/') && sub.len() > prefix.len())
        {
            warn!(
                bucket,
                prefix, "the store listed sub-prefixes outside the prefix; not splitting"
            );
            return whole;
        }
        let width = self.range_width(children.prefixes.len());
        if !children.direct_entries && !children.truncated && children.prefixes.len() <= width {
            return children.prefixes.iter().map(|sub| Cut::whole(sub)).collect();
        }
        ranges(prefix, &children.prefixes, width)
    }

    /// How many shards a prefix of `children` sub-prefixes is cut into:
    /// four per lane of the purge's workers, at most `MAX_SPLIT`, and at
    /// least one per `CHILDREN_PER_RANGE` of them, up to `MIN_RANGES` (a
    /// prefix of 10,000 sources is a platform's workspace: 64 at least,
    /// whatever the lanes; 1,000 sources for one worker of four lanes are
    /// 16 ranges of about 6,000 objects, not 64 of 1,500). A shard still large is
    /// split at its cursor later, so a few shards per lane keep every lane
    /// busy without tiny shards: each costs a partial page of listing and
    /// delete and a claim's ledger writes, which at a page or two per
    /// sub-prefix would cost more than its pages.
    pub(super) fn range_width(&self, children: usize) -> usize {
        let lanes = self.config.workers.max(1) as usize * self.lanes() as usize;
        let floor = (children / CHILDREN_PER_RANGE).clamp(2, MIN_RANGES);
        (lanes * 4).clamp(floor, MAX_SPLIT)
    }

    /// Starts more workers while free shards outnumber the lanes of the
    /// workers holding one, up to the configured number. Any worker does it
    /// as it takes shards (`top_up_due`), not only the first: a lost fan-out
    /// timer, or workers that stopped, never leave the purge to one worker.
    /// A slot's timer still pending keeps its name, so arming it again
    /// starts no one more. The shards held are counted from the back of the
    /// index (latest lease first), not from a sample of its front: with
    /// more free shards than the sample, every held one was missed and each
    /// top-up started the workers again beside those running. None while
    /// S3 asks this worker to slow down (`window`).
    pub(super) async fn top_up(&self, id: &RequestId, taken: u32) {
        if self.window.backing_off() {
            return; // S3 asks for less: no more workers now
        }
        let lanes = self.lanes();
        let cap = self.config.workers.max(1) * lanes;
        // Free shards from the front of the index, held ones from its back:
        // two reads of at most twice the workers' lanes, whatever the shards.
        let (open, latest) = match tokio::try_join!(
            self.ledger.open_shards(id, cap * 2),
            self.ledger.latest_leases(id, cap + 1)
        ) {
            Ok(read) => read,
            Err(e) => {
                warn!(request_id = %id, error = %e, "could not count the free shards; starting no worker");
                return;
            }
        };
        let now = self.clock.now();
        let free = open.iter().filter(|o| o.index != taken && o.looks_free(now)).count() as u32;
        // Shards held (this one too, which the index may not show yet), in
        // workers of `lanes` each.
        let held = latest.iter().filter(|o| o.index != taken && !o.looks_free(now)).count() as u32 + 1;
        let want = (held + free).div_ceil(lanes).min(self.config.workers);
        let held = held.div_ceil(lanes);
        for n in held..want {
            // Best effort: the sweep re-drives a purge nobody works on.
            if let Err(e) = self.timers.wake(id, Wake::Worker(n), self.wake_at()).await {
                warn!(request_id = %id, worker = n, error = %e, "could not start a worker");
            }
        }
    }

    /// Takes free shards one after another until none is left. `None` when
    /// every shard is done; otherwise why this worker stopped.
    pub(super) async fn work(
        &self,
        request: &DeletionRequest,
        owner: &str,
        deadline: Option<Instant>,
        hand_off: &HandOff,
    ) -> Result<Option<PurgeOutcome>, ServiceError> {
        let mut subjects: Option<Subjects> = None;
        let mut first_pass = true;
        // When this lane last read the request: again after `RECHECK_EVERY`.
        let mut checked: Option<DateTime<Utc>> = None;
        loop {
            let free = match self.next_free(&request.id, &mut first_pass).await? {
                Next::Free(shard) => *shard,
                Next::AllDone => return Ok(None),
                Next::Busy => return Ok(Some(PurgeOutcome::Busy)),
            };
            let now = self.clock.now();
            // The request may have failed or moved on under another worker,
            // or a legal hold may have been placed: read at the lane's first
            // shard, after a hold stopped one, and once a minute (each
            // page's delete reads the hold itself, so no page waits on this).
            if checked.is_none_or(|at| now - at >= RECHECK_EVERY) {
                match self.ledger.get(&request.id).await? {
                    Some(current) if current.status == Status::Purging => {
                        match self.hold_on(&current, owner).await? {
                            Some(Ok(())) => return Ok(Some(PurgeOutcome::OnHold)),
                            Some(Err(())) => continue, // changed meanwhile: judge again
                            None => checked = Some(now),
                        }
                    }
                    Some(current) => return Ok(Some(PurgeOutcome::Settled { status: current.status })),
                    None => return Ok(Some(PurgeOutcome::NotFound)),
                }
            }
            let mine = free.claimed(owner, now, self.config.lease);
            match self.ledger.update_shard(&mine).await {
                Ok(()) => {}
                Err(LedgerError::Conflict) => continue, // another worker took it
                Err(e) => return Err(e.into()),
            }
            if self.top_up_due(&request.id, now) {
                self.top_up(&request.id, mine.index).await;
            }
            match self
                .work_shard(request, mine, owner, &mut subjects, deadline, hand_off)
                .await
            {
                Ok(()) => {}
                Err(ShardStop::Yielded) => return Ok(Some(PurgeOutcome::HandedOff)),
                Err(ShardStop::SteppedDown(shard)) => {
                    let back = shard.handed_back();
                    self.ledger.update_shard(&back).await?;
                    if self.others_at_work(&request.id, back.index).await {
                        info!(request_id = %request.id, shard = back.index, "S3 asks for less at one delete in flight: this lane stops");
                        return Ok(Some(PurgeOutcome::Busy));
                    }
                }
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
                Err(ShardStop::Held(shard)) => {
                    // Handed back; the next turn reads the request, finds the
                    // hold and puts the request ON_HOLD.
                    checked = None;
                    match self.ledger.update_shard(&shard.handed_back()).await {
                        Ok(()) | Err(LedgerError::Conflict) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(ShardStop::OutOfTime(shard)) => {
                    let back = shard.handed_back();
                    self.ledger.update_shard(&back).await?;
                    hand_off.note(back.index, self.wake_at());
                    info!(request_id = %request.id, shard = back.index, "handed the shard back before the time limit");
                    return Ok(Some(PurgeOutcome::HandedOff));
                }
            }
        }
    }

    /// Whether to count free shards and start workers now: at the first
    /// shard a worker takes of a request, then at most every
    /// `TOP_UP_EVERY` (a worker started takes longer than that to arrive;
    /// a split, which adds a free shard, tops up at once).
    fn top_up_due(&self, id: &RequestId, now: DateTime<Utc>) -> bool {
        let mut last = self.topped_up.lock().unwrap_or_else(|p| p.into_inner());
        let due = match &*last {
            Some((of, at)) => of != id || now - *at >= TOP_UP_EVERY,
            None => true,
        };
        if due {
            *last = Some((id.clone(), now));
        }
        due
    }

    /// Gives a shard this worker holds back (best effort: else its lease
    /// expires), so a retry can take it at once.
    pub(super) async fn release(&self, id: &RequestId, index: u32, owner: &str) {
        let Ok(Some(shard)) = self.ledger.shard(id, index).await else {
            return;
        };
        if shard.lease.as_ref().is_some_and(|l| l.owner == owner) {
            if let Err(e) = self.ledger.update_shard(&shard.handed_back()).await {
                warn!(request_id = %id, shard = index, error = %e, "could not release the shard");
            }
        }
    }

    /// One turn of a lane on `mine`, its lease taken: a regulation's
    /// rewrite or a purge.
    async fn turn(
        &self,
        request: &DeletionRequest,
        mine: Shard,
        subjects: &mut Option<Subjects>,
        deadline: Option<Instant>,
    ) -> Result<(), ShardStop> {
        if request.scope.regulation().is_none() {
            return self.purge_shard(mine, request.scope.workspace(), deadline).await;
        }
        if subjects.is_none() {
            let stored = self.ledger.subjects(&request.id).await?;
            // Never a rewrite with fewer ids than asked: it would find
            // nothing to remove and report the subjects deleted.
            let asked = request.scope.subject_count().unwrap_or_default();
            if stored.len() != asked {
                return Err(ShardStop::Refused(format!(
                    "the regulation names {asked} subject(s) but the ledger holds {} of their ids: nothing rewritten",
                    stored.len()
                )));
            }
            *subjects = Some(stored);
        }
        let ids = subjects.as_ref().map(Subjects::ids).unwrap_or_default();
        let subject_type = request.scope.subject_type().cloned().unwrap_or_default();
        self.rewrite_shard(mine, &subject_type, ids, deadline).await
    }

    /// Works `mine` to its end, waiting S3's throttling out with the lease
    /// kept, so that the held shards other workers count stay true and no
    /// more workers are started into the throttling: after each throttled
    /// turn the worker's window halves, the lane waits (`throttle_pause`)
    /// and goes on from the shard's checkpoint. When the wait would cross
    /// the time limit, the shard is handed back and the worker's successor
    /// noted for after the wait (`Yielded`).
    async fn work_shard(
        &self,
        request: &DeletionRequest,
        mine: Shard,
        owner: &str,
        subjects: &mut Option<Subjects>,
        deadline: Option<Instant>,
        hand_off: &HandOff,
    ) -> Result<(), ShardStop> {
        let index = mine.index;
        let mut worked = self.turn(request, mine, subjects, deadline).await;
        let mut throttled = 0u32;
        while let Err(ShardStop::Store(StoreError::Throttled(reason))) = &worked {
            self.window.slowed();
            let pause = throttle_pause(throttled);
            throttled = throttled.saturating_add(1);
            warn!(request_id = %request.id, shard = index, pause_s = pause.as_secs(), %reason, "S3 asked for less: this lane waits, keeping its shard");
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|left| left < pause + self.config.handoff_margin) {
                self.release(&request.id, index, owner).await;
                let after = Duration::from_std(pause)
                    .unwrap_or(Duration::MAX)
                    .max(self.config.wake_lead);
                hand_off.note(index, self.clock.now() + after);
                return Err(ShardStop::Yielded);
            }
            tokio::time::sleep(pause).await;
            let now = self.clock.now();
            worked = match self.ledger.shard(&request.id, index).await? {
                Some(shard) if shard.held_by(owner, now) => self.turn(request, shard, subjects, deadline).await,
                _ => Err(ShardStop::LostLease),
            };
        }
        worked
    }

    /// Whether a shard other than `index` is under a live lease (one index
    /// read): a lane may stop then, the purge goes on without it.
    async fn others_at_work(&self, id: &RequestId, index: u32) -> bool {
        let now = self.clock.now();
        match self.ledger.latest_leases(id, 2).await {
            Ok(held) => held.iter().any(|o| o.index != index && !o.looks_free(now)),
            Err(_) => false,
        }
    }

    /// When a timer that starts another worker fires: now, plus the lead.
    fn wake_at(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now() + self.config.wake_lead
    }

    pub(super) fn out_of_time(&self, deadline: Option<Instant>) -> bool {
        deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) < self.config.handoff_margin)
    }
}

/// The timer a worker arms for its successor when lanes stop before the
/// time limit: one per worker, however many of its lanes handed a shard
/// back, so the workers' number stays what `workers` says (one timer per
/// lane would multiply the workers by the lanes at every time limit).
#[derive(Debug, Default)]
pub(super) struct HandOff(std::sync::Mutex<Option<(u32, DateTime<Utc>)>>);

impl HandOff {
    /// A lane handed shard `index` back and wants a successor at `at`:
    /// the earliest wish is kept.
    fn note(&self, index: u32, at: DateTime<Utc>) {
        let mut wish = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if wish.is_none_or(|(_, then)| at < then) {
            *wish = Some((index, at));
        }
    }

    /// The successor's timer, if any lane asked for one.
    pub(super) fn wake(&self) -> Option<(Wake, DateTime<Utc>)> {
        let wish = *self.0.lock().unwrap_or_else(|p| p.into_inner());
        wish.map(|(index, at)| (Wake::HandOff(index), at))
    }
}

/// How long a lane waits after S3 throttled its shard `n` times in a row:
/// 15 s, doubling, at most 5 minutes (S3 adds capacity over minutes).
fn throttle_pause(n: u32) -> std::time::Duration {
    std::time::Duration::from_secs(15u64 << n.min(5)).min(std::time::Duration::from_secs(300))
}

/// How often a lane reads the request again while it takes shards.
const RECHECK_EVERY: Duration = Duration::seconds(60);

/// Most subjects of a regulation planned as one shard each over their own
/// prefix in a per-user store; a larger regulation lists the store's
/// prefix once (a shard per subject would cost more ledger writes than
/// the listing saves).
const OWN_PREFIXES: usize = 64;
/// How often a worker counts free shards to start more workers.
const TOP_UP_EVERY: Duration = Duration::seconds(30);

/// Shards a data-map prefix is split into, at most.
pub(super) const MAX_SPLIT: usize = 256;
/// Key ranges a very wide prefix (`MIN_RANGES` × `CHILDREN_PER_RANGE`
/// sub-prefixes or more: a platform's workspace) is cut into, at least.
pub(super) const MIN_RANGES: usize = 64;
/// Below `MIN_RANGES`, a prefix is cut into at least one range per this
/// many sub-prefixes, however few lanes there are: the width a prefix is
/// likely to need grows with its sub-prefixes, without a cliff at one
/// count.
pub(super) const CHILDREN_PER_RANGE: usize = 128;
/// Sub-prefixes read to plan key ranges, at most (a hundred listings);
/// keys under any beyond fall in the last range.
pub(super) const MAX_CHILDREN: usize = 100_000;

/// A shard's share of a data-map prefix: a prefix, and a key range in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cut {
    pub(super) prefix: String,
    pub(super) after: Option<String>,
    pub(super) upto: Option<String>,
}

impl Cut {
    fn whole(prefix: &str) -> Cut {
        Cut {
            prefix: prefix.to_owned(),
            after: None,
            upto: None,
        }
    }
}

/// `children` (sorted sub-prefixes of `prefix`) in at most `width`
/// contiguous runs, each a key range of `prefix` that ends at the next
/// run's first sub-prefix (a key equal to it is this run's; every key under
/// it sorts after it). The ranges follow one another and leave both ends
/// open: every key under `prefix` lies in exactly one, keys directly under
/// it and under sub-prefixes never listed included.
pub(super) fn ranges(prefix: &str, children: &[String], width: usize) -> Vec<Cut> {
    let n = children.len();
    let runs = n.clamp(1, width.max(1));
    let mut cuts = Vec::with_capacity(runs);
    let mut after: Option<String> = None;
    for run in 1..runs {
        let bound = children[run * n / runs].clone();
        cuts.push(Cut {
            prefix: prefix.to_owned(),
            after: after.replace(bound.clone()),
            upto: Some(bound),
        });
    }
    cuts.push(Cut {
        prefix: prefix.to_owned(),
        after,
        upto: None,
    });
    cuts
}
