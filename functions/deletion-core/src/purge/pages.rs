//! Deleting a shard page by page: uploads aborted first, then every
//! version and delete marker listed and deleted by version id.
//!
//! - A key listed outside the shard's prefix stops the purge before
//!   anything of that page is deleted.
//! - Several DeleteObjects calls are in flight while the next page is
//!   listed; checkpoints (cursor and counts) advance in page order, and a
//!   page in flight is written to the ledger first, so a killed worker's
//!   successor deletes it again (`recover_pages`).
//! - Keys a DeleteObjects answer refuses are retried, then fail the
//!   shard; they are never counted as deleted.
//! - A legal hold bites within one page: each page's delete reads the hold
//!   first and is not sent while one stands. The shard then stops at its
//!   last checkpoint; pages recorded after it are deleted again (and
//!   counted once) by whoever resumes it after the release.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Instant;

use futures::stream::{FuturesOrdered, StreamExt};
use tracing::{info, warn};

use super::{count, Purger, ShardStop};
use crate::error::LedgerError;
use crate::ids::WorkspaceId;
use crate::model::{Counts, Shard};
use crate::ports::{Clock, Entry, Holds, Ledger, ObjectStore, PendingPage, Regulations, Timers};

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    /// Purges one shard this worker holds, checkpointing after each page;
    /// stops (`ShardStop::Held`) at the first page a legal hold on
    /// `workspace` keeps from being deleted.
    pub(super) async fn purge_shard(
        &self,
        shard: Shard,
        workspace: Option<&WorkspaceId>,
        deadline: Option<Instant>,
    ) -> Result<(), ShardStop> {
        // Uploads first: an upload completed later would leave an object behind.
        let shard = self.abort_uploads(shard, deadline).await?;
        let mut shard = self.recover_pages(shard).await?;
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
                let seq = shard.pages_done + listed_to.len() as u64;
                let page = self.list_pending(&shard, from, seq).await?;
                cursor = page.after.clone();
                listing_done = cursor.is_none();
                listed_to.push_back(cursor.clone());
                let bucket = shard.bucket.clone();
                in_flight.push_back(async move {
                    if self.hold_stands(workspace).await? {
                        return Ok(None);
                    }
                    self.delete_all(&bucket, &page.entries).await.map(Some)
                });
            }
            let Some(deleted) = in_flight.next().await else {
                break;
            };
            let deleted = match deleted {
                Ok(Some(deleted)) => deleted,
                Ok(None) => {
                    // Deletes in flight behind it read the hold too; each one
                    // that went out anyway is recorded, deleted again and
                    // counted once on the resume.
                    while in_flight.next().await.is_some() {}
                    info!(request_id = %shard.request_id, shard = shard.index, "legal hold: the shard stops at its checkpoint");
                    return Err(ShardStop::Held(Box::new(shard)));
                }
                Err(ShardStop::PartlyRefused { reason, deleted }) => {
                    self.count_refused(&shard, deleted, &mut in_flight).await?;
                    return Err(ShardStop::Refused(reason));
                }
                Err(e) => return Err(e),
            };
            let after = listed_to.pop_front().flatten();
            let last = after.is_none() && listed_to.is_empty() && listing_done;
            let next = shard.page_done(&deleted, after, last, self.clock.now(), self.config.lease);
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

    /// Whether a legal hold stands on `workspace` (read before each page's
    /// delete).
    async fn hold_stands(&self, workspace: Option<&WorkspaceId>) -> Result<bool, ShardStop> {
        match workspace {
            Some(workspace) => Ok(self.ledger.hold(workspace).await?.is_some()),
            None => Ok(false),
        }
    }

    /// Aborts the shard's open multipart uploads, a page at a time, each
    /// page checkpointed.
    async fn abort_uploads(&self, mut shard: Shard, deadline: Option<Instant>) -> Result<Shard, ShardStop> {
        while !shard.uploads_done {
            if self.out_of_time(deadline) {
                return Err(ShardStop::OutOfTime(Box::new(shard)));
            }
            let page = self
                .store
                .list_uploads(&shard.bucket, &shard.prefix, shard.cursor.as_deref())
                .await?;
            for upload in &page.uploads {
                ensure_in_prefix(&shard, &upload.key)?;
                self.store.abort_upload(&shard.bucket, upload).await?;
            }
            let next = shard.uploads_aborted(page.uploads.len() as u64, page.next);
            self.ledger.update_shard(&next).await?;
            shard = next;
        }
        Ok(shard)
    }

    /// Lists the page after `from` and records it as pending (sequence
    /// `seq`) before any of it is deleted. A key outside the prefix stops
    /// the shard first.
    async fn list_pending(&self, shard: &Shard, from: Option<&str>, seq: u64) -> Result<PendingPage, ShardStop> {
        let page = self
            .store
            .list_page(&shard.bucket, &shard.prefix, from, self.config.page_size)
            .await?;
        for entry in &page.entries {
            ensure_in_prefix(shard, &entry.key)?;
        }
        let record = PendingPage {
            request_id: shard.request_id.clone(),
            shard: shard.index,
            seq,
            entries: page.entries,
            after: page.next,
        };
        self.ledger.put_page(&record).await?;
        Ok(record)
    }

    /// A page the store partly refused: counts what it did delete, in this
    /// page and in the pages still in flight, keeping the cursor where it
    /// was; the pages are listed again on the retry, so their records go.
    async fn count_refused<F>(
        &self,
        shard: &Shard,
        deleted: Counts,
        in_flight: &mut FuturesOrdered<F>,
    ) -> Result<(), ShardStop>
    where
        F: Future<Output = Result<Option<Counts>, ShardStop>>,
    {
        let mut counted = deleted;
        while let Some(more) = in_flight.next().await {
            match more {
                Ok(Some(c)) | Err(ShardStop::PartlyRefused { deleted: c, .. }) => counted.add(&c),
                // Not sent (a hold), or failed: listed again on the retry.
                Ok(None) | Err(_) => {}
            }
        }
        let next = shard.partly_counted(&counted);
        self.ledger.update_shard(&next).await?;
        // Counted: the retry lists these pages again instead.
        self.drop_pages_from(&next, next.pages_done).await?;
        Ok(())
    }

    /// Deletes again, in order, the pages a dead worker recorded but did not
    /// checkpoint (a delete of what is already gone succeeds), counting each
    /// once, and moves the checkpoint past them.
    pub(super) async fn recover_pages(&self, mut shard: Shard) -> Result<Shard, ShardStop> {
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
                    let next = shard.partly_counted(&deleted);
                    self.ledger.update_shard(&next).await?;
                    self.drop_pages_from(&next, next.pages_done).await?;
                    return Err(ShardStop::Refused(reason));
                }
                Err(e) => return Err(e),
            };
            info!(request_id = %shard.request_id, shard = shard.index, seq = page.seq, "recovered a page of a dead worker");
            let last = page.after.is_none();
            let next = shard.page_done(&deleted, page.after.clone(), last, self.clock.now(), self.config.lease);
            self.ledger.update_shard(&next).await?;
            self.ledger.drop_page(&shard.request_id, shard.index, page.seq).await?;
            shard = next;
        }
        Ok(shard)
    }

    pub(super) async fn drop_pages_from(&self, shard: &Shard, seq: u64) -> Result<(), LedgerError> {
        for page in self.ledger.pages(&shard.request_id, shard.index).await? {
            if page.seq >= seq {
                self.ledger.drop_page(&shard.request_id, shard.index, page.seq).await?;
            }
        }
        Ok(())
    }

    /// Deletes a page, retrying the keys the store refused. Only what the
    /// store confirmed is counted.
    pub(super) async fn delete_all(&self, bucket: &str, entries: &[Entry]) -> Result<Counts, ShardStop> {
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
}

/// A store that lists a key outside the asked prefix is never trusted with
/// a delete.
pub(super) fn ensure_in_prefix(shard: &Shard, key: &str) -> Result<(), ShardStop> {
    if key.starts_with(&shard.prefix) {
        Ok(())
    } else {
        Err(ShardStop::Refused(format!(
            "the store listed key {key:?} outside prefix {:?} of bucket {}; nothing of that page was deleted",
            shard.prefix, shard.bucket
        )))
    }
}
