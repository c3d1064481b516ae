//! OpenDSR 2.0 (formerly OpenGDPR), the request/status/cancel protocol
//! mParticle and other processors speak, over the regulations API: an
//! `erasure` request is a regulation whose id is the controller's
//! `subject_request_id`: `SUPPRESS_WITH_DELETE` for a
//! `controller_customer_id`, `DELETE_ONLY` for other identities (the
//! suppression list holds user ids).
//!
//! - The workspace is named in this processor's extension:
//!   `"extensions": {"<domain>": {"workspace": "acme"}}`; the caller must
//!   be an admin of it, as for any regulation.
//! - Identities: `controller_customer_id` is `USER_ID`; any other
//!   `identity_type` is the subject type the data map declares under its
//!   upper-case name (`email` → `EMAIL`). One type per request, `raw` only.
//! - Every answer's body is signed (`X-OpenDSR-Signature`: base64 of the
//!   signature over the body as sent; `X-OpenDSR-Processor-Domain`).
//! - A `subject_request_id` sent again answers the request it made.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use deletion_core::access::Need;
use deletion_core::ids::{RequestId, WorkspaceId};
use deletion_core::model::opendsr::{self as dsr, OpenDsr};
use deletion_core::model::{DeletionRequest, Scope};
use deletion_core::regulation::{RegulationType, SubjectType, Subjects, UserId};
use deletion_core::{inspect, ServiceError};

use super::regulations::{create_parsed, Creating, Parsed, MAX_REGULATION_BODY_BYTES};
use crate::extract::{Anyone, Asked, JsonRequest, Named};
use crate::problem::{
    BadRequest, Conflict, Forbidden, NotFound, Problem, TooManyRequests, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use crate::state::{App, Backend, OpenDsrConfig, Store, Tick};
use crate::views::RegulationBody as RegulationView;

/// The identity type that is the platform's own user id.
const CUSTOMER_ID: &str = "controller_customer_id";

fn config<L: Backend, S: Store, C: Tick>(app: &App<L, S, C>) -> Result<&OpenDsrConfig, Problem> {
    app.opendsr.as_ref().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "OpenDSR is not configured",
            "this deployment has no OpenDSR signing key",
        )
    })
}

/// The processor domain: as configured, else the host the request was
/// sent to.
fn domain_of(config: &OpenDsrConfig, headers: &HeaderMap) -> Result<String, Problem> {
    if let Some(domain) = &config.domain {
        return Ok(domain.clone());
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| Problem::bad_request("the request names no Host: the processor domain is unknown"))
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `body` as JSON, signed with the OpenDSR key, from processor `domain`.
async fn signed(config: &OpenDsrConfig, domain: &str, status: StatusCode, body: &Value) -> Result<Response, Problem> {
    let bytes = serde_json::to_vec(body).map_err(|e| Problem::bad_request(e.to_string()))?;
    let signature = config.signer.sign(&bytes).await?;
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let value = |v: &str| HeaderValue::from_str(v).map_err(|e| Problem::bad_request(e.to_string()));
    headers.insert("x-opendsr-processor-domain", value(domain)?);
    headers.insert("x-opendsr-signature", value(&signature.value)?);
    Ok(response)
}

/// An identity supported: its type and format.
#[derive(Serialize, ToSchema)]
pub struct SupportedIdentity {
    pub identity_type: String,
    /// Always `raw`.
    pub identity_format: String,
}

/// What this processor supports.
#[derive(Serialize, ToSchema)]
pub struct Discovery {
    pub api_version: String,
    pub supported_identities: Vec<SupportedIdentity>,
    /// `erasure` only.
    pub supported_subject_request_types: Vec<String>,
    /// Where the signing key's certificate (or key set) is published.
    pub processor_certificate: String,
}

/// What the API supports of OpenDSR: identities, request types, and where
/// the key that signs its answers and callbacks is published.
#[utoipa::path(
    get, path = "/opendsr/discovery", tag = "opendsr", operation_id = "openDsrDiscovery",
    responses(
        (status = 200, description = "Supported identities and request types; signed.", body = Discovery),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 503, response = Unavailable),
    )
)]
pub async fn discovery<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    _: Anyone,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let config = config(&app)?;
    let domain = domain_of(config, &headers)?;
    let mut identities = vec![CUSTOMER_ID.to_owned()];
    for t in app.planner.map().subject_types() {
        if t.as_str() != SubjectType::USER_ID {
            identities.push(t.as_str().to_ascii_lowercase());
        }
    }
    let body = Discovery {
        api_version: dsr::API_VERSION.into(),
        supported_identities: identities
            .into_iter()
            .map(|identity_type| SupportedIdentity {
                identity_type,
                identity_format: "raw".into(),
            })
            .collect(),
        supported_subject_request_types: vec!["erasure".into()],
        processor_certificate: config
            .certificate_url
            .clone()
            .unwrap_or_else(|| format!("https://{domain}{}", super::receipts::OPENDSR_JWKS_PATH)),
    };
    signed(config, &domain, StatusCode::OK, &json!(body)).await
}

/// One identity of the data subject.
#[derive(Deserialize, ToSchema)]
pub struct Identity {
    #[schema(example = "controller_customer_id")]
    pub identity_type: String,
    pub identity_value: String,
    /// `raw` (hashed identities are not supported).
    #[schema(example = "raw")]
    pub identity_format: String,
}

/// An OpenDSR request (erasure only).
#[derive(Deserialize, ToSchema)]
pub struct DsrRequest {
    /// `gdpr` or `ccpa`.
    #[schema(required, example = "gdpr")]
    pub regulation: Option<String>,
    /// A lowercase UUID v4 the controller made; the regulation's id.
    #[schema(required, example = "a7551968-d5d6-44b2-9831-815ac9017798")]
    pub subject_request_id: Option<String>,
    #[schema(required, example = "erasure")]
    pub subject_request_type: Option<String>,
    /// When the data subject asked (RFC 3339; the deadline counts from it).
    #[schema(required, example = "2026-12-01T15:00:00Z")]
    pub submitted_time: Option<String>,
    #[schema(required)]
    pub subject_identities: Option<Vec<Identity>>,
    #[schema(example = "2.0")]
    pub api_version: Option<String>,
    /// At most one https URL: every status change is POSTed there, signed.
    pub status_callback_urls: Option<Vec<String>>,
    /// `{"<processor domain>": {"workspace": "..."}}`.
    #[schema(required, value_type = Object)]
    pub extensions: Option<serde_json::Map<String, Value>>,
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, Problem> {
    value.ok_or_else(|| Problem::bad_request(format!("{field} field is required")))
}

/// The regulation an OpenDSR request asks for, with its workspace.
fn parse_request(
    body: DsrRequest,
    domain: &str,
    known: &std::collections::BTreeSet<SubjectType>,
    now: DateTime<Utc>,
) -> Result<(WorkspaceId, Parsed), Problem> {
    let regulation = required(body.regulation, "regulation")?;
    if regulation != "gdpr" && regulation != "ccpa" {
        return Err(Problem::bad_request(format!("regulation {regulation:?}: gdpr or ccpa")));
    }
    let id = required(body.subject_request_id, "subject_request_id")?;
    let uuid = uuid::Uuid::try_parse(&id).ok().filter(|u| u.get_version_num() == 4);
    if uuid.is_none() || id != id.to_ascii_lowercase() || id.len() != 36 {
        return Err(Problem::bad_request(format!(
            "subject_request_id {:?} must be a lowercase UUID v4",
            id.chars().take(40).collect::<String>()
        )));
    }
    let kind = required(body.subject_request_type, "subject_request_type")?;
    if kind != "erasure" {
        return Err(Problem::bad_request(format!(
            "subject_request_type {kind:?} is not supported: this processor erases only (see GET /opendsr/discovery)"
        )));
    }
    let submitted = required(body.submitted_time, "submitted_time")?;
    let submitted = DateTime::parse_from_rfc3339(&submitted)
        .map_err(|_| Problem::bad_request(format!("submitted_time {submitted:?} is not an RFC 3339 time")))?
        .with_timezone(&Utc);
    if let Some(v) = body.api_version.as_deref().filter(|v| !v.starts_with("2.")) {
        return Err(Problem::bad_request(format!(
            "api_version {v:?}: this processor speaks 2.0"
        )));
    }
    let (subject_type, subjects) = identities(required(body.subject_identities, "subject_identities")?, known)?;
    let urls = body.status_callback_urls.unwrap_or_default();
    if urls.len() > 1 {
        return Err(Problem::bad_request("status_callback_urls: at most one URL"));
    }
    let workspace = body
        .extensions
        .as_ref()
        .and_then(|e| e.get(domain))
        .and_then(|mine| mine.get("workspace"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "extensions must name the workspace: {{\"{domain}\": {{\"workspace\": \"...\"}}}}"
            ))
        })?;
    let workspace = WorkspaceId::parse(workspace).map_err(|e| Problem::bad_request(e.to_string()))?;
    // The suppression list holds user ids: an erasure by another identity
    // (an e-mail address) deletes, and suppresses nothing, rather than
    // suppress a user whose id happens to be that string.
    let regulation_type = if subject_type.is_user_id() {
        RegulationType::SuppressWithDelete
    } else {
        RegulationType::DeleteOnly
    };
    let parsed = Parsed {
        regulation: regulation_type,
        subject_type,
        subjects,
        submitted_at: Some(submitted.min(now)),
        callback_url: urls.into_iter().next(),
        source: None,
        named: Some((
            RequestId::parse(&id).map_err(|e| Problem::bad_request(e.to_string()))?,
            OpenDsr {
                regulation,
                controller_id: workspace.as_str().to_owned(),
                processor_domain: domain.to_owned(),
            },
        )),
    };
    Ok((workspace, parsed))
}

/// The subject type and ids of the identities: one type, raw values.
fn identities(
    given: Vec<Identity>,
    known: &std::collections::BTreeSet<SubjectType>,
) -> Result<(SubjectType, Subjects), Problem> {
    let mut subject_type: Option<SubjectType> = None;
    let mut ids: Vec<String> = Vec::new();
    for (i, identity) in given.into_iter().enumerate() {
        if identity.identity_format != "raw" {
            return Err(Problem::bad_request(format!(
                "subject_identities[{i}]: identity_format {:?}; only raw identities are supported",
                identity.identity_format
            )));
        }
        let t = match identity.identity_type.as_str() {
            CUSTOMER_ID => Some(SubjectType::user_id()),
            other => SubjectType::parse(&other.to_ascii_uppercase())
                .ok()
                .filter(|t| known.contains(t) && t.as_str() != SubjectType::USER_ID),
        }
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "subject_identities[{i}]: identity_type {:?} is not supported (see GET /opendsr/discovery)",
                identity.identity_type
            ))
        })?;
        match &subject_type {
            Some(seen) if *seen != t => {
                return Err(Problem::bad_request(
                    "subject_identities: one identity_type per request (send one request per type)",
                ))
            }
            _ => subject_type = Some(t),
        }
        UserId::parse(&identity.identity_value)
            .map_err(|e| Problem::bad_request(format!("subject_identities[{i}]: {e}")))?;
        ids.push(identity.identity_value);
    }
    let subject_type = subject_type.ok_or_else(|| Problem::bad_request("subject_identities: at least one identity"))?;
    let subjects = Subjects::parse(&ids).map_err(|e| Problem::bad_request(e.to_string()))?;
    Ok((subject_type, subjects))
}

/// What a created (or found) request answers.
#[derive(Serialize, ToSchema)]
pub struct DsrCreated {
    pub controller_id: String,
    pub expected_completion_time: String,
    pub received_time: String,
    /// The request's body, base64.
    pub encoded_request: String,
    pub subject_request_id: String,
}

/// Submit an OpenDSR erasure request: a regulation of the workspace its
/// extension names (`SUPPRESS_WITH_DELETE` for a `controller_customer_id`,
/// `DELETE_ONLY` for other identities), whose id is the
/// `subject_request_id`.
#[utoipa::path(
    post, path = "/opendsr/requests", tag = "opendsr", operation_id = "createOpenDsrRequest",
    request_body(content = DsrRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Received (or received before); signed.", body = DsrCreated,
            headers(("X-OpenDSR-Signature" = String, description = "base64 signature of the body"),
                    ("X-OpenDSR-Processor-Domain" = String, description = "the processor domain"))),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 415, response = UnsupportedMediaType), (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests), (status = 503, response = Unavailable),
    )
)]
pub async fn create_request<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Anyone { caller }: Anyone,
    asked: Asked,
    headers: HeaderMap,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let config = config(&app)?;
    let domain = domain_of(config, &headers)?;
    let raw = body.raw().to_vec();
    let request: DsrRequest = body.large(MAX_REGULATION_BODY_BYTES, r#"{"regulation": "gdpr", ...}"#)?;
    let (workspace, parsed) = parse_request(request, &domain, &app.planner.map().subject_types(), app.now())?;
    app.authorize(&caller, &Need::Admin(workspace.clone())).await?;
    let id = parsed.named.as_ref().map(|(id, _)| id.clone());
    let existing = match &id {
        Some(id) => app.requests.ledger().get(id).await.map_err(ServiceError::from)?,
        None => None,
    };
    let request = match existing {
        Some(found)
            if found
                .opendsr
                .as_ref()
                .is_some_and(|o| o.controller_id == workspace.as_str()) =>
        {
            same_request(&app, &found, &workspace, &parsed).await?;
            found
        }
        Some(_) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "subject-request-id-taken",
                "The subject_request_id is taken",
                "another request of this service has this id",
            ))
        }
        None => {
            let asking = Creating {
                caller: &caller.subject,
                asked: &asked,
                headers: &headers,
            };
            let (created, _) = create_parsed(&app, &asking, workspace.clone(), parsed).await?;
            if Some(&created.request.id) != id.as_ref() {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "already-under-way",
                    "A regulation of these subjects is under way",
                    format!("see /v1/regulations/{}", created.request.id),
                ));
            }
            created.request
        }
    };
    let answer = DsrCreated {
        controller_id: workspace.as_str().to_owned(),
        expected_completion_time: ts(request.deadline),
        received_time: ts(request.created_at),
        encoded_request: STANDARD.encode(&raw),
        subject_request_id: request.id.as_str().to_owned(),
    };
    signed(config, &domain, StatusCode::CREATED, &json!(answer)).await
}

/// A `subject_request_id` sent again answers the request it made only if
/// it asks the same: the same identities (by the keyed digest of the set,
/// as the ledger keeps them) and regulation; else 409, so that a
/// controller never believes other identities are being erased.
async fn same_request<L: Backend, S: Store, C: Tick>(
    app: &App<L, S, C>,
    found: &DeletionRequest,
    workspace: &WorkspaceId,
    parsed: &Parsed,
) -> Result<(), Problem> {
    let key = app.subject_key().await?;
    let digest = key.set_digest(workspace, &parsed.subject_type, &parsed.subjects);
    let same = match &found.scope {
        Scope::Regulation {
            regulation,
            digest: found_digest,
            subject_type,
            ..
        } => *regulation == parsed.regulation && *subject_type == parsed.subject_type && *found_digest == digest,
        _ => false,
    };
    let same =
        same && found.opendsr.as_ref().map(|o| &o.regulation) == parsed.named.as_ref().map(|(_, o)| &o.regulation);
    if same {
        return Ok(());
    }
    Err(Problem::new(
        StatusCode::CONFLICT,
        "subject-request-id-taken",
        "The subject_request_id is taken",
        format!(
            "request {} was made with other identities or another regulation; send a new subject_request_id",
            found.id
        ),
    ))
}

/// A request's status in OpenDSR's words.
#[derive(Serialize, ToSchema)]
pub struct DsrStatus {
    pub controller_id: String,
    pub expected_completion_time: String,
    pub subject_request_id: String,
    /// `pending`, `in_progress`, `completed` (every object rewritten) or
    /// `cancelled`.
    pub request_status: String,
    pub api_version: String,
    /// Always null (no access requests).
    #[schema(value_type = Option<String>)]
    pub results_url: Option<String>,
    pub submitted_time: String,
    /// Under the processor domain: the regulation's own status and link.
    #[schema(value_type = Object)]
    pub extensions: Value,
}

fn link(request: &DeletionRequest) -> Result<&OpenDsr, Problem> {
    request
        .opendsr
        .as_ref()
        .ok_or_else(|| Problem::not_found(format!("{} is not an OpenDSR request", request.id)))
}

/// The status of an OpenDSR request.
#[utoipa::path(
    get, path = "/opendsr/requests/{request_id}", tag = "opendsr", operation_id = "getOpenDsrRequest",
    params(("request_id" = String, Path, description = "The subject_request_id.")),
    responses(
        (status = 200, description = "Its status; signed.", body = DsrStatus),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_request<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Named { request, .. }: Named,
) -> Result<Response, Problem> {
    let config = config(&app)?;
    let opendsr = link(&request)?;
    let shards = inspect::shards(app.requests.ledger(), &request).await?;
    let view = RegulationView::of(&request, Some(&shards))
        .ok_or_else(|| Problem::not_found(format!("{} is not a regulation", request.id)))?;
    let body = dsr::status_body(&request, opendsr, view.status, None);
    signed(config, &opendsr.processor_domain, StatusCode::OK, &body).await
}

/// Cancel an OpenDSR request while it is `pending` (no worker has taken
/// its regulation): it ends `cancelled`, its suppression lifted.
#[utoipa::path(
    delete, path = "/opendsr/requests/{request_id}", tag = "opendsr", operation_id = "cancelOpenDsrRequest",
    params(("request_id" = String, Path, description = "The subject_request_id.")),
    responses(
        (status = 202, description = "Cancelled (now or before); signed."),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 503, response = Unavailable),
    )
)]
pub async fn cancel_request<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Named { request, caller }: Named,
) -> Result<Response, Problem> {
    let config = config(&app)?;
    let opendsr = link(&request)?.clone();
    app.requests.cancel_regulation(&request.id, &caller.subject).await?;
    let body = json!({
        "controller_id": opendsr.controller_id,
        "expected_completion_time": Value::Null,
        "received_time": ts(app.now()),
        "subject_request_id": request.id,
        "api_version": dsr::API_VERSION,
    });
    signed(config, &opendsr.processor_domain, StatusCode::ACCEPTED, &body).await
}
