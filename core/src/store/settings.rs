//! The `settings` table: the user's settings as typed records, one row per record type
//! (its [`SettingRecord::KEY`]), holding the record's JSON (serde).

use rusqlite::{params, OptionalExtension, Transaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{from_json, to_json, Store, StoreError};
use crate::guardrails::Guardrails;

/// A typed settings record. Absent from the table, it reads as its `Default`.
pub trait SettingRecord: Serialize + DeserializeOwned + Default {
    /// Its row's key (stable, never reused for another record).
    const KEY: &'static str;
}

/// The user's guardrails ([`crate::sign::load_guardrails`]).
impl SettingRecord for Guardrails {
    const KEY: &'static str = "guardrails";
}

impl Store {
    /// The stored record `S` (its default when never written).
    pub fn setting<S: SettingRecord>(&self) -> Result<S, StoreError> {
        match self.setting_text::<S>()? {
            None => Ok(S::default()),
            Some(text) => from_json(S::KEY, &text),
        }
    }

    /// Record `S`'s JSON text, unparsed (`None` when never written): a caller that keeps
    /// the parsed record compares it to skip parsing again.
    pub fn setting_text<S: SettingRecord>(&self) -> Result<Option<String>, StoreError> {
        let conn = self.lock()?;
        let text = conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row(params![S::KEY], |r| r.get(0))
            .optional()?;
        Ok(text)
    }

    /// Writes (replaces) record `S`.
    pub fn put_setting<S: SettingRecord>(&self, record: &S) -> Result<(), StoreError> {
        self.put_row(S::KEY, &to_json(S::KEY, record)?)
    }

    fn put_row(&self, key: &str, text: &str) -> Result<(), StoreError> {
        self.lock()?.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, text],
        )?;
        Ok(())
    }
}

#[cfg(test)]
impl Store {
    /// Test hook: writes `text` as record `S`'s row as it is (e.g. a row an older or
    /// broken version left behind, which reading reports corrupt).
    pub(crate) fn put_setting_text<S: SettingRecord>(&self, text: &str) -> Result<(), StoreError> {
        self.put_row(S::KEY, text)
    }
}

/// Migration 6: each known record is read through its type and written back, so a row
/// from an older version holds every field of the record (defaults for those added since).
/// A row that does not parse is left as it is (reading it reports it corrupt).
pub(super) fn backfill(tx: &Transaction<'_>) -> Result<(), StoreError> {
    retype::<Guardrails>(tx)
}

fn retype<S: SettingRecord>(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let text: Option<String> =
        tx.query_row("SELECT value FROM settings WHERE key = ?1", params![S::KEY], |r| r.get(0)).optional()?;
    if let Some(record) = text.and_then(|t| serde_json::from_str::<S>(&t).ok()) {
        tx.execute("UPDATE settings SET value = ?2 WHERE key = ?1", params![S::KEY, to_json(S::KEY, &record)?])?;
    }
    Ok(())
}
