//! Requests: the request item, its scope lock and idempotency key (written
//! in one transaction), the chunks of a large receipt, and the `Ledger`
//! port (its shards and pages are in `shards`, its listings in `listing`).
//!
//! A receipt too large to keep in the request item (over 32 KB of
//! prefixes) moves to `RECEIPT#<write>#<nnnn>` chunk items written
//! *before* the conditional write of the request that names them
//! (`receipt_parts`, `receipt_chunks`); they are read back into the
//! receipt, so the signed receipt is whole. A chunk set no request names
//! (a lost race) is inert.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, Put, TransactWriteItem};
use chrono::{DateTime, SecondsFormat, Utc};
use deletion_core::ids::{IdempotencyKey, RequestId};
use deletion_core::model::ledger::IDEMPOTENCY_KEY_LIFETIME;
use deletion_core::model::{DeletionRequest, Listing, PrefixReceipt, Scope, Shard, Status};
use deletion_core::ports::{Ledger, OpenShard, PendingPage, RequestPage};
use deletion_core::LedgerError;
use serde::Serialize;

use super::errors::{conflict_unless_written, transaction, unavailable};
use super::items::{checked, chunks, decode, doc, millis, n, n_i64, s, string_attr, to_item, Item, EXPIRES_AT};
use super::keys::{self, request_pk, REQUEST_SK};
use super::DynamoLedger;

/// Receipt prefixes up to this many bytes stay in the request item.
const INLINE_RECEIPT_BYTES: usize = 32 * 1024;

/// A request item: the attributes conditions, filters and indexes read,
/// and the whole request as JSON in `doc`.
#[derive(Serialize)]
struct RequestItem<'a> {
    pk: String,
    sk: &'static str,
    id: &'a str,
    kind: &'static str,
    status: &'static str,
    version: u64,
    #[serde(with = "millis")]
    grace_ends_at: DateTime<Utc>,
    gsi1pk: String,
    gsi1sk: String,
    doc: String,
    /// Only while not final: the sweep's sparse index.
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
}

/// Who holds a scope's lock or an idempotency key.
#[derive(Serialize)]
struct HolderItem<'a> {
    pk: String,
    sk: &'static str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    /// An idempotency key's end, in epoch seconds: the table's TTL
    /// attribute (DynamoDB deletes the item some time after it).
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

fn request_item(r: &DeletionRequest) -> Result<Item, LedgerError> {
    let pk = || request_pk(&r.id);
    let active = !r.status.is_terminal();
    to_item(
        &RequestItem {
            pk: pk(),
            sk: REQUEST_SK,
            id: r.id.as_str(),
            kind: r.scope.kind(),
            status: r.status.as_str(),
            version: r.version,
            grace_ends_at: r.grace_ends_at,
            gsi1pk: keys::listing_pk(&r.scope.listing()),
            gsi1sk: keys::listing_sk(r.created_at, &r.id),
            doc: doc(r, pk)?,
            gsi2pk: active.then_some(keys::ACTIVE_PARTITION),
            gsi2sk: active.then(|| keys::active_sk(r.grace_ends_at, &r.id)),
        },
        pk,
    )
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
    for (i, part) in parts.iter().enumerate() {
        let sk = keys::receipt_sk(&write, i);
        let part = doc(part, || format!("{}/{sk}", request_pk(&r.id)))?;
        let mut item = super::items::key(request_pk(&r.id), sk);
        item.insert("doc".into(), s(part));
        chunk_items.push(checked(item)?);
    }
    let mut item = request_item(&stored)?;
    item.insert("receipt_parts".into(), s(write));
    item.insert("receipt_chunks".into(), n(chunk_items.len() as u64));
    Ok((checked(item)?, chunk_items))
}

/// A check, inside a transaction, that the parent request exists and is not
/// final: no child is written under an account request once it is revoked.
fn parent_open(table: &str, parent: &RequestId) -> Result<TransactWriteItem, LedgerError> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(super::items::key(request_pk(parent), REQUEST_SK)))
        .condition_expression("attribute_exists(pk) AND NOT (#status IN (:completed, :revoked))")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":completed", s(Status::Completed.as_str()))
        .expression_attribute_values(":revoked", s(Status::Revoked.as_str()))
        .build()
        .map_err(|e| unavailable(&e))?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// A put of a new item (none under its key yet), inside a transaction.
/// A holder's request id, read from the item at `pk`.
fn parse_holder(pk: String, holder: Option<String>) -> Result<Option<RequestId>, LedgerError> {
    holder
        .map(|id| {
            RequestId::parse(&id).map_err(|e| LedgerError::Corrupt {
                key: pk,
                reason: e.to_string(),
            })
        })
        .transpose()
}

fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, LedgerError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(pk)")
        .build()
        .map_err(|e| unavailable(&e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoLedger {
    /// A request from its item, its receipt's chunks read back in.
    pub(super) async fn decode_request(&self, item: &Item) -> Result<DeletionRequest, LedgerError> {
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
            let sk = keys::receipt_sk(&write, i);
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
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)");
            conflict_unless_written(put.send().await)?;
        }
        Ok(())
    }

    /// The transaction that inserts a request: the request, its scope
    /// lock, its idempotency key, and a check of its parent.
    fn insert_items(
        &self,
        request: &DeletionRequest,
        item: Item,
        key: Option<&IdempotencyKey>,
    ) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let now = request.created_at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let lock = HolderItem {
            pk: keys::lock_pk(&request.scope),
            sk: keys::LOCK_SK,
            request_id: request.id.as_str(),
            since: Some(now.clone()),
            created_at: None,
            expires_at: None,
        };
        let mut items = vec![
            put_new(&self.table, item)?,
            put_new(&self.table, to_item(&lock, || lock.pk.clone())?)?,
        ];
        if let Some(key) = key {
            let idem = HolderItem {
                pk: keys::idem_pk(key),
                sk: keys::IDEM_SK,
                request_id: request.id.as_str(),
                since: None,
                created_at: Some(now),
                expires_at: Some((request.created_at + IDEMPOTENCY_KEY_LIFETIME).timestamp()),
            };
            // A key whose lifetime ended is free, though TTL may not have
            // deleted its item yet.
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(&idem, || idem.pk.clone())?))
                .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
                .expression_attribute_values(":now", n_i64(request.created_at.timestamp()))
                .build()
                .map_err(|e| unavailable(&e))?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        if let Some(parent) = &request.parent {
            items.push(parent_open(&self.table, parent)?);
        }
        Ok(items)
    }

    /// Why an insert's transaction was cancelled: read the holders rather
    /// than trust that every server reports cancellation reasons.
    async fn why_not_inserted(
        &self,
        request: &DeletionRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), LedgerError> {
        if let Some(key) = key {
            if let Some(holder) = self.live_key(key, request.created_at).await? {
                if holder != request.id.as_str() {
                    return Err(LedgerError::IdempotencyKeyUsed { holder });
                }
            }
        }
        match self.holder(keys::lock_pk(&request.scope), keys::LOCK_SK).await? {
            Some(holder) => Err(LedgerError::ScopeBusy {
                scope: request.scope.lock_key(),
                holder,
            }),
            // Released in between: the caller tries again.
            None => Err(LedgerError::Conflict),
        }
    }

    /// A final state (or a failed request given up) releases the scope in
    /// the same transaction as the request's conditional write.
    async fn update_releasing(&self, next: &DeletionRequest, item: Item, prev: u64) -> Result<(), LedgerError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :prev")
            .expression_attribute_values(":prev", n(prev))
            .build()
            .map_err(|e| unavailable(&e))?;
        let release = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(super::items::key(keys::lock_pk(&next.scope), keys::LOCK_SK)))
            .condition_expression("attribute_not_exists(pk) OR request_id = :id")
            .expression_attribute_values(":id", s(next.id.as_str()))
            .build()
            .map_err(|e| unavailable(&e))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().delete(release).build())
            .send()
            .await
            .map_err(transaction)?;
        Ok(())
    }

    /// The request a key names, unless its lifetime ended by `now`.
    async fn live_key(&self, key: &IdempotencyKey, now: DateTime<Utc>) -> Result<Option<String>, LedgerError> {
        let Some(item) = self.get_item(keys::idem_pk(key), keys::IDEM_SK).await? else {
            return Ok(None);
        };
        let expires = item
            .get(EXPIRES_AT)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok());
        // Keys written before keys expired have none: they stand.
        if expires.is_some_and(|e| e <= now.timestamp()) {
            return Ok(None);
        }
        Ok(string_attr(&item, "request_id"))
    }

    /// The request id an item names in `request_id` (a lock's, a key's).
    async fn held_by(&self, pk: String, sk: &str) -> Result<Option<RequestId>, LedgerError> {
        let holder = self.holder(pk.clone(), sk).await?;
        parse_holder(pk, holder)
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn insert(&self, request: &DeletionRequest, key: Option<&IdempotencyKey>) -> Result<(), LedgerError> {
        let (item, chunk_items) = request_items(request)?;
        self.put_chunks(chunk_items).await?;
        let items = self.insert_items(request, item, key)?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(aws_sdk_dynamodb::error::SdkError::ServiceError(e)) if e.err().is_transaction_canceled_exception() => {
                self.why_not_inserted(request, key).await
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
        if next.releases_scope() {
            self.update_releasing(next, item, prev).await
        } else {
            self.put_versioned(item, prev).await
        }
    }

    async fn active_for(&self, scope: &Scope) -> Result<Option<RequestId>, LedgerError> {
        self.held_by(keys::lock_pk(scope), keys::LOCK_SK).await
    }

    async fn by_idempotency_key(
        &self,
        key: &IdempotencyKey,
        now: DateTime<Utc>,
    ) -> Result<Option<RequestId>, LedgerError> {
        let holder = self.live_key(key, now).await?;
        parse_holder(keys::idem_pk(key), holder)
    }

    async fn list(&self, listing: &Listing, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        self.list_requests(listing, limit, cursor).await
    }

    async fn active(&self, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
        self.active_requests(limit, cursor).await
    }

    async fn expire_work(&self, id: &RequestId, indexes: &[u32], at: DateTime<Utc>) -> Result<(), LedgerError> {
        self.expire_work_items(id, indexes, at).await
    }

    async fn insert_shards(&self, shards: &[Shard]) -> Result<(), LedgerError> {
        self.put_new_shards(shards).await
    }

    async fn shards(&self, id: &RequestId) -> Result<Vec<Shard>, LedgerError> {
        self.read_shards(id).await
    }

    async fn shards_planned(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        self.plan_count(id).await
    }

    async fn next_unstarted(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        self.take_unstarted(id).await
    }

    async fn shard(&self, id: &RequestId, index: u32) -> Result<Option<Shard>, LedgerError> {
        self.read_shard(id, index).await
    }

    async fn open_shards(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        self.read_open(id, limit).await
    }

    async fn latest_leases(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        self.read_latest_open(id, limit).await
    }

    async fn update_shard(&self, next: &Shard) -> Result<(), LedgerError> {
        self.put_shard(next).await
    }

    async fn split_shard(&self, mine: &Shard, new: &Shard) -> Result<(), LedgerError> {
        self.split(mine, new).await
    }

    async fn put_page(&self, page: &PendingPage) -> Result<(), LedgerError> {
        self.write_page(page).await
    }

    async fn pages(&self, id: &RequestId, shard: u32) -> Result<Vec<PendingPage>, LedgerError> {
        self.read_pages(id, shard).await
    }

    async fn drop_page(&self, id: &RequestId, shard: u32, seq: u64) -> Result<(), LedgerError> {
        self.delete_page(id, shard, seq).await
    }
}
