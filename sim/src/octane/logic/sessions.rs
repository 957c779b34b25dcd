//! Pair sessions: creation by the SP, the validation code (attempts counted atomically,
//! compared in constant time), approval with the appliance's attestation, rejection, and
//! the SP's view of the outcome.

use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use rand::Rng;
use rand_core::{OsRng, RngCore};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::ChainId;
use sunstorm_core::code::ValidationCode;
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::link::PairIntent;
use sunstorm_core::model::{PairAttestation, PairSessionDetails, MAX_TTL_SECS, STATEMENT_VERSION};
use sunstorm_core::octane::api::{
    AppSessionResponse, ApproveResponse, CheckCodeResponse, CreateSessionRequest, CreateSessionResponse,
    OctaneErrorCode, OctanePairStatus, PairResult, RejectSessionResponse, SessionStatus, DEFAULT_SESSION_TTL_SECS,
    MAX_CODE_ATTEMPTS,
};

use super::db::{json, key_hex, short, to_json, ApiError, R};
use super::pairs::{approve_response, load_pair, require_pair};
use super::sps::{sp_by_id, SpRecord};

fn code_mac(key: &[u8; 32], session_id: &str, code: &str) -> R<Vec<u8>> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| ApiError::new(OctaneErrorCode::Internal, "mac key"))?;
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
        _ => return Err(ApiError::new(OctaneErrorCode::Internal, "corrupt session status")),
    })
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
        return Err(ApiError::new(OctaneErrorCode::UnsupportedChain, "ask for 1 to 16 chains"));
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &req.chains {
        if !seen.insert(c.clone()) {
            return Err(ApiError::new(OctaneErrorCode::UnsupportedChain, format!("{c} requested twice")));
        }
        if !sp.chains.contains(c) {
            return Err(ApiError::new(
                OctaneErrorCode::UnsupportedChain,
                format!("{c} is not among this SP's registered chains"),
            ));
        }
    }
    let ttl = req.ttl_secs.unwrap_or(DEFAULT_SESSION_TTL_SECS);
    if ttl == 0 || ttl > MAX_TTL_SECS {
        return Err(ApiError::new(
            OctaneErrorCode::InvalidTtl,
            format!("ttl_secs must be between 1 and {MAX_TTL_SECS}"),
        ));
    }
    let return_url = match &req.return_url {
        None => None,
        Some(text) => {
            let url =
                sunstorm_core::return_url::check_return_url(text, &sp.profile.allowed_return_origins).map_err(|e| {
                    ApiError::new(
                        OctaneErrorCode::ReturnUrlNotAllowed,
                        format!("return_url refused ({}): {e}", e.code()),
                    )
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
        .ok_or_else(|| ApiError::new(OctaneErrorCode::Internal, "code generation"))?;
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
        .map_err(|_| ApiError::new(OctaneErrorCode::Internal, "cannot sign session"))?;
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
            Err(ApiError::new(OctaneErrorCode::Forbidden, "this session is being paired by another appliance"))
        }
        _ => Ok(()),
    }
}

fn status_error(status: SessionStatus) -> Option<ApiError> {
    match status {
        SessionStatus::Expired => Some(ApiError::new(OctaneErrorCode::SessionExpired, "the pair session has expired")),
        SessionStatus::Locked => Some(ApiError {
            code: OctaneErrorCode::SessionLocked,
            message: "too many wrong codes: the pair session is locked".into(),
            attempts_left: Some(0),
        }),
        SessionStatus::Paired | SessionStatus::Rejected => {
            Some(ApiError::new(OctaneErrorCode::SessionUsed, "the pair session was already used"))
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
            code: OctaneErrorCode::CodeRejected,
            message: format!("wrong validation code; {left} attempts left"),
            attempts_left: Some(left),
        })
    }
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
        .map_err(|e| ApiError::new(OctaneErrorCode::AttestationInvalid, format!("attestation body: {e}")))?;
    if att.appliance_identity != *appliance {
        return Err(ApiError::new(
            OctaneErrorCode::Forbidden,
            "the attestation is from another appliance than the one that endorsed this app",
        ));
    }
    attestation
        .verify(Domain::PairAttestation, att.appliance_identity.as_bytes())
        .map_err(|_| ApiError::new(OctaneErrorCode::AttestationInvalid, "attestation signature does not verify"))?;
    if att.v != STATEMENT_VERSION {
        return Err(ApiError::new(OctaneErrorCode::AttestationInvalid, "unknown attestation version"));
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
        return Err(ApiError::new(OctaneErrorCode::SessionUsed, "the pair session was already approved"));
    }
    if let Some(e) = status_error(status) {
        return Err(e);
    }
    if status != SessionStatus::CodeVerified || s.claimed_by.is_none() {
        return Err(ApiError::new(
            OctaneErrorCode::CodeNotVerified,
            "the validation code has not been verified for this session",
        ));
    }

    let sp = sp_by_id(&tx, &s.sp_id)?;
    let mismatch = |what: &str| {
        ApiError::new(OctaneErrorCode::AttestationMismatch, format!("attestation {what} does not match the session"))
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
        return Err(ApiError::new(OctaneErrorCode::Conflict, "this pair_id is already in use"));
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
        status: OctanePairStatus::Active,
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
            OctaneErrorCode::CodeNotVerified,
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
