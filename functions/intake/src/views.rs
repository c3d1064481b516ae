//! The JSON the API answers with.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use deletion_core::model::{DeletionRequest, Progress};
use deletion_core::requests::RequestView;

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn ts_opt(t: Option<DateTime<Utc>>) -> Value {
    t.map(ts).map(Value::String).unwrap_or(Value::Null)
}

/// A request, with its progress when known.
pub fn request(r: &DeletionRequest, progress: Option<&Progress>, now: DateTime<Utc>) -> Value {
    let history: Vec<Value> = r
        .history
        .iter()
        .map(|t| json!({"status": t.status, "at": ts(t.at), "by": t.by, "note": t.note}))
        .collect();
    let mut scope = serde_json::to_value(&r.scope).unwrap_or(Value::Null);
    if let Some(obj) = scope.as_object_mut() {
        obj.remove("kind");
    }
    let mut v = json!({
        "id": r.id,
        "kind": r.scope.kind(),
        "scope": scope,
        "status": r.status,
        "revocable": r.revocable(now),
        "reason": r.reason,
        "requested_by": r.requested_by,
        "created_at": ts(r.created_at),
        "grace_ends_at": ts(r.grace_ends_at),
        "deadline": ts(r.deadline),
        "purge_started_at": ts_opt(r.purge_started_at),
        "attempts": r.attempts,
        "failure": r.failure,
        "history": history,
        "receipt": r.receipt,
        "links": {"self": format!("/v1/deletions/{}", r.id)},
    });
    if let (Some(p), Some(obj)) = (progress, v.as_object_mut()) {
        obj.insert(
            "progress".into(),
            serde_json::to_value(p).unwrap_or(Value::Null),
        );
    }
    v
}

pub fn view(v: &RequestView) -> Value {
    request(&v.request, Some(&v.progress), v.now)
}
