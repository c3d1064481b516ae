use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::s3::S3Store;
use deletion_aws::Clients;
use deletion_core::config;
use deletion_core::datamap::DataMap;
use deletion_core::ports::SystemClock;
use deletion_core::purge::{PurgeConfig, Purger};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use purge::{PurgeEvent, PurgeHandler};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = config::required("LEDGER_TABLE")?;
    let map = DataMap::from_env()?;
    let lease = config::seconds("LEASE_SECONDS", 960, 60, 86_400)?;
    let clients = Clients::from_env().await;
    let purger = Purger::new(
        DynamoLedger::new(clients.dynamodb.clone(), table),
        S3Store::new(clients.s3.clone()),
        SystemClock,
        map,
        PurgeConfig {
            lease,
            ..PurgeConfig::default()
        },
    );
    let handler = PurgeHandler::new(purger);
    let handler = &handler;
    run(service_fn(
        move |event: LambdaEvent<PurgeEvent>| async move {
            let owner = format!("purge:{}", event.context.request_id);
            Ok::<_, Error>(handler.handle(event.payload, &owner).await?)
        },
    ))
    .await
}
