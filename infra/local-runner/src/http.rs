//! Serves the intake handler over plain HTTP on loopback, converting each
//! request into the `lambda_http::Request` API Gateway would deliver: the
//! bearer token is verified first (as the API's JWT authorizer does; 401
//! without a valid one) and its claims passed on in the request context.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::s3::S3Store;
use deletion_core::ports::Clock;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use intake::Intake;
use lambda_http::Body;
use tokio::net::TcpListener;

use crate::token::DevIssuer;

/// API Gateway's own limit on a payload.
const MAX_BODY: usize = 10 * 1024 * 1024;

async fn answer<C: Clock>(
    intake: Arc<Intake<DynamoLedger, S3Store, C>>,
    issuer: Arc<DevIssuer>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let authorization = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = match issuer.verify_header(authorization, chrono::Utc::now().timestamp()) {
        Ok(claims) => claims,
        Err(e) => {
            tracing::info!(error = %e, path = %parts.uri.path(), "token refused");
            // What API Gateway's JWT authorizer answers.
            let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"{\"message\":\"Unauthorized\"}")));
            *r.status_mut() = hyper::StatusCode::UNAUTHORIZED;
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static("Bearer"),
            );
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/json"),
            );
            return Ok(r);
        }
    };
    let bytes = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let mut too_large = hyper::Response::new(Full::new(Bytes::from_static(b"payload too large")));
            *too_large.status_mut() = hyper::StatusCode::PAYLOAD_TOO_LARGE;
            return Ok(too_large);
        }
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    };
    let request = intake::auth::with_verified_claims(lambda_http::Request::from_parts(parts, body), &claims);
    let response = intake.handle(request).await;
    let (parts, body) = response.into_parts();
    let bytes = match body {
        Body::Text(t) => Bytes::from(t),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    Ok(hyper::Response::from_parts(parts, Full::new(bytes)))
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
    let issuer = Arc::new(issuer);
    loop {
        let (stream, _) = listener.accept().await?;
        let (intake, issuer) = (intake.clone(), issuer.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(intake.clone(), issuer.clone(), req));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
}
