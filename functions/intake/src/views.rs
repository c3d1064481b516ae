//! The JSON the API answers with: one typed answer per kind of answer,
//! each its schema in the generated OpenAPI document.
//!
//! Invariants: every time is shown in UTC to the millisecond; a field an
//! answer always carries is `required` in its schema (null when it has no
//! value), a field it carries only sometimes is skipped when absent.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use deletion_core::callbacks::{CallbackState, CallbackUrl};
use deletion_core::ids::{AccountId, RequestId, WorkspaceId};
use deletion_core::model::retention::{ChangeKind, Policy, Retention};
use deletion_core::model::{DeletionRequest, PrefixReceipt, Progress, Receipt, Scope, Shard, Status, Transition};
use deletion_core::plan::Plan;
use deletion_core::ports::{Hold, Membership, Role};
use deletion_core::purge::roots;
use deletion_core::regulation::{RegulationStatus, RegulationType, RewriteCounts, UserId};
use deletion_core::requests::{ChildView as Child, RequestView, Revoked};
use deletion_core::retention::Preview;

use crate::schemas as s;

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A scope's fields, without its kind (shown beside it).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Scope)]
pub struct ScopeView {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = s::Id)]
    pub workspace: Option<WorkspaceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = s::Id)]
    pub space: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = s::Id)]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = s::Day)]
    pub from: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = s::Day)]
    pub to: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = s::Id)]
    pub account: Option<AccountId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = s::RegulationType)]
    pub regulation: Option<RegulationType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    pub subject_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub subject_type: Option<String>,
}

impl ScopeView {
    pub fn of(scope: &Scope) -> ScopeView {
        let mut v = ScopeView {
            workspace: None,
            space: None,
            source: None,
            from: None,
            to: None,
            account: None,
            regulation: None,
            subject_count: None,
            digest: None,
            subject_type: None,
        };
        match scope {
            Scope::Workspace { workspace } | Scope::WorkspacePurge { workspace } => {
                v.workspace = Some(workspace.clone())
            }
            Scope::Space { workspace, space } => {
                v.workspace = Some(workspace.clone());
                v.space = Some(space.to_string());
            }
            Scope::SourceDays {
                workspace,
                source,
                from,
                to,
            } => {
                v.workspace = Some(workspace.clone());
                v.source = Some(source.to_string());
                (v.from, v.to) = (Some(*from), Some(*to));
            }
            Scope::Account { account } => v.account = Some(account.clone()),
            Scope::Regulation {
                workspace,
                regulation,
                subject_count,
                digest,
                subject_type,
                source,
            } => {
                v.source = source.as_ref().map(|s| s.to_string());
                v.workspace = Some(workspace.clone());
                v.regulation = Some(*regulation);
                v.subject_count = Some(*subject_count);
                v.digest = Some(digest.clone());
                v.subject_type = Some(subject_type.to_string());
            }
        }
        v
    }
}

/// One entry of a request's status history.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    #[schema(value_type = s::Status)]
    pub status: Status,
    #[schema(value_type = s::Timestamp)]
    pub at: String,
    pub by: String,
    #[schema(required)]
    pub note: Option<String>,
}

impl HistoryEntry {
    fn of(t: &Transition) -> Self {
        HistoryEntry {
            status: t.status,
            at: ts(t.at),
            by: t.by.clone(),
            note: t.note.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestLinks {
    #[serde(rename = "self")]
    pub this: String,
    pub plan: String,
}

/// An account request's child, with its own status.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChildView {
    #[schema(value_type = s::RequestId)]
    pub id: RequestId,
    #[schema(value_type = s::Kind)]
    pub kind: &'static str,
    pub scope: ScopeView,
    #[schema(value_type = s::Status)]
    pub status: Status,
    #[schema(value_type = s::Timestamp)]
    pub grace_ends_at: String,
}

/// A child as a listing shows it (its id) or as the status view does.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ChildEntry {
    Id(ChildId),
    View(Box<ChildView>),
}

/// A child's id.
#[derive(Serialize)]
#[serde(transparent)]
pub struct ChildId(pub RequestId);

impl utoipa::PartialSchema for ChildId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::Ref::from_schema_name("RequestId").into()
    }
}

impl ToSchema for ChildId {
    fn schemas(out: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        out.push(("RequestId".into(), <s::RequestId as utoipa::PartialSchema>::schema()));
    }
}

/// A child an account revoke could not revoke, and why.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotRevoked {
    #[schema(value_type = s::RequestId)]
    pub id: RequestId,
    pub reason: String,
}

/// The callback URL and secret, given once to the requester.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackSecret {
    #[schema(value_type = String)]
    pub url: CallbackUrl,
    /// Signs every event (`dcs_...`).
    #[schema(pattern = "^dcs_")]
    pub secret: String,
    /// `deletion-signature`.
    pub signature_header: &'static str,
    /// `deletion-event-id`.
    pub event_id_header: &'static str,
}

/// Where a request's status callbacks stand.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackStatus {
    #[schema(value_type = String)]
    pub url: Option<CallbackUrl>,
    pub events: u32,
    pub delivered: u32,
    pub given_up: u32,
    pub pending: u32,
    pub attempts: u32,
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub next_attempt_at: Option<String>,
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub last_attempt_at: Option<String>,
    #[schema(required)]
    pub last_error: Option<String>,
}

impl CallbackStatus {
    pub fn of(r: &DeletionRequest, state: Option<&CallbackState>) -> Self {
        let events = r.history.len() as u32;
        let delivered = state.map_or(0, |s| s.delivered);
        let given_up = state.map_or(0, |s| s.given_up);
        CallbackStatus {
            url: r.callback.clone(),
            events,
            delivered: delivered.saturating_sub(given_up),
            given_up,
            pending: events.saturating_sub(delivered),
            attempts: state.map_or(0, |s| s.attempts),
            next_attempt_at: state.and_then(|s| s.next_attempt_at).map(ts),
            last_attempt_at: state.and_then(|s| s.last_attempt_at).map(ts),
            last_error: state.and_then(|s| s.last_error.clone()),
        }
    }
}

/// A deletion request: as stored (lists, create and revoke answers) or
/// with its progress and children (its status view).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeletionRequest)]
pub struct RequestBody {
    #[schema(value_type = s::RequestId)]
    pub id: RequestId,
    #[schema(value_type = s::Kind)]
    pub kind: &'static str,
    pub scope: ScopeView,
    #[schema(value_type = s::Status)]
    pub status: Status,
    pub revocable: bool,
    #[schema(required)]
    pub reason: Option<String>,
    pub requested_by: String,
    #[schema(value_type = s::Timestamp)]
    pub created_at: String,
    #[schema(value_type = s::Timestamp)]
    pub grace_ends_at: String,
    #[schema(value_type = s::Timestamp)]
    pub deadline: String,
    /// Whole days to the deadline (frozen while on hold); null once final.
    #[schema(required, minimum = 0)]
    pub days_left: Option<i64>,
    pub deadline_paused: bool,
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub held_since: Option<String>,
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub purge_started_at: Option<String>,
    pub attempts: u32,
    #[schema(required)]
    pub failure: Option<String>,
    pub history: Vec<HistoryEntry>,
    #[schema(value_type = Option<String>, required)]
    pub callback_url: Option<CallbackUrl>,
    #[schema(value_type = Option<s::Receipt>, required)]
    pub receipt: Option<Receipt>,
    pub links: RequestLinks,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = s::RequestId, required = false)]
    pub parent: Option<RequestId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub children: Option<Vec<ChildEntry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = s::Progress, required = false)]
    pub progress: Option<Progress>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub not_revoked: Option<Vec<NotRevoked>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub callback: Option<CallbackSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub callbacks: Option<CallbackStatus>,
}

impl RequestBody {
    /// A request as stored.
    pub fn of(r: &DeletionRequest, now: DateTime<Utc>) -> Self {
        // On hold, the deadline's clock stands still where the hold began.
        let days_left = (r.deadline - r.held_since.unwrap_or(now)).num_days().max(0);
        RequestBody {
            id: r.id.clone(),
            kind: r.scope.kind(),
            scope: ScopeView::of(&r.scope),
            status: r.status,
            revocable: r.revocable(now),
            reason: r.reason.clone(),
            requested_by: r.requested_by.clone(),
            created_at: ts(r.created_at),
            grace_ends_at: ts(r.grace_ends_at),
            deadline: ts(r.deadline),
            days_left: (!r.status.is_terminal()).then_some(days_left),
            deadline_paused: r.status == Status::OnHold,
            held_since: r.held_since.map(ts),
            purge_started_at: r.purge_started_at.map(ts),
            attempts: r.attempts,
            failure: r.failure.clone(),
            history: r.history.iter().map(HistoryEntry::of).collect(),
            callback_url: r.callback.clone(),
            receipt: r.receipt.clone(),
            links: RequestLinks {
                this: format!("/v1/deletions/{}", r.id),
                plan: format!("/v1/deletions/{}/plan", r.id),
            },
            parent: r.parent.clone(),
            children: (!r.children.is_empty()).then(|| {
                r.children
                    .iter()
                    .cloned()
                    .map(|id| ChildEntry::Id(ChildId(id)))
                    .collect()
            }),
            progress: None,
            not_revoked: None,
            callback: None,
            callbacks: None,
        }
    }

    /// A request with its progress and, for an account request, its children.
    pub fn view(v: &RequestView) -> Self {
        let mut out = RequestBody::of(&v.request, v.now);
        out.status = v.status;
        out.progress = Some(v.progress.clone());
        if !v.children.is_empty() {
            out.children = Some(
                v.children
                    .iter()
                    .map(|c| ChildEntry::View(Box::new(child(c))))
                    .collect(),
            );
        }
        out
    }

    /// A revoke's answer: the request, and any child that could not be revoked.
    pub fn revoked(r: &Revoked, now: DateTime<Utc>) -> Self {
        let mut out = RequestBody::of(&r.request, now);
        if !r.kept.is_empty() {
            out.not_revoked = Some(
                r.kept
                    .iter()
                    .map(|(id, why)| NotRevoked {
                        id: id.clone(),
                        reason: why.to_string(),
                    })
                    .collect(),
            );
        }
        out
    }
}

fn child(c: &Child) -> ChildView {
    ChildView {
        id: c.id.clone(),
        kind: c.scope.kind(),
        scope: ScopeView::of(&c.scope),
        status: c.status,
        grace_ends_at: ts(c.grace_ends_at),
    }
}

/// A dry run's answer: what would be deleted, and nothing written.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRun {
    /// Always true.
    pub dry_run: bool,
    #[schema(value_type = s::Kind)]
    pub kind: &'static str,
    pub scope: ScopeView,
    #[schema(value_type = s::Plan)]
    pub plan: Plan,
}

/// A create's answer: the request, or with `dry_run=true` the plan.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CreatedOrDryRun {
    Request(Box<RequestBody>),
    DryRun(Box<DryRun>),
}

/// A request's plan, counted now.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionPlan {
    #[schema(value_type = s::RequestId)]
    pub request_id: RequestId,
    #[schema(value_type = s::Kind)]
    pub kind: &'static str,
    #[schema(value_type = s::Plan)]
    pub plan: Plan,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageLinks {
    /// This listing's next page; null on the last.
    #[schema(required)]
    pub next: Option<String>,
}

macro_rules! page {
    ($(#[$doc:meta])* $name:ident of $item:ty) => {
        $(#[$doc])*
        #[derive(Serialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub items: Vec<$item>,
            #[schema(required)]
            pub next_cursor: Option<String>,
            pub links: PageLinks,
        }
    };
}

page!(
    /// A page of deletion requests, newest first.
    DeletionPage of RequestBody
);
page!(
    /// A page of regulations, newest first.
    RegulationPage of RegulationBody
);

/// What a regulation sets on the suppression list, and when it did.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressionSet {
    /// `SUPPRESSED` or `UNSUPPRESSED`.
    #[schema(pattern = "^(SUPPRESSED|UNSUPPRESSED)$")]
    pub sets: &'static str,
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub applied_at: Option<String>,
}

/// What a regulation's rewrite did, in all its stores.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegulationTotals {
    pub objects_scanned: u64,
    pub objects_rewritten: u64,
    pub versions_deleted: u64,
    pub events_removed: u64,
    pub malformed_lines: u64,
    pub objects_failed: u64,
    pub bytes_scanned: u64,
}

impl RegulationTotals {
    fn of(c: &RewriteCounts) -> Self {
        RegulationTotals {
            objects_scanned: c.objects_scanned,
            objects_rewritten: c.objects_rewritten,
            versions_deleted: c.versions_deleted,
            events_removed: c.events_removed,
            malformed_lines: c.malformed_lines,
            objects_failed: c.objects_failed,
            bytes_scanned: c.bytes_scanned,
        }
    }
}

/// What a regulation's rewrite did in one store's prefix.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegulationStore {
    pub objects_scanned: u64,
    pub objects_rewritten: u64,
    pub versions_deleted: u64,
    pub events_removed: u64,
    pub malformed_lines: u64,
    pub objects_failed: u64,
    pub bytes_scanned: u64,
    pub store: String,
    pub bucket: String,
    pub prefix: String,
    #[schema(value_type = s::RegulationStatus)]
    pub status: RegulationStatus,
    pub errors: Vec<String>,
}

/// One entry of a regulation's history, in its own terms.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegulationHistoryEntry {
    #[schema(value_type = s::RegulationStatus)]
    pub status: RegulationStatus,
    #[schema(value_type = s::Timestamp)]
    pub at: String,
    pub by: String,
    #[schema(required)]
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfLink {
    #[serde(rename = "self")]
    pub this: String,
}

/// A regulation: its status in the regulations' own terms and, per store,
/// what its rewrite did.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Regulation)]
pub struct RegulationBody {
    #[schema(value_type = s::RequestId)]
    pub id: RequestId,
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    #[serde(rename = "type")]
    #[schema(value_type = s::RegulationType)]
    pub regulation: RegulationType,
    /// What kind of ids the subjects are: `USER_ID`, `ANONYMOUS_ID` or an identifier the data map declares.
    #[schema(pattern = "^[A-Z][A-Z0-9_]{0,31}$")]
    pub subject_type: String,
    /// The one source it is scoped to (its archive and suppression list); null: the whole workspace.
    #[schema(value_type = Option<s::Id>, required)]
    pub source: Option<String>,
    #[schema(value_type = u64)]
    pub subject_count: usize,
    #[schema(value_type = s::RegulationStatus)]
    pub status: RegulationStatus,
    pub requested_by: String,
    #[schema(value_type = s::Timestamp)]
    pub created_at: String,
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub finished_at: Option<String>,
    #[schema(value_type = s::Timestamp)]
    pub deadline: String,
    /// When the subject made the request, as the caller said (the deadline counts from it).
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub submitted_at: Option<String>,
    /// When the subjects' raw ids left the ledger (on completion; only their keyed digests stay).
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub subject_ids_forgotten_at: Option<String>,
    #[schema(required)]
    pub suppression: Option<SuppressionSet>,
    pub stores: Vec<RegulationStore>,
    pub totals: RegulationTotals,
    #[schema(required)]
    pub failure: Option<String>,
    pub attempts: u32,
    pub history: Vec<RegulationHistoryEntry>,
    #[schema(value_type = Option<String>, required)]
    pub callback_url: Option<CallbackUrl>,
    /// Once finished: the signed receipt (per store the objects rewritten, versions deleted, events
    /// removed and objects failed; the subject set's digest in its scope), checked by
    /// `POST /v1/receipts:verify`.
    #[schema(value_type = Option<s::Receipt>, required)]
    pub receipt: Option<Receipt>,
    pub links: SelfLink,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub callback: Option<CallbackSecret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false, nullable = false)]
    pub callbacks: Option<CallbackStatus>,
}

/// Per data-map prefix: what was rewritten, and whether it is done (from
/// the live shards when given, else from the receipt of a finished one).
fn regulation_stores(r: &DeletionRequest, shards: Option<&[Shard]>) -> Vec<(PrefixReceipt, bool)> {
    match (shards, &r.receipt) {
        (Some(shards), _) if !shards.is_empty() => roots(shards)
            .into_iter()
            .map(|p| {
                let done = shards
                    .iter()
                    .filter(|s| s.bucket == p.bucket && s.root() == p.prefix)
                    .all(|s| s.done);
                (p, done)
            })
            .collect(),
        (_, Some(receipt)) => receipt.prefixes.iter().map(|p| (p.clone(), true)).collect(),
        _ => Vec::new(),
    }
}

fn store_status(c: &RewriteCounts, done: bool, status: Status) -> RegulationStatus {
    match (done, status) {
        (true, _) if c.objects_failed > 0 => RegulationStatus::PartialSuccess,
        (true, _) => RegulationStatus::Finished,
        (false, Status::Failed) => RegulationStatus::Failed,
        (false, Status::OnHold) => RegulationStatus::OnHold,
        (false, Status::Scheduled) => RegulationStatus::Initialized,
        (false, _) => RegulationStatus::Running,
    }
}

/// In the regulations' terms PURGING and VERIFYING are both RUNNING: one
/// entry for the two.
fn regulation_history(r: &DeletionRequest, failed: u64) -> Vec<RegulationHistoryEntry> {
    let mut history = Vec::new();
    let mut last = None;
    for t in &r.history {
        let shown = match t.status {
            Status::Completed => RegulationStatus::from_request(t.status, failed),
            s => RegulationStatus::from_request(s, 0),
        };
        if last != Some(shown) {
            history.push(RegulationHistoryEntry {
                status: shown,
                at: ts(t.at),
                by: t.by.clone(),
                note: t.note.clone(),
            });
            last = Some(shown);
        }
    }
    history
}

impl RegulationBody {
    /// `None` when `r` is not a regulation.
    pub fn of(r: &DeletionRequest, shards: Option<&[Shard]>) -> Option<Self> {
        let Scope::Regulation {
            workspace,
            regulation,
            subject_count,
            subject_type,
            source,
            ..
        } = &r.scope
        else {
            return None;
        };
        let stores = regulation_stores(r, shards);
        let counts = |p: &PrefixReceipt| p.rewritten.clone().unwrap_or_default();
        let mut totals = RewriteCounts::default();
        for (p, _) in &stores {
            totals.add(&counts(p));
        }
        let per_store = stores
            .iter()
            .map(|(p, done)| {
                let c = counts(p);
                RegulationStore {
                    objects_scanned: c.objects_scanned,
                    objects_rewritten: c.objects_rewritten,
                    versions_deleted: c.versions_deleted,
                    events_removed: c.events_removed,
                    malformed_lines: c.malformed_lines,
                    objects_failed: c.objects_failed,
                    bytes_scanned: c.bytes_scanned,
                    store: p.store.clone(),
                    bucket: p.bucket.clone(),
                    prefix: p.prefix.clone(),
                    status: store_status(&c, *done, r.status),
                    errors: c.errors,
                }
            })
            .collect();
        let finished_at = r
            .history
            .iter()
            .rev()
            .find(|t| t.status.is_terminal() || t.status == Status::Failed)
            .map(|t| ts(t.at));
        let suppression = regulation.suppression().map(|state| SuppressionSet {
            sets: if state { "SUPPRESSED" } else { "UNSUPPRESSED" },
            applied_at: r.suppression_applied_at.map(ts),
        });
        Some(RegulationBody {
            id: r.id.clone(),
            workspace: workspace.clone(),
            regulation: *regulation,
            subject_type: subject_type.to_string(),
            source: source.as_ref().map(|s| s.to_string()),
            subject_count: *subject_count,
            status: RegulationStatus::from_request(r.status, totals.objects_failed),
            requested_by: r.requested_by.clone(),
            created_at: ts(r.created_at),
            finished_at,
            deadline: ts(r.deadline),
            submitted_at: r.submitted_at.map(ts),
            subject_ids_forgotten_at: r.subjects_forgotten_at.map(ts),
            suppression,
            stores: per_store,
            totals: RegulationTotals::of(&totals),
            failure: r.failure.clone(),
            attempts: r.attempts,
            history: regulation_history(r, totals.objects_failed),
            callback_url: r.callback.clone(),
            receipt: r.receipt.clone(),
            links: SelfLink {
                this: format!("/v1/regulations/{}", r.id),
            },
            callback: None,
            callbacks: None,
        })
    }
}

/// One user's suppression state.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Suppression)]
pub struct SuppressionBody {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// The source whose list the entry is in; null: the workspace's (blocks every source).
    #[schema(value_type = Option<s::Id>, required)]
    pub source: Option<String>,
    pub suppressed: bool,
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub since: Option<String>,
    #[schema(value_type = Option<s::RequestId>, required)]
    pub regulation_id: Option<String>,
}

impl SuppressionBody {
    pub fn of(workspace: &WorkspaceId, user: &UserId, entry: Option<&deletion_core::ports::Suppression>) -> Self {
        SuppressionBody {
            workspace: workspace.clone(),
            user_id: user.clone(),
            source: entry.and_then(|e| e.source.as_ref()).map(|s| s.to_string()),
            suppressed: entry.is_some_and(|e| e.suppressed),
            since: entry.map(|e| ts(e.since)),
            regulation_id: entry.map(|e| e.regulation.to_string()),
        }
    }
}

/// A regulation that named a subject, as the subject lookup shows it: its
/// status and, once finished, what it did per store.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectRegulation {
    #[schema(value_type = s::RequestId)]
    pub id: RequestId,
    #[serde(rename = "type")]
    #[schema(value_type = s::RegulationType)]
    pub regulation: RegulationType,
    /// The one source it was scoped to; null: the whole workspace.
    #[schema(value_type = Option<s::Id>, required)]
    pub source: Option<String>,
    #[schema(value_type = s::RegulationStatus)]
    pub status: RegulationStatus,
    #[schema(value_type = s::Timestamp)]
    pub created_at: String,
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub finished_at: Option<String>,
    #[schema(value_type = s::Timestamp)]
    pub deadline: String,
    /// Per store, from the signed receipt once finished (empty before: see the regulation).
    pub stores: Vec<RegulationStore>,
    pub totals: RegulationTotals,
    pub links: SelfLink,
}

/// "Was this person deleted?": one subject of a workspace, found by its keyed digest (so the answer
/// holds after the regulations' raw ids are forgotten).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Subject)]
pub struct SubjectBody {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    #[schema(pattern = "^[A-Z][A-Z0-9_]{0,31}$")]
    pub subject_type: String,
    pub subject_id: String,
    /// HMAC-SHA-256 of (workspace, type, id) under the deployment's subject key: what the ledger keeps.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub subject_digest: String,
    /// Whether the workspace's list suppresses the subject (new data blocked in every source); always
    /// false for types other than `USER_ID`.
    pub suppressed: bool,
    /// The subject's entry in the workspace's list (`USER_ID` only), if it has one.
    #[schema(required)]
    pub suppression: Option<SuppressionBody>,
    /// Its entries in the lists of the sources this page's regulations were scoped to.
    pub source_suppressions: Vec<SuppressionBody>,
    /// Whether a regulation of the whole workspace that deletes from every store named the subject and
    /// finished (every store rewritten).
    pub deleted: bool,
    /// When the latest such regulation finished.
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub deleted_at: Option<String>,
    /// The regulations that named the subject, newest first (a page: follow `next_cursor`).
    pub regulations: Vec<SubjectRegulation>,
    #[schema(required)]
    pub next_cursor: Option<String>,
    pub links: PageLinks,
}

impl SubjectRegulation {
    pub fn of(r: &DeletionRequest) -> Option<Self> {
        let body = RegulationBody::of(r, None)?;
        Some(SubjectRegulation {
            id: body.id,
            regulation: body.regulation,
            source: body.source,
            status: body.status,
            created_at: body.created_at,
            finished_at: body.finished_at,
            deadline: body.deadline,
            stores: body.stores,
            totals: body.totals,
            links: body.links,
        })
    }
}

/// A workspace's use of the regulations API against its quotas.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Usage)]
pub struct UsageBody {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    /// The UTC month counted (`2026-12`).
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}$")]
    pub month: String,
    pub regulations: u64,
    pub subjects: u64,
    pub subjects_per_month: u64,
    pub subjects_left: u64,
    #[schema(value_type = s::Timestamp)]
    pub month_resets_at: String,
    pub requests_per_minute: u32,
    pub requests_this_minute: u32,
    #[schema(value_type = s::Timestamp)]
    pub minute_resets_at: String,
    /// Who set the workspace's own quotas, and when; null: the deployment's defaults hold.
    #[schema(required)]
    pub quotas_set_by: Option<String>,
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub quotas_set_at: Option<String>,
}

impl UsageBody {
    pub fn of(workspace: &WorkspaceId, u: &deletion_core::quotas::Usage) -> Self {
        UsageBody {
            workspace: workspace.clone(),
            month: u.month.clone(),
            regulations: u.used.regulations,
            subjects: u.used.subjects,
            subjects_per_month: u.limits.subjects_per_month,
            subjects_left: u.limits.subjects_per_month.saturating_sub(u.used.subjects),
            month_resets_at: ts(u.month_resets_at),
            requests_per_minute: u.limits.requests_per_minute,
            requests_this_minute: u.calls_this_minute,
            minute_resets_at: ts(u.minute_resets_at),
            quotas_set_by: u.custom.as_ref().map(|q| q.set_by.clone()),
            quotas_set_at: u.custom.as_ref().map(|q| ts(q.set_at)),
        }
    }
}

/// A page of a workspace's suppression list.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressionPage {
    pub items: Vec<SuppressionBody>,
    #[schema(required)]
    pub next_cursor: Option<String>,
    pub links: PageLinks,
}

/// One user of a batch check.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressionResult {
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub suppressed: bool,
}

/// The answer to a batch check, in the order asked.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuppressionCheck {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    pub suppressed_count: u64,
    pub results: Vec<SuppressionResult>,
}

impl SuppressionCheck {
    pub fn of(workspace: &WorkspaceId, results: Vec<(UserId, bool)>) -> Self {
        SuppressionCheck {
            workspace: workspace.clone(),
            suppressed_count: results.iter().filter(|(_, s)| *s).count() as u64,
            results: results
                .into_iter()
                .map(|(user_id, suppressed)| SuppressionResult { user_id, suppressed })
                .collect(),
        }
    }
}

/// A legal hold.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Hold)]
pub struct HoldBody {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    pub reason: String,
    pub placed_by: String,
    #[schema(value_type = s::Timestamp)]
    pub since: String,
}

impl HoldReleased {
    pub fn of(h: &Hold, released_by: &str, resumed: Vec<RequestId>) -> Self {
        HoldReleased {
            workspace: h.workspace.clone(),
            reason: h.reason.clone(),
            placed_by: h.placed_by.clone(),
            since: ts(h.since),
            released_by: released_by.to_owned(),
            resumed,
        }
    }
}

impl HoldBody {
    pub fn of(h: &Hold) -> Self {
        HoldBody {
            workspace: h.workspace.clone(),
            reason: h.reason.clone(),
            placed_by: h.placed_by.clone(),
            since: ts(h.since),
        }
    }
}

/// A released hold, and the requests its release resumed.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldReleased {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    pub reason: String,
    pub placed_by: String,
    #[schema(value_type = s::Timestamp)]
    pub since: String,
    pub released_by: String,
    #[schema(value_type = Vec<s::RequestId>)]
    pub resumed: Vec<RequestId>,
}

/// A membership as set.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    #[schema(value_type = s::Id)]
    pub account: AccountId,
    #[schema(value_type = s::Role)]
    pub role: Role,
}

/// A membership removed.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRemoved {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    #[schema(value_type = s::Id)]
    pub account: AccountId,
    /// Always true.
    pub removed: bool,
}

/// One workspace of an account.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipItem {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    #[schema(value_type = s::Role)]
    pub role: Role,
}

/// Every workspace an account belongs to.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Memberships {
    #[schema(value_type = s::Id)]
    pub account: AccountId,
    pub items: Vec<MembershipItem>,
}

impl Memberships {
    pub fn of(account: AccountId, members: &[Membership]) -> Self {
        Memberships {
            account,
            items: members
                .iter()
                .map(|m| MembershipItem {
                    workspace: m.workspace.clone(),
                    role: m.role,
                })
                .collect(),
        }
    }
}

/// Whether a receipt's signature checks out.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptCheck {
    pub valid: bool,
    #[schema(value_type = s::RequestId)]
    pub request_id: RequestId,
    #[schema(required)]
    pub key_id: Option<String>,
    #[schema(required)]
    pub algorithm: Option<String>,
}

/// A retention policy: whole days kept (null: unlimited).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionPolicy)]
pub struct PolicyView {
    /// Days every source not named keeps (null: unlimited).
    #[schema(required, minimum = 1, maximum = 3660)]
    pub default_days: Option<u32>,
    /// Days each named source keeps (null: unlimited).
    #[schema(value_type = s::Windows)]
    pub sources: std::collections::BTreeMap<String, Option<u32>>,
}

impl PolicyView {
    fn of(p: &Policy) -> Self {
        PolicyView {
            default_days: p.default_days,
            sources: p.sources.iter().map(|(s, d)| (s.to_string(), *d)).collect(),
        }
    }
}

/// A change that keeps less than the policy in force: it takes effect when
/// its grace ends, and may be revoked until then.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PendingRetention)]
pub struct PendingView {
    pub policy: PolicyView,
    pub requested_by: String,
    #[schema(value_type = s::Timestamp)]
    pub requested_at: String,
    #[schema(value_type = s::Timestamp)]
    pub effective_at: String,
    /// When the reminder that it takes effect soon fired (null: not yet).
    #[schema(value_type = Option<s::Timestamp>, required)]
    pub reminded_at: Option<String>,
}

/// One recorded change of the policy.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionChange)]
pub struct ChangeView {
    #[schema(value_type = s::Timestamp)]
    pub at: String,
    pub by: String,
    #[schema(value_type = s::RetentionChangeKind)]
    pub kind: ChangeKind,
    /// The default window after the change.
    #[schema(required, minimum = 1, maximum = 3660)]
    pub default_days: Option<u32>,
    /// How many sources the policy named after the change.
    pub sources: usize,
}

/// The last enforcement run over the workspace.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionRun)]
pub struct RunView {
    #[schema(value_type = s::Timestamp)]
    pub at: String,
    #[schema(value_type = s::Day)]
    pub day: NaiveDate,
    /// Days found out of their windows.
    pub days: u64,
    /// Deletion requests it created or found under way (one per day).
    pub request_count: u64,
    /// The first 100 of them.
    #[schema(value_type = Vec<s::RequestId>)]
    pub requests: Vec<RequestId>,
}

/// One day out of its window.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionDay)]
pub struct DayView {
    #[schema(value_type = s::Id)]
    pub source: String,
    #[schema(value_type = s::Day)]
    pub day: NaiveDate,
    pub window_days: u32,
}

/// What a policy deletes once in force: the days, and per store the
/// prefixes with what is under them now.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionPreview)]
pub struct PreviewView {
    pub days: Vec<DayView>,
    #[schema(value_type = s::Plan)]
    pub plan: Plan,
    /// False when a listing or count stopped at its cap.
    pub complete: bool,
}

impl PreviewView {
    pub fn of(p: Preview) -> Self {
        PreviewView {
            days: p
                .days
                .iter()
                .map(|d| DayView {
                    source: d.source.to_string(),
                    day: d.day,
                    window_days: d.window,
                })
                .collect(),
            plan: p.plan,
            complete: p.complete,
        }
    }
}

/// A workspace's retention: the policy in force, a change in grace, the
/// latest changes and the last run.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Retention)]
pub struct RetentionView {
    #[schema(value_type = s::Id)]
    pub workspace: WorkspaceId,
    /// The policy in force (null: everything is kept).
    #[schema(required)]
    pub policy: Option<PolicyView>,
    /// A change waiting for its grace to end (null: none).
    #[schema(required)]
    pub pending: Option<PendingView>,
    /// The latest changes (up to 50), newest first.
    pub changes: Vec<ChangeView>,
    /// Every change ever recorded.
    pub changes_total: u64,
    #[schema(required)]
    pub last_run: Option<RunView>,
    /// The earliest time the next enforcement runs over the workspace (runs are hourly, one a day per workspace).
    #[schema(value_type = s::Timestamp)]
    pub next_run_after: String,
    /// What the change asked deletes once in force (a dry run, or a change put in grace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<PreviewView>,
    /// True on a dry run's answer: nothing was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

impl RetentionView {
    pub fn of(r: &Retention, now: DateTime<Utc>) -> Self {
        let today = now.date_naive();
        let next_run = if r.run_due(today) {
            now
        } else {
            today
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(now, |d| d.and_utc())
        };
        RetentionView {
            workspace: r.workspace.clone(),
            policy: r.policy.as_ref().map(PolicyView::of),
            pending: r.pending.as_ref().map(|p| PendingView {
                policy: PolicyView::of(&p.policy),
                requested_by: p.requested_by.clone(),
                requested_at: ts(p.requested_at),
                effective_at: ts(p.effective_at),
                reminded_at: p.reminded_at.map(ts),
            }),
            changes: r
                .changes
                .iter()
                .rev()
                .map(|c| ChangeView {
                    at: ts(c.at),
                    by: c.by.clone(),
                    kind: c.kind,
                    default_days: c.default_days,
                    sources: c.sources,
                })
                .collect(),
            changes_total: r.changes_total,
            last_run: r.last_run.as_ref().map(|run| RunView {
                at: ts(run.at),
                day: run.day,
                days: run.days,
                request_count: run.request_count,
                requests: run.requests.clone(),
            }),
            next_run_after: ts(next_run),
            preview: None,
            dry_run: None,
        }
    }
}
