//! The JSON the API answers with.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use deletion_core::model::{DeletionRequest, Scope};
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
    let days_left = (r.deadline - now).num_days().max(0);
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
        "purge_started_at": r.purge_started_at.map(ts),
        "attempts": r.attempts,
        "failure": r.failure,
        "history": history,
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
