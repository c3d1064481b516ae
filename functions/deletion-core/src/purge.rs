//! The purge: claim a request whose grace has ended, plan its shards into
//! the ledger, delete everything under each prefix with checkpoints, verify
//! by listing again, and complete with a receipt.

use std::time::Duration as StdDuration;

use chrono::Duration;
use tracing::{info, warn};

use crate::datamap::DataMap;
use crate::error::{LedgerError, ServiceError, StoreError};
use crate::ids::RequestId;
use crate::lifecycle::Claim;
use crate::model::{Counts, DeletionRequest, PrefixReceipt, Receipt, Shard, Status};
use crate::ports::{Clock, Entry, EntryKind, Ledger, ObjectStore};

/// Tuning of the purge.
#[derive(Debug, Clone)]
pub struct PurgeConfig {
    /// How long a claim keeps other workers off (longer than one invocation).
    pub lease: Duration,
    /// Entries per listing page and per DeleteObjects call (at most 1,000).
    pub page_size: i32,
    /// How often a DeleteObjects batch is retried for the keys it refused.
    pub delete_retries: u32,
    /// Pause before the first retry (doubled each time).
    pub retry_backoff: StdDuration,
}

impl Default for PurgeConfig {
    fn default() -> Self {
        PurgeConfig {
            lease: Duration::minutes(16),
            page_size: 1000,
            delete_retries: 3,
            retry_backoff: StdDuration::from_millis(200),
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
    /// Another worker holds the request.
    Busy,
    /// Nothing to do: the request is already in this state.
    Settled {
        status: Status,
    },
    /// This worker lost its lease to another one and stopped.
    LostLease,
}

/// Why a shard could not be finished.
enum ShardError {
    Store(StoreError),
    Refused(String),
    LostLease,
    Ledger(LedgerError),
}

impl From<StoreError> for ShardError {
    fn from(e: StoreError) -> Self {
        ShardError::Store(e)
    }
}

impl From<LedgerError> for ShardError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Conflict => ShardError::LostLease,
            e => ShardError::Ledger(e),
        }
    }
}

pub struct Purger<L, S, C> {
    ledger: L,
    store: S,
    clock: C,
    map: DataMap,
    config: PurgeConfig,
}

impl<L: Ledger, S: ObjectStore, C: Clock> Purger<L, S, C> {
    pub fn new(ledger: L, store: S, clock: C, map: DataMap, config: PurgeConfig) -> Self {
        Purger {
            ledger,
            store,
            clock,
            map,
            config,
        }
    }

    /// Runs (or resumes) the purge of a request as worker `owner`.
    pub async fn run(
        &self,
        id: &RequestId,
        owner: &str,
        retry: bool,
    ) -> Result<PurgeOutcome, ServiceError> {
        let mut request = match self.claim(id, owner, retry).await? {
            Ok(request) => request,
            Err(outcome) => return Ok(outcome),
        };
        let shards = self.plan(&request).await?;
        let mut done = Vec::with_capacity(shards.len());
        for shard in shards {
            match self.purge_shard(shard).await {
                Ok(shard) => done.push(shard),
                Err(ShardError::LostLease) => return Ok(PurgeOutcome::LostLease),
                Err(ShardError::Ledger(e)) => return Err(e.into()),
                Err(ShardError::Store(e)) => {
                    return self.fail(&request, owner, &e.to_string()).await
                }
                Err(ShardError::Refused(reason)) => {
                    return self.fail(&request, owner, &reason).await
                }
            }
        }
        if request.status == Status::Purging {
            let next = request.begin_verification(self.clock.now(), owner)?;
            if let Err(e) = self.ledger.update(&next).await {
                return lease_or_err(e);
            }
            request = next;
        }
        match self.verify(&done).await {
            Ok(leftovers) if leftovers.is_empty() => {}
            Ok(leftovers) => {
                // Purge those prefixes again on the next attempt.
                for shard in done.iter().filter(|s| leftovers.contains(&s.index)) {
                    let mut again = shard.clone();
                    again.done = false;
                    again.cursor = None;
                    again.uploads_done = false;
                    again.version += 1;
                    if let Err(e) = self.ledger.update_shard(&again).await {
                        return lease_or_err(e);
                    }
                }
                let where_ = done
                    .iter()
                    .filter(|s| leftovers.contains(&s.index))
                    .map(|s| format!("s3://{}/{}", s.bucket, s.prefix))
                    .collect::<Vec<_>>()
                    .join(", ");
                return self
                    .fail(
                        &request,
                        owner,
                        &format!("verification found data left under {where_}"),
                    )
                    .await;
            }
            Err(e) => return self.fail(&request, owner, &e.to_string()).await,
        }
        let receipt = self.receipt(&request, &done);
        let next = request.complete(self.clock.now(), owner, receipt.clone())?;
        if let Err(e) = self.ledger.update(&next).await {
            return lease_or_err(e);
        }
        info!(request_id = %id, objects = receipt.totals.objects, versions = receipt.totals.versions,
              delete_markers = receipt.totals.delete_markers, "purge completed and verified");
        Ok(PurgeOutcome::Completed {
            receipt: Box::new(receipt),
        })
    }

    /// Takes the request with a conditional write, or says why not.
    async fn claim(
        &self,
        id: &RequestId,
        owner: &str,
        retry: bool,
    ) -> Result<Result<DeletionRequest, PurgeOutcome>, ServiceError> {
        for _ in 0..5 {
            let Some(current) = self.ledger.get(id).await? else {
                return Ok(Err(PurgeOutcome::NotFound));
            };
            match current.claim(self.clock.now(), owner, self.config.lease, retry) {
                Claim::Granted { next, resumed } => match self.ledger.update(&next).await {
                    Ok(()) => {
                        info!(request_id = %id, resumed, "purge claimed");
                        return Ok(Ok(*next));
                    }
                    Err(LedgerError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                },
                Claim::NotDue { grace_ends_at } => {
                    info!(request_id = %id, %grace_ends_at, "grace not over; nothing to do");
                    return Ok(Err(PurgeOutcome::NotDue));
                }
                Claim::Busy { lease } => {
                    info!(request_id = %id, holder = %lease.owner, "another worker holds the purge");
                    return Ok(Err(PurgeOutcome::Busy));
                }
                Claim::Settled { status } => {
                    info!(request_id = %id, %status, "nothing to do");
                    return Ok(Err(PurgeOutcome::Settled { status }));
                }
            }
        }
        Err(ServiceError::Contention { id: id.to_string() })
    }

    /// The request's shards: planned once from the data map, then read back.
    async fn plan(&self, request: &DeletionRequest) -> Result<Vec<Shard>, ServiceError> {
        let existing = self.ledger.shards(&request.id).await?;
        if !existing.is_empty() {
            return Ok(existing);
        }
        let shards: Vec<Shard> = self
            .map
            .expand(&request.scope)
            .into_iter()
            .enumerate()
            .map(|(i, p)| Shard {
                request_id: request.id.clone(),
                index: i as u32,
                store: p.store,
                bucket: p.bucket,
                prefix: p.prefix,
                done: false,
                cursor: None,
                uploads_done: false,
                counts: Counts::default(),
                version: 1,
            })
            .collect();
        self.ledger.insert_shards(&shards).await?;
        Ok(self.ledger.shards(&request.id).await?)
    }

    async fn purge_shard(&self, mut shard: Shard) -> Result<Shard, ShardError> {
        // Uploads first: an upload completed later would leave an object behind.
        while !shard.done && !shard.uploads_done {
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
        while !shard.done {
            let page = self
                .store
                .list_page(
                    &shard.bucket,
                    &shard.prefix,
                    shard.cursor.as_deref(),
                    self.config.page_size,
                )
                .await?;
            for entry in &page.entries {
                ensure_in_prefix(&shard, &entry.key)?;
            }
            let deleted = self.delete_all(&shard.bucket, &page.entries).await?;
            let mut next = shard.clone();
            next.counts.add(&deleted);
            next.cursor = page.next;
            next.done = next.cursor.is_none();
            next.version += 1;
            self.ledger.update_shard(&next).await?;
            shard = next;
        }
        Ok(shard)
    }

    /// Deletes a page, retrying the keys the store refused. Only what the
    /// store confirmed is counted.
    async fn delete_all(&self, bucket: &str, entries: &[Entry]) -> Result<Counts, ShardError> {
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
                warn!(
                    bucket,
                    refused = failures.len(),
                    attempt,
                    "DeleteObjects refused keys"
                );
            }
            pending.retain(|e| {
                failures
                    .iter()
                    .any(|f| f.key == e.key && f.version_id == e.version_id)
            });
            if attempt == self.config.delete_retries && !pending.is_empty() {
                let sample = failures
                    .iter()
                    .take(3)
                    .map(|f| format!("{} ({}: {})", f.key, f.code, f.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(ShardError::Refused(format!(
                    "{} keys in bucket {bucket} could not be deleted after {} attempts: {sample}",
                    pending.len(),
                    self.config.delete_retries + 1
                )));
            }
        }
        let mut counts = Counts::default();
        for e in entries {
            match e.kind {
                EntryKind::Current => counts.objects += 1,
                EntryKind::Noncurrent => counts.versions += 1,
                EntryKind::DeleteMarker => counts.delete_markers += 1,
            }
            counts.bytes += e.size;
        }
        Ok(counts)
    }

    /// Lists every prefix again, versions and uploads included. Returns the
    /// indexes of the shards under which anything is left.
    async fn verify(&self, shards: &[Shard]) -> Result<Vec<u32>, StoreError> {
        let mut leftovers = Vec::new();
        for shard in shards {
            let page = self
                .store
                .list_page(&shard.bucket, &shard.prefix, None, 1)
                .await?;
            let uploads = self
                .store
                .list_uploads(&shard.bucket, &shard.prefix, None)
                .await?;
            if !page.entries.is_empty() || !uploads.uploads.is_empty() {
                warn!(bucket = %shard.bucket, prefix = %shard.prefix, "verification found data left");
                leftovers.push(shard.index);
            }
        }
        Ok(leftovers)
    }

    fn receipt(&self, request: &DeletionRequest, shards: &[Shard]) -> Receipt {
        let now = self.clock.now();
        let mut totals = Counts::default();
        let prefixes = shards
            .iter()
            .map(|s| {
                totals.add(&s.counts);
                PrefixReceipt {
                    store: s.store.clone(),
                    bucket: s.bucket.clone(),
                    prefix: s.prefix.clone(),
                    deleted: s.counts,
                }
            })
            .collect();
        Receipt {
            request_id: request.id.clone(),
            scope: request.scope.clone(),
            prefixes,
            totals,
            purge_started_at: request.purge_started_at.unwrap_or(now),
            purge_finished_at: now,
            verified_at: now,
            verification: format!(
                "a listing of every version, delete marker and unfinished upload under {} prefix(es) found nothing",
                shards.len()
            ),
        }
    }

    async fn fail(
        &self,
        request: &DeletionRequest,
        owner: &str,
        reason: &str,
    ) -> Result<PurgeOutcome, ServiceError> {
        warn!(request_id = %request.id, reason, "purge failed");
        // Re-read: the shard checkpoints did not touch the request item.
        let current = self
            .ledger
            .get(&request.id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(request.id.to_string()))?;
        let next = current.fail(self.clock.now(), owner, reason)?;
        match self.ledger.update(&next).await {
            Ok(()) => Ok(PurgeOutcome::Failed {
                reason: reason.to_owned(),
            }),
            Err(e) => lease_or_err(e),
        }
    }
}

fn lease_or_err(e: LedgerError) -> Result<PurgeOutcome, ServiceError> {
    match e {
        LedgerError::Conflict => Ok(PurgeOutcome::LostLease),
        e => Err(e.into()),
    }
}

/// A store that lists a key outside the asked prefix is never trusted with
/// a delete.
fn ensure_in_prefix(shard: &Shard, key: &str) -> Result<(), ShardError> {
    if key.starts_with(&shard.prefix) {
        Ok(())
    } else {
        Err(ShardError::Refused(format!(
            "the store listed key {key:?} outside prefix {:?} of bucket {}; nothing of that page was deleted",
            shard.prefix, shard.bucket
        )))
    }
}
