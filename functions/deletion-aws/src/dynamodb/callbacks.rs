//! Where each request's status callbacks stand: `REQ#<id>` / `CALLBACK`
//! (the state as JSON in `doc`, with a `version`), in the `active` index
//! under `CALLBACK_DUE` while a retry waits, sorted by when it is due.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deletion_core::callbacks::CallbackState;
use deletion_core::ids::RequestId;
use deletion_core::ports::CallbackLedger;
use deletion_core::LedgerError;
use serde::Serialize;

use super::errors::unavailable;
use super::items::{doc, s, string_attr, to_item};
use super::keys::{self, request_pk, CALLBACK_DUE, CALLBACK_SK};
use super::DynamoLedger;

#[derive(Serialize)]
struct CallbackItem {
    pk: String,
    sk: &'static str,
    version: u64,
    doc: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    /// The table's TTL attribute (epoch seconds), once every status of a
    /// final request is delivered.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

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
        let name = || format!("{pk}/{CALLBACK_SK}");
        let item = CallbackItem {
            pk: pk.clone(),
            sk: CALLBACK_SK,
            version: next.version,
            doc: doc(next, name)?,
            gsi2pk: next.next_attempt_at.map(|_| CALLBACK_DUE),
            gsi2sk: next
                .next_attempt_at
                .map(|at| keys::callback_due_sk(at, &next.request_id)),
            expires_at: next.expires_at.map(|at| at.timestamp()),
        };
        let prev = next.version.checked_sub(1).filter(|v| *v > 0);
        self.put_if(to_item(&item, name)?, prev).await
    }

    async fn due_callbacks(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<RequestId>, LedgerError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::INDEX_ACTIVE)
            .key_condition_expression("gsi2pk = :p AND gsi2sk < :until")
            .expression_attribute_values(":p", s(CALLBACK_DUE))
            .expression_attribute_values(":until", s(keys::callback_due_until(now)))
            .limit(limit as i32)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(out
            .items()
            .iter()
            .filter_map(|item| string_attr(item, "pk"))
            .filter_map(|pk| keys::request_of_pk(&pk))
            .collect())
    }
}
