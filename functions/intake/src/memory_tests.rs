//! The intake's router over the in-memory ports (`deletion_core::testing`):
//! answers to requests as API Gateway delivers them, in milliseconds and
//! without servers. The integration tests in `tests/` at the workspace's
//! root run the same routes against DynamoDB Local and moto. (A module of
//! the library's unit tests: no test binary of its own to link.)

use std::sync::Arc;

use crate::Intake;
use chrono::{DateTime, Duration, Utc};
use deletion_core::datamap::DataMap;
use deletion_core::ids::RequestId;
use deletion_core::lifecycle::Periods;
use deletion_core::plan::Planner;
use deletion_core::ports::ManualClock;
use deletion_core::requests::Requests;
use deletion_core::testing::{LedgerOp, MemoryLedger, MemoryStore};
use deletion_core::LedgerError;
use lambda_http::{Body, Request};
use serde_json::Value;

type App = Arc<Intake<MemoryLedger, MemoryStore, ManualClock>>;

const PROBLEM_JSON: &str = "application/problem+json";

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-04-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn app() -> (App, MemoryLedger, ManualClock) {
    let (ledger, store, clock) = (MemoryLedger::new(), MemoryStore::new(), ManualClock::new(t0()));
    store.create_bucket("cdp-archive", false);
    let map = DataMap::from_json(
        r#"{"stores": [{"name": "archive", "bucket": "cdp-archive", "layout": "{workspace}/{source}/{day}/"}]}"#,
    )
    .unwrap();
    let requests = Requests::new(ledger.clone(), clock.clone(), Periods::default());
    let subjects = Arc::new(deletion_core::signing::HmacSigner::new("subjects", b"subject key"));
    let intake = Intake::new(requests, Planner::new(store, map), subjects);
    (Arc::new(intake), ledger, clock)
}

/// An answer: status, headers and the body as JSON (`Null` if empty).
struct Answer {
    status: u16,
    headers: lambda_http::http::HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// Asserts a problem+json answer of `status` and kind `kind`.
    fn problem(&self, status: u16, kind: &str) {
        assert_eq!(self.status, status, "{:#}", self.body);
        assert_eq!(self.header("content-type"), PROBLEM_JSON);
        assert_eq!(
            self.body["type"],
            format!("urn:deletion-service:problem:{kind}"),
            "{:#}",
            self.body
        );
        assert_eq!(self.body["status"], status);
    }
}

/// Calls the router as an operator, with the claims API Gateway's JWT
/// authorizer passes on (as the workspace's test harness does).
async fn call(app: &App, method: &str, path: &str, body: Option<&str>) -> Answer {
    let mut builder = lambda_http::http::Request::builder().method(method).uri(path);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let req: Request = builder
        .body(body.map_or(Body::Empty, |b| Body::Text(b.to_owned())))
        .unwrap();
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), "ops".into());
    claims.insert("scope".into(), deletion_core::access::OPERATOR_SCOPE.into());
    let req = crate::auth::with_verified_claims(req, &claims);
    let (parts, body) = app.handle(req).await.into_parts();
    let body = match body {
        Body::Text(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Body::Binary(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

fn id_of(answer: &Answer) -> RequestId {
    RequestId::parse(answer.body["id"].as_str().expect("an id")).unwrap()
}

#[tokio::test]
async fn a_created_deletion_is_accepted_and_its_status_read_back() {
    let (app, ledger, clock) = app();
    let created = call(
        &app,
        "POST",
        "/v1/workspaces/acme/deletion",
        Some(r#"{"reason": "closed"}"#),
    )
    .await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    let id = id_of(&created);
    assert_eq!(created.header("location"), format!("/v1/deletions/{id}"));
    assert_eq!(ledger.request(&id).expect("stored").reason.as_deref(), Some("closed"));

    clock.advance(Duration::hours(2));
    let status = call(&app, "GET", &format!("/v1/deletions/{id}"), None).await;
    assert_eq!(status.status, 200, "{:#}", status.body);
    assert_eq!(status.body["id"], id.as_str());
    assert_eq!(status.body["status"], "SCHEDULED");
    assert_eq!(status.body["scope"]["workspace"], "acme", "{:#}", status.body);

    // Asked again while it is under way: the same request, 200.
    let again = call(&app, "POST", "/v1/workspaces/acme/deletion", None).await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    assert_eq!(id_of(&again), id);
    assert_eq!(ledger.requests().len(), 1);
}

#[tokio::test]
async fn unknown_resources_are_404_and_unserved_methods_405_with_allow() {
    let (app, _, _) = app();
    call(&app, "GET", "/v1/nowhere", None).await.problem(404, "not-found");
    let missing = call(&app, "GET", &format!("/v1/deletions/{}", RequestId::new()), None).await;
    missing.problem(404, "not-found");

    let patch = call(&app, "PATCH", "/v1/workspaces/acme/deletion", None).await;
    patch.problem(405, "method-not-allowed");
    assert_eq!(patch.header("allow"), "POST, DELETE");
    assert_eq!(patch.body["instance"], "/v1/workspaces/acme/deletion");
}

#[tokio::test]
async fn a_revoked_scope_revoked_again_and_a_contended_scope_are_409() {
    let (app, ledger, clock) = app();
    let created = call(&app, "POST", "/v1/workspaces/acme/deletion", None).await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    clock.advance(Duration::days(1));
    let revoked = call(&app, "DELETE", "/v1/workspaces/acme/deletion", None).await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    assert_eq!(revoked.body["status"], "REVOKED");
    call(&app, "DELETE", "/v1/workspaces/acme/deletion", None)
        .await
        .problem(409, "already-revoked");

    // A scope whose every insert loses a race (another writer holds it
    // each time): 409, and nothing is written.
    ledger.fail(LedgerOp::Insert, deletion_core::retry::MAX_RACES, || {
        LedgerError::Conflict
    });
    let busy = call(&app, "POST", "/v1/workspaces/globex/deletion", None).await;
    busy.problem(409, "contention");
    assert_eq!(ledger.requests().len(), 1, "nothing written for globex");
}
