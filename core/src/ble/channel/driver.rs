//! The channel over a [`FramedLink`]: [`SecureChannel`] (a session's messages with
//! timeouts), the phone's bonding exchange with retransmission ([`PhoneBondExchange`],
//! [`bond_over`]) and the phone's connection handshake ([`connect_phone`]).

use std::sync::Arc;
use std::time::Duration;

use super::error::{malformed, ChannelError};
use super::keys::{BondRecord, PhoneKeys};
use super::kk::KkInitiator;
use super::phone_bond::{check_reject, PhoneBonding, PhoneBondingConfirm};
use super::session::SecureSession;
use super::wire::MsgType;
use crate::approval::ApprovalPublicKey;
use crate::ble::framing::{FramedLink, FramingError};
use crate::ble::transport::GattError;
use crate::bytes::Key32;

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
                return Err(ChannelError::Framing(FramingError::Link(GattError::Timeout)));
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
        Self::start_enrolling(pin, None)
    }

    /// [`PhoneBondExchange::start`] that enrols the phone's approval public key with the
    /// bond ([`PhoneBonding::start_enrolling`]).
    pub fn start_enrolling(pin: &str, approval_key: Option<ApprovalPublicKey>) -> Result<Self, ChannelError> {
        let (st, hello) = PhoneBonding::start_enrolling(pin, approval_key)?;
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
                    Err(e @ FramingError::Link(GattError::Timeout)) => ChannelError::Framing(e),
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
