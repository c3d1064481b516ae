//! OpenDSR 2.0 (the request/status/cancel protocol of mParticle and
//! others, formerly OpenGDPR): an erasure request is a regulation
//! (`SUPPRESS_WITH_DELETE`) whose id is the controller's
//! `subject_request_id`; this is what the regulation keeps of it, and how
//! its status reads in OpenDSR's words.
//!
//! Invariant: `completed` is said only of a regulation that finished with
//! every object rewritten (`FINISHED`); a failed or partly failed one stays
//! `in_progress`, with the service's own status in `extensions`, never
//! `completed`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::model::regulation::RegulationStatus;
use crate::model::DeletionRequest;
use crate::status::Status;

/// The protocol version spoken.
pub const API_VERSION: &str = "2.0";

/// What a regulation made by an OpenDSR request keeps of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDsr {
    /// `gdpr` or `ccpa`.
    pub regulation: String,
    /// The controller in this service: the workspace.
    pub controller_id: String,
    /// The processor domain the request was received on: its callbacks
    /// say it (`X-OpenDSR-Processor-Domain`) and name their extension by it.
    pub processor_domain: String,
}

/// OpenDSR's name of a regulation status.
pub fn request_status(status: RegulationStatus) -> &'static str {
    match status {
        RegulationStatus::Initialized | RegulationStatus::OnHold => "pending",
        RegulationStatus::Running | RegulationStatus::Failed | RegulationStatus::PartialSuccess => "in_progress",
        RegulationStatus::Finished => "completed",
        RegulationStatus::Cancelled => "cancelled",
    }
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The status body (and, with `callback_url`, a callback's body) of a
/// regulation in `status`, its service status under the processor's
/// extension when that is not plainly said by OpenDSR's.
pub fn status_body(
    request: &DeletionRequest,
    link: &OpenDsr,
    status: RegulationStatus,
    callback_url: Option<&str>,
) -> Value {
    let domain = link.processor_domain.as_str();
    let mut body = json!({
        "controller_id": link.controller_id,
        "expected_completion_time": ts(request.deadline),
        "subject_request_id": request.id,
        "request_status": request_status(status),
        "api_version": API_VERSION,
        "results_url": Value::Null,
        "submitted_time": ts(request.submitted_at.unwrap_or(request.created_at)),
        "extensions": {
            domain: {
                "status": status.as_str(),
                "regulation": link.regulation,
                "status_url": format!("/v1/regulations/{}", request.id),
            }
        },
    });
    if let Some(url) = callback_url {
        body["status_callback_url"] = json!(url);
    }
    body
}

/// The status a history entry reports, for callbacks: the request's own
/// status at that entry (a completion with failures is not `completed`).
pub fn entry_status(request: &DeletionRequest, sequence: usize, object_failures: u64) -> Option<RegulationStatus> {
    let entry = request.history.get(sequence)?;
    let failures = if entry.status == Status::Completed {
        object_failures
    } else {
        0
    };
    Some(RegulationStatus::from_request(entry.status, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_is_said_only_of_a_regulation_finished_in_full() {
        assert_eq!(request_status(RegulationStatus::Finished), "completed");
        for not_done in [
            RegulationStatus::PartialSuccess,
            RegulationStatus::Failed,
            RegulationStatus::Running,
        ] {
            assert_eq!(request_status(not_done), "in_progress", "{not_done:?}");
        }
        assert_eq!(request_status(RegulationStatus::Initialized), "pending");
        assert_eq!(request_status(RegulationStatus::OnHold), "pending");
        assert_eq!(request_status(RegulationStatus::Cancelled), "cancelled");
    }
}
