//! The lowest layer of octane's rules: the SQLite schema, the API error every rule answers
//! with, and the small codecs the tables share.

use std::path::Path;

use rusqlite::Connection;
use sunstorm_core::bytes::Key32;
use sunstorm_core::octane::api::OctaneErrorCode;

use crate::octane::OctaneSimError;

/// An API failure: a stable code, a message, and extras. Becomes the JSON error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: OctaneErrorCode,
    pub message: String,
    pub attempts_left: Option<u32>,
}

impl ApiError {
    pub fn new(code: OctaneErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), attempts_left: None }
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(OctaneErrorCode::NotFound, format!("no such {what}"))
    }
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(OctaneErrorCode::BadRequest, message)
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        tracing::error!(error = %e, "octane simulator database error");
        ApiError::new(OctaneErrorCode::Internal, "database error")
    }
}

pub(super) type R<T> = Result<T, ApiError>;

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
    message TEXT,
    display_digest TEXT,
    receipt_body BLOB,
    receipt_sig BLOB
);
CREATE INDEX IF NOT EXISTS sign_by_pair ON sign_requests(pair_id, status);
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS forgotten_phones (
    appliance TEXT NOT NULL,
    app_key TEXT NOT NULL,
    forgotten_at INTEGER NOT NULL,
    forgotten_by TEXT,
    PRIMARY KEY (appliance, app_key)
);
CREATE TABLE IF NOT EXISTS push_targets (
    appliance TEXT NOT NULL,
    app_key TEXT NOT NULL,
    endorsed_at INTEGER NOT NULL,
    platform TEXT NOT NULL,
    token TEXT NOT NULL,
    push_key TEXT NOT NULL,
    registered_at INTEGER NOT NULL,
    PRIMARY KEY (appliance, app_key)
);
CREATE UNIQUE INDEX IF NOT EXISTS push_targets_by_token ON push_targets(appliance, platform, token);
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
    // Stores made before the display digest: its columns are added (empty).
    for (column, decl) in [("display_digest", "TEXT"), ("receipt_body", "BLOB"), ("receipt_sig", "BLOB")] {
        let present: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('sign_requests') WHERE name = ?1",
            [column],
            |r| r.get(0),
        )?;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE sign_requests ADD COLUMN {column} {decl}"))?;
        }
    }
    Ok(conn)
}

pub(super) fn json<T: serde::de::DeserializeOwned>(s: &str) -> R<T> {
    serde_json::from_str(s).map_err(|e| {
        tracing::error!(error = %e, "corrupt JSON in octane simulator store");
        ApiError::new(OctaneErrorCode::Internal, "corrupt store")
    })
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> R<String> {
    serde_json::to_string(v).map_err(|_| ApiError::new(OctaneErrorCode::Internal, "encode error"))
}

pub(super) fn key_hex(k: &Key32) -> String {
    k.to_hex()
}

pub(super) fn parse_key(s: &str) -> R<Key32> {
    Key32::from_hex(s).ok_or_else(|| ApiError::new(OctaneErrorCode::Internal, "corrupt key"))
}

/// First characters of an id, for logs.
pub(super) fn short(id: &str) -> String {
    id.chars().take(6).collect()
}
