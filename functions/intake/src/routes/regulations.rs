//! Regulations (per end user: delete their events, suppress them) and the
//! suppression list an ingest path asks.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use deletion_core::ids::{SourceId, WorkspaceId};
use deletion_core::listings::Listing;
use deletion_core::model::Scope;
use deletion_core::regulation::{RegulationStatus, RegulationType, SubjectType, Subjects, UserId, MAX_SUBJECTS};
use deletion_core::requests::Regulated;
use deletion_core::{inspect, quotas, suppressions, ServiceError};

use super::{
    page, Asking, IdempotencyParam, PageParams, RegulationFilterParams, RegulationIdParam, SourceParam, SubjectParams,
    UserIdParam, WorkspaceParam,
};
use crate::extract::{
    idempotency_key, source_param, time_param, Admin, Asked, JsonRequest, Named, Params, SuppressionReader,
    SuppressionState,
};
use crate::input::{CheckBody, RegulationBody};
use crate::problem::{
    BadRequest, Conflict, Forbidden, NotFound, Problem, TooManyRequests, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use crate::schemas as s;
use crate::state::{json, located, App, Backend, Store, Tick};
use crate::views::{
    PageLinks, RegulationBody as RegulationView, RegulationPage, SubjectBody, SubjectRegulation, SuppressionBody,
    SuppressionCheck, SuppressionPage,
};

/// Largest accepted regulation body (the API's published limit).
pub const MAX_REGULATION_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Most ids in one suppression check.
pub const MAX_CHECK_IDS: usize = 1000;
/// Largest accepted suppression-check body.
pub const MAX_CHECK_BODY_BYTES: usize = 1024 * 1024;

/// A subject type the data map's stores hold (`known`), or a 400 naming them.
fn known_type(
    value: &str,
    field: &str,
    known: &std::collections::BTreeSet<SubjectType>,
) -> Result<SubjectType, Problem> {
    SubjectType::parse(value)
        .ok()
        .filter(|t| known.contains(t))
        .ok_or_else(|| {
            let names = known.iter().map(SubjectType::as_str).collect::<Vec<_>>().join(", ");
            Problem::bad_request(format!(
                "{field} {value:?} is not held by any store of the data map; use one of {names}"
            ))
        })
}

/// A regulation's `submitted_at`: an RFC 3339 time, not after `now`.
fn submitted_at(
    body: &RegulationBody,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Problem> {
    let Some(at) = time_param("submitted_at", body.submitted_at.as_deref())? else {
        return Ok(None);
    };
    if at > now + deletion_core::requests::SUBMITTED_AT_SKEW {
        let v = body.submitted_at.as_deref().unwrap_or_default();
        return Err(Problem::bad_request(format!("submitted_at {v} is in the future")));
    }
    Ok(Some(at))
}

/// The regulation in `body`, checked against the subject types the data
/// map's stores hold (`known`).
fn regulation_of(
    body: &RegulationBody,
    known: &std::collections::BTreeSet<SubjectType>,
) -> Result<(RegulationType, SubjectType, Subjects), Problem> {
    let Some(regulation) = RegulationType::parse(&body.regulation) else {
        let known: Vec<&str> = RegulationType::ALL.iter().map(|t| t.as_str()).collect();
        return Err(Problem::bad_request(format!(
            "type {:?} is not a regulation type; use one of {}",
            body.regulation,
            known.join(", ")
        )));
    };
    let subject_type = known_type(&body.subject_type, "subject_type", known)?;
    if regulation.suppression().is_some() && !subject_type.is_user_id() {
        return Err(Problem::bad_request(format!(
            "{regulation} suppresses user ids, so its subject_type must be USER_ID; for {subject_type} use \
             DELETE_ONLY or DELETE_ARCHIVE_ONLY"
        )));
    }
    if body.subject_ids.len() > MAX_SUBJECTS {
        return Err(Problem::bad_request(format!(
            "subject_ids holds {} ids; at most {MAX_SUBJECTS} are accepted in one regulation: split them over several calls",
            body.subject_ids.len()
        )));
    }
    let subjects = Subjects::parse(&body.subject_ids).map_err(|e| Problem::bad_request(e.to_string()))?;
    Ok((regulation, subject_type, subjects))
}

/// Delete and/or suppress end users' data in a workspace.
#[utoipa::path(
    post, path = "/v1/workspaces/{workspace}/regulations", tag = "regulations", operation_id = "createRegulation",
    params(WorkspaceParam, IdempotencyParam),
    request_body(content = RegulationBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The same regulation already under way.", body = RegulationView,
            headers(("Location" = String, description = "The regulation: `/v1/regulations/{id}`."))),
        (status = 202, description = "Created; its suppression already applied.", body = RegulationView,
            headers(("Location" = String, description = "The regulation: `/v1/regulations/{id}`.")),
            links(
                ("GetRegulation" = (operation_id = "getRegulation", parameters(("regulation_id" = "$response.body#/id")))),
                ("GetDeletion" = (operation_id = "getDeletion", parameters(("request_id" = "$response.body#/id")))),
                ("ListRegulations" = (operation_id = "listRegulations", parameters(("workspace" = "$response.body#/workspace")))),
            )),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 415, response = UnsupportedMediaType), (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests), (status = 503, response = Unavailable),
    )
)]
pub async fn create_regulation<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
    asked: Asked,
    headers: HeaderMap,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let asking = Creating {
        caller: &caller.subject,
        asked: &asked,
        headers: &headers,
    };
    create(&app, asking, workspace, None, body).await
}

/// Delete and/or suppress end users' data in one source of a workspace: its
/// archive only (the stores whose layout names sources), and its own
/// suppression list (a workspace's suppression still blocks the user there).
#[utoipa::path(
    post, path = "/v1/workspaces/{workspace}/sources/{source}/regulations", tag = "regulations",
    operation_id = "createSourceRegulation",
    params(WorkspaceParam, SourceParam, IdempotencyParam),
    request_body(content = RegulationBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The same regulation already under way.", body = RegulationView,
            headers(("Location" = String, description = "The regulation: `/v1/regulations/{id}`."))),
        (status = 202, description = "Created; its suppression already applied.", body = RegulationView,
            headers(("Location" = String, description = "The regulation: `/v1/regulations/{id}`."))),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 415, response = UnsupportedMediaType), (status = 422, response = Unprocessable),
        (status = 429, response = TooManyRequests), (status = 503, response = Unavailable),
    )
)]
pub async fn create_source_regulation<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
    params: Params,
    asked: Asked,
    headers: HeaderMap,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let source = params.parse("source", SourceId::parse)?;
    let asking = Creating {
        caller: &caller.subject,
        asked: &asked,
        headers: &headers,
    };
    create(&app, asking, workspace, Some(source), body).await
}

/// The workspace of a regulation (whose calls it counts).
fn regulation_workspace(request: &deletion_core::model::DeletionRequest) -> Result<&WorkspaceId, Problem> {
    request
        .scope
        .workspace()
        .ok_or_else(|| Problem::not_found(format!("{} is not a regulation", request.id)))
}

/// Reserves the regulation's subjects of the workspace's month, or (past
/// the quota) finds it asked already: the same one under way, or a retry
/// with its key, is answered with its subjects counted once (`None`).
async fn reserve<L: Backend, S: Store, C: Tick>(
    app: &App<L, S, C>,
    asking: &Creating<'_>,
    workspace: &WorkspaceId,
    asked: &Regulated<'_>,
    key: &deletion_core::subject_key::SubjectKey,
    idempotency: Option<&deletion_core::ids::IdempotencyKey>,
) -> Result<Option<quotas::Reservation>, Problem> {
    let ledger = app.requests.ledger();
    let subjects = asked.subjects.len() as u64;
    match quotas::reserve(ledger, app.limits, workspace, subjects, app.now()).await {
        Ok(reservation) => Ok(Some(reservation)),
        Err(e @ ServiceError::QuotaExceeded { .. }) => {
            let again = app
                .requests
                .regulation_in_place(workspace, asked, key, asking.caller, idempotency);
            if again.await? {
                Ok(None)
            } else {
                Err(e.into())
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Who asks a create, and with what query and headers.
pub(crate) struct Creating<'a> {
    pub caller: &'a str,
    pub asked: &'a Asked,
    pub headers: &'a HeaderMap,
}

/// A regulation as asked, parsed and checked against the data map's
/// subject types.
pub(crate) struct Parsed {
    pub regulation: RegulationType,
    pub subject_type: SubjectType,
    pub subjects: Subjects,
    pub submitted_at: Option<chrono::DateTime<chrono::Utc>>,
    pub callback_url: Option<String>,
    pub source: Option<SourceId>,
    /// Its id and OpenDSR request, when an OpenDSR request names it.
    pub named: Option<(deletion_core::ids::RequestId, deletion_core::model::opendsr::OpenDsr)>,
}

/// Creates a regulation of the workspace, or of one of its sources.
async fn create<L: Backend, S: Store, C: Tick>(
    app: &App<L, S, C>,
    asking: Creating<'_>,
    workspace: WorkspaceId,
    source: Option<SourceId>,
    body: JsonRequest,
) -> Result<Response, Problem> {
    if asking.asked.dry_run()? {
        return Err(Problem::bad_request(
            "regulations have no dry run: a regulation is carried out when created",
        ));
    }
    let body: RegulationBody = body.large(
        MAX_REGULATION_BODY_BYTES,
        r#"{"type": "SUPPRESS_WITH_DELETE", "subject_type": "USER_ID", "subject_ids": ["u1"]}"#,
    )?;
    let (regulation, subject_type, subjects) = regulation_of(&body, &app.planner.map().subject_types())?;
    let parsed = Parsed {
        regulation,
        subject_type,
        subjects,
        submitted_at: submitted_at(&body, app.now())?,
        callback_url: body.callback_url,
        source,
        named: None,
    };
    let (created, admitted) = create_parsed(app, &asking, workspace, parsed).await?;
    let status = if created.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let mut view = RegulationView::of(&created.request, None)
        .ok_or_else(|| Problem::not_found(format!("{} is not a regulation", created.request.id)))?;
    view.callback = app.callback_answer(&created).await?;
    let answer = located(status, format!("/v1/regulations/{}", created.request.id), &view);
    Ok(app.rated(answer, &admitted))
}

/// Creates a parsed regulation: the data map must reach it, the caller's
/// quotas admit it, its subjects are counted once.
pub(crate) async fn create_parsed<L: Backend, S: Store, C: Tick>(
    app: &App<L, S, C>,
    asking: &Creating<'_>,
    workspace: WorkspaceId,
    parsed: Parsed,
) -> Result<(deletion_core::requests::Created, quotas::Admitted), Problem> {
    let idempotency = idempotency_key(asking.headers)?;
    let Parsed {
        regulation,
        subject_type,
        subjects,
        submitted_at,
        callback_url,
        source,
        named,
    } = parsed;
    let ask = app.ask(None, callback_url)?;
    let probe = Scope::Regulation {
        workspace: workspace.clone(),
        regulation,
        subject_count: subjects.len(),
        digest: String::new(),
        subject_type: subject_type.clone(),
        source: source.clone(),
    };
    if !app.planner.map().reaches(&probe) {
        let what = match &source {
            Some(_) => "source's regulation (no store with user_records has sources in its layout)",
            None => "regulation (no store declares user_records)",
        };
        return Err(ServiceError::NotInDataMap(what.into()).into());
    }
    let key = app.subject_key().await?;
    let asked = Regulated {
        regulation,
        subject_type,
        subjects: &subjects,
        submitted_at,
        source,
        named,
    };
    let admitted = app.admit(&workspace).await?;
    let ledger = app.requests.ledger();
    let reservation = reserve(app, asking, &workspace, &asked, key, idempotency.as_ref()).await?;
    let created = app
        .requests
        .create_regulation(
            workspace,
            asked,
            key,
            asking.caller,
            idempotency.as_ref(),
            ask.callback.as_ref(),
        )
        .await;
    // The subjects count only for a regulation this call created.
    let created = match (created, reservation) {
        (Ok(created), _) if created.created => created,
        (other, Some(reservation)) => {
            quotas::release(ledger, &reservation).await;
            other?
        }
        (other, None) => other?,
    };
    Ok((created, admitted))
}

/// The statuses a regulation shows.
const REGULATION_STATUSES: [&str; 7] = [
    "INITIALIZED",
    "RUNNING",
    "FINISHED",
    "PARTIAL_SUCCESS",
    "FAILED",
    "ON_HOLD",
    "CANCELLED",
];

/// A value's JSON name (`PARTIAL_SUCCESS`).
fn name_of(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A workspace's regulations, newest first.
#[utoipa::path(
    get, path = "/v1/workspaces/{workspace}/regulations", tag = "regulations", operation_id = "listRegulations",
    params(WorkspaceParam, PageParams, RegulationFilterParams),
    responses(
        (status = 200, description = "A page of regulations; follow `next_cursor`.", body = RegulationPage),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 429, response = TooManyRequests), (status = 503, response = Unavailable),
    )
)]
pub async fn list_regulations<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { workspace, .. }: Admin,
    asked: Asked,
    uri: Uri,
) -> Result<Response, Problem> {
    let listing = Listing::Regulations(workspace.clone());
    let types: Vec<&str> = RegulationType::ALL.iter().map(|t| t.as_str()).collect();
    let asking = Asking {
        asked: &asked,
        filters: asked.filters(&REGULATION_STATUSES, "type", &types)?,
        kind_param: "type",
    };
    let admitted = app.admit(&workspace).await?;
    let show = |r: &_, _| RegulationView::of(r, None);
    let (items, next_cursor, links) = page(&app, &asking, uri.path(), listing, |_| true, show).await?;
    let f = &asking.filters;
    let named = |asked: &Option<Vec<String>>, value: String| asked.as_ref().is_none_or(|a| a.contains(&value));
    let items = items
        .into_iter()
        .flatten()
        .filter(|v| named(&f.status, name_of(&v.status)) && named(&f.kind, v.regulation.as_str().to_owned()))
        .collect();
    let answer = json(
        StatusCode::OK,
        &RegulationPage {
            items,
            next_cursor,
            links,
        },
    );
    Ok(app.rated(answer, &admitted))
}

/// A regulation's status, per-store results and errors.
#[utoipa::path(
    get, path = "/v1/regulations/{regulation_id}", tag = "regulations", operation_id = "getRegulation",
    params(RegulationIdParam),
    responses(
        (status = 200, description = "The regulation.", body = RegulationView),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests), (status = 503, response = Unavailable),
    )
)]
pub async fn get_regulation<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Named { request, .. }: Named,
) -> Result<Response, Problem> {
    let id = &request.id;
    if request.scope.regulation().is_none() {
        return Err(Problem::not_found(format!(
            "{id} is a deletion, not a regulation: see /v1/deletions/{id}"
        )));
    }
    let admitted = app.admit(regulation_workspace(&request)?).await?;
    let shards = inspect::shards(app.requests.ledger(), &request).await?;
    let mut view = RegulationView::of(&request, Some(&shards))
        .ok_or_else(|| Problem::not_found(format!("{id} is not a regulation")))?;
    view.callbacks = app.callback_status(&request).await?;
    Ok(app.rated(json(StatusCode::OK, &view), &admitted))
}

/// Cancels a regulation no worker has taken yet: it ends `CANCELLED`, the
/// suppressions it set are lifted (those a later regulation set stay) and
/// its subject ids are forgotten. Asked again, the same answer.
#[utoipa::path(
    delete, path = "/v1/regulations/{regulation_id}", tag = "regulations", operation_id = "cancelRegulation",
    params(RegulationIdParam),
    responses(
        (status = 200, description = "Cancelled (now or before).", body = RegulationView),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 429, response = TooManyRequests), (status = 503, response = Unavailable),
    )
)]
pub async fn cancel_regulation<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Named { request, caller }: Named,
) -> Result<Response, Problem> {
    let id = &request.id;
    if request.scope.regulation().is_none() {
        return Err(Problem::not_found(format!(
            "{id} is a deletion, not a regulation: revoke it with DELETE /v1/deletions/{id}"
        )));
    }
    let admitted = app.admit(regulation_workspace(&request)?).await?;
    let cancelled = app.requests.cancel_regulation(id, &caller.subject).await?;
    let view =
        RegulationView::of(&cancelled, None).ok_or_else(|| Problem::not_found(format!("{id} is not a regulation")))?;
    Ok(app.rated(json(StatusCode::OK, &view), &admitted))
}

/// Which list a suppression check reads besides the workspace's.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionSourceParam {
    /// Check this source's list too (either list blocks: a workspace's suppression wins); absent: the
    /// workspace's only.
    #[param(value_type = Option<s::Id>)]
    pub source: Option<String>,
}

/// Which entries of the suppression list a listing shows.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuppressionListParams {
    /// `USER_ID`: the suppression list holds user ids.
    #[param(pattern = "^USER_ID$")]
    pub subject_type: Option<String>,
    /// `suppressed` (the default: whose data is blocked), `lifted` or `all`.
    #[param(pattern = "^(suppressed|lifted|all)$")]
    pub state: Option<String>,
}

/// A workspace's suppression list, the latest set first.
#[utoipa::path(
    get, path = "/v1/workspaces/{workspace}/suppressions", tag = "suppressions", operation_id = "listSuppressions",
    params(WorkspaceParam, PageParams, SuppressionListParams),
    responses(
        (status = 200, description = "A page of entries; follow `next_cursor`.", body = SuppressionPage),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 429, response = TooManyRequests), (status = 503, response = Unavailable),
    )
)]
pub async fn list_suppressions<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    SuppressionReader { workspace, .. }: SuppressionReader,
    asked: Asked,
    uri: Uri,
) -> Result<Response, Problem> {
    let (limit, cursor) = asked.page()?;
    let state = asked.suppression_state()?;
    let admitted = app.admit(&workspace).await?;
    let suppressed_only = state == SuppressionState::Suppressed;
    let (mut entries, next_cursor) = suppressions::page(
        app.requests.ledger(),
        &workspace,
        limit,
        cursor.as_deref(),
        suppressed_only,
    )
    .await?;
    if state == SuppressionState::Lifted {
        entries.retain(|e| !e.suppressed);
    }
    let items = entries
        .iter()
        .map(|e| SuppressionBody::of(&workspace, &e.user_id, Some(e)))
        .collect();
    let next = next_cursor
        .as_ref()
        .map(|c| format!("{}?limit={limit}&cursor={c}&state={}", uri.path(), state.as_str()));
    let answer = json(
        StatusCode::OK,
        &SuppressionPage {
            items,
            next_cursor,
            links: PageLinks { next },
        },
    );
    Ok(app.rated(answer, &admitted))
}

/// Whether one end user is suppressed (one read).
#[utoipa::path(
    get, path = "/v1/workspaces/{workspace}/suppressions/{user_id}", tag = "suppressions", operation_id = "getSuppression",
    params(WorkspaceParam, UserIdParam, SuppressionSourceParam),
    responses(
        (status = 200, description = "The user's state.", body = SuppressionBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 503, response = Unavailable),
    )
)]
pub async fn get_suppression<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    SuppressionReader { workspace, .. }: SuppressionReader,
    params: Params,
    asked: Asked,
) -> Result<Response, Problem> {
    let user = params.parse("user_id", UserId::parse)?;
    let source = asked.source()?;
    let entry = match &source {
        None => suppressions::entry(app.requests.ledger(), &workspace, &user).await?,
        Some(source) => suppressions::entry_in(app.requests.ledger(), &workspace, Some(source), &user).await?,
    };
    Ok(json(
        StatusCode::OK,
        &SuppressionBody::of(&workspace, &user, entry.as_ref()),
    ))
}

/// Whether each of up to 1,000 end users is suppressed.
#[utoipa::path(
    post, path = "/v1/workspaces/{workspace}/suppressions:check", tag = "suppressions", operation_id = "checkSuppressions",
    params(WorkspaceParam),
    request_body(content = CheckBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Each user's state, in the order asked.", body = SuppressionCheck),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 415, response = UnsupportedMediaType),
        (status = 503, response = Unavailable),
    )
)]
pub async fn check_suppressions<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    SuppressionReader { workspace, .. }: SuppressionReader,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let body: CheckBody = body.large(MAX_CHECK_BODY_BYTES, r#"{"user_ids": ["u1", "u2"]}"#)?;
    if body.user_ids.is_empty() || body.user_ids.len() > MAX_CHECK_IDS {
        return Err(Problem::bad_request(format!(
            "user_ids holds {} ids; give 1 to {MAX_CHECK_IDS} per call",
            body.user_ids.len()
        )));
    }
    let ids = body
        .user_ids
        .iter()
        .enumerate()
        .map(|(i, u)| UserId::parse(u).map_err(|e| Problem::bad_request(format!("user_ids[{i}]: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let source = source_param(body.source.as_deref())?;
    let results = suppressions::check(app.requests.ledger(), &workspace, source.as_ref(), &ids).await?;
    Ok(json(StatusCode::OK, &SuppressionCheck::of(&workspace, results)))
}

/// When the subject was deleted from every store: the newest regulation
/// that deletes beyond the archive, of the whole workspace, finished with
/// no object failed.
fn erased_at(regulations: &[SubjectRegulation]) -> Option<String> {
    regulations
        .iter()
        .find(|v| {
            v.regulation.deletes()
                && !v.regulation.archive_only()
                && v.source.is_none()
                && v.status == RegulationStatus::Finished
        })
        .and_then(|v| v.finished_at.clone())
}

/// Pages of the subject's regulations read past the one shown, at most,
/// to find whether an older one deleted it.
const ERASED_PAGES: usize = 10;

/// [`erased_at`] over the regulations after `cursor` of the subject's
/// `digest` (pages of 100, up to [`ERASED_PAGES`]; the suppression entry is
/// not read again).
async fn erased_before<L: Backend, S: Store, C: Tick>(
    app: &App<L, S, C>,
    digest: &str,
    workspace: &WorkspaceId,
    cursor: &str,
) -> Result<Option<String>, Problem> {
    let mut cursor = cursor.to_owned();
    for _ in 0..ERASED_PAGES {
        let page = suppressions::older(app.requests.ledger(), digest, workspace, 100, &cursor).await?;
        let older: Vec<SubjectRegulation> = page.regulations.iter().filter_map(SubjectRegulation::of).collect();
        if let Some(at) = erased_at(&older) {
            return Ok(Some(at));
        }
        match page.next {
            Some(next) => cursor = next,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// "Was this person deleted?": whether a subject is suppressed, and every
/// regulation that named it with its status and per-store results.
#[utoipa::path(
    get, path = "/v1/workspaces/{workspace}/subjects/{subject_type}/{subject_id}", tag = "suppressions",
    operation_id = "getSubject",
    params(WorkspaceParam, SubjectParams, PageParams),
    responses(
        (status = 200, description = "What the ledger holds about the subject (two reads, more when the page shows no deletion); the regulations a page, \
            newest first, follow `next_cursor`. `deleted` is about every regulation that named the subject (older \
            pages are read for it when this page has no deletion).", body = SubjectBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 429, response = TooManyRequests), (status = 503, response = Unavailable),
    )
)]
pub async fn get_subject<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    SuppressionReader { workspace, .. }: SuppressionReader,
    params: Params,
    asked: Asked,
    uri: Uri,
) -> Result<Response, Problem> {
    let raw_type = params.parse("subject_type", |v| Ok(v.to_owned()))?;
    let subject_type = known_type(&raw_type, "subject_type", &app.planner.map().subject_types())?;
    let id = params.parse("subject_id", UserId::parse)?;
    let (limit, cursor) = asked.page()?;
    let admitted = app.admit(&workspace).await?;
    let key = app.subject_key().await?;
    let found = suppressions::lookup(
        app.requests.ledger(),
        key,
        &workspace,
        &subject_type,
        &id,
        (limit, cursor.as_deref()),
    )
    .await?;
    let record = &found.record;
    let regulations: Vec<SubjectRegulation> = record.regulations.iter().filter_map(SubjectRegulation::of).collect();
    let deleted_at = match erased_at(&regulations) {
        Some(at) => Some(at),
        // Not on this page: an older regulation may have deleted it.
        None => match &record.next {
            Some(next) => erased_before(&app, &found.digest, &workspace, next).await?,
            None => None,
        },
    };
    let suppression = subject_type
        .is_user_id()
        .then(|| SuppressionBody::of(&workspace, &id, record.suppression.as_ref()));
    let next = record
        .next
        .as_ref()
        .map(|c| format!("{}?limit={limit}&cursor={c}", uri.path()));
    let answer = json(
        StatusCode::OK,
        &SubjectBody {
            suppressed: suppression.as_ref().is_some_and(|s| s.suppressed),
            suppression,
            source_suppressions: record
                .source_suppressions
                .iter()
                .map(|e| SuppressionBody::of(&workspace, &id, Some(e)))
                .collect(),
            workspace,
            subject_type: subject_type.to_string(),
            subject_id: id.to_string(),
            subject_digest: found.digest,
            deleted: deleted_at.is_some(),
            deleted_at,
            regulations,
            next_cursor: record.next.clone(),
            links: PageLinks { next },
        },
    );
    Ok(app.rated(answer, &admitted))
}
