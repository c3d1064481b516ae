//! The purge over the in-memory ports: a lease that runs out mid-page and
//! a whole purge, in milliseconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use super::*;
use crate::ids::WorkspaceId;
use crate::lifecycle::Periods;
use crate::model::{Progress, Scope};
use crate::ports::{Children, DeleteFailure, EntryPage, Hold, ManualClock, Upload, UploadPage, Wake};
use crate::testing::{MemoryLedger, MemoryStore, MemoryTimers};

pub(super) const ARCHIVE: &str = "cdp-archive";
pub(super) const EXPORTS: &str = "cdp-exports";

pub(super) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-02-01T08:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(super) fn map() -> DataMap {
    DataMap::from_json(
        r#"{"stores": [
            {"name": "archive", "bucket": "cdp-archive", "layout": "{workspace}/{source}/{day}/"},
            {"name": "exports", "bucket": "cdp-exports", "layout": "exports/{workspace}/"}
        ]}"#,
    )
    .unwrap()
}

pub(super) fn config(workers: u32) -> PurgeConfig {
    PurgeConfig {
        page_size: 3,
        deletes_in_flight: 1,
        workers,
        retry_backoff: StdDuration::ZERO,
        ..PurgeConfig::default()
    }
}

/// Empty in-memory ports at `t0`: the archive (versioned) and the exports
/// buckets.
pub(super) fn world() -> (MemoryLedger, MemoryStore, MemoryTimers, ManualClock) {
    let store = MemoryStore::new();
    store.create_bucket(ARCHIVE, true);
    store.create_bucket(EXPORTS, false);
    (MemoryLedger::new(), store, MemoryTimers::new(), ManualClock::new(t0()))
}

/// A workspace request for `acme` whose grace ended a day ago.
pub(super) async fn due_request(ledger: &MemoryLedger, clock: &ManualClock) -> DeletionRequest {
    let scope = Scope::Workspace {
        workspace: WorkspaceId::parse("acme").unwrap(),
    };
    let request = DeletionRequest::new(scope, "ann", None, t0(), Periods::default());
    ledger.insert(&request, None).await.unwrap();
    clock.set(request.grace_ends_at + Duration::days(1));
    request
}

/// What a hooked store does before its `n`-th DeleteObjects (from 1).
#[async_trait]
trait BeforeDelete: Send + Sync {
    async fn before_delete(&self, n: usize);
}

/// The in-memory store with a hook before each DeleteObjects.
struct Hooked<H> {
    inner: MemoryStore,
    hook: H,
    deletes: AtomicUsize,
}

impl<H> Hooked<H> {
    fn new(inner: MemoryStore, hook: H) -> Self {
        Hooked {
            inner,
            hook,
            deletes: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl<H: BeforeDelete> ObjectStore for Hooked<H> {
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_page(b, p, c, max).await
    }
    async fn list_every_version(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_every_version(b, p, c, max).await
    }
    async fn delete_batch(&self, bucket: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        let n = self.deletes.fetch_add(1, Ordering::SeqCst) + 1;
        self.hook.before_delete(n).await;
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

/// The first DeleteObjects stops its worker mid-page: the clock moves on
/// by `by` (past the worker's lease), the test hears `arrived`, and the
/// delete goes on only at `go_on`.
struct StopsMidPage {
    clock: ManualClock,
    by: Duration,
    arrived: Arc<Notify>,
    go_on: Arc<Notify>,
}

#[async_trait]
impl BeforeDelete for StopsMidPage {
    async fn before_delete(&self, n: usize) {
        if n == 1 {
            self.clock.advance(self.by);
            self.arrived.notify_one();
            self.go_on.notified().await;
        }
    }
}

/// `acme`'s archive, versioned: four keys of two versions each, a key
/// deleted over one version, an open upload (objects 4, versions 5,
/// markers 1, uploads 1, 10 entries); and neighbours that must stay.
fn archive(store: &MemoryStore) -> Vec<(String, usize)> {
    store.create_bucket(ARCHIVE, true);
    for n in 1..=4 {
        let key = format!("acme/web/2026-01-0{n}/part-0.json.gz");
        store.put(ARCHIVE, &key, b"old").unwrap();
        store.put(ARCHIVE, &key, b"newer").unwrap();
    }
    store.put(ARCHIVE, "acme/web/2026-01-05/gone.json.gz", b"x").unwrap();
    store.delete(ARCHIVE, "acme/web/2026-01-05/gone.json.gz").unwrap();
    store.start_upload(ARCHIVE, "acme/ios/2026-01-01/big.bin").unwrap();
    let outside = [
        "acme-corp/web/2026-01-01/a.json.gz",
        "acmeweb/web/2026-01-01/b.json.gz",
        "acme",
    ];
    for key in outside {
        store.put(ARCHIVE, key, b"keep").unwrap();
    }
    store.start_upload(ARCHIVE, "acme-corp/web/2026-01-02/big.bin").unwrap();
    outside.iter().map(|k| (k.to_string(), 1)).collect()
}

/// Nothing under `acme/` of the archive is left; everything outside it
/// (and `acme-corp/`'s upload) is untouched.
fn only_outside_left(store: &MemoryStore, outside: &[(String, usize)]) {
    let (entries, uploads) = store.contents(ARCHIVE);
    let left: Vec<(String, usize)> = outside
        .iter()
        .map(|(k, _)| (k.clone(), entries.iter().filter(|e| &e.key == k).count()))
        .collect();
    assert_eq!(left, outside);
    assert_eq!(entries.len(), outside.len(), "{entries:?}");
    assert_eq!(uploads.len(), 1);
    assert!(uploads[0].key.starts_with("acme-corp/"));
}

#[tokio::test]
async fn a_lease_that_runs_out_mid_page_hands_the_shard_over_and_nothing_outside_is_deleted() {
    let (ledger, store, timers) = (MemoryLedger::new(), MemoryStore::new(), MemoryTimers::new());
    let clock = ManualClock::new(t0());
    store.create_bucket(EXPORTS, false);
    let outside = archive(&store);
    let request = due_request(&ledger, &clock).await;
    let (arrived, go_on) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let stopping = Hooked::new(
        store.clone(),
        StopsMidPage {
            clock: clock.clone(),
            by: config(1).lease + Duration::minutes(1),
            arrived: arrived.clone(),
            go_on: go_on.clone(),
        },
    );
    let a = Purger::new(
        ledger.clone(),
        stopping,
        timers.clone(),
        clock.clone(),
        map(),
        config(1),
    );
    let b = Purger::new(
        ledger.clone(),
        store.clone(),
        timers.clone(),
        clock.clone(),
        map(),
        config(1),
    );

    // Worker a stops in its first page's delete; its lease runs out and
    // worker b takes the shard over, then a's delete goes on.
    let (first, second) = tokio::join!(a.run(&request.id, "worker-a", false, None), async {
        arrived.notified().await;
        let shards = ledger.shards(&request.id).await.unwrap();
        let recorded: Vec<_> = shards.iter().filter_map(|s| s.pending.clone()).collect();
        assert!(
            ledger.recorded_pages(&request.id).is_empty(),
            "no list of keys is written"
        );
        let out = b.run(&request.id, "worker-b", false, None).await;
        go_on.notify_one();
        (recorded, out)
    });
    let (recorded, second) = second;
    let e = |c: &Counts| c.objects + c.versions + c.delete_markers;
    let ranges: Vec<(u32, u64)> = recorded.iter().map(|r| (r.pages, e(&r.counts))).collect();
    assert_eq!(
        ranges,
        [(1, 3)],
        "a's page was recorded, as one range, before its delete"
    );
    assert_eq!(
        first.unwrap(),
        PurgeOutcome::Settled {
            status: Status::Completed
        }
    );
    let PurgeOutcome::Completed { receipt } = second.unwrap() else {
        panic!("worker b should complete the purge");
    };
    // Ten entries, each counted once (a version listed after the newer
    // one was deleted is current by then, as in S3: only the sum is fixed).
    let t = receipt.totals;
    assert_eq!(t.objects + t.versions + t.delete_markers, 10, "{t:?}");
    assert_eq!(
        (t.delete_markers, t.uploads_aborted, t.bytes),
        (1, 1, 4 * 3 + 4 * 5 + 1)
    );

    only_outside_left(&store, &outside);
    let stored = ledger.request(&request.id).unwrap();
    let completions = stored.history.iter().filter(|t| t.status == Status::Completed);
    assert_eq!(completions.map(|t| t.by.as_str()).collect::<Vec<_>>(), ["worker-b"]);
    let shards = ledger.shards(&request.id).await.unwrap();
    assert!(
        shards
            .iter()
            .all(|s| s.done && s.lease.is_none() && s.pending.is_none()),
        "{shards:?}"
    );
}

#[tokio::test]
async fn a_completed_purge_leaves_nothing_in_the_store() {
    let (ledger, store, timers, clock) = world();
    for day in ["2026-01-01", "2026-01-02"] {
        for source in ["web", "ios"] {
            let key = format!("acme/{source}/{day}/part-0.json.gz");
            store.put(ARCHIVE, &key, b"v1").unwrap();
            store.put(ARCHIVE, &key, b"v2").unwrap();
        }
    }
    store.delete(ARCHIVE, "acme/web/2026-01-01/part-0.json.gz").unwrap();
    store.start_upload(ARCHIVE, "acme/ios/2026-01-03/big.bin").unwrap();
    for n in 0..7 {
        store
            .put(EXPORTS, &format!("exports/acme/export-{n}.csv"), b"rows")
            .unwrap();
    }
    let request = due_request(&ledger, &clock).await;
    let purger = Purger::new(
        ledger.clone(),
        store.clone(),
        timers.clone(),
        clock.clone(),
        map(),
        config(4),
    );

    let outcome = purger.run(&request.id, "worker-1", false, None).await.unwrap();
    let PurgeOutcome::Completed { receipt } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(store.is_empty(), "{:?}", store.contents(ARCHIVE));
    // acme/ split by source (two shards), exports/acme/ whole: two more
    // workers were started, and the receipt names the data-map prefixes.
    assert_eq!(ledger.shards(&request.id).await.unwrap().len(), 3);
    let wakes: Vec<Wake> = timers.wakes(&request.id).into_iter().map(|(w, _)| w).collect();
    assert_eq!(wakes, [Wake::Worker(1), Wake::Worker(2)]);
    let prefixes: Vec<&str> = receipt.prefixes.iter().map(|p| p.prefix.as_str()).collect();
    assert_eq!(prefixes, ["acme/", "exports/acme/"]);
    // 3 + 7 current objects, 5 older versions, 1 marker: each counted once.
    let t = receipt.totals;
    assert_eq!(t.objects + t.versions + t.delete_markers, 3 + 7 + 5 + 1, "{t:?}");
    assert_eq!((t.delete_markers, t.uploads_aborted, t.bytes), (1, 1, 8 * 2 + 7 * 4));
    let stored = ledger.request(&request.id).unwrap();
    assert_eq!(stored.status, Status::Completed);
    assert_eq!(
        ledger.active_for(&stored.scope).await.unwrap(),
        None,
        "the scope is released"
    );
    // Its progress is kept with it; its shards expire a week on.
    let shards = ledger.shards(&request.id).await.unwrap();
    assert_eq!(stored.final_progress, Some(Progress::from_shards(&shards)));
    assert_eq!(stored.final_progress.map(|p| p.shards_done), Some(3));
    let week = clock.now() + crate::model::ledger::WORK_KEPT_AFTER_COMPLETION;
    assert_eq!(ledger.expiring(&request.id), [(0, week), (1, week), (2, week)]);
}

/// A legal hold placed during the `at`-th DeleteObjects; counts the
/// DeleteObjects sent after that one.
struct PlacesAHold {
    ledger: MemoryLedger,
    at: usize,
    after: Arc<AtomicUsize>,
}

#[async_trait]
impl BeforeDelete for PlacesAHold {
    async fn before_delete(&self, n: usize) {
        if n > self.at {
            self.after.fetch_add(1, Ordering::SeqCst);
        }
        if n == self.at {
            let hold = Hold {
                workspace: WorkspaceId::parse("acme").unwrap(),
                reason: "litigation".into(),
                placed_by: "ops".into(),
                since: t0(),
            };
            self.ledger.place_hold(&hold).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_hold_placed_mid_shard_stops_deletion_within_one_page() {
    let (ledger, store, timers) = (MemoryLedger::new(), MemoryStore::new(), MemoryTimers::new());
    let clock = ManualClock::new(t0());
    store.create_bucket(ARCHIVE, false);
    store.create_bucket(EXPORTS, false);
    // One shard (one source, one day) of 30 objects: ten pages of three.
    for n in 0..30 {
        let key = format!("acme/web/2026-01-01/part-{n:02}.json.gz");
        store.put(ARCHIVE, &key, b"x").unwrap();
    }
    let request = due_request(&ledger, &clock).await;
    let after = Arc::new(AtomicUsize::new(0));
    let hook = PlacesAHold {
        ledger: ledger.clone(),
        at: 2,
        after: after.clone(),
    };
    // Four deletes in flight: those listed ahead read the hold too.
    let config = PurgeConfig {
        deletes_in_flight: 4,
        ..config(1)
    };
    let purger = Purger::new(
        ledger.clone(),
        Hooked::new(store.clone(), hook),
        timers.clone(),
        clock.clone(),
        map(),
        config.clone(),
    );

    let outcome = purger.run(&request.id, "worker-1", false, None).await.unwrap();
    assert_eq!(outcome, PurgeOutcome::OnHold);
    assert!(after.load(Ordering::SeqCst) <= 1, "{after:?} deletes after the hold");
    let left = store.keys(ARCHIVE).len();
    assert!(
        left >= 30 - 3 * 3,
        "{left} objects left: more than one page went after the hold"
    );
    assert_eq!(ledger.request(&request.id).unwrap().status, Status::OnHold);
    let shards = ledger.shards(&request.id).await.unwrap();
    assert!(shards.iter().all(|s| !s.done && s.lease.is_none()), "{shards:?}");

    // Released and resumed: the rest goes, every object counted once.
    let requests = crate::requests::Requests::new(ledger.clone(), clock.clone(), Periods::default());
    let (_, resumed) = requests
        .release_hold(&WorkspaceId::parse("acme").unwrap(), "ops")
        .await
        .unwrap();
    assert_eq!(resumed.as_slice(), std::slice::from_ref(&request.id));
    let fresh = Purger::new(ledger.clone(), store.clone(), timers, clock.clone(), map(), config);
    let PurgeOutcome::Completed { receipt } = fresh.run(&request.id, "worker-2", false, None).await.unwrap() else {
        panic!("the purge should complete after the release");
    };
    assert!(store.is_empty(), "{:?}", store.keys(ARCHIVE));
    assert_eq!(receipt.totals.objects, 30, "{:?}", receipt.totals);
}

#[tokio::test]
async fn workers_that_hand_back_shards_at_once_leave_a_worker_for_each() {
    let (ledger, store, timers) = (MemoryLedger::new(), MemoryStore::new(), MemoryTimers::new());
    let clock = ManualClock::new(t0());
    store.create_bucket(ARCHIVE, false);
    store.create_bucket(EXPORTS, false);
    for source in ["web", "ios"] {
        store
            .put(ARCHIVE, &format!("acme/{source}/2026-01-01/part-0.json.gz"), b"x")
            .unwrap();
    }
    let request = due_request(&ledger, &clock).await;
    let purger = Purger::new(
        ledger.clone(),
        store.clone(),
        timers.clone(),
        clock.clone(),
        map(),
        PurgeConfig {
            wake_lead: Duration::seconds(60),
            ..config(1)
        },
    );
    // Each worker is at its time limit (its deadline has passed): it takes
    // a shard and hands it back at once. The first shard stays leased by
    // another worker meanwhile, so the second worker takes the next one:
    // two shards handed back together.
    let now = tokio::time::Instant::now();
    let first = purger.run(&request.id, "worker-1", false, Some(now)).await.unwrap();
    assert_eq!(first, PurgeOutcome::HandedOff);
    let mut shards = ledger.shards(&request.id).await.unwrap();
    assert_eq!(shards.len(), 2, "acme/ and exports/acme/: {shards:?}");
    let mut busy = shards.remove(0);
    busy.lease = Some(crate::model::Lease {
        owner: "worker-x".into(),
        until: clock.now() + Duration::hours(1),
    });
    busy.version += 1;
    ledger.update_shard(&busy).await.unwrap();
    let second = purger.run(&request.id, "worker-2", false, Some(now)).await.unwrap();
    assert_eq!(second, PurgeOutcome::HandedOff);

    let wakes = timers.wakes(&request.id);
    let lead = clock.now() + Duration::seconds(60);
    assert_eq!(
        wakes,
        [
            (Wake::HandOff(busy.index), lead),
            (Wake::HandOff(shards[0].index), lead)
        ],
        "one timer per shard, armed a minute ahead"
    );
    assert_ne!(busy.index, shards[0].index);
}

/// Moves the clock on by `by` before every DeleteObjects.
struct Ticks {
    clock: ManualClock,
    by: Duration,
}

#[async_trait]
impl BeforeDelete for Ticks {
    async fn before_delete(&self, _n: usize) {
        self.clock.advance(self.by);
    }
}

/// Reads of the request and counts of the open shards while one lane
/// purges 20 one-page shards, the clock moving `tick` at each delete.
async fn rereads_for(tick: Duration) -> (usize, usize) {
    use crate::testing::LedgerOp;
    let (ledger, store, timers, clock) = world();
    let request = due_request(&ledger, &clock).await;
    let shards: Vec<Shard> = (0..20)
        .map(|i| Shard::planned(&request.id, i, "archive", ARCHIVE, &format!("acme/s{i:02}/"), "acme/"))
        .collect();
    for s in &shards {
        store.put(ARCHIVE, &format!("{}part-0", s.prefix), b"x").unwrap();
    }
    ledger.insert_shards(&shards).await.unwrap();
    let store = Hooked::new(
        store,
        Ticks {
            clock: clock.clone(),
            by: tick,
        },
    );
    let purger = Purger::new(ledger.clone(), store, timers, clock, map(), config(4));
    let outcome = purger.run(&request.id, "w1", false, None).await.unwrap();
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    (ledger.calls(LedgerOp::Get), ledger.calls(LedgerOp::OpenShards))
}

#[tokio::test]
async fn a_lane_reads_the_request_and_counts_free_shards_by_time_not_at_every_shard() {
    // Within a minute: the request read at the claim, the lane's first
    // shard and the verification; free shards counted once.
    let (gets, counts) = rereads_for(Duration::zero()).await;
    assert!(gets <= 4, "{gets} reads of the request for 20 shards");
    assert!(counts <= 2, "{counts} counts of the free shards");
    // A minute and more between shards: read again at each.
    let (gets, counts) = rereads_for(Duration::seconds(61)).await;
    assert!(gets >= 20, "{gets} reads of the request");
    assert!(counts >= 20, "{counts} counts of the free shards");
}

/// `acme`'s archive of `n` objects under one source and day, and a
/// neighbour's object that must stay.
fn small_archive(store: &MemoryStore, n: usize) {
    for i in 0..n {
        store
            .put(ARCHIVE, &format!("acme/web/2026-01-01/part-{i}.json.gz"), b"ev")
            .unwrap();
    }
    store
        .put(ARCHIVE, "acme-2/web/2026-01-01/part-0.json.gz", b"ev")
        .unwrap();
}

/// S3 throttling that outlasts the SDK's retries is back-pressure: the
/// lane gives its shard back, waits, and the purge completes with exact
/// counts; before, the request failed and needed an operator's retry.
#[tokio::test(start_paused = true)]
async fn throttling_past_the_sdk_retries_slows_the_purge_and_never_fails_it() {
    let (ledger, store, timers, clock) = world();
    small_archive(&store, 10);
    store.fail_after(crate::testing::StoreOp::DeleteBatch, 1, 3, || {
        StoreError::Throttled("SlowDown: Please reduce your request rate".into())
    });
    let request = due_request(&ledger, &clock).await;
    let purger = Purger::new(ledger.clone(), store.clone(), timers, clock, map(), config(1));

    let started = tokio::time::Instant::now();
    let outcome = purger.run(&request.id, "worker-1", false, None).await.unwrap();
    let PurgeOutcome::Completed { receipt } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(receipt.totals.objects, 10, "{:?}", receipt.totals);
    assert_eq!(store.keys(ARCHIVE), ["acme-2/web/2026-01-01/part-0.json.gz"]);
    // Three throttled turns, each waited out (15 s at least, doubling in
    // a row), in paused time.
    let waited = started.elapsed();
    assert!(
        waited >= StdDuration::from_secs(45) && waited < StdDuration::from_secs(300),
        "{waited:?}"
    );
}

/// Keys S3 keeps refusing with `SlowDown` within one invocation: near the
/// time limit the lane hands the shard to a timer, the request stays
/// `PURGING` and nothing deleted goes uncounted.
#[tokio::test(start_paused = true)]
async fn keys_refused_with_slow_down_hand_the_shard_to_a_timer_near_the_time_limit() {
    let (ledger, store, timers, clock) = world();
    small_archive(&store, 4);
    store.refuse_deletes_under(
        "acme/web/2026-01-01/part-3",
        "SlowDown",
        "Please reduce your request rate",
    );
    let request = due_request(&ledger, &clock).await;
    let purger = Purger::new(ledger.clone(), store.clone(), timers.clone(), clock, map(), config(1));

    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(15 * 60);
    let outcome = purger
        .run(&request.id, "worker-1", false, Some(deadline))
        .await
        .unwrap();
    assert!(matches!(outcome, PurgeOutcome::HandedOff), "{outcome:?}");
    assert!(tokio::time::Instant::now() < deadline, "stopped before the time limit");
    assert_eq!(ledger.request(&request.id).unwrap().status, Status::Purging);
    let wakes: Vec<Wake> = timers.wakes(&request.id).into_iter().map(|(w, _)| w).collect();
    assert!(matches!(wakes.last(), Some(Wake::HandOff(_))), "{wakes:?}");
    let keys = store.keys(ARCHIVE);
    assert!(
        keys.contains(&"acme/web/2026-01-01/part-3.json.gz".to_owned()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"acme-2/web/2026-01-01/part-0.json.gz".to_owned()),
        "{keys:?}"
    );

    // S3 lets the key through later: the next worker finishes, counts exact.
    store.clear_refusals();
    let outcome = purger.run(&request.id, "worker-2", false, None).await.unwrap();
    let PurgeOutcome::Completed { receipt } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(receipt.totals.objects, 4, "{:?}", receipt.totals);
    assert_eq!(store.keys(ARCHIVE), ["acme-2/web/2026-01-01/part-0.json.gz"]);
}
