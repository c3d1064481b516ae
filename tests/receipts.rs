//! Signed receipts against a real moto server: every completed purge's
//! receipt is signed with an asymmetric key, the API checks it, anyone
//! checks it offline with the published keys, a changed byte fails, and a
//! receipt the HMAC key signed before is still valid; the KMS signers are
//! exercised against moto's KMS.

use chrono::Duration;
use deletion_aws::kms::{KmsReceiptSigner, KmsSigner};
use deletion_core::model::Receipt;
use deletion_core::signing::{canonical, sign_receipt, verify_offline, HmacSigner, Jwks, ReceiptSigner};
use integration_tests::{deploy, env, Env, Signing, Versioning};
use serde_json::{json, Value};

/// The published keys, fetched with no token.
async fn published(env: &Env) -> Jwks {
    let a = env.call_as(None, "GET", "/.well-known/jwks.json", None, &[]).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    assert_eq!(
        a.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/jwk-set+json")
    );
    serde_json::from_value(a.body).expect("a key set")
}

/// Whether `receipt` checks out offline under `keys`.
fn offline(keys: &Jwks, receipt: &Value) -> bool {
    let receipt: Receipt = serde_json::from_value(receipt.clone()).expect("a receipt");
    let signature = receipt.signature.clone().expect("signed");
    verify_offline(&keys.keys, &canonical(&receipt).unwrap(), &signature)
}

async fn completed_receipt(env: &Env) -> Value {
    env.put(&env.archive, "acme/web/2024-01-01/x.json.gz").await;
    let created = env.call("POST", "/v1/workspaces/acme/deletion", None, &[]).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    env.stack.pump_stream().await.unwrap();
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    env.settle().await;
    let body = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await.body;
    assert_eq!(body["status"], "COMPLETED", "{body:#}");
    body["receipt"].clone()
}

async fn verify(env: &Env, receipt: &Value) -> Value {
    let a = env
        .call("POST", "/v1/receipts:verify", Some(&receipt.to_string()), &[])
        .await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    a.body
}

#[tokio::test]
async fn a_completed_purge_has_a_signed_receipt_that_any_change_breaks() {
    let env = env(Versioning::None).await;
    let receipt = completed_receipt(&env).await;
    assert_eq!(receipt["signature"]["algorithm"], "ED25519", "{receipt:#}");
    assert_eq!(receipt["signature"]["key_id"], "local:receipts", "{receipt:#}");
    assert!(receipt["signature"]["value"].as_str().is_some_and(|v| v.len() > 40));
    let keys = published(&env).await;
    assert!(offline(&keys, &receipt), "checked offline: {keys:?}");
    let answer = verify(&env, &receipt).await;
    assert_eq!(answer["valid"], true, "{answer:#}");
    assert_eq!(answer["request_id"], receipt["request_id"]);

    let mut more = receipt.clone();
    more["totals"]["objects"] = json!(receipt["totals"]["objects"].as_u64().unwrap() + 1);
    assert_eq!(verify(&env, &more).await["valid"], false, "a changed count");
    let mut elsewhere = receipt.clone();
    elsewhere["prefixes"][0]["prefix"] = json!("acme-corp/");
    assert_eq!(verify(&env, &elsewhere).await["valid"], false, "a changed prefix");
    assert!(!offline(&keys, &more) && !offline(&keys, &elsewhere), "offline too");
    let mut unsigned = receipt.clone();
    unsigned.as_object_mut().unwrap().remove("signature");
    assert_eq!(verify(&env, &unsigned).await["valid"], false, "no signature");

    // Another deployment's key does not vouch for this one's receipts.
    let other = integration_tests::env(Versioning::None).await;
    assert_eq!(verify(&other, &receipt).await["valid"], false);
    assert!(!offline(&published(&other).await, &receipt), "nor its published keys");
    // Anyone with a token may check a receipt; nobody without one.
    let ann = env
        .call_as(
            Some(("ann", &[])),
            "POST",
            "/v1/receipts:verify",
            Some(&receipt.to_string()),
            &[],
        )
        .await;
    assert_eq!((ann.status.as_u16(), ann.body["valid"].clone()), (200, json!(true)));
    env.call_as(None, "POST", "/v1/receipts:verify", Some(&receipt.to_string()), &[])
        .await
        .problem(401);
    env.call("POST", "/v1/receipts:verify", Some(r#"{"not": "a receipt"}"#), &[])
        .await
        .problem(400);
}

#[tokio::test]
async fn a_receipt_signed_with_the_hmac_key_before_stays_valid() {
    let env = env(Versioning::None).await;
    let mut receipt: Receipt = serde_json::from_value(completed_receipt(&env).await).unwrap();
    // As the runner signed receipts before the Ed25519 key (same secret).
    let hmac = HmacSigner::new("receipts", env.stack.settings.receipt_key.as_bytes());
    sign_receipt(&hmac, &mut receipt).await.unwrap();
    let issued = serde_json::to_value(&receipt).unwrap();
    let answer = verify(&env, &issued).await;
    assert_eq!(
        (answer["valid"].clone(), answer["algorithm"].clone()),
        (json!(true), json!("HMAC_SHA_256"))
    );
    let mut changed = issued.clone();
    changed["totals"]["objects"] = json!(99);
    assert_eq!(verify(&env, &changed).await["valid"], false);
    assert!(
        !offline(&published(&env).await, &issued),
        "an HMAC receipt has no public key"
    );
}

#[tokio::test]
async fn a_kms_deployment_signs_with_its_p256_key_and_publishes_it() {
    let env = deploy(Versioning::None, Signing::Kms).await;
    let receipt = completed_receipt(&env).await;
    assert_eq!(receipt["signature"]["algorithm"], "ECDSA_SHA_256", "{receipt:#}");
    let keys = published(&env).await;
    // The receipts' key only: OpenDSR's is published apart, never a
    // receipt key.
    assert_eq!(keys.keys.len(), 1, "{keys:?}");
    let opendsr = env
        .call_as(None, "GET", "/.well-known/opendsr-jwks.json", None, &[])
        .await;
    assert_eq!(opendsr.status, 200, "{:#}", opendsr.body);
    let opendsr: Jwks = serde_json::from_value(opendsr.body).expect("a key set");
    assert_eq!(opendsr.keys.len(), 1);
    assert_ne!(opendsr.keys[0].kid, keys.keys[0].kid);
    let key = keys
        .keys
        .iter()
        .find(|k| receipt["signature"]["key_id"] == k.kid.as_str())
        .expect("the signature names a published key");
    assert_eq!(
        (key.kty.as_str(), key.crv.as_str(), key.alg.as_str()),
        ("EC", "P-256", "ES256")
    );
    assert!(offline(&keys, &receipt));
    assert_eq!(verify(&env, &receipt).await["valid"], true);
    let mut changed = receipt.clone();
    changed["verified_at"] = json!("2030-01-01T00:00:00Z");
    assert!(!offline(&keys, &changed));
    assert_eq!(verify(&env, &changed).await["valid"], false);
}

#[tokio::test]
async fn the_kms_signing_key_signs_receipts_of_any_size_and_checks_them_offline() {
    let env = env(Versioning::None).await;
    let key_id = deletion_aws::provision::create_receipt_signing_key(&env.clients)
        .await
        .expect("a P-256 key in moto's KMS");
    let signer = KmsReceiptSigner::new(env.clients.kms.clone(), key_id);
    // Bigger than KMS's 4 KB limit on a RAW message: its digest is signed.
    let message = "r".repeat(100_000).into_bytes();
    let signature = signer.sign(&message).await.unwrap();
    assert_eq!(signature.algorithm, "ECDSA_SHA_256");
    assert!(signer.verify(&message, &signature).await.unwrap());
    let keys = signer.public_keys().await.unwrap();
    assert!(verify_offline(&keys, &message, &signature), "{keys:?} {signature:?}");
    let mut changed = message.clone();
    changed[50_000] = b's';
    assert!(!signer.verify(&changed, &signature).await.unwrap());
    assert!(!verify_offline(&keys, &changed, &signature));
    let mut forged = signature.clone();
    forged.value = "AAAA".into();
    assert!(!signer.verify(&message, &forged).await.unwrap());
    // Another key's signature does not pass for this one's.
    let theirs = deletion_aws::provision::create_receipt_signing_key(&env.clients)
        .await
        .unwrap();
    let foreign = KmsReceiptSigner::new(env.clients.kms.clone(), theirs)
        .sign(&message)
        .await
        .unwrap();
    assert!(!signer.verify(&message, &foreign).await.unwrap());
    assert_eq!(signature.key_id, keys[0].kid, "a signature names its key as published");
    let mut renamed = signature.clone();
    renamed.key_id = foreign.key_id.clone();
    assert!(
        !signer.verify(&message, &renamed).await.unwrap(),
        "our signature naming another key"
    );
}

#[tokio::test]
async fn the_kms_signer_signs_with_a_key_that_never_leaves_kms() {
    let env = env(Versioning::None).await;
    let key_id = deletion_aws::provision::create_receipt_key(&env.clients)
        .await
        .expect("an HMAC key in moto's KMS");
    let signer = KmsSigner::new(env.clients.kms.clone(), key_id.clone());
    let receipt: Receipt = serde_json::from_value(completed_receipt(&env).await).unwrap();
    let message = canonical(&receipt).unwrap();
    let signature = signer.sign(&message).await.unwrap();
    assert!(signer.verify(&message, &signature).await.unwrap());
    let mut changed = message.clone();
    changed.push(b' ');
    assert!(!signer.verify(&changed, &signature).await.unwrap());
    let mut forged = signature.clone();
    forged.value = "AAAA".into();
    assert!(!signer.verify(&message, &forged).await.unwrap());
}

#[tokio::test]
async fn a_receipt_is_checked_under_the_deployments_key_only() {
    let env = env(Versioning::None).await;
    let ours = deletion_aws::provision::create_receipt_key(&env.clients).await.unwrap();
    let theirs = deletion_aws::provision::create_receipt_key(&env.clients).await.unwrap();
    let signer = KmsSigner::new(env.clients.kms.clone(), ours);
    let other = KmsSigner::new(env.clients.kms.clone(), theirs);
    let message = br#"{"request_id":"r"}"#;
    // Signed by another key (one the caller may control): not ours.
    let foreign = other.sign(message).await.unwrap();
    assert!(other.verify(message, &foreign).await.unwrap());
    assert!(!signer.verify(message, &foreign).await.unwrap(), "{foreign:?}");
    // Our MAC, but the receipt names another key: refused too.
    let mut renamed = signer.sign(message).await.unwrap();
    assert!(signer.verify(message, &renamed).await.unwrap());
    renamed.key_id = foreign.key_id.clone();
    assert!(!signer.verify(message, &renamed).await.unwrap());
}

#[tokio::test]
async fn a_finished_regulation_carries_a_signed_receipt_of_what_it_removed() {
    let env = env(Versioning::None).await;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut e,
        b"{\"userId\":\"bob\"}\n{\"userId\":\"ann\"}\n{\"userId\":\"bob\"}\n",
    )
    .unwrap();
    let events = e.finish().unwrap();
    deletion_aws::provision::put_object(&env.clients, &env.archive, "acme/web/2024-01-01/e.json.gz", &events)
        .await
        .unwrap();
    let body = r#"{"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["bob"]}"#;
    let created = env
        .call("POST", "/v1/workspaces/acme/regulations", Some(body), &[])
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["receipt"], Value::Null, "none before it finishes");
    env.settle().await;
    let done = env.call("GET", &format!("/v1/regulations/{id}"), None, &[]).await.body;
    assert_eq!(done["status"], "FINISHED", "{done:#}");
    let receipt = done["receipt"].clone();
    assert_eq!(receipt["scope"]["kind"], "regulation", "{receipt:#}");
    assert!(
        receipt["scope"]["digest"].as_str().is_some_and(|d| d.len() == 64),
        "the subject set's digest"
    );
    let rewritten = &receipt["prefixes"][0]["rewritten"];
    assert_eq!(
        (
            rewritten["events_removed"].as_u64(),
            rewritten["objects_failed"].as_u64()
        ),
        (Some(2), Some(0))
    );
    assert_eq!(verify(&env, &receipt).await["valid"], true);
    let mut fewer = receipt.clone();
    fewer["prefixes"][0]["rewritten"]["events_removed"] = json!(1);
    assert_eq!(verify(&env, &fewer).await["valid"], false, "a changed count");
    let mut other = receipt.clone();
    other["scope"]["digest"] = json!("0".repeat(64));
    assert_eq!(verify(&env, &other).await["valid"], false, "another subject set");
}
