//! What regulations keep in the ledger: their subject ids
//! (`REQ#<id>` / `SUBJECTS#<nnnn>`, in chunks, until the regulation
//! completes), one record per subject and regulation under the subject's
//! keyed digest (`SUBJ#<digest>` / `REG#<created_at>#<id>`) and each workspace's
//! suppression list (`SUPP#<workspace>` / `U#<user id>`, and per source
//! `SRC#<source>#U#<user id>`), each entry with
//! the regulation that set it and its `stamp` (created_at#id), so the later
//! regulation wins whatever the order the writes land in.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::KeysAndAttributes;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use deletion_core::ids::{RequestId, SourceId, WorkspaceId};
use deletion_core::ports::{Regulations, SubjectRecord, Suppression};
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
    /// The source whose list it is in (absent: the workspace's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<SourceId>,
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

/// One subject's record of a regulation that named it (immutable).
#[derive(Serialize, Deserialize)]
struct SubjectRefItem {
    pk: String,
    sk: String,
    regulation: RequestId,
    #[serde(with = "millis")]
    created_at: DateTime<Utc>,
    /// The source the regulation was scoped to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<SourceId>,
}

/// Where the next page of a subject's records starts: the last sort key.
fn subject_cursor(sk: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sk)
}

fn subject_start(digest: &str, cursor: &str) -> Result<Item, LedgerError> {
    let sk = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|sk| keys::regulation_of_subject_ref(sk).is_some())
        .ok_or(LedgerError::InvalidCursor)?;
    Ok(key(keys::subject_pk(digest), sk))
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
    let source = match value.get("s") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(|s| SourceId::parse(s).ok())
                .ok_or(LedgerError::InvalidCursor)?,
        ),
    };
    let mut start = key(keys::suppression_pk(workspace), keys::entry_sk(source.as_ref(), &user));
    start.insert("gsi1pk".into(), s(keys::suppression_listing_pk(workspace)));
    start.insert("gsi1sk".into(), s(keys::suppression_listing_sk(since, &user)));
    Ok(start)
}

/// Runs `writes` with at most `SUPPRESSION_WRITES` in flight; the first
/// error ends it.
async fn in_flight<F>(writes: Vec<F>) -> Result<(), LedgerError>
where
    F: std::future::Future<Output = Result<(), LedgerError>>,
{
    stream::iter(writes)
        .buffer_unordered(SUPPRESSION_WRITES)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}

/// Which regulation's write is later: its creation, then its id.
fn stamp(regulation: &RequestId, since: DateTime<Utc>) -> String {
    format!("{}#{regulation}", since.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn decode_suppression(workspace: &WorkspaceId, item: Item) -> Result<Suppression, LedgerError> {
    let entry: SuppressionItem = from_item(item, || keys::suppression_pk(workspace))?;
    Ok(Suppression {
        user_id: entry.user_id,
        source: entry.source,
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

    /// Lifts one user's entry if `regulation` set it: the same entry (its
    /// stamp and place kept, so a later regulation still wins), lifted.
    async fn lift_one(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        id: &UserId,
        regulation: &RequestId,
    ) -> Result<(), LedgerError> {
        let Some(item) = self
            .get_item(keys::suppression_pk(workspace), &keys::entry_sk(source, id))
            .await?
        else {
            return Ok(());
        };
        let mut entry: SuppressionItem = from_item(item, || keys::suppression_pk(workspace))?;
        if &entry.regulation != regulation || !entry.suppressed {
            return Ok(());
        }
        entry.suppressed = false;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&entry, || entry.pk.clone())?))
            // Unless a later regulation's state landed meanwhile.
            .condition_expression("regulation = :me AND stamp = :stamp")
            .expression_attribute_values(":me", s(regulation.to_string()))
            .expression_attribute_values(":stamp", s(entry.stamp.clone()));
        written(put.send().await).map(|_| ())
    }

    /// Writes one subject's record unless it is there (it never changes).
    async fn put_subject_ref(&self, entry: SubjectRefItem) -> Result<(), LedgerError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&entry, || entry.pk.clone())?))
            .condition_expression("attribute_not_exists(pk)");
        // Already there (a retried create): the same record.
        written(put.send().await).map(|_| ())
    }

    /// A page of a subject's records, newest first: the regulations they
    /// name, and where the next page starts.
    async fn subject_refs(
        &self,
        digest: &str,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<(RequestId, Option<SourceId>)>, Option<String>), LedgerError> {
        let start = cursor.map(|c| subject_start(digest, c)).transpose()?;
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", s(keys::subject_pk(digest)))
            .expression_attribute_values(":s", s(keys::SUBJECT_REF_PREFIX))
            .projection_expression("sk, #source")
            .expression_attribute_names("#source", "source")
            .scan_index_forward(false)
            .limit(limit.clamp(1, 100) as i32)
            .set_exclusive_start_key(start)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        let corrupt = |sk: &str, reason: &str| LedgerError::Corrupt {
            key: format!("{}/{sk}", keys::subject_pk(digest)),
            reason: reason.into(),
        };
        let ids = out
            .items()
            .iter()
            .map(|item| {
                let sk = string_attr(item, "sk").unwrap_or_default();
                let id = keys::regulation_of_subject_ref(&sk).ok_or_else(|| corrupt(&sk, "not a record's sort key"))?;
                let source = string_attr(item, "source")
                    .map(|s| SourceId::parse(&s).map_err(|_| corrupt(&sk, "not a source id")))
                    .transpose()?;
                Ok((id, source))
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        let next = out
            .last_evaluated_key()
            .and_then(|k| string_attr(k, "sk"))
            .map(|sk| subject_cursor(&sk));
        Ok((ids, next))
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

    async fn forget_subjects(&self, id: &RequestId) -> Result<(), LedgerError> {
        for item in self.query_prefix(request_pk(id), keys::SUBJECTS_PREFIX).await? {
            let attr = |name: &str| string_attr(&item, name).unwrap_or_default();
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

    async fn put_subject_refs(
        &self,
        regulation: &RequestId,
        created_at: DateTime<Utc>,
        source: Option<&SourceId>,
        digests: &[String],
    ) -> Result<(), LedgerError> {
        let writes: Vec<_> = digests
            .iter()
            .map(|digest| {
                self.put_subject_ref(SubjectRefItem {
                    pk: keys::subject_pk(digest),
                    sk: keys::subject_ref_sk(created_at, regulation),
                    regulation: regulation.clone(),
                    created_at,
                    source: source.cloned(),
                })
            })
            .collect();
        in_flight(writes).await
    }

    async fn remove_subject_refs(
        &self,
        regulation: &RequestId,
        created_at: DateTime<Utc>,
        digests: &[String],
    ) -> Result<(), LedgerError> {
        let sk = keys::subject_ref_sk(created_at, regulation);
        let deletes: Vec<_> = digests
            .iter()
            .map(|digest| {
                let delete = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(keys::subject_pk(digest), sk.clone())));
                async move { delete.send().await.map(|_| ()).map_err(|e| unavailable(&e)) }
            })
            .collect();
        in_flight(deletes).await
    }

    async fn subject_record(
        &self,
        digest: &str,
        suppression_of: Option<(&WorkspaceId, &UserId)>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<SubjectRecord, LedgerError> {
        let (refs, next) = self.subject_refs(digest, limit, cursor).await?;
        // One more read: the regulations and the entries, together.
        let mut wanted: Vec<Item> = refs
            .iter()
            .map(|(id, _)| key(request_pk(id), keys::REQUEST_SK))
            .collect();
        if let Some((workspace, user)) = suppression_of {
            let mut lists: Vec<Option<&SourceId>> = refs.iter().filter_map(|(_, s)| s.as_ref()).map(Some).collect();
            lists.sort();
            lists.dedup();
            lists.insert(0, None);
            for list in lists {
                wanted.push(key(keys::suppression_pk(workspace), keys::entry_sk(list, user)));
            }
        }
        let mut found = Vec::new();
        for chunk in wanted.chunks(BATCH_GET) {
            found.extend(self.batch_get(chunk.to_vec()).await?);
        }
        let mut record = SubjectRecord {
            next,
            ..SubjectRecord::default()
        };
        let mut regulations = Vec::new();
        for item in found {
            let pk = string_attr(&item, "pk").unwrap_or_default();
            match suppression_of {
                Some((workspace, _)) if pk == keys::suppression_pk(workspace) => {
                    let entry = decode_suppression(workspace, item)?;
                    match entry.source {
                        None => record.suppression = Some(entry),
                        Some(_) => record.source_suppressions.push(entry),
                    }
                }
                _ => regulations.push(self.decode_request(&item).await?),
            }
        }
        // Newest first, as the records are (a batch answers in any order).
        regulations.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        record.source_suppressions.sort_by(|a, b| a.source.cmp(&b.source));
        record.regulations = regulations;
        Ok(record)
    }

    async fn set_suppressed(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
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
                    sk: keys::entry_sk(source, id),
                    user_id: id.clone(),
                    source: source.cloned(),
                    suppressed,
                    since,
                    regulation: regulation.clone(),
                    stamp: stamp.clone(),
                    gsi1pk: Some(keys::suppression_listing_pk(workspace)),
                    gsi1sk: Some(keys::suppression_listing_sk(since, id)),
                })
            })
            .collect();
        in_flight(writes).await
    }

    async fn lift_suppressions(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
        regulation: &RequestId,
    ) -> Result<(), LedgerError> {
        let lifts: Vec<_> = ids
            .iter()
            .map(|id| self.lift_one(workspace, source, id, regulation))
            .collect();
        in_flight(lifts).await
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
            let (source, user) = keys::parse_entry_sk(&string_attr(key, "sk")?)?;
            let mut text = serde_json::json!({"t": since, "u": user.as_str()});
            if let Some(source) = source {
                text["s"] = serde_json::json!(source.as_str());
            }
            let text = text.to_string();
            Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text))
        });
        Ok((entries, next))
    }

    async fn suppressions(
        &self,
        workspace: &WorkspaceId,
        source: Option<&SourceId>,
        ids: &[UserId],
    ) -> Result<Vec<Suppression>, LedgerError> {
        let mut wanted: Vec<Item> = Vec::with_capacity(ids.len() * 2);
        for id in ids {
            wanted.push(key(keys::suppression_pk(workspace), keys::suppression_sk(id)));
            if let Some(source) = source {
                wanted.push(key(
                    keys::suppression_pk(workspace),
                    keys::source_suppression_sk(source, id),
                ));
            }
        }
        let mut found = Vec::new();
        for chunk in wanted.chunks(BATCH_GET) {
            for item in self.batch_get(chunk.to_vec()).await? {
                found.push(decode_suppression(workspace, item)?);
            }
        }
        Ok(found)
    }
}
