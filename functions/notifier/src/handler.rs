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
                emit(&results);
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
        let results = self.notifier.deliver_all(&ids).await;
        emit(&results);
        for (id, result) in results {
            log(&id, &result);
            if result.is_err() {
                let records = by_request.get(&id).cloned().unwrap_or_default();
                failures.extend(records);
            }
        }
        streams::batch_failures(failures)
    }
}

/// Prints a round's metric line, unless the round had nothing to do (a
/// retry round with nothing due: the local runner plays one every half
/// second, and a line of zeros says nothing).
fn emit(results: &[(deletion_core::ids::RequestId, Result<Delivery, ServiceError>)]) {
    if !results.is_empty() {
        println!("{}", metric_line(results.iter().map(|(_, r)| r)));
    }
}

/// The EMF line of a round of deliveries: `CallbacksDelivered` (entries
/// delivered), `CallbacksWaiting` (requests whose receiver failed, waiting
/// for a retry) and `CallbackErrors` (rounds the ledger failed): the
/// dashboard's callbacks failing.
pub fn metric_line<'a>(results: impl Iterator<Item = &'a Result<Delivery, ServiceError>>) -> String {
    let (mut delivered, mut waiting, mut errors) = (0u64, 0u64, 0u64);
    for result in results {
        match result {
            Ok(Delivery::UpToDate { delivered: n }) => delivered += u64::from(*n),
            Ok(Delivery::Waiting { delivered: n, .. }) => {
                delivered += u64::from(*n);
                waiting += 1;
            }
            Ok(Delivery::NoCallback | Delivery::Raced) => {}
            Err(_) => errors += 1,
        }
    }
    deletion_aws::metrics::line(
        &[],
        &[
            ("CallbacksDelivered", delivered),
            ("CallbacksWaiting", waiting),
            ("CallbackErrors", errors),
        ],
        &[],
    )
}

fn log(id: &deletion_core::ids::RequestId, result: &Result<Delivery, ServiceError>) {
    match result {
        Ok(Delivery::NoCallback) => {}
        Ok(delivery) => info!(request_id = %id, ?delivery, "callbacks"),
        Err(e) => warn!(request_id = %id, error = %e, "callbacks not delivered; will be tried again"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_counts_entries_delivered_requests_waiting_and_errors() {
        let results: Vec<Result<Delivery, ServiceError>> = vec![
            Ok(Delivery::UpToDate { delivered: 3 }),
            Ok(Delivery::Waiting {
                delivered: 1,
                until: chrono::Utc::now(),
            }),
            Ok(Delivery::NoCallback),
            Err(ServiceError::NotFound("r".into())),
        ];
        let line: serde_json::Value = serde_json::from_str(&metric_line(results.iter())).unwrap();
        assert_eq!(
            (
                line["CallbacksDelivered"].clone(),
                line["CallbacksWaiting"].clone(),
                line["CallbackErrors"].clone()
            ),
            (4.into(), 1.into(), 1.into())
        );
    }
}
