//! Workspace deletion, end to end, against a real moto server:
//! intake → ledger → stream → grace timer → schedule fires → purge →
//! verification → receipt.

use chrono::Duration;
use deletion_aws::dynamodb::{request_pk, REQUEST_SK};
use deletion_aws::streams::{lambda_event, ChangedKey};
use deletion_core::ids::RequestId;
use deletion_core::ports::{Clock, ManualClock};
use integration_tests::{env, Env, Versioning};
use local_runner::Stack;
use purge::PurgeEvent;
use serde_json::Value;

fn id_of(body: &Value) -> RequestId {
    RequestId::parse(body["id"].as_str().expect("id in body")).expect("request id")
}

async fn create(env: &Env, ws: &str) -> RequestId {
    let a = env
        .call("POST", &format!("/v1/workspaces/{ws}/deletion"), None, &[])
        .await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    id_of(&a.body)
}

async fn status(env: &Env, id: &RequestId) -> Value {
    let a = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    a.body
}

async fn seed_workspace(env: &Env, ws: &str) {
    env.put(&env.archive, &format!("{ws}/web/2024-01-01/part-0.json.gz"))
        .await;
    env.put(&env.archive, &format!("{ws}/web/2024-01-02/part-0.json.gz"))
        .await;
    env.put(&env.archive, &format!("{ws}/ios/2024-01-01/part-0.json.gz"))
        .await;
    env.put(&env.profiles, &format!("{ws}/spaces/main/profiles.json")).await;
}

#[tokio::test]
async fn create_answers_202_then_the_same_request_with_200() {
    let env = env(Versioning::None).await;
    let first = env
        .call(
            "POST",
            "/v1/workspaces/acme/deletion",
            Some(r#"{"reason": "closing"}"#),
            &[],
        )
        .await;
    assert_eq!(first.status, 202, "{:#}", first.body);
    assert_eq!(first.body["status"], "SCHEDULED");
    assert_eq!(first.body["reason"], "closing");
    assert_eq!(first.body["revocable"], true);
    let id = id_of(&first.body);
    assert_eq!(
        first.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/v1/deletions/{id}").as_str())
    );
    let created = chrono::DateTime::parse_from_rfc3339(first.body["created_at"].as_str().unwrap()).unwrap();
    let grace = chrono::DateTime::parse_from_rfc3339(first.body["grace_ends_at"].as_str().unwrap()).unwrap();
    let deadline = chrono::DateTime::parse_from_rfc3339(first.body["deadline"].as_str().unwrap()).unwrap();
    assert_eq!(grace - created, Duration::days(5));
    assert_eq!(deadline - created, Duration::days(30));

    let again = env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await;
    assert_eq!(again.status, 200);
    assert_eq!(id_of(&again.body), id);

    // Exactly one request item exists for the workspace.
    let requests = env
        .ledger_keys()
        .await
        .into_iter()
        .filter(|(_, sk)| sk == "REQ")
        .count();
    assert_eq!(requests, 1);
}

#[tokio::test]
async fn revoke_in_grace_removes_the_timer_and_touches_no_data() {
    let env = env(Versioning::None).await;
    seed_workspace(&env, "acme").await;
    let id = create(&env, "acme").await;
    env.stack.pump_stream().await.unwrap();
    let armed = env.stack.schedules.armed_at(&id).await.unwrap().expect("timer armed");
    let body = status(&env, &id).await;
    assert_eq!(
        armed.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        body["grace_ends_at"]
    );

    env.clock.advance(Duration::days(4));
    let revoked = env.call("DELETE", "/v1/workspaces/acme/deletion", None, &[]).await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    assert_eq!(revoked.body["status"], "REVOKED");
    env.stack.pump_stream().await.unwrap();
    assert_eq!(
        env.stack.schedules.armed_at(&id).await.unwrap(),
        None,
        "timer must be gone"
    );

    // Past the grace nothing fires and nothing is deleted.
    env.clock.advance(Duration::days(10));
    assert!(env.stack.tick().await.unwrap().is_empty());
    assert_eq!(env.inventory(&env.archive, "acme/").await.versions.len(), 3);
    assert_eq!(env.inventory(&env.profiles, "acme/").await.versions.len(), 1);
    let body = status(&env, &id).await;
    assert_eq!(body["status"], "REVOKED");
    let statuses: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["SCHEDULED", "REVOKED"]);

    // A second revoke hears that it was revoked already; a new request may be made.
    let again = env.call("DELETE", "/v1/workspaces/acme/deletion", None, &[]).await;
    assert_eq!(
        again.problem(409)["type"],
        "urn:deletion-service:problem:already-revoked"
    );
    let new = create(&env, "acme").await;
    assert_ne!(new, id);
}

#[tokio::test]
async fn grace_end_fires_the_purge_which_completes_verified_and_spares_neighbours() {
    let env = env(Versioning::None).await;
    seed_workspace(&env, "acme").await;
    seed_workspace(&env, "acme-corp").await;
    env.put(&env.archive, "acme").await; // a key equal to the bare id, no delimiter
    env.put(&env.archive, "acmeweb/2024-01-01/x.json.gz").await;
    let id = create(&env, "acme").await;
    env.stack.pump_stream().await.unwrap();

    // Not yet: a day before the grace ends only its reminder fires.
    env.clock.advance(Duration::days(4));
    let fired = env.stack.tick().await.unwrap();
    assert!(fired.iter().all(|f| f.outcome == "reminded"), "{fired:?}");
    assert_eq!(status(&env, &id).await["status"], "SCHEDULED");

    env.clock.advance(Duration::days(1) + Duration::seconds(1));
    // After the grace, revoking is refused: the deletion is irreversible.
    let late = env.call("DELETE", "/v1/workspaces/acme/deletion", None, &[]).await;
    assert_eq!(late.problem(409)["type"], "urn:deletion-service:problem:irreversible");

    let fired = env.stack.tick().await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].outcome, "completed", "{:?}", fired[0]);

    let body = status(&env, &id).await;
    assert_eq!(body["status"], "COMPLETED");
    let statuses: Vec<&str> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["SCHEDULED", "PURGING", "VERIFYING", "COMPLETED"]);
    // acme/ of the archive splits into its sources web/ and ios/; profiles
    // has one sub-prefix (spaces/) and stays whole: two data-map prefixes
    // in three shards.
    assert_eq!(body["progress"]["prefixes_total"], 2);
    assert_eq!(body["progress"]["prefixes_done"], 2);
    assert_eq!(body["progress"]["shards_total"], 3);
    assert_eq!(body["progress"]["shards_done"], 3);
    assert_eq!(body["progress"]["objects"], 4);
    let receipt = &body["receipt"];
    assert_eq!(receipt["request_id"], id.as_str());
    assert_eq!(receipt["totals"]["objects"], 4);
    let prefixes: Vec<(&str, &str)> = receipt["prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["bucket"].as_str().unwrap(), p["prefix"].as_str().unwrap()))
        .collect();
    assert_eq!(
        prefixes,
        [(env.archive.as_str(), "acme/"), (env.profiles.as_str(), "acme/")]
    );

    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    assert!(env.inventory(&env.profiles, "acme/").await.is_empty());
    // Neighbours that share the first letters are untouched.
    assert_eq!(env.inventory(&env.archive, "acme-corp/").await.versions.len(), 3);
    assert_eq!(env.inventory(&env.profiles, "acme-corp/").await.versions.len(), 1);
    assert_eq!(env.inventory(&env.archive, "acmeweb/").await.versions.len(), 1);
    assert_eq!(
        env.inventory(&env.archive, "acme")
            .await
            .versions
            .iter()
            .filter(|k| *k == "acme")
            .count(),
        1
    );

    // Revoking a completed deletion is refused as irreversible.
    let after = env.call("DELETE", "/v1/workspaces/acme/deletion", None, &[]).await;
    assert_eq!(after.problem(409)["type"], "urn:deletion-service:problem:irreversible");

    // The fired schedule is gone and the scope is free again.
    assert_eq!(env.stack.schedules.armed_at(&id).await.unwrap(), None);
    let listed = env.call("GET", "/v1/workspaces/acme/deletions", None, &[]).await;
    assert_eq!(listed.body["items"][0]["status"], "COMPLETED");
}

#[tokio::test]
async fn versioned_bucket_loses_every_version_marker_and_open_upload() {
    use deletion_aws::provision::{delete_key, start_upload};
    let env = env(Versioning::Profiles).await;
    let bucket = env.profiles.clone();
    for i in 0..3 {
        env.put(&bucket, "acme/spaces/main/profiles.json").await; // 3 versions
        env.put(&bucket, &format!("acme/spaces/s{i}/traits.json")).await;
    }
    delete_key(&env.clients, &bucket, "acme/spaces/s0/traits.json")
        .await
        .unwrap(); // a delete marker
    env.put(&bucket, "acme/spaces/gone/x.json").await;
    delete_key(&env.clients, &bucket, "acme/spaces/gone/x.json")
        .await
        .unwrap(); // only noncurrent + marker
    start_upload(&env.clients, &bucket, "acme/spaces/main/big.bin")
        .await
        .unwrap();
    // The neighbour keeps everything.
    env.put(&bucket, "acme-corp/spaces/main/profiles.json").await;
    start_upload(&env.clients, &bucket, "acme-corp/spaces/main/big.bin")
        .await
        .unwrap();

    let before = env.inventory(&bucket, "acme/").await;
    assert_eq!(
        (before.versions.len(), before.delete_markers.len(), before.uploads.len()),
        (7, 2, 1)
    );

    let id = create(&env, "acme").await;
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let fired = env.stack.tick().await.unwrap();
    assert_eq!(fired[0].outcome, "completed", "{:?}", fired[0]);

    assert!(
        env.inventory(&bucket, "acme/").await.is_empty(),
        "every version, marker and upload must be gone"
    );
    let neighbour = env.inventory(&bucket, "acme-corp/").await;
    assert_eq!((neighbour.versions.len(), neighbour.uploads.len()), (1, 1));

    let totals = &status(&env, &id).await["receipt"]["totals"];
    // Current: main/profiles, s1, s2 (s0 and gone are hidden by markers).
    assert_eq!(totals["objects"], 3, "{totals:#}");
    assert_eq!(totals["versions"], 4, "{totals:#}");
    assert_eq!(totals["delete_markers"], 2, "{totals:#}");
    assert_eq!(totals["uploads_aborted"], 1, "{totals:#}");
}

#[tokio::test]
async fn a_duplicate_timer_delivery_does_nothing() {
    let env = env(Versioning::None).await;
    seed_workspace(&env, "acme").await;
    let id = create(&env, "acme").await;
    env.clock.advance(Duration::days(6));
    let event = || PurgeEvent {
        request_id: id.to_string(),
        retry: false,
        remind: false,
    };
    let first = env.stack.purge.handle(event(), "worker-1", None).await.unwrap();
    assert_eq!(first.outcome, "completed");
    let before = status(&env, &id).await;
    let second = env.stack.purge.handle(event(), "worker-2", None).await.unwrap();
    assert_eq!(second.outcome, "settled");
    let after = status(&env, &id).await;
    assert_eq!(before["history"], after["history"]);
    assert_eq!(before["receipt"], after["receipt"]);

    // A delivery for a request in grace (an early or stray timer) does nothing either.
    let other = create(&env, "other").await;
    env.put(&env.archive, "other/web/2024-01-01/x").await;
    let early = env
        .stack
        .purge
        .handle(
            PurgeEvent {
                request_id: other.to_string(),
                retry: false,
                remind: false,
            },
            "w",
            None,
        )
        .await
        .unwrap();
    assert_eq!(early.outcome, "not_due");
    assert_eq!(env.inventory(&env.archive, "other/").await.versions.len(), 1);
    assert_eq!(status(&env, &other).await["status"], "SCHEDULED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_racing_the_purge_claim_has_exactly_one_winner() {
    let env = env(Versioning::None).await;
    // The purge worker's clock says the grace has ended; the revoking
    // caller's clock says it has not (clocks of two machines differ).
    let late_clock = ManualClock::new(env.clock.now() + Duration::days(5) + Duration::seconds(1));
    let late = Stack::new(env.clients.clone(), env.stack.settings.clone(), late_clock).expect("stack");
    let (mut revoked, mut purged) = (0, 0);
    for trial in 0..12 {
        let ws = format!("race-{trial}");
        env.put(&env.archive, &format!("{ws}/web/2024-01-01/x")).await;
        let id = create(&env, &ws).await;
        let path = format!("/v1/workspaces/{ws}/deletion");
        let event = PurgeEvent {
            request_id: id.to_string(),
            retry: false,
            remind: false,
        };
        let (revoke, purge) = tokio::join!(
            env.call("DELETE", &path, None, &[]),
            late.purge.handle(event, "racer", None)
        );
        let purge = purge.unwrap();
        let body = status(&env, &id).await;
        let left = env.inventory(&env.archive, &format!("{ws}/")).await.versions.len();
        match (revoke.status.as_u16(), purge.outcome.as_str()) {
            (200, "settled") => {
                revoked += 1;
                assert_eq!(body["status"], "REVOKED");
                assert_eq!(left, 1, "a revoked request must delete nothing");
            }
            (409, "completed") => {
                purged += 1;
                assert_eq!(body["status"], "COMPLETED");
                assert_eq!(left, 0);
            }
            other => panic!("trial {trial}: both or neither won: {other:?} {body:#}"),
        }
        let statuses: Vec<&str> = body["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["status"].as_str().unwrap())
            .collect();
        assert!(
            !(statuses.contains(&"REVOKED") && statuses.contains(&"PURGING")),
            "{statuses:?}"
        );
    }
    assert_eq!(revoked + purged, 12);
}

/// (method, path, body, headers, expected status)
type Case = (
    &'static str,
    String,
    Option<String>,
    Vec<(&'static str, &'static str)>,
    u16,
);

/// Creates the intake refuses (bad paths, bodies and headers), each with
/// the status it must answer.
fn bad_creates() -> Vec<Case> {
    let big = format!(r#"{{"reason": "{}"}}"#, "x".repeat(20_000));
    let long_reason = format!(r#"{{"reason": "{}"}}"#, "x".repeat(1001));
    vec![
        ("POST", "/v1/workspaces/ac%2Fme/deletion".into(), None, vec![], 400),
        ("POST", "/v1/workspaces/../deletion".into(), None, vec![], 400),
        ("POST", "/v1/workspaces/..%2F..%2Fx/deletion".into(), None, vec![], 400),
        ("POST", "/v1/workspaces/ac.me/deletion".into(), None, vec![], 400),
        ("POST", "/v1/workspaces/-acme/deletion".into(), None, vec![], 400),
        (
            "POST",
            format!("/v1/workspaces/{}/deletion", "a".repeat(65)),
            None,
            vec![],
            400,
        ),
        (
            "POST",
            "/v1/workspaces/acme/deletion".into(),
            Some(big.clone()),
            vec![],
            413,
        ),
        (
            "POST",
            "/v1/workspaces/acme/deletion".into(),
            Some(long_reason),
            vec![],
            400,
        ),
        (
            "POST",
            "/v1/workspaces/acme/deletion".into(),
            Some("{not json".into()),
            vec![],
            400,
        ),
        (
            "POST",
            "/v1/workspaces/acme/deletion".into(),
            Some(r#"{"reason": 5}"#.into()),
            vec![],
            400,
        ),
        (
            "POST",
            "/v1/workspaces/acme/deletion".into(),
            Some(r#"{"scope": "everything"}"#.into()),
            vec![],
            400,
        ),
        (
            "POST",
            "/v1/workspaces/acme/deletion".into(),
            Some("[]".into()),
            vec![],
            400,
        ),
        (
            "POST",
            "/v1/workspaces/acme/deletion".into(),
            Some("reason=x".into()),
            vec![("content-type", "text/plain")],
            415,
        ),
        (
            "POST",
            "/v1/workspaces/acme/deletion".into(),
            None,
            vec![("idempotency-key", "a#b")],
            400,
        ),
    ]
}

/// Wrong methods, bad ids, bad listings and paths the API does not have.
fn bad_reads() -> Vec<Case> {
    vec![
        ("PUT", "/v1/workspaces/acme/deletion".into(), None, vec![], 405),
        (
            "PATCH",
            "/v1/deletions/0193c9a2-7b1e-7cc0-9a3e-5f0d2c1b4e6f".into(),
            None,
            vec![],
            405,
        ),
        ("POST", "/v1/workspaces/acme/deletions".into(), None, vec![], 405),
        ("GET", "/v1/deletions/not-a-uuid".into(), None, vec![], 400),
        (
            "GET",
            "/v1/deletions/0193c9a2-7b1e-7cc0-9a3e-5f0d2c1b4e6f".into(),
            None,
            vec![],
            404,
        ),
        ("GET", "/v1/workspaces/acme/deletions?limit=0".into(), None, vec![], 400),
        (
            "GET",
            "/v1/workspaces/acme/deletions?limit=abc".into(),
            None,
            vec![],
            400,
        ),
        (
            "GET",
            "/v1/workspaces/acme/deletions?cursor=bm90LWEtY3Vyc29y".into(),
            None,
            vec![],
            400,
        ),
        ("DELETE", "/v1/workspaces/acme/deletion".into(), None, vec![], 404),
        ("GET", "/v2/anything".into(), None, vec![], 404),
        ("GET", "/".into(), None, vec![], 404),
    ]
}

#[tokio::test]
async fn bad_input_gets_a_problem_and_writes_nothing() {
    let env = env(Versioning::None).await;
    for (method, path, body, headers, expected) in bad_creates().into_iter().chain(bad_reads()) {
        let answer = env.call(method, &path, body.as_deref(), &headers).await;
        assert_eq!(answer.status.as_u16(), expected, "{method} {path}: {:#}", answer.body);
        answer.problem(expected);
        if expected == 405 {
            assert!(
                answer.headers.contains_key("allow"),
                "{method} {path}: 405 without Allow"
            );
        }
    }
    assert!(env.ledger_keys().await.is_empty(), "bad input must write nothing");
}

#[tokio::test]
async fn listing_is_newest_first_and_paginated() {
    let env = env(Versioning::None).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create(&env, "acme").await);
        env.clock.advance(Duration::minutes(1));
        let r = env.call("DELETE", "/v1/workspaces/acme/deletion", None, &[]).await;
        assert_eq!(r.status, 200);
    }
    create(&env, "someone-else").await;
    let page1 = env
        .call("GET", "/v1/workspaces/acme/deletions?limit=2", None, &[])
        .await;
    assert_eq!(page1.status, 200);
    let got: Vec<RequestId> = page1.body["items"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(got, vec![ids[2].clone(), ids[1].clone()]);
    let cursor = page1.body["next_cursor"].as_str().expect("a next cursor");
    let page2 = env
        .call(
            "GET",
            &format!("/v1/workspaces/acme/deletions?limit=2&cursor={cursor}"),
            None,
            &[],
        )
        .await;
    let got: Vec<RequestId> = page2.body["items"].as_array().unwrap().iter().map(id_of).collect();
    assert_eq!(got, vec![ids[0].clone()]);
    // A cursor of one workspace's listing is refused on another's.
    env.call(
        "GET",
        &format!("/v1/workspaces/someone-else/deletions?cursor={cursor}"),
        None,
        &[],
    )
    .await
    .problem(400);
}

#[tokio::test]
async fn idempotency_key_replays_for_its_scope_only() {
    let env = env(Versioning::None).await;
    let key = [("idempotency-key", "order-7")];
    let first = env.call("POST", "/v1/workspaces/acme/deletion", None, &key).await;
    assert_eq!(first.status, 202);
    env.call("DELETE", "/v1/workspaces/acme/deletion", None, &[]).await;
    // The same key replays the same (now revoked) request, not a new one.
    let replay = env.call("POST", "/v1/workspaces/acme/deletion", None, &key).await;
    assert_eq!(replay.status, 200);
    assert_eq!(id_of(&replay.body), id_of(&first.body));
    assert_eq!(replay.body["status"], "REVOKED");
    // A key is the caller's own for one scope: the same key for another
    // workspace is another key, and asks for another deletion.
    let elsewhere = env.call("POST", "/v1/workspaces/other/deletion", None, &key).await;
    assert_eq!(elsewhere.status, 202, "{:#}", elsewhere.body);
    assert_ne!(id_of(&elsewhere.body), id_of(&first.body));
}

#[tokio::test]
async fn an_api_gateway_event_is_handled_with_its_caller() {
    let env = env(Versioning::None).await;
    // The caller of the fixture, user-42, is an admin of fixture-ws.
    env.member("fixture-ws", "user-42", "admin").await;
    let fixture = include_str!("fixtures/apigw-v2-create-deletion.json");
    let req = lambda_http::request::from_str(fixture).expect("fixture is an API Gateway v2 event");
    let answer = env.send(req).await;
    assert_eq!(answer.status, 202, "{:#}", answer.body);
    assert_eq!(answer.body["requested_by"], "user-42");
    assert_eq!(answer.body["reason"], "customer closed the account");
    assert_eq!(answer.body["scope"]["workspace"], "fixture-ws");
}

#[tokio::test]
async fn replayed_and_stale_stream_records_converge_on_the_ledger() {
    let env = env(Versioning::None).await;
    let id = create(&env, "acme").await;
    let record = |id: &RequestId, seq: &str| ChangedKey {
        sequence_number: seq.into(),
        event_id: format!("e{seq}"),
        event_name: "INSERT".into(),
        pk: request_pk(id),
        sk: REQUEST_SK.into(),
    };
    // The same INSERT delivered twice arms one timer.
    let event = lambda_event(vec![record(&id, "1"), record(&id, "1")]);
    assert!(env
        .stack
        .grace_timer
        .handle(event.clone())
        .await
        .batch_item_failures
        .is_empty());
    assert!(env.stack.schedules.armed_at(&id).await.unwrap().is_some());
    // After a revoke, a stale replay of the INSERT must not re-arm it.
    env.call("DELETE", "/v1/workspaces/acme/deletion", None, &[]).await;
    env.stack.grace_timer.handle(event).await;
    assert_eq!(env.stack.schedules.armed_at(&id).await.unwrap(), None);
    // Records of other items, and of unknown requests, are harmless.
    let stray = lambda_event(vec![record(&RequestId::new(), "2")]);
    assert!(env.stack.grace_timer.handle(stray).await.batch_item_failures.is_empty());
}

#[tokio::test]
async fn versioning_enabled_after_a_purge_is_seen_by_the_next_purge_and_its_verification() {
    use deletion_aws::provision::create_bucket;
    let env = env(Versioning::None).await;
    let bucket = env.archive.clone();
    seed_workspace(&env, "acme").await;
    // The first purge, through the stack's one store, sees an unversioned bucket.
    create(&env, "acme").await;
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let fired = env.stack.tick().await.unwrap();
    assert_eq!(fired[0].outcome, "completed", "{:?}", fired[0]);
    assert!(env.inventory(&bucket, "acme/").await.is_empty());

    // Versioning is enabled later; new data comes in versions.
    create_bucket(&env.clients, &bucket, true).await.unwrap();
    for _ in 0..2 {
        env.put(&bucket, "acme/web/2024-02-01/part-0.json.gz").await;
        env.put(&bucket, "acme/ios/2024-02-01/part-0.json.gz").await;
    }
    assert_eq!(env.inventory(&bucket, "acme/").await.versions.len(), 4);
    let id = create(&env, "acme").await;
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let fired = env.stack.tick().await.unwrap();
    let purged = fired
        .iter()
        .find(|f| f.request_id == id.to_string() && f.outcome != "not_needed");
    assert_eq!(purged.map(|f| f.outcome.as_str()), Some("completed"), "{fired:?}");
    let left = env.inventory(&bucket, "acme/").await;
    assert!(left.is_empty(), "the receipt says done, yet left: {left:?}");
    let totals = &status(&env, &id).await["receipt"]["totals"];
    assert_eq!(totals["objects"], 2, "{totals:#}");
    assert_eq!(totals["versions"], 2, "{totals:#}");
}

/// The ids a listing gives, following `next` links from `path`.
async fn listed(env: &Env, path: &str) -> Vec<String> {
    let (mut ids, mut next) = (Vec::new(), Some(path.to_owned()));
    while let Some(at) = next.take() {
        let a = env.call("GET", &at, None, &[]).await;
        assert_eq!(a.status, 200, "{at}: {:#}", a.body);
        ids.extend(
            a.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        next = a.body["links"]["next"].as_str().map(str::to_owned);
        assert!(ids.len() < 100, "the listing ends");
    }
    ids
}

#[tokio::test]
async fn listings_filter_by_status_kind_and_creation_time_across_pages() {
    let env = env(Versioning::None).await;
    seed_workspace(&env, "acme").await;
    let id = |b: &Value| b["id"].as_str().unwrap_or_else(|| panic!("{b:#}")).to_owned();
    let workspace = id(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    env.clock.advance(Duration::minutes(1));
    let between = env.clock.now();
    env.clock.advance(Duration::minutes(1));
    let space = id(&env
        .call("POST", "/v1/workspaces/acme/spaces/main/deletion", None, &[])
        .await
        .body);
    env.call("DELETE", "/v1/workspaces/acme/spaces/main/deletion", None, &[])
        .await;
    env.clock.advance(Duration::minutes(1));
    let days = r#"{"from": "2024-01-01", "to": "2024-01-02"}"#;
    let source = id(&env
        .call("POST", "/v1/workspaces/acme/sources/web/deletions", Some(days), &[])
        .await
        .body);
    env.settle().await;
    let all = "/v1/workspaces/acme/deletions";
    assert_eq!(
        listed(&env, all).await,
        [source.as_str(), space.as_str(), workspace.as_str()]
    );
    assert_eq!(listed(&env, &format!("{all}?status=REVOKED")).await, [space.as_str()]);
    assert_eq!(
        listed(&env, &format!("{all}?kind=source_days")).await,
        [source.as_str()]
    );
    assert_eq!(
        listed(
            &env,
            &format!("{all}?limit=1&status=SCHEDULED,REVOKED&kind=workspace,space")
        )
        .await,
        [space.as_str(), workspace.as_str()],
        "the next links keep the filters"
    );
    let at = between.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        listed(&env, &format!("{all}?limit=1&created_after={at}")).await,
        [source.as_str(), space.as_str()]
    );
    assert_eq!(
        listed(&env, &format!("{all}?created_before={at}")).await,
        [workspace.as_str()]
    );
    for bad in [
        "status=DONE",
        "kind=regulation",
        "type=DELETE_ONLY",
        "created_after=yesterday",
        &format!("created_after={at}&created_before={at}"),
    ] {
        env.call("GET", &format!("{all}?{bad}"), None, &[]).await.problem(400);
    }
    let regs = "/v1/workspaces/acme/regulations";
    let body = r#"{"type": "SUPPRESS_ONLY", "subject_type": "USER_ID", "subject_ids": ["bob"]}"#;
    let suppress = id(&env.call("POST", regs, Some(body), &[]).await.body);
    env.settle().await;
    let body = r#"{"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["ann"]}"#;
    let delete = id(&env.call("POST", regs, Some(body), &[]).await.body);
    assert_eq!(
        listed(&env, &format!("{regs}?type=SUPPRESS_ONLY")).await,
        [suppress.as_str()]
    );
    assert_eq!(
        listed(&env, &format!("{regs}?status=INITIALIZED")).await,
        [delete.as_str()]
    );
    assert_eq!(
        listed(&env, &format!("{regs}?status=FINISHED&limit=1")).await,
        [suppress.as_str()]
    );
    env.call("GET", &format!("{regs}?kind=workspace"), None, &[])
        .await
        .problem(400);
}
