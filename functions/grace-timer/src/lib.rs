//! The grace-timer function: keeps one EventBridge Scheduler one-shot
//! schedule per request in grace, derived from the ledger's stream; runs
//! the recurring sweep and the daily retention enforcement.

pub mod handler;
pub mod retention;

pub use handler::{BatchResponse, GraceTimer, StreamEvent, TimerEvent, SWEEP_MARGIN};
pub use retention::{RetentionEvent, RetentionTimer};

/// What the function is invoked with: the retention schedule's
/// `{"retention": true}`, or what the grace timer handles.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Invocation {
    Retention(RetentionEvent),
    Timer(TimerEvent),
}
