//! What the simulator remembers across restarts: bonded phones, the wrong-PIN back-off,
//! pairs (with the SP key pinned at pair time), revoked pairs, answered request ids with
//! their first response, and signature counters. A JSON file written atomically (temp file, fsync, rename).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sunstorm_core::appliance::proto::ResponseBody;
use sunstorm_core::ble::bond_policy::BondGuard;
use sunstorm_core::ble::channel::BondedPhone;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::AccountId;
use uuid::Uuid;

use super::SimError;

/// File name of the state in `state_dir`.
pub const STATE_FILE: &str = "appliance-state.json";

/// One pair the appliance approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRecord {
    /// The durable pair id the appliance minted.
    pub pair_id: Uuid,
    /// The session it approved.
    pub session_id: String,
    /// The SP's id.
    pub sp_id: String,
    /// The SP's display name.
    pub sp_name: String,
    /// The SP's Ed25519 key, pinned at pair time; it verifies every sign request.
    pub sp_public_key: Key32,
    /// The approved wallets.
    pub bindings: Vec<AccountId>,
    /// Unix seconds.
    pub approved_at: u64,
}

/// The persisted state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SimState {
    /// Bonded phones.
    pub bonds: Vec<BondedPhone>,
    /// Wrong PINs, lockouts and the hourly count: a restart must not reset the back-off.
    #[serde(default)]
    pub bond_guard: BondGuard,
    /// Active pairs.
    pub pairs: BTreeMap<Uuid, PairRecord>,
    /// Revoked pair ids.
    pub revoked: BTreeSet<Uuid>,
    /// First response to each answered state-changing request id.
    pub answered: BTreeMap<Uuid, ResponseBody>,
    /// Signatures made per sign request id (never above 1).
    pub signatures: BTreeMap<Uuid, u32>,
    /// Signatures made in total.
    pub total_signatures: u64,
}

impl SimState {
    /// Loads the state from `dir` (empty when the file does not exist yet).
    pub fn load(dir: &Path) -> Result<Self, SimError> {
        match std::fs::read(dir.join(STATE_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| SimError::State(format!("{}: {e}", dir.join(STATE_FILE).display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(SimError::State(e.to_string())),
        }
    }

    /// Writes the state to `dir` atomically.
    pub fn save(&self, dir: &Path) -> Result<(), SimError> {
        let io = |e: std::io::Error| SimError::State(e.to_string());
        std::fs::create_dir_all(dir).map_err(io)?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| SimError::State(e.to_string()))?;
        let tmp: PathBuf = dir.join(format!(".{STATE_FILE}.tmp"));
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, dir.join(STATE_FILE)).map_err(io)
    }
}
