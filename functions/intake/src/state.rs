//! The intake's state: the request service, the planner, the receipt
//! signer and the callback settings, with what the handlers ask of them
//! (the clock, authorisation, a create's reason and callback URL, the
//! callback secret shown only to a request's creator), and the JSON
//! answers the handlers give. Below the router, the guards and the routes:
//! it imports none of them.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use deletion_core::access::{Caller, Need};
use deletion_core::authorization;
use deletion_core::callbacks::{self, CallbackUrl, UrlPolicy};
use deletion_core::model::quota::Limits;
use deletion_core::plan::Planner;
use deletion_core::ports::{
    CallbackLedger, Clock, Directory, Holds, Ledger, ObjectStore, QuotaLedger, Regulations, RetentionLedger,
};
use deletion_core::quotas::{self, Admitted};
use deletion_core::requests::{Created, Requests};
use deletion_core::signing::ReceiptSigner;
use deletion_core::subject_key::{SubjectKey, SubjectKeys};

use crate::input::check_reason;
use crate::problem::Problem;
use crate::views::{CallbackSecret, CallbackStatus};

/// What the intake's ledger must be.
pub trait Backend:
    Ledger + Directory + Regulations + Holds + CallbackLedger + RetentionLedger + QuotaLedger + 'static
{
}
impl<T: Ledger + Directory + Regulations + Holds + CallbackLedger + RetentionLedger + QuotaLedger + 'static> Backend
    for T
{
}
/// What the intake's object store must be.
pub trait Store: ObjectStore + 'static {}
impl<T: ObjectStore + 'static> Store for T {}
/// What the intake's clock must be.
pub trait Tick: Clock + 'static {}
impl<T: Clock + 'static> Tick for T {}

/// The router's state.
pub type App<L, S, C> = Arc<Intake<L, S, C>>;

/// The intake: the API over the request service.
pub struct Intake<L, S, C> {
    pub(crate) requests: Requests<L, C>,
    pub(crate) planner: Planner<S>,
    pub(crate) signer: Option<Arc<dyn ReceiptSigner>>,
    callbacks: Option<CallbackConfig>,
    /// The key of the subjects' digests (what the ledger keeps of a
    /// regulation's subjects once it is done, and finds them by).
    subjects: SubjectKeys,
    /// The quotas a workspace is held to unless an operator set its own.
    pub(crate) limits: Limits,
    /// The OpenDSR endpoints' key and domain (none: they answer 503).
    pub(crate) opendsr: Option<OpenDsrConfig>,
}

/// What the OpenDSR endpoints sign with and say they are.
pub struct OpenDsrConfig {
    /// Signs response bodies themselves (`X-OpenDSR-Signature`).
    pub signer: Arc<dyn ReceiptSigner>,
    /// The processor domain (`X-OpenDSR-Processor-Domain`, and the key of
    /// this service's part of `extensions`); none: the host the request
    /// was sent to.
    pub domain: Option<String>,
    /// Where the certificate of the signing key is published
    /// (`processor_certificate`); none: the key set at
    /// `https://<domain>/.well-known/opendsr-jwks.json`.
    pub certificate_url: Option<String>,
}

/// What status callbacks need at intake: which URLs are accepted, and the
/// key each request's secret is derived from.
pub struct CallbackConfig {
    pub policy: UrlPolicy,
    pub key: Arc<dyn ReceiptSigner>,
}

/// What a create body asks besides its scope, checked.
pub struct Ask {
    pub reason: Option<String>,
    pub callback: Option<CallbackUrl>,
}

impl<L: Backend, S: Store, C: Tick> Intake<L, S, C> {
    /// `subject_key`: the key the subjects' digests are derived from.
    pub fn new(requests: Requests<L, C>, planner: Planner<S>, subject_key: Arc<dyn ReceiptSigner>) -> Self {
        Intake {
            requests,
            planner,
            signer: None,
            callbacks: None,
            subjects: SubjectKeys::new(subject_key),
            limits: Limits::default(),
            opendsr: None,
        }
    }

    /// Serves the OpenDSR endpoints (`/opendsr/...`).
    pub fn with_opendsr(mut self, opendsr: OpenDsrConfig) -> Self {
        self.opendsr = Some(opendsr);
        self
    }

    /// Holds workspaces to `limits` unless an operator set their own.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// `response` with the minute's limit, what is left of it and when it
    /// renews (`RateLimit-*`, in seconds).
    pub(crate) fn rated(&self, mut response: Response, admitted: &Admitted) -> Response {
        let reset = quotas::seconds_until(self.now(), admitted.reset_at);
        let headers = response.headers_mut();
        for (name, value) in [
            ("ratelimit-limit", admitted.limit.to_string()),
            ("ratelimit-remaining", admitted.remaining.to_string()),
            ("ratelimit-reset", reset.to_string()),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }

    /// Counts one call of the regulations API for `workspace`, or refuses
    /// it (`429`).
    pub(crate) async fn admit(&self, workspace: &deletion_core::ids::WorkspaceId) -> Result<Admitted, Problem> {
        Ok(quotas::admit(self.requests.ledger(), self.limits, workspace, self.now()).await?)
    }

    /// The key of the subjects' digests (derived on first use).
    pub(crate) async fn subject_key(&self) -> Result<&SubjectKey, Problem> {
        Ok(self.subjects.key().await?)
    }

    /// Accepts `callback_url` in create bodies (else it is refused).
    pub fn with_callbacks(mut self, callbacks: CallbackConfig) -> Self {
        self.callbacks = Some(callbacks);
        self
    }

    /// Checks receipts' signatures with `signer` (`POST /v1/receipts:verify`).
    pub fn with_signer(mut self, signer: Arc<dyn ReceiptSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.requests.clock().now()
    }

    pub(crate) async fn authorize(&self, caller: &Caller, need: &Need) -> Result<(), Problem> {
        Ok(authorization::authorize(self.requests.ledger(), caller, need).await?)
    }

    /// Checks a create body's reason and callback URL.
    pub(crate) fn ask(&self, reason: Option<String>, callback_url: Option<String>) -> Result<Ask, Problem> {
        let reason = check_reason(reason)?;
        let callback = match (callback_url, &self.callbacks) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(Problem::bad_request(
                    "callback_url is not available: this deployment has no callback key",
                ))
            }
            (Some(raw), Some(config)) => {
                Some(CallbackUrl::parse(&raw, config.policy).map_err(|e| Problem::bad_request(e.to_string()))?)
            }
        };
        Ok(Ask { reason, callback })
    }

    /// The callback URL and secret to show the requester of `request`:
    /// only to the call that created it, or a replay with the creator's own
    /// idempotency key. Anyone else who asks for the same scope is given
    /// the request without them (the secret signs the creator's events).
    pub(crate) async fn callback_answer(&self, created: &Created) -> Result<Option<CallbackSecret>, Problem> {
        if !(created.created || created.replayed) {
            return Ok(None);
        }
        let request = &created.request;
        let (Some(url), Some(config)) = (&request.callback, &self.callbacks) else {
            return Ok(None);
        };
        let secret = callbacks::secret(config.key.as_ref(), &request.id).await?;
        Ok(Some(CallbackSecret {
            url: url.clone(),
            secret,
            signature_header: callbacks::SIGNATURE_HEADER,
            event_id_header: callbacks::EVENT_ID_HEADER,
        }))
    }

    /// Where a request's callbacks stand, for its status view.
    pub(crate) async fn callback_status(
        &self,
        request: &deletion_core::model::DeletionRequest,
    ) -> Result<Option<CallbackStatus>, Problem> {
        let state = deletion_core::inspect::callbacks(self.requests.ledger(), request).await?;
        Ok(state.map(|state| CallbackStatus::of(request, state.as_ref())))
    }
}

/// A JSON answer.
pub(crate) fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A JSON answer with a `Location`.
pub(crate) fn located<T: serde::Serialize>(status: StatusCode, location: String, body: &T) -> Response {
    let mut response = json(status, body);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
