//! The appliance side of bonding: bonding mode (a window its user opens), one SPAKE2
//! exchange per connection, and the wrong-PIN rules of `core::ble::bond_policy`.
//!
//! * Each connection's `BondHello` starts that connection's own exchange. A hello on
//!   another connection never touches it; a byte-identical hello (a resend, or the same
//!   phone continuing on a new connection) gets the recorded `BondPake` and joins it.
//! * Every `BondConfirm` of an exchange is decided once and its reply recorded, so a
//!   resend gets the same reply with nothing counted. A bogus confirm (e.g. from a stranger
//!   who replayed the victim's hello) costs a PIN try but does not spoil the exchange: the
//!   victim's right confirm still bonds.
//! * Outside bonding mode every attempt gets `bonding_closed`; during a lockout or over the
//!   hourly cap it gets `try_later` with the seconds to wait. Neither is a PIN try.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sunstorm_core::ble::bond_policy::{BondPolicy, BondingWindow, WrongPinVerdict, BONDING_WINDOW_SECS};
use sunstorm_core::ble::channel::{
    self, bond_reject_message, bond_reject_message_after, ApplianceBonding, ApplianceKeys, BondRejectCode,
    ChannelError, MsgType,
};
use sunstorm_core::ble::framing::{FramedLink, FramingError};

use super::panel::{Event, EventType};
use super::{lock, ApplianceSim, SimError};

/// How long the appliance keeps a bonding exchange to answer its duplicates (a phone
/// resending, or continuing the same exchange on a new connection).
pub const BOND_EXCHANGE_TTL: Duration = Duration::from_secs(120);

/// Exchanges the appliance remembers for phones that continue on a new connection. When
/// full, the oldest one no connection is using goes first (its own connection, if any,
/// keeps it).
pub const MAX_BOND_EXCHANGES: usize = 32;

/// `BondConfirm`s decided per exchange (each wrong one is a PIN try; the PIN changes after
/// [`channel::MAX_PIN_ATTEMPTS`], which ends the exchange anyway).
const MAX_CONFIRMS_PER_EXCHANGE: usize = 4;

/// Bonding mode and the wrong-PIN rules of the simulator.
#[derive(Debug, Clone)]
pub struct BondingConfig {
    /// Open bonding mode when the simulator starts, as if its user had pressed the bonding
    /// button at power-on (default `true`, so a simulator started for a test or a demo can
    /// be bonded at once). A real appliance starts closed.
    pub open_at_start: bool,
    /// How long bonding mode stays open once opened (unless a bond completes first);
    /// default 120 s.
    pub window: Duration,
    /// Wrong-PIN back-off and hourly cap.
    pub policy: BondPolicy,
}

impl Default for BondingConfig {
    fn default() -> Self {
        Self { open_at_start: true, window: Duration::from_secs(BONDING_WINDOW_SECS), policy: BondPolicy::default() }
    }
}

/// The PIN on screen and bonding mode. Held while a `BondConfirm` is decided, so the
/// check of the back-off and the count of a wrong PIN are one step.
pub(super) struct BondCtl {
    pub(super) pin: String,
    pub(super) window: BondingWindow,
}

/// One bonding exchange: its messages and the confirms decided.
pub(super) struct BondExchange {
    hello: Vec<u8>,
    pin: String,
    pake: Vec<u8>,
    st: ApplianceBonding,
    /// Each `BondConfirm` decided and the reply sent (`BondAccept` or `BondReject`).
    answers: Vec<(Vec<u8>, Vec<u8>)>,
    bonded: bool,
    started: tokio::time::Instant,
}

impl BondExchange {
    fn fresh(&self) -> bool {
        self.started.elapsed() < BOND_EXCHANGE_TTL
    }
}

type Exchange = Arc<Mutex<BondExchange>>;

fn secs_of(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

impl ApplianceSim {
    fn bonding_now(&self) -> u64 {
        self.inner.cfg.clock.now_unix()
    }

    pub(super) fn initial_window(cfg: &BondingConfig, now: u64) -> BondingWindow {
        let mut w = BondingWindow::default();
        if cfg.open_at_start {
            w.open(now, secs_of(cfg.window));
        }
        w
    }

    /// Opens bonding mode for `duration` (what pressing the appliance's bonding button does).
    pub fn open_bonding_window(&self, duration: Duration) {
        let now = self.bonding_now();
        let pin = {
            let mut ctl = lock(&self.inner.bond);
            ctl.window.open(now, secs_of(duration));
            ctl.pin.clone()
        };
        tracing::info!(secs = secs_of(duration), "bonding mode open");
        self.inner.panel.log(
            Event::new(EventType::BondingOpened)
                .pin(&pin)
                .detail(format!("bonding mode open for {} s", secs_of(duration))),
        );
    }

    /// How long bonding mode stays open when its button is pressed (the configuration's
    /// window).
    pub fn bonding_window_length(&self) -> Duration {
        self.inner.cfg.bonding.window
    }

    /// Closes bonding mode.
    pub fn close_bonding_window(&self) {
        lock(&self.inner.bond).window.close();
        tracing::info!("bonding mode closed");
        self.inner.panel.log(Event::new(EventType::BondingClosed).detail("closed by its button"));
    }

    /// How long bonding mode stays open; `None` when it is closed.
    pub fn bonding_window_remaining(&self) -> Option<Duration> {
        let now = self.bonding_now();
        lock(&self.inner.bond).window.remaining(now).map(Duration::from_secs)
    }

    /// Seconds before the appliance accepts a bonding attempt again after wrong PINs
    /// (`None`: it would now, bonding mode permitting).
    pub fn bonding_retry_after(&self) -> Option<u64> {
        let now = self.bonding_now();
        let policy = self.inner.cfg.bonding.policy;
        lock(&self.inner.rt).state.bond_guard.wait_secs(&policy, now)
    }

    /// Lockouts since the last successful bond (each one longer than the one before).
    pub fn bonding_lockouts(&self) -> u32 {
        lock(&self.inner.rt).state.bond_guard.lockouts
    }

    /// Shows a new random PIN; returns it.
    fn replace_pin(&self, ctl: &mut BondCtl) -> String {
        ctl.pin = channel::random_pin();
        self.inner.pin_tx.send_replace(ctl.pin.clone());
        self.inner.panel.log(Event::new(EventType::PinChanged).pin(&ctl.pin));
        ctl.pin.clone()
    }

    /// Serves a bonding connection: answers each `BondHello`/`BondConfirm` and NACKs
    /// broken messages, until the phone leaves or falls silent.
    pub(super) async fn serve_bonding(&self, framed: &FramedLink, hello: &[u8]) -> Result<(), SimError> {
        // This connection's exchange.
        let mut mine: Option<Exchange> = None;
        framed.send_message(&self.on_bond_hello(hello, &mut mine), None).await?;
        loop {
            let msg = match framed.recv_message(self.inner.cfg.handshake_timeout).await {
                Ok(m) => m,
                Err(FramingError::Link(e)) => {
                    tracing::debug!(error = %e, "bonding connection ended");
                    return Ok(());
                }
                Err(e) => {
                    // Never a PIN try: ask the phone for the message again.
                    tracing::debug!(error = %e, "a bonding message arrived broken; NACK");
                    framed.send_message(&[MsgType::Nack as u8], None).await?;
                    continue;
                }
            };
            let reply = match MsgType::of(&msg) {
                Some(MsgType::BondHello) => self.on_bond_hello(&msg, &mut mine),
                Some(MsgType::BondConfirm) => self.on_bond_confirm(&msg, mine.as_ref()),
                _ => {
                    return Err(SimError::Channel(ChannelError::Malformed("unexpected message during bonding".into())))
                }
            };
            framed.send_message(&reply, None).await?;
        }
    }

    fn bad_bond_request(&self) -> Vec<u8> {
        let policy = self.inner.cfg.bonding.policy;
        let left = lock(&self.inner.rt).state.bond_guard.attempts_left(&policy);
        bond_reject_message(BondRejectCode::BadRequest, left)
    }

    /// Why a bonding attempt is refused now, as the reply to send; `None` when it may go on.
    /// Never a PIN try.
    fn refusal(&self, ctl: &BondCtl, now: u64) -> Option<Vec<u8>> {
        let policy = self.inner.cfg.bonding.policy;
        let mut rt = lock(&self.inner.rt);
        let left = rt.state.bond_guard.attempts_left(&policy);
        if !ctl.window.is_open(now) {
            tracing::warn!("bonding attempt outside bonding mode: refused");
            return Some(bond_reject_message(BondRejectCode::BondingClosed, left));
        }
        let wait = rt.state.bond_guard.wait_secs(&policy, now)?;
        tracing::warn!(retry_after_secs = wait, "bonding attempt during the wrong-PIN back-off: refused");
        Some(bond_reject_message_after(BondRejectCode::TryLater, left, Some(wait)))
    }

    /// `BondPake` for a `BondHello`: the recorded one when the hello is one we know (on
    /// any connection), else a new exchange of this connection, if bonding mode is open and
    /// no back-off runs (this costs no PIN try).
    fn on_bond_hello(&self, hello: &[u8], mine: &mut Option<Exchange>) -> Vec<u8> {
        {
            let mut reg = lock(&self.inner.exchanges);
            reg.retain(|e| lock(e).fresh());
            let pin = lock(&self.inner.bond).pin.clone();
            let known = reg.iter().find(|e| {
                let e = lock(e);
                e.hello == hello && (!e.answers.is_empty() || e.pin == pin)
            });
            if let Some(ex) = known {
                tracing::debug!("a BondHello we know: same BondPake again");
                *mine = Some(ex.clone());
                return lock(ex).pake.clone();
            }
        }
        let now = self.bonding_now();
        let pin = {
            let ctl = lock(&self.inner.bond);
            if let Some(reply) = self.refusal(&ctl, now) {
                *mine = None;
                return reply;
            }
            ctl.pin.clone()
        };
        match ApplianceBonding::start(&pin, hello) {
            Ok((st, pake)) => {
                let ex = Arc::new(Mutex::new(BondExchange {
                    hello: hello.to_vec(),
                    pin,
                    pake: pake.clone(),
                    st,
                    answers: Vec::new(),
                    bonded: false,
                    started: tokio::time::Instant::now(),
                }));
                self.remember(ex.clone());
                *mine = Some(ex);
                tracing::info!("bonding started");
                pake
            }
            Err(e) => {
                tracing::warn!(error = %e, "refused a BondHello");
                *mine = None;
                self.bad_bond_request()
            }
        }
    }

    /// Keeps `ex` for phones that continue on a new connection, within
    /// [`MAX_BOND_EXCHANGES`]: when full, the oldest exchange no connection uses goes first,
    /// undecided before decided.
    fn remember(&self, ex: Exchange) {
        let mut reg = lock(&self.inner.exchanges);
        reg.retain(|e| lock(e).fresh());
        while reg.len() >= MAX_BOND_EXCHANGES {
            let oldest = reg
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| {
                    let in_use = Arc::strong_count(e) > 1;
                    let e = lock(e);
                    (in_use, !e.answers.is_empty(), e.started)
                })
                .map(|(i, _)| i);
            match oldest {
                Some(i) => {
                    reg.swap_remove(i);
                }
                None => break,
            }
        }
        reg.push(ex);
    }

    /// The verdict on a `BondConfirm` of this connection's exchange: each confirm decided
    /// once (a wrong PIN counted once, a bond stored once, a PIN replaced once); a resend
    /// gets the same reply.
    fn on_bond_confirm(&self, confirm: &[u8], mine: Option<&Exchange>) -> Vec<u8> {
        let Some(ex) = mine else {
            tracing::warn!("BondConfirm without an exchange on this connection");
            return self.bad_bond_request();
        };
        let mut ex = lock(ex);
        if !ex.fresh() {
            drop(ex);
            tracing::warn!("BondConfirm for an expired exchange");
            return self.bad_bond_request();
        }
        if let Some((_, reply)) = ex.answers.iter().find(|(c, _)| c.as_slice() == confirm) {
            tracing::debug!("duplicate BondConfirm: same verdict again, nothing counted");
            return reply.clone();
        }
        if ex.bonded || ex.answers.len() >= MAX_CONFIRMS_PER_EXCHANGE {
            drop(ex);
            tracing::warn!("another BondConfirm for a finished exchange");
            return self.bad_bond_request();
        }
        let now = self.bonding_now();
        let mut ctl = lock(&self.inner.bond);
        if let Some(reply) = self.refusal(&ctl, now) {
            return reply;
        }
        if ex.pin != ctl.pin {
            // The PIN changed since this exchange began (a lockout, or a bond).
            drop(ctl);
            drop(ex);
            return self.bad_bond_request();
        }
        let keys = ApplianceKeys {
            identity: &self.inner.keys.identity,
            channel_private: &self.inner.keys.channel_private,
            name: &self.inner.cfg.name,
        };
        let policy = self.inner.cfg.bonding.policy;
        let reply = match ex.st.on_confirm(confirm, &keys, now) {
            Ok((phone, accept)) => {
                {
                    let mut rt = lock(&self.inner.rt);
                    rt.state.add_bond(phone.clone());
                    rt.state.bond_guard.record_bond();
                    self.persist(&rt);
                }
                // Bonding mode ends with a bond; a random PIN is good for one bond only.
                ctl.window.close();
                if self.inner.cfg.pin.is_none() {
                    self.replace_pin(&mut ctl);
                }
                ex.bonded = true;
                self.inner.panel.log(Event::new(EventType::PhoneBonded).detail(format!(
                    "bonded {}",
                    sunstorm_core::display::clean(&phone.name, sunstorm_core::display::TextKind::Name)
                )));
                self.inner.panel.log(Event::new(EventType::BondingClosed).detail("a phone bonded"));
                tracing::info!(
                    phone = %phone.channel_static.fingerprint(),
                    name = %phone.name,
                    "bonded a phone; bonding mode closed"
                );
                accept
            }
            Err(ChannelError::KeyConfirmation) => {
                let verdict = {
                    let mut rt = lock(&self.inner.rt);
                    let v = rt.state.bond_guard.record_wrong(&policy, now);
                    self.persist(&rt);
                    v
                };
                match verdict {
                    WrongPinVerdict::TryAgain { attempts_left } => {
                        tracing::warn!(attempts_left, "wrong PIN");
                        bond_reject_message(BondRejectCode::WrongPin, attempts_left)
                    }
                    WrongPinVerdict::Locked { retry_after_secs } => {
                        self.replace_pin(&mut ctl);
                        tracing::warn!(retry_after_secs, "too many wrong PINs; a new PIN, bonding refused meanwhile");
                        bond_reject_message_after(BondRejectCode::PinLocked, 0, Some(retry_after_secs))
                    }
                }
            }
            Err(e) => {
                // Malformed: not a PIN try, and not decided (a correct resend may follow).
                drop(ctl);
                drop(ex);
                tracing::warn!(error = %e, "refused a malformed BondConfirm");
                return self.bad_bond_request();
            }
        };
        ex.answers.push((confirm.to_vec(), reply.clone()));
        reply
    }
}
