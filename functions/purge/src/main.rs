use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

use std::sync::Arc;

use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::kms::KmsReceiptSigner;
use deletion_aws::s3::S3Store;
use deletion_aws::scheduler::SchedulerTimers;
use deletion_aws::Clients;
use deletion_core::config;
use deletion_core::datamap::DataMap;
use deletion_core::ports::SystemClock;
use deletion_core::purge::{PurgeConfig, Purger};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use purge::{settings, PurgeEvent, PurgeHandler};
use tokio::sync::OnceCell;

type Handler = PurgeHandler<DynamoLedger, S3Store, SchedulerTimers, SystemClock>;

/// The invocation's end as an `Instant` (the context gives epoch millis).
fn deadline(epoch_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(epoch_ms.saturating_sub(now_ms))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = config::required("LEDGER_TABLE")?;
    let group = config::required("SCHEDULE_GROUP")?;
    let role = config::required("SCHEDULER_ROLE_ARN")?;
    let map = DataMap::from_env()?;
    let receipt_key = config::required("RECEIPT_SIGNING_KEY_ID")?;
    let purge_config = PurgeConfig {
        // Refused unless longer than the function's timeout.
        lease: settings::lease(settings::function_timeout()?)?,
        workers: config::seconds("PURGE_WORKERS", 4, 1, 64)?.num_seconds() as u32,
        deletes_in_flight: config::seconds("DELETES_IN_FLIGHT", 8, 1, 64)?.num_seconds() as usize,
        shards_in_flight: config::seconds("SHARDS_IN_FLIGHT", 4, 1, 64)?.num_seconds() as u32,
        // Of /tmp (EphemeralStorage in the template), what regulations'
        // rewrites may fill at once.
        scratch_bytes: config::seconds("SCRATCH_MIB", 3584, 16, 10_240)?.num_seconds() as u64 * 1024 * 1024,
        wake_lead: config::seconds("TIMER_MIN_LEAD_SECONDS", 60, 0, 3600)?,
        ..PurgeConfig::default()
    };
    let clients = Clients::from_env().await;
    // Extra workers are schedules that invoke this very function, whose ARN
    // the first invocation's context gives.
    let handler: OnceCell<Handler> = OnceCell::new();
    let handler = &handler;
    let build = move |arn: String| {
        let (clients, table, group, role, map, purge_config, receipt_key) = (
            clients.clone(),
            table.clone(),
            group.clone(),
            role.clone(),
            map.clone(),
            purge_config.clone(),
            receipt_key.clone(),
        );
        async move {
            PurgeHandler::new(
                Purger::new(
                    DynamoLedger::new(clients.dynamodb.clone(), table),
                    S3Store::new(clients.s3.clone()),
                    SchedulerTimers::new(clients.scheduler.clone(), group, arn, role),
                    SystemClock,
                    map,
                    purge_config,
                )
                .with_signer(Arc::new(KmsReceiptSigner::new(clients.kms.clone(), receipt_key))),
            )
        }
    };
    let build = &build;
    run(service_fn(move |event: LambdaEvent<PurgeEvent>| async move {
        let handler = handler
            .get_or_init(|| build(event.context.invoked_function_arn.clone()))
            .await;
        let owner = format!("purge:{}", event.context.request_id);
        let until = deadline(event.context.deadline);
        Ok::<_, Error>(handler.handle(event.payload, &owner, Some(until)).await?)
    }))
    .await
}
