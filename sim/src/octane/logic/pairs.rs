//! Pairs as octane keeps them: reading them back, listing an appliance's pairs, and
//! revocation by the SP or the appliance.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::AccountId;
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::model::{PairRevocation, STATEMENT_VERSION};
use sunstorm_core::octane::api::{
    AppPairInfo, ApproveResponse, OctaneErrorCode, OctanePairStatus, RevokeResponse, RevokedBy,
};
use uuid::Uuid;

use super::db::{json, key_hex, parse_key, ApiError, R};
use super::sps::sp_by_id;

pub(super) struct PairRow {
    pub(super) pair_id: Uuid,
    pub(super) sp_id: String,
    pub(super) appliance: Key32,
    pub(super) sp_public_key: Key32,
    pub(super) bindings: Vec<AccountId>,
    pub(super) attestation: SignedEnvelope,
    pub(super) status: OctanePairStatus,
    pub(super) created_at: u64,
    pub(super) revoked_at: Option<u64>,
    pub(super) revoked_by: Option<RevokedBy>,
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
        pair_id: Uuid::parse_str(&t.0).map_err(|_| ApiError::new(OctaneErrorCode::Internal, "corrupt id"))?,
        sp_id: t.2,
        appliance: parse_key(&t.3)?,
        sp_public_key: parse_key(&t.4)?,
        bindings: json(&t.5)?,
        attestation: SignedEnvelope { body: t.6, sig: t.7 },
        status: if t.8 == "revoked" { OctanePairStatus::Revoked } else { OctanePairStatus::Active },
        created_at: u64::try_from(t.9).unwrap_or(0),
        revoked_at: t.10.and_then(|v| u64::try_from(v).ok()),
        revoked_by: t.11.map(|s| if s == "sp" { RevokedBy::Sp } else { RevokedBy::Appliance }),
    })
}

pub(super) fn load_pair(conn: &Connection, pair_id: &str) -> R<Option<PairRow>> {
    let t = conn
        .query_row(&format!("SELECT {PAIR_COLS} FROM pairs WHERE pair_id = ?1"), params![pair_id], pair_tuple)
        .optional()?;
    t.map(pair_from).transpose()
}

pub(super) fn require_pair(conn: &Connection, pair_id: &str) -> R<PairRow> {
    load_pair(conn, pair_id)?.ok_or_else(|| ApiError::not_found("pair"))
}

pub(super) fn approve_response(p: &PairRow, return_url: Option<String>) -> ApproveResponse {
    ApproveResponse { pair_id: p.pair_id, bindings: p.bindings.clone(), status: p.status, return_url }
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
        status: OctanePairStatus::Revoked,
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
    if p.status != OctanePairStatus::Active {
        return Ok(revoke_response(p));
    }
    mark_revoked(&tx, pair_id, by, revocation, now)?;
    tx.commit()?;
    let who = if by == RevokedBy::Sp { "the SP" } else { "the appliance" };
    tracing::info!(pair = %pair_id, "pair revoked by {who}");
    Ok(RevokeResponse { pair_id: *pair_id, status: OctanePairStatus::Revoked, revoked_by: by, revoked_at: now })
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
        return Err(ApiError::new(OctaneErrorCode::Forbidden, "this pair belongs to another appliance"));
    }
    let r: PairRevocation = revocation
        .open(Domain::PairRevocation, p.appliance.as_bytes())
        .map_err(|e| ApiError::new(OctaneErrorCode::RevocationInvalid, format!("revocation: {e}")))?;
    if r.v != STATEMENT_VERSION || r.pair_id != *pair_id || r.appliance_identity != p.appliance {
        return Err(ApiError::new(
            OctaneErrorCode::RevocationInvalid,
            "the revocation names another pair or appliance",
        ));
    }
    revoke_if_active(tx, pair_id, &p, RevokedBy::Appliance, Some(revocation), now)
}
