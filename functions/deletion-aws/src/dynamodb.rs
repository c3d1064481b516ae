//! The ledger on one DynamoDB table.
//!
//! Items (pk / sk):
//! - `REQ#<id>` / `REQ`: a request. `status`, `version` and `grace_ends_at`
//!   as attributes for conditions and filters, the whole request as JSON in
//!   `doc`; `gsi1pk = WS#<workspace>`, `gsi1sk = <created_at>#<id>` for the
//!   newest-first listing (index `by-workspace`).
//! - `REQ#<id>` / `SHARD#<nnnnnn>`: a purge shard with its checkpoint.
//! - `REQ#<id>` / `PAGE#<shard>#<seq>#<chunk>`: a page recorded before its
//!   delete, dropped once counted (write-ahead for exact counts).
//! - `REQ#<id>` / `RECEIPT#<write>#<nnnn>`: the prefixes of a receipt too
//!   large to keep in the request item, in chunks written *before* the
//!   conditional write of the request that names them (`receipt_parts`,
//!   `receipt_chunks`); read back into the receipt, so the signed receipt
//!   is whole. A chunk set no request names (a lost race) is inert.
//! - `SWEEP` / `MARK`: where the last sweep stopped, with a `version`.
//! - `LOCK#<scope>` / `LOCK`: the one active request of a scope.
//! - `IDEM#<key>` / `IDEM`: the request an idempotency key created; the
//!   key is the caller's own for one scope (the service stores a digest of
//!   caller, scope and key, see `requests`).
//! - `ACCOUNT#<account>` / `MEMBER#<workspace>`: a membership, with `role`.
//! - `REQ#<id>` / `SUBJECTS#<nnnn>`: a regulation's subject ids, in chunks.
//! - `REQ#<id>` / `CALLBACK`: where the request's status callbacks stand;
//!   `gsi2pk = CALLBACK_DUE`, `gsi2sk = <next attempt>#<id>` while one
//!   waits for a retry (index `active`).
//! - `HOLD#<workspace>` / `HOLD`: an operator's legal hold on a workspace.
//! - `SUPP#<workspace>` / `U#<user id>`: a user's suppression state, with
//!   the regulation that set it and its `stamp` (created_at#id), so the
//!   later regulation wins whatever the order the writes land in.
//!
//! Every write is conditional: a new item must not exist, a changed item
//! must still have the version it was read at. A request with a parent is
//! written only while the parent exists and is not final (checked in the
//! same transaction). No item is sent larger than DynamoDB's 400 KB limit:
//! a request's history is bounded by the model, its receipt moves to chunk
//! items, and any item still too large is refused here
//! (`LedgerError::Refused`) rather than sent.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use deletion_core::callbacks::CallbackState;
use deletion_core::ids::{AccountId, IdempotencyKey, RequestId, WorkspaceId};
use deletion_core::model::{DeletionRequest, PrefixReceipt, Scope, Shard, Status};
use deletion_core::ports::{
    CallbackLedger, Directory, Entry, Hold, Holds, Ledger, Membership, PendingPage, Regulations, RequestPage, Role,
    Suppression, SweepMark, SweepMarks, Undecodable,
};
use deletion_core::regulation::{Subjects, UserId};
use deletion_core::LedgerError;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::describe;

pub const INDEX_BY_WORKSPACE: &str = "by-workspace";
/// Sparse index of the requests not in a final state, for the sweep.
pub const INDEX_ACTIVE: &str = "active";

/// An index the ledger lists requests from: its name and the attributes of
/// its cursor (table key, then index key).
struct IndexQuery {
    name: &'static str,
    keys: [&'static str; 4],
    newest_first: bool,
}
pub const REQUEST_SK: &str = "REQ";

type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn request_pk(id: &RequestId) -> String {
    format!("REQ#{id}")
}

fn lock_pk(scope: &Scope) -> String {
    format!("LOCK#{}", scope.lock_key())
}

fn idem_pk(key: &IdempotencyKey) -> String {
    format!("IDEM#{}", key.as_str())
}

fn unavailable<E: std::error::Error>(e: &E) -> LedgerError {
    LedgerError::Unavailable(describe(e))
}

/// What a cancelled transaction means, by its items' reasons: a failed
/// condition is a `Conflict` (also when the server names no reason);
/// contention and throttling are worth a retry (`Unavailable`); anything
/// else (a validation error, an item collection over its size limit) is
/// `Refused`: no retry will make it pass.
pub fn cancelled(e: &TransactionCanceledException) -> LedgerError {
    let codes: Vec<&str> = e
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .filter(|c| *c != "None")
        .collect();
    let message = e.message().unwrap_or_default();
    if codes.is_empty() || codes.contains(&"ConditionalCheckFailed") {
        LedgerError::Conflict
    } else if codes.iter().all(|c| {
        matches!(
            *c,
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded"
        )
    }) {
        LedgerError::Unavailable(format!("transaction cancelled ({}): {message}", codes.join(", ")))
    } else {
        LedgerError::Refused(format!("transaction cancelled ({}): {message}", codes.join(", ")))
    }
}

/// DynamoDB's limit on one item (names and values).
pub const ITEM_LIMIT: usize = 400 * 1024;
/// Receipt prefixes up to this many bytes stay in the request item.
const INLINE_RECEIPT_BYTES: usize = 32 * 1024;

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
fn checked(item: Item) -> Result<Item, LedgerError> {
    let size = item_size(&item);
    if size <= ITEM_LIMIT {
        return Ok(item);
    }
    let key = [string_attr(&item, "pk"), string_attr(&item, "sk")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("/");
    Err(LedgerError::Refused(format!(
        "item {key} would be {size} bytes, over DynamoDB's {ITEM_LIMIT}-byte item limit; not written"
    )))
}

/// A request as stored: its item, and the chunk items of a receipt too
/// large to keep in it (written first, under a key of this write's own).
pub fn request_items(r: &DeletionRequest) -> Result<(Item, Vec<Item>), LedgerError> {
    let entry_size = |p: &PrefixReceipt| serde_json::to_string(p).map_or(0, |s| s.len() + 1);
    let receipt_bytes: usize = r
        .receipt
        .as_ref()
        .map_or(0, |rc| rc.prefixes.iter().map(entry_size).sum());
    if receipt_bytes <= INLINE_RECEIPT_BYTES {
        return Ok((checked(request_item(r)?)?, Vec::new()));
    }
    let mut stored = r.clone();
    let prefixes = stored.receipt.as_mut().map(|rc| std::mem::take(&mut rc.prefixes));
    let parts = chunks(&prefixes.unwrap_or_default(), entry_size);
    let write = format!("{:012}.{}", r.version, RequestId::new());
    let mut chunk_items = Vec::with_capacity(parts.len());
    for (n, part) in parts.iter().enumerate() {
        let sk = format!("RECEIPT#{write}#{n:04}");
        let doc = serde_json::to_string(part).map_err(|e| LedgerError::Corrupt {
            key: format!("{}/{sk}", request_pk(&r.id)),
            reason: e.to_string(),
        })?;
        chunk_items.push(checked(HashMap::from([
            ("pk".into(), s(request_pk(&r.id))),
            ("sk".into(), s(sk)),
            ("doc".into(), s(doc)),
        ]))?);
    }
    let mut item = request_item(&stored)?;
    item.insert("receipt_parts".into(), s(write));
    item.insert("receipt_chunks".into(), n(chunk_items.len() as u64));
    Ok((checked(item)?, chunk_items))
}

fn request_item(r: &DeletionRequest) -> Result<Item, LedgerError> {
    let doc = serde_json::to_string(r).map_err(|e| LedgerError::Corrupt {
        key: request_pk(&r.id),
        reason: e.to_string(),
    })?;
    let mut item = HashMap::from([
        ("pk".into(), s(request_pk(&r.id))),
        ("sk".into(), s(REQUEST_SK)),
        ("id".into(), s(r.id.as_str())),
        ("kind".into(), s(r.scope.kind())),
        ("status".into(), s(r.status.as_str())),
        ("version".into(), n(r.version)),
        (
            "grace_ends_at".into(),
            s(r.grace_ends_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        ),
        ("gsi1pk".into(), s(r.scope.listing_key())),
        (
            "gsi1sk".into(),
            s(format!(
                "{}#{}",
                r.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                r.id
            )),
        ),
        ("doc".into(), s(doc)),
    ]);
    if !r.status.is_terminal() {
        item.insert("gsi2pk".into(), s("ACTIVE"));
        item.insert(
            "gsi2sk".into(),
            s(format!(
                "{}#{}",
                r.grace_ends_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                r.id
            )),
        );
    }
    Ok(item)
}

/// The most bytes of entries (or ids) one item holds: DynamoDB's item
/// limit is 400 KB.
const CHUNK_BYTES: usize = 300 * 1024;

/// Splits `items` into runs of at most `CHUNK_BYTES` by `size` (an item
/// larger than that gets a run of its own); always at least one run.
fn chunks<T: Clone>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
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

/// A time attribute written as RFC 3339.
fn time_attr(item: &Item, name: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    string_attr(item, name)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn page_sk(shard: u32, seq: u64, chunk: usize) -> String {
    format!("PAGE#{shard:06}#{seq:012}#{chunk:04}")
}

fn shard_sk(index: u32) -> String {
    format!("SHARD#{index:06}")
}

fn shard_item(sh: &Shard) -> Result<Item, LedgerError> {
    let doc = serde_json::to_string(sh).map_err(|e| LedgerError::Corrupt {
        key: shard_sk(sh.index),
        reason: e.to_string(),
    })?;
    Ok(HashMap::from([
        ("pk".into(), s(request_pk(&sh.request_id))),
        ("sk".into(), s(shard_sk(sh.index))),
        ("version".into(), n(sh.version)),
        ("done".into(), AttributeValue::Bool(sh.done)),
        ("doc".into(), s(doc)),
    ]))
}

fn decode<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T, LedgerError> {
    let key = item.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
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

fn string_attr(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// A check, inside a transaction, that the parent request exists and is not
/// final: no child is written under an account request once it is revoked.
fn parent_open(table: &str, parent: &RequestId) -> Result<TransactWriteItem, LedgerError> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .key("pk", s(request_pk(parent)))
        .key("sk", s(REQUEST_SK))
        .condition_expression("attribute_exists(pk) AND NOT (#status IN (:completed, :revoked))")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":completed", s(Status::Completed.as_str()))
        .expression_attribute_values(":revoked", s(Status::Revoked.as_str()))
        .build()
        .map_err(|e| unavailable(&e))?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

fn put(table: &str, item: Item, condition: &str, values: Option<Item>) -> Result<TransactWriteItem, LedgerError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .set_expression_attribute_values(values)
        .build()
        .map_err(|e| unavailable(&e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoLedger {
            client,
            table: table.into(),
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
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(out.item)
    }

    /// Writes one item holding `doc` (JSON) under `pk`/`sk`.
    async fn put_doc(&self, pk: String, sk: String, doc: &impl serde::Serialize) -> Result<(), LedgerError> {
        let doc = serde_json::to_string(doc).map_err(|e| LedgerError::Corrupt {
            key: format!("{pk}/{sk}"),
            reason: e.to_string(),
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("doc", s(doc))
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

    /// A request from its item, its receipt's chunks read back in.
    async fn decode_request(&self, item: &Item) -> Result<DeletionRequest, LedgerError> {
        let mut r: DeletionRequest = decode(item)?;
        let Some(write) = string_attr(item, "receipt_parts") else {
            return Ok(r);
        };
        let corrupt = |reason: String| LedgerError::Corrupt {
            key: request_pk(&r.id),
            reason,
        };
        let count = item
            .get("receipt_chunks")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| corrupt("bad receipt_chunks".into()))?;
        // By key (GetItem, which every function may do), not a Query.
        let mut prefixes = Vec::new();
        for i in 0..count {
            let sk = format!("RECEIPT#{write}#{i:04}");
            let part = self
                .get_item(request_pk(&r.id), &sk)
                .await?
                .ok_or_else(|| corrupt(format!("receipt chunk {sk} missing")))?;
            prefixes.extend(decode::<Vec<PrefixReceipt>>(&part)?);
        }
        let receipt = r
            .receipt
            .as_mut()
            .ok_or_else(|| corrupt("receipt chunks without a receipt".into()))?;
        receipt.prefixes = prefixes;
        Ok(r)
    }

    /// Writes a receipt's chunk items (before the request naming them).
    async fn put_chunks(&self, chunk_items: Vec<Item>) -> Result<(), LedgerError> {
        for item in chunk_items {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                    return Err(LedgerError::Conflict)
                }
                Err(e) => return Err(unavailable(&e)),
            }
        }
        Ok(())
    }

    async fn holder(&self, pk: String, sk: &str) -> Result<Option<String>, LedgerError> {
        Ok(self
            .get_item(pk, sk)
            .await?
            .and_then(|item| string_attr(&item, "request_id")))
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
                Err(LedgerError::Corrupt { key, reason }) => {
                    let request_id = key.strip_prefix("REQ#").and_then(|id| RequestId::parse(id).ok());
                    page.undecodable.push(Undecodable {
                        key,
                        request_id,
                        reason,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        page.next = out
            .last_evaluated_key()
            .map(|k| encode_cursor(k, &index.keys))
            .transpose()?;
        Ok(page)
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
        let result = put.send().await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Err(LedgerError::Conflict)
            }
            Err(e) => Err(unavailable(&e)),
        }
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn insert(&self, request: &DeletionRequest, key: Option<&IdempotencyKey>) -> Result<(), LedgerError> {
        let now = request.created_at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let absent = "attribute_not_exists(pk)";
        let (item, chunk_items) = request_items(request)?;
        self.put_chunks(chunk_items).await?;
        let mut items = vec![
            put(&self.table, item, absent, None)?,
            put(
                &self.table,
                HashMap::from([
                    ("pk".into(), s(lock_pk(&request.scope))),
                    ("sk".into(), s("LOCK")),
                    ("request_id".into(), s(request.id.as_str())),
                    ("since".into(), s(now.clone())),
                ]),
                absent,
                None,
            )?,
        ];
        if let Some(key) = key {
            items.push(put(
                &self.table,
                HashMap::from([
                    ("pk".into(), s(idem_pk(key))),
                    ("sk".into(), s("IDEM")),
                    ("request_id".into(), s(request.id.as_str())),
                    ("created_at".into(), s(now)),
                ]),
                absent,
                None,
            )?);
        }
        if let Some(parent) = &request.parent {
            items.push(parent_open(&self.table, parent)?);
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                // Which condition failed: read the holders rather than trust
                // that every server reports cancellation reasons.
                if let Some(key) = key {
                    if let Some(holder) = self.holder(idem_pk(key), "IDEM").await? {
                        if holder != request.id.as_str() {
                            return Err(LedgerError::IdempotencyKeyUsed { holder });
                        }
                    }
                }
                match self.holder(lock_pk(&request.scope), "LOCK").await? {
                    Some(holder) => Err(LedgerError::ScopeBusy {
                        scope: request.scope.lock_key(),
                        holder,
                    }),
                    // Released in between: the caller tries again.
                    None => Err(LedgerError::Conflict),
                }
            }
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn get(&self, id: &RequestId) -> Result<Option<DeletionRequest>, LedgerError> {
        match self.get_item(request_pk(id), REQUEST_SK).await? {
            Some(item) => self.decode_request(&item).await.map(Some),
            None => Ok(None),
        }
    }

    async fn update(&self, next: &DeletionRequest) -> Result<(), LedgerError> {
        let prev = next.version.checked_sub(1).ok_or(LedgerError::Conflict)?;
        let (item, chunk_items) = request_items(next)?;
        self.put_chunks(chunk_items).await?;
        if !next.releases_scope() {
            return self.put_versioned(item, prev).await;
        }
        // A final state (or a failed request given up) releases the scope
        // in the same transaction.
        let release = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(lock_pk(&next.scope)))
            .key("sk", s("LOCK"))
            .condition_expression("attribute_not_exists(pk) OR request_id = :id")
            .expression_attribute_values(":id", s(next.id.as_str()))
            .build()
            .map_err(|e| unavailable(&e))?;
        let items = vec![
            put(
                &self.table,
                item,
                "version = :prev",
                Some(HashMap::from([(":prev".into(), n(prev))])),
            )?,
            TransactWriteItem::builder().delete(release).build(),
        ];
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(c) => Err(cancelled(c)),
                _ => Err(unavailable(&SdkError::ServiceError(e))),
            },
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn active_for(&self, scope: &Scope) -> Result<Option<RequestId>, LedgerError> {
        match self.holder(lock_pk(scope), "LOCK").await? {
            Some(id) => RequestId::parse(&id).map(Some).map_err(|e| LedgerError::Corrupt {
                key: lock_pk(scope),
                reason: e.to_string(),
            }),
            None => Ok(None),
        }
    }

    async fn by_idempotency_key(&self, key: &IdempotencyKey) -> Result<Option<RequestId>, LedgerError> {
        match self.holder(idem_pk(key), "IDEM").await? {
            Some(id) => RequestId::parse(&id).map(Some).map_err(|e| LedgerError::Corrupt {
                key: idem_pk(key),
                reason: e.to_string(),
            }),
            None => Ok(None),
        }
    }

    async fn list(&self, listing_key: &str, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        let index = IndexQuery {
            name: INDEX_BY_WORKSPACE,
            keys: ["pk", "sk", "gsi1pk", "gsi1sk"],
            newest_first: true,
        };
        let page = self
            .query_index(&index, listing_key, limit.clamp(1, 100), cursor)
            .await?;
        // A listing shows every request or fails: it skips none.
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

    async fn active(&self, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        let index = IndexQuery {
            name: INDEX_ACTIVE,
            keys: ["pk", "sk", "gsi2pk", "gsi2sk"],
            newest_first: false,
        };
        self.query_index(&index, "ACTIVE", limit.clamp(1, 1000), cursor).await
    }

    async fn insert_shards(&self, shards: &[Shard]) -> Result<(), LedgerError> {
        for shard in shards {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(shard_item(shard)?))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match result {
                Ok(_) => {}
                // Planned already (by an earlier attempt): keep its checkpoint.
                Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {}
                Err(e) => return Err(unavailable(&e)),
            }
        }
        Ok(())
    }

    async fn shards(&self, id: &RequestId) -> Result<Vec<Shard>, LedgerError> {
        self.query_prefix(request_pk(id), "SHARD#")
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    async fn update_shard(&self, next: &Shard) -> Result<(), LedgerError> {
        let prev = next.version.checked_sub(1).ok_or(LedgerError::Conflict)?;
        self.put_versioned(shard_item(next)?, prev).await
    }

    async fn put_page(&self, page: &PendingPage) -> Result<(), LedgerError> {
        // One item per chunk, each well under DynamoDB's item limit.
        let size = |e: &Entry| e.key.len() + e.version_id.as_ref().map_or(0, String::len) + 64;
        for (n, entries) in chunks(&page.entries, size).into_iter().enumerate() {
            let part = PendingPage {
                entries,
                ..page.clone()
            };
            self.put_doc(request_pk(&page.request_id), page_sk(page.shard, page.seq, n), &part)
                .await?;
        }
        Ok(())
    }

    async fn pages(&self, id: &RequestId, shard: u32) -> Result<Vec<PendingPage>, LedgerError> {
        let mut pages: Vec<PendingPage> = Vec::new();
        for item in self.query_prefix(request_pk(id), &format!("PAGE#{shard:06}#")).await? {
            let part: PendingPage = decode(&item)?;
            match pages.last_mut() {
                Some(last) if last.seq == part.seq => last.entries.extend(part.entries),
                _ => pages.push(part),
            }
        }
        Ok(pages)
    }

    async fn drop_page(&self, id: &RequestId, shard: u32, seq: u64) -> Result<(), LedgerError> {
        // The chunks of the page: query their keys, delete each.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", s(request_pk(id)))
            .expression_attribute_values(":s", s(format!("PAGE#{shard:06}#{seq:012}#")))
            .projection_expression("pk, sk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        for item in out.items() {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", item.get("pk").cloned().unwrap_or_else(|| s("")))
                .key("sk", item.get("sk").cloned().unwrap_or_else(|| s("")))
                .send()
                .await
                .map_err(|e| unavailable(&e))?;
        }
        Ok(())
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

fn role_of(item: &Item, account: &AccountId) -> Result<Role, LedgerError> {
    match string_attr(item, "role").as_deref() {
        Some("admin") => Ok(Role::Admin),
        Some("member") => Ok(Role::Member),
        _ => Err(LedgerError::Corrupt {
            key: format!("ACCOUNT#{account}"),
            reason: "bad role".into(),
        }),
    }
}

fn member_key(account: &AccountId, workspace: &WorkspaceId) -> (String, String) {
    (format!("ACCOUNT#{account}"), format!("MEMBER#{workspace}"))
}

#[async_trait]
impl Directory for DynamoLedger {
    async fn put_member(&self, workspace: &WorkspaceId, account: &AccountId, role: Role) -> Result<(), LedgerError> {
        let (pk, sk) = member_key(account, workspace);
        let role = match role {
            Role::Admin => "admin",
            Role::Member => "member",
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("workspace", s(workspace.as_str()))
            .item("role", s(role))
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }

    async fn remove_member(&self, workspace: &WorkspaceId, account: &AccountId) -> Result<bool, LedgerError> {
        let (pk, sk) = member_key(account, workspace);
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        // Some servers answer an empty map for an item that was not there.
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// One read of the membership item.
    async fn role(&self, workspace: &WorkspaceId, account: &AccountId) -> Result<Option<Role>, LedgerError> {
        let (pk, sk) = member_key(account, workspace);
        self.get_item(pk, &sk)
            .await?
            .map(|item| role_of(&item, account))
            .transpose()
    }

    async fn memberships(&self, account: &AccountId) -> Result<Vec<Membership>, LedgerError> {
        let pk = format!("ACCOUNT#{account}");
        let mut members = Vec::new();
        for item in self.query_prefix(pk.clone(), "MEMBER#").await? {
            let workspace = string_attr(&item, "workspace")
                .and_then(|w| WorkspaceId::parse(&w).ok())
                .ok_or_else(|| LedgerError::Corrupt {
                    key: pk.clone(),
                    reason: "bad workspace".into(),
                })?;
            members.push(Membership {
                workspace,
                role: role_of(&item, account)?,
            });
        }
        Ok(members)
    }
}

/// Suppression writes in flight at once.
const SUPPRESSION_WRITES: usize = 16;
/// Keys per BatchGetItem call (DynamoDB's limit).
const BATCH_GET: usize = 100;

fn suppression_key(workspace: &WorkspaceId, id: &UserId) -> (String, String) {
    (format!("SUPP#{workspace}"), format!("U#{}", id.as_str()))
}

fn stamp(regulation: &RequestId, since: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}#{regulation}", since.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn decode_suppression(workspace: &WorkspaceId, item: &Item) -> Result<Suppression, LedgerError> {
    let corrupt = |reason: &str| LedgerError::Corrupt {
        key: format!("SUPP#{workspace}"),
        reason: reason.to_owned(),
    };
    let user_id = string_attr(item, "user_id")
        .and_then(|u| UserId::parse(&u).ok())
        .ok_or_else(|| corrupt("bad user_id"))?;
    let suppressed = item
        .get("suppressed")
        .and_then(|v| v.as_bool().ok())
        .copied()
        .ok_or_else(|| corrupt("bad suppressed"))?;
    let since = time_attr(item, "since").ok_or_else(|| corrupt("bad since"))?;
    let regulation = string_attr(item, "regulation")
        .and_then(|r| RequestId::parse(&r).ok())
        .ok_or_else(|| corrupt("bad regulation"))?;
    Ok(Suppression {
        user_id,
        suppressed,
        since,
        regulation,
    })
}

#[async_trait]
impl Regulations for DynamoLedger {
    async fn put_subjects(&self, id: &RequestId, subjects: &Subjects) -> Result<(), LedgerError> {
        for (n, chunk) in chunks(subjects.ids(), |u| u.as_str().len() + 8).iter().enumerate() {
            self.put_doc(request_pk(id), format!("SUBJECTS#{n:04}"), chunk).await?;
        }
        Ok(())
    }

    async fn subjects(&self, id: &RequestId) -> Result<Subjects, LedgerError> {
        let mut ids = Vec::new();
        for item in self.query_prefix(request_pk(id), "SUBJECTS#").await? {
            let chunk: Vec<UserId> = decode(&item)?;
            ids.extend(chunk);
        }
        Ok(Subjects::from_ids(ids))
    }

    async fn set_suppressed(
        &self,
        workspace: &WorkspaceId,
        ids: &[UserId],
        suppressed: bool,
        regulation: &RequestId,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), LedgerError> {
        let stamp = stamp(regulation, since);
        let since = since.to_rfc3339_opts(SecondsFormat::Millis, true);
        let writes: Vec<_> = ids
            .iter()
            .map(|id| {
                let (pk, sk) = suppression_key(workspace, id);
                let request = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", s(pk))
                    .item("sk", s(sk))
                    .item("user_id", s(id.as_str()))
                    .item("suppressed", AttributeValue::Bool(suppressed))
                    .item("since", s(since.clone()))
                    .item("regulation", s(regulation.as_str()))
                    .item("stamp", s(stamp.clone()))
                    // A later regulation's state stands.
                    .condition_expression("attribute_not_exists(pk) OR stamp <= :stamp")
                    .expression_attribute_values(":stamp", s(stamp.clone()));
                async move {
                    match request.send().await {
                        Ok(_) => Ok(()),
                        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
                        Err(e) => Err(unavailable(&e)),
                    }
                }
            })
            .collect();
        stream::iter(writes)
            .buffer_unordered(SUPPRESSION_WRITES)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn suppression(&self, workspace: &WorkspaceId, id: &UserId) -> Result<Option<Suppression>, LedgerError> {
        let (pk, sk) = suppression_key(workspace, id);
        match self.get_item(pk, &sk).await? {
            Some(item) => decode_suppression(workspace, &item).map(Some),
            None => Ok(None),
        }
    }

    async fn suppressions(&self, workspace: &WorkspaceId, ids: &[UserId]) -> Result<Vec<Suppression>, LedgerError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = Vec::new();
        for chunk in ids.chunks(BATCH_GET) {
            let mut keys: Vec<Item> = chunk
                .iter()
                .map(|id| {
                    let (pk, sk) = suppression_key(workspace, id);
                    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
                })
                .collect();
            let mut backoff = std::time::Duration::from_millis(25);
            for attempt in 0.. {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| unavailable(&e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| unavailable(&e))?;
                for item in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    found.push(decode_suppression(workspace, item)?);
                }
                // Keys the table did not get to (throttling): ask again.
                keys = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if keys.is_empty() {
                    break;
                }
                if attempt >= 8 {
                    return Err(LedgerError::Unavailable(format!(
                        "{} suppression keys stayed unprocessed after {attempt} attempts",
                        keys.len()
                    )));
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Ok(found)
    }
}

fn hold_pk(workspace: &WorkspaceId) -> String {
    format!("HOLD#{workspace}")
}

fn decode_hold(workspace: &WorkspaceId, item: &Item) -> Result<Hold, LedgerError> {
    let corrupt = |reason: &str| LedgerError::Corrupt {
        key: hold_pk(workspace),
        reason: reason.to_owned(),
    };
    Ok(Hold {
        workspace: workspace.clone(),
        reason: string_attr(item, "reason").ok_or_else(|| corrupt("no reason"))?,
        placed_by: string_attr(item, "placed_by").ok_or_else(|| corrupt("no placed_by"))?,
        since: time_attr(item, "since").ok_or_else(|| corrupt("bad since"))?,
    })
}

#[async_trait]
impl Holds for DynamoLedger {
    async fn place_hold(&self, hold: &Hold) -> Result<Hold, LedgerError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(hold_pk(&hold.workspace)))
            .item("sk", s("HOLD"))
            .item("reason", s(hold.reason.clone()))
            .item("placed_by", s(hold.placed_by.clone()))
            .item("since", s(hold.since.to_rfc3339_opts(SecondsFormat::Millis, true)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(hold.clone()),
            // One stands already: it is the one in force.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                self.hold(&hold.workspace).await?.ok_or(LedgerError::Conflict)
            }
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
        match self.get_item(hold_pk(workspace), "HOLD").await? {
            Some(item) => decode_hold(workspace, &item).map(Some),
            None => Ok(None),
        }
    }

    async fn release_hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(hold_pk(workspace)))
            .key("sk", s("HOLD"))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        match out.attributes {
            Some(item) if !item.is_empty() => decode_hold(workspace, &item).map(Some),
            _ => Ok(None),
        }
    }
}

const SWEEP_PK: &str = "SWEEP";
const SWEEP_SK: &str = "MARK";

#[async_trait]
impl SweepMarks for DynamoLedger {
    async fn sweep_mark(&self) -> Result<SweepMark, LedgerError> {
        let Some(item) = self.get_item(SWEEP_PK.into(), SWEEP_SK).await? else {
            return Ok(SweepMark::default());
        };
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| LedgerError::Corrupt {
                key: format!("{SWEEP_PK}/{SWEEP_SK}"),
                reason: "bad version".into(),
            })?;
        Ok(SweepMark {
            cursor: string_attr(&item, "cursor"),
            version,
        })
    }

    async fn put_sweep_mark(&self, next: &SweepMark) -> Result<(), LedgerError> {
        let mut item = HashMap::from([
            ("pk".into(), s(SWEEP_PK)),
            ("sk".into(), s(SWEEP_SK)),
            ("version".into(), n(next.version)),
        ]);
        if let Some(cursor) = &next.cursor {
            item.insert("cursor".into(), s(cursor.clone()));
        }
        let prev = next.version.checked_sub(1).filter(|v| *v > 0);
        self.put_if(item, prev).await
    }
}

/// The sort key of a request's callback state (beside the request).
const CALLBACK_SK: &str = "CALLBACK";
/// The `active` index partition of callback states waiting for a retry,
/// sorted by when it is due.
const CALLBACK_DUE: &str = "CALLBACK_DUE";

#[async_trait]
impl CallbackLedger for DynamoLedger {
    async fn callback_state(&self, id: &RequestId) -> Result<Option<CallbackState>, LedgerError> {
        let Some(item) = self.get_item(request_pk(id), CALLBACK_SK).await? else {
            return Ok(None);
        };
        let doc = string_attr(&item, "doc").unwrap_or_default();
        serde_json::from_str(&doc).map(Some).map_err(|e| LedgerError::Corrupt {
            key: format!("{}/{CALLBACK_SK}", request_pk(id)),
            reason: e.to_string(),
        })
    }

    async fn put_callback_state(&self, next: &CallbackState) -> Result<(), LedgerError> {
        let pk = request_pk(&next.request_id);
        let doc = serde_json::to_string(next).map_err(|e| LedgerError::Corrupt {
            key: format!("{pk}/{CALLBACK_SK}"),
            reason: e.to_string(),
        })?;
        let mut item = HashMap::from([
            ("pk".into(), s(pk)),
            ("sk".into(), s(CALLBACK_SK)),
            ("version".into(), n(next.version)),
            ("doc".into(), s(doc)),
        ]);
        if let Some(at) = next.next_attempt_at {
            item.insert("gsi2pk".into(), s(CALLBACK_DUE));
            item.insert(
                "gsi2sk".into(),
                s(format!(
                    "{}#{}",
                    at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    next.request_id
                )),
            );
        }
        let prev = next.version.checked_sub(1).filter(|v| *v > 0);
        self.put_if(item, prev).await
    }

    async fn due_callbacks(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RequestId>, LedgerError> {
        // Everything sorting before the first id at `now` is due by then.
        let until = format!("{}$", now.to_rfc3339_opts(SecondsFormat::Millis, true));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(INDEX_ACTIVE)
            .key_condition_expression("gsi2pk = :p AND gsi2sk < :until")
            .expression_attribute_values(":p", s(CALLBACK_DUE))
            .expression_attribute_values(":until", s(until))
            .limit(limit as i32)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(out
            .items()
            .iter()
            .filter_map(|item| string_attr(item, "pk"))
            .filter_map(|pk| pk.strip_prefix("REQ#").and_then(|id| RequestId::parse(id).ok()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, NaiveDate};
    use deletion_core::ids::{SourceId, WorkspaceId};
    use deletion_core::lifecycle::{Periods, MAX_HISTORY, MAX_NOTE_BYTES};
    use deletion_core::model::{Counts, Receipt, Status, Transition};

    use super::*;

    /// A completed request of `days` days of a source, with its receipt
    /// (one entry per day) and a history as long and wordy as it gets.
    fn completed(days: u64) -> DeletionRequest {
        let from = NaiveDate::from_ymd_opt(2016, 1, 1).unwrap();
        let scope = Scope::SourceDays {
            workspace: WorkspaceId::parse("acme-corporation-production").unwrap(),
            source: SourceId::parse("web-frontend-tracking").unwrap(),
            from,
            to: from + chrono::Days::new(days - 1),
        };
        let now = Utc::now();
        let mut r = DeletionRequest::new(scope.clone(), "alice", None, now, Periods::default());
        let prefixes: Vec<PrefixReceipt> = (0..days)
            .map(|d| PrefixReceipt {
                store: "archive".into(),
                bucket: "acme-archive-bucket-us-east-1-production".into(),
                prefix: format!(
                    "acme-corporation-production/web-frontend-tracking/{}/",
                    from + chrono::Days::new(d)
                ),
                deleted: Counts {
                    objects: u64::MAX,
                    versions: u64::MAX,
                    delete_markers: u64::MAX,
                    uploads_aborted: u64::MAX,
                    bytes: u64::MAX,
                },
                rewritten: None,
            })
            .collect();
        r.history = vec![
            Transition {
                status: Status::Purging,
                at: now,
                by: "w".repeat(64),
                note: Some("n".repeat(MAX_NOTE_BYTES)),
            };
            MAX_HISTORY
        ];
        r.failure = Some("f".repeat(MAX_NOTE_BYTES));
        r.status = Status::Completed;
        r.receipt = Some(Receipt {
            request_id: r.id.clone(),
            scope,
            prefixes,
            totals: Counts::default(),
            purge_started_at: now,
            purge_finished_at: now + Duration::hours(1),
            verified_at: now + Duration::hours(1),
            verification: "nothing left".into(),
            signature: None,
        });
        r
    }

    #[test]
    fn a_completed_request_with_a_3660_day_receipt_is_stored_in_items_under_the_limit() {
        let r = completed(3660);
        let (item, chunk_items) = request_items(&r).unwrap();
        assert!(
            item_size(&item) < ITEM_LIMIT,
            "request item: {} bytes",
            item_size(&item)
        );
        assert!(chunk_items.len() >= 2, "the receipt moved out: {}", chunk_items.len());
        let mut prefixes = Vec::new();
        for chunk in &chunk_items {
            assert!(item_size(chunk) < ITEM_LIMIT, "chunk: {} bytes", item_size(chunk));
            prefixes.extend(decode::<Vec<PrefixReceipt>>(chunk).unwrap());
        }
        assert_eq!(
            &prefixes,
            &r.receipt.as_ref().unwrap().prefixes,
            "every prefix, in order"
        );
        assert_eq!(item.get("receipt_chunks"), Some(&n(chunk_items.len() as u64)));
        // A small receipt stays in the request item.
        let (_, none) = request_items(&completed(30)).unwrap();
        assert!(none.is_empty());
    }

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
    fn a_cancelled_transaction_is_a_conflict_only_when_a_condition_failed() {
        use aws_sdk_dynamodb::types::CancellationReason;
        let cancel = |codes: &[&str]| {
            let mut e = TransactionCanceledException::builder().message("cancelled");
            for c in codes {
                e = e.cancellation_reasons(CancellationReason::builder().code(*c).build());
            }
            cancelled(&e.build())
        };
        assert!(matches!(
            cancel(&["ConditionalCheckFailed", "None"]),
            LedgerError::Conflict
        ));
        assert!(matches!(cancel(&[]), LedgerError::Conflict), "no reasons named");
        assert!(matches!(
            cancel(&["None", "TransactionConflict"]),
            LedgerError::Unavailable(_)
        ));
        assert!(matches!(
            cancel(&["ThrottlingError", "None"]),
            LedgerError::Unavailable(_)
        ));
        match cancel(&["ValidationError", "None"]) {
            LedgerError::Refused(m) => assert!(m.contains("ValidationError"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cancel(&["ItemCollectionSizeLimitExceeded"]),
            LedgerError::Refused(_)
        ));
    }
}
