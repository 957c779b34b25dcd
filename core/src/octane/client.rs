//! The phone's client for octane's app API: HTTPS through an [`HttpTransport`] (the
//! platform's HTTP stack on phones, reqwest elsewhere) with a timeout on every call,
//! bounded retries with backoff for idempotent calls only, every request signed with the
//! appliance-endorsed app key, and octane's own signature checked against the pinned key on
//! what the user is shown (session details; sign requests are checked by `core::sign`).

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use serde::{de::DeserializeOwned, Serialize};
use url::Url;
use uuid::Uuid;

use crate::bytes::Key32;
use crate::clock::Clock;
use crate::code::ValidationCode;
use crate::envelope::{Domain, SignedEnvelope};
use crate::model::{PairSessionDetails, STATEMENT_VERSION};
use crate::octane::api::{
    self, paths, AppForgetPhoneRequest, AppForgetPhoneResponse, AppPairsResponse, AppRevokeRequest, AppSessionResponse,
    ApproveRequest, ApproveResponse, CheckCodeRequest, CheckCodeResponse, ErrorBody, OctaneErrorCode,
    PendingSignRequest, PendingSignRequests, PostSignatureRequest, PushTargetRemoved, PushTargetRequest,
    PushTargetResponse, RejectSessionRequest, RejectSessionResponse, RejectSignRequest, RevokeResponse, SessionStatus,
    SignResultAck,
};
use crate::octane::app_auth;
use crate::octane::transport::{HttpMethod, HttpRequest, HttpTransport, TransportError, MAX_RESPONSE_LEN};
use crate::receipt::DisplayProof;

/// Why a call to octane failed, in terms a UI can show.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OctaneError {
    /// Octane could not be reached (no network, connection refused, DNS, TLS).
    #[error(transparent)]
    Offline(TransportError),
    /// Octane did not answer within the allotted time.
    #[error("octane did not answer in time")]
    Timeout,
    /// Octane failed (5xx) and retries, where allowed, did not help.
    #[error("octane failed (HTTP {status})")]
    ServerError {
        /// The HTTP status.
        status: u16,
    },
    /// The pair session expired.
    #[error("the pair session expired")]
    SessionExpired,
    /// The pair session was already approved, rejected or used.
    #[error("the pair session was already used")]
    SessionUsed,
    /// The validation code is wrong.
    #[error("wrong code ({attempts_left} attempts left)")]
    CodeRejected {
        /// Wrong attempts octane still allows.
        attempts_left: u32,
    },
    /// Too many wrong codes: the session is burnt.
    #[error("too many wrong codes; ask the service for a new pairing")]
    SessionLocked,
    /// Octane refused to let this app act on that session or pair.
    #[error("octane refused: {0}")]
    Forbidden(String),
    /// Octane did not accept this app's credentials (endorsement, clock).
    #[error("octane did not accept this phone's credentials: {0}")]
    Unauthenticated(String),
    /// The pair is revoked.
    #[error("the pair is revoked")]
    Revoked,
    /// The appliance forgot this phone: octane no longer routes its requests to it.
    #[error("this appliance no longer knows this phone; bond again")]
    PhoneForgotten,
    /// No such session, pair or request.
    #[error("not found on octane")]
    NotFound,
    /// Something octane sent is not signed by the pinned octane key (possible impostor).
    #[error("octane's signature on {0} does not verify (possible impostor)")]
    BadSignature(String),
    /// Octane refused the request for another stated reason.
    #[error("octane refused: {code}: {message}")]
    Refused {
        /// The stable error code.
        code: OctaneErrorCode,
        /// Octane's message.
        message: String,
    },
    /// Octane answered something this client does not understand.
    #[error("unexpected answer from octane: {0}")]
    Protocol(String),
    /// The client was configured wrongly (bad URL, non-HTTPS remote).
    #[error("octane client configuration: {0}")]
    Config(String),
}

impl OctaneError {
    /// A stable snake_case code for UIs and the CLI.
    pub fn code(&self) -> &'static str {
        match self {
            OctaneError::Offline(_) => "octane_offline",
            OctaneError::Timeout => "octane_timeout",
            OctaneError::ServerError { .. } => "octane_server_error",
            OctaneError::SessionExpired => "session_expired",
            OctaneError::SessionUsed => "session_used",
            OctaneError::CodeRejected { .. } => "code_rejected",
            OctaneError::SessionLocked => "session_locked",
            OctaneError::Forbidden(_) => "forbidden",
            OctaneError::Unauthenticated(_) => "unauthenticated",
            OctaneError::Revoked => "pair_revoked",
            OctaneError::PhoneForgotten => "phone_forgotten",
            OctaneError::NotFound => "not_found",
            OctaneError::BadSignature(_) => "octane_bad_signature",
            OctaneError::Refused { .. } => "octane_refused",
            OctaneError::Protocol(_) => "octane_protocol",
            OctaneError::Config(_) => "octane_config",
        }
    }

    /// Whether retrying the same idempotent call may help.
    fn retryable(&self) -> bool {
        matches!(self, OctaneError::Offline(_) | OctaneError::Timeout | OctaneError::ServerError { .. })
    }
}

/// Where octane is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct OctaneConfig {
    /// Base URL without a path (`https://octane.example`); plain HTTP only on loopback.
    pub base_url: Url,
    /// Octane's Ed25519 public key, pinned: session details must be signed by it.
    pub octane_key: Key32,
    /// Longest wait to establish a connection.
    pub connect_timeout: Duration,
    /// Longest wait for a whole request/response (long-polls add their wait to this).
    pub request_timeout: Duration,
    /// Attempts in total for idempotent calls (1 = no retry).
    pub max_attempts: u32,
    /// First backoff between attempts; doubled each time.
    pub backoff: Duration,
}

impl OctaneConfig {
    /// A configuration with the default timeouts (connect 5 s, request 15 s, 3 attempts).
    pub fn new(base_url: Url, octane_key: Key32) -> Self {
        Self {
            base_url,
            octane_key,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            max_attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

/// The phone's app-request credentials: its app key and the appliance's endorsement of it.
#[derive(Clone)]
pub struct AppCredentials {
    /// The endorsed Ed25519 app key (zeroized on drop).
    pub app_key: SigningKey,
    /// The appliance's `AppEndorsement` of it.
    pub endorsement: SignedEnvelope,
}

impl std::fmt::Debug for AppCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppCredentials").finish_non_exhaustive()
    }
}

/// A pair session as loaded and verified from octane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSession {
    /// Octane's signed details (kept as received: the appliance re-verifies them).
    pub envelope: SignedEnvelope,
    /// The verified details.
    pub details: PairSessionDetails,
    /// Octane's current (unsigned) status of the session.
    pub status: SessionStatus,
    /// Wrong code attempts still allowed.
    pub attempts_left: u32,
}

/// Whether a call may be repeated safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Idempotency {
    Idempotent,
    Once,
}

/// The octane app-API client.
#[derive(Clone)]
pub struct OctaneClient {
    http: Arc<dyn HttpTransport>,
    cfg: OctaneConfig,
    creds: Arc<AppCredentials>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OctaneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OctaneClient").field("base_url", &self.cfg.base_url.as_str()).finish()
    }
}

pub(super) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(super) fn transport_error(e: TransportError) -> OctaneError {
    match e {
        offline @ TransportError::Offline(_) => OctaneError::Offline(offline),
        TransportError::Timeout => OctaneError::Timeout,
        TransportError::Protocol(reason) => OctaneError::Protocol(reason),
    }
}

/// Refuses a non-HTTPS octane URL unless it points to this machine (loopback), and a URL
/// with a path prefix.
pub(super) fn check_base_url(url: &Url) -> Result<(), OctaneError> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        other => return Err(OctaneError::Config(format!("octane must be reached over HTTPS (got {other}://)"))),
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(OctaneError::Config("the octane URL must not have a path".into()));
    }
    Ok(())
}

/// Grace added to a request's own timeout before the client stops waiting for a transport
/// that does not honour it.
pub(super) const TRANSPORT_GRACE: Duration = Duration::from_secs(2);

pub(super) fn map_status(status: u16, body: &[u8]) -> OctaneError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    if (500..600).contains(&status) {
        return OctaneError::ServerError { status };
    }
    let Some(ErrorBody { error }) = parsed else {
        return OctaneError::Protocol(format!("HTTP {status} without an error body"));
    };
    match error.code {
        OctaneErrorCode::SessionExpired => OctaneError::SessionExpired,
        OctaneErrorCode::SessionUsed => OctaneError::SessionUsed,
        OctaneErrorCode::CodeRejected => OctaneError::CodeRejected { attempts_left: error.attempts_left.unwrap_or(0) },
        OctaneErrorCode::SessionLocked => OctaneError::SessionLocked,
        OctaneErrorCode::Forbidden | OctaneErrorCode::AccountNotBound => OctaneError::Forbidden(error.message),
        OctaneErrorCode::Unauthenticated | OctaneErrorCode::StaleRequest => OctaneError::Unauthenticated(error.message),
        OctaneErrorCode::PairRevoked => OctaneError::Revoked,
        OctaneErrorCode::PhoneForgotten => OctaneError::PhoneForgotten,
        OctaneErrorCode::NotFound => OctaneError::NotFound,
        OctaneErrorCode::Internal => OctaneError::ServerError { status },
        code => OctaneError::Refused { code, message: error.message },
    }
}

impl OctaneClient {
    /// A client for `cfg`, authenticating with `creds`, sending through `http`. Refuses a
    /// non-HTTPS URL unless it points to this machine (loopback), and a URL with a path
    /// prefix.
    pub fn new(
        cfg: OctaneConfig,
        creds: AppCredentials,
        clock: Arc<dyn Clock>,
        http: Arc<dyn HttpTransport>,
    ) -> Result<Self, OctaneError> {
        check_base_url(&cfg.base_url)?;
        Ok(Self { http, cfg, creds: Arc::new(creds), clock })
    }

    /// The reqwest transport suited to `cfg` (its connect timeout; HTTPS only unless the
    /// URL is loopback). Desktop tools and tests; phones pass their platform's transport.
    #[cfg(feature = "reqwest")]
    pub fn reqwest_transport(cfg: &OctaneConfig) -> Result<Arc<dyn HttpTransport>, OctaneError> {
        let t = crate::octane::transport::ReqwestTransport::new(cfg.connect_timeout, !is_loopback(&cfg.base_url))
            .map_err(|e| OctaneError::Config(e.to_string()))?;
        Ok(Arc::new(t))
    }

    /// The configuration in use.
    pub fn config(&self) -> &OctaneConfig {
        &self.cfg
    }

    fn url(&self, path_and_query: &str) -> Result<Url, OctaneError> {
        self.cfg.base_url.join(path_and_query).map_err(|e| OctaneError::Config(e.to_string()))
    }

    /// [`Self::call`] for a POST of `body` (JSON) with no extra wait.
    async fn post<B: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        idem: Idempotency,
    ) -> Result<R, OctaneError> {
        self.call(HttpMethod::Post, path, Some(body), idem, Duration::ZERO).await
    }

    /// One signed request, with retries for idempotent calls, `body` serialised to JSON and
    /// the answer parsed as `R`. Only the (de)serialisation is generic: the request itself
    /// is [`Self::call_bytes`], one copy of the retry loop for every answer type (size
    /// budget of the mobile library, docs/building.md).
    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: HttpMethod,
        path_and_query: &str,
        body: Option<&B>,
        idem: Idempotency,
        extra_wait: Duration,
    ) -> Result<R, OctaneError> {
        let body_bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| OctaneError::Protocol(e.to_string()))?,
            None => Vec::new(),
        };
        let bytes = self.call_bytes(method, path_and_query, body_bytes, idem, extra_wait).await?;
        serde_json::from_slice(&bytes).map_err(|e| OctaneError::Protocol(format!("bad answer body: {e}")))
    }

    /// The request behind [`Self::call`]: each attempt is signed anew (fresh timestamp and
    /// nonce: octane refuses a nonce it has seen); idempotent calls are retried with
    /// back-off on retryable failures. Answers the 2xx body.
    async fn call_bytes(
        &self,
        method: HttpMethod,
        path_and_query: &str,
        body_bytes: Vec<u8>,
        idem: Idempotency,
        extra_wait: Duration,
    ) -> Result<Vec<u8>, OctaneError> {
        let url = self.url(path_and_query)?;
        let target = app_auth::path_and_query(&url);
        let attempts = match idem {
            Idempotency::Idempotent => self.cfg.max_attempts.max(1),
            Idempotency::Once => 1,
        };
        let mut backoff = self.cfg.backoff;
        let mut attempt = 1;
        loop {
            match self.attempt(method, &url, &target, &body_bytes, extra_wait).await {
                Err(e) if e.retryable() && attempt < attempts => {
                    tracing::info!(path = %url.path(), attempt, error = %e, "octane: retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = backoff.saturating_mul(2);
                    attempt += 1;
                }
                Err(e) => {
                    tracing::warn!(path = %url.path(), error = %e, "octane: call failed");
                    return Err(e);
                }
                Ok(bytes) => return Ok(bytes),
            }
        }
    }

    async fn attempt(
        &self,
        method: HttpMethod,
        url: &Url,
        target: &str,
        body: &[u8],
        extra_wait: Duration,
    ) -> Result<Vec<u8>, OctaneError> {
        let headers = app_auth::sign_app_request(
            &self.creds.app_key,
            &self.creds.endorsement,
            method.as_str(),
            target,
            body,
            self.clock.now_unix(),
        )
        .map_err(|e| OctaneError::Config(e.to_string()))?;
        let mut headers: Vec<(String, String)> =
            headers.pairs().into_iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
        if method == HttpMethod::Post {
            headers.push(("content-type".into(), "application/json".into()));
        }
        let timeout = self.cfg.request_timeout.saturating_add(extra_wait);
        let request = HttpRequest {
            method,
            url: url.clone(),
            headers,
            body: if method == HttpMethod::Post { body.to_vec() } else { Vec::new() },
            timeout,
        };
        let resp = tokio::time::timeout(timeout.saturating_add(TRANSPORT_GRACE), self.http.send(request))
            .await
            .map_err(|_| OctaneError::Timeout)?
            .map_err(transport_error)?;
        if resp.body.len() > MAX_RESPONSE_LEN {
            return Err(OctaneError::Protocol("answer too large".into()));
        }
        if (200..300).contains(&resp.status) {
            Ok(resp.body)
        } else {
            Err(map_status(resp.status, &resp.body))
        }
    }

    /// Loads a pair session and checks octane's signature over its details with the pinned
    /// key, that they describe this session, and that the statement version is known.
    #[tracing::instrument(skip(self), fields(session = %session_id))]
    pub async fn session(&self, session_id: &str) -> Result<LoadedSession, OctaneError> {
        let resp: AppSessionResponse = self
            .call::<(), _>(
                HttpMethod::Get,
                &paths::app_pair_session(session_id),
                None,
                Idempotency::Idempotent,
                Duration::ZERO,
            )
            .await?;
        let details: PairSessionDetails = resp
            .details
            .open(Domain::OctaneSession, self.cfg.octane_key.as_bytes())
            .map_err(|_| OctaneError::BadSignature("the pair session".into()))?;
        if details.v != STATEMENT_VERSION {
            return Err(OctaneError::Protocol(format!("session version {}", details.v)));
        }
        if details.session_id != session_id {
            return Err(OctaneError::BadSignature("the pair session (another session)".into()));
        }
        tracing::info!(status = ?resp.status, "octane: session loaded and verified");
        Ok(LoadedSession { envelope: resp.details, details, status: resp.status, attempts_left: resp.attempts_left })
    }

    /// Submits the validation code. Never retried: every attempt counts against the limit.
    #[tracing::instrument(skip(self, code), fields(session = %session_id))]
    pub async fn check_code(&self, session_id: &str, code: &ValidationCode) -> Result<CheckCodeResponse, OctaneError> {
        let body = CheckCodeRequest { code: code.as_str().to_string() };
        self.post(&paths::app_pair_session_code(session_id), &body, Idempotency::Once).await
    }

    /// Posts the appliance's attestation (idempotent: the same attestation gets the same
    /// answer, so it is retried).
    #[tracing::instrument(skip(self, attestation), fields(session = %session_id))]
    pub async fn approve(
        &self,
        session_id: &str,
        attestation: &SignedEnvelope,
    ) -> Result<ApproveResponse, OctaneError> {
        let body = ApproveRequest { attestation: attestation.clone() };
        self.post(&paths::app_pair_session_approve(session_id), &body, Idempotency::Idempotent).await
    }

    /// Rejects a pair session on the user's behalf.
    #[tracing::instrument(skip(self, reason), fields(session = %session_id))]
    pub async fn reject_session(
        &self,
        session_id: &str,
        reason: Option<String>,
    ) -> Result<RejectSessionResponse, OctaneError> {
        let body = RejectSessionRequest { reason };
        self.post(&paths::app_pair_session_reject(session_id), &body, Idempotency::Idempotent).await
    }

    /// The appliance's pairs as octane knows them (for sync).
    #[tracing::instrument(skip(self))]
    pub async fn pairs(&self) -> Result<AppPairsResponse, OctaneError> {
        self.call::<(), _>(HttpMethod::Get, paths::APP_PAIRS, None, Idempotency::Idempotent, Duration::ZERO).await
    }

    /// Posts the appliance's signed revocation of a pair (idempotent).
    #[tracing::instrument(skip(self, revocation), fields(pair = %pair_id))]
    pub async fn revoke(&self, pair_id: Uuid, revocation: &SignedEnvelope) -> Result<RevokeResponse, OctaneError> {
        let body = AppRevokeRequest { revocation: revocation.clone() };
        self.post(&paths::app_pair_revoke(&pair_id), &body, Idempotency::Idempotent).await
    }

    /// Relays the appliance's signed statement that it forgot a phone: octane then refuses
    /// that phone's requests about this appliance (until a later bond endorses it).
    /// Idempotent.
    #[tracing::instrument(skip_all)]
    pub async fn forget_phone(&self, statement: &SignedEnvelope) -> Result<AppForgetPhoneResponse, OctaneError> {
        let body = AppForgetPhoneRequest { statement: statement.clone() };
        self.post(paths::APP_PHONES_FORGET, &body, Idempotency::Idempotent).await
    }

    /// Registers this phone's push target with octane, replacing the one it had (token
    /// rotation): octane then pushes each sign request for this appliance, sealed to
    /// `target.push_key`, through the platform's push service. Idempotent. A token octane
    /// refuses (not of the platform's form) answers [`OctaneError::Refused`] `bad_request`.
    #[tracing::instrument(skip_all, fields(platform = target.platform.as_str()))]
    pub async fn register_push_target(&self, target: &PushTargetRequest) -> Result<PushTargetResponse, OctaneError> {
        self.post(paths::APP_PUSH_TARGET, target, Idempotency::Idempotent).await
    }

    /// This phone's push target as octane holds it (none: never registered, removed, or
    /// dropped after the push service called the token unregistered).
    #[tracing::instrument(skip(self))]
    pub async fn push_target(&self) -> Result<PushTargetResponse, OctaneError> {
        self.call::<(), _>(HttpMethod::Get, paths::APP_PUSH_TARGET, None, Idempotency::Idempotent, Duration::ZERO).await
    }

    /// Removes this phone's push target: octane stops pushing (polling still works).
    /// Idempotent.
    #[tracing::instrument(skip(self))]
    pub async fn remove_push_target(&self) -> Result<PushTargetRemoved, OctaneError> {
        self.post(paths::APP_PUSH_TARGET_REMOVE, &serde_json::json!({}), Idempotency::Idempotent).await
    }

    /// Long-polls pending sign requests, waiting up to `wait` (clamped to octane's maximum)
    /// for one to arrive. The requests are NOT verified here: `core::sign` does it.
    #[tracing::instrument(skip(self))]
    pub async fn pending_sign_requests(&self, wait: Duration) -> Result<Vec<PendingSignRequest>, OctaneError> {
        let secs = wait.as_secs().min(api::MAX_LONG_POLL_SECS);
        let path = format!("{}?timeout_secs={secs}", paths::APP_SIGN_PENDING);
        let resp: PendingSignRequests = self
            .call::<(), _>(HttpMethod::Get, &path, None, Idempotency::Idempotent, Duration::from_secs(secs))
            .await?;
        Ok(resp.requests)
    }

    /// Posts the appliance's signature for a request, with the display digest and the
    /// appliance's receipt over it when there are (idempotent for the same signature).
    #[tracing::instrument(skip(self, signature, proof), fields(request = %request_id))]
    pub async fn post_signature(
        &self,
        request_id: Uuid,
        signature: &[u8],
        proof: Option<&DisplayProof>,
    ) -> Result<SignResultAck, OctaneError> {
        let body = signature_body(signature, proof);
        self.post(&paths::app_sign_result(&request_id), &body, Idempotency::Idempotent).await
    }

    /// [`Self::post_signature`] for a caller that needs only to know octane took it (the
    /// sign engine): the answer is checked to name the request, and the signature bundle
    /// it echoes is not decoded.
    #[tracing::instrument(skip(self, signature, proof), fields(request = %request_id))]
    pub async fn deliver_signature(
        &self,
        request_id: Uuid,
        signature: &[u8],
        proof: Option<&DisplayProof>,
    ) -> Result<(), OctaneError> {
        /// The part of a [`SignResultAck`] the phone reads.
        #[derive(serde::Deserialize)]
        struct Acked {
            request_id: Uuid,
        }
        let body = signature_body(signature, proof);
        let ack: Acked = self.post(&paths::app_sign_result(&request_id), &body, Idempotency::Idempotent).await?;
        if ack.request_id != request_id {
            return Err(OctaneError::Protocol("octane acknowledged another request".into()));
        }
        Ok(())
    }

    /// Rejects a sign request with a stable reason code (idempotent).
    #[tracing::instrument(skip(self, message), fields(request = %request_id))]
    pub async fn reject_sign(
        &self,
        request_id: Uuid,
        reason_code: &str,
        message: &str,
    ) -> Result<SignResultAck, OctaneError> {
        let body =
            RejectSignRequest { reason_code: reason_code.to_string(), message: message.chars().take(512).collect() };
        self.post(&paths::app_sign_reject(&request_id), &body, Idempotency::Idempotent).await
    }
}

/// The body of `POST /app/sign/{id}/result`.
fn signature_body(signature: &[u8], proof: Option<&DisplayProof>) -> PostSignatureRequest {
    PostSignatureRequest {
        signature: signature.to_vec(),
        display_digest: proof.map(|p| p.display_digest),
        receipt: proof.map(|p| p.receipt.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    use crate::octane::transport::HttpResponse;

    /// A transport that answers from a script.
    #[derive(Debug)]
    enum Script {
        /// Never answers (ignores the request's timeout).
        Hang,
        /// Answers 200 with this many bytes.
        Body(usize),
        /// Fails the way a transport does.
        Fail(TransportError),
    }
    #[derive(Debug)]
    struct Scripted(Script);

    #[async_trait::async_trait]
    impl HttpTransport for Scripted {
        async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
            match &self.0 {
                Script::Hang => std::future::pending().await,
                Script::Body(n) => Ok(HttpResponse { status: 200, body: vec![b' '; *n] }),
                Script::Fail(e) => Err(e.clone()),
            }
        }
    }

    fn client(script: Script) -> OctaneClient {
        let mut cfg = OctaneConfig::new(Url::parse("http://127.0.0.1:1").unwrap(), Key32([0; 32]));
        cfg.request_timeout = Duration::from_millis(50);
        cfg.max_attempts = 1;
        OctaneClient::new(cfg, creds(), Arc::new(SystemClock), Arc::new(Scripted(script))).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_that_ignores_its_timeout_still_ends_in_timeout() {
        assert_eq!(client(Script::Hang).pairs().await.unwrap_err(), OctaneError::Timeout);
    }

    #[tokio::test]
    async fn transport_failures_and_oversized_answers_map_to_ui_variants() {
        let too_big = client(Script::Body(MAX_RESPONSE_LEN + 1)).pairs().await.unwrap_err();
        assert!(matches!(too_big, OctaneError::Protocol(m) if m.contains("too large")));
        let offline = client(Script::Fail(TransportError::Offline("no route".into()))).pairs().await;
        assert_eq!(offline.unwrap_err(), OctaneError::Offline(TransportError::Offline("no route".into())));
        let slow = client(Script::Fail(TransportError::Timeout)).pairs().await;
        assert_eq!(slow.unwrap_err(), OctaneError::Timeout);
    }

    fn creds() -> AppCredentials {
        AppCredentials {
            app_key: SigningKey::from_bytes(&[1; 32]),
            endorsement: SignedEnvelope { body: vec![], sig: vec![] },
        }
    }

    #[test]
    fn plain_http_only_on_loopback_and_no_path() {
        let k = Key32([0; 32]);
        let ok = |u: &str| {
            OctaneClient::new(
                OctaneConfig::new(Url::parse(u).unwrap(), k),
                creds(),
                Arc::new(SystemClock),
                Arc::new(Scripted(Script::Hang)),
            )
        };
        assert!(ok("http://127.0.0.1:8080").is_ok());
        assert!(ok("http://localhost:8080").is_ok());
        assert!(ok("https://octane.example").is_ok());
        assert!(matches!(ok("http://octane.example"), Err(OctaneError::Config(_))));
        assert!(matches!(ok("https://octane.example/api"), Err(OctaneError::Config(_))));
    }

    #[test]
    fn error_bodies_map_to_ui_variants() {
        let b = |code: OctaneErrorCode, left: Option<u32>| {
            serde_json::to_vec(&ErrorBody {
                error: api::ErrorDetail { code, message: "m".into(), attempts_left: left },
            })
            .unwrap()
        };
        assert_eq!(
            map_status(400, &b(OctaneErrorCode::CodeRejected, Some(3))),
            OctaneError::CodeRejected { attempts_left: 3 }
        );
        assert_eq!(map_status(423, &b(OctaneErrorCode::SessionLocked, Some(0))), OctaneError::SessionLocked);
        assert_eq!(map_status(410, &b(OctaneErrorCode::SessionExpired, None)), OctaneError::SessionExpired);
        assert_eq!(map_status(403, &b(OctaneErrorCode::PairRevoked, None)), OctaneError::Revoked);
        assert_eq!(map_status(409, &b(OctaneErrorCode::SessionUsed, None)), OctaneError::SessionUsed);
        assert_eq!(map_status(500, b"oops"), OctaneError::ServerError { status: 500 });
        assert!(matches!(map_status(400, b"<html>"), OctaneError::Protocol(_)));
        assert!(matches!(
            map_status(409, &b(OctaneErrorCode::DuplicateRequest, None)),
            OctaneError::Refused { code: OctaneErrorCode::DuplicateRequest, .. }
        ));
    }
}
