//! The end of an attempt: the receipt of a verified purge, and a failure
//! written conditionally (never over a request another worker settled).

use tracing::warn;

use super::{roots, PurgeOutcome, Purger};
use crate::error::ServiceError;
use crate::ids::RequestId;
use crate::model::{Counts, DeletionRequest, Receipt, Shard};
use crate::ports::{Clock, Holds, Ledger, ObjectStore, Regulations, Timers};
use crate::retry::retry_on_conflict;

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    pub(super) fn receipt(&self, request: &DeletionRequest, shards: &[Shard]) -> Receipt {
        let now = self.clock.now();
        let prefixes = roots(shards);
        let mut totals = Counts::default();
        for p in &prefixes {
            totals.add(&p.deleted);
        }
        let verification = if request.scope.regulation().is_some() {
            format!(
                "every object version under {} prefix(es) was read; each holding the subjects' events was rewritten \
                 conditionally on the version read, or deleted by version id",
                prefixes.len()
            )
        } else {
            format!(
                "a listing of every version, delete marker and unfinished upload under {} prefix(es) found nothing",
                prefixes.len()
            )
        };
        Receipt {
            request_id: request.id.clone(),
            scope: request.scope.clone(),
            prefixes,
            totals,
            purge_started_at: request.purge_started_at.unwrap_or(now),
            purge_finished_at: now,
            verified_at: now,
            verification,
            signature: None,
        }
    }

    pub(super) async fn fail(&self, id: &RequestId, owner: &str, reason: &str) -> Result<PurgeOutcome, ServiceError> {
        warn!(request_id = %id, reason, "purge failed");
        retry_on_conflict(id, || async {
            let current = self
                .ledger
                .get(id)
                .await?
                .ok_or_else(|| ServiceError::NotFound(id.to_string()))?;
            let Ok(next) = current.fail(self.clock.now(), owner, reason) else {
                // Already failed, or verified by another worker.
                return Ok(PurgeOutcome::Settled { status: current.status });
            };
            self.ledger.update(&next).await?;
            Ok(PurgeOutcome::Failed {
                reason: reason.to_owned(),
            })
        })
        .await
    }
}
