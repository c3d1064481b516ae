//! Where a request's shards are kept, and the plan item that says so.
//!
//! A new plan spreads its shards over `keys::SHARD_GROUPS` partitions (by
//! shard number modulo the plan's `groups`), so the checkpoints of a
//! request's many workers are not capped by one partition's 1,000 write
//! units a second. Plans written before that keep their shards beside the
//! request (`Layout::Beside`): a plan item with a count and no `groups`, or
//! shards beside the request and no plan item (plans written before plans
//! were counted).
//!
//! Invariant: a request's layout is fixed before its first shard is
//! written (`groups` is set by a conditional write on a plan item that has
//! neither `groups` nor a count) and never changes afterwards; so once
//! known it is remembered for the process's life.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::error::SdkError;
use deletion_core::ids::RequestId;
use deletion_core::LedgerError;

use super::errors::unavailable;
use super::items::{key, n, Item};
use super::keys::{self, request_pk};
use super::DynamoLedger;

/// Where the shards of one request are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Layout {
    /// In the request's own partition (plans from before the spreading).
    Beside,
    /// Over this many partitions of their own.
    Spread(u32),
}

impl Layout {
    /// The partition of shard `index`.
    pub(super) fn pk(self, id: &RequestId, index: u32) -> String {
        match self {
            Layout::Beside => request_pk(id),
            Layout::Spread(groups) => keys::shard_group_pk(id, index % groups.max(1)),
        }
    }

    /// Every partition that may hold one of `total` shards (`None`: not
    /// counted yet, so every group).
    pub(super) fn partitions(self, id: &RequestId, total: Option<u32>) -> Vec<String> {
        match self {
            Layout::Beside => vec![request_pk(id)],
            Layout::Spread(groups) => {
                let used = total.map_or(groups, |t| t.min(groups));
                (0..used.max(1)).map(|g| keys::shard_group_pk(id, g)).collect()
            }
        }
    }

    /// What a plan item says: `None` while it fixes nothing yet.
    pub(super) fn of_plan(item: &Item) -> Option<Layout> {
        if let Some(groups) = number(item, "groups") {
            return Some(Layout::Spread(groups.max(1)));
        }
        item.contains_key("total").then_some(Layout::Beside)
    }
}

pub(super) fn number(item: &Item, name: &str) -> Option<u32> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

/// The layouts known in this process (each fixed for good once known).
#[derive(Clone, Debug, Default)]
pub(super) struct Layouts(Arc<Mutex<HashMap<RequestId, Layout>>>);

/// Layouts remembered at most (a process works on few requests at once).
const REMEMBERED: usize = 4096;

impl Layouts {
    fn get(&self, id: &RequestId) -> Option<Layout> {
        self.0.lock().ok()?.get(id).copied()
    }

    pub(super) fn remember(&self, id: &RequestId, layout: Layout) {
        if let Ok(mut known) = self.0.lock() {
            if known.len() >= REMEMBERED {
                known.clear();
            }
            known.insert(id.clone(), layout);
        }
    }
}

impl DynamoLedger {
    /// The layout of a request's shards; `None` while nothing is planned.
    pub(super) async fn layout(&self, id: &RequestId) -> Result<Option<Layout>, LedgerError> {
        if let Some(known) = self.layouts.get(id) {
            return Ok(Some(known));
        }
        let plan = self.get_item(request_pk(id), keys::SHARD_PLAN_SK).await?;
        let found = match plan.as_ref().and_then(Layout::of_plan) {
            Some(layout) => Some(layout),
            None => self.shards_beside(id).await?.then_some(Layout::Beside),
        };
        if let Some(layout) = found {
            self.layouts.remember(id, layout);
        }
        Ok(found)
    }

    /// The layout a plan's shards are written in: the one fixed already,
    /// or spread, fixed now.
    pub(super) async fn layout_for_plan(&self, id: &RequestId) -> Result<Layout, LedgerError> {
        if let Some(known) = self.layout(id).await? {
            return Ok(known);
        }
        let fix = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(request_pk(id), keys::SHARD_PLAN_SK)))
            .update_expression("SET #groups = :groups")
            .condition_expression("attribute_not_exists(#groups) AND attribute_not_exists(#total)")
            .expression_attribute_names("#groups", "groups")
            .expression_attribute_names("#total", "total")
            .expression_attribute_values(":groups", n(u64::from(keys::SHARD_GROUPS)));
        match fix.send().await {
            Ok(_) => {
                let layout = Layout::Spread(keys::SHARD_GROUPS);
                self.layouts.remember(id, layout);
                Ok(layout)
            }
            // Another planner fixed it first.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                self.layout(id).await?.ok_or(LedgerError::Conflict)
            }
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// Whether any shard is kept beside the request (an old plan).
    async fn shards_beside(&self, id: &RequestId) -> Result<bool, LedgerError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", super::items::s(request_pk(id)))
            .expression_attribute_values(":s", super::items::s(keys::SHARD_PREFIX))
            .projection_expression("pk, sk")
            .consistent_read(true)
            .limit(1)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(out.count > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_plan_puts_neighbours_apart_and_reads_only_the_groups_it_uses() {
        let id = RequestId::new();
        let spread = Layout::Spread(16);
        assert_ne!(spread.pk(&id, 0), spread.pk(&id, 1));
        assert_eq!(spread.pk(&id, 3), spread.pk(&id, 19));
        assert_eq!(spread.partitions(&id, Some(3)).len(), 3);
        assert_eq!(spread.partitions(&id, Some(1000)).len(), 16);
        assert_eq!(spread.partitions(&id, None).len(), 16);
        assert_eq!(Layout::Beside.pk(&id, 7), request_pk(&id));
        assert_eq!(Layout::Beside.partitions(&id, Some(50)), [request_pk(&id)]);
    }

    #[test]
    fn a_plan_item_fixes_the_layout_by_its_groups_or_its_count() {
        let mut item = key("REQ#x", keys::SHARD_PLAN_SK);
        assert_eq!(Layout::of_plan(&item), None, "nothing fixed yet");
        item.insert("total".into(), n(4));
        assert_eq!(Layout::of_plan(&item), Some(Layout::Beside), "counted before spreading");
        item.insert("groups".into(), n(16));
        assert_eq!(Layout::of_plan(&item), Some(Layout::Spread(16)));
    }
}
