//! `verify-receipt [FILE]`: checks, offline, the signature of a receipt the
//! local runner signed (with `LOCAL_RECEIPT_KEY`). FILE (or standard input)
//! holds the receipt, or the whole `GET /v1/deletions/{id}` answer.
//! Exit 0: valid; 1: not valid; 2: unreadable. Receipts signed in AWS are
//! checked with `POST /v1/receipts:verify` (the key stays in KMS).

use std::io::Read;

use deletion_core::model::Receipt;
use std::sync::Arc;

use deletion_core::signing::{verify_receipt, Ed25519Signer, HmacSigner, KeyRing};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut text = String::new();
    let read = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(&path).map(|t| text = t),
        None => std::io::stdin().read_to_string(&mut text).map(|_| ()),
    };
    if let Err(e) = read {
        eprintln!("verify-receipt: {e}");
        std::process::exit(2);
    }
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("verify-receipt: not JSON: {e}");
            std::process::exit(2);
        }
    };
    let receipt_json = value.get("receipt").cloned().unwrap_or(value);
    let receipt: Receipt = match serde_json::from_value(receipt_json) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("verify-receipt: not a receipt: {e}");
            std::process::exit(2);
        }
    };
    let key = std::env::var("LOCAL_RECEIPT_KEY").unwrap_or_else(|_| "local-receipt-key-never-used-in-aws".to_owned());
    let signer = match Ed25519Signer::from_secret("receipts", key.as_bytes()) {
        Ok(ed25519) => {
            KeyRing::new(Arc::new(ed25519)).with_earlier(Arc::new(HmacSigner::new("receipts", key.as_bytes())))
        }
        Err(e) => {
            eprintln!("verify-receipt: {e}");
            std::process::exit(2);
        }
    };
    match verify_receipt(&signer, &receipt).await {
        Ok(true) => println!(
            "valid: receipt of request {} signed by {}",
            receipt.request_id,
            signer_id(&receipt)
        ),
        Ok(false) => {
            println!("NOT valid: receipt of request {}", receipt.request_id);
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("verify-receipt: {e}");
            std::process::exit(2);
        }
    }
}

fn signer_id(receipt: &Receipt) -> String {
    receipt.signature.as_ref().map(|s| s.key_id.clone()).unwrap_or_default()
}
