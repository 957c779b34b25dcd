//! The PIN step of bonding shared by both sides: PIN rules, the SPAKE2 transcript, the keys
//! derived from it (key confirmation and the one-shot sealing of each side's keys) and the
//! statement the appliance's identity key signs over it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::ChannelError;
use super::wire::{APPLIANCE_PAKE_IDENTITY, NOISE_PROLOGUE, PHONE_PAKE_IDENTITY};
use crate::bytes::Key32;

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

/// The statement the appliance's identity key signs at bonding (under
/// [`Domain::BondTranscript`](crate::envelope::Domain::BondTranscript)): it ties the
/// identity to the static key and to this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BondTranscript {
    /// Always [`STATEMENT_VERSION`](crate::model::STATEMENT_VERSION).
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

fn push_lp(out: &mut Vec<u8>, part: &[u8]) {
    let len = u16::try_from(part.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(part);
}

pub(super) fn transcript_hash(pake_a: &[u8], pake_b: &[u8]) -> [u8; 32] {
    let mut t = Vec::new();
    push_lp(&mut t, NOISE_PROLOGUE);
    push_lp(&mut t, PHONE_PAKE_IDENTITY);
    push_lp(&mut t, APPLIANCE_PAKE_IDENTITY);
    push_lp(&mut t, pake_a);
    push_lp(&mut t, pake_b);
    Sha256::digest(&t).into()
}

/// The four keys bonding derives from the SPAKE2 key, bound to the transcript.
pub(super) struct BondKeys {
    pub(super) confirm_phone: Zeroizing<[u8; 32]>,
    pub(super) confirm_appliance: Zeroizing<[u8; 32]>,
    pub(super) seal_phone: Zeroizing<[u8; 32]>,
    pub(super) seal_appliance: Zeroizing<[u8; 32]>,
    pub(super) transcript: [u8; 32],
}

impl BondKeys {
    pub(super) fn derive(pake_key: &[u8], transcript: [u8; 32]) -> Result<Self, ChannelError> {
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

    pub(super) fn mac(&self, key: &[u8; 32], label: &[u8]) -> Result<Vec<u8>, ChannelError> {
        let mut m =
            <Hmac<Sha256> as Mac>::new_from_slice(key).map_err(|_| ChannelError::Handshake("hmac key".into()))?;
        m.update(label);
        m.update(&self.transcript);
        Ok(m.finalize().into_bytes().to_vec())
    }

    pub(super) fn check_mac(&self, key: &[u8; 32], label: &[u8], got: &[u8]) -> Result<(), ChannelError> {
        let want = self.mac(key, label)?;
        if want.len() == got.len() && bool::from(want.ct_eq(got)) {
            Ok(())
        } else {
            Err(ChannelError::KeyConfirmation)
        }
    }

    pub(super) fn seal(&self, key: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, ChannelError> {
        // Each seal key encrypts exactly one message, so the zero nonce is never reused.
        ChaCha20Poly1305::new(Key::from_slice(key))
            .encrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: plaintext, aad: &self.transcript })
            .map_err(|_| ChannelError::Handshake("seal".into()))
    }

    pub(super) fn open(&self, key: &[u8; 32], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ChannelError> {
        ChaCha20Poly1305::new(Key::from_slice(key))
            .decrypt(Nonce::from_slice(&[0u8; 12]), Payload { msg: sealed, aad: &self.transcript })
            .map(Zeroizing::new)
            .map_err(|_| ChannelError::Decrypt)
    }
}

pub(super) const MAC_LABEL_PHONE: &[u8] = b"phone";
pub(super) const MAC_LABEL_APPLIANCE: &[u8] = b"appliance";
