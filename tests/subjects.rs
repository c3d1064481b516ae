//! "Was this person deleted?" and forgetting the ids, against DynamoDB
//! Local and moto: the lookup by keyed digest, before and after a
//! regulation's raw subject ids leave the ledger, the deadline counted from
//! the subject's own request, and a worker that refuses to rewrite without
//! the ids.

use std::io::Write;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use deletion_aws::provision;
use deletion_core::ids::RequestId;
use deletion_core::ports::{Clock, Regulations};
use flate2::write::GzEncoder;
use flate2::Compression;
use integration_tests::{env, Env, Versioning};
use serde_json::{json, Value};

fn gz(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(text.as_bytes()).expect("gzip");
    e.finish().expect("gzip")
}

fn events(users: &[&str]) -> String {
    users
        .iter()
        .enumerate()
        .map(|(n, u)| format!("{{\"userId\":\"{u}\",\"event\":\"Viewed\",\"properties\":{{\"n\":{n}}}}}\n"))
        .collect()
}

async fn seed(env: &Env, key: &str, users: &[&str]) {
    provision::put_object(&env.clients, &env.archive, key, &gz(&events(users)))
        .await
        .expect("put object");
}

async fn regulate(env: &Env, ws: &str, body: Value) -> Value {
    let a = env
        .call(
            "POST",
            &format!("/v1/workspaces/{ws}/regulations"),
            Some(&body.to_string()),
            &[],
        )
        .await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    a.body
}

fn id_of(body: &Value) -> RequestId {
    RequestId::parse(body["id"].as_str().expect("id")).expect("request id")
}

async fn lookup(env: &Env, path: &str) -> Value {
    let a = env.call("GET", path, None, &[]).await;
    assert_eq!(a.status, 200, "{path}: {:#}", a.body);
    a.body
}

/// Every item of the deployment's ledger, each as its keys and text.
async fn every_item(env: &Env) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    let mut start = None;
    loop {
        let out = env
            .clients
            .dynamodb
            .scan()
            .table_name(&env.stack.settings.table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in out.items() {
            let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            found.push((attr("pk"), attr("sk"), format!("{item:?}")));
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            return found;
        }
    }
}

/// The items in which `needle` appears, anywhere (keys or attributes).
async fn items_holding(env: &Env, needle: &str) -> Vec<(String, String)> {
    every_item(env)
        .await
        .into_iter()
        .filter(|(pk, sk, text)| pk.contains(needle) || sk.contains(needle) || text.contains(needle))
        .map(|(pk, sk, _)| (pk, sk))
        .collect()
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[tokio::test]
async fn a_subject_is_found_by_digest_before_and_after_its_ids_are_forgotten() {
    let env = env(Versioning::None).await;
    seed(
        &env,
        "acme/web/2024-01-01/a.json.gz",
        &["bob-5e1f", "ann", "carl-77aa", "bobby"],
    )
    .await;
    seed(&env, "acme/ios/2024-01-01/b.json.gz", &["dora-c3d4", "ann"]).await;
    let asked_at = env.clock.now() - Duration::days(10);
    let suppress = regulate(
        &env,
        "acme",
        json!({"type": "SUPPRESS_WITH_DELETE", "subject_type": "USER_ID", "subject_ids": ["bob-5e1f", "carl-77aa"],
               "submitted_at": ts(asked_at)}),
    )
    .await;
    // The deadline counts from the subject's own request.
    assert_eq!(suppress["submitted_at"], json!(ts(asked_at)), "{suppress:#}");
    assert_eq!(suppress["deadline"], json!(ts(asked_at + Duration::days(30))));
    let delete = regulate(
        &env,
        "acme",
        json!({"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["dora-c3d4"]}),
    )
    .await;
    assert_eq!(delete["submitted_at"], Value::Null);
    assert_eq!(delete["deadline"], json!(ts(env.clock.now() + Duration::days(30))));

    let bob = lookup(&env, "/v1/workspaces/acme/subjects/USER_ID/bob-5e1f").await;
    assert_eq!(bob["suppressed"], true, "{bob:#}");
    assert_eq!(bob["suppression"]["regulation_id"], suppress["id"]);
    assert_eq!(bob["deleted"], false, "not yet");
    assert_eq!(bob["regulations"].as_array().map(Vec::len), Some(1));
    assert_eq!(bob["regulations"][0]["id"], suppress["id"]);
    assert_eq!(bob["regulations"][0]["status"], "INITIALIZED");
    let digest = bob["subject_digest"].as_str().expect("digest").to_owned();
    assert_eq!(digest.len(), 64);
    assert!(!digest.contains("bob"));
    // A neighbour, another workspace, another type: nobody named them.
    for path in [
        "/v1/workspaces/acme/subjects/USER_ID/bobby",
        "/v1/workspaces/acme-corp/subjects/USER_ID/bob-5e1f",
        "/v1/workspaces/acme/subjects/ANONYMOUS_ID/bob-5e1f",
    ] {
        let other = lookup(&env, path).await;
        assert_eq!(other["regulations"], json!([]), "{path}: {other:#}");
        assert_eq!(other["suppressed"], false);
        assert_ne!(other["subject_digest"], json!(digest));
    }
    assert_eq!(
        lookup(&env, "/v1/workspaces/acme/subjects/ANONYMOUS_ID/bob-5e1f").await["suppression"],
        Value::Null,
        "only user ids are suppressed"
    );

    // Until it is done, a regulation's ids are kept beside it (a worker needs them).
    let kept = items_holding(&env, "dora-c3d4").await;
    assert_eq!(
        kept,
        [(format!("REQ#{}", id_of(&delete)), "SUBJECTS#0000".to_owned())],
        "the raw ids, only beside their regulation"
    );

    env.settle().await;

    for id in [id_of(&suppress), id_of(&delete)] {
        let a = env.call("GET", &format!("/v1/regulations/{id}"), None, &[]).await;
        assert_eq!(a.body["status"], "FINISHED", "{:#}", a.body);
        assert!(a.body["subject_ids_forgotten_at"].is_string(), "{:#}", a.body);
    }
    // The raw ids left the ledger: only the suppression entries (which
    // must block the id) still hold those they suppress.
    assert_eq!(items_holding(&env, "dora-c3d4").await, Vec::<(String, String)>::new());
    for user in ["bob-5e1f", "carl-77aa"] {
        let holding = items_holding(&env, user).await;
        assert_eq!(holding, [("SUPP#acme".to_owned(), format!("U#{user}"))], "{user}");
    }
    // And the answer stands, by digest.
    let bob = lookup(&env, "/v1/workspaces/acme/subjects/USER_ID/bob-5e1f").await;
    assert_eq!(bob["subject_digest"], json!(digest));
    assert_eq!(bob["deleted"], true, "{bob:#}");
    assert!(bob["deleted_at"].is_string());
    let shown = &bob["regulations"][0];
    assert_eq!(shown["status"], "FINISHED");
    assert_eq!(shown["totals"]["events_removed"], 2, "bob and carl: {shown:#}");
    assert_eq!(shown["stores"][0]["store"], "archive");
    let dora = lookup(&env, "/v1/workspaces/acme/subjects/USER_ID/dora-c3d4").await;
    assert_eq!(dora["deleted"], true, "{dora:#}");
    assert_eq!(dora["suppressed"], false, "DELETE_ONLY does not suppress");
    assert_eq!(dora["regulations"][0]["id"], delete["id"]);
}

#[tokio::test]
async fn a_subject_s_regulations_page_newest_first_and_only_deleting_ones_count_as_deleted() {
    let env = env(Versioning::None).await;
    let mut ids = Vec::new();
    for kind in ["SUPPRESS_ONLY", "UNSUPPRESS", "DELETE_ARCHIVE_ONLY"] {
        ids.push(
            regulate(
                &env,
                "acme",
                json!({"type": kind, "subject_type": "USER_ID", "subject_ids": ["eve"]}),
            )
            .await["id"]
                .clone(),
        );
        env.clock.advance(Duration::minutes(1));
    }
    env.settle().await;
    let (mut seen, mut next) = (
        Vec::new(),
        Some("/v1/workspaces/acme/subjects/USER_ID/eve?limit=2".to_owned()),
    );
    while let Some(at) = next.take() {
        let page = lookup(&env, &at).await;
        assert_eq!(
            page["deleted"], false,
            "an archive-only deletion is not every store: {page:#}"
        );
        assert_eq!(page["suppressed"], false, "lifted by the later one");
        seen.extend(page["regulations"].as_array().unwrap().iter().map(|r| r["id"].clone()));
        next = page["links"]["next"].as_str().map(str::to_owned);
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, page by page");
}

#[tokio::test]
async fn a_deletion_older_than_the_page_shown_still_counts_as_deleted() {
    let env = env(Versioning::None).await;
    seed(&env, "acme/web/2024-01-01/e.json.gz", &["eve", "ann"]).await;
    regulate(
        &env,
        "acme",
        json!({"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["eve"]}),
    )
    .await;
    env.settle().await;
    // Newer regulations of eve that delete nothing beyond the archive.
    for kind in ["SUPPRESS_ONLY", "UNSUPPRESS", "SUPPRESS_ONLY"] {
        env.clock.advance(Duration::minutes(1));
        regulate(
            &env,
            "acme",
            json!({"type": kind, "subject_type": "USER_ID", "subject_ids": ["eve"]}),
        )
        .await;
        env.settle().await;
    }
    let page = lookup(&env, "/v1/workspaces/acme/subjects/USER_ID/eve?limit=1").await;
    assert_eq!(page["regulations"].as_array().map(Vec::len), Some(1), "{page:#}");
    assert_eq!(page["regulations"][0]["type"], "SUPPRESS_ONLY", "{page:#}");
    assert_eq!(page["deleted"], true, "deleted three regulations ago: {page:#}");
    assert!(page["deleted_at"].is_string(), "{page:#}");
    let ann = lookup(&env, "/v1/workspaces/acme/subjects/USER_ID/ann?limit=1").await;
    assert_eq!(ann["deleted"], false, "{ann:#}");
}

#[tokio::test]
async fn the_lookup_is_for_admins_and_suppression_readers_and_refuses_bad_input() {
    let env = env(Versioning::None).await;
    let reader = ("ingest", &[deletion_core::access::SUPPRESSION_READ_SCOPE][..]);
    let path = "/v1/workspaces/acme/subjects/USER_ID/u1";
    let a = env.call_as(Some(reader), "GET", path, None, &[]).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    env.member("acme", "bob", "member").await;
    env.call_as(Some(("bob", &[])), "GET", path, None, &[])
        .await
        .problem(403);
    env.call_as(None, "GET", path, None, &[]).await.problem(401);
    for bad in [
        "/v1/workspaces/acme/subjects/user_id/u1",
        "/v1/workspaces/acme/subjects/PHONE/u1",
        "/v1/workspaces/acme/subjects/USER_ID/a%0Ab",
        "/v1/workspaces/acme/subjects/USER_ID/u1?limit=0",
        "/v1/workspaces/acme/subjects/USER_ID/u1?cursor=bm9wZQ",
    ] {
        env.call("GET", bad, None, &[]).await.problem(400);
    }
    let future = ts(env.clock.now() + Duration::hours(1));
    for submitted in [json!("yesterday"), json!(future), json!(7)] {
        let body =
            json!({"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["u1"], "submitted_at": submitted});
        env.call("POST", "/v1/workspaces/acme/regulations", Some(&body.to_string()), &[])
            .await
            .problem(400);
    }
    assert_eq!(
        items_holding(&env, "u1").await,
        Vec::<(String, String)>::new(),
        "nothing written"
    );
}

#[tokio::test]
async fn a_worker_that_finds_the_ids_gone_rewrites_nothing_and_says_why() {
    let env = env(Versioning::None).await;
    seed(&env, "acme/web/2024-01-01/a.json.gz", &["bob", "ann"]).await;
    let before = provision::get_object(&env.clients, &env.archive, "acme/web/2024-01-01/a.json.gz", None)
        .await
        .expect("get");
    let body = regulate(
        &env,
        "acme",
        json!({"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["bob"]}),
    )
    .await;
    let id = id_of(&body);
    env.stack.ledger.forget_subjects(&id).await.expect("forget");
    env.settle().await;
    let a = env.call("GET", &format!("/v1/regulations/{id}"), None, &[]).await;
    assert_ne!(a.body["status"], "FINISHED", "{:#}", a.body);
    let failure = a.body["failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("names 1 subject(s) but the ledger holds 0"),
        "{:#}",
        a.body
    );
    let after = provision::get_object(&env.clients, &env.archive, "acme/web/2024-01-01/a.json.gz", None)
        .await
        .expect("get");
    assert_eq!(after, before, "nothing rewritten");
}

async fn suppressed(env: &Env, user: &str) -> bool {
    lookup(env, &format!("/v1/workspaces/acme/subjects/USER_ID/{user}")).await["suppressed"]
        .as_bool()
        .expect("suppressed")
}

#[tokio::test]
async fn a_queued_regulation_is_cancelled_lifting_only_what_it_set_and_forgetting_its_ids() {
    let env = env(Versioning::None).await;
    let key = "acme/web/2024-01-01/a.json.gz";
    seed(&env, key, &["bob", "ann", "carol", "dave"]).await;
    let before = provision::get_object(&env.clients, &env.archive, key, None)
        .await
        .expect("get");
    let suppress = |ids: &[&str]| json!({"type": "SUPPRESS_ONLY", "subject_type": "USER_ID", "subject_ids": ids});
    regulate(&env, "acme", suppress(&["carol"])).await;
    env.clock.advance(Duration::seconds(1));
    let body =
        json!({"type": "SUPPRESS_WITH_DELETE", "subject_type": "USER_ID", "subject_ids": ["bob", "carol", "dave"]});
    let queued = regulate(&env, "acme", body).await;
    let id = id_of(&queued);
    env.clock.advance(Duration::seconds(1));
    regulate(&env, "acme", suppress(&["dave"])).await;
    assert!(suppressed(&env, "bob").await && suppressed(&env, "carol").await);

    let a = env.call("DELETE", &format!("/v1/regulations/{id}"), None, &[]).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    assert_eq!(a.body["status"], "CANCELLED");
    assert_eq!(
        a.body["history"].as_array().unwrap().last().unwrap()["note"],
        "cancelled"
    );
    // What it set is lifted; what a later regulation set stays.
    assert!(!suppressed(&env, "bob").await);
    assert!(!suppressed(&env, "carol").await, "it had set carol's entry last");
    assert!(suppressed(&env, "dave").await, "set by a later regulation");
    let beside: Vec<_> = every_item(&env)
        .await
        .into_iter()
        .filter(|(pk, sk, _)| pk == &format!("REQ#{id}") && sk.starts_with("SUBJECTS#"))
        .collect();
    assert!(beside.is_empty(), "its ids are forgotten: {beside:?}");

    env.settle().await;
    let after = provision::get_object(&env.clients, &env.archive, key, None)
        .await
        .expect("get");
    assert_eq!(after, before, "a cancelled regulation rewrites nothing");
    let shown = env.call("GET", &format!("/v1/regulations/{id}"), None, &[]).await;
    assert_eq!(shown.body["status"], "CANCELLED", "{:#}", shown.body);
    let again = env.call("DELETE", &format!("/v1/regulations/{id}"), None, &[]).await;
    assert_eq!(
        (again.status.as_u16(), &again.body["status"]),
        (200, &json!("CANCELLED"))
    );
    let listed = lookup(&env, "/v1/workspaces/acme/regulations?status=CANCELLED").await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed:#}");
    let bob = lookup(&env, "/v1/workspaces/acme/subjects/USER_ID/bob").await;
    assert_eq!(bob["regulations"][0]["status"], "CANCELLED");
    assert_eq!(bob["deleted"], false);
}

#[tokio::test]
async fn a_regulation_a_worker_took_is_not_cancelled_and_only_its_admins_may_try() {
    let env = env(Versioning::None).await;
    seed(&env, "acme/web/2024-01-01/a.json.gz", &["bob", "ann"]).await;
    let done = regulate(
        &env,
        "acme",
        json!({"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["bob"]}),
    )
    .await;
    env.settle().await;
    let path = format!("/v1/regulations/{}", id_of(&done));
    let refused = env.call("DELETE", &path, None, &[]).await;
    let problem = refused.problem(409);
    assert!(
        problem["type"].as_str().unwrap().ends_with("not-cancellable"),
        "{problem:#}"
    );
    assert!(problem["detail"].as_str().unwrap().contains("FINISHED"), "{problem:#}");
    assert_eq!(env.call("GET", &path, None, &[]).await.body["status"], "FINISHED");

    let queued = regulate(
        &env,
        "acme",
        json!({"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["ann"]}),
    )
    .await;
    let path = format!("/v1/regulations/{}", id_of(&queued));
    env.member("acme", "mo", "member").await;
    env.call_as(Some(("mo", &[])), "DELETE", &path, None, &[])
        .await
        .problem(403);
    env.call_as(None, "DELETE", &path, None, &[]).await.problem(401);
    assert_eq!(
        env.call("GET", &path, None, &[]).await.body["status"],
        "INITIALIZED",
        "nothing changed"
    );
    env.call("DELETE", "/v1/regulations/not-an-id", None, &[])
        .await
        .problem(400);
    env.call("DELETE", &format!("/v1/regulations/{}", RequestId::new()), None, &[])
        .await
        .problem(404);
    let deletion = env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await;
    assert_eq!(deletion.status, 202, "{:#}", deletion.body);
    env.call(
        "DELETE",
        &format!("/v1/regulations/{}", id_of(&deletion.body)),
        None,
        &[],
    )
    .await
    .problem(404);
}

#[tokio::test]
async fn a_cancel_interrupted_after_its_write_is_finished_by_asking_again() {
    use deletion_core::ports::Ledger;
    let env = env(Versioning::None).await;
    let body = json!({"type": "SUPPRESS_ONLY", "subject_type": "USER_ID", "subject_ids": ["zed"]});
    let id = id_of(&regulate(&env, "acme", body).await);
    // The cancel's write landed; then the intake stopped.
    let stored = env.stack.ledger.get(&id).await.expect("get").expect("stored");
    let cancelled = stored.cancel(env.clock.now(), "ops").expect("cancellable");
    env.stack.ledger.update(&cancelled).await.expect("update");
    assert!(suppressed(&env, "zed").await, "not lifted yet");
    let a = env.call("DELETE", &format!("/v1/regulations/{id}"), None, &[]).await;
    assert_eq!(
        (a.status.as_u16(), &a.body["status"]),
        (200, &json!("CANCELLED")),
        "{:#}",
        a.body
    );
    assert!(!suppressed(&env, "zed").await, "lifted by the retry");
    let subjects = env.stack.ledger.subjects(&id).await.expect("subjects");
    assert!(subjects.is_empty(), "and forgotten");
}

async fn suppressed_in(env: &Env, user: &str, query: &str) -> (bool, Value) {
    let body = lookup(env, &format!("/v1/workspaces/acme/suppressions/{user}{query}")).await;
    (body["suppressed"].as_bool().expect("suppressed"), body)
}

#[tokio::test]
async fn a_source_s_regulation_deletes_and_suppresses_only_within_that_source() {
    let env = env(Versioning::None).await;
    for (key, users) in [
        ("acme/web/2024-01-01/a.json.gz", &["bob", "ann"][..]),
        ("acme/ios/2024-01-01/b.json.gz", &["bob", "ann"][..]),
        ("acme/webx/2024-01-01/c.json.gz", &["bob"][..]),
        ("acme-corp/web/2024-01-01/d.json.gz", &["bob"][..]),
    ] {
        seed(&env, key, users).await;
    }
    let untouched = |key: &'static str| {
        let env = &env;
        async move {
            provision::get_object(&env.clients, &env.archive, key, None)
                .await
                .expect("get")
        }
    };
    let before = [
        untouched("acme/ios/2024-01-01/b.json.gz").await,
        untouched("acme/webx/2024-01-01/c.json.gz").await,
        untouched("acme-corp/web/2024-01-01/d.json.gz").await,
    ];
    let path = "/v1/workspaces/acme/sources/web/regulations";
    let body = json!({"type": "SUPPRESS_WITH_DELETE", "subject_type": "USER_ID", "subject_ids": ["bob"]});
    let a = env.call("POST", path, Some(&body.to_string()), &[]).await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    assert_eq!(a.body["source"], "web");
    let id = id_of(&a.body);
    // Its own list: blocked in web, not elsewhere, not workspace-wide.
    assert!(!suppressed_in(&env, "bob", "").await.0);
    let (in_web, entry) = suppressed_in(&env, "bob", "?source=web").await;
    assert!(in_web, "{entry:#}");
    assert_eq!(entry["source"], "web");
    assert!(!suppressed_in(&env, "bob", "?source=ios").await.0);
    let check = |source: Value| {
        let env = &env;
        async move {
            let body = json!({"user_ids": ["bob", "ann"], "source": source}).to_string();
            let a = env
                .call("POST", "/v1/workspaces/acme/suppressions:check", Some(&body), &[])
                .await;
            assert_eq!(a.status, 200, "{:#}", a.body);
            a.body["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["suppressed"].as_bool().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(check(json!("web")).await, [true, false]);
    assert_eq!(check(Value::Null).await, [false, false]);

    env.settle().await;
    let view = env.call("GET", &format!("/v1/regulations/{id}"), None, &[]).await.body;
    assert_eq!(view["status"], "FINISHED", "{view:#}");
    assert_eq!(view["stores"].as_array().map(Vec::len), Some(1), "{view:#}");
    assert_eq!(view["stores"][0]["prefix"], "acme/web/");
    assert_eq!(view["totals"]["events_removed"], 1);
    let web = provision::get_object(&env.clients, &env.archive, "acme/web/2024-01-01/a.json.gz", None)
        .await
        .expect("get");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&web[..]), &mut text).expect("gunzip");
    assert!(!text.contains("bob") && text.contains("ann"), "{text}");
    let after = [
        untouched("acme/ios/2024-01-01/b.json.gz").await,
        untouched("acme/webx/2024-01-01/c.json.gz").await,
        untouched("acme-corp/web/2024-01-01/d.json.gz").await,
    ];
    assert_eq!(
        after, before,
        "other sources, a neighbouring prefix and workspace untouched"
    );

    let bob = lookup(&env, "/v1/workspaces/acme/subjects/USER_ID/bob").await;
    assert_eq!(bob["suppressed"], false, "{bob:#}");
    assert_eq!(bob["source_suppressions"][0]["source"], "web");
    assert_eq!(bob["source_suppressions"][0]["suppressed"], true);
    assert_eq!(bob["regulations"][0]["source"], "web");
    assert_eq!(bob["deleted"], false, "one source is not every store");
}

#[tokio::test]
async fn a_workspace_suppression_wins_over_a_source_s_and_a_source_s_cancel_lifts_only_its_own() {
    let env = env(Versioning::None).await;
    let ws = |kind: &str, ids: &[&str]| json!({"type": kind, "subject_type": "USER_ID", "subject_ids": ids});
    regulate(&env, "acme", ws("SUPPRESS_ONLY", &["ann"])).await;
    env.clock.advance(Duration::seconds(1));
    let post = |source: &'static str, body: Value| {
        let env = &env;
        async move {
            let a = env
                .call(
                    "POST",
                    &format!("/v1/workspaces/acme/sources/{source}/regulations"),
                    Some(&body.to_string()),
                    &[],
                )
                .await;
            assert_eq!(a.status, 202, "{:#}", a.body);
            a.body
        }
    };
    post("web", ws("UNSUPPRESS", &["ann"])).await;
    assert!(
        suppressed_in(&env, "ann", "?source=web").await.0,
        "the workspace's suppression wins"
    );
    let carl = post("ios", ws("SUPPRESS_ONLY", &["carl"])).await;
    post("web", ws("SUPPRESS_ONLY", &["carl"])).await;
    assert!(suppressed_in(&env, "carl", "?source=ios").await.0);
    let a = env
        .call("DELETE", &format!("/v1/regulations/{}", id_of(&carl)), None, &[])
        .await;
    assert_eq!(a.body["status"], "CANCELLED", "{:#}", a.body);
    assert!(
        !suppressed_in(&env, "carl", "?source=ios").await.0,
        "its own list lifted"
    );
    assert!(
        suppressed_in(&env, "carl", "?source=web").await.0,
        "another source's stays"
    );
    // The list pages every entry, with its source, one a page.
    let (mut seen, mut next) = (
        Vec::new(),
        Some("/v1/workspaces/acme/suppressions?state=all&limit=1".to_owned()),
    );
    while let Some(at) = next.take() {
        let page = lookup(&env, &at).await;
        for item in page["items"].as_array().unwrap() {
            seen.push(format!(
                "{}@{}",
                item["user_id"].as_str().unwrap(),
                item["source"].as_str().unwrap_or("*")
            ));
        }
        next = page["links"]["next"].as_str().map(str::to_owned);
    }
    seen.sort();
    assert_eq!(seen, ["ann@*", "ann@web", "carl@ios", "carl@web"]);
    for bad in ["-web", "we%2Fb", "x".repeat(200).as_str()] {
        let a = env
            .call(
                "POST",
                &format!("/v1/workspaces/acme/sources/{bad}/regulations"),
                Some(&ws("DELETE_ONLY", &["z"]).to_string()),
                &[],
            )
            .await;
        a.problem(400);
    }
    env.call("GET", "/v1/workspaces/acme/suppressions/ann?source=-web", None, &[])
        .await
        .problem(400);
    assert_eq!(
        items_holding(&env, "\"z\"").await,
        Vec::<(String, String)>::new(),
        "nothing written"
    );
}

#[tokio::test]
async fn quotas_limit_a_workspace_s_calls_and_refuse_a_regulation_that_would_pass_the_month_whole() {
    let env = env(Versioning::None).await;
    let quotas = json!({"requests_per_minute": 3, "subjects_per_month": 5}).to_string();
    env.member("acme", "ann", "admin").await;
    let ann = ("ann", &[][..]);
    env.call_as(Some(ann), "PUT", "/v1/workspaces/acme/quotas", Some(&quotas), &[])
        .await
        .problem(403);
    let set = env.call("PUT", "/v1/workspaces/acme/quotas", Some(&quotas), &[]).await;
    assert_eq!(set.status, 200, "{:#}", set.body);
    assert_eq!(
        (
            set.body["requests_per_minute"].as_u64(),
            set.body["quotas_set_by"].as_str()
        ),
        (Some(3), Some("ops"))
    );
    for bad in [
        json!({"requests_per_minute": 0, "subjects_per_month": 5}),
        json!({"requests_per_minute": 3}),
        json!({"requests_per_minute": 3, "subjects_per_month": 5, "burst": 9}),
        json!({"requests_per_minute": -1, "subjects_per_month": 5}),
    ] {
        env.call("PUT", "/v1/workspaces/acme/quotas", Some(&bad.to_string()), &[])
            .await
            .problem(400);
    }

    // Three subjects of five: accepted, counted; the headers say what is left.
    let body = |ids: &[&str]| json!({"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ids}).to_string();
    let a = env
        .call_as(
            Some(ann),
            "POST",
            "/v1/workspaces/acme/regulations",
            Some(&body(&["a", "b", "c"])),
            &[],
        )
        .await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    assert_eq!(a.headers["ratelimit-limit"], "3");
    assert_eq!(a.headers["ratelimit-remaining"], "2");
    // The same ids again: the one under way, counted once.
    let again = env
        .call_as(
            Some(ann),
            "POST",
            "/v1/workspaces/acme/regulations",
            Some(&body(&["c", "b", "a"])),
            &[],
        )
        .await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    // Three more would pass five: refused whole, nothing written.
    let over = env
        .call_as(
            Some(ann),
            "POST",
            "/v1/workspaces/acme/regulations",
            Some(&body(&["d", "e", "f"])),
            &[],
        )
        .await;
    let problem = over.problem(429);
    assert!(
        problem["type"].as_str().unwrap().ends_with("quota-exceeded"),
        "{problem:#}"
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("named 3 of its 5"),
        "{problem:#}"
    );
    assert!(over.headers.contains_key("retry-after"));
    assert_eq!(
        items_holding(&env, "REQ#").await.len(),
        2,
        "only the first regulation and its subjects"
    );
    assert_eq!(
        items_holding(&env, "SUBJ#").await.len(),
        3,
        "one record per subject of the one regulation made (the ask found under way leaves none)"
    );
    // The minute's calls are used up: refused with when to come back.
    let limited = env
        .call_as(Some(ann), "GET", "/v1/workspaces/acme/regulations", None, &[])
        .await;
    let problem = limited.problem(429);
    assert!(
        problem["type"].as_str().unwrap().ends_with("rate-limited"),
        "{problem:#}"
    );
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(limited.headers["ratelimit-remaining"], "0");
    // Suppression checks (the ingest path) are not counted; nor is another workspace.
    let check = json!({"user_ids": ["a"]}).to_string();
    let a = env
        .call("POST", "/v1/workspaces/acme/suppressions:check", Some(&check), &[])
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        env.call("GET", "/v1/workspaces/acme-corp/regulations", None, &[])
            .await
            .status,
        200
    );

    let usage = lookup(&env, "/v1/workspaces/acme/usage").await;
    assert_eq!(usage["subjects"], 3, "{usage:#}");
    assert_eq!(usage["regulations"], 1);
    assert_eq!(usage["subjects_left"], 2);
    assert_eq!(usage["requests_this_minute"], 3);
    // A new minute: calls again (the month still counts).
    env.clock.advance(Duration::minutes(1));
    assert_eq!(
        env.call_as(Some(ann), "GET", "/v1/workspaces/acme/regulations", None, &[])
            .await
            .status,
        200
    );
    let two = env
        .call_as(
            Some(ann),
            "POST",
            "/v1/workspaces/acme/regulations",
            Some(&body(&["d", "e"])),
            &[],
        )
        .await;
    assert_eq!(two.status, 202, "exactly the quota: {:#}", two.body);
    assert_eq!(lookup(&env, "/v1/workspaces/acme/usage").await["subjects_left"], 0);
}

#[tokio::test]
async fn a_suppression_reader_reads_the_lookup_and_nothing_else_of_the_new_routes() {
    let env = env(Versioning::None).await;
    let body = json!({"type": "SUPPRESS_ONLY", "subject_type": "USER_ID", "subject_ids": ["u1"]});
    let id = id_of(&regulate(&env, "acme", body.clone()).await);
    let reader = ("ingest", &[deletion_core::access::SUPPRESSION_READ_SCOPE][..]);
    let quotas = json!({"requests_per_minute": 9, "subjects_per_month": 9}).to_string();
    let regulation = body.to_string();
    for (method, path, body) in [
        (
            "POST",
            "/v1/workspaces/acme/sources/web/regulations".to_owned(),
            Some(regulation.as_str()),
        ),
        ("DELETE", format!("/v1/regulations/{id}"), None),
        ("GET", "/v1/workspaces/acme/usage".to_owned(), None),
        ("PUT", "/v1/workspaces/acme/quotas".to_owned(), Some(quotas.as_str())),
    ] {
        env.call_as(Some(reader), method, &path, body, &[]).await.problem(403);
    }
    let a = env
        .call_as(
            Some(reader),
            "GET",
            "/v1/workspaces/acme/subjects/USER_ID/u1",
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    let usage = lookup(&env, "/v1/workspaces/acme/usage").await;
    assert_eq!(usage["quotas_set_by"], Value::Null, "nothing written: {usage:#}");
    assert_eq!(usage["regulations"], 1);
    let shown = lookup(&env, &format!("/v1/regulations/{id}")).await;
    assert_eq!(shown["status"], "INITIALIZED", "not cancelled");
}
