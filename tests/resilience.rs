//! Purges that lose their timer or their worker, against a real moto
//! server: the sweep, expired leases, killed workers, concurrent workers.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::s3::S3Store;
use deletion_core::ids::RequestId;
use deletion_core::lifecycle::Claim;
use deletion_core::ports::{
    Children, Clock, DeleteFailure, Entry, EntryPage, Ledger, ObjectStore, Timers, Upload, UploadPage,
};
use deletion_core::purge::{PurgeConfig, PurgeOutcome, Purger};
use deletion_core::StoreError;
use integration_tests::{env, purger, purger_with, Env, Versioning};
use purge::PurgeEvent;
use serde_json::Value;

fn id_of(body: &Value) -> RequestId {
    RequestId::parse(body["id"].as_str().expect("id")).expect("request id")
}

async fn status(env: &Env, id: &RequestId) -> Value {
    env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await.body
}

async fn seed(env: &Env, ws: &str, n: usize) {
    for i in 0..n {
        env.put(&env.archive, &format!("{ws}/web/2024-01-01/part-{i:03}.json.gz"))
            .await;
    }
}

#[tokio::test]
async fn the_sweep_starts_a_request_whose_timer_was_deleted_behind_its_back() {
    let env = env(Versioning::None).await;
    seed(&env, "acme", 3).await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.stack.pump_stream().await.unwrap();
    env.stack.schedules.disarm(&id).await.unwrap(); // lost behind our back

    env.clock.advance(Duration::days(5) + Duration::minutes(10));
    // No grace timer: only its (late) reminder fires, and purges nothing.
    let fired = env.stack.tick().await.unwrap();
    assert!(fired.iter().all(|f| f.outcome == "not_needed"), "{fired:?}");
    assert_eq!(status(&env, &id).await["status"], "SCHEDULED");
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert_eq!(report.started, vec![id.clone()]);
    let fired = env.stack.tick().await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].outcome, "completed");
    assert_eq!(status(&env, &id).await["status"], "COMPLETED");
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());

    // A sweep in grace only re-arms (idempotently) and starts nothing.
    let other = id_of(&env.call("POST", "/v1/workspaces/other/deletion", None, &[]).await.body);
    env.stack.pump_stream().await.unwrap();
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert!(report.started.is_empty());
    assert_eq!(report.rearmed, 1);
    assert!(env.stack.schedules.armed_at(&other).await.unwrap().is_some());
}

#[tokio::test]
async fn the_sweep_marks_a_missed_deadline_once() {
    let env = env(Versioning::None).await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.call("PUT", "/v1/workspaces/w/members/ann", Some(r#"{"role":"admin"}"#), &[])
        .await;
    // Stuck: claimed by a worker that died, and the lease expired, for 31 days.
    let ledger = &env.stack.ledger;
    env.clock.advance(Duration::days(5));
    let current = ledger.get(&id).await.unwrap().unwrap();
    let Claim::Granted { next, .. } = current.claim(env.clock.now(), "dead", Duration::minutes(16), false) else {
        panic!("claim")
    };
    ledger.update(&next).await.unwrap();
    env.clock.advance(Duration::days(26));
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert_eq!(report.deadline_missed, vec![id.clone()]);
    assert_eq!(report.redriven, vec![id.clone()]);
    let again = env.stack.grace_timer.sweep().await.unwrap();
    assert!(again.deadline_missed.is_empty(), "marked once");
    let body = status(&env, &id).await;
    assert_eq!(body["days_left"], 0);
    let line = grace_timer::handler::metrics_line(&report);
    let metrics: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(metrics["DeadlinesMissed"], 1);
    assert_eq!(metrics["_aws"]["CloudWatchMetrics"][0]["Namespace"], "DeletionService");
}

#[tokio::test]
async fn a_worker_killed_anywhere_is_resumed_with_nothing_left_and_nothing_outside_touched() {
    for (stop_at, after_delete) in [(1, false), (2, true), (3, false), (4, true)] {
        let env = env(Versioning::None).await;
        seed(&env, "acme", 13).await;
        seed(&env, "acme-corp", 3).await;
        let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
        env.clock.advance(Duration::days(5) + Duration::seconds(1));

        let killable = integration_tests::Killable::new(S3Store::new(env.clients.s3.clone()), stop_at, after_delete);
        let doomed = purger(&env, killable.clone());
        // The worker hangs at its kill point; dropping the future kills it.
        let killed = killable.run_until_killed(doomed.run(&id, "doomed", false, None)).await;
        assert!(
            killed.is_none(),
            "the worker must have been stopped at delete {stop_at}"
        );
        let left = env.inventory(&env.archive, "acme/").await.versions.len();
        let deleted_before_kill = (4 * (stop_at - 1) + if after_delete { 4 } else { 0 }).min(13);
        assert_eq!(left, 13 - deleted_before_kill, "killed at delete {stop_at}");
        assert_eq!(status(&env, &id).await["status"], "PURGING");

        // A second worker is kept off while the lease lives...
        let rescuer = purger(&env, S3Store::new(env.clients.s3.clone()));
        assert_eq!(
            rescuer.run(&id, "rescuer", false, None).await.unwrap(),
            PurgeOutcome::Busy
        );
        // ...and takes over once it expired.
        env.clock.advance(Duration::minutes(17));
        let outcome = rescuer.run(&id, "rescuer", false, None).await.unwrap();
        assert!(
            matches!(outcome, PurgeOutcome::Completed { .. }),
            "stop at {stop_at}: {outcome:?}"
        );
        assert!(env.inventory(&env.archive, "acme/").await.is_empty());
        assert_eq!(env.inventory(&env.archive, "acme-corp/").await.versions.len(), 3);
        let body = status(&env, &id).await;
        assert_eq!(body["status"], "COMPLETED");
        let objects = body["receipt"]["totals"]["objects"].as_u64().unwrap();
        // Wherever the kill fell (before a delete was sent, or after it went
        // through but before its checkpoint), every object is counted once.
        assert_eq!(objects, 13, "stop at {stop_at} (after delete: {after_delete})");
        // And no recorded page is left behind.
        let pages = env
            .ledger_keys()
            .await
            .into_iter()
            .filter(|(_, sk)| sk.starts_with("PAGE#"))
            .count();
        assert_eq!(pages, 0);
    }
}

/// Where a doomed worker of the versioned test below dies: at listing `n`
/// (listed, not yet recorded), or at delete `n`, before it is sent (the
/// page recorded) or after it went through (not yet checkpointed).
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    Listing(usize),
    BeforeDelete(usize),
    AfterDelete(usize),
}

/// `acme/` of a versioned archive: five keys of three versions each, and
/// a key deleted over its one version (16 versions, 1 marker), so pages of
/// four end inside a key. Returns the bytes of every version.
async fn versioned_seed(env: &Env) -> u64 {
    let mut bytes = 0;
    for i in 0..5 {
        let key = format!("acme/web/2024-01-01/part-{i:03}.json.gz");
        for _ in 0..3 {
            env.put(&env.archive, &key).await;
            bytes += format!("data of {key}").len() as u64;
        }
    }
    let gone = "acme/web/2024-01-02/gone.json.gz";
    env.put(&env.archive, gone).await;
    bytes += format!("data of {gone}").len() as u64;
    deletion_aws::provision::delete_key(&env.clients, &env.archive, gone)
        .await
        .unwrap();
    seed(env, "acme-corp", 2).await;
    bytes
}

#[tokio::test]
async fn a_worker_killed_at_any_point_of_a_page_record_is_resumed_with_exact_counts() {
    use KillPoint::*;
    let points = [
        Listing(1),
        Listing(3),
        BeforeDelete(1),
        BeforeDelete(2),
        AfterDelete(2),
        AfterDelete(4),
    ];
    for point in points {
        let env = env(Versioning::All).await;
        let bytes = versioned_seed(&env).await;
        let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
        env.clock.advance(Duration::days(5) + Duration::seconds(1));
        let inner = S3Store::new(env.clients.s3.clone());
        let killable = match point {
            Listing(n) => integration_tests::Killable::at_listing(inner, n),
            BeforeDelete(n) => integration_tests::Killable::new(inner, n, false),
            AfterDelete(n) => integration_tests::Killable::new(inner, n, true),
        };
        // Three deletes in flight: a kill leaves up to three pages recorded.
        let doomed = purger_with(&env, killable.clone(), 3);
        let killed = killable.run_until_killed(doomed.run(&id, "doomed", false, None)).await;
        assert!(killed.is_none(), "{point:?}: the worker must have been stopped");

        env.clock.advance(Duration::minutes(17));
        let rescuer = purger_with(&env, S3Store::new(env.clients.s3.clone()), 3);
        let outcome = rescuer.run(&id, "rescuer", false, None).await.unwrap();
        assert!(
            matches!(outcome, PurgeOutcome::Completed { .. }),
            "{point:?}: {outcome:?}"
        );
        assert!(env.inventory(&env.archive, "acme/").await.is_empty(), "{point:?}");
        assert_eq!(
            env.inventory(&env.archive, "acme-corp/").await.versions.len(),
            2,
            "{point:?}"
        );
        let totals = &status(&env, &id).await["receipt"]["totals"];
        let entries = ["objects", "versions", "delete_markers"]
            .map(|k| totals[k].as_u64().unwrap())
            .iter()
            .sum::<u64>();
        // Each version and the marker counted once, wherever the kill fell.
        assert_eq!(entries, 17, "{point:?}: {totals}");
        assert_eq!(totals["bytes"].as_u64().unwrap(), bytes, "{point:?}: {totals}");
        let shards = env.stack.ledger.shards(&id).await.unwrap();
        assert!(
            shards.iter().all(|s| s.pending.is_none() && s.done),
            "{point:?}: {shards:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_workers_never_share_a_shard_or_both_claim() {
    let env = env(Versioning::None).await;
    seed(&env, "acme", 9).await;
    for i in 0..4 {
        env.put(&env.profiles, &format!("acme/spaces/s{i}/p.json")).await;
    }
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let event = || PurgeEvent {
        request_id: id.to_string(),
        retry: false,
        remind: false,
    };
    let (a, b) = tokio::join!(
        env.stack.purge.handle(event(), "w1", None),
        env.stack.purge.handle(event(), "w2", None)
    );
    let mut outcomes = vec![a.unwrap().outcome, b.unwrap().outcome];
    outcomes.sort();
    assert!(
        outcomes == ["busy", "completed"] || outcomes == ["completed", "settled"],
        "{outcomes:?}"
    );
    let body = status(&env, &id).await;
    let purging = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["status"] == "PURGING")
        .count();
    assert_eq!(purging, 1, "claimed exactly once");
    // Both workers may take a shard each; exact totals show that no shard
    // was purged (and counted) by both.
    assert_eq!(body["receipt"]["totals"]["objects"], 13);
    assert_eq!(body["receipt"]["prefixes"][0]["deleted"]["objects"], 9);
    assert_eq!(body["receipt"]["prefixes"][1]["deleted"]["objects"], 4);
}

/// Runs the purge of `id` with a data map naming a bucket that does not
/// exist: the attempt fails.
async fn purge_with_a_missing_bucket(env: &Env, id: &RequestId) -> PurgeOutcome {
    let broken = deletion_core::datamap::DataMap::from_json(
        r#"{"stores":[{"name":"gone","bucket":"no-such-bucket-here","layout":"{workspace}/"}]}"#,
    )
    .unwrap();
    let failing = Purger::new(
        env.stack.ledger.clone(),
        S3Store::new(env.clients.s3.clone()),
        env.stack.schedules.clone(),
        env.clock.clone(),
        broken,
        PurgeConfig::default(),
    );
    failing.run(id, "w1", false, None).await.unwrap()
}

#[tokio::test]
async fn a_failed_purge_is_retried_by_the_sweep_with_its_reason_kept() {
    let env = env(Versioning::None).await;
    seed(&env, "acme", 2).await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    // A data map naming a bucket that does not exist makes the purge fail
    // (and the purge function's retries of it are refused: it is no bucket
    // of the template's either).
    env.gate
        .refusals_expected
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let outcome = purge_with_a_missing_bucket(&env, &id).await;
    assert!(
        matches!(&outcome, PurgeOutcome::Failed { reason } if reason.contains("no-such-bucket-here")),
        "{outcome:?}"
    );
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "FAILED");
    assert!(body["failure"].as_str().unwrap().contains("no-such-bucket-here"));

    // A plain (duplicate) timer delivery does not restart it; the sweep does.
    let again = env
        .stack
        .purge
        .handle(
            PurgeEvent {
                request_id: id.to_string(),
                retry: false,
                remind: false,
            },
            "w2",
            None,
        )
        .await
        .unwrap();
    assert_eq!(again.outcome, "settled");
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert_eq!(report.retried, vec![id.clone()]);
    // The real map's plan was never stored for this request: the shard of
    // the broken map is what the retry runs, so it fails again, attempts
    // grow, and the sweep stops retrying at the bound.
    for _ in 0..6 {
        env.stack.tick().await.unwrap();
        env.stack.grace_timer.sweep().await.unwrap();
    }
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert_eq!(report.exhausted, vec![id.clone()]);
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "FAILED");
    assert!(body["attempts"].as_u64().unwrap() >= 5);
    let notes: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["note"].as_str())
        .collect();
    assert!(notes.iter().any(|n| n.starts_with("retry after:")), "{notes:?}");
}

#[tokio::test]
async fn the_first_worker_fans_out_one_more_worker_per_free_shard() {
    let env = env(Versioning::None).await;
    seed(&env, "acme", 5).await;
    env.put(&env.profiles, "acme/spaces/main/p.json").await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    // The grace timer fires the first worker; it plans two shards, so it
    // arms one more worker, which the next round fires.
    let first = env.stack.tick().await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].outcome, "completed");
    let second = env.stack.tick().await.unwrap();
    assert_eq!(second.len(), 1, "the extra worker was armed and fired");
    assert_eq!(second[0].outcome, "settled", "it found the work done");
    assert_eq!(status(&env, &id).await["receipt"]["totals"]["objects"], 6);
}

#[tokio::test]
async fn a_worker_near_its_time_limit_hands_its_shard_back_and_a_new_one_finishes() {
    let env = env(Versioning::None).await;
    seed(&env, "acme", 6).await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let hurried = s3_purger(
        &env,
        PurgeConfig {
            handoff_margin: std::time::Duration::from_secs(3600),
            ..PurgeConfig::default()
        },
    );
    // An invocation with 10 seconds left, under a one-hour margin: it must
    // hand back at once, with its checkpoint, and arm a continuation.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let outcome = hurried.run(&id, "hurried", false, Some(deadline)).await.unwrap();
    assert_eq!(outcome, PurgeOutcome::HandedOff);
    assert_eq!(env.inventory(&env.archive, "acme/").await.versions.len(), 6);
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "PURGING");
    // The continuation fires through the scheduler and finishes the purge.
    let fired = env.stack.tick().await.unwrap();
    assert!(fired.iter().any(|r| r.outcome == "completed"), "{fired:?}");
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    assert_eq!(status(&env, &id).await["receipt"]["totals"]["objects"], 6);
}

/// A store whose DeleteObjects answers refuse some keys: `flaky` keys on
/// their first attempt only, `stuck` keys always.
#[derive(Clone)]
struct Refusing {
    inner: S3Store,
    flaky: Vec<String>,
    stuck: Vec<String>,
    seen: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

#[async_trait]
impl ObjectStore for Refusing {
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_page(b, p, c, max).await
    }
    async fn delete_batch(&self, bucket: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        let mut refused = Vec::new();
        let mut allowed = Vec::new();
        for e in entries {
            let first_time = self.seen.lock().unwrap().insert(e.key.clone());
            if self.stuck.contains(&e.key) || (first_time && self.flaky.contains(&e.key)) {
                refused.push(DeleteFailure {
                    key: e.key.clone(),
                    version_id: e.version_id.clone(),
                    code: "InternalError".into(),
                    message: "We encountered an internal error. Please try again.".into(),
                });
            } else {
                allowed.push(e.clone());
            }
        }
        refused.extend(self.inner.delete_batch(bucket, &allowed).await?);
        Ok(refused)
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
        self.inner.abort_upload(b, u).await
    }
}

#[tokio::test]
async fn keys_a_delete_refuses_are_retried_and_never_counted_as_deleted() {
    let env = env(Versioning::None).await;
    seed(&env, "acme", 6).await;
    let key = |i: usize| format!("acme/web/2024-01-01/part-{i:03}.json.gz");
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let config = PurgeConfig {
        retry_backoff: std::time::Duration::from_millis(5),
        ..PurgeConfig::default()
    };
    let refusing = Refusing {
        inner: S3Store::new(env.clients.s3.clone()),
        flaky: vec![key(1), key(4)],
        stuck: vec![key(2)],
        seen: Arc::default(),
    };
    let purger = Purger::new(
        env.stack.ledger.clone(),
        refusing.clone(),
        env.stack.schedules.clone(),
        env.clock.clone(),
        env.stack.settings.map.clone(),
        config.clone(),
    );
    let outcome = purger.run(&id, "w1", false, None).await.unwrap();
    let PurgeOutcome::Failed { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains(&key(2)) && reason.contains("InternalError"), "{reason}");
    assert!(reason.contains("1 keys"), "only the stuck key failed: {reason}");
    // The flaky keys went on retry; the stuck key stayed; nothing was counted
    // for the refused page.
    assert_eq!(env.inventory(&env.archive, "acme/").await.versions, vec![key(2)]);
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "FAILED");
    assert_eq!(
        body["progress"]["objects"], 5,
        "what was deleted is counted, the refused key not"
    );

    // Once the store stops refusing, the retry finishes and counts right.
    let healed = Purger::new(
        env.stack.ledger.clone(),
        Refusing {
            stuck: vec![],
            ..refusing
        },
        env.stack.schedules.clone(),
        env.clock.clone(),
        env.stack.settings.map.clone(),
        config,
    );
    let outcome = healed.run(&id, "w2", true, None).await.unwrap();
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let body = status(&env, &id).await;
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    assert_eq!(body["receipt"]["totals"]["objects"], 6, "every key counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_and_dynamodb_throttling_on_the_wire_slow_the_purge_but_never_fail_it() {
    let env = env(Versioning::Profiles).await;
    seed(&env, "acme", 30).await;
    for _ in 0..3 {
        env.put(&env.profiles, "acme/spaces/main/p.json").await;
    }
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    // Every 6th request to S3 and to the ledger is throttled, 5 times each:
    // each throttle lowers the adaptive retry's rate, which then recovers.
    let proxy = integration_tests::throttle::start(&integration_tests::endpoints(), 6, 5).await;
    // Retry state of their own: the throttling must not slow other tests.
    let throttled =
        deletion_aws::Clients::for_local_isolated(&deletion_aws::LocalEndpoints::single(&proxy.endpoint), "throttled")
            .await;
    let purger = Purger::new(
        DynamoLedger::new(throttled.dynamodb.clone(), env.stack.settings.table.clone()),
        S3Store::new(throttled.s3.clone()),
        env.stack.schedules.clone(),
        env.clock.clone(),
        env.stack.settings.map.clone(),
        PurgeConfig {
            page_size: 10,
            ..PurgeConfig::default()
        },
    );
    let outcome = purger.run(&id, "w1", false, None).await.unwrap();
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let (all, dynamodb) = (
        proxy.throttled.load(Ordering::SeqCst),
        proxy.throttled_dynamodb.load(Ordering::SeqCst),
    );
    assert!(all >= 5, "the proxy must have throttled ({all})");
    assert!(
        dynamodb >= 1 && all > dynamodb,
        "both S3 ({}) and DynamoDB ({dynamodb})",
        all - dynamodb
    );
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    assert!(env.inventory(&env.profiles, "acme/").await.is_empty());
    let totals = &status(&env, &id).await["receipt"]["totals"];
    assert_eq!(
        (totals["objects"].as_u64(), totals["versions"].as_u64()),
        (Some(31), Some(2)),
        "{totals:#}"
    );
}

/// A store that, on its first DeleteObjects call, lets a concurrent writer
/// put an object under a sub-prefix that did not exist when the purge was
/// planned.
#[derive(Clone)]
struct LateWriter {
    inner: S3Store,
    clients: deletion_aws::Clients,
    bucket: String,
    key: String,
    done: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl ObjectStore for LateWriter {
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_page(b, p, c, max).await
    }
    async fn delete_batch(&self, bucket: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        if !self.done.swap(true, Ordering::SeqCst) {
            deletion_aws::provision::put_object(&self.clients, &self.bucket, &self.key, b"late")
                .await
                .map_err(StoreError::Unavailable)?;
        }
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

/// A purge worker on S3 with the default settings (pages of 1,000).
fn default_purger(
    env: &Env,
) -> Purger<DynamoLedger, S3Store, deletion_aws::scheduler::SchedulerTimers, deletion_core::ports::ManualClock> {
    s3_purger(env, PurgeConfig::default())
}

/// A purge worker on S3 with `config`.
fn s3_purger(
    env: &Env,
    config: PurgeConfig,
) -> Purger<DynamoLedger, S3Store, deletion_aws::scheduler::SchedulerTimers, deletion_core::ports::ManualClock> {
    Purger::new(
        env.stack.ledger.clone(),
        S3Store::new(env.clients.s3.clone()),
        env.stack.schedules.clone(),
        env.clock.clone(),
        env.stack.settings.map.clone(),
        config,
    )
}

#[tokio::test]
async fn a_workspace_of_300_sources_and_loose_keys_is_purged_in_key_ranges_on_s3() {
    let env = env(Versioning::None).await;
    let sources: Vec<String> = (0..300).map(|i| format!("acme/src-{i:03}/")).collect();
    let keys: Vec<String> = sources
        .iter()
        .map(|s| format!("{s}2024-01-01/part-0.json.gz"))
        .collect();
    futures::future::join_all(keys.iter().map(|k| env.put(&env.archive, k))).await;
    // Keys directly under the prefix, one equal to a sub-prefix, and
    // neighbours that share its first letters.
    for key in [
        "acme/README",
        "acme/src-150/",
        "acme/zzz",
        "acme-corp/src-000/x",
        "acmeweb/x",
    ] {
        env.put(&env.archive, key).await;
    }
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let purger = default_purger(&env);
    let outcome = purger.run(&id, "w1", false, None).await.unwrap();
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let shards = env.stack.ledger.shards(&id).await.unwrap();
    let ranges = shards
        .iter()
        .filter(|s| s.bucket == env.archive && s.prefix == "acme/")
        .count();
    // More sub-prefixes than shards: key ranges of acme/, four per lane of
    // the four workers of one lane (300 sources ask for no more than 2).
    assert_eq!(ranges, 16, "key ranges of acme/");
    let body = status(&env, &id).await;
    assert_eq!(body["progress"]["shards_total"], 17, "{:#}", body["progress"]);
    assert_eq!(body["progress"]["shards_done"], 17);
    assert_eq!(body["receipt"]["totals"]["objects"], 303);
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    let mut left = env.inventory(&env.archive, "").await.versions;
    left.sort();
    assert_eq!(left, ["acme-corp/src-000/x", "acmeweb/x"]);
}

#[tokio::test]
async fn a_flat_day_of_2500_parts_is_purged_in_key_ranges_on_s3() {
    let env = env(Versioning::None).await;
    let keys: Vec<String> = (0..2500)
        .map(|i| format!("acme/web/2024-01-31/part-{i:05}.json.gz"))
        .collect();
    for chunk in keys.chunks(100) {
        futures::future::join_all(chunk.iter().map(|k| env.put(&env.archive, k))).await;
    }
    let kept = [
        "acme/web/2024-01-310/part-0",
        "acme/web/2024-01-3",
        "acme/web/2024-02-01/part-0",
    ];
    for key in kept {
        env.put(&env.archive, key).await;
    }
    let body = r#"{"from": "2024-01-31", "to": "2024-01-31"}"#;
    let created = env
        .call("POST", "/v1/workspaces/acme/sources/web/deletions", Some(body), &[])
        .await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    let id = id_of(&created.body);
    let purger = default_purger(&env);
    let outcome = purger.run(&id, "w1", false, None).await.unwrap();
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let shards = env.stack.ledger.shards(&id).await.unwrap();
    let ranges: Vec<_> = shards.iter().filter(|s| s.prefix == "acme/web/2024-01-31/").collect();
    assert!(ranges.len() >= 16, "{} ranges", ranges.len());
    for key in &keys {
        assert_eq!(ranges.iter().filter(|s| s.holds_key(key)).count(), 1, "{key}");
    }
    let status = status(&env, &id).await;
    assert_eq!(status["receipt"]["totals"]["objects"], 2500, "{status:#}");
    let mut left = env.inventory(&env.archive, "acme/").await.versions;
    left.sort();
    let mut expected = kept.map(String::from).to_vec();
    expected.sort();
    assert_eq!(left, expected);
}

#[tokio::test]
async fn a_large_prefix_is_split_by_sub_prefix_and_late_data_is_caught_by_verification() {
    let env = env(Versioning::None).await;
    for src in 0..5 {
        for i in 0..3 {
            env.put(&env.archive, &format!("acme/src-{src}/2024-01-01/part-{i}.json.gz"))
                .await;
        }
    }
    env.put(&env.archive, "acme-corp/src-0/2024-01-01/part-0.json.gz").await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let late = LateWriter {
        inner: S3Store::new(env.clients.s3.clone()),
        clients: env.clients.clone(),
        bucket: env.archive.clone(),
        key: "acme/src-new/2024-01-02/part-0.json.gz".into(),
        done: Arc::default(),
    };
    let purger = Purger::new(
        env.stack.ledger.clone(),
        late,
        env.stack.schedules.clone(),
        env.clock.clone(),
        env.stack.settings.map.clone(),
        PurgeConfig::default(),
    );
    let outcome = purger.run(&id, "w1", false, None).await.unwrap();
    // Five sub-prefix shards plus the profiles prefix were purged, but the
    // object written meanwhile under a new sub-prefix is found.
    let PurgeOutcome::Failed { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        reason.contains("verification found data left") && reason.contains("/acme/"),
        "{reason}"
    );
    let body = status(&env, &id).await;
    assert_eq!(
        body["progress"]["shards_total"], 7,
        "5 sub-prefixes + profiles + the re-purge of acme/"
    );
    assert_eq!(body["progress"]["prefixes_total"], 2, "acme/ and the profiles prefix");
    assert_eq!(
        env.inventory(&env.archive, "acme/").await.versions,
        ["acme/src-new/2024-01-02/part-0.json.gz"]
    );

    // The sweep retries; the re-purge of the whole prefix completes it.
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert_eq!(report.retried, vec![id.clone()]);
    env.stack.tick().await.unwrap();
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "COMPLETED", "{body:#}");
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    assert_eq!(env.inventory(&env.archive, "acme-corp/").await.versions.len(), 1);
    // The receipt speaks of the data-map prefixes, with every object once.
    let prefixes: Vec<&str> = body["receipt"]["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["prefix"].as_str().unwrap())
        .collect();
    assert_eq!(prefixes, ["acme/", "acme/"]);
    assert_eq!(body["receipt"]["totals"]["objects"], 16);
}

/// The ledger, where some other writer (a callback, the sweep marking the
/// deadline) changes the request just before the first worker's write of
/// `VERIFYING` lands.
struct Meddled {
    inner: DynamoLedger,
    clock: deletion_core::ports::ManualClock,
    fired: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Ledger for Meddled {
    async fn insert(
        &self,
        r: &deletion_core::model::DeletionRequest,
        k: Option<&deletion_core::ids::IdempotencyKey>,
    ) -> Result<(), deletion_core::LedgerError> {
        self.inner.insert(r, k).await
    }
    async fn get(
        &self,
        id: &RequestId,
    ) -> Result<Option<deletion_core::model::DeletionRequest>, deletion_core::LedgerError> {
        self.inner.get(id).await
    }
    async fn update(&self, next: &deletion_core::model::DeletionRequest) -> Result<(), deletion_core::LedgerError> {
        use deletion_core::model::Status;
        if next.status == Status::Verifying && !self.fired.swap(true, Ordering::SeqCst) {
            let mut other = self.inner.get(&next.id).await?.expect("the request");
            other.deadline_missed_at = Some(self.clock.now());
            other.version += 1;
            self.inner.update(&other).await?;
        }
        self.inner.update(next).await
    }
    async fn active_for(
        &self,
        s: &deletion_core::model::Scope,
    ) -> Result<Option<RequestId>, deletion_core::LedgerError> {
        self.inner.active_for(s).await
    }
    async fn by_idempotency_key(
        &self,
        k: &deletion_core::ids::IdempotencyKey,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<RequestId>, deletion_core::LedgerError> {
        self.inner.by_idempotency_key(k, now).await
    }
    async fn list(
        &self,
        key: &deletion_core::model::Listing,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<deletion_core::ports::RequestPage, deletion_core::LedgerError> {
        self.inner.list(key, limit, cursor).await
    }
    async fn active(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<deletion_core::ports::RequestPage, deletion_core::LedgerError> {
        self.inner.active(limit, cursor).await
    }
    async fn insert_shards(&self, s: &[deletion_core::model::Shard]) -> Result<(), deletion_core::LedgerError> {
        self.inner.insert_shards(s).await
    }
    async fn shards(&self, id: &RequestId) -> Result<Vec<deletion_core::model::Shard>, deletion_core::LedgerError> {
        self.inner.shards(id).await
    }
    async fn shards_planned(&self, id: &RequestId) -> Result<Option<u32>, deletion_core::LedgerError> {
        self.inner.shards_planned(id).await
    }
    async fn next_unstarted(&self, id: &RequestId) -> Result<Option<u32>, deletion_core::LedgerError> {
        self.inner.next_unstarted(id).await
    }
    async fn shard(
        &self,
        id: &RequestId,
        index: u32,
    ) -> Result<Option<deletion_core::model::Shard>, deletion_core::LedgerError> {
        self.inner.shard(id, index).await
    }
    async fn open_shards(
        &self,
        id: &RequestId,
        limit: u32,
    ) -> Result<Vec<deletion_core::ports::OpenShard>, deletion_core::LedgerError> {
        self.inner.open_shards(id, limit).await
    }
    async fn latest_leases(
        &self,
        id: &RequestId,
        limit: u32,
    ) -> Result<Vec<deletion_core::ports::OpenShard>, deletion_core::LedgerError> {
        self.inner.latest_leases(id, limit).await
    }
    async fn split_shard(
        &self,
        mine: &deletion_core::model::Shard,
        new: &deletion_core::model::Shard,
    ) -> Result<(), deletion_core::LedgerError> {
        self.inner.split_shard(mine, new).await
    }
    async fn update_shard(&self, s: &deletion_core::model::Shard) -> Result<(), deletion_core::LedgerError> {
        self.inner.update_shard(s).await
    }
    async fn put_page(&self, p: &deletion_core::ports::PendingPage) -> Result<(), deletion_core::LedgerError> {
        self.inner.put_page(p).await
    }
    async fn pages(
        &self,
        id: &RequestId,
        shard: u32,
    ) -> Result<Vec<deletion_core::ports::PendingPage>, deletion_core::LedgerError> {
        self.inner.pages(id, shard).await
    }
    async fn drop_page(&self, id: &RequestId, shard: u32, seq: u64) -> Result<(), deletion_core::LedgerError> {
        self.inner.drop_page(id, shard, seq).await
    }
}

#[async_trait]
impl deletion_core::ports::Holds for Meddled {
    async fn place_hold(
        &self,
        h: &deletion_core::ports::Hold,
    ) -> Result<deletion_core::ports::Hold, deletion_core::LedgerError> {
        self.inner.place_hold(h).await
    }
    async fn hold(
        &self,
        w: &deletion_core::ids::WorkspaceId,
    ) -> Result<Option<deletion_core::ports::Hold>, deletion_core::LedgerError> {
        self.inner.hold(w).await
    }
    async fn release_hold(
        &self,
        w: &deletion_core::ids::WorkspaceId,
    ) -> Result<Option<deletion_core::ports::Hold>, deletion_core::LedgerError> {
        self.inner.release_hold(w).await
    }
}

#[async_trait]
impl deletion_core::ports::Regulations for Meddled {
    async fn put_subjects(
        &self,
        id: &RequestId,
        s: &deletion_core::regulation::Subjects,
    ) -> Result<(), deletion_core::LedgerError> {
        self.inner.put_subjects(id, s).await
    }
    async fn subjects(
        &self,
        id: &RequestId,
    ) -> Result<deletion_core::regulation::Subjects, deletion_core::LedgerError> {
        self.inner.subjects(id).await
    }
    async fn forget_subjects(&self, id: &RequestId) -> Result<(), deletion_core::LedgerError> {
        self.inner.forget_subjects(id).await
    }
    async fn put_subject_refs(
        &self,
        id: &RequestId,
        at: chrono::DateTime<chrono::Utc>,
        source: Option<&deletion_core::ids::SourceId>,
        digests: &[String],
    ) -> Result<(), deletion_core::LedgerError> {
        self.inner.put_subject_refs(id, at, source, digests).await
    }
    async fn remove_subject_refs(
        &self,
        id: &RequestId,
        at: chrono::DateTime<chrono::Utc>,
        digests: &[String],
    ) -> Result<(), deletion_core::LedgerError> {
        self.inner.remove_subject_refs(id, at, digests).await
    }
    async fn subject_record(
        &self,
        digest: &str,
        of: Option<(&deletion_core::ids::WorkspaceId, &deletion_core::regulation::UserId)>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<deletion_core::ports::SubjectRecord, deletion_core::LedgerError> {
        self.inner.subject_record(digest, of, limit, cursor).await
    }
    async fn set_suppressed(
        &self,
        w: &deletion_core::ids::WorkspaceId,
        source: Option<&deletion_core::ids::SourceId>,
        ids: &[deletion_core::regulation::UserId],
        suppressed: bool,
        regulation: &RequestId,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), deletion_core::LedgerError> {
        self.inner
            .set_suppressed(w, source, ids, suppressed, regulation, since)
            .await
    }
    async fn lift_suppressions(
        &self,
        w: &deletion_core::ids::WorkspaceId,
        source: Option<&deletion_core::ids::SourceId>,
        ids: &[deletion_core::regulation::UserId],
        regulation: &RequestId,
    ) -> Result<(), deletion_core::LedgerError> {
        self.inner.lift_suppressions(w, source, ids, regulation).await
    }
    async fn suppression(
        &self,
        w: &deletion_core::ids::WorkspaceId,
        id: &deletion_core::regulation::UserId,
    ) -> Result<Option<deletion_core::ports::Suppression>, deletion_core::LedgerError> {
        self.inner.suppression(w, id).await
    }
    async fn suppressions(
        &self,
        w: &deletion_core::ids::WorkspaceId,
        source: Option<&deletion_core::ids::SourceId>,
        ids: &[deletion_core::regulation::UserId],
    ) -> Result<Vec<deletion_core::ports::Suppression>, deletion_core::LedgerError> {
        self.inner.suppressions(w, source, ids).await
    }
    async fn suppression_page(
        &self,
        w: &deletion_core::ids::WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<deletion_core::ports::Suppression>, Option<String>), deletion_core::LedgerError> {
        self.inner.suppression_page(w, limit, cursor).await
    }
}

#[tokio::test]
async fn a_non_worker_write_racing_the_start_of_verification_does_not_leave_it_unverified() {
    let env = env(Versioning::None).await;
    seed(&env, "acme", 3).await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let ledger = Meddled {
        inner: env.stack.ledger.clone(),
        clock: env.clock.clone(),
        fired: Default::default(),
    };
    let worker = Purger::new(
        ledger,
        S3Store::new(env.clients.s3.clone()),
        env.stack.schedules.clone(),
        env.clock.clone(),
        env.stack.settings.map.clone(),
        PurgeConfig::default(),
    );
    let outcome = worker.run(&id, "w1", false, None).await.unwrap();
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "COMPLETED", "{body:#}");
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
}

/// One undecodable item in the active index does not stop the sweep: it
/// is reported by its key and every request after it is still swept.
#[tokio::test]
async fn the_sweep_skips_and_reports_an_undecodable_item_and_sweeps_the_rest() {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    use deletion_aws::dynamodb::request_pk;
    let env = env(Versioning::None).await;
    let broken = RequestId::new();
    // Sorted first in the active index, with no decodable document.
    env.clients
        .dynamodb
        .put_item()
        .table_name(&env.stack.settings.table)
        .item("pk", A::S(request_pk(&broken)))
        .item("sk", A::S("REQ".into()))
        .item("gsi2pk", A::S("ACTIVE".into()))
        .item("gsi2sk", A::S(format!("2000-01-01T00:00:00.000Z#{broken}")))
        .item("doc", A::S("{not json".into()))
        .send()
        .await
        .unwrap();
    let mut ids = Vec::new();
    for ws in ["acme", "globex", "initech"] {
        let id = id_of(
            &env.call("POST", &format!("/v1/workspaces/{ws}/deletion"), None, &[])
                .await
                .body,
        );
        env.stack.schedules.disarm(&id).await.unwrap(); // lost behind our back
        ids.push(id);
    }
    env.clock.advance(Duration::days(5) + Duration::minutes(10));
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert_eq!(report.started, ids, "{report:?}");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].request_id, Some(broken));
    env.settle().await;
    for id in &ids {
        assert_eq!(status(&env, id).await["status"], "COMPLETED");
    }
}

/// A failed request that used up its attempts gives its scope back: the
/// scope can be asked again, and the old request says it was given up.
#[tokio::test]
async fn a_failed_request_out_of_attempts_releases_its_scope() {
    let env = env(Versioning::None).await;
    seed(&env, "acme", 2).await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let outcome = purge_with_a_missing_bucket(&env, &id).await;
    assert!(matches!(outcome, PurgeOutcome::Failed { .. }), "{outcome:?}");
    // Its attempts used up (as five failed retries would).
    let mut used_up = env.stack.ledger.get(&id).await.unwrap().unwrap();
    used_up.attempts = 5;
    used_up.version += 1;
    env.stack.ledger.update(&used_up).await.unwrap();

    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert_eq!(report.exhausted, vec![id.clone()]);
    assert!(report.retried.is_empty());
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "FAILED");
    let note = body["history"].as_array().unwrap().last().unwrap()["note"].clone();
    assert!(note.as_str().is_some_and(|n| n.starts_with("given up")), "{note}");
    assert_eq!(env.stack.ledger.active_for(&used_up.scope).await.unwrap(), None);
    let again = env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await;
    assert_eq!(again.status, 202, "{:#}", again.body);
    assert_ne!(id_of(&again.body), id, "a new request, not the given-up one");
    // Later sweeps still count it and never retry it.
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert_eq!(report.exhausted, vec![id.clone()]);
    assert!(report.retried.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shard_counter_hands_each_number_once_and_the_open_index_names_the_free_first() {
    use deletion_core::model::Shard;
    let env = env(Versioning::None).await;
    let ledger = &env.stack.ledger;
    let id = RequestId::new();
    let shards: Vec<Shard> = (0..40)
        .map(|i| Shard::planned(&id, i, "archive", &env.archive, &format!("acme/s{i:02}/"), "acme/"))
        .collect();
    ledger.insert_shards(&shards).await.unwrap();
    assert_eq!(ledger.shards_planned(&id).await.unwrap(), Some(40));
    // Two workers draw at once: every number exactly once, then none.
    let draw = || async {
        let mut got = Vec::new();
        while let Some(n) = ledger.next_unstarted(&id).await.unwrap() {
            got.push(n);
        }
        got
    };
    let (a, b) = tokio::join!(draw(), draw());
    let mut all: Vec<u32> = a.into_iter().chain(b).collect();
    all.sort();
    assert_eq!(all, (0..40).collect::<Vec<_>>());
    // Shard 5 taken, 6 done: the index lists the free first, then 5, not 6.
    let now = env.clock.now();
    let taken = shards[5].claimed("w", now, Duration::minutes(16));
    ledger.update_shard(&taken).await.unwrap();
    ledger.update_shard(&shards[6].finished()).await.unwrap();
    let open = ledger.open_shards(&id, 100).await.unwrap();
    assert_eq!(open.len(), 39);
    assert!(open[..38]
        .iter()
        .all(|o| o.lease_until.is_none() && o.index != 5 && o.index != 6));
    assert_eq!(
        (open[38].index, open[38].lease_until),
        (5, Some(now + Duration::minutes(16)))
    );
    // The lease that ends last, in one index read (what the sweep asks).
    let latest = |id| async move {
        ledger
            .latest_leases(&id, 1)
            .await
            .unwrap()
            .first()
            .map(|o| (o.index, o.lease_until))
    };
    assert_eq!(latest(id.clone()).await, Some((5, Some(now + Duration::minutes(16)))));
    let later = shards[7].claimed("v", now + Duration::minutes(1), Duration::minutes(16));
    ledger.update_shard(&later).await.unwrap();
    assert_eq!(latest(id.clone()).await, Some((7, Some(now + Duration::minutes(17)))));
    // The leases held, latest first, in one read (what a worker counts).
    let held: Vec<(u32, bool)> = ledger
        .latest_leases(&id, 3)
        .await
        .unwrap()
        .iter()
        .map(|o| (o.index, o.lease_until.is_some()))
        .collect();
    assert_eq!(held.len(), 3, "{held:?}");
    assert_eq!(&held[..2], [(7, true), (5, true)]);
    assert!(!held[2].1, "then the free ones: {held:?}");
    ledger.update_shard(&later.finished()).await.unwrap();
    assert_eq!(latest(id.clone()).await, Some((5, Some(now + Duration::minutes(16)))));
    assert_eq!(latest(RequestId::new()).await, None, "no plan: no lease");
    // A verification's extra shard raises the count; the counter goes on.
    let extra = Shard::planned(&id, 40, "archive", &env.archive, "acme/", "acme/");
    ledger.insert_shards(&[extra]).await.unwrap();
    assert_eq!(ledger.shards_planned(&id).await.unwrap(), Some(41));
    assert_eq!(ledger.next_unstarted(&id).await.unwrap(), Some(40));
    assert_eq!(ledger.open_shards(&id, 2).await.unwrap().len(), 2, "the limit holds");
    // A split is one transaction: the shard cut, the new one, the count.
    let stored = ledger.shard(&id, 5).await.unwrap().unwrap();
    let (mine, new) = stored.split_at("acme/s05/m", 41);
    ledger.split_shard(&mine, &new).await.unwrap();
    assert_eq!(ledger.shards_planned(&id).await.unwrap(), Some(42));
    let got = ledger.shard(&id, 41).await.unwrap().unwrap();
    assert_eq!((got.after.as_deref(), got.upto.clone()), (Some("acme/s05/m"), None));
    assert_eq!(
        ledger.shard(&id, 5).await.unwrap().unwrap().upto.as_deref(),
        Some("acme/s05/m")
    );
    // From a stale read, nothing of it is written.
    let (stale, lost) = stored.split_at("acme/s05/x", 42);
    assert!(matches!(
        ledger.split_shard(&stale, &lost).await,
        Err(deletion_core::LedgerError::Conflict)
    ));
    assert_eq!(ledger.shard(&id, 42).await.unwrap(), None);
    assert_eq!(ledger.shards_planned(&id).await.unwrap(), Some(42));
}

/// Two workers of four lanes each, at once, on DynamoDB Local and moto:
/// no shard is purged by two lanes (the totals are exact), the request is
/// claimed once, and nothing outside the workspace is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_of_four_lanes_share_forty_sources_without_a_shard_purged_twice() {
    let env = env(Versioning::None).await;
    let keys: Vec<String> = (0..40)
        .flat_map(|s| (0..3).map(move |n| format!("acme/src-{s:02}/2024-01-01/part-{n}.json.gz")))
        .collect();
    futures::future::join_all(keys.iter().map(|k| env.put(&env.archive, k))).await;
    for key in ["acme-corp/src-00/2024-01-01/x", "acme"] {
        env.put(&env.archive, key).await;
    }
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let worker = || {
        Purger::new(
            env.stack.ledger.clone(),
            S3Store::new(env.clients.s3.clone()),
            env.stack.schedules.clone(),
            env.clock.clone(),
            env.stack.settings.map.clone(),
            PurgeConfig {
                page_size: 2,
                shards_in_flight: 4,
                ..PurgeConfig::default()
            },
        )
    };
    let (a, b) = (worker(), worker());
    let (a, b) = tokio::join!(a.run(&id, "w1", false, None), b.run(&id, "w2", false, None));
    let outcomes = [a.unwrap(), b.unwrap()];
    assert!(
        outcomes.iter().any(|o| matches!(o, PurgeOutcome::Completed { .. })),
        "{outcomes:?}"
    );
    let shards = env.stack.ledger.shards(&id).await.unwrap();
    assert!(shards.len() >= 40, "one shard per source at least: {}", shards.len());
    assert!(shards.iter().all(|s| s.done && s.lease.is_none()));
    let body = status(&env, &id).await;
    assert_eq!(body["receipt"]["totals"]["objects"], 120, "{:#}", body["receipt"]);
    let purging = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["status"] == "PURGING")
        .count();
    assert_eq!(purging, 1, "claimed exactly once");
    let mut left = env.inventory(&env.archive, "").await.versions;
    left.sort();
    assert_eq!(left, ["acme", "acme-corp/src-00/2024-01-01/x"]);
}

/// A versioned workspace wider than the lanes (20 sources for 16 shards):
/// key ranges over versions and delete markers, pages of 1,000 ending
/// inside a source and inside a key's versions.
#[tokio::test]
async fn a_versioned_workspace_of_20_sources_is_purged_in_key_ranges_to_its_last_version() {
    let env = env(Versioning::All).await;
    let keys: Vec<String> = (0..20)
        .flat_map(|s| (0..100).map(move |k| format!("acme/src-{s:04}/2024-01-01/part-{k:04}")))
        .collect();
    for _ in 0..2 {
        for chunk in keys.chunks(100) {
            futures::future::join_all(chunk.iter().map(|k| env.put(&env.archive, k))).await;
        }
    }
    for key in keys.iter().step_by(10) {
        deletion_aws::provision::delete_key(&env.clients, &env.archive, key)
            .await
            .unwrap();
    }
    for i in 0..10 {
        deletion_aws::provision::start_upload(
            &env.clients,
            &env.archive,
            &format!("acme/src-0000/2024-01-01/upload-{i}"),
        )
        .await
        .unwrap();
    }
    env.put(&env.archive, "acme-corp/src-0000/x").await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let purger = s3_purger(
        &env,
        PurgeConfig {
            workers: 1,
            shards_in_flight: 4,
            ..PurgeConfig::default()
        },
    );
    let outcome = purger.run(&id, "w1", false, None).await.unwrap();
    let left = env.inventory(&env.archive, "acme/").await;
    assert!(
        left.is_empty(),
        "{outcome:?}: {} versions, {} markers, {} uploads left: {:?}",
        left.versions.len(),
        left.delete_markers.len(),
        left.uploads.len(),
        left.delete_markers
    );
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let totals = &status(&env, &id).await["receipt"]["totals"];
    // 1,800 current objects; 1,800 older versions and the 400 versions
    // under the markers.
    assert_eq!(totals["objects"], 1800, "{totals:#}");
    assert_eq!(totals["versions"], 2200, "{totals:#}");
    assert_eq!(totals["delete_markers"], 200, "{totals:#}");
    assert_eq!(totals["uploads_aborted"], 10, "{totals:#}");
    assert_eq!(env.inventory(&env.archive, "acme-corp/").await.versions.len(), 1);
}

/// A version listing that starts after a key (a key range's lower bound)
/// lists every version and marker of the keys after it, the first one
/// included, and nothing of the key itself, as S3 does.
#[tokio::test]
async fn a_version_listing_after_a_key_starts_at_the_first_entry_past_it() {
    use deletion_core::ports::{start_after, EntryKind};
    let env = env(Versioning::All).await;
    for key in ["acme/a", "acme/a", "acme/b", "acme/c"] {
        env.put(&env.archive, key).await;
    }
    deletion_aws::provision::delete_key(&env.clients, &env.archive, "acme/b")
        .await
        .unwrap();
    let s3 = S3Store::new(env.clients.s3.clone());
    let listed = |after: &'static str| {
        let s3 = &s3;
        let bucket = env.archive.clone();
        async move {
            let page = s3
                .list_page(&bucket, "acme/", Some(&start_after(after)), 1000)
                .await
                .unwrap();
            let mut entries: Vec<_> = page
                .entries
                .into_iter()
                .map(|e| (e.key, e.kind == EntryKind::DeleteMarker))
                .collect();
            entries.sort();
            entries
        }
    };
    let b = [("acme/b".to_owned(), false), ("acme/b".to_owned(), true)];
    let c = ("acme/c".to_owned(), false);
    // A bound no key equals: the marker of the first key past it is listed.
    assert_eq!(listed("acme/a~").await, [b[0].clone(), b[1].clone(), c.clone()]);
    // A bound that is a key: none of its versions, all of the next one's.
    assert_eq!(listed("acme/a").await, [b[0].clone(), b[1].clone(), c.clone()]);
    assert_eq!(listed("acme/b").await, [c]);
    assert_eq!(listed("acme/").await.len(), 5);
}
