//! The membership directory: `ACCOUNT#<account>` / `MEMBER#<workspace>`,
//! with the member's `role`, so an account's workspaces are one query.

use async_trait::async_trait;
use deletion_core::ids::{AccountId, WorkspaceId};
use deletion_core::ports::{Directory, Membership, Role};
use deletion_core::LedgerError;
use serde::{Deserialize, Serialize};

use super::errors::unavailable;
use super::items::{from_item, key, to_item, Item};
use super::keys;
use super::DynamoLedger;

/// A membership item (`role` as `admin` or `member`).
#[derive(Serialize, Deserialize)]
struct MemberItem {
    pk: String,
    sk: String,
    workspace: WorkspaceId,
    role: Role,
}

fn decode_member(item: Item, account: &AccountId) -> Result<Membership, LedgerError> {
    let member: MemberItem = from_item(item, || keys::member_pk(account))?;
    Ok(Membership {
        workspace: member.workspace,
        role: member.role,
    })
}

#[async_trait]
impl Directory for DynamoLedger {
    async fn put_member(&self, workspace: &WorkspaceId, account: &AccountId, role: Role) -> Result<(), LedgerError> {
        let item = MemberItem {
            pk: keys::member_pk(account),
            sk: keys::member_sk(workspace),
            workspace: workspace.clone(),
            role,
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&item, || item.pk.clone())?))
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(())
    }

    async fn remove_member(&self, workspace: &WorkspaceId, account: &AccountId) -> Result<bool, LedgerError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::member_pk(account), keys::member_sk(workspace))))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        // Some servers answer an empty map for an item that was not there.
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// One read of the membership item.
    async fn role(&self, workspace: &WorkspaceId, account: &AccountId) -> Result<Option<Role>, LedgerError> {
        self.get_item(keys::member_pk(account), &keys::member_sk(workspace))
            .await?
            .map(|item| decode_member(item, account).map(|m| m.role))
            .transpose()
    }

    async fn memberships(&self, account: &AccountId) -> Result<Vec<Membership>, LedgerError> {
        self.query_prefix(keys::member_pk(account), keys::MEMBER_PREFIX)
            .await?
            .into_iter()
            .map(|item| decode_member(item, account))
            .collect()
    }
}
