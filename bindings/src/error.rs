//! The one public error of the FFI surface ([`SunstormError`]) and the small errors the
//! platform returns from its foreign-trait implementations.
//!
//! Two levels, as in application-services: the core keeps rich, per-module errors; the
//! shells see one enum whose variants each map to one thing a screen can say. Every
//! foreign-trait error converts from [`uniffi::UnexpectedUniFFICallbackError`], so a
//! foreign implementation that throws something undeclared becomes an error, never a
//! crash.

use sunstorm_core::address_book::AddressBookError;
use sunstorm_core::appliance::ApplianceError;
use sunstorm_core::approval::ApprovalKeyError;
use sunstorm_core::ble::transport::GattError;
use sunstorm_core::metadata::MetadataError;
use sunstorm_core::octane::client::OctaneError;
use sunstorm_core::pair::PairError;
use sunstorm_core::secrets::SecretError;
use sunstorm_core::sign::SignError;
use sunstorm_core::store::StoreError;
use sunstorm_core::sunstorm::CoreError;

/// Everything that can go wrong in a call to the core, in terms a screen can show.
///
/// `Display` gives a sentence for a person; the variant tells the UI which screen or
/// action to offer (retry, re-enter the code, re-bond…).
///
/// The sentence is the exception's `message` in Kotlin (with the variant's type in stack
/// traces) and its `errorDescription`/`localizedDescription` in Swift (`LocalizedError`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum SunstormError {
    /// The link or QR code is not a Sigil pair link (wrong host, missing session, bad code…).
    #[error("this is not a valid Sigil pair link: {reason}")]
    InvalidLink {
        /// Stable snake_case rejection code (e.g. `wrong_host`), for UI string lookup.
        code: String,
        /// What is wrong with it, for a person.
        reason: String,
    },
    /// The typed validation code is not six digits (nothing was sent to octane).
    #[error("{reason}")]
    InvalidCode {
        /// Stable snake_case rejection code (e.g. `code_too_short`).
        code: String,
        /// What is wrong with it, for a person.
        reason: String,
    },
    /// The validation code was wrong; the user may try again.
    #[error("wrong validation code ({attempts_left} attempts left)")]
    WrongCode {
        /// Attempts octane still allows for this session.
        attempts_left: i32,
    },
    /// Too many wrong codes: the session is locked; the user must start over on the SP's page.
    #[error("too many wrong codes; start the pairing again on the service's page")]
    CodeLocked,
    /// The pair session or sign request has expired.
    #[error("this request has expired; start again on the service's page")]
    Expired,
    /// The pair session or sign request is unknown to octane.
    #[error("this request was not found; it may have been cancelled")]
    NotFound,
    /// A signature did not verify: octane's (not the pinned key), the service's, or the
    /// appliance's. Possibly an attack; nothing was approved.
    #[error("a signature did not verify ({what}); nothing was approved")]
    UntrustedSignature {
        /// Whose signature failed, for a person (e.g. "octane", "service provider").
        what: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// Octane could not be reached (network, TLS, timeout).
    #[error("cannot reach the Sigil service: {reason}")]
    OctaneUnreachable {
        /// What failed.
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// Octane refused the request.
    #[error("the Sigil service refused: {detail} ({code})")]
    OctaneRejected {
        /// Octane's stable snake_case error code.
        code: String,
        /// Octane's sentence for a person.
        detail: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// The pair was revoked (by the user or the service).
    #[error("this pairing was revoked")]
    PairRevoked,
    /// The user's choice is not acceptable (e.g. no wallet selected, a wallet not offered,
    /// a guardrail setting that is not a valid amount, chain or address).
    #[error("{reason}")]
    InvalidSelection {
        /// What to fix, for a person.
        reason: String,
    },
    /// A local guardrail blocks this request.
    #[error("blocked by your guardrails: {summary}")]
    GuardrailBlocked {
        /// The rules that fired, joined for display.
        summary: String,
    },
    /// The return URL is not HTTPS on an origin the service registered; it will not be opened.
    #[error("the service's return address is not safe to open")]
    UnsafeReturnUrl,
    /// No appliance is bonded with this phone yet.
    #[error("no appliance is bonded with this phone")]
    NotBonded,
    /// Several appliances are bonded and the call named none: ask the user which one
    /// (`bonded_appliances`), then call again with its id.
    #[error("several appliances are bonded with this phone; choose one")]
    ChooseAppliance,
    /// The appliance id given is not bonded with this phone (never bonded, or forgotten).
    #[error("that appliance is not bonded with this phone")]
    NoSuchAppliance,
    /// The appliance's key is not the bonded one (possible impostor).
    #[error("this appliance is not the one you bonded with")]
    UnknownAppliance,
    /// Bonding failed: wrong PIN.
    #[error("wrong PIN ({attempts_left} attempts left)")]
    WrongPin {
        /// Attempts the appliance still allows.
        attempts_left: i32,
    },
    /// Too many wrong PINs: the appliance shows a new PIN.
    #[error("too many wrong PINs; the appliance now shows a new PIN")]
    PinLocked,
    /// The appliance is not in bonding mode: ask the user to start bonding on the
    /// appliance, then enter the PIN it shows.
    #[error("the appliance is not in bonding mode; start bonding on the appliance")]
    BondingClosed,
    /// After wrong PINs the appliance refuses bonding for a while ("try again in N s");
    /// nothing was counted.
    #[error("too many wrong PINs; try again in {retry_after_secs} s")]
    BondingTryLater {
        /// Seconds until the appliance accepts bonding again.
        retry_after_secs: i64,
    },
    /// The appliance forgot this phone (from another phone or on the appliance): bond again.
    #[error("this appliance no longer knows this phone; bond again")]
    PhoneForgotten,
    /// A phone cannot forget itself: use another bonded phone or the appliance.
    #[error("a phone cannot forget itself; use another bonded phone or the appliance")]
    CannotForgetSelf,
    /// No phone with that key is bonded with the appliance (already forgotten, or never).
    #[error("no phone with that key is bonded with this appliance")]
    UnknownPhone,
    /// The person at the appliance declined.
    #[error("declined on the appliance")]
    ApplianceDeclined,
    /// The appliance refused the request itself.
    #[error("the appliance refused: {detail} ({code})")]
    ApplianceRefused {
        /// Stable snake_case reason code.
        code: String,
        /// A sentence for a person.
        detail: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// The appliance could not be reached or stopped answering.
    #[error("cannot reach the appliance: {reason}")]
    ApplianceUnreachable {
        /// What failed.
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// Bluetooth is off, absent, or not permitted.
    #[error("Bluetooth is unavailable: {reason}")]
    BluetoothUnavailable {
        /// The platform's reason.
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// The biometric / passcode check failed or was cancelled.
    #[error("identity check not passed")]
    UserPresenceFailed,
    /// The user cancelled the approval key's biometric prompt: nothing was sent to the
    /// appliance and the request still waits (approve again, or reject it).
    #[error("the approval was cancelled at the biometric prompt; nothing was sent")]
    ApprovalCancelled,
    /// Biometrics are locked after too many failed attempts: the user unlocks them (e.g.
    /// with the device passcode) and approves again; the request still waits.
    #[error("biometrics are locked after too many attempts; unlock them and try again")]
    BiometricsLockedOut,
    /// Biometrics changed, so the platform invalidated the approval key. The app enrols
    /// the new key with `enrol_approval_key` (the person at the appliance confirms), then
    /// approves again; the request still waits.
    #[error("your biometrics changed, so the approval key must be enrolled again with the appliance")]
    ApprovalKeyInvalidated,
    /// No biometrics are enrolled on this phone, so the approval key cannot be used: the
    /// user sets up a fingerprint or face in the system settings.
    #[error("set up a fingerprint or face on this phone to approve")]
    NoBiometrics,
    /// The platform's approval key failed otherwise (key store error, a key or signature
    /// of the wrong shape, no approval key given to the core…).
    #[error("the approval key failed: {reason}")]
    ApprovalKeyFailed {
        /// What failed.
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// The platform's secret store (Keychain / Keystore) failed.
    #[error("the secure key store failed: {reason}")]
    SecretStore {
        /// The platform's reason.
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// The local database failed.
    #[error("local storage failed: {reason}")]
    Storage {
        /// What failed.
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// The configuration passed to the core is invalid.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
    /// The step does not fit where the flow stands (e.g. approving before choosing
    /// wallets); show the flow's current screen again.
    #[error("{reason}")]
    WrongStep {
        /// What was attempted and in which state.
        reason: String,
    },
    /// A sign request failed the phone's checks (replay, unbound account, bad validity,
    /// undecodable payload…) and was refused; it is never shown for approval.
    #[error("this request was refused: {reason} ({code})")]
    RequestRefused {
        /// Stable snake_case code (`replay`, `account_not_bound`, `undecodable`…).
        code: String,
        /// A sentence for a person.
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// A metadata bundle from octane was refused (tampered, unsigned, not newer than the
    /// one in use, unreadable) or could not be cached: the bundle in use stays, review
    /// screens are unchanged. Nothing for the user to do; report it if it repeats.
    #[error("the metadata update was refused: {reason} ({code})")]
    MetadataRefused {
        /// Stable snake_case code (`metadata_bad_signature`, `metadata_unsigned`,
        /// `metadata_not_newer`, `metadata_bad_content`…).
        code: String,
        /// A sentence for a person.
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
    /// An address book change was refused: the user fixes the field the code names
    /// (`address_book_bad_chain`, `address_book_unsupported_chain`,
    /// `address_book_bad_address`, `address_book_empty_label`, `address_book_label_too_long`,
    /// `address_book_label_character`), removes a label first (`address_book_full`) or
    /// picks a labelled address (`address_book_not_found`).
    #[error("{reason} ({code})")]
    InvalidAddressLabel {
        /// Stable snake_case code.
        code: String,
        /// A sentence for a person.
        reason: String,
    },
    /// Push notifications are not set up on this phone (no push key in the shared secret
    /// store, or it cannot be read): the notification extension shows nothing; the user
    /// opens the app, which registers again. Code: `no_push_key`, `push_key_error`.
    #[error("{reason} ({code})")]
    PushNotSetUp {
        /// Stable snake_case code.
        code: String,
        /// A sentence for a person.
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets). Not for
        /// display.
        details: String,
    },
    /// The operation was cancelled through its `CancelHandle`.
    #[error("cancelled")]
    Cancelled,
    /// A bug in the core (including a caught panic). Report it; the app keeps running.
    #[error("internal error: {reason}")]
    Internal {
        /// Diagnostic text (no secrets).
        reason: String,
        /// The chain of causes inside the core, for a bug report (never secrets: core
        /// errors carry no key material). Not for display.
        details: String,
    },
}

/// A count for the foreign side (Kotlin `Int`, Swift `Int32`), saturating.
pub(crate) fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Most causes [`details_of`] follows (a cap, so a cyclic `source()` cannot loop).
const MAX_CAUSES: usize = 8;

/// The error and its chain of `source()`s, joined with " <- ", for a bug report.
pub(crate) fn details_of(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    for _ in 0..MAX_CAUSES {
        let Some(cause) = next else { break };
        let text = cause.to_string();
        // Errors that print their cause in their own sentence are not repeated.
        if !out.ends_with(&text) {
            out.push_str(" <- ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

impl SunstormError {
    /// A bug in the core, with `reason` as its details too.
    pub(crate) fn internal(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        SunstormError::Internal { details: reason.clone(), reason }
    }

    /// The chain of causes for a bug report, when this variant carries one.
    pub fn details(&self) -> Option<&str> {
        match self {
            SunstormError::UntrustedSignature { details, .. }
            | SunstormError::OctaneUnreachable { details, .. }
            | SunstormError::OctaneRejected { details, .. }
            | SunstormError::ApplianceRefused { details, .. }
            | SunstormError::ApplianceUnreachable { details, .. }
            | SunstormError::BluetoothUnavailable { details, .. }
            | SunstormError::SecretStore { details, .. }
            | SunstormError::Storage { details, .. }
            | SunstormError::RequestRefused { details, .. }
            | SunstormError::MetadataRefused { details, .. }
            | SunstormError::PushNotSetUp { details, .. }
            | SunstormError::ApprovalKeyFailed { details, .. }
            | SunstormError::Internal { details, .. } => Some(details),
            _ => None,
        }
    }

    /// The one place that decides what a failure crossing the FFI logs: bugs and broken
    /// local storage or key store at `error`, an unreachable or refusing peer at `warn`,
    /// everything the user caused or can fix (wrong code, declined, expired…) at `debug`.
    /// Only the variant's code-like name and its details are logged (no secrets).
    fn logged(self) -> Self {
        let kind = self.kind();
        let details = self.details().unwrap_or("");
        match &self {
            SunstormError::Internal { .. }
            | SunstormError::Storage { .. }
            | SunstormError::SecretStore { .. }
            | SunstormError::ApprovalKeyFailed { .. } => {
                tracing::error!(kind, details, "core call failed")
            }
            SunstormError::OctaneUnreachable { .. }
            | SunstormError::OctaneRejected { .. }
            | SunstormError::ApplianceUnreachable { .. }
            | SunstormError::ApplianceRefused { .. }
            | SunstormError::BluetoothUnavailable { .. }
            | SunstormError::UntrustedSignature { .. }
            | SunstormError::RequestRefused { .. }
            | SunstormError::MetadataRefused { .. } => tracing::warn!(kind, details, "core call failed"),
            _ => tracing::debug!(kind, "core call refused"),
        }
        self
    }

    /// The variant's snake_case name, for logs and `SyncFailureView::error_kind`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            SunstormError::InvalidLink { .. } => "invalid_link",
            SunstormError::InvalidCode { .. } => "invalid_code",
            SunstormError::WrongCode { .. } => "wrong_code",
            SunstormError::CodeLocked => "code_locked",
            SunstormError::Expired => "expired",
            SunstormError::NotFound => "not_found",
            SunstormError::UntrustedSignature { .. } => "untrusted_signature",
            SunstormError::OctaneUnreachable { .. } => "octane_unreachable",
            SunstormError::OctaneRejected { .. } => "octane_rejected",
            SunstormError::PairRevoked => "pair_revoked",
            SunstormError::InvalidSelection { .. } => "invalid_selection",
            SunstormError::GuardrailBlocked { .. } => "guardrail_blocked",
            SunstormError::UnsafeReturnUrl => "unsafe_return_url",
            SunstormError::NotBonded => "not_bonded",
            SunstormError::ChooseAppliance => "choose_appliance",
            SunstormError::NoSuchAppliance => "no_such_appliance",
            SunstormError::UnknownAppliance => "unknown_appliance",
            SunstormError::WrongPin { .. } => "wrong_pin",
            SunstormError::PinLocked => "pin_locked",
            SunstormError::BondingClosed => "bonding_closed",
            SunstormError::BondingTryLater { .. } => "bonding_try_later",
            SunstormError::PhoneForgotten => "phone_forgotten",
            SunstormError::CannotForgetSelf => "cannot_forget_self",
            SunstormError::UnknownPhone => "unknown_phone",
            SunstormError::ApplianceDeclined => "appliance_declined",
            SunstormError::ApplianceRefused { .. } => "appliance_refused",
            SunstormError::ApplianceUnreachable { .. } => "appliance_unreachable",
            SunstormError::BluetoothUnavailable { .. } => "bluetooth_unavailable",
            SunstormError::UserPresenceFailed => "user_presence_failed",
            SunstormError::ApprovalCancelled => "approval_cancelled",
            SunstormError::BiometricsLockedOut => "biometrics_locked_out",
            SunstormError::ApprovalKeyInvalidated => "approval_key_invalidated",
            SunstormError::NoBiometrics => "no_biometrics",
            SunstormError::ApprovalKeyFailed { .. } => "approval_key_failed",
            SunstormError::SecretStore { .. } => "secret_store",
            SunstormError::Storage { .. } => "storage",
            SunstormError::InvalidConfig { .. } => "invalid_config",
            SunstormError::WrongStep { .. } => "wrong_step",
            SunstormError::RequestRefused { .. } => "request_refused",
            SunstormError::MetadataRefused { .. } => "metadata_refused",
            SunstormError::InvalidAddressLabel { .. } => "invalid_address_label",
            SunstormError::PushNotSetUp { .. } => "push_not_set_up",
            SunstormError::Cancelled => "cancelled",
            SunstormError::Internal { .. } => "internal",
        }
    }
}

/// Maps a rejected pair link.
fn map_pair_link(e: sunstorm_core::link::PairLinkError) -> SunstormError {
    SunstormError::InvalidLink { code: e.code().to_string(), reason: e.to_string() }
}

/// Maps a malformed validation code.
fn map_code(e: sunstorm_core::code::CodeError) -> SunstormError {
    SunstormError::InvalidCode { code: e.code().to_string(), reason: e.to_string() }
}

/// Maps a GATT link failure.
fn map_gatt(e: GattError) -> SunstormError {
    let details = details_of(&e);
    match e {
        GattError::Unavailable(reason) => SunstormError::BluetoothUnavailable { reason, details },
        other => SunstormError::ApplianceUnreachable { reason: other.to_string(), details },
    }
}

/// Maps a secret-store failure.
fn map_secret(e: SecretError) -> SunstormError {
    SunstormError::SecretStore { reason: e.to_string(), details: details_of(&e) }
}

/// Maps a store failure.
fn map_store(e: StoreError) -> SunstormError {
    SunstormError::Storage { reason: e.to_string(), details: details_of(&e) }
}

/// Maps an appliance failure.
fn map_appliance(e: ApplianceError) -> SunstormError {
    let details = details_of(&e);
    match e {
        ApplianceError::Link(l) => map_gatt(l),
        ApplianceError::UnknownAppliance => SunstormError::UnknownAppliance,
        ApplianceError::NotBonded => SunstormError::NotBonded,
        ApplianceError::Channel(reason) => {
            SunstormError::ApplianceUnreachable { reason: format!("secure channel failed: {reason}"), details }
        }
        ApplianceError::WrongPin { attempts_left } => SunstormError::WrongPin { attempts_left: count(attempts_left) },
        ApplianceError::PinLocked => SunstormError::PinLocked,
        ApplianceError::BondingClosed => SunstormError::BondingClosed,
        ApplianceError::BondingTryLater { retry_after_secs } => {
            SunstormError::BondingTryLater { retry_after_secs: i64::try_from(retry_after_secs).unwrap_or(i64::MAX) }
        }
        ApplianceError::UserRejected => SunstormError::ApplianceDeclined,
        ApplianceError::Refused { code, message } => SunstormError::ApplianceRefused { code, detail: message, details },
        ApplianceError::Timeout => {
            SunstormError::ApplianceUnreachable { reason: "the appliance did not answer in time".into(), details }
        }
        ApplianceError::Protocol(reason) => {
            SunstormError::ApplianceUnreachable { reason: format!("unexpected answer: {reason}"), details }
        }
        ApplianceError::Cancelled => SunstormError::Cancelled,
        ApplianceError::Secret(s) => SunstormError::SecretStore { reason: s.to_string(), details },
        ApplianceError::PhoneForgotten => SunstormError::PhoneForgotten,
        ApplianceError::CannotForgetSelf => SunstormError::CannotForgetSelf,
        ApplianceError::UnknownPhone => SunstormError::UnknownPhone,
    }
}

/// Maps an octane failure.
fn map_octane(e: OctaneError) -> SunstormError {
    let code = e.code().to_string();
    let details = details_of(&e);
    match e {
        OctaneError::Offline(t) => SunstormError::OctaneUnreachable { reason: t.to_string(), details },
        OctaneError::Timeout => {
            SunstormError::OctaneUnreachable { reason: "octane did not answer in time".into(), details }
        }
        OctaneError::SessionExpired => SunstormError::Expired,
        OctaneError::CodeRejected { attempts_left } => SunstormError::WrongCode { attempts_left: count(attempts_left) },
        OctaneError::SessionLocked => SunstormError::CodeLocked,
        OctaneError::Revoked => SunstormError::PairRevoked,
        OctaneError::PhoneForgotten => SunstormError::PhoneForgotten,
        OctaneError::NotFound => SunstormError::NotFound,
        OctaneError::BadSignature(what) => {
            SunstormError::UntrustedSignature { what: format!("octane ({what})"), details }
        }
        OctaneError::Config(reason) => SunstormError::InvalidConfig { reason },
        OctaneError::Refused { code, message } => {
            SunstormError::OctaneRejected { code: code.to_string(), detail: message, details }
        }
        other @ (OctaneError::ServerError { .. }
        | OctaneError::SessionUsed
        | OctaneError::Forbidden(_)
        | OctaneError::Unauthenticated(_)
        | OctaneError::Protocol(_)) => SunstormError::OctaneRejected { code, detail: other.to_string(), details },
    }
}

/// Maps a pair-flow failure.
fn map_pair(e: PairError) -> SunstormError {
    let code = e.code().to_string();
    let details = details_of(&e);
    match e {
        PairError::Link(l) => map_pair_link(l),
        PairError::Code(c) => map_code(c),
        PairError::CodeRejected { attempts_left } => SunstormError::WrongCode { attempts_left: count(attempts_left) },
        PairError::SessionLocked => SunstormError::CodeLocked,
        PairError::SessionExpired => SunstormError::Expired,
        PairError::Octane(o) => map_octane(o),
        PairError::Appliance(a) => map_appliance(a),
        PairError::RejectedOnAppliance => SunstormError::ApplianceDeclined,
        PairError::Selection(s) => SunstormError::InvalidSelection { reason: s.to_string() },
        PairError::ReturnUrl(_) => SunstormError::UnsafeReturnUrl,
        PairError::BadAttestation(_) => {
            SunstormError::UntrustedSignature { what: "appliance attestation".into(), details }
        }
        PairError::UnknownFlow => SunstormError::NotFound,
        PairError::WrongState { .. } => SunstormError::WrongStep { reason: e.to_string() },
        PairError::NotBonded => SunstormError::NotBonded,
        PairError::Store(s) => map_store(s),
        PairError::Secret(s) => map_secret(s),
        other @ (PairError::SessionUsed | PairError::BadSession(_)) => {
            SunstormError::OctaneRejected { code, detail: other.to_string(), details }
        }
        PairError::Interrupted => SunstormError::Internal { reason: "flow interrupted".into(), details },
    }
}

/// Maps a sign-flow failure.
fn map_sign(e: SignError) -> SunstormError {
    let code = e.code().to_string();
    let details = details_of(&e);
    match e {
        SignError::PairRevoked => SunstormError::PairRevoked,
        SignError::BadSpSignature => SunstormError::UntrustedSignature { what: "service provider".into(), details },
        SignError::BadOctaneSignature => SunstormError::UntrustedSignature { what: "octane".into(), details },
        SignError::BadApplianceSignature(_) | SignError::BadRevocation(_) => {
            SunstormError::UntrustedSignature { what: "appliance".into(), details }
        }
        SignError::MissingReceipt | SignError::BadReceipt(_) => {
            SunstormError::UntrustedSignature { what: "appliance receipt".into(), details }
        }
        SignError::Expired => SunstormError::Expired,
        SignError::Blocked(rules) => SunstormError::GuardrailBlocked { summary: rules.join(", ") },
        SignError::UnknownRequest => SunstormError::NotFound,
        SignError::RejectedOnAppliance => SunstormError::ApplianceDeclined,
        SignError::Approval(k) => map_approval_key(k),
        SignError::Octane(o) => map_octane(o),
        SignError::Appliance(a) => map_appliance(a),
        SignError::Store(s) => map_store(s),
        other @ (SignError::UnknownPair(_)
        | SignError::Malformed(_)
        | SignError::BadValidity(_)
        | SignError::Replay
        | SignError::AccountNotBound(_)
        | SignError::Undecodable(_)) => SunstormError::RequestRefused { code, reason: other.to_string(), details },
    }
}

/// Maps a failure of the platform's approval key (each has its own screen).
fn map_approval_key(e: ApprovalKeyError) -> SunstormError {
    match e {
        ApprovalKeyError::Cancelled => SunstormError::ApprovalCancelled,
        ApprovalKeyError::LockedOut => SunstormError::BiometricsLockedOut,
        ApprovalKeyError::KeyInvalidated => SunstormError::ApprovalKeyInvalidated,
        ApprovalKeyError::NoBiometrics => SunstormError::NoBiometrics,
        ApprovalKeyError::Other(reason) => {
            let details = format!("the approval key failed: {reason}");
            SunstormError::ApprovalKeyFailed { reason, details }
        }
    }
}

/// Maps a facade failure.
fn map_core(e: CoreError) -> SunstormError {
    match e {
        CoreError::NotBonded => SunstormError::NotBonded,
        CoreError::ChooseAppliance => SunstormError::ChooseAppliance,
        CoreError::NoSuchAppliance => SunstormError::NoSuchAppliance,
        CoreError::Pair(p) => map_pair(p),
        CoreError::Sign(s) => map_sign(s),
        CoreError::Appliance(a) => map_appliance(a),
        CoreError::Octane(o) => map_octane(o),
        CoreError::Store(s) => map_store(s),
        CoreError::Metadata(m) => map_metadata(m),
        CoreError::AddressBook(a) => map_address_book(a),
    }
}

/// Maps a refused metadata bundle.
fn map_metadata(e: MetadataError) -> SunstormError {
    match e {
        MetadataError::NotConfigured => SunstormError::InvalidConfig { reason: e.to_string() },
        other => SunstormError::MetadataRefused {
            code: other.code().to_string(),
            reason: other.to_string(),
            details: details_of(&other),
        },
    }
}

/// Maps a refused address book change.
fn map_address_book(e: AddressBookError) -> SunstormError {
    match e {
        AddressBookError::Store(s) => map_store(s),
        other => SunstormError::InvalidAddressLabel { code: other.code().to_string(), reason: other.to_string() },
    }
}

/// Each core error converts through its `map_*` function, then [`SunstormError::logged`]
/// decides what is logged: one log line per failure that crosses the FFI.
macro_rules! from_core_error {
    ($($t:ty => $map:ident),* $(,)?) => {$(
        impl From<$t> for SunstormError {
            fn from(e: $t) -> Self {
                $map(e).logged()
            }
        }
    )*};
}

from_core_error! {
    sunstorm_core::link::PairLinkError => map_pair_link,
    sunstorm_core::code::CodeError => map_code,
    GattError => map_gatt,
    SecretError => map_secret,
    StoreError => map_store,
    ApplianceError => map_appliance,
    OctaneError => map_octane,
    PairError => map_pair,
    SignError => map_sign,
    CoreError => map_core,
    MetadataError => map_metadata,
    AddressBookError => map_address_book,
    ApprovalKeyError => map_approval_key,
}

/// Why a [`crate::BleCentral`] operation failed (thrown by the platform's implementation).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum BleError {
    /// Bluetooth is off, absent, or the app lacks permission.
    #[error("Bluetooth unavailable: {reason}")]
    Unavailable {
        /// The platform's reason.
        reason: String,
    },
    /// No peripheral with that id is known or in range.
    #[error("peripheral not found")]
    NotFound,
    /// The connection is gone.
    #[error("disconnected")]
    Disconnected,
    /// The operation did not complete in the time asked.
    #[error("timed out")]
    Timeout,
    /// Any other platform failure.
    #[error("Bluetooth failure: {reason}")]
    Failed {
        /// The platform's reason.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for BleError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        BleError::Failed { reason: format!("unexpected error from the BLE implementation: {}", e.reason) }
    }
}

impl From<BleError> for GattError {
    fn from(e: BleError) -> Self {
        match e {
            BleError::Unavailable { reason } => GattError::Unavailable(reason),
            BleError::NotFound => GattError::NotFound,
            BleError::Disconnected => GattError::Disconnected,
            BleError::Timeout => GattError::Timeout,
            BleError::Failed { reason } => GattError::Io(reason),
        }
    }
}

/// Why a [`crate::HttpClient`] request got no answer (thrown by the platform's
/// implementation). An HTTP error status is an answer, not an `HttpError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum HttpError {
    /// No connection: offline, DNS failure, connection refused, TLS failure.
    #[error("no connection: {reason}")]
    Offline {
        /// The platform's reason.
        reason: String,
    },
    /// No complete answer within the request's `timeout_ms`.
    #[error("timed out")]
    Timeout,
    /// Any other platform failure (malformed answer, cancelled…).
    #[error("HTTP failure: {reason}")]
    Failed {
        /// The platform's reason.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for HttpError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HttpError::Failed { reason: format!("unexpected error from the HTTP implementation: {}", e.reason) }
    }
}

/// Why the platform's secret store (Keychain / Keystore) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum SecretStoreError {
    /// The store is locked or refused access (e.g. device locked, key invalidated).
    #[error("secret store locked or access refused: {reason}")]
    Unavailable {
        /// The platform's reason.
        reason: String,
    },
    /// Any other failure.
    #[error("secret store failure: {reason}")]
    Failed {
        /// The platform's reason.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for SecretStoreError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        SecretStoreError::Failed { reason: format!("unexpected error from the secret store: {}", e.reason) }
    }
}

impl From<SecretStoreError> for SecretError {
    fn from(e: SecretStoreError) -> Self {
        SecretError::Backend(e.to_string())
    }
}

/// Why the platform's user-presence check could not run (a refusal is not an error: it
/// is `false`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum UserPresenceError {
    /// No biometric or passcode is set up / available.
    #[error("user presence check unavailable: {reason}")]
    Unavailable {
        /// The platform's reason.
        reason: String,
    },
    /// Any other failure.
    #[error("user presence check failed: {reason}")]
    Failed {
        /// The platform's reason.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for UserPresenceError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        UserPresenceError::Failed { reason: format!("unexpected error from the presence check: {}", e.reason) }
    }
}

/// Why a [`crate::LogSink`] or [`crate::FlowListener`] callback failed. The core ignores
/// it (a broken listener never breaks a flow) but logs it once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum CallbackError {
    /// The callback failed.
    #[error("callback failed: {reason}")]
    Failed {
        /// The platform's reason.
        reason: String,
    },
}

impl From<uniffi::UnexpectedUniFFICallbackError> for CallbackError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        CallbackError::Failed { reason: e.reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appliance_errors_map_to_what_a_screen_says() {
        assert_eq!(
            SunstormError::from(ApplianceError::WrongPin { attempts_left: 2 }),
            SunstormError::WrongPin { attempts_left: 2 }
        );
        assert_eq!(SunstormError::from(ApplianceError::UserRejected), SunstormError::ApplianceDeclined);
        assert_eq!(SunstormError::from(ApplianceError::PhoneForgotten), SunstormError::PhoneForgotten);
        assert_eq!(SunstormError::PhoneForgotten.to_string(), "this appliance no longer knows this phone; bond again");
        assert_eq!(SunstormError::from(ApplianceError::CannotForgetSelf), SunstormError::CannotForgetSelf);
        assert_eq!(
            SunstormError::from(ApplianceError::Link(GattError::Unavailable("off".into()))),
            SunstormError::BluetoothUnavailable {
                reason: "off".into(),
                details: "Bluetooth is unavailable: off".into()
            }
        );
        assert!(matches!(
            SunstormError::from(ApplianceError::Link(GattError::Timeout)),
            SunstormError::ApplianceUnreachable { .. }
        ));
        assert_eq!(
            SunstormError::WrongCode { attempts_left: 3 }.to_string(),
            "wrong validation code (3 attempts left)"
        );
    }

    #[test]
    fn bonding_mode_and_back_off_refusals_reach_the_shell_as_their_own_variants() {
        assert_eq!(SunstormError::from(ApplianceError::BondingClosed), SunstormError::BondingClosed);
        let later = SunstormError::from(CoreError::Appliance(ApplianceError::BondingTryLater { retry_after_secs: 42 }));
        assert_eq!(later, SunstormError::BondingTryLater { retry_after_secs: 42 });
        assert_eq!(later.to_string(), "too many wrong PINs; try again in 42 s");
    }

    #[test]
    fn flow_errors_map_to_what_a_screen_says() {
        assert_eq!(
            SunstormError::from(CoreError::Pair(PairError::CodeRejected { attempts_left: 2 })),
            SunstormError::WrongCode { attempts_left: 2 }
        );
        assert_eq!(SunstormError::from(CoreError::Pair(PairError::SessionExpired)), SunstormError::Expired);
        assert_eq!(SunstormError::from(CoreError::Octane(OctaneError::Revoked)), SunstormError::PairRevoked);
        assert_eq!(SunstormError::from(CoreError::NotBonded), SunstormError::NotBonded);
        assert!(matches!(
            SunstormError::from(CoreError::Octane(OctaneError::Forbidden("no".into()))),
            SunstormError::OctaneRejected { ref code, .. } if code == "forbidden"
        ));
        assert!(matches!(
            SunstormError::from(CoreError::Octane(OctaneError::Offline(
                sunstorm_core::octane::transport::TransportError::Offline("down".into())
            ))),
            SunstormError::OctaneUnreachable { .. }
        ));
        assert!(matches!(
            SunstormError::from(CoreError::Sign(SignError::Replay)),
            SunstormError::RequestRefused { ref code, .. } if code == "replay"
        ));
        assert_eq!(
            SunstormError::from(CoreError::Sign(SignError::RejectedOnAppliance)),
            SunstormError::ApplianceDeclined
        );
        assert!(matches!(
            SunstormError::from(CoreError::Pair(PairError::WrongState { action: "approve", state: "code_needed" })),
            SunstormError::WrongStep { .. }
        ));
    }

    #[test]
    fn a_failure_keeps_its_chain_of_causes_for_the_bug_report_but_not_in_the_sentence() {
        let e = SunstormError::from(CoreError::Pair(PairError::Appliance(ApplianceError::Link(GattError::Timeout))));
        assert!(matches!(e, SunstormError::ApplianceUnreachable { .. }));
        let details = e.details().unwrap_or_default();
        assert!(details.contains("the appliance did not answer in time"), "{details}");
        assert!(!e.to_string().contains(" <- "), "the sentence for a person stays short: {e}");
        assert_eq!(SunstormError::WrongCode { attempts_left: 1 }.details(), None, "user errors carry no report");
    }

    #[test]
    fn each_approval_key_failure_reaches_the_shell_as_its_own_variant() {
        let sign = |e| SunstormError::from(CoreError::Sign(SignError::Approval(e)));
        assert_eq!(sign(ApprovalKeyError::Cancelled), SunstormError::ApprovalCancelled);
        assert_eq!(sign(ApprovalKeyError::LockedOut), SunstormError::BiometricsLockedOut);
        assert_eq!(sign(ApprovalKeyError::KeyInvalidated), SunstormError::ApprovalKeyInvalidated);
        assert_eq!(sign(ApprovalKeyError::NoBiometrics), SunstormError::NoBiometrics);
        let other = sign(ApprovalKeyError::Other("keystore unavailable".into()));
        assert!(matches!(&other, SunstormError::ApprovalKeyFailed { reason, .. } if reason == "keystore unavailable"));
        assert_eq!(other.kind(), "approval_key_failed");
        assert!(other.details().is_some_and(|d| d.contains("keystore unavailable")));
        assert_eq!(SunstormError::ApprovalKeyInvalidated.kind(), "approval_key_invalidated");
    }

    #[test]
    fn unexpected_foreign_errors_become_declared_errors() {
        let e = BleError::from(uniffi::UnexpectedUniFFICallbackError::new("boom"));
        assert!(matches!(e, BleError::Failed { ref reason } if reason.contains("boom")));
        assert_eq!(GattError::from(BleError::Disconnected), GattError::Disconnected);
    }
}
