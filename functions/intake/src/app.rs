//! The intake: its state (the request service, the planner, the receipt
//! signer and callback settings), the axum `Router` over it and the layers
//! around the routes. Lambda runs the router with `lambda_http::run`; the
//! local runner serves the same router with `axum::serve`.
//!
//! Invariants: every answer leaves through `problems`, which renders every
//! refusal as problem+json with the request's path (the router's own 404
//! and 405 included, the latter with `Allow`); every route but the 404
//! needs a verified caller, checked before the method (401 before 405);
//! nothing is written before the whole request is validated.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

use deletion_core::access::{Caller, Need};
use deletion_core::authorization;
use deletion_core::callbacks::{self, CallbackUrl, UrlPolicy};
use deletion_core::plan::Planner;
use deletion_core::ports::{CallbackLedger, Clock, Directory, Holds, Ledger, ObjectStore, Regulations};
use deletion_core::requests::{Created, Requests};
use deletion_core::signing::ReceiptSigner;

use crate::extract::caller_of;
use crate::input::check_reason;
use crate::problem::Problem;
use crate::views::{CallbackSecret, CallbackStatus};

/// What the intake's ledger must be.
pub trait Backend: Ledger + Directory + Regulations + Holds + CallbackLedger + 'static {}
impl<T: Ledger + Directory + Regulations + Holds + CallbackLedger + 'static> Backend for T {}
/// What the intake's object store must be.
pub trait Store: ObjectStore + 'static {}
impl<T: ObjectStore + 'static> Store for T {}
/// What the intake's clock must be.
pub trait Tick: Clock + 'static {}
impl<T: Clock + 'static> Tick for T {}

/// The router's state.
pub type App<L, S, C> = Arc<Intake<L, S, C>>;

/// The intake: the API over the request service.
pub struct Intake<L, S, C> {
    pub(crate) requests: Requests<L, C>,
    pub(crate) planner: Planner<S>,
    pub(crate) signer: Option<Arc<dyn ReceiptSigner>>,
    callbacks: Option<CallbackConfig>,
}

/// What status callbacks need at intake: which URLs are accepted, and the
/// key each request's secret is derived from.
pub struct CallbackConfig {
    pub policy: UrlPolicy,
    pub key: Arc<dyn ReceiptSigner>,
}

/// What a create body asks besides its scope, checked.
pub struct Ask {
    pub reason: Option<String>,
    pub callback: Option<CallbackUrl>,
}

impl<L: Backend, S: Store, C: Tick> Intake<L, S, C> {
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

    /// Checks receipts' signatures with `signer` (`POST /v1/receipts:verify`).
    pub fn with_signer(mut self, signer: Arc<dyn ReceiptSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    /// The whole HTTP API: the routes, with the layers around them.
    pub fn router(self: Arc<Self>) -> Router {
        let routes = crate::routes::api::<L, S, C>();
        let api = routes.layer(from_fn(authenticate)).fallback(not_found).with_state(self);
        Router::new()
            .fallback_service(api.map_request(before_routing))
            .layer(from_fn(problems))
    }

    /// Answers one request as API Gateway delivers it (the tests' way in).
    pub async fn handle(self: &Arc<Self>, req: lambda_http::Request) -> lambda_http::Response<lambda_http::Body> {
        let response = match self.clone().router().oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) if bytes.is_empty() => lambda_http::Body::Empty,
            Ok(bytes) => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => lambda_http::Body::Text(text),
                Err(e) => lambda_http::Body::Binary(e.into_bytes()),
            },
            Err(_) => lambda_http::Body::Empty,
        };
        lambda_http::Response::from_parts(parts, body)
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.requests.clock().now()
    }

    pub(crate) async fn authorize(&self, caller: &Caller, need: &Need) -> Result<(), Problem> {
        Ok(authorization::authorize(self.requests.ledger(), caller, need).await?)
    }

    /// Checks a create body's reason and callback URL.
    pub(crate) fn ask(&self, reason: Option<String>, callback_url: Option<String>) -> Result<Ask, Problem> {
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
    pub(crate) async fn callback_answer(&self, created: &Created) -> Result<Option<CallbackSecret>, Problem> {
        if !(created.created || created.replayed) {
            return Ok(None);
        }
        let request = &created.request;
        let (Some(url), Some(config)) = (&request.callback, &self.callbacks) else {
            return Ok(None);
        };
        let secret = callbacks::secret(config.key.as_ref(), &request.id).await?;
        Ok(Some(CallbackSecret {
            url: url.clone(),
            secret,
            signature_header: callbacks::SIGNATURE_HEADER,
            event_id_header: callbacks::EVENT_ID_HEADER,
        }))
    }

    /// Where a request's callbacks stand, for its status view.
    pub(crate) async fn callback_status(
        &self,
        request: &deletion_core::model::DeletionRequest,
    ) -> Result<Option<CallbackStatus>, Problem> {
        let state = deletion_core::inspect::callbacks(self.requests.ledger(), request).await?;
        Ok(state.map(|state| CallbackStatus::of(request, state.as_ref())))
    }
}

/// Before routing: a trailing `/` names the same resource, and HEAD is
/// served nowhere (a 405 naming the route's methods, as for any other).
fn before_routing(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = &path[..path.len() - 1];
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    if req.method() == Method::HEAD {
        *req.method_mut() = Method::TRACE;
    }
    req
}

/// Every route needs a verified caller; the guards then say which.
async fn authenticate(req: Request, next: Next) -> Response {
    match caller_of(req.extensions()) {
        Ok(_) => next.run(req).await,
        Err(problem) => problem.into_response(),
    }
}

async fn not_found(uri: Uri) -> Problem {
    Problem::not_found(format!("no resource at {}", uri.path()))
}

/// Renders every refusal as problem+json, and logs every answer.
async fn problems(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let mut response = next.run(req).await;
    if let Some(problem) = response.extensions_mut().remove::<Problem>() {
        response = problem.render(&path);
    } else if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = response
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        response = Problem::method_not_allowed(allowed(allow)).render(&path);
    }
    tracing::info!(%method, %path, status = response.status().as_u16(), "request");
    response
}

/// The router's `Allow` in the API's order (HEAD is not served).
fn allowed(allow: &str) -> String {
    let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    ["GET", "PUT", "POST", "DELETE"]
        .into_iter()
        .filter(|m| methods.contains(m))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A JSON answer.
pub(crate) fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A JSON answer with a `Location`.
pub(crate) fn located<T: serde::Serialize>(status: StatusCode, location: String, body: &T) -> Response {
    let mut response = json(status, body);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
