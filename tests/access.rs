//! Who may delete: callers come from verified tokens, and every action is
//! checked against the membership directory before anything is written.
//! Against a real moto server, through the intake handler and, for the
//! token check itself, through the local runner's HTTP server.

use std::sync::Arc;

use deletion_core::access::{OPERATOR_SCOPE, SUPPRESSION_READ_SCOPE};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use integration_tests::{env, Answer, Env, Versioning};
use local_runner::token::DevIssuer;
use serde_json::{json, Value};

const NONE: &[&str] = &[];

async fn as_(env: &Env, who: &str, method: &str, path: &str, body: Option<&str>) -> Answer {
    env.call_as(Some((who, NONE)), method, path, body, &[]).await
}

/// ann administers acme; bob is a member of acme; carl administers globex.
async fn directory(env: &Env) {
    env.member("acme", "ann", "admin").await;
    env.member("acme", "bob", "member").await;
    env.member("globex", "carl", "admin").await;
}

fn forbidden(a: &Answer) {
    let p = a.problem(403);
    assert_eq!(p["type"], "urn:deletion-service:problem:forbidden");
}

#[tokio::test]
async fn only_a_workspaces_admins_may_delete_it_and_a_token_for_one_workspace_fails_on_another() {
    let env = env(Versioning::None).await;
    directory(&env).await;
    let before = env.ledger_keys().await;
    let regulation = r#"{"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["u1"]}"#;
    let days = r#"{"from": "2024-01-01", "to": "2024-01-02"}"#;
    for who in ["bob", "carl", "stranger"] {
        for (method, path, body) in [
            ("POST", "/v1/workspaces/acme/deletion", None),
            ("DELETE", "/v1/workspaces/acme/deletion", None),
            ("GET", "/v1/workspaces/acme/deletions", None),
            ("POST", "/v1/workspaces/acme/spaces/main/deletion", None),
            ("POST", "/v1/workspaces/acme/sources/web/deletions", Some(days)),
            ("POST", "/v1/workspaces/acme/regulations", Some(regulation)),
            ("GET", "/v1/workspaces/acme/regulations", None),
            ("GET", "/v1/workspaces/acme/suppressions/u1", None),
            ("POST", "/v1/purges", Some(r#"{"workspace": "acme"}"#)),
            ("PUT", "/v1/workspaces/acme/members/bob", Some(r#"{"role": "admin"}"#)),
            ("POST", "/v1/accounts/ann/deletion", None),
        ] {
            let a = as_(&env, who, method, path, body).await;
            assert_eq!(a.status, 403, "{who} {method} {path}: {:#}", a.body);
            forbidden(&a);
        }
    }
    // No token at all: 401, as the API's authorizer answers.
    let a = env
        .call_as(None, "POST", "/v1/workspaces/acme/deletion", None, &[])
        .await;
    a.problem(401);
    assert_eq!(
        a.headers.get("www-authenticate").and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    assert_eq!(env.ledger_keys().await, before, "no refused call wrote anything");

    // ann may; her name is on the request and on its revoke.
    let a = as_(&env, "ann", "POST", "/v1/workspaces/acme/deletion", None).await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    assert_eq!(a.body["requested_by"], "ann");
    let id = a.body["id"].as_str().unwrap().to_owned();
    // carl, an admin elsewhere, can neither read nor revoke it by id.
    forbidden(&as_(&env, "carl", "GET", &format!("/v1/deletions/{id}"), None).await);
    forbidden(&as_(&env, "carl", "GET", &format!("/v1/deletions/{id}/plan"), None).await);
    forbidden(&as_(&env, "carl", "DELETE", &format!("/v1/deletions/{id}"), None).await);
    forbidden(&as_(&env, "bob", "DELETE", &format!("/v1/deletions/{id}"), None).await);
    assert_eq!(
        as_(&env, "ann", "GET", &format!("/v1/deletions/{id}"), None)
            .await
            .status,
        200
    );
    let revoked = as_(&env, "ann", "DELETE", "/v1/workspaces/acme/deletion", None).await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    let last = revoked.body["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["status"].as_str(), last["by"].as_str()),
        (Some("REVOKED"), Some("ann"))
    );

    // carl administers globex, and may act there.
    let a = as_(
        &env,
        "carl",
        "POST",
        "/v1/workspaces/globex/regulations",
        Some(regulation),
    )
    .await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    let reg = a.body["id"].as_str().unwrap().to_owned();
    forbidden(&as_(&env, "ann", "GET", &format!("/v1/regulations/{reg}"), None).await);
    assert_eq!(
        as_(&env, "carl", "GET", &format!("/v1/regulations/{reg}"), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn an_account_deletes_itself_only_and_operators_do_operator_work() {
    let env = env(Versioning::None).await;
    directory(&env).await;
    forbidden(&as_(&env, "bob", "POST", "/v1/accounts/ann/deletion", None).await);
    forbidden(&as_(&env, "bob", "GET", "/v1/accounts/ann/memberships", None).await);
    let a = as_(&env, "ann", "POST", "/v1/accounts/ann/deletion", None).await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    let id = a.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        as_(&env, "ann", "GET", &format!("/v1/deletions/{id}"), None)
            .await
            .status,
        200
    );
    forbidden(&as_(&env, "carl", "GET", &format!("/v1/deletions/{id}"), None).await);
    assert_eq!(
        as_(&env, "ann", "GET", "/v1/accounts/ann/memberships", None)
            .await
            .status,
        200
    );

    // The complete purge of a long-deleted workspace is an operator's.
    forbidden(&as_(&env, "ann", "POST", "/v1/purges", Some(r#"{"workspace": "acme"}"#)).await);
    let op = env
        .call_as(
            Some(("ops-2", &[OPERATOR_SCOPE])),
            "POST",
            "/v1/purges",
            Some(r#"{"workspace": "old-ws"}"#),
            &[],
        )
        .await;
    assert_eq!(op.status, 202, "{:#}", op.body);
    let purge = op.body["id"].as_str().unwrap().to_owned();
    // Even an admin of the workspace cannot revoke an operator's purge.
    env.member("old-ws", "ann", "admin").await;
    forbidden(&as_(&env, "ann", "DELETE", &format!("/v1/deletions/{purge}"), None).await);
}

#[tokio::test]
async fn an_ingest_service_reads_suppressions_and_nothing_else() {
    let env = env(Versioning::None).await;
    directory(&env).await;
    let body = r#"{"type": "SUPPRESS_ONLY", "subject_type": "USER_ID", "subject_ids": ["u1"]}"#;
    assert_eq!(
        as_(&env, "ann", "POST", "/v1/workspaces/acme/regulations", Some(body))
            .await
            .status,
        202
    );
    let ingest = Some(("ingest-svc", &[SUPPRESSION_READ_SCOPE][..]));
    let a = env
        .call_as(ingest, "GET", "/v1/workspaces/acme/suppressions/u1", None, &[])
        .await;
    assert_eq!((a.status.as_u16(), a.body["suppressed"].clone()), (200, json!(true)));
    let check = r#"{"user_ids": ["u1", "u2"]}"#;
    let a = env
        .call_as(
            ingest,
            "POST",
            "/v1/workspaces/acme/suppressions:check",
            Some(check),
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    for (method, path, body) in [
        ("POST", "/v1/workspaces/acme/regulations", Some(body)),
        ("GET", "/v1/workspaces/acme/regulations", None),
        ("POST", "/v1/workspaces/acme/deletion", None),
    ] {
        forbidden(&env.call_as(ingest, method, path, body, &[]).await);
    }
    // A member of the workspace is no reader.
    forbidden(&as_(&env, "bob", "GET", "/v1/workspaces/acme/suppressions/u1", None).await);
}

async fn http(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = hyper::Request::builder().method(method).uri(format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let answer = client
        .request(req.body(Full::new(Bytes::new())).expect("request"))
        .await
        .expect("answer");
    let status = answer.status().as_u16();
    let bytes = answer.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_local_runner_verifies_tokens_as_the_api_authorizer_does() {
    let env = env(Versioning::None).await;
    directory(&env).await;
    let issuer = DevIssuer::new("test-key", "http://127.0.0.1/local-issuer", "deletion-service");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(local_runner::http::serve_on(
        listener,
        Arc::clone(&env.stack.intake),
        issuer.clone(),
    ));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let now = chrono::Utc::now().timestamp();
    let ann = issuer.mint("ann", &[], now, 600).unwrap();
    let carl = issuer.mint("carl", &[], now, 600).unwrap();
    let expired = issuer.mint("ann", &[], now - 3600, 60).unwrap();
    let forged = DevIssuer::new("another-key", &issuer.issuer, &issuer.audience)
        .mint("ann", &[OPERATOR_SCOPE], now, 600)
        .unwrap();
    let path = "/v1/workspaces/acme/deletion";
    for (token, why) in [
        (None, "no token"),
        (Some(expired.as_str()), "expired"),
        (Some(forged.as_str()), "forged"),
    ] {
        let (status, body) = http(&client, &base, "POST", path, token).await;
        assert_eq!(status, 401, "{why}: {body}");
    }
    let (status, body) = http(&client, &base, "POST", path, Some(&carl)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = http(&client, &base, "POST", path, Some(&ann)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["requested_by"], "ann");
}

#[tokio::test]
async fn idempotency_keys_are_the_callers_own_and_never_name_another_tenants_request() {
    let env = env(Versioning::None).await;
    directory(&env).await;
    let key = [("idempotency-key", "delete-1")];
    let carls = env
        .call_as(
            Some(("carl", NONE)),
            "POST",
            "/v1/workspaces/globex/deletion",
            None,
            &key,
        )
        .await;
    assert_eq!(carls.status, 202, "{:#}", carls.body);
    // ann's key of the same name is hers: a deletion of her own workspace.
    let anns = env
        .call_as(Some(("ann", NONE)), "POST", "/v1/workspaces/acme/deletion", None, &key)
        .await;
    assert_eq!(anns.status, 202, "{:#}", anns.body);
    assert_ne!(anns.body["id"], carls.body["id"]);
    let carls_id = carls.body["id"].as_str().unwrap();
    assert!(!anns.body.to_string().contains(carls_id), "{:#}", anns.body);
    // Each replays their own.
    let replay = env
        .call_as(Some(("ann", NONE)), "POST", "/v1/workspaces/acme/deletion", None, &key)
        .await;
    assert_eq!((replay.status.as_u16(), &replay.body["id"]), (200, &anns.body["id"]));

    // A co-admin cannot pre-claim the key an account deletion uses for a
    // child: ann's account deletion still adds every workspace she administers.
    let account = as_(&env, "ann", "POST", "/v1/accounts/ann/deletion", None).await;
    assert_eq!(account.status, 202, "{:#}", account.body);
    let parent = account.body["id"].as_str().unwrap().to_owned();
    env.member("w2", "ann", "admin").await;
    env.member("w2", "dan", "admin").await;
    env.member("dans", "dan", "admin").await;
    let claim = format!("account-{parent}-w2");
    let claimed = env
        .call_as(
            Some(("dan", NONE)),
            "POST",
            "/v1/workspaces/dans/deletion",
            None,
            &[("idempotency-key", claim.as_str())],
        )
        .await;
    assert_eq!(claimed.status, 202, "{:#}", claimed.body);
    let again = as_(&env, "ann", "POST", "/v1/accounts/ann/deletion", None).await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(again.body["id"], parent.as_str());
    let view = as_(&env, "ann", "GET", &format!("/v1/deletions/{parent}"), None).await;
    let mut workspaces: Vec<&str> = view.body["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["scope"]["workspace"].as_str().unwrap())
        .collect();
    workspaces.sort();
    assert_eq!(workspaces, ["acme", "w2"], "{:#}", view.body);
}

#[tokio::test]
async fn an_operators_complete_purge_stays_out_of_admins_listings() {
    let env = env(Versioning::None).await;
    directory(&env).await;
    let body = r#"{"workspace": "acme", "reason": "court order 17", "callback_url": "http://127.0.0.1:9/ops-hook"}"#;
    let purge = env.call("POST", "/v1/purges", Some(body), &[]).await;
    assert_eq!(purge.status, 202, "{:#}", purge.body);
    let mine = as_(&env, "ann", "POST", "/v1/workspaces/acme/spaces/main/deletion", None).await;
    assert_eq!(mine.status, 202, "{:#}", mine.body);
    let listed = as_(&env, "ann", "GET", "/v1/workspaces/acme/deletions", None).await;
    assert_eq!(listed.status, 200, "{:#}", listed.body);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{:#}", listed.body);
    assert_eq!(items[0]["id"], mine.body["id"]);
    let text = listed.body.to_string();
    assert!(!text.contains("court order") && !text.contains("ops-hook"), "{text}");
    // Operators see both.
    let all = env.call("GET", "/v1/workspaces/acme/deletions", None, &[]).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2, "{:#}", all.body);
}
