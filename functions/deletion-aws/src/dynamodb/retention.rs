//! Retention records: `RETENTION` / `WS#<workspace>`, one per workspace,
//! its state a JSON `doc` and a `version` every write is conditional on;
//! one partition for all, so the daily enforcement lists every workspace
//! with a record in one Query per page (policies change rarely: a few
//! writes per workspace a day).

use async_trait::async_trait;
use deletion_core::ids::WorkspaceId;
use deletion_core::model::retention::Retention;
use deletion_core::ports::RetentionLedger;
use deletion_core::LedgerError;

use super::errors::unavailable;
use super::items::{checked, decode, doc, key, n, s, string_attr, Item};
use super::keys;
use super::DynamoLedger;

fn item(next: &Retention) -> Result<Item, LedgerError> {
    let sk = keys::retention_sk(&next.workspace);
    let body = doc(next, || format!("{}/{sk}", keys::RETENTION_PK))?;
    let mut item = key(keys::RETENTION_PK, sk);
    item.insert("version".into(), n(next.version));
    item.insert("doc".into(), s(body));
    checked(item)
}

#[async_trait]
impl RetentionLedger for DynamoLedger {
    async fn retention(&self, workspace: &WorkspaceId) -> Result<Option<Retention>, LedgerError> {
        let sk = keys::retention_sk(workspace);
        match self.get_item(keys::RETENTION_PK.into(), &sk).await? {
            Some(item) => decode(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn put_retention(&self, next: &Retention) -> Result<(), LedgerError> {
        let prev = next.version.checked_sub(1).filter(|v| *v > 0);
        self.put_if(item(next)?, prev).await
    }

    async fn retention_page(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<Retention>, Option<String>), LedgerError> {
        let start = cursor
            .map(|c| WorkspaceId::parse(c).map_err(|_| LedgerError::InvalidCursor))
            .transpose()?
            .map(|w| key(keys::RETENTION_PK, keys::retention_sk(&w)));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(keys::RETENTION_PK))
            .limit(limit.clamp(1, 100) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let records = out.items().iter().map(decode).collect::<Result<Vec<Retention>, _>>()?;
        let next = out
            .last_evaluated_key()
            .and_then(|k| string_attr(k, "sk"))
            .and_then(|sk| keys::workspace_of_retention_sk(&sk).map(str::to_owned));
        Ok((records, next))
    }
}
