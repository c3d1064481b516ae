//! The listings the API pages through: a workspace's deletions, an
//! account's deletions, a workspace's regulations; newest first, a page at
//! a time with an opaque cursor.
//!
//! Invariant: `page` is the one place that asks the ledger for a listing,
//! and a cursor handed out for one listing is refused on another (by the
//! ledger).

use crate::ports::{Ledger, RequestPage};
use crate::ServiceError;

/// Which listing: the model's [`Listing`], re-exported for the API.
pub use crate::model::Listing;

/// One page of `listing`, of at most `limit` requests.
pub async fn page<L: Ledger + ?Sized>(
    ledger: &L,
    listing: &Listing,
    limit: u32,
    cursor: Option<&str>,
) -> Result<RequestPage, ServiceError> {
    Ok(ledger.list(listing, limit, cursor).await?)
}
