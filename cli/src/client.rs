//! The API over HTTPS (or plain HTTP on loopback, for the local runner),
//! and what its refusals mean to a caller.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use thiserror::Error;

use crate::Exit;

/// Longest answer read (a receipt of years of days is large; a page too).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum CliError {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// The API refused: its problem's title and detail.
    #[error("{title} ({status}): {detail}")]
    Problem { status: u16, title: String, detail: String },
    /// The API could not be reached or answered something unreadable.
    #[error("{0}")]
    Transport(String),
    /// A check that failed (a receipt not valid).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub fn exit(&self) -> Exit {
        match self {
            CliError::Usage(_) => Exit::Usage,
            CliError::Problem { status: 404, .. } => Exit::NotFound,
            // Input the API called malformed: the caller's usage.
            CliError::Problem {
                status: 400 | 413 | 415,
                ..
            } => Exit::Usage,
            CliError::Problem { .. } | CliError::Transport(_) | CliError::Failed(_) => Exit::Refused,
        }
    }

    /// The problem+json body (RFC 9457) as a refusal.
    fn problem(status: u16, body: &Value) -> CliError {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        CliError::Problem {
            status,
            title: text("title").unwrap_or_else(|| format!("HTTP {status}")),
            detail: text("detail")
                .or_else(|| text("message"))
                .unwrap_or_else(|| "no detail given".into()),
        }
    }
}

/// Whether a URL names this machine.
fn loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// The API at one base URL, with an optional bearer token.
pub struct Api {
    base: url::Url,
    token: Option<String>,
    client: Client<Https, Full<Bytes>>,
}

impl Api {
    pub fn new(base: Option<&str>, token: Option<String>) -> Result<Api, CliError> {
        let base = base.ok_or_else(|| CliError::Usage("no API: set DELETION_API or pass --api URL".into()))?;
        let base = url::Url::parse(base).map_err(|e| CliError::Usage(format!("--api {base}: {e}")))?;
        if !matches!(base.scheme(), "https" | "http") || base.cannot_be_a_base() {
            return Err(CliError::Usage(format!("--api {base}: not an http(s) URL")));
        }
        if base.scheme() == "http" && !loopback(&base) {
            // The token, and the key set receipts are checked against,
            // would travel in clear.
            return Err(CliError::Usage(format!(
                "--api {base}: plain http is for a service on this machine (localhost, 127.0.0.1, ::1); use https"
            )));
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::Transport(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Api {
            base,
            token: token.filter(|t| !t.trim().is_empty()),
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// The URL of `segments` (each percent-encoded) with `query`.
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Sends one request; a 2xx answer's JSON (null when empty), else the
    /// problem it carries.
    pub async fn send(&self, method: &str, url: &url::Url, body: Option<&Value>) -> Result<Value, CliError> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header("accept", "application/json, application/problem+json");
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let payload = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .map_err(|e| CliError::Usage(format!("{url}: {e}")))?;
        let answer = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| CliError::Transport(format!("{url}: no answer in {}s", TIMEOUT.as_secs())))?
            .map_err(|e| CliError::Transport(format!("{url}: {e}")))?;
        let status = answer.status().as_u16();
        let bytes = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| CliError::Transport(format!("{url}: {e}")))?
            .to_bytes();
        let json: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        if (200..300).contains(&status) {
            Ok(json)
        } else {
            Err(CliError::problem(status, &json))
        }
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Value, CliError> {
        self.send("GET", &self.url(segments, query), None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_segments_never_paths() {
        let api = Api::new(Some("http://127.0.0.1:1/base/"), None).unwrap();
        let url = api.url(&["v1", "deletions", "../../v1/purges?x=1"], &[("status", "A,B".into())]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/base/v1/deletions/..%2F..%2Fv1%2Fpurges%3Fx=1?status=A%2CB"
        );
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        for ok in [
            "http://127.0.0.1:8787",
            "http://localhost:8787/",
            "http://[::1]:8787",
            "https://api.example.com",
        ] {
            assert!(Api::new(Some(ok), None).is_ok(), "{ok}");
        }
        for bad in ["http://api.example.com", "http://10.0.0.7:8787", "ftp://127.0.0.1"] {
            assert!(matches!(Api::new(Some(bad), None), Err(CliError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn refusals_map_to_exit_codes() {
        let p = |status| CliError::problem(status, &serde_json::json!({"title": "T", "detail": "D"}));
        assert_eq!(p(404).exit(), Exit::NotFound);
        assert_eq!(p(400).exit(), Exit::Usage);
        assert_eq!(p(409).exit(), Exit::Refused);
        assert_eq!(p(403).exit(), Exit::Refused);
        assert_eq!(p(503).exit(), Exit::Refused);
        assert_eq!(p(409).to_string(), "T (409): D");
        let gateway = CliError::problem(401, &serde_json::json!({"message": "Unauthorized"}));
        assert_eq!(gateway.to_string(), "HTTP 401 (401): Unauthorized");
        assert!(matches!(Api::new(None, None), Err(CliError::Usage(_))));
        assert!(matches!(Api::new(Some("ftp://x"), None), Err(CliError::Usage(_))));
    }
}
