//! The channel's wire format: protocol constants, the message types (first byte of every
//! message), the CBOR bodies of the bonding messages and the refusal messages. Layouts are
//! in `docs/ble-protocol.md` (`## Secure channel`).

use serde::{Deserialize, Serialize};

use super::error::{malformed, ChannelError};
use crate::approval::ApprovalPublicKey;
use crate::bytes::Key32;
use crate::envelope::SignedEnvelope;

/// Version of the channel protocol (bonding messages and the Noise prologue).
pub const CHANNEL_VERSION: u16 = 1;
/// Noise protocol name of every post-bonding connection.
pub const NOISE_PARAMS: &str = "Noise_KK_25519_ChaChaPoly_BLAKE2s";
/// Noise prologue: binds the handshake to this protocol and version.
pub const NOISE_PROLOGUE: &[u8] = b"sigil-ble-channel/v1 Noise_KK_25519_ChaChaPoly_BLAKE2s";
/// SPAKE2 identity of the phone (side A).
pub const PHONE_PAKE_IDENTITY: &[u8] = b"sigil/v1/phone";
/// SPAKE2 identity of the appliance (side B).
pub const APPLIANCE_PAKE_IDENTITY: &[u8] = b"sigil/v1/appliance";
/// Wrong PINs an appliance allows before it shows a new PIN.
pub const MAX_PIN_ATTEMPTS: u32 = 3;
/// Messages per direction after which a session refuses to go on (reconnect = new handshake).
pub const MAX_SESSION_MESSAGES: u64 = 1 << 32;
/// Bytes a transport message adds to its plaintext: type (1) + nonce (8) + AEAD tag (16).
pub const TRANSPORT_OVERHEAD: usize = 1 + 8 + 16;
/// Largest plaintext one transport message carries (Noise's 65535-byte limit minus the tag).
pub const MAX_PLAINTEXT_LEN: usize = 65535 - 16;

/// First byte of every channel message: what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MsgType {
    /// Phone → appliance: start bonding (SPAKE2 message A).
    BondHello = 0x10,
    /// Appliance → phone: SPAKE2 message B.
    BondPake = 0x11,
    /// Phone → appliance: key confirmation and the phone's sealed keys.
    BondConfirm = 0x12,
    /// Appliance → phone: key confirmation and the appliance's sealed keys.
    BondAccept = 0x13,
    /// Appliance → phone: bonding refused (wrong PIN, PIN locked, malformed, not in
    /// bonding mode, try later).
    BondReject = 0x14,
    /// Phone → appliance: Noise KK message 1.
    KkInit = 0x20,
    /// Appliance → phone: Noise KK message 2.
    KkResponse = 0x21,
    /// Appliance → phone: this phone is not bonded.
    KkReject = 0x22,
    /// Either way: an encrypted transport message.
    Transport = 0x30,
    /// Either way, unencrypted: "your last message did not arrive whole; send it again".
    /// Only a hint (it cannot be authenticated): it triggers an idempotent resend.
    Nack = 0x31,
}

impl MsgType {
    /// The type of a received message, from its first byte.
    pub fn of(msg: &[u8]) -> Option<MsgType> {
        Some(match msg.first()? {
            0x10 => MsgType::BondHello,
            0x11 => MsgType::BondPake,
            0x12 => MsgType::BondConfirm,
            0x13 => MsgType::BondAccept,
            0x14 => MsgType::BondReject,
            0x20 => MsgType::KkInit,
            0x21 => MsgType::KkResponse,
            0x22 => MsgType::KkReject,
            0x30 => MsgType::Transport,
            0x31 => MsgType::Nack,
            _ => return None,
        })
    }
}

#[derive(Serialize, Deserialize)]
pub(super) struct BondHello {
    pub(super) v: u16,
    #[serde(with = "serde_bytes")]
    pub(super) pake: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct BondPake {
    #[serde(with = "serde_bytes")]
    pub(super) pake: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct BondSealed {
    #[serde(with = "serde_bytes")]
    pub(super) mac: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub(super) sealed: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct PhoneBondPayload {
    pub(super) channel_static: Key32,
    pub(super) app_key: Key32,
    pub(super) name: String,
    /// The phone's approval public key (absent from older phones and phones without one;
    /// then left out of the encoding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) approval_key: Option<ApprovalPublicKey>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct ApplianceBondPayload {
    pub(super) channel_static: Key32,
    pub(super) identity: Key32,
    pub(super) name: String,
    #[serde(with = "serde_bytes")]
    pub(super) transcript_sig: Vec<u8>,
    pub(super) endorsement: SignedEnvelope,
}

/// Why the appliance refused a bonding attempt (wire codes, snake_case strings; new codes
/// are only ever added, see `docs/ble-protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BondRejectCode {
    /// The key confirmation failed: wrong PIN.
    WrongPin,
    /// Too many wrong PINs; a new PIN is shown (and bonding waits `retry_after_secs`).
    PinLocked,
    /// The bonding message was malformed or of another version.
    BadRequest,
    /// The appliance is not in bonding mode.
    BondingClosed,
    /// Bonding is refused for `retry_after_secs` (wrong-PIN back-off or hourly cap).
    TryLater,
    /// A code this phone does not know (from a newer appliance): a refusal, never a
    /// PIN verdict. Never sent.
    #[serde(other)]
    Unknown,
}

#[derive(Serialize, Deserialize)]
pub(super) struct BondReject {
    pub(super) code: BondRejectCode,
    pub(super) attempts_left: u32,
    /// Seconds until the appliance accepts bonding again (absent: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) retry_after_secs: Option<u64>,
}

pub(super) fn frame(t: MsgType, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 1);
    m.push(t as u8);
    m.extend_from_slice(body);
    m
}

pub(super) fn frame_cbor<T: Serialize>(t: MsgType, value: &T) -> Result<Vec<u8>, ChannelError> {
    let body = crate::cbor::to_vec(value)?;
    Ok(frame(t, &body))
}

pub(super) fn unframe(expected: MsgType, msg: &[u8]) -> Result<&[u8], ChannelError> {
    match MsgType::of(msg) {
        Some(t) if t == expected => Ok(msg.get(1..).unwrap_or_default()),
        Some(t) => Err(ChannelError::Malformed(format!("expected {expected:?}, got {t:?}"))),
        None => Err(malformed("unknown message type")),
    }
}

pub(super) fn decode_cbor<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ChannelError> {
    Ok(crate::cbor::from_slice(body)?)
}

/// A refusal message the appliance sends during bonding.
pub fn bond_reject_message(code: BondRejectCode, attempts_left: u32) -> Vec<u8> {
    bond_reject_message_after(code, attempts_left, None)
}

/// A refusal message that also tells the phone how many seconds to wait before the
/// appliance accepts bonding again (`try_later`, `pin_locked`).
pub fn bond_reject_message_after(code: BondRejectCode, attempts_left: u32, retry_after_secs: Option<u64>) -> Vec<u8> {
    frame_cbor(MsgType::BondReject, &BondReject { code, attempts_left, retry_after_secs })
        .unwrap_or_else(|_| vec![MsgType::BondReject as u8])
}

/// The refusal the appliance sends to a phone it has not bonded.
pub fn kk_reject_message() -> Vec<u8> {
    vec![MsgType::KkReject as u8]
}
