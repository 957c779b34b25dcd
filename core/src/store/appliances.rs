//! The `appliances` table: the appliances this phone bonded with (several: each keyed by
//! its identity key, with how the platform reaches it, until it is forgotten).

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{as_i64, from_json, key, secs, to_json, Store, StoreError};
use crate::bytes::Key32;
use crate::envelope::SignedEnvelope;

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

impl Store {
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
}

// ---- several bonds: the route to each appliance, forgetting one ----

impl Store {
    /// Marks `identity` bonded now (again, after a forget) and records how the platform
    /// reaches it (`None`: unknown). Returns `false` when no such appliance was stored.
    pub fn activate_bond(&self, identity: &Key32, peripheral: Option<&str>) -> Result<bool, StoreError> {
        let n = self.lock()?.execute(
            "UPDATE appliances SET peripheral = ?2, forgotten_at = NULL WHERE identity = ?1",
            params![identity.to_hex(), peripheral],
        )?;
        Ok(n > 0)
    }

    /// The identities of the appliances bonded now (not forgotten), most recently bonded
    /// first, each with how the platform reaches it.
    pub fn active_bonds(&self) -> Result<Vec<(Key32, Option<String>)>, StoreError> {
        let conn = self.lock()?;
        let mut stmt = conn.prepare_cached(
            "SELECT identity, peripheral FROM appliances WHERE forgotten_at IS NULL
             ORDER BY bonded_at DESC, identity",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (identity, peripheral) = row?;
            out.push((key("appliances.identity", &identity)?, peripheral));
        }
        Ok(out)
    }

    /// How the platform reaches a bonded appliance, if recorded; `None` when the appliance
    /// is not bonded (or was forgotten).
    pub fn bond_peripheral(&self, identity: &Key32) -> Result<Option<Option<String>>, StoreError> {
        Ok(self
            .lock()?
            .query_row(
                "SELECT peripheral FROM appliances WHERE identity = ?1 AND forgotten_at IS NULL",
                params![identity.to_hex()],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?)
    }

    /// Forgets a bonded appliance at `at`: it leaves the list of bonds and no flow uses it
    /// until it is bonded again. Its pairs and history stay (they name it). Returns whether
    /// it was bonded.
    pub fn forget_bond(&self, identity: &Key32, at: u64) -> Result<bool, StoreError> {
        let n = self.lock()?.execute(
            "UPDATE appliances SET forgotten_at = ?2 WHERE identity = ?1 AND forgotten_at IS NULL",
            params![identity.to_hex(), as_i64(at)],
        )?;
        Ok(n > 0)
    }
}

/// Test support: applies the first `version` migrations' SQL to `conn` and sets
/// `user_version`, so a test can write a database as an older release did.
#[cfg(test)]
pub(crate) fn create_at_version(conn: &rusqlite::Connection, version: usize) -> Result<(), StoreError> {
    for m in super::schema::MIGRATIONS.iter().take(version) {
        conn.execute_batch(m.sql)?;
    }
    conn.pragma_update(None, "user_version", i64::try_from(version).unwrap_or(i64::MAX))?;
    Ok(())
}
