//! Callback value types: the URL a request's callbacks go to (and the
//! policy it was accepted under) and where its deliveries stand.
//!
//! A `CallbackUrl` exists only after it passed its `UrlPolicy`: outside
//! local runs only `https:` to a public host (`is_public`).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::RequestId;

/// Longest accepted callback URL.
pub const MAX_URL_CHARS: usize = 2048;

/// Why a callback URL is refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid callback_url: {0}")]
pub struct CallbackUrlError(pub String);

/// Which callback URLs are accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Accept `http:` and hosts on loopback or private networks: for local
    /// runs and tests only. Otherwise only `https:` to public hosts.
    pub allow_private: bool,
}

/// A callback URL that passed the policy it was parsed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallbackUrl(String);

impl CallbackUrl {
    pub fn parse(raw: &str, policy: UrlPolicy) -> Result<CallbackUrl, CallbackUrlError> {
        let refuse = |why: &str| Err(CallbackUrlError(why.to_owned()));
        if raw.chars().count() > MAX_URL_CHARS {
            return refuse(&format!("it has more than {MAX_URL_CHARS} characters"));
        }
        let url = url::Url::parse(raw).map_err(|e| CallbackUrlError(format!("{raw:?} is not a URL: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if policy.allow_private => {}
            other => return refuse(&format!("the scheme must be https (got {other:?})")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return refuse("it must not carry credentials: the events are signed instead");
        }
        if url.fragment().is_some() {
            return refuse("it must not have a fragment");
        }
        match url.host() {
            None => return refuse("it has no host"),
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if !policy.allow_private && (d == "localhost" || d.ends_with(".localhost")) {
                    return refuse("the host must be reachable from the internet, not localhost");
                }
            }
            Some(url::Host::Ipv4(a)) if !policy.allow_private && !is_public(IpAddr::V4(a)) => {
                return refuse(&format!("{a} is not a public address"));
            }
            Some(url::Host::Ipv6(a)) if !policy.allow_private && !is_public(IpAddr::V6(a)) => {
                return refuse(&format!("{a} is not a public address"));
            }
            Some(_) => {}
        }
        Ok(CallbackUrl(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CallbackUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local (where cloud metadata lives), shared, documentation,
/// multicast or reserved.
///
/// An IPv6 address that carries an IPv4 one is judged by that IPv4
/// address: IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::/96`) and
/// 6to4 (`2002::/16`), so `64:ff9b::7f00:1` is loopback. The ranges that
/// never reach a public host are refused whole: IPv4-compatible
/// (`::a.b.c.d`, deprecated), the rest of `64:ff9b::/32` (local-use NAT64,
/// `64:ff9b:1::/48`) and Teredo (`2001::/32`, whose IPv4 address is hidden).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let [o0, o1, ..] = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_multicast()
                || o0 == 0
                || o0 >= 240
                || (o0 == 100 && (o1 & 0xc0) == 64)
                || (o0 == 198 && (o1 & 0xfe) == 18))
        }
        IpAddr::V6(a) => {
            if let Some(v4) = embedded_ipv4(a) {
                return is_public(IpAddr::V4(v4));
            }
            let [first, second, ..] = a.segments();
            let compatible = a.segments()[..6] == [0; 6];
            !(compatible
                || (first == 0x64 && second == 0xff9b)
                || (first == 0x2001 && second == 0)
                || a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && second == 0x0db8)
        }
    }
}

/// The IPv4 address an IPv6 one carries, in the forms that route to it:
/// IPv4-mapped, NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
fn embedded_ipv4(a: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = a.segments();
    let v4 = |hi: u16, lo: u16| std::net::Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    if let Some(v4) = a.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(v4(s[6], s[7]))
    } else if s[0] == 0x2002 {
        Some(v4(s[1], s[2]))
    } else {
        None
    }
}

/// Where a request's callbacks stand, kept beside the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackState {
    pub request_id: RequestId,
    /// History entries done: delivered, or given up after `MAX_ATTEMPTS`.
    pub delivered: u32,
    /// Failed attempts at the next entry.
    pub attempts: u32,
    /// When the next entry may be tried again (after a failure).
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Entries given up.
    #[serde(default)]
    pub given_up: u32,
    /// 0 until first stored; every write is conditional on it.
    pub version: u64,
    /// Once every status of a final request is delivered: when the state
    /// is no longer needed (the table's TTL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl CallbackState {
    pub fn new(request_id: RequestId) -> CallbackState {
        CallbackState {
            request_id,
            delivered: 0,
            attempts: 0,
            next_attempt_at: None,
            last_attempt_at: None,
            last_error: None,
            given_up: 0,
            version: 0,
            expires_at: None,
        }
    }
}
