//! Serves the intake's router over plain HTTP on loopback with
//! `axum::serve`, doing first what API Gateway does before the Lambda
//! runs: the bearer token is verified (as the API's JWT authorizer does;
//! 401 without a valid one; the published receipt keys need none, as in
//! the template) and its claims passed on in the API Gateway v2
//! request context, and the body is read whole, up to API Gateway's limit.
//!
//! Invariant: the router is the very one Lambda runs (`Intake::router`);
//! nothing but the authorizer's part is added here.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::s3::S3Store;
use deletion_core::ports::Clock;
use intake::Intake;
use tokio::net::TcpListener;

use crate::token::DevIssuer;

/// API Gateway's own limit on a payload.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// What API Gateway's JWT authorizer answers without a valid token.
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")),
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
        ],
        "{\"message\":\"Unauthorized\"}",
    )
        .into_response()
}

async fn authorizer(State(issuer): State<Arc<DevIssuer>>, req: Request, next: Next) -> Response {
    // The routes the template serves with no authorizer.
    if intake::routes::receipts::is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let authorization = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let claims = match issuer.verify_header(authorization, chrono::Utc::now().timestamp()) {
        Ok(claims) => claims,
        Err(e) => {
            tracing::info!(error = %e, path = %parts.uri.path(), "token refused");
            return unauthorized();
        }
    };
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "payload too large").into_response(),
    };
    let req = intake::auth::with_verified_claims(Request::from_parts(parts, Body::from(bytes)), &claims);
    next.run(req).await
}

/// Serves until the process ends.
pub async fn serve<C: Clock + 'static>(
    addr: SocketAddr,
    intake: Arc<Intake<DynamoLedger, S3Store, C>>,
    issuer: DevIssuer,
) -> std::io::Result<()> {
    serve_on(TcpListener::bind(addr).await?, intake, issuer).await
}

/// Serves on a bound listener (tests bind port 0).
pub async fn serve_on<C: Clock + 'static>(
    listener: TcpListener,
    intake: Arc<Intake<DynamoLedger, S3Store, C>>,
    issuer: DevIssuer,
) -> std::io::Result<()> {
    let app = intake.router().layer(from_fn_with_state(Arc::new(issuer), authorizer));
    axum::serve(listener, app).await
}
