//! The suppression list as an ingest path asks it: one user in one read,
//! or a batch in one call.
//!
//! Invariants: a user without an entry is not suppressed; a batch answer
//! follows the ids in the order asked (duplicates included) while each
//! user is read once (the store refuses a batch that names a key twice).

use crate::ids::WorkspaceId;
use crate::ports::{Regulations, Suppression};
use crate::regulation::UserId;
use crate::ServiceError;

/// One user's entry, if the user has one.
pub async fn entry<R: Regulations + ?Sized>(
    store: &R,
    workspace: &WorkspaceId,
    user: &UserId,
) -> Result<Option<Suppression>, ServiceError> {
    Ok(store.suppression(workspace, user).await?)
}

/// A page of a workspace's entries, the latest set first; with
/// `suppressed_only`, lifted ones are left out (so a page may hold fewer
/// than `limit` while the cursor goes on).
pub async fn page<R: Regulations + ?Sized>(
    store: &R,
    workspace: &WorkspaceId,
    limit: u32,
    cursor: Option<&str>,
    suppressed_only: bool,
) -> Result<(Vec<Suppression>, Option<String>), ServiceError> {
    let (mut entries, next) = store.suppression_page(workspace, limit, cursor).await?;
    if suppressed_only {
        entries.retain(|e| e.suppressed);
    }
    Ok((entries, next))
}

/// Whether each of `ids` is suppressed, in the order asked.
pub async fn check<R: Regulations + ?Sized>(
    store: &R,
    workspace: &WorkspaceId,
    ids: &[UserId],
) -> Result<Vec<(UserId, bool)>, ServiceError> {
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    let found = store.suppressions(workspace, &unique).await?;
    Ok(ids
        .iter()
        .map(|id| (id.clone(), found.iter().any(|s| &s.user_id == id && s.suppressed)))
        .collect())
}
