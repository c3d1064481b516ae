//! AWS adapters of the deletion service's ports: one module per service.
//!
//! This is the only crate that imports the AWS SDK. Every SDK error is
//! mapped here to the domain's errors (a failed condition becomes
//! `LedgerError::Conflict`, a missing schedule on delete is success, ...).

#[cfg(test)]
#[macro_use]
mod mocked;

pub mod capacity;
pub mod dynamodb;
pub mod kms;
pub mod metrics;
pub mod provision;
pub mod s3;
pub mod scheduler;
pub mod streams;
pub mod webhook;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Clients built once per process and shared by the handlers.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub scheduler: aws_sdk_scheduler::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub kms: aws_sdk_kms::Client,
}

fn retry() -> RetryConfig {
    // Adaptive retry backs off on throttling (S3 SlowDown, DynamoDB
    // ProvisionedThroughputExceeded) instead of failing the purge.
    RetryConfig::adaptive().with_max_attempts(8)
}

/// Where a local deployment's services answer: the ledger (DynamoDB and its
/// streams) on DynamoDB Local, the rest (S3, Scheduler, KMS) on moto. Both
/// may be one endpoint (a proxy, or one server for everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalEndpoints {
    pub dynamodb: String,
    pub aws: String,
}

impl LocalEndpoints {
    /// Every service at one endpoint.
    pub fn single(endpoint: &str) -> LocalEndpoints {
        LocalEndpoints {
            dynamodb: endpoint.to_owned(),
            aws: endpoint.to_owned(),
        }
    }
}

impl Clients {
    /// From the environment, as in Lambda. `AWS_ENDPOINT_URL` (honoured by
    /// the SDK) points every client at a local server such as moto, and
    /// `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_DYNAMODB_STREAMS`
    /// the ledger's at DynamoDB Local.
    pub async fn from_env() -> Clients {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry())
            .load()
            .await;
        Clients::from_config(&config)
    }

    /// For one local endpoint serving every service, with static test
    /// credentials.
    pub async fn for_endpoint(endpoint: &str) -> Clients {
        Clients::for_local(&LocalEndpoints::single(endpoint)).await
    }

    /// For local endpoints with static test credentials.
    pub async fn for_local(endpoints: &LocalEndpoints) -> Clients {
        Clients::for_local_with(endpoints, "test", "test").await
    }

    /// For local endpoints, with retry state of their own. The SDK shares
    /// the token bucket and the adaptive rate limiter of a retry partition
    /// across every client of a process, so clients that meet throttling on
    /// purpose (a test's) must not slow the rest down. Their backoff is
    /// short (10 ms growing to at most 100 ms instead of 1 s to 20 s): such
    /// a test proves that throttling is retried, not how long AWS asks to
    /// wait.
    pub async fn for_local_isolated(endpoints: &LocalEndpoints, partition: &str) -> Clients {
        let quick = retry()
            .with_initial_backoff(std::time::Duration::from_millis(10))
            .with_max_backoff(std::time::Duration::from_millis(100));
        let aws = Clients::local_config_with(&endpoints.aws, "test", "test", quick.clone()).await;
        let ledger = Clients::local_config_with(&endpoints.dynamodb, "test", "test", quick).await;
        let part = |service: &str| format!("{partition}-{service}");
        let s3_config = aws_sdk_s3::config::Builder::from(&aws)
            .force_path_style(true)
            .retry_partition(aws_sdk_s3::config::retry::RetryPartition::new(part("s3")))
            .build();
        let dynamodb_config = aws_sdk_dynamodb::config::Builder::from(&ledger)
            .retry_partition(aws_sdk_dynamodb::config::retry::RetryPartition::new(part("dynamodb")))
            .build();
        let scheduler_config = aws_sdk_scheduler::config::Builder::from(&aws)
            .retry_partition(aws_sdk_scheduler::config::retry::RetryPartition::new(part("scheduler")))
            .build();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb_config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            scheduler: aws_sdk_scheduler::Client::from_conf(scheduler_config),
            streams: aws_sdk_dynamodbstreams::Client::new(&ledger),
            kms: aws_sdk_kms::Client::new(&aws),
        }
    }

    async fn local_config(endpoint: &str, access_key: &str, secret_key: &str) -> SdkConfig {
        Clients::local_config_with(endpoint, access_key, secret_key, retry()).await
    }

    async fn local_config_with(endpoint: &str, access_key: &str, secret_key: &str, retry: RetryConfig) -> SdkConfig {
        let creds = aws_sdk_dynamodb::config::Credentials::new(access_key, secret_key, None, None, "local");
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .retry_config(retry)
            .load()
            .await
    }

    /// For local endpoints with the given static credentials.
    pub async fn for_local_with(endpoints: &LocalEndpoints, access_key: &str, secret_key: &str) -> Clients {
        let aws = Clients::local_config(&endpoints.aws, access_key, secret_key).await;
        let ledger = Clients::local_config(&endpoints.dynamodb, access_key, secret_key).await;
        Clients::from_configs(&aws, &ledger)
    }

    /// For one local endpoint with the given static credentials.
    pub async fn for_endpoint_with(endpoint: &str, access_key: &str, secret_key: &str) -> Clients {
        Clients::for_local_with(&LocalEndpoints::single(endpoint), access_key, secret_key).await
    }

    pub fn from_config(config: &SdkConfig) -> Clients {
        Clients::from_configs(config, config)
    }

    /// The ledger's clients (DynamoDB, its streams) from `ledger`, the
    /// others from `aws`.
    fn from_configs(aws: &SdkConfig, ledger: &SdkConfig) -> Clients {
        // A local endpoint serves buckets by path, not by host name.
        let s3_config = aws_sdk_s3::config::Builder::from(aws)
            .force_path_style(aws.endpoint_url().is_some())
            .build();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(ledger),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            scheduler: aws_sdk_scheduler::Client::new(aws),
            streams: aws_sdk_dynamodbstreams::Client::new(ledger),
            kms: aws_sdk_kms::Client::new(aws),
        }
    }
}

/// The full text of an SDK error, its causes included.
pub(crate) fn describe<E: std::error::Error>(err: &E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()
}
