//! Claiming a request and taking its shards: `SCHEDULED → PURGING` (or
//! `ON_HOLD` while a legal hold stands) by a conditional write, the plan
//! written once into the ledger, the fan-out of more workers, and a loop
//! that takes free shards one after another under a lease.
//!
//! - The plan is written once; a worker that finds shards reads them back.
//! - A shard is taken only with a conditional write of its lease; a lost
//!   write means another worker took it, and the next free one is tried.
//! - A worker near its time limit hands its shard back (lease expired at
//!   once) and arms a one-shot timer for a worker that continues.

use std::time::Instant;

use tracing::{info, warn};

use super::{PurgeOutcome, Purger, ShardStop};
use crate::error::{LedgerError, ServiceError};
use crate::ids::RequestId;
use crate::lifecycle::Claim;
use crate::model::{Counts, DeletionRequest, Shard, Status};
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

    /// The request's shards: planned once from the data map, then read back.
    pub(super) async fn plan(&self, request: &DeletionRequest) -> Result<Vec<Shard>, ServiceError> {
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
                    pending: None,
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
    pub(super) async fn split(&self, bucket: &str, prefix: &str) -> Vec<String> {
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
    pub(super) async fn fan_out(&self, id: &RequestId, shards: &[Shard]) {
        let open = shards.iter().filter(|s| !s.done).count() as u32;
        let extra = open.min(self.config.workers).saturating_sub(1);
        for n in 1..=extra {
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
    ) -> Result<Option<PurgeOutcome>, ServiceError> {
        let mut subjects: Option<Subjects> = None;
        loop {
            let shards = self.ledger.shards(&request.id).await?;
            if shards.iter().all(|s| s.done) {
                return Ok(None);
            }
            let now = self.clock.now();
            let Some(free) = shards.into_iter().find(|s| s.is_free(now)) else {
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
            let mine = free.claimed(owner, now, self.config.lease);
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
                self.purge_shard(mine, request.scope.workspace(), deadline).await
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
                Err(ShardStop::Held(shard)) => {
                    // Handed back; the next turn finds the hold and puts the
                    // request ON_HOLD.
                    match self.ledger.update_shard(&shard.handed_back()).await {
                        Ok(()) | Err(LedgerError::Conflict) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(ShardStop::OutOfTime(shard)) => {
                    let back = shard.handed_back();
                    self.ledger.update_shard(&back).await?;
                    self.timers
                        .wake(&request.id, Wake::HandOff(back.index), self.wake_at())
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
    pub(super) async fn release(&self, id: &RequestId, index: u32, owner: &str) {
        let Ok(shards) = self.ledger.shards(id).await else {
            return;
        };
        let Some(shard) = shards.into_iter().find(|s| s.index == index) else {
            return;
        };
        if shard.lease.as_ref().is_some_and(|l| l.owner == owner) {
            if let Err(e) = self.ledger.update_shard(&shard.handed_back()).await {
                warn!(request_id = %id, shard = index, error = %e, "could not release the shard");
            }
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

/// Sub-prefixes a data-map prefix is split into, at most.
pub(super) const MAX_SPLIT: usize = 256;
