//! The transitions of a workspace's retention, pure (as `lifecycle` is for
//! requests): each returns the next state, with its version one higher,
//! for the caller to write conditionally.
//!
//! Invariants:
//! - A change that keeps less of any source (`shortens`) waits a grace
//!   before it takes effect, and may be revoked in it; a change that keeps
//!   as much or more takes effect at once and replaces any change in grace.
//! - While a change waits, each source keeps the longer of its window in
//!   force and the pending one: a lengthened source gains at once, a
//!   shortened one loses nothing before the grace ends.
//! - A due change is applied (`settle`) before anything else is judged.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::error::ServiceError;
use crate::ids::SourceId;
use crate::model::retention::{
    longer, shortens, window_of, ChangeKind, PendingChange, Policy, PolicyChange, Retention, RetentionRun, Window,
    MAX_CHANGES,
};

impl Retention {
    fn next(&self) -> Retention {
        let mut next = self.clone();
        next.version += 1;
        next
    }

    fn record(&mut self, at: DateTime<Utc>, by: &str, kind: ChangeKind, policy: Option<&Policy>) {
        self.changes.push(PolicyChange {
            at,
            by: by.to_owned(),
            kind,
            default_days: policy.and_then(|p| p.default_days),
            sources: policy.map_or(0, |p| p.sources.len()),
        });
        if self.changes.len() > MAX_CHANGES {
            let extra = self.changes.len() - MAX_CHANGES;
            self.changes.drain(..extra);
        }
        self.changes_total += 1;
    }

    /// The change in grace put in force, if its grace has ended.
    pub fn settle(&self, now: DateTime<Utc>) -> Option<Retention> {
        let pending = self.pending.as_ref().filter(|p| p.effective_at <= now)?;
        let mut next = self.next();
        next.policy = Some(pending.policy.clone());
        next.pending = None;
        let (at, by) = (pending.effective_at, pending.requested_by.clone());
        next.record(at, &by, ChangeKind::Applied, Some(&pending.policy));
        Some(next)
    }

    fn settled(&self, now: DateTime<Utc>) -> Retention {
        self.settle(now).unwrap_or_else(|| self.clone())
    }

    /// A new policy: in force at once, or in grace if it keeps less of
    /// any source than the one in force (and the grace is not zero). The
    /// flag says which.
    pub fn propose(&self, policy: Policy, now: DateTime<Utc>, by: &str, grace: Duration) -> (Retention, bool) {
        let mut next = self.settled(now).next();
        if grace > Duration::zero() && shortens(next.policy.as_ref(), Some(&policy)) {
            next.record(now, by, ChangeKind::Scheduled, Some(&policy));
            next.pending = Some(PendingChange {
                policy,
                requested_by: by.to_owned(),
                requested_at: now,
                effective_at: now + grace,
                reminded_at: None,
            });
            (next, true)
        } else {
            next.record(now, by, ChangeKind::Set, Some(&policy));
            next.policy = Some(policy);
            next.pending = None;
            (next, false)
        }
    }

    /// Whether `policy` is what already stands at `now`: the change in
    /// grace, or (none waiting) the policy in force.
    pub fn already_asked(&self, policy: &Policy, now: DateTime<Utc>) -> bool {
        let current = self.settled(now);
        match &current.pending {
            Some(p) => &p.policy == policy,
            None => current.policy.as_ref() == Some(policy),
        }
    }

    /// The policy removed (and any change in grace with it): everything is
    /// kept from now on.
    pub fn remove(&self, now: DateTime<Utc>, by: &str) -> Result<Retention, ServiceError> {
        let current = self.settled(now);
        if current.policy.is_none() && current.pending.is_none() {
            return Err(ServiceError::Missing(format!(
                "workspace {} has no retention policy",
                self.workspace
            )));
        }
        let mut next = current.next();
        next.policy = None;
        next.pending = None;
        next.record(now, by, ChangeKind::Removed, None);
        Ok(next)
    }

    /// The change in grace revoked: the policy in force stays.
    pub fn revoke_pending(&self, now: DateTime<Utc>, by: &str) -> Result<Retention, ServiceError> {
        let current = self.settled(now);
        if current.pending.is_none() {
            return Err(match self.pending.as_ref() {
                Some(p) => ServiceError::AlreadyInForce(format!(
                    "the retention change of workspace {} took effect at {} (its grace ended); set a longer \
                     window to keep more from now on",
                    self.workspace,
                    p.effective_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                )),
                None => ServiceError::Missing(format!("workspace {} has no retention change in grace", self.workspace)),
            });
        }
        let mut next = current.next();
        next.pending = None;
        let kept = next.policy.clone();
        next.record(now, by, ChangeKind::Revoked, kept.as_ref());
        Ok(next)
    }

    /// The window a source keeps at `now` (see the module's invariants).
    pub fn window(&self, source: &SourceId, now: DateTime<Utc>) -> Window {
        let current = self.settled(now);
        let active = window_of(current.policy.as_ref(), source);
        match &current.pending {
            Some(p) => longer(active, p.policy.window(source)),
            None => active,
        }
    }

    /// Whether any source keeps less than everything at `now`.
    pub fn limits_anything(&self, now: DateTime<Utc>) -> bool {
        let current = self.settled(now);
        let limits = |p: Option<&Policy>| p.is_some_and(Policy::limits_anything);
        match &current.pending {
            // Both must limit a source for the longer of the two to.
            Some(p) => limits(current.policy.as_ref()) && p.policy.limits_anything(),
            None => limits(current.policy.as_ref()),
        }
    }

    /// The change in grace marked reminded, when its grace ends within
    /// `lead` and no reminder fired yet.
    pub fn remind(&self, now: DateTime<Utc>, lead: Duration) -> Option<Retention> {
        let pending = self.pending.as_ref()?;
        if pending.reminded_at.is_some() || now < pending.effective_at - lead || now >= pending.effective_at {
            return None;
        }
        let mut next = self.next();
        if let Some(p) = next.pending.as_mut() {
            p.reminded_at = Some(now);
        }
        Some(next)
    }

    /// Whether an enforcement run is due on `today`: one a day, and again
    /// once a policy put in force since the last run (set, or its grace
    /// ended) keeps less.
    pub fn run_due(&self, today: NaiveDate) -> bool {
        let Some(run) = self.last_run.as_ref() else {
            return true;
        };
        let changed_since = self
            .changes
            .last()
            .is_some_and(|c| matches!(c.kind, ChangeKind::Set | ChangeKind::Applied) && c.at > run.at);
        run.day < today || changed_since
    }

    /// A run recorded.
    pub fn record_run(&self, run: RetentionRun) -> Retention {
        let mut next = self.next();
        next.last_run = Some(run);
        next
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ids::WorkspaceId;
    use crate::model::retention::out_of_window;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn src(s: &str) -> SourceId {
        SourceId::parse(s).unwrap()
    }

    fn policy(default: Window, sources: &[(&str, Window)]) -> Policy {
        Policy::new(default, sources.iter().map(|(s, d)| (src(s), *d)).collect()).unwrap()
    }

    fn empty() -> Retention {
        Retention::empty(WorkspaceId::parse("acme").unwrap())
    }

    const GRACE: Duration = Duration::days(5);

    #[test]
    fn windows_are_whole_days_within_bounds_and_overrides_are_bounded() {
        assert!(Policy::new(Some(0), BTreeMap::new()).is_err());
        assert!(Policy::new(Some(3661), BTreeMap::new()).is_err());
        assert!(Policy::new(Some(3660), BTreeMap::new()).is_ok());
        let bad = BTreeMap::from([(src("web"), Some(0))]);
        let e = Policy::new(None, bad).unwrap_err().to_string();
        assert!(e.contains("sources.web"), "{e}");
        let many = (0..501).map(|i| (src(&format!("s{i}")), Some(30))).collect();
        assert!(Policy::new(None, many).is_err());
    }

    #[test]
    fn a_day_is_out_only_before_the_window_and_today_and_yesterday_always_stay() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 10).unwrap();
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        assert!(!out_of_window(day(10), 1, today));
        assert!(!out_of_window(day(9), 1, today));
        assert!(out_of_window(day(8), 1, today));
        assert!(!out_of_window(day(8), 2, today));
        assert!(out_of_window(day(7), 2, today));
    }

    #[test]
    fn a_first_window_or_a_shorter_one_waits_its_grace_and_a_longer_one_is_at_once() {
        let (set, pending) = empty().propose(policy(Some(90), &[]), t0(), "ann", GRACE);
        assert!(pending, "a first window deletes data");
        assert_eq!(set.version, 1);
        assert_eq!(set.window(&src("web"), t0()), None, "nothing lost in the grace");
        assert_eq!(set.window(&src("web"), t0() + GRACE), Some(90));
        let applied = set.settle(t0() + GRACE).unwrap();
        assert_eq!(applied.policy, Some(policy(Some(90), &[])));
        assert_eq!(applied.changes.last().unwrap().kind, ChangeKind::Applied);

        let (longer, pending) = applied.propose(policy(Some(180), &[]), t0() + GRACE, "bob", GRACE);
        assert!(!pending);
        assert_eq!(longer.window(&src("web"), t0() + GRACE), Some(180));
        assert_eq!(longer.changes.last().unwrap().by, "bob");

        // One source shorter, the default longer: the default gains at once.
        let mixed = policy(Some(365), &[("web", Some(30))]);
        let (m, pending) = longer.propose(mixed, t0() + GRACE, "ann", GRACE);
        assert!(pending);
        assert_eq!(m.window(&src("ios"), t0() + GRACE), Some(365));
        assert_eq!(m.window(&src("web"), t0() + GRACE), Some(180));
        assert_eq!(m.window(&src("web"), t0() + GRACE * 2), Some(30));

        let (at_once, pending) = empty().propose(policy(Some(1), &[]), t0(), "ann", Duration::zero());
        assert!(!pending, "no grace configured: in force at once");
        assert_eq!(at_once.window(&src("web"), t0()), Some(1));
    }

    #[test]
    fn the_same_policy_asked_again_is_what_stands() {
        let p = policy(Some(30), &[]);
        let (set, _) = empty().propose(p.clone(), t0(), "ann", GRACE);
        assert!(set.already_asked(&p, t0() + Duration::days(1)), "in grace");
        assert!(!set.already_asked(&policy(Some(31), &[]), t0()));
        assert!(set.already_asked(&p, t0() + GRACE), "in force");
        assert!(!empty().already_asked(&p, t0()));
    }

    #[test]
    fn unlimited_overrides_and_removal_keep_everything() {
        let p = policy(Some(30), &[("ios", None)]);
        assert_eq!(p.window(&src("ios")), None);
        assert_eq!(p.window(&src("web")), Some(30));
        assert!(shortens(
            Some(&policy(Some(30), &[("ios", None)])),
            Some(&policy(Some(30), &[]))
        ));
        assert!(!shortens(
            Some(&policy(Some(30), &[])),
            Some(&policy(Some(30), &[("ios", None)]))
        ));
        assert!(!shortens(Some(&p), None));
        let (set, _) = empty().propose(p, t0(), "ann", GRACE);
        let removed = set.remove(t0(), "ann").unwrap();
        assert_eq!((removed.policy.as_ref(), removed.pending.as_ref()), (None, None));
        assert!(matches!(removed.remove(t0(), "ann"), Err(ServiceError::Missing(_))));
    }

    #[test]
    fn a_change_in_grace_is_revocable_until_it_ends() {
        let (set, _) = empty().propose(policy(Some(30), &[]), t0(), "ann", GRACE);
        let revoked = set.revoke_pending(t0() + Duration::days(4), "bob").unwrap();
        assert_eq!(revoked.pending, None);
        assert_eq!(revoked.policy, None);
        assert_eq!(revoked.changes.last().unwrap().kind, ChangeKind::Revoked);
        assert!(matches!(
            revoked.revoke_pending(t0(), "bob"),
            Err(ServiceError::Missing(_))
        ));
        assert!(matches!(
            set.revoke_pending(t0() + GRACE, "bob"),
            Err(ServiceError::AlreadyInForce(_))
        ));
    }

    #[test]
    fn the_reminder_fires_once_within_its_lead() {
        let (set, _) = empty().propose(policy(Some(30), &[]), t0(), "ann", GRACE);
        let lead = Duration::days(1);
        assert!(set.remind(t0() + Duration::days(3), lead).is_none());
        let reminded = set.remind(t0() + Duration::days(4), lead).unwrap();
        assert!(reminded.remind(t0() + Duration::days(4), lead).is_none());
        assert!(set.remind(t0() + GRACE, lead).is_none(), "too late: in force");
    }

    #[test]
    fn one_run_a_day_and_history_stays_bounded() {
        let mut r = empty();
        let today = t0().date_naive();
        assert!(r.run_due(today));
        r = r.record_run(RetentionRun {
            at: t0(),
            day: today,
            days: 0,
            requests: vec![],
            request_count: 0,
        });
        assert!(!r.run_due(today));
        assert!(r.run_due(today.succ_opt().unwrap()));
        let changed = r
            .propose(
                policy(Some(10), &[]),
                t0() + Duration::hours(1),
                "ann",
                Duration::zero(),
            )
            .0;
        assert!(changed.run_due(today), "a policy put in force since the run: again");
        for i in 0..120 {
            r = r.propose(policy(Some(100 + i), &[]), t0(), "ann", GRACE).0;
        }
        assert_eq!((r.changes.len(), r.changes_total), (MAX_CHANGES, 120));
    }
}
