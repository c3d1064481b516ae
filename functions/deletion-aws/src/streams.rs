//! Reading the ledger's DynamoDB stream, for the local runner: in AWS the
//! event source mapping delivers these records to the grace-timer function.

use std::collections::BTreeMap;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use thiserror::Error;

use crate::describe;

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
