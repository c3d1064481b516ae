//! The sweep: the safety net under at-least-once timers. Run on a recurring
//! schedule, it walks every request not in a final state and
//! - re-arms the timer of a request in grace (a no-op if it is there);
//! - starts a request whose grace ended without a purge (its timer lost);
//! - re-drives a purge whose worker's lease expired (the worker died);
//! - retries a failed purge, up to a bound of attempts;
//! - marks a request still unfinished past its 30-day deadline;
//! - settles account requests from their children;
//! - resumes a request on hold whose hold is gone (a release cut short).

use chrono::Duration;
use serde::Serialize;
use tracing::{info, warn};

use crate::error::{LedgerError, ServiceError};
use crate::ids::RequestId;
use crate::model::{DeletionRequest, Status};
use crate::ports::{Clock, Holds, Ledger, Timers, Wake};
use crate::requests::settle_parent;

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
    /// Requests on hold whose hold was gone, resumed.
    pub released: Vec<RequestId>,
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
    /// Purge attempts after which a failed request is left to a person.
    pub max_attempts: u32,
}

impl<L: Ledger + Holds, T: Timers, C: Clock> Sweeper<L, T, C> {
    pub fn new(ledger: L, timers: T, clock: C) -> Self {
        Sweeper {
            ledger,
            timers,
            clock,
            min_lead: Duration::zero(),
            late_after: Duration::minutes(5),
            max_attempts: 5,
        }
    }

    pub async fn run(&self) -> Result<SweepReport, ServiceError> {
        let mut report = SweepReport::default();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.ledger.active(200, cursor.as_deref()).await?;
            for request in &page.items {
                report.examined += 1;
                self.sweep_one(request, &mut report).await?;
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        info!(?report, "sweep done");
        Ok(report)
    }

    async fn sweep_one(&self, r: &DeletionRequest, report: &mut SweepReport) -> Result<(), ServiceError> {
        let now = self.clock.now();
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
                // Nobody works on it: every open shard is free or expired.
                let shards = self.ledger.shards(&r.id).await?;
                let live = shards
                    .iter()
                    .any(|s| !s.done && s.lease.as_ref().is_some_and(|l| l.until > now));
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
            Status::Failed => report.exhausted.push(r.id.clone()),
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

    /// Records the missed deadline once; false if another writer won.
    async fn mark_deadline_missed(&self, id: &RequestId) -> Result<bool, ServiceError> {
        let Some(current) = self.ledger.get(id).await? else {
            return Ok(false);
        };
        if current.deadline_missed_at.is_some() || current.status.is_terminal() {
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
