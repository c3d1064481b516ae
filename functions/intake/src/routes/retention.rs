//! Retention policies (admins of the workspace, and operators): how many
//! whole days each source's archive keeps. A change that keeps less waits
//! the workspace grace (revocable, previewed); one that keeps more takes
//! effect at once. The daily enforcement lives in the grace-timer function.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use deletion_core::retention;

use super::{DryRunParam, WorkspaceParam};
use crate::extract::{Admin, Asked, JsonRequest};
use crate::input::RetentionBody;
use crate::problem::{
    BadRequest, BodyTooLarge, Conflict, Forbidden, NotFound, Problem, Unauthorized, Unavailable, UnsupportedMediaType,
};
use crate::state::{json, App, Backend, Store, Tick};
use crate::views::{PreviewView, RetentionView};

/// Largest body of a policy (500 sources with long ids fit).
const MAX_POLICY_BYTES: usize = 128 * 1024;

/// The workspace's retention: policy in force, change in grace, latest changes, last run.
#[utoipa::path(
    get, path = "/v1/workspaces/{workspace}/retention", tag = "retention", operation_id = "getRetention",
    params(WorkspaceParam),
    responses(
        (status = 200, description = "The retention (policy null: everything is kept).", body = RetentionView),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 503, response = Unavailable),
    )
)]
pub async fn get_retention<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { workspace, .. }: Admin,
) -> Result<Response, Problem> {
    let now = app.now();
    let r = retention::current(app.requests.ledger(), &workspace, now).await?;
    Ok(json(StatusCode::OK, &RetentionView::of(&r, now)))
}

/// Set the policy. One that keeps less of any source (a first window, a shorter one) waits the
/// workspace grace (202, with a preview of what it deletes) and may be revoked until then; one
/// that keeps as much or more is in force at once (200). With `dry_run=true` nothing is written.
#[utoipa::path(
    put, path = "/v1/workspaces/{workspace}/retention", tag = "retention", operation_id = "setRetention",
    params(WorkspaceParam, DryRunParam),
    request_body(content = RetentionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "In force now (or, with `dry_run`, the preview; nothing written).", body = RetentionView,
            links(("GetRetention" = (operation_id = "getRetention", parameters(("workspace" = "$response.body#/workspace")))))),
        (status = 202, description = "In grace until `pending.effective_at`; `preview` shows what it will delete.", body = RetentionView,
            links(("RevokeRetentionChange" = (operation_id = "revokeRetentionChange", parameters(("workspace" = "$response.body#/workspace")))))),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 413, response = BodyTooLarge),
        (status = 415, response = UnsupportedMediaType), (status = 503, response = Unavailable),
    )
)]
pub async fn set_retention<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
    asked: Asked,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let body: RetentionBody = body.large(
        MAX_POLICY_BYTES,
        r#"{"default_days": 90, "sources": {"web": 30, "ios": null}}"#,
    )?;
    let policy = body.policy()?;
    let now = app.now();
    let ledger = app.requests.ledger();
    if asked.dry_run()? {
        let r = retention::current(ledger, &workspace, now).await?;
        let preview = retention::preview(&app.planner, &workspace, Some(&policy), now).await?;
        let mut view = RetentionView::of(&r, now);
        view.preview = Some(PreviewView::of(preview));
        view.dry_run = Some(true);
        return Ok(json(StatusCode::OK, &view));
    }
    let grace = app.requests.periods().grace;
    let (r, pending) = retention::set_policy(ledger, &workspace, policy, &caller.subject, now, grace).await?;
    let mut view = RetentionView::of(&r, now);
    if !pending {
        return Ok(json(StatusCode::OK, &view));
    }
    let asked_policy = r.pending.as_ref().map(|p| &p.policy);
    view.preview = Some(PreviewView::of(
        retention::preview(&app.planner, &workspace, asked_policy, now).await?,
    ));
    Ok(json(StatusCode::ACCEPTED, &view))
}

/// Remove the policy (and any change in grace): every day is kept from now on.
#[utoipa::path(
    delete, path = "/v1/workspaces/{workspace}/retention", tag = "retention", operation_id = "removeRetention",
    params(WorkspaceParam),
    responses(
        (status = 200, description = "Removed.", body = RetentionView),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn remove_retention<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
) -> Result<Response, Problem> {
    let now = app.now();
    let r = retention::remove_policy(app.requests.ledger(), &workspace, &caller.subject, now).await?;
    Ok(json(StatusCode::OK, &RetentionView::of(&r, now)))
}

/// Revoke the change in grace: the policy in force stays.
#[utoipa::path(
    delete, path = "/v1/workspaces/{workspace}/retention/pending", tag = "retention", operation_id = "revokeRetentionChange",
    params(WorkspaceParam),
    responses(
        (status = 200, description = "Revoked.", body = RetentionView),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 503, response = Unavailable),
    )
)]
pub async fn revoke_retention_change<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
) -> Result<Response, Problem> {
    let now = app.now();
    let r = retention::revoke_change(app.requests.ledger(), &workspace, &caller.subject, now).await?;
    Ok(json(StatusCode::OK, &RetentionView::of(&r, now)))
}
