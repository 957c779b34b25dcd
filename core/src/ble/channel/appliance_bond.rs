//! The appliance's side of bonding as sans-I/O steps: `BondPake` for the phone's
//! `BondHello`, then `BondAccept` (its keys, identity signature and the endorsement of the
//! phone's app key) for a `BondConfirm` whose key confirmation holds.

use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use super::error::ChannelError;
use super::keys::{x25519_public, ApplianceKeys, BondedPhone};
use super::pake::{transcript_hash, BondKeys, BondTranscript, MAC_LABEL_APPLIANCE, MAC_LABEL_PHONE};
use super::wire::{
    decode_cbor, frame_cbor, unframe, ApplianceBondPayload, BondHello, BondPake, BondSealed, MsgType, PhoneBondPayload,
    APPLIANCE_PAKE_IDENTITY, CHANNEL_VERSION, PHONE_PAKE_IDENTITY,
};
use crate::bytes::Key32;
use crate::envelope::{self, Domain, SignedEnvelope};
use crate::model::{AppEndorsement, STATEMENT_VERSION};

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
    /// counts it and answers with [`bond_reject_message`](super::bond_reject_message)). On success returns the bonded
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
        let body = crate::cbor::to_vec(&statement)?;
        let transcript_sig = envelope::sign_bytes(Domain::BondTranscript, keys.identity, &body).to_vec();
        let endorsement = SignedEnvelope::seal(
            Domain::AppEndorsement,
            keys.identity,
            &AppEndorsement { v: STATEMENT_VERSION, app_key: p.app_key, appliance_identity: identity, issued_at: now },
        )
        .map_err(|e| match e {
            crate::envelope::EnvelopeError::Body(c) => ChannelError::Codec(c),
            other => ChannelError::Malformed(other.to_string()),
        })?;
        let payload = ApplianceBondPayload {
            channel_static: appliance_static,
            identity,
            name: keys.name.to_string(),
            transcript_sig,
            endorsement,
        };
        let plain = crate::cbor::to_vec(&payload)?;
        let sealed = self.bk.seal(&self.bk.seal_appliance, &plain)?;
        let mac = self.bk.mac(&self.bk.confirm_appliance, MAC_LABEL_APPLIANCE)?;
        let out = frame_cbor(MsgType::BondAccept, &BondSealed { mac, sealed })?;
        let name: String = p.name.chars().take(64).collect();
        // A key that is not a P-256 point is not kept: the phone then has none enrolled.
        let approval_key = p.approval_key.filter(|k| k.is_valid());
        let phone =
            BondedPhone { channel_static: p.channel_static, app_key: p.app_key, name, bonded_at: now, approval_key };
        Ok((phone, out))
    }
}
