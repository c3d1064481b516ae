//! Hostile races against a real moto server: many revokes racing the purge
//! timer and its replays, concurrently. Whatever the interleaving, a
//! request is revoked or purged, never both, and a revoked one deletes
//! nothing.

use chrono::Duration;
use deletion_core::ports::{Clock, ManualClock};
use futures::stream::{self, StreamExt};
use integration_tests::{env, Versioning};
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
    let late = Stack::new(env.clients.clone(), settings, late_clock);
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
