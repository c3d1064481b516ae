//! Reading legal holds. Placing and releasing one change requests too,
//! so they live on `requests::Requests` (`place_hold`, `release_hold`);
//! this is the read the API needs beside them.
//!
//! Invariant: at most one hold stands per workspace; `None` means none
//! stands now.

use crate::ids::WorkspaceId;
use crate::ports::{Hold, Holds};
use crate::ServiceError;

/// The hold standing on `workspace`, if any.
pub async fn standing<H: Holds + ?Sized>(holds: &H, workspace: &WorkspaceId) -> Result<Option<Hold>, ServiceError> {
    Ok(holds.hold(workspace).await?)
}
