//! Keeps each request's grace timer in step with the ledger, driven by the
//! ledger's DynamoDB stream.
//!
//! A record only *names* a request: the handler reads the request from the
//! ledger and arms its timer if it is in grace, or removes it otherwise. So
//! replayed, duplicated or out-of-order records converge to the same state.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use deletion_aws::streams;
pub use deletion_aws::streams::{BatchResponse, StreamEvent, StreamRecord};
use deletion_core::ports::{Clock, Holds, Ledger, SweepMarks, Timers};
use deletion_core::stream;
use deletion_core::sweep::{SweepReport, Sweeper};
use deletion_core::timers::TimerReconciler;
use deletion_core::ServiceError;

/// What the function is invoked with: the ledger's stream records, or the
/// recurring sweep schedule's `{"sweep": true}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TimerEvent {
    Sweep(SweepEvent),
    Stream(StreamEvent),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepEvent {
    pub sweep: bool,
}

pub struct GraceTimer<L, T, C> {
    reconciler: TimerReconciler<L, T, C>,
    sweeper: Sweeper<L, T, C>,
}

/// How long before the invocation's deadline a sweep stops starting work.
pub const SWEEP_MARGIN: chrono::Duration = chrono::Duration::seconds(15);

impl<L: Ledger + Holds + SweepMarks + Clone, T: Timers + Clone, C: Clock + Clone> GraceTimer<L, T, C> {
    pub fn new(ledger: L, timers: T, clock: C) -> Self {
        GraceTimer {
            reconciler: TimerReconciler::new(ledger.clone(), timers.clone(), clock.clone()),
            sweeper: Sweeper::new(ledger, timers, clock),
        }
    }

    /// Arms no timer earlier than `lead` from now.
    pub fn with_min_lead(mut self, lead: chrono::Duration) -> Self {
        self.reconciler = self.reconciler.with_min_lead(lead);
        self.sweeper.min_lead = lead;
        self
    }

    /// A grace reminder this long before each grace ends (`None`: none).
    pub fn with_reminder(mut self, before: Option<chrono::Duration>) -> Self {
        self.reconciler = self.reconciler.with_reminder(before);
        self
    }

    /// How long one sweep may run (below the function's timeout).
    pub fn with_sweep_budget(mut self, budget: chrono::Duration) -> Self {
        self.sweeper.budget = budget;
        self
    }

    /// Runs the sweep within its budget and prints its counts as
    /// CloudWatch metrics (EMF), failures included.
    pub async fn sweep(&self) -> Result<SweepReport, ServiceError> {
        self.sweep_until(None).await
    }

    /// A sweep that also stops `SWEEP_MARGIN` before `deadline` (the
    /// invocation's). Its metrics are printed whatever it met.
    pub async fn sweep_until(
        &self,
        deadline: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<SweepReport, ServiceError> {
        let mut stop_at = self.sweeper.clock_now() + self.sweeper.budget;
        if let Some(deadline) = deadline {
            stop_at = stop_at.min(deadline - SWEEP_MARGIN);
        }
        let report = self.sweeper.run_until(stop_at).await?;
        println!("{}", metrics_line(&report));
        Ok(report)
    }

    /// Handles either kind of event.
    pub async fn handle_event(&self, event: TimerEvent) -> Result<serde_json::Value, ServiceError> {
        self.handle_event_until(event, None).await
    }

    /// Handles either kind of event; a sweep ends before `deadline`.
    pub async fn handle_event_until(
        &self,
        event: TimerEvent,
        deadline: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<serde_json::Value, ServiceError> {
        Ok(match event {
            TimerEvent::Sweep(_) => serde_json::to_value(self.sweep_until(deadline).await?).unwrap_or_default(),
            TimerEvent::Stream(stream) => serde_json::to_value(self.handle(stream).await).unwrap_or_default(),
        })
    }

    /// Reconciles each request named in the batch once; reports the records
    /// of the requests that could not be reconciled, to be delivered again.
    pub async fn handle(&self, event: StreamEvent) -> BatchResponse {
        for line in status_metric_lines(&streams::statuses_entered(&event)) {
            println!("{line}");
        }
        let changes = streams::request_changes(&event);
        let ignored = event.records.len() - changes.len();
        let by_request = stream::by_request(changes);
        if ignored > 0 {
            info!(ignored, "records not about a request item; ignored");
        }
        let mut failures = Vec::new();
        for (id, sequence_numbers) in by_request {
            match self.reconciler.reconcile(&id).await {
                Ok(action) => info!(request_id = %id, ?action, "timer reconciled"),
                Err(e) => {
                    warn!(request_id = %id, error = %e, "timer not reconciled; the records will be delivered again");
                    failures.extend(sequence_numbers);
                }
            }
        }
        streams::batch_failures(failures)
    }
}

/// One EMF line per status requests entered in a stream batch:
/// `RequestsEnteredStatus` under the dimension `Status` (the dashboard's
/// requests by status).
pub fn status_metric_lines(entered: &std::collections::BTreeMap<String, u64>) -> Vec<String> {
    entered
        .iter()
        .map(|(status, n)| deletion_aws::metrics::line(&[("Status", status)], &[("RequestsEnteredStatus", *n)], &[]))
        .collect()
}

/// A CloudWatch embedded-metric-format line: the template's alarm watches
/// `DeletionService/DeadlinesMissed`; `SweepFailures` counts the requests
/// (and items) a sweep could not handle, `SweepOutOfTime` a run that
/// stopped at its budget (the next one resumes there).
pub fn metrics_line(report: &SweepReport) -> String {
    let names = [
        ("DeadlinesMissed", report.deadline_missed.len()),
        ("SweepStarted", report.started.len()),
        ("SweepRedriven", report.redriven.len()),
        ("SweepRetried", report.retried.len()),
        ("PurgesExhausted", report.exhausted.len()),
        ("SweepFailures", report.failures.len()),
        ("SweepOutOfTime", usize::from(report.out_of_time)),
        ("DeadlinesAtRisk", report.deadlines_at_risk as usize),
        // One a run: the alarm that the sweep has stopped running.
        ("SweepRuns", 1),
    ];
    let names = names.map(|(n, v)| (n, v as u64));
    deletion_aws::metrics::line(&[], &names, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use deletion_core::sweep::SweepFailure;

    #[test]
    fn the_metrics_line_counts_the_failures_of_a_sweep() {
        let report = SweepReport {
            failures: vec![SweepFailure {
                request_id: None,
                item: "an item".into(),
                error: "corrupt".into(),
            }],
            out_of_time: true,
            ..SweepReport::default()
        };
        let line: serde_json::Value = serde_json::from_str(&metrics_line(&report)).unwrap();
        assert_eq!(line["SweepFailures"], 1);
        assert_eq!(line["SweepOutOfTime"], 1);
        let declared = line["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        assert!(declared.iter().any(|m| m["Name"] == "SweepFailures"));
    }

    #[test]
    fn each_status_entered_is_a_line_of_its_own() {
        let entered = std::collections::BTreeMap::from([("COMPLETED".to_owned(), 2), ("PURGING".to_owned(), 1)]);
        let lines: Vec<serde_json::Value> = status_metric_lines(&entered)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0]["Status"].clone(), lines[0]["RequestsEnteredStatus"].clone()),
            ("COMPLETED".into(), 2.into())
        );
        assert_eq!(
            lines[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["Status"]])
        );
    }
}
