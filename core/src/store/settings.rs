//! The `settings` table: the user's settings (guardrails and others) by key.

use rusqlite::{params, OptionalExtension};

use super::{from_json, to_json, Store, StoreError};

impl Store {
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
}
