//! A purge's shards (`SHARD#<nnnnnn>`, each with its checkpoint, the pages
//! in flight as one key range, and a version), in the partitions their
//! plan's `Layout` names; and a regulation's older versions recorded before
//! their delete (`PAGE#<shard>#<seq>#<chunk>`, dropped once counted),
//! beside the request.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use deletion_core::ids::RequestId;
use deletion_core::model::Shard;
use deletion_core::ports::{Entry, OpenShard, PendingPage};
use deletion_core::LedgerError;
use futures::StreamExt;
use serde::Serialize;

use super::errors::{transaction, unavailable, written};
use super::items::{chunks, decode, doc, key, n, to_item, Item};
use super::keys::{self, request_pk};
use super::layout::{number, Layout};
use super::DynamoLedger;

/// A shard: its version and `done` for conditions, the shard in `doc`,
/// and while not done its place in the index of open shards.
#[derive(Serialize)]
struct ShardItem {
    pk: String,
    sk: String,
    version: u64,
    done: bool,
    doc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi3pk: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi3sk: Option<String>,
}

pub(super) fn shard_item(sh: &Shard, layout: Layout) -> Result<Item, LedgerError> {
    let sk = keys::shard_sk(sh.index);
    let open = !sh.done;
    let item = ShardItem {
        pk: layout.pk(&sh.request_id, sh.index),
        doc: doc(sh, || sk.clone())?,
        sk,
        version: sh.version,
        done: sh.done,
        gsi3pk: open.then(|| keys::open_pk(&sh.request_id)),
        gsi3sk: open.then(|| keys::open_sk(sh.lease.as_ref().map(|l| l.until), sh.index)),
    };
    to_item(&item, || item.sk.clone())
}

impl DynamoLedger {
    /// Stores the shards not stored yet, in the plan's layout (fixed by the
    /// first); one planned already (by an earlier attempt) keeps its
    /// checkpoint. Then the plan's count: every shard up to the highest
    /// number stored (raised, never lowered: a verification adds shards).
    pub(super) async fn put_new_shards(&self, shards: &[Shard]) -> Result<(), LedgerError> {
        let Some(first) = shards.first() else {
            return Ok(());
        };
        let layout = self.layout_for_plan(&first.request_id).await?;
        for shard in shards {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(shard_item(shard, layout)?))
                .condition_expression("attribute_not_exists(pk)");
            written(put.send().await)?;
        }
        let Some(top) = shards.iter().map(|sh| sh.index + 1).max() else {
            return Ok(());
        };
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(request_pk(&shards[0].request_id), keys::SHARD_PLAN_SK)))
            .update_expression("SET #total = :top, #next = if_not_exists(#next, :zero)")
            .condition_expression("attribute_not_exists(#total) OR #total < :top")
            .expression_attribute_names("#total", "total")
            .expression_attribute_names("#next", "next")
            .expression_attribute_values(":top", n(u64::from(top)))
            .expression_attribute_values(":zero", n(0));
        match update.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(()),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// A shard cut in two, in one transaction: `mine` by its version, `new`
    /// where nothing is, and the plan's count from `new.index` to one more.
    pub(super) async fn split(&self, mine: &Shard, new: &Shard) -> Result<(), LedgerError> {
        let prev = mine.version.checked_sub(1).ok_or(LedgerError::Conflict)?;
        let layout = self.layout(&mine.request_id).await?.ok_or(LedgerError::Conflict)?;
        let mine_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(shard_item(mine, layout)?))
            .condition_expression("version = :prev")
            .expression_attribute_values(":prev", n(prev))
            .build()
            .map_err(|e| unavailable(&e))?;
        let new_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(shard_item(new, layout)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| unavailable(&e))?;
        let count = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(request_pk(&new.request_id), keys::SHARD_PLAN_SK)))
            .update_expression("SET #total = :top")
            .condition_expression("#total = :index")
            .expression_attribute_names("#total", "total")
            .expression_attribute_values(":top", n(u64::from(new.index) + 1))
            .expression_attribute_values(":index", n(u64::from(new.index)))
            .build()
            .map_err(|e| unavailable(&e))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(mine_put).build())
            .transact_items(TransactWriteItem::builder().put(new_put).build())
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await
            .map_err(transaction)?;
        Ok(())
    }

    /// The plan's shard count, once stored.
    pub(super) async fn plan_count(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        let item = self.get_item(request_pk(id), keys::SHARD_PLAN_SK).await?;
        Ok(item.as_ref().and_then(|item| number(item, "total")))
    }

    /// `next` raised by one while below `total`: the number it was (and
    /// the plan's layout, learnt on the way).
    pub(super) async fn take_unstarted(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(request_pk(id), keys::SHARD_PLAN_SK)))
            .update_expression("SET #next = #next + :one")
            .condition_expression("#next < #total")
            .expression_attribute_names("#next", "next")
            .expression_attribute_names("#total", "total")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllOld);
        match update.send().await {
            Ok(out) => {
                let plan = out.attributes.unwrap_or_default();
                if let Some(layout) = Layout::of_plan(&plan) {
                    self.layouts.remember(id, layout);
                }
                Ok(number(&plan, "next"))
            }
            // Every number handed out, or no plan counted.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(None),
            Err(e) => Err(unavailable(&e)),
        }
    }

    pub(super) async fn read_shard(&self, id: &RequestId, index: u32) -> Result<Option<Shard>, LedgerError> {
        let Some(layout) = self.layout(id).await? else {
            return Ok(None);
        };
        let item = self.get_item(layout.pk(id, index), &keys::shard_sk(index)).await?;
        item.as_ref().map(decode).transpose()
    }

    /// Up to `limit` entries of the index of open shards, free ones first.
    pub(super) async fn read_open(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        self.query_open(id, limit, true).await
    }

    /// The last `limit` entries of `open`: the shards whose leases end
    /// last, the latest first.
    pub(super) async fn read_latest_open(&self, id: &RequestId, limit: u32) -> Result<Vec<OpenShard>, LedgerError> {
        self.query_open(id, limit, false).await
    }

    /// Up to `limit` entries of `open`, the earliest lease end first
    /// (`forward`) or the latest first.
    async fn query_open(&self, id: &RequestId, limit: u32, forward: bool) -> Result<Vec<OpenShard>, LedgerError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::INDEX_OPEN)
            .key_condition_expression("gsi3pk = :p")
            .expression_attribute_values(":p", super::items::s(keys::open_pk(id)))
            .scan_index_forward(forward)
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(out
            .items()
            .iter()
            .filter_map(|item| super::items::string_attr(item, "gsi3sk"))
            .filter_map(|sk| keys::parse_open_sk(&sk))
            .map(|(lease_until, index)| OpenShard { index, lease_until })
            .collect())
    }

    /// Every shard of the plan, by number: one query per partition used,
    /// side by side.
    pub(super) async fn read_shards(&self, id: &RequestId) -> Result<Vec<Shard>, LedgerError> {
        let Some(layout) = self.layout(id).await? else {
            return Ok(Vec::new());
        };
        let total = match layout {
            Layout::Beside => None,
            Layout::Spread(_) => self.plan_count(id).await?,
        };
        let reads = layout
            .partitions(id, total)
            .into_iter()
            .map(|pk| self.query_prefix(pk, keys::SHARD_PREFIX));
        let mut shards = futures::future::try_join_all(reads)
            .await?
            .iter()
            .flatten()
            .map(decode)
            .collect::<Result<Vec<Shard>, _>>()?;
        shards.sort_by_key(|sh| sh.index);
        Ok(shards)
    }

    pub(super) async fn put_shard(&self, next: &Shard) -> Result<(), LedgerError> {
        let prev = next.version.checked_sub(1).ok_or(LedgerError::Conflict)?;
        let layout = self.layout(&next.request_id).await?.ok_or(LedgerError::Conflict)?;
        self.put_versioned(shard_item(next, layout)?, prev).await
    }

    /// Sets the TTL attribute on each of a completed request's shard
    /// items, its plan item and its pages (one UpdateItem each, 16 at a
    /// time; an item already gone is skipped, none is created).
    pub(super) async fn expire_work_items(
        &self,
        id: &RequestId,
        indexes: &[u32],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), LedgerError> {
        let Some(layout) = self.layout(id).await? else {
            return Ok(());
        };
        let mut keys: Vec<(String, String)> = indexes
            .iter()
            .map(|i| (layout.pk(id, *i), keys::shard_sk(*i)))
            .collect();
        keys.push((request_pk(id), keys::SHARD_PLAN_SK.to_owned()));
        let pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", super::items::s(request_pk(id)))
            .expression_attribute_values(":s", super::items::s("PAGE#"))
            .projection_expression("pk, sk")
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        for item in pages.items() {
            let attr = |name: &str| super::items::string_attr(item, name).unwrap_or_default();
            keys.push((attr("pk"), attr("sk")));
        }
        let updates = keys.into_iter().map(|(pk, sk)| async move {
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .update_expression("SET #e = :at")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#e", super::items::EXPIRES_AT)
                .expression_attribute_values(":at", super::items::n_i64(at.timestamp()))
                .send()
                .await;
            match sent {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    Ok(())
                }
                Err(e) => Err(unavailable(&e)),
            }
        });
        futures::stream::iter(updates)
            .buffer_unordered(16)
            .collect::<Vec<Result<(), LedgerError>>>()
            .await
            .into_iter()
            .collect()
    }

    /// One item per chunk of the page, each well under the item limit.
    pub(super) async fn write_page(&self, page: &PendingPage) -> Result<(), LedgerError> {
        let size = |e: &Entry| e.key.len() + e.version_id.as_ref().map_or(0, String::len) + 64;
        for (n, entries) in chunks(&page.entries, size).into_iter().enumerate() {
            let part = PendingPage {
                entries,
                ..page.clone()
            };
            let sk = keys::page_sk(page.shard, page.seq, n);
            self.put_doc(request_pk(&page.request_id), sk, &part).await?;
        }
        Ok(())
    }

    /// The pages of a shard, their chunks joined, in order.
    pub(super) async fn read_pages(&self, id: &RequestId, shard: u32) -> Result<Vec<PendingPage>, LedgerError> {
        let mut pages: Vec<PendingPage> = Vec::new();
        let prefix = keys::shard_pages_prefix(shard);
        for item in self.query_prefix(request_pk(id), &prefix).await? {
            let part: PendingPage = decode(&item)?;
            match pages.last_mut() {
                Some(last) if last.seq == part.seq => last.entries.extend(part.entries),
                _ => pages.push(part),
            }
        }
        Ok(pages)
    }

    /// The chunks of the page: query their keys, delete each.
    pub(super) async fn delete_page(&self, id: &RequestId, shard: u32, seq: u64) -> Result<(), LedgerError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", super::items::s(request_pk(id)))
            .expression_attribute_values(":s", super::items::s(keys::page_chunks_prefix(shard, seq)))
            .projection_expression("pk, sk")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        for item in out.items() {
            let attr = |name: &str| super::items::string_attr(item, name).unwrap_or_default();
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(attr("pk"), attr("sk"))))
                .send()
                .await
                .map_err(|e| unavailable(&e))?;
        }
        Ok(())
    }
}
