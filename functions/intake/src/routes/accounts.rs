//! An account's deletion (every workspace it administers), its listing,
//! and its memberships.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use deletion_core::listings::Listing;
use deletion_core::memberships::Memberships as Directory;
use deletion_core::model::Scope;
use deletion_core::ServiceError;

use super::deletions::{deletion_matches, deletions_asked};
use super::{page, AccountParam, DeletionFilterParams, DryRunParam, IdempotencyParam, PageParams};
use crate::extract::{idempotency_key, AccountHolder, Asked, JsonRequest};
use crate::input::CreateBody;
use crate::problem::{
    BadRequest, BodyTooLarge, Conflict, Forbidden, NotFound, Problem, Unauthorized, Unavailable, Unprocessable,
    UnsupportedMediaType,
};
use crate::state::{json, App, Backend, Store, Tick};
use crate::views::{CreatedOrDryRun, DeletionPage, Memberships, RequestBody};

/// Delete an account: every workspace where it is an admin.
#[utoipa::path(
    post, path = "/v1/accounts/{account}/deletion", tag = "accounts", operation_id = "createAccountDeletion",
    params(AccountParam, DryRunParam, IdempotencyParam),
    request_body(content = Option<CreateBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "The account request already under way (children added), or the plan.", body = CreatedOrDryRun,
            headers(("Location" = String, description = "The request: `/v1/deletions/{id}`."))),
        (status = 202, description = "Created: the account request and its children.", body = RequestBody,
            headers(("Location" = String, description = "The request: `/v1/deletions/{id}`.")),
            links(
                ("GetDeletion" = (operation_id = "getDeletion", parameters(("request_id" = "$response.body#/id")))),
                ("GetDeletionPlan" = (operation_id = "getDeletionPlan", parameters(("request_id" = "$response.body#/id")))),
                ("RevokeDeletion" = (operation_id = "revokeDeletion", parameters(("request_id" = "$response.body#/id")))),
                ("RevokeAccountDeletion" = (operation_id = "revokeAccountDeletion", parameters(("account" = "$request.path.account")))),
                ("ListAccountDeletions" = (operation_id = "listAccountDeletions", parameters(("account" = "$request.path.account")))),
            )),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 409, response = Conflict),
        (status = 413, response = BodyTooLarge), (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable), (status = 503, response = Unavailable),
    )
)]
pub async fn create_account_deletion<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    AccountHolder { caller, account }: AccountHolder,
    asked: Asked,
    headers: HeaderMap,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let body: CreateBody = body.optional()?.unwrap_or_default();
    let ask = app.ask(body.reason, body.callback_url)?;
    let key = idempotency_key(&headers)?;
    if asked.dry_run()? {
        let workspaces = app.requests.admin_workspaces(&account).await?;
        if workspaces.is_empty() {
            return Err(ServiceError::NoAdminWorkspaces(account.to_string()).into());
        }
        let scopes = workspaces
            .into_iter()
            .map(|workspace| Scope::Workspace { workspace })
            .collect();
        return app.dry_run(&Scope::Account { account }, scopes).await;
    }
    let created = app
        .requests
        .create_account(
            &account,
            &caller.subject,
            ask.reason,
            key.as_ref(),
            ask.callback.as_ref(),
        )
        .await?;
    app.created(created).await
}

/// Revoke an account's deletion: every child still in grace.
#[utoipa::path(
    delete, path = "/v1/accounts/{account}/deletion", tag = "accounts", operation_id = "revokeAccountDeletion",
    params(AccountParam),
    responses(
        (status = 200, description = "Revoked; `not_revoked` lists children whose grace had ended.", body = RequestBody),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 409, response = Conflict), (status = 503, response = Unavailable),
    )
)]
pub async fn revoke_account_deletion<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    AccountHolder { caller, account }: AccountHolder,
) -> Result<Response, Problem> {
    app.revoke(&caller, Scope::Account { account }).await
}

/// An account's own requests, newest first.
#[utoipa::path(
    get, path = "/v1/accounts/{account}/deletions", tag = "accounts", operation_id = "listAccountDeletions",
    params(AccountParam, PageParams, DeletionFilterParams),
    responses(
        (status = 200, description = "A page of requests; follow `next_cursor`.", body = DeletionPage),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 503, response = Unavailable),
    )
)]
pub async fn list_account_deletions<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    AccountHolder { account, .. }: AccountHolder,
    asked: Asked,
    uri: Uri,
) -> Result<Response, Problem> {
    let listing = Listing::Account(account);
    let asking = deletions_asked(&asked)?;
    let shown = |r: &_| deletion_matches(&asking.filters, r);
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

/// Every workspace the account belongs to, with its role.
#[utoipa::path(
    get, path = "/v1/accounts/{account}/memberships", tag = "accounts", operation_id = "listMemberships",
    params(AccountParam),
    responses(
        (status = 200, description = "The account's memberships.", body = Memberships),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 503, response = Unavailable),
    )
)]
pub async fn list_memberships<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    AccountHolder { account, .. }: AccountHolder,
) -> Result<Response, Problem> {
    let members = Directory::new(app.requests.ledger()).of_account(&account).await?;
    Ok(json(StatusCode::OK, &Memberships::of(account, &members)))
}
