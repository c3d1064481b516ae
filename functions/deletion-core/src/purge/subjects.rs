//! A regulation's shard of a store with per-user prefixes (`{user}` in its
//! layout): the subjects' own prefixes are deleted whole; nothing is read
//! or rewritten, and no other key is touched, whatever it is named.
//!
//! - Open multipart uploads under a subject's prefix are aborted first:
//!   one completed later would leave an object behind.
//! - The shard's range is listed page by page; each entry (current, older
//!   or delete marker) of a subject's key is recorded as a pending page
//!   before the checkpoint moves past it, and deleted by version id once
//!   the listing ends (no listing cursor ever names a version gone).
//! - The range is then listed again (`LATE_ROUNDS` times at most): what a
//!   writer put under a subject's prefix meanwhile, or a delete refused,
//!   is deleted; what is still there after the last round is the shard's
//!   failure, one named per key, so the regulation never reads as finished
//!   while a subject's data remains. This judgement is the only one: the
//!   recorded deletes count no failures of their own.
//! - Notes name keys with their `{user}` segment replaced: they are kept
//!   after the subjects' ids are forgotten.

use std::collections::BTreeSet;
use tokio::time::Instant;

use super::{Purger, ShardStop};
use crate::datamap::Store;
use crate::model::Shard;
use crate::ports::{Clock, Entry, Holds, Ledger, ObjectStore, PendingPage, Regulations, Timers};
use crate::regulation::{RewriteCounts, UserId};

/// Entries listed per page (only their keys are looked at).
const USER_PAGE: i32 = 1000;

/// Times the range is listed again after the deletes.
const LATE_ROUNDS: usize = 2;

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    /// Deletes the subjects' own prefixes in the shard's range.
    pub(super) async fn subject_prefixes(
        &self,
        mut shard: Shard,
        subjects: &[UserId],
        deadline: Option<Instant>,
    ) -> Result<(), ShardStop> {
        let Some(store) = self.map.store(&shard.store).cloned() else {
            return Err(ShardStop::Refused(format!(
                "store {} is not in the data map",
                shard.store
            )));
        };
        let wanted = store.subject_ids(subjects.iter().map(UserId::as_str));
        if shard.pages_done == 0 {
            self.abort_subjects_uploads(&shard, &store, &wanted).await?;
        }
        while shard.pages_done == 0 || shard.cursor.is_some() {
            if self.out_of_time(deadline) {
                return Err(ShardStop::OutOfTime(Box::new(shard)));
            }
            let page = self.list_in_range(&shard, shard.cursor.as_deref(), USER_PAGE).await?;
            let doomed: Vec<Entry> = page
                .entries
                .into_iter()
                .filter(|e| store.is_subjects(&e.key, &wanted))
                .collect();
            if !doomed.is_empty() {
                self.ledger
                    .put_page(&PendingPage {
                        request_id: shard.request_id.clone(),
                        shard: shard.index,
                        seq: shard.pages_done,
                        entries: doomed,
                        after: None,
                    })
                    .await?;
            }
            let next = shard.rewrite_page_done(
                &RewriteCounts::default(),
                page.next,
                self.clock.now(),
                self.config.lease,
            );
            self.ledger.update_shard(&next).await?;
            shard = next;
        }
        let shard = self.delete_old_versions(shard, false).await?;
        let shard = self.delete_late_arrivals(shard, &store, &wanted, deadline).await?;
        self.ledger.update_shard(&shard.finished()).await?;
        Ok(())
    }

    /// Aborts the open uploads of subjects' keys under the shard's prefix.
    async fn abort_subjects_uploads(
        &self,
        shard: &Shard,
        store: &Store,
        wanted: &BTreeSet<String>,
    ) -> Result<(), ShardStop> {
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .store
                .list_uploads(&shard.bucket, &shard.prefix, cursor.as_deref())
                .await?;
            for upload in page.uploads.iter().filter(|u| store.is_subjects(&u.key, wanted)) {
                self.store.abort_upload(&shard.bucket, upload).await?;
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Lists the range again after the deletes, page by page: what is
    /// found of the subjects' is deleted, and after the last round is the
    /// shard's named failure.
    async fn delete_late_arrivals(
        &self,
        mut shard: Shard,
        store: &Store,
        wanted: &BTreeSet<String>,
        deadline: Option<Instant>,
    ) -> Result<Shard, ShardStop> {
        for round in 0..=LATE_ROUNDS {
            let (mut found, mut cursor) = (0usize, None::<String>);
            loop {
                if self.out_of_time(deadline) {
                    // The next worker lists again from the start.
                    return Err(ShardStop::OutOfTime(Box::new(shard)));
                }
                let page = self.list_in_range(&shard, cursor.as_deref(), USER_PAGE).await?;
                let left: Vec<Entry> = page
                    .entries
                    .into_iter()
                    .filter(|e| store.is_subjects(&e.key, wanted))
                    .collect();
                found += left.len();
                if !left.is_empty() {
                    let counts = self.late_page(&shard, store, &left, round == LATE_ROUNDS).await?;
                    shard = shard.rewrite_counted(&counts, self.clock.now(), self.config.lease);
                    self.ledger.update_shard(&shard).await?;
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            if found == 0 {
                break;
            }
        }
        Ok(shard)
    }

    /// One page of entries found again: deleted (a refusal is left for the
    /// next round), or on the last round counted and named as failures.
    async fn late_page(
        &self,
        shard: &Shard,
        store: &Store,
        left: &[Entry],
        last: bool,
    ) -> Result<RewriteCounts, ShardStop> {
        let mut counts = RewriteCounts::default();
        if last {
            counts.objects_failed += left.len() as u64;
            for e in left {
                counts.note(format!(
                    "s3://{}/{}: still there after {LATE_ROUNDS} more deletes (refused, or written again meanwhile)",
                    shard.bucket,
                    store.without_user(&e.key)
                ));
            }
            return Ok(counts);
        }
        let refused = self.store.delete_batch(&shard.bucket, left).await?;
        counts.versions_deleted += (left.len() - refused.len().min(left.len())) as u64;
        Ok(counts)
    }
}
