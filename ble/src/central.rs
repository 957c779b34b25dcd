//! The phone side on a desktop: a btleplug central behind the core's [`Connector`] seam.
//!
//! Backends (btleplug): BlueZ over D-Bus on Linux, CoreBluetooth on macOS, WinRT on
//! Windows. Only the BlueZ backend is tested here (over the bluezoo mock, see
//! `docs/ble-testing.md`).
//!
//! MTU per platform: btleplug reports the ATT MTU the OS negotiated. On BlueZ it reads the
//! `MTU` property of the remote `GattCharacteristic1` objects over D-Bus (BlueZ ≥ 5.62;
//! older BlueZ has no such property and btleplug falls back to 23, the safe minimum). On
//! macOS CoreBluetooth reports `maximumWriteValueLength(.withoutResponse)` (+3 for the ATT
//! header) and on Windows WinRT the session's `MaxPduSize`. [`CentralConfig::max_mtu`] caps
//! it (tests use it to force small MTUs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use async_trait::async_trait;
use btleplug::api::{
    Central, CentralEvent, CentralState, CharPropFlags, Characteristic, Manager as _, Peripheral as _, ScanFilter,
    ValueNotification, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use futures::stream::{BoxStream, StreamExt};
use serde::Serialize;
use sunstorm_core::ble::transport::{
    Connector, GattError, GattLink, MAX_ATT_MTU, MIN_ATT_MTU, NOTIFY_CHAR_UUID, SERVICE_UUID, WRITE_CHAR_UUID,
};
use tokio::sync::{watch, Mutex};
use tracing::{debug, info, info_span, warn, Instrument};
use uuid::Uuid;

/// Which appliance a central should connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BleTarget {
    /// The first device advertising the Sigil service.
    Any,
    /// A device by Bluetooth address (`AA:BB:CC:DD:EE:FF`, case-insensitive).
    Address(String),
    /// A device by advertised local name (exact match).
    Name(String),
}

impl BleTarget {
    /// Reads a CLI argument: an address when it looks like one, `*` or empty for any
    /// Sigil appliance, otherwise a name.
    pub fn parse(s: &str) -> Self {
        let s = s.trim();
        if s.is_empty() || s == "*" {
            return Self::Any;
        }
        let parts: Vec<&str> = s.split(':').collect();
        let is_address =
            parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
        if is_address {
            Self::Address(s.to_ascii_uppercase())
        } else {
            Self::Name(s.to_owned())
        }
    }

    fn matches(&self, found: &FoundAppliance) -> bool {
        match self {
            Self::Any => found.advertises_sigil,
            Self::Address(a) => found.address.eq_ignore_ascii_case(a),
            Self::Name(n) => found.name.as_deref() == Some(n.as_str()),
        }
    }
}

impl std::fmt::Display for BleTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => write!(f, "any Sigil appliance"),
            Self::Address(a) => write!(f, "{a}"),
            Self::Name(n) => write!(f, "\"{n}\""),
        }
    }
}

/// A device seen while scanning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FoundAppliance {
    /// Bluetooth address as the OS reports it (on macOS a per-host UUID-derived value).
    pub address: String,
    /// Advertised local name, when any.
    pub name: Option<String>,
    /// Last received signal strength in dBm, when the OS reports one.
    pub rssi: Option<i16>,
    /// Whether the advertisement lists the Sigil service UUID.
    pub advertises_sigil: bool,
}

/// How the central finds, connects and talks.
#[derive(Debug, Clone)]
pub struct CentralConfig {
    /// Adapter to use by name prefix (BlueZ: `hci0`); `None` takes the first one.
    pub adapter: Option<String>,
    /// How long [`Connector::connect`] scans for the target before [`GattError::NotFound`].
    pub scan_timeout: Duration,
    /// Bound on the LE connection itself.
    pub connect_timeout: Duration,
    /// Bound on service discovery, subscription and each write.
    pub op_timeout: Duration,
    /// Caps the MTU the platform reports (tests force small MTUs with it).
    pub max_mtu: Option<u16>,
}

impl Default for CentralConfig {
    fn default() -> Self {
        Self {
            adapter: None,
            scan_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            op_timeout: Duration::from_secs(5),
            max_mtu: None,
        }
    }
}

fn sigil_uuid(s: &str) -> Result<Uuid, GattError> {
    Uuid::parse_str(s).map_err(|e| GattError::Io(format!("bad UUID constant {s}: {e}")))
}

/// Turns a btleplug error into the seam's error a UI can show.
pub(crate) fn map_err(e: btleplug::Error) -> GattError {
    use btleplug::Error as E;
    match e {
        E::PermissionDenied => GattError::Unavailable("permission to use Bluetooth was denied".into()),
        E::NoAdapterAvailable => GattError::Unavailable("no Bluetooth adapter found".into()),
        E::DeviceNotFound => GattError::NotFound,
        E::NotConnected => GattError::Disconnected,
        E::TimedOut(_) => GattError::Timeout,
        other => classify_message(&other.to_string()),
    }
}

/// BlueZ reports most conditions as D-Bus error names inside a message.
fn classify_message(msg: &str) -> GattError {
    let m = msg.to_ascii_lowercase();
    if m.contains("notpowered") || m.contains("not powered") || m.contains("notready") {
        GattError::Unavailable("Bluetooth is off".into())
    } else if m.contains("accessdenied") || m.contains("notpermitted") || m.contains("permission") {
        GattError::Unavailable(format!("permission to use Bluetooth was denied ({msg})"))
    } else if m.contains("serviceunknown")
        || m.contains("no such file")
        || m.contains("connection refused")
        || m.contains("failed to connect to socket")
        || m.contains("org.freedesktop.dbus.error.noserver")
    {
        GattError::Unavailable(format!("cannot reach the Bluetooth service (is bluetoothd running?): {msg}"))
    } else if m.contains("notconnected") || m.contains("not connected") || m.contains("disconnected") {
        GattError::Disconnected
    } else if m.contains("doesnotexist") || m.contains("unknownobject") {
        GattError::NotFound
    } else {
        GattError::Io(msg.to_owned())
    }
}

async fn bounded<T>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, btleplug::Error>>,
) -> Result<T, GattError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(map_err),
        Err(_) => Err(GattError::Timeout),
    }
}

/// Opens the configured adapter and checks that it is powered.
async fn open_adapter(cfg: &CentralConfig) -> Result<Adapter, GattError> {
    let manager = bounded(cfg.op_timeout, Manager::new()).await.map_err(|e| match e {
        GattError::Io(m) => {
            GattError::Unavailable(format!("cannot reach the Bluetooth service (is bluetoothd running?): {m}"))
        }
        other => other,
    })?;
    let adapters = bounded(cfg.op_timeout, manager.adapters()).await?;
    let mut chosen = None;
    for adapter in adapters {
        let info = bounded(cfg.op_timeout, adapter.adapter_info()).await.unwrap_or_default();
        let wanted = match &cfg.adapter {
            None => true,
            Some(name) => info.split_whitespace().next() == Some(name.as_str()),
        };
        if wanted {
            debug!(adapter = %info, "using Bluetooth adapter");
            chosen = Some(adapter);
            break;
        }
    }
    let adapter = chosen.ok_or_else(|| match &cfg.adapter {
        Some(name) => GattError::Unavailable(format!("no Bluetooth adapter named {name}")),
        None => GattError::Unavailable("no Bluetooth adapter found".into()),
    })?;
    match bounded(cfg.op_timeout, adapter.adapter_state()).await? {
        CentralState::PoweredOff => Err(GattError::Unavailable("Bluetooth is off".into())),
        CentralState::PoweredOn | CentralState::Unknown => Ok(adapter),
    }
}

async fn describe(p: &Peripheral, service: Uuid, limit: Duration) -> Option<FoundAppliance> {
    let props = bounded(limit, p.properties()).await.ok()??;
    Some(FoundAppliance {
        address: props.address.to_string(),
        name: props.local_name.or(props.advertisement_name),
        rssi: props.rssi,
        advertises_sigil: props.services.contains(&service),
    })
}

/// Scans for `timeout` and lists the devices advertising the Sigil service.
pub async fn scan(cfg: &CentralConfig, timeout: Duration) -> Result<Vec<FoundAppliance>, GattError> {
    let span = info_span!("ble_scan", timeout_ms = timeout.as_millis() as u64);
    async {
        let service = sigil_uuid(SERVICE_UUID)?;
        let adapter = open_adapter(cfg).await?;
        bounded(cfg.op_timeout, adapter.start_scan(ScanFilter { services: vec![service] })).await?;
        tokio::time::sleep(timeout).await;
        let _ = bounded(cfg.op_timeout, adapter.stop_scan()).await;
        let mut found = Vec::new();
        for p in bounded(cfg.op_timeout, adapter.peripherals()).await? {
            if let Some(f) = describe(&p, service, cfg.op_timeout).await {
                if f.advertises_sigil {
                    found.push(f);
                }
            }
        }
        found.sort_by(|a, b| b.rssi.cmp(&a.rssi).then_with(|| a.address.cmp(&b.address)));
        info!(count = found.len(), "scan finished");
        Ok(found)
    }
    .instrument(span)
    .await
}

/// A [`Connector`] that finds one appliance over BLE with btleplug and opens GATT links to it.
///
/// Each `connect()` reuses the device found last time when the OS still knows it, and
/// scans again otherwise, so the core's reconnect-and-retry works after a drop or a
/// peripheral restart.
pub struct BtleplugConnector {
    cfg: CentralConfig,
    target: BleTarget,
    adapter: Adapter,
    service: Uuid,
    write_uuid: Uuid,
    notify_uuid: Uuid,
    last: StdMutex<Option<PeripheralId>>,
}

impl std::fmt::Debug for BtleplugConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BtleplugConnector").field("target", &self.target).finish_non_exhaustive()
    }
}

impl BtleplugConnector {
    /// Opens the adapter; fails with [`GattError::Unavailable`] when Bluetooth is off,
    /// absent or not permitted.
    pub async fn new(target: BleTarget, cfg: CentralConfig) -> Result<Self, GattError> {
        let adapter = open_adapter(&cfg).await?;
        Ok(Self {
            cfg,
            target,
            adapter,
            service: sigil_uuid(SERVICE_UUID)?,
            write_uuid: sigil_uuid(WRITE_CHAR_UUID)?,
            notify_uuid: sigil_uuid(NOTIFY_CHAR_UUID)?,
            last: StdMutex::new(None),
        })
    }

    /// The target this connector looks for.
    pub fn target(&self) -> &BleTarget {
        &self.target
    }

    fn remembered(&self) -> Option<PeripheralId> {
        self.last.lock().ok().and_then(|g| g.clone())
    }

    fn remember(&self, id: Option<PeripheralId>) {
        if let Ok(mut g) = self.last.lock() {
            *g = id;
        }
    }

    async fn matching(&self, p: &Peripheral) -> bool {
        match describe(p, self.service, self.cfg.op_timeout).await {
            Some(found) => self.target.matches(&found),
            None => false,
        }
    }

    /// Scans until the target shows up or the scan timeout passes.
    async fn find(&self) -> Result<Peripheral, GattError> {
        let op = self.cfg.op_timeout;
        let mut events = bounded(op, self.adapter.events()).await?;
        let filter = match self.target {
            BleTarget::Any => ScanFilter { services: vec![self.service] },
            // A name or address target may advertise the service in a scan response only.
            _ => ScanFilter::default(),
        };
        bounded(op, self.adapter.start_scan(filter)).await?;
        let deadline = deadline_after(self.cfg.scan_timeout);
        let result = async {
            // Devices the OS already knows (seen by an earlier scan) first.
            for p in bounded(op, self.adapter.peripherals()).await? {
                if self.matching(&p).await {
                    return Ok(p);
                }
            }
            loop {
                let event = match tokio::time::timeout_at(deadline, events.next()).await {
                    Err(_) => return Err(GattError::NotFound),
                    Ok(None) => return Err(GattError::Unavailable("the Bluetooth adapter went away".into())),
                    Ok(Some(e)) => e,
                };
                let id = match event {
                    CentralEvent::DeviceDiscovered(id)
                    | CentralEvent::DeviceUpdated(id)
                    | CentralEvent::ServicesAdvertisement { id, .. } => id,
                    CentralEvent::StateUpdate(CentralState::PoweredOff) => {
                        return Err(GattError::Unavailable("Bluetooth is off".into()))
                    }
                    _ => continue,
                };
                if let Ok(p) = bounded(op, self.adapter.peripheral(&id)).await {
                    if self.matching(&p).await {
                        return Ok(p);
                    }
                }
            }
        }
        .await;
        let _ = bounded(op, self.adapter.stop_scan()).await;
        result
    }

    async fn open(&self, p: Peripheral) -> Result<BtleplugLink, GattError> {
        let op = self.cfg.op_timeout;
        let id = p.id();
        // Watch for the drop before connecting, so none is missed.
        let events = bounded(op, self.adapter.events()).await?;
        if !bounded(op, p.is_connected()).await.unwrap_or(false) {
            bounded(self.cfg.connect_timeout, p.connect()).await?;
        }
        let setup = async {
            bounded(op, p.discover_services()).await?;
            let chars = p.characteristics();
            let find = |uuid: Uuid| -> Result<Characteristic, GattError> {
                chars
                    .iter()
                    .find(|c| c.uuid == uuid && c.service_uuid == self.service)
                    .cloned()
                    .ok_or_else(|| GattError::Io(format!("the device has no Sigil characteristic {uuid}")))
            };
            let write_char = find(self.write_uuid)?;
            let notify_char = find(self.notify_uuid)?;
            let write_type = if write_char.properties.contains(CharPropFlags::WRITE_WITHOUT_RESPONSE) {
                WriteType::WithoutResponse
            } else {
                WriteType::WithResponse
            };
            // Take the stream before subscribing so the first notification is not lost.
            let notifications = bounded(op, p.notifications()).await?;
            bounded(op, p.subscribe(&notify_char)).await?;
            let platform_mtu = p.mtu().clamp(MIN_ATT_MTU, MAX_ATT_MTU);
            let mtu = match self.cfg.max_mtu {
                Some(cap) => platform_mtu.min(cap.max(MIN_ATT_MTU)),
                None => platform_mtu,
            };
            Ok::<_, GattError>((write_char, notify_char, write_type, notifications, mtu))
        };
        let (write_char, notify_char, write_type, notifications, mtu) = match setup.await {
            Ok(v) => v,
            Err(e) => {
                let _ = bounded(op, p.disconnect()).await;
                return Err(e);
            }
        };
        let (down_tx, down_rx) = watch::channel(false);
        tokio::spawn(watch_disconnect(events, id, down_tx));
        info!(mtu, ?write_type, "GATT link open");
        Ok(BtleplugLink {
            peripheral: p,
            write_char,
            notify_char,
            write_type,
            notify_uuid: self.notify_uuid,
            notifications: Mutex::new(notifications),
            down: down_rx,
            closed: AtomicBool::new(false),
            mtu,
            op_timeout: op,
        })
    }
}

async fn watch_disconnect(mut events: BoxStream<'static, CentralEvent>, id: PeripheralId, down: watch::Sender<bool>) {
    loop {
        tokio::select! {
            _ = down.closed() => return,
            ev = events.next() => match ev {
                Some(CentralEvent::DeviceDisconnected(d)) if d == id => {
                    debug!("the appliance disconnected");
                    let _ = down.send(true);
                    return;
                }
                Some(CentralEvent::StateUpdate(CentralState::PoweredOff)) | None => {
                    let _ = down.send(true);
                    return;
                }
                Some(_) => {}
            }
        }
    }
}

#[async_trait]
impl Connector for BtleplugConnector {
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError> {
        let span = info_span!("ble_connect", target = %self.target);
        async {
            if let Some(id) = self.remembered() {
                if let Ok(p) = bounded(self.cfg.op_timeout, self.adapter.peripheral(&id)).await {
                    match self.open(p).await {
                        Ok(link) => return Ok(Box::new(link) as Box<dyn GattLink>),
                        Err(e) => warn!(error = %e, "reconnecting to the known device failed; scanning again"),
                    }
                }
                self.remember(None);
            }
            let p = self.find().await?;
            self.remember(Some(p.id()));
            let link = self.open(p).await?;
            Ok(Box::new(link) as Box<dyn GattLink>)
        }
        .instrument(span)
        .await
    }
}

/// One GATT link to the appliance through btleplug.
struct BtleplugLink {
    peripheral: Peripheral,
    write_char: Characteristic,
    notify_char: Characteristic,
    write_type: WriteType,
    notify_uuid: Uuid,
    notifications: Mutex<std::pin::Pin<Box<dyn futures::Stream<Item = ValueNotification> + Send>>>,
    down: watch::Receiver<bool>,
    closed: AtomicBool,
    mtu: u16,
    op_timeout: Duration,
}

impl BtleplugLink {
    fn is_down(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || *self.down.borrow()
    }
}

impl Drop for BtleplugLink {
    /// A link dropped without `close()` still hangs up, so the next connect starts fresh.
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let p = self.peripheral.clone();
            let limit = self.op_timeout;
            rt.spawn(async move {
                let _ = bounded(limit, p.disconnect()).await;
            });
        }
    }
}

#[async_trait]
impl GattLink for BtleplugLink {
    fn mtu(&self) -> u16 {
        self.mtu
    }

    async fn send(&self, pdu: Vec<u8>) -> Result<(), GattError> {
        if pdu.len() > self.max_pdu() {
            return Err(GattError::PduTooLarge { len: pdu.len(), max: self.max_pdu() });
        }
        if self.is_down() {
            return Err(GattError::Disconnected);
        }
        let mut down = self.down.clone();
        tokio::select! {
            r = bounded(self.op_timeout, self.peripheral.write(&self.write_char, &pdu, self.write_type)) => {
                r.map_err(|e| if self.is_down() { GattError::Disconnected } else { e })
            }
            _ = wait_down(&mut down) => Err(GattError::Disconnected),
        }
    }

    async fn recv(&self, timeout: Duration) -> Result<Vec<u8>, GattError> {
        let mut stream = self.notifications.lock().await;
        let mut down = self.down.clone();
        let deadline = deadline_after(timeout);
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return Err(GattError::Disconnected);
            }
            tokio::select! {
                biased;
                n = stream.next() => match n {
                    Some(n) if n.uuid == self.notify_uuid => return Ok(n.value),
                    Some(_) => continue,
                    None => return Err(GattError::Disconnected),
                },
                _ = wait_down(&mut down) => return Err(GattError::Disconnected),
                _ = tokio::time::sleep_until(deadline) => return Err(GattError::Timeout),
            }
        }
    }

    async fn close(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = bounded(self.op_timeout, self.peripheral.unsubscribe(&self.notify_char)).await;
        let _ = bounded(self.op_timeout, self.peripheral.disconnect()).await;
        debug!("GATT link closed");
    }
}

/// `now + d`, saturating (a huge timeout means "wait for ever", never a panic).
fn deadline_after(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d).or_else(|| now.checked_add(Duration::from_secs(365 * 24 * 3600))).unwrap_or(now)
}

/// Resolves once the link is marked down (or its sender is gone).
async fn wait_down(down: &mut watch::Receiver<bool>) {
    let _ = down.wait_for(|d| *d).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_timeouts_do_not_overflow() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            assert!(deadline_after(Duration::MAX) > tokio::time::Instant::now());
        });
    }

    #[test]
    fn target_parses_addresses_names_and_any() {
        assert_eq!(BleTarget::parse("aa:bb:cc:dd:ee:ff"), BleTarget::Address("AA:BB:CC:DD:EE:FF".into()));
        assert_eq!(BleTarget::parse("Sigil 1"), BleTarget::Name("Sigil 1".into()));
        assert_eq!(BleTarget::parse("aa:bb:cc"), BleTarget::Name("aa:bb:cc".into()));
        assert_eq!(BleTarget::parse(""), BleTarget::Any);
        assert_eq!(BleTarget::parse("*"), BleTarget::Any);
    }

    #[test]
    fn target_matching() {
        let f = FoundAppliance {
            address: "00:00:00:22:22:22".into(),
            name: Some("Sigil".into()),
            rssi: None,
            advertises_sigil: true,
        };
        assert!(BleTarget::Any.matches(&f));
        assert!(BleTarget::parse("00:00:00:22:22:22").matches(&f));
        assert!(BleTarget::Name("Sigil".into()).matches(&f));
        assert!(!BleTarget::Name("Other".into()).matches(&f));
        let other = FoundAppliance { advertises_sigil: false, ..f };
        assert!(!BleTarget::Any.matches(&other));
    }

    #[test]
    fn bluez_errors_become_user_facing_variants() {
        assert_eq!(
            classify_message("org.bluez.Error.NotReady: Resource Not Ready"),
            GattError::Unavailable("Bluetooth is off".into())
        );
        assert!(matches!(
            classify_message("org.freedesktop.DBus.Error.ServiceUnknown: The name org.bluez was not provided"),
            GattError::Unavailable(_)
        ));
        assert!(matches!(classify_message("org.bluez.Error.Failed: Not connected"), GattError::Disconnected));
        assert!(matches!(classify_message("something odd"), GattError::Io(_)));
        assert_eq!(
            map_err(btleplug::Error::NoAdapterAvailable),
            GattError::Unavailable("no Bluetooth adapter found".into())
        );
        assert_eq!(map_err(btleplug::Error::TimedOut(Duration::from_secs(1))), GattError::Timeout);
    }
}
