//! The platform's BLE central ([`BleCentral`], a foreign trait, with the [`BleEvents`] it
//! pushes notifications into) and the core's GATT seam ([`Connector`], [`GattLink`]) over
//! it.
//!
//! Calls into the platform are blocking by contract, so each runs on tokio's blocking pool
//! under a timeout; notifications arrive through [`BleEvents`] into a bounded queue that
//! `recv` drains with its own timeout.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sunstorm_core::ble::transport::{Connector, GattError, GattLink, MAX_ATT_MTU, MIN_ATT_MTU};
use tokio::sync::{mpsc, Mutex};

use crate::error::BleError;

/// A peripheral seen during a scan.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BlePeripheral {
    /// The platform's stable id for it (CoreBluetooth identifier UUID, Android MAC address).
    pub id: String,
    /// Its advertised name, if any.
    pub name: Option<String>,
    /// Signal strength in dBm, if known.
    pub rssi: Option<i32>,
}

/// The platform's BLE central role (CoreBluetooth `CBCentralManager`,
/// `android.bluetooth.BluetoothGatt`), reduced to what the appliance link needs: the
/// Sigil service has one write and one notify characteristic (UUIDs in
/// `docs/ble-protocol.md`, also returned by `gatt_uuids()`).
///
/// Notifications are pushed, as the platforms deliver them: `connect` receives a
/// [`BleEvents`] object; call `on_notification` from the platform's
/// "characteristic changed" callback and `on_disconnected` when the link drops.
///
/// Numbers are signed (Kotlin `Int`/`Long`, Swift `Int32`/`Int64`) as the platform APIs
/// hand them out; the core checks their ranges.
#[uniffi::export(with_foreign)]
pub trait BleCentral: Send + Sync {
    /// Scans for peripherals advertising `service_uuid` for up to `timeout_ms`, then
    /// returns what was seen (possibly nothing).
    fn scan(&self, service_uuid: String, timeout_ms: i32) -> Result<Vec<BlePeripheral>, BleError>;

    /// Connects to `peripheral_id`, discovers the Sigil service, subscribes to the notify
    /// characteristic, and returns an id for this connection (any value, unique while it
    /// lives). Deliver this connection's notifications and disconnection to `events`.
    fn connect(&self, peripheral_id: String, events: Arc<BleEvents>, timeout_ms: i32) -> Result<i64, BleError>;

    /// Negotiates the ATT MTU (Android `requestMtu`; iOS: report
    /// `maximumWriteValueLength(for: .withoutResponse) + 3`). Returns the MTU in force
    /// (23..=517).
    fn request_mtu(&self, connection_id: i64, preferred_mtu: i32) -> Result<i32, BleError>;

    /// Writes one PDU (at most MTU−3 bytes) to the write characteristic, without response
    /// where the peripheral allows; returns when the platform accepted it.
    fn write(&self, connection_id: i64, value: Vec<u8>) -> Result<(), BleError>;

    /// Disconnects; afterwards, nothing more is delivered for this connection.
    fn disconnect(&self, connection_id: i64) -> Result<(), BleError>;
}

/// Notifications buffered per connection before the platform is told to back off.
const EVENT_QUEUE: usize = 512;
/// Slack added to a platform call's own timeout before the core gives up on it.
const CALL_SLACK: Duration = Duration::from_secs(2);

/// Timeouts for platform BLE calls.
#[derive(Debug, Clone, Copy)]
pub struct BleTimeouts {
    /// Connecting and discovering the service.
    pub connect: Duration,
    /// MTU negotiation.
    pub mtu: Duration,
    /// One write.
    pub write: Duration,
}

impl Default for BleTimeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(15), mtu: Duration::from_secs(5), write: Duration::from_secs(5) }
    }
}

enum BleEvent {
    Notification(Vec<u8>),
    Disconnected,
}

/// Where the platform delivers one connection's notifications and its disconnection.
/// Handed to [`BleCentral::connect`]; keep it for the life of the connection.
#[derive(uniffi::Object)]
pub struct BleEvents {
    tx: mpsc::Sender<BleEvent>,
    overflowed: AtomicBool,
}

#[uniffi::export]
impl BleEvents {
    /// A notification arrived on the notify characteristic. Fails with `Disconnected` once
    /// the core closed this connection, and `Failed` if the core's queue overflowed (the
    /// message in flight will fail and be retried by the core).
    pub fn on_notification(&self, value: Vec<u8>) -> Result<(), BleError> {
        match self.tx.try_send(BleEvent::Notification(value)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(BleError::Disconnected),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflowed.store(true, Ordering::Relaxed);
                Err(BleError::Failed { reason: "notification queue full".into() })
            }
        }
    }

    /// The link dropped (peripheral disconnected, Bluetooth turned off…).
    pub fn on_disconnected(&self) -> Result<(), BleError> {
        // A full queue still ends in `Disconnected`: recv sees the closed sender after draining.
        let _ = self.tx.try_send(BleEvent::Disconnected);
        Ok(())
    }
}

/// Runs one blocking platform call on the blocking pool, bounded by `limit`.
async fn blocking<T, F>(limit: Duration, f: F) -> Result<T, GattError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, BleError> + Send + 'static,
{
    match tokio::time::timeout(limit, crate::blocking::on_blocking_pool(f)).await {
        Err(_) => Err(GattError::Timeout),
        Ok(Err(join)) => Err(GattError::Io(format!("BLE implementation failed: {join}"))),
        Ok(Ok(r)) => r.map_err(GattError::from),
    }
}

fn ms(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

/// Scans through the platform for appliances advertising the Sigil service.
pub async fn scan(central: Arc<dyn BleCentral>, timeout: Duration) -> Result<Vec<BlePeripheral>, GattError> {
    let service = sunstorm_core::ble::transport::SERVICE_UUID.to_string();
    blocking(timeout + CALL_SLACK, move || central.scan(service, ms(timeout))).await
}

/// A [`Connector`] to one peripheral through the platform's [`BleCentral`].
pub struct ForeignConnector {
    central: Arc<dyn BleCentral>,
    peripheral_id: String,
    preferred_mtu: u16,
    timeouts: BleTimeouts,
}

impl ForeignConnector {
    /// Connects to `peripheral_id` asking for the largest MTU.
    pub fn new(central: Arc<dyn BleCentral>, peripheral_id: String, timeouts: BleTimeouts) -> Self {
        Self { central, peripheral_id, preferred_mtu: MAX_ATT_MTU, timeouts }
    }
}

#[async_trait]
impl Connector for ForeignConnector {
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError> {
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let events = Arc::new(BleEvents { tx, overflowed: AtomicBool::new(false) });
        let central = self.central.clone();
        let id = self.peripheral_id.clone();
        let ev = events.clone();
        let connect_ms = ms(self.timeouts.connect);
        tracing::debug!(target: "sunstorm_ffi::ble", "connecting through the platform");
        let conn = blocking(self.timeouts.connect + CALL_SLACK, move || central.connect(id, ev, connect_ms)).await?;
        let central = self.central.clone();
        let preferred = i32::from(self.preferred_mtu);
        let answer = blocking(self.timeouts.mtu + CALL_SLACK, move || central.request_mtu(conn, preferred)).await;
        let in_range = |m: i32| u16::try_from(m).ok().filter(|m| (MIN_ATT_MTU..=MAX_ATT_MTU).contains(m));
        let mtu = match answer.map(|m| (m, in_range(m))) {
            Ok((_, Some(m))) => m,
            Ok((m, None)) => {
                disconnect_in_background(self.central.clone(), conn);
                return Err(GattError::Io(format!("platform reported an impossible MTU {m}")));
            }
            Err(e) => {
                disconnect_in_background(self.central.clone(), conn);
                return Err(e);
            }
        };
        tracing::info!(target: "sunstorm_ffi::ble", connection = conn, mtu, "connected");
        Ok(Box::new(ForeignGattLink {
            central: self.central.clone(),
            connection_id: conn,
            mtu,
            write_timeout: self.timeouts.write,
            rx: Mutex::new(rx),
            events,
            closed: AtomicBool::new(false),
            writes: AtomicU64::new(0),
        }))
    }
}

fn disconnect_in_background(central: Arc<dyn BleCentral>, conn: i64) {
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn_blocking(move || {
            let _ = central.disconnect(conn);
        });
    }
}

/// One live connection through the platform, as the core's [`GattLink`].
pub struct ForeignGattLink {
    central: Arc<dyn BleCentral>,
    connection_id: i64,
    mtu: u16,
    write_timeout: Duration,
    rx: Mutex<mpsc::Receiver<BleEvent>>,
    events: Arc<BleEvents>,
    closed: AtomicBool,
    writes: AtomicU64,
}

#[async_trait]
impl GattLink for ForeignGattLink {
    fn mtu(&self) -> u16 {
        self.mtu
    }

    async fn send(&self, pdu: Vec<u8>) -> Result<(), GattError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(GattError::Disconnected);
        }
        let max = self.max_pdu();
        if pdu.len() > max {
            return Err(GattError::PduTooLarge { len: pdu.len(), max });
        }
        let central = self.central.clone();
        let conn = self.connection_id;
        self.writes.fetch_add(1, Ordering::Relaxed);
        blocking(self.write_timeout, move || central.write(conn, pdu)).await
    }

    async fn recv(&self, timeout: Duration) -> Result<Vec<u8>, GattError> {
        if self.events.overflowed.swap(false, Ordering::Relaxed) {
            return Err(GattError::Io("notifications were dropped (queue full)".into()));
        }
        let mut rx = self.rx.lock().await;
        match tokio::time::timeout(timeout, rx.recv()).await {
            Err(_) => Err(GattError::Timeout),
            Ok(Some(BleEvent::Notification(v))) => Ok(v),
            Ok(Some(BleEvent::Disconnected)) | Ok(None) => {
                self.closed.store(true, Ordering::Release);
                Err(GattError::Disconnected)
            }
        }
    }

    async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.rx.lock().await.close();
        let central = self.central.clone();
        let conn = self.connection_id;
        let _ = blocking(self.write_timeout, move || central.disconnect(conn)).await;
        tracing::debug!(target: "sunstorm_ffi::ble", connection = conn, "disconnected");
    }
}

impl Drop for ForeignGattLink {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            disconnect_in_background(self.central.clone(), self.connection_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    /// A fake platform: echoes every write back as a notification.
    #[derive(Default)]
    struct EchoCentral {
        conns: StdMutex<Vec<(i64, Arc<BleEvents>)>>,
        disconnected: StdMutex<Vec<i64>>,
        /// An MTU answer no BLE stack gives, when set.
        odd_mtu: StdMutex<Option<i32>>,
    }

    impl BleCentral for EchoCentral {
        fn scan(&self, service_uuid: String, _t: i32) -> Result<Vec<BlePeripheral>, BleError> {
            assert_eq!(service_uuid, sunstorm_core::ble::transport::SERVICE_UUID);
            Ok(vec![BlePeripheral { id: "p1".into(), name: Some("Sigil".into()), rssi: Some(-40) }])
        }
        fn connect(&self, id: String, events: Arc<BleEvents>, _t: i32) -> Result<i64, BleError> {
            if id != "p1" {
                return Err(BleError::NotFound);
            }
            let mut c = self.conns.lock().unwrap();
            let n = c.len() as i64 + 1;
            c.push((n, events));
            Ok(n)
        }
        fn request_mtu(&self, _c: i64, preferred: i32) -> Result<i32, BleError> {
            Ok(self.odd_mtu.lock().unwrap().unwrap_or(preferred.min(185)))
        }
        fn write(&self, c: i64, value: Vec<u8>) -> Result<(), BleError> {
            let conns = self.conns.lock().unwrap();
            let ev = &conns.iter().find(|(id, _)| *id == c).ok_or(BleError::Disconnected)?.1;
            ev.on_notification(value)
        }
        fn disconnect(&self, c: i64) -> Result<(), BleError> {
            self.disconnected.lock().unwrap().push(c);
            let conns = self.conns.lock().unwrap();
            if let Some((_, ev)) = conns.iter().find(|(id, _)| *id == c) {
                ev.on_disconnected()?;
            }
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn foreign_central_is_a_gatt_link() {
        let central = Arc::new(EchoCentral::default());
        let found = scan(central.clone(), Duration::from_millis(10)).await.unwrap();
        assert_eq!(found[0].id, "p1");

        let connector = ForeignConnector::new(central.clone(), "p1".into(), BleTimeouts::default());
        let link = connector.connect().await.unwrap();
        assert_eq!(link.mtu(), 185);
        link.send(vec![1, 2, 3]).await.unwrap();
        assert_eq!(link.recv(Duration::from_secs(1)).await.unwrap(), vec![1, 2, 3]);
        assert_eq!(link.send(vec![0; 183]).await, Err(GattError::PduTooLarge { len: 183, max: 182 }));
        assert_eq!(link.recv(Duration::from_millis(20)).await, Err(GattError::Timeout));
        link.close().await;
        assert_eq!(link.send(vec![1]).await, Err(GattError::Disconnected));
        assert_eq!(central.disconnected.lock().unwrap().as_slice(), &[1]);

        let missing = ForeignConnector::new(central, "nope".into(), BleTimeouts::default());
        assert_eq!(missing.connect().await.err(), Some(GattError::NotFound));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_impossible_mtu_from_the_platform_fails_the_connection() {
        for odd in [-1, 0, 22, 518, 70_000, i32::MIN] {
            let central = Arc::new(EchoCentral::default());
            *central.odd_mtu.lock().unwrap() = Some(odd);
            let r = ForeignConnector::new(central.clone(), "p1".into(), BleTimeouts::default()).connect().await;
            assert!(matches!(&r, Err(GattError::Io(m)) if m.contains(&odd.to_string())), "{odd}: {:?}", r.err());
            // The half-open connection is closed.
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(central.disconnected.lock().unwrap().as_slice(), &[1], "{odd}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn platform_disconnect_reaches_recv() {
        let central = Arc::new(EchoCentral::default());
        let link = ForeignConnector::new(central.clone(), "p1".into(), BleTimeouts::default()).connect().await.unwrap();
        central.conns.lock().unwrap()[0].1.on_disconnected().unwrap();
        assert_eq!(link.recv(Duration::from_secs(1)).await, Err(GattError::Disconnected));
        assert_eq!(link.send(vec![1]).await, Err(GattError::Disconnected));
    }
}
