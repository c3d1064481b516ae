//! The listings the API pages through: a workspace's deletions, an
//! account's deletions, a workspace's regulations; newest first, a page at
//! a time with an opaque cursor.
//!
//! Invariant: `page` is the one place that names a listing to the ledger,
//! and a cursor handed out for one listing is refused on another (by the
//! ledger).

use crate::ids::{AccountId, WorkspaceId};
use crate::ports::{Ledger, RequestPage};
use crate::ServiceError;

/// Which listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// Every deletion of a workspace (complete purges included).
    WorkspaceDeletions(WorkspaceId),
    /// An account's own requests.
    AccountDeletions(AccountId),
    /// A workspace's regulations.
    Regulations(WorkspaceId),
}

/// One page of `listing`, of at most `limit` requests.
pub async fn page<L: Ledger + ?Sized>(
    ledger: &L,
    listing: &Listing,
    limit: u32,
    cursor: Option<&str>,
) -> Result<RequestPage, ServiceError> {
    // The ledger's port still takes its partition's name: when it takes a
    // typed listing, this is the only line to change.
    let key = match listing {
        Listing::WorkspaceDeletions(w) => format!("WS#{w}"),
        Listing::AccountDeletions(a) => format!("ACCOUNT#{a}"),
        Listing::Regulations(w) => format!("REGS#{w}"),
    };
    Ok(ledger.list(&key, limit, cursor).await?)
}
