//! Public keys of receipt signatures, as a JSON Web Key Set (RFC 7517):
//! what a deployment publishes so that anyone can check its receipts
//! without asking it.
//!
//! Invariant: a key's `kid` is exactly the `key_id` its signatures carry.

use serde::{Deserialize, Serialize};

/// One public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `EC` (P-256, KMS) or `OKP` (Ed25519, local).
    pub kty: String,
    /// `P-256` or `Ed25519`.
    pub crv: String,
    /// The point's x coordinate (EC) or the public key (OKP), base64url.
    pub x: String,
    /// The point's y coordinate, base64url (EC only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The `key_id` of the signatures this key checks.
    pub kid: String,
    /// `ES256` or `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub usage: String,
}

/// A key set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}
