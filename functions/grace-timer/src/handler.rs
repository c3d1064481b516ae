//! Keeps each request's grace timer in step with the ledger, driven by the
//! ledger's DynamoDB stream.
//!
//! A record only *names* a request: the handler reads the request from the
//! ledger and arms its timer if it is in grace, or removes it otherwise. So
//! replayed, duplicated or out-of-order records converge to the same state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use deletion_core::ids::RequestId;
use deletion_core::ports::{Clock, Ledger, Timers};
use deletion_core::timers::TimerReconciler;

/// The DynamoDB stream event, as much of it as the handler reads.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct StreamEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<StreamRecord>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StreamRecord {
    #[serde(rename = "eventID", default)]
    pub event_id: String,
    #[serde(rename = "eventName", default)]
    pub event_name: String,
    pub dynamodb: StreamData,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct StreamData {
    #[serde(rename = "Keys", default)]
    pub keys: BTreeMap<String, AttributeValue>,
    #[serde(rename = "SequenceNumber", default)]
    pub sequence_number: String,
}

/// A string attribute value (`{"S": "..."}`); other types are ignored.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AttributeValue {
    #[serde(rename = "S", default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
}

/// Partial batch response: the records to deliver again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

impl StreamRecord {
    fn key(&self, name: &str) -> Option<&str> {
        self.dynamodb.keys.get(name).and_then(|v| v.s.as_deref())
    }

    /// The request a record is about, if it is a request item.
    pub fn request_id(&self) -> Option<RequestId> {
        if self.key("sk") != Some("REQ") {
            return None;
        }
        let id = self.key("pk")?.strip_prefix("REQ#")?;
        RequestId::parse(id).ok()
    }
}

pub struct GraceTimer<L, T, C> {
    reconciler: TimerReconciler<L, T, C>,
}

impl<L: Ledger, T: Timers, C: Clock> GraceTimer<L, T, C> {
    pub fn new(ledger: L, timers: T, clock: C) -> Self {
        GraceTimer {
            reconciler: TimerReconciler::new(ledger, timers, clock),
        }
    }

    /// Arms no timer earlier than `lead` from now.
    pub fn with_min_lead(mut self, lead: chrono::Duration) -> Self {
        self.reconciler = self.reconciler.with_min_lead(lead);
        self
    }

    /// Reconciles each request named in the batch once; reports the records
    /// of the requests that could not be reconciled, to be delivered again.
    pub async fn handle(&self, event: StreamEvent) -> BatchResponse {
        // request id -> sequence numbers of its records
        let mut by_request: BTreeMap<RequestId, Vec<String>> = BTreeMap::new();
        for record in &event.records {
            match record.request_id() {
                Some(id) => by_request
                    .entry(id)
                    .or_default()
                    .push(record.dynamodb.sequence_number.clone()),
                None => info!(event_id = %record.event_id, "record is not a request item; ignored"),
            }
        }
        let mut failures = Vec::new();
        for (id, sequence_numbers) in by_request {
            match self.reconciler.reconcile(&id).await {
                Ok(action) => info!(request_id = %id, ?action, "timer reconciled"),
                Err(e) => {
                    warn!(request_id = %id, error = %e, "timer not reconciled; the records will be delivered again");
                    failures.extend(
                        sequence_numbers
                            .into_iter()
                            .map(|s| ItemFailure { item_identifier: s }),
                    );
                }
            }
        }
        BatchResponse {
            batch_item_failures: failures,
        }
    }
}
