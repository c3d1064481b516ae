//! RFC 9457 problem details (`application/problem+json`): the one shape
//! of every refusal, whoever refuses (a handler, an extractor, the router's
//! 404 and 405).
//!
//! Invariant: a handler's `Problem` becomes a bare response carrying it;
//! the router's outer layer (`app::problems`) renders every one with the
//! request's path as `instance`, so no refusal leaves without its body.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::ToSchema;

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
    pub allow: Option<String>,
    /// More headers (a 429's `Retry-After` and `RateLimit-*`).
    pub headers: Vec<(&'static str, String)>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            allow: None,
            headers: Vec::new(),
        }
    }

    /// A `429`: `Retry-After` (and, for a rate limit, `RateLimit-*`).
    fn too_many(
        kind: &'static str,
        title: &'static str,
        detail: String,
        retry_after_s: u64,
        limit: Option<u32>,
    ) -> Self {
        let mut headers = vec![("retry-after", retry_after_s.to_string())];
        if let Some(limit) = limit {
            headers.push(("ratelimit-limit", limit.to_string()));
            headers.push(("ratelimit-remaining", "0".to_owned()));
            headers.push(("ratelimit-reset", retry_after_s.to_string()));
        }
        Problem {
            headers,
            ..Problem::new(StatusCode::TOO_MANY_REQUESTS, kind, title, detail)
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

    pub fn method_not_allowed(allow: String) -> Self {
        let detail = format!("this resource allows {allow}");
        Problem {
            allow: Some(allow),
            ..Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                detail,
            )
        }
    }

    /// The answer, with `instance` the request's path.
    pub fn render(self, instance: &str) -> Response {
        let body = ProblemBody {
            problem_type: format!("urn:deletion-service:problem:{}", self.kind),
            title: self.title,
            status: self.status.as_u16(),
            detail: self.detail,
            instance: instance.to_owned(),
        };
        let text = serde_json::to_string(&body).unwrap_or_default();
        let mut response = Response::new(Body::from(text));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            headers.insert(header::ALLOW, allow);
        }
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A bare response that carries the problem, for `app::problems` to
/// render with the request's path.
impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = self.status;
        response.extensions_mut().insert(self);
        response
    }
}

/// A problem's body (RFC 9457).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Problem)]
pub struct ProblemBody {
    /// `urn:deletion-service:problem:<kind>`.
    #[serde(rename = "type")]
    #[schema(pattern = "^urn:deletion-service:problem:[a-z-]+$")]
    pub problem_type: String,
    pub title: &'static str,
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What to fix.
    #[schema(min_length = 1)]
    pub detail: String,
    /// The request's path.
    pub instance: String,
}

/// What API Gateway's JWT authorizer (locally: the runner) answers
/// without a verified token.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayUnauthorized {
    /// `Unauthorized`.
    #[schema(pattern = "^Unauthorized$")]
    pub message: String,
}

/// The shared refusal answers of the document (`#/components/responses`).
macro_rules! problem_responses {
    ($($name:ident: $description:literal;)*) => {
        $(
            pub struct $name;
            impl<'s> utoipa::ToResponse<'s> for $name {
                fn response() -> (&'s str, RefOr<utoipa::openapi::Response>) {
                    (stringify!($name), problem_response($description).build().into())
                }
            }
        )*
    };
}

fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build(),
    )
}

problem_responses! {
    BadRequest: "`invalid-request`: a bad id, body, query parameter or header; `detail` says what to fix.";
    Forbidden: "`forbidden`: the caller may not do this here.";
    NotFound: "`not-found`: nothing by that id, or nothing pending.";
    Conflict: "`irreversible`, `already-revoked`, `invalid-transition` or `contention` (try again).";
    BodyTooLarge: "`body-too-large`: the body exceeds 16 KiB.";
    UnsupportedMediaType: "`unsupported-media-type`: a body that is not `application/json`.";
    Unprocessable: "`no-admin-workspaces`, `not-in-data-map` or `idempotency-key-reused`.";
    Unavailable: "`unavailable`: a dependency failed; nothing was changed, try again.";
}

/// A `429`: the workspace's calls of this minute, or its month's subjects.
pub struct TooManyRequests;

impl<'s> utoipa::ToResponse<'s> for TooManyRequests {
    fn response() -> (&'s str, RefOr<utoipa::openapi::Response>) {
        let header = |description: &str| {
            HeaderBuilder::new()
                .schema(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String))
                .description(Some(description))
                .build()
        };
        let response = problem_response(
            "`rate-limited`: the workspace made its calls of this minute (with `RateLimit-Limit`, `RateLimit-Remaining`, \
             `RateLimit-Reset`); `quota-exceeded`: the regulation would pass the workspace's subjects of this month \
             (refused whole, nothing written).",
        )
        .header("Retry-After", header("Seconds until the minute (or month) renews."));
        ("TooManyRequests", response.build().into())
    }
}

/// No verified token: the intake's problem, or the authorizer's own body.
pub struct Unauthorized;

impl<'s> utoipa::ToResponse<'s> for Unauthorized {
    fn response() -> (&'s str, RefOr<utoipa::openapi::Response>) {
        let header = HeaderBuilder::new()
            .schema(utoipa::openapi::schema::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String))
            .description(Some("`Bearer`"))
            .build();
        let response = problem_response(
            "No verified bearer token. The JWT authorizer (locally: the runner) answers before the intake.",
        )
        .header("WWW-Authenticate", header)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("GatewayUnauthorized")))
                .build(),
        );
        ("Unauthorized", response.build().into())
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
            ServiceError::NotFound(_) | ServiceError::NothingPending(_) | ServiceError::Missing(_) => {
                Problem::not_found(detail)
            }
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
            ServiceError::RateLimited {
                limit, retry_after_s, ..
            } => Problem::too_many(
                "rate-limited",
                "Too many calls for this workspace this minute",
                detail,
                retry_after_s,
                Some(limit),
            ),
            ServiceError::QuotaExceeded { retry_after_s, .. } => Problem::too_many(
                "quota-exceeded",
                "The workspace's monthly subject quota would be exceeded",
                detail,
                retry_after_s,
                None,
            ),
            ServiceError::NotCancellable { .. } => Problem::new(
                StatusCode::CONFLICT,
                "not-cancellable",
                "The regulation can no longer be cancelled",
                detail,
            ),
            ServiceError::Irreversible { .. } => Problem::new(
                StatusCode::CONFLICT,
                "irreversible",
                "The deletion is irreversible",
                detail,
            ),
            ServiceError::AlreadyInForce(_) => Problem::new(
                StatusCode::CONFLICT,
                "already-in-force",
                "The change is already in force",
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
