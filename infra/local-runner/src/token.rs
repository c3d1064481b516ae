//! Development tokens for the local runner: HS256 JWTs signed with a local
//! key, verified here as API Gateway's JWT authorizer verifies the real
//! issuer's tokens in AWS (signature, issuer, audience, expiry), so the
//! intake's access rules are exercised locally. Never used in AWS.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

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

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, TokenError> {
        let mut mac = HmacSha256::new_from_slice(&self.key).map_err(|_| TokenError::Signature)?;
        mac.update(data);
        Ok(mac.finalize().into_bytes().to_vec())
    }

    /// A token for `sub` with `scopes`, valid for `ttl_seconds` from `now`.
    pub fn mint(&self, sub: &str, scopes: &[&str], now: i64, ttl_seconds: i64) -> Result<String, TokenError> {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": "JWT"}).to_string());
        let mut claims =
            json!({"sub": sub, "iss": self.issuer, "aud": self.audience, "iat": now, "exp": now + ttl_seconds});
        if !scopes.is_empty() {
            claims["scope"] = Value::String(scopes.join(" "));
        }
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(self.sign(signing_input.as_bytes())?);
        Ok(format!("{signing_input}.{signature}"))
    }

    /// Verifies a token at `now` (epoch seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Map<String, Value>, TokenError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| TokenError::Malformed);
        let header: Value = serde_json::from_slice(&decode(header_b64)?).map_err(|_| TokenError::Malformed)?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(TokenError::Claim("alg"));
        }
        let mut mac = HmacSha256::new_from_slice(&self.key).map_err(|_| TokenError::Signature)?;
        mac.update(format!("{header_b64}.{payload}").as_bytes());
        mac.verify_slice(&decode(signature)?)
            .map_err(|_| TokenError::Signature)?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&decode(payload)?).map_err(|_| TokenError::Malformed)?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenError::Claim("iss"));
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == &self.audience,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(self.audience.as_str())),
            _ => false,
        };
        if !audience_ok {
            return Err(TokenError::Claim("aud"));
        }
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if exp > now => {}
            Some(_) => return Err(TokenError::Expired),
            None => return Err(TokenError::Claim("exp")),
        }
        Ok(claims)
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
        parts[1] = URL_SAFE_NO_PAD.encode(
            json!({"sub": "root", "iss": "iss", "aud": "aud", "exp": 2000, "scope": "deletion:operator"}).to_string(),
        );
        assert_eq!(issuer.verify(&parts.join("."), 1010), Err(TokenError::Signature));
        // alg "none" is refused outright.
        parts[0] = URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string());
        assert_eq!(issuer.verify(&parts.join("."), 1010), Err(TokenError::Claim("alg")));
        assert_eq!(issuer.verify_header(None, 0), Err(TokenError::Missing));
        assert_eq!(issuer.verify_header(Some("Basic x"), 0), Err(TokenError::Missing));
        assert_eq!(issuer.verify("a.b", 0), Err(TokenError::Malformed));
    }
}
