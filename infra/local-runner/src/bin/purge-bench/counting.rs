//! A store wrapper that counts the S3 calls the purge makes, per
//! operation (for servers without a request counter of their own, such as
//! moto, and to say where a purge's requests go).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use deletion_aws::s3::S3Store;
use deletion_core::ports::{Children, DeleteFailure, Entry, EntryPage, ObjectStore, Upload, UploadPage};
use deletion_core::StoreError;

#[derive(Clone)]
pub struct CountingStore {
    pub inner: S3Store,
    pub calls: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl CountingStore {
    pub fn new(inner: S3Store) -> CountingStore {
        CountingStore {
            inner,
            calls: Arc::default(),
        }
    }

    fn count(&self, op: &'static str) {
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(op).or_default() += 1;
        }
    }

    /// The calls so far, per operation.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl ObjectStore for CountingStore {
    fn look_afresh(&self) {
        self.inner.look_afresh();
    }
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.count(if c.is_some() {
            "list (from a cursor)"
        } else {
            "list (from the start)"
        });
        self.inner.list_page(b, p, c, max).await
    }
    async fn delete_batch(&self, b: &str, e: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        self.count("delete");
        self.inner.delete_batch(b, e).await
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
        self.count("list uploads");
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
        self.count("abort upload");
        self.inner.abort_upload(b, u).await
    }
    async fn list_children(&self, b: &str, p: &str, cap: usize) -> Result<Children, StoreError> {
        self.count("list children");
        self.inner.list_children(b, p, cap).await
    }
}
