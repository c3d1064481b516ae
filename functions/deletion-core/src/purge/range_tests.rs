//! Key-range shards: a prefix with more sub-prefixes than shards, or with
//! keys directly under it, is cut into contiguous ranges that together
//! cover exactly the prefix, and purged range by range; and the workers
//! that share them, started by whoever takes a shard.

use super::claim::{ranges, Cut, MAX_SPLIT, MIN_RANGES};
use super::tests::{config, due_request, map, t0, world, ARCHIVE, EXPORTS};
use super::*;
use crate::model::Progress;
use crate::ports::{ManualClock, Wake};
use crate::testing::{MemoryLedger, MemoryStore, MemoryTimers};

/// A shard of `cut`, to ask it which keys are its own.
fn shard_of(cut: &Cut) -> Shard {
    Shard {
        after: cut.after.clone(),
        upto: cut.upto.clone(),
        ..Shard::planned(&RequestId::new(), 0, "archive", ARCHIVE, &cut.prefix, &cut.prefix)
    }
}

fn sources(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("acme/src-{i:04}/")).collect()
}

#[test]
fn ranges_of_300_sub_prefixes_cover_the_prefix_once_and_nothing_past_it() {
    let children = sources(300);
    let cuts = ranges("acme/", &children, MAX_SPLIT);
    assert_eq!(cuts.len(), MAX_SPLIT);
    // They follow one another: each starts where the one before ends.
    assert_eq!((cuts[0].after.clone(), cuts[MAX_SPLIT - 1].upto.clone()), (None, None));
    for pair in cuts.windows(2) {
        assert_eq!(pair[0].upto, pair[1].after);
        assert!(pair[0].upto < pair[1].upto || pair[1].upto.is_none());
    }
    let shards: Vec<Shard> = cuts.iter().map(shard_of).collect();
    let mut keys: Vec<String> = children.iter().map(|c| format!("{c}2026-01-01/part-0")).collect();
    // A key equal to a sub-prefix (a folder marker), keys directly under
    // the prefix (before, between and after the sub-prefixes), odd bytes.
    keys.extend(
        [
            "acme/src-0100/",
            "acme/",
            "acme/README",
            "acme/src-0100",
            "acme/zzz",
            "acme/~",
            "acme/ä",
        ]
        .map(String::from),
    );
    for key in &keys {
        let owners = shards.iter().filter(|s| s.holds_key(key)).count();
        assert_eq!(owners, 1, "{key} is in {owners} ranges");
    }
    for outside in ["acme-corp/src-0001/x", "acme", "acmf/", "acme-/"] {
        assert!(shards.iter().all(|s| !s.holds_key(outside)), "{outside}");
    }
}

#[test]
fn ten_thousand_sources_plan_into_64_ranges_and_more_lanes_into_more() {
    let (ledger, store, timers, clock) = world();
    let purger = |workers: u32, lanes: u32| {
        let config = PurgeConfig {
            shards_in_flight: lanes,
            ..config(workers)
        };
        Purger::new(
            ledger.clone(),
            store.clone(),
            timers.clone(),
            clock.clone(),
            map(),
            config,
        )
    };
    let wide = 10_000;
    assert_eq!(purger(2, 1).range_width(wide), MIN_RANGES, "never fewer than 64");
    assert_eq!(purger(4, 4).range_width(wide), 64, "the purge function's defaults");
    assert_eq!(purger(8, 4).range_width(wide), 128);
    assert_eq!(purger(64, 4).range_width(wide), MAX_SPLIT, "never more than 256");
    // Up to 256 sub-prefixes: four shards a lane, so one worker of four
    // lanes groups 100 sources into 16 ranges, four workers take 64.
    assert_eq!(purger(1, 4).range_width(100), 16);
    assert_eq!(purger(2, 1).range_width(100), 8);
    assert_eq!(purger(4, 4).range_width(100), 64);
    assert_eq!(purger(64, 4).range_width(100), MAX_SPLIT);
    // Between the two, the floor grows with the sub-prefixes, without a
    // cliff past 256: one range per 128 of them, up to 64.
    assert_eq!(purger(1, 4).range_width(256), 16);
    assert_eq!(purger(1, 4).range_width(257), 16);
    assert_eq!(purger(1, 4).range_width(1_000), 16, "1,000 sources, one worker");
    assert_eq!(purger(1, 1).range_width(1_000), 7);
    assert_eq!(purger(1, 4).range_width(4_000), 31);
    assert_eq!(purger(1, 1).range_width(8_192), 64);
    assert_eq!(purger(4, 4).range_width(1_000), 64, "four workers of four lanes");
    let all = sources(wide);
    let cuts = ranges("acme/", &all, purger(4, 4).range_width(wide));
    assert_eq!(cuts.len(), 64);
    let sizes: Vec<usize> = cuts
        .iter()
        .map(shard_of)
        .map(|sh| all.iter().filter(|s| sh.holds_key(&format!("{s}x"))).count())
        .collect();
    assert!(sizes.iter().all(|&n| (156..=157).contains(&n)), "even: {sizes:?}");
}

#[test]
fn a_few_sub_prefixes_are_a_range_each() {
    let cuts = ranges("acme/", &sources(3), MAX_SPLIT);
    let bounds: Vec<(Option<&str>, Option<&str>)> =
        cuts.iter().map(|c| (c.after.as_deref(), c.upto.as_deref())).collect();
    assert_eq!(
        bounds,
        [
            (None, Some("acme/src-0001/")),
            (Some("acme/src-0001/"), Some("acme/src-0002/")),
            (Some("acme/src-0002/"), None)
        ]
    );
}

#[tokio::test]
async fn a_workspace_of_300_sources_and_loose_keys_is_purged_range_by_range() {
    let (ledger, store, timers, clock) = world();
    for source in sources(300) {
        store
            .put(ARCHIVE, &format!("{source}2026-01-01/part-0"), b"v1")
            .unwrap();
        store
            .put(ARCHIVE, &format!("{source}2026-01-01/part-0"), b"v2")
            .unwrap();
    }
    for key in ["acme/README", "acme/src-0100/", "acme/zzz"] {
        store.put(ARCHIVE, key, b"x").unwrap();
    }
    store.start_upload(ARCHIVE, "acme/src-0200/2026-01-02/big").unwrap();
    for key in ["acme-corp/src-0001/2026-01-01/part-0", "acme", "acmeweb/x"] {
        store.put(ARCHIVE, key, b"keep").unwrap();
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
    let shards = ledger.shards(&request.id).await.unwrap();
    let archive: Vec<&Shard> = shards.iter().filter(|s| s.bucket == ARCHIVE).collect();
    // Four workers of one lane: four ranges a lane (300 sources ask for
    // no more than 2).
    assert_eq!(archive.len(), 16, "the archive prefix in ranges");
    assert!(archive
        .iter()
        .all(|s| s.prefix == "acme/" && s.done && s.pending.is_none()));
    let progress = Progress::from_shards(&shards);
    assert_eq!(
        (
            progress.shards_total,
            progress.shards_done,
            progress.prefixes_total,
            progress.prefixes_done
        ),
        (17, 17, 2, 2)
    );
    let stores: Vec<(&str, u64, u64)> = progress
        .stores
        .iter()
        .map(|s| (s.store.as_str(), s.shards_total, s.shards_done))
        .collect();
    assert_eq!(stores.len(), 2, "{stores:?}");
    assert_eq!(progress.stores.iter().map(|s| s.shards_total).sum::<u64>(), 17);
    let by_store = progress.stores.iter().map(|s| s.deleted.objects).sum::<u64>();
    assert_eq!(by_store, progress.deleted.objects, "the stores add up to the total");
    // 300 keys of two versions, 3 loose keys, 1 upload: each counted once.
    let t = receipt.totals;
    assert_eq!((t.objects + t.versions, t.uploads_aborted), (603, 1), "{t:?}");
    assert_eq!(t.bytes, 600 * 2 + 3);
    let (entries, uploads) = store.contents(ARCHIVE);
    let mut left: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    left.sort();
    assert_eq!(left, ["acme", "acme-corp/src-0001/2026-01-01/part-0", "acmeweb/x"]);
    assert!(uploads.is_empty());
}

#[tokio::test]
async fn a_hundred_sources_for_one_worker_of_four_lanes_are_sixteen_ranges_purged_whole() {
    let (ledger, store, timers, clock) = world();
    for (n, source) in sources(100).iter().enumerate() {
        for part in 0..(n % 3 + 1) {
            store
                .put(ARCHIVE, &format!("{source}2026-01-01/part-{part}"), b"v")
                .unwrap();
        }
    }
    store
        .put(ARCHIVE, "acme-corp/src-0001/2026-01-01/part-0", b"keep")
        .unwrap();
    let request = due_request(&ledger, &clock).await;
    let config = PurgeConfig {
        shards_in_flight: 4,
        ..config(1)
    };
    let purger = Purger::new(
        ledger.clone(),
        store.clone(),
        timers.clone(),
        clock.clone(),
        map(),
        config,
    );

    let outcome = purger.run(&request.id, "worker-1", false, None).await.unwrap();
    let PurgeOutcome::Completed { receipt } = outcome else {
        panic!("{outcome:?}");
    };
    let shards = ledger.shards(&request.id).await.unwrap();
    let archive: Vec<&Shard> = shards.iter().filter(|s| s.bucket == ARCHIVE).collect();
    // Not one shard a source (each would cost a claim for a page or two).
    assert_eq!(archive.len(), 16, "four ranges a lane");
    assert!(archive.iter().all(|s| s.prefix == "acme/" && s.done));
    // Each source's keys in exactly one range.
    for source in sources(100) {
        let key = format!("{source}2026-01-01/part-0");
        assert_eq!(archive.iter().filter(|s| s.holds_key(&key)).count(), 1, "{key}");
    }
    let objects: u64 = (0..100u64).map(|n| n % 3 + 1).sum();
    assert_eq!(receipt.totals.objects + receipt.totals.versions, objects);
    let (entries, _) = store.contents(ARCHIVE);
    let left: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(left, ["acme-corp/src-0001/2026-01-01/part-0"]);
}

#[tokio::test]
async fn a_flat_prefix_is_cut_into_key_ranges_that_cover_it_exactly() {
    let (ledger, store, timers, clock) = world();
    // 5,000 exports directly under exports/acme/, and neighbours.
    let keys: Vec<String> = (0..5_000)
        .map(|i| format!("exports/acme/{:08x}.csv", i * 7919))
        .collect();
    for key in &keys {
        store.put(EXPORTS, key, b"r").unwrap();
    }
    for key in ["exports/acme-corp/0.csv", "exports/acme", "exports/acmf/0.csv"] {
        store.put(EXPORTS, key, b"keep").unwrap();
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
    purger.plan(&request).await.unwrap();
    let shards = ledger.shards(&request.id).await.unwrap();
    let flat: Vec<&Shard> = shards.iter().filter(|s| s.bucket == EXPORTS).collect();
    assert!(
        flat.len() >= 16 && flat.len() <= super::flat::MAX_FLAT,
        "{} ranges",
        flat.len()
    );
    for key in &keys {
        assert_eq!(flat.iter().filter(|s| s.holds_key(key)).count(), 1, "{key}");
    }
    // Roughly even: no range holds more than a quarter of the keys.
    let most = flat
        .iter()
        .map(|s| keys.iter().filter(|k| s.holds_key(k)).count())
        .max();
    assert!(most.unwrap_or(0) <= keys.len() / 4, "{most:?}");

    let outcome = purger.run(&request.id, "worker-1", false, None).await.unwrap();
    let PurgeOutcome::Completed { receipt } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(receipt.totals.objects, 5_000);
    let (entries, _) = store.contents(EXPORTS);
    let mut left: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    left.sort();
    assert_eq!(left, ["exports/acme", "exports/acme-corp/0.csv", "exports/acmf/0.csv"]);
}

#[tokio::test]
async fn a_flat_prefix_of_one_page_stays_whole() {
    let (ledger, store, timers, clock) = world();
    for n in 0..1000 {
        store.put(EXPORTS, &format!("exports/acme/{n}.csv"), b"r").unwrap();
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
    purger.plan(&request).await.unwrap();
    let shards = ledger.shards(&request.id).await.unwrap();
    let flat: Vec<&Shard> = shards.iter().filter(|s| s.bucket == EXPORTS).collect();
    assert_eq!(flat.len(), 1);
    assert_eq!((flat[0].after.clone(), flat[0].upto.clone()), (None, None));
}

#[tokio::test]
async fn any_worker_that_takes_a_shard_starts_more_while_free_shards_outnumber_workers() {
    let (ledger, store, timers) = (MemoryLedger::new(), MemoryStore::new(), MemoryTimers::new());
    let clock = ManualClock::new(t0());
    let id = RequestId::new();
    let purger = Purger::new(ledger.clone(), store, timers.clone(), clock.clone(), map(), config(4));
    let lease = |owner: &str| {
        Some(crate::model::Lease {
            owner: owner.into(),
            until: t0() + Duration::minutes(5),
        })
    };
    // Shard 0 is another live worker's, 1 is done, 2 mine, 3..5 free, and
    // 6's lease ran out (free too).
    let mut shards: Vec<Shard> = (0..7)
        .map(|i| {
            let mut s = shard_of(&Cut {
                prefix: format!("acme/s{i}/"),
                after: None,
                upto: None,
            });
            s.request_id = id.clone();
            s.index = i;
            s
        })
        .collect();
    shards[0].lease = lease("other");
    shards[1].done = true;
    shards[2].lease = lease("me");
    shards[6].lease = Some(crate::model::Lease {
        owner: "gone".into(),
        until: t0() - Duration::minutes(1),
    });
    ledger.insert_shards(&shards).await.unwrap();
    purger.top_up(&id, 2).await;
    // Two hold shards (the other worker and this one), four are free: two
    // more workers make the configured four.
    let wakes: Vec<Wake> = timers.wakes(&id).into_iter().map(|(w, _)| w).collect();
    assert_eq!(wakes, [Wake::Worker(2), Wake::Worker(3)]);
    // With as many workers as free shards, none more.
    for s in &mut shards[3..] {
        s.lease = lease("busy");
    }
    let other = RequestId::new();
    for s in &mut shards {
        s.request_id = other.clone();
    }
    ledger.insert_shards(&shards).await.unwrap();
    purger.top_up(&other, 2).await;
    assert!(timers.wakes(&other).is_empty());
}

/// More free shards than the index sample holds, and every worker's lane
/// on one: no worker more. Counting the held ones from the sample of the
/// free ones missed them all, and each top-up started the workers again
/// beside those running (the simulation saw 16 invocations for 4 workers).
#[tokio::test]
async fn workers_all_at_work_start_no_more_however_many_shards_are_free() {
    let (ledger, store, timers) = (MemoryLedger::new(), MemoryStore::new(), MemoryTimers::new());
    let clock = ManualClock::new(t0());
    let id = RequestId::new();
    let purger = Purger::new(ledger.clone(), store, timers.clone(), clock.clone(), map(), config(4));
    let shards: Vec<Shard> = (0..40)
        .map(|i| {
            let mut s = Shard::planned(&id, i, "archive", ARCHIVE, &format!("acme/s{i:02}/"), "acme/");
            if i % 10 == 9 {
                // Shards 9, 19, 29 (three other workers) and 39 (this one).
                s.lease = Some(crate::model::Lease {
                    owner: format!("worker-{i}"),
                    until: t0() + Duration::minutes(5),
                });
            }
            s
        })
        .collect();
    ledger.insert_shards(&shards).await.unwrap();
    purger.top_up(&id, 39).await;
    assert!(timers.wakes(&id).is_empty(), "{:?}", timers.wakes(&id));
}

/// Ledger reads a purge of `n` one-object shards makes: full reads of
/// every shard, and the reads that find and take one.
async fn reads_for(n: u32) -> (usize, usize) {
    use crate::testing::LedgerOp;
    let (ledger, store, timers, clock) = world();
    let request = due_request(&ledger, &clock).await;
    let shards: Vec<Shard> = (0..n)
        .map(|i| Shard::planned(&request.id, i, "archive", ARCHIVE, &format!("acme/s{i:05}/"), "acme/"))
        .collect();
    for s in &shards {
        store.put(ARCHIVE, &format!("{}part-0", s.prefix), b"x").unwrap();
    }
    ledger.insert_shards(&shards).await.unwrap();
    let purger = Purger::new(ledger.clone(), store, timers, clock, map(), config(4));
    let outcome = purger.run(&request.id, "w1", false, None).await.unwrap();
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let finding = [LedgerOp::NextUnstarted, LedgerOp::Shard, LedgerOp::OpenShards]
        .into_iter()
        .map(|op| ledger.calls(op))
        .sum();
    let full = ledger.calls(LedgerOp::Shards);
    eprintln!("{n} shards: {full} reads of every shard, {finding} reads to find and take them");
    (full, finding)
}

#[tokio::test]
async fn taking_a_shard_costs_the_same_reads_at_10_and_1000_shards() {
    let (full_10, per_10) = reads_for(10).await;
    let (full_1000, per_1000) = reads_for(1000).await;
    // Every shard is read whole a fixed number of times per purge (the
    // plan, the last "all done", the verification), not once per claim.
    assert_eq!(full_10, full_1000, "full reads do not grow with the shards");
    assert!(full_1000 <= 4, "{full_1000}");
    // Finding and taking: a few reads per shard, whatever their number.
    assert!(per_10 <= 10 * 4 && per_1000 <= 1000 * 4, "{per_10} / {per_1000}");
    assert_eq!(
        per_1000 / 1000,
        per_10 / 10,
        "reads per claim: {per_10}/10 vs {per_1000}/1000"
    );
}

/// A store whose first `throttled` DeleteObjects answers refuse every key
/// with `SlowDown` (or, `retried`, go through after a 503 the SDK retried,
/// counted in `slow_downs`), and that notes how many deletes were in
/// flight at each.
#[derive(Default)]
struct Throttling {
    inner: MemoryStore,
    throttled: usize,
    retried: bool,
    slow_downs: std::sync::atomic::AtomicU64,
    calls: std::sync::atomic::AtomicUsize,
    running: std::sync::atomic::AtomicUsize,
    seen: std::sync::Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl ObjectStore for Throttling {
    async fn list_page(
        &self,
        b: &str,
        p: &str,
        c: Option<&str>,
        max: i32,
    ) -> Result<crate::ports::EntryPage, StoreError> {
        self.inner.list_page(b, p, c, max).await
    }
    async fn delete_batch(
        &self,
        bucket: &str,
        entries: &[Entry],
    ) -> Result<Vec<crate::ports::DeleteFailure>, StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let n = self.calls.fetch_add(1, SeqCst);
        let running = self.running.fetch_add(1, SeqCst) + 1;
        self.seen.lock().unwrap().push(running);
        tokio::task::yield_now().await; // let the other deletes in flight run
        self.running.fetch_sub(1, SeqCst);
        if n < self.throttled && self.retried {
            self.slow_downs.fetch_add(1, SeqCst);
        } else if n < self.throttled {
            return Ok(entries
                .iter()
                .map(|e| crate::ports::DeleteFailure {
                    key: e.key.clone(),
                    version_id: e.version_id.clone(),
                    code: "SlowDown".into(),
                    message: "Please reduce your request rate.".into(),
                })
                .collect());
        }
        self.inner.delete_batch(bucket, entries).await
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<crate::ports::UploadPage, StoreError> {
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &crate::ports::Upload) -> Result<(), StoreError> {
        self.inner.abort_upload(b, u).await
    }
    fn slow_downs(&self) -> u64 {
        self.slow_downs.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Purges 120 objects of one shard, 8 deletes in flight at most, through
/// a `Throttling` store whose first three deletes are throttled (refused
/// keys, or with `retried` 503s the SDK retried): the deletes in flight at
/// each call, after checking that every object was deleted and counted once.
async fn purge_throttled(retried: bool) -> Vec<usize> {
    let (ledger, store, timers, clock) = world();
    for n in 0..120 {
        store
            .put(ARCHIVE, &format!("acme/web/2026-01-01/part-{n:03}"), b"x")
            .unwrap();
    }
    let request = due_request(&ledger, &clock).await;
    let throttling = Throttling {
        inner: store.clone(),
        throttled: 3,
        retried,
        ..Throttling::default()
    };
    let settings = PurgeConfig {
        deletes_in_flight: 8,
        ..config(1)
    };
    let purger = Purger::new(ledger, throttling, timers, clock, map(), settings);
    let outcome = purger.run(&request.id, "w1", false, None).await.unwrap();
    let PurgeOutcome::Completed { receipt } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        receipt.totals.objects, 120,
        "every object once, none lost to the refusals"
    );
    assert!(store.contents(ARCHIVE).0.is_empty());
    let seen = purger.store.seen.lock().unwrap().clone();
    seen
}

fn most(calls: &[usize]) -> usize {
    calls.iter().copied().max().unwrap_or(0)
}

#[tokio::test]
async fn slow_down_halves_the_deletes_in_flight_and_clean_pages_grow_them_back() {
    let seen = purge_throttled(false).await;
    assert_eq!(seen[0], 1);
    // Eight in flight at first; after three SlowDown answers (window 8 →
    // 1) only the three refused pages' retries and single new pages; then
    // more again, page by clean page, up to eight.
    assert_eq!(most(&seen[..8]), 8, "{seen:?}");
    assert!(most(&seen[8..16]) <= 3, "shrunk: {seen:?}");
    assert_eq!(most(&seen[16..]), 8, "grew back: {seen:?}");
}

/// 503s the SDK retried until they went through are heard too (the
/// store counts them): the window halves on them as on refused keys,
/// before any call fails, and grows back on clean pages.
#[tokio::test]
async fn slow_downs_the_sdk_retried_halve_the_deletes_in_flight_too() {
    let seen = purge_throttled(true).await;
    assert_eq!(most(&seen[..8]), 8, "{seen:?}");
    assert!(most(&seen[8..16]) <= 4, "shrunk: {seen:?}");
    assert_eq!(most(&seen[24..]), 8, "grew back: {seen:?}");
}
