//! The JSON the API answers with.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use deletion_core::callbacks::CallbackState;
use deletion_core::ids::WorkspaceId;
use deletion_core::model::{DeletionRequest, PrefixReceipt, Scope, Shard, Status};
use deletion_core::ports::{Hold, Suppression};
use deletion_core::purge::roots;
use deletion_core::regulation::{RegulationStatus, RewriteCounts, UserId};
use deletion_core::requests::{RequestView, Revoked};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A scope's fields, without its kind (shown beside it).
pub fn scope(scope: &Scope) -> Value {
    let mut v = serde_json::to_value(scope).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("kind");
    }
    v
}

/// A request as stored (lists, create and revoke answers).
pub fn request(r: &DeletionRequest, now: DateTime<Utc>) -> Value {
    let history: Vec<Value> = r
        .history
        .iter()
        .map(|t| json!({"status": t.status, "at": ts(t.at), "by": t.by, "note": t.note}))
        .collect();
    // On hold, the deadline's clock stands still where the hold began.
    let days_left = (r.deadline - r.held_since.unwrap_or(now)).num_days().max(0);
    let mut v = json!({
        "id": r.id,
        "kind": r.scope.kind(),
        "scope": scope(&r.scope),
        "status": r.status,
        "revocable": r.revocable(now),
        "reason": r.reason,
        "requested_by": r.requested_by,
        "created_at": ts(r.created_at),
        "grace_ends_at": ts(r.grace_ends_at),
        "deadline": ts(r.deadline),
        "days_left": if r.status.is_terminal() { Value::Null } else { json!(days_left) },
        "deadline_paused": r.status == Status::OnHold,
        "held_since": r.held_since.map(ts),
        "purge_started_at": r.purge_started_at.map(ts),
        "attempts": r.attempts,
        "failure": r.failure,
        "history": history,
        "callback_url": r.callback,
        "receipt": r.receipt,
        "links": {"self": format!("/v1/deletions/{}", r.id), "plan": format!("/v1/deletions/{}/plan", r.id)},
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(parent) = &r.parent {
            obj.insert("parent".into(), json!(parent));
        }
        if !r.children.is_empty() {
            obj.insert("children".into(), json!(r.children));
        }
    }
    v
}

/// A request with its progress and, for an account request, its children.
pub fn view(v: &RequestView) -> Value {
    let mut out = request(&v.request, v.now);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("status".into(), json!(v.status));
        obj.insert(
            "progress".into(),
            serde_json::to_value(v.progress).unwrap_or(Value::Null),
        );
        if !v.children.is_empty() {
            let children: Vec<Value> = v
                .children
                .iter()
                .map(|c| {
                    json!({"id": c.id, "kind": c.scope.kind(), "scope": scope(&c.scope),
                           "status": c.status, "grace_ends_at": ts(c.grace_ends_at)})
                })
                .collect();
            obj.insert("children".into(), json!(children));
        }
    }
    out
}

/// A revoke's answer: the request, and any child that could not be revoked.
pub fn revoked(r: &Revoked, now: DateTime<Utc>) -> Value {
    let mut out = request(&r.request, now);
    if let (Some(obj), false) = (out.as_object_mut(), r.kept.is_empty()) {
        let kept: Vec<Value> = r
            .kept
            .iter()
            .map(|(id, why)| json!({"id": id, "reason": why.to_string()}))
            .collect();
        obj.insert("not_revoked".into(), json!(kept));
    }
    out
}

fn counts_json(c: &RewriteCounts) -> Value {
    json!({
        "objects_scanned": c.objects_scanned,
        "objects_rewritten": c.objects_rewritten,
        "versions_deleted": c.versions_deleted,
        "events_removed": c.events_removed,
        "malformed_lines": c.malformed_lines,
        "objects_failed": c.objects_failed,
        "bytes_scanned": c.bytes_scanned,
    })
}

/// A regulation: its status in the regulations' own terms and, per store,
/// what its rewrite did (from the live shards when given, else from the
/// receipt of a finished one).
pub fn regulation(r: &DeletionRequest, shards: Option<&[Shard]>, now: DateTime<Utc>) -> Value {
    let Scope::Regulation {
        workspace,
        regulation,
        subject_count,
        ..
    } = &r.scope
    else {
        return request(r, now);
    };
    // Per data-map prefix: what was rewritten, and whether it is done.
    let stores: Vec<(PrefixReceipt, bool)> = match (shards, &r.receipt) {
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
    };
    let counts = |p: &PrefixReceipt| p.rewritten.clone().unwrap_or_default();
    let mut totals = RewriteCounts::default();
    for (p, _) in &stores {
        totals.add(&counts(p));
    }
    let status = RegulationStatus::from_request(r.status, totals.objects_failed);
    let store_status = |c: &RewriteCounts, done: bool| match (done, r.status) {
        (true, _) if c.objects_failed > 0 => RegulationStatus::PartialSuccess,
        (true, _) => RegulationStatus::Finished,
        (false, Status::Failed) => RegulationStatus::Failed,
        (false, Status::OnHold) => RegulationStatus::OnHold,
        (false, Status::Scheduled) => RegulationStatus::Initialized,
        (false, _) => RegulationStatus::Running,
    };
    let per_store: Vec<Value> = stores
        .iter()
        .map(|(p, done)| {
            let c = counts(p);
            let mut v = counts_json(&c);
            if let Some(obj) = v.as_object_mut() {
                obj.insert("store".into(), json!(p.store));
                obj.insert("bucket".into(), json!(p.bucket));
                obj.insert("prefix".into(), json!(p.prefix));
                obj.insert("status".into(), json!(store_status(&c, *done)));
                obj.insert("errors".into(), json!(c.errors));
            }
            v
        })
        .collect();
    // In the regulations' terms PURGING and VERIFYING are both RUNNING:
    // one entry for the two.
    let mut history: Vec<Value> = Vec::new();
    let mut last = None;
    for t in &r.history {
        let shown = match (t.status, totals.objects_failed) {
            (Status::Completed, failed) => RegulationStatus::from_request(t.status, failed),
            (s, _) => RegulationStatus::from_request(s, 0),
        };
        if last != Some(shown) {
            history.push(json!({"status": shown, "at": ts(t.at), "by": t.by, "note": t.note}));
            last = Some(shown);
        }
    }
    let finished_at = r
        .history
        .iter()
        .rev()
        .find(|t| t.status.is_terminal() || t.status == Status::Failed)
        .map(|t| ts(t.at));
    let suppression = match regulation.suppression() {
        Some(state) => json!({
            "sets": if state { "SUPPRESSED" } else { "UNSUPPRESSED" },
            "applied_at": r.suppression_applied_at.map(ts),
        }),
        None => Value::Null,
    };
    json!({
        "id": r.id,
        "workspace": workspace,
        "type": regulation,
        "subject_type": "USER_ID",
        "subject_count": subject_count,
        "status": status,
        "requested_by": r.requested_by,
        "created_at": ts(r.created_at),
        "finished_at": finished_at,
        "deadline": ts(r.deadline),
        "suppression": suppression,
        "stores": per_store,
        "totals": counts_json(&totals),
        "failure": r.failure,
        "attempts": r.attempts,
        "history": history,
        "callback_url": r.callback,
        "links": {"self": format!("/v1/regulations/{}", r.id)},
    })
}

/// One user's suppression state.
pub fn suppression(workspace: &WorkspaceId, user: &UserId, entry: Option<&Suppression>) -> Value {
    json!({
        "workspace": workspace,
        "user_id": user,
        "suppressed": entry.is_some_and(|e| e.suppressed),
        "since": entry.map(|e| ts(e.since)),
        "regulation_id": entry.map(|e| e.regulation.to_string()),
    })
}

/// The answer to a batch check, in the order asked.
pub fn suppression_check(workspace: &WorkspaceId, ids: &[UserId], found: &[Suppression]) -> Value {
    let results: Vec<Value> = ids
        .iter()
        .map(|id| {
            let suppressed = found.iter().any(|s| &s.user_id == id && s.suppressed);
            json!({"user_id": id, "suppressed": suppressed})
        })
        .collect();
    let count = results.iter().filter(|r| r["suppressed"] == json!(true)).count();
    json!({"workspace": workspace, "suppressed_count": count, "results": results})
}

/// A legal hold.
pub fn hold(h: &Hold) -> Value {
    json!({"workspace": h.workspace, "reason": h.reason, "placed_by": h.placed_by, "since": ts(h.since)})
}

/// Where a request's status callbacks stand.
pub fn callbacks(r: &DeletionRequest, state: Option<&CallbackState>) -> Value {
    let events = r.history.len() as u32;
    let delivered = state.map_or(0, |s| s.delivered);
    json!({
        "url": r.callback,
        "events": events,
        "delivered": delivered.saturating_sub(state.map_or(0, |s| s.given_up)),
        "given_up": state.map_or(0, |s| s.given_up),
        "pending": events.saturating_sub(delivered),
        "attempts": state.map_or(0, |s| s.attempts),
        "next_attempt_at": state.and_then(|s| s.next_attempt_at).map(ts),
        "last_attempt_at": state.and_then(|s| s.last_attempt_at).map(ts),
        "last_error": state.and_then(|s| s.last_error.clone()),
    })
}
