//! Status callbacks over HTTPS: one POST per event, no redirects followed,
//! short timeouts, and only to public addresses. The host is resolved here
//! and every address it resolves to is checked, so a name that points at
//! loopback, a private network or the metadata service is refused at
//! connect time, not only when the URL was accepted.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use deletion_core::callbacks::is_public;
use deletion_core::ports::CallbackSender;
use deletion_core::DeliveryError;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// Connecting, sending and hearing the answer's head, all together.
const TIMEOUT_SECONDS: u64 = 10;
/// How much of an answer's body is read (and thrown away).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Resolves names to public addresses only (unless told otherwise).
#[derive(Clone, Debug)]
struct PublicResolver {
    allow_private: bool,
}

impl tower_service::Service<Name> for PublicResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if addresses.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{name} resolves to no public address"),
                ));
            }
            Ok(addresses.into_iter())
        })
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<PublicResolver>>;

/// Sends callbacks with hyper and rustls (the system's trusted roots).
#[derive(Clone)]
pub struct HttpSender {
    client: Client<Connector, Full<Bytes>>,
    allow_private: bool,
}

impl HttpSender {
    /// `allow_private`: also plain `http:` and loopback or private
    /// addresses (local runs and tests only).
    pub fn new(allow_private: bool) -> Result<HttpSender, std::io::Error> {
        let mut http = HttpConnector::new_with_resolver(PublicResolver { allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let (added, _) = roots.add_parsable_certificates(found.certs);
        if added == 0 && !allow_private {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no trusted root certificates found on this system: callbacks could not be sent over https",
            ));
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls);
        let https = if allow_private {
            builder.https_or_http().enable_http1().wrap_connector(http)
        } else {
            builder.https_only().enable_http1().wrap_connector(http)
        };
        Ok(HttpSender {
            client: Client::builder(TokioExecutor::new()).build(https),
            allow_private,
        })
    }
}

#[async_trait]
impl CallbackSender for HttpSender {
    async fn post(&self, url: &str, headers: &[(String, String)], body: Vec<u8>) -> Result<u16, DeliveryError> {
        let parsed = url::Url::parse(url).map_err(|e| DeliveryError::Refused(format!("{url}: {e}")))?;
        // An address in the URL itself never reaches the resolver.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(a)) => Some(std::net::IpAddr::V4(a)),
            Some(url::Host::Ipv6(a)) => Some(std::net::IpAddr::V6(a)),
            _ => None,
        };
        if let Some(ip) = literal.filter(|ip| !self.allow_private && !is_public(*ip)) {
            return Err(DeliveryError::Refused(format!("{ip} is not a public address")));
        }
        let mut request = hyper::Request::post(url);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request = request.header("user-agent", "deletion-service-callbacks/1");
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| DeliveryError::Refused(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| DeliveryError::Unreachable(error_chain(&e)))?;
            let status = response.status().as_u16();
            // Read a little of the answer so the connection can be reused.
            let _ = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await;
            Ok(status)
        };
        tokio::time::timeout(Duration::from_secs(TIMEOUT_SECONDS), exchange)
            .await
            .map_err(|_| DeliveryError::Timeout(TIMEOUT_SECONDS))?
    }
}

/// An error with its causes: hyper's own message says little.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
