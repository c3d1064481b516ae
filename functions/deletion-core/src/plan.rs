//! Dry-run plans: the exact prefixes a scope reaches, with what is under
//! them, without deleting anything, so a person can review the blast radius
//! during the grace.

use serde::Serialize;

use crate::datamap::DataMap;
use crate::error::StoreError;
use crate::model::{Counts, Scope};
use crate::ports::{EntryKind, ObjectStore};

/// Listing pages counted per prefix before a plan says "at least".
pub const DEFAULT_PAGE_CAP: u32 = 10;
/// Most prefixes a plan counts, and for about how long: past either, the
/// rest are listed uncounted (`complete: false`), so that a plan of years
/// of a source's days answers within the intake's timeout.
pub const MAX_COUNTED_PREFIXES: usize = 100;
pub const COUNTING_BUDGET: std::time::Duration = std::time::Duration::from_secs(4);

/// One prefix of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedStore {
    pub store: String,
    pub bucket: String,
    pub prefix: String,
    /// What is there now (objects, noncurrent versions, delete markers,
    /// unfinished uploads, bytes); `uploads_aborted` counts open uploads.
    pub found: Counts,
    /// False when the count stopped at the cap: there is at least this much.
    pub complete: bool,
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub prefixes: Vec<PlannedStore>,
    pub totals: Counts,
    pub complete: bool,
}

pub struct Planner<S> {
    store: S,
    map: DataMap,
    page_cap: u32,
}

impl<S: ObjectStore> Planner<S> {
    pub fn new(store: S, map: DataMap) -> Self {
        Planner {
            store,
            map,
            page_cap: DEFAULT_PAGE_CAP,
        }
    }

    pub fn map(&self) -> &DataMap {
        &self.map
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Plans several scopes (an account's workspaces) as one. The first
    /// `MAX_COUNTED_PREFIXES` prefixes reached within `COUNTING_BUDGET` are
    /// counted; the others are listed with nothing counted, not complete.
    pub async fn plan(&self, scopes: &[Scope]) -> Result<Plan, StoreError> {
        let started = std::time::Instant::now();
        let mut prefixes = Vec::new();
        for scope in scopes {
            for p in self.map.expand(scope) {
                let within = prefixes.len() < MAX_COUNTED_PREFIXES && started.elapsed() < COUNTING_BUDGET;
                let (found, complete) = if within {
                    self.count(&p.bucket, &p.prefix).await?
                } else {
                    (Counts::default(), false)
                };
                prefixes.push(PlannedStore {
                    store: p.store,
                    bucket: p.bucket,
                    prefix: p.prefix,
                    found,
                    complete,
                });
            }
        }
        let mut totals = Counts::default();
        for p in &prefixes {
            totals.add(&p.found);
        }
        let complete = prefixes.iter().all(|p| p.complete);
        Ok(Plan {
            prefixes,
            totals,
            complete,
        })
    }

    async fn count(&self, bucket: &str, prefix: &str) -> Result<(Counts, bool), StoreError> {
        let mut counts = Counts::default();
        let mut cursor: Option<String> = None;
        for _ in 0..self.page_cap {
            let page = self.store.list_page(bucket, prefix, cursor.as_deref(), 1000).await?;
            for e in &page.entries {
                match e.kind {
                    EntryKind::Current => counts.objects += 1,
                    EntryKind::Noncurrent => counts.versions += 1,
                    EntryKind::DeleteMarker => counts.delete_markers += 1,
                }
                counts.bytes += e.size;
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        let uploads = self.store.list_uploads(bucket, prefix, None).await?;
        counts.uploads_aborted = uploads.uploads.len() as u64;
        Ok((counts, cursor.is_none() && uploads.next.is_none()))
    }
}
