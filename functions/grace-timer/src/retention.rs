//! The daily retention enforcement, invoked by its recurring schedule
//! (`{"retention": true}`, hourly: each workspace is enforced once a day,
//! so a missed or failed invocation is made up within the hour).

use serde::{Deserialize, Serialize};

use deletion_core::ports::{Clock, Directory, Holds, Ledger, ObjectStore, Regulations, RetentionLedger};
use deletion_core::retention::{Enforcer, RetentionReport};
use deletion_core::ServiceError;

use crate::SWEEP_MARGIN;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionEvent {
    pub retention: bool,
}

pub struct RetentionTimer<L, S, C> {
    enforcer: Enforcer<L, S, C>,
    /// How long one run may take (below the function's timeout).
    pub budget: chrono::Duration,
}

impl<L, S, C> RetentionTimer<L, S, C>
where
    L: Ledger + Directory + Regulations + Holds + RetentionLedger,
    S: ObjectStore,
    C: Clock,
{
    pub fn new(enforcer: Enforcer<L, S, C>) -> Self {
        RetentionTimer {
            enforcer,
            budget: chrono::Duration::seconds(40),
        }
    }

    /// One run within the budget (and `SWEEP_MARGIN` before `deadline`);
    /// its counts printed as CloudWatch metrics.
    pub async fn run_until(
        &self,
        deadline: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<RetentionReport, ServiceError> {
        let mut stop_at = self.enforcer.now() + self.budget;
        if let Some(deadline) = deadline {
            stop_at = stop_at.min(deadline - SWEEP_MARGIN);
        }
        let report = self.enforcer.run_until(stop_at).await?;
        println!("{}", metrics_line(&report));
        Ok(report)
    }
}

/// The run's EMF line: `RetentionRuns` (one per run, for the alarm that
/// it runs), days found, requests created, changes applied and reminded
/// (`RetentionChangeEndingSoon`), workspaces failed.
pub fn metrics_line(report: &RetentionReport) -> String {
    let names = [
        ("RetentionRuns", 1),
        ("RetentionWorkspacesEnforced", report.enforced),
        ("RetentionDaysFound", report.days),
        ("RetentionRequestsCreated", report.created),
        ("RetentionChangesApplied", report.applied.len() as u64),
        ("RetentionChangeEndingSoon", report.reminded.len() as u64),
        ("RetentionFailures", report.failed.len() as u64),
        ("RetentionOutOfTime", u64::from(report.stopped_early)),
    ];
    deletion_aws::metrics::line(&[], &names, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_line_counts_what_a_run_did() {
        let report = RetentionReport {
            days: 3,
            created: 2,
            stopped_early: true,
            ..RetentionReport::default()
        };
        let line: serde_json::Value = serde_json::from_str(&metrics_line(&report)).unwrap();
        assert_eq!(
            (
                line["RetentionDaysFound"].as_u64(),
                line["RetentionRequestsCreated"].as_u64()
            ),
            (Some(3), Some(2))
        );
        assert_eq!(line["RetentionOutOfTime"], 1);
        let declared = line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        assert!(declared.iter().any(|m| m["Name"] == "RetentionDaysFound"));
    }

    #[test]
    fn the_schedule_input_is_a_retention_event_and_nothing_else() {
        assert!(serde_json::from_str::<RetentionEvent>(r#"{"retention": true}"#).is_ok());
        assert!(serde_json::from_str::<RetentionEvent>(r#"{"sweep": true}"#).is_err());
    }
}
