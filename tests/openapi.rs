//! The OpenAPI document against the intake: the committed
//! `api/openapi.json` is the one the intake generates from its handlers
//! (`UPDATE_OPENAPI=1` writes it), every documented path answers exactly
//! its documented methods (others 405 with `Allow`), and real answers have
//! a documented status, content type, headers and body (validated with the
//! `jsonschema` crate against the document's schemas). `infra/api-fuzz.sh`
//! runs schemathesis with the same document against the local service.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use deletion_core::plan::MAX_COUNTED_PREFIXES;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use integration_tests::{env, Answer, Env, Versioning};
use local_runner::token::DevIssuer;
use serde_json::{json, Value};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../api/openapi.json");

/// The document the intake generates.
fn document() -> Value {
    intake::doc::document()
}

/// The document as `api/openapi.json` is written.
fn rendered(doc: &Value) -> String {
    serde_json::to_string_pretty(doc).expect("a document") + "\n"
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = rendered(&document());
    if std::env::var_os("UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(COMMITTED, &generated).expect("write api/openapi.json");
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "api/openapi.json is stale: run UPDATE_OPENAPI=1 cargo test -p integration-tests --test integration openapi::"
    );
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(documented(&doc).len(), 29, "{:?}", documented(&doc).keys());
}

/// Documented operations: path template → methods (upper case).
fn documented(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let methods = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(path, item)| {
            let ops = methods
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_uppercase())
                .collect();
            (path.clone(), ops)
        })
        .collect()
}

const A_REQUEST_ID: &str = "0193c9a2-7b1e-7cc0-9a3e-5f0d2c1b4e6f";

/// A concrete path for a documented template, with valid parameters.
fn sample_path(template: &str) -> String {
    let mut path = template.to_owned();
    for (name, value) in [
        ("workspace", "acme"),
        ("space", "main"),
        ("source", "web"),
        ("account", "ann"),
        ("request_id", A_REQUEST_ID),
        ("regulation_id", A_REQUEST_ID),
        ("user_id", "bob"),
        ("subject_type", "USER_ID"),
        ("subject_id", "bob"),
    ] {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(!path.contains('{'), "no sample value for a parameter of {template}");
    path
}

#[tokio::test]
async fn every_documented_path_answers_exactly_its_documented_methods() {
    let env = env(Versioning::None).await;
    let doc = document();
    for (template, methods) in documented(&doc) {
        let path = sample_path(&template);
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD"] {
            if methods.contains(method) {
                continue;
            }
            let answer = env.call(method, &path, None, &[]).await;
            answer.problem(405);
            let allow: BTreeSet<String> = answer.headers["allow"]
                .to_str()
                .expect("Allow")
                .split(", ")
                .map(str::to_owned)
                .collect();
            assert_eq!(&allow, &methods, "{method} {template}: Allow, then the document");
        }
    }
    env.call("GET", "/v1/nothing/here", None, &[]).await.problem(404);
    // A trailing slash names the same resource.
    let answer = env.call("GET", "/v1/workspaces/acme/deletions/", None, &[]).await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);
}

#[test]
fn operations_are_named_once_and_every_reference_resolves() {
    let doc = document();
    let mut ids = BTreeSet::new();
    for (template, methods) in documented(&doc) {
        for method in methods {
            let op = &doc["paths"][&template][method.to_lowercase()];
            let id = op["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            for (status, _) in op["responses"].as_object().expect("responses") {
                assert!(
                    status.len() == 3 && status.parse::<u16>().is_ok(),
                    "{method} {template}: response key {status}"
                );
            }
        }
    }
    // Every $ref points at something, and every link at an operation.
    fn walk(doc: &Value, v: &Value, ids: &BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    assert!(!resolve(doc, r).is_null(), "{r} does not resolve");
                }
                if let Some(Value::String(op)) = map.get("operationId") {
                    assert!(ids.contains(op), "a link to unknown operation {op}");
                }
                map.values().for_each(|v| walk(doc, v, ids));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v, ids)),
            _ => {}
        }
    }
    walk(&doc, &doc, &ids);

    // A link names parameters its target operation has.
    let mut params: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut links = Vec::new();
    for (template, methods) in documented(&doc) {
        let item = &doc["paths"][&template];
        for method in methods {
            let op = &item[method.to_lowercase()];
            let names = [&item["parameters"], &op["parameters"]]
                .into_iter()
                .filter_map(Value::as_array)
                .flatten()
                .map(|p| match p.get("$ref").and_then(Value::as_str) {
                    Some(r) => resolve(&doc, r),
                    None => p,
                })
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            params.insert(op["operationId"].as_str().unwrap_or_default().to_owned(), names);
            for response in op["responses"].as_object().into_iter().flatten().map(|(_, r)| r) {
                for link in response["links"].as_object().into_iter().flatten().map(|(_, l)| l) {
                    links.push((format!("{method} {template}"), link.clone()));
                }
            }
        }
    }
    assert!(links.len() >= 20, "{} links", links.len());
    for (from, link) in links {
        let target = link["operationId"].as_str().expect("a link's operationId");
        for name in link["parameters"].as_object().expect("a link's parameters").keys() {
            assert!(
                params[target].contains(name),
                "{from}: {target} has no parameter {name}"
            );
        }
    }
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').expect("a local reference");
    doc.pointer(pointer).unwrap_or(&Value::Null)
}

/// Checks `value` against a schema of the document (its `$ref`s
/// resolved in the document, formats checked); the errors, each naming
/// where in the value it is.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let mut root = match schema {
        Value::Object(map) => map.clone(),
        other => panic!("{at}: not a schema: {other}"),
    };
    root.insert("components".into(), doc["components"].clone());
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&Value::Object(root))
        .unwrap_or_else(|e| panic!("{at}: the document's schema does not compile: {e}"));
    errors.extend(
        validator
            .iter_errors(value)
            .map(|e| format!("{at}{}: {e}", e.instance_path())),
    );
}

/// Asserts that `answer` is one the document describes for the operation:
/// its status, its content type, the headers it requires, and its body.
fn assert_documented(doc: &Value, method: &str, template: &str, answer: &Answer) {
    let op = &doc["paths"][template][method.to_lowercase()];
    assert!(op.is_object(), "{method} {template} is not documented");
    let status = answer.status.as_str();
    let mut response = &op["responses"][status];
    assert!(
        !response.is_null(),
        "{method} {template} answered {status}, which the document does not list: {:#}",
        answer.body
    );
    if let Some(Value::String(r)) = response.get("$ref") {
        response = resolve(doc, r);
    }
    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        let value = answer.headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        match value {
            None => assert!(
                header["required"] != true,
                "{method} {template} {status}: no {name} header"
            ),
            Some(v) => {
                let mut errors = Vec::new();
                validate(doc, &header["schema"], &json!(v), name, &mut errors);
                assert!(errors.is_empty(), "{method} {template} {status}: {errors:#?}");
            }
        }
    }
    let media = answer.content_type().split(';').next().unwrap_or("").trim();
    let content = &response["content"][media];
    assert!(
        content.is_object(),
        "{method} {template} {status}: content type {media:?} is not documented"
    );
    let mut errors = Vec::new();
    validate(doc, &content["schema"], &answer.body, "", &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {template} {status}: the body breaks the document: {errors:#?}\n{:#}",
        answer.body
    );
}

/// The documented template a concrete path (query aside) belongs to.
fn template_of(doc: &Value, path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let matches = |template: &str| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')))
    };
    let mut found: Vec<String> = documented(doc).into_keys().filter(|t| matches(t)).collect();
    assert_eq!(found.len(), 1, "{path} matches {found:?} in the document");
    found.remove(0)
}

/// The intake, called as an operator, with every answer checked against
/// the document.
struct Api {
    env: Env,
    doc: Value,
}

impl Api {
    async fn new() -> Api {
        Api {
            env: env(Versioning::None).await,
            doc: document(),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Answer {
        let answer = self.env.call(method, path, body, headers).await;
        assert_documented(&self.doc, method, &template_of(&self.doc, path), &answer);
        answer
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, None, &[]).await
    }

    async fn post(&self, path: &str, body: Option<&str>) -> Answer {
        self.send("POST", path, body, &[]).await
    }

    async fn put(&self, path: &str, body: &str) -> Answer {
        self.send("PUT", path, Some(body), &[]).await
    }

    async fn delete(&self, path: &str) -> Answer {
        self.send("DELETE", path, None, &[]).await
    }
}

fn id_of(answer: &Answer) -> String {
    answer.body["id"].as_str().expect("an id").to_owned()
}

#[tokio::test]
async fn every_documented_operation_is_served_and_answers_as_documented() {
    let api = Api::new().await;
    let bodies = BTreeMap::from([
        (
            "createSourceDaysDeletion",
            r#"{"from": "2024-01-01", "to": "2024-01-02"}"#,
        ),
        ("putMember", r#"{"role": "admin"}"#),
        ("createPurge", r#"{"workspace": "old-ws"}"#),
        (
            "createRegulation",
            r#"{"type": "SUPPRESS_ONLY", "subject_type": "USER_ID", "subject_ids": ["bob"]}"#,
        ),
        (
            "createSourceRegulation",
            r#"{"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["bob"]}"#,
        ),
        ("checkSuppressions", r#"{"user_ids": ["bob"], "source": "web"}"#),
        (
            "createOpenDsrRequest",
            r#"{"regulation": "gdpr", "subject_request_id": "a7551968-d5d6-44b2-9831-815ac9017798",
                "subject_request_type": "erasure", "submitted_time": "2018-10-02T15:00:00Z",
                "subject_identities": [{"identity_type": "controller_customer_id", "identity_value": "bob", "identity_format": "raw"}],
                "extensions": {"deletion.example.com": {"workspace": "acme"}}}"#,
        ),
        ("placeHold", r#"{"reason": "litigation"}"#),
        (
            "setQuotas",
            r#"{"requests_per_minute": 600, "subjects_per_month": 110000}"#,
        ),
        (
            "setRetention",
            r#"{"default_days": 90, "sources": {"web": 30, "ios": null}}"#,
        ),
    ]);
    let mut statuses = BTreeMap::new();
    for (template, methods) in documented(&api.doc) {
        for method in methods {
            let op = &api.doc["paths"][&template][method.to_lowercase()];
            let id = op["operationId"].as_str().expect("operationId").to_owned();
            let body = bodies.get(id.as_str()).copied();
            if op["requestBody"]["required"] == true && id != "verifyReceipt" {
                assert!(body.is_some(), "no sample body for {id}");
            }
            let answer = api.send(&method, &sample_path(&template), body, &[]).await;
            let no_route = answer.status == 404
                && answer.body["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("no resource at"));
            assert!(answer.status != 405 && !no_route, "{method} {template} is not served");
            statuses.insert(id, answer.status.as_u16());
        }
    }
    assert_eq!(statuses.len(), 41, "{statuses:?}");
    // With valid input and nothing else in the ledger, the operations on
    // something that exists answer 2xx; those by id find nothing.
    for (id, expected) in [
        ("createWorkspaceDeletion", 202),
        ("putMember", 200),
        ("checkSuppressions", 200),
        ("getSubject", 200),
        ("getUsage", 200),
        ("setQuotas", 200),
        ("getSuppression", 200),
        ("getDeletion", 404),
        ("cancelRegulation", 404),
        ("verifyReceipt", 400),
        ("getReceiptKeys", 200),
        ("getOpenDsrKeys", 200),
        // In-process calls carry no Host, so no processor domain (over
        // HTTP it answers 200: tests/opendsr.rs).
        ("openDsrDiscovery", 400),
        ("getOpenDsrRequest", 404),
        ("cancelOpenDsrRequest", 404),
    ] {
        assert_eq!(statuses[id], expected, "{id}: {statuses:?}");
    }
}

#[tokio::test]
async fn real_answers_have_documented_statuses_headers_and_bodies() {
    let api = Api::new().await;
    api.env.member("acme", "ann", "admin").await;
    let (id, space_id) = creates_and_reads(&api).await;
    refusals(&api).await;
    revokes(&api, &id, &space_id).await;
    accounts_and_the_directory(&api).await;
    let purged_id = a_purge_with_its_receipt(&api).await;
    regulations_suppressions_and_holds(&api, &purged_id).await;
    retention(&api).await;
    outside_the_document(&api).await;
}

/// Creates: 202 with Location, then 200 for the same scope; dry runs; then
/// reads of a request (with progress and callbacks), its plan, the lists.
async fn creates_and_reads(api: &Api) -> (String, String) {
    let ws = "/v1/workspaces/acme/deletion";
    let created = api.post(ws, Some(r#"{"reason": "closed"}"#)).await;
    assert_eq!(created.status, 202);
    let id = id_of(&created);
    assert_eq!(created.headers["location"], format!("/v1/deletions/{id}").as_str());
    let again = api.post(ws, None).await;
    assert_eq!((again.status.as_u16(), id_of(&again)), (200, id.clone()));
    let space = "/v1/workspaces/acme/spaces/main/deletion";
    let dry = api.post(&format!("{space}?dry_run=true"), None).await;
    assert_eq!((dry.status.as_u16(), &dry.body["dry_run"]), (200, &json!(true)));
    let callback = r#"{"callback_url": "http://127.0.0.1:9/hook"}"#;
    let keyed = api
        .send("POST", space, Some(callback), &[("idempotency-key", "order-42")])
        .await;
    assert_eq!(keyed.status, 202);
    assert!(keyed.body["callback"]["secret"].is_string(), "{:#}", keyed.body);
    let space_id = id_of(&keyed);

    // Reads: a request (with progress and callbacks), its plan, the lists.
    let got = api.get(&format!("/v1/deletions/{id}")).await;
    assert!(got.body["progress"].is_object(), "{:#}", got.body);
    let got = api.get(&format!("/v1/deletions/{space_id}")).await;
    assert!(got.body["callbacks"].is_object(), "{:#}", got.body);
    assert_eq!(api.get(&format!("/v1/deletions/{id}/plan")).await.status, 200);
    let list = "/v1/workspaces/acme/deletions";
    let page = api.get(&format!("{list}?limit=1")).await;
    let cursor = page.body["next_cursor"].as_str().expect("a second page");
    assert_eq!(api.get(&format!("{list}?limit=1&cursor={cursor}")).await.status, 200);
    api.get(&format!("{list}?cursor=nope")).await.problem(400);
    (id, space_id)
}

/// Refusals, each a problem+json; a 401 and a 403 as documented.
async fn refusals(api: &Api) {
    let ws = "/v1/workspaces/acme/deletion";
    let list = "/v1/workspaces/acme/deletions";
    let json: &[(&str, &str)] = &[("content-type", "application/json")];
    let text: &[(&str, &str)] = &[("content-type", "text/plain")];
    let large = json!({ "reason": "x".repeat(17 * 1024) }).to_string();
    let unknown = format!("/v1/deletions/{A_REQUEST_ID}");
    for (method, path, body, headers, status) in [
        ("POST", "/v1/workspaces/-acme/deletion", None, json, 400),
        ("POST", ws, Some(r#"{"why": "x"}"#), json, 400),
        ("POST", ws, Some("reason"), text, 415),
        ("POST", ws, Some(large.as_str()), json, 413),
        ("GET", unknown.as_str(), None, json, 404),
        ("GET", "/v1/deletions/not-an-id", None, json, 400),
    ] {
        api.send(method, path, body, headers).await.problem(status);
    }
    let template = template_of(&api.doc, list);
    let unauthenticated = api.env.call_as(None, "GET", list, None, &[]).await;
    assert_documented(&api.doc, "GET", &template, &unauthenticated);
    unauthenticated.problem(401);
    let carl = api.env.call_as(Some(("carl", &[])), "GET", list, None, &[]).await;
    assert_documented(&api.doc, "GET", &template, &carl);
    carl.problem(403);
}

/// Revokes: 200, then 409; by scope and by id.
async fn revokes(api: &Api, id: &str, space_id: &str) {
    let ws = "/v1/workspaces/acme/deletion";
    let revoked = api.delete(ws).await;
    assert_eq!(
        (revoked.status.as_u16(), &revoked.body["status"], &revoked.body["id"]),
        (200, &json!("REVOKED"), &json!(id))
    );
    api.delete(ws).await.problem(409);
    assert_eq!(api.delete(&format!("/v1/deletions/{space_id}")).await.status, 200);
    api.delete(&format!("/v1/deletions/{space_id}")).await.problem(409);
}

/// Accounts and the directory.
async fn accounts_and_the_directory(api: &Api) {
    let account = "/v1/accounts/ann/deletion";
    let ann = api.post(account, None).await;
    assert_eq!(ann.status, 202, "{:#}", ann.body);
    let ann_view = api.get(&format!("/v1/deletions/{}", id_of(&ann))).await;
    assert!(
        ann_view.body["children"][0]["status"].is_string(),
        "{:#}",
        ann_view.body
    );
    assert_eq!(api.get("/v1/accounts/ann/deletions").await.status, 200);
    api.post("/v1/accounts/nobody/deletion", None).await.problem(422);
    assert_eq!(api.delete(account).await.status, 200);
    assert_eq!(api.get("/v1/accounts/ann/memberships").await.status, 200);
    assert_eq!(api.delete("/v1/workspaces/acme/members/ann").await.status, 200);
    api.delete("/v1/workspaces/acme/members/ann").await.problem(404);
}

/// A source's days purge at once: a completed request with a receipt,
/// which checks out; a purge of a long-deleted workspace is accepted.
async fn a_purge_with_its_receipt(api: &Api) -> String {
    api.env.put(&api.env.archive, "acme/web/2024-01-01/x.json.gz").await;
    let range = r#"{"from": "2024-01-01", "to": "2024-01-01"}"#;
    let purged = api.post("/v1/workspaces/acme/sources/web/deletions", Some(range)).await;
    assert_eq!(purged.status, 202, "{:#}", purged.body);
    let purged_id = id_of(&purged);
    api.env.settle().await;
    let done = api.get(&format!("/v1/deletions/{purged_id}")).await;
    assert_eq!(done.body["status"], "COMPLETED", "{:#}", done.body);
    let checked = api
        .post("/v1/receipts:verify", Some(&done.body["receipt"].to_string()))
        .await;
    assert_eq!(checked.body["valid"], true, "{:#}", checked.body);
    let purge = api
        .post("/v1/purges", Some(r#"{"workspace": "old-ws", "reason": "2019"}"#))
        .await;
    assert_eq!(purge.status, 202);
    purged_id
}

/// Regulations, suppressions, holds.
async fn regulations_suppressions_and_holds(api: &Api, purged_id: &str) {
    let regs = "/v1/workspaces/acme/regulations";
    let reg_body = r#"{"type": "SUPPRESS_WITH_DELETE", "subject_type": "USER_ID", "subject_ids": ["bob", "u-1"]}"#;
    let reg = api.post(regs, Some(reg_body)).await;
    assert_eq!(reg.status, 202, "{:#}", reg.body);
    let reg_id = id_of(&reg);
    assert_eq!(reg.headers["location"], format!("/v1/regulations/{reg_id}").as_str());
    api.env.settle().await;
    assert_eq!(api.get(&format!("/v1/regulations/{reg_id}")).await.status, 200);
    api.get(&format!("/v1/regulations/{purged_id}")).await.problem(404);
    assert_eq!(api.get(regs).await.status, 200);
    let list = api.get("/v1/workspaces/acme/suppressions?limit=1").await;
    assert_eq!(list.status, 200, "{:#}", list.body);
    assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
    let bob = api.get("/v1/workspaces/acme/suppressions/bob").await;
    assert_eq!(bob.body["suppressed"], true, "{:#}", bob.body);
    let subject = api.get("/v1/workspaces/acme/subjects/USER_ID/bob").await;
    assert_eq!(subject.body["deleted"], true, "{:#}", subject.body);
    api.delete(&format!("/v1/regulations/{reg_id}")).await.problem(409);
    let queued = api
        .post(
            regs,
            Some(r#"{"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["ann"]}"#),
        )
        .await;
    let cancelled = api.delete(&format!("/v1/regulations/{}", id_of(&queued))).await;
    assert_eq!(cancelled.body["status"], "CANCELLED", "{:#}", cancelled.body);
    let hold = "/v1/workspaces/acme/hold";
    assert_eq!(api.put(hold, r#"{"reason": "litigation"}"#).await.status, 200);
    assert_eq!(api.get(hold).await.status, 200);
    assert_eq!(api.delete(hold).await.status, 200);
    api.get(hold).await.problem(404);
    api.delete(hold).await.problem(404);
}

/// A retention policy: read, previewed, put in grace (202), lengthened at
/// once (200), its change revoked, removed; and what is then missing.
async fn retention(api: &Api) {
    let path = "/v1/workspaces/acme/retention";
    let none = api.get(path).await;
    assert_eq!((none.status.as_u16(), &none.body["policy"]), (200, &Value::Null));
    api.env.put(&api.env.archive, "acme/web/2020-01-01/e.json.gz").await;
    let body = r#"{"default_days": 90, "sources": {"web": 30, "ios": null}}"#;
    let dry = api.send("PUT", &format!("{path}?dry_run=true"), Some(body), &[]).await;
    assert_eq!(
        (dry.status.as_u16(), &dry.body["dry_run"]),
        (200, &Value::Bool(true)),
        "{:#}",
        dry.body
    );
    assert_eq!(dry.body["preview"]["days"][0]["day"], "2020-01-01");
    assert_eq!(api.put(path, body).await.status, 202);
    let later = api.send("PUT", path, Some(r#"{"default_days": null}"#), &[]).await;
    assert_eq!(later.status, 200, "keeps more: at once");
    assert_eq!(api.put(path, body).await.status, 202);
    assert_eq!(api.delete(&format!("{path}/pending")).await.status, 200);
    api.delete(&format!("{path}/pending")).await.problem(404);
    assert_eq!(api.delete(path).await.status, 200);
    api.delete(path).await.problem(404);
    api.send("PUT", path, Some(r#"{"default_days": 0}"#), &[])
        .await
        .problem(400);
}

/// Outside the document: an unknown path is a 404, a method a path does
/// not allow a 405 whose Allow lists the documented methods.
async fn outside_the_document(api: &Api) {
    let hold = "/v1/workspaces/acme/hold";
    api.env.call("GET", "/v1/nothing", None, &[]).await.problem(404);
    let wrong = api.env.call("PATCH", hold, None, &[]).await;
    wrong.problem(405);
    let allow: BTreeSet<&str> = wrong.headers["allow"].to_str().expect("Allow").split(", ").collect();
    let listed = &documented(&api.doc)[&template_of(&api.doc, hold)];
    assert_eq!(allow, listed.iter().map(String::as_str).collect());
}

/// Found by schemathesis: the same user twice in one check made DynamoDB
/// refuse the batch read (a key named twice), and the check answered 503.
#[tokio::test]
async fn a_suppression_check_may_name_a_user_twice() {
    let api = Api::new().await;
    let body = r#"{"type": "SUPPRESS_ONLY", "subject_type": "USER_ID", "subject_ids": ["bob"]}"#;
    assert_eq!(
        api.post("/v1/workspaces/acme/regulations", Some(body)).await.status,
        202
    );
    let check = "/v1/workspaces/acme/suppressions:check";
    let answer = api
        .post(check, Some(r#"{"user_ids": ["bob", "ann", "bob", "0", "0"]}"#))
        .await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let results: Vec<(&str, bool)> = answer.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["user_id"].as_str().unwrap_or(""), r["suppressed"] == true))
        .collect();
    assert_eq!(
        results,
        [("bob", true), ("ann", false), ("bob", true), ("0", false), ("0", false)]
    );
    assert_eq!(answer.body["suppressed_count"], 2);
    // Past a batch read's 100 keys, with repeats across the batches.
    let many: Vec<String> = (0..250).map(|i| format!("u{}", i % 120)).collect();
    let answer = api.post(check, Some(&json!({ "user_ids": many }).to_string())).await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    assert_eq!(answer.body["results"].as_array().map(Vec::len), Some(250));
}

/// Found by schemathesis: a dry run of years of a source's days counted
/// every day's prefix, two listings each, one after another: over 30
/// seconds against moto, past the intake's 10-second timeout in AWS.
#[tokio::test]
async fn a_plan_of_years_of_days_counts_a_bounded_number_of_prefixes() {
    let api = Api::new().await;
    api.env.put(&api.env.archive, "acme/web/2015-01-01/x.json.gz").await;
    let range = r#"{"from": "2015-01-01", "to": "2022-12-31"}"#;
    let days = "/v1/workspaces/acme/sources/web/deletions";
    let started = std::time::Instant::now();
    let dry = api.post(&format!("{days}?dry_run=true"), Some(range)).await;
    assert_eq!(dry.status, 200, "{:#}", dry.body);
    let created = api.post(days, Some(range)).await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    let plan = api.get(&format!("/v1/deletions/{}/plan", id_of(&created))).await;
    assert!(started.elapsed().as_secs() < 20, "took {:?}", started.elapsed());
    for plan in [&dry.body["plan"], &plan.body["plan"]] {
        let prefixes = plan["prefixes"].as_array().expect("prefixes");
        assert_eq!(prefixes.len(), 2922, "one per day");
        assert_eq!(prefixes[0]["prefix"], "acme/web/2015-01-01/");
        assert_eq!(prefixes[2921]["prefix"], "acme/web/2022-12-31/");
        let counted = prefixes.iter().filter(|p| p["complete"] == true).count();
        assert!(
            (1..=MAX_COUNTED_PREFIXES).contains(&counted),
            "{counted} prefixes counted"
        );
        assert_eq!(prefixes[0]["found"]["objects"], 1, "the first day is counted");
        assert_eq!(
            (&plan["complete"], &plan["totals"]["objects"]),
            (&json!(false), &json!(1))
        );
    }
}

/// Found by schemathesis: the local runner, standing in for API Gateway's
/// JWT authorizer, refused a missing token without a content type.
#[tokio::test]
async fn the_local_runners_refusal_of_a_missing_token_is_documented() {
    let env = env(Versioning::None).await;
    let doc = document();
    let issuer = DevIssuer::new("test-key", "http://127.0.0.1/local-issuer", "deletion-service");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(local_runner::http::serve_on(
        listener,
        Arc::clone(&env.stack.intake),
        issuer,
    ));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let request = hyper::Request::builder()
        .method("GET")
        .uri(format!("{base}/v1/workspaces/acme/deletions"))
        .body(Full::new(Bytes::new()))
        .expect("request");
    let answer = client.request(request).await.expect("answer");
    let (parts, body) = answer.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let answer = Answer {
        status: parts.status,
        headers: parts.headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    assert_eq!(answer.status, 401);
    assert_eq!(answer.content_type(), "application/json");
    assert_documented(&doc, "GET", "/v1/workspaces/{workspace}/deletions", &answer);
}

#[tokio::test]
async fn status_change_events_match_the_documented_webhook() {
    let env = env(Versioning::None).await;
    let doc = document();
    let hook = &doc["webhooks"]["statusChanged"]["post"];
    let schema = &hook["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "the webhook is documented");
    // Nobody listens there: the events are built all the same.
    let body = r#"{"callback_url": "http://127.0.0.1:9/hooks"}"#;
    let created = env
        .call("POST", "/v1/workspaces/hooked/deletion", Some(body), &[])
        .await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    env.clock.advance(chrono::Duration::days(6));
    env.settle().await;
    let id = deletion_core::ids::RequestId::parse(&id_of(&created)).unwrap();
    let request = deletion_core::ports::Ledger::get(&env.stack.ledger, &id)
        .await
        .unwrap()
        .unwrap();
    assert!(request.history.len() >= 4, "{:?}", request.history);
    for n in 0..request.history.len() {
        let event = deletion_core::callbacks::event(&request, n).expect("an event per entry");
        let mut errors = Vec::new();
        validate(&doc, schema, &event, &format!("event {n}"), &mut errors);
        assert!(errors.is_empty(), "{errors:#?}\n{event:#}");
        // The validator bites: an undocumented field is caught.
        let mut extra = event.clone();
        extra["surprise"] = json!(true);
        let mut errors = Vec::new();
        validate(&doc, schema, &extra, "extra", &mut errors);
        assert!(!errors.is_empty());
    }
    let header = deletion_core::callbacks::signature("dcs_x", 1_700_000_000, b"{}");
    let (t, mac) = header.split_once(",v1=").unwrap();
    assert_eq!(t, "t=1700000000");
    assert!(mac.len() == 64 && mac.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}
