//! Quotas and use: `QUOTA#<workspace>` / `QUOTA` (an operator's quotas, a
//! JSON `doc` and a `version` every write is conditional on),
//! `USAGE#<workspace>` / `MINUTE#<minute>` (`calls`, expiring an hour after
//! its minute) and `USAGE#<workspace>` / `MONTH#<yyyy-mm>` (`subjects`,
//! `regulations`, expiring 400 days after the month's start). Each counter
//! moves by one conditional UpdateItem: a call or reservation over the
//! limit fails its condition and writes nothing.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::ReturnValue;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use deletion_core::ids::WorkspaceId;
use deletion_core::model::quota::{MonthUsage, Quota};
use deletion_core::ports::QuotaLedger;
use deletion_core::LedgerError;

use super::errors::unavailable;
use super::items::{checked, decode, doc, key, n, n_i64, s, Item};
use super::keys;
use super::DynamoLedger;

/// How long a minute's counter is kept after its minute.
const MINUTE_KEPT: Duration = Duration::hours(1);
/// How long a month's counter is kept after the month starts.
const MONTH_KEPT: Duration = Duration::days(400);

fn number(item: &Item, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_default()
}

fn month_expiry(month: &str) -> i64 {
    let start = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or_else(Utc::now);
    (start + MONTH_KEPT).timestamp()
}

fn usage_of(item: &Item) -> MonthUsage {
    MonthUsage {
        regulations: number(item, "regulations"),
        subjects: number(item, "subjects"),
    }
}

impl DynamoLedger {
    /// An UpdateItem on a counter item: the new values, or `None` when its
    /// condition failed.
    async fn bump(
        &self,
        key_item: Item,
        update: &str,
        condition: &str,
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<Option<Item>, LedgerError> {
        let mut call = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item))
            .update_expression(update)
            .condition_expression(condition)
            .return_values(ReturnValue::UpdatedNew);
        for (name, value) in values {
            call = call.expression_attribute_values(name, value);
        }
        match call.send().await {
            Ok(out) => Ok(Some(out.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(None),
            Err(e) => Err(unavailable(&e)),
        }
    }
}

#[async_trait]
impl QuotaLedger for DynamoLedger {
    async fn quota(&self, workspace: &WorkspaceId) -> Result<Option<Quota>, LedgerError> {
        match self.get_item(keys::quota_pk(workspace), keys::QUOTA_SK).await? {
            Some(item) => decode(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn put_quota(&self, next: &Quota) -> Result<(), LedgerError> {
        let pk = keys::quota_pk(&next.workspace);
        let body = doc(next, || format!("{pk}/{}", keys::QUOTA_SK))?;
        let mut item = key(pk, keys::QUOTA_SK);
        item.insert("version".into(), n(next.version));
        item.insert("doc".into(), s(body));
        let prev = next.version.checked_sub(1).filter(|v| *v > 0);
        self.put_if(checked(item)?, prev).await
    }

    async fn count_call(
        &self,
        workspace: &WorkspaceId,
        minute: DateTime<Utc>,
        limit: u32,
    ) -> Result<Option<u32>, LedgerError> {
        let counted = self
            .bump(
                key(keys::usage_pk(workspace), keys::minute_sk(minute)),
                "ADD calls :one SET expires_at = if_not_exists(expires_at, :expires)",
                "attribute_not_exists(calls) OR calls < :limit",
                vec![
                    (":one", n(1)),
                    (":limit", n(u64::from(limit))),
                    (":expires", n_i64((minute + MINUTE_KEPT).timestamp())),
                ],
            )
            .await?;
        Ok(counted.map(|item| u32::try_from(number(&item, "calls")).unwrap_or(u32::MAX)))
    }

    async fn calls(&self, workspace: &WorkspaceId, minute: DateTime<Utc>) -> Result<u32, LedgerError> {
        let item = self
            .get_item(keys::usage_pk(workspace), &keys::minute_sk(minute))
            .await?
            .unwrap_or_default();
        Ok(u32::try_from(number(&item, "calls")).unwrap_or(u32::MAX))
    }

    async fn reserve_subjects(
        &self,
        workspace: &WorkspaceId,
        month: &str,
        subjects: u64,
        limit: u64,
    ) -> Result<Result<MonthUsage, MonthUsage>, LedgerError> {
        let Some(room) = limit.checked_sub(subjects) else {
            return Ok(Err(self.month_usage(workspace, month).await?));
        };
        let reserved = self
            .bump(
                key(keys::usage_pk(workspace), keys::month_sk(month)),
                "ADD subjects :n, regulations :one SET expires_at = if_not_exists(expires_at, :expires)",
                "attribute_not_exists(subjects) OR subjects <= :room",
                vec![
                    (":n", n(subjects)),
                    (":one", n(1)),
                    (":room", n(room)),
                    (":expires", n_i64(month_expiry(month))),
                ],
            )
            .await?;
        match reserved {
            Some(item) => Ok(Ok(usage_of(&item))),
            None => Ok(Err(self.month_usage(workspace, month).await?)),
        }
    }

    async fn release_subjects(&self, workspace: &WorkspaceId, month: &str, subjects: u64) -> Result<(), LedgerError> {
        let back = i64::try_from(subjects).map_or(i64::MIN, |s| -s);
        self.bump(
            key(keys::usage_pk(workspace), keys::month_sk(month)),
            "ADD subjects :back, regulations :minus",
            "subjects >= :n",
            vec![(":back", n_i64(back)), (":minus", n_i64(-1)), (":n", n(subjects))],
        )
        .await?;
        Ok(())
    }

    async fn month_usage(&self, workspace: &WorkspaceId, month: &str) -> Result<MonthUsage, LedgerError> {
        let item = self
            .get_item(keys::usage_pk(workspace), &keys::month_sk(month))
            .await?
            .unwrap_or_default();
        Ok(usage_of(&item))
    }
}
