//! The HTTP API of the deletion service (see the README for the table).
//!
//! Every refusal is a problem+json body with a 4xx; nothing is written
//! before the whole request is validated.

use chrono::{Duration, NaiveDate};
use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use deletion_core::access::{Caller, Need};
use deletion_core::authorization;
use deletion_core::callbacks::{self, CallbackUrl, UrlPolicy};
use deletion_core::ids::{AccountId, IdempotencyKey, RequestId, SourceId, SpaceId, WorkspaceId};
use deletion_core::model::{DeletionRequest, Listing, Scope};
use deletion_core::plan::Planner;
use deletion_core::ports::{CallbackLedger, Clock, Directory, Holds, Ledger, ObjectStore, Regulations, Role};
use deletion_core::regulation::{RegulationType, Subjects, UserId, MAX_SUBJECTS};
use deletion_core::requests::{Created, Requests};
use deletion_core::signing::{verify_receipt, ReceiptSigner};
use deletion_core::ServiceError;

use crate::problem::Problem;
use crate::views;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Largest accepted regulation body (the API's published limit).
pub const MAX_REGULATION_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most ids in one suppression check.
pub const MAX_CHECK_IDS: usize = 1000;
/// Largest accepted suppression-check body.
pub const MAX_CHECK_BODY_BYTES: usize = 1024 * 1024;
/// Longest accepted `reason`.
pub const MAX_REASON_CHARS: usize = 1000;
/// Longest accepted range of a source's days.
pub const MAX_DAYS: i64 = 3660;
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

/// The intake: the API over the request service.
pub struct Intake<L, S, C> {
    requests: Requests<L, C>,
    planner: Planner<S>,
    signer: Option<std::sync::Arc<dyn ReceiptSigner>>,
    callbacks: Option<CallbackConfig>,
}

/// What status callbacks need at intake: which URLs are accepted, and the
/// key each request's secret is derived from.
pub struct CallbackConfig {
    pub policy: UrlPolicy,
    pub key: std::sync::Arc<dyn ReceiptSigner>,
}

/// What a create body asks besides its scope.
struct Ask {
    reason: Option<String>,
    callback: Option<CallbackUrl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceDaysBody {
    from: String,
    to: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurgeBody {
    workspace: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegulationBody {
    #[serde(rename = "type")]
    regulation: String,
    subject_type: String,
    subject_ids: Vec<String>,
    #[serde(default)]
    callback_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    user_ids: Vec<String>,
}

enum Route<'a> {
    WorkspaceDeletion(&'a str),
    WorkspaceDeletions(&'a str),
    SpaceDeletion(&'a str, &'a str),
    SourceDeletions(&'a str, &'a str),
    Member(&'a str, &'a str),
    AccountDeletion(&'a str),
    AccountDeletions(&'a str),
    AccountMemberships(&'a str),
    Purges,
    Deletion(&'a str),
    DeletionPlan(&'a str),
    Regulations(&'a str),
    Regulation(&'a str),
    Suppression(&'a str, &'a str),
    SuppressionCheck(&'a str),
    Hold(&'a str),
    VerifyReceipt,
}

fn route(path: &str) -> Option<Route<'_>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    Some(match segments.as_slice() {
        ["", "v1", "workspaces", ws, "deletion"] => Route::WorkspaceDeletion(ws),
        ["", "v1", "workspaces", ws, "deletions"] => Route::WorkspaceDeletions(ws),
        ["", "v1", "workspaces", ws, "spaces", space, "deletion"] => Route::SpaceDeletion(ws, space),
        ["", "v1", "workspaces", ws, "sources", src, "deletions"] => Route::SourceDeletions(ws, src),
        ["", "v1", "workspaces", ws, "members", account] => Route::Member(ws, account),
        ["", "v1", "accounts", account, "deletion"] => Route::AccountDeletion(account),
        ["", "v1", "accounts", account, "deletions"] => Route::AccountDeletions(account),
        ["", "v1", "accounts", account, "memberships"] => Route::AccountMemberships(account),
        ["", "v1", "purges"] => Route::Purges,
        ["", "v1", "deletions", id] => Route::Deletion(id),
        ["", "v1", "deletions", id, "plan"] => Route::DeletionPlan(id),
        ["", "v1", "workspaces", ws, "regulations"] => Route::Regulations(ws),
        ["", "v1", "regulations", id] => Route::Regulation(id),
        ["", "v1", "workspaces", ws, "suppressions", user] => Route::Suppression(ws, user),
        ["", "v1", "workspaces", ws, "suppressions:check"] => Route::SuppressionCheck(ws),
        ["", "v1", "workspaces", ws, "hold"] => Route::Hold(ws),
        ["", "v1", "receipts:verify"] => Route::VerifyReceipt,
        _ => return None,
    })
}

fn json_response(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Who is asking: the verified claims API Gateway's JWT authorizer passes
/// on (`sub`, and the scopes from `scope` or `scp`). A request without
/// them did not come through the authorizer: 401.
pub fn caller(req: &Request) -> Result<Caller, Problem> {
    let jwt = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()),
        _ => None,
    };
    let Some(jwt) = jwt else {
        return Err(Problem::unauthenticated("the request carries no verified token"));
    };
    let Some(sub) = jwt.claims.get("sub").filter(|s| !s.trim().is_empty()) else {
        return Err(Problem::unauthenticated("the token has no sub claim"));
    };
    let mut scopes: Vec<String> = jwt.scopes.clone().unwrap_or_default();
    for claim in ["scope", "scp"] {
        if let Some(v) = jwt.claims.get(claim) {
            // API Gateway passes a list claim as "[a b]".
            let v = v.trim_start_matches('[').trim_end_matches(']');
            scopes.extend(v.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned));
        }
    }
    Ok(Caller::new(sub.clone(), scopes))
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Reads a JSON object body into `T`; `None` for an empty body.
fn json_body<T: DeserializeOwned>(req: &Request) -> Result<Option<T>, Problem> {
    let bytes = body_bytes(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The body is too large",
            format!(
                "the body has {} bytes; at most {MAX_BODY_BYTES} are accepted",
                bytes.len()
            ),
        ));
    }
    parse_json_body(req, bytes)
}

/// A JSON body of up to `limit` bytes; a larger one is a 400 naming it.
fn large_json_body<T: DeserializeOwned>(req: &Request, limit: usize, example: &str) -> Result<T, Problem> {
    let bytes = body_bytes(req);
    if bytes.len() > limit {
        return Err(Problem::bad_request(format!(
            "the body has {} bytes; at most {limit} ({} MB) are accepted in one call: split the ids over several calls",
            bytes.len(),
            limit as f64 / (1024.0 * 1024.0)
        )));
    }
    parse_json_body(req, bytes)?
        .ok_or_else(|| Problem::bad_request(format!("a JSON body is required, such as {example}")))
}

fn parse_json_body<T: DeserializeOwned>(req: &Request, bytes: &[u8]) -> Result<Option<T>, Problem> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "The body must be JSON",
            format!("send Content-Type: application/json (got {content_type:?})"),
        ));
    }
    let invalid = |e: serde_json::Error| Problem::bad_request(format!("the body is not valid here: {e}"));
    let value: Value = serde_json::from_slice(bytes).map_err(invalid)?;
    // serde would read a struct from an array too: only an object is a request.
    if !value.is_object() {
        return Err(Problem::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(value).map(Some).map_err(invalid)
}

fn required_body<T: DeserializeOwned>(req: &Request, example: &str) -> Result<T, Problem> {
    json_body(req)?.ok_or_else(|| Problem::bad_request(format!("a JSON body is required, such as {example}")))
}

fn check_reason(reason: Option<String>) -> Result<Option<String>, Problem> {
    match reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(Problem::bad_request(format!(
            "reason has {} characters; at most {MAX_REASON_CHARS} are accepted",
            r.chars().count()
        ))),
        Some(r) if r.chars().any(char::is_control) => {
            Err(Problem::bad_request("reason must not contain control characters"))
        }
        other => Ok(other.filter(|r| !r.trim().is_empty())),
    }
}

fn create_body(req: &Request) -> Result<CreateBody, Problem> {
    Ok(json_body::<CreateBody>(req)?.unwrap_or(CreateBody {
        reason: None,
        callback_url: None,
    }))
}

fn idempotency_key(req: &Request) -> Result<Option<IdempotencyKey>, Problem> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| Problem::bad_request("invalid header Idempotency-Key: must be visible ASCII"))?;
            IdempotencyKey::parse(s)
                .map(Some)
                .map_err(|e| Problem::bad_request(e.to_string()))
        }
    }
}

/// Minimal query parsing: the parameters used take no escapes.
fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn dry_run(req: &Request) -> Result<bool, Problem> {
    match query_param(req, "dry_run") {
        None | Some("false") => Ok(false),
        Some("true") | Some("") => Ok(true),
        Some(v) => Err(Problem::bad_request(format!(
            "dry_run must be true or false (got {v:?})"
        ))),
    }
}

fn page_params(req: &Request) -> Result<(u32, Option<String>), Problem> {
    let limit = match query_param(req, "limit") {
        None => DEFAULT_PAGE,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                return Err(Problem::bad_request(format!(
                    "limit must be a whole number from 1 to {MAX_PAGE} (got {v:?})"
                )))
            }
        },
    };
    let cursor = match query_param(req, "cursor") {
        None | Some("") => None,
        Some(c) if c.len() <= 1024 => Some(c.to_owned()),
        Some(_) => {
            return Err(Problem::bad_request(
                "the cursor parameter is not one this API handed out",
            ))
        }
    };
    Ok((limit, cursor))
}

fn id<T>(parse: impl Fn(&str) -> Result<T, deletion_core::InputError>, raw: &str) -> Result<T, Problem> {
    parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

/// A whole day, `YYYY-MM-DD`. Anything finer is refused.
fn parse_day(field: &str, value: &str) -> Result<NaiveDate, Problem> {
    let shaped = value.len() == 10
        && value.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        let finer = value.contains('T') || value.contains(':') || value.contains(' ');
        return Err(Problem::bad_request(if finer {
            format!(
                "{field} is {value:?}: deletions of a source's archive go by whole days only; give {field} as YYYY-MM-DD, without a time"
            )
        } else {
            format!("{field} is {value:?}: give a day as YYYY-MM-DD")
        }));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| Problem::bad_request(format!("{field} is {value:?}: no such day")))
}

/// Decodes a path segment's percent escapes (user ids may hold any
/// character); invalid escapes or UTF-8 are refused.
fn percent_decode(field: &str, raw: &str) -> Result<String, Problem> {
    let bad = || Problem::bad_request(format!("{field} {raw:?} has an invalid percent escape"));
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| Problem::bad_request(format!("{field} {raw:?} is not UTF-8 once decoded")))
}

fn method_not_allowed(route: &Route<'_>) -> Problem {
    Problem::method_not_allowed(allowed_methods(route))
}

/// The methods the route serving `path` allows (as its `Allow` header
/// lists them), or `None` when no route serves it (404). The OpenAPI
/// document (`api/openapi.json`) is checked against it.
pub fn allowed_methods_at(path: &str) -> Option<&'static str> {
    route(path).map(|r| allowed_methods(&r))
}

fn allowed_methods(route: &Route<'_>) -> &'static str {
    match route {
        Route::Regulations(_) => "GET, POST",
        Route::Regulation(_) | Route::Suppression(..) => "GET",
        Route::SuppressionCheck(_) => "POST",
        Route::Hold(_) => "GET, PUT, DELETE",
        Route::VerifyReceipt => "POST",
        Route::WorkspaceDeletion(_) | Route::SpaceDeletion(..) | Route::AccountDeletion(_) => "POST, DELETE",
        Route::WorkspaceDeletions(_) | Route::AccountDeletions(_) | Route::AccountMemberships(_) => "GET",
        Route::DeletionPlan(_) => "GET",
        Route::SourceDeletions(..) | Route::Purges => "POST",
        Route::Member(..) => "PUT, DELETE",
        Route::Deletion(_) => "GET, DELETE",
    }
}

impl<L: Ledger + Directory + Regulations + Holds + CallbackLedger, S: ObjectStore, C: Clock> Intake<L, S, C> {
    pub fn new(requests: Requests<L, C>, planner: Planner<S>) -> Self {
        Intake {
            requests,
            planner,
            signer: None,
            callbacks: None,
        }
    }

    /// Accepts `callback_url` in create bodies (else it is refused).
    pub fn with_callbacks(mut self, callbacks: CallbackConfig) -> Self {
        self.callbacks = Some(callbacks);
        self
    }

    /// Checks a create body's reason and callback URL.
    fn ask(&self, reason: Option<String>, callback_url: Option<String>) -> Result<Ask, Problem> {
        let reason = check_reason(reason)?;
        let callback = match (callback_url, &self.callbacks) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Problem::bad_request(
                    "callback_url is not available: this deployment has no callback key",
                ))
            }
            (Some(raw), Some(config)) => {
                Some(CallbackUrl::parse(&raw, config.policy).map_err(|e| Problem::bad_request(e.to_string()))?)
            }
        };
        Ok(Ask { reason, callback })
    }

    /// The callback URL and secret to show the requester of `request`:
    /// only to the call that created it, or a replay with the creator's own
    /// idempotency key. Anyone else who asks for the same scope is given
    /// the request without them (the secret signs the creator's events).
    async fn callback_answer(&self, created: &Created) -> Result<Option<Value>, Problem> {
        if !(created.created || created.replayed) {
            return Ok(None);
        }
        let request = &created.request;
        let (Some(url), Some(config)) = (&request.callback, &self.callbacks) else {
            return Ok(None);
        };
        let secret = callbacks::secret(config.key.as_ref(), &request.id).await?;
        Ok(Some(json!({
            "url": url,
            "secret": secret,
            "signature_header": callbacks::SIGNATURE_HEADER,
            "event_id_header": callbacks::EVENT_ID_HEADER,
        })))
    }

    /// Where a request's callbacks stand, for its status view.
    async fn callback_status(&self, request: &DeletionRequest) -> Result<Option<Value>, Problem> {
        if request.callback.is_none() {
            return Ok(None);
        }
        let state = self.requests.ledger().callback_state(&request.id).await?;
        Ok(Some(views::callbacks(request, state.as_ref())))
    }

    /// Checks receipts' signatures with `signer` (`POST /v1/receipts:verify`).
    pub fn with_signer(mut self, signer: std::sync::Arc<dyn ReceiptSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// Answers one HTTP request. Never fails: every error is an answer.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let response = self
            .dispatch(&req)
            .await
            .unwrap_or_else(|problem| problem.into_response(&path));
        tracing::info!(%method, %path, status = response.status().as_u16(), "request");
        response
    }

    async fn dispatch(&self, req: &Request) -> Result<Response<Body>, Problem> {
        let path = req.uri().path();
        let Some(route) = route(path) else {
            return Err(Problem::not_found(format!("no resource at {path}")));
        };
        let caller = caller(req)?;
        if !allowed_methods(&route).split(", ").any(|m| m == req.method().as_str()) {
            return Err(method_not_allowed(&route));
        }
        let (need, by_id) = self.need(&route).await?;
        authorization::authorize(self.requests.ledger(), &caller, &need).await?;
        // The request a route by id names, read once for both the check
        // and the answer.
        let by_id = || {
            by_id
                .clone()
                .ok_or_else(|| Problem::not_found(format!("no resource at {path}")))
        };
        let actor = caller.subject.as_str();
        let ws = |raw: &str| id(WorkspaceId::parse, raw);
        match (&route, req.method()) {
            (Route::WorkspaceDeletion(w), &Method::POST) => {
                let scope = Scope::Workspace { workspace: ws(w)? };
                let body = create_body(req)?;
                self.create(req, actor, scope, self.ask(body.reason, body.callback_url)?)
                    .await
            }
            (Route::SpaceDeletion(w, s), &Method::POST) => {
                let scope = Scope::Space {
                    workspace: ws(w)?,
                    space: id(SpaceId::parse, s)?,
                };
                let body = create_body(req)?;
                self.create(req, actor, scope, self.ask(body.reason, body.callback_url)?)
                    .await
            }
            (Route::SourceDeletions(w, s), &Method::POST) => {
                let workspace = ws(w)?;
                let source = id(SourceId::parse, s)?;
                let body: SourceDaysBody = required_body(req, r#"{"from": "2024-01-31", "to": "2024-02-01"}"#)?;
                let scope = self.source_days(workspace, source, &body)?;
                self.create(req, actor, scope, self.ask(body.reason, body.callback_url)?)
                    .await
            }
            (Route::Purges, &Method::POST) => {
                let body: PurgeBody = required_body(req, r#"{"workspace": "acme"}"#)?;
                let scope = Scope::WorkspacePurge {
                    workspace: ws(&body.workspace)?,
                };
                self.create(req, actor, scope, self.ask(body.reason, body.callback_url)?)
                    .await
            }
            (Route::AccountDeletion(a), &Method::POST) => {
                let account = id(AccountId::parse, a)?;
                self.create_account(req, actor, account).await
            }
            (Route::WorkspaceDeletion(w), &Method::DELETE) => {
                self.revoke(actor, Scope::Workspace { workspace: ws(w)? }).await
            }
            (Route::SpaceDeletion(w, s), &Method::DELETE) => {
                let scope = Scope::Space {
                    workspace: ws(w)?,
                    space: id(SpaceId::parse, s)?,
                };
                self.revoke(actor, scope).await
            }
            (Route::AccountDeletion(a), &Method::DELETE) => {
                let scope = Scope::Account {
                    account: id(AccountId::parse, a)?,
                };
                self.revoke(actor, scope).await
            }
            (Route::Deletion(raw), &Method::DELETE) => {
                let revoked = self.requests.revoke_by_id(&id(RequestId::parse, raw)?, actor).await?;
                Ok(json_response(StatusCode::OK, views::revoked(&revoked, self.now())))
            }
            (Route::WorkspaceDeletions(w), &Method::GET) => {
                // A complete purge is an operator's: only operators see it listed.
                let operator = caller.is_operator();
                let shown = |r: &DeletionRequest| operator || !matches!(r.scope, Scope::WorkspacePurge { .. });
                self.list_some(req, &Listing::Workspace(ws(w)?), shown, views::request)
                    .await
            }
            (Route::AccountDeletions(a), &Method::GET) => {
                let key = Listing::Account(id(AccountId::parse, a)?);
                self.list(req, &key, views::request).await
            }
            (Route::Deletion(_), &Method::GET) => {
                let view = self.requests.view(by_id()?).await?;
                let mut body = views::view(&view);
                if let Some(callbacks) = self.callback_status(&view.request).await? {
                    body["callbacks"] = callbacks;
                }
                Ok(json_response(StatusCode::OK, body))
            }
            (Route::DeletionPlan(_), &Method::GET) => {
                let view = self.requests.view(by_id()?).await?;
                let scopes: Vec<Scope> = if view.request.scope.holds_data() {
                    vec![view.request.scope.clone()]
                } else {
                    view.children.iter().map(|c| c.scope.clone()).collect()
                };
                let plan = self.planner.plan(&scopes).await?;
                Ok(json_response(
                    StatusCode::OK,
                    json!({"request_id": view.request.id, "kind": view.request.scope.kind(), "plan": plan}),
                ))
            }
            (Route::Member(w, a), &Method::PUT) => {
                let (workspace, account) = (ws(w)?, id(AccountId::parse, a)?);
                let body: MemberBody = required_body(req, r#"{"role": "admin"}"#)?;
                self.requests
                    .ledger()
                    .put_member(&workspace, &account, body.role)
                    .await?;
                Ok(json_response(
                    StatusCode::OK,
                    json!({"workspace": workspace, "account": account, "role": body.role}),
                ))
            }
            (Route::Member(w, a), &Method::DELETE) => {
                let (workspace, account) = (ws(w)?, id(AccountId::parse, a)?);
                let removed = self.requests.ledger().remove_member(&workspace, &account).await?;
                if !removed {
                    return Err(Problem::not_found(format!(
                        "account {account} is not a member of workspace {workspace}"
                    )));
                }
                Ok(json_response(
                    StatusCode::OK,
                    json!({"workspace": workspace, "account": account, "removed": true}),
                ))
            }
            (Route::Regulations(w), &Method::POST) => self.create_regulation(req, actor, ws(w)?).await,
            (Route::Regulations(w), &Method::GET) => {
                let key = Listing::Regulations(ws(w)?);
                self.list(req, &key, |r, now| views::regulation(r, None, now)).await
            }
            (Route::Regulation(_), &Method::GET) => {
                let request = by_id()?;
                let id = &request.id;
                if request.scope.regulation().is_none() {
                    return Err(Problem::not_found(format!(
                        "{id} is a deletion, not a regulation: see /v1/deletions/{id}"
                    )));
                }
                let shards = self.requests.ledger().shards(id).await?;
                let mut body = views::regulation(&request, Some(&shards), self.now());
                if let Some(callbacks) = self.callback_status(&request).await? {
                    body["callbacks"] = callbacks;
                }
                Ok(json_response(StatusCode::OK, body))
            }
            (Route::Suppression(w, u), &Method::GET) => {
                let workspace = ws(w)?;
                let user =
                    UserId::parse(&percent_decode("user id", u)?).map_err(|e| Problem::bad_request(e.to_string()))?;
                let entry = self.requests.ledger().suppression(&workspace, &user).await?;
                Ok(json_response(
                    StatusCode::OK,
                    views::suppression(&workspace, &user, entry.as_ref()),
                ))
            }
            (Route::SuppressionCheck(w), &Method::POST) => {
                let workspace = ws(w)?;
                let body: CheckBody = large_json_body(req, MAX_CHECK_BODY_BYTES, r#"{"user_ids": ["u1", "u2"]}"#)?;
                if body.user_ids.is_empty() || body.user_ids.len() > MAX_CHECK_IDS {
                    return Err(Problem::bad_request(format!(
                        "user_ids holds {} ids; give 1 to {MAX_CHECK_IDS} per call",
                        body.user_ids.len()
                    )));
                }
                let ids = body
                    .user_ids
                    .iter()
                    .enumerate()
                    .map(|(i, u)| UserId::parse(u).map_err(|e| Problem::bad_request(format!("user_ids[{i}]: {e}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                // DynamoDB refuses a batch read that names a key twice: each
                // user is read once; the answer still follows the ids asked.
                let mut unique = ids.clone();
                unique.sort();
                unique.dedup();
                let found = self.requests.ledger().suppressions(&workspace, &unique).await?;
                Ok(json_response(
                    StatusCode::OK,
                    views::suppression_check(&workspace, &ids, &found),
                ))
            }
            (Route::Hold(w), &Method::PUT) => {
                let workspace = ws(w)?;
                let body: HoldBody = required_body(req, r#"{"reason": "litigation 2026-17"}"#)?;
                let Some(reason) = check_reason(Some(body.reason))? else {
                    return Err(Problem::bad_request("a legal hold needs a reason"));
                };
                let hold = self.requests.place_hold(workspace, reason, actor).await?;
                Ok(json_response(StatusCode::OK, views::hold(&hold)))
            }
            (Route::Hold(w), &Method::GET) => {
                let workspace = ws(w)?;
                let hold = self
                    .requests
                    .ledger()
                    .hold(&workspace)
                    .await?
                    .ok_or_else(|| Problem::not_found(format!("no legal hold on workspace {workspace}")))?;
                Ok(json_response(StatusCode::OK, views::hold(&hold)))
            }
            (Route::Hold(w), &Method::DELETE) => {
                let (hold, resumed) = self.requests.release_hold(&ws(w)?, actor).await?;
                let mut body = views::hold(&hold);
                body["released_by"] = json!(actor);
                body["resumed"] = json!(resumed);
                Ok(json_response(StatusCode::OK, body))
            }
            (Route::VerifyReceipt, &Method::POST) => {
                let Some(signer) = &self.signer else {
                    return Err(Problem::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "unavailable",
                        "Receipt verification is not configured",
                        "this deployment has no receipt key",
                    ));
                };
                let receipt: deletion_core::model::Receipt = large_json_body(
                    req,
                    MAX_CHECK_BODY_BYTES,
                    r#"{"request_id": "...", "signature": {...}}"#,
                )?;
                let valid = verify_receipt(signer.as_ref(), &receipt).await?;
                Ok(json_response(
                    StatusCode::OK,
                    json!({
                        "valid": valid,
                        "request_id": receipt.request_id,
                        "key_id": receipt.signature.as_ref().map(|s| s.key_id.clone()),
                        "algorithm": receipt.signature.as_ref().map(|s| s.algorithm.clone()),
                    }),
                ))
            }
            (Route::AccountMemberships(a), &Method::GET) => {
                let account = id(AccountId::parse, a)?;
                let members = self.requests.ledger().memberships(&account).await?;
                let items: Vec<Value> = members
                    .iter()
                    .map(|m| json!({"workspace": m.workspace, "role": m.role}))
                    .collect();
                Ok(json_response(
                    StatusCode::OK,
                    json!({"account": account, "items": items}),
                ))
            }
            _ => Err(method_not_allowed(&route)),
        }
    }

    /// What the route needs of its caller, and for a route by id the
    /// request it names (who may see or revoke it follows from its scope).
    async fn need(&self, route: &Route<'_>) -> Result<(Need, Option<DeletionRequest>), Problem> {
        let ws = |raw: &str| id(WorkspaceId::parse, raw);
        let need = match route {
            Route::WorkspaceDeletion(w)
            | Route::WorkspaceDeletions(w)
            | Route::SpaceDeletion(w, _)
            | Route::SourceDeletions(w, _)
            | Route::Regulations(w) => Need::Admin(ws(w)?),
            Route::Suppression(w, _) | Route::SuppressionCheck(w) => Need::SuppressionRead(ws(w)?),
            Route::AccountDeletion(a) | Route::AccountDeletions(a) | Route::AccountMemberships(a) => {
                Need::Account(id(AccountId::parse, a)?)
            }
            Route::Purges | Route::Member(..) | Route::Hold(_) => Need::Operator,
            Route::VerifyReceipt => Need::Anyone,
            Route::Deletion(raw) | Route::DeletionPlan(raw) | Route::Regulation(raw) => {
                let request = self.requests.fetch(&id(RequestId::parse, raw)?).await?;
                return Ok((Need::for_scope(&request.scope), Some(request)));
            }
        };
        Ok((need, None))
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.requests.clock().now()
    }

    fn source_days(&self, workspace: WorkspaceId, source: SourceId, body: &SourceDaysBody) -> Result<Scope, Problem> {
        let from = parse_day("from", &body.from)?;
        let to = parse_day("to", &body.to)?;
        if to < from {
            return Err(Problem::bad_request(format!("to ({to}) is before from ({from})")));
        }
        // Today's archive is still being written: a purge of it could never
        // be verified empty.
        let today = self.now().date_naive();
        if to >= today {
            let when = if to > today { "is in the future" } else { "is today" };
            return Err(Problem::bad_request(format!(
                "to ({to}) {when} (today is {today} UTC): only days fully in the past can be deleted, up to yesterday"
            )));
        }
        let days = (to - from).num_days() + 1;
        if days > MAX_DAYS {
            return Err(Problem::bad_request(format!(
                "the range has {days} days; at most {MAX_DAYS} are accepted in one request"
            )));
        }
        debug_assert!(from + Duration::days(days - 1) == to);
        Ok(Scope::SourceDays {
            workspace,
            source,
            from,
            to,
        })
    }

    async fn dry_run_answer(&self, scope: &Scope, scopes: Vec<Scope>) -> Result<Response<Body>, Problem> {
        let plan = self.planner.plan(&scopes).await?;
        Ok(json_response(
            StatusCode::OK,
            json!({"dry_run": true, "kind": scope.kind(), "scope": views::scope(scope), "plan": plan}),
        ))
    }

    async fn create(&self, req: &Request, actor: &str, scope: Scope, ask: Ask) -> Result<Response<Body>, Problem> {
        let key = idempotency_key(req)?;
        if !self.planner.map().reaches(&scope) {
            return Err(ServiceError::NotInDataMap(scope.kind().replace('_', " ")).into());
        }
        if dry_run(req)? {
            return self.dry_run_answer(&scope, vec![scope.clone()]).await;
        }
        let created = self
            .requests
            .create(scope, actor, ask.reason, key.as_ref(), ask.callback.as_ref())
            .await?;
        self.created(created).await
    }

    async fn create_account(&self, req: &Request, actor: &str, account: AccountId) -> Result<Response<Body>, Problem> {
        let body = create_body(req)?;
        let ask = self.ask(body.reason, body.callback_url)?;
        let key = idempotency_key(req)?;
        if dry_run(req)? {
            let workspaces = self.requests.admin_workspaces(&account).await?;
            if workspaces.is_empty() {
                return Err(ServiceError::NoAdminWorkspaces(account.to_string()).into());
            }
            let scopes = workspaces
                .into_iter()
                .map(|workspace| Scope::Workspace { workspace })
                .collect();
            return self.dry_run_answer(&Scope::Account { account }, scopes).await;
        }
        let created = self
            .requests
            .create_account(&account, actor, ask.reason, key.as_ref(), ask.callback.as_ref())
            .await?;
        self.created(created).await
    }

    async fn created(&self, created: Created) -> Result<Response<Body>, Problem> {
        let status = if created.created {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        let mut body = views::request(&created.request, self.now());
        if let Some(callback) = self.callback_answer(&created).await? {
            body["callback"] = callback;
        }
        let mut response = json_response(status, body);
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/deletions/{}", created.request.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    async fn create_regulation(
        &self,
        req: &Request,
        actor: &str,
        workspace: WorkspaceId,
    ) -> Result<Response<Body>, Problem> {
        let key = idempotency_key(req)?;
        if dry_run(req)? {
            return Err(Problem::bad_request(
                "regulations have no dry run: a regulation is carried out when created",
            ));
        }
        let body: RegulationBody = large_json_body(
            req,
            MAX_REGULATION_BODY_BYTES,
            r#"{"type": "SUPPRESS_WITH_DELETE", "subject_type": "USER_ID", "subject_ids": ["u1"]}"#,
        )?;
        let Some(regulation) = RegulationType::parse(&body.regulation) else {
            let known: Vec<&str> = RegulationType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(Problem::bad_request(format!(
                "type {:?} is not a regulation type; use one of {}",
                body.regulation,
                known.join(", ")
            )));
        };
        if body.subject_type != "USER_ID" {
            return Err(Problem::bad_request(format!(
                "subject_type {:?} is not supported; use USER_ID",
                body.subject_type
            )));
        }
        if body.subject_ids.len() > MAX_SUBJECTS {
            return Err(Problem::bad_request(format!(
                "subject_ids holds {} ids; at most {MAX_SUBJECTS} are accepted in one regulation: split them over several calls",
                body.subject_ids.len()
            )));
        }
        let subjects = Subjects::parse(&body.subject_ids).map_err(|e| Problem::bad_request(e.to_string()))?;
        let ask = self.ask(None, body.callback_url)?;
        let probe = Scope::Regulation {
            workspace: workspace.clone(),
            regulation,
            subject_count: subjects.len(),
            digest: String::new(),
        };
        if !self.planner.map().reaches(&probe) {
            return Err(ServiceError::NotInDataMap("regulation (no store declares user_records)".into()).into());
        }
        let created = self
            .requests
            .create_regulation(
                workspace,
                regulation,
                &subjects,
                actor,
                key.as_ref(),
                ask.callback.as_ref(),
            )
            .await?;
        let status = if created.created {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        let mut body = views::regulation(&created.request, None, self.now());
        if let Some(callback) = self.callback_answer(&created).await? {
            body["callback"] = callback;
        }
        let mut response = json_response(status, body);
        if let Ok(location) = HeaderValue::from_str(&format!("/v1/regulations/{}", created.request.id)) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    async fn revoke(&self, actor: &str, scope: Scope) -> Result<Response<Body>, Problem> {
        let revoked = self.requests.revoke(&scope, actor).await?;
        Ok(json_response(StatusCode::OK, views::revoked(&revoked, self.now())))
    }

    /// A page of requests under a listing key, each shown by `show`.
    async fn list(
        &self,
        req: &Request,
        listing_key: &Listing,
        show: impl Fn(&DeletionRequest, chrono::DateTime<chrono::Utc>) -> Value,
    ) -> Result<Response<Body>, Problem> {
        self.list_some(req, listing_key, |_| true, show).await
    }

    /// A page of the requests under a listing key that `shown` lets the
    /// caller see (so a page may hold fewer than `limit`; `next_cursor`
    /// still goes on).
    async fn list_some(
        &self,
        req: &Request,
        listing_key: &Listing,
        shown: impl Fn(&DeletionRequest) -> bool,
        show: impl Fn(&DeletionRequest, chrono::DateTime<chrono::Utc>) -> Value,
    ) -> Result<Response<Body>, Problem> {
        let (limit, cursor) = page_params(req)?;
        let page = self.requests.list(listing_key, limit, cursor.as_deref()).await?;
        let now = self.now();
        let items: Vec<Value> = page.items.iter().filter(|r| shown(r)).map(|r| show(r, now)).collect();
        let next = page
            .next
            .as_ref()
            .map(|c| format!("{}?limit={limit}&cursor={c}", req.uri().path()));
        Ok(json_response(
            StatusCode::OK,
            json!({"items": items, "next_cursor": page.next, "links": {"next": next}}),
        ))
    }
}
