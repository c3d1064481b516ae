//! The object store's unit tests, against canned S3 answers
//! (`aws-smithy-mocks`): its mapping of S3's errors, the listing cursors it
//! hands out and takes back, and what it caches of a bucket's versioning.
//!
//! S3's refusals are answered on the wire (status and XML body, as S3 sends
//! them), so the SDK's own parsing of the error code is part of the test:
//! the adapter reads codes and statuses, not modeled error types.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadOutput;
use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::operation::get_bucket_versioning::GetBucketVersioningOutput;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput;
use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::operation::put_object::{PutObjectError, PutObjectInput, PutObjectOutput};
use aws_sdk_s3::types::{
    BucketVersioningStatus, CommonPrefix, DeleteMarkerEntry, MultipartUpload, Object, ObjectVersion,
};
use aws_smithy_mocks::{mock, Rule, RuleBuilder};

use super::*;

const BUCKET: &str = "cdp-archive";
const PREFIX: &str = "acme/";

/// A store whose client answers with `rules`, in order (a call no rule
/// expects fails the test), and never retries: the SDK's own retries are
/// not under test.
fn store(rules: &[&Rule]) -> S3Store {
    let config = mocked_config!(aws_sdk_s3, rules);
    S3Store::new(Client::from_conf(config))
}

/// The XML body of an S3 error answer.
fn error_body(code: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{code} from the mock</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>"#
    )
}

/// An S3 refusal of `op`, on the wire: `status` with the error `code`.
macro_rules! refused {
    ($op:expr, $status:expr, $code:expr) => {
        mock!($op)
            .sequence()
            .http_status($status, Some(error_body($code)))
            .build()
    };
}

/// The same for PutObject, whose streaming input `mock!` cannot name.
fn put_refused(status: u16, code: &str) -> Rule {
    RuleBuilder::<PutObjectInput, PutObjectOutput, PutObjectError>::new()
        .sequence()
        .http_status(status, Some(error_body(code)))
        .build()
}

/// Refusals every call maps the same way: (status, code).
const REFUSALS: [(u16, &str); 5] = [
    (404, "NoSuchBucket"),
    (403, "AccessDenied"),
    (503, "SlowDown"),
    (503, "ServiceUnavailable"),
    (500, "InternalError"),
];

/// A missing bucket and a denied one are named; throttling that outlasted
/// the SDK's retries is `Throttled` (a purge backs off on it); anything
/// else (a server error) is `Unavailable`; S3's code is in the text.
#[track_caller]
fn assert_mapped<T: std::fmt::Debug>(code: &str, got: Result<T, StoreError>) {
    match got {
        Err(StoreError::NoSuchBucket(b)) if code == "NoSuchBucket" => assert_eq!(b, BUCKET),
        Err(StoreError::AccessDenied(b)) if code == "AccessDenied" => assert_eq!(b, BUCKET),
        Err(StoreError::Throttled(m)) if matches!(code, "SlowDown" | "ServiceUnavailable") => {
            assert!(m.contains(code), "{code}: {m}")
        }
        Err(StoreError::Unavailable(m)) if code == "InternalError" => assert!(m.contains(code), "{code}: {m}"),
        other => panic!("{code}: {other:?}"),
    }
}

fn versioning(status: Option<BucketVersioningStatus>) -> Rule {
    mock!(Client::get_bucket_versioning)
        .match_requests(|req| req.bucket() == Some(BUCKET))
        .then_output(move || GetBucketVersioningOutput::builder().set_status(status.clone()).build())
}

fn never_versioned() -> Rule {
    versioning(None)
}

fn versioned() -> Rule {
    versioning(Some(BucketVersioningStatus::Enabled))
}

fn no_versions() -> Rule {
    mock!(Client::list_object_versions).then_output(|| ListObjectVersionsOutput::builder().build())
}

fn no_objects() -> Rule {
    mock!(Client::list_objects_v2).then_output(|| ListObjectsV2Output::builder().build())
}

fn entry(key: &str, version: Option<&str>, kind: EntryKind, size: u64) -> Entry {
    Entry {
        key: key.into(),
        version_id: version.map(str::to_owned),
        kind,
        size,
    }
}

#[tokio::test]
async fn listing_refusals_map_to_the_stores_errors() {
    for (status, code) in REFUSALS {
        // The versioning read before a listing.
        let rule = refused!(Client::get_bucket_versioning, status, code);
        assert_mapped(code, store(&[&rule]).list_page(BUCKET, PREFIX, None, 1000).await);
        // A bucket that never had versioning: ListObjectsV2.
        let rule = refused!(Client::list_objects_v2, status, code);
        let listed = store(&[&never_versioned(), &rule])
            .list_page(BUCKET, PREFIX, None, 1000)
            .await;
        assert_mapped(code, listed);
        // A versioned one: ListObjectVersions.
        let rule = refused!(Client::list_object_versions, status, code);
        let listed = store(&[&versioned(), &rule])
            .list_page(BUCKET, PREFIX, None, 1000)
            .await;
        assert_mapped(code, listed);
        // The verification's listing, and the split's.
        let rule = refused!(Client::list_object_versions, status, code);
        assert_mapped(
            code,
            store(&[&rule]).list_every_version(BUCKET, PREFIX, None, 1000).await,
        );
        let rule = refused!(Client::list_objects_v2, status, code);
        let children = store(&[&never_versioned(), &rule])
            .list_children(BUCKET, PREFIX, 10)
            .await;
        assert_mapped(code, children);
    }
}

#[tokio::test]
async fn delete_and_upload_refusals_map_to_the_stores_errors() {
    let upload = Upload {
        key: "acme/big.bin".into(),
        upload_id: "u-1".into(),
    };
    let batch = [entry("acme/a.json", Some("v1"), EntryKind::Current, 1)];
    for (status, code) in REFUSALS {
        let rule = refused!(Client::delete_objects, status, code);
        assert_mapped(code, store(&[&rule]).delete_batch(BUCKET, &batch).await);
        let rule = refused!(Client::list_multipart_uploads, status, code);
        assert_mapped(code, store(&[&rule]).list_uploads(BUCKET, PREFIX, None).await);
        let rule = refused!(Client::abort_multipart_upload, status, code);
        assert_mapped(code, store(&[&rule]).abort_upload(BUCKET, &upload).await);
    }
    // An upload finished or aborted since it was listed is what we wanted.
    let gone = refused!(Client::abort_multipart_upload, 404, "NoSuchUpload");
    store(&[&gone]).abort_upload(BUCKET, &upload).await.unwrap();
    assert_eq!(gone.num_calls(), 1);
}

/// Every 503 S3 answers counts, the ones the SDK retried and that then
/// went through too: the purge slows down on them before any call fails.
#[tokio::test]
async fn slow_downs_the_sdk_retried_are_counted() {
    let rule = mock!(Client::delete_objects)
        .sequence()
        .http_status(503, Some(error_body("SlowDown")))
        .times(2)
        .output(|| DeleteObjectsOutput::builder().build())
        .build();
    let retrying = aws_sdk_s3::config::retry::RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(std::time::Duration::from_millis(1));
    let config = mocked_config!(aws_sdk_s3, &[&rule])
        .to_builder()
        .retry_config(retrying)
        .build();
    let s3 = S3Store::new(Client::from_conf(config));
    assert_eq!(s3.slow_downs(), 0);
    let batch = [entry("acme/a.json", Some("v1"), EntryKind::Current, 1)];
    let refused = s3.delete_batch(BUCKET, &batch).await.unwrap();
    assert!(refused.is_empty(), "went through at the third attempt: {refused:?}");
    assert_eq!((rule.num_calls(), s3.slow_downs()), (3, 2));
    // Another answer than 503 is not a slow-down.
    let other = refused!(Client::delete_objects, 500, "InternalError");
    let s3 = store(&[&other]);
    assert!(s3.delete_batch(BUCKET, &batch).await.is_err());
    assert_eq!(s3.slow_downs(), 0);
}

/// A file of its own for each test that reads or writes one.
fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("deletion-aws-s3-{}-{name}", std::process::id()))
}

#[tokio::test]
async fn a_download_of_something_gone_is_none_and_of_a_missing_bucket_an_error() {
    let to = scratch("gone");
    let gone = [
        refused!(Client::get_object, 404, "NoSuchKey"),
        refused!(Client::get_object, 404, "NoSuchVersion"),
        // A version that is a delete marker.
        refused!(Client::get_object, 405, "MethodNotAllowed"),
        // A 404 without a body (S3 names it NotFound).
        mock!(Client::get_object).sequence().http_status(404, None).build(),
    ];
    for rule in &gone {
        let found = store(&[&versioned(), rule])
            .download(BUCKET, "acme/a.json", Some("v1"), &to)
            .await;
        assert!(matches!(found, Ok(None)), "{found:?}");
    }
    for (status, code) in REFUSALS {
        let rule = refused!(Client::get_object, status, code);
        // Versioning is asked first: the bucket known as versioned.
        let got = store(&[&versioned(), &rule])
            .download(BUCKET, "acme/a.json", None, &to)
            .await;
        assert_mapped(code, got);
    }
    assert!(!to.exists(), "nothing written");
}

fn read(etag: &str) -> Downloaded {
    let attributes = [
        (CONTENT_TYPE, "application/x-ndjson"),
        (CONTENT_ENCODING, "gzip"),
        (STORAGE_CLASS, "STANDARD_IA"),
        (SSE, "aws:kms"),
        (SSE_KMS_KEY, "alias/archive"),
        ("meta:origin", "web"),
    ];
    Downloaded {
        etag: etag.into(),
        version_id: Some("v1".into()),
        size: 5,
        attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

#[tokio::test]
async fn a_rewrite_over_a_changed_object_is_changed_other_refusals_errors() {
    let from = scratch("changed");
    std::fs::write(&from, b"lines").unwrap();
    let changed = [
        put_refused(412, "PreconditionFailed"),
        put_refused(409, "ConditionalRequestConflict"),
        // Deleted since it was read.
        put_refused(404, "NoSuchKey"),
    ];
    for rule in &changed {
        match store(&[rule])
            .replace_if_match(BUCKET, "acme/a.json", &from, &read("\"e1\""))
            .await
        {
            Err(StoreError::Changed { bucket, key }) => {
                assert_eq!((bucket.as_str(), key.as_str()), (BUCKET, "acme/a.json"))
            }
            other => panic!("{other:?}"),
        }
    }
    for (status, code) in REFUSALS {
        let rule = put_refused(status, code);
        let got = store(&[&rule])
            .replace_if_match(BUCKET, "acme/a.json", &from, &read("\"e1\""))
            .await;
        assert_mapped(code, got);
    }
    std::fs::remove_file(&from).unwrap();
}

/// What a PutObject was sent, apart from its body.
#[derive(Debug, Default, PartialEq)]
struct Sent {
    if_match: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    storage_class: Option<String>,
    sse: Option<String>,
    sse_key: Option<String>,
    metadata: Vec<(String, String)>,
}

#[tokio::test]
async fn a_rewrite_is_conditional_on_the_etag_read_and_keeps_its_attributes() {
    let from = scratch("rewrite");
    std::fs::write(&from, b"lines").unwrap();
    let seen: Arc<Mutex<Option<Sent>>> = Arc::default();
    let rule = {
        let seen = seen.clone();
        RuleBuilder::<PutObjectInput, PutObjectOutput, PutObjectError>::new()
            .match_requests(|req| req.bucket() == Some(BUCKET) && req.key() == Some("acme/a.json"))
            .then_compute_output(move |req| {
                let own = |s: Option<&str>| s.map(str::to_owned);
                let mut metadata: Vec<(String, String)> = req
                    .metadata()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                metadata.sort();
                *seen.lock().unwrap() = Some(Sent {
                    if_match: own(req.if_match()),
                    content_type: own(req.content_type()),
                    content_encoding: own(req.content_encoding()),
                    storage_class: own(req.storage_class().map(StorageClass::as_str)),
                    sse: own(req.server_side_encryption().map(ServerSideEncryption::as_str)),
                    sse_key: own(req.ssekms_key_id()),
                    metadata,
                });
                PutObjectOutput::builder().version_id("v2").build()
            })
    };
    let written = store(&[&rule])
        .replace_if_match(BUCKET, "acme/a.json", &from, &read("\"e1\""))
        .await
        .unwrap();
    assert_eq!(written.as_deref(), Some("v2"), "the new version");
    let own = |s: &str| Some(s.to_owned());
    assert_eq!(
        seen.lock().unwrap().take().expect("a PutObject"),
        Sent {
            if_match: own("\"e1\""),
            content_type: own("application/x-ndjson"),
            content_encoding: own("gzip"),
            storage_class: own("STANDARD_IA"),
            sse: own("aws:kms"),
            sse_key: own("alias/archive"),
            metadata: vec![("origin".into(), "web".into())],
        }
    );
    std::fs::remove_file(&from).unwrap();
}

fn object(version: &'static str) -> Rule {
    mock!(Client::get_object)
        .match_requests(|req| req.bucket() == Some(BUCKET) && req.key() == Some("acme/a.json"))
        .then_output(move || {
            GetObjectOutput::builder()
                .body(ByteStream::from_static(b"{\"a\":1}\n"))
                .e_tag("\"e1\"")
                .version_id(version)
                .content_type("application/x-ndjson")
                .metadata("origin", "web")
                .build()
        })
}

#[tokio::test]
async fn a_download_keeps_a_version_id_only_from_a_versioned_bucket() {
    let to = scratch("download");
    let (ask, get) = (versioned(), object("v7"));
    let got = store(&[&ask, &get]).download(BUCKET, "acme/a.json", None, &to).await;
    let got = got.unwrap().expect("an object");
    assert_eq!(
        (got.etag.as_str(), got.version_id.as_deref(), got.size),
        ("\"e1\"", Some("v7"), 8)
    );
    assert_eq!(
        got.attributes.get(CONTENT_TYPE).map(String::as_str),
        Some("application/x-ndjson")
    );
    assert_eq!(got.attributes.get("meta:origin").map(String::as_str), Some("web"));
    assert_eq!(std::fs::read(&to).unwrap(), b"{\"a\":1}\n");
    // A bucket without versioning answers version "null": never one to
    // delete by.
    let (ask, get) = (never_versioned(), object("null"));
    let got = store(&[&ask, &get]).download(BUCKET, "acme/a.json", None, &to).await;
    assert_eq!(got.unwrap().expect("an object").version_id, None);
    // An answer without an ETag cannot be rewritten conditionally.
    let bare = mock!(Client::get_object).then_output(|| GetObjectOutput::builder().build());
    let got = store(&[&versioned(), &bare])
        .download(BUCKET, "acme/a.json", None, &to)
        .await;
    assert!(
        matches!(got, Err(StoreError::Unavailable(ref m)) if m.contains("ETag")),
        "{got:?}"
    );
    std::fs::remove_file(&to).unwrap();
}

fn refusal(key: &str, version: Option<&str>, code: &str) -> aws_sdk_s3::types::Error {
    aws_sdk_s3::types::Error::builder()
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .code(code)
        .message(format!("{code} from the mock"))
        .build()
}

#[tokio::test]
async fn keys_a_delete_refuses_are_failures_and_keys_gone_already_are_not() {
    let batch = [
        entry("acme/a.json", Some("v1"), EntryKind::Noncurrent, 10),
        entry("acme/b.json", None, EntryKind::Current, 20),
        entry("acme/c.json", Some("v3"), EntryKind::DeleteMarker, 0),
        entry("acme/d.json", Some("v4"), EntryKind::Current, 40),
    ];
    let rule = mock!(Client::delete_objects)
        .match_requests(|req| {
            let Some(delete) = req.delete() else { return false };
            let sent: Vec<(&str, Option<&str>)> = delete.objects().iter().map(|o| (o.key(), o.version_id())).collect();
            // Every entry by key and version, quietly (errors only).
            req.bucket() == Some(BUCKET)
                && delete.quiet() == Some(true)
                && sent
                    == [
                        ("acme/a.json", Some("v1")),
                        ("acme/b.json", None),
                        ("acme/c.json", Some("v3")),
                        ("acme/d.json", Some("v4")),
                    ]
        })
        .then_output(|| {
            DeleteObjectsOutput::builder()
                .errors(refusal("acme/a.json", Some("v1"), "AccessDenied"))
                .errors(refusal("acme/b.json", None, "InternalError"))
                .errors(refusal("acme/c.json", Some("v3"), "NoSuchVersion"))
                .errors(refusal("acme/d.json", Some("v4"), "NoSuchKey"))
                .build()
        });
    let s3 = store(&[&rule]);
    let failed = s3.delete_batch(BUCKET, &batch).await.unwrap();
    // Gone already counts as removed (what we wanted), refused does not.
    assert_eq!(s3.deleted(), 2, "c and d removed, a and b refused");
    assert_eq!(
        failed,
        [
            DeleteFailure {
                key: "acme/a.json".into(),
                version_id: Some("v1".into()),
                code: "AccessDenied".into(),
                message: "AccessDenied from the mock".into(),
            },
            DeleteFailure {
                key: "acme/b.json".into(),
                version_id: None,
                code: "InternalError".into(),
                message: "InternalError from the mock".into(),
            },
        ],
        "refused keys were not deleted; gone ones were"
    );
    // A refusal that names no code is still one.
    let unnamed = mock!(Client::delete_objects).then_output(|| {
        DeleteObjectsOutput::builder()
            .errors(aws_sdk_s3::types::Error::builder().key("acme/a.json").build())
            .build()
    });
    let failed = store(&[&unnamed]).delete_batch(BUCKET, &batch[..1]).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].code, "Unknown");
}

#[tokio::test]
async fn an_empty_batch_sends_nothing() {
    // No rule: any call would fail the test.
    assert!(store(&[]).delete_batch(BUCKET, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_bucket_never_versioned_is_asked_again_and_a_versioned_one_is_not() {
    let rules = [
        never_versioned(),
        no_objects(),
        // Versioning enabled since: the next listing lists versions.
        versioned(),
        no_versions(),
        // Known as versioned from now on: not asked again.
        no_versions(),
        no_versions(),
    ];
    // Trusting "never versioned" for no time: asked before every listing.
    let s3 = store(&rules.iter().collect::<Vec<_>>()).trusting_unversioned_for(std::time::Duration::ZERO);
    for _ in 0..4 {
        s3.list_page(BUCKET, PREFIX, None, 1000).await.unwrap();
    }
    let calls: Vec<usize> = rules.iter().map(Rule::num_calls).collect();
    assert_eq!(calls, [1, 1, 1, 1, 1, 1]);
    // Trusted for a day (a minute by default): asked once for many pages,
    // sub-prefixes included; until a new purge run looks afresh.
    let ask = never_versioned();
    let listings = [no_objects(), no_objects(), no_objects(), no_objects()];
    let (ask_again, after) = (versioned(), no_versions());
    let in_order: Vec<&Rule> = std::iter::once(&ask)
        .chain(&listings)
        .chain([&ask_again, &after])
        .collect();
    let s3 = store(&in_order).trusting_unversioned_for(std::time::Duration::from_secs(86_400));
    for _ in 0..3 {
        s3.list_page(BUCKET, PREFIX, None, 1000).await.unwrap();
    }
    s3.list_children(BUCKET, PREFIX, 10).await.unwrap();
    let listed: usize = listings.iter().map(Rule::num_calls).sum();
    assert_eq!(
        (ask.num_calls(), listed),
        (1, 4),
        "one versioning read for four listings"
    );
    s3.look_afresh();
    s3.list_page(BUCKET, PREFIX, None, 1000).await.unwrap();
    assert_eq!(
        (ask_again.num_calls(), after.num_calls()),
        (1, 1),
        "asked again, versions listed"
    );
    // The same for a rewrite's downloads (each in order: a call out of
    // turn fails the test).
    let to = scratch("asked-again");
    let rules = [never_versioned(), object("null"), never_versioned(), object("null")];
    let s3 = store(&rules.iter().collect::<Vec<_>>());
    for _ in 0..2 {
        s3.download(BUCKET, "acme/a.json", None, &to).await.unwrap();
    }
    assert_eq!(rules[2].num_calls(), 1, "asked again");
    let rules = [versioned(), object("v1"), object("v1")];
    let s3 = store(&rules.iter().collect::<Vec<_>>());
    for _ in 0..2 {
        s3.download(BUCKET, "acme/a.json", None, &to).await.unwrap();
    }
    assert_eq!(rules[2].num_calls(), 1, "not asked again");
    std::fs::remove_file(&to).unwrap();
}

/// A page of versions: `a.json` with a current and an older version, and
/// a delete marker over `b.json`.
fn versions_page(truncated: bool) -> ListObjectVersionsOutput {
    ListObjectVersionsOutput::builder()
        .versions(
            ObjectVersion::builder()
                .key("acme/a.json")
                .version_id("v2")
                .is_latest(true)
                .size(20)
                .build(),
        )
        .versions(
            ObjectVersion::builder()
                .key("acme/a.json")
                .version_id("v1")
                .is_latest(false)
                .size(10)
                .build(),
        )
        .delete_markers(
            DeleteMarkerEntry::builder()
                .key("acme/b.json")
                .version_id("m1")
                .is_latest(true)
                .build(),
        )
        .is_truncated(truncated)
        .next_key_marker("acme/b.json")
        .next_version_id_marker("m1")
        .build()
}

#[tokio::test]
async fn the_verification_lists_versions_where_the_bucket_says_it_never_had_versioning() {
    // The purge's listing found a bucket without versioning ...
    let ask = never_versioned();
    let objects = no_objects();
    // ... the verification lists versions all the same, without asking.
    let versions = mock!(Client::list_object_versions)
        .match_requests(|req| {
            req.bucket() == Some(BUCKET) && req.prefix() == Some(PREFIX) && req.max_keys() == Some(500)
        })
        .then_output(|| versions_page(false));
    let s3 = store(&[&ask, &objects, &versions]);
    assert!(s3
        .list_page(BUCKET, PREFIX, None, 1000)
        .await
        .unwrap()
        .entries
        .is_empty());
    let page = s3.list_every_version(BUCKET, PREFIX, None, 500).await.unwrap();
    assert_eq!(
        page.entries,
        [
            entry("acme/a.json", Some("v2"), EntryKind::Current, 20),
            entry("acme/a.json", Some("v1"), EntryKind::Noncurrent, 10),
            entry("acme/b.json", Some("m1"), EntryKind::DeleteMarker, 0),
        ]
    );
    assert_eq!(page.next, None, "not truncated: the end, whatever the markers say");
    assert_eq!(versions.num_calls(), 1);
}

#[tokio::test]
async fn a_store_without_version_listing_is_verified_by_listing_its_objects() {
    let unsupported = refused!(Client::list_object_versions, 501, "NotImplemented");
    let objects = mock!(Client::list_objects_v2)
        .match_requests(|req| req.prefix() == Some(PREFIX))
        .then_output(|| {
            ListObjectsV2Output::builder()
                .contents(Object::builder().key("acme/a.json").size(3).build())
                .build()
        });
    let page = store(&[&unsupported, &objects])
        .list_every_version(BUCKET, PREFIX, None, 1000)
        .await
        .unwrap();
    assert_eq!(page.entries, [entry("acme/a.json", None, EntryKind::Current, 3)]);
}

#[tokio::test]
async fn an_object_listing_hands_the_continuation_token_back_to_s3() {
    let first = mock!(Client::list_objects_v2)
        .match_requests(|req| req.continuation_token().is_none() && req.max_keys() == Some(2))
        .then_output(|| {
            ListObjectsV2Output::builder()
                .contents(Object::builder().key("acme/a.json").size(1).build())
                .contents(Object::builder().key("acme/b.json").size(2).build())
                .is_truncated(true)
                .next_continuation_token("token-2")
                .build()
        });
    let second = mock!(Client::list_objects_v2)
        .match_requests(|req| req.continuation_token() == Some("token-2"))
        .then_output(|| {
            ListObjectsV2Output::builder()
                .contents(Object::builder().key("acme/c.json").size(3).build())
                .is_truncated(false)
                .next_continuation_token("ignored")
                .build()
        });
    // "Never versioned" trusted for the next page.
    let s3 = store(&[&never_versioned(), &first, &second]);
    let page = s3.list_page(BUCKET, PREFIX, None, 2).await.unwrap();
    assert_eq!(
        page.entries,
        [
            entry("acme/a.json", None, EntryKind::Current, 1),
            entry("acme/b.json", None, EntryKind::Current, 2),
        ]
    );
    let cursor = page.next.expect("a cursor");
    let page = s3.list_page(BUCKET, PREFIX, Some(&cursor), 2).await.unwrap();
    assert_eq!(page.entries, [entry("acme/c.json", None, EntryKind::Current, 3)]);
    assert_eq!(page.next, None);
    assert!(
        page.key_ordered,
        "a continuation token resumes by key: its end is the end"
    );
    assert_eq!(second.num_calls(), 1);
}

#[tokio::test]
async fn a_version_listing_hands_its_key_and_version_markers_back_to_s3() {
    let first = mock!(Client::list_object_versions)
        .match_requests(|req| req.key_marker().is_none() && req.version_id_marker().is_none())
        .then_output(|| versions_page(true));
    let second = mock!(Client::list_object_versions)
        .match_requests(|req| req.key_marker() == Some("acme/b.json") && req.version_id_marker() == Some("m1"))
        .then_output(|| ListObjectVersionsOutput::builder().is_truncated(false).build());
    let s3 = store(&[&versioned(), &first, &second]);
    let page = s3.list_page(BUCKET, PREFIX, None, 3).await.unwrap();
    assert_eq!(page.entries.len(), 3);
    let page = s3.list_page(BUCKET, PREFIX, page.next.as_deref(), 3).await.unwrap();
    assert_eq!((page.entries.len(), page.next), (0, None));
    assert!(!page.key_ordered, "a version marker may name a deleted version");
    assert_eq!(second.num_calls(), 1);
    // The verification's cursors go the same way.
    let first = mock!(Client::list_object_versions).then_output(|| versions_page(true));
    let second = mock!(Client::list_object_versions)
        .match_requests(|req| req.key_marker() == Some("acme/b.json") && req.version_id_marker() == Some("m1"))
        .then_output(|| ListObjectVersionsOutput::builder().build());
    let s3 = store(&[&first, &second]);
    let next = s3.list_every_version(BUCKET, PREFIX, None, 3).await.unwrap().next;
    s3.list_every_version(BUCKET, PREFIX, next.as_deref(), 3).await.unwrap();
    assert_eq!(second.num_calls(), 1);
}

#[tokio::test]
async fn an_upload_listing_hands_its_markers_back_to_s3() {
    let first = mock!(Client::list_multipart_uploads)
        .match_requests(|req| req.prefix() == Some(PREFIX) && req.key_marker().is_none())
        .then_output(|| {
            ListMultipartUploadsOutput::builder()
                .uploads(MultipartUpload::builder().key("acme/big.bin").upload_id("u-1").build())
                .is_truncated(true)
                .next_key_marker("acme/big.bin")
                .next_upload_id_marker("u-1")
                .build()
        });
    let second = mock!(Client::list_multipart_uploads)
        .match_requests(|req| req.key_marker() == Some("acme/big.bin") && req.upload_id_marker() == Some("u-1"))
        .then_output(|| ListMultipartUploadsOutput::builder().is_truncated(false).build());
    let abort = mock!(Client::abort_multipart_upload)
        .match_requests(|req| req.key() == Some("acme/big.bin") && req.upload_id() == Some("u-1"))
        .then_output(|| AbortMultipartUploadOutput::builder().build());
    let s3 = store(&[&first, &second, &abort]);
    let page = s3.list_uploads(BUCKET, PREFIX, None).await.unwrap();
    assert_eq!(
        page.uploads,
        [Upload {
            key: "acme/big.bin".into(),
            upload_id: "u-1".into(),
        }]
    );
    let last = s3.list_uploads(BUCKET, PREFIX, page.next.as_deref()).await.unwrap();
    assert_eq!((last.uploads.len(), last.next), (0, None));
    s3.abort_upload(BUCKET, &page.uploads[0]).await.unwrap();
    assert_eq!(abort.num_calls(), 1);
}

#[tokio::test]
async fn a_cursor_this_store_did_not_hand_out_is_refused_before_any_call() {
    // No rule: any call would fail the test.
    for cursor in ["acme/b.json", r#"{"t":"x"}"#] {
        match store(&[]).list_page(BUCKET, PREFIX, Some(cursor), 1000).await {
            Err(StoreError::Unavailable(m)) => assert!(m.contains("bad listing cursor"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

fn prefixes(names: &[&str]) -> Vec<CommonPrefix> {
    names
        .iter()
        .map(|p| CommonPrefix::builder().prefix(*p).build())
        .collect()
}

#[tokio::test]
async fn sub_prefixes_are_listed_across_pages_by_version_and_capped() {
    // Versioned: one page's sub-prefixes, its markers handed back, and a
    // key directly under the prefix seen as a delete marker only.
    let first = mock!(Client::list_object_versions)
        .match_requests(|req| req.delimiter() == Some("/") && req.key_marker().is_none())
        .then_output(|| {
            ListObjectVersionsOutput::builder()
                .set_common_prefixes(Some(prefixes(&["acme/a/", "acme/b/"])))
                .is_truncated(true)
                .next_key_marker("acme/b/")
                .next_version_id_marker("v9")
                .build()
        });
    let second = mock!(Client::list_object_versions)
        .match_requests(|req| req.key_marker() == Some("acme/b/") && req.version_id_marker() == Some("v9"))
        .then_output(|| {
            ListObjectVersionsOutput::builder()
                .set_common_prefixes(Some(prefixes(&["acme/c/"])))
                .delete_markers(DeleteMarkerEntry::builder().key("acme/x.json").version_id("m").build())
                .build()
        });
    let children = store(&[&versioned(), &first, &second])
        .list_children(BUCKET, PREFIX, 10)
        .await
        .unwrap();
    assert_eq!(children.prefixes, ["acme/a/", "acme/b/", "acme/c/"]);
    assert!(children.direct_entries && !children.truncated);
    // Unversioned: the continuation token handed back; more than the cap
    // stops the listing there.
    let first = mock!(Client::list_objects_v2)
        .match_requests(|req| req.delimiter() == Some("/") && req.continuation_token().is_none())
        .then_output(|| {
            ListObjectsV2Output::builder()
                .set_common_prefixes(Some(prefixes(&["acme/a/"])))
                .is_truncated(true)
                .next_continuation_token("token-2")
                .build()
        });
    let second = mock!(Client::list_objects_v2)
        .match_requests(|req| req.continuation_token() == Some("token-2"))
        .then_output(|| {
            ListObjectsV2Output::builder()
                .set_common_prefixes(Some(prefixes(&["acme/b/", "acme/c/"])))
                .is_truncated(true)
                .next_continuation_token("token-3")
                .build()
        });
    let children = store(&[&never_versioned(), &first, &second])
        .list_children(BUCKET, PREFIX, 2)
        .await
        .unwrap();
    assert_eq!(children.prefixes, ["acme/a/", "acme/b/"]);
    assert!(children.truncated && !children.direct_entries);
}
