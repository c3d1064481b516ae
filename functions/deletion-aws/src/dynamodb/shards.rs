//! A purge's shards (`SHARD#<nnnnnn>`, each with its checkpoint, the pages
//! in flight as one key range, and a version) and a regulation's older
//! versions recorded before their delete (`PAGE#<shard>#<seq>#<chunk>`,
//! dropped once counted), beside the request.

use deletion_core::ids::RequestId;
use deletion_core::model::Shard;
use deletion_core::ports::{Entry, PendingPage};
use deletion_core::LedgerError;
use serde::Serialize;

use super::errors::{unavailable, written};
use super::items::{chunks, decode, doc, key, to_item, Item};
use super::keys::{self, request_pk};
use super::DynamoLedger;

/// A shard: its version and `done` for conditions, the shard in `doc`.
#[derive(Serialize)]
struct ShardItem {
    pk: String,
    sk: String,
    version: u64,
    done: bool,
    doc: String,
}

fn shard_item(sh: &Shard) -> Result<Item, LedgerError> {
    let sk = keys::shard_sk(sh.index);
    let item = ShardItem {
        pk: request_pk(&sh.request_id),
        doc: doc(sh, || sk.clone())?,
        sk,
        version: sh.version,
        done: sh.done,
    };
    to_item(&item, || item.sk.clone())
}

impl DynamoLedger {
    /// Stores the shards not stored yet; one planned already (by an
    /// earlier attempt) keeps its checkpoint.
    pub(super) async fn put_new_shards(&self, shards: &[Shard]) -> Result<(), LedgerError> {
        for shard in shards {
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(shard_item(shard)?))
                .condition_expression("attribute_not_exists(pk)");
            written(put.send().await)?;
        }
        Ok(())
    }

    pub(super) async fn read_shards(&self, id: &RequestId) -> Result<Vec<Shard>, LedgerError> {
        self.query_prefix(request_pk(id), keys::SHARD_PREFIX)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    pub(super) async fn put_shard(&self, next: &Shard) -> Result<(), LedgerError> {
        let prev = next.version.checked_sub(1).ok_or(LedgerError::Conflict)?;
        self.put_versioned(shard_item(next)?, prev).await
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
