//! One object of a regulation's shard: its current version rewritten
//! without the subjects' events (conditionally on the version read), and
//! the versions written meanwhile scrubbed too.
//!
//! - A rewrite reserves room in `Scratch` for its copies before it reads;
//!   an object that can never fit is that object's failure.
//! - A key is settled only once a listing of its versions shows none
//!   written since the shard's listing that the rewrite did not read:
//!   ETags cannot tell identical bytes.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::info;

use super::Purger;
use crate::error::StoreError;
use crate::ports::{Clock, Entry, EntryKind, Holds, Ledger, ObjectStore, Regulations, Timers};
use crate::regulation::RewriteCounts;
use crate::rewrite::{EventFilter, FilterReport, RewriteError, TempFile};

/// How often a rewrite reads an object again after a concurrent writer
/// changed it.
const MAX_CHANGED: usize = 5;
/// The largest object one PutObject writes back.
const MAX_REWRITE_BYTES: u64 = 5 * 1024 * 1024 * 1024;

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    /// Rewrites the current version of a key, conditionally on the ETag
    /// read: a concurrent writer's version is read and judged again, never
    /// overwritten. Once settled, the key's versions are listed again: a
    /// version written since the listing that no read saw (an ETag compare
    /// cannot tell identical bytes re-uploaded, nor two writes in a row) is
    /// scrubbed too. In a versioned bucket the versions that held the
    /// subjects' events are deleted once the clean one is written.
    pub(super) async fn rewrite_current(
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
    pub(super) async fn rewrite_once(
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
    pub(super) async fn unread_versions(
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
    pub(super) async fn scrub_version(
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
    pub(super) async fn filter(
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
}

/// An older version of a key, to delete by its id.
pub(super) fn old_version(key: &str, version: String) -> Entry {
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
pub(super) fn note_malformed(
    counts: &mut RewriteCounts,
    bucket: &str,
    key: &str,
    version: Option<&str>,
    report: &FilterReport,
) {
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
pub(super) enum Attempt {
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
pub(super) struct Seen {
    /// Versions read.
    read: Vec<String>,
    /// Versions read that held the subjects' events.
    holding: Vec<String>,
    /// The version written, if any.
    written: Option<String>,
    /// The filter's report on the last version read and settled.
    last: Option<FilterReport>,
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

/// What a rewrite does after an attempt.
pub(super) enum Step {
    /// The key is gone: nothing to rewrite.
    Gone,
    /// Not rewritten; the counts say why.
    Stop,
    /// Read again (with room for this many bytes, if more).
    Again(Option<u64>),
    /// Settled for now: look for versions no read saw.
    Check,
}

/// Versions of a key that a rewrite never read.
#[derive(Default)]
pub(super) struct Unread {
    /// The current version's size, if it is one of them.
    current: Option<u64>,
    /// Older ones, with their sizes.
    older: Vec<(String, u64)>,
}

/// Temporary storage a rewrite of an object of `size` bytes takes: the
/// object read, and the one written (recompressed, it may come out a
/// little larger).
pub(super) fn rewrite_scratch(size: u64) -> u64 {
    size.saturating_mul(2)
        .saturating_add(size / 8)
        .saturating_add(64 * 1024)
}

/// Bytes per permit of the scratch budget (a semaphore counts in `u32`).
pub(super) const SCRATCH_UNIT: u64 = 1024;

/// The function's temporary storage as a budget of bytes that the reads
/// and writes in flight share: each reserves what its files take before
/// it downloads anything, and gives it back once they are removed.
pub(super) struct Scratch {
    permits: Arc<Semaphore>,
    /// The whole budget, in units.
    total: u64,
}

impl Scratch {
    pub(super) fn new(bytes: u64) -> Scratch {
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
