//! Hostile races against a real moto server: many revokes racing the purge
//! timer and its replays, concurrently. Whatever the interleaving, a
//! request is revoked or purged, never both, and a revoked one deletes
//! nothing.

use std::sync::Arc;

use chrono::Duration;
use deletion_aws::s3::S3Store;
use deletion_core::ports::{Clock, ManualClock};
use deletion_core::purge::PurgeOutcome;
use futures::stream::{self, StreamExt};
use integration_tests::{env, purger, Killable, Versioning};
use local_runner::Stack;
use purge::PurgeEvent;
use serde_json::Value;

/// Trials, and how many run at once.
const TRIALS: usize = 200;
const AT_ONCE: usize = 8;

#[derive(Debug, PartialEq, Eq)]
enum Winner {
    Revoke,
    Purge,
}

/// One trial, on a deployment of its own: moto undoes a cancelled
/// transaction by restoring a copy of the whole table, which would also
/// undo other trials' concurrent writes (DynamoDB itself does no such
/// thing).
async fn trial(n: usize) -> Winner {
    let env = env(Versioning::None).await;
    // The purge worker's clock says the grace has ended; the revoking
    // caller's says it has not (two machines' clocks differ): both may act.
    let late_clock = ManualClock::new(env.clock.now() + Duration::days(5) + Duration::seconds(1));
    let mut settings = env.stack.settings.clone();
    settings.purge.workers = 1; // no fan-out: the race is over the claim
    let late = Stack::new(env.clients.clone(), settings, late_clock).expect("stack");
    let ws = format!("hostile-{n}");
    env.put(&env.archive, &format!("{ws}/web/2024-01-01/x")).await;
    let created = env
        .call("POST", &format!("/v1/workspaces/{ws}/deletion"), None, &[])
        .await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    let id = created.body["id"].as_str().expect("id").to_owned();
    let event = || PurgeEvent {
        request_id: id.clone(),
        retry: false,
        remind: false,
    };
    // The revoke, the timer firing, and a replay of the same timer event,
    // each a little later or sooner from trial to trial so that every
    // order happens.
    let path = format!("/v1/workspaces/{ws}/deletion");
    // (The revoke takes more round trips than the claim: it starts first.)
    let jitter = |salt: usize| std::time::Duration::from_millis(((n * 7919 + salt * 104_729) % 151) as u64);
    let (revoke, fired, replayed) = tokio::join!(
        env.call("DELETE", &path, None, &[]),
        async {
            tokio::time::sleep(jitter(2)).await;
            late.purge.handle(event(), "timer", None).await
        },
        async {
            tokio::time::sleep(jitter(3)).await;
            late.purge.handle(event(), "replay", None).await
        },
    );
    let (fired, replayed) = (fired.expect("purge"), replayed.expect("purge"));
    let got = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await;
    assert_eq!(got.status, 200, "trial {n}: {:#}", got.body);
    let body: Value = got.body;
    let left = env.inventory(&env.archive, &format!("{ws}/")).await.versions.len();
    let statuses: Vec<&str> = body["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert!(
        !(statuses.contains(&"REVOKED") && statuses.contains(&"PURGING")),
        "trial {n}: both revoked and purged: {statuses:?}"
    );
    let outcomes = [fired.outcome.as_str(), replayed.outcome.as_str()];
    match revoke.status.as_u16() {
        200 => {
            assert_eq!(body["status"], "REVOKED", "trial {n}: {body:#}");
            assert_eq!(left, 1, "trial {n}: a revoked request deleted data");
            assert!(!outcomes.contains(&"completed"), "trial {n}: {outcomes:?}");
            Winner::Revoke
        }
        409 => {
            assert_eq!(body["status"], "COMPLETED", "trial {n}: {body:#} {outcomes:?}");
            assert_eq!(left, 0, "trial {n}");
            // Exactly one delivery purged; the other found it under way or done.
            assert_eq!(
                outcomes.iter().filter(|o| **o == "completed").count(),
                1,
                "trial {n}: {outcomes:?}"
            );
            let claims = statuses.iter().filter(|s| **s == "PURGING").count();
            assert_eq!(claims, 1, "trial {n}: claimed twice: {statuses:?}");
            Winner::Purge
        }
        other => panic!("trial {n}: revoke answered {other}: {:#}", revoke.body),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revokes_racing_the_timer_and_its_replays_never_both_revoke_and_purge() {
    let winners: Vec<Winner> = stream::iter(0..TRIALS)
        .map(trial)
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let revoked = winners.iter().filter(|w| **w == Winner::Revoke).count();
    let purged = winners.iter().filter(|w| **w == Winner::Purge).count();
    assert_eq!(revoked + purged, TRIALS);
    assert!(
        revoked > 0 && purged > 0,
        "both orders must have happened: {revoked} revoked, {purged} purged"
    );
    println!("{TRIALS} trials: {revoked} revoked, {purged} purged");
}

/// A small deterministic generator, so a failing trial can be replayed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Kills one worker after another at random deletes (before or after the
/// delete goes through), then lets one finish.
async fn killed_at_random(seed: u64) {
    let mut rng = Lcg(seed);
    let versioning = if rng.below(2) == 0 {
        Versioning::None
    } else {
        Versioning::All
    };
    let env = env(versioning).await;
    let objects = 5 + rng.below(20) as usize;
    for i in 0..objects {
        env.put(&env.archive, &format!("acme/web/2024-01-0{}/part-{i:03}", 1 + i % 3))
            .await;
    }
    env.put(&env.archive, "acme-corp/web/2024-01-01/part-000").await;
    env.put(&env.archive, "acmeweb/2024-01-01/part-000").await;
    let created = env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await;
    let id = deletion_core::ids::RequestId::parse(created.body["id"].as_str().unwrap()).unwrap();
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let kills = 1 + rng.below(3);
    for k in 0..kills {
        let doomed = purger(
            &env,
            Killable {
                inner: S3Store::new(env.clients.s3.clone()),
                deletes: Arc::default(),
                stop_at: 1 + rng.below(3) as usize,
                after_delete: rng.below(2) == 1,
            },
        );
        let owner = format!("doomed-{k}");
        let run = doomed.run(&id, &owner, false, None);
        // A worker that finishes before its kill point simply finishes.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), run).await;
        env.clock.advance(Duration::minutes(17));
    }
    let rescuer = purger(&env, S3Store::new(env.clients.s3.clone()));
    let outcome = rescuer.run(&id, "rescuer", false, None).await.unwrap();
    let body = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await.body;
    assert!(
        matches!(outcome, PurgeOutcome::Completed { .. } | PurgeOutcome::Settled { .. }),
        "seed {seed}: {outcome:?}"
    );
    assert_eq!(body["status"], "COMPLETED", "seed {seed}: {body:#}");
    assert!(
        env.inventory(&env.archive, "acme/").await.is_empty(),
        "seed {seed}: left in scope"
    );
    assert_eq!(
        env.inventory(&env.archive, "acme-corp/").await.versions.len(),
        1,
        "seed {seed}"
    );
    assert_eq!(
        env.inventory(&env.archive, "acmeweb/").await.versions.len(),
        1,
        "seed {seed}"
    );
    assert_eq!(
        body["receipt"]["totals"]["objects"].as_u64(),
        Some(objects as u64),
        "seed {seed}: every object counted once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn purge_workers_killed_at_random_leave_nothing_in_scope_and_touch_nothing_outside() {
    stream::iter(
        std::env::var("SEEDS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(|s| s..=s)
            .unwrap_or(1..=12u64),
    )
    .map(killed_at_random)
    .buffer_unordered(4)
    .collect::<Vec<()>>()
    .await;
}
