//! The `appliances` table: the appliances this phone bonded with.

use rusqlite::params;
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
