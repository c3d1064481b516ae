//! Development tokens for the local runner: HS256 JWTs signed with a local
//! key (`jsonwebtoken`), verified here as API Gateway's JWT authorizer
//! verifies the real issuer's tokens in AWS (signature, issuer, audience,
//! expiry), so the intake's access rules are exercised locally. Never used
//! in AWS.
//!
//! Invariant: only HS256 under this issuer's key is accepted, and a token
//! without `iss`, `aud` or `exp` is refused; expiry is judged at the `now`
//! the caller gives (the runner's clock), with no leeway.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    Signature,
    #[error("unexpected {0}")]
    Claim(&'static str),
    #[error("expired")]
    Expired,
}

/// The local issuer: its key, name and audience.
#[derive(Clone)]
pub struct DevIssuer {
    key: Vec<u8>,
    pub issuer: String,
    pub audience: String,
}

fn claim_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::Signature,
        ErrorKind::InvalidIssuer => TokenError::Claim("iss"),
        ErrorKind::InvalidAudience => TokenError::Claim("aud"),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::Claim("alg"),
        ErrorKind::MissingRequiredClaim(c) if c == "iss" => TokenError::Claim("iss"),
        ErrorKind::MissingRequiredClaim(c) if c == "aud" => TokenError::Claim("aud"),
        ErrorKind::MissingRequiredClaim(_) => TokenError::Claim("exp"),
        ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Malformed,
    }
}

impl DevIssuer {
    pub fn new(key: &str, issuer: &str, audience: &str) -> DevIssuer {
        DevIssuer {
            key: key.as_bytes().to_vec(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// `LOCAL_JWT_KEY`, `LOCAL_JWT_ISSUER`, `LOCAL_JWT_AUDIENCE`, with
    /// development defaults.
    pub fn from_env() -> DevIssuer {
        let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        DevIssuer::new(
            &var("LOCAL_JWT_KEY", "local-development-key-never-used-in-aws"),
            &var("LOCAL_JWT_ISSUER", "http://127.0.0.1/local-issuer"),
            &var("LOCAL_JWT_AUDIENCE", "deletion-service"),
        )
    }

    /// A token for `sub` with `scopes`, valid for `ttl_seconds` from `now`.
    pub fn mint(&self, sub: &str, scopes: &[&str], now: i64, ttl_seconds: i64) -> Result<String, TokenError> {
        let mut claims =
            json!({"sub": sub, "iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + ttl_seconds});
        if !scopes.is_empty() {
            claims["scope"] = Value::String(scopes.join(" "));
        }
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.key),
        )
        .map_err(|e| claim_error(e.kind()))
    }

    /// Verifies a token at `now` (epoch seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Map<String, Value>, TokenError> {
        // A header naming another algorithm (or none) is refused as such.
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::Json(_) => TokenError::Claim("alg"),
            other => claim_error(other),
        })?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Claim("alg"));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["iss", "aud"]);
        // Expiry is checked below against the given `now`, not the system clock.
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_secret(&self.key), &validation)
            .map_err(|e| claim_error(e.kind()))?;
        match data.claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp > now => Ok(data.claims),
            Some(_) => Err(TokenError::Expired),
            None => Err(TokenError::Claim("exp")),
        }
    }

    /// Verifies the `Authorization: Bearer` header's token.
    pub fn verify_header(&self, header: Option<&str>, now: i64) -> Result<Map<String, Value>, TokenError> {
        let token = header
            .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Missing)?;
        self.verify(token, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &Value) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn a_minted_token_verifies_and_tampering_does_not() {
        let issuer = DevIssuer::new("k", "iss", "aud");
        let token = issuer.mint("ann", &["deletion:operator"], 1000, 60).unwrap();
        let claims = issuer.verify(&token, 1010).unwrap();
        assert_eq!(claims["sub"], "ann");
        assert_eq!(claims["scope"], "deletion:operator");
        assert_eq!(issuer.verify(&token, 1060), Err(TokenError::Expired));
        let other_key = DevIssuer::new("k2", "iss", "aud");
        assert_eq!(other_key.verify(&token, 1010), Err(TokenError::Signature));
        assert_eq!(
            DevIssuer::new("k", "iss2", "aud").verify(&token, 1010),
            Err(TokenError::Claim("iss"))
        );
        assert_eq!(
            DevIssuer::new("k", "iss", "aud2").verify(&token, 1010),
            Err(TokenError::Claim("aud"))
        );
        // Another subject pasted into a signed token breaks the signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = b64(&json!({"sub": "root", "iss": "iss", "aud": "aud", "exp": 2000, "scope": "deletion:operator"}));
        assert_eq!(issuer.verify(&parts.join("."), 1010), Err(TokenError::Signature));
        // alg "none" is refused outright, and so is another algorithm.
        parts[0] = b64(&json!({"alg": "none"}));
        assert_eq!(issuer.verify(&parts.join("."), 1010), Err(TokenError::Claim("alg")));
        parts[0] = b64(&json!({"alg": "HS512", "typ": "JWT"}));
        assert_eq!(issuer.verify(&parts.join("."), 1010), Err(TokenError::Claim("alg")));
        assert_eq!(issuer.verify_header(None, 0), Err(TokenError::Missing));
        assert_eq!(issuer.verify_header(Some("Basic x"), 0), Err(TokenError::Missing));
        assert_eq!(issuer.verify("a.b", 0), Err(TokenError::Malformed));
    }
}
