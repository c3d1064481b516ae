//! Hostile races against the ledger on DynamoDB Local: many revokes racing
//! the purge timer and its replays, concurrently. Whatever the interleaving, a
//! request is revoked or purged, never both, and a revoked one deletes
//! nothing.

use chrono::Duration;
use deletion_aws::s3::S3Store;
use deletion_core::ports::{Clock, ManualClock};
use deletion_core::purge::PurgeOutcome;
use futures::stream::{self, StreamExt};
use integration_tests::{env, purger, Env, Killable, Versioning};
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

/// How a trial orders the revoke, the timer and its replay.
fn order(n: usize) -> &'static str {
    match n % 4 {
        0 => "revoke first",
        1 => "timer first",
        _ => "raced",
    }
}

/// Lets other tasks run `n` times: interleavings that vary from trial to
/// trial without waiting on the clock.
async fn yield_times(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// One trial, on a workspace of its own in the shared deployment. A
/// quarter revoke before the timer fires, a quarter let the timer purge
/// first, the rest race all three at once (shifted by a varying number of
/// yields), so both outcomes happen whatever the machine's speed.
async fn trial(env: &Env, late: &Stack<ManualClock>, n: usize) -> Winner {
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
    let path = format!("/v1/workspaces/{ws}/deletion");
    let revoke_call = env.call("DELETE", &path, None, &[]);
    let (revoke, fired, replayed) = match order(n) {
        "revoke first" => {
            let revoke = revoke_call.await;
            let (fired, replayed) = tokio::join!(
                late.purge.handle(event(), "timer", None),
                late.purge.handle(event(), "replay", None)
            );
            (revoke, fired, replayed)
        }
        "timer first" => {
            let fired = late.purge.handle(event(), "timer", None).await;
            let (revoke, replayed) = tokio::join!(revoke_call, late.purge.handle(event(), "replay", None));
            (revoke, fired, replayed)
        }
        _ => tokio::join!(
            revoke_call,
            async {
                yield_times(n % 7).await;
                late.purge.handle(event(), "timer", None).await
            },
            async {
                yield_times(n % 5).await;
                late.purge.handle(event(), "replay", None).await
            },
        ),
    };
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
    // One deployment for every trial: DynamoDB Local cancels a transaction
    // without touching other callers' writes, as DynamoDB does.
    let env = env(Versioning::None).await;
    // The purge worker's clock says the grace has ended; the revoking
    // caller's says it has not (two machines' clocks differ): both may act.
    let late_clock = ManualClock::new(env.clock.now() + Duration::days(5) + Duration::seconds(1));
    let mut settings = env.stack.settings.clone();
    settings.purge.workers = 1; // no fan-out: the race is over the claim
    let late = Stack::new(env.clients.clone(), settings, late_clock).expect("stack");
    let winners: Vec<(usize, Winner)> = stream::iter(0..TRIALS)
        .map(|n| {
            let (env, late) = (&env, &late);
            async move { (n, trial(env, late, n).await) }
        })
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    for (n, winner) in &winners {
        match order(*n) {
            "revoke first" => assert_eq!(*winner, Winner::Revoke, "trial {n}"),
            "timer first" => assert_eq!(*winner, Winner::Purge, "trial {n}"),
            _ => {}
        }
    }
    let revoked = winners.iter().filter(|(_, w)| *w == Winner::Revoke).count();
    let purged = winners.iter().filter(|(_, w)| *w == Winner::Purge).count();
    assert_eq!(revoked + purged, TRIALS);
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
        let stop_at = 1 + rng.below(3) as usize;
        let killable = Killable::new(S3Store::new(env.clients.s3.clone()), stop_at, rng.below(2) == 1);
        let doomed = purger(&env, killable.clone());
        let owner = format!("doomed-{k}");
        // A worker that finishes before its kill point simply finishes.
        let _ = killable.run_until_killed(doomed.run(&id, &owner, false, None)).await;
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
