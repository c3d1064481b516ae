//! The domain of the data-deletion service: requests and their lifecycle,
//! the data map, the purge, and the ports the adapters implement.
//!
//! Nothing in this crate knows AWS: the `deletion-aws` crate implements the
//! ports against DynamoDB, S3 and EventBridge Scheduler.

pub mod access;
pub mod authorization;
pub mod callbacks;
pub mod config;
pub mod datamap;
pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod model;
pub mod plan;
pub mod ports;
pub mod purge;
pub use model::regulation;
pub mod requests;
pub mod rewrite;
pub mod signing;
pub mod status;
pub mod stream;
pub mod sweep;
pub mod timers;

pub use error::{DeliveryError, InputError, LedgerError, ServiceError, StoreError, TimerError};
