//! The appliances bonded with this phone, as the FFI shows them, and the one-time move of
//! the FFI's old copy of a bond into the core.
//!
//! The core's [`Sunstorm`] owns every bond (ADR 0023); the FFI keeps none. Before that, the
//! FFI stored its one bond, with the peripheral id that reached it, in the platform secret
//! store under [`LEGACY_BOND_NAME`]: on open it is adopted into the core (keeping the
//! peripheral id as the appliance's route) and deleted.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use sunstorm_core::appliance::client::BondRecord;
use sunstorm_core::ble::transport::{Connector, ConnectorFactory, GattError, GattLink};
use sunstorm_core::display::{clean, TextKind};
use sunstorm_core::secrets::SecretStore as CoreSecretStore;
use sunstorm_core::sunstorm::{ApplianceBond, ApplianceId, Sunstorm};

use crate::ble::{BleCentral, BleTimeouts, ForeignConnector};
use crate::error::SunstormError;
use crate::views::{unix, BondedApplianceView};

/// Secret-store name of the FFI's old copy of the bond (before ADR 0023).
pub const LEGACY_BOND_NAME: &str = "appliance.bond";

/// The FFI's old copy of the bond.
#[derive(Deserialize)]
struct LegacyBond {
    peripheral_id: String,
    record: BondRecord,
}

/// Moves the FFI's old copy of the bond, if any, into the core and deletes it. An
/// unreadable copy is deleted too (logged): the user bonds again.
pub(crate) async fn migrate_legacy_bond(store: &dyn CoreSecretStore, facade: &Sunstorm) -> Result<(), SunstormError> {
    let Some(bytes) = store.get(LEGACY_BOND_NAME)? else { return Ok(()) };
    match serde_json::from_slice::<LegacyBond>(&bytes) {
        Ok(old) => {
            facade.adopt_bond(old.record, Some(&old.peripheral_id)).await?;
            tracing::info!(target: "sunstorm_ffi::appliance", "moved the stored bond into the core");
        }
        Err(e) => tracing::warn!(target: "sunstorm_ffi::appliance", error = %e, "old stored bond unreadable; dropped"),
    }
    store.delete(LEGACY_BOND_NAME)?;
    Ok(())
}

/// Parses an `appliance_id` passed by the app (`None`: the only bonded appliance).
pub(crate) fn parse_appliance_id(id: Option<&str>) -> Result<Option<ApplianceId>, SunstormError> {
    match id {
        None => Ok(None),
        Some(s) => ApplianceId::from_hex(s.trim()).map(Some).ok_or_else(|| {
            tracing::warn!(target: "sunstorm_ffi", "malformed appliance id passed by the app");
            SunstormError::NoSuchAppliance
        }),
    }
}

impl From<&ApplianceBond> for BondedApplianceView {
    fn from(b: &ApplianceBond) -> Self {
        BondedApplianceView {
            appliance_id: b.id().to_hex(),
            name: clean(&b.appliance.name, TextKind::Name),
            identity_fingerprint: b.appliance.identity.fingerprint(),
            peripheral_id: b.peripheral.clone(),
            bonded_at: unix(b.appliance.bonded_at),
        }
    }
}

/// The core's connectors through the platform's `BleCentral`: each appliance is reached
/// at the peripheral id kept with its bond.
pub struct PeripheralConnectors {
    central: Arc<dyn BleCentral>,
    timeouts: BleTimeouts,
}

impl PeripheralConnectors {
    /// Connectors over `central`.
    pub fn new(central: Arc<dyn BleCentral>, timeouts: BleTimeouts) -> Self {
        Self { central, timeouts }
    }
}

impl ConnectorFactory for PeripheralConnectors {
    fn connector(&self, peripheral: Option<&str>) -> Arc<dyn Connector> {
        match peripheral {
            Some(id) => Arc::new(ForeignConnector::new(self.central.clone(), id.to_string(), self.timeouts)),
            None => Arc::new(NoRoute),
        }
    }
}

/// A bond with no known peripheral id: nothing to connect to until it is bonded again.
struct NoRoute;

#[async_trait]
impl Connector for NoRoute {
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError> {
        Err(GattError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sunstorm_core::ble::channel::PhoneKeys;
    use sunstorm_core::ble::transport::SameConnector;
    use sunstorm_core::bytes::Key32;
    use sunstorm_core::envelope::SignedEnvelope;
    use sunstorm_core::octane::transport::{HttpRequest, HttpResponse, HttpTransport, TransportError};
    use sunstorm_core::secrets::MemorySecretStore;
    use sunstorm_core::sunstorm::SunstormConfig;

    #[derive(Debug)]
    struct NoNet;

    #[async_trait]
    impl HttpTransport for NoNet {
        async fn send(&self, _r: HttpRequest) -> Result<HttpResponse, TransportError> {
            Err(TransportError::Offline("no network in this test".into()))
        }
    }

    fn facade(secrets: Arc<MemorySecretStore>) -> Sunstorm {
        let url = url::Url::parse("http://127.0.0.1:9").unwrap();
        let mut cfg = SunstormConfig::new(url, Key32([9; 32]));
        cfg.http = Some(Arc::new(NoNet));
        Sunstorm::open(cfg, secrets, Arc::new(SameConnector(Arc::new(NoRoute))), None).unwrap()
    }

    /// The FFI's copy of a bond from before the core owned the bonds moves into the core,
    /// peripheral id included, and is deleted; an unreadable copy is dropped.
    #[tokio::test]
    async fn the_old_stored_bond_moves_into_the_core_once() {
        let secrets = Arc::new(MemorySecretStore::default());
        PhoneKeys::load_or_create(secrets.as_ref()).unwrap();
        let record = BondRecord {
            appliance_identity: Key32([1; 32]),
            appliance_static: Key32([2; 32]),
            appliance_name: "Kitchen\u{202e}".into(),
            endorsement: SignedEnvelope { body: vec![1], sig: vec![2] },
        };
        let old = serde_json::json!({ "peripheral_id": "AA:BB", "record": record });
        secrets.put(LEGACY_BOND_NAME, old.to_string().as_bytes()).unwrap();
        let s = facade(secrets.clone());
        assert!(s.bonded_appliances().unwrap().is_empty());

        migrate_legacy_bond(secrets.as_ref(), &s).await.unwrap();
        let views: Vec<BondedApplianceView> = s.bonded_appliances().unwrap().iter().map(Into::into).collect();
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].appliance_id, Key32([1; 32]).to_hex());
        assert_eq!(views[0].peripheral_id.as_deref(), Some("AA:BB"));
        assert_eq!(views[0].name, clean("Kitchen\u{202e}", TextKind::Name), "the name is shown sanitised");
        assert_eq!(s.bond_record(None).await.unwrap(), record);
        assert_eq!(secrets.get(LEGACY_BOND_NAME).unwrap(), None, "no second copy is left");
        // Nothing left to move: opening again changes nothing.
        migrate_legacy_bond(secrets.as_ref(), &s).await.unwrap();
        assert_eq!(s.bonded_appliances().unwrap().len(), 1);

        secrets.put(LEGACY_BOND_NAME, b"{not json").unwrap();
        migrate_legacy_bond(secrets.as_ref(), &s).await.unwrap();
        assert_eq!(secrets.get(LEGACY_BOND_NAME).unwrap(), None);
        assert_eq!(s.bonded_appliances().unwrap().len(), 1);
    }

    #[test]
    fn appliance_ids_are_parsed_or_refused() {
        assert_eq!(parse_appliance_id(None).unwrap(), None);
        let hex = Key32([7; 32]).to_hex();
        assert_eq!(parse_appliance_id(Some(&format!(" {hex} "))).unwrap(), Some(Key32([7; 32])));
        assert_eq!(parse_appliance_id(Some("kitchen")), Err(SunstormError::NoSuchAppliance));
    }
}
