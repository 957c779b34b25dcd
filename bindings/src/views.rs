//! View-model records: what the screens show, not the core's internal types. Each has a
//! `From` the core type it presents.

use sunstorm_core::appliance::ApplianceProgress;
use sunstorm_core::display::{clean, TextKind};

use crate::ble::BlePeripheral;

/// Unix seconds for the foreign side (Kotlin `Long`, Swift `Int64`), saturating.
pub(crate) fn unix(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// A millisecond count from the foreign side; negative values count as zero.
pub(crate) fn millis(ms: i32) -> std::time::Duration {
    std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// One step or progress update of a flow, for a status line or a progress bar.
/// (In Kotlin the cases without fields are `data object`s: they print their name.)
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum FlowProgress {
    /// Looking for the appliance / connecting to it.
    ConnectingToAppliance,
    /// Request bytes handed to the radio so far.
    SendingToAppliance {
        /// Bytes sent.
        sent: i64,
        /// Total bytes.
        total: i64,
    },
    /// "Confirm on your appliance": the appliance waits for its user (no timeout runs).
    WaitingForApplianceConfirmation,
    /// The radio link dropped; retrying with the same request (never signs twice).
    ReconnectingToAppliance {
        /// Retry number, from 1.
        attempt: i32,
    },
}

impl From<ApplianceProgress> for FlowProgress {
    fn from(p: ApplianceProgress) -> Self {
        match p {
            ApplianceProgress::Sending { sent, total } => FlowProgress::SendingToAppliance {
                sent: i64::try_from(sent).unwrap_or(i64::MAX),
                total: i64::try_from(total).unwrap_or(i64::MAX),
            },
            ApplianceProgress::WaitingForUser => FlowProgress::WaitingForApplianceConfirmation,
            ApplianceProgress::Reconnecting { attempt } => {
                FlowProgress::ReconnectingToAppliance { attempt: i32::try_from(attempt).unwrap_or(i32::MAX) }
            }
        }
    }
}

/// An appliance found by a scan, for the "choose your appliance" list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ApplianceRow {
    /// The platform's id, to pass back when bonding.
    pub peripheral_id: String,
    /// The name to show ("Sigil appliance" when it advertises none).
    pub display_name: String,
    /// Signal strength in dBm, if known (for sorting by proximity).
    pub rssi: Option<i32>,
}

impl From<BlePeripheral> for ApplianceRow {
    fn from(p: BlePeripheral) -> Self {
        ApplianceRow {
            display_name: p
                .name
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .map(|n| clean(n, TextKind::Name))
                .unwrap_or_else(|| "Sigil appliance".into()),
            peripheral_id: p.id,
            rssi: p.rssi,
        }
    }
}

/// The Sigil GATT UUIDs the platform scans for and talks to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GattUuids {
    /// The primary service.
    pub service: String,
    /// Phone → appliance characteristic (write without response).
    pub write_characteristic: String,
    /// Appliance → phone characteristic (notify).
    pub notify_characteristic: String,
}

/// A pair link the user tapped or scanned, accepted.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PairLink {
    /// The octane pair session id.
    pub session_id: String,
    /// The validation code when the link carried one (single-device flow): prefill it.
    pub code: Option<String>,
}

impl From<sunstorm_core::link::PairIntent> for PairLink {
    fn from(i: sunstorm_core::link::PairIntent) -> Self {
        PairLink { code: i.code.as_ref().map(|c| c.as_str().to_string()), session_id: i.session_id }
    }
}

/// An appliance bonded with this phone, for the settings screen and the "which appliance?"
/// choice (a phone can bond several).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BondedApplianceView {
    /// Its id (its identity key, 64 hex characters): pass it as `appliance_id` to the calls
    /// that take one.
    pub appliance_id: String,
    /// The appliance's name.
    pub name: String,
    /// Short fingerprint of its identity key, to compare with the appliance's screen.
    pub identity_fingerprint: String,
    /// The platform's peripheral id used to reach it (`None`: unknown; bond again).
    pub peripheral_id: Option<String>,
    /// When it was bonded (Unix seconds).
    pub bonded_at: i64,
}

/// What the appliance says about itself.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ApplianceInfoView {
    /// Its name.
    pub name: String,
    /// Firmware (or simulator) version.
    pub firmware: String,
    /// Application protocol version.
    pub protocol_version: i32,
    /// Short fingerprint of its identity key.
    pub identity_fingerprint: String,
}

impl From<sunstorm_core::appliance::ApplianceInfo> for ApplianceInfoView {
    fn from(i: sunstorm_core::appliance::ApplianceInfo) -> Self {
        ApplianceInfoView {
            identity_fingerprint: i.identity.fingerprint(),
            name: clean(&i.name, TextKind::Name),
            firmware: i.firmware,
            protocol_version: i32::from(i.protocol_version),
        }
    }
}

/// One wallet (account) of the appliance, as a list row.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WalletView {
    /// CAIP-2 chain id (`eip155:1`, `solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp`).
    pub chain: String,
    /// A human name for the chain ("Ethereum").
    pub chain_name: String,
    /// CAIP-10 account id, canonical.
    pub account: String,
    /// Shortened address for small screens.
    pub short_address: String,
}

impl From<sunstorm_core::caip::AccountId> for WalletView {
    fn from(a: sunstorm_core::caip::AccountId) -> Self {
        WalletView {
            chain: a.chain.to_string(),
            chain_name: a.chain.display_name(),
            short_address: a.short_address(),
            account: a.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_names_reach_the_scan_list_sanitised() {
        let row = |name: &str| {
            ApplianceRow::from(BlePeripheral { id: "p".into(), name: Some(name.into()), rssi: None }).display_name
        };
        // A nearby stranger's advertisement: a bidi override and a line break.
        assert_eq!(row("Sigil \u{202e}lanif\nOK"), "Sigil ⟨U+202E⟩lanif⟨U+000A⟩OK");
        assert_eq!(row(&"x".repeat(80)), format!("{}…⟨16 more characters⟩", "x".repeat(64)));
        assert_eq!(row("  "), "Sigil appliance");
    }
}
