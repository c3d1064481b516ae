//! Purge benchmark: the project's purge path against `s5cmd rm` on the
//! same population, in one run. `infra/bench.sh` sets everything up.
//!
//! Scenario "garage": OBJECTS small objects under PREFIXES prefixes on a
//! Garage S3 server (fast enough to measure), the ledger on moto. Scenario
//! "versioned": a versioned bucket on moto (versions, delete markers and
//! unfinished uploads; Garage has no versioning).
//!
//! Printed per tool: objects/s, S3 requests per 1,000 objects (from the
//! server's own request counter where it has one, else counted by a
//! wrapper of the purge's store), client CPU seconds, and what was left.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use counting::CountingStore;
use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::provision;
use deletion_aws::s3::S3Store;
use deletion_aws::scheduler::SchedulerTimers;
use deletion_aws::Clients;
use deletion_core::datamap::DataMap;
use deletion_core::ids::WorkspaceId;
use deletion_core::lifecycle::Periods;
use deletion_core::model::Scope;
use deletion_core::ports::SystemClock;
use deletion_core::purge::{PurgeConfig, PurgeOutcome, Purger};
use deletion_core::requests::Requests;
use futures::stream::{self, StreamExt};
use local_runner::{LOCAL_PURGE_ARN, LOCAL_SCHEDULER_ROLE_ARN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

mod counting {
    //! A store wrapper that counts the S3 calls the purge makes.
    use super::*;
    use deletion_core::ports::{Children, DeleteFailure, Entry, EntryPage, ObjectStore, Upload, UploadPage};
    use deletion_core::StoreError;

    #[derive(Clone)]
    pub struct CountingStore {
        pub inner: S3Store,
        pub calls: Arc<AtomicU64>,
    }

    impl CountingStore {
        fn count(&self) {
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for CountingStore {
        async fn list_page(&self, b: &str, p: &str, c: Option<&str>, max: i32) -> Result<EntryPage, StoreError> {
            self.count();
            self.inner.list_page(b, p, c, max).await
        }
        async fn delete_batch(&self, b: &str, e: &[Entry]) -> Result<Vec<DeleteFailure>, StoreError> {
            self.count();
            self.inner.delete_batch(b, e).await
        }
        async fn list_uploads(&self, b: &str, p: &str, c: Option<&str>) -> Result<UploadPage, StoreError> {
            self.count();
            self.inner.list_uploads(b, p, c).await
        }
        async fn abort_upload(&self, b: &str, u: &Upload) -> Result<(), StoreError> {
            self.count();
            self.inner.abort_upload(b, u).await
        }
        async fn list_children(&self, b: &str, p: &str, cap: usize) -> Result<Children, StoreError> {
            self.count();
            self.inner.list_children(b, p, cap).await
        }
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Sum of Garage's `api_s3_request_counter` (its Prometheus endpoint).
async fn server_requests(metrics: &str) -> Option<u64> {
    let addr = metrics.strip_prefix("http://")?.split('/').next()?.to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.ok()?;
    let req = format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    conn.write_all(req.as_bytes()).await.ok()?;
    let mut body = String::new();
    conn.read_to_string(&mut body).await.ok()?;
    let total: f64 = body
        .lines()
        .filter(|l| l.starts_with("api_s3_request_counter"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    Some(total as u64)
}

struct Measure {
    seconds: f64,
    cpu: f64,
    requests: Option<u64>,
    left: usize,
}

async fn populate(clients: &Clients, bucket: &str, keys: &[String], copies: usize) -> Result<(), BoxError> {
    let puts = keys.iter().flat_map(|k| std::iter::repeat_n(k.clone(), copies));
    let results: Vec<_> = stream::iter(puts)
        .map(|key| async move { provision::put_object(clients, bucket, &key, b"{\"event\":1}\n").await })
        .buffer_unordered(64)
        .collect()
        .await;
    for r in results {
        r?;
    }
    Ok(())
}

fn keys(ws: &str, objects: usize, prefixes: usize) -> Vec<String> {
    (0..objects)
        .map(|i| format!("{ws}/src-{:03}/2024-01-01/part-{i:06}.json", i % prefixes))
        .collect()
}

/// The project's purge: a workspace request with no grace, run by one
/// worker in this process (ledger on moto), timed from claim to receipt.
async fn purge(
    ledger_clients: &Clients,
    store_clients: &Clients,
    table: &str,
    bucket: &str,
    ws: &str,
    metrics: Option<&str>,
) -> Result<Measure, BoxError> {
    let map = DataMap::from_json(&format!(
        r#"{{"stores":[{{"name":"bench","bucket":"{bucket}","layout":"{{workspace}}/{{source}}/{{day}}/"}}]}}"#
    ))?;
    let ledger = DynamoLedger::new(ledger_clients.dynamodb.clone(), table);
    let periods = Periods {
        grace: chrono::Duration::zero(),
        ..Periods::default()
    };
    let requests = Requests::new(ledger.clone(), SystemClock, periods);
    let scope = Scope::Workspace {
        workspace: WorkspaceId::parse(ws)?,
    };
    let request = requests.create(scope, "bench", None, None, None).await?.request;
    let calls = Arc::new(AtomicU64::new(0));
    let store = CountingStore {
        inner: S3Store::new(store_clients.s3.clone()),
        calls: calls.clone(),
    };
    let timers = SchedulerTimers::new(
        ledger_clients.scheduler.clone(),
        env("SCHEDULE_GROUP", "bench-grace"),
        LOCAL_PURGE_ARN,
        LOCAL_SCHEDULER_ROLE_ARN,
    );
    // One worker in this process: the comparison is with one s5cmd process.
    let config = PurgeConfig {
        workers: 1,
        ..PurgeConfig::default()
    };
    let purger = Purger::new(ledger, store, timers, SystemClock, map, config);
    let before = match metrics {
        Some(m) => server_requests(m).await,
        None => None,
    };
    let (t0, c0) = (Instant::now(), cpu_seconds(libc::RUSAGE_SELF));
    let outcome = purger.run(&request.id, "bench", false, None).await?;
    let (seconds, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds(libc::RUSAGE_SELF) - c0);
    if !matches!(outcome, PurgeOutcome::Completed { .. }) {
        return Err(format!("the purge did not complete: {outcome:?}").into());
    }
    let after = match metrics {
        Some(m) => server_requests(m).await,
        None => None,
    };
    // +1: the GetBucketVersioning the store asks once per bucket.
    let requests = match (before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => Some(calls.load(Ordering::Relaxed) + 1),
    };
    let left = left_under(store_clients, bucket, ws).await?;
    Ok(Measure {
        seconds,
        cpu,
        requests,
        left,
    })
}

async fn left_under(clients: &Clients, bucket: &str, ws: &str) -> Result<usize, BoxError> {
    let store = S3Store::new(clients.s3.clone());
    let mut left = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page =
            deletion_core::ports::ObjectStore::list_page(&store, bucket, &format!("{ws}/"), cursor.as_deref(), 1000)
                .await?;
        left += page.entries.len();
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let uploads = deletion_core::ports::ObjectStore::list_uploads(&store, bucket, &format!("{ws}/"), None).await?;
    Ok(left + uploads.uploads.len())
}

async fn s5cmd(
    endpoint: &str,
    creds: (&str, &str),
    bucket: &str,
    ws: &str,
    all_versions: bool,
    metrics: Option<&str>,
) -> Result<(f64, f64, Option<u64>), BoxError> {
    let bin = env("S5CMD", "s5cmd");
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.arg("--endpoint-url").arg(endpoint).arg("rm");
    if all_versions {
        cmd.arg("--all-versions");
    }
    cmd.arg(format!("s3://{bucket}/{ws}/*"))
        .env("AWS_ACCESS_KEY_ID", creds.0)
        .env("AWS_SECRET_ACCESS_KEY", creds.1)
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::null());
    let before = match metrics {
        Some(m) => server_requests(m).await,
        None => None,
    };
    let (t0, c0) = (Instant::now(), cpu_seconds(libc::RUSAGE_CHILDREN));
    let status = cmd.status().await.map_err(|e| format!("cannot run {bin}: {e}"))?;
    let (seconds, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds(libc::RUSAGE_CHILDREN) - c0);
    let after = match metrics {
        Some(m) => server_requests(m).await,
        None => None,
    };
    if !status.success() {
        eprintln!("note: s5cmd exited with {status}");
    }
    let requests = match (before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    Ok((seconds, cpu, requests))
}

fn report(scenario: &str, objects: usize, ours: &Measure, theirs: &Measure) {
    let per_k = |r: Option<u64>| {
        r.map_or("n/a".to_owned(), |r| {
            format!("{:.2}", r as f64 * 1000.0 / objects as f64)
        })
    };
    let rate = |m: &Measure| objects as f64 / m.seconds;
    println!("\n## {scenario}: {objects} entries");
    println!("| tool | seconds | objects/s | S3 requests / 1,000 | client CPU s | left behind |");
    println!("|---|---|---|---|---|---|");
    for (name, m) in [("purge (this project)", ours), ("s5cmd rm", theirs)] {
        println!(
            "| {name} | {:.2} | {:.0} | {} | {:.2} | {} |",
            m.seconds,
            rate(m),
            per_k(m.requests),
            m.cpu,
            m.left
        );
    }
    println!("ratio (purge / s5cmd objects/s): {:.2}", rate(ours) / rate(theirs));
    println!(
        "BENCH {}",
        serde_json::json!({
            "scenario": scenario, "objects": objects,
            "purge": {"seconds": ours.seconds, "objects_per_s": rate(ours), "requests": ours.requests, "cpu_s": ours.cpu, "left": ours.left},
            "s5cmd": {"seconds": theirs.seconds, "objects_per_s": rate(theirs), "requests": theirs.requests, "cpu_s": theirs.cpu, "left": theirs.left},
        })
    );
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let moto = env("MOTO_ENDPOINT", "http://127.0.0.1:5055");
    let scenario = env("SCENARIO", "all");
    let ledger = Clients::for_endpoint(&moto).await;
    let table = env("LEDGER_TABLE", "bench-ledger");
    provision::create_ledger_table(&ledger, &table).await?;
    provision::create_schedule_group(&ledger, &env("SCHEDULE_GROUP", "bench-grace")).await?;

    if scenario == "all" || scenario == "garage" {
        let endpoint = env("S3_ENDPOINT", "http://127.0.0.1:3900");
        let (key, secret) = (env("S3_KEY_ID", ""), env("S3_SECRET", ""));
        let bucket = env("BUCKET", "bench");
        let metrics = std::env::var("METRICS_URL").ok();
        let objects: usize = env("OBJECTS", "100000").parse()?;
        let prefixes: usize = env("PREFIXES", "100").parse()?;
        let garage = Clients::for_endpoint_with(&endpoint, &key, &secret).await;
        let all = keys("bench-a", objects, prefixes);
        eprintln!("populating {objects} objects under {prefixes} prefixes on {endpoint}");
        populate(&garage, &bucket, &all, 1).await?;
        let ours = purge(&ledger, &garage, &table, &bucket, "bench-a", metrics.as_deref()).await?;
        let all = keys("bench-b", objects, prefixes);
        eprintln!("populating again for s5cmd");
        populate(&garage, &bucket, &all, 1).await?;
        let (seconds, cpu, requests) = s5cmd(
            &endpoint,
            (&key, &secret),
            &bucket,
            "bench-b",
            false,
            metrics.as_deref(),
        )
        .await?;
        let left = left_under(&garage, &bucket, "bench-b").await?;
        report(
            "Garage, unversioned",
            objects,
            &ours,
            &Measure {
                seconds,
                cpu,
                requests,
                left,
            },
        );
    }

    if scenario == "all" || scenario == "versioned" {
        let bucket = env("VERSIONED_BUCKET", "bench-versioned");
        let objects: usize = env("VERSIONED_OBJECTS", "2000").parse()?;
        provision::create_bucket(&ledger, &bucket, true).await?;
        let mut entries = 0;
        for ws in ["bench-v", "bench-w"] {
            let all = keys(ws, objects, 20);
            populate(&ledger, &bucket, &all, 2).await?; // a current and a noncurrent version each
            for key in all.iter().step_by(10) {
                provision::delete_key(&ledger, &bucket, key).await?; // delete markers
            }
            for i in 0..10 {
                provision::start_upload(&ledger, &bucket, &format!("{ws}/src-000/2024-01-01/upload-{i}")).await?;
            }
            entries = objects * 2 + objects / 10 + 10;
        }
        eprintln!("versioned: {entries} versions, markers and uploads per workspace on moto");
        let ours = purge(&ledger, &ledger, &table, &bucket, "bench-v", None).await?;
        let (seconds, cpu, requests) = s5cmd(&moto, ("test", "test"), &bucket, "bench-w", true, None).await?;
        let left = left_under(&ledger, &bucket, "bench-w").await?;
        report(
            "moto, versioned",
            entries,
            &ours,
            &Measure {
                seconds,
                cpu,
                requests,
                left,
            },
        );
    }
    Ok(())
}
