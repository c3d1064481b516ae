//! What regulations keep in the ledger: their subject ids
//! (`REQ#<id>` / `SUBJECTS#<nnnn>`, in chunks) and each workspace's
//! suppression list (`SUPP#<workspace>` / `U#<user id>`), each entry with
//! the regulation that set it and its `stamp` (created_at#id), so the later
//! regulation wins whatever the order the writes land in.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use deletion_core::ids::{RequestId, WorkspaceId};
use deletion_core::ports::{Regulations, Suppression};
use deletion_core::regulation::{Subjects, UserId};
use deletion_core::LedgerError;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::errors::{unavailable, written};
use super::items::{chunks, decode, from_item, key, millis, s, string_attr, to_item, Item};
use super::keys::{self, request_pk};
use super::DynamoLedger;

/// Suppression writes in flight at once.
const SUPPRESSION_WRITES: usize = 16;
/// Keys per BatchGetItem call (DynamoDB's limit).
const BATCH_GET: usize = 100;
/// BatchGetItem calls for keys left unprocessed (throttling), backing off.
const BATCH_GET_ATTEMPTS: u32 = 8;

#[derive(Serialize, Deserialize)]
struct SuppressionItem {
    pk: String,
    sk: String,
    user_id: UserId,
    suppressed: bool,
    #[serde(with = "millis")]
    since: DateTime<Utc>,
    regulation: RequestId,
    stamp: String,
    /// Its place in the workspace's listing, newest first (`keys`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi1sk: Option<String>,
}

/// The key a listing cursor names (when its entry was set, and who).
fn listing_start(workspace: &WorkspaceId, cursor: &str) -> Result<Item, LedgerError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| LedgerError::InvalidCursor)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| LedgerError::InvalidCursor)?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or(LedgerError::InvalidCursor)
    };
    let since = DateTime::parse_from_rfc3339(field("t")?)
        .map_err(|_| LedgerError::InvalidCursor)?
        .with_timezone(&Utc);
    let user = UserId::parse(field("u")?).map_err(|_| LedgerError::InvalidCursor)?;
    let mut start = key(keys::suppression_pk(workspace), keys::suppression_sk(&user));
    start.insert("gsi1pk".into(), s(keys::suppression_listing_pk(workspace)));
    start.insert("gsi1sk".into(), s(keys::suppression_listing_sk(since, &user)));
    Ok(start)
}

/// Which regulation's write is later: its creation, then its id.
fn stamp(regulation: &RequestId, since: DateTime<Utc>) -> String {
    format!("{}#{regulation}", since.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn decode_suppression(workspace: &WorkspaceId, item: Item) -> Result<Suppression, LedgerError> {
    let entry: SuppressionItem = from_item(item, || keys::suppression_pk(workspace))?;
    Ok(Suppression {
        user_id: entry.user_id,
        suppressed: entry.suppressed,
        since: entry.since,
        regulation: entry.regulation,
    })
}

impl DynamoLedger {
    /// Sets one user's entry unless a later regulation's stands.
    async fn put_suppression(&self, entry: SuppressionItem) -> Result<(), LedgerError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&entry, || entry.pk.clone())?))
            // A later regulation's state stands.
            .condition_expression("attribute_not_exists(pk) OR stamp <= :stamp")
            .expression_attribute_values(":stamp", s(entry.stamp.clone()));
        written(put.send().await).map(|_| ())
    }

    /// One BatchGetItem round after another until every key is answered;
    /// keys left unprocessed (throttling) are asked again, backing off.
    async fn batch_get(&self, mut keys: Vec<Item>) -> Result<Vec<Item>, LedgerError> {
        let mut found = Vec::new();
        let mut backoff = std::time::Duration::from_millis(25);
        for attempt in 0.. {
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| unavailable(&e))?;
            let mut out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| unavailable(&e))?;
            found.extend(
                out.responses
                    .as_mut()
                    .and_then(|r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            keys = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|k| k.keys().to_vec())
                .unwrap_or_default();
            if keys.is_empty() {
                break;
            }
            if attempt >= BATCH_GET_ATTEMPTS {
                return Err(LedgerError::Unavailable(format!(
                    "{} suppression keys stayed unprocessed after {attempt} attempts",
                    keys.len()
                )));
            }
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
        Ok(found)
    }
}

#[async_trait]
impl Regulations for DynamoLedger {
    async fn put_subjects(&self, id: &RequestId, subjects: &Subjects) -> Result<(), LedgerError> {
        for (n, chunk) in chunks(subjects.ids(), |u| u.as_str().len() + 8).iter().enumerate() {
            self.put_doc(request_pk(id), keys::subjects_sk(n), chunk).await?;
        }
        Ok(())
    }

    async fn subjects(&self, id: &RequestId) -> Result<Subjects, LedgerError> {
        let mut ids = Vec::new();
        for item in self.query_prefix(request_pk(id), keys::SUBJECTS_PREFIX).await? {
            let chunk: Vec<UserId> = decode(&item)?;
            ids.extend(chunk);
        }
        Ok(Subjects::from_ids(ids))
    }

    async fn set_suppressed(
        &self,
        workspace: &WorkspaceId,
        ids: &[UserId],
        suppressed: bool,
        regulation: &RequestId,
        since: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let stamp = stamp(regulation, since);
        let writes: Vec<_> = ids
            .iter()
            .map(|id| {
                self.put_suppression(SuppressionItem {
                    pk: keys::suppression_pk(workspace),
                    sk: keys::suppression_sk(id),
                    user_id: id.clone(),
                    suppressed,
                    since,
                    regulation: regulation.clone(),
                    stamp: stamp.clone(),
                    gsi1pk: Some(keys::suppression_listing_pk(workspace)),
                    gsi1sk: Some(keys::suppression_listing_sk(since, id)),
                })
            })
            .collect();
        stream::iter(writes)
            .buffer_unordered(SUPPRESSION_WRITES)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn suppression(&self, workspace: &WorkspaceId, id: &UserId) -> Result<Option<Suppression>, LedgerError> {
        let item = self
            .get_item(keys::suppression_pk(workspace), &keys::suppression_sk(id))
            .await?;
        item.map(|item| decode_suppression(workspace, item)).transpose()
    }

    async fn suppression_page(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<Suppression>, Option<String>), LedgerError> {
        let start = cursor.map(|c| listing_start(workspace, c)).transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::INDEX_BY_WORKSPACE)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", s(keys::suppression_listing_pk(workspace)))
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100) as i32)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let entries = out
            .items()
            .iter()
            .map(|item| decode_suppression(workspace, item.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let next = out.last_evaluated_key().and_then(|key| {
            let since = string_attr(key, "gsi1sk")?.split_once('#')?.0.to_owned();
            let user = string_attr(key, "sk")?.strip_prefix("U#")?.to_owned();
            let text = serde_json::json!({"t": since, "u": user}).to_string();
            Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text))
        });
        Ok((entries, next))
    }

    async fn suppressions(&self, workspace: &WorkspaceId, ids: &[UserId]) -> Result<Vec<Suppression>, LedgerError> {
        let mut found = Vec::new();
        for chunk in ids.chunks(BATCH_GET) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|id| key(keys::suppression_pk(workspace), keys::suppression_sk(id)))
                .collect();
            for item in self.batch_get(keys).await? {
                found.push(decode_suppression(workspace, item)?);
            }
        }
        Ok(found)
    }
}
