use std::sync::Arc;

use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::kms::{KmsReceiptSigner, KmsSigner};
use deletion_aws::s3::S3Store;
use deletion_aws::Clients;
use deletion_core::callbacks::UrlPolicy;
use deletion_core::config;
use deletion_core::datamap::DataMap;
use deletion_core::plan::Planner;
use deletion_core::ports::SystemClock;
use deletion_core::requests::Requests;
use deletion_core::signing::KeyRing;
use intake::{CallbackConfig, Intake, OpenDsrConfig};
use lambda_http::{run, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let table = config::required("LEDGER_TABLE")?;
    let periods = config::periods_from_env()?;
    let map = DataMap::from_env()?;
    let signing_key = config::required("RECEIPT_SIGNING_KEY_ID")?;
    // Receipts signed before the signing key, still checked.
    let receipt_key = config::required("RECEIPT_KMS_KEY_ID")?;
    let callback_key = config::required("CALLBACK_KMS_KEY_ID")?;
    let subject_key = config::required("SUBJECT_KMS_KEY_ID")?;
    let opendsr_key = config::required("OPENDSR_KMS_KEY_ID")?;
    let optional = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let clients = Clients::from_env().await;
    let intake = Intake::new(
        Requests::new(DynamoLedger::new(clients.dynamodb.clone(), table), SystemClock, periods),
        Planner::new(S3Store::new(clients.s3.clone()), map),
        Arc::new(KmsSigner::new(clients.kms.clone(), subject_key)),
    )
    .with_signer(Arc::new(
        KeyRing::new(Arc::new(KmsReceiptSigner::new(clients.kms.clone(), signing_key)))
            .with_earlier(Arc::new(KmsSigner::new(clients.kms.clone(), receipt_key))),
    ))
    .with_limits(config::limits_from_env()?)
    .with_callbacks(CallbackConfig {
        policy: UrlPolicy::default(),
        key: Arc::new(KmsSigner::new(clients.kms.clone(), callback_key)),
    })
    .with_opendsr(OpenDsrConfig {
        signer: Arc::new(KmsReceiptSigner::new(clients.kms.clone(), opendsr_key).signing_messages()),
        domain: optional("OPENDSR_DOMAIN"),
        certificate_url: optional("OPENDSR_CERTIFICATE_URL"),
    });
    run(Arc::new(intake).router()).await
}
