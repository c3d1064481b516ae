//! A regulation's shards: the archive objects that hold the subjects'
//! events are rewritten without them, instead of deleting prefixes.
//!
//! - A page is listed, its objects rewritten (`objects`, several at a
//!   time), and the older versions that hold the subjects' events recorded
//!   as a pending page before the checkpoint moves past it; once listed to
//!   the end, those versions are deleted page by page.
//! - A refused delete is that object's failure, counted and named; never
//!   the shard's.
//! - A line the filter cannot read that may hold a subject makes its
//!   object a failure, named with the line numbers (see `crate::rewrite`).
//! - In a store with a `{user}` part, nothing is read or rewritten: see
//!   `subjects` (the subjects' own prefixes deleted whole).

use std::sync::Arc;
use tokio::time::Instant;

use futures::stream::{self, StreamExt};

use super::{Purger, ShardStop};
use crate::error::StoreError;
use crate::model::Shard;
use crate::ports::{Clock, Entry, EntryKind, Holds, Ledger, ObjectStore, PendingPage, Regulations, Timers};
use crate::regulation::{RewriteCounts, SubjectType, UserId};
use crate::rewrite::{EventFilter, Identity};

/// Object versions listed per page of a regulation's rewrite (each is
/// read, and checkpointed with its page).
const REWRITE_PAGE: i32 = 100;

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    /// A regulation's shard: reads every object version under the prefix
    /// and rewrites the current ones without the subjects' events,
    /// checkpointing after each page. The older versions that held any are
    /// deleted only once the whole prefix is listed (recorded in the ledger
    /// per page until then), so no listing cursor ever names a version that
    /// is gone. Redoing a page (after a killed worker) finds the rewritten
    /// objects clean: nothing is rewritten twice.
    pub(super) async fn rewrite_shard(
        &self,
        mut shard: Shard,
        subject_type: &SubjectType,
        subjects: &[UserId],
        deadline: Option<Instant>,
    ) -> Result<(), ShardStop> {
        if self.map.store(&shard.store).is_some_and(|s| s.user_type.is_some()) {
            return self.subject_prefixes(shard, subjects, deadline).await;
        }
        let records = self.map.store(&shard.store).and_then(|s| s.user_records.as_ref());
        let Some((paths, fold_case)) = records.and_then(|r| r.identity(subject_type)) else {
            return Err(ShardStop::Refused(format!(
                "store {} declares no {subject_type} in its user records in the data map",
                shard.store
            )));
        };
        let filter = Arc::new(EventFilter::of(&[Identity {
            paths,
            ids: subjects.iter().map(|s| s.as_str().to_owned()).collect(),
            fold_case,
        }]));
        while shard.pages_done == 0 || shard.cursor.is_some() {
            if self.out_of_time(deadline) {
                return Err(ShardStop::OutOfTime(Box::new(shard)));
            }
            shard = self.rewrite_page(shard, &filter).await?;
        }
        // Listed to the end: now the older versions holding the subjects' events go.
        let shard = self.delete_old_versions(shard, true).await?;
        self.ledger.update_shard(&shard.finished()).await?;
        Ok(())
    }

    /// Rewrites the objects of the page after the shard's cursor and
    /// records the older versions to delete (a pending page) before the
    /// checkpoint that moves past it.
    async fn rewrite_page(&self, shard: Shard, filter: &Arc<EventFilter>) -> Result<Shard, ShardStop> {
        let page = self
            .list_in_range(&shard, shard.cursor.as_deref(), REWRITE_PAGE)
            .await?;
        let results: Vec<Result<(RewriteCounts, Vec<Entry>), StoreError>> = stream::iter(
            page.entries
                .iter()
                .filter(|e| e.kind != EntryKind::DeleteMarker)
                .map(|e| self.rewrite_entry(&shard.bucket, e, filter)),
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
        let next = shard.rewrite_page_done(&counts, page.next, self.clock.now(), self.config.lease);
        self.ledger.update_shard(&next).await?;
        Ok(next)
    }

    /// Deletes the older versions the pages recorded, a page at a time;
    /// with `judged`, a refused delete is that object's failure, counted
    /// and named (else whoever lists again after judges what is left).
    pub(super) async fn delete_old_versions(&self, mut shard: Shard, judged: bool) -> Result<Shard, ShardStop> {
        for page in self.ledger.pages(&shard.request_id, shard.index).await? {
            let mut counts = RewriteCounts::default();
            for chunk in page.entries.chunks(1000) {
                let refused = self.store.delete_batch(&shard.bucket, chunk).await?;
                counts.versions_deleted += (chunk.len() - refused.len().min(chunk.len())) as u64;
                for f in refused.into_iter().filter(|_| judged) {
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
            let next = shard.rewrite_counted(&counts, self.clock.now(), self.config.lease);
            self.ledger.update_shard(&next).await?;
            self.ledger.drop_page(&shard.request_id, shard.index, page.seq).await?;
            shard = next;
        }
        Ok(shard)
    }

    /// One listed version: the current one is rewritten without the
    /// subjects' events; an older one that holds any is deleted.
    pub(super) async fn rewrite_entry(
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
}
