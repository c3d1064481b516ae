//! The object store on S3.
//!
//! Buckets that ever had versioning are listed with ListObjectVersions and
//! deleted by version id (without one, S3 only adds a delete marker); a
//! bucket that never had versioning is listed with ListObjectsV2.
//!
//! Invariants: a bucket is known as versioned for the life of the process
//! once it answered so (versioning cannot be removed). "Never versioned"
//! is remembered for listings a minute at most, and not past the start of
//! the next purge run (`look_afresh`), else every page would cost a
//! GetBucketVersioning as well (two requests per 1,000 objects instead of
//! one); downloads ask every time. A bucket versioned
//! within that minute is caught by the verification's listing
//! (`list_every_version`), which lists versions whatever the bucket says,
//! so a receipt never rests on a listing of current objects alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, ServerSideEncryption, StorageClass};
use aws_sdk_s3::Client;
use deletion_core::ports::{
    Children, DeleteFailure, Downloaded, Entry, EntryKind, EntryPage, ObjectStore, Upload, UploadPage,
};
use deletion_core::StoreError;
use serde::{Deserialize, Serialize};

use crate::describe;

#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    /// S3's 503 answers this client has seen, retried or not.
    slow_downs: SlowDowns,
    /// Versions (and delete markers) its batch deletes removed.
    deleted: Arc<AtomicU64>,
    /// The buckets known to have (had) versioning. A bucket not in it is
    /// asked again: its versioning may have been enabled since.
    versioned: Arc<Mutex<HashSet<String>>>,
    /// When each bucket last answered "never versioned" (for listings).
    unversioned: Arc<Mutex<HashMap<String, Instant>>>,
    /// How long a listing trusts that answer.
    unversioned_for: StdDuration,
}

/// Counts S3's `503 Slow Down` answers on every attempt, before the SDK
/// retries them: the adaptive retry hides them from the caller until its
/// last attempt, and a purge that heard of none would go on adding load.
#[derive(Debug, Clone, Default)]
struct SlowDowns(Arc<AtomicU64>);

impl Intercept for SlowDowns {
    fn name(&self) -> &'static str {
        "SlowDowns"
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if context.response().status().as_u16() == 503 {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// How long a listing trusts a bucket's "never versioned".
pub const UNVERSIONED_FOR: StdDuration = StdDuration::from_secs(60);

/// Where a listing resumes, as an opaque string for the domain.
#[derive(Serialize, Deserialize)]
#[serde(tag = "t")]
enum Cursor {
    #[serde(rename = "v")]
    Versions { key: String, version: Option<String> },
    #[serde(rename = "o")]
    Objects { token: String },
    #[serde(rename = "u")]
    Uploads { key: String, upload: Option<String> },
    /// The domain's `start_after(key)`: keys after `key`.
    #[serde(skip)]
    After { key: String },
}

/// The attributes of a downloaded object that a rewrite writes back:
/// content headers, storage class, encryption and user metadata.
fn attributes_of(out: &GetObjectOutput) -> BTreeMap<String, String> {
    let mut attributes = BTreeMap::new();
    let mut keep = |name: &str, value: Option<&str>| {
        if let Some(v) = value {
            attributes.insert(name.to_owned(), v.to_owned());
        }
    };
    keep(CONTENT_TYPE, out.content_type());
    keep(CONTENT_ENCODING, out.content_encoding());
    keep(CACHE_CONTROL, out.cache_control());
    keep(CONTENT_DISPOSITION, out.content_disposition());
    keep(STORAGE_CLASS, out.storage_class().map(StorageClass::as_str));
    keep(SSE, out.server_side_encryption().map(ServerSideEncryption::as_str));
    keep(SSE_KMS_KEY, out.ssekms_key_id());
    for (k, v) in out.metadata().into_iter().flatten() {
        attributes.insert(format!("{META}{k}"), v.clone());
    }
    attributes
}

/// Streams an object's body to the file `to`; its size in bytes.
async fn write_body(mut body: ByteStream, to: &Path, bucket: &str, key: &str) -> Result<u64, StoreError> {
    let local = |e: std::io::Error| StoreError::Unavailable(format!("temporary file {}: {e}", to.display()));
    let mut file = std::io::BufWriter::new(std::fs::File::create(to).map_err(local)?);
    let mut size = 0u64;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| StoreError::Unavailable(format!("s3://{bucket}/{key}: reading the body: {e}")))?
    {
        file.write_all(&chunk).map_err(local)?;
        size += chunk.len() as u64;
    }
    file.flush().map_err(local)?;
    Ok(size)
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<Cursor>, StoreError> {
    if let Some(key) = cursor.and_then(deletion_core::ports::parse_start_after) {
        return Ok(Some(Cursor::After { key: key.to_owned() }));
    }
    cursor
        .map(|c| serde_json::from_str(c).map_err(|e| StoreError::Unavailable(format!("bad listing cursor: {e}"))))
        .transpose()
}

fn to_cursor(c: &Cursor) -> String {
    // A plain enum of strings always serializes.
    serde_json::to_string(c).unwrap_or_default()
}

fn map_err<E, R>(bucket: &str, e: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.code() {
        Some("NoSuchBucket") => StoreError::NoSuchBucket(bucket.to_owned()),
        Some("AccessDenied") => StoreError::AccessDenied(bucket.to_owned()),
        // S3's answers to load, after the SDK's own retries.
        Some("SlowDown" | "ServiceUnavailable" | "Throttling" | "RequestLimitExceeded") => {
            StoreError::Throttled(describe(e))
        }
        _ => StoreError::Unavailable(describe(e)),
    }
}

/// The attributes a rewritten object keeps (see `Downloaded::attributes`).
const CONTENT_TYPE: &str = "content-type";
const CONTENT_ENCODING: &str = "content-encoding";
const CACHE_CONTROL: &str = "cache-control";
const CONTENT_DISPOSITION: &str = "content-disposition";
const STORAGE_CLASS: &str = "storage-class";
const SSE: &str = "sse";
const SSE_KMS_KEY: &str = "sse-kms-key-id";
const META: &str = "meta:";

/// A conditional write that found the object changed (or gone) since it
/// was read.
fn is_changed<E: ProvideErrorMetadata>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    matches!(
        e.code(),
        Some("PreconditionFailed" | "ConditionalRequestConflict" | "NoSuchKey")
    ) || e
        .raw_response()
        .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409))
}

impl S3Store {
    pub fn new(client: Client) -> Self {
        let slow_downs = SlowDowns::default();
        let config = client.config().to_builder().interceptor(slow_downs.clone()).build();
        S3Store {
            client: Client::from_conf(config),
            slow_downs,
            deleted: Arc::default(),
            versioned: Arc::default(),
            unversioned: Arc::default(),
            unversioned_for: UNVERSIONED_FOR,
        }
    }

    /// The store, trusting a bucket's "never versioned" for listings as long
    /// as `trust` (zero: asked before every listing).
    pub fn trusting_unversioned_for(mut self, trust: StdDuration) -> Self {
        self.unversioned_for = trust;
        self
    }

    /// Whether a listing of the bucket lists versions: as `ever_versioned`,
    /// but a "never" trusted for `unversioned_for`.
    async fn lists_versions(&self, bucket: &str) -> Result<bool, StoreError> {
        let lock = || self.unversioned.lock().unwrap_or_else(|p| p.into_inner());
        if lock().get(bucket).is_some_and(|at| at.elapsed() < self.unversioned_for) {
            return Ok(false);
        }
        let versioned = self.ever_versioned(bucket).await?;
        if !versioned {
            lock().insert(bucket.to_owned(), Instant::now());
        }
        Ok(versioned)
    }

    /// Whether the bucket has (or had) versioning. Only "yes" is cached:
    /// versioning once enabled can be suspended but never removed, whereas
    /// a bucket never versioned may have it enabled at any moment, so that
    /// answer is asked again every time.
    async fn ever_versioned(&self, bucket: &str) -> Result<bool, StoreError> {
        if self
            .versioned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(bucket)
        {
            return Ok(true);
        }
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| map_err(bucket, &e))?;
        // Enabled or Suspended: versions may exist. Never set: none can.
        let versioned = out.status().is_some();
        if versioned {
            self.versioned
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(bucket.to_owned());
        }
        Ok(versioned)
    }

    /// A page of ListObjectsV2 (current objects only).
    async fn objects_page(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<Cursor>,
        max: i32,
    ) -> Result<EntryPage, StoreError> {
        let (token, start_after) = match cursor {
            Some(Cursor::Objects { token }) => (Some(token), None),
            Some(Cursor::After { key }) => (None, Some(key)),
            _ => (None, None),
        };
        let out = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(max)
            .set_continuation_token(token)
            .set_start_after(start_after)
            .send()
            .await
            .map_err(|e| map_err(bucket, &e))?;
        let entries = out
            .contents()
            .iter()
            .filter_map(|o| {
                Some(Entry {
                    key: o.key()?.to_owned(),
                    version_id: None,
                    kind: EntryKind::Current,
                    size: o.size().unwrap_or(0).max(0) as u64,
                })
            })
            .collect();
        let next = match (out.is_truncated(), out.next_continuation_token()) {
            (Some(true), Some(token)) => Some(to_cursor(&Cursor::Objects {
                token: token.to_owned(),
            })),
            _ => None,
        };
        // A continuation token resumes after a key, whatever was deleted.
        Ok(EntryPage {
            entries,
            next,
            key_ordered: true,
        })
    }

    /// A page of ListObjectVersions: every version (newest first within a
    /// key), then the page's delete markers.
    async fn versions_page(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<Cursor>,
        max: i32,
    ) -> Result<EntryPage, SdkError<ListObjectVersionsError, HttpResponse>> {
        let (key_marker, version_marker) = match cursor {
            Some(Cursor::Versions { key, version }) => (Some(key), version),
            // A key marker alone: the keys after it.
            Some(Cursor::After { key }) => (Some(key), None),
            _ => (None, None),
        };
        let out = self
            .client
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(max)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await?;
        let mut entries: Vec<Entry> = Vec::new();
        for v in out.versions() {
            let Some(key) = v.key() else { continue };
            entries.push(Entry {
                key: key.to_owned(),
                version_id: v.version_id().map(str::to_owned),
                kind: if v.is_latest().unwrap_or(false) {
                    EntryKind::Current
                } else {
                    EntryKind::Noncurrent
                },
                size: v.size().unwrap_or(0).max(0) as u64,
            });
        }
        for m in out.delete_markers() {
            let Some(key) = m.key() else { continue };
            entries.push(Entry {
                key: key.to_owned(),
                version_id: m.version_id().map(str::to_owned),
                kind: EntryKind::DeleteMarker,
                size: 0,
            });
        }
        let next = if out.is_truncated().unwrap_or(false) {
            out.next_key_marker().map(|k| {
                to_cursor(&Cursor::Versions {
                    key: k.to_owned(),
                    version: out.next_version_id_marker().map(str::to_owned),
                })
            })
        } else {
            None
        };
        // A version-id marker may name a version deleted since.
        Ok(EntryPage {
            entries,
            next,
            key_ordered: false,
        })
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        max: i32,
    ) -> Result<EntryPage, StoreError> {
        let cursor = parse_cursor(cursor)?;
        if !self.lists_versions(bucket).await? {
            return self.objects_page(bucket, prefix, cursor, max).await;
        }
        self.versions_page(bucket, prefix, cursor, max)
            .await
            .map_err(|e| map_err(bucket, &e))
    }

    async fn list_every_version(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        max: i32,
    ) -> Result<EntryPage, StoreError> {
        // Whatever the bucket's versioning says now (or said before):
        // ListObjectVersions lists unversioned objects too (version `null`).
        match self.versions_page(bucket, prefix, parse_cursor(cursor)?, max).await {
            Ok(page) => Ok(page),
            // A store without versioning at all (Garage) has no such call.
            Err(e) if e.code() == Some("NotImplemented") => {
                self.objects_page(bucket, prefix, parse_cursor(cursor)?, max).await
            }
            Err(e) => Err(map_err(bucket, &e)),
        }
    }

    async fn delete_batch(&self, bucket: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let objects = entries
            .iter()
            .map(|e| {
                ObjectIdentifier::builder()
                    .key(&e.key)
                    .set_version_id(e.version_id.clone())
                    .build()
                    .map_err(|err| StoreError::Unavailable(describe(&err)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|err| StoreError::Unavailable(describe(&err)))?;
        let out = self
            .client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| map_err(bucket, &e))?;
        let failures: Vec<DeleteFailure> = out
            .errors()
            .iter()
            // A key or version already gone is what we wanted.
            .filter(|e| !matches!(e.code(), Some("NoSuchKey") | Some("NoSuchVersion")))
            .map(|e| DeleteFailure {
                key: e.key().unwrap_or_default().to_owned(),
                version_id: e.version_id().map(str::to_owned),
                code: e.code().unwrap_or("Unknown").to_owned(),
                message: e.message().unwrap_or_default().to_owned(),
            })
            .collect();
        let removed = entries.len().saturating_sub(failures.len()) as u64;
        self.deleted.fetch_add(removed, Ordering::Relaxed);
        Ok(failures)
    }

    async fn list_uploads(&self, bucket: &str, prefix: &str, cursor: Option<&str>) -> Result<UploadPage, StoreError> {
        let (key_marker, upload_marker) = match parse_cursor(cursor)? {
            Some(Cursor::Uploads { key, upload }) => (Some(key), upload),
            _ => (None, None),
        };
        let out = self
            .client
            .list_multipart_uploads()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker)
            .set_upload_id_marker(upload_marker)
            .send()
            .await
            .map_err(|e| map_err(bucket, &e))?;
        let uploads = out
            .uploads()
            .iter()
            .filter_map(|u| {
                Some(Upload {
                    key: u.key()?.to_owned(),
                    upload_id: u.upload_id()?.to_owned(),
                })
            })
            .collect();
        let next = if out.is_truncated().unwrap_or(false) {
            out.next_key_marker().map(|k| {
                to_cursor(&Cursor::Uploads {
                    key: k.to_owned(),
                    upload: out.next_upload_id_marker().map(str::to_owned),
                })
            })
        } else {
            None
        };
        Ok(UploadPage { uploads, next })
    }

    async fn abort_upload(&self, bucket: &str, upload: &Upload) -> Result<(), StoreError> {
        match self
            .client
            .abort_multipart_upload()
            .bucket(bucket)
            .key(&upload.key)
            .upload_id(&upload.upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NoSuchUpload") => Ok(()),
            Err(e) => Err(map_err(bucket, &e)),
        }
    }

    async fn download(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        to: &Path,
    ) -> Result<Option<Downloaded>, StoreError> {
        let versioned = self.ever_versioned(bucket).await?;
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_owned))
            .send()
            .await
        {
            Ok(out) => out,
            // Gone, or (asked by version) a delete marker.
            Err(e) if matches!(e.code(), Some("NoSuchKey" | "NoSuchVersion" | "MethodNotAllowed")) => return Ok(None),
            // A 404 that names no key (S3 names it `NotFound`); one that
            // names the bucket is no object gone but a bucket missing.
            Err(e)
                if e.code() != Some("NoSuchBucket") && e.raw_response().is_some_and(|r| r.status().as_u16() == 404) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(map_err(bucket, &e)),
        };
        let etag = out
            .e_tag()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Unavailable(format!("s3://{bucket}/{key}: GetObject answered no ETag")))?;
        let attributes = attributes_of(&out);
        // Only a versioned bucket's version ids may be deleted by id.
        let version_id = if versioned {
            out.version_id().map(str::to_owned)
        } else {
            None
        };
        let size = write_body(out.body, to, bucket, key).await?;
        Ok(Some(Downloaded {
            etag,
            version_id,
            size,
            attributes,
        }))
    }

    async fn replace_if_match(
        &self,
        bucket: &str,
        key: &str,
        from: &Path,
        read: &Downloaded,
    ) -> Result<Option<String>, StoreError> {
        let body = ByteStream::from_path(from)
            .await
            .map_err(|e| StoreError::Unavailable(format!("temporary file {}: {e}", from.display())))?;
        let attr = |name: &str| read.attributes.get(name).cloned();
        let metadata: HashMap<String, String> = read
            .attributes
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(META).map(|k| (k.to_owned(), v.clone())))
            .collect();
        let result = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            // Never over a concurrent writer's version: S3 answers 412.
            .if_match(&read.etag)
            .body(body)
            .set_content_type(attr(CONTENT_TYPE))
            .set_content_encoding(attr(CONTENT_ENCODING))
            .set_cache_control(attr(CACHE_CONTROL))
            .set_content_disposition(attr(CONTENT_DISPOSITION))
            .set_storage_class(attr(STORAGE_CLASS).map(|s| StorageClass::from(s.as_str())))
            .set_server_side_encryption(attr(SSE).map(|s| ServerSideEncryption::from(s.as_str())))
            .set_ssekms_key_id(attr(SSE_KMS_KEY))
            .set_metadata((!metadata.is_empty()).then_some(metadata))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.version_id().map(str::to_owned)),
            Err(e) if is_changed(&e) => Err(StoreError::Changed {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            }),
            Err(e) => Err(map_err(bucket, &e)),
        }
    }

    fn look_afresh(&self) {
        self.unversioned.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn slow_downs(&self) -> u64 {
        self.slow_downs.0.load(Ordering::Relaxed)
    }

    fn deleted(&self) -> u64 {
        self.deleted.load(Ordering::Relaxed)
    }

    async fn list_children(&self, bucket: &str, prefix: &str, cap: usize) -> Result<Children, StoreError> {
        let mut children = Children::default();
        let versioned = self.lists_versions(bucket).await?;
        let (mut token, mut key_marker, mut version_marker) = (None, None, None);
        loop {
            // In a versioned bucket a sub-prefix may hold only noncurrent
            // versions or markers: list versions, not current objects.
            let (prefixes, direct, truncated) = if versioned {
                let out = self
                    .client
                    .list_object_versions()
                    .bucket(bucket)
                    .prefix(prefix)
                    .delimiter("/")
                    .set_key_marker(key_marker.take())
                    .set_version_id_marker(version_marker.take())
                    .send()
                    .await
                    .map_err(|e| map_err(bucket, &e))?;
                key_marker = out.next_key_marker().map(str::to_owned);
                version_marker = out.next_version_id_marker().map(str::to_owned);
                let prefixes: Vec<String> = out
                    .common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned))
                    .collect();
                let direct = !out.versions().is_empty() || !out.delete_markers().is_empty();
                (prefixes, direct, out.is_truncated().unwrap_or(false))
            } else {
                let out = self
                    .client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .delimiter("/")
                    .set_continuation_token(token.take())
                    .send()
                    .await
                    .map_err(|e| map_err(bucket, &e))?;
                token = out.next_continuation_token().map(str::to_owned);
                let prefixes: Vec<String> = out
                    .common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned))
                    .collect();
                (
                    prefixes,
                    !out.contents().is_empty(),
                    out.is_truncated().unwrap_or(false),
                )
            };
            children.prefixes.extend(prefixes);
            children.direct_entries |= direct;
            if children.prefixes.len() > cap {
                children.prefixes.truncate(cap);
                children.truncated = true;
                break;
            }
            if !truncated {
                break;
            }
        }
        Ok(children)
    }
}

#[cfg(test)]
mod tests;
