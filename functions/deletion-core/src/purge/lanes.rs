//! A worker's lanes: `shards_in_flight` loops side by side in one
//! invocation, each taking shards one after another (`work`) under its own
//! lease owner (`<worker>#<lane>`). A workspace of many small prefixes
//! keeps S3 busy from one invocation instead of waiting on one shard's
//! listing, delete and checkpoints at a time.
//!
//! - Lanes share nothing but the worker's DeleteObjects window and scratch
//!   space: each takes its shards with the same conditional writes as
//!   separate workers would, so two lanes never hold one shard.
//! - What the worker ends with is judged from every lane's end, once all
//!   have stopped (`judge`): an error first, then what a lane did to the
//!   request (failed it, put it on hold), then what a lane found (settled,
//!   gone), then "every shard done" (go on to verify), then a hand-off,
//!   then busy.
//! - A worker that reaches its time limit arms one timer for a successor,
//!   however many lanes handed a shard back (`HandOff`): the workers'
//!   number stays `workers`, never multiplied by the lanes.
//! - A legal hold is read by every lane at each page: after it, at most one
//!   more page per lane is deleted.

use tokio::time::Instant;

use super::claim::HandOff;
use super::{PurgeOutcome, Purger};
use crate::error::ServiceError;
use crate::model::DeletionRequest;
use crate::ports::{Clock, Holds, Ledger, ObjectStore, Regulations, Timers};

/// How one lane (or the whole worker) stopped: `None` when every shard is
/// done.
type End = Result<Option<PurgeOutcome>, ServiceError>;

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> Purger<L, S, T, C> {
    /// Takes free shards in `shards_in_flight` lanes until none is left.
    pub(super) async fn work_lanes(&self, request: &DeletionRequest, owner: &str, deadline: Option<Instant>) -> End {
        let lanes = self.lanes();
        let hand_off = HandOff::default();
        let end = if lanes == 1 {
            self.work(request, owner, deadline, &hand_off).await
        } else {
            let names: Vec<String> = (0..lanes).map(|n| format!("{owner}#{n}")).collect();
            let lanes = names.iter().map(|name| self.work(request, name, deadline, &hand_off));
            judge(futures::future::join_all(lanes).await)
        };
        // One successor for the worker, armed once every lane has stopped
        // (their shards are handed back by then).
        if let (Ok(Some(PurgeOutcome::HandedOff)), Some((why, at))) = (&end, hand_off.wake()) {
            self.timers
                .wake(&request.id, why, at)
                .await
                .map_err(ServiceError::from)?;
        }
        end
    }

    /// Lanes per worker (at least one).
    pub(super) fn lanes(&self) -> u32 {
        self.config.shards_in_flight.max(1)
    }
}

/// Which end wins: the lowest rank. What a lane did (failed the request,
/// put it on hold) comes before what another lane then saw of it.
fn rank(end: &End) -> u8 {
    match end {
        Err(_) => 0,
        Ok(Some(PurgeOutcome::Failed { .. } | PurgeOutcome::OnHold)) => 1,
        Ok(Some(
            PurgeOutcome::Settled { .. }
            | PurgeOutcome::NotFound
            | PurgeOutcome::NotDue
            | PurgeOutcome::Completed { .. },
        )) => 2,
        Ok(None) => 3,
        Ok(Some(PurgeOutcome::HandedOff)) => 4,
        Ok(Some(PurgeOutcome::Busy | PurgeOutcome::LostLease)) => 5,
    }
}

/// The worker's end from its lanes' ends (see the module's order).
fn judge(ends: Vec<End>) -> End {
    ends.into_iter()
        .min_by_key(rank)
        .unwrap_or(Ok(Some(PurgeOutcome::Busy)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LedgerError;
    use crate::model::Status;

    #[test]
    fn an_error_beats_everything_then_the_purges_end_then_done_then_a_hand_off() {
        let busy = || Ok(Some(PurgeOutcome::Busy));
        let done = || Ok(None);
        let handed = || Ok(Some(PurgeOutcome::HandedOff));
        let failed = || {
            Ok(Some(PurgeOutcome::Failed {
                reason: "NoSuchBucket".into(),
            }))
        };
        let err = || Err(ServiceError::from(LedgerError::Unavailable("down".into())));
        assert!(judge(vec![busy(), done(), failed(), err()]).is_err());
        assert!(matches!(
            judge(vec![busy(), done(), failed(), handed()]),
            Ok(Some(PurgeOutcome::Failed { .. }))
        ));
        let settled = || Ok(Some(PurgeOutcome::Settled { status: Status::OnHold }));
        assert!(matches!(
            judge(vec![done(), settled()]),
            Ok(Some(PurgeOutcome::Settled { .. }))
        ));
        // One lane put it on hold, another then found it so.
        assert!(matches!(
            judge(vec![settled(), Ok(Some(PurgeOutcome::OnHold)), done()]),
            Ok(Some(PurgeOutcome::OnHold))
        ));
        // One lane saw every shard done while another found them busy.
        assert!(matches!(judge(vec![busy(), done(), handed()]), Ok(None)));
        assert!(matches!(
            judge(vec![busy(), handed(), busy()]),
            Ok(Some(PurgeOutcome::HandedOff))
        ));
        assert!(matches!(judge(vec![busy(), busy()]), Ok(Some(PurgeOutcome::Busy))));
        assert!(matches!(
            judge(vec![Ok(Some(PurgeOutcome::LostLease)), busy()]),
            Ok(Some(PurgeOutcome::LostLease))
        ));
    }
}
