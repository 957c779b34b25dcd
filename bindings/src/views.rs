//! View-model records: what the screens show, not the core's internal types. Each has a
//! `From` the core type it presents.

use sunstorm_core::appliance::ApplianceProgress;

use crate::platform::BlePeripheral;

/// One step or progress update of a flow, for a status line or a progress bar.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum FlowProgress {
    /// Looking for the appliance / connecting to it.
    ConnectingToAppliance,
    /// Request bytes handed to the radio so far.
    SendingToAppliance {
        /// Bytes sent.
        sent: u64,
        /// Total bytes.
        total: u64,
    },
    /// "Confirm on your appliance": the appliance waits for its user (no timeout runs).
    WaitingForApplianceConfirmation,
    /// The radio link dropped; retrying with the same request (never signs twice).
    ReconnectingToAppliance {
        /// Retry number, from 1.
        attempt: u32,
    },
}

impl From<ApplianceProgress> for FlowProgress {
    fn from(p: ApplianceProgress) -> Self {
        match p {
            ApplianceProgress::Sending { sent, total } => FlowProgress::SendingToAppliance {
                sent: u64::try_from(sent).unwrap_or(u64::MAX),
                total: u64::try_from(total).unwrap_or(u64::MAX),
            },
            ApplianceProgress::WaitingForUser => FlowProgress::WaitingForApplianceConfirmation,
            ApplianceProgress::Reconnecting { attempt } => FlowProgress::ReconnectingToAppliance { attempt },
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
    pub rssi: Option<i16>,
}

impl From<BlePeripheral> for ApplianceRow {
    fn from(p: BlePeripheral) -> Self {
        ApplianceRow {
            display_name: p.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "Sigil appliance".into()),
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
