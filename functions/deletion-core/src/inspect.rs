//! What the status views show beside a request: its shards (a
//! regulation's per-store counts) and where its status callbacks stand.
//!
//! Invariant: reads only; a request without a callback URL has no
//! callback state to show.

use crate::callbacks::CallbackState;
use crate::model::{DeletionRequest, Shard};
use crate::ports::{CallbackLedger, Ledger};
use crate::ServiceError;

/// The request's shards, as the purge or rewrite left them.
pub async fn shards<L: Ledger + ?Sized>(ledger: &L, request: &DeletionRequest) -> Result<Vec<Shard>, ServiceError> {
    Ok(ledger.shards(&request.id).await?)
}

/// Where the request's callbacks stand: `None` without a callback URL,
/// `Some(None)` when none was delivered or tried yet.
pub async fn callbacks<L: CallbackLedger + ?Sized>(
    ledger: &L,
    request: &DeletionRequest,
) -> Result<Option<Option<CallbackState>>, ServiceError> {
    if request.callback.is_none() {
        return Ok(None);
    }
    Ok(Some(ledger.callback_state(&request.id).await?))
}
