//! Verification: the last worker to find every shard done moves the
//! request to `VERIFYING` and lists every data-map prefix again.
//!
//! - A conflicting write when verification starts is judged again from a
//!   fresh read: only a request already `VERIFYING` is left to another.
//! - Anything left under a prefix fails the attempt and adds a shard that
//!   purges that prefix whole on the next one; a regulation is not listed
//!   again (each rewrite was checked as it was written).

use tracing::{info, warn};

use super::{lease_or_err, roots, PurgeOutcome, Purger};
use crate::error::{ServiceError, StoreError};
use crate::ids::RequestId;
use crate::model::ledger::WORK_KEPT_AFTER_COMPLETION;
use crate::model::{DeletionRequest, PrefixReceipt, Progress, Shard, Status};
use crate::ports::{Clock, Holds, Ledger, ObjectStore, Regulations, Timers};
use crate::retry::retry_on_conflict;
use crate::signing::sign_receipt;

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    /// `PURGING → VERIFYING` by this worker, or why another carries on.
    /// A conflicting write is judged again from a fresh read: only another
    /// worker's verification (the request then `VERIFYING`) means someone
    /// else verifies; any other write (a callback's, the deadline's) is
    /// retried, so the request is never left `PURGING` with nobody on it.
    pub(super) async fn start_verification(
        &self,
        id: &RequestId,
        owner: &str,
    ) -> Result<Result<DeletionRequest, PurgeOutcome>, ServiceError> {
        retry_on_conflict(id, || async {
            let Some(current) = self.ledger.get(id).await? else {
                return Ok(Err(PurgeOutcome::NotFound));
            };
            let next = match current.begin_verification(self.clock.now(), owner, self.config.lease) {
                Ok(next) => next,
                Err(_) => {
                    return Ok(Err(match current.status {
                        Status::Verifying => PurgeOutcome::Busy,
                        status => PurgeOutcome::Settled { status },
                    }))
                }
            };
            if next.version == current.version {
                return Ok(Ok(next)); // this worker verifies already
            }
            self.ledger.update(&next).await?; // a conflict: judged again
            Ok(Ok(next))
        })
        .await
    }

    pub(super) async fn verify_and_complete(
        &self,
        request: &DeletionRequest,
        owner: &str,
    ) -> Result<PurgeOutcome, ServiceError> {
        let shards = self.ledger.shards(&request.id).await?;
        let roots = roots(&shards);
        // A regulation keeps the prefixes' other data: there is no "nothing
        // left" to list for; each rewrite was checked as it was written.
        let listed = if request.scope.regulation().is_some() {
            Ok(Vec::new())
        } else {
            self.verify(&roots).await
        };
        match listed {
            Ok(leftovers) if leftovers.is_empty() => {}
            Ok(leftovers) => {
                // Purge each of those prefixes whole on the next attempt.
                let mut again = Vec::new();
                for (n, root) in leftovers.iter().enumerate() {
                    let index = shards.len() as u32 + n as u32;
                    again.push(Shard::planned(
                        &request.id,
                        index,
                        &root.store,
                        &root.bucket,
                        &root.prefix,
                        &root.prefix,
                    ));
                }
                self.ledger.insert_shards(&again).await?;
                let where_ = leftovers
                    .iter()
                    .map(|r| format!("s3://{}/{}", r.bucket, r.prefix))
                    .collect::<Vec<_>>()
                    .join(", ");
                return self
                    .fail(
                        &request.id,
                        owner,
                        &format!("verification found data left under {where_}"),
                    )
                    .await;
            }
            Err(e) => return self.fail(&request.id, owner, &e.to_string()).await,
        }
        let mut receipt = self.receipt(request, &shards);
        if let Some(signer) = &self.signer {
            // Unsigned is never completed: the attempt fails and is retried.
            sign_receipt(signer.as_ref(), &mut receipt).await?;
        }
        let mut next = request.complete(self.clock.now(), owner, receipt.clone())?;
        next.final_progress = Some(Progress::from_shards(&shards));
        if request.scope.regulation().is_some() {
            // Before it says complete: a finished regulation keeps only its
            // subjects' keyed digests (recorded when it was created). A
            // worker that finds the ids gone later refuses to rewrite.
            self.redact_subjects_prefixes(&shards).await?;
            self.ledger.forget_subjects(&request.id).await?;
            next.subjects_forgotten_at = Some(self.clock.now());
        }
        if let Err(e) = self.ledger.update(&next).await {
            return lease_or_err(e);
        }
        // The receipt is written: the shards, their plan and any page left
        // are no longer needed. Missed, they only cost storage.
        let indexes: Vec<u32> = shards.iter().map(|s| s.index).collect();
        let expires = self.clock.now() + WORK_KEPT_AFTER_COMPLETION;
        if let Err(e) = self.ledger.expire_work(&request.id, &indexes, expires).await {
            warn!(request_id = %request.id, error = %e, "the finished shards were not marked to expire");
        }
        info!(request_id = %request.id, objects = receipt.totals.objects, versions = receipt.totals.versions,
              delete_markers = receipt.totals.delete_markers, "purge completed and verified");
        Ok(PurgeOutcome::Completed {
            receipt: Box::new(receipt),
        })
    }

    /// The shards over a subject's own prefix (a per-user store) keep it
    /// with the id replaced by `{user}`: the ids are forgotten next.
    async fn redact_subjects_prefixes(&self, shards: &[Shard]) -> Result<(), ServiceError> {
        for shard in shards {
            let Some(store) = self.map.store(&shard.store).filter(|s| s.user_type.is_some()) else {
                continue;
            };
            let redacted = store.without_user(&shard.prefix);
            if redacted != shard.prefix {
                self.ledger.update_shard(&shard.redacted(redacted)).await?;
            }
        }
        Ok(())
    }

    /// Lists every data-map prefix again, versions and uploads included.
    /// Returns those under which anything is left.
    pub(super) async fn verify(&self, roots: &[PrefixReceipt]) -> Result<Vec<PrefixReceipt>, StoreError> {
        let mut leftovers = Vec::new();
        for root in roots {
            let page = self
                .store
                .list_every_version(&root.bucket, &root.prefix, None, 1)
                .await?;
            let uploads = self.store.list_uploads(&root.bucket, &root.prefix, None).await?;
            if !page.entries.is_empty() || !uploads.uploads.is_empty() {
                warn!(bucket = %root.bucket, prefix = %root.prefix, "verification found data left");
                leftovers.push(root.clone());
            }
        }
        Ok(leftovers)
    }
}
