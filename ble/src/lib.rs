//! Desktop Bluetooth LE for Sunstorm, kept out of `sunstorm-core` so the mobile library
//! never carries btleplug, bluer or libdbus (see `docs/adr/0004-desktop-ble-crate.md`).
//!
//! - [`central`]: the phone side on a desktop — [`BtleplugConnector`] implements the
//!   core's `Connector` seam over btleplug (BlueZ, CoreBluetooth, WinRT), plus [`scan`].
//! - `peripheral` (Linux): the appliance simulator as a real BLE peripheral over BlueZ
//!   ([`serve_ble_appliance`]), serving the same protocol as the socket mode.
//!
//! Testing without a radio: `docs/ble-testing.md`.

pub mod central;
#[cfg(target_os = "linux")]
pub mod peripheral;

pub use central::{scan, BleTarget, BtleplugConnector, CentralConfig, FoundAppliance};
#[cfg(target_os = "linux")]
pub use peripheral::{serve_ble_appliance, BluezPeripheral, PeripheralConfig};
