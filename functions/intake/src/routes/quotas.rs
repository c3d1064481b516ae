//! A workspace's quotas of the regulations API and what it used: read by
//! its admins, set by operators.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use deletion_core::ids::WorkspaceId;
use deletion_core::model::quota::Limits;
use deletion_core::quotas;

use super::WorkspaceParam;
use crate::extract::{Admin, JsonRequest, Operator, Params};
use crate::input::QuotaBody;
use crate::problem::{BadRequest, BodyTooLarge, Forbidden, Problem, Unauthorized, Unavailable, UnsupportedMediaType};
use crate::state::{json, App, Backend, Store, Tick};
use crate::views::UsageBody;

/// This month's subjects and regulations, this minute's calls, and the quotas they count against.
#[utoipa::path(
    get, path = "/v1/workspaces/{workspace}/usage", tag = "regulations", operation_id = "getUsage",
    params(WorkspaceParam),
    responses(
        (status = 200, description = "The workspace's use and quotas (reading it is not counted).", body = UsageBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 503, response = Unavailable),
    )
)]
pub async fn get_usage<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { workspace, .. }: Admin,
) -> Result<Response, Problem> {
    let usage = quotas::usage(app.requests.ledger(), app.limits, &workspace, app.now()).await?;
    Ok(json(StatusCode::OK, &UsageBody::of(&workspace, &usage)))
}

/// Set a workspace's quotas (operators): they hold over the deployment's defaults.
#[utoipa::path(
    put, path = "/v1/workspaces/{workspace}/quotas", tag = "regulations", operation_id = "setQuotas",
    params(WorkspaceParam),
    request_body(content = QuotaBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Set: the workspace's use against its new quotas.", body = UsageBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 413, response = BodyTooLarge),
        (status = 415, response = UnsupportedMediaType), (status = 503, response = Unavailable),
    )
)]
pub async fn set_quotas<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Operator { caller }: Operator,
    params: Params,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let workspace = params.parse("workspace", WorkspaceId::parse)?;
    let body: QuotaBody = body.required(r#"{"requests_per_minute": 600, "subjects_per_month": 110000}"#)?;
    let limits = Limits {
        requests_per_minute: body.requests_per_minute,
        subjects_per_month: body.subjects_per_month,
    };
    quotas::set(app.requests.ledger(), &workspace, limits, &caller.subject, app.now()).await?;
    let usage = quotas::usage(app.requests.ledger(), app.limits, &workspace, app.now()).await?;
    Ok(json(StatusCode::OK, &UsageBody::of(&workspace, &usage)))
}
