//! AWS adapters of the deletion service's ports: one module per service.
//!
//! This is the only crate that imports the AWS SDK. Every SDK error is
//! mapped here to the domain's errors (a failed condition becomes
//! `LedgerError::Conflict`, a missing schedule on delete is success, ...).

pub mod dynamodb;
pub mod kms;
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

impl Clients {
    /// From the environment, as in Lambda. `AWS_ENDPOINT_URL` (honoured by
    /// the SDK) points every client at a local server such as moto.
    pub async fn from_env() -> Clients {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry())
            .load()
            .await;
        Clients::from_config(&config)
    }

    /// For a local endpoint (moto) with static test credentials.
    pub async fn for_endpoint(endpoint: &str) -> Clients {
        Clients::for_endpoint_with(endpoint, "test", "test").await
    }

    /// For a local endpoint, with retry state of its own. The SDK shares
    /// the token bucket and the adaptive rate limiter of a retry partition
    /// across every client of a process, so clients that meet throttling on
    /// purpose (a test's) must not slow the rest down.
    pub async fn for_endpoint_isolated(endpoint: &str, partition: &str) -> Clients {
        let config = Clients::local_config(endpoint, "test", "test").await;
        let part = |service: &str| format!("{partition}-{service}");
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .retry_partition(aws_sdk_s3::config::retry::RetryPartition::new(part("s3")))
            .build();
        let dynamodb_config = aws_sdk_dynamodb::config::Builder::from(&config)
            .retry_partition(aws_sdk_dynamodb::config::retry::RetryPartition::new(part("dynamodb")))
            .build();
        let scheduler_config = aws_sdk_scheduler::config::Builder::from(&config)
            .retry_partition(aws_sdk_scheduler::config::retry::RetryPartition::new(part("scheduler")))
            .build();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb_config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            scheduler: aws_sdk_scheduler::Client::from_conf(scheduler_config),
            streams: aws_sdk_dynamodbstreams::Client::new(&config),
            kms: aws_sdk_kms::Client::new(&config),
        }
    }

    async fn local_config(endpoint: &str, access_key: &str, secret_key: &str) -> SdkConfig {
        let creds = aws_sdk_dynamodb::config::Credentials::new(access_key, secret_key, None, None, "local");
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(creds)
            .retry_config(retry())
            .load()
            .await
    }

    /// For a local endpoint with the given static credentials.
    pub async fn for_endpoint_with(endpoint: &str, access_key: &str, secret_key: &str) -> Clients {
        Clients::from_config(&Clients::local_config(endpoint, access_key, secret_key).await)
    }

    pub fn from_config(config: &SdkConfig) -> Clients {
        // A local endpoint serves buckets by path, not by host name.
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            scheduler: aws_sdk_scheduler::Client::new(config),
            streams: aws_sdk_dynamodbstreams::Client::new(config),
            kms: aws_sdk_kms::Client::new(config),
        }
    }
}

/// The full text of an SDK error, its causes included.
pub(crate) fn describe<E: std::error::Error>(err: &E) -> String {
    aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string()
}
