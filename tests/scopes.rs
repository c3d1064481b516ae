//! Every deletion scope through the same ledger, grace and purge, against
//! a real moto server: space, source days, account, complete purge, and
//! dry-run plans.

use chrono::Duration;
use deletion_core::ids::RequestId;
use integration_tests::{env, Env, Versioning};
use serde_json::{json, Value};

fn id_of(body: &Value) -> RequestId {
    RequestId::parse(body["id"].as_str().expect("id in body")).expect("request id")
}

async fn get(env: &Env, id: &RequestId) -> Value {
    let a = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    a.body
}

async fn keys(env: &Env, bucket: &str, prefix: &str) -> Vec<String> {
    let mut k = env.inventory(bucket, prefix).await.versions;
    k.sort();
    k
}

#[tokio::test]
async fn a_space_deletion_purges_that_space_and_nothing_else_of_the_workspace() {
    let env = env(Versioning::Profiles).await;
    for key in [
        "acme/spaces/main/profiles.json",
        "acme/spaces/main/audiences/a1.json",
        "acme/spaces/main-eu/profiles.json",
        "acme/spaces/other/profiles.json",
    ] {
        env.put(&env.profiles, key).await;
    }
    env.put(&env.archive, "acme/web/2024-01-01/x.json.gz").await;

    let a = env
        .call("POST", "/v1/workspaces/acme/spaces/main/deletion", None, &[])
        .await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    assert_eq!(a.body["kind"], "space");
    assert_eq!(a.body["scope"], json!({"workspace": "acme", "space": "main"}));
    let id = id_of(&a.body);
    // In grace it can be revoked like any other; here it is left to run.
    assert_eq!(a.body["revocable"], true);
    env.stack.pump_stream().await.unwrap();
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    env.settle().await;

    let body = get(&env, &id).await;
    assert_eq!(body["status"], "COMPLETED", "{body:#}");
    assert_eq!(body["receipt"]["prefixes"][0]["prefix"], "acme/spaces/main/");
    assert_eq!(body["receipt"]["prefixes"].as_array().unwrap().len(), 1);
    assert_eq!(
        keys(&env, &env.profiles, "acme/").await,
        ["acme/spaces/main-eu/profiles.json", "acme/spaces/other/profiles.json"]
    );
    assert_eq!(keys(&env, &env.archive, "acme/").await.len(), 1);
}

#[tokio::test]
async fn source_days_delete_exactly_those_days_of_that_source() {
    let env = env(Versioning::None).await;
    let kept = [
        "acme/web/2024-01-30/part-0.json.gz",
        "acme/web/2024-01-3/part-0.json.gz",
        "acme/web/2024-02-010/part-0.json.gz",
        "acme/web/2024-02-02/part-0.json.gz",
        "acme/ios/2024-01-31/part-0.json.gz",
        "acme/web-2/2024-01-31/part-0.json.gz",
        "acme-corp/web/2024-01-31/part-0.json.gz",
    ];
    let gone = [
        "acme/web/2024-01-31/part-0.json.gz",
        "acme/web/2024-01-31/part-1.json.gz",
        "acme/web/2024-02-01/part-0.json.gz",
    ];
    for key in kept.iter().chain(gone.iter()) {
        env.put(&env.archive, key).await;
    }
    let body = r#"{"from": "2024-01-31", "to": "2024-02-01", "reason": "bad import"}"#;
    let a = env
        .call("POST", "/v1/workspaces/acme/sources/web/deletions", Some(body), &[])
        .await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    assert_eq!(a.body["kind"], "source_days");
    assert_eq!(
        a.body["scope"],
        json!({"workspace": "acme", "source": "web", "from": "2024-01-31", "to": "2024-02-01"})
    );
    // No grace for a source's days: the purge starts at once.
    assert_eq!(a.body["grace_ends_at"], a.body["created_at"]);
    assert_eq!(a.body["revocable"], false);
    let id = id_of(&a.body);
    env.settle().await;

    let status = get(&env, &id).await;
    assert_eq!(status["status"], "COMPLETED", "{status:#}");
    assert_eq!(status["progress"]["prefixes_total"], 2);
    assert_eq!(status["receipt"]["totals"]["objects"], 3);
    let mut expected: Vec<String> = kept.iter().map(|k| k.to_string()).collect();
    expected.sort();
    let mut left = keys(&env, &env.archive, "acme").await;
    left.retain(|k| !k.is_empty());
    assert_eq!(left, expected);
}

#[tokio::test]
async fn source_days_refuse_anything_finer_than_a_day_and_bad_ranges() {
    let env = env(Versioning::None).await;
    let today = chrono::Utc::now().date_naive();
    let tomorrow = (today + Duration::days(1)).format("%Y-%m-%d").to_string();
    let cases = [
        (
            r#"{"from": "2024-01-31T00:00:00Z", "to": "2024-02-01"}"#.to_owned(),
            "whole days",
        ),
        (
            r#"{"from": "2024-01-31", "to": "2024-02-01 12:00"}"#.to_owned(),
            "whole days",
        ),
        (r#"{"from": "1706659200", "to": "2024-02-01"}"#.to_owned(), "YYYY-MM-DD"),
        (
            r#"{"from": "2024-02-30", "to": "2024-03-01"}"#.to_owned(),
            "no such day",
        ),
        (r#"{"from": "2024-02-02", "to": "2024-02-01"}"#.to_owned(), "before"),
        (format!(r#"{{"from": "2024-01-01", "to": "{tomorrow}"}}"#), "future"),
        (
            r#"{"from": "2010-01-01", "to": "2024-01-01"}"#.to_owned(),
            "at most 3660",
        ),
        (r#"{"from": "2024-01-01"}"#.to_owned(), "missing field"),
        (
            r#"{"from": "2024-01-01", "to": "2024-01-02", "hour": 3}"#.to_owned(),
            "unknown field",
        ),
    ];
    for (body, needle) in &cases {
        let a = env
            .call("POST", "/v1/workspaces/acme/sources/web/deletions", Some(body), &[])
            .await;
        let detail = a.problem(400)["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(needle), "{body}: {detail:?} should mention {needle:?}");
    }
    env.call("POST", "/v1/workspaces/acme/sources/web/deletions", None, &[])
        .await
        .problem(400);
    env.call(
        "POST",
        "/v1/workspaces/acme/sources/we%2Fb/deletions",
        Some(r#"{"from":"2024-01-01","to":"2024-01-01"}"#),
        &[],
    )
    .await
    .problem(400);
    assert!(
        env.ledger_keys().await.is_empty(),
        "refused requests must write nothing"
    );
}

#[tokio::test]
async fn an_account_deletes_exactly_its_admin_workspaces_and_revokes_as_one() {
    let env = env(Versioning::None).await;
    for ws in ["w1", "w2", "w3"] {
        env.member(ws, "ann", "admin").await;
    }
    env.member("w4", "ann", "member").await;
    env.member("w5", "bob", "admin").await;
    for ws in ["w1", "w2", "w3", "w4", "w5"] {
        env.put(&env.archive, &format!("{ws}/web/2024-01-01/x.json.gz")).await;
    }
    let m = env.call("GET", "/v1/accounts/ann/memberships", None, &[]).await;
    assert_eq!(m.body["items"].as_array().unwrap().len(), 4);

    // First request: revoked as one while in grace.
    let a = env.call("POST", "/v1/accounts/ann/deletion", None, &[]).await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    assert_eq!(a.body["kind"], "account");
    let parent = id_of(&a.body);
    let view = get(&env, &parent).await;
    let mut children: Vec<String> = view["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["scope"]["workspace"].as_str().unwrap().to_owned())
        .collect();
    children.sort();
    assert_eq!(children, ["w1", "w2", "w3"]);
    // Asking again returns the same request, with the same three children.
    let again = env.call("POST", "/v1/accounts/ann/deletion", None, &[]).await;
    assert_eq!((again.status.as_u16(), id_of(&again.body)), (200, parent.clone()));
    assert_eq!(again.body["children"].as_array().unwrap().len(), 3);

    revoke_the_account_as_one(&env, &parent).await;

    // Second request: runs to the end; the account's status follows its children.
    let w2 = env.call("POST", "/v1/workspaces/w2/deletion", None, &[]).await; // already pending: adopted
    let a = env.call("POST", "/v1/accounts/ann/deletion", None, &[]).await;
    assert_eq!(a.status, 202);
    let parent = id_of(&a.body);
    assert!(
        a.body["children"].as_array().unwrap().contains(&w2.body["id"]),
        "{:#}",
        a.body
    );
    env.stack.pump_stream().await.unwrap();
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    env.settle().await;
    let view = get(&env, &parent).await;
    assert_eq!(view["status"], "COMPLETED", "{view:#}");
    assert_eq!(view["progress"]["objects"], 3);
    for ws in ["w1", "w2", "w3"] {
        assert!(
            env.inventory(&env.archive, &format!("{ws}/")).await.is_empty(),
            "{ws} must be purged"
        );
    }
    for ws in ["w4", "w5"] {
        assert_eq!(
            env.inventory(&env.archive, &format!("{ws}/")).await.versions.len(),
            1,
            "{ws} must stay"
        );
    }
    // The account's scope is free again once its children are done.
    let stored = env.call("GET", "/v1/accounts/ann/deletions", None, &[]).await;
    assert_eq!(stored.body["items"][0]["status"], "COMPLETED");
}

/// Revoking an account request revokes every child and disarms its timer.
async fn revoke_the_account_as_one(env: &Env, parent: &RequestId) {
    env.stack.pump_stream().await.unwrap();
    let revoked = env.call("DELETE", "/v1/accounts/ann/deletion", None, &[]).await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    assert_eq!(revoked.body["status"], "REVOKED");
    env.stack.pump_stream().await.unwrap();
    let view = get(env, parent).await;
    assert!(view["children"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["status"] == "REVOKED"));
    for c in view["children"].as_array().unwrap() {
        let child = RequestId::parse(c["id"].as_str().unwrap()).unwrap();
        assert_eq!(env.stack.schedules.armed_at(&child).await.unwrap(), None);
    }
}

#[tokio::test]
async fn an_account_that_administers_nothing_is_refused() {
    let env = env(Versioning::None).await;
    env.member("w1", "carl", "member").await;
    let a = env.call("POST", "/v1/accounts/carl/deletion", None, &[]).await;
    assert_eq!(
        a.problem(422)["type"],
        "urn:deletion-service:problem:no-admin-workspaces"
    );
    env.call(
        "PUT",
        "/v1/workspaces/w1/members/carl",
        Some(r#"{"role": "owner"}"#),
        &[],
    )
    .await
    .problem(400);
    env.call("DELETE", "/v1/workspaces/w1/members/nobody", None, &[])
        .await
        .problem(404);
    let removed = env.call("DELETE", "/v1/workspaces/w1/members/carl", None, &[]).await;
    assert_eq!(removed.status, 200);
    assert!(env.ledger_keys().await.is_empty());
}

#[tokio::test]
async fn a_long_deleted_workspace_is_purged_on_request_with_grace_and_revoke() {
    let env = env(Versioning::None).await;
    env.put(&env.archive, "old-ws/web/2019-05-01/x.json.gz").await;
    env.put(&env.profiles, "old-ws/spaces/main/p.json").await;
    let body = r#"{"workspace": "old-ws", "reason": "closed in 2019"}"#;
    let a = env.call("POST", "/v1/purges", Some(body), &[]).await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    assert_eq!(a.body["kind"], "workspace_purge");
    let first = id_of(&a.body);
    // Revoked by id during the grace.
    let r = env.call("DELETE", &format!("/v1/deletions/{first}"), None, &[]).await;
    assert_eq!((r.status.as_u16(), r.body["status"].as_str()), (200, Some("REVOKED")));

    let second = id_of(&env.call("POST", "/v1/purges", Some(body), &[]).await.body);
    env.stack.pump_stream().await.unwrap();
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    env.settle().await;
    assert_eq!(get(&env, &second).await["status"], "COMPLETED");
    assert_eq!(get(&env, &first).await["status"], "REVOKED");
    assert!(env.inventory(&env.archive, "old-ws/").await.is_empty());
    assert!(env.inventory(&env.profiles, "old-ws/").await.is_empty());
    env.call("POST", "/v1/purges", Some(r#"{"workspace": "../x"}"#), &[])
        .await
        .problem(400);
    env.call("POST", "/v1/purges", None, &[]).await.problem(400);
}

#[tokio::test]
async fn dry_runs_and_plans_show_the_blast_radius_without_deleting() {
    use deletion_aws::provision::{delete_key, start_upload};
    let env = env(Versioning::Profiles).await;
    for i in 0..3 {
        env.put(&env.archive, &format!("acme/web/2024-01-0{}/x.json.gz", i + 1))
            .await;
    }
    env.put(&env.profiles, "acme/spaces/main/p.json").await;
    env.put(&env.profiles, "acme/spaces/main/p.json").await;
    env.put(&env.profiles, "acme/spaces/main/gone.json").await;
    delete_key(&env.clients, &env.profiles, "acme/spaces/main/gone.json")
        .await
        .unwrap();
    start_upload(&env.clients, &env.profiles, "acme/spaces/main/big.bin")
        .await
        .unwrap();
    env.put(&env.archive, "acme-corp/web/2024-01-01/x.json.gz").await;

    let dry = env
        .call("POST", "/v1/workspaces/acme/deletion?dry_run=true", None, &[])
        .await;
    assert_eq!(dry.status, 200, "{:#}", dry.body);
    assert_eq!(dry.body["dry_run"], true);
    let plan = &dry.body["plan"];
    assert_eq!(plan["complete"], true);
    assert_eq!(plan["totals"]["objects"], 4, "{plan:#}");
    assert_eq!(plan["totals"]["versions"], 2, "{plan:#}");
    assert_eq!(plan["totals"]["delete_markers"], 1, "{plan:#}");
    assert_eq!(plan["totals"]["uploads_aborted"], 1, "{plan:#}");
    assert!(env.ledger_keys().await.is_empty(), "a dry run writes nothing");

    let days = env
        .call(
            "POST",
            "/v1/workspaces/acme/sources/web/deletions?dry_run=true",
            Some(r#"{"from":"2024-01-01","to":"2024-01-02"}"#),
            &[],
        )
        .await;
    assert_eq!(days.body["plan"]["prefixes"].as_array().unwrap().len(), 2);
    assert_eq!(days.body["plan"]["totals"]["objects"], 2);
    assert!(env.ledger_keys().await.is_empty());

    let id = id_of(&env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await.body);
    let p = env.call("GET", &format!("/v1/deletions/{id}/plan"), None, &[]).await;
    assert_eq!(p.status, 200, "{:#}", p.body);
    assert_eq!(p.body["plan"], *plan);
    // Nothing was deleted by looking.
    assert_eq!(env.inventory(&env.archive, "acme/").await.versions.len(), 3);
}

#[tokio::test]
async fn a_source_day_that_is_not_over_yet_is_refused() {
    use deletion_core::ports::Clock;
    let env = env(Versioning::None).await;
    let today = env.clock.now().date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let body = format!(
        r#"{{"from": "{}", "to": "{}"}}"#,
        day(today - Duration::days(2)),
        day(today)
    );
    let a = env
        .call("POST", "/v1/workspaces/acme/sources/web/deletions", Some(&body), &[])
        .await;
    let detail = a.problem(400)["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("fully in the past"), "{detail}");
    assert!(env.ledger_keys().await.is_empty(), "a refused request writes nothing");
    // Yesterday is over: accepted.
    let yesterday = today - Duration::days(1);
    let body = format!(r#"{{"from": "{}", "to": "{}"}}"#, day(yesterday), day(yesterday));
    let a = env
        .call("POST", "/v1/workspaces/acme/sources/web/deletions", Some(&body), &[])
        .await;
    assert_eq!(a.status, 202, "{:#}", a.body);
}

/// A ledger that accepts only the first `inserts` new requests and then
/// fails, as an intake stopped midway (its timeout, throttling) would.
mod interrupted {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use deletion_aws::dynamodb::DynamoLedger;
    use deletion_core::ids::{AccountId, IdempotencyKey, RequestId, WorkspaceId};
    use deletion_core::model::{DeletionRequest, Scope, Shard};
    use deletion_core::ports::{
        Directory, Hold, Holds, Ledger, Membership, PendingPage, Regulations, RequestPage, Role, Suppression,
    };
    use deletion_core::regulation::{Subjects, UserId};
    use deletion_core::LedgerError;

    pub struct Interrupted {
        pub inner: DynamoLedger,
        pub inserts_left: AtomicUsize,
    }

    #[async_trait]
    impl Ledger for Interrupted {
        async fn insert(&self, r: &DeletionRequest, k: Option<&IdempotencyKey>) -> Result<(), LedgerError> {
            let left = self
                .inserts_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            if left.is_err() {
                return Err(LedgerError::Unavailable("the intake was stopped".into()));
            }
            self.inner.insert(r, k).await
        }
        async fn get(&self, id: &RequestId) -> Result<Option<DeletionRequest>, LedgerError> {
            self.inner.get(id).await
        }
        async fn update(&self, next: &DeletionRequest) -> Result<(), LedgerError> {
            self.inner.update(next).await
        }
        async fn active_for(&self, scope: &Scope) -> Result<Option<RequestId>, LedgerError> {
            self.inner.active_for(scope).await
        }
        async fn by_idempotency_key(
            &self,
            key: &IdempotencyKey,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<Option<RequestId>, LedgerError> {
            self.inner.by_idempotency_key(key, now).await
        }
        async fn list(
            &self,
            key: &deletion_core::model::Listing,
            limit: u32,
            cursor: Option<&str>,
        ) -> Result<RequestPage, LedgerError> {
            self.inner.list(key, limit, cursor).await
        }
        async fn active(&self, limit: u32, cursor: Option<&str>) -> Result<RequestPage, LedgerError> {
            self.inner.active(limit, cursor).await
        }
        async fn insert_shards(&self, shards: &[Shard]) -> Result<(), LedgerError> {
            self.inner.insert_shards(shards).await
        }
        async fn shards(&self, id: &RequestId) -> Result<Vec<Shard>, LedgerError> {
            self.inner.shards(id).await
        }
        async fn shards_planned(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
            self.inner.shards_planned(id).await
        }
        async fn next_unstarted(&self, id: &RequestId) -> Result<Option<u32>, LedgerError> {
            self.inner.next_unstarted(id).await
        }
        async fn shard(&self, id: &RequestId, index: u32) -> Result<Option<Shard>, LedgerError> {
            self.inner.shard(id, index).await
        }
        async fn open_shards(
            &self,
            id: &RequestId,
            limit: u32,
        ) -> Result<Vec<deletion_core::ports::OpenShard>, LedgerError> {
            self.inner.open_shards(id, limit).await
        }
        async fn latest_leases(
            &self,
            id: &RequestId,
            limit: u32,
        ) -> Result<Vec<deletion_core::ports::OpenShard>, LedgerError> {
            self.inner.latest_leases(id, limit).await
        }
        async fn split_shard(&self, mine: &Shard, new: &Shard) -> Result<(), LedgerError> {
            self.inner.split_shard(mine, new).await
        }
        async fn update_shard(&self, next: &Shard) -> Result<(), LedgerError> {
            self.inner.update_shard(next).await
        }
        async fn put_page(&self, page: &PendingPage) -> Result<(), LedgerError> {
            self.inner.put_page(page).await
        }
        async fn pages(&self, id: &RequestId, shard: u32) -> Result<Vec<PendingPage>, LedgerError> {
            self.inner.pages(id, shard).await
        }
        async fn drop_page(&self, id: &RequestId, shard: u32, seq: u64) -> Result<(), LedgerError> {
            self.inner.drop_page(id, shard, seq).await
        }
    }

    #[async_trait]
    impl Directory for Interrupted {
        async fn put_member(&self, w: &WorkspaceId, a: &AccountId, role: Role) -> Result<(), LedgerError> {
            self.inner.put_member(w, a, role).await
        }
        async fn remove_member(&self, w: &WorkspaceId, a: &AccountId) -> Result<bool, LedgerError> {
            self.inner.remove_member(w, a).await
        }
        async fn memberships(&self, a: &AccountId) -> Result<Vec<Membership>, LedgerError> {
            self.inner.memberships(a).await
        }
    }

    #[async_trait]
    impl Regulations for Interrupted {
        async fn put_subjects(&self, id: &RequestId, s: &Subjects) -> Result<(), LedgerError> {
            self.inner.put_subjects(id, s).await
        }
        async fn subjects(&self, id: &RequestId) -> Result<Subjects, LedgerError> {
            self.inner.subjects(id).await
        }
        async fn forget_subjects(&self, id: &RequestId) -> Result<(), LedgerError> {
            self.inner.forget_subjects(id).await
        }
        async fn put_subject_refs(
            &self,
            id: &RequestId,
            at: DateTime<Utc>,
            source: Option<&deletion_core::ids::SourceId>,
            digests: &[String],
        ) -> Result<(), LedgerError> {
            self.inner.put_subject_refs(id, at, source, digests).await
        }
        async fn remove_subject_refs(
            &self,
            id: &RequestId,
            at: DateTime<Utc>,
            digests: &[String],
        ) -> Result<(), LedgerError> {
            self.inner.remove_subject_refs(id, at, digests).await
        }
        async fn subject_record(
            &self,
            digest: &str,
            of: Option<(&WorkspaceId, &UserId)>,
            limit: u32,
            cursor: Option<&str>,
        ) -> Result<deletion_core::ports::SubjectRecord, LedgerError> {
            self.inner.subject_record(digest, of, limit, cursor).await
        }
        async fn set_suppressed(
            &self,
            w: &WorkspaceId,
            source: Option<&deletion_core::ids::SourceId>,
            ids: &[UserId],
            suppressed: bool,
            regulation: &RequestId,
            since: DateTime<Utc>,
        ) -> Result<(), LedgerError> {
            self.inner
                .set_suppressed(w, source, ids, suppressed, regulation, since)
                .await
        }
        async fn lift_suppressions(
            &self,
            w: &WorkspaceId,
            source: Option<&deletion_core::ids::SourceId>,
            ids: &[UserId],
            regulation: &RequestId,
        ) -> Result<(), LedgerError> {
            self.inner.lift_suppressions(w, source, ids, regulation).await
        }
        async fn suppression(&self, w: &WorkspaceId, id: &UserId) -> Result<Option<Suppression>, LedgerError> {
            self.inner.suppression(w, id).await
        }
        async fn suppressions(
            &self,
            w: &WorkspaceId,
            source: Option<&deletion_core::ids::SourceId>,
            ids: &[UserId],
        ) -> Result<Vec<Suppression>, LedgerError> {
            self.inner.suppressions(w, source, ids).await
        }
        async fn suppression_page(
            &self,
            w: &WorkspaceId,
            limit: u32,
            cursor: Option<&str>,
        ) -> Result<(Vec<Suppression>, Option<String>), LedgerError> {
            self.inner.suppression_page(w, limit, cursor).await
        }
    }

    #[async_trait]
    impl Holds for Interrupted {
        async fn place_hold(&self, hold: &Hold) -> Result<Hold, LedgerError> {
            self.inner.place_hold(hold).await
        }
        async fn hold(&self, w: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
            self.inner.hold(w).await
        }
        async fn release_hold(&self, w: &WorkspaceId) -> Result<Option<Hold>, LedgerError> {
            self.inner.release_hold(w).await
        }
    }
}

/// Asks for `account`'s deletion through a ledger that fails after the
/// account request and `children` of its workspace requests are written;
/// answers the workspace requests that were written.
async fn interrupted_account_deletion(
    env: &Env,
    account: &str,
    workspaces: &[&str],
    children: usize,
) -> Vec<RequestId> {
    use deletion_core::ids::{AccountId, WorkspaceId};
    use deletion_core::ports::Ledger;
    use deletion_core::requests::Requests;
    let ledger = interrupted::Interrupted {
        inner: env.stack.ledger.clone(),
        inserts_left: std::sync::atomic::AtomicUsize::new(1 + children),
    };
    let requests = Requests::new(ledger, env.clock.clone(), env.stack.settings.periods);
    let account = AccountId::parse(account).unwrap();
    let stopped = requests
        .create_account(&account, account.as_str(), None, None, None)
        .await;
    assert!(stopped.is_err(), "the ledger was to stop the creation: {stopped:?}");
    let mut made = Vec::new();
    for ws in workspaces {
        let scope = deletion_core::model::Scope::Workspace {
            workspace: WorkspaceId::parse(ws).unwrap(),
        };
        made.extend(env.stack.ledger.active_for(&scope).await.unwrap());
    }
    assert_eq!(made.len(), children, "{made:?}");
    made
}

#[tokio::test]
async fn an_account_deletion_interrupted_midway_is_revoked_whole_or_completed_on_retry() {
    let env = env(Versioning::None).await;
    for ws in ["w1", "w2", "w3"] {
        env.member(ws, "ann", "admin").await;
        env.member(&format!("b{ws}"), "bob", "admin").await;
    }
    // ann's creation stops after two children: revoking the account
    // revokes both, and nothing of hers is left to purge.
    let made = interrupted_account_deletion(&env, "ann", &["w1", "w2", "w3"], 2).await;
    let revoked = env.call("DELETE", "/v1/accounts/ann/deletion", None, &[]).await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    assert_eq!(revoked.body["status"], "REVOKED", "{:#}", revoked.body);
    for id in &made {
        assert_eq!(get(&env, id).await["status"], "REVOKED", "child {id}");
    }
    // bob's stops after one: asking again completes it, without duplicates.
    let made = interrupted_account_deletion(&env, "bob", &["bw1", "bw2", "bw3"], 1).await;
    let again = env.call("POST", "/v1/accounts/bob/deletion", None, &[]).await;
    assert_eq!(again.status, 200, "{:#}", again.body);
    let view = get(&env, &id_of(&again.body)).await;
    let mut workspaces: Vec<&str> = view["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["scope"]["workspace"].as_str().unwrap())
        .collect();
    workspaces.sort();
    assert_eq!(workspaces, ["bw1", "bw2", "bw3"], "{view:#}");
    assert!(view["children"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == made[0].as_str()));
    let revoked = env.call("DELETE", "/v1/accounts/bob/deletion", None, &[]).await;
    assert_eq!(revoked.body["status"], "REVOKED", "{:#}", revoked.body);
}

#[tokio::test]
async fn no_child_is_written_under_an_account_request_once_it_is_revoked() {
    use deletion_core::ids::WorkspaceId;
    use deletion_core::model::{DeletionRequest, Scope};
    use deletion_core::ports::{Clock, Ledger};
    let env = env(Versioning::None).await;
    env.member("w1", "ann", "admin").await;
    // The creation stops after the account request (its child recorded,
    // not created); the revoke comes before it resumes.
    interrupted_account_deletion(&env, "ann", &["w1"], 0).await;
    let revoked = env.call("DELETE", "/v1/accounts/ann/deletion", None, &[]).await;
    assert_eq!(revoked.body["status"], "REVOKED", "{:#}", revoked.body);
    let planned = RequestId::parse(revoked.body["children"][0].as_str().unwrap()).unwrap();
    // The stopped creation resumes: its child is refused.
    let scope = Scope::Workspace {
        workspace: WorkspaceId::parse("w1").unwrap(),
    };
    let mut child = DeletionRequest::new(scope.clone(), "ann", None, env.clock.now(), env.stack.settings.periods);
    child.id = planned;
    child.parent = Some(id_of(&revoked.body));
    let written = env.stack.ledger.insert(&child, None).await;
    assert!(written.is_err(), "a child was written under a revoked parent");
    assert_eq!(env.stack.ledger.active_for(&scope).await.unwrap(), None);
}

/// Purges `days` days of a source (from 2018-01-01, one object in them)
/// and checks it completes with a receipt of every day, signed and read
/// back whole, its scope released.
async fn source_days_complete_with_their_whole_receipt(days: u64) {
    let env = env(Versioning::None).await;
    env.put(&env.archive, "acme/web/2018-03-01/part-0.json.gz").await;
    let from = chrono::NaiveDate::from_ymd_opt(2018, 1, 1).unwrap();
    let to = from + chrono::Days::new(days - 1);
    let body = format!(r#"{{"from": "{from}", "to": "{to}", "reason": "a long bad import"}}"#);
    let a = env
        .call("POST", "/v1/workspaces/acme/sources/web/deletions", Some(&body), &[])
        .await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    let id = id_of(&a.body);
    let mut status = Value::Null;
    for _ in 0..10 {
        env.settle().await;
        status = get(&env, &id).await;
        if status["status"] == "COMPLETED" {
            break;
        }
    }
    assert_eq!(status["status"], "COMPLETED", "{:#}", status["history"]);
    let prefixes = status["receipt"]["prefixes"].as_array().expect("receipt prefixes");
    assert_eq!(prefixes.len() as u64, days);
    assert_eq!(prefixes[0]["prefix"], format!("acme/web/{from}/"));
    assert_eq!(prefixes[prefixes.len() - 1]["prefix"], format!("acme/web/{to}/"));
    assert_eq!(status["receipt"]["totals"]["objects"], 1);
    let receipt = status["receipt"].to_string();
    let verified = env.call("POST", "/v1/receipts:verify", Some(&receipt), &[]).await;
    assert_eq!(verified.body["valid"], true, "{:#}", verified.body);
    // The scope was released with the final write: it may be asked again.
    let again = env
        .call("POST", "/v1/workspaces/acme/sources/web/deletions", Some(&body), &[])
        .await;
    assert_eq!(again.status, 202, "{:#}", again.body);
}

/// A year of days: its receipt (about 55 KB) is kept in a chunk item
/// beside the request and read back whole.
#[tokio::test]
async fn a_source_days_request_of_a_year_completes_with_its_whole_signed_receipt() {
    source_days_complete_with_their_whole_receipt(365).await;
}

/// 3,660 days, the most a request may name, with the longest names and
/// counts: one receipt entry per day would make the completed request item
/// far larger than DynamoDB's 400 KB, and DynamoDB Local (AWS's engine)
/// refuses such an item. The completion is written through the ledger and
/// read back whole, through the ledger and the API. (Purging 3,660 empty
/// days end to end takes many minutes on moto; the year above does.)
#[tokio::test]
async fn a_completion_with_a_receipt_of_3660_days_is_stored_and_read_back_whole() {
    use deletion_core::ids::{SourceId, WorkspaceId};
    use deletion_core::model::{Counts, DeletionRequest, PrefixReceipt, Receipt, Scope, Status, Transition};
    use deletion_core::ports::{Clock, Ledger};
    let env = env(Versioning::None).await;
    let workspace = "acme-corporation-production-eu-west-1-tenant-000000000001";
    let source = "web-frontend-tracking-pixel-and-server-side-events-00001";
    let from = chrono::NaiveDate::from_ymd_opt(2010, 1, 1).unwrap();
    let to = from + chrono::Days::new(3659);
    let scope = Scope::SourceDays {
        workspace: WorkspaceId::parse(workspace).unwrap(),
        source: SourceId::parse(source).unwrap(),
        from,
        to,
    };
    let now = env.clock.now();
    let request = DeletionRequest::new(scope.clone(), "ops", None, now, env.stack.settings.periods);
    env.stack.ledger.insert(&request, None).await.expect("insert");
    let most = Counts {
        objects: u64::MAX,
        versions: u64::MAX,
        delete_markers: u64::MAX,
        uploads_aborted: u64::MAX,
        bytes: u64::MAX,
    };
    let prefixes: Vec<PrefixReceipt> = (0..3660)
        .map(|d| PrefixReceipt {
            store: "archive".into(),
            bucket: env.archive.clone(),
            prefix: format!("{workspace}/{source}/{}/", from + chrono::Days::new(d)),
            deleted: most,
            rewritten: None,
        })
        .collect();
    let mut done = request.clone();
    done.version += 1;
    done.status = Status::Completed;
    done.history.push(Transition {
        status: Status::Completed,
        at: now,
        by: "worker".into(),
        note: None,
    });
    done.receipt = Some(Receipt {
        request_id: request.id.clone(),
        scope: scope.clone(),
        prefixes: prefixes.clone(),
        totals: Counts::default(),
        purge_started_at: now,
        purge_finished_at: now,
        verified_at: now,
        verification: "nothing left".into(),
        signature: None,
    });
    env.stack.ledger.update(&done).await.expect("the completion is written");
    let read = env.stack.ledger.get(&request.id).await.unwrap().expect("the request");
    assert_eq!(read.status, Status::Completed);
    assert_eq!(
        read.receipt.as_ref().map(|r| &r.prefixes),
        Some(&prefixes),
        "every day, in order"
    );
    let view = get(&env, &request.id).await;
    assert_eq!(view["receipt"]["prefixes"].as_array().map(Vec::len), Some(3660));
    // The scope was released with the final write.
    assert_eq!(env.stack.ledger.active_for(&scope).await.unwrap(), None);
}
