//! Keeping each request's one-shot timer in step with the ledger.

use crate::error::ServiceError;
use crate::ids::RequestId;
use crate::model::Status;
use crate::ports::{Clock, Ledger, Timers, Wake};
use crate::requests::settle_parent;

/// What the reconciler did for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    Armed,
    Disarmed,
}

pub struct TimerReconciler<L, T, C> {
    ledger: L,
    timers: T,
    clock: C,
    /// The earliest a timer may fire, from now: a time already past (no
    /// grace, or a timer re-armed late) is armed this far ahead, since the
    /// scheduler may not run a one-shot time in the past.
    min_lead: chrono::Duration,
    /// How long before the grace ends a reminder fires (none if `None`).
    reminder: Option<chrono::Duration>,
}

impl<L: Ledger, T: Timers, C: Clock> TimerReconciler<L, T, C> {
    pub fn new(ledger: L, timers: T, clock: C) -> Self {
        TimerReconciler {
            ledger,
            timers,
            clock,
            min_lead: chrono::Duration::zero(),
            reminder: Some(chrono::Duration::hours(24)),
        }
    }

    /// A reminder this long before each grace ends (`None`: no reminders).
    pub fn with_reminder(mut self, before: Option<chrono::Duration>) -> Self {
        self.reminder = before;
        self
    }

    pub fn with_min_lead(mut self, lead: chrono::Duration) -> Self {
        self.min_lead = lead;
        self
    }

    /// Reads the request from the ledger (not from the event that named it,
    /// which may be stale or replayed) and arms or removes its timer so that
    /// only a request in grace has one.
    pub async fn reconcile(&self, id: &RequestId) -> Result<TimerAction, ServiceError> {
        let request = self.ledger.get(id).await?;
        // A child's change may change what its account request sums up to.
        if let Some(parent) = request.as_ref().and_then(|r| r.parent.as_ref()) {
            settle_parent(&self.ledger, parent, self.clock.now()).await?;
        }
        match request {
            Some(r) if r.status == Status::Scheduled && r.scope.holds_data() => {
                // A grace already over (none for a source's days) fires now.
                let at = r.grace_ends_at.max(self.clock.now() + self.min_lead);
                self.timers.arm(id, at).await?;
                // So that a deletion nobody meant is noticed in time: only
                // while the reminder's time is still ahead.
                if let Some(before) = self.reminder {
                    let remind_at = r.grace_ends_at - before;
                    if remind_at > self.clock.now() + self.min_lead {
                        self.timers.wake(id, Wake::Reminder, remind_at).await?;
                    }
                }
                Ok(TimerAction::Armed)
            }
            _ => {
                self.timers.disarm(id).await?;
                Ok(TimerAction::Disarmed)
            }
        }
    }
}
