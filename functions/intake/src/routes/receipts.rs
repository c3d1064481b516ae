//! Checking a receipt's signature (anyone with a token).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use deletion_core::model::Receipt;
use deletion_core::signing;

use crate::extract::{Anyone, JsonRequest};
use crate::problem::{BadRequest, Problem, Unauthorized, Unavailable, UnsupportedMediaType};
use crate::schemas as s;
use crate::state::{json, App, Backend, Store, Tick};
use crate::views::ReceiptCheck;

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
    let Some(signer) = &app.signer else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Receipt verification is not configured",
            "this deployment has no receipt key",
        ));
    };
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
