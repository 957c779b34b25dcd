//! Registered SPs: registration, and finding an SP by its API key or id.

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use sunstorm_core::caip::ChainId;
use sunstorm_core::model::SpProfile;

use super::db::{json, R};
use crate::octane::{OctaneSimError, SpRegistration};

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

pub(super) fn sp_by_id(conn: &Connection, sp_id: &str) -> R<SpRecord> {
    let (p, c): (String, String) =
        conn.query_row("SELECT profile_json, chains_json FROM sps WHERE sp_id = ?1", params![sp_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok(SpRecord { profile: json(&p)?, chains: json(&c)? })
}
