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
//!   it, so a worker that makes progress keeps its shard.

use chrono::{DateTime, Duration, Utc};

use crate::model::{Counts, Lease, Shard};
use crate::regulation::RewriteCounts;

impl Shard {
    /// Whether a worker may take the shard at `now`.
    pub fn is_free(&self, now: DateTime<Utc>) -> bool {
        !self.done && self.lease.as_ref().is_none_or(|l| l.until <= now)
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
        next
    }

    /// What the store confirmed of pages it partly refused, counted; the
    /// cursor stays, so the retry lists those pages again.
    pub fn partly_counted(&self, deleted: &Counts) -> Shard {
        let mut next = self.bumped();
        next.counts.add(deleted);
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

    /// Done: nothing of it is left to do, and no lease holds it.
    pub fn finished(&self) -> Shard {
        let mut next = self.bumped();
        next.done = true;
        next.lease = None;
        next
    }

    fn renewed(&self, now: DateTime<Utc>, lease: Duration) -> Shard {
        let mut next = self.bumped();
        if let Some(held) = next.lease.as_mut() {
            held.until = now + lease;
        }
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
    use crate::ids::RequestId;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn shard() -> Shard {
        Shard {
            request_id: RequestId::new(),
            index: 2,
            store: "archive".into(),
            bucket: "cdp-archive".into(),
            prefix: "acme/web/".into(),
            root: "acme/".into(),
            done: false,
            cursor: None,
            uploads_done: false,
            counts: Counts::default(),
            lease: None,
            pages_done: 0,
            rewrite: None,
            version: 4,
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
        let back = mine.handed_back();
        assert_eq!((back.lease.clone(), back.version), (None, 6));
        assert!(back.is_free(t0()));
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
    fn uploads_and_refused_pages_count_without_moving_past_what_is_left() {
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
        let counted = s.page_done(&counts(10, 10), Some("k10".into()), false, t0(), Duration::minutes(1));
        let refused = counted.partly_counted(&counts(4, 4));
        assert_eq!(refused.counts.objects, 14);
        assert_eq!(
            (refused.cursor.as_deref(), refused.pages_done),
            (Some("k10"), 1),
            "the cursor stays"
        );
        assert_eq!(refused.version, shard().version + 4);
    }
}
