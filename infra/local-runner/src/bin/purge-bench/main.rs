//! Purge benchmark: the project's purge path against the ceiling (a plain
//! ListObjectsV2 + DeleteObjects loop, 16 batches in flight, no ledger)
//! and `s5cmd rm`, each on a population of its own, every scenario
//! repeated REPEAT times per tool. `infra/bench.sh` sets everything up.
//!
//! Scenarios on a Garage S3 server (fast enough to measure): "prefixes",
//! OBJECTS objects under PREFIXES sources; "sources", OBJECTS under SOURCES
//! sources (more children of the workspace prefix than a purge takes as
//! shards at once); "flat", OBJECTS keys directly under the workspace
//! prefix. Scenario "versioned": a versioned bucket on moto (versions,
//! delete markers and unfinished uploads; Garage has no versioning), the
//! purge against `s5cmd rm --all-versions`.
//!
//! The purge's ledger is on DynamoDB Local, its client metered
//! (`deletion_aws::capacity`), so each purge run reports the read and
//! write units it consumed; its timers are on moto. Scenario "claims":
//! the ledger's cost of taking one shard at 10, 1,000 and 10,000 shards.

mod claims;
mod counting;
mod quiet;
mod report;
mod tools;

use std::future::Future;

use deletion_aws::capacity::CapacityMeter;
use deletion_aws::{provision, Clients, LocalEndpoints};

use report::{report, Runs};
use tools::{Ledger, Measure, Target};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn number(name: &str, default: usize) -> Result<usize, BoxError> {
    env(name, &default.to_string())
        .parse()
        .map_err(|e| format!("{name}: {e}").into())
}

/// How the keys of a Garage scenario are laid out.
#[derive(Clone, Copy)]
enum Layout {
    /// `{ws}/src-NNNN/2024-01-01/part-NNNNNN.json` over this many sources.
    Sources(usize),
    /// `{ws}/part-NNNNNN.json`.
    Flat,
}

fn keys(ws: &str, objects: usize, layout: Layout) -> Vec<String> {
    (0..objects)
        .map(|i| match layout {
            Layout::Sources(n) => format!("{ws}/src-{:04}/2024-01-01/part-{i:06}.json", i % n),
            Layout::Flat => format!("{ws}/part-{i:06}.json"),
        })
        .collect()
}

struct Settings {
    repeat: usize,
    tools: Vec<String>,
    scenarios: Vec<String>,
}

impl Settings {
    fn wants(&self, scenario: &str, family: &str) -> bool {
        self.scenarios
            .iter()
            .any(|s| s == "all" || s == scenario || s == family)
    }

    fn runs(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| t == tool)
    }
}

/// Every run of `tools` on a fresh population each: `make(ws)` puts it
/// there, `run(tool, ws)` removes it, once the servers are quiet
/// (`quiet::settle`). Repetitions interleave the tools, so a slow spell of
/// the machine does not fall on one tool only.
async fn repeated<P, PF, R, RF>(
    settings: &Settings,
    tag: &str,
    tools: &[&'static str],
    make: P,
    run: R,
) -> Result<Vec<Runs>, BoxError>
where
    P: Fn(String) -> PF,
    PF: Future<Output = Result<(), BoxError>>,
    R: Fn(&'static str, String) -> RF,
    RF: Future<Output = Result<Measure, BoxError>>,
{
    let tools: Vec<&'static str> = tools.iter().copied().filter(|t| settings.runs(t)).collect();
    let mut all: Vec<Runs> = tools.iter().map(|&tool| Runs { tool, runs: vec![] }).collect();
    // Each run starts on quiet servers: what the last population or run
    // left them to do falls on no tool.
    let servers = quiet::server_pids();
    for rep in 1..=settings.repeat {
        for (i, &tool) in tools.iter().enumerate() {
            let ws = format!("b-{tag}-{tool}-{rep}");
            eprintln!("{tag}: run {rep}/{}, {tool}: populating {ws}", settings.repeat);
            make(ws.clone()).await?;
            let (waited, quiet) = quiet::settle(&servers).await;
            if !quiet {
                eprintln!(
                    "{tag}: the servers were still busy after {:.0} s; timing anyway",
                    waited.as_secs_f64()
                );
            }
            let measure = run(tool, ws).await?;
            eprintln!("{tag}: run {rep}, {tool}: {:.2} s", measure.seconds);
            all[i].runs.push(measure);
        }
    }
    Ok(all)
}

/// The Garage scenarios that `settings` asks for.
async fn garage(settings: &Settings, ledger: &Ledger<'_>) -> Result<(), BoxError> {
    let endpoint = env("S3_ENDPOINT", "http://127.0.0.1:3900");
    let (key, secret) = (env("S3_KEY_ID", ""), env("S3_SECRET", ""));
    let bucket = env("BUCKET", "bench");
    let metrics = std::env::var("METRICS_URL").ok();
    let objects = number("OBJECTS", 100_000)?;
    let (prefixes, sources) = (number("PREFIXES", 100)?, number("SOURCES", 1000)?);
    let clients = Clients::for_endpoint_with(&endpoint, &key, &secret).await;
    let target = Target {
        clients: &clients,
        endpoint: &endpoint,
        creds: (&key, &secret),
        bucket: &bucket,
        metrics: metrics.as_deref(),
    };
    let scenarios = [
        (
            "prefixes",
            format!("Garage, {objects} objects under {prefixes} prefixes"),
            Layout::Sources(prefixes),
        ),
        (
            "sources",
            format!("Garage, {objects} objects under {sources} sources"),
            Layout::Sources(sources),
        ),
        (
            "flat",
            format!("Garage, {objects} objects in one flat prefix"),
            Layout::Flat,
        ),
    ];
    for (tag, title, layout) in scenarios {
        if !settings.wants(tag, "garage") {
            continue;
        }
        let (clients, bucket, target) = (&clients, &bucket, &target);
        let make = |ws: String| async move { tools::populate(clients, bucket, &keys(&ws, objects, layout), 1).await };
        let run = |tool: &'static str, ws: String| async move {
            match tool {
                "purge" => tools::purge(ledger, target, &ws).await,
                "ceiling" => tools::ceiling(target, &ws).await,
                _ => tools::s5cmd(target, &ws, false).await,
            }
        };
        let runs = repeated(settings, tag, &["purge", "ceiling", "s5cmd"], make, run).await?;
        report(&title, objects, &runs);
    }
    Ok(())
}

/// The versioned scenario on moto: per workspace, two versions of each of
/// VERSIONED_OBJECTS keys, a delete marker on every tenth, 10 open uploads.
async fn versioned(settings: &Settings, ledger: &Ledger<'_>, moto: &Clients, endpoint: &str) -> Result<(), BoxError> {
    let bucket = env("VERSIONED_BUCKET", "bench-versioned");
    let objects = number("VERSIONED_OBJECTS", 2000)?;
    provision::create_bucket(moto, &bucket, true).await?;
    let target = Target {
        clients: moto,
        endpoint,
        creds: ("test", "test"),
        bucket: &bucket,
        metrics: None,
    };
    let (bucket, target) = (&bucket, &target);
    let make = |ws: String| async move {
        let all = keys(&ws, objects, Layout::Sources(20));
        tools::populate(moto, bucket, &all, 2).await?;
        for key in all.iter().step_by(10) {
            provision::delete_key(moto, bucket, key).await?;
        }
        for i in 0..10 {
            provision::start_upload(moto, bucket, &format!("{ws}/src-0000/2024-01-01/upload-{i}")).await?;
        }
        Ok(())
    };
    let run = |tool: &'static str, ws: String| async move {
        match tool {
            "purge" => tools::purge(ledger, target, &ws).await,
            _ => tools::s5cmd(target, &ws, true).await,
        }
    };
    let runs = repeated(settings, "versioned", &["purge", "s5cmd"], make, run).await?;
    let entries = objects * 2 + objects / 10 + 10;
    report("moto, versioned", entries, &runs);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let list = |name: &str, default: &str| env(name, default).split(',').map(|s| s.trim().to_owned()).collect();
    let settings = Settings {
        repeat: number("REPEAT", 3)?.max(1),
        tools: list("TOOLS", "purge,ceiling,s5cmd"),
        scenarios: list("SCENARIO", "all"),
    };
    let moto = env("MOTO_ENDPOINT", "http://127.0.0.1:5055");
    let endpoints = LocalEndpoints {
        dynamodb: env("DYNAMODB_ENDPOINT", &moto),
        aws: moto.clone(),
    };
    let meter = CapacityMeter::new();
    let ledger_clients = Clients::for_local_metered(&endpoints, "test", "test", &meter).await;
    let table = env("LEDGER_TABLE", "bench-ledger");
    provision::create_ledger_table(&ledger_clients, &table).await?;
    provision::create_schedule_group(&ledger_clients, &env("SCHEDULE_GROUP", "bench-grace")).await?;
    let ledger = Ledger {
        clients: &ledger_clients,
        table: &table,
        meter: &meter,
    };
    if settings.wants("claims", "ledger") {
        claims::claims(&ledger).await?;
    }
    garage(&settings, &ledger).await?;
    if settings.wants("versioned", "moto") {
        versioned(&settings, &ledger, &ledger_clients, &moto).await?;
    }
    Ok(())
}
