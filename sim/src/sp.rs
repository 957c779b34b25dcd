//! The service provider's side of octane: a small HTTP client for the SP API (used by the
//! `sunstorm sp` commands, the tests and the demo) and the checks an SP makes itself on what
//! comes back (the appliance's pair attestation, the signature bundle and the appliance's
//! receipt over the display digest of the screen the user approved).

use std::time::Duration;

use ed25519_dalek::SigningKey;
use sunstorm_core::bytes::Key32;
use sunstorm_core::decode::DisplayDigest;
use sunstorm_core::envelope::{Domain, EnvelopeError, SignedEnvelope};
use sunstorm_core::model::{PairAttestation, SignRequest, STATEMENT_VERSION};
use sunstorm_core::octane::api::{
    paths, CreateSessionRequest, CreateSessionResponse, ErrorBody, OctaneErrorCode, PairResult, RevokeResponse,
    SignResult, SignatureBundle, SpSignAccepted, SpSignSubmit, MAX_LONG_POLL_SECS,
};
use sunstorm_core::receipt::{ReceiptError, SignReceipt};
use url::Url;
use uuid::Uuid;

/// Per-call timeout beyond a long-poll's own wait.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Why an SP API call failed.
#[derive(Debug, thiserror::Error)]
pub enum SpClientError {
    /// The octane URL is not an http(s) URL.
    #[error("bad octane URL: {0}")]
    BadUrl(String),
    /// Octane could not be reached, or did not answer in time.
    #[error("octane unreachable: {0}")]
    Unreachable(String),
    /// Octane answered with an error body.
    #[error("octane refused ({status} {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: OctaneErrorCode,
        /// Octane's message.
        message: String,
        /// Remaining code attempts, when relevant.
        attempts_left: Option<u32>,
    },
    /// Octane's answer was not what the API defines.
    #[error("unexpected answer from octane: {0}")]
    Decode(String),
    /// A request could not be signed.
    #[error("cannot sign the request: {0}")]
    Sign(#[from] EnvelopeError),
    /// Waiting for a result took longer than allowed.
    #[error("no result within {0:?}")]
    TimedOut(Duration),
}

impl SpClientError {
    /// The stable octane error code, for API errors.
    pub fn code(&self) -> Option<OctaneErrorCode> {
        match self {
            SpClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// An SP's client of octane's SP API (bearer API key).
#[derive(Debug, Clone)]
pub struct SpClient {
    http: reqwest::Client,
    base: Url,
    api_key: String,
}

impl SpClient {
    /// A client of the octane at `base_url` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base_url: &str, api_key: &str) -> Result<Self, SpClientError> {
        let base = Url::parse(base_url).map_err(|e| SpClientError::BadUrl(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(SpClientError::BadUrl(format!("{base_url} is not an http(s) URL")));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| SpClientError::Unreachable(e.to_string()))?;
        Ok(Self { http, base, api_key: api_key.to_string() })
    }

    fn url(&self, path: &str) -> Result<Url, SpClientError> {
        self.base.join(path).map_err(|e| SpClientError::BadUrl(e.to_string()))
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        wait: Duration,
    ) -> Result<T, SpClientError> {
        let resp = req
            .bearer_auth(&self.api_key)
            .timeout(CALL_TIMEOUT + wait)
            .send()
            .await
            .map_err(|e| SpClientError::Unreachable(e.to_string()))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| SpClientError::Unreachable(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| SpClientError::Decode(e.to_string()));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(b) => Err(SpClientError::Api {
                status: status.as_u16(),
                code: b.error.code,
                message: b.error.message,
                attempts_left: b.error.attempts_left,
            }),
            Err(_) => Err(SpClientError::Api {
                status: status.as_u16(),
                code: if status.is_server_error() { OctaneErrorCode::Internal } else { OctaneErrorCode::Unknown },
                message: String::from_utf8_lossy(bytes.get(..200).unwrap_or(&bytes)).into_owned(),
                attempts_left: None,
            }),
        }
    }

    /// `POST /sp/pair/sessions`.
    pub async fn create_session(&self, req: &CreateSessionRequest) -> Result<CreateSessionResponse, SpClientError> {
        let url = self.url(paths::SP_PAIR_SESSIONS)?;
        self.send(self.http.post(url).json(req), Duration::ZERO).await
    }

    /// One long-poll of `GET /sp/pair/sessions/{id}/result` (≤ 30 s).
    pub async fn pair_result(&self, session_id: &str, timeout_secs: u64) -> Result<PairResult, SpClientError> {
        let wait = timeout_secs.min(MAX_LONG_POLL_SECS);
        let mut url = self.url(&paths::sp_pair_session_result(session_id))?;
        url.query_pairs_mut().append_pair("timeout_secs", &wait.to_string());
        self.send(self.http.get(url), Duration::from_secs(wait)).await
    }

    /// Long-polls until the session is decided, or `overall` passes.
    pub async fn await_pair(&self, session_id: &str, overall: Duration) -> Result<PairResult, SpClientError> {
        let deadline = tokio::time::Instant::now() + overall;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(SpClientError::TimedOut(overall));
            }
            let r = self.pair_result(session_id, left.as_secs().clamp(1, MAX_LONG_POLL_SECS)).await?;
            if r != PairResult::Pending {
                return Ok(r);
            }
        }
    }

    /// `POST /sp/pairs/{pair_id}/revoke`.
    pub async fn revoke(&self, pair_id: &Uuid) -> Result<RevokeResponse, SpClientError> {
        let url = self.url(&paths::sp_pair_revoke(pair_id))?;
        self.send(self.http.post(url), Duration::ZERO).await
    }

    /// Signs `req` with the SP key under [`Domain::SpSignRequest`] and submits it.
    pub async fn submit_sign(&self, sp_key: &SigningKey, req: &SignRequest) -> Result<SpSignAccepted, SpClientError> {
        let env = SignedEnvelope::seal(Domain::SpSignRequest, sp_key, req)?;
        self.submit_sign_envelope(&req.pair_id, env).await
    }

    /// `POST /sp/sign` with an already-signed envelope (tests use it to send bad ones).
    pub async fn submit_sign_envelope(
        &self,
        pair_id: &Uuid,
        request: SignedEnvelope,
    ) -> Result<SpSignAccepted, SpClientError> {
        let url = self.url(paths::SP_SIGN)?;
        let body = SpSignSubmit { pair_id: *pair_id, request };
        self.send(self.http.post(url).json(&body), Duration::ZERO).await
    }

    /// One long-poll of `GET /sp/sign/{request_id}/result` (≤ 30 s).
    pub async fn sign_result(&self, request_id: &Uuid, timeout_secs: u64) -> Result<SignResult, SpClientError> {
        let wait = timeout_secs.min(MAX_LONG_POLL_SECS);
        let mut url = self.url(&paths::sp_sign_result(request_id))?;
        url.query_pairs_mut().append_pair("timeout_secs", &wait.to_string());
        self.send(self.http.get(url), Duration::from_secs(wait)).await
    }

    /// Long-polls until the request is decided, or `overall` passes.
    pub async fn await_sign(&self, request_id: &Uuid, overall: Duration) -> Result<SignResult, SpClientError> {
        let deadline = tokio::time::Instant::now() + overall;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(SpClientError::TimedOut(overall));
            }
            let r = self.sign_result(request_id, left.as_secs().clamp(1, MAX_LONG_POLL_SECS)).await?;
            if r != SignResult::Pending {
                return Ok(r);
            }
        }
    }
}

/// Why the SP refuses what octane relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpCheckError {
    /// A signature does not verify (which one is named).
    #[error("{0} signature does not verify")]
    Signature(&'static str),
    /// The attestation's body is malformed or of an unknown version.
    #[error("malformed attestation")]
    Malformed,
    /// A bound field differs from what the SP expects (which one is named).
    #[error("attestation field `{0}` does not match")]
    Mismatch(&'static str),
    /// The bundle carries no display digest or no appliance receipt over it.
    #[error("no display digest and appliance receipt came with the signature")]
    MissingReceipt,
    /// The appliance's receipt does not verify under the pair's appliance identity, or names
    /// another request, pair, payload or display digest.
    #[error("the appliance's receipt is refused: {0}")]
    Receipt(ReceiptError),
}

/// What the SP expects a pair attestation to bind. `None` fields are not checked (an SP
/// normally knows all three; the CLI may not have the code at hand).
#[derive(Debug, Clone)]
pub struct ExpectedPair<'a> {
    /// The session the SP created.
    pub session_id: &'a str,
    /// Its validation code.
    pub validation_code: Option<&'a str>,
    /// The SP's own public key.
    pub sp_public_key: Option<&'a Key32>,
}

/// The SP's own check of a pair: the attestation is signed by `appliance_identity` under
/// [`Domain::PairAttestation`] and binds this session, code and SP key; the result's pair id
/// and bindings are the attested ones.
pub fn verify_pair_attestation(
    attestation: &SignedEnvelope,
    appliance_identity: &Key32,
    expected: &ExpectedPair<'_>,
) -> Result<PairAttestation, SpCheckError> {
    let att: PairAttestation =
        attestation.open(Domain::PairAttestation, appliance_identity.as_bytes()).map_err(|e| match e {
            EnvelopeError::Body(_) => SpCheckError::Malformed,
            _ => SpCheckError::Signature("appliance"),
        })?;
    if att.v != STATEMENT_VERSION {
        return Err(SpCheckError::Malformed);
    }
    if att.appliance_identity != *appliance_identity {
        return Err(SpCheckError::Mismatch("appliance_identity"));
    }
    if att.session_id != expected.session_id {
        return Err(SpCheckError::Mismatch("session_id"));
    }
    if let Some(code) = expected.validation_code {
        let code_ok: bool = subtle::ConstantTimeEq::ct_eq(att.validation_code.as_bytes(), code.as_bytes()).into();
        if !code_ok {
            return Err(SpCheckError::Mismatch("validation_code"));
        }
    }
    if let Some(key) = expected.sp_public_key {
        if att.sp_public_key != *key {
            return Err(SpCheckError::Mismatch("sp_public_key"));
        }
    }
    Ok(att)
}

/// Checks a [`PairResult::Paired`] end to end with [`verify_pair_attestation`] and that its
/// `pair_id` and `bindings` are the attested ones. Other results return `Ok(None)`.
pub fn verify_pair_result(
    result: &PairResult,
    expected: &ExpectedPair<'_>,
) -> Result<Option<PairAttestation>, SpCheckError> {
    let PairResult::Paired { pair_id, bindings, attestation, appliance_identity } = result else {
        return Ok(None);
    };
    let att = verify_pair_attestation(attestation, appliance_identity, expected)?;
    if att.pair_id != *pair_id {
        return Err(SpCheckError::Mismatch("pair_id"));
    }
    if att.bindings != *bindings {
        return Err(SpCheckError::Mismatch("bindings"));
    }
    Ok(Some(att))
}

/// Checks the SP's and octane's signatures in a bundle against the keys the SP knows
/// (its own, and octane's pinned one) and decodes the request. [`verify_bundle`] also checks
/// the appliance's chain signature.
pub fn verify_bundle_cosigners(
    bundle: &SignatureBundle,
    sp_public_key: &Key32,
    octane_public_key: &Key32,
) -> Result<SignRequest, SpCheckError> {
    sunstorm_core::envelope::verify_bytes(
        Domain::SpSignRequest,
        sp_public_key.as_bytes(),
        &bundle.body,
        &bundle.sp_sig,
    )
    .map_err(|_| SpCheckError::Signature("SP"))?;
    sunstorm_core::envelope::verify_bytes(
        Domain::OctaneSignRequest,
        octane_public_key.as_bytes(),
        &bundle.body,
        &bundle.octane_sig,
    )
    .map_err(|_| SpCheckError::Signature("octane"))?;
    sunstorm_core::cbor::from_canonical_slice(&bundle.body).map_err(|_| SpCheckError::Malformed)
}

/// Checks all three signatures of a bundle: the SP's and octane's (see
/// [`verify_bundle_cosigners`]) and the appliance's chain signature over the re-parsed payload
/// against the request's account (`core::payload::verify_appliance_signature`).
pub fn verify_bundle(
    bundle: &SignatureBundle,
    sp_public_key: &Key32,
    octane_public_key: &Key32,
) -> Result<SignRequest, SpCheckError> {
    let req = verify_bundle_cosigners(bundle, sp_public_key, octane_public_key)?;
    if bundle.account != req.account {
        return Err(SpCheckError::Mismatch("account"));
    }
    let target = sunstorm_core::payload::signing_target(req.kind, &req.payload, &req.chain)
        .map_err(|_| SpCheckError::Malformed)?;
    sunstorm_core::payload::verify_appliance_signature(&target, &bundle.appliance_sig, &req.account)
        .map_err(|_| SpCheckError::Signature("appliance"))?;
    Ok(req)
}

/// A signature bundle the SP verified in full ([`verify_signed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The request the three signatures are over.
    pub request: SignRequest,
    /// The display digest of the screen the user approved on the phone, as the appliance's
    /// receipt names it.
    pub display_digest: DisplayDigest,
    /// The receipt as the appliance signed it.
    pub receipt: SignReceipt,
}

/// The SP's whole check of a signed result: the three signatures ([`verify_bundle`]) and
/// the appliance's receipt, under `appliance_identity` (the one of the pair attestation the
/// SP checked at pair time, [`verify_pair_attestation`]), naming this request id, pair,
/// payload hash and the bundle's display digest. A bundle without digest or receipt is
/// refused ([`SpCheckError::MissingReceipt`]).
pub fn verify_signed(
    bundle: &SignatureBundle,
    sp_public_key: &Key32,
    octane_public_key: &Key32,
    appliance_identity: &Key32,
) -> Result<VerifiedSignature, SpCheckError> {
    let request = verify_bundle(bundle, sp_public_key, octane_public_key)?;
    let (Some(display_digest), Some(receipt)) = (bundle.display_digest, &bundle.receipt) else {
        return Err(SpCheckError::MissingReceipt);
    };
    let expected = SignReceipt::for_request(&request, display_digest, *appliance_identity);
    let receipt = SignReceipt::verify(receipt, &expected).map_err(SpCheckError::Receipt)?;
    Ok(VerifiedSignature { request, display_digest, receipt })
}
