//! The grace-timer function: keeps one EventBridge Scheduler one-shot
//! schedule per request in grace, derived from the ledger's stream.

pub mod handler;

pub use handler::{BatchResponse, GraceTimer, StreamEvent, TimerEvent};
