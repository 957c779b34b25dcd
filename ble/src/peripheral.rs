//! The appliance side on a Linux laptop: a BlueZ GATT server (bluer) that advertises the
//! Sigil service and turns each BLE connection into a [`GattLink`] for the appliance
//! simulator — the same code below the GATT seam as the socket mode.
//!
//! Both characteristics use BlueZ's "acquired" I/O (`AcquireWrite` / `AcquireNotify`):
//! writes and notifications travel over a per-connection `SOCK_SEQPACKET` socket, so PDUs
//! keep their order and the connection's device address and ATT MTU are known.
//!
//! BlueZ delivers notifications of one characteristic to every subscribed central, so the
//! peripheral serves one connection at a time (a hardware signer talks to one phone): a
//! new subscription ends the previous link.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bluer::adv::{Advertisement, AdvertisementHandle};
use bluer::gatt::local::{
    characteristic_control, Application, ApplicationHandle, Characteristic, CharacteristicControl,
    CharacteristicControlEvent, CharacteristicNotify, CharacteristicNotifyMethod, CharacteristicWrite,
    CharacteristicWriteMethod, Service,
};
use bluer::gatt::{CharacteristicReader, CharacteristicWriter};
use bluer::{Adapter, Address, DeviceEvent, DeviceProperty, Session};
use futures::StreamExt;
use sunstorm_core::ble::transport::{
    GattError, GattLink, ATT_HEADER, MAX_ATT_MTU, MIN_ATT_MTU, NOTIFY_CHAR_UUID, SERVICE_UUID, WRITE_CHAR_UUID,
};
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;
use tracing::{debug, info, info_span, warn, Instrument};
use uuid::Uuid;

/// How the BLE appliance peripheral presents itself.
#[derive(Debug, Clone)]
pub struct PeripheralConfig {
    /// BlueZ adapter name (`hci0`); `None` takes BlueZ's default adapter.
    pub adapter: Option<String>,
    /// Advertised local name (what a phone shows in its scan list).
    pub name: String,
    /// Forces a smaller ATT MTU than BlueZ negotiated (tests exercise small MTUs with it).
    pub max_mtu: Option<u16>,
    /// Bound on each notification and on BlueZ calls.
    pub op_timeout: Duration,
}

impl Default for PeripheralConfig {
    fn default() -> Self {
        Self { adapter: None, name: "Sigil".into(), max_mtu: None, op_timeout: Duration::from_secs(5) }
    }
}

fn map_err(e: bluer::Error) -> GattError {
    use bluer::ErrorKind as K;
    match e.kind {
        K::NotReady => GattError::Unavailable("Bluetooth is off".into()),
        K::NotAuthorized | K::NotPermitted => {
            GattError::Unavailable(format!("permission to use Bluetooth was denied: {e}"))
        }
        K::NotFound | K::DoesNotExist => GattError::NotFound,
        _ => {
            let msg = e.to_string();
            if msg.contains("ServiceUnknown") || msg.contains("org.bluez was not provided") {
                GattError::Unavailable(format!("cannot reach the Bluetooth service (is bluetoothd running?): {msg}"))
            } else {
                GattError::Io(msg)
            }
        }
    }
}

async fn bounded<T>(limit: Duration, fut: impl Future<Output = bluer::Result<T>>) -> Result<T, GattError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(map_err),
        Err(_) => Err(GattError::Timeout),
    }
}

fn parse_uuid(s: &str) -> Result<Uuid, GattError> {
    Uuid::parse_str(s).map_err(|e| GattError::Io(format!("bad UUID constant {s}: {e}")))
}

/// A running BLE appliance peripheral. Dropping it (or [`BluezPeripheral::stop`]) withdraws
/// the advertisement and the GATT service and ends the live link.
pub struct BluezPeripheral {
    address: String,
    adapter_name: String,
    tasks: Vec<JoinHandle<()>>,
    current: Arc<Mutex<Option<Arc<LinkShared>>>>,
    _adv: AdvertisementHandle,
    _app: ApplicationHandle,
    _session: Session,
}

impl std::fmt::Debug for BluezPeripheral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BluezPeripheral")
            .field("address", &self.address)
            .field("adapter", &self.adapter_name)
            .finish_non_exhaustive()
    }
}

impl BluezPeripheral {
    /// The adapter's Bluetooth address, which a central can target.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The BlueZ adapter serving (`hci1`).
    pub fn adapter_name(&self) -> &str {
        &self.adapter_name
    }

    /// Withdraws the service and advertisement and drops the live connection, like an
    /// appliance switched off.
    pub async fn stop(self) {
        info!(adapter = %self.adapter_name, "stopping the BLE appliance");
        if let Some(link) = self.current.lock().await.take() {
            link.shut().await;
        }
        // Dropping self unregisters the advertisement and the application.
    }
}

impl Drop for BluezPeripheral {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts advertising the Sigil service on `cfg.adapter` and calls `on_link` with a
/// [`GattLink`] for each central that subscribes (e.g. `|link| sim.serve(link)`).
///
/// Fails with [`GattError::Unavailable`] when BlueZ is unreachable, the adapter is absent,
/// or it cannot be powered.
pub async fn serve_ble_appliance<F, Fut>(cfg: PeripheralConfig, on_link: F) -> Result<BluezPeripheral, GattError>
where
    F: Fn(Box<dyn GattLink>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let op = cfg.op_timeout;
    let session = bounded(op, Session::new()).await.map_err(|e| match e {
        GattError::Io(m) => {
            GattError::Unavailable(format!("cannot reach the Bluetooth service (is bluetoothd running?): {m}"))
        }
        other => other,
    })?;
    let adapter = match &cfg.adapter {
        Some(name) => {
            let names = bounded(op, session.adapter_names()).await?;
            if !names.iter().any(|n| n == name) {
                return Err(GattError::Unavailable(format!(
                    "no Bluetooth adapter named {name} (have: {})",
                    names.join(", ")
                )));
            }
            session.adapter(name).map_err(map_err)?
        }
        None => bounded(op, session.default_adapter()).await.map_err(|e| match e {
            GattError::NotFound => GattError::Unavailable("no Bluetooth adapter found".into()),
            other => other,
        })?,
    };
    if !bounded(op, adapter.is_powered()).await? {
        bounded(op, adapter.set_powered(true))
            .await
            .map_err(|e| GattError::Unavailable(format!("Bluetooth is off and could not be turned on: {e}")))?;
    }
    let address = bounded(op, adapter.address()).await?.to_string();
    let adapter_name = adapter.name().to_owned();
    let span = info_span!("ble_peripheral", adapter = %adapter_name, %address);

    let service = parse_uuid(SERVICE_UUID)?;
    let (write_ctl, write_handle) = characteristic_control();
    let (notify_ctl, notify_handle) = characteristic_control();
    let app = Application {
        services: vec![Service {
            uuid: service,
            primary: true,
            characteristics: vec![
                Characteristic {
                    uuid: parse_uuid(WRITE_CHAR_UUID)?,
                    write: Some(CharacteristicWrite {
                        write: true,
                        write_without_response: true,
                        method: CharacteristicWriteMethod::Io,
                        ..Default::default()
                    }),
                    control_handle: write_handle,
                    ..Default::default()
                },
                Characteristic {
                    uuid: parse_uuid(NOTIFY_CHAR_UUID)?,
                    notify: Some(CharacteristicNotify {
                        notify: true,
                        method: CharacteristicNotifyMethod::Io,
                        ..Default::default()
                    }),
                    control_handle: notify_handle,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let app_handle = bounded(op, adapter.serve_gatt_application(app)).await?;
    let adv = Advertisement {
        service_uuids: [service].into_iter().collect(),
        // Without it bluezoo (and some phones' filters) never report the advertisement.
        discoverable: Some(true),
        local_name: Some(cfg.name.clone()),
        ..Default::default()
    };
    let adv_handle = bounded(op, adapter.advertise(adv)).await?;
    info!(parent: &span, name = %cfg.name, "advertising the Sigil service");

    let current: Arc<Mutex<Option<Arc<LinkShared>>>> = Arc::new(Mutex::new(None));
    let on_link = Arc::new(on_link);
    let notify_task = tokio::spawn(
        notify_loop(notify_ctl, adapter.clone(), cfg.clone(), current.clone(), on_link).instrument(span.clone()),
    );
    let write_task = tokio::spawn(write_loop(write_ctl, current.clone()).instrument(span));
    Ok(BluezPeripheral {
        address,
        adapter_name,
        tasks: vec![notify_task, write_task],
        current,
        _adv: adv_handle,
        _app: app_handle,
        _session: session,
    })
}

/// Each notification subscription starts a connection's link.
async fn notify_loop<F, Fut>(
    mut ctl: CharacteristicControl,
    adapter: Adapter,
    cfg: PeripheralConfig,
    current: Arc<Mutex<Option<Arc<LinkShared>>>>,
    on_link: Arc<F>,
) where
    F: Fn(Box<dyn GattLink>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    while let Some(event) = ctl.next().await {
        let CharacteristicControlEvent::Notify(writer) = event else {
            continue;
        };
        let device = writer.device_address();
        // bluer's writer MTU is the payload size (ATT MTU minus BlueZ's margin).
        let bluez_mtu = u16::try_from(writer.mtu().saturating_add(ATT_HEADER)).unwrap_or(MAX_ATT_MTU);
        let mut mtu = bluez_mtu.clamp(MIN_ATT_MTU, MAX_ATT_MTU);
        if let Some(cap) = cfg.max_mtu {
            mtu = mtu.min(cap.max(MIN_ATT_MTU));
        }
        info!(%device, mtu, "central subscribed: new link");
        let (in_tx, in_rx) = mpsc::channel(256);
        let (down_tx, down_rx) = watch::channel(false);
        let shared = Arc::new(LinkShared {
            device,
            adapter: adapter.clone(),
            writer: Mutex::new(Some(Arc::new(writer))),
            in_tx: Mutex::new(Some(in_tx)),
            down: down_tx,
            closed: AtomicBool::new(false),
            op_timeout: cfg.op_timeout,
        });
        if let Some(old) = current.lock().await.replace(shared.clone()) {
            old.end("replaced by a new subscription").await;
        }
        tokio::spawn(watch_link(shared.clone()).in_current_span());
        let link = BluerLink { shared, incoming: Mutex::new(in_rx), down: down_rx, mtu };
        tokio::spawn((on_link)(Box::new(link)).in_current_span());
    }
}

/// Ends the link when the central unsubscribes or disconnects.
async fn watch_link(shared: Arc<LinkShared>) {
    let mut device_events = match shared.adapter.device(shared.device) {
        Ok(dev) => dev.events().await.ok().map(|s| s.boxed()),
        Err(_) => None,
    };
    let mut down = shared.down.subscribe();
    let writer = shared.writer.lock().await.clone();
    let writer_closed = async {
        match writer {
            // Readable means BlueZ closed its end: the subscription ended.
            Some(w) => {
                let _ = w.closed().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let device_gone = async {
        match device_events.as_mut() {
            Some(events) => loop {
                match events.next().await {
                    Some(DeviceEvent::PropertyChanged(DeviceProperty::Connected(false))) | None => break,
                    Some(_) => {}
                }
            },
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = writer_closed => shared.end("the central unsubscribed").await,
        _ = device_gone => shared.end("the central disconnected").await,
        _ = wait_down(&mut down) => {}
    }
}

/// Forwards each acquired write socket's PDUs to the live link.
async fn write_loop(mut ctl: CharacteristicControl, current: Arc<Mutex<Option<Arc<LinkShared>>>>) {
    while let Some(event) = ctl.next().await {
        let CharacteristicControlEvent::Write(req) = event else {
            continue;
        };
        let device = req.device_address();
        let reader = match req.accept() {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "could not accept a write socket");
                continue;
            }
        };
        debug!(%device, mtu = reader.mtu(), "write socket acquired");
        tokio::spawn(forward_writes(reader, device, current.clone()).in_current_span());
    }
}

async fn forward_writes(reader: CharacteristicReader, device: Address, current: Arc<Mutex<Option<Arc<LinkShared>>>>) {
    loop {
        let pdu = match reader.recv().await {
            Ok(pdu) if pdu.is_empty() => break,
            Ok(pdu) => pdu,
            Err(e) => {
                debug!(error = %e, "write socket closed");
                break;
            }
        };
        let link = current.lock().await.clone();
        match link {
            Some(link) if link.device == device => {
                let tx = link.in_tx.lock().await.clone();
                if let Some(tx) = tx {
                    if tx.send(pdu).await.is_err() {
                        debug!("write for a finished link dropped");
                    }
                }
            }
            _ => warn!(%device, "write from a central that is not subscribed; dropped"),
        }
    }
}

/// State shared by a link, its watcher and the write forwarder.
struct LinkShared {
    device: Address,
    adapter: Adapter,
    writer: Mutex<Option<Arc<CharacteristicWriter>>>,
    in_tx: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    down: watch::Sender<bool>,
    closed: AtomicBool,
    op_timeout: Duration,
}

impl LinkShared {
    /// Marks the link down; later sends and receives fail with `Disconnected`.
    async fn end(&self, why: &str) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        debug!(device = %self.device, why, "link ended");
        self.in_tx.lock().await.take();
        self.writer.lock().await.take();
        let _ = self.down.send(true);
    }

    /// Ends the link and drops the central's connection (the appliance hanging up).
    async fn shut(&self) {
        self.end("closed by the appliance").await;
        if let Ok(dev) = self.adapter.device(self.device) {
            let _ = bounded(self.op_timeout, dev.disconnect()).await;
        }
    }
}

/// The appliance's end of one BLE connection.
struct BluerLink {
    shared: Arc<LinkShared>,
    incoming: Mutex<mpsc::Receiver<Vec<u8>>>,
    down: watch::Receiver<bool>,
    mtu: u16,
}

#[async_trait]
impl GattLink for BluerLink {
    fn mtu(&self) -> u16 {
        self.mtu
    }

    async fn send(&self, pdu: Vec<u8>) -> Result<(), GattError> {
        if pdu.len() > self.max_pdu() {
            return Err(GattError::PduTooLarge { len: pdu.len(), max: self.max_pdu() });
        }
        let writer = self.shared.writer.lock().await.clone();
        let Some(writer) = writer else {
            return Err(GattError::Disconnected);
        };
        match tokio::time::timeout(self.shared.op_timeout, writer.send(&pdu)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.shared.end("notification failed").await;
                debug!(error = %e, "notify failed");
                Err(GattError::Disconnected)
            }
            Err(_) => Err(GattError::Timeout),
        }
    }

    async fn recv(&self, timeout: Duration) -> Result<Vec<u8>, GattError> {
        let mut rx = self.incoming.lock().await;
        let mut down = self.down.clone();
        tokio::select! {
            biased;
            pdu = rx.recv() => pdu.ok_or(GattError::Disconnected),
            _ = wait_down(&mut down) => {
                // Deliver what arrived before the drop.
                rx.try_recv().map_err(|_| GattError::Disconnected)
            }
            _ = tokio::time::sleep(timeout) => Err(GattError::Timeout),
        }
    }

    async fn close(&self) {
        self.shared.shut().await;
    }
}

/// Resolves once the link is marked down (or its sender is gone).
async fn wait_down(down: &mut watch::Receiver<bool>) {
    let _ = down.wait_for(|d| *d).await;
}
