//! Deleting a shard page by page: uploads aborted first, then every
//! version and delete marker listed and deleted by version id.
//!
//! - A key listed outside the shard's prefix stops the purge before
//!   anything of that page is deleted.
//! - Several DeleteObjects calls are in flight while the next page is
//!   listed. Before a page's delete is sent, the shard's checkpoint records
//!   it as a key range with its counts (`Shard::page_recorded`, a few
//!   hundred bytes in the shard's own item); once its delete is confirmed,
//!   in page order, the checkpoint counts it (`Shard::page_done`). Two
//!   small writes per page, whatever its size.
//! - A successor of a worker that died with pages in flight lists the
//!   recorded range again, deletes what is left of it and counts the
//!   range's recorded counts once (`recover_range`): nothing listed is
//!   skipped, nothing gone is deleted again, and nothing past the range
//!   is touched by the recovery.
//! - Keys a DeleteObjects answer refuses are retried, then fail the
//!   shard; they are never counted as deleted. What was confirmed is
//!   counted and taken off the range, which stays recorded: the retry
//!   recovers it and counts what is left of it.
//! - A listing that went by a cursor and found the end is not trusted to
//!   be the end unless it goes by key order (`EntryPage::key_ordered`; a
//!   store may list nothing after a version marker just deleted): the
//!   shard is then done only once a listing from its start finds nothing.
//! - A shard that ran `split_after_pages` pages in one turn with more to
//!   list is cut halfway between what it listed and its end, if anything
//!   lies past that point (`split_ahead`): the second half becomes a new
//!   shard for another worker, in one transaction with this shard's
//!   checkpoint and the plan's count.
//! - A legal hold bites within one page: each page's delete reads the hold
//!   first and is not sent while one stands. The shard then stops at its
//!   checkpoint; pages recorded after it are recovered (and counted once)
//!   by whoever resumes it after the release.

use std::collections::VecDeque;
use tokio::time::Instant;

use futures::stream::{FuturesOrdered, StreamExt};
use tracing::{info, warn};

use super::flat::midpoint;
use super::window::SLOW_DOWN;
use super::{count, Purger, ShardStop};
use crate::error::StoreError;
use crate::ids::WorkspaceId;
use crate::model::{Counts, Shard};
use crate::ports::{start_after, Clock, Entry, EntryPage, Holds, Ledger, ObjectStore, Regulations, Timers};

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
        let mut shard = self.recover_range(shard).await?;
        let mut in_flight = FuturesOrdered::new();
        let mut turn = Turn::new(&shard);
        let mut stepping_down = false;
        loop {
            while turn.may_list(in_flight.len(), self.window.size()) {
                stepping_down = stepping_down || self.window.step_down();
                if self.out_of_time(deadline) || stepping_down {
                    break;
                }
                let from = turn.from(in_flight.is_empty());
                let by_cursor = from.is_some();
                let page = self.list_in_range(&shard, from.as_deref(), MAX_PAGE).await?;
                let recorded = shard.page_recorded(&page.entries, &count(page.entries.iter()));
                self.ledger.update_shard(&recorded).await?;
                shard = recorded;
                turn.listed(&page, by_cursor);
                let bucket = shard.bucket.clone();
                in_flight.push_back(async move {
                    if self.hold_stands(workspace).await? {
                        return Ok(None);
                    }
                    self.delete_all(&bucket, &page.entries).await.map(Some)
                });
            }
            let deleted = match in_flight.next().await {
                None => break,
                Some(Ok(Some(deleted))) => deleted,
                Some(stopped) => return Err(self.stop(shard, stopped, &mut in_flight).await),
            };
            let (after, last) = turn.confirmed();
            let next = shard.page_done(&deleted, after, last, self.clock.now(), self.config.lease);
            self.ledger.update_shard(&next).await?;
            shard = next;
            if let Some(from) = turn.split_due(self.config.split_after_pages) {
                if let Some(kept) = self.split_ahead(&shard, &from).await? {
                    shard = kept;
                }
            }
        }
        if shard.done {
            Ok(())
        } else if stepping_down {
            Err(ShardStop::SteppedDown(Box::new(shard)))
        } else {
            Err(ShardStop::OutOfTime(Box::new(shard)))
        }
    }

    /// Why the shard stops after a page's delete did not go through, once
    /// the deletes behind it are in: a legal hold (the pages in flight stay
    /// recorded, to be recovered), keys refused (what was confirmed is
    /// counted, the rest stays recorded for the retry), or the error.
    async fn stop<F>(
        &self,
        shard: Shard,
        stopped: Result<Option<Counts>, ShardStop>,
        in_flight: &mut FuturesOrdered<F>,
    ) -> ShardStop
    where
        F: std::future::Future<Output = Result<Option<Counts>, ShardStop>>,
    {
        let mut confirmed = Counts::default();
        while let Some(more) = in_flight.next().await {
            match more {
                Ok(Some(c)) | Err(ShardStop::PartlyRefused { deleted: c, .. }) => confirmed.add(&c),
                // Not sent (a hold), or failed: left in the range.
                Ok(None) | Err(_) => {}
            }
        }
        match stopped {
            Ok(_) => {
                info!(request_id = %shard.request_id, shard = shard.index, "legal hold: the shard stops at its checkpoint");
                ShardStop::Held(Box::new(shard))
            }
            Err(ShardStop::PartlyRefused {
                reason,
                deleted,
                slow_down,
            }) => {
                confirmed.add(&deleted);
                match self.ledger.update_shard(&shard.partly_counted(&confirmed)).await {
                    Ok(()) => refused(reason, slow_down),
                    Err(e) => e.into(),
                }
            }
            Err(e) => e,
        }
    }

    /// Cuts the shard at a point between what it listed (`from`) and its
    /// end, halfway to the nearest end found to have keys past the point
    /// (at most `SPLIT_PROBES` one-key listings), and offers the second
    /// half to another worker: the shard as it goes on, or `None` (nothing
    /// found to split off, or the ledger changed meanwhile).
    async fn split_ahead(&self, shard: &Shard, from: &str) -> Result<Option<Shard>, ShardStop> {
        let mut end = shard.upto.clone().unwrap_or_else(|| format!("{}~", shard.prefix));
        let mut point = None;
        for _ in 0..SPLIT_PROBES {
            let Some(mid) = midpoint(from, &end) else {
                return Ok(None);
            };
            let probe = self
                .store
                .list_page(&shard.bucket, &shard.prefix, Some(&start_after(&mid)), 1)
                .await?;
            match probe.entries.first() {
                Some(e)
                    if e.key.starts_with(&shard.prefix) && e.key.as_str() > mid.as_str() && !shard.is_past(&e.key) =>
                {
                    point = Some(mid);
                    break;
                }
                // Nothing past it: the keys left sit below it.
                _ => end = mid,
            }
        }
        let Some(point) = point else {
            return Ok(None);
        };
        let Some(count) = self.ledger.shards_planned(&shard.request_id).await? else {
            return Ok(None);
        };
        let (mine, new) = shard.split_at(&point, count);
        match self.ledger.split_shard(&mine, &new).await {
            Ok(()) => {
                info!(request_id = %shard.request_id, shard = shard.index, new = new.index, point = %point, "split the shard at its cursor");
                self.top_up(&shard.request_id, shard.index).await;
                Ok(Some(mine))
            }
            // Another split took the number, or the lease is lost (the next
            // checkpoint says so): go on unsplit.
            Err(crate::error::LedgerError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
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
            let mut aborted = 0;
            for upload in &page.uploads {
                ensure_in_prefix(&shard, &upload.key)?;
                // Another key range's upload is that shard's to abort.
                if shard.holds_key(&upload.key) {
                    self.store.abort_upload(&shard.bucket, upload).await?;
                    aborted += 1;
                }
            }
            let next = shard.uploads_aborted(aborted, page.next);
            self.ledger.update_shard(&next).await?;
            shard = next;
        }
        Ok(shard)
    }

    /// Lists the page after `from` (none: from the start of the shard's
    /// range), keeping only the shard's range: a page that reaches past
    /// it ends the listing. A key outside the prefix stops the shard
    /// before anything of the page is recorded or deleted.
    pub(super) async fn list_in_range(
        &self,
        shard: &Shard,
        from: Option<&str>,
        max: i32,
    ) -> Result<EntryPage, ShardStop> {
        let start = shard.after.as_deref().map(start_after);
        let from = from.or(start.as_deref());
        let mut page = self
            .store
            .list_page(&shard.bucket, &shard.prefix, from, self.config.page_size.min(max))
            .await?;
        for entry in &page.entries {
            ensure_in_prefix(shard, &entry.key)?;
        }
        // At or before the lower bound: the shard before's.
        page.entries
            .retain(|e| shard.after.as_deref().is_none_or(|a| e.key.as_str() > a));
        if page.entries.iter().any(|e| shard.is_past(&e.key)) {
            page.entries.retain(|e| !shard.is_past(&e.key));
            page.next = None;
        }
        Ok(page)
    }

    /// The pages a dead worker recorded but did not count: their range is
    /// listed again from the shard's start (everything before the
    /// checkpoint is gone), what is left of it deleted, and the range's
    /// recorded counts added once. The listing stops at the first entry
    /// past the range; entries of the range's last key that its pages did
    /// not list are left to the listing that follows.
    pub(super) async fn recover_range(&self, shard: Shard) -> Result<Shard, ShardStop> {
        let Some(range) = shard.pending.clone() else {
            return Ok(shard);
        };
        let mut from: Option<String> = None;
        let mut confirmed = Counts::default();
        loop {
            let page = self.list_in_range(&shard, from.as_deref(), MAX_PAGE).await?;
            let past = page.entries.iter().any(|e| range.is_past(&e.key));
            let left: Vec<Entry> = page
                .entries
                .into_iter()
                .filter(|e| range.holds(&e.key, e.version_id.as_deref()))
                .collect();
            if !left.is_empty() {
                info!(request_id = %shard.request_id, shard = shard.index, left = left.len(), "deleting what a dead worker left of its pages");
                match self.delete_all(&shard.bucket, &left).await {
                    Ok(deleted) => confirmed.add(&deleted),
                    Err(ShardStop::PartlyRefused {
                        reason,
                        deleted,
                        slow_down,
                    }) => {
                        // The range stays: the retry recovers what is left of it.
                        confirmed.add(&deleted);
                        self.ledger.update_shard(&shard.partly_counted(&confirmed)).await?;
                        return Err(refused(reason, slow_down));
                    }
                    Err(e) => return Err(e),
                }
            }
            match page.next {
                _ if past => break,
                None => break,
                // A page deleted from: list from the start again, as the
                // cursor may name an entry now gone.
                Some(_) if !left.is_empty() => from = None,
                Some(next) => from = Some(next),
            }
        }
        let next = shard.recovered(self.clock.now(), self.config.lease);
        self.ledger.update_shard(&next).await?;
        Ok(next)
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
            let heard = self.window.heard(self.store.slow_downs());
            if heard || failures.iter().any(|f| f.code == SLOW_DOWN) {
                self.window.slowed();
                warn!(
                    bucket,
                    in_flight = self.window.size(),
                    "S3 asked to slow down; fewer deletes in flight"
                );
            } else if attempt == 0 {
                self.window.cleared();
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
                    slow_down: failures.iter().all(|f| f.code == SLOW_DOWN),
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

/// Why a shard stops on keys the store kept refusing, once what it
/// confirmed is counted: S3 asking for less is back-pressure
/// (`StoreError::Throttled`), anything else a refusal that fails the request.
fn refused(reason: String, slow_down: bool) -> ShardStop {
    if slow_down {
        ShardStop::Store(StoreError::Throttled(reason))
    } else {
        ShardStop::Refused(reason)
    }
}

/// Where a shard's listing stands in one worker's turn on it.
struct Turn {
    /// Where a listing ahead of the deletes in flight resumes.
    cursor: Option<String>,
    /// Listed to the end, from the start.
    done: bool,
    /// A listing by cursor reached the end: list from the start once
    /// nothing is in flight before believing it.
    confirm_end: bool,
    /// Where the listing stood after each page in flight, in order.
    listed_to: VecDeque<Option<String>>,
    /// The greatest key listed, and pages confirmed since the last split.
    listed_max: String,
    since_split: u64,
}

impl Turn {
    fn new(shard: &Shard) -> Turn {
        Turn {
            cursor: shard.cursor.clone(),
            done: shard.done,
            confirm_end: false,
            listed_to: VecDeque::new(),
            listed_max: String::new(),
            since_split: 0,
        }
    }

    /// Whether to list another page, with `in_flight` deletes out of `window`.
    fn may_list(&self, in_flight: usize, window: usize) -> bool {
        !self.done && in_flight < window && (!self.confirm_end || in_flight == 0)
    }

    /// Where the next page starts. Everything listed before is deleted once
    /// nothing is in flight: the listing starts over, and what it finds is
    /// what is left. (A cursor names the last entry listed, which a delete
    /// may have removed: some stores then list nothing after it.) Only
    /// pages listed ahead of deletes in flight go by the cursor.
    fn from(&self, nothing_in_flight: bool) -> Option<String> {
        if nothing_in_flight {
            None
        } else {
            self.cursor.clone()
        }
    }

    fn listed(&mut self, page: &EntryPage, by_cursor: bool) {
        if let Some(top) = page.entries.iter().map(|e| e.key.as_str()).max() {
            if top > self.listed_max.as_str() {
                self.listed_max = top.to_owned();
            }
        }
        self.cursor = page.next.clone();
        // An end found by cursor is believed where the listing goes by key.
        let trusted = !by_cursor || page.key_ordered;
        self.done = self.cursor.is_none() && trusted;
        self.confirm_end = self.cursor.is_none() && !trusted;
        self.listed_to.push_back(self.cursor.clone());
    }

    /// The oldest page in flight confirmed: where the listing stood after
    /// it, and whether it was the last.
    fn confirmed(&mut self) -> (Option<String>, bool) {
        self.since_split += 1;
        let after = self.listed_to.pop_front().flatten();
        let last = after.is_none() && self.listed_to.is_empty() && self.done;
        (after, last)
    }

    /// Where a split would start, once `every` pages were confirmed since
    /// the last one and more is left to list.
    fn split_due(&mut self, every: u64) -> Option<String> {
        if every == 0 || self.since_split < every || self.done || self.listed_max.is_empty() {
            return None;
        }
        self.since_split = 0;
        Some(self.listed_max.clone())
    }
}

/// One-key listings a split may spend to find where the keys left are.
const SPLIT_PROBES: usize = 16;

/// The most entries a listing page or a DeleteObjects call takes.
const MAX_PAGE: i32 = 1000;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn page(next: Option<&str>, key_ordered: bool) -> EntryPage {
        EntryPage {
            entries: Vec::new(),
            next: next.map(str::to_owned),
            key_ordered,
        }
    }

    fn turn() -> Turn {
        Turn::new(&Shard::planned(
            &crate::ids::RequestId::new(),
            0,
            "archive",
            "b",
            "acme/",
            "acme/",
        ))
    }

    #[test]
    fn an_end_found_by_cursor_is_believed_only_from_a_key_ordered_listing() {
        // Listed from the start: the end is the end, whatever the store.
        for key_ordered in [false, true] {
            let mut t = turn();
            t.listed(&page(None, key_ordered), false);
            assert!(t.done && !t.confirm_end);
        }
        // By cursor: a version listing's end is confirmed from the start,
        // with nothing in flight; a key-ordered one's is not.
        let mut t = turn();
        t.listed(&page(Some("c1"), false), false);
        t.listed(&page(None, false), true);
        assert!(!t.done && t.confirm_end);
        assert!(!t.may_list(1, 8) && t.may_list(0, 8));
        assert_eq!(t.from(true), None);
        let mut t = turn();
        t.listed(&page(Some("c1"), true), false);
        t.listed(&page(None, true), true);
        assert!(t.done && !t.confirm_end);
        assert!(!t.may_list(0, 8));
        // Both pages confirmed: the second was the last.
        assert_eq!(t.confirmed(), (Some("c1".to_owned()), false));
        assert_eq!(t.confirmed(), (None, true));
    }
}
