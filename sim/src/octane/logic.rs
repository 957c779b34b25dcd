//! Octane's rules over its SQLite state. Every operation that reads then writes runs in one
//! `BEGIN IMMEDIATE` transaction, so code attempts and approvals are atomic even with a
//! file database shared by several processes.

use std::path::Path;

use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use rand::Rng;
use rand_core::{OsRng, RngCore};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::code::ValidationCode;
use sunstorm_core::envelope::{self, Domain, SignedEnvelope};
use sunstorm_core::link::PairIntent;
use sunstorm_core::model::{
    CountersignedRequest, PairAttestation, PairRevocation, PairSessionDetails, SignRequest, SpProfile, MAX_TTL_SECS,
    STATEMENT_VERSION,
};
use sunstorm_core::octane::api::{
    AppPairInfo, AppSessionResponse, ApproveResponse, CheckCodeResponse, CreateSessionRequest, CreateSessionResponse,
    ErrorCode, PairResult, PairStatus, PendingSignRequest, RejectSessionResponse, RevokeResponse, RevokedBy,
    SessionStatus, SignResult, SignResultAck, SignatureBundle, SpSignAccepted, DEFAULT_SESSION_TTL_SECS,
    MAX_CODE_ATTEMPTS,
};
use uuid::Uuid;

use super::{OctaneSimError, SpRegistration};

/// Longest sign payload octane accepts (bytes).
pub const MAX_PAYLOAD_LEN: usize = 128 * 1024;
/// How far ahead of octane's clock a sign request's `created_at` may be.
const CREATED_AT_SKEW_SECS: u64 = sunstorm_core::validity::DEFAULT_MAX_SKEW_SECS;

/// Octane's check of a sign request's times when the SP submits it: the one rule in core
/// ([`sunstorm_core::validity::check_validity`]), every failure answered `invalid_expiry`
/// with the reason.
pub(crate) fn sign_validity(req: &SignRequest, now: u64) -> Result<(), ApiError> {
    let skew = CREATED_AT_SKEW_SECS;
    sunstorm_core::validity::check_validity(req.created_at, req.expires_at, now, skew).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidExpiry,
            format!("{}: {e} (a request lives 1 to {MAX_TTL_SECS} s, created at most {skew} s ahead)", e.code()),
        )
    })
}

/// An API failure: a stable code, a message, and extras. Becomes the JSON error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub attempts_left: Option<u32>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), attempts_left: None }
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("no such {what}"))
    }
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        tracing::error!(error = %e, "octane simulator database error");
        ApiError::new(ErrorCode::Internal, "database error")
    }
}

type R<T> = Result<T, ApiError>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sps (
    sp_id TEXT PRIMARY KEY,
    api_key_hash TEXT NOT NULL UNIQUE,
    profile_json TEXT NOT NULL,
    chains_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    sp_id TEXT NOT NULL REFERENCES sps(sp_id),
    details_body BLOB NOT NULL,
    details_sig BLOB NOT NULL,
    chains_json TEXT NOT NULL,
    return_url TEXT,
    code_mac BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    wrong_attempts INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    claimed_by TEXT,
    pair_id TEXT,
    reject_reason TEXT
);
CREATE TABLE IF NOT EXISTS pairs (
    pair_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL UNIQUE REFERENCES sessions(session_id),
    sp_id TEXT NOT NULL REFERENCES sps(sp_id),
    appliance TEXT NOT NULL,
    sp_public_key TEXT NOT NULL,
    bindings_json TEXT NOT NULL,
    att_body BLOB NOT NULL,
    att_sig BLOB NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_by TEXT,
    revocation_body BLOB,
    revocation_sig BLOB
);
CREATE INDEX IF NOT EXISTS pairs_by_appliance ON pairs(appliance);
CREATE TABLE IF NOT EXISTS sign_requests (
    request_id TEXT PRIMARY KEY,
    pair_id TEXT NOT NULL REFERENCES pairs(pair_id),
    account TEXT NOT NULL,
    body BLOB NOT NULL,
    sp_sig BLOB NOT NULL,
    octane_sig BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    appliance_sig BLOB,
    reason_code TEXT,
    message TEXT
);
CREATE INDEX IF NOT EXISTS sign_by_pair ON sign_requests(pair_id, status);
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
PRAGMA user_version = 1;
";

/// Opens (and migrates) the store: a file with WAL, or memory.
pub fn open(path: Option<&Path>) -> Result<Connection, OctaneSimError> {
    let conn = match path {
        Some(p) => {
            let c = Connection::open(p)?;
            c.pragma_update(None, "journal_mode", "WAL")?;
            c
        }
        None => Connection::open_in_memory()?,
    };
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn api_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn is_origin(o: &str) -> bool {
    url::Url::parse(o).ok().map(|u| u.scheme() == "https" && u.origin().ascii_serialization() == o).unwrap_or(false)
}

/// Registers (or replaces) an SP.
pub fn register_sp(conn: &mut Connection, sp: &SpRegistration) -> Result<(), OctaneSimError> {
    if sp.api_key.len() < 16 {
        return Err(OctaneSimError::BadRegistration("API key shorter than 16 chars".into()));
    }
    if let Some(bad) = sp.profile.allowed_return_origins.iter().find(|o| !is_origin(o)) {
        return Err(OctaneSimError::BadRegistration(format!("`{bad}` is not an https origin (https://host)")));
    }
    let profile = serde_json::to_string(&sp.profile).map_err(|e| OctaneSimError::BadRegistration(e.to_string()))?;
    let chains =
        serde_json::to_string(&sp.supported_chains).map_err(|e| OctaneSimError::BadRegistration(e.to_string()))?;
    conn.execute(
        "INSERT INTO sps (sp_id, api_key_hash, profile_json, chains_json) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(sp_id) DO UPDATE SET api_key_hash = excluded.api_key_hash,
             profile_json = excluded.profile_json, chains_json = excluded.chains_json",
        params![sp.profile.sp_id, api_key_hash(&sp.api_key), profile, chains],
    )
    .map_err(|e| OctaneSimError::BadRegistration(e.to_string()))?;
    Ok(())
}

/// An authenticated SP.
#[derive(Debug, Clone)]
pub struct SpRecord {
    pub profile: SpProfile,
    pub chains: Vec<ChainId>,
}

fn json<T: serde::de::DeserializeOwned>(s: &str) -> R<T> {
    serde_json::from_str(s).map_err(|e| {
        tracing::error!(error = %e, "corrupt JSON in octane simulator store");
        ApiError::new(ErrorCode::Internal, "corrupt store")
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> R<String> {
    serde_json::to_string(v).map_err(|_| ApiError::new(ErrorCode::Internal, "encode error"))
}

/// Finds the SP owning a bearer API key.
pub fn sp_by_api_key(conn: &Connection, key: &str) -> R<Option<SpRecord>> {
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT profile_json, chains_json FROM sps WHERE api_key_hash = ?1",
            params![api_key_hash(key)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Ok(None),
        Some((p, c)) => Ok(Some(SpRecord { profile: json(&p)?, chains: json(&c)? })),
    }
}

fn sp_by_id(conn: &Connection, sp_id: &str) -> R<SpRecord> {
    let (p, c): (String, String) =
        conn.query_row("SELECT profile_json, chains_json FROM sps WHERE sp_id = ?1", params![sp_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(SpRecord { profile: json(&p)?, chains: json(&c)? })
}

fn code_mac(key: &[u8; 32], session_id: &str, code: &str) -> R<Vec<u8>> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| ApiError::new(ErrorCode::Internal, "mac key"))?;
    mac.update(session_id.as_bytes());
    mac.update(&[0]);
    mac.update(code.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

fn parse_session_status(s: &str) -> R<SessionStatus> {
    Ok(match s {
        "open" => SessionStatus::Open,
        "code_verified" => SessionStatus::CodeVerified,
        "paired" => SessionStatus::Paired,
        "rejected" => SessionStatus::Rejected,
        "locked" => SessionStatus::Locked,
        "expired" => SessionStatus::Expired,
        _ => return Err(ApiError::new(ErrorCode::Internal, "corrupt session status")),
    })
}

fn key_hex(k: &Key32) -> String {
    k.to_hex()
}

/// Creates a pair session for `sp`.
pub fn create_session(
    conn: &mut Connection,
    octane_key: &SigningKey,
    code_key: &[u8; 32],
    link_host: &str,
    sp: &SpRecord,
    req: CreateSessionRequest,
    now: u64,
) -> R<CreateSessionResponse> {
    if req.sp_user_ref.chars().count() > 128 || req.sp_user_ref.chars().any(char::is_control) {
        return Err(ApiError::bad("sp_user_ref must be at most 128 characters, no control characters"));
    }
    if req.chains.is_empty() || req.chains.len() > 16 {
        return Err(ApiError::new(ErrorCode::UnsupportedChain, "ask for 1 to 16 chains"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &req.chains {
        if !seen.insert(c.clone()) {
            return Err(ApiError::new(ErrorCode::UnsupportedChain, format!("{c} requested twice")));
        }
        if !sp.chains.contains(c) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedChain,
                format!("{c} is not among this SP's registered chains"),
            ));
        }
    }
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_SESSION_TTL_SECS);
    if ttl == 0 || ttl > MAX_TTL_SECS {
        return Err(ApiError::new(ErrorCode::InvalidTtl, format!("ttl_secs must be between 1 and {MAX_TTL_SECS}")));
    }
    let return_url = match &req.return_url {
        None => None,
        Some(text) => {
            let url =
                sunstorm_core::return_url::check_return_url(text, &sp.profile.allowed_return_origins).map_err(|e| {
                    ApiError::new(ErrorCode::ReturnUrlNotAllowed, format!("return_url refused ({}): {e}", e.code()))
                })?;
            Some(url.to_string())
        }
    };

    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    let session_id = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, id);
    // Uniform over 000000..=999999 (rand's range sampling rejects the biased tail).
    let code_num: u32 = OsRng.gen_range(0..1_000_000);
    let code = zeroize::Zeroizing::new(format!("{code_num:06}"));
    let vcode = ValidationCode::from_ascii_digits(&code)
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "code generation"))?;
    let expires_at = now.saturating_add(ttl);
    let details = PairSessionDetails {
        v: STATEMENT_VERSION,
        session_id: session_id.clone(),
        sp: sp.profile.clone(),
        sp_user_ref: req.sp_user_ref.clone(),
        requested_chains: req.chains.clone(),
        return_url: return_url.clone(),
        created_at: now,
        expires_at,
    };
    let env = SignedEnvelope::seal(Domain::OctaneSession, octane_key, &details)
        .map_err(|_| ApiError::new(ErrorCode::Internal, "cannot sign session"))?;
    conn.execute(
        "INSERT INTO sessions (session_id, sp_id, details_body, details_sig, chains_json,
            return_url, code_mac, created_at, expires_at, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'open')",
        params![
            session_id,
            sp.profile.sp_id,
            env.body,
            env.sig,
            to_json(&req.chains)?,
            return_url,
            code_mac(code_key, &session_id, &code)?,
            now as i64,
            expires_at as i64,
        ],
    )?;
    let link = PairIntent { session_id: session_id.clone(), code: None }.render(link_host);
    let link_with_code = PairIntent { session_id: session_id.clone(), code: Some(vcode) }.render(link_host);
    tracing::info!(session = %short(&session_id), sp = %sp.profile.sp_id, ttl, "pair session created");
    Ok(CreateSessionResponse {
        session_id,
        validation_code: code.to_string(),
        link,
        link_with_code,
        created_at: now,
        expires_at,
    })
}

/// First characters of an id, for logs.
pub fn short(id: &str) -> String {
    id.chars().take(6).collect()
}

#[derive(Debug, Clone)]
struct SessionRow {
    session_id: String,
    sp_id: String,
    details: SignedEnvelope,
    chains: Vec<ChainId>,
    return_url: Option<String>,
    code_mac: Vec<u8>,
    expires_at: u64,
    wrong_attempts: u32,
    status: SessionStatus,
    claimed_by: Option<String>,
    pair_id: Option<String>,
    reject_reason: Option<String>,
}

impl SessionRow {
    /// The status with expiry applied.
    fn effective(&self, now: u64) -> SessionStatus {
        match self.status {
            SessionStatus::Open | SessionStatus::CodeVerified if now >= self.expires_at => SessionStatus::Expired,
            s => s,
        }
    }
    fn attempts_left(&self) -> u32 {
        MAX_CODE_ATTEMPTS.saturating_sub(self.wrong_attempts)
    }
}

fn load_session(conn: &Connection, id: &str) -> R<Option<SessionRow>> {
    let row = conn
        .query_row(
            "SELECT session_id, sp_id, details_body, details_sig, chains_json, return_url,
                code_mac, expires_at, wrong_attempts, status, claimed_by, pair_id, reject_reason
             FROM sessions WHERE session_id = ?1",
            params![id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Vec<u8>>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, Option<String>>(12)?,
                ))
            },
        )
        .optional()?;
    let Some(t) = row else { return Ok(None) };
    Ok(Some(SessionRow {
        session_id: t.0,
        sp_id: t.1,
        details: SignedEnvelope { body: t.2, sig: t.3 },
        chains: json(&t.4)?,
        return_url: t.5,
        code_mac: t.6,
        expires_at: u64::try_from(t.7).unwrap_or(0),
        wrong_attempts: u32::try_from(t.8).unwrap_or(MAX_CODE_ATTEMPTS),
        status: parse_session_status(&t.9)?,
        claimed_by: t.10,
        pair_id: t.11,
        reject_reason: t.12,
    }))
}

fn require_session(conn: &Connection, id: &str) -> R<SessionRow> {
    load_session(conn, id)?.ok_or_else(|| ApiError::not_found("pair session"))
}

/// A session is about one appliance once that appliance's app verified its code.
fn check_claim(s: &SessionRow, appliance: &Key32) -> R<()> {
    match &s.claimed_by {
        Some(c) if *c != key_hex(appliance) => {
            Err(ApiError::new(ErrorCode::Forbidden, "this session is being paired by another appliance"))
        }
        _ => Ok(()),
    }
}

fn status_error(status: SessionStatus) -> Option<ApiError> {
    match status {
        SessionStatus::Expired => Some(ApiError::new(ErrorCode::SessionExpired, "the pair session has expired")),
        SessionStatus::Locked => Some(ApiError {
            code: ErrorCode::SessionLocked,
            message: "too many wrong codes: the pair session is locked".into(),
            attempts_left: Some(0),
        }),
        SessionStatus::Paired | SessionStatus::Rejected => {
            Some(ApiError::new(ErrorCode::SessionUsed, "the pair session was already used"))
        }
        SessionStatus::Open | SessionStatus::CodeVerified => None,
    }
}

/// The SP's view of a session's outcome; `None` while pending.
pub fn pair_result(conn: &Connection, sp_id: &str, session_id: &str, now: u64) -> R<Option<PairResult>> {
    let s = require_session(conn, session_id)?;
    if s.sp_id != sp_id {
        return Err(ApiError::not_found("pair session"));
    }
    Ok(match s.effective(now) {
        SessionStatus::Open | SessionStatus::CodeVerified => None,
        SessionStatus::Expired => Some(PairResult::Expired),
        SessionStatus::Locked => Some(PairResult::Locked),
        SessionStatus::Rejected => Some(PairResult::Rejected { reason: s.reject_reason }),
        SessionStatus::Paired => {
            let pair_id = s.pair_id.as_deref().unwrap_or_default();
            let p = require_pair(conn, pair_id)?;
            Some(PairResult::Paired {
                pair_id: p.pair_id,
                bindings: p.bindings,
                attestation: p.attestation,
                appliance_identity: p.appliance,
            })
        }
    })
}

/// The app's view of a session (octane-signed details).
pub fn app_session(conn: &Connection, appliance: &Key32, id: &str, now: u64) -> R<AppSessionResponse> {
    let s = require_session(conn, id)?;
    check_claim(&s, appliance)?;
    let status = s.effective(now);
    if matches!(status, SessionStatus::Expired | SessionStatus::Locked) {
        if let Some(e) = status_error(status) {
            return Err(e);
        }
    }
    Ok(AppSessionResponse { details: s.details.clone(), status, attempts_left: s.attempts_left() })
}

/// Checks a validation code: the attempt is counted first (in the same immediate
/// transaction), then compared in constant time; a right code refunds its attempt.
pub fn check_code(
    conn: &mut Connection,
    code_key: &[u8; 32],
    appliance: &Key32,
    id: &str,
    code: &str,
    now: u64,
) -> R<CheckCodeResponse> {
    if ValidationCode::from_ascii_digits(code).is_none() {
        return Err(ApiError::bad("code must be exactly six ASCII digits"));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let s = require_session(&tx, id)?;
    check_claim(&s, appliance)?;
    let status = s.effective(now);
    if let Some(e) = status_error(status) {
        if status == SessionStatus::Expired {
            tx.execute("UPDATE sessions SET status = 'expired' WHERE session_id = ?1", params![id])?;
            tx.commit()?;
        }
        return Err(e);
    }
    let counted = tx.execute(
        "UPDATE sessions SET wrong_attempts = wrong_attempts + 1
         WHERE session_id = ?1 AND wrong_attempts < ?2",
        params![id, MAX_CODE_ATTEMPTS],
    )?;
    if counted == 0 {
        tx.execute("UPDATE sessions SET status = 'locked' WHERE session_id = ?1", params![id])?;
        tx.commit()?;
        return Err(status_error(SessionStatus::Locked).unwrap_or_else(|| ApiError::bad("locked")));
    }
    let attempts_now = s.wrong_attempts.saturating_add(1);
    let given = code_mac(code_key, id, code)?;
    if bool::from(given.ct_eq(&s.code_mac)) {
        tx.execute(
            "UPDATE sessions SET wrong_attempts = wrong_attempts - 1, status = 'code_verified',
                claimed_by = ?2 WHERE session_id = ?1",
            params![id, key_hex(appliance)],
        )?;
        tx.commit()?;
        tracing::info!(session = %short(id), "validation code verified");
        Ok(CheckCodeResponse { verified: true, status: SessionStatus::CodeVerified })
    } else {
        let left = MAX_CODE_ATTEMPTS.saturating_sub(attempts_now);
        if left == 0 {
            tx.execute("UPDATE sessions SET status = 'locked' WHERE session_id = ?1", params![id])?;
        }
        tx.commit()?;
        tracing::info!(session = %short(id), attempts_left = left, "validation code rejected");
        Err(ApiError {
            code: ErrorCode::CodeRejected,
            message: format!("wrong validation code; {left} attempts left"),
            attempts_left: Some(left),
        })
    }
}

struct PairRow {
    pair_id: Uuid,
    sp_id: String,
    appliance: Key32,
    sp_public_key: Key32,
    bindings: Vec<AccountId>,
    attestation: SignedEnvelope,
    status: PairStatus,
    created_at: u64,
    revoked_at: Option<u64>,
    revoked_by: Option<RevokedBy>,
}

fn parse_key(s: &str) -> R<Key32> {
    Key32::from_hex(s).ok_or_else(|| ApiError::new(ErrorCode::Internal, "corrupt key"))
}

const PAIR_COLS: &str = "pair_id, session_id, sp_id, appliance, sp_public_key, bindings_json,
    att_body, att_sig, status, created_at, revoked_at, revoked_by";

type PairTuple =
    (String, String, String, String, String, String, Vec<u8>, Vec<u8>, String, i64, Option<i64>, Option<String>);

fn pair_tuple(r: &rusqlite::Row<'_>) -> rusqlite::Result<PairTuple> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        r.get(11)?,
    ))
}

fn pair_from(t: PairTuple) -> R<PairRow> {
    Ok(PairRow {
        pair_id: Uuid::parse_str(&t.0).map_err(|_| ApiError::new(ErrorCode::Internal, "corrupt id"))?,
        sp_id: t.2,
        appliance: parse_key(&t.3)?,
        sp_public_key: parse_key(&t.4)?,
        bindings: json(&t.5)?,
        attestation: SignedEnvelope { body: t.6, sig: t.7 },
        status: if t.8 == "revoked" { PairStatus::Revoked } else { PairStatus::Active },
        created_at: u64::try_from(t.9).unwrap_or(0),
        revoked_at: t.10.and_then(|v| u64::try_from(v).ok()),
        revoked_by: t.11.map(|s| if s == "sp" { RevokedBy::Sp } else { RevokedBy::Appliance }),
    })
}

fn load_pair(conn: &Connection, pair_id: &str) -> R<Option<PairRow>> {
    let t = conn
        .query_row(&format!("SELECT {PAIR_COLS} FROM pairs WHERE pair_id = ?1"), params![pair_id], pair_tuple)
        .optional()?;
    t.map(pair_from).transpose()
}

fn require_pair(conn: &Connection, pair_id: &str) -> R<PairRow> {
    load_pair(conn, pair_id)?.ok_or_else(|| ApiError::not_found("pair"))
}

fn approve_response(p: &PairRow, return_url: Option<String>) -> ApproveResponse {
    ApproveResponse { pair_id: p.pair_id, bindings: p.bindings.clone(), status: p.status, return_url }
}

/// Accepts the appliance's pair attestation for a session whose code this appliance's app
/// verified. Posting the same attestation again answers the same pair.
pub fn approve(
    conn: &mut Connection,
    code_key: &[u8; 32],
    appliance: &Key32,
    id: &str,
    attestation: &SignedEnvelope,
    now: u64,
) -> R<ApproveResponse> {
    let att: PairAttestation = attestation
        .peek()
        .map_err(|e| ApiError::new(ErrorCode::AttestationInvalid, format!("attestation body: {e}")))?;
    if att.appliance_identity != *appliance {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the attestation is from another appliance than the one that endorsed this app",
        ));
    }
    attestation
        .verify(Domain::PairAttestation, att.appliance_identity.as_bytes())
        .map_err(|_| ApiError::new(ErrorCode::AttestationInvalid, "attestation signature does not verify"))?;
    if att.v != STATEMENT_VERSION {
        return Err(ApiError::new(ErrorCode::AttestationInvalid, "unknown attestation version"));
    }

    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let s = require_session(&tx, id)?;
    check_claim(&s, appliance)?;
    let status = s.effective(now);
    if status == SessionStatus::Paired {
        let p = require_pair(&tx, s.pair_id.as_deref().unwrap_or_default())?;
        if p.attestation == *attestation {
            return Ok(approve_response(&p, s.return_url));
        }
        return Err(ApiError::new(ErrorCode::SessionUsed, "the pair session was already approved"));
    }
    if let Some(e) = status_error(status) {
        return Err(e);
    }
    if status != SessionStatus::CodeVerified || s.claimed_by.is_none() {
        return Err(ApiError::new(
            ErrorCode::CodeNotVerified,
            "the validation code has not been verified for this session",
        ));
    }

    let sp = sp_by_id(&tx, &s.sp_id)?;
    let mismatch = |what: &str| {
        ApiError::new(ErrorCode::AttestationMismatch, format!("attestation {what} does not match the session"))
    };
    if att.session_id != s.session_id {
        return Err(mismatch("session_id"));
    }
    let given = code_mac(code_key, id, &att.validation_code)?;
    if !bool::from(given.ct_eq(&s.code_mac)) {
        return Err(mismatch("validation_code"));
    }
    if att.sp_id != sp.profile.sp_id {
        return Err(mismatch("sp_id"));
    }
    if att.sp_public_key != sp.profile.public_key {
        return Err(mismatch("sp_public_key"));
    }
    if att.bindings.is_empty() {
        return Err(mismatch("bindings (empty)"));
    }
    if att.bindings.windows(2).any(|w| matches!(w, [a, b] if a >= b)) {
        return Err(mismatch("bindings (not sorted and unique)"));
    }
    if let Some(b) = att.bindings.iter().find(|b| !s.chains.contains(&b.chain)) {
        return Err(mismatch(&format!("binding {b} (chain not requested)")));
    }
    if load_pair(&tx, &att.pair_id.to_string())?.is_some() {
        return Err(ApiError::new(ErrorCode::Conflict, "this pair_id is already in use"));
    }

    tx.execute(
        "INSERT INTO pairs (pair_id, session_id, sp_id, appliance, sp_public_key, bindings_json,
            att_body, att_sig, status, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9)",
        params![
            att.pair_id.to_string(),
            s.session_id,
            s.sp_id,
            key_hex(appliance),
            key_hex(&att.sp_public_key),
            to_json(&att.bindings)?,
            attestation.body,
            attestation.sig,
            now as i64,
        ],
    )?;
    tx.execute(
        "UPDATE sessions SET status = 'paired', pair_id = ?2 WHERE session_id = ?1",
        params![id, att.pair_id.to_string()],
    )?;
    tx.commit()?;
    tracing::info!(session = %short(id), pair = %att.pair_id, bindings = att.bindings.len(), "paired");
    Ok(ApproveResponse {
        pair_id: att.pair_id,
        bindings: att.bindings,
        status: PairStatus::Active,
        return_url: s.return_url,
    })
}

/// The app rejects a session whose code it verified (a link alone cannot kill a session).
pub fn reject_session(
    conn: &mut Connection,
    appliance: &Key32,
    id: &str,
    reason: Option<String>,
    now: u64,
) -> R<RejectSessionResponse> {
    if let Some(r) = &reason {
        if r.chars().count() > 256 || r.chars().any(char::is_control) {
            return Err(ApiError::bad("reason must be at most 256 characters, no control characters"));
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let s = require_session(&tx, id)?;
    check_claim(&s, appliance)?;
    let status = s.effective(now);
    if status == SessionStatus::Rejected {
        return Ok(RejectSessionResponse { status });
    }
    if let Some(e) = status_error(status) {
        return Err(e);
    }
    if s.claimed_by.is_none() {
        return Err(ApiError::new(
            ErrorCode::CodeNotVerified,
            "verify the validation code before rejecting the session",
        ));
    }
    tx.execute(
        "UPDATE sessions SET status = 'rejected', reject_reason = ?2 WHERE session_id = ?1",
        params![id, reason],
    )?;
    tx.commit()?;
    tracing::info!(session = %short(id), "pair session rejected");
    Ok(RejectSessionResponse { status: SessionStatus::Rejected })
}

/// The pairs of one appliance, newest first.
pub fn app_pairs(conn: &Connection, appliance: &Key32) -> R<Vec<AppPairInfo>> {
    let mut stmt =
        conn.prepare(&format!("SELECT {PAIR_COLS} FROM pairs WHERE appliance = ?1 ORDER BY created_at DESC, pair_id"))?;
    let rows = stmt.query_map(params![key_hex(appliance)], pair_tuple)?.collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(rows.len());
    for t in rows {
        let p = pair_from(t)?;
        let sp = sp_by_id(conn, &p.sp_id)?;
        out.push(AppPairInfo {
            pair_id: p.pair_id,
            sp: sp.profile,
            bindings: p.bindings,
            status: p.status,
            created_at: p.created_at,
            revoked_at: p.revoked_at,
            revoked_by: p.revoked_by,
        });
    }
    Ok(out)
}

fn revoke_response(p: &PairRow) -> RevokeResponse {
    RevokeResponse {
        pair_id: p.pair_id,
        status: PairStatus::Revoked,
        revoked_by: p.revoked_by.unwrap_or(RevokedBy::Sp),
        revoked_at: p.revoked_at.unwrap_or(0),
    }
}

fn mark_revoked(
    tx: &rusqlite::Transaction<'_>,
    pair_id: &Uuid,
    by: RevokedBy,
    revocation: Option<&SignedEnvelope>,
    now: u64,
) -> R<()> {
    tx.execute(
        "UPDATE pairs SET status = 'revoked', revoked_at = ?2, revoked_by = ?3,
            revocation_body = ?4, revocation_sig = ?5 WHERE pair_id = ?1",
        params![
            pair_id.to_string(),
            now as i64,
            if by == RevokedBy::Sp { "sp" } else { "appliance" },
            revocation.map(|r| r.body.clone()),
            revocation.map(|r| r.sig.clone()),
        ],
    )?;
    tx.execute(
        "UPDATE sign_requests SET status = 'rejected', reason_code = 'pair_revoked',
            message = 'the pair was revoked' WHERE pair_id = ?1 AND status = 'pending'",
        params![pair_id.to_string()],
    )?;
    Ok(())
}

/// Revokes the active pair `p` (`pair_id`) on `by`'s behalf and commits; a pair already
/// revoked is answered as it was revoked (idempotent, nothing written).
fn revoke_if_active(
    tx: rusqlite::Transaction<'_>,
    pair_id: &Uuid,
    p: &PairRow,
    by: RevokedBy,
    revocation: Option<&SignedEnvelope>,
    now: u64,
) -> R<RevokeResponse> {
    if p.status != PairStatus::Active {
        return Ok(revoke_response(p));
    }
    mark_revoked(&tx, pair_id, by, revocation, now)?;
    tx.commit()?;
    let who = if by == RevokedBy::Sp { "the SP" } else { "the appliance" };
    tracing::info!(pair = %pair_id, "pair revoked by {who}");
    Ok(RevokeResponse { pair_id: *pair_id, status: PairStatus::Revoked, revoked_by: by, revoked_at: now })
}

/// The SP revokes one of its pairs (idempotent).
pub fn sp_revoke(conn: &mut Connection, sp_id: &str, pair_id: &Uuid, now: u64) -> R<RevokeResponse> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let p = require_pair(&tx, &pair_id.to_string())?;
    if p.sp_id != sp_id {
        return Err(ApiError::not_found("pair"));
    }
    revoke_if_active(tx, pair_id, &p, RevokedBy::Sp, None, now)
}

/// The app posts the appliance's signed revocation (idempotent).
pub fn app_revoke(
    conn: &mut Connection,
    appliance: &Key32,
    pair_id: &Uuid,
    revocation: &SignedEnvelope,
    now: u64,
) -> R<RevokeResponse> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let p = require_pair(&tx, &pair_id.to_string())?;
    if p.appliance != *appliance {
        return Err(ApiError::new(ErrorCode::Forbidden, "this pair belongs to another appliance"));
    }
    let r: PairRevocation = revocation
        .open(Domain::PairRevocation, p.appliance.as_bytes())
        .map_err(|e| ApiError::new(ErrorCode::RevocationInvalid, format!("revocation: {e}")))?;
    if r.v != STATEMENT_VERSION || r.pair_id != *pair_id || r.appliance_identity != p.appliance {
        return Err(ApiError::new(ErrorCode::RevocationInvalid, "the revocation names another pair or appliance"));
    }
    revoke_if_active(tx, pair_id, &p, RevokedBy::Appliance, Some(revocation), now)
}

/// Checks, countersigns and queues an SP's sign request.
pub fn submit_sign(
    conn: &mut Connection,
    octane_key: &SigningKey,
    sp: &SpRecord,
    pair_id: &Uuid,
    request: &SignedEnvelope,
    now: u64,
) -> R<SpSignAccepted> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let p = require_pair(&tx, &pair_id.to_string())?;
    if p.sp_id != sp.profile.sp_id {
        return Err(ApiError::not_found("pair"));
    }
    // Verified with the SP key pinned at pair time, before anything in the body is believed.
    let req: SignRequest = request
        .open(Domain::SpSignRequest, p.sp_public_key.as_bytes())
        .map_err(|e| ApiError::new(ErrorCode::BadSignature, format!("SP signature: {e}")))?;
    if req.v != STATEMENT_VERSION {
        return Err(ApiError::bad("unknown sign request version"));
    }
    if req.pair_id != *pair_id {
        return Err(ApiError::bad("pair_id differs from the signed request's pair_id"));
    }
    if p.status == PairStatus::Revoked {
        return Err(ApiError::new(ErrorCode::PairRevoked, "the pair is revoked"));
    }
    if req.account.chain != req.chain {
        return Err(ApiError::new(ErrorCode::ChainMismatch, "account is not on the request's chain"));
    }
    if !p.bindings.contains(&req.account) {
        return Err(ApiError::new(ErrorCode::AccountNotBound, "the account is not bound to this pair"));
    }
    if req.payload.is_empty() || req.payload.len() > MAX_PAYLOAD_LEN {
        return Err(ApiError::bad(format!("payload must be 1 to {MAX_PAYLOAD_LEN} bytes")));
    }
    sign_validity(&req, now)?;
    let exists: Option<i64> = tx
        .query_row("SELECT 1 FROM sign_requests WHERE request_id = ?1", params![req.request_id.to_string()], |r| {
            r.get(0)
        })
        .optional()?;
    if exists.is_some() {
        return Err(ApiError::new(ErrorCode::DuplicateRequest, "this request_id was already used"));
    }
    let octane_sig = envelope::sign_bytes(Domain::OctaneSignRequest, octane_key, &request.body).to_vec();
    tx.execute(
        "INSERT INTO sign_requests (request_id, pair_id, account, body, sp_sig, octane_sig,
            received_at, expires_at, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending')",
        params![
            req.request_id.to_string(),
            pair_id.to_string(),
            req.account.to_string(),
            request.body,
            request.sig,
            octane_sig,
            now as i64,
            req.expires_at as i64,
        ],
    )?;
    tx.commit()?;
    tracing::info!(request = %req.request_id, pair = %pair_id, kind = ?req.kind, "sign request queued");
    Ok(SpSignAccepted {
        request_id: req.request_id,
        countersigned: CountersignedRequest { body: request.body.clone(), sp_sig: request.sig.clone(), octane_sig },
        expires_at: req.expires_at,
    })
}

struct SignRow {
    pair_id: String,
    account: String,
    body: Vec<u8>,
    sp_sig: Vec<u8>,
    octane_sig: Vec<u8>,
    expires_at: u64,
    status: String,
    appliance_sig: Option<Vec<u8>>,
    reason_code: Option<String>,
    message: Option<String>,
}

fn load_sign(conn: &Connection, request_id: &Uuid) -> R<SignRow> {
    conn.query_row(
        "SELECT pair_id, account, body, sp_sig, octane_sig, expires_at, status, appliance_sig,
            reason_code, message FROM sign_requests WHERE request_id = ?1",
        params![request_id.to_string()],
        |r| {
            Ok(SignRow {
                pair_id: r.get(0)?,
                account: r.get(1)?,
                body: r.get(2)?,
                sp_sig: r.get(3)?,
                octane_sig: r.get(4)?,
                expires_at: u64::try_from(r.get::<_, i64>(5)?).unwrap_or(0),
                status: r.get(6)?,
                appliance_sig: r.get(7)?,
                reason_code: r.get(8)?,
                message: r.get(9)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| ApiError::not_found("sign request"))
}

fn sign_result_of(row: &SignRow, p: &PairRow, octane_public_key: &Key32, now: u64) -> R<SignResult> {
    Ok(match row.status.as_str() {
        "pending" if now >= row.expires_at => SignResult::Expired,
        "pending" => SignResult::Pending,
        "signed" => SignResult::Signed {
            bundle: SignatureBundle {
                body: row.body.clone(),
                sp_sig: row.sp_sig.clone(),
                octane_sig: row.octane_sig.clone(),
                appliance_sig: row.appliance_sig.clone().unwrap_or_default(),
                sp_public_key: p.sp_public_key,
                octane_public_key: *octane_public_key,
                account: row.account.parse().map_err(|_| ApiError::new(ErrorCode::Internal, "corrupt account"))?,
            },
        },
        "rejected" => SignResult::Rejected {
            reason_code: row.reason_code.clone().unwrap_or_default(),
            message: row.message.clone().unwrap_or_default(),
        },
        _ => SignResult::Expired,
    })
}

/// The SP's view of a sign request; `None` while pending.
pub fn sign_result(
    conn: &Connection,
    sp_id: &str,
    octane_public_key: &Key32,
    request_id: &Uuid,
    now: u64,
) -> R<Option<SignResult>> {
    let row = load_sign(conn, request_id)?;
    let p = require_pair(conn, &row.pair_id)?;
    if p.sp_id != sp_id {
        return Err(ApiError::not_found("sign request"));
    }
    let r = sign_result_of(&row, &p, octane_public_key, now)?;
    Ok((r != SignResult::Pending).then_some(r))
}

/// Pending, unexpired requests for one appliance's active pairs, oldest first.
pub fn pending_for(conn: &Connection, appliance: &Key32, now: u64) -> R<Vec<PendingSignRequest>> {
    let mut stmt = conn.prepare(
        "SELECT s.request_id, s.pair_id, s.body, s.sp_sig, s.octane_sig
         FROM sign_requests s JOIN pairs p ON p.pair_id = s.pair_id
         WHERE p.appliance = ?1 AND p.status = 'active' AND s.status = 'pending'
           AND s.expires_at > ?2
         ORDER BY s.received_at, s.request_id LIMIT 64",
    )?;
    let rows = stmt
        .query_map(params![key_hex(appliance), now as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(rid, pid, body, sp_sig, octane_sig)| {
            let bad = |_| ApiError::new(ErrorCode::Internal, "corrupt id");
            Ok(PendingSignRequest {
                request_id: Uuid::parse_str(&rid).map_err(bad)?,
                pair_id: Uuid::parse_str(&pid).map_err(bad)?,
                request: CountersignedRequest { body, sp_sig, octane_sig },
            })
        })
        .collect()
}

/// What the app answers for a sign request.
pub enum AppAnswer {
    /// The appliance's signature.
    Signature(Vec<u8>),
    /// A refusal.
    Reject { reason_code: String, message: String },
}

/// Records the app's answer for a pending request of its appliance (idempotent for the same
/// answer).
pub fn answer_sign(
    conn: &mut Connection,
    appliance: &Key32,
    octane_public_key: &Key32,
    request_id: &Uuid,
    answer: AppAnswer,
    now: u64,
) -> R<SignResultAck> {
    match &answer {
        AppAnswer::Signature(sig) => {
            if sig.len() != 64 && sig.len() != 65 {
                return Err(ApiError::new(
                    ErrorCode::SignatureInvalid,
                    "signature must be 65 bytes (EVM r||s||v) or 64 bytes (Ed25519)",
                ));
            }
        }
        AppAnswer::Reject { reason_code, message } => {
            let ok = (1..=64).contains(&reason_code.len())
                && reason_code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok || message.chars().count() > 512 {
                return Err(ApiError::bad(
                    "reason_code must be 1-64 snake_case characters and message at most 512 characters",
                ));
            }
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row = load_sign(&tx, request_id)?;
    let p = require_pair(&tx, &row.pair_id)?;
    if p.appliance != *appliance {
        return Err(ApiError::new(ErrorCode::Forbidden, "this request is for another appliance"));
    }
    let current = sign_result_of(&row, &p, octane_public_key, now)?;
    if current != SignResult::Pending {
        let same = match (&current, &answer) {
            (SignResult::Signed { bundle }, AppAnswer::Signature(s)) => bundle.appliance_sig == *s,
            (SignResult::Rejected { reason_code, message }, AppAnswer::Reject { reason_code: c, message: m }) => {
                reason_code == c && message == m
            }
            _ => false,
        };
        if same {
            return Ok(SignResultAck { request_id: *request_id, result: current });
        }
        if p.status == PairStatus::Revoked {
            return Err(ApiError::new(ErrorCode::PairRevoked, "the pair is revoked"));
        }
        return Err(ApiError::new(ErrorCode::RequestNotPending, "the request is no longer pending"));
    }
    let account: AccountId = row.account.parse().map_err(|_| ApiError::new(ErrorCode::Internal, "corrupt account"))?;
    match answer {
        AppAnswer::Signature(sig) => {
            // Octane checks the chain signature before the SP sees it (contract D's verifier).
            let req: SignRequest = sunstorm_core::cbor::from_canonical_slice(&row.body)
                .map_err(|_| ApiError::new(ErrorCode::Internal, "corrupt stored request"))?;
            let invalid = |e: sunstorm_core::payload::PayloadError| {
                ApiError::new(ErrorCode::SignatureInvalid, format!("appliance signature refused: {e}"))
            };
            let target = sunstorm_core::payload::signing_target(req.kind, &req.payload, &req.chain).map_err(invalid)?;
            sunstorm_core::payload::verify_appliance_signature(&target, &sig, &account).map_err(invalid)?;
            tx.execute(
                "UPDATE sign_requests SET status = 'signed', appliance_sig = ?2 WHERE request_id = ?1",
                params![request_id.to_string(), sig],
            )?;
        }
        AppAnswer::Reject { reason_code, message } => {
            tx.execute(
                "UPDATE sign_requests SET status = 'rejected', reason_code = ?2, message = ?3
                 WHERE request_id = ?1",
                params![request_id.to_string(), reason_code, message],
            )?;
        }
    }
    let row = load_sign(&tx, request_id)?;
    let result = sign_result_of(&row, &p, octane_public_key, now)?;
    tx.commit()?;
    tracing::info!(request = %request_id, "sign request answered");
    Ok(SignResultAck { request_id: *request_id, result })
}

/// Records an app-request nonce; false when it was seen before. Prunes old nonces.
pub fn fresh_nonce(conn: &Connection, nonce: &str, now: u64, window: u64) -> R<bool> {
    conn.execute(
        "DELETE FROM nonces WHERE seen_at < ?1",
        params![now.saturating_sub(window.saturating_mul(2)) as i64],
    )?;
    let n =
        conn.execute("INSERT OR IGNORE INTO nonces (nonce, seen_at) VALUES (?1, ?2)", params![nonce, now as i64])?;
    Ok(n == 1)
}
