//! Checking a receipt's signature (anyone with a token), and the public
//! keys that let anyone check one offline (no token: a receipt's holder
//! need not be a caller of this API).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use deletion_core::model::Receipt;
use deletion_core::signing::{self, Jwks};

use crate::extract::{Anyone, JsonRequest};
use crate::problem::{BadRequest, Problem, Unauthorized, Unavailable, UnsupportedMediaType};
use crate::schemas as s;
use crate::state::{json, App, Backend, Store, Tick};
use crate::views::ReceiptCheck;

/// Where the receipts' public keys are published, with no token needed.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Where the key of OpenDSR answers and callbacks is published: a set of
/// its own, so that no verifier of receipts accepts it (the intake and
/// the notifier may sign with it; only the purge signs receipts).
pub const OPENDSR_JWKS_PATH: &str = "/.well-known/opendsr-jwks.json";

/// Whether a path is served without a token (the key sets).
pub fn is_public(path: &str) -> bool {
    path == JWKS_PATH || path == OPENDSR_JWKS_PATH
}

/// Largest accepted receipt.
const MAX_RECEIPT_BYTES: usize = 1024 * 1024;

/// Check a receipt's signature.
#[utoipa::path(
    post, path = "/v1/receipts:verify", tag = "receipts", operation_id = "verifyReceipt",
    request_body(content = s::Receipt, content_type = "application/json"),
    responses(
        (status = 200, description = "Whether the signature checks out.", body = ReceiptCheck),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 415, response = UnsupportedMediaType), (status = 503, response = Unavailable),
    )
)]
pub async fn verify_receipt<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    _: Anyone,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let signer = configured(&app)?;
    let receipt: Receipt = body.large(MAX_RECEIPT_BYTES, r#"{"request_id": "...", "signature": {...}}"#)?;
    let valid = signing::verify_receipt(signer.as_ref(), &receipt).await?;
    let answer = ReceiptCheck {
        valid,
        request_id: receipt.request_id.clone(),
        key_id: receipt.signature.as_ref().map(|s| s.key_id.clone()),
        algorithm: receipt.signature.as_ref().map(|s| s.algorithm.clone()),
    };
    Ok(json(StatusCode::OK, &answer))
}

fn configured<L: Backend, S: Store, C: Tick>(
    app: &App<L, S, C>,
) -> Result<&std::sync::Arc<dyn signing::ReceiptSigner>, Problem> {
    app.signer.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Receipt verification is not configured",
            "this deployment has no receipt key",
        )
    })
}

/// The public keys receipts are signed with (a JSON Web Key Set): a
/// signature names its key by `kid`. Needs no token.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "receipts", operation_id = "getReceiptKeys",
    security(()),
    responses(
        (status = 200, description = "The receipt keys.", body = s::Jwks, content_type = "application/jwk-set+json"),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_receipt_keys<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
) -> Result<Response, Problem> {
    let keys = configured(&app)?.public_keys().await?;
    Ok(key_set(keys))
}

/// The key OpenDSR answers and callbacks are signed with (a JSON Web Key
/// Set of its own: it never checks a receipt). Needs no token.
#[utoipa::path(
    get, path = "/.well-known/opendsr-jwks.json", tag = "opendsr", operation_id = "getOpenDsrKeys",
    security(()),
    responses(
        (status = 200, description = "The OpenDSR signing key.", body = s::Jwks, content_type = "application/jwk-set+json"),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_opendsr_keys<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
) -> Result<Response, Problem> {
    let Some(opendsr) = &app.opendsr else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "OpenDSR is not configured",
            "this deployment has no OpenDSR signing key",
        ));
    };
    Ok(key_set(opendsr.signer.public_keys().await?))
}

fn key_set(keys: Vec<deletion_core::signing::Jwk>) -> Response {
    let mut response = json(StatusCode::OK, &Jwks { keys });
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    // Keys change only with a deployment: caches may keep them an hour.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    response
}
