//! The HTTP API of the deletion service.
//!
//! | method | path | what |
//! |---|---|---|
//! | POST | /v1/workspaces/{workspace}/deletion | request a workspace deletion (202, or 200 with the one in place) |
//! | DELETE | /v1/workspaces/{workspace}/deletion | revoke it while in grace (200; 409 after) |
//! | GET | /v1/workspaces/{workspace}/deletions | the workspace's requests, newest first (`limit`, `cursor`) |
//! | GET | /v1/deletions/{id} | status, history, progress and receipt |
//!
//! Every refusal is a problem+json body with a 4xx; nothing is written
//! before the whole request is validated.

use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use deletion_core::ids::{IdempotencyKey, RequestId, WorkspaceId};
use deletion_core::model::Scope;
use deletion_core::ports::{Clock, Ledger};
use deletion_core::requests::Requests;
use deletion_core::InputError;

use crate::problem::Problem;
use crate::views;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Longest accepted `reason`.
pub const MAX_REASON_CHARS: usize = 1000;
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

/// The intake: the API over the request service.
pub struct Intake<L, C> {
    requests: Requests<L, C>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    reason: Option<String>,
}

enum Route<'a> {
    WorkspaceDeletion(&'a str),
    WorkspaceDeletions(&'a str),
    Deletion(&'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "v1", "workspaces", ws, "deletion"] => Some(Route::WorkspaceDeletion(ws)),
        ["", "v1", "workspaces", ws, "deletions"] => Some(Route::WorkspaceDeletions(ws)),
        ["", "v1", "deletions", id] => Some(Route::Deletion(id)),
        _ => None,
    }
}

fn json_response(status: StatusCode, body: Value) -> Response<Body> {
    let mut response = Response::new(Body::Text(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Who is asking: the `sub` claim of the API Gateway JWT authorizer.
fn actor(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        if let Some(sub) = ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .and_then(|jwt| jwt.claims.get("sub"))
        {
            return sub.clone();
        }
    }
    "anonymous".to_owned()
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

fn parse_create_body(req: &Request) -> Result<Option<String>, Problem> {
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
    let invalid = |e: serde_json::Error| {
        Problem::bad_request(format!("the body is not a valid deletion request: {e}"))
    };
    let value: Value = serde_json::from_slice(bytes).map_err(invalid)?;
    // serde would read a struct from an array too: only an object is a request.
    if !value.is_object() {
        return Err(Problem::bad_request(
            "the body must be a JSON object such as {\"reason\": \"...\"}",
        ));
    }
    let body: CreateBody = serde_json::from_value(value).map_err(invalid)?;
    match body.reason {
        Some(r) if r.chars().count() > MAX_REASON_CHARS => Err(Problem::bad_request(format!(
            "reason has {} characters; at most {MAX_REASON_CHARS} are accepted",
            r.chars().count()
        ))),
        Some(r) if r.chars().any(char::is_control) => Err(Problem::bad_request(
            "reason must not contain control characters",
        )),
        other => Ok(other.filter(|r| !r.trim().is_empty())),
    }
}

fn idempotency_key(req: &Request) -> Result<Option<IdempotencyKey>, Problem> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let s = v.to_str().map_err(|_| {
                Problem::from(deletion_core::ServiceError::Input(
                    InputError::InvalidHeader {
                        header: "Idempotency-Key",
                        reason: "must be visible ASCII",
                    },
                ))
            })?;
            IdempotencyKey::parse(s)
                .map(Some)
                .map_err(|e| Problem::bad_request(e.to_string()))
        }
    }
}

/// Minimal query parsing: `limit` and `cursor` use no escapes.
fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.uri()
        .query()?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
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

fn workspace(raw: &str) -> Result<WorkspaceId, Problem> {
    WorkspaceId::parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
}

impl<L: Ledger, C: Clock> Intake<L, C> {
    pub fn new(requests: Requests<L, C>) -> Self {
        Intake { requests }
    }

    /// Answers one HTTP request. Never fails: every error is an answer.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        let result = self.dispatch(&req).await;
        let response = result.unwrap_or_else(|problem| problem.into_response(&path));
        tracing::info!(%method, %path, status = response.status().as_u16(), "request");
        response
    }

    async fn dispatch(&self, req: &Request) -> Result<Response<Body>, Problem> {
        let path = req.uri().path();
        let Some(route) = route(path) else {
            return Err(Problem::not_found(format!("no resource at {path}")));
        };
        match (route, req.method()) {
            (Route::WorkspaceDeletion(ws), &Method::POST) => self.create(req, workspace(ws)?).await,
            (Route::WorkspaceDeletion(ws), &Method::DELETE) => {
                self.revoke(req, workspace(ws)?).await
            }
            (Route::WorkspaceDeletion(_), _) => Err(Problem::method_not_allowed("POST, DELETE")),
            (Route::WorkspaceDeletions(ws), &Method::GET) => self.list(req, workspace(ws)?).await,
            (Route::Deletion(id), &Method::GET) => {
                let id = RequestId::parse(id).map_err(|e| Problem::bad_request(e.to_string()))?;
                let view = self.requests.get(&id).await?;
                Ok(json_response(StatusCode::OK, views::view(&view)))
            }
            (Route::WorkspaceDeletions(_) | Route::Deletion(_), _) => {
                Err(Problem::method_not_allowed("GET"))
            }
        }
    }

    async fn create(
        &self,
        req: &Request,
        workspace: WorkspaceId,
    ) -> Result<Response<Body>, Problem> {
        let reason = parse_create_body(req)?;
        let key = idempotency_key(req)?;
        let scope = Scope::Workspace { workspace };
        let created = self
            .requests
            .create(scope, &actor(req), reason, key.as_ref())
            .await?;
        let status = if created.created {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        let body = views::request(&created.request, None, self.requests.clock().now());
        let mut response = json_response(status, body);
        if let Ok(location) =
            HeaderValue::from_str(&format!("/v1/deletions/{}", created.request.id))
        {
            response.headers_mut().insert(header::LOCATION, location);
        }
        Ok(response)
    }

    async fn revoke(
        &self,
        req: &Request,
        workspace: WorkspaceId,
    ) -> Result<Response<Body>, Problem> {
        let scope = Scope::Workspace { workspace };
        let revoked = self.requests.revoke(&scope, &actor(req)).await?;
        Ok(json_response(
            StatusCode::OK,
            views::request(&revoked, None, self.requests.clock().now()),
        ))
    }

    async fn list(&self, req: &Request, workspace: WorkspaceId) -> Result<Response<Body>, Problem> {
        let (limit, cursor) = page_params(req)?;
        let page = self
            .requests
            .list(&workspace, limit, cursor.as_deref())
            .await?;
        let now = self.requests.clock().now();
        let items: Vec<Value> = page
            .items
            .iter()
            .map(|r| views::request(r, None, now))
            .collect();
        let next = page
            .next
            .as_ref()
            .map(|c| format!("/v1/workspaces/{workspace}/deletions?limit={limit}&cursor={c}"));
        Ok(json_response(
            StatusCode::OK,
            json!({"items": items, "next_cursor": page.next, "links": {"next": next}}),
        ))
    }
}
