//! Schemas of the values deletion-core serializes into answers (ids,
//! statuses, counts, receipts, plans), for the generated OpenAPI document.
//! deletion-core knows nothing of HTTP, so its types carry no schema: these
//! mirrors describe their JSON. They are never built; the answer types
//! name them with `#[schema(value_type = ...)]`.
//!
//! Invariant: a mirror says exactly what the domain type serializes to;
//! tests/openapi.rs validates real answers against the document (objects
//! are closed with `additionalProperties: false`), so a drift fails there.

#![allow(dead_code)]

use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

macro_rules! string_schema {
    ($(#[$doc:meta])* $name:ident, $build:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let build: fn(ObjectBuilder) -> ObjectBuilder = $build;
                build(ObjectBuilder::new().schema_type(Type::String)).build().into()
            }
        }
        impl ToSchema for $name {}
    };
}

string_schema!(
    /// A workspace, space, source or account id.
    Id,
    |b| b
        .min_length(Some(1))
        .max_length(Some(64))
        .pattern(Some("^[A-Za-z0-9][A-Za-z0-9_-]*$"))
);
string_schema!(
    /// A request id (a UUID).
    RequestId,
    |b| b.pattern(Some(
        "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
    ))
);
string_schema!(
    /// An end user's id: 1 to 512 bytes, no control characters, not blank.
    UserId,
    |b| b.min_length(Some(1)).max_length(Some(512)).pattern(Some(
        "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    ))
);
string_schema!(
    /// A whole day, `YYYY-MM-DD`.
    Day,
    |b| b.format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
);
string_schema!(
    /// A time, RFC 3339.
    Timestamp,
    |b| b.format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
);
string_schema!(
    /// A `callback_url`: `https:` only (locally also `http:` on loopback).
    CallbackUrl,
    |b| b
        .format(Some(SchemaFormat::Custom("uri".into())))
        .max_length(Some(2048))
);

/// What a request deletes.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Workspace,
    Space,
    SourceDays,
    Account,
    WorkspacePurge,
    Regulation,
}

/// A request's lifecycle status.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Scheduled,
    Purging,
    Verifying,
    Completed,
    Revoked,
    Failed,
    OnHold,
}

/// What a regulation does.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegulationType {
    SuppressWithDelete,
    DeleteOnly,
    SuppressOnly,
    Unsuppress,
    DeleteArchiveOnly,
}

/// A regulation's status in the regulations' own terms.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegulationStatus {
    Initialized,
    Running,
    Finished,
    PartialSuccess,
    Failed,
    OnHold,
    Cancelled,
}

/// A workspace member's role.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
}

/// What a purge removed (or a plan found).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    pub objects: u64,
    pub versions: u64,
    pub delete_markers: u64,
    pub uploads_aborted: u64,
    pub bytes: u64,
}

/// What a regulation's rewrite did.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewriteCounts {
    pub objects_scanned: u64,
    pub objects_rewritten: u64,
    pub versions_deleted: u64,
    pub events_removed: u64,
    pub malformed_lines: u64,
    pub objects_failed: u64,
    pub bytes_scanned: u64,
    /// The first few problems (malformed lines, failed objects).
    #[schema(required = false)]
    pub errors: Vec<String>,
}

/// A request's progress, from its shards.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    /// Data-map prefixes in scope, and those purged to the end.
    pub prefixes_total: u64,
    pub prefixes_done: u64,
    /// The shards (sub-prefixes or key ranges) the prefixes were cut into,
    /// and those done: what the workers share.
    pub shards_total: u64,
    pub shards_done: u64,
    pub objects: u64,
    pub versions: u64,
    pub delete_markers: u64,
    pub uploads_aborted: u64,
    pub bytes: u64,
    /// The same, per store.
    pub stores: Vec<StoreProgress>,
}

/// One store's part of a request's progress.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreProgress {
    pub store: String,
    pub shards_total: u64,
    pub shards_done: u64,
    pub objects: u64,
    pub versions: u64,
    pub delete_markers: u64,
    pub uploads_aborted: u64,
    pub bytes: u64,
}

/// A scope with its kind, as a receipt names it.
#[derive(Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaggedScope {
    Workspace {
        #[schema(value_type = Id)]
        workspace: String,
    },
    Space {
        #[schema(value_type = Id)]
        workspace: String,
        #[schema(value_type = Id)]
        space: String,
    },
    SourceDays {
        #[schema(value_type = Id)]
        workspace: String,
        #[schema(value_type = Id)]
        source: String,
        #[schema(value_type = Day)]
        from: String,
        #[schema(value_type = Day)]
        to: String,
    },
    Account {
        #[schema(value_type = Id)]
        account: String,
    },
    WorkspacePurge {
        #[schema(value_type = Id)]
        workspace: String,
    },
    Regulation {
        #[schema(value_type = Id)]
        workspace: String,
        regulation: RegulationType,
        subject_count: u64,
        digest: String,
        /// Absent for `USER_ID`.
        #[serde(skip_serializing_if = "Option::is_none")]
        subject_type: Option<String>,
    },
}

/// A receipt's signature over its canonical JSON: `ECDSA_SHA_256` (KMS,
/// DER) or `ED25519` (local) over its SHA-256 digest, checked with the
/// published key whose `kid` is `key_id`; or `HMAC_SHA_256` (receipts
/// issued before the asymmetric keys, checked by `POST /v1/receipts:verify`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptSignature {
    #[schema(example = "ECDSA_SHA_256")]
    pub algorithm: String,
    pub key_id: String,
    pub value: String,
}

/// A public key of receipt signatures (RFC 7517).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Jwk {
    /// `EC` (P-256) or `OKP` (Ed25519).
    pub kty: String,
    /// `P-256` or `Ed25519`.
    pub crv: String,
    /// base64url.
    pub x: String,
    /// base64url (EC only).
    #[schema(required = false)]
    pub y: String,
    /// The `key_id` of the signatures this key checks.
    pub kid: String,
    /// `ES256` or `EdDSA`.
    pub alg: String,
    #[serde(rename = "use")]
    #[schema(pattern = "^sig$")]
    pub usage: String,
}

/// The receipt keys (RFC 7517 key set).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// What was purged under one prefix.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefixReceipt {
    pub store: String,
    pub bucket: String,
    pub prefix: String,
    pub deleted: Counts,
    #[schema(required = false)]
    pub rewritten: RewriteCounts,
}

/// Proof of a finished purge, signed.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    #[schema(value_type = RequestId)]
    pub request_id: String,
    pub scope: TaggedScope,
    pub prefixes: Vec<PrefixReceipt>,
    pub totals: Counts,
    #[schema(value_type = Timestamp)]
    pub purge_started_at: String,
    #[schema(value_type = Timestamp)]
    pub purge_finished_at: String,
    #[schema(value_type = Timestamp)]
    pub verified_at: String,
    pub verification: String,
    #[schema(required = false)]
    pub signature: Option<ReceiptSignature>,
}

/// One prefix of a plan.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedStore {
    pub store: String,
    pub bucket: String,
    pub prefix: String,
    pub found: Counts,
    /// False when the count stopped at the cap: there is at least this much.
    pub complete: bool,
}

/// What a deletion would delete, counted now.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub prefixes: Vec<PlannedStore>,
    pub totals: Counts,
    pub complete: bool,
}

/// What a request's `callback_url` is sent on each status change.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChangedEvent {
    /// `<request id>:<sequence>`, also in `deletion-event-id`.
    pub id: String,
    /// Always `deletion.status_changed`.
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(value_type = RequestId)]
    pub request_id: String,
    pub kind: Kind,
    pub sequence: u64,
    pub status: Status,
    #[schema(required)]
    pub previous_status: Option<Status>,
    #[schema(value_type = Timestamp)]
    pub at: String,
    pub status_url: String,
    #[schema(required = false)]
    pub note: String,
    #[schema(value_type = RequestId, required = false)]
    pub parent_id: String,
}

/// What a recorded retention change did.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetentionChangeKind {
    /// In force at once (it keeps as much or more).
    Set,
    /// Put in grace (it keeps less).
    Scheduled,
    /// Its grace ended: in force.
    Applied,
    Revoked,
    Removed,
}

/// Whole days each named source keeps: 1 to 3,660, or null for unlimited;
/// at most 500 sources, each named by its id.
pub struct Windows;
impl PartialSchema for Windows {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, SchemaType};
        let window = ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
            .minimum(Some(1))
            .maximum(Some(3660));
        let names = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(64))
            .pattern(Some("^[A-Za-z0-9][A-Za-z0-9_-]*$"));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::Object(
                window.build(),
            )))))
            .property_names(Some(names.build()))
            .max_properties(Some(500))
            .build()
            .into()
    }
}
impl ToSchema for Windows {}
