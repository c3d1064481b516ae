//! The membership directory (operators).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use deletion_core::ids::{AccountId, WorkspaceId};
use deletion_core::memberships::Memberships;

use super::{AccountParam, WorkspaceParam};
use crate::extract::{JsonRequest, Operator, Params};
use crate::input::MemberBody;
use crate::problem::{
    BadRequest, BodyTooLarge, Forbidden, NotFound, Problem, Unauthorized, Unavailable, UnsupportedMediaType,
};
use crate::state::{json, App, Backend, Store, Tick};
use crate::views::{Member, MemberRemoved};

fn ids(params: &Params) -> Result<(WorkspaceId, AccountId), Problem> {
    Ok((
        params.parse("workspace", WorkspaceId::parse)?,
        params.parse("account", AccountId::parse)?,
    ))
}

/// Give an account a role in a workspace.
#[utoipa::path(
    put, path = "/v1/workspaces/{workspace}/members/{account}", tag = "members", operation_id = "putMember",
    params(WorkspaceParam, AccountParam),
    request_body(content = MemberBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The membership.", body = Member,
            links(
                ("CreateAccountDeletion" = (operation_id = "createAccountDeletion", parameters(("account" = "$response.body#/account")))),
                ("ListMemberships" = (operation_id = "listMemberships", parameters(("account" = "$response.body#/account")))),
                ("RemoveMember" = (operation_id = "removeMember", parameters(("workspace" = "$response.body#/workspace"), ("account" = "$response.body#/account")))),
            )),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 413, response = BodyTooLarge),
        (status = 415, response = UnsupportedMediaType), (status = 503, response = Unavailable),
    )
)]
pub async fn put_member<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    _: Operator,
    params: Params,
    body: JsonRequest,
) -> Result<Response, Problem> {
    let (workspace, account) = ids(&params)?;
    let body: MemberBody = body.required(r#"{"role": "admin"}"#)?;
    Memberships::new(app.requests.ledger())
        .set(&workspace, &account, body.role)
        .await?;
    let role = body.role;
    Ok(json(
        StatusCode::OK,
        &Member {
            workspace,
            account,
            role,
        },
    ))
}

/// Remove an account from a workspace.
#[utoipa::path(
    delete, path = "/v1/workspaces/{workspace}/members/{account}", tag = "members", operation_id = "removeMember",
    params(WorkspaceParam, AccountParam),
    responses(
        (status = 200, description = "Removed.", body = MemberRemoved),
        (status = 400, response = BadRequest), (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden), (status = 404, response = NotFound),
        (status = 503, response = Unavailable),
    )
)]
pub async fn remove_member<L: Backend, S: Store, C: Tick>(
    State(app): State<App<L, S, C>>,
    _: Operator,
    params: Params,
) -> Result<Response, Problem> {
    let (workspace, account) = ids(&params)?;
    if !Memberships::new(app.requests.ledger())
        .remove(&workspace, &account)
        .await?
    {
        return Err(Problem::not_found(format!(
            "account {account} is not a member of workspace {workspace}"
        )));
    }
    let removed = true;
    Ok(json(
        StatusCode::OK,
        &MemberRemoved {
            workspace,
            account,
            removed,
        },
    ))
}
