//! The object store in memory, with S3's semantics as the S3 adapter
//! (`deletion-aws/src/s3.rs`) relies on them:
//!
//! - A bucket is never versioned, versioned, or suspended (versioning
//!   cannot be removed once enabled). A write to a never-versioned bucket
//!   replaces the object; to a versioned one adds a version (ids `v…`,
//!   increasing); to a suspended one replaces the `null` version.
//! - A delete by version id removes that version (or marker); without one
//!   it removes the object of a never-versioned bucket, adds a delete
//!   marker in a versioned one, and replaces the `null` version with a
//!   `null` marker in a suspended one. Deleting what is gone succeeds.
//! - `list_page` lists current objects only (no version ids) in a bucket
//!   never versioned, as ListObjectsV2, else every version newest first
//!   within a key then the page's delete markers, as ListObjectVersions
//!   (an object written before versioning has version id `null`).
//!   `list_every_version` always lists versions. Keys in byte order; a
//!   page has a cursor only if more follows; a cursor resumes after the
//!   last entry it names (after its key if that version is gone).
//! - Uploads list 1,000 a page by key then upload id; aborting one that
//!   is gone succeeds. `list_children` groups keys by the next `/`.
//! - ETags are the content's digest; `replace_if_match` writes only while
//!   the current version's ETag is the one read (else `Changed`).
//! - A missing bucket is `NoSuchBucket`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{lock, Faults};
use crate::error::StoreError;
use crate::ports::{Children, DeleteFailure, Downloaded, Entry, EntryKind, EntryPage, ObjectStore, Upload, UploadPage};

/// The store's operations, to plan faults on and count calls of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreOp {
    ListPage,
    ListEveryVersion,
    DeleteBatch,
    ListUploads,
    AbortUpload,
    ListChildren,
    Download,
    Replace,
}

/// The id S3 gives a version written without versioning.
const NULL: &str = "null";
/// Uploads per ListMultipartUploads page (S3's default).
const UPLOAD_PAGE: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Versioning {
    Never,
    Enabled,
    Suspended,
}

/// One version of a key, or a delete marker.
#[derive(Debug, Clone)]
struct Version {
    id: String,
    marker: bool,
    body: Vec<u8>,
    etag: String,
    attributes: BTreeMap<String, String>,
}

struct Bucket {
    versioning: Versioning,
    /// Each key's versions, newest first.
    keys: BTreeMap<String, Vec<Version>>,
    uploads: BTreeSet<(String, String)>,
}

#[derive(Default)]
struct State {
    buckets: BTreeMap<String, Bucket>,
    /// Numbers version and upload ids.
    next_id: u64,
    faults: Faults<StoreOp, StoreError>,
    /// Keys under these prefixes a DeleteObjects refuses, with the code.
    refuse: Vec<(String, String, String)>,
}

/// The object store in memory (see the module's invariants). Clones share it.
#[derive(Clone, Default)]
pub struct MemoryStore(Arc<Mutex<State>>);

fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

fn no_bucket(bucket: &str) -> StoreError {
    StoreError::NoSuchBucket(bucket.to_owned())
}

/// Where a listing resumes: after this key (and version, if named).
#[derive(serde::Serialize, serde::Deserialize)]
struct Cursor {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

fn to_cursor(key: &str, version: Option<&str>) -> String {
    let c = Cursor {
        key: key.to_owned(),
        version: version.map(str::to_owned),
    };
    serde_json::to_string(&c).unwrap_or_default()
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<Cursor>, StoreError> {
    if let Some(key) = cursor.and_then(crate::ports::parse_start_after) {
        return Ok(Some(Cursor {
            key: key.to_owned(),
            version: None,
        }));
    }
    cursor
        .map(|c| serde_json::from_str(c).map_err(|e| StoreError::Unavailable(format!("bad listing cursor: {e}"))))
        .transpose()
}

impl State {
    fn bucket(&self, name: &str) -> Result<&Bucket, StoreError> {
        self.buckets.get(name).ok_or_else(|| no_bucket(name))
    }

    fn bucket_mut(&mut self, name: &str) -> Result<&mut Bucket, StoreError> {
        self.buckets.get_mut(name).ok_or_else(|| no_bucket(name))
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:08}", self.next_id)
    }

    /// Writes a new current version (or marker) of `key`; its version id
    /// if the bucket is versioned.
    fn write(&mut self, bucket: &str, key: &str, mut version: Version) -> Result<Option<String>, StoreError> {
        let versioning = self.bucket(bucket)?.versioning;
        version.id = match versioning {
            Versioning::Enabled => self.new_id("v"),
            Versioning::Never | Versioning::Suspended => NULL.to_owned(),
        };
        let id = version.id.clone();
        let versions = self.bucket_mut(bucket)?.keys.entry(key.to_owned()).or_default();
        if versioning != Versioning::Enabled {
            versions.retain(|v| v.id != NULL);
        }
        versions.insert(0, version);
        Ok((versioning == Versioning::Enabled).then_some(id))
    }

    /// A DeleteObjects entry: by version, or a plain delete.
    fn delete(&mut self, bucket: &str, entry: &Entry) -> Result<(), StoreError> {
        let versioning = self.bucket(bucket)?.versioning;
        match (&entry.version_id, versioning) {
            (Some(id), _) => self.remove_version(bucket, &entry.key, id),
            (None, Versioning::Never) => {
                self.bucket_mut(bucket)?.keys.remove(&entry.key);
                Ok(())
            }
            (None, _) => {
                let marker = Version {
                    id: String::new(),
                    marker: true,
                    body: Vec::new(),
                    etag: String::new(),
                    attributes: BTreeMap::new(),
                };
                self.write(bucket, &entry.key, marker).map(|_| ())
            }
        }
    }

    fn remove_version(&mut self, bucket: &str, key: &str, id: &str) -> Result<(), StoreError> {
        let b = self.bucket_mut(bucket)?;
        if let Some(versions) = b.keys.get_mut(key) {
            versions.retain(|v| v.id != id);
            if versions.is_empty() {
                b.keys.remove(key);
            }
        }
        Ok(())
    }

    fn refusal(&self, entry: &Entry) -> Option<DeleteFailure> {
        let (_, code, message) = self.refuse.iter().find(|(p, _, _)| entry.key.starts_with(p.as_str()))?;
        Some(DeleteFailure {
            key: entry.key.clone(),
            version_id: entry.version_id.clone(),
            code: code.clone(),
            message: message.clone(),
        })
    }
}

/// A bucket's entries under `prefix` in listing order: current objects
/// only (`versions` false), or every version and marker.
fn entries_of(bucket: &Bucket, prefix: &str, versions: bool) -> Vec<(Entry, String)> {
    let mut all = Vec::new();
    for (key, list) in bucket.keys.range(prefix.to_owned()..) {
        if !key.starts_with(prefix) {
            break;
        }
        for (i, v) in list.iter().enumerate() {
            let kind = match (v.marker, i) {
                (true, _) => EntryKind::DeleteMarker,
                (false, 0) => EntryKind::Current,
                (false, _) => EntryKind::Noncurrent,
            };
            if !versions && kind != EntryKind::Current {
                continue;
            }
            let entry = Entry {
                key: key.clone(),
                version_id: versions.then(|| v.id.clone()),
                kind,
                size: v.body.len() as u64,
            };
            all.push((entry, v.id.clone()));
        }
    }
    all
}

/// One page of `all` after `cursor`: versions first, then the page's
/// markers (as the adapter reads a ListObjectVersions answer).
fn page(all: Vec<(Entry, String)>, cursor: Option<Cursor>, max: i32) -> EntryPage {
    let start = match &cursor {
        None => 0,
        Some(c) => {
            let exact = c
                .version
                .as_ref()
                .and_then(|v| all.iter().position(|(e, id)| e.key == c.key && id == v).map(|i| i + 1));
            exact.unwrap_or_else(|| all.iter().position(|(e, _)| e.key > c.key).unwrap_or(all.len()))
        }
    };
    let max = max.clamp(1, 1000) as usize;
    let rest = &all[start.min(all.len())..];
    let taken: Vec<(Entry, String)> = rest.iter().take(max).cloned().collect();
    let next = match taken.last() {
        Some((e, id)) if rest.len() > max => Some(to_cursor(&e.key, e.version_id.as_ref().map(|_| id.as_str()))),
        _ => None,
    };
    let (markers, versions): (Vec<Entry>, Vec<Entry>) = taken
        .into_iter()
        .map(|(e, _)| e)
        .partition(|e| e.kind == EntryKind::DeleteMarker);
    EntryPage {
        entries: versions.into_iter().chain(markers).collect(),
        next,
        // As moto's version markers: an end after a cursor is confirmed.
        key_ordered: false,
    }
}

/// Setting up a store and looking into it, for tests.
impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.0)
    }

    fn call(&self, op: StoreOp) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        let mut state = self.state();
        state.faults.call(op)?;
        Ok(state)
    }

    /// The next `times` calls of `op` fail with `error()`.
    pub fn fail(&self, op: StoreOp, times: usize, error: impl Fn() -> StoreError + Send + Sync + 'static) {
        self.fail_after(op, 0, times, error);
    }

    /// After `skip` calls of `op` succeed, the next `times` fail.
    pub fn fail_after(
        &self,
        op: StoreOp,
        skip: usize,
        times: usize,
        error: impl Fn() -> StoreError + Send + Sync + 'static,
    ) {
        self.state().faults.plan(op, skip, times, Arc::new(error));
    }

    /// DeleteObjects refuses every key under `prefix` with `code`.
    pub fn refuse_deletes_under(&self, prefix: &str, code: &str, message: &str) {
        let rule = (prefix.to_owned(), code.to_owned(), message.to_owned());
        self.state().refuse.push(rule);
    }

    /// DeleteObjects refuses no key any more.
    pub fn clear_refusals(&self) {
        self.state().refuse.clear();
    }

    pub fn calls(&self, op: StoreOp) -> usize {
        self.state().faults.calls(op)
    }

    /// Creates an empty bucket, versioned or never versioned.
    pub fn create_bucket(&self, name: &str, versioned: bool) {
        let bucket = Bucket {
            versioning: if versioned {
                Versioning::Enabled
            } else {
                Versioning::Never
            },
            keys: BTreeMap::new(),
            uploads: BTreeSet::new(),
        };
        self.state().buckets.insert(name.to_owned(), bucket);
    }

    /// Turns versioning on (again, after a suspension).
    pub fn enable_versioning(&self, bucket: &str) -> Result<(), StoreError> {
        self.state().bucket_mut(bucket)?.versioning = Versioning::Enabled;
        Ok(())
    }

    /// Suspends versioning (it is never removed).
    pub fn suspend_versioning(&self, bucket: &str) -> Result<(), StoreError> {
        let mut s = self.state();
        let b = s.bucket_mut(bucket)?;
        if b.versioning == Versioning::Enabled {
            b.versioning = Versioning::Suspended;
        }
        Ok(())
    }

    /// A PutObject; the new version's id in a versioned bucket.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) -> Result<Option<String>, StoreError> {
        self.put_with(bucket, key, body, BTreeMap::new())
    }

    /// A PutObject with attributes (content type, metadata: see `Downloaded`).
    pub fn put_with(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        attributes: BTreeMap<String, String>,
    ) -> Result<Option<String>, StoreError> {
        let version = Version {
            id: String::new(),
            marker: false,
            body: body.to_vec(),
            etag: etag(body),
            attributes,
        };
        self.state().write(bucket, key, version)
    }

    /// A plain DeleteObject (a delete marker in a versioned bucket).
    pub fn delete(&self, bucket: &str, key: &str) -> Result<(), StoreError> {
        let entry = Entry {
            key: key.to_owned(),
            version_id: None,
            kind: EntryKind::Current,
            size: 0,
        };
        self.state().delete(bucket, &entry)
    }

    /// Starts a multipart upload; its id.
    pub fn start_upload(&self, bucket: &str, key: &str) -> Result<String, StoreError> {
        let mut s = self.state();
        let id = s.new_id("u");
        s.bucket_mut(bucket)?.uploads.insert((key.to_owned(), id.clone()));
        Ok(id)
    }

    /// Every version and marker of a bucket (listing order), and its open uploads.
    pub fn contents(&self, bucket: &str) -> (Vec<Entry>, Vec<Upload>) {
        let s = self.state();
        let Ok(b) = s.bucket(bucket) else {
            return Default::default();
        };
        let entries = entries_of(b, "", true).into_iter().map(|(e, _)| e).collect();
        let uploads = b
            .uploads
            .iter()
            .map(|(key, upload_id)| Upload {
                key: key.clone(),
                upload_id: upload_id.clone(),
            })
            .collect();
        (entries, uploads)
    }

    /// The keys of a bucket with any version or marker.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let s = self.state();
        s.bucket(bucket)
            .map(|b| b.keys.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The current content of a key, if it has one (not a marker).
    pub fn body(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let s = self.state();
        let current = s.bucket(bucket).ok()?.keys.get(key)?.first()?;
        (!current.marker).then(|| current.body.clone())
    }

    /// Whether no bucket holds any version, marker or upload.
    pub fn is_empty(&self) -> bool {
        let s = self.state();
        s.buckets.values().all(|b| b.keys.is_empty() && b.uploads.is_empty())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        max: i32,
    ) -> Result<EntryPage, StoreError> {
        let s = self.call(StoreOp::ListPage)?;
        let b = s.bucket(bucket)?;
        let versions = b.versioning != Versioning::Never;
        Ok(page(entries_of(b, prefix, versions), parse_cursor(cursor)?, max))
    }

    async fn list_every_version(
        &self,
        bucket: &str,
        prefix: &str,
        cursor: Option<&str>,
        max: i32,
    ) -> Result<EntryPage, StoreError> {
        let s = self.call(StoreOp::ListEveryVersion)?;
        let b = s.bucket(bucket)?;
        Ok(page(entries_of(b, prefix, true), parse_cursor(cursor)?, max))
    }

    async fn delete_batch(&self, bucket: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        let mut s = self.call(StoreOp::DeleteBatch)?;
        s.bucket(bucket)?;
        if entries.len() > 1000 {
            return Err(StoreError::Unavailable("MalformedXML: more than 1,000 keys".into()));
        }
        let mut failures = Vec::new();
        for entry in entries {
            match s.refusal(entry) {
                Some(failure) => failures.push(failure),
                None => s.delete(bucket, entry)?,
            }
        }
        Ok(failures)
    }

    async fn list_uploads(&self, bucket: &str, prefix: &str, cursor: Option<&str>) -> Result<UploadPage, StoreError> {
        let s = self.call(StoreOp::ListUploads)?;
        let after = parse_cursor(cursor)?.map(|c| (c.key, c.version.unwrap_or_default()));
        let all: Vec<&(String, String)> = s
            .bucket(bucket)?
            .uploads
            .iter()
            .filter(|(key, _)| key.starts_with(prefix))
            .filter(|u| after.as_ref().is_none_or(|a| *u > a))
            .collect();
        let uploads: Vec<Upload> = all
            .iter()
            .take(UPLOAD_PAGE)
            .map(|(key, upload_id)| Upload {
                key: key.clone(),
                upload_id: upload_id.clone(),
            })
            .collect();
        let next = match uploads.last() {
            Some(last) if all.len() > UPLOAD_PAGE => Some(to_cursor(&last.key, Some(&last.upload_id))),
            _ => None,
        };
        Ok(UploadPage { uploads, next })
    }

    async fn abort_upload(&self, bucket: &str, upload: &Upload) -> Result<(), StoreError> {
        let mut s = self.call(StoreOp::AbortUpload)?;
        let pair = (upload.key.clone(), upload.upload_id.clone());
        s.bucket_mut(bucket)?.uploads.remove(&pair);
        Ok(())
    }

    async fn list_children(&self, bucket: &str, prefix: &str, cap: usize) -> Result<Children, StoreError> {
        let s = self.call(StoreOp::ListChildren)?;
        let b = s.bucket(bucket)?;
        let mut children = Children::default();
        for key in b.keys.keys().filter(|k| k.starts_with(prefix)) {
            match key[prefix.len()..].find('/') {
                Some(i) => {
                    let sub = key[..prefix.len() + i + 1].to_owned();
                    if children.prefixes.last() != Some(&sub) {
                        children.prefixes.push(sub);
                    }
                }
                None => children.direct_entries = true,
            }
        }
        if children.prefixes.len() > cap {
            children.prefixes.truncate(cap);
            children.truncated = true;
        }
        Ok(children)
    }

    async fn download(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        to: &Path,
    ) -> Result<Option<Downloaded>, StoreError> {
        let s = self.call(StoreOp::Download)?;
        let b = s.bucket(bucket)?;
        let versions = b.keys.get(key).map(Vec::as_slice).unwrap_or_default();
        let found = match version_id {
            Some(id) => versions.iter().find(|v| v.id == id),
            None => versions.first(),
        };
        let Some(v) = found.filter(|v| !v.marker) else {
            return Ok(None);
        };
        std::fs::write(to, &v.body)
            .map_err(|e| StoreError::Unavailable(format!("temporary file {}: {e}", to.display())))?;
        Ok(Some(Downloaded {
            etag: v.etag.clone(),
            version_id: (b.versioning != Versioning::Never).then(|| v.id.clone()),
            size: v.body.len() as u64,
            attributes: v.attributes.clone(),
        }))
    }

    async fn replace_if_match(
        &self,
        bucket: &str,
        key: &str,
        from: &Path,
        read: &Downloaded,
    ) -> Result<Option<String>, StoreError> {
        let mut s = self.call(StoreOp::Replace)?;
        let current = s.bucket(bucket)?.keys.get(key).and_then(|v| v.first());
        if current.is_none_or(|v| v.marker || v.etag != read.etag) {
            return Err(StoreError::Changed {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        }
        let body = std::fs::read(from)
            .map_err(|e| StoreError::Unavailable(format!("temporary file {}: {e}", from.display())))?;
        let version = Version {
            id: String::new(),
            marker: false,
            etag: etag(&body),
            body,
            attributes: read.attributes.clone(),
        };
        s.write(bucket, key, version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, version_id: Option<&str>) -> Entry {
        Entry {
            key: key.to_owned(),
            version_id: version_id.map(str::to_owned),
            kind: EntryKind::Current,
            size: 0,
        }
    }

    #[tokio::test]
    async fn versions_markers_and_deletes_behave_as_in_s3() {
        let store = MemoryStore::new();
        store.create_bucket("b", true);
        let v1 = store.put("b", "a/k", b"1").unwrap();
        let v2 = store.put("b", "a/k", b"22").unwrap();
        store.delete("b", "a/k").unwrap();
        let page = store.list_page("b", "a/", None, 10).await.unwrap();
        let kinds: Vec<(EntryKind, Option<String>)> =
            page.entries.iter().map(|e| (e.kind, e.version_id.clone())).collect();
        assert_eq!(
            kinds[..2],
            [(EntryKind::Noncurrent, v2.clone()), (EntryKind::Noncurrent, v1.clone())]
        );
        assert_eq!(kinds[2].0, EntryKind::DeleteMarker, "markers after the versions");
        assert_eq!(store.body("b", "a/k"), None, "a marker hides the object");
        // Deleting the marker by id brings the newest version back.
        let marker = kinds[2].1.clone();
        let failures = store
            .delete_batch("b", &[entry("a/k", marker.as_deref())])
            .await
            .unwrap();
        assert!(failures.is_empty());
        assert_eq!(store.body("b", "a/k"), Some(b"22".to_vec()));
        // A version already gone is deleted again without complaint.
        let again = [entry("a/k", v2.as_deref()), entry("a/k", v2.as_deref())];
        assert!(store.delete_batch("b", &again).await.unwrap().is_empty());
        assert_eq!(store.body("b", "a/k"), Some(b"1".to_vec()));
    }

    #[tokio::test]
    async fn an_unversioned_bucket_lists_objects_and_pages_by_key() {
        let store = MemoryStore::new();
        store.create_bucket("b", false);
        for key in ["p/1", "p/2", "p/3", "q/1"] {
            store.put("b", key, b"x").unwrap();
        }
        let first = store.list_page("b", "p/", None, 2).await.unwrap();
        assert!(first.entries.iter().all(|e| e.version_id.is_none()));
        let rest = store.list_page("b", "p/", first.next.as_deref(), 2).await.unwrap();
        let keys: Vec<&str> = first
            .entries
            .iter()
            .chain(&rest.entries)
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(keys, ["p/1", "p/2", "p/3"]);
        assert_eq!(rest.next, None, "no cursor when nothing follows");
        let every = store.list_every_version("b", "p/1", None, 10).await.unwrap();
        assert_eq!(every.entries[0].version_id.as_deref(), Some("null"));
        assert!(matches!(
            store.list_page("nope", "", None, 1).await,
            Err(StoreError::NoSuchBucket(_))
        ));
    }

    #[tokio::test]
    async fn a_replace_lands_only_over_the_version_read() {
        let store = MemoryStore::new();
        store.create_bucket("b", true);
        store.put("b", "k", b"first").unwrap();
        let dir = std::env::temp_dir().join(format!("memory-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (read_to, write_from) = (dir.join("read"), dir.join("write"));
        let read = store.download("b", "k", None, &read_to).await.unwrap().unwrap();
        assert_eq!(std::fs::read(&read_to).unwrap(), b"first");
        std::fs::write(&write_from, b"rewritten").unwrap();
        store.put("b", "k", b"a concurrent writer").unwrap();
        let lost = store.replace_if_match("b", "k", &write_from, &read).await;
        assert!(matches!(lost, Err(StoreError::Changed { .. })), "{lost:?}");
        let read = store.download("b", "k", None, &read_to).await.unwrap().unwrap();
        assert!(store
            .replace_if_match("b", "k", &write_from, &read)
            .await
            .unwrap()
            .is_some());
        assert_eq!(store.body("b", "k"), Some(b"rewritten".to_vec()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
