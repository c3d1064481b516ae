//! A store wrapper that counts the S3 calls the purge makes (for servers
//! without a request counter of their own, such as moto).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use deletion_aws::s3::S3Store;
use deletion_core::ports::{Children, DeleteFailure, Entry, EntryPage, ObjectStore, Upload, UploadPage};
use deletion_core::StoreError;

#[derive(Clone)]
pub struct CountingStore {
    pub inner: S3Store,
    pub calls: Arc<AtomicU64>,
}

impl CountingStore {
    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait::async_trait]
impl ObjectStore for CountingStore {
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.count();
        self.inner.list_page(b, p, c, max).await
    }
    async fn delete_batch(&self, b: &str, e: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        self.count();
        self.inner.delete_batch(b, e).await
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
        self.count();
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
        self.count();
        self.inner.abort_upload(b, u).await
    }
    async fn list_children(&self, b: &str, p: &str, cap: usize) -> Result<Children, StoreError> {
        self.count();
        self.inner.list_children(b, p, cap).await
    }
}
