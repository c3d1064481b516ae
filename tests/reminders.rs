//! Grace reminders against a real moto server: a day before a deletion
//! becomes irreversible a reminder fires (log and metric), so a deletion
//! nobody meant can still be revoked; it purges nothing.

use chrono::Duration;
use integration_tests::{env, Versioning};

#[tokio::test]
async fn a_reminder_fires_a_day_before_the_grace_ends_and_purges_nothing() {
    let env = env(Versioning::None).await;
    env.put(&env.archive, "acme/web/2024-01-01/x.json.gz").await;
    let created = env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    env.stack.pump_stream().await.unwrap();
    env.clock.advance(Duration::days(3));
    assert!(env.stack.tick().await.unwrap().is_empty(), "nothing due yet");

    env.clock.advance(Duration::days(1) + Duration::seconds(1));
    let fired = env.stack.tick().await.unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        (fired[0].request_id.as_str(), fired[0].outcome.as_str()),
        (id.as_str(), "reminded")
    );
    let detail = fired[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("workspace acme") && detail.contains("ops") && detail.contains("revoke"),
        "{detail}"
    );
    let body = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await.body;
    assert_eq!(
        (body["status"].as_str(), body["revocable"].as_bool()),
        (Some("SCHEDULED"), Some(true))
    );
    assert_eq!(
        env.inventory(&env.archive, "acme/").await.versions.len(),
        1,
        "a reminder purges nothing"
    );
    // Fired once: nothing more until the grace ends.
    assert!(env.stack.tick().await.unwrap().is_empty());
    env.clock.advance(Duration::days(1));
    let fired = env.stack.tick().await.unwrap();
    assert_eq!(fired[0].outcome, "completed", "{fired:?}");
}

#[tokio::test]
async fn a_revoked_deletion_keeps_no_reminder() {
    let env = env(Versioning::None).await;
    let created = env.call("POST", "/v1/workspaces/beta/deletion", None, &[]).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    env.stack.pump_stream().await.unwrap();
    assert_eq!(
        env.call("DELETE", "/v1/workspaces/beta/deletion", None, &[])
            .await
            .status,
        200
    );
    env.stack.pump_stream().await.unwrap();
    env.clock.advance(Duration::days(4) + Duration::seconds(1));
    assert!(
        env.stack.tick().await.unwrap().is_empty(),
        "the revoke removed the reminder too"
    );
    // A reminder delivered anyway (late, or twice) says nothing.
    let event = purge::PurgeEvent {
        request_id: id.clone(),
        retry: false,
        remind: true,
    };
    let late = env.stack.purge.handle(event, "late", None).await.unwrap();
    assert_eq!(late.outcome, "not_needed");
}
