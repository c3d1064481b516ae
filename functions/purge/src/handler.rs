//! The purge function, invoked by a request's one-shot schedule when its
//! grace ends, by the schedules of extra workers, and by the sweep (with
//! `retry` for a failed purge).

use tokio::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::{error, warn};

use deletion_aws::metrics;
use deletion_core::ids::RequestId;
use deletion_core::model::{DeletionRequest, Receipt, Scope};
use deletion_core::ports::{Clock, Holds, Ledger, ObjectStore, Regulations, Timers};
use deletion_core::purge::{PurgeOutcome, Purger};
use deletion_core::retention::RETENTION_ACTOR;
use deletion_core::ServiceError;

/// The schedule's input.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeEvent {
    pub request_id: String,
    /// Restart a `FAILED` purge (the sweep sets it; a timer never does).
    #[serde(default)]
    pub retry: bool,
    /// Only remind that the grace ends soon; purge nothing.
    #[serde(default)]
    pub remind: bool,
}

/// What the invocation did, for the logs and the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeResult {
    pub request_id: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct PurgeHandler<L, S, T, C> {
    purger: Purger<L, S, T, C>,
}

impl<L: Ledger + Regulations + Holds, S: ObjectStore, T: Timers, C: Clock> PurgeHandler<L, S, T, C> {
    /// Emits the grace reminder (a warning log and the CloudWatch metric
    /// `DeletionService/GraceEndingSoon`) for a request still in grace.
    async fn remind(&self, id: &RequestId) -> Result<PurgeResult, ServiceError> {
        let Some(r) = self.purger.due_for_reminder(id).await? else {
            return Ok(PurgeResult {
                request_id: id.to_string(),
                outcome: "not_needed".into(),
                detail: None,
            });
        };
        let grace_ends_at = r.grace_ends_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let detail = format!(
            "{} asked by {} becomes irreversible at {grace_ends_at}; revoke it before then if it was not meant",
            r.scope.describe(),
            r.requested_by
        );
        warn!(request_id = %id, requested_by = %r.requested_by, %grace_ends_at, "grace ends soon: {detail}");
        let fields = [
            ("request_id", id.to_string().into()),
            ("requested_by", r.requested_by.clone().into()),
            ("grace_ends_at", grace_ends_at.into()),
        ];
        println!(
            "{}",
            metrics::line(&[("Kind", r.scope.kind())], &[("GraceEndingSoon", 1)], &fields)
        );
        Ok(PurgeResult {
            request_id: id.to_string(),
            outcome: "reminded".into(),
            detail: Some(detail),
        })
    }

    /// A source's days purged for its retention window: the CloudWatch
    /// metric `DeletionService/RetentionDaysPurged` (the request is read
    /// once to know who asked; a failed read only loses the count).
    async fn count_retention_days(&self, receipt: &Receipt) {
        if !matches!(receipt.scope, Scope::SourceDays { .. }) {
            return;
        }
        match self.purger.request(&receipt.request_id).await {
            Ok(Some(r)) => {
                if let Some(days) = retention_days(&r) {
                    println!("{}", retention_metric_line(days, &receipt.request_id));
                }
            }
            Ok(None) => {}
            Err(e) => warn!(request_id = %receipt.request_id, error = %e, "retention days not counted"),
        }
    }

    pub fn new(purger: Purger<L, S, T, C>) -> Self {
        PurgeHandler { purger }
    }

    /// Runs the purge named by the event as worker `owner`, until
    /// `deadline` (the invocation's end). An event that names no valid
    /// request is answered, not retried; a dependency failure is an error,
    /// so the scheduler delivers the event again.
    pub async fn handle(
        &self,
        event: PurgeEvent,
        owner: &str,
        deadline: Option<Instant>,
    ) -> Result<PurgeResult, ServiceError> {
        let Ok(id) = RequestId::parse(&event.request_id) else {
            error!(request_id = %event.request_id, "purge event names no valid request id");
            return Ok(PurgeResult {
                request_id: event.request_id,
                outcome: "invalid_event".into(),
                detail: Some("request_id is not a request id".into()),
            });
        };
        if event.remind {
            return self.remind(&id).await;
        }
        let store = self.purger.store();
        let (deleted, slow_downs) = (store.deleted(), store.slow_downs());
        let outcome = self.purger.run(&id, owner, event.retry, deadline).await;
        let store = self.purger.store();
        println!(
            "{}",
            invocation_metric_line(
                store.deleted().saturating_sub(deleted),
                store.slow_downs().saturating_sub(slow_downs),
                &id
            )
        );
        let outcome = outcome?;
        if let PurgeOutcome::Completed { receipt } = &outcome {
            self.count_retention_days(receipt).await;
        }
        let (name, detail) = match outcome {
            PurgeOutcome::Completed { receipt } => (
                "completed",
                Some(format!(
                    "{} objects, {} versions, {} delete markers, {} uploads under {} prefixes",
                    receipt.totals.objects,
                    receipt.totals.versions,
                    receipt.totals.delete_markers,
                    receipt.totals.uploads_aborted,
                    receipt.prefixes.len()
                )),
            ),
            PurgeOutcome::Failed { reason } => ("failed", Some(reason)),
            PurgeOutcome::NotFound => ("not_found", None),
            PurgeOutcome::NotDue => ("not_due", None),
            PurgeOutcome::Busy => ("busy", None),
            PurgeOutcome::Settled { status } => ("settled", Some(status.to_string())),
            PurgeOutcome::LostLease => ("lost_lease", None),
            PurgeOutcome::HandedOff => ("handed_off", None),
            PurgeOutcome::OnHold => ("on_hold", None),
        };
        Ok(PurgeResult {
            request_id: id.to_string(),
            outcome: name.into(),
            detail,
        })
    }
}

/// The days of a source a retention request purges (none for any other).
pub fn retention_days(request: &DeletionRequest) -> Option<u64> {
    match &request.scope {
        Scope::SourceDays { from, to, .. } if request.requested_by == RETENTION_ACTOR => {
            u64::try_from((*to - *from).num_days() + 1).ok()
        }
        _ => None,
    }
}

/// The EMF line of one purge invocation: `PurgeInvocations` (one),
/// `ObjectsDeleted` (versions and delete markers its batch deletes removed)
/// and `S3SlowDowns` (S3's 503 answers it met, retried or not): the
/// dashboard's purge rate and SlowDown share.
pub fn invocation_metric_line(deleted: u64, slow_downs: u64, id: &RequestId) -> String {
    metrics::line(
        &[],
        &[
            ("PurgeInvocations", 1),
            ("ObjectsDeleted", deleted),
            ("S3SlowDowns", slow_downs),
        ],
        &[("request_id", id.to_string().into())],
    )
}

/// The EMF line of `RetentionDaysPurged`.
pub fn retention_metric_line(days: u64, id: &RequestId) -> String {
    metrics::line(
        &[],
        &[("RetentionDaysPurged", days)],
        &[("request_id", id.to_string().into())],
    )
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, Utc};
    use deletion_core::ids::{SourceId, WorkspaceId};
    use deletion_core::lifecycle::Periods;

    use super::*;

    fn source_days(by: &str) -> DeletionRequest {
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap();
        let scope = Scope::SourceDays {
            workspace: WorkspaceId::parse("acme").unwrap(),
            source: SourceId::parse("web").unwrap(),
            from: day(1),
            to: day(3),
        };
        DeletionRequest::new(scope, by, None, Utc::now(), Periods::default())
    }

    #[test]
    fn an_invocation_s_line_counts_what_it_deleted_and_the_slow_downs_it_met() {
        let id = RequestId::new();
        let line: serde_json::Value = serde_json::from_str(&invocation_metric_line(1000, 3, &id)).unwrap();
        assert_eq!(
            (line["PurgeInvocations"].clone(), line["ObjectsDeleted"].clone()),
            (1.into(), 1000.into())
        );
        assert_eq!(line["S3SlowDowns"], 3);
        let names: Vec<&str> = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["PurgeInvocations", "ObjectsDeleted", "S3SlowDowns"]);
    }

    #[test]
    fn only_retentions_own_requests_count_as_days_purged_by_retention() {
        assert_eq!(retention_days(&source_days(RETENTION_ACTOR)), Some(3));
        assert_eq!(retention_days(&source_days("ann")), None, "asked by a person");
        let line: serde_json::Value =
            serde_json::from_str(&retention_metric_line(3, &source_days(RETENTION_ACTOR).id)).unwrap();
        assert_eq!(line["RetentionDaysPurged"], 3);
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "RetentionDaysPurged"
        );
    }
}
