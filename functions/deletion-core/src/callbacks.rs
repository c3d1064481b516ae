//! Status callbacks: a request may carry a `callback_url`; every entry of
//! its status history is POSTed there, in order, signed with a secret only
//! the requester was given, retried with backoff, and never in the way of
//! the purge (delivery runs beside it and only reads the request).
//!
//! Delivery is at least once: a receiver dedupes on the event id
//! (`<request id>:<sequence>`), which names one history entry for good.
//!
//! The secret of a request is a MAC of its id under a key of the service
//! (KMS in AWS): it is stored nowhere, given out only in the answer of the
//! call that created the request (and again to that caller's replay with
//! the same idempotency key), and recomputed by the notifier to sign each
//! event. The children of an account request report to its URL signed with
//! its secret, the one its requester holds.
//!
//! A regulation made by an OpenDSR request reports in OpenDSR's form
//! instead (`model::opendsr`): one callback per change of its OpenDSR
//! status, signed with the OpenDSR key (`X-OpenDSR-Signature` over the
//! body as sent, `X-OpenDSR-Processor-Domain`).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use futures::stream::{self, StreamExt};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use serde_json::json;
use sha2::Sha256;

use crate::error::SignError;
use crate::ids::RequestId;
use crate::model::ledger::CALLBACK_STATE_KEPT;
use crate::model::DeletionRequest;
use crate::ports::ReceiptSigner;
use crate::ports::{CallbackLedger, CallbackSender, Clock, Ledger};
use crate::{LedgerError, ServiceError};

pub use crate::model::callbacks::{is_public, CallbackState, CallbackUrl, CallbackUrlError, UrlPolicy, MAX_URL_CHARS};

/// Failed attempts after which an event is given up (about 21 hours of
/// backoff); the next event is delivered then.
pub const MAX_ATTEMPTS: u32 = 12;
/// The header holding `t=<unix seconds>,v1=<hex HMAC-SHA-256>`.
pub const SIGNATURE_HEADER: &str = "deletion-signature";
/// The header naming the event, for receivers to dedupe on.
pub const EVENT_ID_HEADER: &str = "deletion-event-id";
/// How many requests' callbacks are delivered at once.
const CONCURRENCY: usize = 8;

/// The wait before the next attempt after `attempts` failed ones:
/// 30 s, doubling, at most an hour.
pub fn backoff(attempts: u32) -> Duration {
    let seconds = 30i64.saturating_mul(1i64 << attempts.saturating_sub(1).min(20));
    Duration::seconds(seconds.min(3600))
}

/// The request's secret, as given to its requester.
pub async fn secret(key: &dyn ReceiptSigner, id: &RequestId) -> Result<String, SignError> {
    let mac = key.sign(format!("deletion-callback-secret/v1/{id}").as_bytes()).await?;
    Ok(format!("dcs_{}", mac.value))
}

/// The MAC of `"<timestamp>.<body>"` under the secret.
fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header's value for `body` sent at `timestamp`:
/// `t=<timestamp>,v1=<hex HMAC-SHA-256 of "<timestamp>.<body>" under the secret>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let hex: String = mac(secret, timestamp, body)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={hex}")
}

/// Whether `header` is a valid signature of `body` under `secret` (what a
/// receiver checks; it should also refuse an old timestamp).
pub fn verify_signature(secret: &str, header: &str, body: &[u8]) -> bool {
    let Some((t, hex)) = header.strip_prefix("t=").and_then(|rest| rest.split_once(",v1=")) else {
        return false;
    };
    // Only the timestamp as `signature` writes it (no sign, no leading zero).
    let Some(t) = t.parse::<i64>().ok().filter(|n| n.to_string() == t) else {
        return false;
    };
    // Exactly what `signature` writes: lower-case hex, two digits a byte.
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let Some(given) = hex
        .as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    // Constant-time comparison.
    mac(secret, t, body).verify_slice(&given).is_ok()
}

/// The event for history entry `sequence` of a request.
pub fn event(request: &DeletionRequest, sequence: usize) -> Option<serde_json::Value> {
    let entry = request.history.get(sequence)?;
    let previous = sequence.checked_sub(1).and_then(|i| request.history.get(i));
    let link = if request.scope.regulation().is_some() {
        format!("/v1/regulations/{}", request.id)
    } else {
        format!("/v1/deletions/{}", request.id)
    };
    let mut event = json!({
        "id": format!("{}:{sequence}", request.id),
        "type": "deletion.status_changed",
        "request_id": request.id,
        "kind": request.scope.kind(),
        "sequence": sequence,
        "status": entry.status,
        "previous_status": previous.map(|p| p.status),
        "at": entry.at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "status_url": link,
    });
    if let Some(note) = &entry.note {
        event["note"] = json!(note);
    }
    if let Some(parent) = &request.parent {
        event["parent_id"] = json!(parent);
    }
    Some(event)
}

/// What one delivery round did for a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Delivery {
    /// The request has no callback URL (or no longer exists).
    NoCallback,
    /// Every history entry is done.
    UpToDate { delivered: u32 },
    /// An entry failed; it is tried again at `until`.
    Waiting { delivered: u32, until: DateTime<Utc> },
    /// Another delivery round wrote first; it carries on.
    Raced,
}

/// Delivers status callbacks.
pub struct Notifier<L, S, C> {
    ledger: L,
    sender: S,
    key: std::sync::Arc<dyn ReceiptSigner>,
    clock: C,
    /// OpenDSR's signing key.
    opendsr: Option<std::sync::Arc<dyn ReceiptSigner>>,
}

/// One callback to send: its body and headers; `None` when the entry
/// tells the receiver nothing new (an OpenDSR status that did not change).
type Composed = Option<(Vec<u8>, Vec<(String, String)>)>;

/// Objects a finished regulation could not rewrite (its receipt says).
fn object_failures(request: &DeletionRequest) -> u64 {
    request.receipt.as_ref().map_or(0, |r| {
        r.prefixes
            .iter()
            .filter_map(|p| p.rewritten.as_ref())
            .map(|c| c.objects_failed)
            .sum()
    })
}

impl<L: Ledger + CallbackLedger, S: CallbackSender, C: Clock> Notifier<L, S, C> {
    pub fn new(ledger: L, sender: S, key: std::sync::Arc<dyn ReceiptSigner>, clock: C) -> Self {
        Notifier {
            ledger,
            sender,
            key,
            clock,
            opendsr: None,
        }
    }

    /// Signs OpenDSR callbacks with `signer` (messages themselves).
    pub fn with_opendsr(mut self, signer: std::sync::Arc<dyn ReceiptSigner>) -> Self {
        self.opendsr = Some(signer);
        self
    }

    /// The callback of history entry `sequence`, in the request's form.
    async fn compose(
        &self,
        request: &DeletionRequest,
        sequence: usize,
        url: &str,
        secret: &mut Option<String>,
    ) -> Result<Composed, ServiceError> {
        use crate::model::opendsr::{entry_status, request_status, status_body};
        let now = self.clock.now();
        if let Some(link) = &request.opendsr {
            let Some(signer) = &self.opendsr else {
                return Err(SignError::Unavailable("an OpenDSR callback, and no OpenDSR key configured".into()).into());
            };
            let failures = object_failures(request);
            let this = entry_status(request, sequence, failures);
            let before = sequence.checked_sub(1).and_then(|p| entry_status(request, p, failures));
            let (Some(this), false) = (this, before.map(request_status) == this.map(request_status)) else {
                return Ok(None);
            };
            let bytes = serde_json::to_vec(&status_body(request, link, this, Some(url))).unwrap_or_default();
            let signature = signer.sign(&bytes).await?;
            let headers = vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("x-opendsr-processor-domain".to_owned(), link.processor_domain.clone()),
                ("x-opendsr-signature".to_owned(), signature.value),
            ];
            return Ok(Some((bytes, headers)));
        }
        let Some(body) = event(request, sequence) else {
            return Ok(None);
        };
        let secret = match secret {
            Some(s) => s.clone(),
            None => {
                let signer = self.signer_of(request).await?;
                secret.insert(self::secret(self.key.as_ref(), &signer).await?).clone()
            }
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (SIGNATURE_HEADER.to_owned(), signature(&secret, now.timestamp(), &bytes)),
            (EVENT_ID_HEADER.to_owned(), format!("{}:{sequence}", request.id)),
        ];
        Ok(Some((bytes, headers)))
    }

    /// Delivers the request's undelivered history entries in order, until
    /// one fails (it is then tried again after its backoff).
    pub async fn deliver(&self, id: &RequestId) -> Result<Delivery, ServiceError> {
        let Some(request) = self.ledger.get(id).await? else {
            return Ok(Delivery::NoCallback);
        };
        let Some(url) = &request.callback else {
            return Ok(Delivery::NoCallback);
        };
        let mut state = self
            .ledger
            .callback_state(id)
            .await?
            .unwrap_or_else(|| CallbackState::new(id.clone()));
        let mut secret: Option<String> = None;
        while event(&request, state.delivered as usize).is_some() {
            let now = self.clock.now();
            if let Some(until) = state.next_attempt_at.filter(|at| *at > now) {
                return Ok(Delivery::Waiting {
                    delivered: state.delivered,
                    until,
                });
            }
            let composed = self
                .compose(&request, state.delivered as usize, url.as_str(), &mut secret)
                .await?;
            let mut next = state.clone();
            next.version += 1;
            let failure = match composed {
                // Nothing new for the receiver: the entry is done unsent.
                None => None,
                Some((bytes, headers)) => {
                    next.last_attempt_at = Some(now);
                    match self.sender.post(url.as_str(), &headers, bytes).await {
                        Ok(code) if (200..300).contains(&code) => None,
                        Ok(code) => Some(format!("the receiver answered HTTP {code}")),
                        Err(e) => Some(e.to_string()),
                    }
                }
            };
            match failure {
                None => {
                    next.delivered += 1;
                    next.attempts = 0;
                    next.next_attempt_at = None;
                    next.last_error = None;
                }
                Some(error) => {
                    next.attempts += 1;
                    tracing::warn!(request_id = %id, sequence = state.delivered, attempts = next.attempts, %error, "callback not delivered");
                    if next.attempts >= MAX_ATTEMPTS {
                        tracing::error!(request_id = %id, sequence = state.delivered, "callback given up");
                        next.delivered += 1;
                        next.given_up += 1;
                        next.attempts = 0;
                        next.next_attempt_at = None;
                    } else {
                        next.next_attempt_at = Some(now + backoff(next.attempts));
                    }
                    next.last_error = Some(error);
                }
            }
            if request.status.is_terminal() && event(&request, next.delivered as usize).is_none() {
                // The last status of a final request: nothing more to send.
                next.expires_at = Some(now + CALLBACK_STATE_KEPT);
            }
            match self.ledger.put_callback_state(&next).await {
                Ok(()) => state = next,
                Err(LedgerError::Conflict) => return Ok(Delivery::Raced),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Delivery::UpToDate {
            delivered: state.delivered,
        })
    }

    /// Whose secret signs a request's events: a child that reports to its
    /// account request's URL signs with the account request's secret (the
    /// only one its requester was given); any other request with its own.
    async fn signer_of(&self, request: &DeletionRequest) -> Result<RequestId, ServiceError> {
        if let Some(parent) = &request.parent {
            if let Some(p) = self.ledger.get(parent).await? {
                if p.callback.is_some() && p.callback == request.callback {
                    return Ok(p.id);
                }
            }
        }
        Ok(request.id.clone())
    }

    /// Delivers the callbacks of several requests, a few at a time; the
    /// requests whose round failed on the ledger or the key are returned
    /// with the error.
    pub async fn deliver_all(&self, ids: &[RequestId]) -> Vec<(RequestId, Result<Delivery, ServiceError>)> {
        stream::iter(ids.iter().cloned())
            .map(|id| async move {
                let result = self.deliver(&id).await;
                (id, result)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await
    }

    /// Tries again every callback whose backoff has run out.
    pub async fn retry_due(&self) -> Result<Vec<(RequestId, Result<Delivery, ServiceError>)>, ServiceError> {
        let due = self.ledger.due_callbacks(self.clock.now(), 500).await?;
        Ok(self.deliver_all(&due).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(raw: &str) -> Result<CallbackUrl, CallbackUrlError> {
        CallbackUrl::parse(raw, UrlPolicy::default())
    }

    #[test]
    fn only_https_to_public_hosts_is_accepted() {
        assert_eq!(
            strict("https://hooks.example.com/deletions?x=1").map(|u| u.to_string()),
            Ok("https://hooks.example.com/deletions?x=1".to_owned())
        );
        for bad in [
            "http://hooks.example.com/",
            "ftp://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            "https://localhost/x",
            "https://api.localhost/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "not a url",
            "",
        ] {
            assert!(strict(bad).is_err(), "{bad} was accepted");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(strict(&long).is_err());
    }

    #[test]
    fn ipv6_forms_that_embed_an_ipv4_address_are_judged_by_it() {
        for bad in [
            // NAT64 (64:ff9b::/96) of loopback, private, link-local.
            "https://[64:ff9b::7f00:1]/x",
            "https://[64:ff9b::a00:1]/x",
            "https://[64:ff9b::a9fe:a9fe]/x",
            // Local-use NAT64 (64:ff9b:1::/48): never public.
            "https://[64:ff9b:1::808:808]/x",
            // 6to4 (2002::/16) of loopback, private, link-local.
            "https://[2002:7f00:1::1]/x",
            "https://[2002:c0a8:101::1]/x",
            "https://[2002:a9fe:a9fe::]/x",
            // IPv4-compatible (::a.b.c.d) and IPv4-mapped.
            "https://[::127.0.0.1]/x",
            "https://[::10.0.0.1]/x",
            "https://[::169.254.169.254]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://[::ffff:169.254.169.254]/x",
        ] {
            assert!(strict(bad).is_err(), "{bad} was accepted");
        }
        for good in [
            "https://[64:ff9b::808:808]/x",
            "https://[2002:808:808::1]/x",
            "https://[::ffff:8.8.8.8]/x",
            "https://[2606:4700::1111]/x",
        ] {
            assert!(strict(good).is_ok(), "{good} was refused");
        }
    }

    #[test]
    fn local_policy_accepts_loopback_http() {
        let local = UrlPolicy { allow_private: true };
        assert!(CallbackUrl::parse("http://127.0.0.1:9000/hook", local).is_ok());
        assert!(CallbackUrl::parse("ftp://127.0.0.1/hook", local).is_err());
    }

    #[test]
    fn signatures_verify_and_any_change_breaks_them() {
        let body = br#"{"status":"COMPLETED"}"#;
        let header = signature("dcs_secret", 1_700_000_000, body);
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify_signature("dcs_secret", &header, body));
        assert!(!verify_signature("dcs_other", &header, body));
        assert!(!verify_signature("dcs_secret", &header, br#"{"status":"REVOKED"}"#));
        let shifted = header.replace("t=1700000000", "t=1700000001");
        assert!(!verify_signature("dcs_secret", &shifted, body));
        assert!(!verify_signature("dcs_secret", "garbage", body));
        let plus = header.replace("t=1700000000", "t=+1700000000");
        assert!(!verify_signature("dcs_secret", &plus, body));
        assert!(!verify_signature(
            "dcs_secret",
            &header.to_uppercase().replace("T=", "t=").replace(",V1=", ",v1="),
            body
        ));
        assert!(!verify_signature("dcs_secret", &format!("{header},v0=00"), body));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let waits: Vec<i64> = (1..=9).map(|n| backoff(n).num_seconds()).collect();
        assert_eq!(waits, vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(u32::MAX).num_seconds(), 3600);
    }
}
