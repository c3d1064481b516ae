//! The axum `Router` over the intake's state (`state.rs`) and the layers
//! around the routes. Lambda runs the router with `lambda_http::run`; the
//! local runner serves the same router with `axum::serve`.
//!
//! Invariants: every answer leaves through `problems`, which renders every
//! refusal as problem+json with the request's path (the router's own 404
//! and 405 included, the latter with `Allow`); every route but the 404
//! and the published receipt keys needs a verified caller, checked before
//! the method (401 before 405);
//! nothing is written before the whole request is validated.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::ServiceExt;

use crate::extract::caller_of;
use crate::problem::Problem;
use crate::state::{Backend, Intake, Store, Tick};

impl<L: Backend, S: Store, C: Tick> Intake<L, S, C> {
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
    if crate::routes::receipts::is_public(req.uri().path()) {
        return next.run(req).await;
    }
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
