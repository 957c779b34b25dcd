//! The appliance simulator: real keys, the appliance side of bonding, Noise KK and the
//! CBOR protocol, a scriptable user, and state that survives restarts.
//!
//! It verifies what the trust model says the appliance verifies: the channel keys; for a
//! pair, octane's signature on the session, its expiry, and that the chosen wallets are its
//! own and on requested chains; for a signature, the SP's signature under the key pinned in
//! ITS pair record, octane's countersignature, the pair, the binding, the chain, the expiry
//! and the payload (re-parsed with `sunstorm_core::payload::signing_target`). It signs each
//! request id at most once: a repeated id gets the first answer.
//!
//! It keeps one bond per phone. A phone forgotten (`ForgetPhone` from another bonded phone,
//! confirmed on the screen, or [`ApplianceSim::forget_phone`] on the appliance itself) loses
//! its bond at once: its live session is cut, its pending requests are cancelled, and every
//! later request of it is answered `phone_forgotten` (its public channel key is kept in a
//! bounded list only to recognise it), until it bonds again.

mod bonding;
pub mod control;
mod keys;
mod panel;
mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sunstorm_core::appliance::proto::{
    decode_header, ApplianceErrorCode, Request, RequestBody, Response, ResponseBody, StatusKind, KEEPALIVE_INTERVAL_MS,
    MAX_OWN_FORGETS, PROTOCOL_VERSION,
};
use sunstorm_core::appliance::{ApplianceInfo, PhoneEntry};
use sunstorm_core::approval::{check_approval, ApprovalPolicy, ApprovalProof, ApprovalPublicKey};
use sunstorm_core::ble::channel::{
    self, kk_reject_message, kk_respond, BondedPhone, ChannelError, MsgType, SecureChannel,
};
use sunstorm_core::ble::framing::{FramedLink, FramingConfig, FramingError};
use sunstorm_core::ble::transport::GattLink;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::AccountId;
use sunstorm_core::clock::{Clock, SystemClock};
use sunstorm_core::decode::DisplayDigest;
use sunstorm_core::envelope::{self, Domain, SignedEnvelope};
use sunstorm_core::model::{
    CountersignedRequest, PairAttestation, PairRevocation, PairSessionDetails, PhoneForgotten, SignRequest,
    MAX_TTL_SECS, STATEMENT_VERSION,
};
use sunstorm_core::payload::{self, SigningTarget};
use sunstorm_core::receipt::SignReceipt;
use sunstorm_core::validity::{check_validity, DEFAULT_MAX_SKEW_SECS};
use tokio::sync::{mpsc, watch, Notify};
use tracing::Instrument;
use uuid::Uuid;

pub use bonding::{BondingConfig, BOND_EXCHANGE_TTL, MAX_BOND_EXCHANGES};
pub use keys::{SimKeys, WalletKey, EVM_CHAINS};
pub use panel::{
    Answer, AnsweredBy, Event, EventPage, EventType, PanelError, Rule, RuleAction, RuleMatch, RuleSpec, Screen,
    ScreenField, ScreenKind, ScreenWarning, MAX_EVENTS, MAX_MATCH_CHARS, MAX_RULES, MAX_RULE_DELAY_MS,
};
pub use state::{ForgottenPhone, PairRecord, SimState, MAX_FORGOTTEN, STATE_FILE};

/// Why the simulator failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SimError {
    /// Bad configuration (seed, PIN).
    #[error("configuration: {0}")]
    Config(String),
    /// The state file could not be read or written.
    #[error("state: {0}")]
    State(String),
    /// The link or its framing failed.
    #[error("link: {0}")]
    Link(String),
    /// The secure channel failed (unknown phone, handshake).
    #[error("channel: {0}")]
    Channel(#[from] ChannelError),
    /// No bonded phone has this app key (never bonded, or already forgotten).
    #[error("no bonded phone has this app key")]
    UnknownPhone,
}

impl From<FramingError> for SimError {
    fn from(e: FramingError) -> Self {
        SimError::Link(e.to_string())
    }
}

/// What the simulated person at the appliance does when asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserScript {
    /// Approves at once.
    Approve,
    /// Declines at once.
    Reject,
    /// Thinks for this many milliseconds, then approves.
    Delay(u64),
    /// Asks on the terminal (stderr/stdin).
    Prompt,
    /// Waits for a press through the control API (or an automation rule): nothing answers
    /// on its own.
    Api,
}

/// How to build an [`ApplianceSim`].
#[derive(Debug, Clone)]
pub struct ApplianceSimConfig {
    /// Seed all keys derive from (16..=64 bytes).
    pub seed: Vec<u8>,
    /// A fixed bonding PIN (six digits); a random one when `None`. After a lockout a
    /// random PIN replaces it.
    pub pin: Option<String>,
    /// Bonding mode (open at start by default) and the wrong-PIN back-off.
    pub bonding: BondingConfig,
    /// Time source of bonding mode and the wrong-PIN back-off (tests move it by hand).
    pub clock: Arc<dyn Clock>,
    /// The simulated user.
    pub user: UserScript,
    /// Octane's pinned Ed25519 key. All zeros (the default) means none: every pair
    /// session is then refused with a message saying so.
    pub octane_key: Key32,
    /// Where state persists; in memory only when `None`.
    pub state_dir: Option<PathBuf>,
    /// The appliance's user-visible name.
    pub name: String,
    /// Framing limits and timeouts on the appliance side.
    pub framing: FramingConfig,
    /// Interval of `Status{WaitingForUser}` keep-alives.
    pub keepalive: Duration,
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// Time allowed for each handshake message.
    pub handshake_timeout: Duration,
}

impl Default for ApplianceSimConfig {
    fn default() -> Self {
        Self {
            seed: vec![0x42; 32],
            pin: None,
            bonding: BondingConfig::default(),
            clock: Arc::new(SystemClock),
            user: UserScript::Approve,
            octane_key: Key32::default(),
            state_dir: None,
            name: "Sigil simulator".into(),
            framing: FramingConfig::default(),
            keepalive: Duration::from_millis(KEEPALIVE_INTERVAL_MS),
            idle_timeout: Duration::from_secs(120),
            handshake_timeout: channel::HANDSHAKE_TIMEOUT,
        }
    }
}

/// What the user decided.
enum Decision {
    Approve,
    Reject,
    Cancelled,
    Expired,
}

/// A validated state-changing request, ready for the user and then the signature.
enum Prepared {
    Pair { session: PairSessionDetails, code: String, bindings: Vec<AccountId>, policy: ApprovalPolicy },
    Sign { req: SignRequest, target: SigningTarget, sp_name: String, display_digest: Option<DisplayDigest> },
    Revoke { pair_id: Uuid },
    Forget { target: BondedPhone, by: BondedPhone },
    EnrolKey { phone: BondedPhone, key: ApprovalPublicKey },
    SetPolicy { pair_id: Uuid, sp_name: String, from: ApprovalPolicy, to: ApprovalPolicy },
}

struct Inflight {
    done: watch::Receiver<Option<ResponseBody>>,
    cancel: Arc<Notify>,
    /// The channel key of the phone that asked.
    phone: Key32,
}

struct Runtime {
    state: SimState,
    inflight: HashMap<Uuid, Inflight>,
    /// Bumped by a reset: answers to requests begun before it are not recorded.
    epoch: u64,
}

struct Inner {
    cfg: ApplianceSimConfig,
    keys: SimKeys,
    channel_public: Key32,
    user: Mutex<UserScript>,
    /// The PIN on screen and bonding mode.
    bond: Mutex<bonding::BondCtl>,
    pin_tx: watch::Sender<String>,
    rt: Mutex<Runtime>,
    /// Bonding exchanges phones may continue on a new connection.
    exchanges: Mutex<Vec<Arc<Mutex<bonding::BondExchange>>>>,
    /// The screen, its buttons, automation rules and the event log.
    panel: panel::Panel,
    /// Bumped whenever a phone is forgotten: live sessions check whether theirs still is bonded.
    forgets: watch::Sender<u64>,
}

/// The appliance simulator. Cheap to clone (shared state); serve any number of links.
#[derive(Clone)]
pub struct ApplianceSim {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ApplianceSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplianceSim").field("identity", &self.identity()).finish_non_exhaustive()
    }
}

fn now() -> u64 {
    sunstorm_core::clock::now_unix()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave these structures half-updated in a way
    // that matters for a simulator; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn err(code: ApplianceErrorCode, msg: impl Into<String>) -> ResponseBody {
    ResponseBody::Error { code, message: msg.into() }
}

/// The answer to every request of a forgotten phone.
fn forgotten_error() -> ResponseBody {
    err(ApplianceErrorCode::PhoneForgotten, "this appliance no longer knows this phone; bond again")
}

/// The appliance's check of a sign request's times, when it arrives and again when the
/// user's answer arrives: the one rule in core ([`check_validity`]). Every failure is
/// answered `request_expired` (the protocol's code for an expired request or an invalid
/// lifetime), with the reason in the message.
pub(crate) fn sign_validity(req: &SignRequest, now: u64) -> Result<(), ResponseBody> {
    check_validity(req.created_at, req.expires_at, now, DEFAULT_MAX_SKEW_SECS)
        .map_err(|e| err(ApplianceErrorCode::RequestExpired, format!("{}: {e}", e.code())))
}

impl ApplianceSim {
    /// Builds the simulator: derives its keys, loads its state from `state_dir`.
    pub fn new(cfg: ApplianceSimConfig) -> Result<Self, SimError> {
        let keys = SimKeys::derive(&cfg.seed)?;
        let channel_public = channel::x25519_public(&keys.channel_private)?;
        if let Some(p) = &cfg.pin {
            if !channel::is_valid_pin(p) {
                return Err(SimError::Config("the PIN must be six digits".into()));
            }
        }
        let pin = cfg.pin.clone().unwrap_or_else(channel::random_pin);
        let state = match &cfg.state_dir {
            Some(d) => SimState::load(d)?,
            None => SimState::default(),
        };
        let (pin_tx, _) = watch::channel(pin.clone());
        let window = Self::initial_window(&cfg.bonding, cfg.clock.now_unix());
        Ok(Self {
            inner: Arc::new(Inner {
                user: Mutex::new(cfg.user.clone()),
                cfg,
                keys,
                channel_public,
                bond: Mutex::new(bonding::BondCtl { pin, window }),
                pin_tx,
                rt: Mutex::new(Runtime { state, inflight: HashMap::new(), epoch: 0 }),
                exchanges: Mutex::new(Vec::new()),
                panel: panel::Panel::new(),
                forgets: watch::channel(0).0,
            }),
        })
    }

    /// The PIN the appliance shows now.
    pub fn pin(&self) -> String {
        lock(&self.inner.bond).pin.clone()
    }

    /// Wrong PINs counted against the PIN on screen (reset by a lockout or a bond).
    pub fn pin_failures(&self) -> u32 {
        lock(&self.inner.rt).state.bond_guard.failures
    }

    /// Follows the PIN on screen (it changes after a lockout, or after a bond when random).
    pub fn pin_watch(&self) -> watch::Receiver<String> {
        self.inner.pin_tx.subscribe()
    }

    /// The Ed25519 identity key.
    pub fn identity(&self) -> Key32 {
        Key32(self.inner.keys.identity.verifying_key().to_bytes())
    }

    /// The X25519 static channel key.
    pub fn channel_public(&self) -> Key32 {
        self.inner.channel_public
    }

    /// All the simulator's wallets.
    pub fn wallets(&self) -> Vec<AccountId> {
        self.inner.keys.accounts(&[])
    }

    /// Signatures made for this sign request id (0 or 1).
    pub fn signatures_made(&self, request_id: Uuid) -> u32 {
        lock(&self.inner.rt).state.signatures.get(&request_id).copied().unwrap_or(0)
    }

    /// Signatures made in total.
    pub fn total_signatures(&self) -> u64 {
        lock(&self.inner.rt).state.total_signatures
    }

    /// The largest number of signatures made for any one request id (must be ≤ 1).
    pub fn max_signatures_per_request(&self) -> u32 {
        lock(&self.inner.rt).state.signatures.values().copied().max().unwrap_or(0)
    }

    /// Changes the simulated user's behaviour (for screens shown from now on).
    pub fn set_user(&self, user: UserScript) {
        *lock(&self.inner.user) = user;
    }

    /// The simulated user's behaviour now.
    pub fn user(&self) -> UserScript {
        lock(&self.inner.user).clone()
    }

    /// The screen shown now (the oldest request waiting for its user), and how many more
    /// wait behind it.
    pub fn screen(&self) -> (Option<Screen>, usize) {
        self.inner.panel.current()
    }

    /// Every screen waiting for an answer, oldest first.
    pub fn waiting_screens(&self) -> Vec<Screen> {
        self.inner.panel.waiting()
    }

    /// Presses approve or reject (`answer`) on screen `id`, or on the screen of request
    /// `request`, or on the current screen when both are `None`.
    pub fn press(&self, id: Option<u64>, request: Option<Uuid>, approve: bool) -> Result<Screen, PanelError> {
        let answer = if approve { Answer::Approved } else { Answer::Rejected };
        self.inner.panel.answer(id, request, answer, AnsweredBy::Api)
    }

    /// Log events after `after`, at most `limit`.
    pub fn events_after(&self, after: u64, limit: usize) -> EventPage {
        self.inner.panel.events_after(after, limit)
    }

    /// The `seq` of the last event logged.
    pub fn last_event_seq(&self) -> u64 {
        self.inner.panel.last_seq()
    }

    /// Waits until an event after `after` is logged, or `wait` passes.
    pub async fn wait_for_event(&self, after: u64, wait: Duration) {
        self.inner.panel.wait_after(after, wait).await
    }

    /// Logs an event (the control API logs fault changes).
    pub fn log_event(&self, e: Event) {
        self.inner.panel.log(e)
    }

    /// Adds an automation rule, tried for every screen shown from now on (first match wins).
    pub fn add_rule(&self, spec: RuleSpec) -> Result<Rule, PanelError> {
        self.inner.panel.add_rule(spec)
    }

    /// The rules in force, in the order they are tried.
    pub fn rules(&self) -> Vec<Rule> {
        self.inner.panel.rules()
    }

    /// Removes rule `id`.
    pub fn remove_rule(&self, id: u64) -> Result<(), PanelError> {
        self.inner.panel.remove_rule(id)
    }

    /// Removes every rule; returns how many there were.
    pub fn clear_rules(&self) -> usize {
        self.inner.panel.clear_rules()
    }

    /// Revoked pair ids.
    pub fn revoked_pairs(&self) -> Vec<Uuid> {
        lock(&self.inner.rt).state.revoked.iter().copied().collect()
    }

    /// Signatures made per sign request id.
    pub fn signature_counts(&self) -> Vec<(Uuid, u32)> {
        lock(&self.inner.rt).state.signatures.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Back to a factory-fresh appliance with the same keys: forgets bonds, pairs,
    /// revocations, answers, signature counts and the wrong-PIN back-off (persisted),
    /// cancels every screen waiting, drops the rules and the log, restores the simulated
    /// user of the configuration, bonding mode and PIN as at start.
    pub fn reset(&self) {
        {
            let mut rt = lock(&self.inner.rt);
            rt.epoch += 1;
            rt.state = SimState::default();
            for f in rt.inflight.values() {
                f.cancel.notify_one();
            }
            rt.inflight.clear();
            self.persist(&rt);
        }
        lock(&self.inner.exchanges).clear();
        *lock(&self.inner.user) = self.inner.cfg.user.clone();
        {
            let mut ctl = lock(&self.inner.bond);
            ctl.window = Self::initial_window(&self.inner.cfg.bonding, self.inner.cfg.clock.now_unix());
            ctl.pin = self.inner.cfg.pin.clone().unwrap_or_else(channel::random_pin);
            self.inner.pin_tx.send_replace(ctl.pin.clone());
        }
        self.inner.panel.reset();
        self.inner.forgets.send_modify(|n| *n += 1);
        tracing::info!("simulator reset");
    }

    /// Phones bonded with this appliance.
    pub fn bonded_phones(&self) -> Vec<BondedPhone> {
        lock(&self.inner.rt).state.bonds.clone()
    }

    /// Phones forgotten, oldest first (at most [`MAX_FORGOTTEN`]).
    pub fn forgotten_phones(&self) -> Vec<ForgottenPhone> {
        lock(&self.inner.rt).state.forgotten.clone()
    }

    /// Forgets the bonded phone with `app_key` from the appliance's own side (its menu, or
    /// the control API): drops its bond, cuts its session, cancels its pending requests
    /// and refuses it from then on. Returns the signed `PhoneForgotten` statement.
    pub fn forget_phone(&self, app_key: &Key32) -> Result<SignedEnvelope, SimError> {
        let mut rt = lock(&self.inner.rt);
        let r = self.forget_locked(&mut rt, app_key, None);
        self.persist(&rt);
        r
    }

    /// The one place a phone is forgotten (under the state lock).
    fn forget_statement(&self, app_key: &Key32, by: Option<Key32>, at: u64) -> Result<SignedEnvelope, SimError> {
        let statement = PhoneForgotten {
            v: STATEMENT_VERSION,
            app_key: *app_key,
            appliance_identity: self.identity(),
            forgotten_by: by,
            forgotten_at: at,
        };
        SignedEnvelope::seal(Domain::PhoneForgotten, &self.inner.keys.identity, &statement)
            .map_err(|e| SimError::State(format!("cannot sign the statement: {e}")))
    }

    /// The statements of the newest phones forgotten on the appliance's own side (at most
    /// `MAX_OWN_FORGETS`, oldest first), signed again (Ed25519 is deterministic: the same
    /// bytes as when printed): the `list_phones` answer hands them to the phones to relay.
    fn own_forget_statements(&self, state: &SimState) -> Vec<SignedEnvelope> {
        let own: Vec<_> = state.forgotten.iter().filter(|f| f.forgotten_by.is_none()).collect();
        let skip = own.len().saturating_sub(MAX_OWN_FORGETS);
        own.into_iter()
            .skip(skip)
            .filter_map(|f| match self.forget_statement(&f.app_key, None, f.forgotten_at) {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::warn!(error = %e, "a forget statement could not be signed");
                    None
                }
            })
            .collect()
    }

    fn forget_locked(&self, rt: &mut Runtime, app_key: &Key32, by: Option<Key32>) -> Result<SignedEnvelope, SimError> {
        let t = now();
        let envelope = self.forget_statement(app_key, by, t)?;
        let phone = rt.state.forget(app_key, by, t).ok_or(SimError::UnknownPhone)?;
        for f in rt.inflight.values().filter(|f| f.phone == phone.channel_static) {
            f.cancel.notify_one();
        }
        self.inner.forgets.send_modify(|n| *n += 1);
        let name = sunstorm_core::display::clean(&phone.name, sunstorm_core::display::TextKind::Name);
        self.inner.panel.log(Event::new(EventType::PhoneForgotten).detail(format!("forgot {name}")));
        tracing::info!(phone = %phone.channel_static.fingerprint(), by_phone = by.is_some(), "forgot a phone");
        Ok(envelope)
    }

    /// Active pairs.
    pub fn pairs(&self) -> Vec<PairRecord> {
        lock(&self.inner.rt).state.pairs.values().cloned().collect()
    }

    /// Request ids answered (state-changing requests only).
    pub fn answered_ids(&self) -> Vec<Uuid> {
        lock(&self.inner.rt).state.answered.keys().copied().collect()
    }

    /// What `GetInfo` answers.
    pub fn info(&self) -> ApplianceInfo {
        ApplianceInfo {
            name: self.inner.cfg.name.clone(),
            firmware: concat!("sunstorm-sim/", env!("CARGO_PKG_VERSION")).into(),
            protocol_version: PROTOCOL_VERSION,
            identity: self.identity(),
        }
    }

    fn persist(&self, rt: &Runtime) {
        if let Some(dir) = &self.inner.cfg.state_dir {
            if let Err(e) = rt.state.save(dir) {
                tracing::error!(error = %e, "could not persist the simulator state");
            }
        }
    }

    /// Serves one connection until the phone leaves, the link fails or it idles out.
    pub async fn serve(&self, link: Box<dyn GattLink>) -> Result<(), SimError> {
        let framed = Arc::new(FramedLink::new(link, self.inner.cfg.framing.clone()));
        let span = tracing::info_span!("sim.connection", mtu = framed.mtu());
        let r = async {
            let first = loop {
                match framed.recv_message(self.inner.cfg.idle_timeout).await {
                    Ok(m) => break m,
                    Err(FramingError::Link(e)) => return Err(SimError::Link(e.to_string())),
                    Err(e) => tracing::debug!(error = %e, "dropped a broken first message"),
                }
            };
            match MsgType::of(&first) {
                Some(MsgType::BondHello) => self.serve_bonding(&framed, &first).await,
                Some(MsgType::KkInit) => self.serve_session(framed.clone(), &first).await,
                _ => Err(SimError::Channel(ChannelError::Malformed("unexpected first message".into()))),
            }
        }
        .instrument(span)
        .await;
        // Let the phone hang up first: closing at once could drop our last notifications
        // (as a real BLE disconnect can).
        let linger = tokio::time::Instant::now() + self.inner.cfg.handshake_timeout;
        while tokio::time::Instant::now() < linger {
            match framed.recv_message(linger.saturating_duration_since(tokio::time::Instant::now())).await {
                Err(FramingError::Link(_)) => break,
                _ => continue,
            }
        }
        framed.close().await;
        r
    }

    async fn serve_session(&self, framed: Arc<FramedLink>, init: &[u8]) -> Result<(), SimError> {
        // Forgotten phones are recognised too, only to be told so on every request.
        let known: Vec<Key32> = {
            let rt = lock(&self.inner.rt);
            rt.state
                .bonds
                .iter()
                .map(|b| b.channel_static)
                .chain(rt.state.forgotten.iter().map(|f| f.channel_static))
                .collect()
        };
        let (session, phone, reply) = match kk_respond(&self.inner.keys.channel_private, &known, init) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "refusing a phone");
                framed.send_message(&kk_reject_message(), None).await?;
                return Err(e.into());
            }
        };
        framed.send_message(&reply, None).await?;
        tracing::debug!(phone = %phone.fingerprint(), "session established");
        let ch = Arc::new(SecureChannel::new(framed, session));

        // A reader task, so keep-alives and a Cancel can flow while a request is pending.
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let reader_ch = ch.clone();
        let idle = self.inner.cfg.idle_timeout;
        let reader = tokio::spawn(async move {
            loop {
                match reader_ch.recv(idle).await {
                    Ok(m) => {
                        if tx.send(m).await.is_err() {
                            break;
                        }
                    }
                    Err(ChannelError::Framing(FramingError::Link(e))) => {
                        tracing::debug!(error = %e, "connection ended");
                        break;
                    }
                    Err(ChannelError::Framing(e)) => {
                        // A request arrived broken: ask for it again at once rather than
                        // letting the phone wait for its timeout.
                        tracing::debug!(error = %e, "a message arrived broken; NACK");
                        if reader_ch.send_nack().await.is_err() {
                            break;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "dropped a broken message"),
                }
            }
        });

        let mut forgets = self.inner.forgets.subscribe();
        let was_bonded = lock(&self.inner.rt).state.is_bonded(&phone);
        let result = async {
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(plain) => self.handle_message(&ch, phone, &plain, &mut rx).await?,
                        None => return Ok(()),
                    },
                    changed = forgets.changed() => {
                        if changed.is_err() || (was_bonded && !lock(&self.inner.rt).state.is_bonded(&phone)) {
                            tracing::info!(phone = %phone.fingerprint(), "the phone was forgotten: session cut");
                            ch.close().await;
                            return Ok(());
                        }
                    }
                }
            }
        }
        .await;
        reader.abort();
        result
    }

    async fn send(&self, ch: &SecureChannel, resp: &Response) -> Result<(), SimError> {
        let bytes = resp.encode().map_err(|e| SimError::Link(e.to_string()))?;
        ch.send(&bytes, None).await?;
        Ok(())
    }

    /// Decodes one request; answers at once or waits (with keep-alives) for the answer.
    async fn handle_message(
        &self,
        ch: &SecureChannel,
        phone: Key32,
        plain: &[u8],
        rx: &mut mpsc::Receiver<Vec<u8>>,
    ) -> Result<(), SimError> {
        let req = match self.decode(plain) {
            Ok(r) => r,
            Err(resp) => return self.send(ch, &resp).await,
        };
        let span = tracing::info_span!("sim.request", op = req.body.op(), id = %req.id);
        async {
            let id = req.id;
            let mut done = match self.begin(phone, req) {
                Begin::Now(body) => return self.send(ch, &Response::new(id, body)).await,
                Begin::Wait(done) => done,
            };
            let mut tick = tokio::time::interval(self.inner.cfg.keepalive);
            tick.tick().await;
            loop {
                let current = done.borrow_and_update().clone();
                if let Some(body) = current {
                    return self.send(ch, &Response::new(id, body)).await;
                }
                tokio::select! {
                    changed = done.changed() => {
                        if changed.is_err() {
                            let body = done.borrow().clone()
                                .unwrap_or_else(|| err(ApplianceErrorCode::Internal, "the request was dropped"));
                            return self.send(ch, &Response::new(id, body)).await;
                        }
                    }
                    _ = tick.tick() => {
                        let ka = Response::new(id, ResponseBody::Status { status: StatusKind::WaitingForUser });
                        self.send(ch, &ka).await?;
                    }
                    m = rx.recv() => {
                        let Some(m) = m else { return Ok(()) };
                        self.handle_nested(ch, phone, id, &m).await?;
                    }
                }
            }
        }
        .instrument(span)
        .await
    }

    /// A message that arrives while a request is pending: `Cancel` and read-only requests
    /// are answered; a repeat of the pending id is ignored; anything else is `busy`.
    async fn handle_nested(
        &self,
        ch: &SecureChannel,
        phone: Key32,
        pending: Uuid,
        plain: &[u8],
    ) -> Result<(), SimError> {
        let req = match self.decode(plain) {
            Ok(r) => r,
            Err(resp) => return self.send(ch, &resp).await,
        };
        if req.id == pending {
            return Ok(());
        }
        if req.body.is_exactly_once() {
            return self
                .send(ch, &Response::error(req.id, ApplianceErrorCode::Busy, "another request is pending"))
                .await;
        }
        let id = req.id;
        match self.begin(phone, req) {
            Begin::Now(body) => self.send(ch, &Response::new(id, body)).await,
            Begin::Wait(_) => Ok(()),
        }
    }

    fn decode(&self, plain: &[u8]) -> Result<Request, Box<Response>> {
        Request::decode(plain).map_err(|e| {
            let id = decode_header(plain).map(|h| h.id).unwrap_or(Uuid::nil());
            let code = match e {
                sunstorm_core::appliance::proto::ProtoError::TooLarge { .. } => ApplianceErrorCode::TooLarge,
                sunstorm_core::appliance::proto::ProtoError::UnsupportedVersion(_) => {
                    ApplianceErrorCode::UnsupportedVersion
                }
                sunstorm_core::appliance::proto::ProtoError::Malformed(_) => ApplianceErrorCode::BadRequest,
            };
            tracing::warn!(error = %e, "refused a request");
            Box::new(Response::error(id, code, e.to_string()))
        })
    }

    /// Starts (or answers) request `req` of the phone with channel key `phone`.
    fn begin(&self, phone: Key32, req: Request) -> Begin {
        let id = req.id;
        if !lock(&self.inner.rt).state.is_bonded(&phone) {
            return Begin::Now(forgotten_error());
        }
        match req.body {
            RequestBody::GetInfo => Begin::Now(ResponseBody::Info(self.info())),
            RequestBody::ListWallets { chains } => {
                Begin::Now(ResponseBody::Wallets { accounts: self.inner.keys.accounts(&chains) })
            }
            RequestBody::ListPairs => {
                Begin::Now(ResponseBody::Pairs { pair_ids: lock(&self.inner.rt).state.pairs.keys().copied().collect() })
            }
            RequestBody::ListPhones => {
                let rt = lock(&self.inner.rt);
                let phones = rt
                    .state
                    .bonds
                    .iter()
                    .map(|b| PhoneEntry {
                        app_key: b.app_key,
                        name: b.name.clone(),
                        bonded_at: b.bonded_at,
                        this_phone: b.channel_static == phone,
                    })
                    .collect();
                let forgotten = self.own_forget_statements(&rt.state);
                Begin::Now(ResponseBody::Phones { phones, forgotten })
            }
            RequestBody::Cancel { id: target } => {
                if let Some(f) = lock(&self.inner.rt).inflight.get(&target) {
                    f.cancel.notify_one();
                }
                Begin::Now(ResponseBody::Cancelled)
            }
            body => {
                if let RequestBody::Sign { request, .. } = &body {
                    // Exactly-once is keyed on the sign request's own id.
                    match sunstorm_core::cbor::from_canonical_slice::<SignRequest>(&request.body) {
                        Ok(inner) if inner.request_id == id => {}
                        Ok(_) => {
                            return Begin::Now(err(
                                ApplianceErrorCode::BadRequest,
                                "the request id is not the sign request's id",
                            ))
                        }
                        Err(e) => {
                            return Begin::Now(err(ApplianceErrorCode::BadRequest, format!("sign request body: {e}")))
                        }
                    }
                }
                let mut rt = lock(&self.inner.rt);
                if let Some(cached) = rt.state.answered.get(&id) {
                    tracing::info!("repeated request id: returning the first answer");
                    return Begin::Now(cached.clone());
                }
                if let Some(f) = rt.inflight.get(&id) {
                    return Begin::Wait(f.done.clone());
                }
                // Validation failures are answered but not cached: they are not acts, and an
                // unverified request must not be able to poison its id.
                let prepared = match self.validate(&rt.state, phone, &body) {
                    Ok(p) => p,
                    Err(e) => return Begin::Now(e),
                };
                let (tx, done) = watch::channel(None);
                let cancel = Arc::new(Notify::new());
                rt.inflight.insert(id, Inflight { done: done.clone(), cancel: cancel.clone(), phone });
                let epoch = rt.epoch;
                drop(rt);
                let sim = self.clone();
                tokio::spawn(
                    async move {
                        let decision = sim.decide(id, &prepared, &cancel).await;
                        let body = sim.finish(id, epoch, phone, prepared, decision);
                        let _ = tx.send(Some(body));
                    }
                    .instrument(tracing::Span::current()),
                );
                Begin::Wait(done)
            }
        }
    }

    fn validate(&self, state: &SimState, phone: Key32, body: &RequestBody) -> Result<Prepared, ResponseBody> {
        match body {
            RequestBody::ForgetPhone { app_key } => {
                let by = state.bonds.iter().find(|b| b.channel_static == phone).cloned().ok_or_else(forgotten_error)?;
                match state.bonds.iter().find(|b| &b.app_key == app_key) {
                    Some(t) if t.channel_static == phone => Err(err(
                        ApplianceErrorCode::CannotForgetSelf,
                        "a phone cannot forget itself: forget it from another bonded phone or on the appliance",
                    )),
                    Some(t) => Ok(Prepared::Forget { target: t.clone(), by }),
                    None if state.forgotten.iter().any(|f| &f.app_key == app_key) => {
                        Err(err(ApplianceErrorCode::UnknownPhone, "this phone is already forgotten"))
                    }
                    None => Err(err(
                        ApplianceErrorCode::UnknownPhone,
                        "no phone with this key is bonded with this appliance",
                    )),
                }
            }
            RequestBody::ApprovePair { session, validation_code, bindings } => {
                // A pair approved from a phone with an approval key asks for its proof on
                // every signature until the user changes that on the appliance.
                let keyed = state.bonds.iter().any(|b| b.channel_static == phone && b.approval_key.is_some());
                let policy = if keyed { ApprovalPolicy::Always } else { ApprovalPolicy::Never };
                self.validate_pair(session, validation_code, bindings, policy)
            }
            RequestBody::Sign { request, display_digest, approval } => {
                let bond = state.bonds.iter().find(|b| b.channel_static == phone).ok_or_else(forgotten_error)?;
                self.validate_sign(state, bond, request, *display_digest, approval.as_ref())
            }
            RequestBody::EnrolApprovalKey { public_key } => {
                let bond = state.bonds.iter().find(|b| b.channel_static == phone).ok_or_else(forgotten_error)?;
                if !public_key.is_valid() {
                    return Err(err(ApplianceErrorCode::BadApprovalKey, "not a P-256 public key (SEC1)"));
                }
                Ok(Prepared::EnrolKey { phone: bond.clone(), key: public_key.clone() })
            }
            RequestBody::SetApprovalPolicy { pair_id, policy } => match state.pairs.get(pair_id) {
                Some(p) => Ok(Prepared::SetPolicy {
                    pair_id: *pair_id,
                    sp_name: p.sp_name.clone(),
                    from: p.approval_policy(),
                    to: *policy,
                }),
                None if state.revoked.contains(pair_id) => {
                    Err(err(ApplianceErrorCode::PairRevoked, "the pair is already revoked"))
                }
                None => Err(err(ApplianceErrorCode::UnknownPair, "no such pair")),
            },
            RequestBody::RevokePair { pair_id } => {
                if state.pairs.contains_key(pair_id) {
                    Ok(Prepared::Revoke { pair_id: *pair_id })
                } else if state.revoked.contains(pair_id) {
                    Err(err(ApplianceErrorCode::PairRevoked, "the pair is already revoked"))
                } else {
                    Err(err(ApplianceErrorCode::UnknownPair, "no such pair"))
                }
            }
            _ => Err(err(ApplianceErrorCode::BadRequest, "not a state-changing request")),
        }
    }

    fn validate_pair(
        &self,
        session: &SignedEnvelope,
        code: &str,
        bindings: &[AccountId],
        policy: ApprovalPolicy,
    ) -> Result<Prepared, ResponseBody> {
        if self.inner.cfg.octane_key == Key32::default() {
            // A setup mistake, not an attack: say how to fix it.
            return Err(err(
                ApplianceErrorCode::BadSessionSignature,
                "this appliance simulator has no octane key, so it cannot check any pair session: \
                 start it with --octane-key <the key `sunstorm sim octane` prints>",
            ));
        }
        let details: PairSessionDetails =
            session.open(Domain::OctaneSession, self.inner.cfg.octane_key.as_bytes()).map_err(|e| {
                err(ApplianceErrorCode::BadSessionSignature, format!("octane's signature on the session: {e}"))
            })?;
        if details.v != STATEMENT_VERSION {
            return Err(err(ApplianceErrorCode::BadRequest, "unknown session version"));
        }
        if now() > details.expires_at {
            return Err(err(ApplianceErrorCode::SessionExpired, "the pair session expired"));
        }
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(ApplianceErrorCode::BadRequest, "the validation code must be six digits"));
        }
        if bindings.is_empty() {
            return Err(err(ApplianceErrorCode::BindingNotRequested, "choose at least one wallet"));
        }
        for b in bindings {
            if !details.requested_chains.contains(&b.chain) {
                return Err(err(
                    ApplianceErrorCode::BindingNotRequested,
                    format!("{} is on a chain the SP did not ask for", b),
                ));
            }
            if self.inner.keys.key_for(b).is_none() {
                return Err(err(ApplianceErrorCode::NotOwnAccount, format!("{b} is not a wallet of this appliance")));
            }
        }
        let mut bindings = bindings.to_vec();
        bindings.sort();
        bindings.dedup();
        Ok(Prepared::Pair { session: details, code: code.to_string(), bindings, policy })
    }

    fn validate_sign(
        &self,
        state: &SimState,
        bond: &BondedPhone,
        request: &CountersignedRequest,
        display_digest: Option<DisplayDigest>,
        approval: Option<&ApprovalProof>,
    ) -> Result<Prepared, ResponseBody> {
        let unverified: SignRequest = sunstorm_core::cbor::from_canonical_slice(&request.body)
            .map_err(|e| err(ApplianceErrorCode::BadRequest, format!("sign request body: {e}")))?;
        let pair = match state.pairs.get(&unverified.pair_id) {
            Some(p) => p,
            None if state.revoked.contains(&unverified.pair_id) => {
                return Err(err(ApplianceErrorCode::PairRevoked, "the pair was revoked"))
            }
            None => return Err(err(ApplianceErrorCode::UnknownPair, "no such pair on this appliance")),
        };
        envelope::verify_bytes(Domain::SpSignRequest, pair.sp_public_key.as_bytes(), &request.body, &request.sp_sig)
            .map_err(|_| {
                err(ApplianceErrorCode::BadSpSignature, "the SP's signature does not verify under the pinned key")
            })?;
        let req = request
            .verify(&pair.sp_public_key, &self.inner.cfg.octane_key)
            .map_err(|_| err(ApplianceErrorCode::BadOctaneSignature, "octane's countersignature does not verify"))?;
        if req.v != STATEMENT_VERSION {
            return Err(err(ApplianceErrorCode::BadRequest, "unknown sign request version"));
        }
        if !pair.bindings.contains(&req.account) {
            return Err(err(ApplianceErrorCode::AccountNotBound, "the account is not bound to this pair"));
        }
        if req.account.chain != req.chain {
            return Err(err(ApplianceErrorCode::ChainMismatch, "the account is on another chain"));
        }
        sign_validity(&req, now())?;
        let target = payload::signing_target(req.kind, &req.payload, &req.chain)
            .map_err(|e| err(ApplianceErrorCode::BadPayload, e.to_string()))?;
        match (&target, self.inner.keys.key_for(&req.account)) {
            (SigningTarget::EvmDigest { .. }, Some(WalletKey::Evm(_)))
            | (SigningTarget::Ed25519Message(_), Some(WalletKey::Solana(_))) => {}
            (_, None) => return Err(err(ApplianceErrorCode::NotOwnAccount, "not a wallet of this appliance")),
            _ => return Err(err(ApplianceErrorCode::BadPayload, "the payload kind does not fit the account")),
        }
        // The phone's approval, as the pair's policy asks, before the user is shown anything.
        let policy = pair.approval_policy();
        if let Err(r) = check_approval(policy, bond.approval_key.as_ref(), &req, display_digest, approval) {
            tracing::warn!(code = r.code(), %policy, "sign: approval proof refused");
            let detail = format!("{}: {r} (policy: {policy})", r.code());
            self.inner
                .panel
                .log(Event::new(EventType::ApprovalRefused).request(req.request_id).pair(req.pair_id).detail(detail));
            return Err(err(r.into(), r.to_string()));
        }
        Ok(Prepared::Sign { req, target, sp_name: pair.sp_name.clone(), display_digest })
    }

    /// Shows the request on the appliance's screen and waits for its answer: a press
    /// through the control API, the first automation rule that matches, or the simulated
    /// user; a `Cancel` from the phone or the request's expiry ends the wait.
    async fn decide(&self, id: Uuid, p: &Prepared, cancel: &Notify) -> Decision {
        let screen = match p {
            Prepared::Pair { session, code, bindings, .. } => Screen::pair(id, session, code, bindings),
            Prepared::Sign { req, sp_name, display_digest, .. } => Screen::sign(req, sp_name, *display_digest),
            // Dropping a pair takes nothing away from the user: no confirmation.
            Prepared::Revoke { .. } => return Decision::Approve,
            // Forgetting a phone takes it away from its owner: the person at the
            // appliance confirms (a stolen phone cannot lock out the others unseen).
            Prepared::Forget { target, by } => {
                Screen::forget_phone(id, &target.name, &target.app_key.to_hex(), &by.name, now(), MAX_TTL_SECS)
            }
            // A new approval key, or a weaker or stronger policy, changes what the phone's
            // approval proves: the person at the appliance confirms.
            Prepared::EnrolKey { phone, key } => {
                Screen::enrol_approval_key(id, &phone.name, &key.fingerprint(), now(), MAX_TTL_SECS)
            }
            Prepared::SetPolicy { sp_name, from, to, .. } => {
                Screen::set_approval_policy(id, sp_name, &from.to_string(), &to.to_string(), now(), MAX_TTL_SECS)
            }
        };
        let panel = &self.inner.panel;
        let (screen, mut answer, rule) = panel.show(screen, now());
        let user = lock(&self.inner.user).clone();
        let what = screen.text.join(" | ");
        tracing::info!(screen = screen.id, %what, ?user, rule = ?rule.and_then(|r| r.rule), "asking the user");
        let (auto, by) = match (rule, &user) {
            (Some(r), _) => (r.answer.map(|a| (a, r.after)), AnsweredBy::Rule),
            (None, UserScript::Approve) => (Some((Answer::Approved, Duration::ZERO)), AnsweredBy::UserScript),
            (None, UserScript::Reject) => (Some((Answer::Rejected, Duration::ZERO)), AnsweredBy::UserScript),
            (None, UserScript::Delay(ms)) => {
                (Some((Answer::Approved, Duration::from_millis(*ms))), AnsweredBy::UserScript)
            }
            (None, UserScript::Prompt) => {
                let sim = self.clone();
                let sid = screen.id;
                tokio::task::spawn_blocking(move || {
                    eprint!("[appliance] {what} [y/N] ");
                    let mut line = String::new();
                    let _ = std::io::stdin().read_line(&mut line);
                    let a = if matches!(line.trim(), "y" | "Y" | "yes") { Answer::Approved } else { Answer::Rejected };
                    let _ = sim.inner.panel.answer(Some(sid), None, a, AnsweredBy::UserScript);
                });
                (None, AnsweredBy::UserScript)
            }
            (None, UserScript::Api) => (None, AnsweredBy::Api),
        };
        let expiry = Duration::from_secs(screen.expires_at.saturating_sub(now()));
        let auto_after = auto.map_or(Duration::MAX, |(_, d)| d);
        let answered = tokio::select! {
            a = &mut answer => a.ok(),
            _ = tokio::time::sleep(auto_after), if auto.is_some() => None,
            _ = cancel.notified() => {
                let _ = panel.answer(Some(screen.id), None, Answer::Cancelled, AnsweredBy::Phone);
                None
            }
            _ = tokio::time::sleep(expiry) => {
                let _ = panel.answer(Some(screen.id), None, Answer::Expired, AnsweredBy::Appliance);
                None
            }
        };
        let answered = match (answered, auto) {
            (Some(a), _) => a,
            (None, Some((a, _))) => {
                // A press may have landed at the same moment: the first answer wins.
                let _ = panel.answer(Some(screen.id), None, a, by);
                answer.await.unwrap_or(Answer::Cancelled)
            }
            (None, None) => answer.await.unwrap_or(Answer::Cancelled),
        };
        match answered {
            Answer::Approved => Decision::Approve,
            Answer::Rejected => Decision::Reject,
            Answer::Cancelled => Decision::Cancelled,
            Answer::Expired => Decision::Expired,
        }
    }

    /// Acts on the decision, records the answer and the signature count, all under one
    /// lock: the signature and its bookkeeping are one step.
    fn finish(&self, id: Uuid, epoch: u64, phone: Key32, p: Prepared, decision: Decision) -> ResponseBody {
        let mut rt = lock(&self.inner.rt);
        if rt.epoch != epoch {
            // The simulator was reset while the request waited: nothing is recorded.
            return err(ApplianceErrorCode::Cancelled, "the appliance was reset");
        }
        if let Some(cached) = rt.state.answered.get(&id) {
            return cached.clone();
        }
        if !rt.state.is_bonded(&phone) {
            // Forgotten while its request waited: nothing is done for it.
            rt.inflight.remove(&id);
            return forgotten_error();
        }
        let body = match decision {
            Decision::Reject => err(ApplianceErrorCode::UserRejected, "declined on the appliance"),
            Decision::Cancelled => err(ApplianceErrorCode::Cancelled, "cancelled by the phone"),
            Decision::Expired => {
                err(ApplianceErrorCode::RequestExpired, "the request expired on the appliance's screen")
            }
            Decision::Approve => match self.act(&mut rt, p) {
                Ok(b) => b,
                Err(b) => b,
            },
        };
        rt.state.answered.insert(id, body.clone());
        rt.inflight.remove(&id);
        self.persist(&rt);
        body
    }

    fn act(&self, rt: &mut Runtime, p: Prepared) -> Result<ResponseBody, ResponseBody> {
        if let Prepared::Forget { target, by } = p {
            return match self.forget_locked(rt, &target.app_key, Some(by.app_key)) {
                Ok(statement) => Ok(ResponseBody::Forgotten { statement }),
                Err(SimError::UnknownPhone) => {
                    Err(err(ApplianceErrorCode::UnknownPhone, "this phone is already forgotten"))
                }
                Err(e) => Err(err(ApplianceErrorCode::Internal, e.to_string())),
            };
        }
        let state = &mut rt.state;
        match p {
            Prepared::EnrolKey { phone, key } => {
                let bond = state.bonds.iter_mut().find(|b| b.channel_static == phone.channel_static);
                let Some(bond) = bond else { return Err(forgotten_error()) };
                let fingerprint = key.fingerprint();
                bond.approval_key = Some(key);
                tracing::info!(%fingerprint, "approval key enrolled");
                let detail = format!("approval key {fingerprint} for phone {}", bond.name);
                self.inner.panel.log(Event::new(EventType::ApprovalKeyEnrolled).detail(detail));
                Ok(ResponseBody::ApprovalKeyEnrolled)
            }
            Prepared::SetPolicy { pair_id, to, .. } => {
                let Some(pair) = state.pairs.get_mut(&pair_id) else {
                    return Err(err(ApplianceErrorCode::UnknownPair, "no such pair"));
                };
                pair.approval_policy = Some(to);
                tracing::info!(%pair_id, policy = %to, "approval policy changed");
                let detail = format!("phone approval: {to}");
                self.inner.panel.log(Event::new(EventType::ApprovalPolicyChanged).pair(pair_id).detail(detail));
                Ok(ResponseBody::ApprovalPolicySet { pair_id, policy: to })
            }
            other => self.act_signed(state, other),
        }
    }

    /// Acts on an approved pair, revocation or signature: the acts the identity key signs.
    fn act_signed(&self, state: &mut SimState, p: Prepared) -> Result<ResponseBody, ResponseBody> {
        let identity = self.identity();
        let key = &self.inner.keys.identity;
        let internal = |e: sunstorm_core::envelope::EnvelopeError| err(ApplianceErrorCode::Internal, e.to_string());
        match p {
            Prepared::Pair { session, code, bindings, policy } => {
                let pair_id = Uuid::new_v4();
                let t = now();
                let att = PairAttestation {
                    v: STATEMENT_VERSION,
                    pair_id,
                    session_id: session.session_id.clone(),
                    validation_code: code,
                    sp_id: session.sp.sp_id.clone(),
                    sp_public_key: session.sp.public_key,
                    bindings: bindings.clone(),
                    appliance_identity: identity,
                    approved_at: t,
                };
                let attestation = SignedEnvelope::seal(Domain::PairAttestation, key, &att).map_err(internal)?;
                state.pairs.insert(
                    pair_id,
                    PairRecord {
                        pair_id,
                        session_id: session.session_id,
                        sp_id: session.sp.sp_id,
                        sp_name: session.sp.name,
                        sp_public_key: session.sp.public_key,
                        bindings,
                        approved_at: t,
                        approval_policy: Some(policy),
                    },
                );
                tracing::info!(%pair_id, "pair approved");
                self.inner.panel.log(
                    Event::new(EventType::PairApproved).pair(pair_id).detail(format!("paired with {}", att.sp_id)),
                );
                Ok(ResponseBody::PairApproved { attestation })
            }
            Prepared::Revoke { pair_id } => {
                let rev =
                    PairRevocation { v: STATEMENT_VERSION, pair_id, appliance_identity: identity, revoked_at: now() };
                let revocation = SignedEnvelope::seal(Domain::PairRevocation, key, &rev).map_err(internal)?;
                state.pairs.remove(&pair_id);
                state.revoked.insert(pair_id);
                tracing::info!(%pair_id, "pair revoked");
                self.inner.panel.log(Event::new(EventType::PairRevoked).pair(pair_id));
                Ok(ResponseBody::PairRevoked { revocation })
            }
            Prepared::Sign { req, target, display_digest, .. } => {
                // The user answered: the request must still be valid now (a late answer
                // after `expires_at` gets no signature).
                sign_validity(&req, now())?;
                let signature = match (target, self.inner.keys.key_for(&req.account)) {
                    (SigningTarget::EvmDigest { digest, v_style }, Some(WalletKey::Evm(k))) => {
                        let (sig, recid) = k
                            .sign_prehash_recoverable(&digest)
                            .map_err(|e| err(ApplianceErrorCode::Internal, e.to_string()))?;
                        payload::encode_evm_signature(&sig, recid, v_style).to_vec()
                    }
                    (SigningTarget::Ed25519Message(m), Some(WalletKey::Solana(k))) => {
                        use ed25519_dalek::Signer;
                        k.sign(&m).to_bytes().to_vec()
                    }
                    _ => return Err(err(ApplianceErrorCode::BadPayload, "the payload kind does not fit the account")),
                };
                // The receipt: what the phone said its screen was, as shown here by its
                // fingerprint, bound to this request, pair and payload.
                let receipt = display_digest
                    .map(|d| {
                        let r = SignReceipt::for_request(&req, d, identity);
                        SignedEnvelope::seal(Domain::SignReceipt, key, &r).map_err(internal)
                    })
                    .transpose()?;
                *state.signatures.entry(req.request_id).or_insert(0) += 1;
                state.total_signatures += 1;
                let shown = display_digest.map(|d| d.fingerprint());
                tracing::info!(request_id = %req.request_id, fingerprint = ?shown, "signed");
                let detail = match &shown {
                    Some(fp) => format!("signed with {}; receipt for phone screen {fp}", req.account),
                    None => format!("signed with {}", req.account),
                };
                self.inner
                    .panel
                    .log(Event::new(EventType::SignatureMade).request(req.request_id).pair(req.pair_id).detail(detail));
                Ok(ResponseBody::Signature { signature, receipt })
            }
            Prepared::Forget { .. } | Prepared::EnrolKey { .. } | Prepared::SetPolicy { .. } => {
                Err(err(ApplianceErrorCode::Internal, "handled by act"))
            }
        }
    }

    /// Serves every link an in-process acceptor yields, each in its own task.
    pub fn spawn_acceptor(&self, acceptor: crate::link::SimAcceptor) -> tokio::task::JoinHandle<()> {
        let sim = self.clone();
        tokio::spawn(async move {
            while let Ok(link) = acceptor.accept().await {
                let sim = sim.clone();
                tokio::spawn(async move {
                    if let Err(e) = sim.serve(link).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
        })
    }
}

enum Begin {
    Now(ResponseBody),
    Wait(watch::Receiver<Option<ResponseBody>>),
}

/// Runs the simulator as a process: listens on the Unix socket `path` (GATT-like PDUs,
/// contract A) with the link faults of `link_cfg`, serving each connection in a task.
pub async fn run_socket(
    path: &Path,
    cfg: ApplianceSimConfig,
    link_cfg: crate::link::SimLinkConfig,
) -> Result<(), SimError> {
    let sim = ApplianceSim::new(cfg)?;
    run_socket_with(path, sim, link_cfg).await
}

/// [`run_socket`] with a simulator built by the caller (e.g. to watch its PIN).
pub async fn run_socket_with(
    path: &Path,
    sim: ApplianceSim,
    link_cfg: crate::link::SimLinkConfig,
) -> Result<(), SimError> {
    let listener = crate::link::SocketListener::bind(path, link_cfg).map_err(|e| SimError::Link(e.to_string()))?;
    loop {
        let link = match listener.accept().await {
            Ok(l) => l,
            Err(e) => {
                // One phone's failed connection (a bad MTU exchange, a refused connection)
                // must not stop the simulator; pause a little in case the listener itself
                // is in trouble (out of file descriptors).
                tracing::debug!(error = %e, "a connection failed before it started");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let sim = sim.clone();
        tokio::spawn(async move {
            if let Err(e) = sim.serve(link).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
