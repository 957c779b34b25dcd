//! The push payload: what octane seals to a phone's push key and sends through APNs or FCM.
//!
//! Sealed bytes are `version (1) ‖ enc (32) ‖ ciphertext`, where `enc` and `ciphertext` are
//! one HPKE (RFC 9180) base-mode single-shot seal with DHKEM(X25519, HKDF-SHA256),
//! HKDF-SHA256 and ChaCha20-Poly1305, info [`HPKE_INFO`] and the version byte as AAD. The
//! plaintext is one CBOR item (the project's codec, [`crate::cbor`]): the pair and request
//! ids, and the octane-countersigned request itself when the sealed result fits the
//! platform limit ([`MAX_SEALED_LEN`]), otherwise the ids alone and the app fetches it.
//!
//! Sealing hides the request from Apple and Google; it proves nothing about who sent it
//! (anyone may seal to a public key). Authenticity comes from the SP and octane signatures
//! inside, checked by the notification entry point before anything is shown.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_chacha_09::rand_core::SeedableRng;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::bytes::Key32;
use crate::model::CountersignedRequest;
use crate::octane::api::PendingSignRequest;
use crate::secrets::{SecretError, SecretStore};

/// The format version: the first byte of every sealed payload, and authenticated as AAD.
pub const VERSION: u8 = 1;
/// HPKE `info`: binds every seal to this use, so a key or ciphertext from another protocol
/// never opens here.
pub const HPKE_INFO: &[u8] = b"sigil/v1/push";
/// Length of the HPKE encapsulated key (an X25519 public key).
pub const ENC_LEN: usize = 32;
/// Length of the ChaCha20-Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed payload adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + ENC_LEN + TAG_LEN;

/// APNs (alert and background pushes) and FCM (a message's data) both refuse a payload over
/// 4096 bytes — for APNs the whole JSON, for FCM the data keys and values.
pub const PLATFORM_PAYLOAD_LIMIT: usize = 4096;
/// What the JSON around the sealed bytes may take at most: APNs' `aps` dictionary
/// (`mutable-content`, a placeholder alert, category, thread id) or FCM's data keys,
/// quoting and braces. Octane's envelope must stay within it.
pub const JSON_ENVELOPE_ALLOWANCE: usize = 512;
/// Longest sealed payload octane sends: its base64 (with padding; unpadded is never longer)
/// plus [`JSON_ENVELOPE_ALLOWANCE`] stays within [`PLATFORM_PAYLOAD_LIMIT`]. Longer
/// requests go by id ([`seal_for_push`] chooses).
pub const MAX_SEALED_LEN: usize = (PLATFORM_PAYLOAD_LIMIT - JSON_ENVELOPE_ALLOWANCE) / 4 * 3;
/// Longest input [`unseal`] looks at; anything longer is refused before any work (no real
/// push can be longer than the platform limit).
pub const MAX_UNSEAL_INPUT: usize = PLATFORM_PAYLOAD_LIMIT;

/// Secret-store name of the phone's 32-byte push private key (shared with the notification
/// extension: iOS keychain access group, Android the same app; docs/push.md).
pub const PUSH_KEY_SECRET_NAME: &str = "push.x25519";

/// Length of the base64 text (standard alphabet, padded) of `sealed_len` bytes.
pub const fn base64_len(sealed_len: usize) -> usize {
    sealed_len.div_ceil(3) * 4
}

/// Whether a sealed payload of `sealed_len` bytes, base64-encoded inside a JSON envelope of
/// at most [`JSON_ENVELOPE_ALLOWANCE`] bytes, fits APNs' and FCM's 4096-byte limit.
pub const fn fits_platform_limit(sealed_len: usize) -> bool {
    sealed_len <= MAX_SEALED_LEN
}

/// Why a push payload could not be sealed or opened.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PushError {
    /// Longer than any push can be.
    #[error("push payload of {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too short to hold the version, key and tag.
    #[error("push payload is truncated")]
    Truncated,
    /// A format version this phone does not know.
    #[error("push payload version {0} is not supported")]
    UnsupportedVersion(u8),
    /// Did not decrypt: sealed to another push key, or altered on the way.
    #[error("push payload does not open with this phone's push key (altered or not for it)")]
    Open,
    /// Decrypted, but the content is not a push message of this version.
    #[error("push payload content is malformed: {0}")]
    Content(String),
    /// The recipient public key is unusable (e.g. a low-order point).
    #[error("push public key is unusable")]
    BadPublicKey,
    /// A stored push key is not 32 bytes.
    #[error("stored push key is corrupt")]
    BadPrivateKey,
    /// The operating system's random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The content could not be encoded.
    #[error("push content could not be encoded: {0}")]
    Encode(String),
    /// The secret store failed.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// A phone's push public key (X25519), registered with octane per pair: bytes in CBOR, hex
/// in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PushPublicKey(pub Key32);

impl PushPublicKey {
    /// Whether a push sealed to this key stays secret: `false` for the low-order X25519
    /// points (u = 0, u = 1, …), with which every shared secret is all zeros — anyone could
    /// open what was sealed to them. Octane refuses them at registration.
    pub fn is_usable(&self) -> bool {
        // Any clamped scalar is a multiple of the cofactor: it sends exactly the low-order
        // points to the all-zero result.
        let probe = x25519_dalek::StaticSecret::from([0x5a; 32]);
        probe.diffie_hellman(&x25519_dalek::PublicKey::from(*self.0.as_bytes())).was_contributory()
    }
}

/// The phone's push key pair. The private half lives in the [`SecretStore`] (never SQLite)
/// under [`PUSH_KEY_SECRET_NAME`] and is wiped from memory on drop.
pub struct PushKeyPair {
    secret: Zeroizing<[u8; 32]>,
    public: PushPublicKey,
}

impl std::fmt::Debug for PushKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PushKeyPair({})", self.public.0.fingerprint())
    }
}

impl PushKeyPair {
    /// A new random key pair (RFC 9180 DeriveKeyPair over 32 bytes from the OS).
    pub fn generate() -> Result<Self, PushError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        OsRng.try_fill_bytes(ikm.as_mut_slice()).map_err(|e| PushError::Random(e.to_string()))?;
        let (sk, _) = X25519HkdfSha256::derive_keypair(ikm.as_slice());
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(&sk.to_bytes());
        Self::from_secret_bytes(bytes.as_slice())
    }

    /// The key pair of a 32-byte private key.
    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, PushError> {
        let sk =
            <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(bytes).map_err(|_| PushError::BadPrivateKey)?;
        let pk = X25519HkdfSha256::sk_to_pk(&sk);
        let mut public = [0u8; 32];
        public.copy_from_slice(&pk.to_bytes());
        let mut secret = Zeroizing::new([0u8; 32]);
        secret.copy_from_slice(bytes);
        Ok(Self { secret, public: PushPublicKey(Key32(public)) })
    }

    /// The public half, to register with octane.
    pub fn public_key(&self) -> PushPublicKey {
        self.public
    }

    /// The key in `store`, if one was created.
    pub fn load(store: &dyn SecretStore) -> Result<Option<Self>, PushError> {
        let Some(bytes) = store.get(PUSH_KEY_SECRET_NAME)? else { return Ok(None) };
        match Self::from_secret_bytes(bytes.as_slice()) {
            Ok(k) => Ok(Some(k)),
            Err(_) => Err(PushError::Secret(SecretError::Corrupt { name: PUSH_KEY_SECRET_NAME.to_string() })),
        }
    }

    /// Creates a new key in `store`, replacing any (the app then registers the new public
    /// key; pushes sealed to the old one no longer open).
    pub fn create(store: &dyn SecretStore) -> Result<Self, PushError> {
        let key = Self::generate()?;
        store.put(PUSH_KEY_SECRET_NAME, key.secret.as_slice())?;
        Ok(key)
    }

    /// The key in `store`, created when there is none.
    pub fn load_or_create(store: &dyn SecretStore) -> Result<Self, PushError> {
        match Self::load(store)? {
            Some(k) => Ok(k),
            None => Self::create(store),
        }
    }
}

/// What a push carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushContent {
    /// The whole request, exactly as `pending_sign_requests` delivers it.
    Request(PendingSignRequest),
    /// Only the ids (the request did not fit): the app fetches it from octane.
    RequestId {
        /// The pair it is made under.
        pair_id: Uuid,
        /// The request id.
        request_id: Uuid,
    },
}

impl PushContent {
    /// The pair the push is about.
    pub fn pair_id(&self) -> Uuid {
        match self {
            PushContent::Request(r) => r.pair_id,
            PushContent::RequestId { pair_id, .. } => *pair_id,
        }
    }

    /// The request the push is about.
    pub fn request_id(&self) -> Uuid {
        match self {
            PushContent::Request(r) => r.request_id,
            PushContent::RequestId { request_id, .. } => *request_id,
        }
    }
}

/// The plaintext on the wire (CBOR).
#[derive(Serialize, Deserialize)]
struct PushMessage {
    v: u8,
    pair_id: Uuid,
    request_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<CountersignedRequest>,
}

/// A sealed push, as [`seal_for_push`] chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPush {
    /// The sealed bytes (octane base64-encodes them into the push's JSON).
    pub bytes: Vec<u8>,
    /// Whether the request itself is inside (otherwise only its id).
    pub carries_request: bool,
}

/// Seals `content` to `recipient` (a fresh ephemeral key each time).
pub fn seal(recipient: &PushPublicKey, content: &PushContent) -> Result<Vec<u8>, PushError> {
    let message = match content {
        PushContent::Request(r) => {
            PushMessage { v: VERSION, pair_id: r.pair_id, request_id: r.request_id, request: Some(r.request.clone()) }
        }
        PushContent::RequestId { pair_id, request_id } => {
            PushMessage { v: VERSION, pair_id: *pair_id, request_id: *request_id, request: None }
        }
    };
    let plaintext = Zeroizing::new(crate::cbor::to_vec(&message).map_err(|e| PushError::Encode(e.to_string()))?);
    seal_plaintext(recipient, &plaintext)
}

/// Seals arbitrary plaintext as a push: only for the fuzz target, to reach the content
/// parser behind the AEAD. Octane seals with [`seal`] / [`seal_for_push`].
#[doc(hidden)]
pub fn fuzz_seal_plaintext(recipient: &PushPublicKey, plaintext: &[u8]) -> Result<Vec<u8>, PushError> {
    seal_plaintext(recipient, plaintext)
}

fn seal_plaintext(recipient: &PushPublicKey, plaintext: &[u8]) -> Result<Vec<u8>, PushError> {
    let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(recipient.0.as_bytes())
        .map_err(|_| PushError::BadPublicKey)?;
    let mut rng = rand_chacha_09::ChaCha20Rng::try_from_os_rng().map_err(|e| PushError::Random(e.to_string()))?;
    let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256, _>(
        &OpModeS::Base,
        &pk,
        HPKE_INFO,
        plaintext,
        &[VERSION],
        &mut rng,
    )
    .map_err(|_| PushError::BadPublicKey)?;
    let mut out = Vec::with_capacity(1 + ENC_LEN + ciphertext.len());
    out.push(VERSION);
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Seals `request` whole when the result fits [`MAX_SEALED_LEN`], otherwise only its ids:
/// what octane sends for each routed sign request.
pub fn seal_for_push(recipient: &PushPublicKey, request: &PendingSignRequest) -> Result<SealedPush, PushError> {
    let full = seal(recipient, &PushContent::Request(request.clone()))?;
    if fits_platform_limit(full.len()) {
        return Ok(SealedPush { bytes: full, carries_request: true });
    }
    let ids = PushContent::RequestId { pair_id: request.pair_id, request_id: request.request_id };
    Ok(SealedPush { bytes: seal(recipient, &ids)?, carries_request: false })
}

/// Opens a sealed push with the phone's key. Never panics; any input longer than
/// [`MAX_UNSEAL_INPUT`] is refused before decrypting.
pub fn unseal(key: &PushKeyPair, sealed: &[u8]) -> Result<PushContent, PushError> {
    if sealed.len() > MAX_UNSEAL_INPUT {
        return Err(PushError::TooLarge { len: sealed.len(), max: MAX_UNSEAL_INPUT });
    }
    let Some((&version, rest)) = sealed.split_first() else { return Err(PushError::Truncated) };
    if version != VERSION {
        return Err(PushError::UnsupportedVersion(version));
    }
    if rest.len() < ENC_LEN + TAG_LEN {
        return Err(PushError::Truncated);
    }
    let (enc, ciphertext) = rest.split_at(ENC_LEN);
    let enc = <X25519HkdfSha256 as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| PushError::Open)?;
    let sk = <X25519HkdfSha256 as hpke::Kem>::PrivateKey::from_bytes(key.secret.as_slice())
        .map_err(|_| PushError::BadPrivateKey)?;
    let plaintext = Zeroizing::new(
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &sk,
            &enc,
            HPKE_INFO,
            ciphertext,
            &[VERSION],
        )
        .map_err(|_| PushError::Open)?,
    );
    let message: PushMessage = crate::cbor::from_slice(&plaintext).map_err(|e| PushError::Content(e.to_string()))?;
    if message.v != VERSION {
        return Err(PushError::Content(format!("inner version {}", message.v)));
    }
    Ok(match message.request {
        Some(request) => PushContent::Request(PendingSignRequest {
            pair_id: message.pair_id,
            request_id: message.request_id,
            request,
        }),
        None => PushContent::RequestId { pair_id: message.pair_id, request_id: message.request_id },
    })
}

#[cfg(test)]
mod tests;
