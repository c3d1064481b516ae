//! The ledger on one DynamoDB table.
//!
//! Every key format is in `keys` (the table's layout is listed there); one
//! module per part of the ledger implements its port: `requests` (requests,
//! scope locks, idempotency keys, receipts), `listing` (the indexes and
//! their cursors), `shards` (shards and write-ahead pages; `layout`, the
//! partitions they are spread over), `directory` (memberships), `holds`, `regulations` (subject ids and suppressions),
//! `callbacks` and `sweep` (the sweep's mark). `errors` maps DynamoDB's
//! errors to the ledger's.
//!
//! Every write is conditional: a new item must not exist, a changed item
//! must still have the version it was read at. A request with a parent is
//! written only while the parent exists and is not final (checked in the
//! same transaction). No item is sent larger than DynamoDB's 400 KB limit:
//! a request's history is bounded by the model, its receipt moves to chunk
//! items, and any item still too large is refused here
//! (`LedgerError::Refused`) rather than sent.

mod callbacks;
pub mod cost;
mod directory;
mod errors;
mod holds;
mod items;
pub mod keys;
mod layout;
mod listing;
mod quotas;
mod regulations;
mod requests;
mod retention;
mod shards;
mod sweep;
#[cfg(test)]
mod tests;

use aws_sdk_dynamodb::Client;
use deletion_core::LedgerError;

pub use errors::cancelled;
pub use items::{item_size, Item, ITEM_LIMIT};
pub use keys::{request_pk, INDEX_ACTIVE, INDEX_BY_WORKSPACE, INDEX_OPEN, REQUEST_SK};
pub use requests::request_items;

use errors::{conflict_unless_written, unavailable};
use items::{key, n, s};

#[derive(Clone, Debug)]
pub struct DynamoLedger {
    client: Client,
    table: String,
    layouts: layout::Layouts,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoLedger {
            client,
            table: table.into(),
            layouts: layout::Layouts::default(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(out.item)
    }

    /// Writes one item holding `doc` (JSON) under `pk`/`sk`.
    async fn put_doc(&self, pk: String, sk: String, doc: &impl serde::Serialize) -> Result<(), LedgerError> {
        let doc = items::doc(doc, || format!("{pk}/{sk}"))?;
        let mut item = key(pk, sk);
        item.insert("doc".into(), s(doc));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }

    /// Every item of partition `pk` whose sort key begins with `prefix`, in
    /// sort-key order, all pages, read consistently.
    async fn query_prefix(&self, pk: String, prefix: &str) -> Result<Vec<Item>, LedgerError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p AND begins_with(sk, :s)")
                .expression_attribute_values(":p", s(pk.clone()))
                .expression_attribute_values(":s", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable(&e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// The `request_id` attribute of an item (a lock's or a key's holder).
    async fn holder(&self, pk: String, sk: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .get_item(pk, sk)
            .await?
            .and_then(|item| items::string_attr(&item, "request_id")))
    }

    /// Writes one item conditionally on its stored version.
    async fn put_versioned(&self, item: Item, prev: u64) -> Result<(), LedgerError> {
        self.put_if(item, Some(prev)).await
    }

    /// Writes one item if its stored version is `prev`, or with `None` if
    /// there is none; else `Conflict`.
    async fn put_if(&self, item: Item, prev: Option<u64>) -> Result<(), LedgerError> {
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        let put = match prev {
            Some(prev) => put
                .condition_expression("version = :prev")
                .expression_attribute_values(":prev", n(prev)),
            None => put.condition_expression("attribute_not_exists(pk)"),
        };
        conflict_unless_written(put.send().await)
    }
}
