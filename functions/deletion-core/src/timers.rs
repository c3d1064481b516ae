//! Keeping each request's one-shot timer in step with the ledger.

use crate::error::ServiceError;
use crate::ids::RequestId;
use crate::model::Status;
use crate::ports::{Ledger, Timers};

/// What the reconciler did for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    Armed,
    Disarmed,
}

pub struct TimerReconciler<L, T> {
    ledger: L,
    timers: T,
}

impl<L: Ledger, T: Timers> TimerReconciler<L, T> {
    pub fn new(ledger: L, timers: T) -> Self {
        TimerReconciler { ledger, timers }
    }

    /// Reads the request from the ledger (not from the event that named it,
    /// which may be stale or replayed) and arms or removes its timer so that
    /// only a request in grace has one.
    pub async fn reconcile(&self, id: &RequestId) -> Result<TimerAction, ServiceError> {
        match self.ledger.get(id).await? {
            Some(request) if request.status == Status::Scheduled => {
                self.timers.arm(id, request.grace_ends_at).await?;
                Ok(TimerAction::Armed)
            }
            _ => {
                self.timers.disarm(id).await?;
                Ok(TimerAction::Disarmed)
            }
        }
    }
}
