use std::sync::Arc;

use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::kms::{KmsReceiptSigner, KmsSigner};
use deletion_aws::webhook::HttpSender;
use deletion_aws::Clients;
use deletion_core::callbacks::Notifier;
use deletion_core::config;
use deletion_core::ports::SystemClock;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use notifier::{CallbackHandler, NotifierEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let table = config::required("LEDGER_TABLE")?;
    let key = config::required("CALLBACK_KMS_KEY_ID")?;
    let opendsr_key = config::required("OPENDSR_KMS_KEY_ID")?;
    let clients = Clients::from_env().await;
    let handler = CallbackHandler::new(
        Notifier::new(
            DynamoLedger::new(clients.dynamodb.clone(), table),
            HttpSender::new(false)?,
            Arc::new(KmsSigner::new(clients.kms.clone(), key)),
            SystemClock,
        )
        .with_opendsr(Arc::new(
            KmsReceiptSigner::new(clients.kms.clone(), opendsr_key).signing_messages(),
        )),
    );
    let handler = &handler;
    run(service_fn(move |event: LambdaEvent<NotifierEvent>| async move {
        Ok::<_, Error>(handler.handle_event(event.payload).await?)
    }))
    .await
}
