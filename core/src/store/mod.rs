//! The phone's durable state in SQLite: bonded appliances, pairs (with the SP key pinned at
//! pair time), in-flight pair flows (so a killed app resumes), the sign request ids already
//! seen (replay refusal), the sign history, the user's guardrail settings and an audit log.
//!
//! Never a secret: keys live in the [`crate::secrets::SecretStore`]; this database only holds
//! public keys, signed statements and what the user decided. Every read parses defensively:
//! a corrupt row is a [`StoreError::Corrupt`], never a panic.

mod schema;
mod spend;

pub use spend::MAX_LIVE_REQUESTS;

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::envelope::SignedEnvelope;
use crate::guardrails::SpendContext;
use crate::model::{PayloadKind, SpProfile};

/// How long a writer waits for another connection's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (I/O, lock, constraint).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A row could not be parsed back (the file was edited or damaged).
    #[error("corrupt data in {what}: {detail}")]
    Corrupt {
        /// Which table/column.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A value could not be encoded for storage.
    #[error("could not encode {0}")]
    Encode(&'static str),
    /// The database was written by a newer version of Sunstorm.
    #[error("database schema version {found} is newer than this app's {supported}")]
    TooNew {
        /// The file's `user_version`.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The store's lock was poisoned by a panic elsewhere.
    #[error("store lock poisoned")]
    Poisoned,
}

/// An appliance this phone bonded with (public parts of the bond record only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondedAppliance {
    /// Its Ed25519 identity key.
    pub identity: Key32,
    /// Its X25519 static channel key.
    pub static_key: Key32,
    /// Its user-visible name.
    pub name: String,
    /// Its `AppEndorsement` of this phone's app key.
    pub endorsement: SignedEnvelope,
    /// Unix seconds.
    pub bonded_at: u64,
}

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
    fn as_str(self) -> &'static str {
        match self {
            PairStatus::Active => "active",
            PairStatus::Revoked => "revoked",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
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

/// Where an in-flight pair flow stands (the persisted part of `pair::PairState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowStage {
    /// The link was parsed; the session is not loaded yet.
    LinkOpened,
    /// Octane's signed session details were loaded and verified.
    SessionLoaded,
    /// Octane accepted the validation code.
    CodeVerified,
    /// The user chose the wallets to approve.
    WalletsChosen,
    /// The appliance was asked (approve request id persisted); may hold its attestation.
    WaitingForAppliance,
    /// Done: octane accepted the attestation and the pair is stored.
    Paired,
    /// The user (on the phone or the appliance) declined.
    Rejected,
    /// The session expired before completion.
    Expired,
    /// A failure that cannot be retried.
    Failed,
}

impl FlowStage {
    /// Whether the flow is over (nothing left to resume).
    pub fn is_final(self) -> bool {
        matches!(self, FlowStage::Paired | FlowStage::Rejected | FlowStage::Expired | FlowStage::Failed)
    }
}

/// An in-flight (or finished) pair flow with everything needed to resume it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// The flow's local id.
    pub flow_id: Uuid,
    /// Where it stands.
    pub stage: FlowStage,
    /// The pair link as opened.
    pub link: String,
    /// The session id from the link.
    pub session_id: String,
    /// Octane's signed session details, once loaded.
    pub session: Option<SignedEnvelope>,
    /// Whether the link carried the code (single-device flow).
    pub code_prefilled: bool,
    /// Whether octane accepted the code.
    pub code_verified: bool,
    /// The wallets the user chose.
    pub bindings: Vec<AccountId>,
    /// The appliance asked.
    pub appliance_identity: Option<Key32>,
    /// The approve request id, persisted before the appliance is asked.
    pub approve_request_id: Option<Uuid>,
    /// The appliance's attestation once it arrived. It binds the validation code, so it is
    /// **never written to SQLite**: the pair engine keeps it in the `SecretStore` beside the
    /// code for the flow's lifetime. Always `None` when read from the store.
    pub attestation: Option<SignedEnvelope>,
    /// The pair id, once paired.
    pub pair_id: Option<Uuid>,
    /// The validated return URL (single-device), once paired.
    pub return_url: Option<String>,
    /// Why the flow failed, when it did.
    pub error: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub updated_at: u64,
}

/// What became of a sign request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignOutcome {
    /// Verified and shown; the user has not decided yet.
    Pending,
    /// The appliance signed (signature verified) but octane has not acknowledged it yet.
    Signed,
    /// The signature was delivered to octane.
    Completed,
    /// The user (phone or appliance) declined; the rejection was or will be posted.
    Rejected,
    /// A guardrail or a check blocked it; the rejection was or will be posted.
    Blocked,
    /// It failed (appliance or network error) and was not signed.
    Failed,
}

impl SignOutcome {
    /// Whether its spend counts as spent for good (the appliance signed it).
    pub fn is_spent(self) -> bool {
        matches!(self, SignOutcome::Signed | SignOutcome::Completed)
    }

    fn as_str(self) -> &'static str {
        match self {
            SignOutcome::Pending => "pending",
            SignOutcome::Signed => "signed",
            SignOutcome::Completed => "completed",
            SignOutcome::Rejected => "rejected",
            SignOutcome::Blocked => "blocked",
            SignOutcome::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => SignOutcome::Pending,
            "signed" => SignOutcome::Signed,
            "completed" => SignOutcome::Completed,
            "rejected" => SignOutcome::Rejected,
            "blocked" => SignOutcome::Blocked,
            "failed" => SignOutcome::Failed,
            other => return Err(corrupt("sign_history.outcome", other)),
        })
    }
}

/// One sign request in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignRecord {
    /// The request id.
    pub request_id: Uuid,
    /// The pair it was made under.
    pub pair_id: Uuid,
    /// CAIP-2 chain.
    pub chain: ChainId,
    /// CAIP-10 account.
    pub account: AccountId,
    /// Payload kind.
    pub kind: PayloadKind,
    /// The decoded summary shown to the user (JSON).
    pub summary: serde_json::Value,
    /// Native value moved, in the chain's smallest unit, when the decoder knows it.
    pub native_value: Option<u128>,
    /// What the guardrails count for it: native value plus the worst-case network fee, in
    /// the chain's smallest unit (`None` on rows from before it was recorded).
    pub spend: Option<u128>,
    /// What became of it.
    pub outcome: SignOutcome,
    /// Reason code for a rejection, block or failure.
    pub reason: Option<String>,
    /// The appliance's signature, once made.
    pub appliance_signature: Option<Vec<u8>>,
    /// Unix seconds.
    pub received_at: u64,
    /// Unix seconds, when decided.
    pub decided_at: Option<u64>,
    /// Unix seconds: the request's own expiry (`None` on rows from before it was
    /// recorded). A pending row counts as spend until then.
    pub expires_at: Option<u64>,
}

/// Whether a sign request id was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First time: now recorded.
    New,
    /// Seen before with the very same body (octane delivering it again).
    SameBody,
    /// Seen before with a different body: a replay or a forgery.
    DifferentBody,
}

/// One audit log entry: something the user approved or rejected, or a pair event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Row id, increasing.
    pub id: i64,
    /// Unix seconds.
    pub at: u64,
    /// Stable snake_case kind, e.g. `pair_approved`, `sign_rejected`.
    pub kind: String,
    /// What it is about (a pair id, a request id).
    pub subject: String,
    /// Details (JSON).
    pub detail: serde_json::Value,
}

/// The SQLite store. Cheap to share behind an `Arc`; calls are short and serialized.
pub struct Store {
    conn: Mutex<Connection>,
    /// Pairs as last parsed, with the row they were parsed from: a read whose row is
    /// unchanged skips parsing (the SP profile's JSON, every binding's address checks).
    pairs: Mutex<HashMap<String, (PairRow, PairRecord)>>,
}

/// Most parsed pairs [`Store`] keeps (it starts afresh when full).
const PAIR_CACHE: usize = 64;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { what, detail: detail.to_string() }
}

fn to_json<T: Serialize + ?Sized>(what: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|_| StoreError::Encode(what))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

fn key(what: &'static str, s: &str) -> Result<Key32, StoreError> {
    Key32::from_hex(s).ok_or_else(|| corrupt(what, "not 64 hex digits"))
}

fn uuid(what: &'static str, s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| corrupt(what, e))
}

fn secs(what: &'static str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| corrupt(what, "negative time"))
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn kind_str(k: PayloadKind) -> Result<String, StoreError> {
    match serde_json::to_value(k) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(StoreError::Encode("payload kind")),
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn, true)
    }

    /// An in-memory database (tests, ephemeral runs).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?, false)
    }

    fn init(conn: Connection, wal: bool) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Every statement of the sign path stays prepared (rusqlite keeps 16 by default,
        // fewer than the path uses: an evicted statement is parsed again on each request).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        if wal {
            let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                tracing::warn!(mode = %mode, "store: WAL not available");
            }
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Deleted content is overwritten with zeros, so nothing removed lingers in the file.
        conn.pragma_update(None, "secure_delete", "ON")?;
        let store = Store { conn: Mutex::new(conn), pairs: Mutex::new(HashMap::new()) };
        store.migrate()?;
        Ok(store)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.lock()?;
        let supported = i64::try_from(schema::MIGRATIONS.len()).unwrap_or(i64::MAX);
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > supported {
            return Err(StoreError::TooNew { found, supported });
        }
        let mut scrub = false;
        let done = usize::try_from(found).unwrap_or(0);
        for (i, m) in schema::MIGRATIONS.iter().enumerate().skip(done) {
            let tx = conn.transaction()?;
            tx.execute_batch(m.sql)?;
            if let Some(backfill) = m.backfill {
                backfill(&tx)?;
            }
            tx.pragma_update(None, "user_version", i64::try_from(i + 1).unwrap_or(i64::MAX))?;
            tx.commit()?;
            tracing::info!(version = i + 1, "store: migrated");
            scrub |= found > 0 && schema::SCRUBBING_MIGRATIONS.contains(&(i + 1));
        }
        if scrub {
            // Rewrite the file without free pages, then empty the WAL: the old bytes are gone.
            conn.execute_batch("VACUUM")?;
            let _: (i64, i64, i64) =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            tracing::info!("store: scrubbed after removing secret-bearing columns");
        }
        Ok(())
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.lock()?.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    // ---- appliances ----

    /// Records (or replaces, on re-bonding) a bonded appliance.
    pub fn put_appliance(&self, a: &BondedAppliance) -> Result<(), StoreError> {
        self.lock()?.execute(
            "INSERT INTO appliances (identity, static_key, name, endorsement, bonded_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(identity) DO UPDATE SET static_key = excluded.static_key,
               name = excluded.name, endorsement = excluded.endorsement,
               bonded_at = excluded.bonded_at",
            params![
                a.identity.to_hex(),
                a.static_key.to_hex(),
                a.name,
                to_json("endorsement", &a.endorsement)?,
                as_i64(a.bonded_at)
            ],
        )?;
        Ok(())
    }

    /// All bonded appliances, most recently bonded first.
    pub fn appliances(&self) -> Result<Vec<BondedAppliance>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(
            "SELECT identity, static_key, name, endorsement, bonded_at FROM appliances
             ORDER BY bonded_at DESC, identity",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (identity, static_key, name, endorsement, bonded_at) = row?;
            out.push(BondedAppliance {
                identity: key("appliances.identity", &identity)?,
                static_key: key("appliances.static_key", &static_key)?,
                name,
                endorsement: from_json("appliances.endorsement", &endorsement)?,
                bonded_at: secs("appliances.bonded_at", bonded_at)?,
            });
        }
        Ok(out)
    }

    /// One bonded appliance by identity.
    pub fn appliance(&self, identity: &Key32) -> Result<Option<BondedAppliance>, StoreError> {
        Ok(self.appliances()?.into_iter().find(|a| &a.identity == identity))
    }

    // ---- pairs ----

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

    // ---- pair flows ----

    /// Writes a flow's current state (insert or replace), in one transaction.
    pub fn put_flow(&self, f: &FlowRecord) -> Result<(), StoreError> {
        self.lock()?.execute(
            "INSERT INTO pair_flows (flow_id, stage, finished, link, session_id, session,
               code_prefilled, code_verified, bindings, appliance_identity, approve_request_id,
               pair_id, return_url, error, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT(flow_id) DO UPDATE SET stage = excluded.stage,
               finished = excluded.finished, session = excluded.session,
               code_verified = excluded.code_verified, bindings = excluded.bindings,
               appliance_identity = excluded.appliance_identity,
               approve_request_id = excluded.approve_request_id,
               pair_id = excluded.pair_id,
               return_url = excluded.return_url, error = excluded.error,
               updated_at = excluded.updated_at",
            params![
                f.flow_id.to_string(),
                to_json("stage", &f.stage)?,
                f.stage.is_final(),
                f.link,
                f.session_id,
                f.session.as_ref().map(|s| to_json("session", s)).transpose()?,
                f.code_prefilled,
                f.code_verified,
                to_json("bindings", &f.bindings)?,
                f.appliance_identity.map(|k| k.to_hex()),
                f.approve_request_id.map(|u| u.to_string()),
                f.pair_id.map(|u| u.to_string()),
                f.return_url,
                f.error,
                as_i64(f.created_at),
                as_i64(f.updated_at),
            ],
        )?;
        Ok(())
    }

    const FLOW_COLS: &'static str = "flow_id, stage, link, session_id, session, code_prefilled,
        code_verified, bindings, appliance_identity, approve_request_id, pair_id,
        return_url, error, created_at, updated_at";

    fn flow_row(r: &Row<'_>) -> rusqlite::Result<FlowRow> {
        Ok(FlowRow {
            flow_id: r.get(0)?,
            stage: r.get(1)?,
            link: r.get(2)?,
            session_id: r.get(3)?,
            session: r.get(4)?,
            code_prefilled: r.get(5)?,
            code_verified: r.get(6)?,
            bindings: r.get(7)?,
            appliance_identity: r.get(8)?,
            approve_request_id: r.get(9)?,
            pair_id: r.get(10)?,
            return_url: r.get(11)?,
            error: r.get(12)?,
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
        })
    }

    /// One flow by id.
    pub fn flow(&self, flow_id: Uuid) -> Result<Option<FlowRecord>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .query_row(
                &format!("SELECT {} FROM pair_flows WHERE flow_id = ?1", Self::FLOW_COLS),
                params![flow_id.to_string()],
                Self::flow_row,
            )
            .optional()?;
        row.map(FlowRow::parse).transpose()
    }

    /// Every flow of one pair session, newest first (finished ones included).
    pub fn flows_for_session(&self, session_id: &str) -> Result<Vec<FlowRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM pair_flows WHERE session_id = ?1 ORDER BY created_at DESC, flow_id",
            Self::FLOW_COLS
        ))?;
        let rows = stmt.query_map(params![session_id], Self::flow_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }

    /// Flows not finished yet, oldest first (what `resume_pending` picks up).
    pub fn open_flows(&self) -> Result<Vec<FlowRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM pair_flows WHERE finished = 0 ORDER BY created_at, flow_id",
            Self::FLOW_COLS
        ))?;
        let rows = stmt.query_map([], Self::flow_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }

    // ---- sign requests ----

    /// Runs `f` in one SQLite transaction (taking the write lock at once): everything done
    /// through the [`StoreTx`] commits together when `f` returns `Ok`, and nothing does when
    /// it returns `Err`. One state change of a sign request is one such transaction. `f`
    /// runs under the store's lock: it must not call back into this `Store`.
    pub fn transaction<R>(&self, f: impl FnOnce(&StoreTx<'_>) -> Result<R, StoreError>) -> Result<R, StoreError> {
        let conn = self.lock()?;
        // BEGIN and COMMIT as cached statements: parsing them anew costs more than the
        // request's own statements.
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let tx = StoreTx { tx: &conn, open: std::cell::Cell::new(true) };
        let out = f(&tx)?;
        conn.prepare_cached("COMMIT")?.execute([])?;
        tx.open.set(false);
        Ok(out)
    }

    /// Records a sign request id as seen (with the SHA-256 of its signed body) and says
    /// whether it was new, the same request again, or a different body under a known id.
    pub fn note_request(
        &self,
        request_id: Uuid,
        body_sha256: &[u8; 32],
        pair_id: Uuid,
        now: u64,
    ) -> Result<Seen, StoreError> {
        self.transaction(|tx| tx.note_request(request_id, body_sha256, pair_id, now))
    }

    /// Whether `request_id` was seen before, and with the same body, without recording it
    /// (`None`: never seen).
    pub fn seen(&self, request_id: Uuid, body_sha256: &[u8; 32]) -> Result<Option<Seen>, StoreError> {
        let conn = self.lock()?;
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT body_sha256 FROM seen_sign_requests WHERE request_id = ?1")?
            .query_row(params![request_id.to_string()], |r| r.get(0))
            .optional()?;
        Ok(stored.map(|s| same_body(&s, body_sha256)))
    }

    /// Whether a request id was ever seen.
    pub fn was_seen(&self, request_id: Uuid) -> Result<bool, StoreError> {
        let conn = self.lock()?;
        let v: Option<i64> = conn
            .query_row("SELECT 1 FROM seen_sign_requests WHERE request_id = ?1", params![request_id.to_string()], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.is_some())
    }

    /// Inserts a sign history row (the request id must have been noted as seen), or
    /// replaces a row that is still pending; a decided row is left as it is.
    pub fn insert_sign(&self, s: &SignRecord) -> Result<(), StoreError> {
        self.transaction(|tx| tx.put_sign(s))
    }

    /// Records what became of a sign request (and, when it becomes signed, adds its spend
    /// to the running totals).
    pub fn set_sign_outcome(
        &self,
        request_id: Uuid,
        outcome: SignOutcome,
        reason: Option<&str>,
        appliance_signature: Option<&[u8]>,
        at: u64,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| tx.set_sign_outcome(request_id, outcome, reason, appliance_signature, at))
    }

    /// What the guardrails count as already spent on `chain` at `now`: signed requests
    /// (running totals) plus requests still waiting and not expired, leaving out `exclude`
    /// (the request being evaluated). See [`StoreTx::spend`].
    pub fn spend(
        &self,
        pair_id: Uuid,
        chain: &ChainId,
        now: u64,
        exclude: Option<Uuid>,
    ) -> Result<SpendContext, StoreError> {
        spend::spend(&*self.lock()?, pair_id, chain, now, exclude)
    }

    const SIGN_COLS: &'static str = "request_id, pair_id, chain, account, kind, summary,
        native_value, spend, outcome, reason, appliance_signature, received_at, decided_at,
        expires_at";

    fn sign_row(r: &Row<'_>) -> rusqlite::Result<SignRow> {
        Ok(SignRow {
            request_id: r.get(0)?,
            pair_id: r.get(1)?,
            chain: r.get(2)?,
            account: r.get(3)?,
            kind: r.get(4)?,
            summary: r.get(5)?,
            native_value: r.get(6)?,
            spend: r.get(7)?,
            outcome: r.get(8)?,
            reason: r.get(9)?,
            appliance_signature: r.get(10)?,
            received_at: r.get(11)?,
            decided_at: r.get(12)?,
            expires_at: r.get(13)?,
        })
    }

    /// One sign history row.
    pub fn sign_record(&self, request_id: Uuid) -> Result<Option<SignRecord>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .prepare_cached(&format!("SELECT {} FROM sign_history WHERE request_id = ?1", Self::SIGN_COLS))?
            .query_row(params![request_id.to_string()], Self::sign_row)
            .optional()?;
        row.map(SignRow::parse).transpose()
    }

    /// Sign history received at or after `since` (optionally for one pair), newest first.
    /// Reads every matching row: for screens and exports, never for the sign path.
    pub fn sign_history(&self, pair_id: Option<Uuid>, since: u64) -> Result<Vec<SignRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt;
        let rows = match pair_id {
            Some(p) => {
                stmt = conn.prepare(&format!(
                    "SELECT {} FROM sign_history WHERE pair_id = ?2 AND received_at >= ?1
                     ORDER BY received_at DESC, request_id",
                    Self::SIGN_COLS
                ))?;
                stmt.query_map(params![as_i64(since), p.to_string()], Self::sign_row)?
            }
            None => {
                stmt = conn.prepare(&format!(
                    "SELECT {} FROM sign_history WHERE received_at >= ?1
                     ORDER BY received_at DESC, request_id",
                    Self::SIGN_COLS
                ))?;
                stmt.query_map(params![as_i64(since)], Self::sign_row)?
            }
        };
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }

    /// The newest `limit` sign history rows (all pairs), newest first.
    pub fn recent_signs(&self, limit: u32) -> Result<Vec<SignRecord>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {} FROM sign_history ORDER BY received_at DESC, rowid DESC LIMIT ?1",
            Self::SIGN_COLS
        ))?;
        let rows = stmt.query_map(params![limit], Self::sign_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }

    // ---- settings ----

    /// Reads a setting (JSON) by key.
    pub fn setting(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.setting_text(key)?.map(|s| from_json("settings.value", &s)).transpose()
    }

    /// A setting's JSON text, unparsed (a caller that keeps the parsed value compares it).
    pub fn setting_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.lock()?;
        let text = conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row(params![key], |r| r.get(0))
            .optional()?;
        Ok(text)
    }

    /// Writes a setting (JSON) by key.
    pub fn put_setting(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        self.lock()?.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, to_json("setting", value)?],
        )?;
        Ok(())
    }

    // ---- audit ----

    /// Appends to the audit log.
    pub fn audit(&self, at: u64, kind: &str, subject: &str, detail: &serde_json::Value) -> Result<(), StoreError> {
        audit_insert(&*self.lock()?, at, kind, subject, detail)
    }

    /// The newest audit entry of `kind` about `subject` (indexed: reads one entry).
    pub fn last_audit(&self, subject: &str, kind: &str) -> Result<Option<AuditEntry>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .prepare_cached(
                "SELECT id, at, kind, subject, detail FROM audit_log
                 WHERE subject = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![subject, kind], audit_row)
            .optional()?;
        row.map(AuditRow::parse).transpose()
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare("SELECT id, at, kind, subject, detail FROM audit_log ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map(params![limit], audit_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.parse()?);
        }
        Ok(out)
    }
}

type AuditRow = (i64, i64, String, String, String);

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

trait ParseAudit {
    fn parse(self) -> Result<AuditEntry, StoreError>;
}

impl ParseAudit for AuditRow {
    fn parse(self) -> Result<AuditEntry, StoreError> {
        let (id, at, kind, subject, detail) = self;
        Ok(AuditEntry {
            id,
            at: secs("audit_log.at", at)?,
            kind,
            subject,
            detail: from_json("audit_log.detail", &detail)?,
        })
    }
}

fn audit_insert(
    conn: &Connection,
    at: u64,
    kind: &str,
    subject: &str,
    detail: &serde_json::Value,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO audit_log (at, kind, subject, detail) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![as_i64(at), kind, subject, to_json("audit detail", detail)?])?;
    Ok(())
}

fn same_body(stored: &[u8], body_sha256: &[u8; 32]) -> Seen {
    if subtle::ConstantTimeEq::ct_eq(stored, body_sha256.as_slice()).into() {
        Seen::SameBody
    } else {
        Seen::DifferentBody
    }
}

/// One open SQLite transaction on the store ([`Store::transaction`]): the sign path's
/// reads and writes for one state change of a request.
pub struct StoreTx<'c> {
    tx: &'c Connection,
    /// Rolled back on drop while still open (an error, or a panic, in the closure).
    open: std::cell::Cell<bool>,
}

impl Drop for StoreTx<'_> {
    fn drop(&mut self) {
        if self.open.get() {
            if let Err(e) = self.tx.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([])) {
                tracing::warn!(error = %e, "store: rollback failed");
            }
        }
    }
}

impl std::fmt::Debug for StoreTx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreTx")
    }
}

impl StoreTx<'_> {
    /// [`Store::note_request`] inside this transaction.
    pub fn note_request(
        &self,
        request_id: Uuid,
        body_sha256: &[u8; 32],
        pair_id: Uuid,
        now: u64,
    ) -> Result<Seen, StoreError> {
        let n = self
            .tx
            .prepare_cached(
                "INSERT INTO seen_sign_requests (request_id, body_sha256, pair_id, first_seen_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT(request_id) DO NOTHING",
            )?
            .execute(params![request_id.to_string(), body_sha256.as_slice(), pair_id.to_string(), as_i64(now)])?;
        if n == 1 {
            return Ok(Seen::New);
        }
        let stored: Vec<u8> = self
            .tx
            .prepare_cached("SELECT body_sha256 FROM seen_sign_requests WHERE request_id = ?1")?
            .query_row(params![request_id.to_string()], |r| r.get(0))?;
        Ok(same_body(&stored, body_sha256))
    }

    /// The outcome recorded for a sign request (`None`: no history row).
    pub fn sign_outcome(&self, request_id: Uuid) -> Result<Option<SignOutcome>, StoreError> {
        let s: Option<String> = self
            .tx
            .prepare_cached("SELECT outcome FROM sign_history WHERE request_id = ?1")?
            .query_row(params![request_id.to_string()], |r| r.get(0))
            .optional()?;
        s.map(|s| SignOutcome::parse(&s)).transpose()
    }

    /// What the guardrails count as already spent on `chain` at `now`, leaving out
    /// `exclude` (the request being evaluated):
    ///
    /// - `spent_by_pair`: signed through `pair_id` on `chain`, ever, plus that pair's
    ///   requests still waiting;
    /// - `spent_today`: signed on `chain` during `now`'s UTC day through any pair (the day
    ///   a request's signature was recorded), plus every request still waiting on `chain`.
    ///
    /// "Waiting" is a history row still `pending` (shown, or approved and at the appliance)
    /// whose `expires_at` is after `now`; blocked, rejected, failed and expired requests
    /// count for nothing. Amounts are native value plus the worst-case fee. Reads two
    /// running totals by key and the index of waiting requests, never the history: more
    /// than [`MAX_LIVE_REQUESTS`] waiting on one chain is a flood, and the totals
    /// then saturate (any limit refuses).
    pub fn spend(
        &self,
        pair_id: Uuid,
        chain: &ChainId,
        now: u64,
        exclude: Option<Uuid>,
    ) -> Result<SpendContext, StoreError> {
        spend::spend(self.tx, pair_id, chain, now, exclude)
    }

    /// Writes a request's history row: inserted, or replacing the row while it is still
    /// pending (a redelivered request evaluated again); a decided row is left alone. A row
    /// written as signed or completed adds its spend to the running totals.
    pub fn put_sign(&self, s: &SignRecord) -> Result<(), StoreError> {
        self.put_sign_with_summary(s, &to_json("summary", &s.summary)?)
    }

    /// [`StoreTx::put_sign`] with the summary given as JSON text (`s.summary` is not
    /// read): the sign engine serialises what it decoded straight to text.
    pub fn put_sign_with_summary(&self, s: &SignRecord, summary_json: &str) -> Result<(), StoreError> {
        // A decided row is left alone: the upsert below only replaces a pending row, so
        // the row only needs reading first when this one would join the spend totals.
        if s.outcome.is_spent() && self.sign_outcome(s.request_id)?.is_some_and(|o| o != SignOutcome::Pending) {
            return Ok(());
        }
        self.tx
            .prepare_cached(
                "INSERT INTO sign_history (request_id, pair_id, chain, account, kind, summary,
                   native_value, spend, outcome, reason, appliance_signature, received_at,
                   decided_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT(request_id) DO UPDATE SET summary = excluded.summary,
                   native_value = excluded.native_value, spend = excluded.spend,
                   outcome = excluded.outcome, reason = excluded.reason,
                   appliance_signature = excluded.appliance_signature,
                   decided_at = excluded.decided_at, expires_at = excluded.expires_at
                 WHERE sign_history.outcome = 'pending'",
            )?
            .execute(params![
                s.request_id.to_string(),
                s.pair_id.to_string(),
                s.chain.to_string(),
                s.account.to_string(),
                kind_str(s.kind)?,
                summary_json,
                s.native_value.map(|v| v.to_string()),
                s.spend.map(|v| v.to_string()),
                s.outcome.as_str(),
                s.reason,
                s.appliance_signature.as_deref(),
                as_i64(s.received_at),
                s.decided_at.map(as_i64),
                s.expires_at.map(as_i64),
            ])?;
        if s.outcome.is_spent() {
            let at = s.decided_at.unwrap_or(s.received_at);
            let (pair, chain) = (s.pair_id.to_string(), s.chain.to_string());
            spend::commit(self.tx, &pair, &chain, at, s.spend.unwrap_or(0))?;
        }
        Ok(())
    }

    /// [`Store::set_sign_outcome`] inside this transaction. The first time a request
    /// becomes signed (or completed), its spend joins the running totals of its pair and of
    /// the UTC day of `at`; it never leaves them.
    pub fn set_sign_outcome(
        &self,
        request_id: Uuid,
        outcome: SignOutcome,
        reason: Option<&str>,
        appliance_signature: Option<&[u8]>,
        at: u64,
    ) -> Result<(), StoreError> {
        let id = request_id.to_string();
        let before: Option<(String, String, String, Option<String>)> = self
            .tx
            .prepare_cached("SELECT outcome, pair_id, chain, spend FROM sign_history WHERE request_id = ?1")?
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((was, pair_id, chain, amount)) = before else {
            return Err(StoreError::NotFound("sign request"));
        };
        self.tx
            .prepare_cached(
                "UPDATE sign_history SET outcome = ?2, reason = COALESCE(?3, reason),
                   appliance_signature = COALESCE(?4, appliance_signature), decided_at = ?5
                 WHERE request_id = ?1",
            )?
            .execute(params![id, outcome.as_str(), reason, appliance_signature, as_i64(at)])?;
        if outcome.is_spent() && !SignOutcome::parse(&was)?.is_spent() {
            let amount = amount.map(|a| spend::parse_amount("sign_history.spend", &a)).transpose()?;
            let amount = amount.unwrap_or(0);
            spend::commit(self.tx, &pair_id, &chain, at, amount)?;
        }
        Ok(())
    }

    /// [`Store::audit`] inside this transaction.
    pub fn audit(&self, at: u64, kind: &str, subject: &str, detail: &serde_json::Value) -> Result<(), StoreError> {
        audit_insert(self.tx, at, kind, subject, detail)
    }
}

#[derive(Clone, PartialEq, Eq)]
struct PairRow {
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

struct FlowRow {
    flow_id: String,
    stage: String,
    link: String,
    session_id: String,
    session: Option<String>,
    code_prefilled: bool,
    code_verified: bool,
    bindings: String,
    appliance_identity: Option<String>,
    approve_request_id: Option<String>,
    pair_id: Option<String>,
    return_url: Option<String>,
    error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl FlowRow {
    fn parse(self) -> Result<FlowRecord, StoreError> {
        Ok(FlowRecord {
            flow_id: uuid("pair_flows.flow_id", &self.flow_id)?,
            stage: from_json("pair_flows.stage", &self.stage)?,
            link: self.link,
            session_id: self.session_id,
            session: self.session.map(|s| from_json("pair_flows.session", &s)).transpose()?,
            code_prefilled: self.code_prefilled,
            code_verified: self.code_verified,
            bindings: from_json("pair_flows.bindings", &self.bindings)?,
            appliance_identity: self
                .appliance_identity
                .map(|s| key("pair_flows.appliance_identity", &s))
                .transpose()?,
            approve_request_id: self
                .approve_request_id
                .map(|s| uuid("pair_flows.approve_request_id", &s))
                .transpose()?,
            attestation: None,
            pair_id: self.pair_id.map(|s| uuid("pair_flows.pair_id", &s)).transpose()?,
            return_url: self.return_url,
            error: self.error,
            created_at: secs("pair_flows.created_at", self.created_at)?,
            updated_at: secs("pair_flows.updated_at", self.updated_at)?,
        })
    }
}

struct SignRow {
    request_id: String,
    pair_id: String,
    chain: String,
    account: String,
    kind: String,
    summary: String,
    native_value: Option<String>,
    spend: Option<String>,
    outcome: String,
    reason: Option<String>,
    appliance_signature: Option<Vec<u8>>,
    received_at: i64,
    decided_at: Option<i64>,
    expires_at: Option<i64>,
}

impl SignRow {
    fn parse(self) -> Result<SignRecord, StoreError> {
        Ok(SignRecord {
            request_id: uuid("sign_history.request_id", &self.request_id)?,
            pair_id: uuid("sign_history.pair_id", &self.pair_id)?,
            chain: ChainId::from_str(&self.chain).map_err(|e| corrupt("sign_history.chain", e))?,
            account: AccountId::from_str(&self.account).map_err(|e| corrupt("sign_history.account", e))?,
            kind: serde_json::from_value(serde_json::Value::String(self.kind))
                .map_err(|e| corrupt("sign_history.kind", e))?,
            summary: from_json("sign_history.summary", &self.summary)?,
            native_value: self
                .native_value
                .map(|s| s.parse::<u128>().map_err(|e| corrupt("sign_history.native_value", e)))
                .transpose()?,
            spend: self.spend.map(|s| spend::parse_amount("sign_history.spend", &s)).transpose()?,
            outcome: SignOutcome::parse(&self.outcome)?,
            reason: self.reason,
            appliance_signature: self.appliance_signature,
            received_at: secs("sign_history.received_at", self.received_at)?,
            decided_at: self.decided_at.map(|v| secs("sign_history.decided_at", v)).transpose()?,
            expires_at: self.expires_at.map(|v| secs("sign_history.expires_at", v)).transpose()?,
        })
    }
}

#[cfg(test)]
impl Store {
    /// Test hook: from now on, appends the SQL text of every statement the store runs to
    /// `sink` (`None` stops).
    pub(crate) fn trace_statements(&self, sink: Option<std::sync::Arc<Mutex<Vec<String>>>>) {
        let Ok(mut conn) = self.lock() else { return };
        let cb = sink.map(|sink| {
            move |e: rusqlite::trace::TraceEvent<'_>| {
                if let rusqlite::trace::TraceEvent::Stmt(stmt, _) = e {
                    if let Ok(mut v) = sink.lock() {
                        v.push(stmt.sql().trim().to_string());
                    }
                }
            }
        });
        let _ = conn.trace_v2(rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT, cb);
    }

    /// Test hook: SQLite's query plan for `sql` (the `detail` column of each step).
    pub(crate) fn query_plan(&self, sql: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(r.get::<_, String>(3)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
