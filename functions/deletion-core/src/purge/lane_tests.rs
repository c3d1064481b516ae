//! One worker purging several shards side by side (`shards_in_flight`),
//! over the in-memory ports: the lanes really overlap, every object is
//! deleted and counted once, nothing outside is touched, a hand-off at the
//! time limit leaves a worker for each shard handed back, and a hold stops
//! each lane within one page.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use super::tests::{config, due_request, map, world, ARCHIVE};
use super::*;
use crate::ids::WorkspaceId;
use crate::ports::{Children, DeleteFailure, EntryPage, Hold, Upload, UploadPage, Wake};
use crate::testing::{MemoryLedger, MemoryStore};

/// The in-memory store, noting how many DeleteObjects are under way at
/// once (each lets the others run before it answers); a hold is placed at
/// the `hold_at`-th delete, and the deletes begun after it are counted.
#[derive(Clone)]
struct Overlapping {
    inner: MemoryStore,
    running: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
    hold_at: Option<(usize, MemoryLedger)>,
    after_hold: Arc<AtomicUsize>,
    shards_seen: Arc<Mutex<Vec<String>>>,
}

impl Overlapping {
    fn new(inner: MemoryStore, hold_at: Option<(usize, MemoryLedger)>) -> Overlapping {
        Overlapping {
            inner,
            running: Arc::default(),
            most: Arc::default(),
            calls: Arc::default(),
            hold_at,
            after_hold: Arc::default(),
            shards_seen: Arc::default(),
        }
    }

    async fn maybe_hold(&self, n: usize) {
        let Some((at, ledger)) = &self.hold_at else {
            return;
        };
        if n > *at {
            self.after_hold.fetch_add(1, SeqCst);
        }
        if n == *at {
            let hold = Hold {
                workspace: WorkspaceId::parse("acme").unwrap(),
                reason: "litigation".into(),
                placed_by: "ops".into(),
                since: super::tests::t0(),
            };
            ledger.place_hold(&hold).await.unwrap();
        }
    }
}

#[async_trait::async_trait]
impl ObjectStore for Overlapping {
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_page(b, p, c, max).await
    }
    async fn list_every_version(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_every_version(b, p, c, max).await
    }
    async fn delete_batch(&self, bucket: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        let n = self.calls.fetch_add(1, SeqCst) + 1;
        self.maybe_hold(n).await;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        if let Some(first) = entries.first() {
            self.shards_seen.lock().unwrap().push(first.key.clone());
        }
        for _ in 0..8 {
            tokio::task::yield_now().await; // the other lanes run meanwhile
        }
        self.running.fetch_sub(1, SeqCst);
        self.inner.delete_batch(bucket, entries).await
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
        self.inner.abort_upload(b, u).await
    }
    async fn list_children(&self, b: &str, p: &str, cap: usize) -> Result<Children, StoreError> {
        self.inner.list_children(b, p, cap).await
    }
}

/// `acme/` with `sources` sources of `per_source` objects each, and
/// neighbours that must stay.
fn sources(store: &MemoryStore, sources: usize, per_source: usize) {
    for s in 0..sources {
        for n in 0..per_source {
            let key = format!("acme/src-{s:02}/2026-01-01/part-{n}.json.gz");
            store.put(ARCHIVE, &key, b"x").unwrap();
        }
    }
    store
        .put(ARCHIVE, "acme-corp/src-00/2026-01-01/a.json.gz", b"keep")
        .unwrap();
    store.put(ARCHIVE, "acme", b"keep").unwrap();
}

fn lanes(n: u32) -> PurgeConfig {
    PurgeConfig {
        shards_in_flight: n,
        ..config(1)
    }
}

#[tokio::test]
async fn four_lanes_purge_four_shards_at_once_and_count_every_object_once() {
    let (ledger, store, timers, clock) = world();
    sources(&store, 12, 5);
    let request = due_request(&ledger, &clock).await;
    let overlapping = Overlapping::new(store.clone(), None);
    let purger = Purger::new(ledger.clone(), overlapping.clone(), timers, clock, map(), lanes(4));

    let outcome = purger.run(&request.id, "worker-1", false, None).await.unwrap();
    let PurgeOutcome::Completed { receipt } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        overlapping.most.load(SeqCst),
        4,
        "four shards' deletes under way at once"
    );
    assert_eq!(receipt.totals.objects, 12 * 5, "{:?}", receipt.totals);
    let mut left = store.keys(ARCHIVE);
    left.sort();
    assert_eq!(left, ["acme", "acme-corp/src-00/2026-01-01/a.json.gz"]);
    let shards = ledger.shards(&request.id).await.unwrap();
    assert!(shards.iter().all(|s| s.done && s.lease.is_none()), "{shards:?}");
    // Every source's pages went through the deletes the lanes sent (one or more each).
    let seen = overlapping.shards_seen.lock().unwrap().clone();
    assert!(seen.len() >= 12, "{seen:?}");
}

#[tokio::test]
async fn lanes_at_the_time_limit_hand_back_their_shards_and_leave_the_worker_one_successor() {
    let (ledger, store, timers, clock) = world();
    sources(&store, 6, 5);
    let request = due_request(&ledger, &clock).await;
    let purger = Purger::new(
        ledger.clone(),
        store.clone(),
        timers.clone(),
        clock.clone(),
        map(),
        PurgeConfig {
            wake_lead: Duration::seconds(60),
            ..lanes(3)
        },
    );
    let now = tokio::time::Instant::now();
    let outcome = purger.run(&request.id, "worker-1", false, Some(now)).await.unwrap();
    assert_eq!(outcome, PurgeOutcome::HandedOff);
    let handed: Vec<u32> = timers
        .wakes(&request.id)
        .into_iter()
        .filter_map(|(w, _)| match w {
            Wake::HandOff(index) => Some(index),
            _ => None,
        })
        .collect();
    // One successor for the worker (which runs three lanes again), not
    // one per lane: three lanes each starting a worker of three lanes
    // would triple the workers at every time limit.
    assert_eq!(handed.len(), 1, "one hand-off per worker: {handed:?}");
    let shards = ledger.shards(&request.id).await.unwrap();
    assert!(shards.iter().all(|s| !s.done && s.lease.is_none()), "{shards:?}");
    // A worker that continues finishes it, every object counted once.
    let PurgeOutcome::Completed { receipt } = purger.run(&request.id, "worker-2", false, None).await.unwrap() else {
        panic!("the purge should complete");
    };
    assert_eq!(receipt.totals.objects, 6 * 5);
    assert_eq!(store.keys(ARCHIVE).len(), 2);
}

#[tokio::test]
async fn a_hold_stops_every_lane_within_one_page() {
    let (ledger, store, timers, clock) = world();
    // Few sources of many pages (of three): each lane has pages to go.
    sources(&store, 4, 30);
    let request = due_request(&ledger, &clock).await;
    let overlapping = Overlapping::new(store.clone(), Some((6, ledger.clone())));
    let purger = Purger::new(ledger.clone(), overlapping.clone(), timers, clock, map(), lanes(4));

    let outcome = purger.run(&request.id, "worker-1", false, None).await.unwrap();
    assert_eq!(outcome, PurgeOutcome::OnHold);
    let after = overlapping.after_hold.load(SeqCst);
    assert!(
        after <= 4,
        "{after} deletes begun after the hold: more than one per lane"
    );
    assert_eq!(ledger.request(&request.id).unwrap().status, Status::OnHold);
    let shards = ledger.shards(&request.id).await.unwrap();
    assert!(shards.iter().all(|s| s.lease.is_none()), "{shards:?}");
    assert!(store.keys(ARCHIVE).len() > 2 + 4 * 30 - 4 * 3 * 4, "most of it is left");
}
