//! The tools under comparison, each run once on a population of its own:
//! the project's purge, the ceiling (a plain delete loop, no ledger) and
//! `s5cmd rm`. Each run is measured the same way: wall time, client CPU
//! (getrusage), S3 requests (the server's own counter where it has one)
//! and what was left under the workspace's prefix afterwards.

use std::future::Future;
use std::time::Instant;

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use deletion_aws::capacity::{CapacityMeter, Consumed};
use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::provision;
use deletion_aws::s3::S3Store;
use deletion_aws::scheduler::SchedulerTimers;
use deletion_aws::Clients;
use deletion_core::datamap::DataMap;
use deletion_core::ids::WorkspaceId;
use deletion_core::lifecycle::Periods;
use deletion_core::model::Scope;
use deletion_core::ports::{ObjectStore, SystemClock};
use deletion_core::purge::{PurgeConfig, PurgeOutcome, Purger};
use deletion_core::requests::Requests;
use futures::stream::{self, StreamExt};
use local_runner::{LOCAL_PURGE_ARN, LOCAL_SCHEDULER_ROLE_ARN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::counting::CountingStore;
use crate::{env, BoxError};

/// DeleteObjects calls the ceiling keeps in flight.
const CEILING_IN_FLIGHT: usize = 16;

/// One run of one tool.
#[derive(Clone, Debug)]
pub struct Measure {
    pub seconds: f64,
    pub cpu: f64,
    pub requests: Option<u64>,
    pub left: usize,
    /// What the ledger consumed (the purge only).
    pub ledger: Option<Consumed>,
    /// The purge's store calls, per operation.
    pub store_calls: Option<std::collections::BTreeMap<&'static str, u64>>,
}

/// Where the objects are.
pub struct Target<'a> {
    pub clients: &'a Clients,
    pub endpoint: &'a str,
    pub creds: (&'a str, &'a str),
    pub bucket: &'a str,
    /// Garage's Prometheus endpoint (none on moto).
    pub metrics: Option<&'a str>,
}

/// The purge's ledger (DynamoDB Local, metered) and timers (moto).
pub struct Ledger<'a> {
    pub clients: &'a Clients,
    pub table: &'a str,
    pub meter: &'a CapacityMeter,
}

pub fn cpu_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Sum of Garage's `api_s3_request_counter` (its Prometheus endpoint).
async fn server_requests(metrics: Option<&str>) -> Option<u64> {
    let addr = metrics?.strip_prefix("http://")?.split('/').next()?.to_owned();
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

/// Runs `work`, measuring wall time, the CPU of `who` and the server's
/// requests; the measure's `left` is filled in by the caller.
async fn timed<F>(metrics: Option<&str>, who: libc::c_int, work: F) -> Result<Measure, BoxError>
where
    F: Future<Output = Result<(), BoxError>>,
{
    let before = server_requests(metrics).await;
    let (t0, c0) = (Instant::now(), cpu_seconds(who));
    work.await?;
    let (seconds, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds(who) - c0);
    let after = server_requests(metrics).await;
    Ok(Measure {
        seconds,
        cpu,
        requests: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
        left: 0,
        ledger: None,
        store_calls: None,
    })
}

pub async fn populate(clients: &Clients, bucket: &str, keys: &[String], copies: usize) -> Result<(), BoxError> {
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

/// Objects (every version), markers and open uploads under `{ws}/`.
pub async fn left_under(clients: &Clients, bucket: &str, ws: &str) -> Result<usize, BoxError> {
    let store = S3Store::new(clients.s3.clone());
    let prefix = format!("{ws}/");
    let mut left = 0;
    let mut cursor: Option<String> = None;
    loop {
        let page = store.list_page(bucket, &prefix, cursor.as_deref(), 1000).await?;
        left += page.entries.len();
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    let uploads = store.list_uploads(bucket, &prefix, None).await?;
    Ok(left + uploads.uploads.len())
}

/// The project's purge: a workspace request with no grace, run by one
/// worker in this process, timed from claim to receipt; the ledger's
/// consumption is that of the run (the request's creation is not in it).
pub async fn purge(ledger: &Ledger<'_>, target: &Target<'_>, ws: &str) -> Result<Measure, BoxError> {
    let bucket = target.bucket;
    let map = DataMap::from_json(&format!(
        r#"{{"stores":[{{"name":"bench","bucket":"{bucket}","layout":"{{workspace}}/{{source}}/{{day}}/"}}]}}"#
    ))?;
    let table = DynamoLedger::new(ledger.clients.dynamodb.clone(), ledger.table);
    let periods = Periods {
        grace: chrono::Duration::zero(),
        ..Periods::default()
    };
    let requests = Requests::new(table.clone(), SystemClock, periods);
    let scope = Scope::Workspace {
        workspace: WorkspaceId::parse(ws)?,
    };
    let request = requests.create(scope, "bench", None, None, None).await?.request;
    let store = CountingStore::new(S3Store::new(target.clients.s3.clone()));
    let counted = store.clone();
    let timers = SchedulerTimers::new(
        ledger.clients.scheduler.clone(),
        env("SCHEDULE_GROUP", "bench-grace"),
        LOCAL_PURGE_ARN,
        LOCAL_SCHEDULER_ROLE_ARN,
    );
    // One worker in this process (the comparison is with one s5cmd
    // process), with the purge function's lanes and deletes in flight.
    let config = PurgeConfig {
        workers: 1,
        shards_in_flight: crate::number("SHARDS_IN_FLIGHT", 4)? as u32,
        deletes_in_flight: crate::number("DELETES_IN_FLIGHT", 8)?,
        ..PurgeConfig::default()
    };
    let purger = Purger::new(table, store, timers, SystemClock, map, config);
    let before = ledger.meter.snapshot();
    let run = async {
        match purger.run(&request.id, "bench", false, None).await? {
            PurgeOutcome::Completed { .. } => Ok(()),
            other => Err(format!("the purge did not complete: {other:?}").into()),
        }
    };
    let mut measure = timed(target.metrics, libc::RUSAGE_SELF, run).await?;
    measure.ledger = Some(ledger.meter.snapshot().since(&before));
    // Without a server counter: the store's calls, +1 for the
    // GetBucketVersioning the store asks once per bucket.
    let calls = counted.calls();
    eprintln!("purge: S3 calls of the store: {calls:?}");
    measure.requests = measure.requests.or(Some(calls.values().sum::<u64>() + 1));
    measure.store_calls = Some(calls);
    measure.left = left_under(target.clients, bucket, ws).await?;
    Ok(measure)
}

/// The ceiling: ListObjectsV2 pages of 1,000 and one DeleteObjects per
/// page, `CEILING_IN_FLIGHT` of them in flight; no ledger, no checks.
pub async fn ceiling(target: &Target<'_>, ws: &str) -> Result<Measure, BoxError> {
    let run = delete_loop(target.clients.s3.clone(), target.bucket.to_owned(), format!("{ws}/"));
    let mut measure = timed(target.metrics, libc::RUSAGE_SELF, run).await?;
    measure.left = left_under(target.clients, target.bucket, ws).await?;
    Ok(measure)
}

async fn delete_loop(s3: aws_sdk_s3::Client, bucket: String, prefix: String) -> Result<(), BoxError> {
    let mut in_flight = tokio::task::JoinSet::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&bucket)
            .prefix(&prefix)
            .max_keys(1000)
            .set_continuation_token(token.take())
            .send()
            .await?;
        let ids = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(|key| ObjectIdentifier::builder().key(key).build())
            .collect::<Result<Vec<_>, _>>()?;
        if !ids.is_empty() {
            while in_flight.len() >= CEILING_IN_FLIGHT {
                joined(in_flight.join_next().await)?;
            }
            let delete = Delete::builder().set_objects(Some(ids)).quiet(true).build()?;
            let call = s3.delete_objects().bucket(&bucket).delete(delete).send();
            in_flight.spawn(async move {
                let out = call.await?;
                match out.errors().first() {
                    None => Ok(()),
                    Some(e) => Err(format!("DeleteObjects refused {:?}: {:?}", e.key(), e.code()).into()),
                }
            });
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    while let Some(done) = in_flight.join_next().await {
        joined(Some(done))?;
    }
    Ok(())
}

fn joined(done: Option<Result<Result<(), BoxError>, tokio::task::JoinError>>) -> Result<(), BoxError> {
    match done {
        Some(result) => result?,
        None => Ok(()),
    }
}

/// `s5cmd rm s3://bucket/ws/*` (with `--all-versions` on a versioned
/// bucket), its CPU from getrusage of the children.
pub async fn s5cmd(target: &Target<'_>, ws: &str, all_versions: bool) -> Result<Measure, BoxError> {
    let bin = env("S5CMD", "s5cmd");
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.arg("--endpoint-url").arg(target.endpoint).arg("rm");
    if all_versions {
        cmd.arg("--all-versions");
    }
    cmd.arg(format!("s3://{}/{ws}/*", target.bucket))
        .env("AWS_ACCESS_KEY_ID", target.creds.0)
        .env("AWS_SECRET_ACCESS_KEY", target.creds.1)
        .env("AWS_REGION", "us-east-1")
        .stdout(std::process::Stdio::null());
    let run = async {
        let status = cmd.status().await.map_err(|e| format!("cannot run {bin}: {e}"))?;
        if !status.success() {
            eprintln!("note: s5cmd exited with {status}");
        }
        Ok(())
    };
    let mut measure = timed(target.metrics, libc::RUSAGE_CHILDREN, run).await?;
    measure.left = left_under(target.clients, target.bucket, ws).await?;
    Ok(measure)
}
