//! The suppression list as an ingest path asks it: one user in one read,
//! or a batch in one call; and "was this person deleted?", by the
//! subject's keyed digest.
//!
//! Invariants: a user without an entry is not suppressed; a batch answer
//! follows the ids in the order asked (duplicates included) while each
//! user is read once (the store refuses a batch that names a key twice).
//! A lookup finds a subject by its keyed digest only, so it answers the
//! same before and after the regulation's raw ids are forgotten.

use crate::ids::WorkspaceId;
use crate::ports::{Regulations, SubjectRecord, Suppression};
use crate::regulation::{SubjectType, UserId};
use crate::subject_key::SubjectKey;
use crate::ServiceError;

/// What the ledger holds about one subject, and the digest it is kept by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub digest: String,
    pub record: SubjectRecord,
}

/// A page of the regulations that named the subject `id` of type
/// `subject_type` in `workspace`, newest first, and (for a user id) its
/// suppression entry.
pub async fn lookup<R: Regulations + ?Sized>(
    store: &R,
    key: &SubjectKey,
    workspace: &WorkspaceId,
    subject_type: &SubjectType,
    id: &UserId,
    page: (u32, Option<&str>),
) -> Result<Lookup, ServiceError> {
    let digest = key.digest(workspace, subject_type, id);
    let suppression_of = subject_type.is_user_id().then_some((workspace, id));
    let mut record = store.subject_record(&digest, suppression_of, page.0, page.1).await?;
    // The digest names the workspace; a regulation of another never shares it.
    record.regulations.retain(|r| r.scope.workspace() == Some(workspace));
    Ok(Lookup { digest, record })
}

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
