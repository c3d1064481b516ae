//! Creating, revoking and reading deletion requests (the intake's logic).

use chrono::{DateTime, Utc};

use crate::error::{LedgerError, ServiceError};
use crate::ids::{IdempotencyKey, RequestId, WorkspaceId};
use crate::lifecycle::Periods;
use crate::model::{DeletionRequest, Progress, Scope, Status};
use crate::ports::{Clock, Ledger, RequestPage};

/// How many times a write that lost a race is re-judged before giving up.
const MAX_RACES: usize = 5;

/// The outcome of a create: a new request, or the one already in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub request: DeletionRequest,
    /// False when an existing request was returned instead.
    pub created: bool,
}

/// A request with its progress, as the status endpoint shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestView {
    pub request: DeletionRequest,
    pub progress: Progress,
    pub now: DateTime<Utc>,
}

pub struct Requests<L, C> {
    ledger: L,
    clock: C,
    periods: Periods,
}

impl<L: Ledger, C: Clock> Requests<L, C> {
    pub fn new(ledger: L, clock: C, periods: Periods) -> Self {
        Requests {
            ledger,
            clock,
            periods,
        }
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    async fn fetch(&self, id: &RequestId) -> Result<DeletionRequest, ServiceError> {
        self.ledger
            .get(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(id.to_string()))
    }

    /// Returns the request an idempotency key names, if it was for `scope`.
    async fn replay(
        &self,
        key: &IdempotencyKey,
        scope: &Scope,
    ) -> Result<Option<DeletionRequest>, ServiceError> {
        let Some(holder) = self.ledger.by_idempotency_key(key).await? else {
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
    /// it (or already created with the same idempotency key).
    pub async fn create(
        &self,
        scope: Scope,
        actor: &str,
        reason: Option<String>,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<Created, ServiceError> {
        for _ in 0..MAX_RACES {
            if let Some(key) = idempotency_key {
                if let Some(request) = self.replay(key, &scope).await? {
                    return Ok(Created {
                        request,
                        created: false,
                    });
                }
            }
            let request = DeletionRequest::new(
                scope.clone(),
                actor,
                reason.clone(),
                self.clock.now(),
                self.periods,
            );
            match self.ledger.insert(&request, idempotency_key).await {
                Ok(()) => {
                    return Ok(Created {
                        request,
                        created: true,
                    })
                }
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
                            });
                        }
                    }
                }
                // Lost a race on the same key: judged again by `replay`.
                Err(LedgerError::IdempotencyKeyUsed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Contention {
            id: scope.lock_key(),
        })
    }

    /// Revokes the active deletion of `scope`, if it is still in grace.
    pub async fn revoke(
        &self,
        scope: &Scope,
        actor: &str,
    ) -> Result<DeletionRequest, ServiceError> {
        if let Some(id) = self.ledger.active_for(scope).await? {
            return self.revoke_by_id(&id, actor).await;
        }
        // Nothing holds the scope: say what became of the latest request,
        // so a revoke that comes too late hears "irreversible", not "none".
        let latest = self
            .ledger
            .list_for_workspace(scope.workspace(), 20, None)
            .await?
            .items
            .into_iter()
            .find(|r| &r.scope == scope);
        match latest {
            Some(r) if r.status == Status::Revoked => Err(ServiceError::AlreadyRevoked {
                id: r.id.to_string(),
            }),
            Some(r) => Err(ServiceError::Irreversible {
                id: r.id.to_string(),
                grace_ended_at: r
                    .grace_ends_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }),
            None => Err(ServiceError::NothingPending(
                scope.lock_key().replace('#', " "),
            )),
        }
    }

    /// Revokes a request by id, if it is still in grace.
    pub async fn revoke_by_id(
        &self,
        id: &RequestId,
        actor: &str,
    ) -> Result<DeletionRequest, ServiceError> {
        for _ in 0..MAX_RACES {
            let current = self.fetch(id).await?;
            let next = current.revoke(self.clock.now(), actor)?;
            match self.ledger.update(&next).await {
                Ok(()) => return Ok(next),
                // Someone else changed it (a purge claim?): judge again.
                Err(LedgerError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Contention { id: id.to_string() })
    }

    pub async fn get(&self, id: &RequestId) -> Result<RequestView, ServiceError> {
        let request = self.fetch(id).await?;
        let shards = self.ledger.shards(id).await?;
        Ok(RequestView {
            request,
            progress: Progress::from_shards(&shards),
            now: self.clock.now(),
        })
    }

    pub async fn list(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<RequestPage, ServiceError> {
        Ok(self
            .ledger
            .list_for_workspace(workspace, limit, cursor)
            .await?)
    }
}
