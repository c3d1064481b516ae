//! The shard lifecycle, as pure transitions: each returns the next state of
//! a shard, and the caller writes it with a condition on the version it
//! read (`Ledger::update_shard`).
//!
//! Invariants:
//! - Every transition raises `version` by one, so of two workers that read
//!   the same shard, only the first to write it wins.
//! - A shard is free when no lease holds it or its lease has run out; a
//!   done shard is never free and holds no lease.
//! - Counts only grow, and only by what the store confirmed.
//! - A checkpoint that finishes the shard ends its lease; any other renews
//!   it once less than half of it is left, so a worker that makes progress
//!   keeps its shard.
//! - A page is recorded (`page_recorded`) before its delete is sent, as a
//!   key range and counts (`PendingRange`), never as its list of keys; it
//!   is counted once, either when its delete is confirmed (`page_done`) or
//!   whole when a successor recovers the range (`recovered`).

use chrono::{DateTime, Duration, Utc};

use crate::ids::RequestId;
use crate::model::store::Entry;
use crate::model::{Counts, Lease, PendingRange, Shard};
use crate::regulation::RewriteCounts;

impl Shard {
    /// A shard as planned: `prefix` of `root` (the data-map prefix) in
    /// `bucket`, the whole prefix, nothing done yet.
    pub fn planned(request_id: &RequestId, index: u32, store: &str, bucket: &str, prefix: &str, root: &str) -> Shard {
        Shard {
            request_id: request_id.clone(),
            index,
            store: store.to_owned(),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            root: root.to_owned(),
            after: None,
            upto: None,
            done: false,
            cursor: None,
            uploads_done: false,
            counts: Counts::default(),
            lease: None,
            pages_done: 0,
            rewrite: None,
            pending: None,
            version: 1,
        }
    }

    /// Whether a worker may take the shard at `now`.
    pub fn is_free(&self, now: DateTime<Utc>) -> bool {
        !self.done && self.lease.as_ref().is_none_or(|l| l.until <= now)
    }

    /// Whether `owner` still works on the shard at `now`: not done, and
    /// under its lease.
    pub fn held_by(&self, owner: &str, now: DateTime<Utc>) -> bool {
        !self.done && self.lease.as_ref().is_some_and(|l| l.owner == owner && l.until > now)
    }

    /// Taken by `owner` until `now + lease`.
    pub fn claimed(&self, owner: &str, now: DateTime<Utc>, lease: Duration) -> Shard {
        let mut next = self.bumped();
        next.lease = Some(Lease {
            owner: owner.to_owned(),
            until: now + lease,
        });
        next
    }

    /// Given back, with its checkpoint, for any worker to take at once.
    pub fn handed_back(&self) -> Shard {
        let mut next = self.bumped();
        next.lease = None;
        next
    }

    /// A page of uploads aborted: `aborted` more, the listing resumes at
    /// `next` (none: every upload is aborted).
    pub fn uploads_aborted(&self, aborted: u64, next: Option<String>) -> Shard {
        let mut shard = self.bumped();
        shard.counts.uploads_aborted += aborted;
        shard.uploads_done = next.is_none();
        shard.cursor = next;
        shard
    }

    /// A page deleted and counted: the listing resumes `after` it, and the
    /// shard is done when `last`. The lease ends when done, else runs on
    /// from `now`.
    pub fn page_done(
        &self,
        deleted: &Counts,
        after: Option<String>,
        last: bool,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Shard {
        let mut next = if last {
            self.finished()
        } else {
            self.renewed(now, lease)
        };
        next.counts.add(deleted);
        next.pages_done += 1;
        next.cursor = after;
        if let Some(range) = next.pending.as_mut() {
            range.counts.sub(deleted);
            range.pages = range.pages.saturating_sub(1);
            if range.pages == 0 {
                next.pending = None;
            }
        }
        next
    }

    /// A listed page about to be deleted, recorded: the pending range
    /// reaches its last key (of which it keeps the versions listed) and
    /// holds its counts. An empty page only counts as a page in flight.
    pub fn page_recorded(&self, entries: &[Entry], listed: &Counts) -> Shard {
        let mut next = self.bumped();
        let mut range = next.pending.take().unwrap_or_else(|| PendingRange {
            last_key: String::new(),
            last_versions: Vec::new(),
            counts: Counts::default(),
            pages: 0,
        });
        // A versions listing gives delete markers after the versions: the
        // page's last place in key order is its greatest key.
        if let Some(last) = entries.iter().map(|e| e.key.as_str()).max() {
            if last != range.last_key {
                range.last_key = last.to_owned();
                range.last_versions.clear();
            }
            let versions = entries.iter().filter(|e| e.key == last).map(|e| e.version_id.clone());
            range.last_versions.extend(versions);
        }
        range.counts.add(listed);
        range.pages += 1;
        next.pending = Some(range);
        next
    }

    /// What the store confirmed of pages it partly refused, counted, and
    /// taken off the pending range, which stays: the retry lists the range
    /// again and counts what is left of it (the refused keys) once.
    pub fn partly_counted(&self, confirmed: &Counts) -> Shard {
        let mut next = self.bumped();
        next.counts.add(confirmed);
        if let Some(range) = next.pending.as_mut() {
            range.counts.sub(confirmed);
        }
        next
    }

    /// The pages a dead worker recorded, deleted again where anything of
    /// them was left, and counted whole; the lease runs on from `now`.
    pub fn recovered(&self, now: DateTime<Utc>, lease: Duration) -> Shard {
        let mut next = self.renewed(now, lease);
        if let Some(range) = next.pending.take() {
            next.counts.add(&range.counts);
            next.pages_done += u64::from(range.pages);
        }
        next
    }

    /// A regulation's page rewritten: what the rewrite did is added, the
    /// listing resumes `after` it; the lease runs on from `now`.
    pub fn rewrite_page_done(
        &self,
        did: &RewriteCounts,
        after: Option<String>,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Shard {
        let mut next = self.rewrite_counted(did, now, lease);
        next.cursor = after;
        next.pages_done += 1;
        next
    }

    /// What a regulation's rewrite did (older versions deleted), added; the
    /// lease runs on from `now`.
    pub fn rewrite_counted(&self, did: &RewriteCounts, now: DateTime<Utc>, lease: Duration) -> Shard {
        let mut next = self.renewed(now, lease);
        next.rewrite.get_or_insert_with(RewriteCounts::default).add(did);
        next
    }

    /// Cut in two at `point` (past everything listed so far): this shard
    /// keeps the keys up to it, a new one (number `index`) takes those
    /// after it up to where this one ended, with its uploads still to
    /// abort. Nothing else changes: the ranges still follow one another.
    pub fn split_at(&self, point: &str, index: u32) -> (Shard, Shard) {
        let mut mine = self.bumped();
        mine.upto = Some(point.to_owned());
        let new = Shard {
            after: Some(point.to_owned()),
            upto: self.upto.clone(),
            ..Shard::planned(
                &self.request_id,
                index,
                &self.store,
                &self.bucket,
                &self.prefix,
                self.root(),
            )
        };
        (mine, new)
    }

    /// Done: nothing of it is left to do, and no lease holds it.
    pub fn finished(&self) -> Shard {
        let mut next = self.bumped();
        next.done = true;
        next.lease = None;
        next
    }

    /// The lease runs on from `now` once less than half of it is left: by
    /// time, not by page, so the index of open shards (by lease end) is
    /// written a few times per lease, not at every page.
    fn renewed(&self, now: DateTime<Utc>, lease: Duration) -> Shard {
        let mut next = self.bumped();
        if let Some(held) = next.lease.as_mut() {
            if held.until - now < lease / 2 {
                held.until = now + lease;
            }
        }
        next
    }

    /// A finished shard whose prefix named a subject's id, with `prefix`
    /// (the id replaced) instead: kept after the ids are forgotten.
    pub fn redacted(&self, prefix: String) -> Shard {
        let mut next = self.bumped();
        next.prefix = prefix;
        next
    }

    fn bumped(&self) -> Shard {
        let mut next = self.clone();
        next.version += 1;
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn shard() -> Shard {
        Shard {
            version: 4,
            ..Shard::planned(&RequestId::new(), 2, "archive", "cdp-archive", "acme/web/", "acme/")
        }
    }

    fn counts(objects: u64, bytes: u64) -> Counts {
        Counts {
            objects,
            bytes,
            ..Counts::default()
        }
    }

    #[test]
    fn a_claim_leases_the_shard_and_only_an_expired_lease_frees_it() {
        let lease = Duration::minutes(16);
        let free = shard();
        assert!(free.is_free(t0()));
        let mine = free.claimed("w1", t0(), lease);
        assert_eq!(mine.version, 5);
        assert_eq!(
            mine.lease.as_ref().map(|l| (l.owner.as_str(), l.until)),
            Some(("w1", t0() + lease))
        );
        assert!(!mine.is_free(t0() + lease - Duration::seconds(1)));
        assert!(mine.is_free(t0() + lease), "a lease that ran out frees the shard");
        let until = t0() + lease - Duration::seconds(1);
        assert!(mine.held_by("w1", until) && !mine.held_by("w2", until));
        assert!(!mine.held_by("w1", t0() + lease), "not once it ran out");
        assert!(!mine.finished().held_by("w1", t0()), "nor once done");
        let back = mine.handed_back();
        assert_eq!((back.lease.clone(), back.version), (None, 6));
        assert!(back.is_free(t0()) && !back.held_by("w1", t0()));
    }

    #[test]
    fn a_page_counts_and_renews_the_lease_and_the_last_one_ends_it() {
        let lease = Duration::minutes(16);
        let mine = shard().claimed("w1", t0(), lease);
        let later = t0() + Duration::minutes(10);
        let one = mine.page_done(&counts(1000, 5), Some("k1000".into()), false, later, lease);
        assert_eq!(
            (one.counts.objects, one.pages_done, one.cursor.as_deref()),
            (1000, 1, Some("k1000"))
        );
        assert_eq!(one.lease.as_ref().map(|l| l.until), Some(later + lease), "renewed");
        // Early in the lease a page leaves its end where it was.
        let soon = mine.page_done(
            &counts(1, 1),
            Some("k1".into()),
            false,
            t0() + Duration::minutes(1),
            lease,
        );
        assert_eq!(
            soon.lease.as_ref().map(|l| l.until),
            Some(t0() + lease),
            "not renewed yet"
        );
        assert!(!one.done);
        let last = one.page_done(&counts(3, 1), None, true, later, lease);
        assert_eq!((last.counts.objects, last.counts.bytes, last.pages_done), (1003, 6, 2));
        assert!(last.done && last.lease.is_none());
        assert!(
            !last.is_free(later + Duration::days(1)),
            "a done shard is never taken again"
        );
        assert_eq!(last.version, mine.version + 2);
    }

    #[test]
    fn uploads_count_and_the_listing_resumes_after_them() {
        let s = shard().uploads_aborted(2, Some("u2".into()));
        assert_eq!(
            (s.counts.uploads_aborted, s.uploads_done, s.cursor.as_deref()),
            (2, false, Some("u2"))
        );
        let s = s.uploads_aborted(1, None);
        assert_eq!(
            (s.counts.uploads_aborted, s.uploads_done, s.cursor.clone()),
            (3, true, None)
        );
        assert_eq!(s.version, shard().version + 2);
    }

    fn entry(key: &str, version: Option<&str>) -> Entry {
        Entry {
            key: key.into(),
            version_id: version.map(str::to_owned),
            kind: crate::model::store::EntryKind::Current,
            size: 1,
        }
    }

    #[test]
    fn recorded_pages_are_one_range_and_count_once_when_confirmed() {
        let lease = Duration::minutes(16);
        let mine = shard().claimed("w1", t0(), lease);
        // Markers come after versions in a versions listing: the range
        // ends at the greatest key, with the versions of it listed.
        let one = [
            entry("a", Some("1")),
            entry("b", Some("2")),
            entry("b", Some("3")),
            entry("a", Some("m")),
        ];
        let s = mine.page_recorded(&one, &counts(4, 4));
        let range = s.pending.clone().unwrap();
        assert_eq!(
            (range.last_key.as_str(), range.pages, range.counts.objects),
            ("b", 1, 4)
        );
        assert!(range.holds("a", Some("9")) && range.holds("b", Some("3")));
        assert!(!range.holds("b", Some("4")), "a later page's version of the last key");
        assert!(!range.holds("c", None) && range.is_past("c") && !range.is_past("b"));
        // The next page goes on with key b, then c.
        let two = [entry("b", Some("4")), entry("c", None)];
        let s = s.page_recorded(&two, &counts(2, 2));
        let range = s.pending.clone().unwrap();
        assert_eq!(
            (range.last_key.as_str(), range.last_versions.clone()),
            ("c", vec![None])
        );
        assert_eq!((range.pages, range.counts.objects), (2, 6));
        // Confirmed in order: each counted once, the range shrinks, then goes.
        let s = s.page_done(&counts(4, 4), Some("p1".into()), false, t0(), lease);
        assert_eq!(
            (
                s.counts.objects,
                s.pending.as_ref().map(|r| (r.pages, r.counts.objects))
            ),
            (4, Some((1, 2)))
        );
        let s = s.page_done(&counts(2, 2), None, true, t0(), lease);
        assert_eq!(
            (s.counts.objects, s.pending.clone(), s.done, s.pages_done),
            (6, None, true, 2)
        );
        assert_eq!(s.version, mine.version + 4, "two writes per page");
    }

    #[test]
    fn a_recovered_range_counts_its_pages_whole_and_an_empty_page_counts_as_in_flight() {
        let lease = Duration::minutes(16);
        let mine = shard().claimed("w1", t0(), lease);
        let s = mine
            .page_recorded(&[entry("a", None), entry("b", None)], &counts(2, 7))
            .page_recorded(&[], &Counts::default());
        let range = s.pending.clone().unwrap();
        assert_eq!((range.last_key.as_str(), range.pages), ("b", 2));
        let later = t0() + Duration::minutes(30);
        let back = s.claimed("w2", later, lease).recovered(later, lease);
        assert_eq!((back.counts.objects, back.counts.bytes, back.pages_done), (2, 7, 2));
        assert_eq!(back.pending, None);
        assert_eq!(
            back.lease.as_ref().map(|l| (l.owner.as_str(), l.until)),
            Some(("w2", later + lease))
        );
        // Partly refused: what was confirmed counts now, the rest on recovery.
        let refused = s.partly_counted(&counts(1, 3));
        assert_eq!(refused.counts.objects, 1);
        let range = refused.pending.clone().unwrap();
        assert_eq!((range.pages, range.counts.objects, range.counts.bytes), (2, 1, 4));
        let later = t0() + Duration::minutes(30);
        let retried = refused.claimed("w3", later, lease).recovered(later, lease);
        assert_eq!(
            (retried.counts.objects, retried.counts.bytes),
            (2, 7),
            "each counted once"
        );
        // A split keeps the ranges contiguous and the new half untouched.
        let (kept, new) = s.split_at("m", 9);
        assert_eq!((kept.upto.as_deref(), kept.version), (Some("m"), s.version + 1));
        assert_eq!(
            (new.after.as_deref(), new.upto.clone(), new.index),
            (Some("m"), s.upto.clone(), 9)
        );
        assert_eq!(
            (new.counts, new.lease.clone(), new.uploads_done),
            (Counts::default(), None, false)
        );
        assert_eq!((new.prefix.as_str(), new.root.as_str()), (s.prefix.as_str(), s.root()));
        // An empty page alone records a range that holds nothing.
        let empty = mine.page_recorded(&[], &Counts::default()).pending.unwrap();
        assert!(!empty.holds("a", None) && empty.is_past("a") && empty.pages == 1);
    }
}
