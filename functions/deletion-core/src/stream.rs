//! The ledger's DynamoDB stream event as Lambda delivers it (as much of it
//! as the handlers read), and the partial batch answer.
//!
//! A record only *names* an item: handlers read the item from the ledger,
//! so replayed, duplicated or out-of-order records converge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::RequestId;

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

impl StreamEvent {
    /// The requests the records name, each with the sequence numbers of its
    /// records (to report them failed together); other items' records are
    /// left out.
    pub fn by_request(&self) -> BTreeMap<RequestId, Vec<String>> {
        let mut by_request: BTreeMap<RequestId, Vec<String>> = BTreeMap::new();
        for record in &self.records {
            if let Some(id) = record.request_id() {
                by_request
                    .entry(id)
                    .or_default()
                    .push(record.dynamodb.sequence_number.clone());
            }
        }
        by_request
    }
}
