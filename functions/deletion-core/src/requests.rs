//! Creating, revoking and reading deletion requests (the intake's logic).
//!
//! Invariants:
//! - An `Idempotency-Key` belongs to its caller and to one scope: it is
//!   stored under a digest of (caller, scope, key), so another caller's key
//!   of the same name is another key. A key never finds, blocks or names
//!   anyone else's request.
//! - An account request records each child it is about to create (under
//!   an id derived from the account request and the workspace) before it
//!   creates any: however far an interrupted creation got, revoking the
//!   account request finds every child that exists, and asking again
//!   creates the missing ones under the same ids. The ledger writes a
//!   child only while its parent is not final, so a creation that resumes
//!   after the revoke adds nothing.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::error::{InputError, LedgerError, ServiceError};
use crate::ids::{AccountId, IdempotencyKey, RequestId, SourceId, WorkspaceId};
use crate::lifecycle::{summarize, Periods};
use crate::model::callbacks::CallbackUrl;
use crate::model::{DeletionRequest, Listing, Progress, Scope, Status};
use crate::ports::{Clock, Directory, Hold, Holds, Ledger, Regulations, RequestPage, Role};
use crate::regulation::{RegulationType, SubjectType, Subjects};
use crate::retry::{raced, retry_on_conflict};
use crate::subject_key::SubjectKey;

/// How far ahead of the service's clock a regulation's `submitted_at` may
/// be (the caller's clock may run a little fast).
pub const SUBMITTED_AT_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// What a new request may carry besides its scope and reason.
#[derive(Default)]
struct Extras<'a> {
    /// Its id, when planned beforehand (an account request's child).
    id: Option<RequestId>,
    /// The account request it belongs to.
    parent: Option<&'a RequestId>,
    /// A regulation's subject ids and their keyed digests, stored before
    /// the request.
    subjects: Option<(&'a Subjects, &'a [String])>,
    /// When the subject asked (a regulation's deadline counts from it).
    submitted_at: Option<DateTime<Utc>>,
    /// Where its status changes are POSTed (a child reports to its
    /// parent's URL).
    callback: Option<&'a CallbackUrl>,
    /// The OpenDSR request a regulation answers.
    opendsr: Option<crate::model::opendsr::OpenDsr>,
}

/// What a regulation asks: its type, and which ids of which subject type.
pub struct Regulated<'a> {
    pub regulation: RegulationType,
    pub subject_type: SubjectType,
    pub subjects: &'a Subjects,
    /// When the subject made the request, if the caller knows (not after
    /// now): the deadline counts from it.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Only this source's data and suppression list; `None`: the
    /// workspace's.
    pub source: Option<SourceId>,
    /// Its id, when the caller names it (an OpenDSR `subject_request_id`),
    /// and the OpenDSR request it answers.
    pub named: Option<(RequestId, crate::model::opendsr::OpenDsr)>,
}

/// The outcome of a create: a new request, or the one already in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub request: DeletionRequest,
    /// False when an existing request was returned instead.
    pub created: bool,
    /// True when it was returned for the caller's own idempotency key:
    /// a retry of the call that created it.
    pub replayed: bool,
}

/// A child of an account request, as its parent shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildView {
    pub id: RequestId,
    pub scope: Scope,
    pub status: Status,
    pub grace_ends_at: DateTime<Utc>,
}

/// A request with its progress, as the status endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub request: DeletionRequest,
    /// For an account request: what its children sum up to.
    pub status: Status,
    pub progress: Progress,
    pub children: Vec<ChildView>,
    pub now: DateTime<Utc>,
}

/// The result of revoking an account request: what became of each child.
#[derive(Debug)]
pub struct Revoked {
    pub request: DeletionRequest,
    /// Children that could not be revoked (their grace ended), with why.
    pub kept: Vec<(RequestId, ServiceError)>,
}

pub struct Requests<L, C> {
    ledger: L,
    clock: C,
    periods: Periods,
}

/// Writes the status an account request's children sum up to (a final
/// one releases the account's scope). Called whenever a child changes.
pub async fn settle_parent<L: Ledger>(ledger: &L, parent: &RequestId, now: DateTime<Utc>) -> Result<(), ServiceError> {
    retry_on_conflict(parent, || async {
        let Some(current) = ledger.get(parent).await? else {
            return Ok(());
        };
        let mut statuses = Vec::with_capacity(current.children.len());
        for child in &current.children {
            if let Some(c) = ledger.get(child).await? {
                statuses.push(c.status);
            }
        }
        let Some(next) = current.settle_parent(&statuses, now) else {
            return Ok(());
        };
        Ok(ledger.update(&next).await?)
    })
    .await
}

/// `ON_HOLD → SCHEDULED` for one request (conditionally, re-judged on a
/// race); false if it was no longer on hold.
pub async fn resume_held<L: Ledger>(
    ledger: &L,
    id: &RequestId,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    retry_on_conflict(id, || async {
        let Some(current) = ledger.get(id).await? else {
            return Ok(false);
        };
        if current.status != Status::OnHold {
            return Ok(false);
        }
        let next = current.release(now, by)?;
        ledger.update(&next).await?;
        Ok(true)
    })
    .await
}

/// Writes a regulation's suppression list change (suppress or lift) once
/// in full and records that it did; a no-op for other requests and for a
/// regulation whose change is recorded. The intake calls it on create (so
/// the suppression takes effect at once) and the purge worker again, so a
/// change the intake could not finish is finished.
pub async fn apply_suppression<L: Ledger + Regulations>(
    ledger: &L,
    request: DeletionRequest,
    subjects: Option<&Subjects>,
    now: DateTime<Utc>,
) -> Result<DeletionRequest, ServiceError> {
    let Scope::Regulation {
        workspace,
        regulation,
        source,
        ..
    } = &request.scope
    else {
        return Ok(request);
    };
    let Some(suppressed) = regulation.suppression() else {
        return Ok(request);
    };
    if request.suppression_applied_at.is_some() {
        return Ok(request);
    }
    let stored;
    let subjects = match subjects {
        Some(s) => s,
        None => {
            stored = ledger.subjects(&request.id).await?;
            &stored
        }
    };
    ledger
        .set_suppressed(
            workspace,
            source.as_ref(),
            subjects.ids(),
            suppressed,
            &request.id,
            request.created_at,
        )
        .await?;
    let (workspace, source) = (workspace.clone(), source.clone());
    // The first attempt judges the request as given, later ones a fresh read.
    let id = request.id.clone();
    let mut given = Some(request);
    let settled = retry_on_conflict(&id, || {
        let given = given.take();
        let id = &id;
        async move {
            let current = match given {
                Some(request) => request,
                None => ledger
                    .get(id)
                    .await?
                    .ok_or_else(|| ServiceError::NotFound(id.to_string()))?,
            };
            // Applied already, or cancelled meanwhile (taken back below).
            if current.suppression_applied_at.is_some() || current.status == Status::Revoked {
                return Ok(current);
            }
            let mut next = current;
            next.version += 1;
            next.suppression_applied_at = Some(now);
            ledger.update(&next).await?;
            Ok(next)
        }
    })
    .await?;
    if settled.status == Status::Revoked && suppressed {
        // A cancel that landed while this was being written lifted what
        // was there then: what was written after it goes too.
        ledger
            .lift_suppressions(&workspace, source.as_ref(), subjects.ids(), &id)
            .await?;
    }
    Ok(settled)
}

impl<L: Ledger + Directory + Regulations + Holds, C: Clock> Requests<L, C> {
    /// Places a legal hold on a workspace (or returns the one standing).
    pub async fn place_hold(&self, workspace: WorkspaceId, reason: String, by: &str) -> Result<Hold, ServiceError> {
        let hold = Hold {
            workspace,
            reason,
            placed_by: by.to_owned(),
            since: self.clock.now(),
        };
        Ok(self.ledger.place_hold(&hold).await?)
    }

    /// Lifts a workspace's legal hold and resumes every request of the
    /// workspace that waits on it (the sweep resumes any this misses).
    pub async fn release_hold(
        &self,
        workspace: &WorkspaceId,
        by: &str,
    ) -> Result<(Hold, Vec<RequestId>), ServiceError> {
        let Some(hold) = self.ledger.release_hold(workspace).await? else {
            return Err(ServiceError::NothingPending(format!(
                "a legal hold on workspace {workspace}"
            )));
        };
        let mut resumed = Vec::new();
        for listing in [
            Listing::Workspace(workspace.clone()),
            Listing::Regulations(workspace.clone()),
        ] {
            let mut cursor: Option<String> = None;
            loop {
                let page = self.ledger.list(&listing, 100, cursor.as_deref()).await?;
                for r in page.items.iter().filter(|r| r.status == Status::OnHold) {
                    if resume_held(&self.ledger, &r.id, by, self.clock.now()).await? {
                        resumed.push(r.id.clone());
                    }
                }
                cursor = page.next;
                if cursor.is_none() {
                    break;
                }
            }
        }
        Ok((hold, resumed))
    }

    pub fn new(ledger: L, clock: C, periods: Periods) -> Self {
        Requests { ledger, clock, periods }
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    pub fn periods(&self) -> Periods {
        self.periods
    }

    pub fn ledger(&self) -> &L {
        &self.ledger
    }

    pub async fn fetch(&self, id: &RequestId) -> Result<DeletionRequest, ServiceError> {
        self.ledger
            .get(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.to_string()))
    }
}

/// Creating a request (or finding the one in place).
impl<L: Ledger + Directory + Regulations + Holds, C: Clock> Requests<L, C> {
    /// Returns the request a (scoped) idempotency key names, if it was for `scope`.
    async fn replay(&self, key: &IdempotencyKey, scope: &Scope) -> Result<Option<DeletionRequest>, ServiceError> {
        let Some(holder) = self.ledger.by_idempotency_key(key, self.clock.now()).await? else {
            return Ok(None);
        };
        let existing = self.fetch(&holder).await?;
        if &existing.scope == scope {
            Ok(Some(existing))
        } else {
            Err(ServiceError::IdempotencyKeyReused {
                holder: holder.to_string(),
            })
        }
    }

    /// Creates a deletion of `scope`, or returns the one already active for
    /// it (or already created by `actor` with the same idempotency key for
    /// the same scope).
    pub async fn create(
        &self,
        scope: Scope,
        actor: &str,
        reason: Option<String>,
        idempotency_key: Option<&IdempotencyKey>,
        callback: Option<&CallbackUrl>,
    ) -> Result<Created, ServiceError> {
        let extras = Extras {
            callback,
            ..Extras::default()
        };
        let key = idempotency_key.map(|k| scoped_key(actor, &scope, k)).transpose()?;
        self.create_with(scope, actor, reason, key.as_ref(), extras).await
    }

    /// Creates a regulation about `subjects` of a workspace, or returns the
    /// one under way for the same type and ids; its suppression list change
    /// (if any) is written before it answers.
    ///
    /// Before the regulation, each subject's keyed digest (`key`) is
    /// recorded with its id, so the lookup finds it by digest once the raw
    /// ids are forgotten; the scope names the set by its keyed digest.
    pub async fn create_regulation(
        &self,
        workspace: WorkspaceId,
        asked: Regulated<'_>,
        key: &SubjectKey,
        actor: &str,
        idempotency_key: Option<&IdempotencyKey>,
        callback: Option<&CallbackUrl>,
    ) -> Result<Created, ServiceError> {
        let Regulated {
            regulation,
            subject_type,
            subjects,
            submitted_at,
            source,
            named,
        } = asked;
        let (id, opendsr) = named.unzip();
        if submitted_at.is_some_and(|at| at > self.clock.now() + SUBMITTED_AT_SKEW) {
            return Err(InputError::InvalidBody("submitted_at is in the future".into()).into());
        }
        let digests = key.digests(&workspace, &subject_type, subjects);
        let scope = regulation_scope(workspace, regulation, subject_type, subjects, source, key);
        let key = idempotency_key.map(|k| scoped_key(actor, &scope, k)).transpose()?;
        let created = self
            .create_with(
                scope,
                actor,
                None,
                key.as_ref(),
                Extras {
                    id,
                    subjects: Some((subjects, &digests)),
                    submitted_at,
                    callback,
                    opendsr,
                    ..Extras::default()
                },
            )
            .await?;
        let request = apply_suppression(&self.ledger, created.request, Some(subjects), self.clock.now()).await?;
        Ok(Created { request, ..created })
    }

    /// Whether asking for this regulation would find one in place rather
    /// than make one: the same type and ids under way, or the one the
    /// caller's idempotency key made for them.
    pub async fn regulation_in_place(
        &self,
        workspace: &WorkspaceId,
        asked: &Regulated<'_>,
        key: &SubjectKey,
        actor: &str,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<bool, ServiceError> {
        let scope = regulation_scope(
            workspace.clone(),
            asked.regulation,
            asked.subject_type.clone(),
            asked.subjects,
            asked.source.clone(),
            key,
        );
        if self.ledger.active_for(&scope).await?.is_some() {
            return Ok(true);
        }
        let Some(idempotency_key) = idempotency_key else {
            return Ok(false);
        };
        let scoped = scoped_key(actor, &scope, idempotency_key)?;
        Ok(self.replay(&scoped, &scope).await?.is_some())
    }

    async fn create_with(
        &self,
        scope: Scope,
        actor: &str,
        reason: Option<String>,
        idempotency_key: Option<&IdempotencyKey>,
        extras: Extras<'_>,
    ) -> Result<Created, ServiceError> {
        let Extras {
            id,
            parent,
            subjects,
            submitted_at,
            callback,
            opendsr,
        } = extras;
        let (scope, id, reason, opendsr) = (&scope, &id, &reason, &opendsr);
        retry_on_conflict(&scope.lock_key(), || async move {
            if let Some(key) = idempotency_key {
                if let Some(request) = self.replay(key, scope).await? {
                    return Ok(Created {
                        request,
                        created: false,
                        replayed: true,
                    });
                }
            }
            let mut request =
                DeletionRequest::new(scope.clone(), actor, reason.clone(), self.clock.now(), self.periods);
            if let Some(id) = id {
                request.id = id.clone();
            }
            request.parent = parent.cloned();
            request.callback = callback.cloned();
            request.opendsr = opendsr.clone();
            if let Some(at) = submitted_at {
                request = request.submitted(at, self.periods);
            }
            if let Some((subjects, digests)) = subjects {
                // Beside the request, before it: a worker never finds a
                // regulation without its ids, nor the lookup a regulation
                // without its digests.
                self.ledger.put_subjects(&request.id, subjects).await?;
                self.ledger
                    .put_subject_refs(&request.id, request.created_at, scope.regulation_source(), digests)
                    .await?;
            }
            let inserted = self.ledger.insert(&request, idempotency_key).await;
            if let (Err(_), Some((_, digests))) = (&inserted, subjects) {
                // Not created: what was written for it goes (no raw id is
                // kept, nor a record naming it, for a regulation that does
                // not exist).
                let removed = match self.ledger.forget_subjects(&request.id).await {
                    Ok(()) => {
                        self.ledger
                            .remove_subject_refs(&request.id, request.created_at, digests)
                            .await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = removed {
                    tracing::warn!(request_id = %request.id, error = %e, "what was written for a regulation not created was not removed");
                }
            }
            match inserted {
                Ok(()) => Ok(Created {
                    request,
                    created: true,
                    replayed: false,
                }),
                Err(LedgerError::ScopeBusy { holder, .. }) => {
                    let holder = RequestId::parse(&holder).map_err(|e| LedgerError::Corrupt {
                        key: scope.lock_key(),
                        reason: e.to_string(),
                    })?;
                    // The holder may have just finished: then try again.
                    if let Some(request) = self.ledger.get(&holder).await? {
                        if !request.status.is_terminal() {
                            return Ok(Created {
                                request,
                                created: false,
                                replayed: false,
                            });
                        }
                    }
                    raced()
                }
                // Lost a race (same key, or the scope was just released), or
                // a child's parent became final meanwhile (then none is made).
                Err(LedgerError::IdempotencyKeyUsed { .. }) | Err(LedgerError::Conflict) => {
                    if let Some(parent) = parent {
                        let current = self.fetch(parent).await?;
                        if current.status.is_terminal() {
                            return Err(final_error(&current));
                        }
                    }
                    raced()
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }
}

/// Account requests: one child per workspace the account administers.
impl<L: Ledger + Directory + Regulations + Holds, C: Clock> Requests<L, C> {
    /// The workspaces where `account` is an admin.
    pub async fn admin_workspaces(&self, account: &AccountId) -> Result<Vec<WorkspaceId>, ServiceError> {
        Ok(self
            .ledger
            .memberships(account)
            .await?
            .into_iter()
            .filter(|m| m.role == Role::Admin)
            .map(|m| m.workspace)
            .collect())
    }

    /// Deletes every workspace where the account is an admin: one workspace
    /// request per workspace, grouped under an account request. Asking again
    /// returns the same account request and adds any child still missing
    /// (so an interrupted creation is completed, not duplicated).
    pub async fn create_account(
        &self,
        account: &AccountId,
        actor: &str,
        reason: Option<String>,
        idempotency_key: Option<&IdempotencyKey>,
        callback: Option<&CallbackUrl>,
    ) -> Result<Created, ServiceError> {
        let workspaces = self.admin_workspaces(account).await?;
        if workspaces.is_empty() {
            return Err(ServiceError::NoAdminWorkspaces(account.to_string()));
        }
        let scope = Scope::Account {
            account: account.clone(),
        };
        let created = self
            .create(scope, actor, reason.clone(), idempotency_key, callback)
            .await?;
        let request = self
            .ensure_children(created.request, &workspaces, actor, reason)
            .await?;
        Ok(Created {
            request,
            created: created.created,
            replayed: created.replayed,
        })
    }

    /// Adds the children `workspaces` still lack. Each is recorded on the
    /// parent (under an id derived from the parent and the workspace)
    /// before any is created, so a creation stopped midway leaves no child
    /// the parent does not name; a parent that became final meanwhile gets
    /// no more children.
    async fn ensure_children(
        &self,
        parent: DeletionRequest,
        workspaces: &[WorkspaceId],
        actor: &str,
        reason: Option<String>,
    ) -> Result<DeletionRequest, ServiceError> {
        if parent.status.is_terminal() {
            return Ok(parent);
        }
        let mut covered = Vec::new();
        for child in &parent.children {
            if let Some(c) = self.ledger.get(child).await? {
                covered.extend(c.scope.workspace().cloned());
            }
        }
        let mut planned = Vec::new();
        for workspace in workspaces.iter().filter(|w| !covered.contains(w)) {
            planned.push((workspace.clone(), child_id(&parent.id, workspace)?));
        }
        if planned.is_empty() {
            return Ok(parent);
        }
        let ids: Vec<RequestId> = planned.iter().map(|(_, id)| id.clone()).collect();
        let mut parent = self.record_children(&parent.id, &ids, None).await?;
        for (workspace, id) in planned {
            if parent.status.is_terminal() {
                break;
            }
            let extras = Extras {
                id: Some(id.clone()),
                parent: Some(&parent.id),
                callback: parent.callback.as_ref(),
                ..Extras::default()
            };
            let scope = Scope::Workspace { workspace };
            let child = match self.create_with(scope, actor, reason.clone(), None, extras).await {
                Ok(child) => child,
                // Revoked (or done) meanwhile: no more children under it.
                Err(ServiceError::AlreadyRevoked { .. } | ServiceError::Irreversible { .. }) => {
                    return self.fetch(&parent.id).await
                }
                Err(e) => return Err(e),
            };
            if child.request.id != id {
                // A deletion of that workspace was already under way: it
                // takes the planned child's place (named before adopted).
                parent = self
                    .record_children(&parent.id, std::slice::from_ref(&child.request.id), Some(&id))
                    .await?;
                self.adopt(&child.request.id, &parent.id).await?;
            }
        }
        Ok(parent)
    }

    /// Adds `add` to a parent's children (and drops `drop`), conditionally;
    /// a final parent is returned unchanged.
    async fn record_children(
        &self,
        parent: &RequestId,
        add: &[RequestId],
        drop: Option<&RequestId>,
    ) -> Result<DeletionRequest, ServiceError> {
        retry_on_conflict(parent, || async {
            let current = self.fetch(parent).await?;
            let mut next = current.clone();
            next.children.retain(|c| Some(c) != drop);
            for id in add {
                if !next.children.contains(id) {
                    next.children.push(id.clone());
                }
            }
            if current.status.is_terminal() || next.children == current.children {
                return Ok(current);
            }
            next.version += 1;
            self.ledger.update(&next).await?;
            Ok(next)
        })
        .await
    }

    /// Marks an existing request as a child of an account request.
    async fn adopt(&self, child: &RequestId, parent: &RequestId) -> Result<(), ServiceError> {
        retry_on_conflict(child, || async {
            let current = self.fetch(child).await?;
            if current.parent.is_some() {
                return Ok(());
            }
            let mut next = current;
            next.version += 1;
            next.parent = Some(parent.clone());
            Ok(self.ledger.update(&next).await?)
        })
        .await
    }
}

/// Revoking and reading requests.
impl<L: Ledger + Directory + Regulations + Holds, C: Clock> Requests<L, C> {
    /// Revokes the active deletion of `scope`, if it is still in grace.
    pub async fn revoke(&self, scope: &Scope, actor: &str) -> Result<Revoked, ServiceError> {
        if let Some(id) = self.ledger.active_for(scope).await? {
            return self.revoke_by_id(&id, actor).await;
        }
        // Nothing holds the scope: say what became of the latest request,
        // so a revoke that comes too late hears "irreversible", not "none".
        let latest = self
            .ledger
            .list(&scope.listing(), 20, None)
            .await?
            .items
            .into_iter()
            .find(|r| &r.scope == scope);
        match latest {
            Some(r) if r.status == Status::Revoked => Err(ServiceError::AlreadyRevoked { id: r.id.to_string() }),
            Some(r) => Err(ServiceError::Irreversible {
                id: r.id.to_string(),
                grace_ended_at: r.grace_ends_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }),
            None => Err(ServiceError::NothingPending(scope.describe())),
        }
    }

    /// Revokes a request by id while it is in grace; an account request
    /// revokes every child still in grace.
    pub async fn revoke_by_id(&self, id: &RequestId, actor: &str) -> Result<Revoked, ServiceError> {
        let current = self.fetch(id).await?;
        if !current.scope.holds_data() {
            return self.revoke_children(current, actor).await;
        }
        let request = self.revoke_one(id, actor).await?;
        if let Some(parent) = &request.parent {
            settle_parent(&self.ledger, parent, self.clock.now()).await?;
        }
        Ok(Revoked {
            request,
            kept: Vec::new(),
        })
    }

    /// Cancels a regulation no worker has taken yet; then lifts the
    /// suppressions it set (those a later regulation set stay) and forgets
    /// its ids. Asked again, it finishes that work and answers the same:
    /// an interrupted cancel is completed by a retry.
    pub async fn cancel_regulation(&self, id: &RequestId, actor: &str) -> Result<DeletionRequest, ServiceError> {
        let cancelled = retry_on_conflict(id, || async {
            let current = self.fetch(id).await?;
            match current.cancel(self.clock.now(), actor) {
                Ok(next) => {
                    self.ledger.update(&next).await?;
                    Ok(next)
                }
                Err(ServiceError::AlreadyRevoked { .. }) => Ok(current),
                Err(e) => Err(e),
            }
        })
        .await?;
        let Scope::Regulation {
            workspace,
            regulation,
            source,
            ..
        } = &cancelled.scope
        else {
            return Ok(cancelled);
        };
        if regulation.suppression() == Some(true) {
            let subjects = self.ledger.subjects(id).await?;
            self.ledger
                .lift_suppressions(workspace, source.as_ref(), subjects.ids(), id)
                .await?;
        }
        self.ledger.forget_subjects(id).await?;
        Ok(cancelled)
    }

    async fn revoke_one(&self, id: &RequestId, actor: &str) -> Result<DeletionRequest, ServiceError> {
        // Someone else changed it (a purge claim?): judged again.
        retry_on_conflict(id, || async {
            let current = self.fetch(id).await?;
            let next = current.revoke(self.clock.now(), actor)?;
            self.ledger.update(&next).await?;
            Ok(next)
        })
        .await
    }

    async fn revoke_children(&self, parent: DeletionRequest, actor: &str) -> Result<Revoked, ServiceError> {
        if parent.status.is_terminal() {
            return Err(final_error(&parent));
        }
        let mut kept = Vec::new();
        let (mut revoked_any, mut existing) = (false, 0);
        for child in &parent.children {
            match self.revoke_one(child, actor).await {
                Ok(_) => revoked_any = true,
                // Recorded but never created (a creation stopped midway).
                Err(ServiceError::NotFound(_)) => continue,
                Err(ServiceError::AlreadyRevoked { .. }) => {}
                Err(e @ (ServiceError::Irreversible { .. } | ServiceError::InvalidTransition { .. })) => {
                    kept.push((child.clone(), e))
                }
                Err(e) => return Err(e),
            }
            existing += 1;
        }
        if existing == 0 {
            // No child exists yet: the parent itself is revoked (so no
            // creation resumed later adds one under it).
            let request = self.revoke_one(&parent.id, actor).await?;
            return Ok(Revoked { request, kept });
        }
        settle_parent(&self.ledger, &parent.id, self.clock.now()).await?;
        let request = self.fetch(&parent.id).await?;
        if !revoked_any && !kept.is_empty() && kept.len() == existing {
            // Nothing could be revoked: every child is past its grace.
            return Err(ServiceError::Irreversible {
                id: parent.id.to_string(),
                grace_ended_at: parent
                    .grace_ends_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            });
        }
        Ok(Revoked { request, kept })
    }

    /// A request already read, with its progress and children.
    pub async fn view(&self, request: DeletionRequest) -> Result<RequestView, ServiceError> {
        let mut progress = self.progress(&request).await?;
        let mut children = Vec::new();
        for child in &request.children {
            if let Some(c) = self.ledger.get(child).await? {
                let p = self.progress(&c).await?;
                progress.prefixes_total += p.prefixes_total;
                progress.prefixes_done += p.prefixes_done;
                progress.shards_total += p.shards_total;
                progress.shards_done += p.shards_done;
                progress.deleted.add(&p.deleted);
                children.push(ChildView {
                    id: c.id,
                    scope: c.scope,
                    status: c.status,
                    grace_ends_at: c.grace_ends_at,
                });
            }
        }
        let status = if request.scope.holds_data() || request.status.is_terminal() {
            request.status
        } else {
            summarize(&children.iter().map(|c| c.status).collect::<Vec<_>>())
        };
        Ok(RequestView {
            request,
            status,
            progress,
            children,
            now: self.clock.now(),
        })
    }

    /// A request's progress: kept with it once completed (its shards then
    /// expire), else summed from its shards.
    async fn progress(&self, request: &DeletionRequest) -> Result<Progress, ServiceError> {
        match &request.final_progress {
            Some(p) => Ok(p.clone()),
            None => Ok(Progress::from_shards(&self.ledger.shards(&request.id).await?)),
        }
    }

    pub async fn list(&self, listing: &Listing, limit: u32, cursor: Option<&str>) -> Result<RequestPage, ServiceError> {
        Ok(self.ledger.list(listing, limit, cursor).await?)
    }
}

/// Why a request in a final state cannot be revoked.
fn final_error(request: &DeletionRequest) -> ServiceError {
    match request.status {
        Status::Revoked => ServiceError::AlreadyRevoked {
            id: request.id.to_string(),
        },
        _ => ServiceError::Irreversible {
            id: request.id.to_string(),
            grace_ended_at: request
                .grace_ends_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        },
    }
}

/// A SHA-256 over length-prefixed parts: no two lists of parts share it.
fn digest(parts: &[&str]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().into()
}

/// What an `Idempotency-Key` is stored under: the caller's own key for one
/// scope (a digest, so any caller subject fits the ledger's key).
/// A regulation's scope: its subjects named by their keyed set digest.
fn regulation_scope(
    workspace: WorkspaceId,
    regulation: RegulationType,
    subject_type: SubjectType,
    subjects: &Subjects,
    source: Option<SourceId>,
    key: &SubjectKey,
) -> Scope {
    Scope::Regulation {
        digest: key.set_digest(&workspace, &subject_type, subjects),
        workspace,
        regulation,
        subject_count: subjects.len(),
        subject_type,
        source,
    }
}

fn scoped_key(actor: &str, scope: &Scope, key: &IdempotencyKey) -> Result<IdempotencyKey, ServiceError> {
    let hex: String = digest(&["idempotency/v2", actor, &scope.lock_key(), key.as_str()])
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(IdempotencyKey::parse(&format!("v2.{hex}"))?)
}

/// The id of an account request's child for a workspace: the same on every
/// attempt, so a retried creation finds (or makes) the child it recorded.
fn child_id(parent: &RequestId, workspace: &WorkspaceId) -> Result<RequestId, ServiceError> {
    let bytes = digest(&["account-child/v1", parent.as_str(), workspace.as_str()]);
    let mut custom = [0u8; 16];
    custom.copy_from_slice(&bytes[..16]);
    let id = uuid::Builder::from_custom_bytes(custom).into_uuid();
    Ok(RequestId::parse(&id.hyphenated().to_string())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_per_caller_and_scope() {
        let key = IdempotencyKey::parse("order-7").unwrap();
        let ws = |w: &str| Scope::Workspace {
            workspace: WorkspaceId::parse(w).unwrap(),
        };
        let ann = scoped_key("ann", &ws("acme"), &key).unwrap();
        assert_eq!(ann, scoped_key("ann", &ws("acme"), &key).unwrap());
        assert_ne!(ann, scoped_key("carl", &ws("acme"), &key).unwrap());
        assert_ne!(ann, scoped_key("ann", &ws("globex"), &key).unwrap());
        // Parts cannot be shifted into one another.
        assert_ne!(
            scoped_key("a", &ws("b"), &key).unwrap(),
            scoped_key("a#workspace#b", &ws("b"), &key).unwrap()
        );
    }

    #[test]
    fn a_child_id_is_stable_per_parent_and_workspace() {
        let parent = RequestId::new();
        let w1 = WorkspaceId::parse("w1").unwrap();
        let id = child_id(&parent, &w1).unwrap();
        assert_eq!(id, child_id(&parent, &w1).unwrap());
        assert_ne!(id, child_id(&parent, &WorkspaceId::parse("w2").unwrap()).unwrap());
        assert_ne!(id, child_id(&RequestId::new(), &w1).unwrap());
    }

    mod flows {
        //! The request service over the in-memory ledger: edge cases of
        //! the real flow, in milliseconds.

        use chrono::Duration;

        use super::*;
        use crate::ports::ManualClock;
        use crate::testing::{LedgerOp, MemoryLedger};

        fn t0() -> DateTime<Utc> {
            DateTime::parse_from_rfc3339("2026-03-01T09:00:00Z")
                .unwrap()
                .with_timezone(&Utc)
        }

        fn ws(name: &str) -> Scope {
            Scope::Workspace {
                workspace: WorkspaceId::parse(name).unwrap(),
            }
        }

        /// ann administers w1, w2 and w3, and is a member only of w4.
        async fn service() -> (Requests<MemoryLedger, ManualClock>, MemoryLedger, ManualClock) {
            let (ledger, clock) = (MemoryLedger::new(), ManualClock::new(t0()));
            let ann = AccountId::parse("ann").unwrap();
            for (w, role) in [
                ("w1", Role::Admin),
                ("w2", Role::Admin),
                ("w3", Role::Admin),
                ("w4", Role::Member),
            ] {
                let w = WorkspaceId::parse(w).unwrap();
                ledger.put_member(&w, &ann, role).await.unwrap();
            }
            let requests = Requests::new(ledger.clone(), clock.clone(), Periods::default());
            (requests, ledger, clock)
        }

        fn stopped() -> LedgerError {
            LedgerError::Unavailable("the intake was stopped".into())
        }

        #[tokio::test]
        async fn a_suppression_written_after_its_regulation_was_cancelled_is_taken_back() {
            use crate::regulation::{RegulationType, SubjectType, Subjects, UserId};
            let (requests, ledger, clock) = service().await;
            let w1 = WorkspaceId::parse("w1").unwrap();
            let subjects = Subjects::parse(&["bob".into()]).unwrap();
            let scope = Scope::Regulation {
                digest: "d".into(),
                workspace: w1.clone(),
                regulation: RegulationType::SuppressOnly,
                subject_count: 1,
                subject_type: SubjectType::user_id(),
                source: None,
            };
            // An intake wrote the regulation; before its suppression, someone
            // cancelled it: the intake's copy is stale.
            let written = DeletionRequest::new(scope, "ann", None, clock.now(), Periods::default());
            ledger.put_subjects(&written.id, &subjects).await.unwrap();
            ledger.insert(&written, None).await.unwrap();
            let cancelled = requests.cancel_regulation(&written.id, "ops").await.unwrap();
            assert_eq!(cancelled.status, Status::Revoked);
            let after = apply_suppression(&ledger, written.clone(), Some(&subjects), clock.now())
                .await
                .unwrap();
            assert_eq!((after.status, after.suppression_applied_at), (Status::Revoked, None));
            let bob = UserId::parse("bob").unwrap();
            let entry = ledger
                .suppression(&w1, &bob)
                .await
                .unwrap()
                .expect("written, then lifted");
            assert_eq!(entry.regulation, written.id);
            assert!(!entry.suppressed, "a cancelled regulation suppresses nobody");
        }

        /// Who holds each of ann's workspace scopes.
        async fn holders(ledger: &MemoryLedger) -> Vec<Option<RequestId>> {
            let mut held = Vec::new();
            for w in ["w1", "w2", "w3", "w4"] {
                held.push(ledger.active_for(&ws(w)).await.unwrap());
            }
            held
        }

        #[tokio::test]
        async fn an_account_request_stopped_midway_is_revoked_whole_and_takes_no_late_child() {
            let (requests, ledger, clock) = service().await;
            let ann = AccountId::parse("ann").unwrap();
            // The account request and two children are written, then the
            // intake stops.
            ledger.fail_after(LedgerOp::Insert, 3, 1, stopped);
            let err = requests.create_account(&ann, "ann", None, None, None).await;
            assert!(
                matches!(err, Err(ServiceError::Ledger(LedgerError::Unavailable(_)))),
                "{err:?}"
            );
            let held = holders(&ledger).await;
            assert!(held[0].is_some() && held[1].is_some() && held[2].is_none(), "{held:?}");
            let account = Scope::Account { account: ann.clone() };
            let parent = ledger.active_for(&account).await.unwrap().expect("the account request");
            let planned = ledger.request(&parent).unwrap().children;
            assert_eq!(planned.len(), 3, "every child is named before any is created");

            clock.advance(Duration::hours(1));
            let revoked = requests.revoke(&account, "ann").await.unwrap();
            assert_eq!(revoked.request.status, Status::Revoked);
            assert!(revoked.kept.is_empty(), "{:?}", revoked.kept);
            for id in held.iter().flatten() {
                assert_eq!(ledger.request(id).unwrap().status, Status::Revoked, "child {id}");
            }
            assert_eq!(
                holders(&ledger).await,
                vec![None; 4],
                "nothing of ann's is left to purge"
            );
            assert!(ledger.locks().is_empty(), "{:?}", ledger.locks());

            // The stopped creation resumes: its third child is refused.
            let mut late = DeletionRequest::new(ws("w3"), "ann", None, clock.now(), Periods::default());
            late.id = planned[2].clone();
            late.parent = Some(parent.clone());
            assert!(matches!(ledger.insert(&late, None).await, Err(LedgerError::Conflict)));
            assert_eq!(ledger.request(&planned[2]), None);
            assert_eq!(ledger.active_for(&ws("w3")).await.unwrap(), None);
        }

        #[tokio::test]
        async fn an_account_request_stopped_midway_is_completed_by_asking_again_without_duplicates() {
            let (requests, ledger, _clock) = service().await;
            let ann = AccountId::parse("ann").unwrap();
            ledger.fail_after(LedgerOp::Insert, 2, 1, stopped);
            assert!(requests.create_account(&ann, "ann", None, None, None).await.is_err());
            let first = holders(&ledger).await[0].clone().expect("the child created first");

            let again = requests.create_account(&ann, "ann", None, None, None).await.unwrap();
            assert!(!again.created, "the same account request");
            let children = &again.request.children;
            assert_eq!(children.len(), 3, "{children:?}");
            assert!(children.contains(&first), "the child made first is kept");
            let held = holders(&ledger).await;
            assert_eq!(held[..3].iter().flatten().count(), 3, "{held:?}");
            assert_eq!(held[3], None, "a member-only workspace is not deleted");
            for (child, holder) in children.iter().zip(&held) {
                assert_eq!(Some(child), holder.as_ref(), "one request per workspace, the one named");
            }
            // Workspace requests: three children, and the account request.
            assert_eq!(ledger.requests().len(), 4);
        }

        #[tokio::test]
        async fn a_conflict_while_creating_children_is_judged_again_and_each_is_created_once() {
            let (requests, ledger, _clock) = service().await;
            let ann = AccountId::parse("ann").unwrap();
            // The second child's insert loses a race once; so does the
            // parent's first update (recording its children).
            ledger.fail_after(LedgerOp::Insert, 2, 1, || LedgerError::Conflict);
            ledger.fail_next_updates(1);
            let created = requests.create_account(&ann, "ann", None, None, None).await.unwrap();
            assert!(created.created);
            assert_eq!(created.request.children.len(), 3);
            assert_eq!(
                ledger.calls(LedgerOp::Insert),
                5,
                "account, three children, one retried"
            );
            let held = holders(&ledger).await;
            assert_eq!(
                held[..3].to_vec(),
                created.request.children.iter().cloned().map(Some).collect::<Vec<_>>()
            );
            let view = requests.view(created.request).await.unwrap();
            assert_eq!(view.status, Status::Scheduled);
            assert_eq!(view.children.len(), 3);
        }

        #[tokio::test]
        async fn a_revoke_in_grace_frees_the_scope_and_after_the_grace_is_irreversible() {
            let (requests, ledger, clock) = service().await;
            let created = requests.create(ws("w1"), "ann", None, None, None).await.unwrap();
            clock.advance(Duration::days(4));
            let revoked = requests.revoke(&ws("w1"), "ann").await.unwrap();
            assert_eq!(revoked.request.status, Status::Revoked);
            assert_eq!(revoked.request.version, created.request.version + 1);
            assert_eq!(ledger.active_for(&ws("w1")).await.unwrap(), None);
            let again = requests.revoke(&ws("w1"), "ann").await;
            assert!(matches!(again, Err(ServiceError::AlreadyRevoked { .. })), "{again:?}");

            // A new request of the same scope; its grace runs out.
            let next = requests.create(ws("w1"), "ann", None, None, None).await.unwrap();
            assert!(next.created && next.request.id != created.request.id);
            clock.advance(Duration::days(5));
            let late = requests.revoke(&ws("w1"), "ann").await;
            assert!(matches!(late, Err(ServiceError::Irreversible { .. })), "{late:?}");
            let stored = ledger.request(&next.request.id).unwrap();
            assert_eq!((stored.status, stored.version), (Status::Scheduled, 1));
        }

        #[tokio::test]
        async fn a_revoke_that_keeps_losing_races_says_so_and_writes_nothing() {
            let (requests, ledger, _clock) = service().await;
            let created = requests.create(ws("w2"), "ann", None, None, None).await.unwrap();
            ledger.fail_next_updates(crate::retry::MAX_RACES);
            let lost = requests.revoke(&ws("w2"), "ann").await;
            assert!(matches!(lost, Err(ServiceError::Contention { .. })), "{lost:?}");
            assert_eq!(ledger.request(&created.request.id).unwrap().status, Status::Scheduled);
            // The next one wins.
            let revoked = requests.revoke(&ws("w2"), "ann").await.unwrap();
            assert_eq!(revoked.request.status, Status::Revoked);
        }

        #[tokio::test]
        async fn an_idempotency_key_replays_its_request_for_its_caller_and_scope_only() {
            let (requests, ledger, clock) = service().await;
            let key = IdempotencyKey::parse("order-7").unwrap();
            let first = requests.create(ws("w1"), "ann", None, Some(&key), None).await.unwrap();
            assert!(first.created && !first.replayed);
            let replay = requests.create(ws("w1"), "ann", None, Some(&key), None).await.unwrap();
            assert!(!replay.created && replay.replayed);
            assert_eq!(replay.request.id, first.request.id);
            // Another caller's key of the same name is another key: it
            // finds the request under way, not a replay.
            let carl = requests.create(ws("w1"), "carl", None, Some(&key), None).await.unwrap();
            assert!(!carl.created && !carl.replayed);
            assert_eq!(carl.request.id, first.request.id);
            // The same key for another scope is another key too.
            let other = requests.create(ws("w2"), "ann", None, Some(&key), None).await.unwrap();
            assert!(other.created && other.request.id != first.request.id);
            // A key outlives its request's scope lock: after a revoke it
            // still replays the revoked request instead of making one.
            clock.advance(Duration::hours(1));
            requests.revoke(&ws("w1"), "ann").await.unwrap();
            let late = requests.create(ws("w1"), "ann", None, Some(&key), None).await.unwrap();
            assert!(late.replayed && late.request.id == first.request.id);
            assert_eq!(late.request.status, Status::Revoked);
            assert_eq!(ledger.active_for(&ws("w1")).await.unwrap(), None);
        }
    }
}
