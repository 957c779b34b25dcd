//! Long-term channel keys: the phone's X25519 channel key and Ed25519 app key (kept in the
//! [`SecretStore`]), the appliance's keys as bonding needs them, and what each side keeps
//! about the other after bonding.

use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use zeroize::Zeroizing;

use super::error::ChannelError;
use crate::approval::ApprovalPublicKey;
use crate::bytes::Key32;
use crate::envelope::SignedEnvelope;
use crate::secrets::{SecretError, SecretStore};

/// Secret-store name of the phone's X25519 channel private key.
pub const CHANNEL_KEY_NAME: &str = "channel.x25519";
/// Secret-store name of the phone's Ed25519 app key (32-byte seed).
pub const APP_KEY_NAME: &str = "app.ed25519";

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
    pub(super) channel_private: Zeroizing<[u8; 32]>,
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

pub(super) fn read_key32(store: &dyn SecretStore, name: &str) -> Result<Option<Zeroizing<[u8; 32]>>, ChannelError> {
    match store.get(name)? {
        None => Ok(None),
        Some(v) => {
            let mut k = Zeroizing::new([0u8; 32]);
            if v.len() != 32 {
                return Err(SecretError::Corrupt { name: name.to_string() }.into());
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
            store.put(CHANNEL_KEY_NAME, k.as_ref())?;
        }
        if read_key32(store, APP_KEY_NAME)?.is_none() {
            let k = SigningKey::generate(&mut OsRng);
            store.put(APP_KEY_NAME, k.as_bytes())?;
        }
        Self::load(store)?.ok_or_else(|| SecretError::Corrupt { name: CHANNEL_KEY_NAME.to_string() }.into())
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

/// The phone's app signing key from `store` (`None` when the phone has no keys yet).
pub fn load_app_key(store: &dyn SecretStore) -> Result<Option<SigningKey>, ChannelError> {
    Ok(read_key32(store, APP_KEY_NAME)?.map(|seed| SigningKey::from_bytes(&seed)))
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
    /// The phone's approval key (P-256, biometric-bound), sent inside the bonding exchange
    /// or enrolled later with the appliance user's confirmation: it verifies the phone's
    /// approval proofs ([`crate::approval`]). `None` for a phone that sent none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_key: Option<ApprovalPublicKey>,
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
