//! In-memory implementations of the ports, for fast unit tests of the
//! services and handlers (compiled for this crate's tests and, for other
//! crates, behind the `testing` feature).
//!
//! - `MemoryLedger`: `Ledger`, `Directory`, `Holds`, `Regulations`,
//!   `CallbackLedger` and `SweepMarks`, with the DynamoDB adapter's
//!   conditional writes.
//! - `MemoryStore`: `ObjectStore` with S3's buckets, versions, delete
//!   markers, multipart uploads and ETags, as the S3 adapter sees them.
//! - `MemoryTimers`: `Timers`, recording every call.
//!
//! Invariants every one of them keeps:
//! - It answers as its adapter does, not as a test would like: every
//!   conditional write of the adapter is conditional here on the same
//!   thing, refusals carry the same error, listings have the same order
//!   and page boundaries. Where it simplifies, its module says how.
//! - A fault planned with `fail`/`fail_after` answers the call instead of
//!   the port, and a failed call changes nothing.
//! - Clones share one state (`Arc<Mutex<..>>`): the test keeps one to look
//!   at what the code under test did.
//! - It is never the only test of an adapter: the integration tests in
//!   `tests/` run the same flows against DynamoDB Local and moto.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

mod ledger;
mod store;
mod timers;

pub use ledger::{LedgerOp, MemoryLedger};
pub use store::{MemoryStore, StoreOp};
pub use timers::{MemoryTimers, TimerCall, TimerOp};

/// Makes the error a planned fault answers with (errors are not `Clone`).
pub type MakeError<E> = Arc<dyn Fn() -> E + Send + Sync>;

/// A fault planned for one operation: after `skip` calls succeed, the next
/// `times` calls fail with `error()`.
struct Planned<O, E> {
    op: O,
    skip: usize,
    times: usize,
    error: MakeError<E>,
}

/// The faults planned for a port, and how often each operation was called.
pub(crate) struct Faults<O, E> {
    planned: Vec<Planned<O, E>>,
    calls: HashMap<O, usize>,
}

impl<O, E> Default for Faults<O, E> {
    fn default() -> Self {
        Faults {
            planned: Vec::new(),
            calls: HashMap::new(),
        }
    }
}

impl<O: Copy + Eq + Hash, E> Faults<O, E> {
    pub(crate) fn plan(&mut self, op: O, skip: usize, times: usize, error: MakeError<E>) {
        self.planned.push(Planned { op, skip, times, error });
    }

    /// Counts a call of `op`; the error it must answer with, if a fault is due.
    pub(crate) fn call(&mut self, op: O) -> Result<(), E> {
        *self.calls.entry(op).or_default() += 1;
        let mut due = None;
        for p in self.planned.iter_mut().filter(|p| p.op == op) {
            if p.skip > 0 {
                p.skip -= 1;
            } else if p.times > 0 && due.is_none() {
                p.times -= 1;
                due = Some(p.error.clone());
            }
        }
        self.planned.retain(|p| p.times > 0);
        match due {
            Some(error) => Err(error()),
            None => Ok(()),
        }
    }

    pub(crate) fn calls(&self, op: O) -> usize {
        self.calls.get(&op).copied().unwrap_or(0)
    }
}

/// Locks a state, a poisoned one too (a test that panicked holding it
/// already failed).
pub(crate) fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}
