//! What the simulator remembers across restarts: bonded phones, forgotten phones, the wrong-PIN back-off,
//! pairs (with the SP key pinned at pair time), revoked pairs, answered request ids with
//! their first response, and signature counters. A JSON file written atomically (temp file, fsync, rename).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sunstorm_core::appliance::proto::ResponseBody;
use sunstorm_core::approval::ApprovalPolicy;
use sunstorm_core::ble::bond_policy::BondGuard;
use sunstorm_core::ble::channel::BondedPhone;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::AccountId;
use uuid::Uuid;

use super::SimError;

/// File name of the state in `state_dir`.
pub const STATE_FILE: &str = "appliance-state.json";

/// Forgotten phones remembered at most (the oldest goes first); a phone beyond is
/// refused as an unknown phone instead of as a forgotten one.
pub const MAX_FORGOTTEN: usize = 64;

/// A phone the appliance forgot. Only its public channel key is kept, to recognise it and
/// tell it that it was forgotten; no session is ever served to it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForgottenPhone {
    /// Its X25519 channel key (public).
    pub channel_static: Key32,
    /// Its Ed25519 app key.
    pub app_key: Key32,
    /// The name it gave at bonding.
    pub name: String,
    /// The app key of the phone that asked; `None` when forgotten on the appliance.
    pub forgotten_by: Option<Key32>,
    /// Unix seconds.
    pub forgotten_at: u64,
}

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
    /// When a sign request needs the phone's approval proof. Set at pair time (`always`
    /// when the approving phone had an approval key enrolled, else `never`), changed only
    /// with the user's confirmation; absent from older state files (`never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_policy: Option<ApprovalPolicy>,
}

impl PairRecord {
    /// The pair's approval policy (`never` when none was recorded).
    pub fn approval_policy(&self) -> ApprovalPolicy {
        self.approval_policy.unwrap_or(ApprovalPolicy::Never)
    }
}

/// The persisted state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SimState {
    /// Bonded phones, one bond per phone, in bonding order.
    pub bonds: Vec<BondedPhone>,
    /// Forgotten phones, oldest first, at most [`MAX_FORGOTTEN`].
    #[serde(default)]
    pub forgotten: Vec<ForgottenPhone>,
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
    /// Whether the phone with this channel key is bonded.
    pub fn is_bonded(&self, channel_static: &Key32) -> bool {
        self.bonds.iter().any(|b| &b.channel_static == channel_static)
    }

    /// Records a (new) bond: one bond per phone, and a phone bonding again is no longer
    /// forgotten.
    pub fn add_bond(&mut self, phone: BondedPhone) {
        self.bonds.retain(|b| b.channel_static != phone.channel_static);
        self.forgotten.retain(|f| f.channel_static != phone.channel_static && f.app_key != phone.app_key);
        self.bonds.push(phone);
    }

    /// Drops the bond of the phone with `app_key` and remembers it as forgotten; returns
    /// the bond dropped.
    pub fn forget(&mut self, app_key: &Key32, by: Option<Key32>, now: u64) -> Option<BondedPhone> {
        let pos = self.bonds.iter().position(|b| &b.app_key == app_key)?;
        let phone = self.bonds.remove(pos);
        self.forgotten.retain(|f| f.channel_static != phone.channel_static);
        if self.forgotten.len() >= MAX_FORGOTTEN {
            self.forgotten.remove(0);
        }
        self.forgotten.push(ForgottenPhone {
            channel_static: phone.channel_static,
            app_key: phone.app_key,
            name: phone.name.clone(),
            forgotten_by: by,
            forgotten_at: now,
        });
        Some(phone)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(n: u8) -> BondedPhone {
        BondedPhone {
            channel_static: Key32([n; 32]),
            app_key: Key32([n + 100; 32]),
            name: format!("p{n}"),
            bonded_at: 1,
            approval_key: None,
        }
    }

    #[test]
    fn forgetting_moves_a_bond_to_the_bounded_forgotten_list_and_a_new_bond_clears_it() {
        let mut s = SimState::default();
        s.add_bond(phone(1));
        s.add_bond(phone(2));
        assert!(s.forget(&Key32([101; 32]), Some(Key32([102; 32])), 7).is_some());
        assert!(!s.is_bonded(&Key32([1; 32])));
        assert!(s.is_bonded(&Key32([2; 32])));
        assert_eq!(s.forgotten[0].forgotten_by, Some(Key32([102; 32])));
        assert!(s.forget(&Key32([101; 32]), None, 8).is_none(), "not bonded any more");
        s.add_bond(phone(1));
        assert!(s.forgotten.is_empty(), "bonding again lifts the refusal");
        for n in 0..(MAX_FORGOTTEN as u8 + 5) {
            s.add_bond(phone(n % 100 + 3));
            s.forget(&Key32([n % 100 + 103; 32]), None, 9);
        }
        assert_eq!(s.forgotten.len(), MAX_FORGOTTEN);
    }

    #[test]
    fn state_files_without_forgotten_phones_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SimState::default();
        s.add_bond(phone(1));
        let mut v = serde_json::to_value(&s).unwrap();
        v.as_object_mut().unwrap().remove("forgotten");
        std::fs::write(dir.path().join(STATE_FILE), serde_json::to_vec(&v).unwrap()).unwrap();
        let back = SimState::load(dir.path()).unwrap();
        assert_eq!(back.bonds.len(), 1);
        assert!(back.forgotten.is_empty());
    }
}
