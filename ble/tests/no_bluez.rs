//! Without a Bluetooth service every entry point says `Unavailable` (own binary: libdbus
//! fixes the system bus address once per process).
#![cfg(target_os = "linux")] // BlueZ (the peripheral side and the mock) is Linux-only
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::Duration;

use sunstorm_ble::{scan, serve_ble_appliance, BleTarget, BtleplugConnector, CentralConfig, PeripheralConfig};
use sunstorm_core::ble::transport::{GattError, GattLink};

async fn idle(_link: Box<dyn GattLink>) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bluetooth_service_is_reported_as_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", format!("unix:path={}/absent.sock", dir.path().display()));
    let err = BtleplugConnector::new(BleTarget::Any, CentralConfig::default()).await.unwrap_err();
    assert!(matches!(err, GattError::Unavailable(_)), "{err:?}");
    let err = scan(&CentralConfig::default(), Duration::from_millis(10)).await.unwrap_err();
    assert!(matches!(err, GattError::Unavailable(_)), "{err:?}");
    let err = serve_ble_appliance(PeripheralConfig::default(), idle).await.unwrap_err();
    assert!(matches!(err, GattError::Unavailable(_)), "{err:?}");
}
