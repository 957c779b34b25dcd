//! The `octane_outbox` table: signed statements the phone owes octane and could not deliver
//! yet (octane unreachable): an appliance's `PhoneForgotten`, which octane needs to stop
//! routing that appliance's requests to the forgotten phone, and an appliance's
//! `PairRevocation` (`sign::PAIR_REVOKED`). Kept until delivered; `Sunstorm::sync` retries
//! them.

use rusqlite::params;

use super::{as_i64, from_json, secs, to_json, Store, StoreError};
use crate::bytes::Key32;
use crate::envelope::SignedEnvelope;

/// Most statements kept waiting (a phone forgets few phones; beyond this the oldest goes).
pub const MAX_OUTBOX: usize = 256;

/// One statement waiting for octane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The appliance that signed it (the credentials it is relayed with).
    pub appliance: Key32,
    /// What it says, e.g. `phone_forgotten`.
    pub kind: String,
    /// What it is about (the forgotten phone's app key, hex): one entry per subject.
    pub subject: String,
    /// The statement as the appliance signed it.
    pub statement: SignedEnvelope,
    /// Unix seconds it was queued.
    pub queued_at: u64,
    /// Delivery attempts that failed.
    pub attempts: u32,
}

impl Store {
    /// Queues a statement for octane (replacing one of the same kind and subject).
    pub fn queue_for_octane(
        &self,
        appliance: &Key32,
        kind: &str,
        subject: &str,
        statement: &SignedEnvelope,
        now: u64,
    ) -> Result<(), StoreError> {
        let conn = self.lock()?;
        conn.execute(
            "INSERT INTO octane_outbox (appliance, kind, subject, statement, queued_at, attempts)
             VALUES (?1, ?2, ?3, ?4, ?5, 0)
             ON CONFLICT (appliance, kind, subject) DO UPDATE SET
                 statement = excluded.statement, queued_at = excluded.queued_at, attempts = 0",
            params![appliance.to_hex(), kind, subject, to_json("octane_outbox.statement", statement)?, as_i64(now)],
        )?;
        conn.execute(
            "DELETE FROM octane_outbox WHERE rowid NOT IN
                 (SELECT rowid FROM octane_outbox ORDER BY queued_at DESC, rowid DESC LIMIT ?1)",
            params![MAX_OUTBOX as i64],
        )?;
        Ok(())
    }

    /// Every statement waiting for octane, oldest first.
    pub fn octane_outbox(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT appliance, kind, subject, statement, queued_at, attempts FROM octane_outbox
             ORDER BY queued_at, rowid LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![MAX_OUTBOX as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (appliance, kind, subject, statement, queued_at, attempts) = row?;
            out.push(OutboxEntry {
                appliance: Key32::from_hex(&appliance)
                    .ok_or(StoreError::Corrupt { what: "octane_outbox.appliance", detail: "not a key".into() })?,
                kind,
                subject,
                statement: from_json("octane_outbox.statement", &statement)?,
                queued_at: secs("octane_outbox.queued_at", queued_at)?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            });
        }
        Ok(out)
    }

    /// Drops a delivered statement.
    pub fn delivered_to_octane(&self, appliance: &Key32, kind: &str, subject: &str) -> Result<(), StoreError> {
        self.lock()?.execute(
            "DELETE FROM octane_outbox WHERE appliance = ?1 AND kind = ?2 AND subject = ?3",
            params![appliance.to_hex(), kind, subject],
        )?;
        Ok(())
    }

    /// Counts a failed delivery attempt.
    pub fn octane_attempt_failed(&self, appliance: &Key32, kind: &str, subject: &str) -> Result<(), StoreError> {
        self.lock()?.execute(
            "UPDATE octane_outbox SET attempts = attempts + 1 WHERE appliance = ?1 AND kind = ?2 AND subject = ?3",
            params![appliance.to_hex(), kind, subject],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(n: u8) -> SignedEnvelope {
        SignedEnvelope { body: vec![n], sig: vec![n; 64] }
    }

    #[test]
    fn statements_wait_once_per_subject_oldest_first_and_bounded() {
        let s = Store::open_in_memory().unwrap();
        let a = Key32([1; 32]);
        s.queue_for_octane(&a, "phone_forgotten", "p1", &env(1), 10).unwrap();
        s.queue_for_octane(&a, "phone_forgotten", "p2", &env(2), 11).unwrap();
        s.octane_attempt_failed(&a, "phone_forgotten", "p1").unwrap();
        let q = s.octane_outbox().unwrap();
        assert_eq!(q.iter().map(|e| (e.subject.as_str(), e.attempts)).collect::<Vec<_>>(), [("p1", 1), ("p2", 0)]);
        // Queued again (a later statement about the same phone): replaced, attempts reset.
        s.queue_for_octane(&a, "phone_forgotten", "p1", &env(3), 12).unwrap();
        let q = s.octane_outbox().unwrap();
        assert_eq!((q[1].subject.as_str(), q[1].attempts, q[1].statement.body.clone()), ("p1", 0, vec![3]));
        s.delivered_to_octane(&a, "phone_forgotten", "p2").unwrap();
        assert_eq!(s.octane_outbox().unwrap().len(), 1);
        for i in 0..(MAX_OUTBOX + 3) {
            s.queue_for_octane(&a, "phone_forgotten", &format!("x{i}"), &env(4), 100 + i as u64).unwrap();
        }
        let q = s.octane_outbox().unwrap();
        assert_eq!(q.len(), MAX_OUTBOX);
        assert_eq!(q.last().unwrap().subject, format!("x{}", MAX_OUTBOX + 2), "the newest are kept");
    }
}
