//! Bonding with an appliance and talking to it, through the platform's BLE.
//!
//! The bond (the appliance's public keys and the peripheral id that reaches it) is kept in
//! the platform's secret store under [`BOND_NAME`]: it is not secret, but whoever can
//! rewrite it can make the phone trust another appliance, so it lives where the keys live.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sunstorm_core::appliance::client::{bond, ApplianceClient, BondRecord, ClientConfig};
use sunstorm_core::ble::transport::Connector;
use sunstorm_core::secrets::SecretStore as CoreSecretStore;

use crate::error::SunstormError;
use crate::views::BondedApplianceView;

/// Secret-store name of the bond.
pub const BOND_NAME: &str = "appliance.bond";

/// The bond and how to reach the appliance again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredBond {
    /// The platform's peripheral id.
    pub peripheral_id: String,
    /// The core's bond record.
    pub record: BondRecord,
}

impl StoredBond {
    /// The settings-screen view.
    pub fn view(&self) -> BondedApplianceView {
        BondedApplianceView {
            name: sunstorm_core::display::clean(&self.record.appliance_name, sunstorm_core::display::TextKind::Name),
            identity_fingerprint: self.record.appliance_identity.fingerprint(),
            peripheral_id: self.peripheral_id.clone(),
        }
    }
}

/// Reads the stored bond, if any.
pub fn load(store: &dyn CoreSecretStore) -> Result<Option<StoredBond>, SunstormError> {
    match store.get(BOND_NAME)? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| SunstormError::storage(format!("stored bond unreadable: {e}"))),
    }
}

/// Bonds with the appliance `connector` reaches using `pin`, and stores the bond.
pub async fn bond_and_store(
    connector: Arc<dyn Connector>,
    peripheral_id: String,
    pin: String,
    store: Arc<dyn CoreSecretStore>,
    phone_name: String,
) -> Result<StoredBond, SunstormError> {
    tracing::info!(target: "sunstorm_ffi::appliance", "bonding with an appliance");
    let record = bond(connector.as_ref(), &pin, store.as_ref(), &phone_name).await?;
    let stored = StoredBond { peripheral_id, record };
    let bytes = serde_json::to_vec(&stored).map_err(|e| SunstormError::internal(format!("cannot encode bond: {e}")))?;
    store.put(BOND_NAME, &bytes)?;
    tracing::info!(
        target: "sunstorm_ffi::appliance",
        appliance = %stored.record.appliance_identity.fingerprint(),
        "bonded"
    );
    Ok(stored)
}

/// A client for the bonded appliance.
pub fn client(
    connector: Arc<dyn Connector>,
    bond: StoredBond,
    store: &dyn CoreSecretStore,
) -> Result<ApplianceClient, SunstormError> {
    Ok(ApplianceClient::new(connector, bond.record, store, ClientConfig::default())?)
}
