//! The phone's client for octane's app API: HTTPS (rustls) with a timeout on every call,
//! bounded retries with backoff for idempotent calls only, every request signed with the
//! appliance-endorsed app key, and octane's own signature checked against the pinned key on
//! what the user is shown (session details; sign requests are checked by `core::sign`).

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use reqwest::{Method, StatusCode};
use serde::{de::DeserializeOwned, Serialize};
use url::Url;
use uuid::Uuid;

use crate::bytes::Key32;
use crate::clock::Clock;
use crate::code::ValidationCode;
use crate::envelope::{Domain, SignedEnvelope};
use crate::model::{PairSessionDetails, STATEMENT_VERSION};
use crate::octane::api::{
    self, paths, AppPairsResponse, AppRevokeRequest, AppSessionResponse, ApproveRequest,
    ApproveResponse, CheckCodeRequest, CheckCodeResponse, ErrorBody, ErrorCode,
    PendingSignRequest, PendingSignRequests, PostSignatureRequest, RejectSessionRequest,
    RejectSessionResponse, RejectSignRequest, RevokeResponse, SessionStatus, SignResultAck,
};

/// Largest response body the client reads (bytes); larger answers are a protocol error.
pub const MAX_RESPONSE_LEN: usize = 4 * 1024 * 1024;

/// Why a call to octane failed, in terms a UI can show.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OctaneError {
    /// Octane could not be reached (no network, connection refused, DNS, TLS).
    #[error("octane is unreachable: {0}")]
    Offline(String),
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
        code: ErrorCode,
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
            OctaneError::NotFound => "not_found",
            OctaneError::BadSignature(_) => "octane_bad_signature",
            OctaneError::Refused { .. } => "octane_refused",
            OctaneError::Protocol(_) => "octane_protocol",
            OctaneError::Config(_) => "octane_config",
        }
    }

    /// Whether retrying the same idempotent call may help.
    fn retryable(&self) -> bool {
        matches!(
            self,
            OctaneError::Offline(_) | OctaneError::Timeout | OctaneError::ServerError { .. }
        )
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
    http: reqwest::Client,
    cfg: OctaneConfig,
    creds: Arc<AppCredentials>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for OctaneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OctaneClient").field("base_url", &self.cfg.base_url.as_str()).finish()
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Reads a response body, refusing more than [`MAX_RESPONSE_LEN`] bytes.
async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, OctaneError> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if out.len().saturating_add(chunk.len()) > MAX_RESPONSE_LEN {
                    return Err(OctaneError::Protocol("answer too large".into()));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(transport_error(&e)),
        }
    }
}

fn transport_error(e: &reqwest::Error) -> OctaneError {
    if e.is_timeout() {
        OctaneError::Timeout
    } else if e.is_connect() {
        OctaneError::Offline(root_cause(e))
    } else if e.is_decode() || e.is_body() {
        OctaneError::Protocol(root_cause(e))
    } else {
        OctaneError::Offline(root_cause(e))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn map_status(status: StatusCode, body: &[u8]) -> OctaneError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    if status.is_server_error() {
        return OctaneError::ServerError { status: status.as_u16() };
    }
    let Some(ErrorBody { error }) = parsed else {
        return OctaneError::Protocol(format!("HTTP {} without an error body", status.as_u16()));
    };
    match error.code {
        ErrorCode::SessionExpired => OctaneError::SessionExpired,
        ErrorCode::SessionUsed => OctaneError::SessionUsed,
        ErrorCode::CodeRejected => {
            OctaneError::CodeRejected { attempts_left: error.attempts_left.unwrap_or(0) }
        }
        ErrorCode::SessionLocked => OctaneError::SessionLocked,
        ErrorCode::Forbidden | ErrorCode::AccountNotBound => OctaneError::Forbidden(error.message),
        ErrorCode::Unauthenticated | ErrorCode::StaleRequest => {
            OctaneError::Unauthenticated(error.message)
        }
        ErrorCode::PairRevoked => OctaneError::Revoked,
        ErrorCode::NotFound => OctaneError::NotFound,
        ErrorCode::Internal => OctaneError::ServerError { status: status.as_u16() },
        code => OctaneError::Refused { code, message: error.message },
    }
}

impl OctaneClient {
    /// A client for `cfg`, authenticating with `creds`. Refuses a non-HTTPS URL unless it
    /// points to this machine (loopback), and a URL with a path prefix.
    pub fn new(
        cfg: OctaneConfig,
        creds: AppCredentials,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OctaneError> {
        match cfg.base_url.scheme() {
            "https" => {}
            "http" if is_loopback(&cfg.base_url) => {}
            other => {
                return Err(OctaneError::Config(format!(
                    "octane must be reached over HTTPS (got {other}://)"
                )))
            }
        }
        if cfg.base_url.path() != "/" && !cfg.base_url.path().is_empty() {
            return Err(OctaneError::Config("the octane URL must not have a path".into()));
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(!is_loopback(&cfg.base_url))
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| OctaneError::Config(root_cause(&e)))?;
        Ok(Self { http, cfg, creds: Arc::new(creds), clock })
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
        self.call(Method::POST, path, Some(body), idem, Duration::ZERO).await
    }

    /// One signed request, with retries for idempotent calls. Each attempt is signed anew
    /// (fresh timestamp and nonce: octane refuses a nonce it has seen).
    async fn call<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path_and_query: &str,
        body: Option<&B>,
        idem: Idempotency,
        extra_wait: Duration,
    ) -> Result<R, OctaneError> {
        let body_bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| OctaneError::Protocol(e.to_string()))?,
            None => Vec::new(),
        };
        let url = self.url(path_and_query)?;
        let target = api::path_and_query(&url);
        let attempts = match idem {
            Idempotency::Idempotent => self.cfg.max_attempts.max(1),
            Idempotency::Once => 1,
        };
        let mut backoff = self.cfg.backoff;
        let mut attempt = 1;
        loop {
            let result = self.attempt(&method, &url, &target, &body_bytes, extra_wait).await;
            match result {
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
                Ok(bytes) => {
                    return serde_json::from_slice(&bytes)
                        .map_err(|e| OctaneError::Protocol(format!("bad answer body: {e}")))
                }
            }
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        target: &str,
        body: &[u8],
        extra_wait: Duration,
    ) -> Result<Vec<u8>, OctaneError> {
        let headers = api::sign_app_request(
            &self.creds.app_key,
            &self.creds.endorsement,
            method.as_str(),
            target,
            body,
            self.clock.now_unix(),
        )
        .map_err(|e| OctaneError::Config(e.to_string()))?;
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .timeout(self.cfg.request_timeout.saturating_add(extra_wait));
        for (name, value) in headers.pairs() {
            req = req.header(name, value);
        }
        if !body.is_empty() || *method == Method::POST {
            req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.to_vec());
        }
        let resp = req.send().await.map_err(|e| transport_error(&e))?;
        let status = resp.status();
        let bytes = read_limited(resp).await?;
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(map_status(status, &bytes))
        }
    }

    /// Loads a pair session and checks octane's signature over its details with the pinned
    /// key, that they describe this session, and that the statement version is known.
    #[tracing::instrument(skip(self), fields(session = %session_id))]
    pub async fn session(&self, session_id: &str) -> Result<LoadedSession, OctaneError> {
        let resp: AppSessionResponse = self
            .call::<(), _>(
                Method::GET,
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
        Ok(LoadedSession {
            envelope: resp.details,
            details,
            status: resp.status,
            attempts_left: resp.attempts_left,
        })
    }

    /// Submits the validation code. Never retried: every attempt counts against the limit.
    #[tracing::instrument(skip(self, code), fields(session = %session_id))]
    pub async fn check_code(
        &self,
        session_id: &str,
        code: &ValidationCode,
    ) -> Result<CheckCodeResponse, OctaneError> {
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
        self.call::<(), _>(Method::GET, paths::APP_PAIRS, None, Idempotency::Idempotent, Duration::ZERO)
            .await
    }

    /// Posts the appliance's signed revocation of a pair (idempotent).
    #[tracing::instrument(skip(self, revocation), fields(pair = %pair_id))]
    pub async fn revoke(
        &self,
        pair_id: Uuid,
        revocation: &SignedEnvelope,
    ) -> Result<RevokeResponse, OctaneError> {
        let body = AppRevokeRequest { revocation: revocation.clone() };
        self.post(&paths::app_pair_revoke(&pair_id), &body, Idempotency::Idempotent).await
    }

    /// Long-polls pending sign requests, waiting up to `wait` (clamped to octane's maximum)
    /// for one to arrive. The requests are NOT verified here: `core::sign` does it.
    #[tracing::instrument(skip(self))]
    pub async fn pending_sign_requests(
        &self,
        wait: Duration,
    ) -> Result<Vec<PendingSignRequest>, OctaneError> {
        let secs = wait.as_secs().min(api::MAX_LONG_POLL_SECS);
        let path = format!("{}?timeout_secs={secs}", paths::APP_SIGN_PENDING);
        let resp: PendingSignRequests = self
            .call::<(), _>(
                Method::GET,
                &path,
                None,
                Idempotency::Idempotent,
                Duration::from_secs(secs),
            )
            .await?;
        Ok(resp.requests)
    }

    /// Posts the appliance's signature for a request (idempotent for the same signature).
    #[tracing::instrument(skip(self, signature), fields(request = %request_id))]
    pub async fn post_signature(
        &self,
        request_id: Uuid,
        signature: &[u8],
    ) -> Result<SignResultAck, OctaneError> {
        let body = PostSignatureRequest { signature: signature.to_vec() };
        self.post(&paths::app_sign_result(&request_id), &body, Idempotency::Idempotent).await
    }

    /// Rejects a sign request with a stable reason code (idempotent).
    #[tracing::instrument(skip(self, message), fields(request = %request_id))]
    pub async fn reject_sign(
        &self,
        request_id: Uuid,
        reason_code: &str,
        message: &str,
    ) -> Result<SignResultAck, OctaneError> {
        let body = RejectSignRequest {
            reason_code: reason_code.to_string(),
            message: message.chars().take(512).collect(),
        };
        self.post(&paths::app_sign_reject(&request_id), &body, Idempotency::Idempotent).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

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
            OctaneClient::new(OctaneConfig::new(Url::parse(u).unwrap(), k), creds(), Arc::new(SystemClock))
        };
        assert!(ok("http://127.0.0.1:8080").is_ok());
        assert!(ok("http://localhost:8080").is_ok());
        assert!(ok("https://octane.example").is_ok());
        assert!(matches!(ok("http://octane.example"), Err(OctaneError::Config(_))));
        assert!(matches!(ok("https://octane.example/api"), Err(OctaneError::Config(_))));
    }

    #[test]
    fn error_bodies_map_to_ui_variants() {
        let b = |code: ErrorCode, left: Option<u32>| {
            serde_json::to_vec(&ErrorBody {
                error: api::ErrorDetail { code, message: "m".into(), attempts_left: left },
            })
            .unwrap()
        };
        assert_eq!(
            map_status(StatusCode::BAD_REQUEST, &b(ErrorCode::CodeRejected, Some(3))),
            OctaneError::CodeRejected { attempts_left: 3 }
        );
        assert_eq!(map_status(StatusCode::LOCKED, &b(ErrorCode::SessionLocked, Some(0))), OctaneError::SessionLocked);
        assert_eq!(map_status(StatusCode::GONE, &b(ErrorCode::SessionExpired, None)), OctaneError::SessionExpired);
        assert_eq!(map_status(StatusCode::FORBIDDEN, &b(ErrorCode::PairRevoked, None)), OctaneError::Revoked);
        assert_eq!(map_status(StatusCode::CONFLICT, &b(ErrorCode::SessionUsed, None)), OctaneError::SessionUsed);
        assert_eq!(
            map_status(StatusCode::INTERNAL_SERVER_ERROR, b"oops"),
            OctaneError::ServerError { status: 500 }
        );
        assert!(matches!(map_status(StatusCode::BAD_REQUEST, b"<html>"), OctaneError::Protocol(_)));
        assert!(matches!(
            map_status(StatusCode::CONFLICT, &b(ErrorCode::DuplicateRequest, None)),
            OctaneError::Refused { code: ErrorCode::DuplicateRequest, .. }
        ));
    }
}
