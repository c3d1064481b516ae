//! The local runner: the deletion service on one machine, against moto.
//!
//! moto stores stream records and schedules but runs no Lambda triggers and
//! never fires a schedule. The runner plays those parts with the *same*
//! handlers as in AWS: it feeds the ledger's stream records to the
//! grace-timer handler, fires due one-shot schedules into the purge handler
//! (then deletes them, as `ActionAfterCompletion: DELETE` does), feeds the
//! same records to the notifier and retries its due callbacks (the
//! recurring schedule's part), and serves the intake handler over HTTP.

pub mod http;
pub mod token;

use std::sync::Arc;

use deletion_aws::dynamodb::DynamoLedger;
use deletion_aws::kms::{KmsReceiptSigner, KmsSigner};
use deletion_aws::provision;
use deletion_aws::s3::S3Store;
use deletion_aws::scheduler::SchedulerTimers;
use deletion_aws::streams::{self, ChangedKey, StreamFeed};
use deletion_aws::webhook::HttpSender;
use deletion_aws::Clients;
use deletion_core::callbacks::{Notifier, UrlPolicy};
use deletion_core::datamap::DataMap;
use deletion_core::lifecycle::Periods;
use deletion_core::plan::Planner;
use deletion_core::ports::Clock;
use deletion_core::purge::{PurgeConfig, Purger};
use deletion_core::requests::Requests;
use deletion_core::retention::{Enforcer, RetentionReport};
use deletion_core::signing::{Ed25519Signer, HmacSigner, KeyRing, ReceiptSigner};
use grace_timer::{BatchResponse, GraceTimer, RetentionTimer, StreamEvent};
use intake::{CallbackConfig, Intake, OpenDsrConfig};
use notifier::{CallbackHandler, NotifierEvent};
use purge::{PurgeEvent, PurgeHandler, PurgeResult};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RunnerError {
    #[error("provisioning failed: {0}")]
    Provision(String),
    #[error(transparent)]
    Stream(#[from] deletion_aws::streams::FeedError),
    #[error(transparent)]
    Timer(#[from] deletion_core::TimerError),
    #[error(transparent)]
    Service(#[from] deletion_core::ServiceError),
    #[error("callbacks cannot be sent: {0}")]
    Callbacks(#[from] std::io::Error),
    #[error("schedule {name} has an input the purge function cannot read: {reason}")]
    BadScheduleInput { name: String, reason: String },
    #[error(transparent)]
    Signing(#[from] deletion_core::signing::SignError),
}

/// Names and settings of one local deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub table: String,
    pub schedule_group: String,
    pub map: DataMap,
    pub periods: Periods,
    pub purge: PurgeConfig,
    /// Buckets of the map to create with versioning on.
    pub versioned_buckets: Vec<String>,
    /// The secret the receipts' Ed25519 key derives from (KMS's
    /// asymmetric key in AWS); receipts signed before with the HMAC key of
    /// the same secret are still checked.
    pub receipt_key: String,
    /// The HMAC key callback secrets derive from (KMS's part in AWS).
    pub callback_key: String,
    /// The HMAC key subjects' digests derive from (KMS's part in AWS).
    pub subject_key: String,
    /// The secret the OpenDSR Ed25519 key derives from (KMS's
    /// `OpenDsrKey` in AWS).
    pub opendsr_key: String,
    /// The quotas of a workspace without its own.
    pub limits: deletion_core::model::quota::Limits,
    /// Sign with these KMS keys instead of the local ones, as in AWS.
    pub kms: Option<KmsKeys>,
}

/// The KMS keys of a deployment: the template's `ReceiptSigningKey`
/// (ECC_NIST_P256) and its HMAC keys `ReceiptKey` (receipts issued before
/// the signing key), `CallbackKey` and `SubjectKey`.
#[derive(Debug, Clone)]
pub struct KmsKeys {
    pub receipt_signing: String,
    pub opendsr: String,
    pub receipts: String,
    pub callbacks: String,
    pub subjects: String,
}

/// The key the intake derives subjects' digests from.
fn subject_signer(settings: &Settings, clients: &Clients) -> Arc<dyn ReceiptSigner> {
    match &settings.kms {
        Some(keys) => Arc::new(KmsSigner::new(clients.kms.clone(), keys.subjects.clone())),
        None => Arc::new(HmacSigner::new("subjects", settings.subject_key.as_bytes())),
    }
}

/// The receipt keys (sign with the asymmetric key, check under it and the
/// earlier HMAC key) and the callback key a function signs with.
type Signers = (Arc<dyn ReceiptSigner>, Arc<dyn ReceiptSigner>);

fn signers(settings: &Settings, clients: &Clients) -> Result<Signers, RunnerError> {
    Ok(match &settings.kms {
        Some(keys) => (
            Arc::new(
                KeyRing::new(Arc::new(KmsReceiptSigner::new(
                    clients.kms.clone(),
                    keys.receipt_signing.clone(),
                )))
                .with_earlier(Arc::new(KmsSigner::new(clients.kms.clone(), keys.receipts.clone()))),
            ),
            Arc::new(KmsSigner::new(clients.kms.clone(), keys.callbacks.clone())),
        ),
        None => (
            Arc::new(
                KeyRing::new(Arc::new(Ed25519Signer::from_secret(
                    "receipts",
                    settings.receipt_key.as_bytes(),
                )?))
                .with_earlier(Arc::new(HmacSigner::new("receipts", settings.receipt_key.as_bytes()))),
            ),
            Arc::new(HmacSigner::new("callbacks", settings.callback_key.as_bytes())),
        ),
    })
}

/// The key OpenDSR answers and callbacks are signed with.
fn opendsr_signer(settings: &Settings, clients: &Clients) -> Result<Arc<dyn ReceiptSigner>, RunnerError> {
    Ok(match &settings.kms {
        Some(keys) => Arc::new(KmsReceiptSigner::new(clients.kms.clone(), keys.opendsr.clone()).signing_messages()),
        None => Arc::new(Ed25519Signer::from_secret("opendsr", settings.opendsr_key.as_bytes())?.signing_messages()),
    })
}

/// The clients each function runs with: in tests each under credentials
/// of its own, so each is held to its own IAM policy.
#[derive(Clone, Debug)]
pub struct FunctionClients {
    pub intake: Clients,
    pub grace_timer: Clients,
    pub purge: Clients,
    pub notifier: Clients,
}

impl FunctionClients {
    /// Every function with the same clients.
    pub fn shared(clients: &Clients) -> FunctionClients {
        FunctionClients {
            intake: clients.clone(),
            grace_timer: clients.clone(),
            purge: clients.clone(),
            notifier: clients.clone(),
        }
    }
}

/// The functions, wired to their clients and one clock. `clients`,
/// `ledger` and `schedules` are the runner's own (the parts AWS plays:
/// the stream's event source mappings, the Scheduler firing).
pub struct Stack<C> {
    pub clients: Clients,
    pub settings: Settings,
    pub clock: C,
    pub intake: std::sync::Arc<Intake<DynamoLedger, S3Store, C>>,
    pub grace_timer: GraceTimer<DynamoLedger, SchedulerTimers, C>,
    /// The grace-timer function's retention enforcement.
    pub retention: RetentionTimer<DynamoLedger, S3Store, C>,
    pub purge: PurgeHandler<DynamoLedger, S3Store, SchedulerTimers, C>,
    pub notifier: CallbackHandler<DynamoLedger, HttpSender, C>,
    pub schedules: SchedulerTimers,
    pub ledger: DynamoLedger,
    feed: tokio::sync::Mutex<StreamFeed>,
    /// Records each consumer reported failed, to deliver again.
    retry: tokio::sync::Mutex<Retries>,
}

#[derive(Default)]
struct Retries {
    timer: Vec<ChangedKey>,
    notifier: Vec<ChangedKey>,
}

/// Stand-in ARNs: moto stores them, nothing invokes them.
pub const LOCAL_PURGE_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:purge";
pub const LOCAL_SCHEDULER_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/deletion-scheduler";

impl<C: Clock + Clone + 'static> Stack<C> {
    pub fn new(clients: Clients, settings: Settings, clock: C) -> Result<Self, RunnerError> {
        let functions = FunctionClients::shared(&clients);
        Stack::with_functions(clients, functions, settings, clock)
    }

    /// With clients of its own for each function (`clients` for the
    /// runner's own parts).
    pub fn with_functions(
        clients: Clients,
        functions: FunctionClients,
        settings: Settings,
        clock: C,
    ) -> Result<Self, RunnerError> {
        let ledger_of = |c: &Clients| DynamoLedger::new(c.dynamodb.clone(), settings.table.clone());
        let schedules_of = |c: &Clients| {
            SchedulerTimers::new(
                c.scheduler.clone(),
                settings.schedule_group.clone(),
                LOCAL_PURGE_ARN,
                LOCAL_SCHEDULER_ROLE_ARN,
            )
        };
        let ledger = ledger_of(&clients);
        let schedules = schedules_of(&clients);
        let (signer, callback_key) = signers(&settings, &functions.intake)?;
        let intake = std::sync::Arc::new(
            Intake::new(
                Requests::new(ledger_of(&functions.intake), clock.clone(), settings.periods),
                Planner::new(S3Store::new(functions.intake.s3.clone()), settings.map.clone()),
                subject_signer(&settings, &functions.intake),
            )
            .with_signer(signer)
            .with_limits(settings.limits)
            // Locally receivers listen on loopback, over plain http.
            .with_callbacks(CallbackConfig {
                policy: UrlPolicy { allow_private: true },
                key: callback_key.clone(),
            })
            .with_opendsr(OpenDsrConfig {
                signer: opendsr_signer(&settings, &functions.intake)?,
                domain: None,
                certificate_url: None,
            }),
        );
        let notifier = CallbackHandler::new(
            Notifier::new(
                ledger_of(&functions.notifier),
                HttpSender::new(true)?,
                signers(&settings, &functions.notifier)?.1,
                clock.clone(),
            )
            .with_opendsr(opendsr_signer(&settings, &functions.notifier)?),
        );
        let grace_timer = GraceTimer::new(
            ledger_of(&functions.grace_timer),
            schedules_of(&functions.grace_timer),
            clock.clone(),
        );
        let retention = RetentionTimer::new(Enforcer::new(
            Requests::new(ledger_of(&functions.grace_timer), clock.clone(), settings.periods),
            Planner::new(S3Store::new(functions.grace_timer.s3.clone()), settings.map.clone()),
        ));
        let purge = PurgeHandler::new(
            Purger::new(
                ledger_of(&functions.purge),
                S3Store::new(functions.purge.s3.clone()),
                schedules_of(&functions.purge),
                clock.clone(),
                settings.map.clone(),
                settings.purge.clone(),
            )
            .with_signer(signers(&settings, &functions.purge)?.0),
        );
        let feed = tokio::sync::Mutex::new(StreamFeed::new(&clients, settings.table.clone()));
        Ok(Stack {
            clients,
            settings,
            clock,
            intake,
            grace_timer,
            retention,
            purge,
            notifier,
            schedules,
            ledger,
            feed,
            retry: tokio::sync::Mutex::default(),
        })
    }

    /// Creates the table, schedule group and the map's buckets.
    pub async fn provision(&self) -> Result<(), RunnerError> {
        provision::create_ledger_table(&self.clients, &self.settings.table)
            .await
            .map_err(RunnerError::Provision)?;
        provision::create_schedule_group(&self.clients, &self.settings.schedule_group)
            .await
            .map_err(RunnerError::Provision)?;
        for bucket in self.settings.map.buckets() {
            let versioned = self.settings.versioned_buckets.contains(&bucket);
            provision::create_bucket(&self.clients, &bucket, versioned)
                .await
                .map_err(RunnerError::Provision)?;
        }
        Ok(())
    }

    /// Delivers the stream records written since the last call to the
    /// grace-timer handler and to the notifier, as their event source
    /// mappings do; answers the grace-timer's response.
    ///
    /// Records a handler reports as failed are delivered to it again on the
    /// next call, before the new ones, as the event source mapping retries them.
    pub async fn pump_stream(&self) -> Result<BatchResponse, RunnerError> {
        let mut feed = self.feed.lock().await;
        let fresh = feed.poll().await?;
        let mut retry = self.retry.lock().await;
        let mut timer_batch = std::mem::take(&mut retry.timer);
        timer_batch.extend(fresh.iter().cloned());
        let mut notifier_batch = std::mem::take(&mut retry.notifier);
        notifier_batch.extend(fresh);
        let response = if timer_batch.is_empty() {
            BatchResponse::default()
        } else {
            self.grace_timer.handle(stream_event(timer_batch.clone())).await
        };
        retry.timer = failed_records(timer_batch, &response);
        if !notifier_batch.is_empty() {
            let notified = self.notifier.handle(stream_event(notifier_batch.clone())).await;
            retry.notifier = failed_records(notifier_batch, &notified);
        }
        Ok(response)
    }

    /// Tries again the callbacks whose backoff ran out (the recurring
    /// schedule's part in AWS).
    pub async fn retry_callbacks(&self) -> Result<(), RunnerError> {
        self.notifier
            .handle_event(NotifierEvent::Retry(notifier::handler::RetryEvent { retry: true }))
            .await?;
        Ok(())
    }

    /// Fires every schedule due by the stack's clock into the purge
    /// handler, then deletes it.
    pub async fn fire_due(&self) -> Result<Vec<PurgeResult>, RunnerError> {
        let mut results = Vec::new();
        for due in self.schedules.due(self.clock.now()).await? {
            let event: PurgeEvent = serde_json::from_str(&due.input).map_err(|e| RunnerError::BadScheduleInput {
                name: due.name.clone(),
                reason: e.to_string(),
            })?;
            let owner = format!("local:{}", uuid_like(&due.name));
            let result = self.purge.handle(event, &owner, None).await?;
            tracing::info!(schedule = %due.name, outcome = %result.outcome, "schedule fired");
            self.schedules.delete_by_name(&due.name).await?;
            results.push(result);
        }
        Ok(results)
    }

    /// One retention run (the hourly schedule's part in AWS), then the
    /// stream it wrote (its requests arm their timers).
    pub async fn run_retention(&self) -> Result<RetentionReport, RunnerError> {
        let report = self.retention.run_until(None).await?;
        self.pump_stream().await?;
        Ok(report)
    }

    /// One round of the runner: stream, due schedules, stream again (the
    /// purge's own transitions are stream records too).
    pub async fn tick(&self) -> Result<Vec<PurgeResult>, RunnerError> {
        self.pump_stream().await?;
        let fired = self.fire_due().await?;
        if !fired.is_empty() {
            self.pump_stream().await?;
        }
        self.retry_callbacks().await?;
        Ok(fired)
    }
}

/// The records of `batch` that `response` names as failed.
fn failed_records(batch: Vec<ChangedKey>, response: &BatchResponse) -> Vec<ChangedKey> {
    batch
        .into_iter()
        .filter(|c| streams::failed_records(response).contains(&c.sequence_number.as_str()))
        .collect()
}

fn uuid_like(name: &str) -> String {
    format!("{name}@{}", std::process::id())
}

/// Builds the Lambda stream event the grace-timer receives in AWS.
pub fn stream_event(changed: Vec<ChangedKey>) -> StreamEvent {
    streams::lambda_event(changed)
}
