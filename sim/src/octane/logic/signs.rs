//! Sign requests: the SP's submission (checked against the pinned SP key, countersigned,
//! queued), the app's long-poll of pending requests, its answer (the appliance signature is
//! verified before the SP sees it) and the SP's view of the result.

use ed25519_dalek::SigningKey;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::AccountId;
use sunstorm_core::decode::DisplayDigest;
use sunstorm_core::envelope::{self, Domain, SignedEnvelope};
use sunstorm_core::model::{CountersignedRequest, SignRequest, MAX_TTL_SECS, STATEMENT_VERSION};
use sunstorm_core::octane::api::{
    OctaneErrorCode, OctanePairStatus, PendingSignRequest, SignResult, SignResultAck, SignatureBundle, SpSignAccepted,
};
use sunstorm_core::receipt::{DisplayProof, SignReceipt};
use uuid::Uuid;

use super::db::{key_hex, ApiError, R};
use super::pairs::{require_pair, PairRow};
use super::sps::SpRecord;

/// Longest sign payload octane accepts (bytes).
const MAX_PAYLOAD_LEN: usize = 128 * 1024;
/// How far ahead of octane's clock a sign request's `created_at` may be.
const CREATED_AT_SKEW_SECS: u64 = sunstorm_core::validity::DEFAULT_MAX_SKEW_SECS;

/// Octane's check of a sign request's times when the SP submits it: the one rule in core
/// ([`sunstorm_core::validity::check_validity`]), every failure answered `invalid_expiry`
/// with the reason.
pub(crate) fn sign_validity(req: &SignRequest, now: u64) -> Result<(), ApiError> {
    let skew = CREATED_AT_SKEW_SECS;
    sunstorm_core::validity::check_validity(req.created_at, req.expires_at, now, skew).map_err(|e| {
        ApiError::new(
            OctaneErrorCode::InvalidExpiry,
            format!("{}: {e} (a request lives 1 to {MAX_TTL_SECS} s, created at most {skew} s ahead)", e.code()),
        )
    })
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
        .map_err(|e| ApiError::new(OctaneErrorCode::BadSignature, format!("SP signature: {e}")))?;
    if req.v != STATEMENT_VERSION {
        return Err(ApiError::bad("unknown sign request version"));
    }
    if req.pair_id != *pair_id {
        return Err(ApiError::bad("pair_id differs from the signed request's pair_id"));
    }
    if p.status == OctanePairStatus::Revoked {
        return Err(ApiError::new(OctaneErrorCode::PairRevoked, "the pair is revoked"));
    }
    if req.account.chain != req.chain {
        return Err(ApiError::new(OctaneErrorCode::ChainMismatch, "account is not on the request's chain"));
    }
    if !p.bindings.contains(&req.account) {
        return Err(ApiError::new(OctaneErrorCode::AccountNotBound, "the account is not bound to this pair"));
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
        return Err(ApiError::new(OctaneErrorCode::DuplicateRequest, "this request_id was already used"));
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
    display_digest: Option<String>,
    receipt_body: Option<Vec<u8>>,
    receipt_sig: Option<Vec<u8>>,
}

fn load_sign(conn: &Connection, request_id: &Uuid) -> R<SignRow> {
    conn.query_row(
        "SELECT pair_id, account, body, sp_sig, octane_sig, expires_at, status, appliance_sig,
            reason_code, message, display_digest, receipt_body, receipt_sig
         FROM sign_requests WHERE request_id = ?1",
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
                display_digest: r.get(10)?,
                receipt_body: r.get(11)?,
                receipt_sig: r.get(12)?,
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
            // The display digest and the receipt go to the SP as the phone posted them.
            bundle: Box::new(SignatureBundle {
                display_digest: row.display_digest.as_deref().and_then(DisplayDigest::from_hex),
                receipt: match (&row.receipt_body, &row.receipt_sig) {
                    (Some(body), Some(sig)) => Some(SignedEnvelope { body: body.clone(), sig: sig.clone() }),
                    _ => None,
                },
                appliance_identity: Some(p.appliance),
                body: row.body.clone(),
                sp_sig: row.sp_sig.clone(),
                octane_sig: row.octane_sig.clone(),
                appliance_sig: row.appliance_sig.clone().unwrap_or_default(),
                sp_public_key: p.sp_public_key,
                octane_public_key: *octane_public_key,
                account: row
                    .account
                    .parse()
                    .map_err(|_| ApiError::new(OctaneErrorCode::Internal, "corrupt account"))?,
            }),
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
            let bad = |_| ApiError::new(OctaneErrorCode::Internal, "corrupt id");
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
    /// The appliance's signature, with the display digest and the appliance's receipt
    /// over it when the phone sent them.
    Signature {
        /// The chain signature.
        signature: Vec<u8>,
        /// The display digest and receipt.
        proof: Option<DisplayProof>,
    },
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
        AppAnswer::Signature { signature: sig, .. } => {
            if sig.len() != 64 && sig.len() != 65 {
                return Err(ApiError::new(
                    OctaneErrorCode::SignatureInvalid,
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
        return Err(ApiError::new(OctaneErrorCode::Forbidden, "this request is for another appliance"));
    }
    let current = sign_result_of(&row, &p, octane_public_key, now)?;
    if current != SignResult::Pending {
        let same = match (&current, &answer) {
            (SignResult::Signed { bundle }, AppAnswer::Signature { signature: s, .. }) => bundle.appliance_sig == *s,
            (SignResult::Rejected { reason_code, message }, AppAnswer::Reject { reason_code: c, message: m }) => {
                reason_code == c && message == m
            }
            _ => false,
        };
        if same {
            return Ok(SignResultAck { request_id: *request_id, result: current });
        }
        if p.status == OctanePairStatus::Revoked {
            return Err(ApiError::new(OctaneErrorCode::PairRevoked, "the pair is revoked"));
        }
        return Err(ApiError::new(OctaneErrorCode::RequestNotPending, "the request is no longer pending"));
    }
    let account: AccountId =
        row.account.parse().map_err(|_| ApiError::new(OctaneErrorCode::Internal, "corrupt account"))?;
    match answer {
        AppAnswer::Signature { signature: sig, proof } => {
            // Octane checks the chain signature before the SP sees it (contract D's verifier).
            let req: SignRequest = sunstorm_core::cbor::from_canonical_slice(&row.body)
                .map_err(|_| ApiError::new(OctaneErrorCode::Internal, "corrupt stored request"))?;
            let invalid = |e: sunstorm_core::payload::PayloadError| {
                ApiError::new(OctaneErrorCode::SignatureInvalid, format!("appliance signature refused: {e}"))
            };
            let target = sunstorm_core::payload::signing_target(req.kind, &req.payload, &req.chain).map_err(invalid)?;
            sunstorm_core::payload::verify_appliance_signature(&target, &sig, &account).map_err(invalid)?;
            // And the receipt, under the identity of the appliance that attested the pair.
            if let Some(proof) = &proof {
                let expected = SignReceipt::for_request(&req, proof.display_digest, p.appliance);
                SignReceipt::verify(&proof.receipt, &expected).map_err(|e| {
                    ApiError::new(OctaneErrorCode::SignatureInvalid, format!("appliance receipt refused: {e}"))
                })?;
            }
            tx.execute(
                "UPDATE sign_requests SET status = 'signed', appliance_sig = ?2, display_digest = ?3,
                    receipt_body = ?4, receipt_sig = ?5 WHERE request_id = ?1",
                params![
                    request_id.to_string(),
                    sig,
                    proof.as_ref().map(|p| p.display_digest.hex()),
                    proof.as_ref().map(|p| p.receipt.body.clone()),
                    proof.as_ref().map(|p| p.receipt.sig.clone()),
                ],
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
