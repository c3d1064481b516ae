//! The request state machine, as pure functions.
//!
//! Every function takes the request as read from the ledger and returns the
//! next version of it (version + 1) or says why the change is not allowed.
//! The ledger then writes the new version *conditionally on the old one*, so
//! of two racing changes (a revoke and a purge claim, two timer deliveries)
//! exactly one lands; the loser re-reads and is judged again here.

use chrono::{DateTime, Duration, Utc};

use crate::error::ServiceError;
use crate::ids::RequestId;
use crate::model::{DeletionRequest, Lease, Receipt, Scope, Status, Transition};
use crate::regulation::RegulationStatus;

/// The periods that shape a new request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// How long a workspace, space, account or complete-purge request stays
    /// revocable.
    pub grace: Duration,
    /// The grace of a source's days (none by default).
    pub source_days_grace: Duration,
    /// How long after creation the purge must have finished.
    pub deadline: Duration,
}

impl Default for Periods {
    fn default() -> Self {
        Periods {
            grace: Duration::days(5),
            source_days_grace: Duration::zero(),
            deadline: Duration::days(30),
        }
    }
}

impl Periods {
    pub fn grace_for(&self, scope: &Scope) -> Duration {
        match scope {
            Scope::SourceDays { .. } => self.source_days_grace,
            // The right to erasure has no grace: the work starts at once.
            Scope::Regulation { .. } => Duration::zero(),
            _ => self.grace,
        }
    }
}

/// The most transitions a request's history keeps, and the longest note
/// (or failure reason) kept, in bytes: with them a request stays far under
/// DynamoDB's 400 KB item limit however often it changes.
pub const MAX_HISTORY: usize = 100;
pub const MAX_NOTE_BYTES: usize = 1000;

/// `text` cut to at most `MAX_NOTE_BYTES` bytes, at a character boundary.
fn bounded(text: &str) -> &str {
    let mut end = text.len().min(MAX_NOTE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The status an account request shows, from its children's.
pub fn summarize(children: &[Status]) -> Status {
    let any = |s: Status| children.contains(&s);
    if children.is_empty() {
        Status::Scheduled
    } else if any(Status::Purging) || any(Status::Verifying) {
        Status::Purging
    } else if any(Status::Failed) {
        Status::Failed
    } else if any(Status::OnHold) {
        Status::OnHold
    } else if any(Status::Scheduled) {
        Status::Scheduled
    } else if any(Status::Completed) {
        Status::Completed
    } else {
        Status::Revoked
    }
}

/// What a purge worker may do with a request it was asked to purge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The worker moves the request on (to write conditionally).
    Granted { next: Box<DeletionRequest>, resumed: bool },
    /// The grace has not ended yet: nothing to do.
    NotDue { grace_ends_at: DateTime<Utc> },
    /// The purge is under way: the worker joins it, taking free shards.
    Join,
    /// Another worker holds a live lease on the verification.
    Busy { lease: Lease },
    /// Nothing left to do (completed, revoked, or failed without a retry).
    Settled { status: Status },
}

impl DeletionRequest {
    pub fn new(
        scope: Scope,
        requested_by: &str,
        reason: Option<String>,
        now: DateTime<Utc>,
        periods: Periods,
    ) -> DeletionRequest {
        let grace = periods.grace_for(&scope);
        DeletionRequest {
            id: RequestId::new(),
            scope,
            status: Status::Scheduled,
            version: 1,
            requested_by: requested_by.to_owned(),
            reason,
            created_at: now,
            grace_ends_at: now + grace,
            deadline: now + periods.deadline,
            history: vec![Transition {
                status: Status::Scheduled,
                at: now,
                by: requested_by.to_owned(),
                note: None,
            }],
            lease: None,
            purge_started_at: None,
            attempts: 0,
            failure: None,
            receipt: None,
            deadline_missed_at: None,
            parent: None,
            children: Vec::new(),
            suppression_applied_at: None,
            held_since: None,
            callback: None,
            given_up_at: None,
            history_elided: 0,
            final_progress: None,
            submitted_at: None,
            subjects_forgotten_at: None,
            opendsr: None,
        }
    }

    /// A regulation the subject asked for at `at`: its deadline counts from
    /// then (it may already be near, or past).
    pub fn submitted(mut self, at: DateTime<Utc>, periods: Periods) -> DeletionRequest {
        self.submitted_at = Some(at);
        self.deadline = at + periods.deadline;
        self
    }

    /// Moves an account request to the status its children sum up to.
    /// `None` when it already shows it.
    pub fn settle_parent(&self, children: &[Status], now: DateTime<Utc>) -> Option<Self> {
        let summary = summarize(children);
        if summary == self.status || self.status.is_terminal() {
            return None;
        }
        let counts = Status::ALL
            .iter()
            .filter_map(|s| {
                let n = children.iter().filter(|c| *c == s).count();
                (n > 0).then(|| format!("{n} {s}"))
            })
            .collect::<Vec<_>>()
            .join(", ");
        Some(self.advance(summary, now, "children", Some(format!("children: {counts}"))))
    }

    /// Whether a revoke would succeed at `now`.
    pub fn revocable(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Scheduled && now < self.grace_ends_at
    }

    fn advance(&self, status: Status, now: DateTime<Utc>, by: &str, note: Option<String>) -> Self {
        let mut next = self.clone();
        next.status = status;
        next.version = self.version + 1;
        next.history.push(Transition {
            status,
            at: now,
            by: bounded(by).to_owned(),
            note: note.map(|n| bounded(&n).to_owned()),
        });
        // The creation stays; the oldest after it go first.
        while next.history.len() > MAX_HISTORY {
            next.history.remove(1);
            next.history_elided += 1;
        }
        next
    }

    fn holds_lease(&self, owner: &str) -> bool {
        self.lease.as_ref().is_some_and(|l| l.owner == owner)
    }

    /// `SCHEDULED → REVOKED`, only while the grace lasts.
    pub fn revoke(&self, now: DateTime<Utc>, by: &str) -> Result<Self, ServiceError> {
        match self.status {
            Status::Scheduled if now < self.grace_ends_at => Ok(self.advance(Status::Revoked, now, by, None)),
            Status::Revoked => Err(ServiceError::AlreadyRevoked {
                id: self.id.to_string(),
            }),
            _ => Err(ServiceError::Irreversible {
                id: self.id.to_string(),
                grace_ended_at: self.grace_ends_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }),
        }
    }

    /// Cancels a regulation no worker has taken yet (`REVOKED`, shown as
    /// `CANCELLED`): one still `SCHEDULED`, or waiting `ON_HOLD`, whose
    /// rewrite never started.
    pub fn cancel(&self, now: DateTime<Utc>, by: &str) -> Result<Self, ServiceError> {
        let not = |why: String| ServiceError::NotCancellable {
            id: self.id.to_string(),
            shown: RegulationStatus::from_request(self.status, 0).as_str().to_owned(),
            why,
        };
        match (self.status, self.purge_started_at) {
            _ if self.scope.regulation().is_none() => Err(ServiceError::InvalidTransition {
                id: self.id.to_string(),
                status: self.status,
            }),
            (Status::Scheduled | Status::OnHold, None) => {
                let mut next = self.advance(Status::Revoked, now, by, Some("cancelled".into()));
                next.held_since = None;
                Ok(next)
            }
            (Status::Revoked, _) => Err(ServiceError::AlreadyRevoked {
                id: self.id.to_string(),
            }),
            (_, Some(at)) => Err(not(format!(
                "its rewrite started at {}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ))),
            (status, None) => Err(not(format!("its request is {status}"))),
        }
    }

    /// A purge worker asks to (re)start the purge.
    ///
    /// `retry` is set by the sweep to restart a `FAILED` request; a plain
    /// timer delivery never restarts one.
    pub fn claim(&self, now: DateTime<Utc>, owner: &str, lease_for: Duration, retry: bool) -> Claim {
        let lease = Lease {
            owner: owner.to_owned(),
            until: now + lease_for,
        };
        match self.status {
            // An account request holds no data: its children are purged.
            status if !self.scope.holds_data() => Claim::Settled { status },
            Status::Scheduled if now < self.grace_ends_at => Claim::NotDue {
                grace_ends_at: self.grace_ends_at,
            },
            Status::Scheduled => {
                let mut next = self.advance(Status::Purging, now, owner, None);
                // A purge resumed after a legal hold keeps its start.
                let resumed = next.purge_started_at.is_some();
                next.purge_started_at.get_or_insert(now);
                next.attempts = self.attempts.max(1);
                Claim::Granted {
                    next: Box::new(next),
                    resumed,
                }
            }
            Status::Purging => Claim::Join,
            Status::Verifying => match &self.lease {
                Some(held) if held.until > now => Claim::Busy { lease: held.clone() },
                _ => {
                    let mut next = self.clone();
                    next.version += 1;
                    next.lease = Some(lease);
                    next.attempts += 1;
                    Claim::Granted {
                        next: Box::new(next),
                        resumed: true,
                    }
                }
            },
            Status::Failed if retry && self.retryable() => {
                let note = self.failure.as_ref().map(|f| format!("retry after: {f}"));
                let mut next = self.advance(Status::Purging, now, owner, note);
                next.lease = None;
                next.attempts += 1;
                next.failure = None;
                Claim::Granted {
                    next: Box::new(next),
                    resumed: true,
                }
            }
            status => Claim::Settled { status },
        }
    }

    /// `SCHEDULED` (grace over) `| PURGING → ON_HOLD`: a legal hold is on
    /// the workspace. The deadline's clock stops.
    pub fn put_on_hold(&self, now: DateTime<Utc>, by: &str, reason: &str) -> Result<Self, ServiceError> {
        match self.status {
            Status::Scheduled if now >= self.grace_ends_at => {}
            Status::Purging => {}
            status => {
                return Err(ServiceError::InvalidTransition {
                    id: self.id.to_string(),
                    status,
                })
            }
        }
        let mut next = self.advance(Status::OnHold, now, by, Some(format!("legal hold: {reason}")));
        next.lease = None;
        next.held_since = Some(now);
        Ok(next)
    }

    /// `ON_HOLD → SCHEDULED` (its grace long over, so its timer fires at
    /// once and the purge resumes from its checkpoints); the deadline moves
    /// on by the time held.
    pub fn release(&self, now: DateTime<Utc>, by: &str) -> Result<Self, ServiceError> {
        if self.status != Status::OnHold {
            return Err(ServiceError::InvalidTransition {
                id: self.id.to_string(),
                status: self.status,
            });
        }
        let held = now - self.held_since.unwrap_or(now);
        let note = format!(
            "legal hold released after {} s; deadline moved on by as much",
            held.num_seconds()
        );
        let mut next = self.advance(Status::Scheduled, now, by, Some(note));
        next.deadline = self.deadline + held;
        next.held_since = None;
        Ok(next)
    }

    /// `PURGING → VERIFYING`, once every shard is done: the worker takes
    /// the verification's lease.
    pub fn begin_verification(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease_for: Duration,
    ) -> Result<Self, ServiceError> {
        match self.status {
            Status::Purging => {
                let mut next = self.advance(Status::Verifying, now, owner, None);
                next.lease = Some(Lease {
                    owner: owner.to_owned(),
                    until: now + lease_for,
                });
                Ok(next)
            }
            Status::Verifying if self.holds_lease(owner) => Ok(self.clone()),
            status => Err(ServiceError::InvalidTransition {
                id: self.id.to_string(),
                status,
            }),
        }
    }

    /// `VERIFYING → COMPLETED` with the receipt, by the lease holder.
    pub fn complete(&self, now: DateTime<Utc>, owner: &str, receipt: Receipt) -> Result<Self, ServiceError> {
        match self.status {
            Status::Verifying if self.holds_lease(owner) => {
                let mut next = self.advance(Status::Completed, now, owner, None);
                next.lease = None;
                next.receipt = Some(receipt);
                Ok(next)
            }
            status => Err(ServiceError::InvalidTransition {
                id: self.id.to_string(),
                status,
            }),
        }
    }

    /// `FAILED → FAILED`, given up: the request used up its attempts, so
    /// the sweep retries it no more and its scope is released (the ledger
    /// drops the lock in the same conditional write), so the scope can be
    /// asked again. Final: it is never written again.
    pub fn give_up(&self, now: DateTime<Utc>, by: &str) -> Result<Self, ServiceError> {
        if !self.retryable() {
            return Err(ServiceError::InvalidTransition {
                id: self.id.to_string(),
                status: self.status,
            });
        }
        let note = format!(
            "given up after {} attempt(s): no more retries; the scope is released and may be asked again",
            self.attempts
        );
        let mut next = self.advance(Status::Failed, now, by, Some(note));
        next.given_up_at = Some(now);
        Ok(next)
    }

    /// `PURGING | VERIFYING → FAILED` with the reason, by the lease holder.
    pub fn fail(&self, now: DateTime<Utc>, owner: &str, reason: &str) -> Result<Self, ServiceError> {
        match self.status {
            // Any worker of a purge may stop it; a verification only its holder.
            Status::Purging => {
                let mut next = self.advance(Status::Failed, now, owner, Some(reason.to_owned()));
                next.lease = None;
                next.failure = Some(bounded(reason).to_owned());
                Ok(next)
            }
            Status::Verifying if self.holds_lease(owner) => {
                let mut next = self.advance(Status::Failed, now, owner, Some(reason.to_owned()));
                next.lease = None;
                next.failure = Some(bounded(reason).to_owned());
                Ok(next)
            }
            status => Err(ServiceError::InvalidTransition {
                id: self.id.to_string(),
                status,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::WorkspaceId;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn request() -> DeletionRequest {
        let scope = Scope::Workspace {
            workspace: WorkspaceId::parse("acme").unwrap(),
        };
        DeletionRequest::new(scope, "alice", None, t0(), Periods::default())
    }

    #[test]
    fn new_request_has_grace_and_deadline() {
        let r = request();
        assert_eq!(r.status, Status::Scheduled);
        assert_eq!(r.grace_ends_at, t0() + Duration::days(5));
        assert_eq!(r.deadline, t0() + Duration::days(30));
        assert_eq!(r.history.len(), 1);
    }

    fn regulation() -> DeletionRequest {
        let scope = Scope::Regulation {
            workspace: WorkspaceId::parse("acme").unwrap(),
            regulation: crate::regulation::RegulationType::DeleteOnly,
            subject_count: 1,
            digest: "d".into(),
            subject_type: Default::default(),
            source: None,
        };
        DeletionRequest::new(scope, "alice", None, t0(), Periods::default())
    }

    #[test]
    fn a_regulation_is_cancelled_only_before_any_worker_took_it() {
        let r = regulation();
        let now = t0() + Duration::hours(1);
        let cancelled = r.cancel(now, "bob").unwrap();
        assert_eq!((cancelled.status, cancelled.version), (Status::Revoked, 2));
        assert_eq!(cancelled.history.last().unwrap().note.as_deref(), Some("cancelled"));
        assert!(matches!(
            cancelled.cancel(now, "bob"),
            Err(ServiceError::AlreadyRevoked { .. })
        ));
        // Held before it began: still nobody took it.
        let held = r.put_on_hold(now, "ops", "litigation").unwrap();
        assert_eq!(held.cancel(now, "bob").unwrap().held_since, None);
        // Taken: no more.
        let Claim::Granted { next: taken, .. } = r.claim(now, "w1", Duration::minutes(15), false) else {
            panic!("claim")
        };
        let err = taken.cancel(now, "bob").unwrap_err().to_string();
        assert!(err.contains("RUNNING") && err.contains("started at"), "{err}");
        let held_mid_way = taken.put_on_hold(now, "ops", "litigation").unwrap();
        assert!(matches!(
            held_mid_way.cancel(now, "bob"),
            Err(ServiceError::NotCancellable { .. })
        ));
        let released = held_mid_way.release(now, "ops").unwrap();
        assert!(
            matches!(released.cancel(now, "bob"), Err(ServiceError::NotCancellable { .. })),
            "resumed, not new"
        );
        // Not a regulation: revoke, not cancel.
        assert!(matches!(
            request().cancel(now, "bob"),
            Err(ServiceError::InvalidTransition { .. })
        ));
    }

    #[test]
    fn revoke_only_in_grace() {
        let r = request();
        let revoked = r.revoke(t0() + Duration::days(1), "bob").unwrap();
        assert_eq!(revoked.status, Status::Revoked);
        assert_eq!(revoked.version, 2);
        assert_eq!(revoked.history.last().unwrap().by, "bob");
        assert!(matches!(
            revoked.revoke(t0(), "bob"),
            Err(ServiceError::AlreadyRevoked { .. })
        ));
        assert!(matches!(
            r.revoke(t0() + Duration::days(5), "bob"),
            Err(ServiceError::Irreversible { .. })
        ));
    }

    #[test]
    fn claim_waits_for_grace_and_never_touches_revoked() {
        let r = request();
        let lease = Duration::minutes(16);
        assert!(matches!(
            r.claim(t0() + Duration::days(4), "w", lease, false),
            Claim::NotDue { .. }
        ));
        let revoked = r.revoke(t0(), "bob").unwrap();
        assert_eq!(
            revoked.claim(t0() + Duration::days(6), "w", lease, true),
            Claim::Settled {
                status: Status::Revoked
            }
        );
        let Claim::Granted { next, resumed } = r.claim(t0() + Duration::days(5), "w", lease, false) else {
            panic!("claim after grace must be granted")
        };
        assert!(!resumed);
        assert_eq!(next.status, Status::Purging);
        assert!(!next.revocable(t0()));
    }

    #[test]
    fn workers_join_a_purge_and_a_live_verification_lease_blocks_a_duplicate() {
        let lease = Duration::minutes(16);
        let at = t0() + Duration::days(5);
        let Claim::Granted { next: purging, .. } = request().claim(at, "w1", lease, false) else {
            panic!()
        };
        assert_eq!(purging.claim(at, "w2", lease, false), Claim::Join);
        let verifying = purging.begin_verification(at, "w1", lease).unwrap();
        assert!(matches!(
            verifying.claim(at + Duration::minutes(1), "w2", lease, false),
            Claim::Busy { .. }
        ));
        let Claim::Granted { next, resumed } = verifying.claim(at + Duration::minutes(17), "w2", lease, false) else {
            panic!("expired lease must be taken over")
        };
        assert!(resumed);
        assert_eq!(next.status, Status::Verifying);
        assert_eq!(next.lease.unwrap().owner, "w2");
    }

    #[test]
    fn source_days_have_no_grace_by_default() {
        let scope = Scope::SourceDays {
            workspace: WorkspaceId::parse("acme").unwrap(),
            source: crate::ids::SourceId::parse("web").unwrap(),
            from: chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            to: chrono::NaiveDate::from_ymd_opt(2024, 1, 2).unwrap(),
        };
        let r = DeletionRequest::new(scope, "a", None, t0(), Periods::default());
        assert_eq!(r.grace_ends_at, t0());
        assert!(!r.revocable(t0()));
        assert!(matches!(
            r.claim(t0(), "w", Duration::minutes(1), false),
            Claim::Granted { .. }
        ));
    }

    #[test]
    fn an_account_request_sums_up_its_children_and_is_never_claimed() {
        use Status::*;
        assert_eq!(summarize(&[Scheduled, Scheduled]), Scheduled);
        assert_eq!(summarize(&[Scheduled, Purging]), Purging);
        assert_eq!(summarize(&[Completed, Verifying]), Purging);
        assert_eq!(summarize(&[Completed, Failed]), Failed);
        assert_eq!(summarize(&[Completed, Revoked]), Completed);
        assert_eq!(summarize(&[Revoked, Revoked]), Revoked);
        assert_eq!(summarize(&[Completed, Scheduled]), Scheduled);
        let scope = Scope::Account {
            account: crate::ids::AccountId::parse("ann").unwrap(),
        };
        let parent = DeletionRequest::new(scope, "a", None, t0(), Periods::default());
        assert_eq!(
            parent.claim(t0() + Duration::days(9), "w", Duration::minutes(1), false),
            Claim::Settled { status: Scheduled }
        );
        let done = parent.settle_parent(&[Completed, Revoked], t0()).unwrap();
        assert_eq!(done.status, Completed);
        assert_eq!(
            done.history.last().unwrap().note.as_deref(),
            Some("children: 1 COMPLETED, 1 REVOKED")
        );
        assert!(
            done.settle_parent(&[Scheduled], t0()).is_none(),
            "a final state stays final"
        );
    }

    #[test]
    fn a_hold_pauses_the_deadline_and_the_release_resumes_the_purge() {
        let r = request();
        let in_grace = t0() + Duration::days(1);
        assert!(
            r.put_on_hold(in_grace, "w", "x").is_err(),
            "in grace a revoke, not a hold"
        );
        let held_at = t0() + Duration::days(5) + Duration::seconds(1);
        let held = r.put_on_hold(held_at, "w", "litigation").unwrap();
        assert_eq!((held.status, held.version), (Status::OnHold, 2));
        assert_eq!(held.held_since, Some(held_at));
        assert!(matches!(
            held.claim(held_at, "w", Duration::minutes(16), true),
            Claim::Settled { .. }
        ));
        assert!(held.revoke(held_at, "ann").is_err());
        let later = held_at + Duration::days(7);
        let back = held.release(later, "ops").unwrap();
        assert_eq!(back.status, Status::Scheduled);
        assert_eq!(back.deadline, r.deadline + Duration::days(7));
        assert_eq!(back.held_since, None);
        let Claim::Granted { next, .. } = back.claim(later, "w", Duration::minutes(16), false) else {
            panic!("a released request is claimed at once")
        };
        assert_eq!(next.status, Status::Purging);
        assert!(back.release(later, "ops").is_err(), "released once");
    }

    #[test]
    fn failed_requests_restart_only_on_retry() {
        let lease = Duration::minutes(16);
        let at = t0() + Duration::days(5);
        let Claim::Granted { next: purging, .. } = request().claim(at, "w1", lease, false) else {
            panic!()
        };
        let failed = purging.fail(at, "w1", "boom").unwrap();
        assert_eq!(failed.failure.as_deref(), Some("boom"));
        assert_eq!(
            failed.claim(at, "w2", lease, false),
            Claim::Settled { status: Status::Failed }
        );
        assert!(matches!(
            failed.claim(at, "w2", lease, true),
            Claim::Granted { resumed: true, .. }
        ));
        // Only the verification's lease holder may fail or complete it.
        let verifying = purging.begin_verification(at, "w1", lease).unwrap();
        assert!(verifying.fail(at, "intruder", "x").is_err());
        assert!(verifying.begin_verification(at, "intruder", lease).is_err());
    }
    #[test]
    fn a_failed_request_given_up_releases_its_scope_and_is_never_retried() {
        let lease = Duration::minutes(16);
        let at = t0() + Duration::days(5);
        let Claim::Granted { next: purging, .. } = request().claim(at, "w1", lease, false) else {
            panic!()
        };
        let failed = purging.fail(at, "w1", "boom").unwrap();
        assert!(failed.retryable() && !failed.releases_scope());
        let given_up = failed.give_up(at, "sweep").unwrap();
        assert_eq!(
            (given_up.status, given_up.version),
            (Status::Failed, failed.version + 1)
        );
        assert!(given_up.releases_scope(), "its scope lock goes with this write");
        assert!(!given_up.retryable());
        let note = given_up.history.last().unwrap().note.clone().unwrap();
        assert!(note.starts_with("given up after"), "{note}");
        assert_eq!(
            given_up.claim(at, "w2", lease, true),
            Claim::Settled { status: Status::Failed },
            "a request that released its scope is never restarted"
        );
        assert!(given_up.give_up(at, "sweep").is_err(), "given up once");
        assert!(request().give_up(at, "sweep").is_err(), "only a failed request");
    }

    #[test]
    fn history_and_notes_stay_bounded_however_often_a_request_changes() {
        let mut r = request();
        let long = "x".repeat(10 * MAX_NOTE_BYTES);
        for i in 0..(3 * MAX_HISTORY) {
            r = r.advance(
                Status::Scheduled,
                t0() + Duration::seconds(i as i64),
                "ops",
                Some(long.clone()),
            );
        }
        assert_eq!(r.history.len(), MAX_HISTORY);
        assert_eq!(r.history_elided, (2 * MAX_HISTORY + 1) as u64);
        assert_eq!(r.history[0].by, "alice", "the creation is kept");
        assert!(r
            .history
            .iter()
            .all(|h| h.note.as_ref().is_none_or(|n| n.len() <= MAX_NOTE_BYTES)));
        let mut purging = r.clone();
        purging.status = Status::Purging;
        let failed = purging.fail(t0(), "w", &"é".repeat(MAX_NOTE_BYTES)).unwrap();
        assert!(failed.failure.unwrap().len() <= MAX_NOTE_BYTES);
    }
}
