//! The uniffi surface of Sunstorm core: what the iOS and Android shells call.
//!
//! Shape (see `docs/adr/0002-ffi-surface.md` and `docs/embedding.md`):
//! - one long-lived object, [`SunstormCore`], built from a [`CoreConfig`] and the
//!   platform's services;
//! - foreign traits for what only the platform has: [`BleCentral`], [`HttpClient`],
//!   [`SecretStore`], [`UserPresence`], [`ApprovalKey`], [`LogSink`], and a per-flow [`FlowListener`];
//! - async methods running on a tokio runtime the core object owns, each cancellable
//!   through a [`CancelHandle`];
//! - view-model records for screens and one public error, [`SunstormError`].
//!
//! No panic crosses the FFI: work runs in tasks whose panics become
//! `SunstormError::Internal`, and uniffi catches any other as an internal error.
uniffi::setup_scaffolding!();

mod activity;
mod appliance;
mod approval;
mod ble;
mod blocking;
mod cancel;
mod error;
mod events;
mod flow_views;
mod flows;
mod http;
mod logging;
mod metadata;
mod phones;
mod platform;
mod push;
mod secrets;
mod settings;
mod sunstorm;
mod views;

pub use activity::{AuditActor, AuditEventView, AuditRow, SignHistoryRow, SignOutcomeView};
pub use appliance::PeripheralConnectors;
pub use approval::{ApprovalKey, ApprovalKeyError, ApprovalPolicyView, ForeignApprovalKey};
pub use ble::{BleCentral, BleEvents, BlePeripheral, BleTimeouts, ForeignConnector, ForeignGattLink};
pub use cancel::CancelHandle;
pub use error::{BleError, CallbackError, HttpError, SecretStoreError, SunstormError, UserPresenceError};
pub use flow_views::{
    FieldRow, NoticeView, PairOutcomeView, PairStateView, PairView, SignRequestView, SpCardView, SyncFailureView,
    SyncReportView, WalletRowState, WalletRowView,
};
pub use http::{HttpClient, HttpHeader, HttpMethod, HttpRequest, HttpResponse};
pub use logging::{clear_log_sink, set_log_sink};
pub use metadata::{AddressLabelView, MetadataOrigin, MetadataSourceView, MetadataStatusView, MetadataUpdateView};
pub use phones::{BondedPhoneView, ForgottenPhoneView};
pub use platform::{FlowListener, LogLevel, LogRecord, LogSink, SecretStore, UserPresence};
pub use push::{NotificationExtension, NotificationExtensionConfig, NotificationOutcomeView, PushPlatform};
pub use secrets::ForeignSecretStore;
pub use settings::{ChainLimitSetting, GuardrailSettings};
pub use sunstorm::{CoreConfig, SunstormCore};
pub use views::{ApplianceInfoView, ApplianceRow, BondedApplianceView, FlowProgress, GattUuids, PairLink, WalletView};

/// The version of the Sunstorm core this library was built from.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The Sigil GATT service and characteristic UUIDs, for the platform's scan filter and
/// service discovery.
#[uniffi::export]
pub fn gatt_uuids() -> GattUuids {
    use sunstorm_core::ble::transport::{NOTIFY_CHAR_UUID, SERVICE_UUID, WRITE_CHAR_UUID};
    GattUuids {
        service: SERVICE_UUID.to_string(),
        write_characteristic: WRITE_CHAR_UUID.to_string(),
        notify_characteristic: NOTIFY_CHAR_UUID.to_string(),
    }
}

/// Panics on purpose outside any core task, to prove uniffi turns it into an error on the
/// foreign side (Kotlin `InternalException`, Swift/Python internal error) instead of a
/// crash. A test hook: only with the feature `testing`, never in the shipped library.
#[cfg(feature = "testing")]
#[uniffi::export]
pub fn debug_force_panic() -> Result<(), SunstormError> {
    #[allow(clippy::panic)]
    if std::hint::black_box(true) {
        panic!("deliberate panic requested by debug_force_panic");
    }
    Ok(())
}
