//! Pages of requests from the two indexes: a listing (`by-workspace`,
//! newest first) and the requests not in a final state (`active`, for the
//! sweep). A cursor is the page's last key, opaque to callers, accepted
//! only by the listing that returned it.

use base64::Engine;
use deletion_core::model::Listing;
use deletion_core::ports::{RequestPage, Undecodable};
use deletion_core::LedgerError;

use super::errors::unavailable;
use super::items::{s, string_attr, Item};
use super::keys;
use super::DynamoLedger;

/// An index the ledger lists requests from: its name and the attributes of
/// its cursor (table key, then index key).
struct IndexQuery {
    name: &'static str,
    keys: [&'static str; 4],
    newest_first: bool,
}

const BY_WORKSPACE: IndexQuery = IndexQuery {
    name: keys::INDEX_BY_WORKSPACE,
    keys: keys::LISTING_KEYS,
    newest_first: true,
};

const ACTIVE: IndexQuery = IndexQuery {
    name: keys::INDEX_ACTIVE,
    keys: keys::ACTIVE_KEYS,
    newest_first: false,
};

impl DynamoLedger {
    /// A page of a listing; it shows every request or fails: it skips none.
    pub(super) async fn list_requests(
        &self,
        listing: &Listing,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<RequestPage, LedgerError> {
        let partition = keys::listing_pk(listing);
        let page = self
            .query_index(&BY_WORKSPACE, &partition, limit.clamp(1, 100), cursor)
            .await?;
        match page.undecodable.into_iter().next() {
            Some(u) => Err(LedgerError::Corrupt {
                key: u.key,
                reason: u.reason,
            }),
            None => Ok(RequestPage {
                undecodable: Vec::new(),
                ..page
            }),
        }
    }

    /// A page of the requests not in a final state, soonest grace end
    /// first; items that do not decode are reported, not dropped.
    pub(super) async fn active_requests(&self, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        self.query_index(&ACTIVE, keys::ACTIVE_PARTITION, limit.clamp(1, 1000), cursor)
            .await
    }

    /// One page of requests from an index partition, with a cursor that
    /// only this partition accepts.
    async fn query_index(
        &self,
        index: &IndexQuery,
        partition: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<RequestPage, LedgerError> {
        let pk_attr = index.keys[2];
        let start = match cursor {
            Some(c) => Some(decode_cursor(c, &index.keys, (pk_attr, partition))?),
            None => None,
        };
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index.name)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", pk_attr)
            .expression_attribute_values(":p", s(partition))
            .scan_index_forward(!index.newest_first)
            .limit(limit as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let mut page = RequestPage::default();
        for item in out.items() {
            match self.decode_request(item).await {
                Ok(r) => page.items.push(r),
                Err(LedgerError::Corrupt { key, reason }) => page.undecodable.push(Undecodable {
                    request_id: keys::request_of_pk(&key),
                    key,
                    reason,
                }),
                Err(e) => return Err(e),
            }
        }
        page.next = out
            .last_evaluated_key()
            .map(|k| encode_cursor(k, &index.keys))
            .transpose()?;
        Ok(page)
    }
}

fn encode_cursor(key: &Item, names: &[&str]) -> Result<String, LedgerError> {
    let mut map = serde_json::Map::new();
    for &name in names {
        let value = string_attr(key, name).ok_or_else(|| LedgerError::Corrupt {
            key: "LastEvaluatedKey".into(),
            reason: format!("no {name}"),
        })?;
        map.insert(name.into(), value.into());
    }
    let json = serde_json::Value::Object(map).to_string();
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
}

/// Decodes a cursor of `names`, which must have `partition.0 = partition.1`
/// (a cursor of one listing is refused on another).
fn decode_cursor(cursor: &str, names: &[&str], partition: (&str, &str)) -> Result<Item, LedgerError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| LedgerError::InvalidCursor)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| LedgerError::InvalidCursor)?;
    let mut item = Item::new();
    for &name in names {
        let v = value
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|v| v.len() <= 512)
            .ok_or(LedgerError::InvalidCursor)?;
        item.insert(name.into(), s(v));
    }
    if string_attr(&item, partition.0).as_deref() != Some(partition.1) {
        return Err(LedgerError::InvalidCursor);
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_of_one_listing_is_refused_on_another() {
        let key: Item = keys::LISTING_KEYS
            .iter()
            .map(|k| (k.to_string(), s(if *k == "gsi1pk" { "WS#acme" } else { "x" })))
            .collect();
        let cursor = encode_cursor(&key, &keys::LISTING_KEYS).unwrap();
        assert_eq!(
            decode_cursor(&cursor, &keys::LISTING_KEYS, ("gsi1pk", "WS#acme")).unwrap(),
            key
        );
        assert!(matches!(
            decode_cursor(&cursor, &keys::LISTING_KEYS, ("gsi1pk", "WS#globex")),
            Err(LedgerError::InvalidCursor)
        ));
        assert!(matches!(
            decode_cursor("not base64!", &keys::LISTING_KEYS, ("gsi1pk", "WS#acme")),
            Err(LedgerError::InvalidCursor)
        ));
    }
}
