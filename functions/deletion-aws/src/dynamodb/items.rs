//! Items: attribute values, the JSON documents kept in `doc`, items to and
//! from structs (`serde_dynamo`), and DynamoDB's 400 KB item limit.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use deletion_core::LedgerError;

pub type Item = HashMap<String, AttributeValue>;

/// DynamoDB's limit on one item (names and values).
pub const ITEM_LIMIT: usize = 400 * 1024;

/// The most bytes of entries (or ids) one item holds: DynamoDB's item
/// limit is 400 KB.
const CHUNK_BYTES: usize = 300 * 1024;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn n_i64(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The table's TTL attribute: when DynamoDB may delete the item (epoch
/// seconds). Readers that care judge it themselves: the deletion comes
/// some time after.
pub const EXPIRES_AT: &str = "expires_at";

pub fn string_attr(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// The item's `pk/sk`, for messages.
pub fn key_of(item: &Item) -> String {
    [string_attr(item, "pk"), string_attr(item, "sk")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/")
}

/// The `pk` and `sk` of an item (for a GetItem or DeleteItem).
pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// An item from a struct (its fields are the attributes).
pub fn to_item<T: serde::Serialize>(value: &T, key: impl Fn() -> String) -> Result<Item, LedgerError> {
    serde_dynamo::to_item(value).map_err(|e| LedgerError::Corrupt {
        key: key(),
        reason: e.to_string(),
    })
}

/// A struct from an item; `key` names the item in the error.
pub fn from_item<T: serde::de::DeserializeOwned>(item: Item, key: impl Fn() -> String) -> Result<T, LedgerError> {
    serde_dynamo::from_item(item).map_err(|e| LedgerError::Corrupt {
        key: key(),
        reason: e.to_string(),
    })
}

/// The JSON document an item keeps in `doc`.
pub fn decode<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, LedgerError> {
    let key = string_attr(item, "pk").unwrap_or_default();
    let doc = item
        .get("doc")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| LedgerError::Corrupt {
            key: key.clone(),
            reason: "no doc attribute".into(),
        })?;
    serde_json::from_str(doc).map_err(|e| LedgerError::Corrupt {
        key,
        reason: e.to_string(),
    })
}

/// A value as the JSON text of a `doc` attribute.
pub fn doc(value: &impl serde::Serialize, key: impl Fn() -> String) -> Result<String, LedgerError> {
    serde_json::to_string(value).map_err(|e| LedgerError::Corrupt {
        key: key(),
        reason: e.to_string(),
    })
}

/// An item's size as DynamoDB counts it (attribute names and values; a
/// number counted by its digits, a bound on its stored size).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(v) | AttributeValue::N(v) => v.len(),
                    AttributeValue::B(v) => v.as_ref().len(),
                    _ => 1,
                }
        })
        .sum()
}

/// `item`, or `Refused` if it is over the item limit: it is not sent.
pub fn checked(item: Item) -> Result<Item, LedgerError> {
    let size = item_size(&item);
    if size <= ITEM_LIMIT {
        return Ok(item);
    }
    Err(LedgerError::Refused(format!(
        "item {} would be {size} bytes, over DynamoDB's {ITEM_LIMIT}-byte item limit; not written",
        key_of(&item)
    )))
}

/// Splits `items` into runs of at most `CHUNK_BYTES` by `size` (an item
/// larger than that gets a run of its own); always at least one run.
pub fn chunks<T: Clone>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut chunks: Vec<Vec<T>> = vec![Vec::new()];
    let mut bytes = 0;
    for item in items {
        let n = size(item);
        if bytes + n > CHUNK_BYTES && !chunks.last().is_some_and(Vec::is_empty) {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += n;
        if let Some(chunk) = chunks.last_mut() {
            chunk.push(item.clone());
        }
    }
    chunks
}

/// Times as the ledger writes them: RFC 3339, milliseconds, `Z`.
pub mod millis {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_over_the_limit_is_refused_with_a_clear_error_not_sent() {
        let item = HashMap::from([
            ("pk".into(), s("REQ#x")),
            ("sk".into(), s("REQ")),
            ("doc".into(), s("d".repeat(ITEM_LIMIT))),
        ]);
        match checked(item) {
            Err(LedgerError::Refused(reason)) => assert!(reason.contains("REQ#x/REQ") && reason.contains("limit")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn times_are_written_to_the_millisecond() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct At {
            #[serde(with = "millis")]
            at: chrono::DateTime<chrono::Utc>,
        }
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678901Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let item = to_item(&At { at }, String::new).unwrap();
        assert_eq!(item.get("at"), Some(&s("2026-01-02T03:04:05.678Z")));
        let back: At = from_item(item, String::new).unwrap();
        assert_eq!(back.at.timestamp_millis(), at.timestamp_millis());
    }
}
