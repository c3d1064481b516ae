//! Errors of the domain layer.

use thiserror::Error;

use crate::status::Status;

/// Input that is refused before anything is written.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InputError {
    #[error("invalid {kind} id {value:?}: {reason}")]
    InvalidId {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid header {header}: {reason}")]
    InvalidHeader { header: &'static str, reason: &'static str },
    #[error("invalid body: {0}")]
    InvalidBody(String),
    #[error("invalid query parameter {param}: {reason}")]
    InvalidQuery { param: &'static str, reason: String },
}

/// Errors of the ledger port. Adapters map their SDK errors onto these.
#[derive(Debug, Error)]
pub enum LedgerError {
    /// A conditional write found the item changed since it was read.
    #[error("the request was changed concurrently")]
    Conflict,
    /// Another active request already holds the scope.
    #[error("scope {scope} is held by request {holder}")]
    ScopeBusy { scope: String, holder: String },
    /// The idempotency key was already used.
    #[error("idempotency key already used by request {holder}")]
    IdempotencyKeyUsed { holder: String },
    /// A pagination cursor that this ledger did not hand out.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// A stored item could not be decoded.
    #[error("corrupt ledger item {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The ledger could not be reached or refused the call.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// The ledger refuses this write whatever the retry (an item over
    /// DynamoDB's size limit, a validation error): nothing was written.
    #[error("ledger refused the write: {0}")]
    Refused(String),
}

/// Errors of the object-store port.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("bucket {0} does not exist")]
    NoSuchBucket(String),
    #[error("access denied to bucket {0}")]
    AccessDenied(String),
    /// A conditional write found the object changed since it was read
    /// (S3 `412 PreconditionFailed` or `409 ConditionalRequestConflict`).
    #[error("s3://{bucket}/{key} changed since it was read")]
    Changed { bucket: String, key: String },
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    /// The store asked for fewer requests (S3 `503 SlowDown`) beyond the
    /// SDK's retries, or kept refusing keys with `SlowDown`: transient by
    /// definition (S3 scales its partitions to the load), so a purge backs
    /// off and goes on; it never fails a request.
    #[error("object store throttled the purge: {0}")]
    Throttled(String),
}

/// Errors of the timer port.
#[derive(Debug, Error)]
pub enum TimerError {
    #[error("scheduler unavailable: {0}")]
    Unavailable(String),
    #[error("scheduler refused the schedule: {0}")]
    Rejected(String),
}

/// Why a callback could not be delivered (the receiver's own answer is a
/// status code, not an error).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// The URL resolves to an address callbacks may not go to.
    #[error("callback refused: {0}")]
    Refused(String),
    #[error("the receiver could not be reached: {0}")]
    Unreachable(String),
    #[error("the receiver did not answer within {0} seconds")]
    Timeout(u64),
}

/// Errors of the receipt signer.
#[derive(Debug, Error)]
pub enum SignError {
    #[error("signing service unavailable: {0}")]
    Unavailable(String),
    #[error("receipt cannot be encoded: {0}")]
    Encoding(String),
}

/// Errors of the application services, as the API and the handlers see them.
#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("deletion request {0} not found")]
    NotFound(String),
    /// The caller may not do this; nothing was written.
    #[error("{0}")]
    Forbidden(String),
    #[error("account {0} is not an admin of any workspace in the membership directory")]
    NoAdminWorkspaces(String),
    #[error("no store of the data map holds data of a {0}: check the data map's layouts")]
    NotInDataMap(String),
    #[error("no deletion is pending for {0}")]
    NothingPending(String),
    /// A change whose grace ended: in force, no longer revocable.
    #[error("{0}")]
    AlreadyInForce(String),
    /// Something the call names does not exist (the message says what).
    #[error("{0}")]
    Missing(String),
    #[error("the deletion request {id} was already revoked")]
    AlreadyRevoked { id: String },
    #[error("the grace period of deletion request {id} ended at {grace_ended_at}; the deletion is irreversible")]
    Irreversible { id: String, grace_ended_at: String },
    #[error("the deletion request {id} is {status} and can no longer change that way")]
    InvalidTransition { id: String, status: Status },
    /// The workspace's calls of this minute are used up.
    #[error("workspace {workspace} made {limit} calls of the regulations API this minute, its limit; try again in {retry_after_s} s")]
    RateLimited {
        workspace: String,
        limit: u32,
        retry_after_s: u64,
    },
    /// The regulation would pass the workspace's monthly subject quota.
    #[error("workspace {workspace} named {used} of its {limit} subjects this month ({month}); this regulation names {asked}, so none of it was accepted; the quota renews in {retry_after_s} s")]
    QuotaExceeded {
        workspace: String,
        month: String,
        limit: u64,
        used: u64,
        asked: u64,
        retry_after_s: u64,
    },
    /// A regulation a worker already took (or that ended).
    #[error("the regulation {id} is {shown}: {why}; it can no longer be cancelled")]
    NotCancellable { id: String, shown: String, why: String },
    #[error("the Idempotency-Key was already used for another deletion ({holder})")]
    IdempotencyKeyReused { holder: String },
    #[error("the request {id} changed concurrently too often; try again")]
    Contention { id: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Timer(#[from] TimerError),
    #[error(transparent)]
    Signing(#[from] SignError),
}
