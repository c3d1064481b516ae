//! The suppression list as an ingest path asks it: one user in one read,
//! or a batch in one call; and "was this person deleted?", by the
//! subject's keyed digest.
//!
//! Invariants: a user without an entry is not suppressed; a batch answer
//! follows the ids in the order asked (duplicates included) while each
//! user is read once (the store refuses a batch that names a key twice).
//! A lookup finds a subject by its keyed digest only, so it answers the
//! same before and after the regulation's raw ids are forgotten.

use crate::ids::{SourceId, WorkspaceId};
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

/// A further page of the regulations that named the subject of `digest`
/// (no suppression entry read), from `cursor` of an earlier page.
pub async fn older<R: Regulations + ?Sized>(
    store: &R,
    digest: &str,
    workspace: &WorkspaceId,
    limit: u32,
    cursor: &str,
) -> Result<SubjectRecord, ServiceError> {
    let mut record = store.subject_record(digest, None, limit, Some(cursor)).await?;
    record.regulations.retain(|r| r.scope.workspace() == Some(workspace));
    Ok(record)
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

/// The entry that decides whether `user` is blocked in `workspace` (in
/// `source`'s data, if given), in one read: the workspace's entry if it
/// suppresses (a workspace's suppression wins), else the source's if it
/// does, else whichever exists (lifted).
pub async fn entry_in<R: Regulations + ?Sized>(
    store: &R,
    workspace: &WorkspaceId,
    source: Option<&SourceId>,
    user: &UserId,
) -> Result<Option<Suppression>, ServiceError> {
    let found = store
        .suppressions(workspace, source, std::slice::from_ref(user))
        .await?;
    Ok(deciding(&found, user).cloned())
}

fn deciding<'a>(found: &'a [Suppression], user: &UserId) -> Option<&'a Suppression> {
    let mine = || found.iter().filter(move |s| &s.user_id == user);
    mine()
        .find(|s| s.suppressed && s.source.is_none())
        .or_else(|| mine().find(|s| s.suppressed))
        .or_else(|| mine().find(|s| s.source.is_none()))
        .or_else(|| mine().next())
}

/// Whether each of `ids` is suppressed (in the workspace, or in
/// `source`'s data: either list blocks), in the order asked.
pub async fn check<R: Regulations + ?Sized>(
    store: &R,
    workspace: &WorkspaceId,
    source: Option<&SourceId>,
    ids: &[UserId],
) -> Result<Vec<(UserId, bool)>, ServiceError> {
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    let found = store.suppressions(workspace, source, &unique).await?;
    Ok(ids
        .iter()
        .map(|id| (id.clone(), deciding(&found, id).is_some_and(|s| s.suppressed)))
        .collect())
}
