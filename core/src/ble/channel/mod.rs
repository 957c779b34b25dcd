//! The secure channel between the phone and the appliance, above framing.
//!
//! * **Bonding** (once): the appliance shows a fresh 6-digit PIN; SPAKE2 (Ed25519 group,
//!   distinct identities for phone and appliance) turns it into a shared key without
//!   exposing it to offline guessing; both sides prove the key with HMAC-SHA256 over the
//!   transcript (phone first, so a guessing phone learns nothing from a failed attempt);
//!   then, under AEAD keys derived with HKDF, the phone sends its X25519 channel key and
//!   Ed25519 app key, and the appliance answers with its X25519 static key, its Ed25519
//!   identity key, an identity signature over the transcript and an `AppEndorsement`.
//! * **Every connection after that**: Noise KK (`Noise_KK_25519_ChaChaPoly_BLAKE2s`), one
//!   round trip, mutual authentication, forward secrecy. The phone refuses an appliance
//!   whose static key is not the bonded one; the appliance refuses phones it has not bonded.
//! * **Transport**: every message carries its explicit 8-byte nonce (snow's stateless
//!   transport) so a message lost on the radio does not desynchronise the peers; the
//!   receiver accepts only strictly increasing nonces (no replay, no reordering). There is
//!   no in-session rekey: a session ends after [`MAX_SESSION_MESSAGES`] messages in either
//!   direction and every reconnection is a new handshake with fresh ephemeral keys.
//!
//! The message layouts are in `docs/ble-protocol.md` (`## Secure channel`). One role per
//! module: [`wire`] (constants, message types and bodies), [`error`], [`keys`] (long-term
//! keys and bond records), [`pake`] (the PIN step both sides share), [`phone_bond`] and
//! [`appliance_bond`] (each side of bonding), [`kk`] (the Noise KK handshake), [`session`]
//! (transport crypto) and [`driver`] (the async drivers over a
//! [`FramedLink`](crate::ble::framing::FramedLink)). The state machines are sans-I/O (bytes
//! in, bytes out); everything is re-exported here.

pub mod appliance_bond;
pub mod driver;
pub mod error;
pub mod keys;
pub mod kk;
pub mod pake;
pub mod phone_bond;
pub mod session;
pub mod wire;

pub use appliance_bond::ApplianceBonding;
pub use driver::{bond_over, connect_phone, BondRetry, PhoneBondExchange, SecureChannel, HANDSHAKE_TIMEOUT};
pub use error::ChannelError;
pub use keys::{
    generate_x25519_private, load_app_key, x25519_public, ApplianceKeys, BondRecord, BondedPhone, PhoneKeys,
    APP_KEY_NAME, CHANNEL_KEY_NAME,
};
pub use kk::{kk_respond, KkInitiator};
pub use pake::{is_valid_pin, random_pin, BondTranscript};
pub use phone_bond::{PhoneBonding, PhoneBondingConfirm};
pub use session::SecureSession;
pub use wire::{
    bond_reject_message, bond_reject_message_after, kk_reject_message, BondRejectCode, MsgType,
    APPLIANCE_PAKE_IDENTITY, CHANNEL_VERSION, MAX_PIN_ATTEMPTS, MAX_PLAINTEXT_LEN, MAX_SESSION_MESSAGES, NOISE_PARAMS,
    NOISE_PROLOGUE, PHONE_PAKE_IDENTITY, TRANSPORT_OVERHEAD,
};

#[cfg(test)]
mod tests;
