//! `local-runner`: serves the API on loopback against DynamoDB Local (the
//! ledger) and moto (S3, Scheduler, KMS), and plays the AWS parts they lack
//! (stream → grace-timer, due schedules → purge).
//!
//! Environment: `AWS_ENDPOINT_URL` (moto), `AWS_ENDPOINT_URL_DYNAMODB`
//! (DynamoDB Local; its streams too), `LEDGER_TABLE`, `SCHEDULE_GROUP`,
//! `DATA_MAP_FILE` or `DATA_MAP`, `GRACE_SECONDS`, `PORT` (default 8787),
//! `VERSIONED_BUCKETS` (comma-separated), `LOCAL_OPENDSR_KEY`, `LOCAL_RECEIPT_KEY` and
//! `LOCAL_CALLBACK_KEY`, `LOCAL_SUBJECT_KEY` (development HMAC keys, KMS's part in AWS).

use std::net::SocketAddr;
use std::time::Duration;

use deletion_aws::{Clients, LocalEndpoints};
use deletion_core::config;
use deletion_core::datamap::DataMap;
use deletion_core::ports::SystemClock;
use deletion_core::purge::PurgeConfig;
use local_runner::{Settings, Stack};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let endpoints = LocalEndpoints {
        aws: config::required("AWS_ENDPOINT_URL")?,
        dynamodb: config::required("AWS_ENDPOINT_URL_DYNAMODB")?,
    };
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8787);
    let settings = Settings {
        table: config::required("LEDGER_TABLE")?,
        schedule_group: config::required("SCHEDULE_GROUP")?,
        map: DataMap::from_env()?,
        periods: config::periods_from_env()?,
        purge: PurgeConfig {
            lease: config::seconds("LEASE_SECONDS", 960, 5, 86_400)?,
            ..PurgeConfig::default()
        },
        receipt_key: std::env::var("LOCAL_RECEIPT_KEY")
            .unwrap_or_else(|_| "local-receipt-key-never-used-in-aws".to_owned()),
        callback_key: std::env::var("LOCAL_CALLBACK_KEY")
            .unwrap_or_else(|_| "local-callback-key-never-used-in-aws".to_owned()),
        limits: config::limits_from_env()?,
        subject_key: std::env::var("LOCAL_SUBJECT_KEY")
            .unwrap_or_else(|_| "local-subject-key-never-used-in-aws".to_owned()),
        opendsr_key: std::env::var("LOCAL_OPENDSR_KEY")
            .unwrap_or_else(|_| "local-opendsr-key-never-used-in-aws".to_owned()),
        versioned_buckets: std::env::var("VERSIONED_BUCKETS")
            .unwrap_or_default()
            .split(',')
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .collect(),
        kms: None,
    };
    let clients = Clients::for_local(&endpoints).await;
    let stack = Stack::new(clients, settings, SystemClock)?;
    stack.provision().await?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let issuer = local_runner::token::DevIssuer::from_env();
    tracing::info!(issuer = %issuer.issuer, audience = %issuer.audience, "tokens: make one with target/debug/mint-token SUB [SCOPE ...]");
    tokio::spawn(local_runner::http::serve(addr, stack.intake.clone(), issuer));
    tracing::info!(%addr, grace_seconds = stack.settings.periods.grace.num_seconds(), "API listening");
    let sweep_every = config::seconds("SWEEP_SECONDS", 30, 1, 86_400)?.num_seconds() as u64;
    let mut last_sweep = std::time::Instant::now();
    // The retention schedule (hourly in AWS); each workspace is enforced
    // once a day, and again after a change takes effect.
    let retention_every = config::seconds("RETENTION_SECONDS", 10, 1, 86_400)?.num_seconds() as u64;
    let mut last_retention: Option<std::time::Instant> = None;
    loop {
        if let Err(e) = stack.tick().await {
            tracing::warn!(error = %e, "runner round failed; retrying");
        }
        if last_sweep.elapsed().as_secs() >= sweep_every {
            last_sweep = std::time::Instant::now();
            if let Err(e) = stack.grace_timer.sweep().await {
                tracing::warn!(error = %e, "sweep failed; retrying");
            }
        }
        if last_retention.is_none_or(|t| t.elapsed().as_secs() >= retention_every) {
            last_retention = Some(std::time::Instant::now());
            if let Err(e) = stack.run_retention().await {
                tracing::warn!(error = %e, "retention run failed; retrying");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
