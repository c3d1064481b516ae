//! The routes: one handler per operation, each with its `#[utoipa::path]`
//! annotation, registered in `api` (a new route is its handler and one
//! name there). The annotations are the OpenAPI document's operations.
//!
//! Invariant: a handler takes its guard first (who may call), then what
//! it parses; it answers with a view from `views` or a `Problem`.

use axum::handler::Handler;
use axum::routing::MethodRouter;
use utoipa::openapi::path::Paths;
use utoipa::openapi::OpenApi;
use utoipa::IntoParams;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::PathItemExt;

use deletion_core::listings::{self, Listing};
use deletion_core::model::DeletionRequest;

use crate::extract::{Asked, Filters};
use crate::problem::Problem;
use crate::schemas as s;
use crate::state::{App, Backend, Intake, Store, Tick};
use crate::views::PageLinks;

pub mod accounts;
pub mod deletions;
pub mod holds;
pub mod members;
pub mod opendsr;
pub mod quotas;
pub mod receipts;
pub mod regulations;
pub mod retention;

/// One operation: its documented path, methods and schemas, and its
/// handler on those methods.
fn operation<P, H, T, St>(handler: H) -> UtoipaMethodRouter<St>
where
    P: utoipa::Path + utoipa::__dev::SchemaReferences,
    H: Handler<T, St>,
    T: 'static,
    St: Clone + Send + Sync + 'static,
{
    let mut schemas = Vec::new();
    P::schemas(&mut schemas);
    let methods = P::methods();
    let router = methods
        .iter()
        .fold(MethodRouter::new(), |r, m| r.on(m.to_method_filter(), handler.clone()));
    let mut paths = Paths::new();
    paths.add_path_operation(P::path(), methods, P::operation());
    (schemas, paths, router)
}

/// The operation's documented path, methods and schemas, added to `doc`.
fn describe<P: utoipa::Path + utoipa::__dev::SchemaReferences>(doc: &mut OpenApi) {
    let mut schemas = Vec::new();
    P::schemas(&mut schemas);
    doc.paths.add_path_operation(P::path(), P::methods(), P::operation());
    doc.components
        .get_or_insert_with(utoipa::openapi::Components::new)
        .schemas
        .extend(schemas);
}

/// Every operation, as `module::handler` (its annotation's path type is
/// `module::__path_handler`): the one list both the router and the
/// document are made from. A new route is its handler and a line here.
macro_rules! with_operations {
    ($apply:ident!($($args:tt)*)) => {
        $apply!($($args)*;
            deletions::create_workspace_deletion,
            deletions::revoke_workspace_deletion,
            deletions::list_workspace_deletions,
            deletions::create_space_deletion,
            deletions::revoke_space_deletion,
            deletions::create_source_days_deletion,
            members::put_member,
            members::remove_member,
            accounts::create_account_deletion,
            accounts::revoke_account_deletion,
            accounts::list_account_deletions,
            accounts::list_memberships,
            deletions::create_purge,
            deletions::get_deletion,
            deletions::revoke_deletion,
            deletions::get_deletion_plan,
            regulations::list_regulations,
            regulations::create_regulation,
            regulations::create_source_regulation,
            regulations::get_regulation,
            regulations::cancel_regulation,
            regulations::list_suppressions,
            regulations::get_suppression,
            regulations::check_suppressions,
            regulations::get_subject,
            quotas::get_usage,
            quotas::set_quotas,
            holds::get_hold,
            holds::place_hold,
            holds::release_hold,
            retention::get_retention,
            retention::set_retention,
            retention::remove_retention,
            retention::revoke_retention_change,
            receipts::verify_receipt,
            receipts::get_receipt_keys,
            receipts::get_opendsr_keys,
            opendsr::discovery,
            opendsr::create_request,
            opendsr::get_request,
            opendsr::cancel_request,
        )
    };
}

macro_rules! register {
    ($router:expr, $generics:tt; $($module:ident::$handler:ident),* $(,)?) => {
        $router $(.routes(register!(@one $generics $module::$handler)))*
    };
    (@one [$($g:ident),*] $module:ident::$handler:ident) => {
        operation::<utoipa_axum::paste!($module::[<__path_ $handler>]), _, _, _>($module::$handler::<$($g),*>)
    };
}

macro_rules! document {
    ($doc:expr; $($module:ident::$handler:ident),* $(,)?) => {
        $(describe::<utoipa_axum::paste!($module::[<__path_ $handler>])>($doc);)*
    };
}

/// The routes, generic over the intake's ports.
pub fn api<L: Backend, S: Store, C: Tick>() -> axum::Router<App<L, S, C>> {
    let router = OpenApiRouter::new();
    let router = with_operations!(register!(router, [L, S, C]));
    router.into()
}

/// The document the routes make, on the frame given (`doc::base`).
pub fn document(mut doc: OpenApi) -> OpenApi {
    with_operations!(document!(&mut doc));
    doc
}

/// A listing as asked: its filters, and the name of its kind filter
/// (`kind` or `type`) for the `next` link.
pub(crate) struct Asking<'a> {
    pub asked: &'a Asked,
    pub filters: Filters,
    pub kind_param: &'static str,
}

/// A page of a listing that `shown` lets the caller see and the creation
/// range of `asking` keeps (so a page may hold fewer than `limit`;
/// `next_cursor` still goes on, its link with the same filters), each
/// shown by `show`. Newest first: once a page reaches past
/// `created_after`, nothing follows.
pub(crate) async fn page<L: Backend, S: Store, C: Tick, T>(
    app: &Intake<L, S, C>,
    asking: &Asking<'_>,
    path: &str,
    listing: Listing,
    shown: impl Fn(&DeletionRequest) -> bool,
    show: impl Fn(&DeletionRequest, chrono::DateTime<chrono::Utc>) -> T,
) -> Result<(Vec<T>, Option<String>, PageLinks), Problem> {
    let (limit, cursor) = asking.asked.page()?;
    let filters = &asking.filters;
    let mut page = listings::page(app.requests.ledger(), &listing, limit, cursor.as_deref()).await?;
    let now = app.now();
    let past_range = |r: &DeletionRequest| filters.created_after.is_some_and(|a| r.created_at <= a);
    if page.items.last().is_some_and(past_range) {
        page.next = None;
    }
    let items = page
        .items
        .iter()
        .filter(|r| filters.in_range(r.created_at) && shown(r))
        .map(|r| show(r, now))
        .collect();
    let query = filters.query(asking.kind_param);
    let next = page
        .next
        .as_ref()
        .map(|c| format!("{path}?limit={limit}&cursor={c}{query}"));
    Ok((items, page.next, PageLinks { next }))
}

// The path parameters, as the document names them.

/// The workspace's id or slug.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WorkspaceParam {
    /// The workspace's id or slug.
    #[param(value_type = s::Id)]
    pub workspace: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SpaceParam {
    /// A space of the workspace.
    #[param(value_type = s::Id)]
    pub space: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SourceParam {
    /// A source of the workspace.
    #[param(value_type = s::Id)]
    pub source: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AccountParam {
    /// An account id.
    #[param(value_type = s::Id)]
    pub account: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RequestIdParam {
    /// A request id.
    #[param(value_type = s::RequestId)]
    pub request_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RegulationIdParam {
    /// A regulation's id.
    #[param(value_type = s::RequestId)]
    pub regulation_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserIdParam {
    /// An end user's id, percent-encoded (`a%2Fb` for `a/b`).
    #[param(value_type = s::UserId)]
    pub user_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SubjectParams {
    /// `USER_ID`, `ANONYMOUS_ID` or an identifier the data map declares.
    #[param(pattern = "^[A-Z][A-Z0-9_]{0,31}$")]
    pub subject_type: String,
    /// The subject's id, percent-encoded (`a%2Fb` for `a/b`).
    #[param(value_type = s::UserId)]
    pub subject_id: String,
}

/// `dry_run` and `Idempotency-Key`, which every create takes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunParam {
    /// Answer with the plan (what would be deleted) and write nothing.
    #[param(default = false)]
    pub dry_run: Option<bool>,
}

/// The caller's own key for a create.
#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyParam {
    /// The caller's own key, for one scope: the same caller sending the same key for the same
    /// scope again is given the request it created. Another caller's key of the same name, or
    /// the same name for another scope, is another key.
    #[serde(rename = "Idempotency-Key")]
    #[param(min_length = 1, max_length = 128, pattern = "^[!$-\\[\\]-~]+$")]
    pub key: Option<String>,
}

/// A listing of deletions, filtered.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeletionFilterParams {
    /// Only requests in one of these statuses (comma-separated: `SCHEDULED,PURGING`).
    #[param(pattern = "^[A-Z_]+(,[A-Z_]+)*$", max_length = 200)]
    pub status: Option<String>,
    /// Only requests of these kinds (comma-separated: `workspace`, `space`, `source_days`, `workspace_purge`, `account`).
    #[param(pattern = "^[a-z_]+(,[a-z_]+)*$", max_length = 200)]
    pub kind: Option<String>,
    /// Only requests created after this time (RFC 3339).
    #[param(value_type = Option<s::Timestamp>)]
    pub created_after: Option<String>,
    /// Only requests created before this time (RFC 3339).
    #[param(value_type = Option<s::Timestamp>)]
    pub created_before: Option<String>,
}

/// A listing of regulations, filtered.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegulationFilterParams {
    /// Only regulations in one of these statuses (comma-separated: `INITIALIZED,RUNNING,FINISHED,PARTIAL_SUCCESS,FAILED,ON_HOLD`).
    #[param(pattern = "^[A-Z_]+(,[A-Z_]+)*$", max_length = 200)]
    pub status: Option<String>,
    /// Only regulations of these types (comma-separated: `SUPPRESS_WITH_DELETE,DELETE_ONLY`).
    #[param(rename = "type", pattern = "^[A-Z_]+(,[A-Z_]+)*$", max_length = 200)]
    pub regulation_type: Option<String>,
    /// Only regulations created after this time (RFC 3339).
    #[param(value_type = Option<s::Timestamp>)]
    pub created_after: Option<String>,
    /// Only regulations created before this time (RFC 3339).
    #[param(value_type = Option<s::Timestamp>)]
    pub created_before: Option<String>,
}

/// The statuses and kinds a listing of deletions is filtered by.
pub(crate) const DELETION_KINDS: [&str; 5] = ["workspace", "space", "source_days", "workspace_purge", "account"];

/// A page of a listing.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<u32>,
    /// Where the page starts: a `next_cursor` of an earlier page of the same listing.
    #[param(max_length = 1024)]
    pub cursor: Option<String>,
}
