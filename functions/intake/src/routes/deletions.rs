//! Deletions of workspaces, spaces, a source's days and complete purges;
//! requests by id (status, plan, revoke); a workspace's listing.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use deletion_core::access::Caller;
use deletion_core::ids::{SourceId, SpaceId, WorkspaceId};
use deletion_core::listings::Listing;
use deletion_core::model::{DeletionRequest, Scope, Status};
use deletion_core::requests::Created;
use deletion_core::ServiceError;

use super::{
    page, Asking, DeletionFilterParams, DryRunParam, IdempotencyParam, PageParams, RequestIdParam, SourceParam,
    SpaceParam, WorkspaceParam, DELETION_KINDS,
};
use crate::extract::{idempotency_key, Admin, Asked, Filters, JsonRequest, Named, Operator, Params};
use crate::input::{self, CreateBody, PurgeBody, SourceDaysBody};
use crate::problem::{
    BadRequest, BodyTooLarge, Conflict, Forbidden, NotFound, Problem, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use crate::state::{json, located, App, Ask, Backend, Intake, Store, Tick};
use crate::views::{CreatedOrDryRun, DeletionPage, DeletionPlan, DryRun, RequestBody, ScopeView};

impl<L: Backend, S: Store, C: Tick> Intake<L, S, C> {
    /// Creates a request for `scope` (or, with `dry_run`, plans it).
    pub(crate) async fn create(
        &self,
        asked: &Asked,
        headers: &HeaderMap,
        actor: &Caller,
        scope: Scope,
        ask: Ask,
    ) -> Result<Response, Problem> {
        let key = idempotency_key(headers)?;
        if !self.planner.map().reaches(&scope) {
            return Err(ServiceError::NotInDataMap(scope.kind().replace('_', " ")).into());
        }
        if asked.dry_run()? {
            return self.dry_run(&scope, vec![scope.clone()]).await;
        }
        let created = self
            .requests
            .create(scope, &actor.subject, ask.reason, key.as_ref(), ask.callback.as_ref())
            .await?;
        self.created(created).await
    }

    pub(crate) async fn dry_run(&self, scope: &Scope, scopes: Vec<Scope>) -> Result<Response, Problem> {
        let plan = self.planner.plan(&scopes).await?;
        let answer = DryRun {
            dry_run: true,
            kind: scope.kind(),
            scope: ScopeView::of(scope),
            plan,
        };
        Ok(json(StatusCode::OK, &answer))
    }

    /// 202 and the new request, or 200 and the one already under way.
    pub(crate) async fn created(&self, created: Created) -> Result<Response, Problem> {
        let status = if created.created {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        let mut body = RequestBody::of(&created.request, self.now());
        body.callback = self.callback_answer(&created).await?;
        let location = format!("/v1/deletions/{}", created.request.id);
        Ok(located(status, location, &body))
    }

    pub(crate) async fn revoke(&self, actor: &Caller, scope: Scope) -> Result<Response, Problem> {
        let revoked = self.requests.revoke(&scope, &actor.subject).await?;
        Ok(json(StatusCode::OK, &RequestBody::revoked(&revoked, self.now())))
    }
}

/// Delete a workspace: everything it owns, after a 5-day grace.
#[utoipa::path(
    post, path = "/v1/workspaces/{workspace}/deletion", tag = "deletions", operation_id = "createWorkspaceDeletion",
    params(WorkspaceParam, DryRunParam, IdempotencyParam),
    request_body(content = Option<CreateBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The request already under way for the same scope (or created with the same Idempotency-Key); or, with `dry_run=true`, the plan.",
            body = CreatedOrDryRun, headers(("Location" = String, description = "The request: `/v1/deletions/{id}`."))),
        (status = 202, description = "Created: the new request.", body = RequestBody,
            headers(("Location" = String, description = "The request: `/v1/deletions/{id}`.")),
            links(
                ("GetDeletion" = (operation_id = "getDeletion", parameters(("request_id" = "$response.body#/id")))),
                ("GetDeletionPlan" = (operation_id = "getDeletionPlan", parameters(("request_id" = "$response.body#/id")))),
                ("RevokeDeletion" = (operation_id = "revokeDeletion", parameters(("request_id" = "$response.body#/id")))),
                ("RevokeWorkspaceDeletion" = (operation_id = "revokeWorkspaceDeletion", parameters(("workspace" = "$request.path.workspace")))),
                ("ListWorkspaceDeletions" = (operation_id = "listWorkspaceDeletions", parameters(("workspace" = "$request.path.workspace")))),
            )),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 413, response = BodyTooLarge), (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable), (status = 503, response = Unavailable),
    )
)]
pub async fn create_workspace_deletion<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
    asked: Asked,
    headers: HeaderMap,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let body: CreateBody = body.optional()?.unwrap_or_default();
    let ask = app.ask(body.reason, body.callback_url)?;
    app.create(&asked, &headers, &caller, Scope::Workspace { workspace }, ask)
        .await
}

/// Revoke a workspace's deletion while in grace.
#[utoipa::path(
    delete, path = "/v1/workspaces/{workspace}/deletion", tag = "deletions", operation_id = "revokeWorkspaceDeletion",
    params(WorkspaceParam),
    responses(
        (status = 200, description = "Revoked: the request.", body = RequestBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 503, response = Unavailable),
    )
)]
pub async fn revoke_workspace_deletion<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
) -> Result<Response, Problem> {
    app.revoke(&caller, Scope::Workspace { workspace }).await
}

/// The filters a listing of deletions takes.
pub(crate) fn deletions_asked(asked: &Asked) -> Result<Asking<'_>, Problem> {
    let statuses: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    Ok(Asking {
        asked,
        filters: asked.filters(&statuses, "kind", &DELETION_KINDS)?,
        kind_param: "kind",
    })
}

/// Whether a request is of the asked statuses and kinds.
pub(crate) fn deletion_matches(filters: &Filters, r: &DeletionRequest) -> bool {
    let status = filters
        .status
        .as_ref()
        .is_none_or(|s| s.iter().any(|v| v == r.status.as_str()));
    let kind = filters
        .kind
        .as_ref()
        .is_none_or(|k| k.iter().any(|v| v == r.scope.kind()));
    status && kind
}

/// A workspace's deletions, newest first (complete purges only for operators).
#[utoipa::path(
    get, path = "/v1/workspaces/{workspace}/deletions", tag = "deletions", operation_id = "listWorkspaceDeletions",
    params(WorkspaceParam, PageParams, DeletionFilterParams),
    responses(
        (status = 200, description = "A page of requests; follow `next_cursor`.", body = DeletionPage),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 503, response = Unavailable),
    )
)]
pub async fn list_workspace_deletions<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
    asked: Asked,
    uri: Uri,
) -> Result<Response, Problem> {
    // A complete purge is an operator's: only operators see it listed.
    let operator = caller.is_operator();
    let asking = deletions_asked(&asked)?;
    let shown = |r: &DeletionRequest| {
        (operator || !matches!(r.scope, Scope::WorkspacePurge { .. })) && deletion_matches(&asking.filters, r)
    };
    let listing = Listing::Workspace(workspace);
    let (items, next_cursor, links) = page(&app, &asking, uri.path(), listing, shown, RequestBody::of).await?;
    Ok(json(
        StatusCode::OK,
        &DeletionPage {
            items,
            next_cursor,
            links,
        },
    ))
}

/// Delete a space: its profiles, computed traits, audiences and journeys.
#[utoipa::path(
    post, path = "/v1/workspaces/{workspace}/spaces/{space}/deletion", tag = "deletions", operation_id = "createSpaceDeletion",
    params(WorkspaceParam, SpaceParam, DryRunParam, IdempotencyParam),
    request_body(content = Option<CreateBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The request already under way, or the plan.", body = CreatedOrDryRun,
            headers(("Location" = String, description = "The request: `/v1/deletions/{id}`."))),
        (status = 202, description = "Created: the new request.", body = RequestBody,
            headers(("Location" = String, description = "The request: `/v1/deletions/{id}`.")),
            links(
                ("GetDeletion" = (operation_id = "getDeletion", parameters(("request_id" = "$response.body#/id")))),
                ("GetDeletionPlan" = (operation_id = "getDeletionPlan", parameters(("request_id" = "$response.body#/id")))),
                ("RevokeDeletion" = (operation_id = "revokeDeletion", parameters(("request_id" = "$response.body#/id")))),
                ("RevokeSpaceDeletion" = (operation_id = "revokeSpaceDeletion", parameters(("workspace" = "$request.path.workspace"), ("space" = "$request.path.space")))),
            )),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 413, response = BodyTooLarge), (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable), (status = 503, response = Unavailable),
    )
)]
pub async fn create_space_deletion<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
    params: Params,
    asked: Asked,
    headers: HeaderMap,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let space = params.parse("space", SpaceId::parse)?;
    let body: CreateBody = body.optional()?.unwrap_or_default();
    let ask = app.ask(body.reason, body.callback_url)?;
    app.create(&asked, &headers, &caller, Scope::Space { workspace, space }, ask)
        .await
}

/// Revoke a space's deletion while in grace.
#[utoipa::path(
    delete, path = "/v1/workspaces/{workspace}/spaces/{space}/deletion", tag = "deletions", operation_id = "revokeSpaceDeletion",
    params(WorkspaceParam, SpaceParam),
    responses(
        (status = 200, description = "Revoked: the request.", body = RequestBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 503, response = Unavailable),
    )
)]
pub async fn revoke_space_deletion<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
    params: Params,
) -> Result<Response, Problem> {
    let space = params.parse("space", SpaceId::parse)?;
    app.revoke(&caller, Scope::Space { workspace, space }).await
}

/// Delete a source's archive by whole days (no grace by default).
#[utoipa::path(
    post, path = "/v1/workspaces/{workspace}/sources/{source}/deletions", tag = "deletions", operation_id = "createSourceDaysDeletion",
    params(WorkspaceParam, SourceParam, DryRunParam, IdempotencyParam),
    request_body(content = SourceDaysBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The request already under way, or the plan.", body = CreatedOrDryRun,
            headers(("Location" = String, description = "The request: `/v1/deletions/{id}`."))),
        (status = 202, description = "Created: the new request.", body = RequestBody,
            headers(("Location" = String, description = "The request: `/v1/deletions/{id}`.")),
            links(
                ("GetDeletion" = (operation_id = "getDeletion", parameters(("request_id" = "$response.body#/id")))),
                ("GetDeletionPlan" = (operation_id = "getDeletionPlan", parameters(("request_id" = "$response.body#/id")))),
                ("RevokeDeletion" = (operation_id = "revokeDeletion", parameters(("request_id" = "$response.body#/id")))),
            )),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 413, response = BodyTooLarge), (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable), (status = 503, response = Unavailable),
    )
)]
pub async fn create_source_days_deletion<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Admin { caller, workspace }: Admin,
    params: Params,
    asked: Asked,
    headers: HeaderMap,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let source = params.parse("source", SourceId::parse)?;
    let body: SourceDaysBody = body.required(r#"{"from": "2024-01-31", "to": "2024-02-01"}"#)?;
    let scope = input::source_days(workspace, source, &body, app.now())?;
    let ask = app.ask(body.reason, body.callback_url)?;
    app.create(&asked, &headers, &caller, scope, ask).await
}

/// A complete purge of a workspace deleted long ago (operators).
#[utoipa::path(
    post, path = "/v1/purges", tag = "purges", operation_id = "createPurge",
    params(DryRunParam, IdempotencyParam),
    request_body(content = PurgeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The request already under way, or the plan.", body = CreatedOrDryRun,
            headers(("Location" = String, description = "The request: `/v1/deletions/{id}`."))),
        (status = 202, description = "Created: the new request.", body = RequestBody,
            headers(("Location" = String, description = "The request: `/v1/deletions/{id}`.")),
            links(
                ("GetDeletion" = (operation_id = "getDeletion", parameters(("request_id" = "$response.body#/id")))),
                ("GetDeletionPlan" = (operation_id = "getDeletionPlan", parameters(("request_id" = "$response.body#/id")))),
                ("RevokeDeletion" = (operation_id = "revokeDeletion", parameters(("request_id" = "$response.body#/id")))),
            )),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 413, response = BodyTooLarge), (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable), (status = 503, response = Unavailable),
    )
)]
pub async fn create_purge<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Operator { caller }: Operator,
    asked: Asked,
    headers: HeaderMap,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let body: PurgeBody = body.required(r#"{"workspace": "acme"}"#)?;
    let workspace = WorkspaceId::parse(&body.workspace).map_err(|e| Problem::bad_request(e.to_string()))?;
    let ask = app.ask(body.reason, body.callback_url)?;
    app.create(&asked, &headers, &caller, Scope::WorkspacePurge { workspace }, ask)
        .await
}

/// A request's status, history, progress and receipt.
#[utoipa::path(
    get, path = "/v1/deletions/{request_id}", tag = "deletions", operation_id = "getDeletion",
    params(RequestIdParam),
    responses(
        (status = 200, description = "The request.", body = RequestBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_deletion<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Named { request, .. }: Named,
) -> Result<Response, Problem> {
    let view = app.requests.view(request).await?;
    let mut body = RequestBody::view(&view);
    body.callbacks = app.callback_status(&view.request).await?;
    Ok(json(StatusCode::OK, &body))
}

/// Revoke a request by id, any kind, while in grace.
#[utoipa::path(
    delete, path = "/v1/deletions/{request_id}", tag = "deletions", operation_id = "revokeDeletion",
    params(RequestIdParam),
    responses(
        (status = 200, description = "Revoked: the request.", body = RequestBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 503, response = Unavailable),
    )
)]
pub async fn revoke_deletion<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Named { caller, request }: Named,
) -> Result<Response, Problem> {
    let revoked = app.requests.revoke_by_id(&request.id, &caller.subject).await?;
    Ok(json(StatusCode::OK, &RequestBody::revoked(&revoked, app.now())))
}

/// What a request deletes, counted now.
#[utoipa::path(
    get, path = "/v1/deletions/{request_id}/plan", tag = "deletions", operation_id = "getDeletionPlan",
    params(RequestIdParam),
    responses(
        (status = 200, description = "The plan.", body = DeletionPlan),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn get_deletion_plan<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    Named { request, .. }: Named,
) -> Result<Response, Problem> {
    let view = app.requests.view(request).await?;
    let scopes: Vec<Scope> = if view.request.scope.holds_data() {
        vec![view.request.scope.clone()]
    } else {
        view.children.iter().map(|c| c.scope.clone()).collect()
    };
    let plan = app.planner.plan(&scopes).await?;
    let answer = DeletionPlan {
        request_id: view.request.id.clone(),
        kind: view.request.scope.kind(),
        plan,
    };
    Ok(json(StatusCode::OK, &answer))
}
