//! Delivers status callbacks: on the ledger's stream records (a request
//! changed) and on the recurring `{"retry": true}` schedule (backoffs that
//! ran out).

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use deletion_aws::streams::{self, BatchResponse, StreamEvent};
use deletion_core::callbacks::{Delivery, Notifier};
use deletion_core::ports::{CallbackLedger, CallbackSender, Clock, Ledger};
use deletion_core::stream;
use deletion_core::ServiceError;

/// What the function is invoked with.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NotifierEvent {
    Retry(RetryEvent),
    Stream(StreamEvent),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryEvent {
    pub retry: bool,
}

pub struct CallbackHandler<L, S, C> {
    notifier: Notifier<L, S, C>,
}

impl<L: Ledger + CallbackLedger, S: CallbackSender, C: Clock> CallbackHandler<L, S, C> {
    pub fn new(notifier: Notifier<L, S, C>) -> Self {
        CallbackHandler { notifier }
    }

    pub async fn handle_event(&self, event: NotifierEvent) -> Result<serde_json::Value, ServiceError> {
        Ok(match event {
            NotifierEvent::Retry(_) => {
                let results = self.notifier.retry_due().await?;
                let failed = results.iter().filter(|(_, r)| r.is_err()).count();
                for (id, result) in &results {
                    log(id, result);
                }
                serde_json::json!({"retried": results.len(), "failed": failed})
            }
            NotifierEvent::Stream(stream) => serde_json::to_value(self.handle(stream).await).unwrap_or_default(),
        })
    }

    /// Delivers the callbacks of each request named in the batch; the
    /// records of requests whose round failed on the ledger (not on the
    /// receiver: that is recorded and retried) are delivered again.
    pub async fn handle(&self, event: StreamEvent) -> BatchResponse {
        let by_request = stream::by_request(streams::request_changes(&event));
        let ids: Vec<_> = by_request.keys().cloned().collect();
        let mut failures = Vec::new();
        for (id, result) in self.notifier.deliver_all(&ids).await {
            log(&id, &result);
            if result.is_err() {
                let records = by_request.get(&id).cloned().unwrap_or_default();
                failures.extend(records);
            }
        }
        streams::batch_failures(failures)
    }
}

fn log(id: &deletion_core::ids::RequestId, result: &Result<Delivery, ServiceError>) {
    match result {
        Ok(Delivery::NoCallback) => {}
        Ok(delivery) => info!(request_id = %id, ?delivery, "callbacks"),
        Err(e) => warn!(request_id = %id, error = %e, "callbacks not delivered; will be tried again"),
    }
}
