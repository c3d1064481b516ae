//! Timers in memory, as EventBridge Scheduler behaves for the adapter
//! (`deletion-aws/src/scheduler.rs`): one grace timer per request (arming
//! it again keeps the one armed), one wake per request and reason (the
//! same again keeps the first), `disarm` removes the grace timer and the
//! reminder. Every call is recorded, a refused one too, in order.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{lock, Faults};
use crate::error::TimerError;
use crate::ids::RequestId;
use crate::ports::{Timers, Wake};

/// The timers' operations, to plan faults on and count calls of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimerOp {
    Arm,
    Disarm,
    Wake,
}

/// One call, as the code under test made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerCall {
    Arm {
        id: RequestId,
        at: DateTime<Utc>,
    },
    Disarm {
        id: RequestId,
    },
    Wake {
        id: RequestId,
        why: Wake,
        at: DateTime<Utc>,
    },
}

#[derive(Default)]
struct State {
    calls: Vec<TimerCall>,
    armed: Vec<(RequestId, DateTime<Utc>)>,
    wakes: Vec<(RequestId, Wake, DateTime<Utc>)>,
    faults: Faults<TimerOp, TimerError>,
}

/// Timers in memory (see the module's invariants). Clones share them.
#[derive(Clone, Default)]
pub struct MemoryTimers(Arc<Mutex<State>>);

impl MemoryTimers {
    pub fn new() -> Self {
        MemoryTimers::default()
    }

    /// The next `times` calls of `op` fail with `error()`.
    pub fn fail(&self, op: TimerOp, times: usize, error: impl Fn() -> TimerError + Send + Sync + 'static) {
        lock(&self.0).faults.plan(op, 0, times, Arc::new(error));
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<TimerCall> {
        lock(&self.0).calls.clone()
    }

    /// When the request's grace timer fires, if one is armed.
    pub fn armed(&self, id: &RequestId) -> Option<DateTime<Utc>> {
        let s = lock(&self.0);
        s.armed.iter().find(|(r, _)| r == id).map(|(_, at)| *at)
    }

    /// The wakes standing for a request, in the order they were armed.
    pub fn wakes(&self, id: &RequestId) -> Vec<(Wake, DateTime<Utc>)> {
        let s = lock(&self.0);
        s.wakes
            .iter()
            .filter(|(r, _, _)| r == id)
            .map(|(_, why, at)| (*why, *at))
            .collect()
    }
}

#[async_trait]
impl Timers for MemoryTimers {
    async fn arm(&self, id: &RequestId, at: DateTime<Utc>) -> Result<(), TimerError> {
        let mut s = lock(&self.0);
        s.calls.push(TimerCall::Arm { id: id.clone(), at });
        s.faults.call(TimerOp::Arm)?;
        if !s.armed.iter().any(|(r, _)| r == id) {
            s.armed.push((id.clone(), at));
        }
        Ok(())
    }

    async fn disarm(&self, id: &RequestId) -> Result<(), TimerError> {
        let mut s = lock(&self.0);
        s.calls.push(TimerCall::Disarm { id: id.clone() });
        s.faults.call(TimerOp::Disarm)?;
        s.armed.retain(|(r, _)| r != id);
        s.wakes.retain(|(r, why, _)| !(r == id && *why == Wake::Reminder));
        Ok(())
    }

    async fn wake(&self, id: &RequestId, why: Wake, at: DateTime<Utc>) -> Result<(), TimerError> {
        let mut s = lock(&self.0);
        s.calls.push(TimerCall::Wake {
            id: id.clone(),
            why,
            at,
        });
        s.faults.call(TimerOp::Wake)?;
        if !s.wakes.iter().any(|(r, w, _)| r == id && *w == why) {
            s.wakes.push((id.clone(), why, at));
        }
        Ok(())
    }
}
