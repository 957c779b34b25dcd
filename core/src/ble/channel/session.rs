//! An established session's crypto: AEAD transport messages with explicit nonces, replayed
//! or reordered ones refused, a bounded number of messages per session.

use std::sync::Mutex;

use snow::{HandshakeState, StatelessTransportState};

use super::error::{malformed, snow_err, ChannelError};
use super::wire::{unframe, MsgType, MAX_PLAINTEXT_LEN, MAX_SESSION_MESSAGES, TRANSPORT_OVERHEAD};
use crate::bytes::Key32;

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
    pub(super) fn from_handshake(hs: HandshakeState) -> Result<Self, ChannelError> {
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
