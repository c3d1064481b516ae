//! The domain of the data-deletion service: requests and their lifecycle,
//! the data map, the purge, and the ports the adapters implement.
//!
//! Nothing in this crate knows AWS: the `deletion-aws` crate implements the
//! ports against DynamoDB, S3 and EventBridge Scheduler.
//!
//! The modules form layers, and nothing imports upward:
//!
//! 1. `status`, `ids`, `error`: the vocabulary; depend on nothing else.
//! 2. `model` (requests, shards, receipts, callback state, regulation
//!    types, and the values the ports exchange), `stream`: value types.
//! 3. Policies, pure: `lifecycle` (request transitions), `shards` (shard
//!    transitions), `retention_rules` (retention policy transitions),
//!    `datamap`, `access`, `rewrite` (the line filter), `config`.
//! 4. `ports`: traits only.
//! 5. Services: `requests`, `purge` (by phase), `sweep`, `callbacks`,
//!    `retention` (policies and their daily enforcement),
//!    `timers`, `plan`, `signing`, `subject_key` (keyed digests of subjects), `authorization`, the thin services the
//!    API calls (`memberships`, `holds`, `suppressions`, `listings`,
//!    `inspect`), and `retry` (the one read → decide → conditional write
//!    loop they share).
//! 6. `testing` (this crate's tests, and the `testing` feature for other
//!    crates' tests): the ports in memory, with their adapters' semantics.

// 1. The vocabulary.
pub mod error;
pub mod ids;
pub mod status;

// 2. Values.
pub mod model;
pub mod stream;

pub use model::regulation;

// 3. Policies.
pub mod access;
pub mod config;
pub mod datamap;
pub mod lifecycle;
pub mod retention_rules;
pub mod rewrite;
pub mod shards;

// 4. Ports.
pub mod ports;

// 5. Services.
pub mod authorization;
pub mod callbacks;
pub mod holds;
pub mod inspect;
pub mod listings;
pub mod memberships;
pub mod plan;
pub mod purge;
pub mod quotas;
pub mod requests;
pub mod retention;
pub mod retry;
pub mod signing;
pub mod subject_key;
pub mod suppressions;
pub mod sweep;
pub mod timers;

// In-memory ports, for fast tests of the services (and of other crates'
// handlers, with the `testing` feature).
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{DeliveryError, InputError, LedgerError, ServiceError, SignError, StoreError, TimerError};
