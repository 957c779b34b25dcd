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
//! The message layouts are in `docs/ble-protocol.md` (`## Secure channel`). The state
//! machines here are sans-I/O (bytes in, bytes out); [`SecureChannel`], [`bond_over`] and
//! [`connect_phone`] drive them over a [`FramedLink`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use ed25519_dalek::SigningKey;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use snow::params::{DHChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::{HandshakeState, StatelessTransportState};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::appliance::ApplianceError;
use crate::ble::framing::{FramedLink, FramingError};
use crate::ble::transport::LinkError;
use crate::bytes::Key32;
use crate::envelope::{self, Domain, SignedEnvelope};
use crate::model::{AppEndorsement, STATEMENT_VERSION};
use crate::secrets::SecretStore;

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
/// Secret-store name of the phone's X25519 channel private key.
pub const CHANNEL_KEY_NAME: &str = "channel.x25519";
/// Secret-store name of the phone's Ed25519 app key (32-byte seed).
pub const APP_KEY_NAME: &str = "app.ed25519";

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
    #[error("key confirmation failed")]
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
    /// A plaintext above [`MAX_PLAINTEXT_LEN`].
    #[error("message of {len} bytes exceeds {max}")]
    TooLarge {
        /// Offered length.
        len: usize,
        /// Largest allowed.
        max: usize,
    },
    /// The phone's secret store failed.
    #[error("secret store: {0}")]
    SecretStore(String),
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

/// Maps a framing failure to what a UI shows: the link failed or lost a message.
pub fn framing_to_appliance_error(e: FramingError) -> ApplianceError {
    match e {
        FramingError::Link(l) => ApplianceError::Link(l),
        FramingError::ReassemblyTimeout => ApplianceError::Link(LinkError::Timeout),
        FramingError::TooLarge { len, max } => {
            ApplianceError::Protocol(format!("message of {len} bytes exceeds {max}"))
        }
        other => ApplianceError::Link(LinkError::Io(format!("message lost in transit: {other}"))),
    }
}

impl From<ChannelError> for ApplianceError {
    fn from(e: ChannelError) -> Self {
        match e {
            ChannelError::Framing(f) => framing_to_appliance_error(f),
            ChannelError::WrongPin { attempts_left } => ApplianceError::WrongPin { attempts_left },
            ChannelError::PinLocked => ApplianceError::PinLocked,
            ChannelError::BondingClosed => ApplianceError::BondingClosed,
            ChannelError::BondingTryLater { retry_after_secs } => ApplianceError::BondingTryLater { retry_after_secs },
            ChannelError::UnknownAppliance | ChannelError::BadIdentityProof => ApplianceError::UnknownAppliance,
            ChannelError::SecretStore(s) => ApplianceError::SecretStore(s),
            ChannelError::PeerLost => ApplianceError::Link(LinkError::Io(
                "message lost in transit: the appliance kept receiving our message broken".into(),
            )),
            ChannelError::KeyConfirmation => {
                ApplianceError::Channel("key confirmation failed (wrong PIN or impostor)".into())
            }
            other => ApplianceError::Channel(other.to_string()),
        }
    }
}

fn malformed(what: &str) -> ChannelError {
    ChannelError::Malformed(what.to_string())
}

fn snow_err(e: snow::Error) -> ChannelError {
    ChannelError::Handshake(e.to_string())
}

/// The X25519 public key of a private key (through snow's resolver, no hand-rolled curve).
pub fn x25519_public(private: &[u8; 32]) -> Result<Key32, ChannelError> {
    let mut dh = DefaultResolver
        .resolve_dh(&DHChoice::Curve25519)
        .ok_or_else(|| ChannelError::Handshake("no X25519 implementation".into()))?;
    dh.set(private);
    let public: [u8; 32] =
        dh.pubkey().try_into().map_err(|_| ChannelError::Handshake("bad X25519 public key length".into()))?;
    Ok(Key32(public))
}

/// A fresh random X25519 private key.
pub fn generate_x25519_private() -> Zeroizing<[u8; 32]> {
    let mut k = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(k.as_mut());
    k
}

/// The phone's long-term keys: its X25519 channel key and its Ed25519 app key. Held in
/// memory only as long as needed; zeroized on drop.
pub struct PhoneKeys {
    channel_private: Zeroizing<[u8; 32]>,
    channel_public: Key32,
    app: SigningKey,
}

impl std::fmt::Debug for PhoneKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhoneKeys")
            .field("channel_public", &self.channel_public)
            .field("app_public", &self.app_public())
            .finish_non_exhaustive()
    }
}

fn store_err(e: crate::secrets::SecretError) -> ChannelError {
    ChannelError::SecretStore(e.to_string())
}

fn read_key32(store: &dyn SecretStore, name: &str) -> Result<Option<Zeroizing<[u8; 32]>>, ChannelError> {
    match store.get(name).map_err(store_err)? {
        None => Ok(None),
        Some(v) => {
            let mut k = Zeroizing::new([0u8; 32]);
            if v.len() != 32 {
                return Err(ChannelError::SecretStore(format!("secret `{name}` has the wrong length")));
            }
            k.copy_from_slice(v.as_slice());
            Ok(Some(k))
        }
    }
}

impl PhoneKeys {
    /// Loads the phone's keys from `store`; `None` when they were never created.
    pub fn load(store: &dyn SecretStore) -> Result<Option<Self>, ChannelError> {
        let (Some(channel_private), Some(app_seed)) =
            (read_key32(store, CHANNEL_KEY_NAME)?, read_key32(store, APP_KEY_NAME)?)
        else {
            return Ok(None);
        };
        let channel_public = x25519_public(&channel_private)?;
        Ok(Some(Self { channel_private, channel_public, app: SigningKey::from_bytes(&app_seed) }))
    }

    /// Loads the phone's keys, creating (and storing) any that are missing.
    pub fn load_or_create(store: &dyn SecretStore) -> Result<Self, ChannelError> {
        if read_key32(store, CHANNEL_KEY_NAME)?.is_none() {
            let k = generate_x25519_private();
            store.put(CHANNEL_KEY_NAME, k.as_ref()).map_err(store_err)?;
        }
        if read_key32(store, APP_KEY_NAME)?.is_none() {
            let k = SigningKey::generate(&mut OsRng);
            store.put(APP_KEY_NAME, k.as_bytes()).map_err(store_err)?;
        }
        Self::load(store)?.ok_or_else(|| ChannelError::SecretStore("keys vanished after write".into()))
    }

    /// The phone's X25519 channel public key.
    pub fn channel_public(&self) -> Key32 {
        self.channel_public
    }

    /// The phone's Ed25519 app public key (endorsed by the appliance at bonding).
    pub fn app_public(&self) -> Key32 {
        Key32(self.app.verifying_key().to_bytes())
    }

    /// The phone's app signing key (signs requests to octane's app API).
    pub fn app_key(&self) -> &SigningKey {
        &self.app
    }
}

/// The phone's endorsed app signing key from `store` ([`ApplianceError::NotBonded`] when
/// the phone has no keys yet).
pub fn app_signing_key(store: &dyn SecretStore) -> Result<SigningKey, ApplianceError> {
    let seed = read_key32(store, APP_KEY_NAME)?.ok_or(ApplianceError::NotBonded)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// What the phone keeps about its bonded appliance (public data only; the phone's own
/// secrets stay in the [`SecretStore`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondRecord {
    /// The appliance's Ed25519 identity key.
    pub appliance_identity: Key32,
    /// The appliance's X25519 static channel key (pinned for Noise KK).
    pub appliance_static: Key32,
    /// The appliance's user-visible name.
    pub appliance_name: String,
    /// The appliance's `AppEndorsement` of this phone's app key.
    pub endorsement: SignedEnvelope,
}

/// What the appliance keeps about a bonded phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondedPhone {
    /// The phone's X25519 static channel key.
    pub channel_static: Key32,
    /// The phone's Ed25519 app key.
    pub app_key: Key32,
    /// The name the phone gave.
    pub name: String,
    /// Unix seconds.
    pub bonded_at: u64,
}

/// The statement the appliance's identity key signs at bonding (under
/// [`Domain::BondTranscript`]): it ties the identity to the static key and to this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondTranscript {
    /// Always [`STATEMENT_VERSION`].
    pub v: u8,
    /// SHA-256 of the SPAKE2 transcript.
    pub transcript: Key32,
    /// The phone's X25519 channel key.
    pub phone_static: Key32,
    /// The phone's Ed25519 app key.
    pub app_key: Key32,
    /// The appliance's X25519 channel key.
    pub appliance_static: Key32,
    /// The appliance's Ed25519 identity key (the signer).
    pub appliance_identity: Key32,
}

#[derive(Serialize, Deserialize)]
struct BondHello {
    v: u16,
    #[serde(with = "serde_bytes")]
    pake: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct BondPake {
    #[serde(with = "serde_bytes")]
    pake: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct BondSealed {
    #[serde(with = "serde_bytes")]
    mac: Vec<u8>,
    #[serde(with = "serde_bytes")]
    sealed: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct PhoneBondPayload {
    channel_static: Key32,
    app_key: Key32,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct ApplianceBondPayload {
    channel_static: Key32,
    identity: Key32,
    name: String,
    #[serde(with = "serde_bytes")]
    transcript_sig: Vec<u8>,
    endorsement: SignedEnvelope,
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
struct BondReject {
    code: BondRejectCode,
    attempts_left: u32,
    /// Seconds until the appliance accepts bonding again (absent: now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after_secs: Option<u64>,
}

fn frame(t: MsgType, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + 1);
    m.push(t as u8);
    m.extend_from_slice(body);
    m
}

fn frame_cbor<T: Serialize>(t: MsgType, value: &T) -> Result<Vec<u8>, ChannelError> {
    let body = crate::cbor::to_vec(value).map_err(|e| ChannelError::Malformed(e.to_string()))?;
    Ok(frame(t, &body))
}

fn unframe(expected: MsgType, msg: &[u8]) -> Result<&[u8], ChannelError> {
    match MsgType::of(msg) {
        Some(t) if t == expected => Ok(msg.get(1..).unwrap_or_default()),
        Some(t) => Err(ChannelError::Malformed(format!("expected {expected:?}, got {t:?}"))),
        None => Err(malformed("unknown message type")),
    }
}

fn decode_cbor<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ChannelError> {
    crate::cbor::from_slice(body).map_err(|e| ChannelError::Malformed(e.to_string()))
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

fn push_lp(out: &mut Vec<u8>, part: &[u8]) {
    let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part);
}

fn transcript_hash(pake_a: &[u8], pake_b: &[u8]) -> [u8; 32] {
    let mut t = Vec::new();
    push_lp(&mut t, NOISE_PROLOGUE);
    push_lp(&mut t, PHONE_PAKE_IDENTITY);
    push_lp(&mut t, APPLIANCE_PAKE_IDENTITY);
    push_lp(&mut t, pake_a);
    push_lp(&mut t, pake_b);
    Sha256::digest(&t).into()
}

/// The four keys bonding derives from the SPAKE2 key, bound to the transcript.
struct BondKeys {
    confirm_phone: Zeroizing<[u8; 32]>,
    confirm_appliance: Zeroizing<[u8; 32]>,
    seal_phone: Zeroizing<[u8; 32]>,
    seal_appliance: Zeroizing<[u8; 32]>,
    transcript: [u8; 32],
}

impl BondKeys {
    fn derive(pake_key: &[u8], transcript: [u8; 32]) -> Result<Self, ChannelError> {
        let hk = Hkdf::<Sha256>::new(Some(&transcript), pake_key);
        let expand = |info: &[u8]| -> Result<Zeroizing<[u8; 32]>, ChannelError> {
            let mut k = Zeroizing::new([0u8; 32]);
            hk.expand(info, k.as_mut()).map_err(|_| ChannelError::Handshake("hkdf".into()))?;
            Ok(k)
        };
        Ok(Self {
            confirm_phone: expand(b"sigil bond v1 confirm phone")?,
            confirm_appliance: expand(b"sigil bond v1 confirm appliance")?,
            seal_phone: expand(b"sigil bond v1 seal phone")?,
            seal_appliance: expand(b"sigil bond v1 seal appliance")?,
            transcript,
        })
    }

    fn mac(&self, key: &[u8; 32], label: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| ChannelError::Handshake("hmac key".into()))?;
        m.update(label);
        m.update(&self.transcript);
        Ok(m.finalize().into_bytes().to_vec())
    }

    fn check_mac(&self, key: &[u8; 32], label: &[u8], got: &[u8]) -> Result<(), ChannelError> {
        let want = self.mac(key, label)?;
        if want.len() == got.len() && bool::from(want.ct_eq(got)) {
            Ok(())
        } else {
            Err(ChannelError::KeyConfirmation)
        }
    }

    fn seal(&self, key: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        // Each seal key encrypts exactly one message, so the zero nonce is never reused.
        ChaCha20Poly1305::new(Key::from_slice(key))
            .encrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: plaintext, aad: &self.transcript })
            .map_err(|_| ChannelError::Handshake("seal".into()))
    }

    fn open(&self, key: &[u8; 32], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ChannelError> {
        ChaCha20Poly1305::new(Key::from_slice(key))
            .decrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: sealed, aad: &self.transcript })
            .map(Zeroizing::new)
            .map_err(|_| ChannelError::Decrypt)
    }
}

const MAC_LABEL_PHONE: &[u8] = b"phone";
const MAC_LABEL_APPLIANCE: &[u8] = b"appliance";

/// Checks a PIN's shape: exactly six ASCII digits.
pub fn is_valid_pin(pin: &str) -> bool {
    pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit())
}

/// A fresh random six-digit PIN.
pub fn random_pin() -> String {
    // Rejection sampling keeps the distribution uniform.
    loop {
        let n = OsRng.next_u32();
        if n < 4_294_000_000 {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// Phone side of bonding, after sending `BondHello`.
pub struct PhoneBonding {
    spake: Spake2<Ed25519Group>,
    pake_a: Vec<u8>,
}

impl PhoneBonding {
    /// Starts bonding with the PIN the appliance shows; returns the `BondHello` to send.
    pub fn start(pin: &str) -> Result<(Self, Vec<u8>), ChannelError> {
        let (spake, pake_a) = Spake2::<Ed25519Group>::start_a(
            &Password::new(pin.as_bytes()),
            &Identity::new(PHONE_PAKE_IDENTITY),
            &Identity::new(APPLIANCE_PAKE_IDENTITY),
        );
        let msg = frame_cbor(MsgType::BondHello, &BondHello { v: CHANNEL_VERSION, pake: pake_a.clone() })?;
        Ok((Self { spake, pake_a }, msg))
    }

    /// Handles the appliance's `BondPake` (or `BondReject`); returns the `BondConfirm`.
    pub fn on_pake(
        self,
        msg: &[u8],
        keys: &PhoneKeys,
        phone_name: &str,
    ) -> Result<(PhoneBondingConfirm, Vec<u8>), ChannelError> {
        check_reject(msg)?;
        let pake: BondPake = decode_cbor(unframe(MsgType::BondPake, msg)?)?;
        let key = Zeroizing::new(
            self.spake.finish(&pake.pake).map_err(|e| ChannelError::Handshake(format!("spake2: {e:?}")))?,
        );
        let bk = BondKeys::derive(&key, transcript_hash(&self.pake_a, &pake.pake))?;
        let payload = PhoneBondPayload {
            channel_static: keys.channel_public(),
            app_key: keys.app_public(),
            name: phone_name.to_string(),
        };
        let plain = crate::cbor::to_vec(&payload).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        let sealed = bk.seal(&bk.seal_phone, &plain)?;
        let mac = bk.mac(&bk.confirm_phone, MAC_LABEL_PHONE)?;
        let out = frame_cbor(MsgType::BondConfirm, &BondSealed { mac, sealed })?;
        Ok((PhoneBondingConfirm { bk, phone_static: keys.channel_public(), app_key: keys.app_public() }, out))
    }
}

fn check_reject(msg: &[u8]) -> Result<(), ChannelError> {
    if MsgType::of(msg) != Some(MsgType::BondReject) {
        return Ok(());
    }
    let r: BondReject = decode_cbor(msg.get(1..).unwrap_or_default())?;
    Err(match r.code {
        BondRejectCode::WrongPin => ChannelError::WrongPin { attempts_left: r.attempts_left },
        BondRejectCode::PinLocked => ChannelError::PinLocked,
        BondRejectCode::BadRequest => malformed("the appliance refused the bonding request"),
        BondRejectCode::BondingClosed => ChannelError::BondingClosed,
        BondRejectCode::TryLater => ChannelError::BondingTryLater { retry_after_secs: r.retry_after_secs.unwrap_or(0) },
        BondRejectCode::Unknown => malformed("the appliance refused bonding for a reason this app does not know"),
    })
}

/// Phone side of bonding, after sending `BondConfirm`.
pub struct PhoneBondingConfirm {
    bk: BondKeys,
    phone_static: Key32,
    app_key: Key32,
}

impl PhoneBondingConfirm {
    /// Handles `BondAccept` (or `BondReject`): checks the appliance's key confirmation, its
    /// identity signature over the transcript and the endorsement of this phone's app key.
    pub fn on_accept(self, msg: &[u8]) -> Result<BondRecord, ChannelError> {
        check_reject(msg)?;
        let acc: BondSealed = decode_cbor(unframe(MsgType::BondAccept, msg)?)?;
        self.bk.check_mac(&self.bk.confirm_appliance, MAC_LABEL_APPLIANCE, &acc.mac)?;
        let plain = self.bk.open(&self.bk.seal_appliance, &acc.sealed)?;
        let p: ApplianceBondPayload = decode_cbor(&plain)?;
        let statement = BondTranscript {
            v: STATEMENT_VERSION,
            transcript: Key32(self.bk.transcript),
            phone_static: self.phone_static,
            app_key: self.app_key,
            appliance_static: p.channel_static,
            appliance_identity: p.identity,
        };
        let body = crate::cbor::to_vec(&statement).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        envelope::verify_bytes(Domain::BondTranscript, p.identity.as_bytes(), &body, &p.transcript_sig)
            .map_err(|_| ChannelError::BadIdentityProof)?;
        let endorsed: AppEndorsement = p
            .endorsement
            .open(Domain::AppEndorsement, p.identity.as_bytes())
            .map_err(|_| ChannelError::BadIdentityProof)?;
        if endorsed.app_key != self.app_key || endorsed.appliance_identity != p.identity {
            return Err(ChannelError::BadIdentityProof);
        }
        Ok(BondRecord {
            appliance_identity: p.identity,
            appliance_static: p.channel_static,
            appliance_name: p.name,
            endorsement: p.endorsement,
        })
    }
}

/// The appliance's long-term keys, as bonding and the Noise responder need them.
pub struct ApplianceKeys<'a> {
    /// Ed25519 identity key.
    pub identity: &'a SigningKey,
    /// X25519 static private key.
    pub channel_private: &'a [u8; 32],
    /// User-visible name.
    pub name: &'a str,
}

/// Appliance side of bonding, after answering `BondHello` with `BondPake`.
pub struct ApplianceBonding {
    bk: BondKeys,
}

impl ApplianceBonding {
    /// Handles `BondHello` with the PIN on screen; returns the `BondPake` to send.
    pub fn start(pin: &str, hello: &[u8]) -> Result<(Self, Vec<u8>), ChannelError> {
        let h: BondHello = decode_cbor(unframe(MsgType::BondHello, hello)?)?;
        if h.v != CHANNEL_VERSION {
            return Err(ChannelError::Malformed(format!("channel version {} not supported", h.v)));
        }
        let (spake, pake_b) = Spake2::<Ed25519Group>::start_b(
            &Password::new(pin.as_bytes()),
            &Identity::new(PHONE_PAKE_IDENTITY),
            &Identity::new(APPLIANCE_PAKE_IDENTITY),
        );
        let key = Zeroizing::new(spake.finish(&h.pake).map_err(|e| ChannelError::Handshake(format!("spake2: {e:?}")))?);
        let bk = BondKeys::derive(&key, transcript_hash(&h.pake, &pake_b))?;
        let out = frame_cbor(MsgType::BondPake, &BondPake { pake: pake_b })?;
        Ok((Self { bk }, out))
    }

    /// Handles `BondConfirm`: a wrong PIN gives [`ChannelError::KeyConfirmation`] (the caller
    /// counts it and answers with [`bond_reject_message`]). On success returns the bonded
    /// phone and the `BondAccept` to send.
    /// The state is kept (`&self`), so the caller can hold on to the exchange and answer a
    /// duplicate `BondConfirm` with the reply it already sent.
    pub fn on_confirm(
        &self,
        msg: &[u8],
        keys: &ApplianceKeys<'_>,
        now: u64,
    ) -> Result<(BondedPhone, Vec<u8>), ChannelError> {
        let c: BondSealed = decode_cbor(unframe(MsgType::BondConfirm, msg)?)?;
        self.bk.check_mac(&self.bk.confirm_phone, MAC_LABEL_PHONE, &c.mac)?;
        let plain = self.bk.open(&self.bk.seal_phone, &c.sealed)?;
        let p: PhoneBondPayload = decode_cbor(&plain)?;
        let identity = Key32(keys.identity.verifying_key().to_bytes());
        let appliance_static = x25519_public(keys.channel_private)?;
        let statement = BondTranscript {
            v: STATEMENT_VERSION,
            transcript: Key32(self.bk.transcript),
            phone_static: p.channel_static,
            app_key: p.app_key,
            appliance_static,
            appliance_identity: identity,
        };
        let body = crate::cbor::to_vec(&statement).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        let transcript_sig = envelope::sign_bytes(Domain::BondTranscript, keys.identity, &body).to_vec();
        let endorsement = SignedEnvelope::seal(
            Domain::AppEndorsement,
            keys.identity,
            &AppEndorsement { v: STATEMENT_VERSION, app_key: p.app_key, appliance_identity: identity, issued_at: now },
        )
        .map_err(|e| ChannelError::Malformed(e.to_string()))?;
        let payload = ApplianceBondPayload {
            channel_static: appliance_static,
            identity,
            name: keys.name.to_string(),
            transcript_sig,
            endorsement,
        };
        let plain = crate::cbor::to_vec(&payload).map_err(|e| ChannelError::Malformed(e.to_string()))?;
        let sealed = self.bk.seal(&self.bk.seal_appliance, &plain)?;
        let mac = self.bk.mac(&self.bk.confirm_appliance, MAC_LABEL_APPLIANCE)?;
        let out = frame_cbor(MsgType::BondAccept, &BondSealed { mac, sealed })?;
        let name: String = p.name.chars().take(64).collect();
        Ok((BondedPhone { channel_static: p.channel_static, app_key: p.app_key, name, bonded_at: now }, out))
    }
}

fn noise_params() -> Result<NoiseParams, ChannelError> {
    NOISE_PARAMS.parse().map_err(snow_err)
}

/// Phone side of a Noise KK handshake, after sending message 1.
pub struct KkInitiator {
    hs: HandshakeState,
}

impl KkInitiator {
    /// Starts Noise KK towards the bonded appliance; returns `KkInit` to send.
    pub fn start(keys: &PhoneKeys, appliance_static: &Key32) -> Result<(Self, Vec<u8>), ChannelError> {
        let mut hs = snow::Builder::new(noise_params()?)
            .prologue(NOISE_PROLOGUE)
            .map_err(snow_err)?
            .local_private_key(keys.channel_private.as_ref())
            .map_err(snow_err)?
            .remote_public_key(appliance_static.as_bytes())
            .map_err(snow_err)?
            .build_initiator()
            .map_err(snow_err)?;
        let mut buf = vec![0u8; 256];
        let n = hs.write_message(&[], &mut buf).map_err(snow_err)?;
        buf.truncate(n);
        Ok((Self { hs }, frame(MsgType::KkInit, &buf)))
    }

    /// Handles message 2. An appliance that is not the bonded one cannot produce it
    /// ([`ChannelError::UnknownAppliance`]), nor can one that refuses this phone.
    pub fn finish(mut self, msg: &[u8]) -> Result<SecureSession, ChannelError> {
        match MsgType::of(msg) {
            Some(MsgType::KkReject) => return Err(ChannelError::UnknownAppliance),
            Some(MsgType::KkResponse) => {}
            _ => return Err(malformed("expected the Noise KK response")),
        }
        let body = msg.get(1..).unwrap_or_default();
        let mut payload = vec![0u8; body.len()];
        self.hs.read_message(body, &mut payload).map_err(|_| ChannelError::UnknownAppliance)?;
        SecureSession::from_handshake(self.hs)
    }
}

/// Appliance side of Noise KK: finds which bonded phone sent `KkInit` by trial decryption
/// (no phone identifier travels in clear), and answers. [`ChannelError::UnknownPhone`]
/// when none matches (the caller answers with [`kk_reject_message`]).
pub fn kk_respond(
    channel_private: &[u8; 32],
    bonded_phones: &[Key32],
    msg: &[u8],
) -> Result<(SecureSession, Key32, Vec<u8>), ChannelError> {
    let body = unframe(MsgType::KkInit, msg)?;
    let params = noise_params()?;
    for phone in bonded_phones {
        let mut hs = snow::Builder::new(params.clone())
            .prologue(NOISE_PROLOGUE)
            .map_err(snow_err)?
            .local_private_key(channel_private)
            .map_err(snow_err)?
            .remote_public_key(phone.as_bytes())
            .map_err(snow_err)?
            .build_responder()
            .map_err(snow_err)?;
        let mut payload = vec![0u8; body.len()];
        if hs.read_message(body, &mut payload).is_err() {
            continue;
        }
        let mut out = vec![0u8; 256];
        let n = hs.write_message(&[], &mut out).map_err(snow_err)?;
        out.truncate(n);
        let session = SecureSession::from_handshake(hs)?;
        return Ok((session, *phone, frame(MsgType::KkResponse, &out)));
    }
    Err(ChannelError::UnknownPhone)
}

/// An established session: AEAD-protected transport messages with explicit nonces.
pub struct SecureSession {
    state: StatelessTransportState,
    remote_static: Key32,
    next_send: Mutex<u64>,
    last_recv: Mutex<Option<u64>>,
}

impl std::fmt::Debug for SecureSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureSession").field("remote_static", &self.remote_static).finish_non_exhaustive()
    }
}

impl SecureSession {
    fn from_handshake(hs: HandshakeState) -> Result<Self, ChannelError> {
        let remote: [u8; 32] = hs
            .get_remote_static()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| ChannelError::Handshake("no remote static key".into()))?;
        let state = hs.into_stateless_transport_mode().map_err(snow_err)?;
        Ok(Self { state, remote_static: Key32(remote), next_send: Mutex::new(0), last_recv: Mutex::new(None) })
    }

    /// The peer's authenticated X25519 static key.
    pub fn remote_static(&self) -> Key32 {
        self.remote_static
    }

    /// Encrypts one message: `0x30 ‖ nonce (u64 BE) ‖ ciphertext+tag`.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(ChannelError::TooLarge { len: plaintext.len(), max: MAX_PLAINTEXT_LEN });
        }
        let nonce = {
            let mut n = self.next_send.lock().map_err(|_| ChannelError::Exhausted)?;
            if *n >= MAX_SESSION_MESSAGES {
                return Err(ChannelError::Exhausted);
            }
            let cur = *n;
            *n += 1;
            cur
        };
        let mut out = Vec::with_capacity(TRANSPORT_OVERHEAD + plaintext.len());
        out.push(MsgType::Transport as u8);
        out.extend_from_slice(&nonce.to_be_bytes());
        let mut ct = vec![0u8; plaintext.len() + 16];
        let n = self.state.write_message(nonce, plaintext, &mut ct).map_err(|_| ChannelError::Decrypt)?;
        ct.truncate(n);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts one message, refusing nonces not above the last accepted one.
    pub fn open(&self, msg: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let body = unframe(MsgType::Transport, msg)?;
        let nonce_bytes: [u8; 8] =
            body.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(|| malformed("transport message too short"))?;
        let nonce = u64::from_be_bytes(nonce_bytes);
        let ct = body.get(8..).unwrap_or_default();
        if ct.len() < 16 {
            return Err(malformed("transport message too short"));
        }
        if nonce >= MAX_SESSION_MESSAGES {
            return Err(ChannelError::Exhausted);
        }
        let mut last = self.last_recv.lock().map_err(|_| ChannelError::Decrypt)?;
        if let Some(l) = *last {
            if nonce <= l {
                return Err(ChannelError::Replay { nonce });
            }
        }
        let mut out = vec![0u8; ct.len()];
        let n = self.state.read_message(nonce, ct, &mut out).map_err(|_| ChannelError::Decrypt)?;
        out.truncate(n);
        // Only an authenticated message moves the window.
        *last = Some(nonce);
        Ok(out)
    }
}

/// Default time a handshake step may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`SecureSession`] over a [`FramedLink`]: send and receive plaintext messages.
pub struct SecureChannel {
    link: Arc<FramedLink>,
    session: SecureSession,
}

impl SecureChannel {
    /// Wraps an established session.
    pub fn new(link: Arc<FramedLink>, session: SecureSession) -> Self {
        Self { link, session }
    }

    /// The framed link underneath.
    pub fn link(&self) -> &Arc<FramedLink> {
        &self.link
    }

    /// The peer's authenticated static key.
    pub fn remote_static(&self) -> Key32 {
        self.session.remote_static()
    }

    /// Encrypts and sends one message; `progress(sent, total)` follows the framing.
    pub async fn send(
        &self,
        plaintext: &[u8],
        progress: Option<&(dyn Fn(usize, usize) + Send + Sync)>,
    ) -> Result<(), ChannelError> {
        let msg = self.session.seal(plaintext)?;
        self.link.send_message(&msg, progress).await?;
        Ok(())
    }

    /// Receives and decrypts the next message, waiting at most `timeout`. Replayed
    /// (old-nonce) messages are dropped silently and the wait goes on.
    pub async fn recv(&self, timeout: Duration) -> Result<Vec<u8>, ChannelError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(ChannelError::Framing(FramingError::Link(LinkError::Timeout)));
            }
            let msg = self.link.recv_message(left).await?;
            if MsgType::of(&msg) == Some(MsgType::Nack) {
                return Err(ChannelError::PeerLost);
            }
            match self.session.open(&msg) {
                Err(ChannelError::Replay { nonce }) => {
                    tracing::debug!(nonce, "dropped a replayed transport message");
                }
                other => return other,
            }
        }
    }

    /// Tells the peer its last message did not arrive whole (see [`MsgType::Nack`]).
    pub async fn send_nack(&self) -> Result<(), ChannelError> {
        self.link.send_message(&[MsgType::Nack as u8], None).await?;
        Ok(())
    }

    /// Closes the link.
    pub async fn close(&self) {
        self.link.close().await;
    }
}

/// How the phone retransmits during bonding (see `docs/ble-protocol.md`, "Retransmission").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondRetry {
    /// Wait this long for the appliance's next bonding message before resending ours.
    pub resend_after: Duration,
    /// Resends per connection (after a silence, a NACK or a broken reply) before giving up
    /// on the connection.
    pub max_resends: u32,
}

impl Default for BondRetry {
    fn default() -> Self {
        Self { resend_after: Duration::from_millis(1500), max_resends: 8 }
    }
}

enum PhoneStage {
    /// `BondHello` sent, waiting for `BondPake`.
    Hello(PhoneBonding),
    /// `BondConfirm` computed (once, for this exchange), waiting for `BondAccept`.
    Confirm { st: PhoneBondingConfirm, pake: Vec<u8>, confirm: Vec<u8> },
}

/// The phone's side of ONE bonding exchange (one SPAKE2 run, one PIN try), driven over one
/// or more connections. Its messages are computed once and resent byte for byte, so the
/// appliance recognises a resend as a duplicate of the same exchange: it answers it with
/// the reply it already sent, never counts it as a PIN try and never bonds twice.
pub struct PhoneBondExchange {
    hello: Vec<u8>,
    stage: Option<PhoneStage>,
}

impl std::fmt::Debug for PhoneBondExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let stage = match self.stage {
            Some(PhoneStage::Hello(_)) => "hello",
            Some(PhoneStage::Confirm { .. }) => "confirm",
            None => "finished",
        };
        f.debug_struct("PhoneBondExchange").field("stage", &stage).finish_non_exhaustive()
    }
}

impl PhoneBondExchange {
    /// Starts an exchange with the PIN the appliance shows.
    pub fn start(pin: &str) -> Result<Self, ChannelError> {
        let (st, hello) = PhoneBonding::start(pin)?;
        Ok(Self { hello, stage: Some(PhoneStage::Hello(st)) })
    }

    /// Runs (or continues) the exchange on a fresh connection: sends `BondHello` (the same
    /// bytes every time), then `BondConfirm` once the appliance's `BondPake` arrives, until
    /// `BondAccept` or `BondReject`. While waiting it resends its last message after
    /// `retry.resend_after` of silence, at once on a NACK or a broken reply, at most
    /// `retry.max_resends` times; a link failure ends the run with a
    /// [`ChannelError::Framing`] error (the caller may reconnect and call `run` again).
    pub async fn run(
        &mut self,
        link: &FramedLink,
        keys: &PhoneKeys,
        phone_name: &str,
        retry: &BondRetry,
    ) -> Result<BondRecord, ChannelError> {
        use tracing::Instrument;
        let span = tracing::info_span!("channel.bond", mtu = link.mtu());
        async move {
            // Every connection starts with BondHello; our BondConfirm goes out on this
            // connection only after the appliance answered it.
            link.send_message(&self.hello, None).await?;
            let mut confirm_sent_here = false;
            let mut resends: u32 = 0;
            loop {
                let lost = match link.recv_message(retry.resend_after).await {
                    Ok(msg) => match self.on_message(&msg, keys, phone_name, &mut confirm_sent_here)? {
                        Step::Send(out) => {
                            link.send_message(&out, None).await?;
                            continue;
                        }
                        Step::Wait => continue,
                        Step::Done(rec) => {
                            tracing::info!(appliance = %rec.appliance_identity.fingerprint(), resends, "bonded");
                            return Ok(rec);
                        }
                        Step::Resend => ChannelError::PeerLost,
                    },
                    Err(e @ FramingError::Link(LinkError::Timeout)) => ChannelError::Framing(e),
                    Err(e @ (FramingError::Link(_) | FramingError::TooLarge { .. } | FramingError::MtuTooSmall(_))) => {
                        return Err(e.into())
                    }
                    // A reply arrived broken: resending our message asks for it again.
                    Err(e) => ChannelError::Framing(e),
                };
                if resends >= retry.max_resends {
                    tracing::warn!(error = %lost, resends, "bonding: giving up on this connection");
                    return Err(lost);
                }
                resends += 1;
                let again = match &self.stage {
                    Some(PhoneStage::Confirm { confirm, .. }) if confirm_sent_here => confirm,
                    _ => &self.hello,
                };
                tracing::debug!(error = %lost, resends, "bonding: resending our last message");
                link.send_message(again, None).await?;
            }
        }
        .instrument(span)
        .await
    }

    fn on_message(
        &mut self,
        msg: &[u8],
        keys: &PhoneKeys,
        phone_name: &str,
        confirm_sent_here: &mut bool,
    ) -> Result<Step, ChannelError> {
        match MsgType::of(msg) {
            Some(MsgType::Nack) => Ok(Step::Resend),
            Some(MsgType::BondReject) => {
                self.stage = None;
                check_reject(msg)?;
                Err(malformed("bad reject message"))
            }
            Some(MsgType::BondPake) => match self.stage.take() {
                Some(PhoneStage::Hello(st)) => {
                    let (st, confirm) = st.on_pake(msg, keys, phone_name)?;
                    self.stage = Some(PhoneStage::Confirm { st, pake: msg.to_vec(), confirm: confirm.clone() });
                    *confirm_sent_here = true;
                    Ok(Step::Send(confirm))
                }
                Some(PhoneStage::Confirm { st, pake, confirm }) => {
                    if pake.as_slice() != msg {
                        // Another SPAKE2 message: the appliance dropped our exchange.
                        return Err(ChannelError::BondingInterrupted);
                    }
                    let step = if *confirm_sent_here {
                        // A duplicate answer to a resent BondHello: nothing new.
                        Step::Wait
                    } else {
                        // The same exchange, resumed on a new connection.
                        *confirm_sent_here = true;
                        Step::Send(confirm.clone())
                    };
                    self.stage = Some(PhoneStage::Confirm { st, pake, confirm });
                    Ok(step)
                }
                None => Err(malformed("bonding already finished")),
            },
            Some(MsgType::BondAccept) => match self.stage.take() {
                Some(PhoneStage::Confirm { st, .. }) => Ok(Step::Done(st.on_accept(msg)?)),
                other => {
                    self.stage = other;
                    Err(malformed("BondAccept before BondConfirm"))
                }
            },
            _ => Err(malformed("unexpected message during bonding")),
        }
    }
}

enum Step {
    Send(Vec<u8>),
    Wait,
    Resend,
    Done(BondRecord),
}

/// Phone side of bonding over one framed link (see [`PhoneBondExchange::run`]).
pub async fn bond_over(
    link: &FramedLink,
    pin: &str,
    keys: &PhoneKeys,
    phone_name: &str,
    retry: &BondRetry,
) -> Result<BondRecord, ChannelError> {
    PhoneBondExchange::start(pin)?.run(link, keys, phone_name, retry).await
}

/// Phone side of a connection: Noise KK with the bonded appliance over `link`.
pub async fn connect_phone(
    link: Arc<FramedLink>,
    keys: &PhoneKeys,
    bond: &BondRecord,
    timeout: Duration,
) -> Result<SecureChannel, ChannelError> {
    let (st, init) = KkInitiator::start(keys, &bond.appliance_static)?;
    link.send_message(&init, None).await?;
    let reply = link.recv_message(timeout).await?;
    let session = st.finish(&reply)?;
    tracing::debug!("secure channel established");
    Ok(SecureChannel::new(link, session))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemorySecretStore;

    fn appliance_keys() -> (SigningKey, Zeroizing<[u8; 32]>) {
        (SigningKey::from_bytes(&[9u8; 32]), Zeroizing::new([7u8; 32]))
    }

    fn bond_once(phone_pin: &str, appliance_pin: &str) -> Result<(BondRecord, BondedPhone, PhoneKeys), ChannelError> {
        let store = MemorySecretStore::default();
        let keys = PhoneKeys::load_or_create(&store)?;
        let (id, chan) = appliance_keys();
        let ak = ApplianceKeys { identity: &id, channel_private: &chan, name: "Sim" };
        let (p, hello) = PhoneBonding::start(phone_pin)?;
        let (a, pake) = ApplianceBonding::start(appliance_pin, &hello)?;
        let (p, confirm) = p.on_pake(&pake, &keys, "phone")?;
        let (phone, accept) = a.on_confirm(&confirm, &ak, 1)?;
        let rec = p.on_accept(&accept)?;
        Ok((rec, phone, keys))
    }

    #[test]
    fn bonding_with_the_right_pin_exchanges_keys_and_endorses_the_app_key() {
        let (rec, phone, keys) = bond_once("123456", "123456").unwrap();
        let (id, chan) = appliance_keys();
        assert_eq!(rec.appliance_identity.0, id.verifying_key().to_bytes());
        assert_eq!(rec.appliance_static, x25519_public(&chan).unwrap());
        assert_eq!(phone.channel_static, keys.channel_public());
        assert_eq!(phone.app_key, keys.app_public());
        let e: AppEndorsement =
            rec.endorsement.open(Domain::AppEndorsement, rec.appliance_identity.as_bytes()).unwrap();
        assert_eq!(e.app_key, keys.app_public());
    }

    #[test]
    fn a_wrong_pin_fails_key_confirmation_on_the_appliance() {
        assert_eq!(bond_once("123456", "654321").unwrap_err(), ChannelError::KeyConfirmation);
    }

    #[test]
    fn a_reject_message_surfaces_as_wrong_pin() {
        let store = MemorySecretStore::default();
        let keys = PhoneKeys::load_or_create(&store).unwrap();
        let (p, _) = PhoneBonding::start("111111").unwrap();
        let rej = bond_reject_message(BondRejectCode::WrongPin, 2);
        assert_eq!(p.on_pake(&rej, &keys, "x").err(), Some(ChannelError::WrongPin { attempts_left: 2 }));
    }

    #[test]
    fn bonding_mode_and_back_off_rejects_reach_the_phone_as_their_own_errors() {
        let closed = bond_reject_message(BondRejectCode::BondingClosed, 3);
        assert_eq!(check_reject(&closed), Err(ChannelError::BondingClosed));
        let later = bond_reject_message_after(BondRejectCode::TryLater, 3, Some(57));
        assert_eq!(check_reject(&later), Err(ChannelError::BondingTryLater { retry_after_secs: 57 }));
        assert_eq!(
            ApplianceError::from(ChannelError::BondingTryLater { retry_after_secs: 57 }),
            ApplianceError::BondingTryLater { retry_after_secs: 57 }
        );
        // The wait travels as an optional key: absent in the old layout, ignored by old phones.
        let old =
            frame_cbor(MsgType::BondReject, &OldBondReject { code: "wrong_pin".into(), attempts_left: 2 }).unwrap();
        assert_eq!(old, bond_reject_message(BondRejectCode::WrongPin, 2), "unchanged bytes without a wait");
        let seen_by_old: OldBondReject = decode_cbor(&later[1..]).unwrap();
        assert_eq!((seen_by_old.code.as_str(), seen_by_old.attempts_left), ("try_later", 3));
        // A code from a newer appliance is a refusal, never a PIN verdict.
        let newer = frame_cbor(MsgType::BondReject, &OldBondReject { code: "busy".into(), attempts_left: 3 }).unwrap();
        assert!(matches!(check_reject(&newer), Err(ChannelError::Malformed(_))));
    }

    /// `BondReject` as phones before bonding mode decoded it.
    #[derive(Serialize, Deserialize)]
    struct OldBondReject {
        code: String,
        attempts_left: u32,
    }

    #[test]
    fn kk_round_trip_and_replay_refused() {
        let (rec, phone, keys) = bond_once("000000", "000000").unwrap();
        let (_, chan) = appliance_keys();
        let (init, m1) = KkInitiator::start(&keys, &rec.appliance_static).unwrap();
        let other = Key32([5u8; 32]);
        let (a_sess, who, m2) = kk_respond(&chan, &[other, phone.channel_static], &m1).unwrap();
        assert_eq!(who, phone.channel_static);
        let p_sess = init.finish(&m2).unwrap();
        let c1 = p_sess.seal(b"hello").unwrap();
        let c2 = p_sess.seal(b"world").unwrap();
        assert_eq!(a_sess.open(&c2).unwrap(), b"world");
        // c1 was "lost" then shows up late: refused as a replay.
        assert_eq!(a_sess.open(&c1), Err(ChannelError::Replay { nonce: 0 }));
        assert_eq!(a_sess.open(&c2), Err(ChannelError::Replay { nonce: 1 }));
        let back = a_sess.seal(b"ok").unwrap();
        assert_eq!(p_sess.open(&back).unwrap(), b"ok");
        let mut tampered = a_sess.seal(b"ok2").unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(p_sess.open(&tampered), Err(ChannelError::Decrypt));
    }

    #[test]
    fn kk_with_an_impostor_appliance_fails() {
        let (rec, phone, keys) = bond_once("000000", "000000").unwrap();
        let (init, m1) = KkInitiator::start(&keys, &rec.appliance_static).unwrap();
        let impostor = [8u8; 32];
        // The impostor cannot read message 1 even if it knows the phone's public key.
        assert_eq!(kk_respond(&impostor, &[phone.channel_static], &m1).err(), Some(ChannelError::UnknownPhone));
        assert_eq!(init.finish(&kk_reject_message()).err(), Some(ChannelError::UnknownAppliance));
    }

    #[test]
    fn garbage_never_panics() {
        let store = MemorySecretStore::default();
        let keys = PhoneKeys::load_or_create(&store).unwrap();
        for g in [&[][..], &[0x10], &[0x11, 0xff], &[0x30, 1, 2], &[0x21, 0, 0, 0], &[0x13, 0xa0]] {
            let _ = ApplianceBonding::start("123456", g);
            let (p, _) = PhoneBonding::start("123456").unwrap();
            let _ = p.on_pake(g, &keys, "x");
            let _ = kk_respond(&[1u8; 32], &[Key32([2u8; 32])], g);
            let (k, _) = KkInitiator::start(&keys, &Key32([3u8; 32])).unwrap();
            let _ = k.finish(g);
        }
    }

    #[test]
    fn random_pins_are_six_digits() {
        for _ in 0..50 {
            assert!(is_valid_pin(&random_pin()));
        }
    }
}
