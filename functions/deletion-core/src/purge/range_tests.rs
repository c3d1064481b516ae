//! Key-range shards: a prefix with more sub-prefixes than shards, or with
//! keys directly under it, is cut into contiguous ranges that together
//! cover exactly the prefix, and purged range by range.

use super::claim::{ranges, Cut, MAX_SPLIT};
use super::tests::{config, due_request, map, t0, ARCHIVE, EXPORTS};
use super::*;
use crate::model::Progress;
use crate::ports::ManualClock;
use crate::testing::{MemoryLedger, MemoryStore, MemoryTimers};

/// A shard of `cut`, to ask it which keys are its own.
fn shard_of(cut: &Cut) -> Shard {
    Shard {
        request_id: RequestId::new(),
        index: 0,
        store: "archive".into(),
        bucket: ARCHIVE.into(),
        prefix: cut.prefix.clone(),
        root: cut.prefix.clone(),
        after: cut.after.clone(),
        upto: cut.upto.clone(),
        done: false,
        cursor: None,
        uploads_done: false,
        counts: Counts::default(),
        lease: None,
        pages_done: 0,
        rewrite: None,
        pending: None,
        version: 1,
    }
}

fn sources(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("acme/src-{i:04}/")).collect()
}

#[test]
fn ranges_of_300_sub_prefixes_cover_the_prefix_once_and_nothing_past_it() {
    let children = sources(300);
    let cuts = ranges("acme/", &children);
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
fn a_few_sub_prefixes_are_a_range_each() {
    let cuts = ranges("acme/", &sources(3));
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
    let (ledger, store, timers) = (MemoryLedger::new(), MemoryStore::new(), MemoryTimers::new());
    let clock = ManualClock::new(t0());
    store.create_bucket(ARCHIVE, true);
    store.create_bucket(EXPORTS, false);
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
    assert_eq!(archive.len(), MAX_SPLIT, "the archive prefix in ranges");
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
        (MAX_SPLIT as u64 + 1, MAX_SPLIT as u64 + 1, 2, 2)
    );
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
