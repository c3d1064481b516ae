//! Legal holds against a real moto server: a purge whose grace ends under a
//! hold waits `ON_HOLD` with its deadline paused, one under way stops at
//! its next shard, one placed mid-shard stops it within one page, and all
//! finish after the release.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::s3::S3Store;
use deletion_core::ids::{RequestId, WorkspaceId};
use deletion_core::ports::{Clock, DeleteFailure, Entry, EntryPage, Hold, Holds, ObjectStore, Upload, UploadPage};
use deletion_core::purge::PurgeOutcome;
use deletion_core::StoreError;
use integration_tests::{env, purger, Env, Killable, Versioning};
use serde_json::{json, Value};

fn id_of(body: &Value) -> RequestId {
    RequestId::parse(body["id"].as_str().expect("id")).expect("request id")
}

async fn status(env: &Env, id: &RequestId) -> Value {
    let a = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    a.body
}

fn deadline(body: &Value) -> chrono::DateTime<chrono::Utc> {
    body["deadline"].as_str().expect("deadline").parse().expect("a time")
}

#[tokio::test]
async fn a_purge_whose_grace_ends_under_a_hold_waits_with_its_deadline_paused() {
    let env = env(Versioning::None).await;
    env.put(&env.archive, "acme/web/2024-01-01/x.json.gz").await;
    let created = env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await;
    let id = id_of(&created.body);
    let first_deadline = deadline(&created.body);

    place_a_hold_as_only_an_operator_may(&env).await;

    env.stack.pump_stream().await.unwrap();
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    env.settle().await;
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "ON_HOLD", "{body:#}");
    assert_eq!(body["deadline_paused"], true);
    let note = body["history"].as_array().unwrap().last().unwrap()["note"].clone();
    assert!(note.as_str().unwrap().contains("litigation 2026-17"), "{note}");
    assert_eq!(
        env.inventory(&env.archive, "acme/").await.versions.len(),
        1,
        "nothing purged"
    );
    // Revoking is still too late: the grace is over.
    env.call("DELETE", "/v1/workspaces/acme/deletion", None, &[])
        .await
        .problem(409);

    // Past the original deadline, the sweep neither starts it nor marks a
    // missed deadline: the clock is paused.
    env.clock.advance(Duration::days(30));
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert!(report.deadline_missed.is_empty(), "{report:?}");
    assert!(report.started.is_empty() && report.released.is_empty(), "{report:?}");
    env.settle().await;
    assert_eq!(status(&env, &id).await["status"], "ON_HOLD");
    assert_eq!(status(&env, &id).await["days_left"], 24, "frozen where the hold began");

    release_and_finish(&env, &id, first_deadline).await;
}

/// Only an operator places a hold, and only with a reason; a second hold
/// leaves the standing one as it is.
async fn place_a_hold_as_only_an_operator_may(env: &Env) {
    env.member("acme", "ann", "admin").await;
    let ann = env
        .call_as(
            Some(("ann", &[])),
            "PUT",
            "/v1/workspaces/acme/hold",
            Some(r#"{"reason": "x"}"#),
            &[],
        )
        .await;
    ann.problem(403);
    env.call("PUT", "/v1/workspaces/acme/hold", Some(r#"{"reason": " "}"#), &[])
        .await
        .problem(400);
    let hold = env
        .call(
            "PUT",
            "/v1/workspaces/acme/hold",
            Some(r#"{"reason": "litigation 2026-17"}"#),
            &[],
        )
        .await;
    assert_eq!(hold.status, 200, "{:#}", hold.body);
    assert_eq!(hold.body["placed_by"], "ops");
    let again = env
        .call("PUT", "/v1/workspaces/acme/hold", Some(r#"{"reason": "another"}"#), &[])
        .await;
    assert_eq!(again.body["reason"], "litigation 2026-17", "the standing hold stays");
}

/// Releasing the hold resumes the request with its deadline moved on by the
/// time held, and the purge then completes.
async fn release_and_finish(env: &Env, id: &RequestId, first_deadline: chrono::DateTime<chrono::Utc>) {
    let released = env.call("DELETE", "/v1/workspaces/acme/hold", None, &[]).await;
    assert_eq!(released.status, 200, "{:#}", released.body);
    assert_eq!(released.body["resumed"], json!([id.to_string()]));
    let body = status(env, id).await;
    assert_eq!(body["status"], "SCHEDULED");
    assert_eq!(body["deadline_paused"], false);
    assert_eq!(
        deadline(&body) - first_deadline,
        Duration::days(30),
        "moved on by the time held"
    );
    env.settle().await;
    let body = status(env, id).await;
    assert_eq!(body["status"], "COMPLETED", "{body:#}");
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    assert!(body["deadline_missed_at"].is_null());
    env.call("GET", "/v1/workspaces/acme/hold", None, &[])
        .await
        .problem(404);
    env.call("DELETE", "/v1/workspaces/acme/hold", None, &[])
        .await
        .problem(404);
}

#[tokio::test]
async fn a_hold_placed_during_a_purge_stops_it_at_the_next_shard_and_the_release_finishes_it() {
    let env = env(Versioning::None).await;
    for i in 0..13 {
        env.put(&env.archive, &format!("acme/web/2024-01-01/part-{i:03}.json.gz"))
            .await;
    }
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    // A worker dies in its second delete (after one page of four).
    let killable = Killable::new(S3Store::new(env.clients.s3.clone()), 2, false);
    let doomed = purger(&env, killable.clone());
    let killed = killable.run_until_killed(doomed.run(&id, "doomed", false, None)).await;
    assert!(
        killed.is_none(),
        "the worker must have been stopped in its second delete"
    );
    assert_eq!(status(&env, &id).await["status"], "PURGING");

    env.call(
        "PUT",
        "/v1/workspaces/acme/hold",
        Some(r#"{"reason": "regulator inquiry"}"#),
        &[],
    )
    .await;
    env.clock.advance(Duration::minutes(17));
    let rescuer = purger(&env, S3Store::new(env.clients.s3.clone()));
    assert_eq!(
        rescuer.run(&id, "rescuer", false, None).await.unwrap(),
        PurgeOutcome::OnHold
    );
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "ON_HOLD", "{body:#}");
    assert_eq!(
        env.inventory(&env.archive, "acme/").await.versions.len(),
        9,
        "stopped where it was"
    );
    // A late timer delivery changes nothing while the hold stands.
    assert_eq!(
        rescuer.run(&id, "late", false, None).await.unwrap(),
        PurgeOutcome::Settled {
            status: deletion_core::model::Status::OnHold
        }
    );

    env.call("DELETE", "/v1/workspaces/acme/hold", None, &[]).await;
    let outcome = rescuer.run(&id, "rescuer", false, None).await.unwrap();
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let body = status(&env, &id).await;
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    // Resumed from its checkpoint: every object counted once.
    assert_eq!(body["receipt"]["totals"]["objects"], 13, "{body:#}");
    let statuses: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["status"].as_str())
        .collect();
    assert_eq!(
        statuses,
        [
            "SCHEDULED",
            "PURGING",
            "ON_HOLD",
            "SCHEDULED",
            "PURGING",
            "VERIFYING",
            "COMPLETED"
        ]
    );
}

#[tokio::test]
async fn the_sweep_resumes_a_request_whose_hold_is_gone() {
    let env = env(Versioning::None).await;
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.call("PUT", "/v1/workspaces/acme/hold", Some(r#"{"reason": "r"}"#), &[])
        .await;
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    env.settle().await;
    assert_eq!(status(&env, &id).await["status"], "ON_HOLD");
    // The hold removed behind the API's back (a release cut short).
    use deletion_core::ports::Holds;
    env.stack
        .ledger
        .release_hold(&deletion_core::ids::WorkspaceId::parse("acme").unwrap())
        .await
        .unwrap();
    let report = env.stack.grace_timer.sweep().await.unwrap();
    assert_eq!(report.released, vec![id.clone()]);
    env.settle().await;
    assert_eq!(status(&env, &id).await["status"], "COMPLETED");
}

/// S3, with `hold` placed in the ledger during the `at`-th DeleteObjects; counts the DeleteObjects sent after that one.
struct PlacesAHold {
    inner: S3Store,
    ledger: DynamoLedger,
    hold: Hold,
    at: usize,
    deletes: AtomicUsize,
    after: Arc<AtomicUsize>,
}

#[async_trait]
impl ObjectStore for PlacesAHold {
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_page(b, p, c, max).await
    }
    async fn delete_batch(&self, bucket: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        let n = self.deletes.fetch_add(1, Ordering::SeqCst) + 1;
        if n > self.at {
            self.after.fetch_add(1, Ordering::SeqCst);
        }
        if n == self.at {
            self.ledger.place_hold(&self.hold).await.expect("the hold is placed");
        }
        self.inner.delete_batch(bucket, entries).await
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
        self.inner.abort_upload(b, u).await
    }
}

#[tokio::test]
async fn a_hold_placed_mid_shard_stops_deletion_within_one_page() {
    let env = env(Versioning::None).await;
    // One shard of 13 objects: pages of 4.
    for i in 0..13 {
        env.put(&env.archive, &format!("acme/web/2024-01-01/part-{i:03}.json.gz"))
            .await;
    }
    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let after = Arc::new(AtomicUsize::new(0));
    let store = PlacesAHold {
        inner: S3Store::new(env.clients.s3.clone()),
        ledger: env.stack.ledger.clone(),
        hold: Hold {
            workspace: WorkspaceId::parse("acme").expect("a workspace id"),
            reason: "regulator inquiry".into(),
            placed_by: "ops".into(),
            since: env.clock.now(),
        },
        at: 2,
        deletes: AtomicUsize::new(0),
        after: after.clone(),
    };
    let outcome = purger(&env, store).run(&id, "worker", false, None).await.unwrap();
    assert_eq!(outcome, PurgeOutcome::OnHold);
    assert_eq!(
        after.load(Ordering::SeqCst),
        0,
        "no delete is sent once the hold stands"
    );
    assert_eq!(
        env.inventory(&env.archive, "acme/").await.versions.len(),
        13 - 2 * 4,
        "the page deleted while the hold was placed was the last"
    );
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "ON_HOLD", "{body:#}");
    assert_eq!(body["progress"]["objects"], 8, "{body:#}");

    let released = env.call("DELETE", "/v1/workspaces/acme/hold", None, &[]).await;
    assert_eq!(released.body["resumed"], json!([id.to_string()]), "{:#}", released.body);
    env.settle().await;
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "COMPLETED", "{body:#}");
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    assert_eq!(
        body["receipt"]["totals"]["objects"], 13,
        "every object counted once: {body:#}"
    );
}
