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
//! same transaction).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use deletion_core::callbacks::CallbackState;
use deletion_core::ids::{AccountId, IdempotencyKey, RequestId, WorkspaceId};
use deletion_core::model::{DeletionRequest, Scope, Shard, Status};
use deletion_core::ports::{
    CallbackLedger, Directory, Entry, Hold, Holds, Ledger, Membership, PendingPage, Regulations, RequestPage, Role,
    Suppression,
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
        let items = out.items().iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let next = out
            .last_evaluated_key()
            .map(|k| encode_cursor(k, &index.keys))
            .transpose()?;
        Ok(RequestPage { items, next })
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
        let mut items = vec![
            put(&self.table, request_item(request)?, absent, None)?,
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
            Some(item) => decode(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn update(&self, next: &DeletionRequest) -> Result<(), LedgerError> {
        let prev = next.version.checked_sub(1).ok_or(LedgerError::Conflict)?;
        if !next.status.is_terminal() {
            return self.put_versioned(request_item(next)?, prev).await;
        }
        // A final state releases the scope in the same transaction.
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
                request_item(next)?,
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
            Err(SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => Err(LedgerError::Conflict),
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
        self.query_index(&index, listing_key, limit.clamp(1, 100), cursor).await
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
