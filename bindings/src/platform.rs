//! Foreign traits: what only the platform has. The shells implement these in Swift or
//! Kotlin and hand them to [`crate::SunstormCore`] (or to [`crate::set_log_sink`]). The BLE
//! central ([`BleCentral`]) is defined beside its adapter in [`crate::ble`], with the
//! [`crate::BleEvents`] object it is handed.
//!
//! Threading contract (all traits): the core calls these methods from its own worker
//! threads, never from the caller's (main/UI) thread, and may call them concurrently.
//! Methods may block until done; each receives a timeout where waiting is expected, and
//! must honour it. Implementations must be thread-safe (`Send + Sync`; in Swift a
//! `final class … : Sendable`, in Kotlin any class with thread-safe state).

pub use crate::ble::BleCentral;
use crate::error::{CallbackError, SecretStoreError, UserPresenceError};
use crate::flow_views::PairStateView;
use crate::views::FlowProgress;

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
