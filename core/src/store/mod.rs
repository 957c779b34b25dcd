//! The phone's durable state in SQLite: bonded appliances, pairs (with the SP key pinned at
//! pair time), in-flight pair flows (so a killed app resumes), the sign request ids already
//! seen (replay refusal), the sign history, the user's guardrail settings, an audit log, the
//! last verified metadata bundle (a cache, verified again on load) and the user's address book.
//!
//! Never a secret: keys live in the [`crate::secrets::SecretStore`]; this database only holds
//! public keys, signed statements and what the user decided. Every read parses defensively:
//! a corrupt row is a [`StoreError::Corrupt`], never a panic.

mod address_book;
mod appliances;
#[cfg(test)]
pub(crate) use appliances::create_at_version;
mod audit;
mod flows;
mod metadata;
mod outbox;
mod pairs;
mod risk;
mod schema;
mod settings;
mod signs;
mod spend;

pub use address_book::AddressBookRow;
pub use appliances::BondedAppliance;
pub use audit::AuditEntry;
pub use flows::{FlowRecord, FlowStage};
pub use metadata::{bundle_etag, MetadataIndexRow, SqliteBundleStore, StoredBundle};
pub use outbox::{OutboxEntry, MAX_OUTBOX};
pub use pairs::{PairRecord, PairStatus};
pub use settings::SettingRecord;
pub use signs::{Seen, SignOutcome, SignRecord};
pub use spend::MAX_LIVE_REQUESTS;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;
use uuid::Uuid;

use crate::bytes::Key32;
use pairs::PairRow;

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
    /// A read-only open ([`Store::open_read_only`]) found another schema version than this
    /// build's: the app has not migrated the file yet (older) or was updated first (newer).
    /// The notification extension never migrates: it refuses and the app catches up.
    #[error("database schema version {found} is not this build's {expected}")]
    SchemaMismatch {
        /// The file's `user_version`.
        found: i64,
        /// The version this build migrates to.
        expected: i64,
    },
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The store's lock was poisoned by a panic elsewhere.
    #[error("store lock poisoned")]
    Poisoned,
}

/// The SQLite store. Cheap to share behind an `Arc`; calls are short and serialized.
pub struct Store {
    conn: Mutex<Connection>,
    /// Pairs as last parsed, with the row they were parsed from: a read whose row is
    /// unchanged skips parsing (the SP profile's JSON, every binding's address checks).
    pairs: Mutex<HashMap<String, (PairRow, PairRecord)>>,
}

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

impl Store {
    /// Opens (creating if needed) the database at `path`, in WAL mode, and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        Self::init(conn, true)
    }

    /// Opens the database at `path` read-only, for a process that shares it with the app
    /// (the notification extension, docs/push.md): `SQLITE_OPEN_READ_ONLY` and
    /// `query_only`, so nothing is ever written — no migration, no journal-mode change, no
    /// statement that writes succeeds. Readers of a WAL database never wait for the app's
    /// writer; the busy timeout covers WAL recovery and checkpoints. Refuses with
    /// [`StoreError::SchemaMismatch`] unless the file is at exactly this build's schema
    /// version, and fails when the file does not exist (it is never created).
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "query_only", "ON")?;
        let expected = Self::current_schema_version();
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found != expected {
            return Err(StoreError::SchemaMismatch { found, expected });
        }
        Ok(Store { conn: Mutex::new(conn), pairs: Mutex::new(HashMap::new()) })
    }

    /// The schema version this build migrates a database to.
    pub fn current_schema_version() -> i64 {
        i64::try_from(schema::MIGRATIONS.len()).unwrap_or(i64::MAX)
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
        let supported = Self::current_schema_version();
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

    /// Test hook: from now on every insert into and update of `table` fails as a full
    /// disk would (a trigger aborts it), until [`Store::heal_writes`].
    pub(crate) fn fail_writes(&self, table: &str) -> Result<(), StoreError> {
        let sql = ["INSERT", "UPDATE"]
            .iter()
            .map(|op| {
                format!(
                    "CREATE TEMP TRIGGER fail_{table}_{op} BEFORE {op} ON main.{table} \
                     BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;"
                )
            })
            .collect::<String>();
        Ok(self.lock()?.execute_batch(&sql)?)
    }

    /// Test hook: undoes [`Store::fail_writes`] for `table`.
    pub(crate) fn heal_writes(&self, table: &str) -> Result<(), StoreError> {
        let sql = format!("DROP TRIGGER IF EXISTS fail_{table}_INSERT; DROP TRIGGER IF EXISTS fail_{table}_UPDATE;");
        Ok(self.lock()?.execute_batch(&sql)?)
    }

    /// Test hook: the virtual-machine steps the cached statement `sql` ran since this was
    /// last called for it (the counter is reset): equal counts for equal work.
    pub(crate) fn statement_steps(&self, sql: &str) -> Result<i32, StoreError> {
        Ok(self.lock()?.prepare_cached(sql)?.reset_status(rusqlite::StatementStatus::VmStep))
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
