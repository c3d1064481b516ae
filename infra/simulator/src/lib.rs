//! The scale simulation: the real purge engine (planner, workers, leases,
//! checkpoints, hand-offs, verification and receipts, through the same
//! ports) against S3, DynamoDB, EventBridge Scheduler and Lambda as their
//! documented limits describe them, on a paused tokio clock, so that
//! hours of AWS time take seconds to minutes here.
//!
//! - `limits`: every limit, latency and price assumed, with its source.
//! - `keyspace`: a bucket's objects generated from a layout.
//! - `s3`, `dynamo`, `cloud`: the simulated services (`ObjectStore`;
//!   `Ledger` and the other ledger ports; `Timers`, `Clock` and Lambda).
//! - `catalog`: the README's scenarios, by name.
//! - `scenario`: one run, from the requests' creation to their receipts,
//!   and the check that nothing in scope is left and nothing outside it
//!   was touched.
//! - `report`: the figures and the bill.
//!
//! Reproducible: one seed drives every random choice (backoff jitter, the
//! partitions' key samples); the engine's own ids (request ids) differ
//! from run to run but decide nothing the figures depend on.

pub mod catalog;
pub mod cloud;
pub mod dynamo;
pub mod keyspace;
pub mod limits;
pub mod report;
pub mod s3;
pub mod scenario;
