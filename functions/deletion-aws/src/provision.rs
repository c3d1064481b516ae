//! Creating the ledger table, buckets and schedule group outside
//! CloudFormation (the local runner and the tests against moto), and
//! seeding and inspecting buckets in tests. The table matches template.yaml.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType,
};
use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

use crate::dynamodb::{INDEX_ACTIVE, INDEX_BY_WORKSPACE, INDEX_OPEN};
use crate::{describe, Clients};

pub type ProvisionError = String;

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, ProvisionError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| describe(&e))
}

fn attr(name: &str) -> Result<AttributeDefinition, ProvisionError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| describe(&e))
}

/// A global secondary index projecting every attribute.
fn gsi(name: &str, hash: &str, range: &str) -> Result<GlobalSecondaryIndex, ProvisionError> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash)?)
        .key_schema(key(range, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(|e| describe(&e))
}

/// The index with only the keys projected (written only when they change).
fn keys_only(mut index: GlobalSecondaryIndex) -> GlobalSecondaryIndex {
    index.projection = Some(Projection::builder().projection_type(ProjectionType::KeysOnly).build());
    index
}

/// Creates the ledger table (stream on) unless it exists.
pub async fn create_ledger_table(clients: &Clients, table: &str) -> Result<(), ProvisionError> {
    if clients.dynamodb.describe_table().table_name(table).send().await.is_ok() {
        return Ok(());
    }
    let index = gsi(INDEX_BY_WORKSPACE, "gsi1pk", "gsi1sk")?;
    let active = gsi(INDEX_ACTIVE, "gsi2pk", "gsi2sk")?;
    let open = keys_only(gsi(INDEX_OPEN, "gsi3pk", "gsi3sk")?);
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build()
        .map_err(|e| describe(&e))?;
    clients
        .dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .attribute_definitions(attr("gsi2pk")?)
        .attribute_definitions(attr("gsi2sk")?)
        .attribute_definitions(attr("gsi3pk")?)
        .attribute_definitions(attr("gsi3sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(index)
        .global_secondary_indexes(active)
        .global_secondary_indexes(open)
        .stream_specification(stream)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    // Items the service no longer needs carry `expires_at` (as the
    // template's TimeToLiveSpecification).
    let ttl = aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
        .attribute_name("expires_at")
        .enabled(true)
        .build()
        .map_err(|e| describe(&e))?;
    clients
        .dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(())
}

/// Creates a bucket (with versioning if asked) unless it exists.
pub async fn create_bucket(clients: &Clients, bucket: &str, versioned: bool) -> Result<(), ProvisionError> {
    if clients.s3.head_bucket().bucket(bucket).send().await.is_err() {
        clients
            .s3
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .map_err(|e| describe(&e))?;
    }
    if versioned {
        clients
            .s3
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| describe(&e))?;
    }
    Ok(())
}

/// Creates the schedule group unless it exists (moto answers 500 to a
/// CreateSchedule into a missing group).
pub async fn create_schedule_group(clients: &Clients, group: &str) -> Result<(), ProvisionError> {
    if clients.scheduler.get_schedule_group().name(group).send().await.is_ok() {
        return Ok(());
    }
    clients
        .scheduler
        .create_schedule_group()
        .name(group)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(())
}

pub async fn put_object(clients: &Clients, bucket: &str, key: &str, body: &[u8]) -> Result<(), ProvisionError> {
    clients
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(())
}

/// Deletes a key without a version id: in a versioned bucket this adds a
/// delete marker.
pub async fn delete_key(clients: &Clients, bucket: &str, key: &str) -> Result<(), ProvisionError> {
    clients
        .s3
        .delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    Ok(())
}

/// Starts a multipart upload and leaves it unfinished.
pub async fn start_upload(clients: &Clients, bucket: &str, key: &str) -> Result<String, ProvisionError> {
    let out = clients
        .s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    out.upload_id()
        .map(str::to_owned)
        .ok_or_else(|| "no upload id".to_owned())
}

/// Everything under a prefix: versions, delete markers and uploads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Every object version (current or not), as `key`.
    pub versions: Vec<String>,
    pub delete_markers: Vec<String>,
    pub uploads: Vec<String>,
}

impl Inventory {
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty() && self.delete_markers.is_empty() && self.uploads.is_empty()
    }
}

/// Lists everything under `prefix` (all pages), versions included.
pub async fn inventory(clients: &Clients, bucket: &str, prefix: &str) -> Result<Inventory, ProvisionError> {
    let mut inv = Inventory::default();
    for v in object_versions(clients, bucket, prefix).await? {
        if v.delete_marker {
            inv.delete_markers.push(v.key);
        } else {
            inv.versions.push(v.key);
        }
    }
    let uploads = clients
        .s3
        .list_multipart_uploads()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    inv.uploads = uploads
        .uploads()
        .iter()
        .filter_map(|u| u.key().map(str::to_owned))
        .collect();
    Ok(inv)
}

/// One object version (or delete marker) under a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    /// `None` in a bucket that never had versioning.
    pub version_id: Option<String>,
    pub latest: bool,
    pub delete_marker: bool,
}

/// Every version and delete marker under `prefix` (every object, in a
/// bucket without versioning), all pages.
pub async fn object_versions(
    clients: &Clients,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<ObjectVersion>, ProvisionError> {
    let mut all = Vec::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let out = clients
            .s3
            .list_object_versions()
            .bucket(bucket)
            .prefix(prefix)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        for v in out.versions() {
            all.push(ObjectVersion {
                key: v.key().unwrap_or_default().to_owned(),
                version_id: v.version_id().filter(|id| *id != "null").map(str::to_owned),
                latest: v.is_latest().unwrap_or(false),
                delete_marker: false,
            });
        }
        for m in out.delete_markers() {
            all.push(ObjectVersion {
                key: m.key().unwrap_or_default().to_owned(),
                version_id: m.version_id().map(str::to_owned),
                latest: m.is_latest().unwrap_or(false),
                delete_marker: true,
            });
        }
        if !out.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = out.next_key_marker().map(str::to_owned);
        version_marker = out.next_version_id_marker().map(str::to_owned);
    }
    Ok(all)
}

/// The bytes of an object (a version of it, if given).
pub async fn get_object(
    clients: &Clients,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Vec<u8>, ProvisionError> {
    let out = clients
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let bytes = out.body.collect().await.map_err(|e| e.to_string())?;
    Ok(bytes.into_bytes().to_vec())
}

/// The keys (`pk`, `sk`) of every item in a table, for tests that assert
/// what was (not) written.
pub async fn scan_keys(clients: &Clients, table: &str) -> Result<Vec<(String, String)>, ProvisionError> {
    let mut keys = Vec::new();
    let mut start = None;
    loop {
        let out = clients
            .dynamodb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| describe(&e))?;
        for item in out.items() {
            let get = |n: &str| item.get(n).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            keys.push((get("pk"), get("sk")));
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    keys.sort();
    Ok(keys)
}

/// Creates a KMS ECC_NIST_P256 signing key (as the template's
/// `ReceiptSigningKey` and `OpenDsrKey`); returns its id.
pub async fn create_receipt_signing_key(clients: &Clients) -> Result<String, ProvisionError> {
    create_key(
        clients,
        KeySpec::EccNistP256,
        KeyUsageType::SignVerify,
        "Signs receipts or OpenDSR answers",
    )
    .await
}

/// Creates a KMS HMAC key for signing receipts (as the template's
/// `ReceiptKey`); returns its id.
pub async fn create_receipt_key(clients: &Clients) -> Result<String, ProvisionError> {
    create_key(
        clients,
        KeySpec::Hmac256,
        KeyUsageType::GenerateVerifyMac,
        "Signs with an HMAC key",
    )
    .await
}

async fn create_key(
    clients: &Clients,
    spec: KeySpec,
    usage: KeyUsageType,
    description: &str,
) -> Result<String, ProvisionError> {
    let out = clients
        .kms
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .description(description)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    out.key_metadata()
        .map(|m| m.key_id().to_owned())
        .ok_or_else(|| "CreateKey answered no key id".to_owned())
}
