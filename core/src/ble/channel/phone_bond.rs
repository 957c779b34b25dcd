//! The phone's side of bonding as sans-I/O steps: `BondHello`, then `BondConfirm` on the
//! appliance's `BondPake`, then checking `BondAccept` (the appliance's key confirmation,
//! identity signature and endorsement of this phone's app key).

use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use super::error::{malformed, ChannelError};
use super::keys::{BondRecord, PhoneKeys};
use super::pake::{transcript_hash, BondKeys, BondTranscript, MAC_LABEL_APPLIANCE, MAC_LABEL_PHONE};
use super::wire::{
    decode_cbor, frame_cbor, unframe, ApplianceBondPayload, BondHello, BondPake, BondReject, BondRejectCode,
    BondSealed, MsgType, PhoneBondPayload, APPLIANCE_PAKE_IDENTITY, CHANNEL_VERSION, PHONE_PAKE_IDENTITY,
};
use crate::approval::ApprovalPublicKey;
use crate::bytes::Key32;
use crate::envelope::{self, Domain};
use crate::model::{AppEndorsement, STATEMENT_VERSION};

/// Phone side of bonding, after sending `BondHello`.
pub struct PhoneBonding {
    spake: Spake2<Ed25519Group>,
    pake_a: Vec<u8>,
    approval_key: Option<ApprovalPublicKey>,
}

impl PhoneBonding {
    /// Starts bonding with the PIN the appliance shows; returns the `BondHello` to send.
    pub fn start(pin: &str) -> Result<(Self, Vec<u8>), ChannelError> {
        Self::start_enrolling(pin, None)
    }

    /// [`PhoneBonding::start`] that also sends the phone's approval public key in
    /// `BondConfirm`, for the appliance to keep with this phone's bond.
    pub fn start_enrolling(
        pin: &str,
        approval_key: Option<ApprovalPublicKey>,
    ) -> Result<(Self, Vec<u8>), ChannelError> {
        let (spake, pake_a) = Spake2::<Ed25519Group>::start_a(
            &Password::new(pin.as_bytes()),
            &Identity::new(PHONE_PAKE_IDENTITY),
            &Identity::new(APPLIANCE_PAKE_IDENTITY),
        );
        let msg = frame_cbor(MsgType::BondHello, &BondHello { v: CHANNEL_VERSION, pake: pake_a.clone() })?;
        Ok((Self { spake, pake_a, approval_key }, msg))
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
            approval_key: self.approval_key,
        };
        let plain = crate::cbor::to_vec(&payload)?;
        let sealed = bk.seal(&bk.seal_phone, &plain)?;
        let mac = bk.mac(&bk.confirm_phone, MAC_LABEL_PHONE)?;
        let out = frame_cbor(MsgType::BondConfirm, &BondSealed { mac, sealed })?;
        Ok((PhoneBondingConfirm { bk, phone_static: keys.channel_public(), app_key: keys.app_public() }, out))
    }
}

pub(super) fn check_reject(msg: &[u8]) -> Result<(), ChannelError> {
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
        let body = crate::cbor::to_vec(&statement)?;
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
