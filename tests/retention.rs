//! Retention against the real wire protocols (the ledger on DynamoDB
//! Local, S3 and Scheduler on moto): a policy with overrides deletes
//! exactly the days out of each window and nothing of other sources or
//! workspaces; a missed day is caught on the next run; a repeated run
//! deletes nothing twice; a shortened window waits its grace and can be
//! revoked; a hold pauses it; bad input writes nothing.

use chrono::{Duration, NaiveDate};
use integration_tests::{env, Env, Versioning};
use serde_json::Value;

fn today(env: &Env) -> NaiveDate {
    use deletion_core::ports::Clock;
    env.clock.now().date_naive()
}

/// `days_ago` as the archive names it.
fn day(env: &Env, days_ago: i64) -> String {
    (today(env) - Duration::days(days_ago)).format("%Y-%m-%d").to_string()
}

/// An object on each of the last `days` days (today included) of each source.
async fn archive(env: &Env, workspace: &str, sources: &[&str], days: i64) {
    for source in sources {
        for ago in 0..days {
            let key = format!("{workspace}/{source}/{}/events.json.gz", day(env, ago));
            env.put(&env.archive, &key).await;
        }
    }
}

/// The days left of a source, oldest first.
async fn days_left(env: &Env, workspace: &str, source: &str) -> Vec<String> {
    let prefix = format!("{workspace}/{source}/");
    let mut days: Vec<String> = env
        .inventory(&env.archive, &prefix)
        .await
        .versions
        .iter()
        .filter_map(|v| v.strip_prefix(&prefix)?.split('/').next().map(str::to_owned))
        .collect();
    days.sort();
    days.dedup();
    days
}

fn ago(env: &Env, range: std::ops::RangeInclusive<i64>) -> Vec<String> {
    let mut days: Vec<String> = range.map(|a| day(env, a)).collect();
    days.sort();
    days
}

async fn put_policy(env: &Env, workspace: &str, body: &str) -> (u16, Value) {
    let path = format!("/v1/workspaces/{workspace}/retention");
    let a = env.call("PUT", &path, Some(body), &[]).await;
    (a.status.as_u16(), a.body)
}

/// One retention run, then the runner until nothing more fires.
async fn enforce(env: &Env) -> deletion_core::retention::RetentionReport {
    let report = env.stack.run_retention().await.expect("retention run");
    env.settle().await;
    report
}

#[tokio::test]
async fn a_policy_with_overrides_deletes_exactly_the_days_out_of_each_window() {
    let env = env(Versioning::None).await;
    archive(&env, "acme", &["web", "ios", "server"], 6).await;
    archive(&env, "acme-corp", &["web"], 6).await;
    let body = r#"{"default_days": 3, "sources": {"web": 2, "ios": null}}"#;

    // Previewed first: nothing written.
    let path = "/v1/workspaces/acme/retention?dry_run=true";
    let dry = env.call("PUT", path, Some(body), &[]).await;
    assert_eq!(dry.status, 200, "{:#}", dry.body);
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(dry.body["policy"], Value::Null, "nothing written");
    let preview_days = dry.body["preview"]["days"].as_array().unwrap().len();
    assert_eq!(preview_days, 3 + 2, "web: 3 days, server: 2, ios: none");
    assert_eq!(dry.body["preview"]["plan"]["totals"]["objects"], 5);

    // A first window deletes data: it waits its grace.
    let (status, set) = put_policy(&env, "acme", body).await;
    assert_eq!(status, 202, "{set:#}");
    assert_eq!(set["pending"]["requested_by"], "ops");
    assert_eq!(set["preview"]["plan"]["totals"]["objects"], 5);
    let report = enforce(&env).await;
    assert_eq!(report.days, 0, "in grace: {report:?}");
    assert_eq!(days_left(&env, "acme", "web").await.len(), 6);

    // Five days on, with five more days written: 11 days of each source
    // of acme (0 to 10 days old), the first 6 of acme-corp's web.
    env.clock.advance(Duration::days(5) + Duration::minutes(1));
    archive(&env, "acme", &["web", "ios", "server"], 6).await;
    let report = enforce(&env).await;
    assert_eq!((report.applied.len(), report.days), (1, 8 + 7), "{report:?}");
    assert_eq!(report.created, 15);
    assert_eq!(
        days_left(&env, "acme", "web").await,
        ago(&env, 0..=2),
        "2 days and today"
    );
    assert_eq!(
        days_left(&env, "acme", "server").await,
        ago(&env, 0..=3),
        "3 days and today"
    );
    assert_eq!(days_left(&env, "acme", "ios").await, ago(&env, 0..=10), "unlimited");
    assert_eq!(
        days_left(&env, "acme-corp", "web").await,
        ago(&env, 5..=10),
        "another workspace"
    );

    let got = env.call("GET", "/v1/workspaces/acme/retention", None, &[]).await;
    assert_eq!(got.status, 200);
    let b = &got.body;
    assert_eq!(b["policy"]["default_days"], 3);
    assert_eq!(b["policy"]["sources"]["ios"], Value::Null);
    assert_eq!(b["pending"], Value::Null);
    assert_eq!(b["last_run"]["request_count"], 15);
    assert_eq!(b["changes"][0]["kind"], "applied");
    assert_eq!(b["changes"][1]["kind"], "scheduled");
    // Each day went through the same request, purge and receipt as one asked.
    let id = b["last_run"]["requests"][0].as_str().unwrap();
    let request = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await.body;
    assert_eq!(request["status"], "COMPLETED", "{request:#}");
    assert_eq!(request["kind"], "source_days");
    assert_eq!(request["requested_by"], "retention");
    assert!(request["receipt"]["signature"].is_object(), "{request:#}");
}

#[tokio::test]
async fn a_repeated_run_deletes_nothing_twice_and_a_missed_day_is_caught_next_time() {
    let env = env(Versioning::All).await;
    archive(&env, "acme", &["web"], 5).await;
    let (status, _) = put_policy(&env, "acme", r#"{"default_days": 2}"#).await;
    assert_eq!(status, 202);
    env.clock.advance(Duration::days(5) + Duration::minutes(1));
    // Five days on: the archive's days are now 5 to 9 days old.
    let first = enforce(&env).await;
    assert_eq!(first.created, 5, "{first:?}");
    assert!(days_left(&env, "acme", "web").await.is_empty());
    let again = enforce(&env).await;
    assert_eq!((again.enforced, again.created), (0, 0), "{again:?}");

    // New days written, then two runs missed: the next run catches both.
    archive(&env, "acme", &["web"], 3).await;
    env.clock.advance(Duration::days(2));
    let later = enforce(&env).await;
    assert_eq!((later.days, later.created), (2, 2), "{later:?}");
    assert_eq!(days_left(&env, "acme", "web").await, ago(&env, 2..=2));
    assert_eq!(
        env.inventory(&env.archive, "acme/web/").await.versions.len(),
        1,
        "every version of a purged day goes"
    );
}

#[tokio::test]
async fn a_shortened_window_waits_its_grace_and_can_be_revoked() {
    let env = env(Versioning::None).await;
    archive(&env, "acme", &["web"], 10).await;
    let (status, _) = put_policy(&env, "acme", r#"{"default_days": 30}"#).await;
    assert_eq!(status, 202, "a first window waits");
    env.clock.advance(Duration::days(5) + Duration::minutes(1));
    enforce(&env).await;
    // Lengthening takes effect at once.
    let (status, longer) = put_policy(&env, "acme", r#"{"default_days": 60}"#).await;
    assert_eq!((status, &longer["policy"]["default_days"]), (200, &Value::from(60)));
    // Shortening waits, and a day before it takes effect the reminder fires.
    let (status, shorter) = put_policy(&env, "acme", r#"{"default_days": 1}"#).await;
    assert_eq!(status, 202, "{shorter:#}");
    assert!(!shorter["preview"]["days"].as_array().unwrap().is_empty());
    env.clock.advance(Duration::days(4) + Duration::hours(1));
    let report = enforce(&env).await;
    assert_eq!((report.reminded.len(), report.days), (1, 0), "{report:?}");
    let revoked = env
        .call("DELETE", "/v1/workspaces/acme/retention/pending", None, &[])
        .await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    assert_eq!(revoked.body["policy"]["default_days"], 60);
    env.clock.advance(Duration::days(2));
    enforce(&env).await;
    assert_eq!(
        days_left(&env, "acme", "web").await.len(),
        10,
        "revoked: nothing deleted"
    );
    env.call("DELETE", "/v1/workspaces/acme/retention/pending", None, &[])
        .await
        .problem(404);
    let removed = env.call("DELETE", "/v1/workspaces/acme/retention", None, &[]).await;
    assert_eq!((removed.status.as_u16(), &removed.body["policy"]), (200, &Value::Null));
}

#[tokio::test]
async fn a_hold_pauses_retention_deletions_until_its_release() {
    let env = env(Versioning::None).await;
    archive(&env, "acme", &["web"], 5).await;
    let a = env
        .call(
            "PUT",
            "/v1/workspaces/acme/hold",
            Some(r#"{"reason": "litigation"}"#),
            &[],
        )
        .await;
    assert_eq!(a.status, 200);
    put_policy(&env, "acme", r#"{"default_days": 2}"#).await;
    env.clock.advance(Duration::days(5) + Duration::minutes(1));
    let report = enforce(&env).await;
    assert_eq!(report.created, 5, "{report:?}");
    assert_eq!(days_left(&env, "acme", "web").await.len(), 5, "held: nothing purged");
    let released = env.call("DELETE", "/v1/workspaces/acme/hold", None, &[]).await;
    assert_eq!(released.status, 200, "{:#}", released.body);
    env.settle().await;
    assert!(days_left(&env, "acme", "web").await.is_empty());
}

#[tokio::test]
async fn bad_policies_are_refused_with_a_problem_and_write_nothing() {
    let env = env(Versioning::None).await;
    for body in [
        r#"{"default_days": 0}"#,
        r#"{"default_days": 3661}"#,
        r#"{"default_days": 1.5}"#,
        r#"{"default_days": -1}"#,
        r#"{"default_days": "30"}"#,
        r#"{"sources": {"a/b": 30}}"#,
        r#"{"sources": {"web": 0}}"#,
        r#"{"default_days": 30, "extra": 1}"#,
        r#"[]"#,
    ] {
        let (status, problem) = put_policy(&env, "acme", body).await;
        assert_eq!(status, 400, "{body}: {problem:#}");
        assert!(problem["detail"].as_str().is_some(), "{problem:#}");
    }
    let many: Vec<String> = (0..501).map(|i| format!("\"s{i}\": 30")).collect();
    let (status, _) = put_policy(&env, "acme", &format!("{{\"sources\": {{{}}}}}", many.join(","))).await;
    assert_eq!(status, 400);
    let got = env.call("GET", "/v1/workspaces/acme/retention", None, &[]).await;
    assert_eq!(
        (got.body["policy"].clone(), got.body["changes_total"].clone()),
        (Value::Null, Value::from(0))
    );
    assert!(
        !env.ledger_keys().await.iter().any(|(pk, _)| pk == "RETENTION"),
        "nothing written"
    );

    // 500 sources of the longest ids, a change in grace beside them: one
    // record, far below DynamoDB's item limit.
    let long: Vec<String> = (0..500).map(|i| format!("\"{i:0>64}\": {}", 1 + i % 3000)).collect();
    let body = format!("{{\"default_days\": 30, \"sources\": {{{}}}}}", long.join(","));
    let (status, _) = put_policy(&env, "acme", &body).await;
    assert_eq!(status, 202);
    let (status, _) = put_policy(
        &env,
        "acme",
        &body.replace("\"default_days\": 30", "\"default_days\": 20"),
    )
    .await;
    assert_eq!(status, 202);
}

#[tokio::test]
async fn only_admins_of_the_workspace_and_operators_see_or_change_its_retention() {
    let env = env(Versioning::None).await;
    env.member("acme", "ann", "admin").await;
    env.member("acme", "bob", "member").await;
    let path = "/v1/workspaces/acme/retention";
    let body = Some(r#"{"default_days": 30}"#);
    let ann = env.call_as(Some(("ann", &[])), "PUT", path, body, &[]).await;
    assert_eq!(ann.status, 202, "{:#}", ann.body);
    for (method, b) in [("GET", None), ("PUT", body), ("DELETE", None)] {
        env.call_as(Some(("bob", &[])), method, path, b, &[]).await.problem(403);
        env.call_as(
            Some(("reader", &[deletion_core::access::SUPPRESSION_READ_SCOPE])),
            method,
            path,
            b,
            &[],
        )
        .await
        .problem(403);
        env.call_as(None, method, path, b, &[]).await.problem(401);
    }
    let got = env.call_as(Some(("ann", &[])), "GET", path, None, &[]).await;
    assert_eq!(got.body["pending"]["requested_by"], "ann");
}
