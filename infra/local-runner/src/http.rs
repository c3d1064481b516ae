//! Serves the intake handler over plain HTTP on loopback, converting each
//! request into the `lambda_http::Request` API Gateway would deliver.

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

/// API Gateway's own limit on a payload.
const MAX_BODY: usize = 10 * 1024 * 1024;

async fn answer<C: Clock>(
    intake: Arc<Intake<DynamoLedger, S3Store, C>>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
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
    let request = lambda_http::Request::from_parts(parts, body);
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
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        let intake = intake.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(intake.clone(), req));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection closed");
            }
        });
    }
}
