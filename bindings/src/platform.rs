//! Foreign traits: what only the platform has. The shells implement these in Swift or
//! Kotlin and hand them to [`crate::SunstormCore`] (or to [`crate::set_log_sink`]).
//!
//! Threading contract (all traits): the core calls these methods from its own worker
//! threads, never from the caller's (main/UI) thread, and may call them concurrently.
//! Methods may block until done; each receives a timeout where waiting is expected, and
//! must honour it. Implementations must be thread-safe (`Send + Sync`; in Swift a
//! `final class … : Sendable`, in Kotlin any class with thread-safe state).

use std::sync::Arc;

use crate::ble::BleEvents;
use crate::error::{BleError, CallbackError, SecretStoreError, UserPresenceError};
use crate::flow_views::PairStateView;
use crate::views::FlowProgress;

/// A peripheral seen during a scan.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BlePeripheral {
    /// The platform's stable id for it (CoreBluetooth identifier UUID, Android MAC address).
    pub id: String,
    /// Its advertised name, if any.
    pub name: Option<String>,
    /// Signal strength in dBm, if known.
    pub rssi: Option<i32>,
}

/// The platform's BLE central role (CoreBluetooth `CBCentralManager`,
/// `android.bluetooth.BluetoothGatt`), reduced to what the appliance link needs: the
/// Sigil service has one write and one notify characteristic (UUIDs in
/// `docs/ble-protocol.md`, also returned by `gatt_uuids()`).
///
/// Notifications are pushed, as the platforms deliver them: `connect` receives a
/// [`BleEvents`] object; call `on_notification` from the platform's
/// "characteristic changed" callback and `on_disconnected` when the link drops.
///
/// Numbers are signed (Kotlin `Int`/`Long`, Swift `Int32`/`Int64`) as the platform APIs
/// hand them out; the core checks their ranges.
#[uniffi::export(with_foreign)]
pub trait BleCentral: Send + Sync {
    /// Scans for peripherals advertising `service_uuid` for up to `timeout_ms`, then
    /// returns what was seen (possibly nothing).
    fn scan(&self, service_uuid: String, timeout_ms: i32) -> Result<Vec<BlePeripheral>, BleError>;

    /// Connects to `peripheral_id`, discovers the Sigil service, subscribes to the notify
    /// characteristic, and returns an id for this connection (any value, unique while it
    /// lives). Deliver this connection's notifications and disconnection to `events`.
    fn connect(&self, peripheral_id: String, events: Arc<BleEvents>, timeout_ms: i32) -> Result<i64, BleError>;

    /// Negotiates the ATT MTU (Android `requestMtu`; iOS: report
    /// `maximumWriteValueLength(for: .withoutResponse) + 3`). Returns the MTU in force
    /// (23..=517).
    fn request_mtu(&self, connection_id: i64, preferred_mtu: i32) -> Result<i32, BleError>;

    /// Writes one PDU (at most MTU−3 bytes) to the write characteristic, without response
    /// where the peripheral allows; returns when the platform accepted it.
    fn write(&self, connection_id: i64, value: Vec<u8>) -> Result<(), BleError>;

    /// Disconnects; afterwards, nothing more is delivered for this connection.
    fn disconnect(&self, connection_id: i64) -> Result<(), BleError>;
}

/// The platform's secret store (iOS Keychain, Android Keystore-wrapped storage) for the
/// phone's private keys. Names match `[A-Za-z0-9._-]{1,64}`. Values are key material:
/// never log them, and store them device-only (no cloud backup).
#[uniffi::export(with_foreign)]
pub trait SecretStore: Send + Sync {
    /// Reads a secret; `None` when absent.
    fn get(&self, name: String) -> Result<Option<Vec<u8>>, SecretStoreError>;
    /// Writes (or replaces) a secret.
    fn put(&self, name: String, value: Vec<u8>) -> Result<(), SecretStoreError>;
    /// Removes a secret; absent is not an error.
    fn delete(&self, name: String) -> Result<(), SecretStoreError>;
}

/// The platform's user-presence check (Face ID / Touch ID / passcode, BiometricPrompt).
#[uniffi::export(with_foreign)]
pub trait UserPresence: Send + Sync {
    /// Asks the user to prove presence, showing `reason` ("Approve pairing with Acme").
    /// Returns `true` when verified, `false` when the user cancelled or failed. Blocks
    /// until the user answers (the core calls it from a worker thread).
    fn verify(&self, reason: String) -> Result<bool, UserPresenceError>;
}

/// Severity of a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Developer diagnostics.
    Debug,
    /// Flow steps.
    Info,
    /// Something unexpected that the core handled.
    Warn,
    /// A failure.
    Error,
}

/// One log record from the core. Never contains secrets or user data beyond ids.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LogRecord {
    /// Severity.
    pub level: LogLevel,
    /// The Rust module that emitted it (e.g. `sunstorm_core::pair`).
    pub target: String,
    /// The message followed by its structured fields as `key=value`.
    pub message: String,
}

/// Where the core's logs go (os_log / Logcat / a file). Called from any thread, possibly
/// concurrently; must not block for long and must not call back into the core.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    /// Receives one record.
    fn log(&self, record: LogRecord) -> Result<(), CallbackError>;
}

/// Receives progress of one flow (pairing, signing, bonding) for the UI, e.g. "waiting for
/// confirmation on the appliance". Called from a worker thread: dispatch to the UI
/// thread yourself.
#[uniffi::export(with_foreign)]
pub trait FlowListener: Send + Sync {
    /// One step or progress update.
    fn on_progress(&self, progress: FlowProgress) -> Result<(), CallbackError>;
    /// A pair flow changed state (only for the listener set with `set_flow_listener`).
    fn on_pair_state(&self, state: PairStateView) -> Result<(), CallbackError>;
}
