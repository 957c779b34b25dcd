//! Why the secure channel failed: one error for every layer of the channel.

use crate::ble::framing::FramingError;

/// Why the secure channel failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChannelError {
    /// The framed link below failed.
    #[error("link: {0}")]
    Framing(#[from] FramingError),
    /// Bonding: the appliance says the PIN was wrong.
    #[error("wrong PIN ({attempts_left} attempts left)")]
    WrongPin {
        /// Attempts left before the appliance shows a new PIN.
        attempts_left: u32,
    },
    /// Bonding: too many wrong PINs, the appliance shows a new PIN.
    #[error("too many wrong PINs")]
    PinLocked,
    /// Bonding: the appliance is not in bonding mode; its user must open it first.
    #[error("the appliance is not in bonding mode")]
    BondingClosed,
    /// Bonding: the appliance refuses bonding for a while after wrong PINs (back-off or the
    /// hourly cap); nothing was counted.
    #[error("too many wrong PINs; try again in {retry_after_secs} s")]
    BondingTryLater {
        /// Seconds until the appliance accepts bonding again.
        retry_after_secs: u64,
    },
    /// Bonding: the peer's key confirmation did not match (wrong PIN or an impostor).
    #[error("key confirmation failed (wrong PIN or impostor)")]
    KeyConfirmation,
    /// The appliance's static key is not the bonded one, or it does not know this phone.
    #[error("unknown appliance")]
    UnknownAppliance,
    /// The phone is not bonded with this appliance (appliance side).
    #[error("unknown phone")]
    UnknownPhone,
    /// Bonding: the identity signature or the endorsement does not verify.
    #[error("the appliance's identity proof does not verify")]
    BadIdentityProof,
    /// A Noise or SPAKE2 step failed.
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// A transport message did not decrypt (tampered, or wrong session).
    #[error("message failed authentication")]
    Decrypt,
    /// A transport message with a nonce not above the last accepted one.
    #[error("replayed or reordered message (nonce {nonce})")]
    Replay {
        /// The refused nonce.
        nonce: u64,
    },
    /// The peer reports that our last message did not arrive whole (a NACK).
    #[error("the peer lost our last message")]
    PeerLost,
    /// The session used up its nonces; reconnect.
    #[error("session exhausted; reconnect")]
    Exhausted,
    /// Bonding: the appliance no longer holds our exchange (it expired, or its PIN changed
    /// meanwhile); start again with the PIN on screen. Never counted as a wrong PIN.
    #[error("bonding was interrupted; start again with the PIN on screen")]
    BondingInterrupted,
    /// A message of the wrong type or shape for this step.
    #[error("malformed channel message: {0}")]
    Malformed(String),
    /// A channel message could not be encoded, or its CBOR body not decoded.
    #[error("a channel message could not be encoded or decoded")]
    Codec(#[from] crate::cbor::CborError),
    /// A plaintext above the largest a transport message holds
    /// ([`MAX_PLAINTEXT_LEN`](crate::ble::channel::MAX_PLAINTEXT_LEN)).
    #[error("message of {len} bytes exceeds {max}")]
    TooLarge {
        /// Offered length.
        len: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The phone's secret store failed.
    #[error("the phone's secret store failed")]
    Secret(#[from] crate::secrets::SecretError),
}

impl ChannelError {
    /// True when a new connection may help (link trouble, a corrupted session).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ChannelError::Framing(_) | ChannelError::Decrypt | ChannelError::Exhausted | ChannelError::PeerLost
        )
    }
}

pub(super) fn malformed(what: &str) -> ChannelError {
    ChannelError::Malformed(what.to_string())
}

pub(super) fn snow_err(e: snow::Error) -> ChannelError {
    ChannelError::Handshake(e.to_string())
}
