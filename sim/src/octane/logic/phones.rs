//! Phones an appliance forgot: octane records the appliance's signed `PhoneForgotten`
//! statement (relayed by any phone of that appliance) and from then on refuses the
//! forgotten app key's requests about that appliance — so it no longer routes the
//! appliance's sign requests to it — unless an endorsement issued later (a new bond)
//! vouches for the key again.

use rusqlite::{params, Connection, OptionalExtension};
use sunstorm_core::envelope::{Domain, SignedEnvelope};
use sunstorm_core::model::{PhoneForgotten, STATEMENT_VERSION};
use sunstorm_core::octane::api::{AppForgetPhoneResponse, OctaneErrorCode};
use sunstorm_core::octane::app_auth::VerifiedAppRequest;

use super::db::{key_hex, ApiError, R};

/// Records the statement of the caller's appliance that it forgot a phone. Idempotent; a
/// later statement about the same phone moves the time forward, never back.
pub fn forget_phone(
    conn: &Connection,
    caller: &VerifiedAppRequest,
    statement: &SignedEnvelope,
) -> R<AppForgetPhoneResponse> {
    let appliance = &caller.appliance_identity;
    let st: PhoneForgotten = statement
        .open(Domain::PhoneForgotten, appliance.as_bytes())
        .map_err(|e| ApiError::new(OctaneErrorCode::ForgetInvalid, format!("the forget statement: {e}")))?;
    if st.v != STATEMENT_VERSION || st.appliance_identity != *appliance {
        return Err(ApiError::new(OctaneErrorCode::ForgetInvalid, "the forget statement names another appliance"));
    }
    conn.execute(
        "INSERT INTO forgotten_phones (appliance, app_key, forgotten_at, forgotten_by) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (appliance, app_key) DO UPDATE SET
             forgotten_at = max(forgotten_at, excluded.forgotten_at),
             forgotten_by = CASE WHEN excluded.forgotten_at > forgotten_at THEN excluded.forgotten_by ELSE forgotten_by END",
        params![key_hex(appliance), key_hex(&st.app_key), st.forgotten_at as i64, st.forgotten_by.as_ref().map(key_hex)],
    )?;
    let forgotten_at: i64 = conn.query_row(
        "SELECT forgotten_at FROM forgotten_phones WHERE appliance = ?1 AND app_key = ?2",
        params![key_hex(appliance), key_hex(&st.app_key)],
        |r| r.get(0),
    )?;
    tracing::info!(phone = %st.app_key.fingerprint(), "an appliance forgot a phone; its requests are refused");
    Ok(AppForgetPhoneResponse { app_key: st.app_key, forgotten_at: u64::try_from(forgotten_at).unwrap_or(0) })
}

/// Refuses a caller whose appliance forgot its app key, unless its endorsement is newer
/// than the statement (it bonded again).
pub fn check_not_forgotten(conn: &Connection, caller: &VerifiedAppRequest) -> R<()> {
    let at: Option<i64> = conn
        .query_row(
            "SELECT forgotten_at FROM forgotten_phones WHERE appliance = ?1 AND app_key = ?2",
            params![key_hex(&caller.appliance_identity), key_hex(&caller.app_key)],
            |r| r.get(0),
        )
        .optional()?;
    match at {
        Some(t) if caller.endorsed_at <= u64::try_from(t).unwrap_or(u64::MAX) => Err(ApiError::new(
            OctaneErrorCode::PhoneForgotten,
            "the appliance forgot this phone; bond it again to use it with this appliance",
        )),
        _ => Ok(()),
    }
}
