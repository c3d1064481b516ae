//! Least privilege, proved: each function runs under credentials whose
//! policy is exactly the one `template.yaml` gives it (the IAM gate of the
//! harness authorises every call as AWS does, each transaction item and
//! each key of a batch delete on its own). One deployment goes through
//! every path (create, dry run, callbacks, grace, purge of versions and
//! uploads, receipts signed and checked with KMS, an account settled by
//! the sweep, revoke, reminders, a regulation's rewrite, suppressions,
//! holds, a retention policy previewed and enforced): nothing is refused,
//! and every action a policy grants is one its function's code called.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use chrono::Duration;
use deletion_aws::{provision, Clients, LocalEndpoints};
use flate2::write::GzEncoder;
use flate2::Compression;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use integration_tests::iam::{access_key, Decision};
use integration_tests::{deploy, Env, Signing, Versioning};
use serde_json::Value;

/// A callback receiver on loopback that accepts everything.
async fn receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hooks", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let ok = service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), ok).await;
            });
        }
    });
    url
}

fn gz(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(text.as_bytes()).expect("gzip");
    e.finish().expect("gzip")
}

async fn call(env: &Env, method: &str, path: &str, body: Option<&str>) -> Value {
    let a = env.call(method, path, body, &[]).await;
    assert!(a.status.is_success(), "{method} {path}: {} {:#}", a.status, a.body);
    a.body
}

async fn status(env: &Env, id: &str) -> Value {
    call(env, "GET", &format!("/v1/deletions/{id}"), None).await
}

/// Runs the runner until nothing more fires, the clock moved past the
/// grace (and any retry backoff).
async fn past_grace(env: &Env) {
    env.settle().await;
    env.clock.advance(Duration::days(5) + Duration::minutes(2));
    env.settle().await;
}

/// The paths of the intake, purge and notifier a workspace's life takes.
async fn a_workspace_from_request_to_receipt(env: &Env, hooks: &str) {
    let archive = env.archive.clone();
    let events = "{\"userId\":\"u1\",\"event\":\"a\"}\n{\"userId\":\"u2\",\"event\":\"b\"}\n";
    provision::put_object(&env.clients, &archive, "acme/web/2024-01-01/e.json.gz", &gz(events))
        .await
        .expect("put");
    provision::put_object(&env.clients, &archive, "acme/web/2024-01-01/e.json.gz", &gz(events))
        .await
        .expect("put a second version");
    env.put(&env.profiles, "acme/spaces/main/profile.json").await;
    provision::start_upload(&env.clients, &env.profiles, "acme/spaces/main/upload.bin")
        .await
        .expect("open an upload");
    env.put(&archive, "acme-corp/web/2024-01-01/e.json.gz").await;

    // A regulation rewrites the archive and suppresses the user.
    let regulation = r#"{"type": "SUPPRESS_WITH_DELETE", "subject_type": "USER_ID", "subject_ids": ["u1"]}"#;
    let reg = call(env, "POST", "/v1/workspaces/acme/regulations", Some(regulation)).await;
    env.settle().await;
    let reg = call(
        env,
        "GET",
        &format!("/v1/regulations/{}", reg["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(reg["status"], "FINISHED", "{reg:#}");
    call(env, "GET", "/v1/workspaces/acme/suppressions/u1", None).await;
    call(
        env,
        "POST",
        "/v1/workspaces/acme/suppressions:check",
        Some(r#"{"user_ids": ["u1", "u2"]}"#),
    )
    .await;

    // Retention: previewed, put in grace, then enforced by the grace-timer
    // function (it lists the archive's days, versions in a versioned bucket).
    env.put(&archive, "ret/web/2020-01-01/e.json.gz").await;
    let policy = Some(r#"{"default_days": 30}"#);
    call(env, "PUT", "/v1/workspaces/ret/retention?dry_run=true", policy).await;
    call(env, "PUT", "/v1/workspaces/ret/retention", policy).await;
    call(env, "GET", "/v1/workspaces/ret/retention", None).await;

    call(env, "POST", "/v1/workspaces/acme/deletion?dry_run=true", None).await;
    let body = format!(r#"{{"reason": "closed", "callback_url": "{hooks}"}}"#);
    let created = call(env, "POST", "/v1/workspaces/acme/deletion", Some(&body)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    call(env, "GET", &format!("/v1/deletions/{id}/plan"), None).await;
    // A day before the grace ends, the reminder.
    env.settle().await;
    env.clock.advance(Duration::days(4) + Duration::seconds(1));
    env.settle().await;
    past_grace(env).await;
    let report = env.stack.run_retention().await.expect("retention");
    assert_eq!((report.applied.len(), report.created), (1, 1), "{report:?}");
    env.settle().await;
    assert!(
        env.inventory(&env.archive, "ret/").await.is_empty(),
        "the old day purged"
    );
    let done = status(env, &id).await;
    assert_eq!(done["status"], "COMPLETED", "{done:#}");
    assert!(env.inventory(&env.archive, "acme/").await.is_empty());
    assert!(env.inventory(&env.profiles, "acme/").await.is_empty());
    assert_eq!(done["receipt"]["signature"]["algorithm"], "ECDSA_SHA_256", "{done:#}");
    let receipt = done["receipt"].to_string();
    let verified = call(env, "POST", "/v1/receipts:verify", Some(&receipt)).await;
    assert_eq!(verified["valid"], true, "{verified:#}");
    let keys = env.call_as(None, "GET", "/.well-known/jwks.json", None, &[]).await;
    assert_eq!(keys.status, 200, "{:#}", keys.body);
    // A receipt the HMAC key signed before the signing key is still checked.
    let mut earlier: deletion_core::model::Receipt =
        serde_json::from_value(done["receipt"].clone()).expect("a receipt");
    let hmac = env.stack.settings.kms.as_ref().expect("KMS keys").receipts.clone();
    deletion_core::signing::sign_receipt(
        &deletion_aws::kms::KmsSigner::new(env.clients.kms.clone(), hmac),
        &mut earlier,
    )
    .await
    .expect("an HMAC signature");
    let earlier = serde_json::to_string(&earlier).expect("JSON");
    let verified = call(env, "POST", "/v1/receipts:verify", Some(&earlier)).await;
    assert_eq!(
        (verified["valid"].clone(), verified["algorithm"].clone()),
        (serde_json::json!(true), serde_json::json!("HMAC_SHA_256"))
    );
    env.stack.retry_callbacks().await.expect("callbacks");
    an_opendsr_request(env, hooks).await;
}

/// An OpenDSR erasure request: answered and reported signed with the
/// OpenDSR key (intake and notifier), its key published.
async fn an_opendsr_request(env: &Env, hooks: &str) {
    let id = "9b2e1c3a-4d5e-4f60-8a7b-1c2d3e4f5a6b";
    let body = serde_json::json!({
        "regulation": "ccpa", "subject_request_id": id, "subject_request_type": "erasure",
        "submitted_time": "2026-01-01T00:00:00Z",
        "subject_identities": [{"identity_type": "controller_customer_id", "identity_value": "u9", "identity_format": "raw"}],
        "status_callback_urls": [hooks],
        "extensions": {"deletion.example.com": {"workspace": "acme"}}
    });
    let host = [("host", "deletion.example.com")];
    let created = env
        .call("POST", "/opendsr/requests", Some(&body.to_string()), &host)
        .await;
    assert_eq!(created.status, 201, "{:#}", created.body);
    env.settle().await;
    env.stack.retry_callbacks().await.expect("callbacks");
    let status = call(env, "GET", &format!("/opendsr/requests/{id}"), None).await;
    assert_eq!(status["request_status"], "completed", "{status:#}");
    let keys = env
        .call_as(None, "GET", "/.well-known/opendsr-jwks.json", None, &[])
        .await;
    assert_eq!(keys.body["keys"].as_array().map(Vec::len), Some(1), "{:#}", keys.body);
}

/// An account's workspaces purged, the account settled by the sweep; a
/// revoke; a hold placed and released.
async fn an_account_a_revoke_and_a_hold(env: &Env) {
    env.member("w1", "ann", "admin").await;
    env.member("w2", "ann", "admin").await;
    env.put(&env.archive, "w1/web/2024-01-01/e.json.gz").await;
    let account = call(env, "POST", "/v1/accounts/ann/deletion", None).await;
    let account = account["id"].as_str().unwrap().to_owned();
    past_grace(env).await;
    env.stack.grace_timer.sweep().await.expect("sweep");
    env.settle().await;
    let settled = status(env, &account).await;
    assert_eq!(settled["status"], "COMPLETED", "{settled:#}");

    let space = call(env, "POST", "/v1/workspaces/beta/spaces/main/deletion", None).await;
    env.settle().await;
    call(env, "DELETE", "/v1/workspaces/beta/spaces/main/deletion", None).await;
    env.settle().await;
    assert_eq!(status(env, space["id"].as_str().unwrap()).await["status"], "REVOKED");

    call(
        env,
        "PUT",
        "/v1/workspaces/gamma/hold",
        Some(r#"{"reason": "litigation"}"#),
    )
    .await;
    call(env, "GET", "/v1/workspaces/gamma/hold", None).await;
    call(env, "DELETE", "/v1/workspaces/gamma/hold", None).await;
    call(env, "DELETE", "/v1/workspaces/w1/members/ann", None).await;
    env.stack.grace_timer.sweep().await.expect("sweep");
}

/// Actions each function was granted and called (lower case).
fn used(decisions: &[Decision]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for d in decisions.iter().filter(|d| d.allowed) {
        out.entry(d.function.clone())
            .or_default()
            .insert(d.need.action.to_ascii_lowercase());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_runs_with_exactly_the_policy_the_template_gives_it() {
    let hooks = receiver().await;
    // Versioned buckets and plain ones take different calls.
    let plain = deploy(Versioning::None, Signing::Kms).await;
    a_workspace_from_request_to_receipt(&plain, &hooks).await;
    let env = deploy(Versioning::All, Signing::Kms).await;
    a_workspace_from_request_to_receipt(&env, &hooks).await;
    an_account_a_revoke_and_a_hold(&env).await;

    let mut decisions = plain.gate.decisions();
    decisions.extend(env.gate.decisions());
    let denied: Vec<&Decision> = decisions.iter().filter(|d| !d.allowed).collect();
    assert!(denied.is_empty(), "calls the template does not allow: {denied:#?}");
    let used = used(&decisions);
    for (function, policy) in &env.gate.policies {
        // Only one kind of conditional grant: KMS keys S3 uses on the
        // function's behalf (SSE-KMS), which no local store calls.
        for statement in policy.statements.iter().filter(|s| s.conditional) {
            assert!(
                statement.actions.iter().all(|a| a.starts_with("kms:"))
                    && statement.via_service.as_deref().is_some_and(|v| v.starts_with("s3.")),
                "{function}: a conditional grant the IAM test cannot judge: {statement:?}"
            );
        }
        let called = used.get(function).cloned().unwrap_or_default();
        let unused: Vec<String> = policy
            .actions()
            .into_iter()
            .filter(|a| !called.contains(&a.to_ascii_lowercase()))
            .collect();
        assert!(
            unused.is_empty(),
            "{function} is granted {unused:?}, which its code never called (it called {called:?})"
        );
    }
}

#[tokio::test]
async fn a_call_outside_a_functions_policy_is_refused_as_aws_refuses_it() {
    let env = deploy(Versioning::None, Signing::Local).await;
    env.gate
        .refusals_expected
        .store(true, std::sync::atomic::Ordering::SeqCst);
    env.put(&env.archive, "acme/web/2024-01-01/e.json.gz").await;
    let intake = Clients::for_local_with(
        &LocalEndpoints::single(&env.gate.endpoint),
        access_key("IntakeFunction"),
        "secret",
    )
    .await;
    let deleted = intake
        .s3
        .delete_object()
        .bucket(&env.archive)
        .key("acme/web/2024-01-01/e.json.gz")
        .send()
        .await;
    let err = deleted.expect_err("the intake may not delete objects");
    assert!(format!("{err:?}").contains("AccessDenied"), "{err:?}");
    let ledger = intake
        .dynamodb
        .delete_table()
        .table_name(&env.stack.settings.table)
        .send()
        .await;
    assert!(ledger.is_err(), "the intake may not delete the table");
    assert_eq!(env.inventory(&env.archive, "acme/").await.versions.len(), 1);
    let denied: Vec<String> = env.gate.denied().into_iter().map(|d| d.need.action).collect();
    assert_eq!(denied, ["s3:DeleteObject", "dynamodb:DeleteTable"]);
}
