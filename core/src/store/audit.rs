//! The `audit_log` table: one typed [`AuditEvent`] per entry (its JSON, with its kind in a
//! column of its own for the index), what it is about, and when.

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};

use super::{as_i64, from_json, secs, to_json, Store, StoreError, StoreTx};
use crate::audit::AuditEvent;

/// One audit log entry: something the user approved or rejected, or a pair event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Row id, increasing.
    pub id: i64,
    /// Unix seconds.
    pub at: u64,
    /// What it is about (a pair session id, a pair id, a request id, `guardrails`).
    pub subject: String,
    /// What happened.
    pub event: AuditEvent,
}

impl Store {
    /// Appends to the audit log.
    pub fn audit(&self, at: u64, subject: &str, event: &AuditEvent) -> Result<(), StoreError> {
        audit_insert(&*self.lock()?, at, subject, event)
    }

    /// The newest audit entry of `kind` ([`AuditEvent::kind`]) about `subject` (indexed:
    /// reads one entry).
    pub fn last_audit(&self, subject: &str, kind: &str) -> Result<Option<AuditEntry>, StoreError> {
        let conn = self.lock()?;
        let row = conn
            .prepare_cached(
                "SELECT id, at, subject, detail FROM audit_log
                 WHERE subject = ?1 AND kind = ?2 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![subject, kind], audit_row)
            .optional()?;
        row.map(parse).transpose()
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare("SELECT id, at, subject, detail FROM audit_log ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map(params![limit], audit_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(parse(row?)?);
        }
        Ok(out)
    }
}

impl StoreTx<'_> {
    /// [`Store::audit`] inside this transaction.
    pub fn audit(&self, at: u64, subject: &str, event: &AuditEvent) -> Result<(), StoreError> {
        audit_insert(self.tx, at, subject, event)
    }
}

type AuditRow = (i64, i64, String, String);

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn parse((id, at, subject, event): AuditRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry { id, at: secs("audit_log.at", at)?, subject, event: from_json("audit_log.detail", &event)? })
}

fn audit_insert(conn: &Connection, at: u64, subject: &str, event: &AuditEvent) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO audit_log (at, kind, subject, detail) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![as_i64(at), event.kind(), subject, to_json("audit event", event)?])?;
    Ok(())
}

/// Migration 6: every entry of the old layout (a kind and a free-form JSON detail) becomes
/// the typed event it records ([`AuditEvent::from_legacy`]).
pub(super) fn backfill(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let rows: Vec<(i64, String, String)> = {
        let mut stmt = tx.prepare("SELECT id, kind, detail FROM audit_log")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut update = tx.prepare("UPDATE audit_log SET kind = ?2, detail = ?3 WHERE id = ?1")?;
    for (id, kind, detail) in rows {
        let detail = serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null);
        let event = AuditEvent::from_legacy(&kind, detail);
        update.execute(params![id, event.kind(), to_json("audit event", &event)?])?;
    }
    Ok(())
}
