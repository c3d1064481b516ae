//! Legal holds: `HOLD#<workspace>` / `HOLD`, one per workspace, with its
//! `reason`, `placed_by` and `since`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deletion_core::ids::WorkspaceId;
use deletion_core::ports::{Hold, Holds};
use deletion_core::LedgerError;
use serde::{Deserialize, Serialize};

use super::errors::{unavailable, written};
use super::items::{from_item, key, millis, to_item, Item};
use super::keys;
use super::DynamoLedger;

#[derive(Serialize, Deserialize)]
struct HoldItem {
    pk: String,
    sk: String,
    reason: String,
    placed_by: String,
    #[serde(with = "millis")]
    since: DateTime<Utc>,
}

fn decode_hold(workspace: &WorkspaceId, item: Item) -> Result<Hold, LedgerError> {
    let hold: HoldItem = from_item(item, || keys::hold_pk(workspace))?;
    Ok(Hold {
        workspace: workspace.clone(),
        reason: hold.reason,
        placed_by: hold.placed_by,
        since: hold.since,
    })
}

#[async_trait]
impl Holds for DynamoLedger {
    async fn place_hold(&self, hold: &Hold) -> Result<Hold, LedgerError> {
        let item = HoldItem {
            pk: keys::hold_pk(&hold.workspace),
            sk: keys::HOLD_SK.into(),
            reason: hold.reason.clone(),
            placed_by: hold.placed_by.clone(),
            since: hold.since,
        };
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&item, || item.pk.clone())?))
            .condition_expression("attribute_not_exists(pk)");
        if written(put.send().await)? {
            return Ok(hold.clone());
        }
        // One stands already: it is the one in force.
        self.hold(&hold.workspace).await?.ok_or(LedgerError::Conflict)
    }

    async fn hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
        match self.get_item(keys::hold_pk(workspace), keys::HOLD_SK).await? {
            Some(item) => decode_hold(workspace, item).map(Some),
            None => Ok(None),
        }
    }

    async fn release_hold(&self, workspace: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::hold_pk(workspace), keys::HOLD_SK)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        match out.attributes {
            Some(item) if !item.is_empty() => decode_hold(workspace, item).map(Some),
            _ => Ok(None),
        }
    }
}
