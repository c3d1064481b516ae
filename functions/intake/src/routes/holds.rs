//! Legal holds (operators): while one stands nothing of the workspace is
//! purged.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use deletion_core::holds;
use deletion_core::ids::WorkspaceId;

use super::WorkspaceParam;
use crate::extract::{JsonRequest, Operator, Params};
use crate::input::{check_reason, HoldBody};
use crate::problem::{
    BadRequest, BodyTooLarge, Conflict, Forbidden, NotFound, Problem, Unauthorized, Unavailable, UnsupportedMediaType,
};
use crate::state::{json, App, Backend, Store, Tick};
use crate::views::{HoldBody as HoldView, HoldReleased};

/// The hold standing on a workspace.
#[utoipa::path(
    get, path = "/v1/workspaces/{workspace}/hold", tag = "holds", operation_id = "getHold",
    params(WorkspaceParam),
    responses(
        (status = 200, description = "The hold.", body = HoldView),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_hold<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    _: Operator,
    params: Params,
) -> Result<Response, Problem> {
    let workspace = params.parse("workspace", WorkspaceId::parse)?;
    let hold = holds::standing(app.requests.ledger(), &workspace)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no legal hold on workspace {workspace}")))?;
    Ok(json(StatusCode::OK, &HoldView::of(&hold)))
}

/// Place a legal hold (or be given the one standing).
#[utoipa::path(
    put, path = "/v1/workspaces/{workspace}/hold", tag = "holds", operation_id = "placeHold",
    params(WorkspaceParam),
    request_body(content = HoldBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The hold that stands.", body = HoldView,
            links(
                ("GetHold" = (operation_id = "getHold", parameters(("workspace" = "$response.body#/workspace")))),
                ("ReleaseHold" = (operation_id = "releaseHold", parameters(("workspace" = "$response.body#/workspace")))),
            )),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 413, response = BodyTooLarge),
        (status = 415, response = UnsupportedMediaType), (status = 503, response = Unavailable),
    )
)]
pub async fn place_hold<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Operator { caller }: Operator,
    params: Params,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let workspace = params.parse("workspace", WorkspaceId::parse)?;
    let body: HoldBody = body.required(r#"{"reason": "litigation 2026-17"}"#)?;
    let Some(reason) = check_reason(Some(body.reason))? else {
        return Err(Problem::bad_request("a legal hold needs a reason"));
    };
    let hold = app.requests.place_hold(workspace, reason, &caller.subject).await?;
    Ok(json(StatusCode::OK, &HoldView::of(&hold)))
}

/// Release a hold: every request waiting on it resumes.
#[utoipa::path(
    delete, path = "/v1/workspaces/{workspace}/hold", tag = "holds", operation_id = "releaseHold",
    params(WorkspaceParam),
    responses(
        (status = 200, description = "Released; `resumed` lists the requests put back.", body = HoldReleased),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 503, response = Unavailable),
    )
)]
pub async fn release_hold<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Operator { caller }: Operator,
    params: Params,
) -> Result<Response, Problem> {
    let workspace = params.parse("workspace", WorkspaceId::parse)?;
    let (hold, resumed) = app.requests.release_hold(&workspace, &caller.subject).await?;
    Ok(json(StatusCode::OK, &HoldReleased::of(&hold, &caller.subject, resumed)))
}
