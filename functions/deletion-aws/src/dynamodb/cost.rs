//! What the purge's ledger calls cost on DynamoDB, and on which partitions:
//! for each call, the items this adapter writes or reads for it (built by
//! the same item builders, so their keys and sizes are the ones sent) and
//! the capacity units DynamoDB charges for them, base table and indexes.
//! The scale simulation charges these to its model of DynamoDB's
//! per-partition limits; nothing in production calls it.
//!
//! DynamoDB's rules, as documented (Developer Guide, "Read/write capacity
//! mode" and "Provisioned throughput of global secondary indexes"):
//! - a write costs 1 WCU per KB of the item (rounded up), a transactional
//!   write twice that; a refused conditional write is charged too;
//! - a strongly consistent read 1 RCU per 4 KB, an eventually consistent
//!   one (every index read) half; a Query sums its items' sizes first;
//! - an index is written when the item enters, leaves or changes in it: 1
//!   write of the projected size, 2 when the index key changes (the old
//!   entry deleted, the new one put).
//!
//! Invariant: a call the adapter would refuse (an item over 400 KB) is
//! refused here with the adapter's own error, so a simulation never
//! charges what the adapter never sends.

use deletion_core::ids::RequestId;
use deletion_core::model::{DeletionRequest, Shard};
use deletion_core::LedgerError;

use super::items::{checked, item_size, Item};
use super::keys::{self, request_pk};
use super::layout::Layout;
use super::requests::request_items;
use super::shards::shard_item;

/// Capacity charged to one partition (a table key's, or an index key's,
/// named `<index>/<index key>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub partition: String,
    pub read_units: f64,
    pub write_units: f64,
}

/// One ledger call of the purge, with what it wrote or read.
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    /// `get`: the request item (consistent), when found.
    GetRequest {
        id: &'a RequestId,
        found: Option<&'a DeletionRequest>,
    },
    /// `update`: the request item over `prev`, with its scope lock
    /// released in a transaction when `next` releases it.
    PutRequest {
        prev: Option<&'a DeletionRequest>,
        next: &'a DeletionRequest,
    },
    /// `insert_shards`: each shard put where none is, then the plan count.
    InsertShards { shards: &'a [Shard] },
    /// `shards`: the plan count, then one query per shard partition.
    ReadShards { id: &'a RequestId, shards: &'a [Shard] },
    /// `shards_planned`: the plan item.
    PlanCount { id: &'a RequestId },
    /// `next_unstarted`: the plan's counter raised.
    TakeUnstarted { id: &'a RequestId },
    /// `shard`: one shard item (consistent).
    ReadShard {
        id: &'a RequestId,
        index: u32,
        found: Option<&'a Shard>,
    },
    /// `open_shards` / `latest_leases`: the `open` index, `entries` read.
    ReadOpen { id: &'a RequestId, entries: usize },
    /// `update_shard`: the shard item over `prev`.
    PutShard { prev: Option<&'a Shard>, next: &'a Shard },
    /// `split_shard`: two shard puts and the plan count, in a transaction.
    Split {
        prev: Option<&'a Shard>,
        mine: &'a Shard,
        new: &'a Shard,
    },
    /// A small item read by key (a hold, a suppression), consistently.
    ReadSmall { partition: &'a str },
}

/// Bytes of an entry of the `open` index (keys only: both keys of the
/// table and of the index, with their names).
const OPEN_ENTRY_BYTES: usize = 2 + 40 + 2 + 13 + 6 + 41 + 6 + 32;

/// The plan item (`REQ#<id>` / `SHARDS`, three small numbers).
const PLAN_ITEM_BYTES: usize = 2 + 40 + 2 + 6 + 6 + 6 + 5 + 6 + 4 + 6;

pub fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

pub fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent {
        units
    } else {
        units / 2.0
    }
}

fn write(partition: String, units: f64) -> Charge {
    Charge {
        partition,
        read_units: 0.0,
        write_units: units,
    }
}

fn read(partition: String, units: f64) -> Charge {
    Charge {
        partition,
        read_units: units,
        write_units: 0.0,
    }
}

/// What DynamoDB charges for `call`, partition by partition.
pub fn charges(call: Call<'_>) -> Result<Vec<Charge>, LedgerError> {
    Ok(match call {
        Call::GetRequest { id, found } => {
            let bytes = match found {
                Some(r) => item_size(&request_items(r)?.0),
                None => 0,
            };
            vec![read(request_pk(id), read_units(bytes, true))]
        }
        Call::PutRequest { prev, next } => put_request(prev, next)?,
        Call::InsertShards { shards } => {
            let mut out = Vec::with_capacity(shards.len() + 1);
            for sh in shards {
                out.extend(put_shard(None, sh, 1.0)?);
            }
            if let Some(first) = shards.first() {
                out.push(write(request_pk(&first.request_id), write_units(PLAN_ITEM_BYTES)));
            }
            out
        }
        Call::ReadShards { id, shards } => {
            let mut out = vec![read(request_pk(id), read_units(PLAN_ITEM_BYTES, true))];
            let mut by_partition: std::collections::BTreeMap<String, usize> = Default::default();
            for sh in shards {
                *by_partition.entry(layout().pk(id, sh.index)).or_default() += shard_bytes(sh)?;
            }
            out.extend(by_partition.into_iter().map(|(pk, b)| read(pk, read_units(b, true))));
            out
        }
        Call::PlanCount { id } => vec![read(request_pk(id), read_units(PLAN_ITEM_BYTES, true))],
        Call::TakeUnstarted { id } => vec![write(request_pk(id), write_units(PLAN_ITEM_BYTES))],
        Call::ReadShard { id, index, found } => {
            let bytes = found.map(shard_bytes).transpose()?.unwrap_or(0);
            vec![read(layout().pk(id, index), read_units(bytes, true))]
        }
        Call::ReadOpen { id, entries } => vec![read(
            format!("{}/{}", keys::INDEX_OPEN, keys::open_pk(id)),
            read_units(entries * OPEN_ENTRY_BYTES, false),
        )],
        Call::PutShard { prev, next } => put_shard(prev, next, 1.0)?,
        Call::Split { prev, mine, new } => {
            let mut out = put_shard(prev, mine, 2.0)?;
            out.extend(put_shard(None, new, 2.0)?);
            out.push(write(request_pk(&new.request_id), 2.0 * write_units(PLAN_ITEM_BYTES)));
            out
        }
        Call::ReadSmall { partition } => vec![read(partition.to_owned(), 1.0)],
    })
}

/// The layout of every plan the purge writes now.
fn layout() -> Layout {
    Layout::Spread(keys::SHARD_GROUPS)
}

fn shard_bytes(sh: &Shard) -> Result<usize, LedgerError> {
    Ok(item_size(&shard_item(sh, layout())?))
}

/// A shard put (`factor` 2 inside a transaction) and its `open` entry.
fn put_shard(prev: Option<&Shard>, next: &Shard, factor: f64) -> Result<Vec<Charge>, LedgerError> {
    // DynamoDB refuses an item over 400 KB whoever sends it.
    let item = checked(shard_item(next, layout())?)?;
    let mut out = vec![write(
        layout().pk(&next.request_id, next.index),
        factor * write_units(item_size(&item)),
    )];
    let before = prev.map(|p| shard_item(p, layout())).transpose()?;
    let index_writes = index_writes(before.as_ref(), &item, "gsi3pk", "gsi3sk");
    if index_writes > 0 {
        out.push(write(
            format!("{}/{}", keys::INDEX_OPEN, keys::open_pk(&next.request_id)),
            index_writes as f64 * write_units(OPEN_ENTRY_BYTES),
        ));
    }
    Ok(out)
}

/// The request's put (in a transaction with the lock's release when it
/// releases the scope), its receipt's chunks, and its two indexes (both
/// project every attribute).
fn put_request(prev: Option<&DeletionRequest>, next: &DeletionRequest) -> Result<Vec<Charge>, LedgerError> {
    let (item, chunk_items) = request_items(next)?;
    let before = prev.map(|p| request_items(p).map(|(item, _)| item)).transpose()?;
    let pk = request_pk(&next.id);
    let size = item_size(&item);
    let factor = if next.releases_scope() { 2.0 } else { 1.0 };
    let mut out: Vec<Charge> = chunk_items
        .iter()
        .map(|c| write(pk.clone(), write_units(item_size(c))))
        .collect();
    out.push(write(pk, factor * write_units(size)));
    if next.releases_scope() {
        out.push(write(keys::lock_pk(&next.scope), 2.0));
    }
    for (index, pk_attr, sk_attr) in [
        (keys::INDEX_BY_WORKSPACE, "gsi1pk", "gsi1sk"),
        (keys::INDEX_ACTIVE, "gsi2pk", "gsi2sk"),
    ] {
        let writes = index_writes(before.as_ref(), &item, pk_attr, sk_attr);
        let partition = attr(&item, pk_attr).or_else(|| before.as_ref().and_then(|b| attr(b, pk_attr)));
        if let (true, Some(partition)) = (writes > 0, partition) {
            out.push(write(format!("{index}/{partition}"), writes as f64 * write_units(size)));
        }
    }
    Ok(out)
}

fn attr(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// How many writes an index takes when `before` becomes `after`: none
/// outside it, 1 to enter, leave or change in place, 2 to move.
fn index_writes(before: Option<&Item>, after: &Item, pk: &str, sk: &str) -> u32 {
    let key = |item: &Item| Some((attr(item, pk)?, attr(item, sk)?));
    match (before.and_then(key), key(after)) {
        (None, None) => 0,
        (Some(a), Some(b)) if a != b => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use deletion_core::ids::WorkspaceId;
    use deletion_core::lifecycle::Periods;
    use deletion_core::model::Scope;

    fn request() -> DeletionRequest {
        let scope = Scope::Workspace {
            workspace: WorkspaceId::parse("acme").unwrap(),
        };
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        DeletionRequest::new(scope, "ann", None, at, Periods::default())
    }

    fn shard(r: &DeletionRequest, index: u32) -> Shard {
        Shard {
            request_id: r.id.clone(),
            index,
            store: "archive".into(),
            bucket: "bucket".into(),
            prefix: "acme/web/".into(),
            root: "acme/".into(),
            after: None,
            upto: None,
            done: false,
            cursor: None,
            uploads_done: false,
            counts: Default::default(),
            lease: None,
            pages_done: 0,
            rewrite: None,
            pending: None,
            version: 1,
        }
    }

    #[test]
    fn a_checkpoint_that_keeps_its_lease_writes_the_shard_and_one_index_entry() {
        let r = request();
        let prev = shard(&r, 3);
        let mut next = prev.clone();
        next.version += 1;
        let got = charges(Call::PutShard {
            prev: Some(&prev),
            next: &next,
        })
        .unwrap();
        assert_eq!(got[0].partition, format!("SHARDS#{}#03", r.id));
        assert_eq!(got[0].write_units, 1.0);
        assert_eq!(got[1].partition, format!("open/OPEN#{}", r.id));
        assert_eq!(got[1].write_units, 1.0);
    }

    #[test]
    fn a_shard_done_leaves_the_index_and_a_split_is_charged_twice() {
        let r = request();
        let prev = shard(&r, 0);
        let mut done = prev.clone();
        done.done = true;
        let got = charges(Call::PutShard {
            prev: Some(&prev),
            next: &done,
        })
        .unwrap();
        assert_eq!(got.iter().map(|c| c.write_units).sum::<f64>(), 2.0);
        let new = shard(&r, 17);
        let split = charges(Call::Split {
            prev: Some(&prev),
            mine: &prev,
            new: &new,
        })
        .unwrap();
        // Two puts and the plan count in a transaction, two index entries.
        assert_eq!(split.iter().map(|c| c.write_units).sum::<f64>(), 2.0 * 3.0 + 1.0 + 1.0);
        assert_eq!(split[2].partition, format!("SHARDS#{}#01", r.id));
    }

    #[test]
    fn reads_round_up_to_4_kb_and_index_reads_are_half() {
        let r = request();
        let got = charges(Call::GetRequest {
            id: &r.id,
            found: Some(&r),
        })
        .unwrap();
        assert_eq!(got[0].read_units, 1.0);
        let open = charges(Call::ReadOpen { id: &r.id, entries: 1 }).unwrap();
        assert_eq!(open[0].read_units, 0.5);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(write_units(1025), 2.0);
    }
}
