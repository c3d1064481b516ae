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
    pub event_id: String,
    pub event_name: String,
    pub pk: String,
    pub sk: String,
}

/// Follows every shard of a table's stream from its start.
pub struct StreamFeed {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
    stream_arn: Option<String>,
    /// Next iterator per shard; `None` once a closed shard is drained.
    iterators: BTreeMap<String, Option<String>>,
}

impl StreamFeed {
    pub fn new(clients: &crate::Clients, table: impl Into<String>) -> Self {
        StreamFeed {
            dynamodb: clients.dynamodb.clone(),
            streams: clients.streams.clone(),
            table: table.into(),
            stream_arn: None,
            iterators: BTreeMap::new(),
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
        for shard in shard_ids {
            if self.iterators.contains_key(&shard) {
                continue;
            }
            let it = self
                .streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(|e| FeedError::Unavailable(describe(&e)))?;
            self.iterators.insert(shard, it.shard_iterator);
        }
        let mut changed = Vec::new();
        for iterator in self.iterators.values_mut() {
            let Some(current) = iterator.clone() else {
                continue;
            };
            let out = self
                .streams
                .get_records()
                .shard_iterator(current)
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
                changed.push(ChangedKey {
                    event_id: record.event_id().unwrap_or_default().to_owned(),
                    event_name: record
                        .event_name()
                        .map(|n| n.as_str().to_owned())
                        .unwrap_or_default(),
                    pk: key("pk"),
                    sk: key("sk"),
                });
            }
            *iterator = out.next_shard_iterator;
        }
        Ok(changed)
    }
}
