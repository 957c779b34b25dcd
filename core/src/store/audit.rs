//! The `audit_log` table: what the user approved or rejected, and pair events.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use super::{as_i64, from_json, secs, to_json, Store, StoreError, StoreTx};

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

impl Store {
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

impl StoreTx<'_> {
    /// [`Store::audit`] inside this transaction.
    pub fn audit(&self, at: u64, kind: &str, subject: &str, detail: &serde_json::Value) -> Result<(), StoreError> {
        audit_insert(self.tx, at, kind, subject, detail)
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
