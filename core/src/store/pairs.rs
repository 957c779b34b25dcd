//! The `pairs` table: pairs between an appliance and an SP, with the SP key pinned at
//! pair time, and a cache of parsed pairs for the sign path.

use rusqlite::{params, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{as_i64, corrupt, from_json, key, secs, to_json, uuid, Store, StoreError};
use crate::bytes::Key32;
use crate::caip::AccountId;
use crate::model::SpProfile;

/// Whether a pair may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairStatus {
    /// Usable for sign requests.
    Active,
    /// Revoked (by the phone or the SP); sign requests are refused.
    Revoked,
}

impl PairStatus {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            PairStatus::Active => "active",
            PairStatus::Revoked => "revoked",
        }
    }
    pub(super) fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(PairStatus::Active),
            "revoked" => Ok(PairStatus::Revoked),
            other => Err(corrupt("pairs.status", other)),
        }
    }
}

/// A pair between an appliance and an SP, as the phone keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRecord {
    /// The appliance-minted durable pair id.
    pub pair_id: Uuid,
    /// The appliance that approved it.
    pub appliance_identity: Key32,
    /// The pair session it came from.
    pub session_id: String,
    /// The SP's profile as octane vouched for it at pair time.
    pub sp: SpProfile,
    /// The SP's reference for its user.
    pub sp_user_ref: String,
    /// The SP's Ed25519 key pinned at pair time; every sign request is checked against it.
    pub sp_public_key: Key32,
    /// Approved wallets (canonical CAIP-10).
    pub bindings: Vec<AccountId>,
    /// Active or revoked.
    pub status: PairStatus,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<u64>,
}

/// Most parsed pairs [`Store`] keeps (it starts afresh when full).
const PAIR_CACHE: usize = 64;

impl Store {
    /// Stores a new pair. Idempotent: storing the same pair id again changes nothing.
    pub fn insert_pair(&self, p: &PairRecord) -> Result<(), StoreError> {
        self.lock()?.execute(
            "INSERT INTO pairs (pair_id, appliance_identity, session_id, sp_profile, sp_user_ref,
               sp_public_key, bindings, status, created_at, revoked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(pair_id) DO NOTHING",
            params![
                p.pair_id.to_string(),
                p.appliance_identity.to_hex(),
                p.session_id,
                to_json("sp profile", &p.sp)?,
                p.sp_user_ref,
                p.sp_public_key.to_hex(),
                to_json("bindings", &p.bindings)?,
                p.status.as_str(),
                as_i64(p.created_at),
                p.revoked_at.map(as_i64),
            ],
        )?;
        Ok(())
    }

    fn pair_from_row(r: &Row<'_>) -> rusqlite::Result<PairRow> {
        Ok(PairRow {
            pair_id: r.get(0)?,
            appliance_identity: r.get(1)?,
            session_id: r.get(2)?,
            sp: r.get(3)?,
            sp_user_ref: r.get(4)?,
            sp_public_key: r.get(5)?,
            bindings: r.get(6)?,
            status: r.get(7)?,
            created_at: r.get(8)?,
            revoked_at: r.get(9)?,
        })
    }

    const PAIR_COLS: &'static str = "pair_id, appliance_identity, session_id, sp_profile, sp_user_ref,
        sp_public_key, bindings, status, created_at, revoked_at";

    /// One pair by id.
    pub fn pair(&self, pair_id: Uuid) -> Result<Option<PairRecord>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .prepare_cached(
                "SELECT pair_id, appliance_identity, session_id, sp_profile, sp_user_ref,
                   sp_public_key, bindings, status, created_at, revoked_at
                 FROM pairs WHERE pair_id = ?1",
            )?
            .query_row(params![pair_id.to_string()], Self::pair_from_row)
            .optional()?;
        drop(conn);
        let Some(row) = row else { return Ok(None) };
        let mut cache = self.pairs.lock().map_err(|_| StoreError::Poisoned)?;
        if let Some((seen, parsed)) = cache.get(&row.pair_id) {
            if *seen == row {
                return Ok(Some(parsed.clone()));
            }
        }
        let parsed = row.clone().parse()?;
        if cache.len() >= PAIR_CACHE {
            cache.clear();
        }
        cache.insert(row.pair_id.clone(), (row, parsed.clone()));
        Ok(Some(parsed))
    }

    /// A pair's status (`None`: no such pair), without reading the rest of it.
    pub fn pair_status(&self, pair_id: Uuid) -> Result<Option<PairStatus>, StoreError> {
        let conn = self.lock()?;
        let s: Option<String> = conn
            .prepare_cached("SELECT status FROM pairs WHERE pair_id = ?1")?
            .query_row(params![pair_id.to_string()], |r| r.get(0))
            .optional()?;
        s.map(|s| PairStatus::parse(&s)).transpose()
    }

    /// All pairs, newest first.
    pub fn pairs(&self) -> Result<Vec<PairRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt =
            conn.prepare(&format!("SELECT {} FROM pairs ORDER BY created_at DESC, pair_id", Self::PAIR_COLS))?;
        let rows = stmt.query_map([], Self::pair_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }

    /// Marks a pair revoked (idempotent: the first revocation time is kept). Returns whether
    /// it was active before.
    pub fn revoke_pair(&self, pair_id: Uuid, at: u64) -> Result<bool, StoreError> {
        let conn = self.lock()?;
        let n = conn.execute(
            "UPDATE pairs SET status = 'revoked', revoked_at = ?2 WHERE pair_id = ?1 AND status = 'active'",
            params![pair_id.to_string(), as_i64(at)],
        )?;
        if n == 0 {
            let exists: Option<i64> = conn
                .query_row("SELECT 1 FROM pairs WHERE pair_id = ?1", params![pair_id.to_string()], |r| r.get(0))
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NotFound("pair"));
            }
        }
        Ok(n > 0)
    }
}

#[derive(Clone, PartialEq, Eq)]
pub(super) struct PairRow {
    pair_id: String,
    appliance_identity: String,
    session_id: String,
    sp: String,
    sp_user_ref: String,
    sp_public_key: String,
    bindings: String,
    status: String,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl PairRow {
    fn parse(self) -> Result<PairRecord, StoreError> {
        Ok(PairRecord {
            pair_id: uuid("pairs.pair_id", &self.pair_id)?,
            appliance_identity: key("pairs.appliance_identity", &self.appliance_identity)?,
            session_id: self.session_id,
            sp: from_json("pairs.sp_profile", &self.sp)?,
            sp_user_ref: self.sp_user_ref,
            sp_public_key: key("pairs.sp_public_key", &self.sp_public_key)?,
            bindings: from_json("pairs.bindings", &self.bindings)?,
            status: PairStatus::parse(&self.status)?,
            created_at: secs("pairs.created_at", self.created_at)?,
            revoked_at: self.revoked_at.map(|v| secs("pairs.revoked_at", v)).transpose()?,
        })
    }
}
