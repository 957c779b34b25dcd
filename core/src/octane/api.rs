//! Octane's HTTP wire types (contract E): every request and response body of the SP API and
//! the app API, the error body with its stable codes and the endpoint paths. The app-request
//! authentication is in [`super::app_auth`].
//!
//! JSON conventions: byte fields are base64url without padding, 32-byte keys are lower-case
//! hex, chains are CAIP-2 strings, accounts CAIP-10 strings, times Unix seconds, ids of
//! pairs and sign requests UUIDs. Signed statements travel as [`SignedEnvelope`]s
//! (`{"body": b64(canonical CBOR), "sig": b64(64 bytes)}`) and are never re-encoded.
//!
//! See `docs/octane-api.md` for the endpoint reference with examples.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::decode::DisplayDigest;
#[cfg(doc)]
use crate::envelope::Domain;
use crate::envelope::SignedEnvelope;
use crate::model::{CountersignedRequest, SpProfile};
use crate::push::PushPublicKey;

/// Longest a long-poll (`?timeout_secs=`) may hold a request; larger values are clamped.
pub const MAX_LONG_POLL_SECS: u64 = 30;

/// Wrong validation-code attempts allowed per session; the next one finds it locked.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// Default pair-session lifetime (seconds) when the SP does not ask for one.
pub const DEFAULT_SESSION_TTL_SECS: u64 = 300;

/// Endpoint paths. Ids are path segments; long-polls take `?timeout_secs=N`.
/// Base URLs must not carry a path prefix: app requests sign the path as octane receives it.
pub mod paths {
    /// `POST` — SP creates a pair session ([`super::CreateSessionRequest`]).
    pub const SP_PAIR_SESSIONS: &str = "/sp/pair/sessions";
    /// `GET` — SP long-polls a session's result ([`super::PairResult`]).
    pub fn sp_pair_session_result(session_id: &str) -> String {
        format!("/sp/pair/sessions/{session_id}/result")
    }
    /// `POST` — SP revokes a pair ([`super::RevokeResponse`]).
    pub fn sp_pair_revoke(pair_id: &uuid::Uuid) -> String {
        format!("/sp/pairs/{pair_id}/revoke")
    }
    /// `POST` — SP submits a signed sign request ([`super::SpSignSubmit`]).
    pub const SP_SIGN: &str = "/sp/sign";
    /// `GET` — SP long-polls a sign request's result ([`super::SignResult`]).
    pub fn sp_sign_result(request_id: &uuid::Uuid) -> String {
        format!("/sp/sign/{request_id}/result")
    }
    /// `GET` — app fetches a session's octane-signed details ([`super::AppSessionResponse`]).
    pub fn app_pair_session(session_id: &str) -> String {
        format!("/app/pair/sessions/{session_id}")
    }
    /// `POST` — app submits the validation code ([`super::CheckCodeRequest`]).
    pub fn app_pair_session_code(session_id: &str) -> String {
        format!("/app/pair/sessions/{session_id}/code")
    }
    /// `POST` — app posts the appliance's attestation ([`super::ApproveRequest`]).
    pub fn app_pair_session_approve(session_id: &str) -> String {
        format!("/app/pair/sessions/{session_id}/approve")
    }
    /// `POST` — app rejects the session ([`super::RejectSessionRequest`]).
    pub fn app_pair_session_reject(session_id: &str) -> String {
        format!("/app/pair/sessions/{session_id}/reject")
    }
    /// `GET` — app lists its appliance's pairs ([`super::AppPairsResponse`]).
    pub const APP_PAIRS: &str = "/app/pairs";
    /// `POST` — app posts the appliance's signed revocation ([`super::AppRevokeRequest`]).
    pub fn app_pair_revoke(pair_id: &uuid::Uuid) -> String {
        format!("/app/pairs/{pair_id}/revoke")
    }
    /// `GET` — app long-polls pending sign requests ([`super::PendingSignRequests`]).
    pub const APP_SIGN_PENDING: &str = "/app/sign/pending";
    /// `POST` — app posts the appliance's signature ([`super::PostSignatureRequest`]).
    pub fn app_sign_result(request_id: &uuid::Uuid) -> String {
        format!("/app/sign/{request_id}/result")
    }
    /// `POST` — app rejects a sign request ([`super::RejectSignRequest`]).
    pub fn app_sign_reject(request_id: &uuid::Uuid) -> String {
        format!("/app/sign/{request_id}/reject")
    }
    /// `POST` — app relays the appliance's statement that it forgot a phone
    /// ([`super::AppForgetPhoneRequest`]).
    pub const APP_PHONES_FORGET: &str = "/app/phones/forget";
    /// `POST` — app registers (or replaces) this phone's push target
    /// ([`super::PushTargetRequest`]); `GET` — reads it back ([`super::PushTargetResponse`]).
    pub const APP_PUSH_TARGET: &str = "/app/push/target";
    /// `POST` — app removes this phone's push target (no body; idempotent,
    /// [`super::PushTargetRemoved`]).
    pub const APP_PUSH_TARGET_REMOVE: &str = "/app/push/target/remove";
    /// `GET` — anyone fetches the signed metadata bundle octane serves (CBOR, the file as
    /// the bundle tool wrote it). Unauthenticated: the bundle carries its own signature.
    /// `ETag` is the file's SHA-256 in quotes; `If-None-Match` with it answers 304.
    pub const METADATA_BUNDLE: &str = "/metadata/bundle";
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// Stable, snake_case error codes. Clients match on these, never on messages.
/// Unknown codes from a newer octane decode as [`OctaneErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OctaneErrorCode {
    /// 400: the body is not valid JSON of the expected shape, or a field is invalid.
    BadRequest,
    /// 400: a chain id is not a supported CAIP-2 chain, or the SP did not register it.
    UnsupportedChain,
    /// 400: `return_url` is not HTTPS on one of the SP's registered origins.
    ReturnUrlNotAllowed,
    /// 400: `ttl_secs` is zero or above the maximum.
    InvalidTtl,
    /// 401: missing or wrong bearer API key, or app-request authentication failed
    /// (bad endorsement, app key not the endorsed one, bad request signature).
    Unauthenticated,
    /// 401: the app request's timestamp is too far from octane's clock, or its nonce was seen.
    StaleRequest,
    /// 403: the caller may not act on this session or pair (another appliance's, another SP's).
    Forbidden,
    /// 403: the pair is revoked.
    PairRevoked,
    /// 403: the sign request's account is not one of the pair's bindings.
    AccountNotBound,
    /// 404: no such session, pair or sign request.
    NotFound,
    /// 409: the session was already approved, rejected or used.
    SessionUsed,
    /// 409: approval before the validation code was verified.
    CodeNotVerified,
    /// 409: a sign request with this id already exists.
    DuplicateRequest,
    /// 409: the sign request is no longer pending (already signed, rejected or expired).
    RequestNotPending,
    /// 409: the attestation conflicts with an existing pair (another pair id for the session).
    Conflict,
    /// 410: the session expired.
    SessionExpired,
    /// 400: the validation code is wrong; `attempts_left` says how many remain.
    CodeRejected,
    /// 423: too many wrong codes; the session is burnt.
    SessionLocked,
    /// 400: the attestation's signature does not verify or its body is malformed.
    AttestationInvalid,
    /// 400: the attestation does not bind this session (id, code, SP key, chains, identity).
    AttestationMismatch,
    /// 400: the SP's signature over the sign request does not verify.
    BadSignature,
    /// 400: the sign request's chain does not match its account, or the pair id differs.
    ChainMismatch,
    /// 400: the sign request has expired, or expires too far ahead (> 300 s).
    InvalidExpiry,
    /// 400: the appliance's signature does not verify for the request.
    SignatureInvalid,
    /// 400: the revocation's signature does not verify or names another pair.
    RevocationInvalid,
    /// 400: the forget statement's signature does not verify under the caller's appliance,
    /// or it names another appliance.
    ForgetInvalid,
    /// 403: the appliance forgot this phone (its app key), and no later bond endorses it.
    PhoneForgotten,
    /// 413: the body is larger than octane accepts.
    PayloadTooLarge,
    /// 500: octane failed; the request may be retried.
    Internal,
    /// A code this client does not know (from a newer octane).
    #[serde(other)]
    Unknown,
}

impl OctaneErrorCode {
    /// The HTTP status octane answers with for this code.
    pub fn http_status(self) -> u16 {
        use OctaneErrorCode::*;
        match self {
            BadRequest | UnsupportedChain | ReturnUrlNotAllowed | InvalidTtl | CodeRejected | AttestationInvalid
            | AttestationMismatch | BadSignature | ChainMismatch | InvalidExpiry | SignatureInvalid
            | RevocationInvalid | ForgetInvalid => 400,
            Unauthenticated | StaleRequest => 401,
            Forbidden | PairRevoked | AccountNotBound | PhoneForgotten => 403,
            NotFound => 404,
            SessionUsed | CodeNotVerified | DuplicateRequest | RequestNotPending | Conflict => 409,
            SessionExpired => 410,
            PayloadTooLarge => 413,
            SessionLocked => 423,
            Internal | Unknown => 500,
        }
    }

    /// The snake_case wire string.
    pub fn as_str(self) -> &'static str {
        use OctaneErrorCode::*;
        match self {
            BadRequest => "bad_request",
            UnsupportedChain => "unsupported_chain",
            ReturnUrlNotAllowed => "return_url_not_allowed",
            InvalidTtl => "invalid_ttl",
            Unauthenticated => "unauthenticated",
            StaleRequest => "stale_request",
            Forbidden => "forbidden",
            PairRevoked => "pair_revoked",
            AccountNotBound => "account_not_bound",
            NotFound => "not_found",
            SessionUsed => "session_used",
            CodeNotVerified => "code_not_verified",
            DuplicateRequest => "duplicate_request",
            RequestNotPending => "request_not_pending",
            Conflict => "conflict",
            SessionExpired => "session_expired",
            CodeRejected => "code_rejected",
            SessionLocked => "session_locked",
            AttestationInvalid => "attestation_invalid",
            AttestationMismatch => "attestation_mismatch",
            BadSignature => "bad_signature",
            ChainMismatch => "chain_mismatch",
            InvalidExpiry => "invalid_expiry",
            SignatureInvalid => "signature_invalid",
            RevocationInvalid => "revocation_invalid",
            ForgetInvalid => "forget_invalid",
            PhoneForgotten => "phone_forgotten",
            PayloadTooLarge => "payload_too_large",
            Internal => "internal",
            Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for OctaneErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every non-2xx answer: `{"error": {"code", "message", ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// One error: a stable code, a sentence for a developer, and code-specific extras.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code.
    pub code: OctaneErrorCode,
    /// A sentence for a developer (not for matching).
    pub message: String,
    /// With `code_rejected` (and `session_locked`: 0): wrong attempts still allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
}

impl ErrorBody {
    /// An error body with no extras.
    pub fn new(code: OctaneErrorCode, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code, message: message.into(), attempts_left: None } }
    }
    /// An error body carrying `attempts_left`.
    pub fn with_attempts_left(code: OctaneErrorCode, message: impl Into<String>, left: u32) -> Self {
        Self { error: ErrorDetail { code, message: message.into(), attempts_left: Some(left) } }
    }
}

// ---------------------------------------------------------------------------------------
// Shared enums
// ---------------------------------------------------------------------------------------

/// A pair session's state on octane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Created; the code has not been verified.
    Open,
    /// The code was verified by one appliance's app; waiting for its approval.
    CodeVerified,
    /// Approved: a pair exists.
    Paired,
    /// The user (or appliance) rejected it.
    Rejected,
    /// Too many wrong codes.
    Locked,
    /// Past its expiry without approval.
    Expired,
}

/// A pair's state on octane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OctanePairStatus {
    /// Sign requests are accepted.
    Active,
    /// Revoked by the SP or the appliance; sign requests answer 403 `pair_revoked`.
    Revoked,
}

/// Who revoked a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokedBy {
    /// The service provider, through the SP API.
    Sp,
    /// The appliance, through a signed revocation the app posted.
    Appliance,
}

/// Long-poll query string: `?timeout_secs=N` (0 answers at once; clamped to
/// [`MAX_LONG_POLL_SECS`]). Any other parameter is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to hold the request while the answer is pending.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

// ---------------------------------------------------------------------------------------
// SP API
// ---------------------------------------------------------------------------------------

/// `POST /sp/pair/sessions` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionRequest {
    /// The SP's opaque reference for its user (shown on the approval card; ≤ 128 chars).
    pub sp_user_ref: String,
    /// Chains the SP wants a wallet on (CAIP-2), at least one, no duplicates.
    pub chains: Vec<ChainId>,
    /// Single-device flow: where the phone sends the user back (HTTPS, SP-registered origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    /// Session lifetime; default [`DEFAULT_SESSION_TTL_SECS`], at most
    /// [`crate::model::MAX_TTL_SECS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// `POST /sp/pair/sessions` answer (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSessionResponse {
    /// 128 random bits, base64url (22 chars).
    pub session_id: String,
    /// Six decimal digits; show it next to the QR (two-device flow).
    pub validation_code: String,
    /// `https://<host>/pair?session=<id>`: the QR content (two-device flow).
    pub link: String,
    /// `…&v=<code>`: the Universal Link for the single-device flow.
    pub link_with_code: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

/// `GET /sp/pair/sessions/{id}/result` answer: the session's outcome, tagged by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PairResult {
    /// Not decided yet (the long-poll timed out).
    Pending,
    /// Approved by an appliance.
    Paired {
        /// The durable pair id the appliance minted.
        pair_id: Uuid,
        /// The approved wallets, canonical.
        bindings: Vec<AccountId>,
        /// The appliance's [`crate::model::PairAttestation`] under
        /// [`Domain::PairAttestation`]; the SP verifies it with `appliance_identity`.
        attestation: SignedEnvelope,
        /// The appliance's Ed25519 identity key.
        appliance_identity: Key32,
    },
    /// The user rejected the pair.
    Rejected {
        /// Optional reason given by the app.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Too many wrong validation codes.
    Locked,
    /// The session expired unused.
    Expired,
}

/// Answer of both revoke endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeResponse {
    /// The pair.
    pub pair_id: Uuid,
    /// Always [`OctanePairStatus::Revoked`].
    pub status: OctanePairStatus,
    /// Who revoked it first (revoking twice is idempotent).
    pub revoked_by: RevokedBy,
    /// Unix seconds.
    pub revoked_at: u64,
}

/// `POST /sp/sign` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpSignSubmit {
    /// Must equal the request's `pair_id`.
    pub pair_id: Uuid,
    /// A [`crate::model::SignRequest`] signed by the SP under [`Domain::SpSignRequest`].
    pub request: SignedEnvelope,
}

/// `POST /sp/sign` answer (202): octane countersigned and queued the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpSignAccepted {
    /// The request's id (poll its result).
    pub request_id: Uuid,
    /// The request with both signatures, as the phone will receive it.
    pub countersigned: CountersignedRequest,
    /// Unix seconds (from the request).
    pub expires_at: u64,
}

/// The three signatures over one sign request, as the SP receives them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureBundle {
    /// Canonical CBOR of the [`crate::model::SignRequest`].
    #[serde(with = "crate::bytes::b64")]
    pub body: Vec<u8>,
    /// The SP's signature under [`Domain::SpSignRequest`].
    #[serde(with = "crate::bytes::b64")]
    pub sp_sig: Vec<u8>,
    /// Octane's signature under [`Domain::OctaneSignRequest`].
    #[serde(with = "crate::bytes::b64")]
    pub octane_sig: Vec<u8>,
    /// The appliance's chain signature: 65 bytes `r‖s‖v` for EVM, 64 bytes Ed25519 for Solana.
    #[serde(with = "crate::bytes::b64")]
    pub appliance_sig: Vec<u8>,
    /// The SP key the request was checked with.
    pub sp_public_key: Key32,
    /// Octane's key.
    pub octane_public_key: Key32,
    /// The account that signed.
    pub account: AccountId,
    /// The display digest of the screen the user approved on the phone, as the phone
    /// posted it (absent when the phone sent none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_digest: Option<DisplayDigest>,
    /// The appliance's signed [`crate::receipt::SignReceipt`] over the request id, pair,
    /// payload hash and `display_digest` (absent when the phone sent none). The SP checks
    /// it with the appliance identity of the pair attestation it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SignedEnvelope>,
    /// The pair's appliance identity as octane recorded it from the pair attestation (an
    /// SP checks the receipt with the one it kept at pair time; this is a convenience).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliance_identity: Option<Key32>,
}

/// `GET /sp/sign/{request_id}/result` answer, tagged by `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignResult {
    /// Waiting for the phone and appliance.
    Pending,
    /// Signed by the appliance.
    Signed {
        /// The three signatures (boxed: the largest variant by far).
        bundle: Box<SignatureBundle>,
    },
    /// Refused by the phone (guardrail, decoding) or the appliance's user.
    Rejected {
        /// Stable snake_case reason from the phone (e.g. `user_rejected`, `guardrail`).
        reason_code: String,
        /// A sentence.
        message: String,
    },
    /// Expired before an answer.
    Expired,
}

// ---------------------------------------------------------------------------------------
// App API
// ---------------------------------------------------------------------------------------

/// `GET /app/pair/sessions/{id}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSessionResponse {
    /// [`crate::model::PairSessionDetails`] signed by octane under [`Domain::OctaneSession`].
    pub details: SignedEnvelope,
    /// Current state (unsigned, informative).
    pub status: SessionStatus,
    /// Wrong code attempts still allowed.
    pub attempts_left: u32,
}

/// `POST /app/pair/sessions/{id}/code` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckCodeRequest {
    /// The six digits the user typed or the link carried.
    pub code: String,
}

/// `POST /app/pair/sessions/{id}/code` answer (200). Wrong codes answer 400 `code_rejected`
/// with `attempts_left`, a burnt session 423 `session_locked`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckCodeResponse {
    /// Always true in a 200.
    pub verified: bool,
    /// Now [`SessionStatus::CodeVerified`] (or later, if posted again).
    pub status: SessionStatus,
}

/// `POST /app/pair/sessions/{id}/approve` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The appliance's [`crate::model::PairAttestation`] under [`Domain::PairAttestation`].
    pub attestation: SignedEnvelope,
}

/// `POST /app/pair/sessions/{id}/approve` answer (200; the same answer for the same
/// attestation posted again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproveResponse {
    /// The pair.
    pub pair_id: Uuid,
    /// Its bindings.
    pub bindings: Vec<AccountId>,
    /// Its status.
    pub status: OctanePairStatus,
    /// Validated `return_url` of the session, if any (the core checks it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

/// `POST /app/pair/sessions/{id}/reject` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectSessionRequest {
    /// Optional reason (≤ 256 chars), passed to the SP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /app/pair/sessions/{id}/reject` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectSessionResponse {
    /// Now [`SessionStatus::Rejected`].
    pub status: SessionStatus,
}

/// One pair as the app sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPairInfo {
    /// The pair id.
    pub pair_id: Uuid,
    /// The SP's profile (as registered at pair time).
    pub sp: SpProfile,
    /// Approved wallets.
    pub bindings: Vec<AccountId>,
    /// Active or revoked.
    pub status: OctanePairStatus,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds, when revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// Who revoked it, when revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_by: Option<RevokedBy>,
}

/// `GET /app/pairs` answer: the pairs of the authenticated appliance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppPairsResponse {
    /// Newest first.
    pub pairs: Vec<AppPairInfo>,
}

/// One queued sign request for the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignRequest {
    /// The pair it is made under.
    pub pair_id: Uuid,
    /// The request id (also inside the signed body).
    pub request_id: Uuid,
    /// The request with the SP's and octane's signatures.
    pub request: CountersignedRequest,
}

/// `GET /app/sign/pending` answer: pending, unexpired requests for the appliance's active
/// pairs, oldest first (empty when the long-poll timed out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignRequests {
    /// The requests.
    pub requests: Vec<PendingSignRequest>,
}

/// `POST /app/sign/{request_id}/result` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostSignatureRequest {
    /// The appliance's chain signature (65 bytes EVM `r‖s‖v`, 64 bytes Ed25519 Solana).
    #[serde(with = "crate::bytes::b64")]
    pub signature: Vec<u8>,
    /// The display digest of the screen the user approved (hex; with `receipt`, or
    /// neither, from an older phone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_digest: Option<DisplayDigest>,
    /// The appliance's signed receipt over it ([`crate::receipt::SignReceipt`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<SignedEnvelope>,
}

/// `POST /app/sign/{request_id}/reject` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectSignRequest {
    /// Stable snake_case reason (e.g. `user_rejected`, `guardrail`, `blind_signing`).
    pub reason_code: String,
    /// A sentence (≤ 512 chars).
    pub message: String,
}

/// Answer of `POST /app/sign/{id}/result` and `/reject` (idempotent for the same content).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignResultAck {
    /// The request.
    pub request_id: Uuid,
    /// What the SP will now see.
    pub result: SignResult,
}

/// `POST /app/pairs/{pair_id}/revoke` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRevokeRequest {
    /// A [`crate::model::PairRevocation`] signed by the appliance under
    /// [`Domain::PairRevocation`].
    pub revocation: SignedEnvelope,
}

/// `POST /app/phones/forget` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppForgetPhoneRequest {
    /// A [`crate::model::PhoneForgotten`] signed by the caller's appliance under
    /// [`Domain::PhoneForgotten`].
    pub statement: SignedEnvelope,
}

/// `POST /app/phones/forget` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppForgetPhoneResponse {
    /// The forgotten phone's app key: octane refuses its requests about this appliance.
    pub app_key: Key32,
    /// When the appliance forgot it (Unix seconds); a bond endorsed later lifts the refusal.
    pub forgotten_at: u64,
}

// ---------------------------------------------------------------------------------------
// Push targets
// ---------------------------------------------------------------------------------------

/// Longest device token octane accepts (characters). APNs tokens are hex (64 digits today),
/// FCM registration tokens about 160 characters.
pub const MAX_PUSH_TOKEN_LEN: usize = 512;

/// The push service a device token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushPlatform {
    /// Apple Push Notification service (iOS): the token is hex.
    Apns,
    /// Firebase Cloud Messaging HTTP v1 (Android).
    Fcm,
}

impl PushPlatform {
    /// The wire string (`apns`, `fcm`).
    pub fn as_str(self) -> &'static str {
        match self {
            PushPlatform::Apns => "apns",
            PushPlatform::Fcm => "fcm",
        }
    }

    /// Whether `token` has this platform's form: APNs an even number of hex digits, FCM
    /// letters, digits and `-_:.`; both non-empty and at most [`MAX_PUSH_TOKEN_LEN`].
    /// Octane refuses other tokens (`400 bad_request`): a token becomes a URL path segment.
    pub fn token_is_valid(self, token: &str) -> bool {
        if token.is_empty() || token.len() > MAX_PUSH_TOKEN_LEN {
            return false;
        }
        match self {
            PushPlatform::Apns => token.len().is_multiple_of(2) && token.bytes().all(|b| b.is_ascii_hexdigit()),
            PushPlatform::Fcm => {
                token.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
            }
        }
    }
}

/// `POST /app/push/target` body: where octane pushes this phone's sign requests. One target
/// per phone (app key) and appliance; posting again replaces it (token rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushTargetRequest {
    /// The push service.
    pub platform: PushPlatform,
    /// The device token the platform gave the app ([`PushPlatform::token_is_valid`]).
    pub token: String,
    /// The phone's X25519 push public key (hex): octane seals every push payload to it
    /// ([`crate::push::seal_for_push`]), so the push service never sees the request.
    pub push_key: PushPublicKey,
}

/// This phone's push target as octane holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTarget {
    /// The push service.
    pub platform: PushPlatform,
    /// The device token.
    pub token: String,
    /// The X25519 push public key payloads are sealed to.
    pub push_key: PushPublicKey,
    /// When it was registered or last replaced (Unix seconds).
    pub registered_at: u64,
}

/// Answer of `POST` and `GET /app/push/target`: the target, or none (never registered,
/// removed, or dropped by octane after the push service said the token is unregistered —
/// the app then registers its current token again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTargetResponse {
    /// The registered target.
    pub target: Option<PushTarget>,
}

/// `POST /app/push/target/remove` answer (idempotent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushTargetRemoved {
    /// Whether a target was there to remove.
    pub removed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_snake_case_and_unknown_tolerated() {
        let b = ErrorBody::with_attempts_left(OctaneErrorCode::CodeRejected, "wrong", 3);
        let j = serde_json::to_value(&b).unwrap();
        assert_eq!(j["error"]["code"], "code_rejected");
        assert_eq!(j["error"]["attempts_left"], 3);
        let u: ErrorBody = serde_json::from_str(r#"{"error":{"code":"brand_new","message":"m"}}"#).unwrap();
        assert_eq!(u.error.code, OctaneErrorCode::Unknown);
        for c in [OctaneErrorCode::SessionLocked, OctaneErrorCode::PairRevoked, OctaneErrorCode::ReturnUrlNotAllowed] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }

    #[test]
    fn results_are_tagged_by_status() {
        let j = serde_json::to_value(PairResult::Pending).unwrap();
        assert_eq!(j, serde_json::json!({"status": "pending"}));
        let r = SignResult::Rejected { reason_code: "user_rejected".into(), message: "no".into() };
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(j["status"], "rejected");
        assert_eq!(serde_json::from_value::<SignResult>(j).unwrap(), r);
    }
}
