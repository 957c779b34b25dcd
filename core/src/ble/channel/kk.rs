//! The Noise KK handshake of every connection after bonding: the phone initiates towards
//! the bonded appliance's static key; the appliance finds the bonded phone by trial
//! decryption.

use snow::params::NoiseParams;
use snow::HandshakeState;

use super::error::{malformed, snow_err, ChannelError};
use super::keys::PhoneKeys;
use super::session::SecureSession;
use super::wire::{frame, unframe, MsgType, NOISE_PARAMS, NOISE_PROLOGUE};
use crate::bytes::Key32;

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
/// when none matches (the caller answers with [`kk_reject_message`](super::kk_reject_message)).
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
