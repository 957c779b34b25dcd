//! Push targets: where octane pushes a phone's sign requests. One per phone (app key) and
//! appliance; registering again replaces it (token rotation), a device token moves to the
//! phone that registered it last, and the push service's "unregistered" drops it.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sunstorm_core::bytes::Key32;
use sunstorm_core::octane::api::{OctaneErrorCode, PushPlatform, PushTarget, PushTargetRequest};
use sunstorm_core::octane::app_auth::VerifiedAppRequest;
use sunstorm_core::push::PushPublicKey;
use uuid::Uuid;

use super::db::{key_hex, parse_key, ApiError, R};

fn platform_str(p: PushPlatform) -> &'static str {
    p.as_str()
}

fn parse_platform(s: &str) -> R<PushPlatform> {
    match s {
        "apns" => Ok(PushPlatform::Apns),
        "fcm" => Ok(PushPlatform::Fcm),
        _ => Err(ApiError::new(OctaneErrorCode::Internal, "corrupt push platform")),
    }
}

fn target_from(platform: String, token: String, push_key: String, registered_at: i64) -> R<PushTarget> {
    Ok(PushTarget {
        platform: parse_platform(&platform)?,
        token,
        push_key: PushPublicKey(parse_key(&push_key)?),
        registered_at: u64::try_from(registered_at).unwrap_or(0),
    })
}

/// Registers (or replaces) the caller's push target. The same device token held by another
/// phone of this appliance (an app reinstalled and bonded again) moves to the caller.
pub fn register_push_target(
    conn: &mut Connection,
    caller: &VerifiedAppRequest,
    req: &PushTargetRequest,
    now: u64,
) -> R<PushTarget> {
    if !req.platform.token_is_valid(&req.token) {
        return Err(ApiError::bad(format!(
            "token is not an {} device token (1 to {} characters{})",
            req.platform.as_str(),
            sunstorm_core::octane::api::MAX_PUSH_TOKEN_LEN,
            match req.platform {
                PushPlatform::Apns => ", an even number of hex digits",
                PushPlatform::Fcm => ", letters, digits and -_:.",
            }
        )));
    }
    if !req.push_key.is_usable() {
        return Err(ApiError::bad(
            "push_key is a low-order X25519 point: what octane sealed to it would not be secret".to_string(),
        ));
    }
    let appliance = key_hex(&caller.appliance_identity);
    let app_key = key_hex(&caller.app_key);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM push_targets WHERE appliance = ?1 AND platform = ?2 AND token = ?3 AND app_key <> ?4",
        params![appliance, platform_str(req.platform), req.token, app_key],
    )?;
    tx.execute(
        "INSERT INTO push_targets (appliance, app_key, endorsed_at, platform, token, push_key, registered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (appliance, app_key) DO UPDATE SET endorsed_at = excluded.endorsed_at,
             platform = excluded.platform, token = excluded.token, push_key = excluded.push_key,
             registered_at = excluded.registered_at",
        params![
            appliance,
            app_key,
            caller.endorsed_at as i64,
            platform_str(req.platform),
            req.token,
            key_hex(&req.push_key.0),
            now as i64
        ],
    )?;
    tx.commit()?;
    tracing::info!(phone = %caller.app_key.fingerprint(), platform = req.platform.as_str(), "push target registered");
    Ok(PushTarget { platform: req.platform, token: req.token.clone(), push_key: req.push_key, registered_at: now })
}

/// The caller's push target, if any.
pub fn push_target(conn: &Connection, caller: &VerifiedAppRequest) -> R<Option<PushTarget>> {
    let row: Option<(String, String, String, i64)> = conn
        .query_row(
            "SELECT platform, token, push_key, registered_at FROM push_targets WHERE appliance = ?1 AND app_key = ?2",
            params![key_hex(&caller.appliance_identity), key_hex(&caller.app_key)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    row.map(|(p, t, k, at)| target_from(p, t, k, at)).transpose()
}

/// Removes the caller's push target; whether there was one.
pub fn remove_push_target(conn: &Connection, caller: &VerifiedAppRequest) -> R<bool> {
    let n = conn.execute(
        "DELETE FROM push_targets WHERE appliance = ?1 AND app_key = ?2",
        params![key_hex(&caller.appliance_identity), key_hex(&caller.app_key)],
    )?;
    if n > 0 {
        tracing::info!(phone = %caller.app_key.fingerprint(), "push target removed");
    }
    Ok(n > 0)
}

/// A push target a sign request goes to: the phone (its app key) and where to push it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedTarget {
    /// The appliance the phone belongs to.
    pub appliance: Key32,
    /// The phone's app key.
    pub app_key: Key32,
    /// Where to push.
    pub target: PushTarget,
}

/// Largest number of phones one sign request is pushed to (an appliance has a few phones).
const MAX_TARGETS_PER_REQUEST: usize = 16;

/// The push targets of the phones a pair's sign requests are routed to: every phone of the
/// pair's appliance that registered one and that the appliance has not forgotten (a phone
/// bonded again after being forgotten counts again).
pub fn targets_for_pair(conn: &Connection, pair_id: &Uuid) -> R<Vec<RoutedTarget>> {
    let mut stmt = conn.prepare(
        "SELECT t.appliance, t.app_key, t.platform, t.token, t.push_key, t.registered_at
         FROM push_targets t JOIN pairs p ON p.appliance = t.appliance
         LEFT JOIN forgotten_phones f ON f.appliance = t.appliance AND f.app_key = t.app_key
         WHERE p.pair_id = ?1 AND p.status = 'active'
           AND (f.forgotten_at IS NULL OR t.endorsed_at > f.forgotten_at)
         ORDER BY t.registered_at, t.app_key LIMIT ?2",
    )?;
    routed_targets(&mut stmt, params![pair_id.to_string(), MAX_TARGETS_PER_REQUEST as i64])
}

/// Drops a target the push service called unregistered — only if it still holds that token
/// (the phone may have registered a new one meanwhile). Whether a row was dropped.
pub fn drop_unregistered(conn: &Connection, appliance: &Key32, app_key: &Key32, token: &str) -> R<bool> {
    let n = conn.execute(
        "DELETE FROM push_targets WHERE appliance = ?1 AND app_key = ?2 AND token = ?3",
        params![key_hex(appliance), key_hex(app_key), token],
    )?;
    Ok(n > 0)
}

/// Every push target octane holds (tests and the simulator's handle).
pub fn all_targets(conn: &Connection) -> R<Vec<RoutedTarget>> {
    let mut stmt = conn.prepare(
        "SELECT appliance, app_key, platform, token, push_key, registered_at FROM push_targets
         ORDER BY registered_at, app_key",
    )?;
    routed_targets(&mut stmt, [])
}

/// Runs a query selecting `appliance, app_key, platform, token, push_key, registered_at`
/// and parses its rows.
fn routed_targets(stmt: &mut rusqlite::Statement<'_>, params: impl rusqlite::Params) -> R<Vec<RoutedTarget>> {
    let rows = stmt
        .query_map(params, |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(a, k, p, t, pk, at)| {
            Ok(RoutedTarget { appliance: parse_key(&a)?, app_key: parse_key(&k)?, target: target_from(p, t, pk, at)? })
        })
        .collect()
}
