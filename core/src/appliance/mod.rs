//! Talking to the appliance: the operations the flows need ([`ApplianceApi`]), their errors
//! and progress. The wire protocol lives in `proto`, the phone-side client in `client`.

pub mod client;
pub mod proto;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::approval::{ApprovalPolicy, ApprovalProof, ApprovalPublicKey};
use crate::ble::channel::ChannelError;
use crate::ble::framing::FramingError;
use crate::ble::transport::GattError;
use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::decode::DisplayDigest;
use crate::envelope::SignedEnvelope;
use crate::model::CountersignedRequest;

/// What the appliance says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplianceInfo {
    /// Its user-visible name.
    pub name: String,
    /// Firmware (or simulator) version.
    pub firmware: String,
    /// Application protocol version it speaks.
    pub protocol_version: u16,
    /// Its Ed25519 identity key.
    pub identity: Key32,
}

/// One phone bonded with the appliance, as `ListPhones` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneEntry {
    /// The phone's Ed25519 app key (names it in `ForgetPhone` and to octane).
    pub app_key: Key32,
    /// The name the phone gave at bonding (sanitise before showing it).
    pub name: String,
    /// Unix seconds.
    pub bonded_at: u64,
    /// The phone that asked.
    pub this_phone: bool,
}

/// What the appliance answers to a sign request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplianceSignature {
    /// The chain signature (EVM: 65 bytes `r‖s‖v`; Solana: 64 bytes Ed25519).
    pub signature: Vec<u8>,
    /// Its signed receipt ([`crate::receipt::SignReceipt`] under the identity key) when the
    /// request carried a display digest; `None` from an appliance that sends none (the
    /// phone then refuses the signature, see `SignError::MissingReceipt`).
    pub receipt: Option<SignedEnvelope>,
}

/// Progress of one appliance operation, for the UI ("confirm on your appliance").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplianceProgress {
    /// Request bytes handed to the link so far, of the total.
    Sending {
        /// Bytes sent so far.
        sent: usize,
        /// Total bytes of the request.
        total: usize,
    },
    /// The appliance is waiting for its user to confirm on the device.
    WaitingForUser,
    /// The link dropped and the request is being retried (same request id).
    Reconnecting {
        /// Retry number, from 1.
        attempt: u32,
    },
}

/// A callback for [`ApplianceProgress`].
pub type ProgressFn = Arc<dyn Fn(ApplianceProgress) + Send + Sync>;

/// Why an appliance operation failed, in terms a UI can show.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ApplianceError {
    /// The radio link failed (and retries, where allowed, did not help).
    #[error("appliance link: {0}")]
    Link(#[from] GattError),
    /// The appliance's key is not the bonded one (possible impostor), or none is bonded.
    #[error("this appliance is not the one you bonded with")]
    UnknownAppliance,
    /// No appliance is bonded with this phone yet.
    #[error("no appliance is bonded with this phone")]
    NotBonded,
    /// The secure channel failed (handshake, decryption, replay).
    #[error("secure channel failed: {0}")]
    Channel(#[source] ChannelError),
    /// Bonding failed because the PIN was wrong.
    #[error("wrong PIN ({attempts_left} attempts left)")]
    WrongPin {
        /// Attempts the appliance still allows before it shows a new PIN.
        attempts_left: u32,
    },
    /// Too many wrong PINs: the appliance shows a new PIN.
    #[error("too many wrong PINs; the appliance shows a new PIN")]
    PinLocked,
    /// The appliance is not in bonding mode: its user must open bonding on it first.
    #[error("the appliance is not in bonding mode; start bonding on the appliance")]
    BondingClosed,
    /// The appliance refuses bonding for a while after wrong PINs; nothing was counted.
    #[error("too many wrong PINs; try again in {retry_after_secs} s")]
    BondingTryLater {
        /// Seconds until the appliance accepts bonding again.
        retry_after_secs: u64,
    },
    /// The person at the appliance declined.
    #[error("declined on the appliance")]
    UserRejected,
    /// The appliance refused the request itself (bad signature, unbound account, …).
    #[error("the appliance refused: {code}: {message}")]
    Refused {
        /// Stable snake_case reason code.
        code: String,
        /// A sentence for a person.
        message: String,
    },
    /// The appliance did not answer in time (a waiting user never causes this).
    #[error("the appliance did not answer in time")]
    Timeout,
    /// The appliance answered something this phone cannot understand.
    #[error("unexpected answer from the appliance: {0}")]
    Protocol(String),
    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// The phone's secret store failed.
    #[error("the phone's secret store failed")]
    Secret(#[from] crate::secrets::SecretError),
    /// The appliance forgot this phone (from another phone or on the appliance): it
    /// refuses it until the phone bonds again.
    #[error("this appliance no longer knows this phone; bond again")]
    PhoneForgotten,
    /// A phone cannot forget itself through the appliance: forget it from another phone
    /// or on the appliance (and forget the appliance on this phone).
    #[error("a phone cannot forget itself; use another bonded phone or the appliance")]
    CannotForgetSelf,
    /// No phone with that key is bonded with the appliance (already forgotten, or never).
    #[error("no phone with that key is bonded with this appliance")]
    UnknownPhone,
}

/// Maps a framing failure to what a UI shows: the link failed or lost a message.
fn framing_error(e: FramingError) -> ApplianceError {
    match e {
        FramingError::Link(l) => ApplianceError::Link(l),
        FramingError::ReassemblyTimeout => ApplianceError::Link(GattError::Timeout),
        FramingError::TooLarge { len, max } => {
            ApplianceError::Protocol(format!("message of {len} bytes exceeds {max}"))
        }
        other => ApplianceError::Link(GattError::Io(format!("message lost in transit: {other}"))),
    }
}

/// The channel's failures as a UI shows them (the channel, a lower layer, never names
/// this type).
impl From<ChannelError> for ApplianceError {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Framing(f) => framing_error(f),
            ChannelError::WrongPin { attempts_left } => ApplianceError::WrongPin { attempts_left },
            ChannelError::PinLocked => ApplianceError::PinLocked,
            ChannelError::BondingClosed => ApplianceError::BondingClosed,
            ChannelError::BondingTryLater { retry_after_secs } => ApplianceError::BondingTryLater { retry_after_secs },
            ChannelError::UnknownAppliance | ChannelError::BadIdentityProof => ApplianceError::UnknownAppliance,
            ChannelError::Secret(s) => ApplianceError::Secret(s),
            ChannelError::PeerLost => ApplianceError::Link(GattError::Io(
                "message lost in transit: the appliance kept receiving our message broken".into(),
            )),
            other => ApplianceError::Channel(other),
        }
    }
}

/// The operations the pair, sign and revoke flows need from the appliance. Each call that
/// changes state carries a request id: retried with the same id, it returns the first
/// result and never acts twice.
#[async_trait]
pub trait ApplianceApi: Send + Sync {
    /// The appliance's name, version and identity.
    async fn info(&self) -> Result<ApplianceInfo, ApplianceError>;

    /// The appliance's wallets on the given chains (all chains when empty).
    async fn wallets(&self, chains: &[ChainId]) -> Result<Vec<AccountId>, ApplianceError>;

    /// Asks the appliance (and its user) to approve a pair: it verifies octane's signature
    /// on `session`, shows the SP and `bindings`, and returns its signed `PairAttestation`.
    async fn approve_pair(
        &self,
        request_id: Uuid,
        session: &SignedEnvelope,
        validation_code: &str,
        bindings: &[AccountId],
        progress: Option<ProgressFn>,
    ) -> Result<SignedEnvelope, ApplianceError>;

    /// Asks the appliance to sign; returns the signature bytes (EVM: 65 bytes `r‖s‖v`;
    /// Solana: 64 bytes Ed25519). The request id is the sign request's own.
    async fn sign(
        &self,
        request: &CountersignedRequest,
        progress: Option<ProgressFn>,
    ) -> Result<Vec<u8>, ApplianceError>;

    /// [`ApplianceApi::sign`] for a caller that already decoded the request, knows its id
    /// and shows it (the sign engine): `display_digest` commits to the phone's review
    /// screen; the appliance shows its fingerprint and answers with the signature and a
    /// receipt over it. The appliance checks the id against the body it verifies, and
    /// `approval` (the phone's approval key's signature over the request and digest)
    /// against the key this phone enrolled, as the pair's approval policy asks.
    async fn sign_request(
        &self,
        request_id: Uuid,
        request: &CountersignedRequest,
        display_digest: Option<DisplayDigest>,
        approval: Option<ApprovalProof>,
        progress: Option<ProgressFn>,
    ) -> Result<ApplianceSignature, ApplianceError>;

    /// Enrols a new approval key for this phone (after the old one was invalidated); the
    /// appliance's user confirms.
    async fn enrol_approval_key(
        &self,
        request_id: Uuid,
        public_key: &ApprovalPublicKey,
        progress: Option<ProgressFn>,
    ) -> Result<(), ApplianceError>;

    /// Changes a pair's approval policy; the appliance's user confirms. Returns the policy
    /// the appliance now holds.
    async fn set_approval_policy(
        &self,
        request_id: Uuid,
        pair_id: Uuid,
        policy: ApprovalPolicy,
        progress: Option<ProgressFn>,
    ) -> Result<ApprovalPolicy, ApplianceError>;

    /// Asks the appliance to drop a pair; returns its signed `PairRevocation`.
    async fn revoke_pair(&self, request_id: Uuid, pair_id: Uuid) -> Result<SignedEnvelope, ApplianceError>;

    /// The pair ids the appliance holds.
    async fn list_pairs(&self) -> Result<Vec<Uuid>, ApplianceError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_failures_reach_the_ui_as_their_own_errors() {
        let cases = [
            (
                ChannelError::BondingTryLater { retry_after_secs: 57 },
                ApplianceError::BondingTryLater { retry_after_secs: 57 },
            ),
            (ChannelError::WrongPin { attempts_left: 2 }, ApplianceError::WrongPin { attempts_left: 2 }),
            (ChannelError::BadIdentityProof, ApplianceError::UnknownAppliance),
            (ChannelError::Framing(FramingError::ReassemblyTimeout), ApplianceError::Link(GattError::Timeout)),
        ];
        for (from, to) in cases {
            assert_eq!(ApplianceError::from(from), to);
        }
    }
}
