//! Regulations (per end user: delete and suppress) against a real moto
//! server: the archive rewrite through the same ledger, timers and workers
//! as every deletion, the suppression list, and bad input.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::Duration;
use deletion_aws::provision::{self, ObjectVersion};
use deletion_aws::s3::S3Store;
use deletion_core::ids::{RequestId, WorkspaceId};
use deletion_core::ports::{
    Children, DeleteFailure, Downloaded, Entry, EntryPage, Ledger, ObjectStore, Regulations, Upload, UploadPage,
};
use deletion_core::purge::{PurgeConfig, PurgeOutcome, Purger};
use deletion_core::regulation::UserId;
use deletion_core::StoreError;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use integration_tests::{env, Env, Versioning};
use serde_json::{json, Value};

fn gz(text: &str) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(text.as_bytes()).expect("gzip");
    e.finish().expect("gzip")
}

fn gunzip(bytes: &[u8]) -> String {
    let mut out = String::new();
    MultiGzDecoder::new(bytes).read_to_string(&mut out).expect("gunzip");
    out
}

fn event(user: &str, n: u32) -> String {
    format!("{{\"userId\":\"{user}\",\"event\":\"Order Completed\",\"properties\":{{\"n\":{n}}}}}\n")
}

async fn put_gz(env: &Env, bucket: &str, key: &str, text: &str) {
    provision::put_object(&env.clients, bucket, key, &gz(text))
        .await
        .expect("put object");
}

async fn versions(env: &Env, bucket: &str, prefix: &str) -> Vec<ObjectVersion> {
    provision::object_versions(&env.clients, bucket, prefix)
        .await
        .expect("list versions")
}

/// Every version under a prefix with its (decompressed) text.
async fn texts(env: &Env, bucket: &str, prefix: &str) -> Vec<(ObjectVersion, String)> {
    let mut out = Vec::new();
    for v in versions(env, bucket, prefix).await {
        if v.delete_marker {
            continue;
        }
        let bytes = provision::get_object(&env.clients, bucket, &v.key, v.version_id.as_deref())
            .await
            .expect("get object");
        out.push((v, gunzip(&bytes)));
    }
    out
}

async fn current_text(env: &Env, bucket: &str, key: &str) -> String {
    gunzip(
        &provision::get_object(&env.clients, bucket, key, None)
            .await
            .expect("get object"),
    )
}

fn id_of(body: &Value) -> RequestId {
    RequestId::parse(body["id"].as_str().expect("id in body")).expect("request id")
}

async fn regulate(env: &Env, ws: &str, kind: &str, ids: &[&str]) -> (u16, Value) {
    let body = json!({"type": kind, "subject_type": "USER_ID", "subject_ids": ids}).to_string();
    let a = env
        .call("POST", &format!("/v1/workspaces/{ws}/regulations"), Some(&body), &[])
        .await;
    (a.status.as_u16(), a.body)
}

async fn regulation(env: &Env, id: &RequestId) -> Value {
    let a = env.call("GET", &format!("/v1/regulations/{id}"), None, &[]).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    a.body
}

async fn suppressed(env: &Env, ws: &str, user_path: &str) -> bool {
    let a = env
        .call(
            "GET",
            &format!("/v1/workspaces/{ws}/suppressions/{user_path}"),
            None,
            &[],
        )
        .await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    a.body["suppressed"].as_bool().expect("suppressed flag")
}

#[tokio::test]
async fn a_deleted_user_is_gone_from_every_version_and_everyone_else_stays_byte_for_byte() {
    let env = env(Versioning::All).await;
    let archive = env.archive.clone();
    let kept = three_days_with_bob_in_every_version(&env, &archive).await;
    // An object without bob is never rewritten; neighbours are untouched.
    put_gz(&env, &archive, "acme/ios/2024-01-01/events.json.gz", &event("ann", 1)).await;
    put_gz(
        &env,
        &archive,
        "acme-corp/web/2024-01-01/events.json.gz",
        &event("bob", 2),
    )
    .await;
    let ios_before = versions(&env, &archive, "acme/ios/").await;
    let corp_before = texts(&env, &archive, "acme-corp/").await;

    let (status, body) = regulate(&env, "acme", "SUPPRESS_WITH_DELETE", &["bob"]).await;
    assert_eq!(status, 202, "{body:#}");
    assert_eq!(body["status"], "INITIALIZED");
    assert_eq!(body["type"], "SUPPRESS_WITH_DELETE");
    assert_eq!(body["subject_count"], 1);
    assert!(body["suppression"]["applied_at"].is_string(), "{body:#}");
    let id = id_of(&body);
    // Suppression takes effect on create, before any rewrite.
    assert!(suppressed(&env, "acme", "bob").await);
    assert!(!suppressed(&env, "acme", "ann").await);
    assert!(!suppressed(&env, "acme-corp", "bob").await, "per workspace");

    env.settle().await;

    assert_reported(&regulation(&env, &id).await);
    bob_is_gone_and_the_rest_kept(&env, &archive, &kept).await;
    assert_eq!(
        versions(&env, &archive, "acme/ios/").await,
        ios_before,
        "not rewritten in vain"
    );
    assert_eq!(
        texts(&env, &archive, "acme-corp/").await,
        corp_before,
        "neighbour untouched"
    );

    let list = env.call("GET", "/v1/workspaces/acme/regulations", None, &[]).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["items"][0]["id"], json!(id.to_string()));
    assert_eq!(list.body["items"][0]["status"], "FINISHED");
    // Regulations are not deletions of the workspace.
    let deletions = env.call("GET", "/v1/workspaces/acme/deletions", None, &[]).await;
    assert_eq!(deletions.body["items"], json!([]));
}

/// Three days of one source, bob's events interleaved with others' (an
/// older version of day 2 holds bob too; day 1 has a content type and user
/// metadata; day 3 malformed lines): what each object must hold after.
async fn three_days_with_bob_in_every_version(env: &Env, archive: &str) -> Vec<(String, String)> {
    let mut kept = Vec::new();
    for (d, day) in ["2024-01-01", "2024-01-02", "2024-01-03"].iter().enumerate() {
        let n = d as u32 * 10;
        let mut text = String::new();
        let mut keep = String::new();
        for (i, user) in ["ann", "bob", "cat", "bob", "ann", "cat"].iter().enumerate() {
            let line = event(user, n + i as u32);
            text.push_str(&line);
            if *user != "bob" {
                keep.push_str(&line);
            }
        }
        if *day == "2024-01-03" {
            // Malformed lines are kept untouched, and reported.
            text.push_str("this line is not json\n");
            keep.push_str("this line is not json\n");
            text.push_str("{\"userId\":\"ann\", broken\n");
            keep.push_str("{\"userId\":\"ann\", broken\n");
        }
        let key = format!("acme/web/{day}/events.json.gz");
        if *day == "2024-01-02" {
            // An older version that also holds bob's events.
            put_gz(env, archive, &key, &(event("bob", 900) + &event("ann", 901))).await;
        }
        if *day == "2024-01-01" {
            // Written back with its content type and user metadata.
            env.clients
                .s3
                .put_object()
                .bucket(archive)
                .key(&key)
                .content_type("application/x-ndjson")
                .content_encoding("gzip")
                .metadata("pipeline", "archiver-7")
                .body(gz(&text).into())
                .send()
                .await
                .expect("put with metadata");
        } else {
            put_gz(env, archive, &key, &text).await;
        }
        kept.push((key, keep));
    }
    kept
}

/// The regulation's report: one store, three objects rewritten, six events
/// removed, four versions deleted, two malformed lines kept and named.
fn assert_reported(view: &Value) {
    assert_eq!(view["status"], "FINISHED", "{view:#}");
    let stores = view["stores"].as_array().expect("stores");
    assert_eq!(stores.len(), 1, "only the store with user records: {view:#}");
    let s = &stores[0];
    assert_eq!(s["store"], "archive");
    assert_eq!(s["prefix"], "acme/");
    assert_eq!(s["status"], "FINISHED");
    assert_eq!(s["objects_rewritten"], 3, "{view:#}");
    assert_eq!(s["events_removed"], 6, "{view:#}");
    // The three versions read before each rewrite, and day 2's older one.
    assert_eq!(s["versions_deleted"], 4, "{view:#}");
    assert_eq!(s["malformed_lines"], 2, "{view:#}");
    assert_eq!(s["objects_failed"], 0, "{view:#}");
    let errors = s["errors"].to_string();
    assert!(errors.contains("2024-01-03") && errors.contains("not JSON"), "{errors}");
}

/// bob is nowhere under acme/, in any version; the others' events stay, in
/// order, byte for byte, with their content type and metadata.
async fn bob_is_gone_and_the_rest_kept(env: &Env, archive: &str, kept: &[(String, String)]) {
    for (v, text) in texts(env, archive, "acme/").await {
        assert!(
            !text.contains("\"bob\""),
            "{} {:?} still holds bob: {text}",
            v.key,
            v.version_id
        );
    }
    for (key, keep) in kept {
        assert_eq!(&current_text(env, archive, key).await, keep, "{key}");
        let vs = versions(env, archive, key).await;
        assert_eq!(vs.len(), 1, "only the clean version of {key} is left: {vs:?}");
    }
    let head = env
        .clients
        .s3
        .head_object()
        .bucket(archive)
        .key("acme/web/2024-01-01/events.json.gz")
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_type(), Some("application/x-ndjson"));
    assert_eq!(head.content_encoding(), Some("gzip"));
    assert_eq!(
        head.metadata().and_then(|m| m.get("pipeline")).map(String::as_str),
        Some("archiver-7")
    );
}

/// A purge worker of `env`'s deployment over `store`, with `config`.
fn worker<S: ObjectStore>(
    env: &Env,
    store: S,
    config: PurgeConfig,
) -> Purger<
    deletion_aws::dynamodb::DynamoLedger,
    S,
    deletion_aws::scheduler::SchedulerTimers,
    deletion_core::ports::ManualClock,
> {
    Purger::new(
        env.stack.ledger.clone(),
        store,
        env.stack.schedules.clone(),
        env.clock.clone(),
        env.stack.settings.map.clone(),
        config,
    )
}

/// A store that lets another writer overwrite the first object it reads,
/// right after reading it: a concurrent writer during the rewrite.
struct Interloper {
    inner: S3Store,
    clients: deletion_aws::Clients,
    text: String,
    fired: AtomicBool,
}

#[async_trait]
impl ObjectStore for Interloper {
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_page(b, p, c, max).await
    }
    async fn delete_batch(&self, b: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        self.inner.delete_batch(b, entries).await
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
        self.inner.abort_upload(b, u).await
    }
    async fn list_children(&self, b: &str, p: &str, cap: usize) -> Result<Children, StoreError> {
        self.inner.list_children(b, p, cap).await
    }
    async fn download(&self, b: &str, k: &str, v: Option<&str>, to: &Path) -> Result<Option<Downloaded>, StoreError> {
        let read = self.inner.download(b, k, v, to).await?;
        if v.is_none() && !self.fired.swap(true, Ordering::SeqCst) {
            provision::put_object(&self.clients, b, k, &gz(&self.text))
                .await
                .expect("the other writer's put");
        }
        Ok(read)
    }
    async fn replace_if_match(
        &self,
        b: &str,
        k: &str,
        from: &Path,
        read: &Downloaded,
    ) -> Result<Option<String>, StoreError> {
        self.inner.replace_if_match(b, k, from, read).await
    }
}

#[tokio::test]
async fn a_concurrent_overwrite_during_the_rewrite_is_detected_and_retried_not_lost() {
    for versioning in [Versioning::All, Versioning::None] {
        let env = env(versioning).await;
        let archive = env.archive.clone();
        let key = "acme/web/2024-01-01/events.json.gz";
        put_gz(&env, &archive, key, &(event("ann", 1) + &event("bob", 2))).await;
        // The other writer adds a new event of dan's, and one more of bob's.
        let theirs = event("ann", 1) + &event("bob", 2) + &event("dan", 3) + &event("bob", 4);
        let (status, body) = regulate(&env, "acme", "DELETE_ONLY", &["bob"]).await;
        assert_eq!(status, 202, "{body:#}");
        assert!(body["suppression"].is_null(), "DELETE_ONLY does not suppress");
        let id = id_of(&body);
        let store = Interloper {
            inner: S3Store::new(env.clients.s3.clone()),
            clients: env.clients.clone(),
            text: theirs,
            fired: AtomicBool::new(false),
        };
        let purger = worker(&env, store, PurgeConfig::default());
        let outcome = purger.run(&id, "w1", false, None).await.expect("worker");
        assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
        // dan's event, written during the rewrite, is kept; bob is gone.
        assert_eq!(
            current_text(&env, &archive, key).await,
            event("ann", 1) + &event("dan", 3)
        );
        for (v, text) in texts(&env, &archive, "acme/").await {
            assert!(!text.contains("\"bob\""), "{v:?} still holds bob: {text}");
        }
        let view = regulation(&env, &id).await;
        assert_eq!(view["status"], "FINISHED", "{view:#}");
        assert_eq!(view["totals"]["objects_rewritten"], 1, "{view:#}");
        assert_eq!(view["totals"]["events_removed"], 2, "{view:#}");
        if versioning == Versioning::All {
            // The first read and the other writer's version both held bob.
            assert_eq!(view["totals"]["versions_deleted"], 2, "{view:#}");
            assert_eq!(versions(&env, &archive, key).await.len(), 1);
        }
    }
}

#[tokio::test]
async fn suppression_blocks_at_once_answers_in_batches_and_the_later_regulation_wins() {
    let env = env(Versioning::None).await;
    let (status, body) = regulate(&env, "acme", "SUPPRESS_ONLY", &["u1", "u2", "a/b c"]).await;
    assert_eq!(status, 202, "{body:#}");
    let first = id_of(&body);
    let check = json!({"user_ids": ["u1", "u2", "u3"]}).to_string();
    let a = env
        .call("POST", "/v1/workspaces/acme/suppressions:check", Some(&check), &[])
        .await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    assert_eq!(
        a.body["results"],
        json!([{"user_id": "u1", "suppressed": true}, {"user_id": "u2", "suppressed": true},
               {"user_id": "u3", "suppressed": false}])
    );
    assert_eq!(a.body["suppressed_count"], 2);
    // Ids travel percent-encoded in the path.
    assert!(suppressed(&env, "acme", "a%2Fb%20c").await);
    let one = env.call("GET", "/v1/workspaces/acme/suppressions/u1", None, &[]).await;
    assert_eq!(one.body["regulation_id"], json!(first.to_string()));

    env.settle().await;
    let view = regulation(&env, &first).await;
    assert_eq!(view["status"], "FINISHED", "{view:#}");
    assert_eq!(view["stores"], json!([]), "suppression alone touches no store");

    env.clock.advance(Duration::seconds(1));
    let (status, body) = regulate(&env, "acme", "UNSUPPRESS", &["u1"]).await;
    assert_eq!(status, 202, "{body:#}");
    assert!(!suppressed(&env, "acme", "u1").await, "lifted at once");
    assert!(suppressed(&env, "acme", "u2").await);

    // The earlier regulation's write arriving late (a retried worker) does
    // not undo the later one.
    let older = env.stack.ledger.get(&first).await.expect("ledger").expect("request");
    env.stack
        .ledger
        .set_suppressed(
            &WorkspaceId::parse("acme").unwrap(),
            None,
            &[UserId::parse("u1").unwrap()],
            true,
            &first,
            older.created_at,
        )
        .await
        .expect("late write");
    assert!(!suppressed(&env, "acme", "u1").await, "the later UNSUPPRESS stands");
}

#[tokio::test]
async fn the_same_ids_twice_do_not_rewrite_twice_and_an_unreadable_object_is_reported() {
    let env = env(Versioning::All).await;
    let archive = env.archive.clone();
    let key = "acme/web/2024-01-01/events.json.gz";
    put_gz(&env, &archive, key, &(event("ann", 1) + &event("bob", 2))).await;

    let (s1, b1) = regulate(&env, "acme", "DELETE_ARCHIVE_ONLY", &["bob"]).await;
    let (s2, b2) = regulate(&env, "acme", "DELETE_ARCHIVE_ONLY", &["bob", "bob"]).await;
    assert_eq!((s1, s2), (202, 200), "{b1:#} {b2:#}");
    assert_eq!(b1["id"], b2["id"], "the same ids under way: the same regulation");
    env.settle().await;
    assert_eq!(regulation(&env, &id_of(&b1)).await["status"], "FINISHED");
    let after_first = versions(&env, &archive, "acme/").await;

    // Asked again once finished: read again, rewritten in vain never.
    let (s3, b3) = regulate(&env, "acme", "DELETE_ARCHIVE_ONLY", &["bob"]).await;
    assert_eq!(s3, 202);
    assert_ne!(b3["id"], b1["id"]);
    env.settle().await;
    let view = regulation(&env, &id_of(&b3)).await;
    assert_eq!(view["status"], "FINISHED", "{view:#}");
    assert_eq!(view["totals"]["objects_rewritten"], 0, "{view:#}");
    assert_eq!(view["totals"]["objects_scanned"], 1, "{view:#}");
    assert_eq!(versions(&env, &archive, "acme/").await, after_first);

    // An object that is not gzip JSON lines is left as it was, and said.
    let broken = "acme/web/2024-01-02/broken.json.gz";
    provision::put_object(&env.clients, &archive, broken, b"{\"userId\":\"bob\"} not gzip")
        .await
        .unwrap();
    let (_, b4) = regulate(&env, "acme", "DELETE_ARCHIVE_ONLY", &["bob"]).await;
    env.settle().await;
    let view = regulation(&env, &id_of(&b4)).await;
    assert_eq!(view["status"], "PARTIAL_SUCCESS", "{view:#}");
    assert_eq!(view["totals"]["objects_failed"], 1, "{view:#}");
    assert!(
        view["stores"][0]["errors"].to_string().contains("broken.json.gz"),
        "{view:#}"
    );
    let raw = provision::get_object(&env.clients, &archive, broken, None)
        .await
        .unwrap();
    assert_eq!(raw, b"{\"userId\":\"bob\"} not gzip");
}

/// Regulation bodies the intake refuses: (body, query, status, a word the
/// problem's detail must contain).
fn bad_regulation_bodies() -> Vec<(String, &'static str, u16, &'static str)> {
    let many: Vec<String> = (0..5001).map(|i| format!("u{i}")).collect();
    let huge: Vec<String> = (0..9000).map(|i| format!("{i:0>500}")).collect();
    let body = |kind: &str, subject: &str, ids: &Value| {
        json!({"type": kind, "subject_type": subject, "subject_ids": ids}).to_string()
    };
    vec![
        (body("SUPPRESS_WITH_DELETE", "USER_ID", &json!(many)), "", 400, "5000"),
        (
            body("SUPPRESS_WITH_DELETE", "USER_ID", &json!(huge)),
            "",
            400,
            "4194304",
        ),
        (
            body("DELETE", "USER_ID", &json!(["u"])),
            "",
            400,
            "SUPPRESS_WITH_DELETE",
        ),
        (body("DELETE_ONLY", "PHONE", &json!(["u"])), "", 400, "USER_ID"),
        (body("DELETE_ONLY", "USER_ID", &json!([])), "", 400, "at least one"),
        (
            body("DELETE_ONLY", "USER_ID", &json!(["ok", "bad\u{7}"])),
            "",
            400,
            "subject_ids[1]",
        ),
        (
            body("DELETE_ONLY", "USER_ID", &json!(["ok", " "])),
            "",
            400,
            "subject_ids[1]",
        ),
        (body("DELETE_ONLY", "USER_ID", &json!([7])), "", 400, "invalid"),
        (
            json!({"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["u"], "x": 1}).to_string(),
            "",
            400,
            "unknown field",
        ),
        ("not json".to_owned(), "", 400, "not valid"),
        (
            body("DELETE_ONLY", "USER_ID", &json!(["u"])),
            "?dry_run=true",
            400,
            "no dry run",
        ),
    ]
}

#[tokio::test]
async fn bad_regulations_get_a_clear_400_and_write_nothing() {
    let env = env(Versioning::None).await;
    let before = env.ledger_keys().await;
    for (b, query, status, needle) in &bad_regulation_bodies() {
        let a = env
            .call("POST", &format!("/v1/workspaces/acme/regulations{query}"), Some(b), &[])
            .await;
        let problem = a.problem(*status);
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(needle), "{needle:?} not in {detail:?}");
    }
    let a = env
        .call(
            "POST",
            "/v1/workspaces/acme/regulations",
            Some("{}"),
            &[("content-type", "text/plain")],
        )
        .await;
    a.problem(415);
    let a = env
        .call("POST", "/v1/workspaces/..%2Fx/regulations", Some("{}"), &[])
        .await;
    a.problem(400);
    let ids: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let a = env
        .call(
            "POST",
            "/v1/workspaces/acme/suppressions:check",
            Some(&json!({"user_ids": ids}).to_string()),
            &[],
        )
        .await;
    assert!(a.problem(400)["detail"].as_str().unwrap().contains("1000"));
    env.call("GET", "/v1/workspaces/acme/suppressions/%zz", None, &[])
        .await
        .problem(400);
    env.call("DELETE", "/v1/workspaces/acme/regulations", None, &[])
        .await
        .problem(405);
    env.call("GET", "/v1/regulations/not-an-id", None, &[])
        .await
        .problem(400);
    assert_eq!(env.ledger_keys().await, before, "nothing was written");
}

#[tokio::test]
async fn a_rewrite_over_many_pages_of_versions_misses_nothing() {
    let env = env(Versioning::All).await;
    let archive = env.archive.clone();
    // Each object has an older version; every version holds bob.
    for i in 0..7 {
        let key = format!("acme/web/2024-01-01/part-{i}.json.gz");
        put_gz(&env, &archive, &key, &(event("bob", i) + &event("ann", i))).await;
        put_gz(&env, &archive, &key, &(event("ann", 100 + i) + &event("bob", 100 + i))).await;
    }
    let (_, body) = regulate(&env, "acme", "DELETE_ONLY", &["bob"]).await;
    let id = id_of(&body);
    // Two versions a page: every page's last version is one the rewrite
    // deletes, so a listing resumed after it must not depend on it.
    let purger = worker(
        &env,
        S3Store::new(env.clients.s3.clone()),
        PurgeConfig {
            page_size: 2,
            ..PurgeConfig::default()
        },
    );
    let outcome = purger.run(&id, "w1", false, None).await.expect("worker");
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let view = regulation(&env, &id).await;
    assert_eq!(view["totals"]["objects_rewritten"], 7, "{view:#}");
    assert_eq!(view["totals"]["versions_deleted"], 14, "{view:#}");
    for (v, text) in texts(&env, &archive, "acme/").await {
        assert!(!text.contains("\"bob\""), "{v:?} still holds bob: {text}");
        assert!(text.contains("\"ann\""), "{v:?}");
    }
    assert_eq!(versions(&env, &archive, "acme/").await.len(), 7);
}

#[tokio::test]
async fn unreadable_lines_that_may_hold_a_subject_make_the_object_partial_with_their_numbers() {
    let env = env(Versioning::None).await;
    let archive = env.archive.clone();
    let doubtful = "acme/web/2024-01-01/doubtful.json.gz";
    let deep = format!("{{\"userId\":\"bob\",\"p\":{}{}}}\n", "[".repeat(200), "]".repeat(200));
    let lines = [
        event("ann", 1),
        format!("\u{feff}{}", event("bob", 2)), // a byte-order mark: read without it
        "{\"userId\":\"bob\",\"userId\":\"ann\"}\n".to_owned(), // either value: bob's
        "{\"userId\":\"ann\",\"userId\":\"amy\"}\n".to_owned(), // ambiguous, but no bob
        deep,                                   // deeper than serde's limit
        "{\"userId\":\"bob\",\"event\":\n".to_owned(), // cut off: may be bob's
        "not json\n".to_owned(),                // unreadable, no bob in it
    ];
    put_gz(&env, &archive, doubtful, &lines.concat()).await;
    let clean = "acme/web/2024-01-02/clean.json.gz";
    put_gz(
        &env,
        &archive,
        clean,
        &(event("ann", 3) + "garbage\n" + &event("bob", 4)),
    )
    .await;

    let (_, body) = regulate(&env, "acme", "DELETE_ONLY", &["bob"]).await;
    let id = id_of(&body);
    env.settle().await;
    let view = regulation(&env, &id).await;
    assert_eq!(view["status"], "PARTIAL_SUCCESS", "{view:#}");
    assert_eq!(view["totals"]["objects_failed"], 1, "{view:#}");
    let errors = view["stores"][0]["errors"].to_string();
    assert!(
        errors.contains("doubtful.json.gz") && errors.contains("[6]"),
        "{view:#}"
    );
    assert!(!errors.contains("clean.json.gz: 1 line(s) could not"), "{view:#}");
    assert_eq!(view["totals"]["events_removed"], 4, "{view:#}");
    // What could be read is judged; what could not is kept as it was.
    assert_eq!(
        current_text(&env, &archive, doubtful).await,
        [lines[0].clone(), lines[3].clone(), lines[5].clone(), lines[6].clone()].concat()
    );
    assert_eq!(current_text(&env, &archive, clean).await, event("ann", 3) + "garbage\n");
}

/// A store through which other writers put versions of a key around the
/// rewrite's first read of it: `before` between the listing and the read,
/// `after` between the read and the write back.
struct Writers {
    inner: S3Store,
    clients: deletion_aws::Clients,
    before: Vec<String>,
    after: Vec<String>,
    fired: AtomicBool,
}

#[async_trait]
impl ObjectStore for Writers {
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_page(b, p, c, max).await
    }
    async fn delete_batch(&self, b: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        self.inner.delete_batch(b, entries).await
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
        self.inner.abort_upload(b, u).await
    }
    async fn download(&self, b: &str, k: &str, v: Option<&str>, to: &Path) -> Result<Option<Downloaded>, StoreError> {
        let first = v.is_none() && !self.fired.swap(true, Ordering::SeqCst);
        if first {
            for text in &self.before {
                put_gz_raw(&self.clients, b, k, text).await;
            }
        }
        let read = self.inner.download(b, k, v, to).await?;
        if first {
            for text in &self.after {
                put_gz_raw(&self.clients, b, k, text).await;
            }
        }
        Ok(read)
    }
    async fn replace_if_match(
        &self,
        b: &str,
        k: &str,
        from: &Path,
        read: &Downloaded,
    ) -> Result<Option<String>, StoreError> {
        self.inner.replace_if_match(b, k, from, read).await
    }
}

async fn put_gz_raw(clients: &deletion_aws::Clients, bucket: &str, key: &str, text: &str) {
    provision::put_object(clients, bucket, key, &gz(text))
        .await
        .expect("the other writer's put");
}

#[tokio::test]
async fn versions_written_around_the_read_that_an_etag_cannot_tell_are_scrubbed_too() {
    let original = event("ann", 1) + &event("bob", 2);
    // The same bytes again (the same ETag), after the read; or two writes
    // between the listing and the read.
    let cases = [
        (vec![], vec![original.clone()]),
        (
            vec![original.clone() + &event("bob", 3), original.clone() + &event("dan", 4)],
            vec![],
        ),
    ];
    for (before, after) in cases {
        let env = env(Versioning::All).await;
        let archive = env.archive.clone();
        let key = "acme/web/2024-01-01/events.json.gz";
        put_gz(&env, &archive, key, &original).await;
        let (_, body) = regulate(&env, "acme", "DELETE_ONLY", &["bob"]).await;
        let id = id_of(&body);
        let store = Writers {
            inner: S3Store::new(env.clients.s3.clone()),
            clients: env.clients.clone(),
            before: before.clone(),
            after: after.clone(),
            fired: AtomicBool::new(false),
        };
        let purger = worker(&env, store, PurgeConfig::default());
        let outcome = purger.run(&id, "w1", false, None).await.expect("worker");
        assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
        for (v, text) in texts(&env, &archive, "acme/").await {
            assert!(
                !text.contains("\"bob\""),
                "{v:?} still holds bob: {text} (before {before:?}, after {after:?})"
            );
        }
        let view = regulation(&env, &id).await;
        assert_eq!(view["status"], "FINISHED", "{view:#}");
    }
}

#[tokio::test]
async fn an_object_too_large_for_the_scratch_budget_fails_alone_and_the_rest_is_rewritten() {
    let env = env(Versioning::None).await;
    let archive = env.archive.clone();
    // About 200 KB of gzip (random ids compress little): over what a
    // 256 KiB budget can hold twice.
    let mut big_text = event("bob", 0);
    for n in 0..2500 {
        let noise = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        big_text += &format!("{{\"userId\":\"ann\",\"n\":{n},\"noise\":\"{noise}\"}}\n");
    }
    let big = "acme/web/2024-01-01/big.json.gz";
    put_gz(&env, &archive, big, &big_text).await;
    for i in 0..6 {
        let key = format!("acme/web/2024-01-02/small-{i}.json.gz");
        put_gz(&env, &archive, &key, &(event("ann", i) + &event("bob", i))).await;
    }
    let (_, body) = regulate(&env, "acme", "DELETE_ONLY", &["bob"]).await;
    let id = id_of(&body);
    let purger = worker(
        &env,
        S3Store::new(env.clients.s3.clone()),
        PurgeConfig {
            scratch_bytes: 256 * 1024,
            ..PurgeConfig::default()
        },
    );
    let outcome = purger.run(&id, "w1", false, None).await.expect("worker");
    assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
    let view = regulation(&env, &id).await;
    assert_eq!(view["status"], "PARTIAL_SUCCESS", "{view:#}");
    assert_eq!(view["totals"]["objects_failed"], 1, "{view:#}");
    assert_eq!(view["totals"]["objects_rewritten"], 6, "{view:#}");
    let errors = view["stores"][0]["errors"].to_string();
    assert!(
        errors.contains("big.json.gz") && errors.contains("temporary storage"),
        "{view:#}"
    );
    for i in 0..6 {
        let key = format!("acme/web/2024-01-02/small-{i}.json.gz");
        assert_eq!(current_text(&env, &archive, &key).await, event("ann", i));
    }
    assert_eq!(current_text(&env, &archive, big).await, big_text, "left as it was");
}

/// A regulation of `subject_type` (not `USER_ID`) about `ids`.
async fn regulate_as(env: &Env, kind: &str, subject_type: &str, ids: &[&str]) -> (u16, Value) {
    let body = json!({"type": kind, "subject_type": subject_type, "subject_ids": ids}).to_string();
    let a = env
        .call("POST", "/v1/workspaces/acme/regulations", Some(&body), &[])
        .await;
    (a.status.as_u16(), a.body)
}

#[tokio::test]
async fn anonymous_ids_and_declared_e_mail_addresses_are_found_where_the_data_map_says() {
    let env = env(Versioning::None).await;
    let archive = env.archive.clone();
    let key = "acme/web/2024-01-01/events.json.gz";
    let lines = [
        "{\"userId\":\"u1\",\"anonymousId\":\"a1\",\"event\":\"1\"}\n",
        "{\"anonymousId\":\"a1\",\"event\":\"2\"}\n",
        "{\"anonymousId\":\"a2\",\"traits\":{\"email\":\"Ann@Example.com\"},\"event\":\"3\"}\n",
        "{\"context\":{\"traits\":{\"email\":\"ANN@example.COM\"}},\"event\":\"4\"}\n",
        "{\"properties\":{\"email\":\"ann@example.com\"},\"event\":\"5\"}\n",
        "{\"userId\":\"a1\",\"event\":\"6\"}\n",
    ];
    put_gz(&env, &archive, key, &lines.concat()).await;
    put_gz(&env, &archive, "acme-corp/web/2024-01-01/e.json.gz", lines[1]).await;

    let (status, body) = regulate_as(&env, "DELETE_ONLY", "ANONYMOUS_ID", &["a1"]).await;
    assert_eq!(status, 202, "{body:#}");
    assert_eq!(body["subject_type"], "ANONYMOUS_ID");
    env.settle().await;
    let done = regulation(&env, &id_of(&body)).await;
    assert_eq!(done["status"], "FINISHED", "{done:#}");
    assert_eq!(done["totals"]["events_removed"], 2, "{done:#}");
    let left = current_text(&env, &archive, key).await;
    assert_eq!(
        left,
        [lines[2], lines[3], lines[4], lines[5]].concat(),
        "a user id a1 is another person"
    );

    let (status, body) = regulate_as(&env, "DELETE_ONLY", "EMAIL", &["ann@example.com"]).await;
    assert_eq!(status, 202, "{body:#}");
    env.settle().await;
    let done = regulation(&env, &id_of(&body)).await;
    assert_eq!(done["totals"]["events_removed"], 2, "{done:#}");
    let left = current_text(&env, &archive, key).await;
    assert_eq!(
        left,
        [lines[4], lines[5]].concat(),
        "any case, at both declared paths, nowhere else"
    );
    assert_eq!(
        current_text(&env, &archive, "acme-corp/web/2024-01-01/e.json.gz").await,
        lines[1],
        "another workspace"
    );
    let receipt_scope = &env
        .call("GET", &format!("/v1/deletions/{}", id_of(&body)), None, &[])
        .await
        .body["receipt"]["scope"];
    assert_eq!(receipt_scope["subject_type"], "EMAIL", "{receipt_scope:#}");
}

#[tokio::test]
async fn a_subject_type_no_store_holds_or_a_suppression_of_another_type_is_refused() {
    let env = env(Versioning::None).await;
    for (kind, subject_type, says) in [
        ("DELETE_ONLY", "PHONE", "ANONYMOUS_ID, EMAIL, USER_ID"),
        ("DELETE_ONLY", "email", "not held"),
        ("SUPPRESS_WITH_DELETE", "EMAIL", "must be USER_ID"),
        ("SUPPRESS_ONLY", "ANONYMOUS_ID", "must be USER_ID"),
    ] {
        let (status, problem) = regulate_as(&env, kind, subject_type, &["x"]).await;
        assert_eq!(status, 400, "{kind} {subject_type}: {problem:#}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{detail}");
    }
    let listed = env.call("GET", "/v1/workspaces/acme/regulations", None, &[]).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(0),
        "nothing written"
    );
}

#[tokio::test]
async fn the_suppression_list_pages_newest_first_by_state_for_its_readers_only() {
    let env = env(Versioning::None).await;
    let (status, _) = regulate(&env, "acme", "SUPPRESS_ONLY", &["u1", "u2"]).await;
    assert_eq!(status, 202);
    env.clock.advance(Duration::minutes(1));
    regulate(&env, "acme", "SUPPRESS_ONLY", &["u3"]).await;
    env.clock.advance(Duration::minutes(1));
    regulate(&env, "acme", "UNSUPPRESS", &["u1"]).await;
    regulate(&env, "acme-corp", "SUPPRESS_ONLY", &["u9"]).await;
    let list = |query: &'static str| {
        let env = &env;
        async move {
            let (mut users, mut next) = (Vec::new(), Some(format!("/v1/workspaces/acme/suppressions{query}")));
            while let Some(at) = next.take() {
                let a = env.call("GET", &at, None, &[]).await;
                assert_eq!(a.status, 200, "{at}: {:#}", a.body);
                for item in a.body["items"].as_array().unwrap() {
                    users.push(item["user_id"].as_str().unwrap().to_owned());
                }
                next = a.body["links"]["next"].as_str().map(str::to_owned);
            }
            users
        }
    };
    assert_eq!(list("").await, ["u3", "u2"], "the latest set first; u1 lifted");
    assert_eq!(list("?limit=1").await, ["u3", "u2"], "page by page");
    assert_eq!(list("?state=lifted").await, ["u1"]);
    assert_eq!(
        list("?state=all&limit=2&subject_type=USER_ID").await,
        ["u1", "u3", "u2"]
    );
    for bad in ["?state=gone", "?subject_type=EMAIL", "?limit=0", "?cursor=nope"] {
        env.call("GET", &format!("/v1/workspaces/acme/suppressions{bad}"), None, &[])
            .await
            .problem(400);
    }
    let reader = ("ingest", &[deletion_core::access::SUPPRESSION_READ_SCOPE][..]);
    let a = env
        .call_as(Some(reader), "GET", "/v1/workspaces/acme/suppressions", None, &[])
        .await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    env.member("acme", "bob", "member").await;
    env.call_as(Some(("bob", &[])), "GET", "/v1/workspaces/acme/suppressions", None, &[])
        .await
        .problem(403);
}

/// A store of per-user prefixes beside the profiles store in its bucket
/// (a part and a literal before `{user}`: the listing covers keys outside
/// the layout too).
const USERS_STORE: &str =
    r#", {"name": "users", "bucket": "PROFILES", "layout": "{workspace}/people/{space}/profiles/{user}/"}"#;

#[tokio::test]
async fn a_users_own_prefix_goes_in_every_version_and_the_neighbours_stay() {
    let env =
        integration_tests::deploy_with_stores(Versioning::Profiles, integration_tests::Signing::Local, USERS_STORE)
            .await;
    let profiles = env.profiles.clone();
    // bob's prefix: a profile in two versions, a file deleted since (its
    // version and delete marker), a folder marker.
    env.put(&profiles, "acme/people/main/profiles/bob/profile.json").await;
    env.put(&profiles, "acme/people/main/profiles/bob/profile.json").await;
    env.put(&profiles, "acme/people/main/profiles/bob/traits.json").await;
    provision::delete_key(&env.clients, &profiles, "acme/people/main/profiles/bob/traits.json")
        .await
        .expect("delete");
    env.put(&profiles, "acme/people/eu/profiles/bob/").await;
    // An upload begun under bob's prefix (completed later, it would leave
    // an object), and one under bobby's.
    provision::start_upload(&env.clients, &profiles, "acme/people/main/profiles/bob/big.bin")
        .await
        .expect("an upload");
    provision::start_upload(&env.clients, &profiles, "acme/people/main/profiles/bobby/big.bin")
        .await
        .expect("an upload");
    // Neighbours: another user whose id starts with bob's, another
    // workspace's bob, keys outside the layout that name bob where the
    // layout has its user part, a key named bob outside a prefix.
    for key in [
        "acme/people/main/profiles/bobby/profile.json",
        "acme/people/main/profiles/ann/profile.json",
        "acme/people/main/profiles/bob",
        "acme/people/main/exports/bob/all.json",
        "acme/people/bob/profiles/ann/p.json",
        "acme-corp/people/main/profiles/bob/profile.json",
        "acme/spaces/bob/audience.json",
    ] {
        env.put(&profiles, key).await;
    }
    put_gz(
        &env,
        &env.archive.clone(),
        "acme/web/2024-01-01/e.json.gz",
        &event("bob", 1),
    )
    .await;
    let before = versions(&env, &profiles, "").await;
    let bobs: Vec<_> = before
        .iter()
        .filter(|v| v.key.starts_with("acme/people/main/profiles/bob/") || v.key == "acme/people/eu/profiles/bob/")
        .cloned()
        .collect();
    assert_eq!(bobs.len(), 5, "{bobs:?}");

    let (status, body) = regulate(&env, "acme", "DELETE_ONLY", &["bob"]).await;
    assert_eq!(status, 202, "{body:#}");
    env.settle().await;

    let view = regulation(&env, &id_of(&body)).await;
    assert_eq!(view["status"], "FINISHED", "{view:#}");
    let users = view["stores"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["store"] == "users"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(users["prefix"], "acme/people/", "{view:#}");
    assert_eq!(users["versions_deleted"], 5, "{view:#}");
    assert_eq!(users["objects_failed"], 0, "{view:#}");
    assert_eq!(view["totals"]["events_removed"], 1, "the archive too: {view:#}");
    let after = versions(&env, &profiles, "").await;
    let rest: Vec<_> = before.into_iter().filter(|v| !bobs.contains(v)).collect();
    assert_eq!(
        after, rest,
        "bob's prefix gone, every version and marker; nothing else touched"
    );
    assert_eq!(
        env.inventory(&profiles, "acme/").await.uploads,
        ["acme/people/main/profiles/bobby/big.bin"],
        "bob's upload aborted"
    );
}

#[tokio::test]
async fn a_workspace_deletion_purges_a_bucket_two_stores_share_once() {
    let env =
        integration_tests::deploy_with_stores(Versioning::None, integration_tests::Signing::Local, USERS_STORE).await;
    let profiles = env.profiles.clone();
    env.put(&profiles, "acme/people/main/profiles/bob/profile.json").await;
    env.put(&profiles, "acme/spaces/main/traits.json").await;
    env.put(&profiles, "acme-corp/people/main/profiles/bob/profile.json")
        .await;
    let a = env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await;
    assert_eq!(a.status, 202, "{:#}", a.body);
    let id = id_of(&a.body);
    let plan = env
        .call("GET", &format!("/v1/deletions/{id}/plan"), None, &[])
        .await
        .body;
    let shared: Vec<_> = plan["plan"]["prefixes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["bucket"] == json!(profiles))
        .collect();
    assert_eq!(shared.len(), 1, "one listing of the shared bucket's acme/: {plan:#}");
    assert_eq!(shared[0]["found"]["objects"], 2, "{plan:#}");
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    let fired = env.stack.tick().await.expect("tick");
    assert_eq!(fired[0].outcome, "completed", "{:?}", fired[0]);
    let done = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await.body;
    assert_eq!(done["status"], "COMPLETED", "{done:#}");
    let prefixes: Vec<_> = done["receipt"]["prefixes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| (p["bucket"].as_str().unwrap_or("").to_owned(), p["prefix"].clone()))
        .filter(|(b, _)| *b == profiles)
        .collect();
    assert_eq!(prefixes.len(), 1, "one prefix of the shared bucket: {done:#}");
    assert_eq!(done["receipt"]["totals"]["objects"], 2, "{done:#}");
    let left: Vec<_> = versions(&env, &profiles, "").await.into_iter().map(|v| v.key).collect();
    assert_eq!(left, ["acme-corp/people/main/profiles/bob/profile.json"]);
}

#[tokio::test]
async fn a_user_part_right_after_the_fixed_prefix_is_listed_per_subject_and_only_there() {
    let flat_users = r#", {"name": "users", "bucket": "PROFILES", "layout": "{workspace}/users/{user}/"}"#;
    let env =
        integration_tests::deploy_with_stores(Versioning::Profiles, integration_tests::Signing::Local, flat_users)
            .await;
    let profiles = env.profiles.clone();
    env.put(&profiles, "acme/users/bob/profile.json").await;
    env.put(&profiles, "acme/users/bob/profile.json").await;
    for key in [
        "acme/users/bobby/profile.json",
        "acme/users/bob",
        // User a's folder b: an id "a/b" must not reach it.
        "acme/users/a/b/x.json",
        "acme-corp/users/bob/profile.json",
    ] {
        env.put(&profiles, key).await;
    }
    let before = versions(&env, &profiles, "").await;

    let (status, body) = regulate(&env, "acme", "DELETE_ONLY", &["bob", "a/b"]).await;
    assert_eq!(status, 202, "{body:#}");
    let id = id_of(&body);
    env.settle().await;

    let view = regulation(&env, &id).await;
    assert_eq!(view["status"], "FINISHED", "{view:#}");
    let planned: Vec<String> = env
        .stack
        .ledger
        .shards(&id)
        .await
        .expect("shards")
        .into_iter()
        .filter(|s| s.store == "users")
        .map(|s| s.prefix)
        .collect();
    assert_eq!(
        planned,
        ["acme/users/{user}/"],
        "one shard per subject, none for an id with a '/'; once finished, its prefix kept without the id"
    );
    let users = view["stores"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["store"] == "users"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (users["prefix"].as_str(), users["versions_deleted"].as_u64()),
        (Some("acme/users/"), Some(2)),
        "{view:#}"
    );
    let after = versions(&env, &profiles, "").await;
    let rest: Vec<_> = before
        .into_iter()
        .filter(|v| !v.key.starts_with("acme/users/bob/"))
        .collect();
    assert_eq!(after, rest);
}

/// A store whose other writer puts a new version under alice's prefix
/// with each of its first `times` deletes.
struct LateWriter {
    inner: S3Store,
    clients: deletion_aws::Clients,
    times: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl ObjectStore for LateWriter {
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        self.inner.list_page(b, p, c, max).await
    }
    async fn delete_batch(&self, b: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        let refused = self.inner.delete_batch(b, entries).await?;
        let left = self.times.load(Ordering::SeqCst);
        if left > 0 {
            self.times.store(left - 1, Ordering::SeqCst);
            provision::put_object(&self.clients, b, "acme/users/alice/late.json", b"late")
                .await
                .expect("the other writer's put");
        }
        Ok(refused)
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
        self.inner.abort_upload(b, u).await
    }
    async fn list_children(&self, b: &str, p: &str, cap: usize) -> Result<Children, StoreError> {
        self.inner.list_children(b, p, cap).await
    }
    async fn download(&self, b: &str, k: &str, v: Option<&str>, to: &Path) -> Result<Option<Downloaded>, StoreError> {
        self.inner.download(b, k, v, to).await
    }
    async fn replace_if_match(
        &self,
        b: &str,
        k: &str,
        from: &Path,
        read: &Downloaded,
    ) -> Result<Option<String>, StoreError> {
        self.inner.replace_if_match(b, k, from, read).await
    }
}

#[tokio::test]
async fn a_version_written_under_a_users_prefix_during_its_deletion_goes_too_or_is_reported() {
    let flat_users = r#", {"name": "users", "bucket": "PROFILES", "layout": "{workspace}/users/{user}/"}"#;
    // One late write: deleted by the second listing. A writer that keeps
    // writing: still there after the last round, and said so.
    for (times, status, failed) in [(1, "FINISHED", 0), (10, "PARTIAL_SUCCESS", 1)] {
        let env =
            integration_tests::deploy_with_stores(Versioning::None, integration_tests::Signing::Local, flat_users)
                .await;
        let profiles = env.profiles.clone();
        env.put(&profiles, "acme/users/alice/profile.json").await;
        env.put(&profiles, "acme/users/alicia/profile.json").await;
        let (code, body) = regulate(&env, "acme", "DELETE_ONLY", &["alice"]).await;
        assert_eq!(code, 202, "{body:#}");
        let id = id_of(&body);
        let store = LateWriter {
            inner: S3Store::new(env.clients.s3.clone()),
            clients: env.clients.clone(),
            times: std::sync::atomic::AtomicUsize::new(times),
        };
        let purger = worker(&env, store, PurgeConfig::default());
        let outcome = purger.run(&id, "w1", false, None).await.expect("worker");
        assert!(matches!(outcome, PurgeOutcome::Completed { .. }), "{outcome:?}");
        let view = regulation(&env, &id).await;
        assert_eq!(view["status"], status, "{times} late writes: {view:#}");
        assert_eq!(view["totals"]["objects_failed"], failed, "{view:#}");
        let left: Vec<String> = versions(&env, &profiles, "acme/users/")
            .await
            .into_iter()
            .map(|v| v.key)
            .collect();
        if failed == 0 {
            assert_eq!(left, ["acme/users/alicia/profile.json"], "the late version deleted too");
        } else {
            assert!(left.contains(&"acme/users/alice/late.json".to_owned()), "{left:?}");
            let said = view["stores"].to_string();
            assert!(said.contains("acme/users/{user}/late.json"), "named: {view:#}");
            assert!(
                !said.contains("alice"),
                "the id is forgotten, in the notes too: {view:#}"
            );
        }
    }
}
