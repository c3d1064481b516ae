//! The sweep: the safety net under at-least-once timers. Run on a recurring
//! schedule, it walks every request not in a final state and
//! - re-arms the timer of a request in grace (a no-op if it is there);
//! - starts a request whose grace ended without a purge (its timer lost);
//! - re-drives a purge whose worker's lease expired (the worker died);
//! - retries a failed purge, up to a bound of attempts, then gives it up
//!   (its scope released, so the scope can be asked again);
//! - marks a request still unfinished past its 30-day deadline;
//! - settles account requests from their children;
//! - resumes a request on hold whose hold is gone (a release cut short).
//!
//! Invariants:
//! - One request never stops the walk: an error on it (a refused write, a
//!   failed CreateSchedule, contention) or an undecodable item is recorded
//!   in `failures` with what it names, and the walk goes on.
//! - A run stops by its deadline (the `Clock`'s time; a budget below the
//!   function's timeout), at a request boundary, and stores where it
//!   stopped in the ledger (a conditional write); the next run starts
//!   there, reaches the end, wraps around to the beginning and stops where
//!   it began: every active request is reached, however many there are.
//! - The report, failures included, is always returned, so its metrics are
//!   emitted whatever happened.
//! - A request costs the sweep a constant number of ledger reads whatever
//!   its number of shards: whether a purge has a live worker is one index
//!   read (`Ledger::latest_leases`), not a read of every shard.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tracing::{info, warn};

use crate::error::{LedgerError, ServiceError};
use crate::ids::RequestId;
use crate::model::{DeletionRequest, Status};
use crate::ports::{Clock, Holds, Ledger, SweepMark, SweepMarks, Timers, Wake};
use crate::requests::settle_parent;
use crate::retry::retry_on_conflict;

/// Requests read per page of the `active` listing: a run that stops
/// mid-page examines at most this many again on its next run.
const PAGE: u32 = 50;

/// An unfinished request with less than this left before its deadline is
/// at risk (the metric and alarm `DeadlinesAtRisk`).
pub const DEADLINE_AT_RISK: Duration = Duration::days(5);

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub examined: u64,
    /// Timers of requests in grace, armed again (idempotent).
    pub rearmed: u64,
    /// Requests whose grace had ended without a purge, started.
    pub started: Vec<RequestId>,
    /// Purges whose lease had expired, started again.
    pub redriven: Vec<RequestId>,
    /// Failed purges retried.
    pub retried: Vec<RequestId>,
    /// Failed purges left alone: they used up their attempts.
    pub exhausted: Vec<RequestId>,
    /// Requests found unfinished past their deadline (each once).
    pub deadline_missed: Vec<RequestId>,
    /// Requests examined that are unfinished with less than
    /// `DEADLINE_AT_RISK` left (on hold: their deadline is paused, not counted).
    pub deadlines_at_risk: u64,
    /// Requests on hold whose hold was gone, resumed.
    pub released: Vec<RequestId>,
    /// What the sweep could not do; the walk went on past each.
    pub failures: Vec<SweepFailure>,
    /// Whether the run stopped at its deadline before it went round.
    pub out_of_time: bool,
}

/// One request (or ledger item) the sweep could not handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepFailure {
    /// The request, when the failure names one.
    pub request_id: Option<RequestId>,
    /// What failed: a ledger item's key, or the step.
    pub item: String,
    pub error: String,
}

impl SweepReport {
    fn fail(&mut self, request_id: Option<&RequestId>, item: impl Into<String>, error: impl ToString) {
        let failure = SweepFailure {
            request_id: request_id.cloned(),
            item: item.into(),
            error: error.to_string(),
        };
        warn!(request_id = ?failure.request_id, item = %failure.item, error = %failure.error, "sweep: skipped");
        self.failures.push(failure);
    }
}

pub struct Sweeper<L, T, C> {
    ledger: L,
    timers: T,
    clock: C,
    /// How far ahead a timer for "now" is armed.
    pub min_lead: Duration,
    /// A request in grace whose grace ended this long ago without a purge
    /// is started by the sweep (its own timer may still be on its way).
    pub late_after: Duration,
    /// Purge attempts after which a failed request is given up.
    pub max_attempts: u32,
    /// How long one run may take (by the `Clock`); below the function's
    /// timeout.
    pub budget: Duration,
}

/// Where a walk stopped, and why.
enum Stop {
    /// At the end of a lap: the next run starts at `cursor`.
    Lap(Option<String>),
    /// Out of time or unable to read on: the next run resumes at `cursor`.
    Early(Option<String>),
}

impl<L: Ledger + Holds + SweepMarks, T: Timers, C: Clock> Sweeper<L, T, C> {
    pub fn new(ledger: L, timers: T, clock: C) -> Self {
        Sweeper {
            ledger,
            timers,
            clock,
            min_lead: Duration::zero(),
            late_after: Duration::minutes(5),
            max_attempts: 5,
            budget: Duration::seconds(40),
        }
    }

    /// The sweep's clock's time.
    pub fn clock_now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// One run within the budget.
    pub async fn run(&self) -> Result<SweepReport, ServiceError> {
        self.run_until(self.clock.now() + self.budget).await
    }

    /// One run that starts no request's work at or after `stop_at`.
    /// Failures are in the report; it is always returned.
    pub async fn run_until(&self, stop_at: DateTime<Utc>) -> Result<SweepReport, ServiceError> {
        let mut report = SweepReport::default();
        let mark = match self.ledger.sweep_mark().await {
            Ok(mark) => mark,
            Err(e) => {
                report.fail(None, "sweep mark", e);
                SweepMark::default()
            }
        };
        let stop = self.walk(mark.cursor.clone(), stop_at, &mut report).await;
        let next = match stop {
            Stop::Lap(cursor) => cursor,
            Stop::Early(cursor) => {
                report.out_of_time = self.clock.now() >= stop_at;
                cursor
            }
        };
        if next != mark.cursor {
            let next = SweepMark {
                cursor: next,
                version: mark.version + 1,
            };
            match self.ledger.put_sweep_mark(&next).await {
                Ok(()) => {}
                // Another run moved it meanwhile: its place stands.
                Err(LedgerError::Conflict) => warn!("sweep mark moved by another run; kept"),
                Err(e) => report.fail(None, "sweep mark", e),
            }
        }
        info!(?report, "sweep done");
        Ok(report)
    }

    /// Walks the `active` listing from `start` round to where it began.
    async fn walk(&self, start: Option<String>, stop_at: DateTime<Utc>, report: &mut SweepReport) -> Stop {
        let mut cursor = start.clone();
        // Started at the beginning: the end is the end of the lap.
        let mut wrapped = start.is_none();
        let mut seen = HashSet::new();
        loop {
            if self.clock.now() >= stop_at {
                return Stop::Early(cursor);
            }
            let page = match self.ledger.active(PAGE, cursor.as_deref()).await {
                Ok(page) => page,
                // A stored cursor the ledger no longer takes: start over.
                Err(LedgerError::InvalidCursor) if cursor.is_some() && !wrapped => {
                    report.fail(None, "sweep mark", LedgerError::InvalidCursor);
                    (cursor, wrapped) = (None, true);
                    continue;
                }
                Err(e) => {
                    report.fail(None, "active requests page", e);
                    return Stop::Early(cursor);
                }
            };
            for u in &page.undecodable {
                report.fail(u.request_id.as_ref(), u.key.clone(), &u.reason);
            }
            for request in &page.items {
                if !seen.insert(request.id.clone()) {
                    // Round to where this run began.
                    return Stop::Lap(cursor);
                }
                if self.clock.now() >= stop_at {
                    return Stop::Early(cursor);
                }
                report.examined += 1;
                if let Err(e) = self.sweep_one(request, report).await {
                    report.fail(Some(&request.id), format!("request {}", request.id), e);
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None if !wrapped => (cursor, wrapped) = (None, true),
                None => return Stop::Lap(None),
            }
        }
    }

    async fn sweep_one(&self, r: &DeletionRequest, report: &mut SweepReport) -> Result<(), ServiceError> {
        let now = self.clock.now();
        if r.scope.holds_data()
            && r.status != Status::OnHold
            && r.given_up_at.is_none()
            && r.deadline - now < DEADLINE_AT_RISK
        {
            report.deadlines_at_risk += 1;
        }
        // Given up: it released its scope and is never written again.
        if r.given_up_at.is_some() {
            report.exhausted.push(r.id.clone());
            return Ok(());
        }
        // A request on hold has its deadline's clock stopped.
        if now > r.deadline
            && r.status != Status::OnHold
            && r.deadline_missed_at.is_none()
            && self.mark_deadline_missed(&r.id).await?
        {
            warn!(request_id = %r.id, deadline = %r.deadline, status = %r.status, "deadline missed");
            report.deadline_missed.push(r.id.clone());
        }
        if !r.scope.holds_data() {
            settle_parent(&self.ledger, &r.id, now).await?;
            return Ok(());
        }
        let soon = now + self.min_lead;
        match r.status {
            Status::Scheduled if now >= r.grace_ends_at + self.late_after => {
                self.timers.arm(&r.id, soon).await?;
                report.started.push(r.id.clone());
            }
            Status::Scheduled => {
                self.timers.arm(&r.id, r.grace_ends_at.max(soon)).await?;
                report.rearmed += 1;
            }
            Status::Purging => {
                // Nobody works on it: the lease that ends last (one index
                // read, whatever the shard count) has run out, or none is
                // held. A lagging index at worst wakes one worker more, or
                // leaves the redrive to the next sweep.
                let latest = self.ledger.latest_leases(&r.id, 1).await?.into_iter().next();
                let live = latest.is_some_and(|o| !o.looks_free(now));
                if !live {
                    self.timers.wake(&r.id, Wake::Sweep { retry: false }, soon).await?;
                    report.redriven.push(r.id.clone());
                }
            }
            Status::Verifying => {
                if r.lease.as_ref().is_none_or(|l| l.until <= now) {
                    self.timers.wake(&r.id, Wake::Sweep { retry: false }, soon).await?;
                    report.redriven.push(r.id.clone());
                }
            }
            Status::Failed if r.attempts < self.max_attempts => {
                self.timers.wake(&r.id, Wake::Sweep { retry: true }, soon).await?;
                report.retried.push(r.id.clone());
            }
            Status::Failed => {
                self.give_up(&r.id).await?;
                report.exhausted.push(r.id.clone());
            }
            Status::OnHold => {
                // Its hold is gone (a release that stopped half-way): resume.
                let released = match r.scope.workspace() {
                    Some(w) => self.ledger.hold(w).await?.is_none(),
                    None => false,
                };
                if released && crate::requests::resume_held(&self.ledger, &r.id, "sweep", now).await? {
                    report.released.push(r.id.clone());
                }
            }
            Status::Completed | Status::Revoked => {}
        }
        Ok(())
    }

    /// Gives up a failed request that used up its attempts, releasing its
    /// scope (conditionally; re-judged if another writer won).
    async fn give_up(&self, id: &RequestId) -> Result<(), ServiceError> {
        retry_on_conflict(id, || async {
            let Some(current) = self.ledger.get(id).await? else {
                return Ok(());
            };
            if !current.retryable() || current.attempts < self.max_attempts {
                return Ok(());
            }
            let next = current.give_up(self.clock.now(), "sweep")?;
            self.ledger.update(&next).await?;
            warn!(request_id = %id, attempts = next.attempts, "purge given up; scope released");
            Ok(())
        })
        .await
    }

    /// Records the missed deadline once; false if another writer won.
    async fn mark_deadline_missed(&self, id: &RequestId) -> Result<bool, ServiceError> {
        let Some(current) = self.ledger.get(id).await? else {
            return Ok(false);
        };
        if current.deadline_missed_at.is_some() || current.releases_scope() {
            return Ok(false);
        }
        let mut next = current.clone();
        next.version += 1;
        next.deadline_missed_at = Some(self.clock.now());
        match self.ledger.update(&next).await {
            Ok(()) => Ok(true),
            Err(LedgerError::Conflict) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::error::TimerError;
    use crate::ids::{AccountId, WorkspaceId};
    use crate::lifecycle::Periods;
    use crate::model::{Listing, Scope};
    use crate::ports::ManualClock;
    use crate::testing::MemoryLedger;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// Timers whose every call takes `cost` of the clock's time; some ids'
    /// CreateSchedule fails.
    #[derive(Clone)]
    struct SlowTimers {
        clock: ManualClock,
        cost: Duration,
        armed: Arc<Mutex<Vec<RequestId>>>,
        refuse: Arc<Mutex<HashSet<RequestId>>>,
    }

    impl SlowTimers {
        fn new(clock: &ManualClock, cost: Duration) -> Self {
            SlowTimers {
                clock: clock.clone(),
                cost,
                armed: Arc::default(),
                refuse: Arc::default(),
            }
        }
        fn call(&self, id: &RequestId) -> Result<(), TimerError> {
            self.clock.advance(self.cost);
            if self.refuse.lock().unwrap().contains(id) {
                return Err(TimerError::Unavailable(
                    "CreateSchedule: 500 Internal Server Error".into(),
                ));
            }
            self.armed.lock().unwrap().push(id.clone());
            Ok(())
        }
        fn armed(&self) -> Vec<RequestId> {
            self.armed.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Timers for SlowTimers {
        async fn arm(&self, id: &RequestId, _: DateTime<Utc>) -> Result<(), TimerError> {
            self.call(id)
        }
        async fn disarm(&self, _: &RequestId) -> Result<(), TimerError> {
            Ok(())
        }
        async fn wake(&self, id: &RequestId, _: Wake, _: DateTime<Utc>) -> Result<(), TimerError> {
            self.call(id)
        }
    }

    fn workspace_request(n: usize) -> DeletionRequest {
        let scope = Scope::Workspace {
            workspace: WorkspaceId::parse(&format!("ws{n:04}")).unwrap(),
        };
        let mut r = DeletionRequest::new(scope, "alice", None, t0(), Periods::default());
        r.grace_ends_at = t0() + Duration::days(5) + Duration::seconds(n as i64);
        r
    }

    fn sweeper(
        ledger: &MemoryLedger,
        timers: &SlowTimers,
        clock: &ManualClock,
    ) -> Sweeper<MemoryLedger, SlowTimers, ManualClock> {
        Sweeper::new(ledger.clone(), timers.clone(), clock.clone())
    }

    #[tokio::test]
    async fn requests_with_less_than_five_days_left_are_counted_at_risk_unless_held() {
        let (ledger, clock) = (MemoryLedger::new(), ManualClock::new(t0()));
        let timers = SlowTimers::new(&clock, Duration::zero());
        for n in 0..3 {
            ledger.insert(&workspace_request(n), None).await.unwrap();
        }
        let sweeper = sweeper(&ledger, &timers, &clock);
        assert_eq!(sweeper.run().await.unwrap().deadlines_at_risk, 0, "30 days left");
        clock.advance(Duration::days(25) + Duration::seconds(1));
        let held = ledger
            .list(&Listing::Workspace(WorkspaceId::parse("ws0000").unwrap()), 1, None)
            .await
            .unwrap();
        let held = held.items[0].put_on_hold(clock.now(), "ops", "litigation").unwrap();
        ledger.update(&held).await.unwrap();
        assert_eq!(
            sweeper.run().await.unwrap().deadlines_at_risk,
            2,
            "under 5 days left; the held one is paused"
        );
    }

    #[tokio::test]
    async fn a_request_that_fails_is_reported_and_the_walk_goes_on_to_the_tail() {
        let (ledger, clock) = (MemoryLedger::new(), ManualClock::new(t0()));
        let timers = SlowTimers::new(&clock, Duration::zero());
        // First in the walk: an account request whose final write is
        // refused (the lock's DeleteItem denied), a request whose
        // CreateSchedule fails, an item that does not decode.
        let scope = Scope::Account {
            account: AccountId::parse("ann").unwrap(),
        };
        let mut parent = DeletionRequest::new(scope, "ann", None, t0(), Periods::default());
        parent.grace_ends_at = t0();
        let mut child = workspace_request(9999);
        child.status = Status::Completed;
        child.parent = Some(parent.id.clone());
        parent.children = vec![child.id.clone()];
        ledger.put_request(child);
        ledger.put_request(parent.clone());
        ledger.refuse_updates_of(&parent.id, || {
            LedgerError::Unavailable("AccessDeniedException: dynamodb:DeleteItem".into())
        });
        let refused = workspace_request(0);
        timers.refuse.lock().unwrap().insert(refused.id.clone());
        ledger.put_request(refused.clone());
        let corrupt = RequestId::new();
        ledger.put_undecodable(
            &corrupt,
            t0() + Duration::days(5) + Duration::milliseconds(500),
            "no doc attribute",
        );
        let tail: Vec<_> = (1..=3).map(workspace_request).collect();
        tail.iter().for_each(|r| ledger.put_request(r.clone()));

        let report = sweeper(&ledger, &timers, &clock).run().await.unwrap();
        assert_eq!(report.rearmed, 3, "{report:?}");
        assert_eq!(timers.armed(), tail.iter().map(|r| r.id.clone()).collect::<Vec<_>>());
        let failed: HashSet<_> = report.failures.iter().map(|f| f.request_id.clone()).collect();
        assert_eq!(
            failed,
            HashSet::from([Some(parent.id.clone()), Some(refused.id), Some(corrupt)])
        );
        let refusal = report
            .failures
            .iter()
            .find(|f| f.request_id.as_ref() == Some(&parent.id));
        assert!(refusal.is_some_and(|f| f.error.contains("DeleteItem")), "{report:?}");
        assert!(!report.out_of_time);
    }

    #[tokio::test]
    async fn a_sweep_out_of_time_stops_and_the_next_resumes_there_and_wraps_around() {
        let (ledger, clock) = (MemoryLedger::new(), ManualClock::new(t0()));
        // Every CreateSchedule takes a second; a run may take 50.
        let timers = SlowTimers::new(&clock, Duration::seconds(1));
        let requests: Vec<_> = (0..120).map(workspace_request).collect();
        requests.iter().for_each(|r| ledger.put_request(r.clone()));
        let mut sweep = sweeper(&ledger, &timers, &clock);
        sweep.budget = Duration::seconds(50);

        let first = sweep.run().await.unwrap();
        assert!(first.out_of_time && first.examined == 50, "{first:?}");
        assert_eq!(
            ledger.sweep_mark().await.unwrap().version,
            1,
            "where it stopped is stored"
        );
        let second = sweep.run().await.unwrap();
        assert!(second.out_of_time && second.examined == 50, "{second:?}");
        let third = sweep.run().await.unwrap();
        assert_eq!(third.examined, 50, "{third:?}");
        // 100..119, then round to the beginning: 0..29.
        let armed = timers.armed();
        let ids: Vec<_> = requests.iter().map(|r| r.id.clone()).collect();
        assert_eq!(armed[..120], ids[..], "each run took up where the last stopped");
        assert_eq!(armed[120..], ids[..30], "and wrapped around");

        // With time enough, a run from a stored place goes round once.
        sweep.budget = Duration::hours(1);
        let mark = ledger.sweep_mark().await.unwrap();
        let resume = SweepMark {
            cursor: Some(ledger.active_cursor_after(&requests[69])),
            version: mark.version + 1,
        };
        ledger.put_sweep_mark(&resume).await.unwrap();
        let lap = sweep.run().await.unwrap();
        assert_eq!(lap.examined, 120, "{lap:?}");
        assert!(!lap.out_of_time);
    }

    #[tokio::test]
    async fn a_purge_is_redriven_only_once_its_last_lease_ran_out_and_no_shard_is_read() {
        use crate::model::Shard;
        use crate::testing::LedgerOp;
        let (ledger, clock) = (MemoryLedger::new(), ManualClock::new(t0() + Duration::days(6)));
        let timers = SlowTimers::new(&clock, Duration::zero());
        let mut purging = workspace_request(1);
        purging.status = Status::Purging;
        ledger.put_request(purging.clone());
        let now = clock.now();
        let shards: Vec<Shard> = (0..300)
            .map(|i| Shard::planned(&purging.id, i, "archive", "b", &format!("ws0001/s{i:03}/"), "ws0001/"))
            .collect();
        ledger.insert_shards(&shards).await.unwrap();
        // One shard done, one whose worker died, one held for ten minutes more.
        ledger.update_shard(&shards[0].finished()).await.unwrap();
        let dead = shards[1].claimed("dead", now - Duration::minutes(20), Duration::minutes(16));
        ledger.update_shard(&dead).await.unwrap();
        let live = shards[2].claimed("w", now, Duration::minutes(10));
        ledger.update_shard(&live).await.unwrap();
        let sweep = sweeper(&ledger, &timers, &clock);

        let report = sweep.run().await.unwrap();
        assert!(report.redriven.is_empty(), "a worker holds a shard: {report:?}");
        assert_eq!(ledger.calls(LedgerOp::Shards), 0, "no shard is read");
        assert_eq!(ledger.calls(LedgerOp::LatestLease), 1, "one index read");
        // Its lease runs out: nobody works on the purge any more.
        clock.advance(Duration::minutes(11));
        let report = sweep.run().await.unwrap();
        assert_eq!(report.redriven, vec![purging.id.clone()]);
        assert_eq!(ledger.calls(LedgerOp::Shards), 0);
    }

    #[tokio::test]
    async fn a_failed_request_out_of_attempts_is_given_up_and_releases_its_scope() {
        let (ledger, clock) = (MemoryLedger::new(), ManualClock::new(t0() + Duration::days(6)));
        let timers = SlowTimers::new(&clock, Duration::zero());
        let mut failed = workspace_request(1);
        failed.status = Status::Failed;
        failed.attempts = 5;
        failed.failure = Some("boom".into());
        ledger.put_request(failed.clone());
        let sweep = sweeper(&ledger, &timers, &clock);

        let report = sweep.run().await.unwrap();
        assert_eq!(report.exhausted, vec![failed.id.clone()]);
        assert_eq!(
            ledger.active_for(&failed.scope).await.unwrap(),
            None,
            "the scope may be asked again"
        );
        let stored = ledger.request(&failed.id).unwrap();
        assert!(stored.given_up_at.is_some() && !stored.retryable());
        assert_eq!(stored.version, failed.version + 1);
        // Later sweeps still count it, and never write it again.
        clock.advance(Duration::days(40));
        let again = sweep.run().await.unwrap();
        assert_eq!(again.exhausted, vec![failed.id.clone()]);
        assert_eq!(again.deadline_missed, Vec::<RequestId>::new());
        assert_eq!(ledger.request(&failed.id).unwrap().version, stored.version);
        assert!(timers.armed().is_empty(), "never retried");
    }
}
