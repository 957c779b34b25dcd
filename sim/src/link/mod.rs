//! The simulated GATT link: in-process ([`sim_pair`], [`SimConnector`]) and across
//! processes over a Unix-domain socket ([`SocketListener`], [`SocketConnector`]), with
//! seeded, replayable faults.
//!
//! Faults are applied per PDU, in each direction, by the simulator side: one-way latency,
//! connection interval (PDUs leave on connection-event boundaries), a cap on the PDUs one
//! direction may send per connection event, drop / duplicate / reorder probabilities, a
//! disconnect after N PDUs (or with a probability per PDU). Each direction draws from its
//! own ChaCha8 stream of the configured seed, so the same seed and the same sequence of
//! sends give the same faults ([`FaultCounters`]).
//!
//! [`Central`] holds radio profiles modelled on the phones that will drive the appliance
//! (iOS and Android centrals; sources and assumptions in `docs/performance.md`).
//!
//! Everything here spawns tokio tasks: call it from inside a tokio runtime.

mod socket;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sunstorm_core::ble::transport::{Connector, GattError, GattLink, ATT_HEADER, MAX_ATT_MTU, MIN_ATT_MTU};
use tokio::sync::{mpsc, watch, Mutex};
use tokio::time::Instant;

pub use socket::{PduType, SocketConnector, SocketListener};

/// Knobs of a simulated link. `Default` is a perfect link at MTU 185 (no connection
/// interval: every PDU leaves at once); [`SimLinkConfig::central`] is a phone's radio.
#[derive(Debug, Clone, PartialEq)]
pub struct SimLinkConfig {
    /// ATT MTU (clamped to 23..=517); a PDU carries `mtu - 3` bytes.
    pub mtu: u16,
    /// One-way latency added to every PDU.
    pub latency: Duration,
    /// BLE connection interval; PDUs leave on its boundaries. Zero: immediately.
    pub connection_interval: Duration,
    /// Most PDUs one direction sends per connection event (the phone's writes and the
    /// appliance's notifications alike); the rest wait for the next event. Zero: no cap.
    /// Needs a connection interval (without one, PDUs leave at once).
    pub pdus_per_event: u32,
    /// Probability (0..=1) that a PDU is dropped.
    pub drop: f64,
    /// Probability that a PDU is delivered twice.
    pub duplicate: f64,
    /// Probability that a PDU is held back and delivered after the next one.
    pub reorder: f64,
    /// Disconnect when the link (both directions) has carried this many PDUs.
    pub disconnect_after: Option<u64>,
    /// Probability per PDU of a random disconnect (additive to the contract's knobs).
    pub disconnect: f64,
    /// Seed of the fault RNG: the same seed replays the same faults.
    pub seed: u64,
    /// Faults changed while the simulator runs (the control API's knobs); shared by every
    /// connection made from this config and its clones.
    pub live: LiveFaults,
}

impl Default for SimLinkConfig {
    fn default() -> Self {
        Self {
            mtu: 185,
            latency: Duration::ZERO,
            connection_interval: Duration::ZERO,
            pdus_per_event: 0,
            drop: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            disconnect_after: None,
            disconnect: 0.0,
            seed: 0,
            live: LiveFaults::default(),
        }
    }
}

impl SimLinkConfig {
    /// The MTU clamped to what BLE allows.
    pub fn clamped_mtu(&self) -> u16 {
        self.mtu.clamp(MIN_ATT_MTU, MAX_ATT_MTU)
    }

    /// A fault-free link at `mtu` with the connection interval and per-event cap of
    /// `central`'s radio.
    pub fn central(central: Central, mtu: u16) -> Self {
        Self {
            mtu,
            connection_interval: central.connection_interval(),
            pdus_per_event: central.pdus_per_event(),
            ..Self::default()
        }
    }

    /// Connection events needed to carry `pdus` PDUs in one direction under this config's
    /// cap (at least one event for any PDU; `pdus` itself without a cap).
    pub fn events_for(&self, pdus: u64) -> u64 {
        match self.pdus_per_event {
            0 => pdus.min(1),
            cap => pdus.div_ceil(u64::from(cap)),
        }
    }
}

/// A phone's BLE radio as the simulated link models it: the connection interval the
/// appliance gets and how many PDUs go out per connection event. The figures and their
/// sources (or the assumption behind them) are in `docs/performance.md`, *Radio model*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Central {
    /// No radio constraints: every PDU leaves at once (unit tests).
    Ideal,
    /// An iPhone: 15 ms connection interval (the shortest Apple's Accessory Design
    /// Guidelines let an accessory ask for), 4 PDUs per connection event.
    Ios,
    /// An Android phone at its default `CONNECTION_PRIORITY_BALANCED` (30–50 ms in AOSP;
    /// 30 ms modelled), 8 PDUs per connection event.
    Android,
}

impl Central {
    /// Every profile, in the order the CLI lists them.
    pub const ALL: [Central; 3] = [Central::Ideal, Central::Ios, Central::Android];

    /// The name on the command line (`ideal`, `ios`, `android`).
    pub fn name(self) -> &'static str {
        match self {
            Central::Ideal => "ideal",
            Central::Ios => "ios",
            Central::Android => "android",
        }
    }

    /// The profile named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The connection interval modelled (zero for [`Central::Ideal`]).
    pub fn connection_interval(self) -> Duration {
        match self {
            Central::Ideal => Duration::ZERO,
            Central::Ios => Duration::from_millis(15),
            Central::Android => Duration::from_millis(30),
        }
    }

    /// PDUs per connection event and direction (0: no cap, for [`Central::Ideal`]).
    pub fn pdus_per_event(self) -> u32 {
        match self {
            Central::Ideal => 0,
            Central::Ios => 4,
            Central::Android => 8,
        }
    }
}

/// Fault settings changed at run time. `None` keeps the [`SimLinkConfig`] value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LiveSettings {
    /// Probability (0..=1) that a PDU is dropped, replacing [`SimLinkConfig::drop`].
    pub drop: Option<f64>,
    /// Replaces [`SimLinkConfig::duplicate`].
    pub duplicate: Option<f64>,
    /// Replaces [`SimLinkConfig::reorder`].
    pub reorder: Option<f64>,
    /// Replaces [`SimLinkConfig::latency`].
    pub latency: Option<Duration>,
    /// New connections are refused (in-process: `connect()` fails with `NotFound`; over the
    /// socket: the connection is closed before the MTU exchange).
    pub refuse_connections: bool,
}

#[derive(Default)]
struct LiveInner {
    settings: std::sync::Mutex<LiveSettings>,
    conns: std::sync::Mutex<Vec<Weak<Conn>>>,
}

/// A handle on the faults of every link made from one [`SimLinkConfig`], changed while
/// they run: probabilities and latency, refusing connections, and disconnecting every
/// live connection now. Clones share the same settings. Two handles compare equal when
/// their settings are equal.
#[derive(Clone, Default)]
pub struct LiveFaults(Arc<LiveInner>);

impl std::fmt::Debug for LiveFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LiveFaults").field(&self.settings()).finish()
    }
}

impl PartialEq for LiveFaults {
    fn eq(&self, other: &Self) -> bool {
        self.settings() == other.settings()
    }
}

impl LiveFaults {
    /// The settings now.
    pub fn settings(&self) -> LiveSettings {
        self.0.settings.lock().map(|g| *g).unwrap_or_default()
    }

    /// Replaces the settings; PDUs offered from now on see them.
    pub fn set(&self, s: LiveSettings) {
        if let Ok(mut g) = self.0.settings.lock() {
            *g = s;
        }
    }

    /// Connections still open.
    pub fn open_connections(&self) -> usize {
        self.0
            .conns
            .lock()
            .map(|mut g| {
                g.retain(|c| c.upgrade().is_some_and(|c| !c.is_closed()));
                g.len()
            })
            .unwrap_or(0)
    }

    /// Disconnects every open connection now (as a radio dropping the link); returns how
    /// many were open.
    pub fn disconnect_all(&self) -> usize {
        let live: Vec<Arc<Conn>> = match self.0.conns.lock() {
            Ok(mut g) => {
                let v = g.iter().filter_map(Weak::upgrade).filter(|c| !c.is_closed()).collect();
                g.clear();
                v
            }
            Err(_) => Vec::new(),
        };
        for c in &live {
            c.close(GattError::Disconnected);
        }
        if !live.is_empty() {
            tracing::info!(connections = live.len(), "sim link: disconnected every connection");
        }
        live.len()
    }

    fn register(&self, conn: &Arc<Conn>) {
        if let Ok(mut g) = self.0.conns.lock() {
            g.retain(|c| c.upgrade().is_some_and(|c| !c.is_closed()));
            g.push(Arc::downgrade(conn));
        }
    }
}

/// Snapshot of the faults a simulated link (or all links of a connector) injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounters {
    /// PDUs offered to the link (both directions).
    pub pdus: u64,
    /// PDUs dropped.
    pub dropped: u64,
    /// PDUs delivered twice.
    pub duplicated: u64,
    /// PDUs held back behind the next one.
    pub reordered: u64,
    /// Disconnects injected (after N PDUs or random).
    pub disconnects: u64,
    /// PDUs offered from the phone to the appliance (included in `pdus`).
    pub to_appliance: u64,
    /// PDUs offered from the appliance to the phone (included in `pdus`).
    pub to_phone: u64,
}

/// Live fault counters, shared by every link made from one config / connector / listener.
#[derive(Debug, Clone, Default)]
pub struct FaultStats(Arc<[AtomicU64; 7]>);

impl FaultStats {
    /// Current values.
    pub fn snapshot(&self) -> FaultCounters {
        let v = |i: usize| self.0.get(i).map_or(0, |a| a.load(Ordering::Relaxed));
        FaultCounters {
            pdus: v(0),
            dropped: v(1),
            duplicated: v(2),
            reordered: v(3),
            disconnects: v(4),
            to_appliance: v(5),
            to_phone: v(6),
        }
    }

    fn bump(&self, i: usize) {
        if let Some(a) = self.0.get(i) {
            a.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// State of one connection shared by both ends and all its tasks.
#[derive(Debug)]
pub(crate) struct Conn {
    closed: watch::Sender<bool>,
    reason: std::sync::Mutex<Option<GattError>>,
    pdus: AtomicU64,
    epoch: Instant,
}

impl Conn {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            closed: watch::Sender::new(false),
            reason: std::sync::Mutex::new(None),
            pdus: AtomicU64::new(0),
            epoch: Instant::now(),
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Closes the connection, remembering why (the first reason wins).
    pub(crate) fn close(&self, reason: GattError) {
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert(reason);
        }
        self.closed.send_replace(true);
    }

    /// The error a closed link reports.
    pub(crate) fn error(&self) -> GattError {
        self.reason.lock().ok().and_then(|r| r.clone()).unwrap_or(GattError::Disconnected)
    }

    pub(crate) async fn wait_closed(&self) {
        let mut rx = self.closed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}

enum Item {
    Now(Instant, Vec<u8>),
    Hold(Instant, Vec<u8>),
}

/// The connection event the last PDU of a direction was scheduled on, and how many PDUs
/// that event already carries in this direction.
#[derive(Debug, Default)]
struct EventSlot {
    event: u128,
    count: u32,
}

/// Fault injection for one direction of one connection.
pub(crate) struct Injector {
    cfg: SimLinkConfig,
    rng: std::sync::Mutex<ChaCha8Rng>,
    stats: FaultStats,
    conn: Arc<Conn>,
    tx: mpsc::UnboundedSender<Item>,
    slot: std::sync::Mutex<EventSlot>,
    /// 0: phone → appliance, 1: appliance → phone.
    stream: u64,
}

impl Injector {
    /// Builds the direction and spawns its delivery task; returns the receiving side.
    pub(crate) fn spawn(
        cfg: &SimLinkConfig,
        stream: u64,
        conn: &Arc<Conn>,
        stats: &FaultStats,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Vec<u8>>) {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(stream);
        if stream == 0 {
            cfg.live.register(conn);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let flush = cfg.connection_interval.max(Duration::from_millis(20)) + cfg.latency;
        tokio::spawn(deliver(rx, out_tx, conn.clone(), flush));
        let inj = Self {
            cfg: cfg.clone(),
            rng: std::sync::Mutex::new(rng),
            stats: stats.clone(),
            conn: conn.clone(),
            tx,
            slot: std::sync::Mutex::new(EventSlot::default()),
            stream,
        };
        (Arc::new(inj), out_rx)
    }

    /// When a PDU handed over now leaves and arrives: on the next connection event, or
    /// on a later one when this direction already filled that event's cap (PDUs of one
    /// direction leave in order), plus `latency`.
    fn arrival(&self, latency: Duration) -> Instant {
        let now = Instant::now();
        let iv = self.cfg.connection_interval.as_nanos();
        let leave = if iv == 0 {
            now
        } else {
            let el = now.saturating_duration_since(self.conn.epoch).as_nanos();
            let k = next_event(&self.slot, el.div_ceil(iv), self.cfg.pdus_per_event);
            let at = u64::try_from(k.saturating_mul(iv)).unwrap_or(u64::MAX);
            self.conn.epoch + Duration::from_nanos(at)
        };
        leave + latency
    }

    /// Offers one PDU to this direction, applying the faults.
    pub(crate) fn inject(&self, pdu: Vec<u8>) -> Result<(), GattError> {
        if self.conn.is_closed() {
            return Err(self.conn.error());
        }
        self.stats.bump(0);
        self.stats.bump(if self.stream == 0 { 5 } else { 6 });
        let n = self.conn.pdus.fetch_add(1, Ordering::Relaxed) + 1;
        // Always draw all four so the stream stays aligned whatever the knobs.
        let (d, u, r, x) = match self.rng.lock() {
            Ok(mut g) => (g.gen::<f64>(), g.gen::<f64>(), g.gen::<f64>(), g.gen::<f64>()),
            Err(_) => return Err(GattError::Io("fault RNG poisoned".into())),
        };
        if self.cfg.disconnect_after.is_some_and(|k| n > k) || x < self.cfg.disconnect {
            self.stats.bump(4);
            tracing::debug!(pdus = n, "sim link: injected disconnect");
            self.conn.close(GattError::Disconnected);
            return Err(GattError::Disconnected);
        }
        let live = self.cfg.live.settings();
        if d < live.drop.unwrap_or(self.cfg.drop) {
            self.stats.bump(1);
            tracing::trace!("sim link: dropped a PDU");
            return Ok(());
        }
        let at = self.arrival(live.latency.unwrap_or(self.cfg.latency));
        let dup = (u < live.duplicate.unwrap_or(self.cfg.duplicate)).then(|| pdu.clone());
        let item = if r < live.reorder.unwrap_or(self.cfg.reorder) {
            self.stats.bump(3);
            Item::Hold(at, pdu)
        } else {
            Item::Now(at, pdu)
        };
        let _ = self.tx.send(item);
        if let Some(copy) = dup {
            self.stats.bump(2);
            let _ = self.tx.send(Item::Now(at, copy));
        }
        Ok(())
    }
}

/// The connection event a PDU leaves on, the earliest being `earliest`, under a cap of
/// `cap` PDUs per event in this direction (0: none), and records it in `slot`.
fn next_event(slot: &std::sync::Mutex<EventSlot>, earliest: u128, cap: u32) -> u128 {
    if cap == 0 {
        return earliest;
    }
    let Ok(mut s) = slot.lock() else { return earliest };
    let mut k = earliest.max(s.event);
    if k == s.event && s.count >= cap {
        k += 1;
    }
    if k != s.event {
        s.event = k;
        s.count = 0;
    }
    s.count += 1;
    k
}

/// Delivers a direction's PDUs at their arrival times, swapping held ones behind the next.
async fn deliver(
    mut rx: mpsc::UnboundedReceiver<Item>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    conn: Arc<Conn>,
    flush: Duration,
) {
    let mut held: Option<Vec<u8>> = None;
    loop {
        let next = tokio::select! {
            _ = conn.wait_closed() => break,
            item = rx.recv() => item,
            _ = tokio::time::sleep(flush), if held.is_some() => {
                // Nothing came to overtake the held PDU: let it go.
                if let Some(h) = held.take() {
                    if out.send(h).is_err() { break; }
                }
                continue;
            }
        };
        let Some(item) = next else { break };
        let (at, pdu, hold) = match item {
            Item::Now(at, pdu) => (at, pdu, false),
            Item::Hold(at, pdu) => (at, pdu, true),
        };
        tokio::select! {
            _ = conn.wait_closed() => break,
            _ = tokio::time::sleep_until(at) => {}
        }
        if hold {
            if let Some(h) = held.replace(pdu) {
                if out.send(h).is_err() {
                    break;
                }
            }
            continue;
        }
        if out.send(pdu).is_err() {
            break;
        }
        if let Some(h) = held.take() {
            if out.send(h).is_err() {
                break;
            }
        }
    }
}

/// One end of a simulated link.
pub(crate) struct SimEnd {
    mtu: u16,
    tx: Arc<Injector>,
    inbox: Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    conn: Arc<Conn>,
}

impl SimEnd {
    pub(crate) fn new(mtu: u16, tx: Arc<Injector>, inbox: mpsc::UnboundedReceiver<Vec<u8>>, conn: Arc<Conn>) -> Self {
        Self { mtu, tx, inbox: Mutex::new(inbox), conn }
    }
}

impl Drop for SimEnd {
    fn drop(&mut self) {
        // A dropped end is a disconnect for the peer, not silence.
        self.conn.close(GattError::Disconnected);
    }
}

/// Receives from `inbox` unless `conn` closes or `timeout` passes.
pub(crate) async fn recv_from(
    inbox: &Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    conn: &Conn,
    timeout: Duration,
) -> Result<Vec<u8>, GattError> {
    if conn.is_closed() {
        return Err(conn.error());
    }
    let mut inbox = match tokio::time::timeout(timeout, inbox.lock()).await {
        Ok(g) => g,
        Err(_) => return Err(GattError::Timeout),
    };
    tokio::select! {
        biased;
        _ = conn.wait_closed() => Err(conn.error()),
        r = tokio::time::timeout(timeout, inbox.recv()) => match r {
            Ok(Some(pdu)) => Ok(pdu),
            Ok(None) => Err(conn.error()),
            Err(_) => Err(GattError::Timeout),
        },
    }
}

#[async_trait]
impl GattLink for SimEnd {
    fn mtu(&self) -> u16 {
        self.mtu
    }

    async fn send(&self, pdu: Vec<u8>) -> Result<(), GattError> {
        let max = usize::from(self.mtu) - ATT_HEADER;
        if pdu.len() > max {
            return Err(GattError::PduTooLarge { len: pdu.len(), max });
        }
        self.tx.inject(pdu)
    }

    async fn recv(&self, timeout: Duration) -> Result<Vec<u8>, GattError> {
        recv_from(&self.inbox, &self.conn, timeout).await
    }

    async fn close(&self) {
        self.conn.close(GattError::Disconnected);
    }
}

/// A connected in-process pair `(phone, appliance)` with the faults of `cfg`.
/// Call it inside a tokio runtime (it spawns the delivery tasks).
pub fn sim_pair(cfg: SimLinkConfig) -> (Box<dyn GattLink>, Box<dyn GattLink>) {
    let (p, a, _) = sim_pair_with_stats(cfg);
    (p, a)
}

/// Like [`sim_pair`], also returning the pair's fault counters.
pub fn sim_pair_with_stats(cfg: SimLinkConfig) -> (Box<dyn GattLink>, Box<dyn GattLink>, FaultStats) {
    let stats = FaultStats::default();
    let (p, a) = make_pair(&cfg, &stats);
    (p, a, stats)
}

fn make_pair(cfg: &SimLinkConfig, stats: &FaultStats) -> (Box<dyn GattLink>, Box<dyn GattLink>) {
    let mtu = cfg.clamped_mtu();
    let conn = Conn::new();
    let (to_appliance, appliance_inbox) = Injector::spawn(cfg, 0, &conn, stats);
    let (to_phone, phone_inbox) = Injector::spawn(cfg, 1, &conn, stats);
    let phone = SimEnd::new(mtu, to_appliance, phone_inbox, conn.clone());
    let appliance = SimEnd::new(mtu, to_phone, appliance_inbox, conn);
    (Box::new(phone), Box::new(appliance))
}

/// In-process [`Connector`]: every `connect()` makes a new simulated pair and hands its
/// appliance end to the paired [`SimAcceptor`]. Connection `k` (from 0) uses seed `seed + k`.
pub struct SimConnector {
    cfg: SimLinkConfig,
    count: AtomicU64,
    stats: FaultStats,
    tx: mpsc::UnboundedSender<Box<dyn GattLink>>,
}

/// The appliance side of a [`SimConnector`]: yields the appliance end of each connection.
pub struct SimAcceptor {
    rx: Mutex<mpsc::UnboundedReceiver<Box<dyn GattLink>>>,
    stats: FaultStats,
}

impl SimConnector {
    /// A connector and its acceptor, sharing one set of fault counters.
    pub fn new(cfg: SimLinkConfig) -> (Self, SimAcceptor) {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = FaultStats::default();
        let acc = SimAcceptor { rx: Mutex::new(rx), stats: stats.clone() };
        (Self { cfg, count: AtomicU64::new(0), stats, tx }, acc)
    }

    /// Fault counters summed over every connection made.
    pub fn stats(&self) -> FaultStats {
        self.stats.clone()
    }
}

#[async_trait]
impl Connector for SimConnector {
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError> {
        if self.cfg.live.settings().refuse_connections {
            tracing::debug!("sim link: refused a connection");
            return Err(GattError::NotFound);
        }
        let k = self.count.fetch_add(1, Ordering::Relaxed);
        let cfg = SimLinkConfig { seed: self.cfg.seed.wrapping_add(k), ..self.cfg.clone() };
        let (phone, appliance) = make_pair(&cfg, &self.stats);
        self.tx.send(appliance).map_err(|_| GattError::NotFound)?;
        tracing::debug!(connection = k, "sim link: connected");
        Ok(phone)
    }
}

impl SimAcceptor {
    /// The next connection's appliance end; `Disconnected` once the connector is gone.
    pub async fn accept(&self) -> Result<Box<dyn GattLink>, GattError> {
        self.rx.lock().await.recv().await.ok_or(GattError::Disconnected)
    }

    /// Like [`SimAcceptor::accept`], giving up after `timeout`.
    pub async fn accept_timeout(&self, timeout: Duration) -> Result<Box<dyn GattLink>, GattError> {
        tokio::time::timeout(timeout, self.accept()).await.map_err(|_| GattError::Timeout)?
    }

    /// Fault counters summed over every connection made.
    pub fn stats(&self) -> FaultStats {
        self.stats.clone()
    }
}
