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
//! - In a store with a `{user}` part, nothing is read or rewritten: every
//!   version and delete marker under a subject's prefix is recorded the
//!   same way and deleted once the listing ends (`subject_prefixes`);
//!   the range is then listed again for versions written meanwhile
//!   (`delete_late_arrivals`): deleted, or the shard's named failure.

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

/// Entries listed per page of a store with per-user prefixes (only their
/// keys are looked at).
const USER_PAGE: i32 = 1000;

/// Times the range of a per-user shard is listed again for versions
/// written under a subject's prefix while it was deleted.
const LATE_ROUNDS: usize = 2;

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
        let shard = self.delete_old_versions(shard).await?;
        self.ledger.update_shard(&shard.finished()).await?;
        Ok(())
    }

    /// A regulation's shard of a store with per-user prefixes: lists the
    /// shard's range and records, page by page, every entry (current,
    /// older or delete marker) of a key under a subject's `{user}` part;
    /// once listed to the end they are deleted by version id. Other keys
    /// are never touched, whatever they are named.
    async fn subject_prefixes(
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
        let wanted: std::collections::BTreeSet<&str> = subjects.iter().map(UserId::as_str).collect();
        while shard.pages_done == 0 || shard.cursor.is_some() {
            if self.out_of_time(deadline) {
                return Err(ShardStop::OutOfTime(Box::new(shard)));
            }
            let page = self.list_in_range(&shard, shard.cursor.as_deref(), USER_PAGE).await?;
            let doomed: Vec<Entry> = page
                .entries
                .into_iter()
                .filter(|e| store.user_of(&e.key).is_some_and(|user| wanted.contains(user)))
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
        let shard = self.delete_old_versions(shard).await?;
        let shard = self.delete_late_arrivals(shard, &store, &wanted).await?;
        self.ledger.update_shard(&shard.finished()).await?;
        Ok(())
    }

    /// Lists the shard's range once more after its deletes: a version
    /// written under a subject's prefix meanwhile is deleted too, up to
    /// `LATE_ROUNDS` times; one still there after is the shard's failure,
    /// named, so the regulation never reads as finished while data of a
    /// subject remains.
    async fn delete_late_arrivals(
        &self,
        mut shard: Shard,
        store: &crate::datamap::Store,
        wanted: &std::collections::BTreeSet<&str>,
    ) -> Result<Shard, ShardStop> {
        for round in 0..=LATE_ROUNDS {
            let left = self.subjects_entries(&shard, store, wanted).await?;
            if left.is_empty() {
                break;
            }
            let mut counts = RewriteCounts::default();
            if round == LATE_ROUNDS {
                counts.objects_failed += left.len() as u64;
                for e in &left {
                    counts.note(format!(
                        "s3://{}/{}: written under a subject's prefix while it was deleted, still there",
                        shard.bucket, e.key
                    ));
                }
            } else {
                for chunk in left.chunks(1000) {
                    let refused = self.store.delete_batch(&shard.bucket, chunk).await?;
                    counts.versions_deleted += (chunk.len() - refused.len().min(chunk.len())) as u64;
                }
            }
            shard = shard.rewrite_counted(&counts, self.clock.now(), self.config.lease);
            self.ledger.update_shard(&shard).await?;
        }
        Ok(shard)
    }

    /// Every entry of the shard's range under a subject's `{user}` part.
    async fn subjects_entries(
        &self,
        shard: &Shard,
        store: &crate::datamap::Store,
        wanted: &std::collections::BTreeSet<&str>,
    ) -> Result<Vec<Entry>, ShardStop> {
        let (mut found, mut cursor) = (Vec::new(), None::<String>);
        loop {
            let page = self.list_in_range(shard, cursor.as_deref(), USER_PAGE).await?;
            found.extend(
                page.entries
                    .into_iter()
                    .filter(|e| store.user_of(&e.key).is_some_and(|user| wanted.contains(user))),
            );
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(found),
            }
        }
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
    /// a refused delete is that object's failure, counted and named.
    async fn delete_old_versions(&self, mut shard: Shard) -> Result<Shard, ShardStop> {
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
