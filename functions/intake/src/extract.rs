//! What a handler takes from a request, each refusal a `Problem`: who is
//! calling (`Caller`, from the JWT authorizer's claims in the API Gateway
//! v2 request context), what they must be for the route (the guards
//! `Operator`, `Admin`, `SuppressionReader`, `AccountHolder`, `Named`,
//! `Anyone`), the path's ids, the query and the JSON body.
//!
//! Invariants: a guard checks its caller before any handler code runs and
//! parses the ids it needs first (a bad id is a 400, then a refusal a 403);
//! nothing here writes; every body, query and id is validated before use.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use deletion_core::access::{Caller, Need};
use deletion_core::ids::{AccountId, IdempotencyKey, RequestId, WorkspaceId};
use deletion_core::model::DeletionRequest;
use deletion_core::InputError;

use crate::problem::Problem;
use crate::state::{App, Backend, Store, Tick};

/// Largest accepted request body (most routes).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

/// Who is asking: the verified claims API Gateway's JWT authorizer passes
/// on (`sub`, and the scopes from `scope` or `scp`). A request without
/// them did not come through the authorizer: 401.
pub fn caller_of(extensions: &axum::http::Extensions) -> Result<Caller, Problem> {
    let jwt = match extensions.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.authorizer.as_ref().and_then(|a| a.jwt.as_ref()),
        _ => None,
    };
    let Some(jwt) = jwt else {
        return Err(Problem::unauthenticated("the request carries no verified token"));
    };
    let Some(sub) = jwt.claims.get("sub").filter(|s| !s.trim().is_empty()) else {
        return Err(Problem::unauthenticated("the token has no sub claim"));
    };
    let mut scopes: Vec<String> = jwt.scopes.clone().unwrap_or_default();
    for claim in ["scope", "scp"] {
        if let Some(v) = jwt.claims.get(claim) {
            // API Gateway passes a list claim as "[a b]".
            let v = v.trim_start_matches('[').trim_end_matches(']');
            scopes.extend(v.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned));
        }
    }
    Ok(Caller::new(sub.clone(), scopes))
}

/// The path's parameters, percent-decoded by the router.
pub struct Params(HashMap<String, String>);

impl Params {
    pub async fn of(parts: &mut Parts) -> Result<Params, Problem> {
        // The router decodes escapes leniently (`%zz` stays as it is): one
        // that is not `%` and two hex digits is refused here.
        let raw = RawPathParams::from_request_parts(parts, &())
            .await
            .map_err(|e| Problem::bad_request(e.body_text()))?;
        for (name, value) in &raw {
            let bytes = value.as_bytes();
            let bad = bytes.iter().enumerate().any(|(i, b)| {
                *b == b'%' && !(bytes.get(i + 1..i + 3)).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            });
            if bad {
                return Err(Problem::bad_request(format!(
                    "{} {value:?} has an invalid percent escape",
                    name.replace('_', " ")
                )));
            }
        }
        Path::<HashMap<String, String>>::from_request_parts(parts, &())
            .await
            .map(|Path(map)| Params(map))
            .map_err(|e| Problem::bad_request(e.body_text()))
    }

    /// Parameter `name`, parsed by `parse`.
    pub fn parse<T>(&self, name: &str, parse: impl Fn(&str) -> Result<T, InputError>) -> Result<T, Problem> {
        let raw = self
            .0
            .get(name)
            .ok_or_else(|| Problem::bad_request(format!("the path has no {name}")))?;
        parse(raw).map_err(|e| Problem::bad_request(e.to_string()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        Params::of(parts).await
    }
}

macro_rules! guard {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty),* } = |$parts:ident, $state:ident, $caller:ident| $need:block) => {
        $(#[$doc])*
        pub struct $name {
            pub caller: Caller,
            $(pub $field: $ty,)*
        }

        impl<L: Backend, S: Store, C: Tick> FromRequestParts<App<L, S, C>> for $name {
            type Rejection = Problem;
            async fn from_request_parts($parts: &mut Parts, $state: &App<L, S, C>) -> Result<Self, Problem> {
                let $caller = caller_of(&$parts.extensions)?;
                let (need, ($($field,)*)) = $need;
                $state.authorize(&$caller, &need).await?;
                Ok($name { caller: $caller, $($field,)* })
            }
        }
    };
}

guard!(
    /// Any caller with a verified token.
    Anyone {} = |_parts, _state, _caller| { (Need::Anyone, ()) }
);
guard!(
    /// An operator (`deletion:operator`).
    Operator {} = |_parts, _state, _caller| { (Need::Operator, ()) }
);
guard!(
    /// An admin of the path's `workspace`.
    Admin { workspace: WorkspaceId } = |parts, _state, _caller| {
        let workspace = Params::of(parts).await?.parse("workspace", WorkspaceId::parse)?;
        (Need::Admin(workspace.clone()), (workspace,))
    }
);
guard!(
    /// An admin of the path's `workspace`, or a suppression reader.
    SuppressionReader { workspace: WorkspaceId } = |parts, _state, _caller| {
        let workspace = Params::of(parts).await?.parse("workspace", WorkspaceId::parse)?;
        (Need::SuppressionRead(workspace.clone()), (workspace,))
    }
);
guard!(
    /// The path's `account` itself (or an operator).
    AccountHolder { account: AccountId } = |parts, _state, _caller| {
        let account = Params::of(parts).await?.parse("account", AccountId::parse)?;
        (Need::Account(account.clone()), (account,))
    }
);
guard!(
    /// One who may act on the request the path names (`request_id` or
    /// `regulation_id`): who that is follows from its scope. The request is
    /// read once, for the check and the answer.
    Named { request: DeletionRequest } = |parts, state, _caller| {
        let params = Params::of(parts).await?;
        let name = if params.0.contains_key("request_id") { "request_id" } else { "regulation_id" };
        let id = params.parse(name, RequestId::parse)?;
        let request = state.requests.fetch(&id).await?;
        (Need::for_scope(&request.scope), (request,))
    }
);

/// The query parameters any route reads.
#[derive(Deserialize, Default)]
pub struct Asked {
    dry_run: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    kind: Option<String>,
    #[serde(rename = "type")]
    regulation_type: Option<String>,
    created_after: Option<String>,
    created_before: Option<String>,
    subject_type: Option<String>,
    state: Option<String>,
    source: Option<String>,
}

/// Which entries a listing of the suppression list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuppressionState {
    Suppressed,
    Lifted,
    All,
}

impl SuppressionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionState::Suppressed => "suppressed",
            SuppressionState::Lifted => "lifted",
            SuppressionState::All => "all",
        }
    }
}

/// A listing's filters, as asked (values checked by the route that knows
/// its vocabulary).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filters {
    /// Any of these statuses.
    pub status: Option<Vec<String>>,
    /// Any of these kinds (deletions) or types (regulations).
    pub kind: Option<Vec<String>>,
    pub created_after: Option<chrono::DateTime<chrono::Utc>>,
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
}

impl Filters {
    /// The filters as a query string (`&status=...`), for `next` links.
    pub fn query(&self, kind_param: &str) -> String {
        let mut q = String::new();
        let ts = |t: &chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if let Some(s) = &self.status {
            q.push_str(&format!("&status={}", s.join(",")));
        }
        if let Some(k) = &self.kind {
            q.push_str(&format!("&{kind_param}={}", k.join(",")));
        }
        if let Some(t) = &self.created_after {
            q.push_str(&format!("&created_after={}", ts(t)));
        }
        if let Some(t) = &self.created_before {
            q.push_str(&format!("&created_before={}", ts(t)));
        }
        q
    }

    /// Whether a request created at `at` is within the asked range.
    pub fn in_range(&self, at: chrono::DateTime<chrono::Utc>) -> bool {
        self.created_after.is_none_or(|a| at > a) && self.created_before.is_none_or(|b| at < b)
    }
}

/// Comma-separated values, each one of `known` (a 400 names them).
fn one_of(param: &str, value: Option<&str>, known: &[&str]) -> Result<Option<Vec<String>>, Problem> {
    let Some(value) = value else { return Ok(None) };
    let values: Vec<String> = value.split(',').map(|v| v.trim().to_owned()).collect();
    if let Some(bad) = values.iter().find(|v| !known.contains(&v.as_str())) {
        return Err(Problem::bad_request(format!(
            "{param} {bad:?} is not one of {}",
            known.join(", ")
        )));
    }
    Ok(Some(values))
}

/// A source id (a query's or a body's `source`), or a 400.
pub(crate) fn source_param(value: Option<&str>) -> Result<Option<deletion_core::ids::SourceId>, Problem> {
    value
        .map(|s| deletion_core::ids::SourceId::parse(s).map_err(|e| Problem::bad_request(format!("source: {e}"))))
        .transpose()
}

/// An RFC 3339 time, or a 400 naming `param`.
pub(crate) fn time_param(param: &str, value: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, Problem> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&chrono::Utc))
                .map_err(|_| Problem::bad_request(format!("{param} must be an RFC 3339 time (got {v:?})")))
        })
        .transpose()
}

impl<S: Send + Sync> FromRequestParts<S> for Asked {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        Query::<Asked>::try_from_uri(&parts.uri)
            .map(|Query(q)| q)
            .map_err(|e| Problem::bad_request(e.body_text()))
    }
}

impl Asked {
    pub fn dry_run(&self) -> Result<bool, Problem> {
        match self.dry_run.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(v) => Err(Problem::bad_request(format!(
                "dry_run must be true or false (got {v:?})"
            ))),
        }
    }

    /// The listing's filters: `status` of `statuses`, `kind_param` (`kind`
    /// or `type`) of `kinds`, and the creation range; a parameter the
    /// listing does not take is refused, not ignored.
    pub fn filters(&self, statuses: &[&str], kind_param: &str, kinds: &[&str]) -> Result<Filters, Problem> {
        let (asked_kind, other) = match kind_param {
            "type" => (&self.regulation_type, (&self.kind, "kind")),
            _ => (&self.kind, (&self.regulation_type, "type")),
        };
        if other.0.is_some() {
            return Err(Problem::bad_request(format!(
                "this listing takes no {} parameter (filter with {kind_param})",
                other.1
            )));
        }
        let filters = Filters {
            status: one_of("status", self.status.as_deref(), statuses)?,
            kind: one_of(kind_param, asked_kind.as_deref(), kinds)?,
            created_after: time_param("created_after", self.created_after.as_deref())?,
            created_before: time_param("created_before", self.created_before.as_deref())?,
        };
        if let (Some(a), Some(b)) = (filters.created_after, filters.created_before) {
            if a >= b {
                return Err(Problem::bad_request("created_after must be before created_before"));
            }
        }
        Ok(filters)
    }

    /// The `source` a suppression check is about, if any.
    pub fn source(&self) -> Result<Option<deletion_core::ids::SourceId>, Problem> {
        source_param(self.source.as_deref())
    }

    /// What a listing of the suppression list shows: `state` (default
    /// `suppressed`), of the one `subject_type` it holds (`USER_ID`).
    pub fn suppression_state(&self) -> Result<SuppressionState, Problem> {
        if let Some(t) = self.subject_type.as_deref().filter(|t| *t != "USER_ID") {
            return Err(Problem::bad_request(format!(
                "subject_type {t:?}: the suppression list holds USER_ID entries only"
            )));
        }
        match self.state.as_deref() {
            None | Some("suppressed") => Ok(SuppressionState::Suppressed),
            Some("lifted") => Ok(SuppressionState::Lifted),
            Some("all") => Ok(SuppressionState::All),
            Some(other) => Err(Problem::bad_request(format!(
                "state {other:?} is not one of suppressed, lifted, all"
            ))),
        }
    }

    /// The page size and cursor.
    pub fn page(&self) -> Result<(u32, Option<String>), Problem> {
        let limit = match self.limit.as_deref() {
            None => DEFAULT_PAGE,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    return Err(Problem::bad_request(format!(
                        "limit must be a whole number from 1 to {MAX_PAGE} (got {v:?})"
                    )))
                }
            },
        };
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) if c.len() <= 1024 => Some(c.to_owned()),
            Some(_) => {
                return Err(Problem::bad_request(
                    "the cursor parameter is not one this API handed out",
                ))
            }
        };
        Ok((limit, cursor))
    }
}

/// The caller's `Idempotency-Key`, if any.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, Problem> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| Problem::bad_request("invalid header Idempotency-Key: must be visible ASCII"))?;
            IdempotencyKey::parse(s)
                .map(Some)
                .map_err(|e| Problem::bad_request(e.to_string()))
        }
    }
}

/// A request's body and content type, read whole. The transport bounds
/// it (API Gateway's 10 MB; the local runner the same); each route's
/// limit is checked when it is parsed.
pub struct JsonRequest {
    bytes: Bytes,
    content_type: String,
}

impl<S: Send + Sync> FromRequest<S> for JsonRequest {
    type Rejection = Problem;
    async fn from_request(req: Request, _: &S) -> Result<Self, Problem> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = axum::body::to_bytes(req.into_body(), usize::MAX)
            .await
            .map_err(|e| Problem::bad_request(format!("the body could not be read: {e}")))?;
        Ok(JsonRequest { bytes, content_type })
    }
}

impl JsonRequest {
    /// A JSON object body of up to 16 KiB (413 past it); `None` if empty.
    pub fn optional<T: DeserializeOwned>(&self) -> Result<Option<T>, Problem> {
        if self.bytes.len() > MAX_BODY_BYTES {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "The body is too large",
                format!(
                    "the body has {} bytes; at most {MAX_BODY_BYTES} are accepted",
                    self.bytes.len()
                ),
            ));
        }
        self.parse()
    }

    /// A JSON object body of up to 16 KiB, required (`example` shows one).
    pub fn required<T: DeserializeOwned>(&self, example: &str) -> Result<T, Problem> {
        self.optional()?.ok_or_else(|| required(example))
    }

    /// A JSON body of up to `limit` bytes; a larger one is a 400 naming it.
    /// The body as sent.
    pub fn raw(&self) -> &[u8] {
        &self.bytes
    }

    pub fn large<T: DeserializeOwned>(&self, limit: usize, example: &str) -> Result<T, Problem> {
        if self.bytes.len() > limit {
            return Err(Problem::bad_request(format!(
                "the body has {} bytes; at most {limit} ({} MB) are accepted in one call: split the ids over several calls",
                self.bytes.len(),
                limit as f64 / (1024.0 * 1024.0)
            )));
        }
        self.parse()?.ok_or_else(|| required(example))
    }

    fn parse<T: DeserializeOwned>(&self) -> Result<Option<T>, Problem> {
        if self.bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let media = self.content_type.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "The body must be JSON",
                format!("send Content-Type: application/json (got {:?})", self.content_type),
            ));
        }
        let invalid = |e: serde_json::Error| Problem::bad_request(format!("the body is not valid here: {e}"));
        let value: Value = serde_json::from_slice(&self.bytes).map_err(invalid)?;
        // serde would read a struct from an array too: only an object is a request.
        if !value.is_object() {
            return Err(Problem::bad_request("the body must be a JSON object"));
        }
        serde_json::from_value(value).map(Some).map_err(invalid)
    }
}

fn required(example: &str) -> Problem {
    Problem::bad_request(format!("a JSON body is required, such as {example}"))
}
