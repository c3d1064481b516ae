//! RFC 9457 problem details (`application/problem+json`).

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use deletion_core::{LedgerError, ServiceError};

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// Short slug, expanded to the `type` URI.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Methods for a 405.
    pub allow: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            allow: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "The request is not valid",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "A verified token is required",
            detail,
        )
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Problem {
            allow: Some(allow),
            ..Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                format!("this resource allows {allow}"),
            )
        }
    }

    pub fn into_response(self, instance: &str) -> Response<Body> {
        let body = json!({
            "type": format!("urn:deletion-service:problem:{}", self.kind),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
            "instance": instance,
        });
        let mut response = Response::new(Body::Text(body.to_string()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<LedgerError> for Problem {
    fn from(err: LedgerError) -> Self {
        ServiceError::from(err).into()
    }
}

impl From<deletion_core::StoreError> for Problem {
    fn from(err: deletion_core::StoreError) -> Self {
        ServiceError::from(err).into()
    }
}

impl From<deletion_core::signing::SignError> for Problem {
    fn from(err: deletion_core::signing::SignError) -> Self {
        ServiceError::from(err).into()
    }
}

impl From<ServiceError> for Problem {
    fn from(err: ServiceError) -> Self {
        let detail = err.to_string();
        match err {
            ServiceError::Input(_) => Problem::bad_request(detail),
            ServiceError::NotFound(_) | ServiceError::NothingPending(_) => Problem::not_found(detail),
            ServiceError::Forbidden(_) => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail),
            ServiceError::NoAdminWorkspaces(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no-admin-workspaces",
                "The account is an admin of no workspace",
                detail,
            ),
            ServiceError::NotInDataMap(_) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-in-data-map",
                "No store holds data of this kind",
                detail,
            ),
            ServiceError::AlreadyRevoked { .. } => Problem::new(
                StatusCode::CONFLICT,
                "already-revoked",
                "The deletion was already revoked",
                detail,
            ),
            ServiceError::Irreversible { .. } => Problem::new(
                StatusCode::CONFLICT,
                "irreversible",
                "The deletion is irreversible",
                detail,
            ),
            ServiceError::InvalidTransition { .. } => Problem::new(
                StatusCode::CONFLICT,
                "invalid-transition",
                "Not allowed in this state",
                detail,
            ),
            ServiceError::IdempotencyKeyReused { .. } => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency-Key already used for another deletion",
                detail,
            ),
            ServiceError::Contention { .. } => Problem::new(
                StatusCode::CONFLICT,
                "contention",
                "The request changed concurrently; try again",
                detail,
            ),
            ServiceError::Ledger(LedgerError::InvalidCursor) => {
                Problem::bad_request("the cursor parameter is not one this API handed out")
            }
            ServiceError::Ledger(_) | ServiceError::Store(_) | ServiceError::Timer(_) | ServiceError::Signing(_) => {
                tracing::error!(error = %detail, "dependency failure");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The deletion ledger is unavailable; nothing was changed, try again",
                    "a dependency of the service failed; the error is logged",
                )
            }
        }
    }
}
