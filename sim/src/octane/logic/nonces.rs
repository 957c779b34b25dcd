//! App-request nonces: octane refuses a nonce it saw within the clock-skew window.

use rusqlite::{params, Connection};

use super::db::R;

/// Records an app-request nonce; false when it was seen before. Prunes old nonces.
pub fn fresh_nonce(conn: &Connection, nonce: &str, now: u64, window: u64) -> R<bool> {
    conn.execute(
        "DELETE FROM nonces WHERE seen_at < ?1",
        params![now.saturating_sub(window.saturating_mul(2)) as i64],
    )?;
    let n =
        conn.execute("INSERT OR IGNORE INTO nonces (nonce, seen_at) VALUES (?1, ?2)", params![nonce, now as i64])?;
    Ok(n == 1)
}
