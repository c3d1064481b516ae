//! The ledger's DynamoDB stream: its records, as Lambda delivers them to
//! the grace-timer and the notifier, decoded into the domain's changes
//! (the record's keys are the adapter's to read); and, for the local
//! runner, reading the stream itself (in AWS the event source mapping
//! does).

use std::collections::BTreeMap;

pub use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord as StreamRecord};
pub use aws_lambda_events::event::streams::{
    DynamoDbBatchItemFailure as ItemFailure, DynamoDbEventResponse as BatchResponse,
};
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use deletion_core::stream::RequestChanged;
use serde_dynamo::AttributeValue;
use thiserror::Error;

use crate::describe;
use crate::dynamodb::keys;

/// The changes of request items a stream event carries, in order; the
/// records of other items (shards, pages, locks, ...) are left out.
pub fn request_changes(event: &StreamEvent) -> Vec<RequestChanged> {
    event
        .records
        .iter()
        .filter_map(|record| {
            let key = |name: &str| match record.change.keys.get(name) {
                Some(AttributeValue::S(v)) => Some(v.as_str()),
                _ => None,
            };
            Some(RequestChanged {
                request_id: keys::request_of(key("pk")?, key("sk")?)?,
                record: record.change.sequence_number.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// How many requests entered each status in this batch: one for each
/// record of a request item whose `status` is not its old image's (a new
/// request enters its first). For the dashboard's requests by status.
pub fn statuses_entered(event: &StreamEvent) -> BTreeMap<String, u64> {
    let mut entered = BTreeMap::new();
    for record in &event.records {
        let key = |name: &str| match record.change.keys.get(name) {
            Some(AttributeValue::S(v)) => Some(v.as_str()),
            _ => None,
        };
        let (Some(pk), Some(sk)) = (key("pk"), key("sk")) else {
            continue;
        };
        if keys::request_of(pk, sk).is_none() {
            continue;
        }
        let status = |image: &serde_dynamo::Item| match image.get("status") {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        let (new, old) = (status(&record.change.new_image), status(&record.change.old_image));
        if let Some(new) = new.filter(|n| old.as_ref() != Some(n)) {
            *entered.entry(new).or_default() += 1;
        }
    }
    entered
}

/// The partial batch answer that has `records` delivered again.
pub fn batch_failures(records: impl IntoIterator<Item = String>) -> BatchResponse {
    let mut response = BatchResponse::default();
    response.batch_item_failures = records
        .into_iter()
        .map(|record| {
            let mut failure = ItemFailure::default();
            failure.item_identifier = Some(record);
            failure
        })
        .collect();
    response
}

/// The records a partial batch answer has delivered again.
pub fn failed_records(response: &BatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .filter_map(|f| f.item_identifier.as_deref())
        .collect()
}

/// The Lambda event the event source mapping delivers for these records.
pub fn lambda_event(changed: Vec<ChangedKey>) -> StreamEvent {
    let mut event = StreamEvent::default();
    event.records = changed
        .into_iter()
        .map(|c| {
            let mut record = StreamRecord::default();
            record.aws_region = "us-east-1".into();
            record.event_id = c.event_id;
            record.event_name = c.event_name;
            record.event_source = Some("aws:dynamodb".into());
            record.change.keys = [("pk", c.pk), ("sk", c.sk)]
                .into_iter()
                .map(|(name, value)| (name.to_owned(), AttributeValue::S(value)))
                .collect::<std::collections::HashMap<_, _>>()
                .into();
            record.change.sequence_number = Some(c.sequence_number);
            record
        })
        .collect();
    event
}

#[derive(Debug, Error)]
pub enum FeedError {
    #[error("table {0} has no stream")]
    NoStream(String),
    #[error("stream unavailable: {0}")]
    Unavailable(String),
}

/// One stream record, reduced to what the Lambda event carries and the
/// grace-timer reads: the event and the item's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedKey {
    pub sequence_number: String,
    pub event_id: String,
    pub event_name: String,
    pub pk: String,
    pub sk: String,
}

/// Follows every shard of a table's stream from its start.
///
/// Each poll asks for a fresh iterator after the last sequence number seen
/// rather than reusing the previous answer's next iterator: moto rolls a
/// cancelled transaction back by swapping in a copy of the table, and an
/// iterator taken before that keeps reading the discarded copy.
pub struct StreamFeed {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    stream_arn: Option<String>,
    /// The last sequence number read per shard (`None`: from the start).
    seen: BTreeMap<String, Option<String>>,
}

impl StreamFeed {
    pub fn new(clients: &crate::Clients, table: impl Into<String>) -> Self {
        StreamFeed {
            dynamodb: clients.dynamodb.clone(),
            streams: clients.streams.clone(),
            table: table.into(),
            stream_arn: None,
            seen: BTreeMap::new(),
        }
    }

    async fn arn(&mut self) -> Result<String, FeedError> {
        if let Some(arn) = &self.stream_arn {
            return Ok(arn.clone());
        }
        let out = self
            .dynamodb
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| FeedError::Unavailable(describe(&e)))?;
        let arn = out
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| FeedError::NoStream(self.table.clone()))?
            .to_owned();
        self.stream_arn = Some(arn.clone());
        Ok(arn)
    }

    /// The records written since the last poll, in order per shard.
    pub async fn poll(&mut self) -> Result<Vec<ChangedKey>, FeedError> {
        let arn = self.arn().await?;
        let description = self
            .streams
            .describe_stream()
            .stream_arn(&arn)
            .send()
            .await
            .map_err(|e| FeedError::Unavailable(describe(&e)))?;
        let shard_ids: Vec<String> = description
            .stream_description()
            .map(|d| {
                d.shards()
                    .iter()
                    .filter_map(|s| s.shard_id().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut changed = Vec::new();
        for shard in shard_ids {
            let last = self.seen.entry(shard.clone()).or_default();
            let request = self.streams.get_shard_iterator().stream_arn(&arn).shard_id(&shard);
            let request = match last {
                Some(seq) => request
                    .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                    .sequence_number(seq.clone()),
                None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            };
            let iterator = request
                .send()
                .await
                .map_err(|e| FeedError::Unavailable(describe(&e)))?
                .shard_iterator;
            let Some(iterator) = iterator else { continue };
            let out = self
                .streams
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .map_err(|e| FeedError::Unavailable(describe(&e)))?;
            for record in out.records() {
                let Some(data) = record.dynamodb() else {
                    continue;
                };
                let key = |name: &str| {
                    data.keys()
                        .and_then(|k| k.get(name))
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                let sequence_number = data.sequence_number().unwrap_or_default().to_owned();
                *last = Some(sequence_number.clone());
                changed.push(ChangedKey {
                    sequence_number,
                    event_id: record.event_id().unwrap_or_default().to_owned(),
                    event_name: record.event_name().map(|n| n.as_str().to_owned()).unwrap_or_default(),
                    pk: key("pk"),
                    sk: key("sk"),
                });
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deletion_core::ids::RequestId;

    fn changed(pk: String, sk: &str, seq: &str) -> ChangedKey {
        ChangedKey {
            sequence_number: seq.into(),
            event_id: format!("e{seq}"),
            event_name: "MODIFY".into(),
            pk,
            sk: sk.into(),
        }
    }

    #[test]
    fn only_request_items_are_changes_of_requests() {
        let id = RequestId::new();
        let event = lambda_event(vec![
            changed(keys::request_pk(&id), keys::REQUEST_SK, "1"),
            changed(keys::request_pk(&id), &keys::shard_sk(0), "2"),
            changed("LOCK#workspace#acme".into(), keys::LOCK_SK, "3"),
            changed(keys::request_pk(&id), keys::REQUEST_SK, "4"),
        ]);
        let changes = request_changes(&event);
        let records: Vec<_> = changes.iter().map(|c| c.record.as_str()).collect();
        assert_eq!(records, ["1", "4"]);
        assert!(changes.iter().all(|c| c.request_id == id));
    }

    #[test]
    fn a_stream_event_as_lambda_sends_it_decodes_and_failures_answer_by_sequence_number() {
        let id = RequestId::new();
        let json = serde_json::json!({"Records": [{
            "awsRegion": "us-east-1",
            "eventID": "c4ca4238a0b923820dcc509a6f75849b",
            "eventName": "MODIFY",
            "eventSource": "aws:dynamodb",
            "eventVersion": "1.1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/ledger/stream/2026-01-01T00:00:00.000",
            "dynamodb": {
                "ApproximateCreationDateTime": 1767225600.0,
                "Keys": {"pk": {"S": keys::request_pk(&id)}, "sk": {"S": "REQ"}},
                "SequenceNumber": "4421584500000000017450439091",
                "SizeBytes": 26,
                "StreamViewType": "KEYS_ONLY"
            }
        }]});
        let event: StreamEvent = serde_json::from_value(json).unwrap();
        let changes = request_changes(&event);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].request_id, id);
        let answer = serde_json::to_value(batch_failures([changes[0].record.clone()])).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "4421584500000000017450439091"}]})
        );
    }

    #[test]
    fn each_request_that_entered_a_status_counts_once_for_it() {
        let (a, b) = (RequestId::new(), RequestId::new());
        let record = |pk: String, sk: &str, old: Option<&str>, new: Option<&str>| {
            let mut change = serde_json::json!({
                "Keys": {"pk": {"S": pk}, "sk": {"S": sk}},
                "SequenceNumber": "1",
                "SizeBytes": 40,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            });
            if let Some(old) = old {
                change["OldImage"] = serde_json::json!({"status": {"S": old}});
            }
            if let Some(new) = new {
                change["NewImage"] = serde_json::json!({"status": {"S": new}});
            }
            serde_json::json!({"eventID": "e", "eventName": "MODIFY", "eventSource": "aws:dynamodb",
                               "awsRegion": "us-east-1", "dynamodb": change})
        };
        let json = serde_json::json!({"Records": [
            record(keys::request_pk(&a), "REQ", None, Some("SCHEDULED")),
            record(keys::request_pk(&a), "REQ", Some("SCHEDULED"), Some("PURGING")),
            record(keys::request_pk(&a), "REQ", Some("PURGING"), Some("PURGING")),
            record(keys::request_pk(&b), "REQ", Some("SCHEDULED"), Some("PURGING")),
            record(keys::request_pk(&b), &keys::shard_sk(0), None, Some("PURGING")),
            record(keys::request_pk(&b), "REQ", Some("PURGING"), None),
        ]});
        let event: StreamEvent = serde_json::from_value(json).unwrap();
        let entered = statuses_entered(&event);
        assert_eq!(
            entered,
            BTreeMap::from([("PURGING".to_owned(), 2), ("SCHEDULED".to_owned(), 1)]),
            "a write that keeps the status, a shard and a removal count for nothing"
        );
    }
}
