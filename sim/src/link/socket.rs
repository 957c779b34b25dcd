//! The UDS "GATT-like PDU" protocol (contract A) between a simulated appliance process and
//! a phone. Records on the stream: `type: u8 | len: u16 BE | payload[len]`.
//!
//! | type | name         | direction   | payload                                  |
//! |------|--------------|-------------|------------------------------------------|
//! | 0x01 | MTU_REQUEST  | phone → sim | u16 BE, phone's max ATT MTU (23..=517)   |
//! | 0x02 | MTU_RESPONSE | sim → phone | u16 BE, min(phone, sim MTU knob)         |
//! | 0x03 | WRITE        | phone → sim | one PDU, at most `mtu - 3` bytes         |
//! | 0x04 | NOTIFY       | sim → phone | one PDU, at most `mtu - 3` bytes         |
//! | 0x05 | DISCONNECT   | either      | empty; the sender then closes the socket |
//!
//! Any record that breaks these rules (unknown type, wrong direction, oversized length)
//! ends the connection: the receiver sends DISCONNECT and closes, and the link reports
//! [`GattError::Io`]. Faults are applied on the simulator side, to both directions.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sunstorm_core::ble::transport::{Connector, GattError, GattLink, ATT_HEADER, MAX_ATT_MTU, MIN_ATT_MTU};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, Mutex};

use super::{recv_from, Conn, FaultStats, Injector, SimEnd, SimLinkConfig};

/// Time allowed for the MTU exchange and for writing one record.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Record types of the UDS protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PduType {
    /// phone → sim: the phone's max ATT MTU.
    MtuRequest = 0x01,
    /// sim → phone: the negotiated ATT MTU.
    MtuResponse = 0x02,
    /// phone → sim: one PDU to the write characteristic.
    Write = 0x03,
    /// sim → phone: one PDU from the notify characteristic.
    Notify = 0x04,
    /// either way: the sender closes the socket next.
    Disconnect = 0x05,
}

impl PduType {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0x01 => Self::MtuRequest,
            0x02 => Self::MtuResponse,
            0x03 => Self::Write,
            0x04 => Self::Notify,
            0x05 => Self::Disconnect,
            _ => return None,
        })
    }
}

fn io(e: impl std::fmt::Display) -> GattError {
    GattError::Io(e.to_string())
}

async fn write_record(w: &mut OwnedWriteHalf, ty: PduType, payload: &[u8]) -> Result<(), GattError> {
    let len = u16::try_from(payload.len()).map_err(|_| GattError::PduTooLarge { len: payload.len(), max: 514 })?;
    let mut rec = Vec::with_capacity(3 + payload.len());
    rec.push(ty as u8);
    rec.extend_from_slice(&len.to_be_bytes());
    rec.extend_from_slice(payload);
    match tokio::time::timeout(IO_TIMEOUT, w.write_all(&rec)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => GattError::Disconnected,
            _ => io(e),
        }),
        Err(_) => Err(GattError::Timeout),
    }
}

/// Reads one record, refusing (before reading the payload) a type not in `allowed` or a
/// length above `max_len` for PDUs. EOF is a disconnect.
async fn read_record(
    r: &mut OwnedReadHalf,
    allowed: &[PduType],
    max_pdu: usize,
) -> Result<(PduType, Vec<u8>), GattError> {
    let mut head = [0u8; 3];
    r.read_exact(&mut head).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => GattError::Disconnected,
        _ => io(e),
    })?;
    let [t, hi, lo] = head;
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let ty = PduType::from_u8(t)
        .filter(|ty| allowed.contains(ty))
        .ok_or_else(|| GattError::Io(format!("protocol error: unexpected record type 0x{t:02x}")))?;
    let limit = match ty {
        PduType::MtuRequest | PduType::MtuResponse => 2,
        PduType::Write | PduType::Notify => max_pdu,
        PduType::Disconnect => 0,
    };
    if len > limit || (limit == 2 && len != 2) {
        return Err(GattError::Io(format!("protocol error: record 0x{t:02x} of {len} bytes (limit {limit})")));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => GattError::Io("protocol error: truncated record".into()),
        _ => io(e),
    })?;
    Ok((ty, payload))
}

fn parse_mtu(payload: &[u8]) -> Result<u16, GattError> {
    let b: [u8; 2] = payload.try_into().map_err(|_| GattError::Io("protocol error: bad MTU record".into()))?;
    let mtu = u16::from_be_bytes(b);
    if !(MIN_ATT_MTU..=MAX_ATT_MTU).contains(&mtu) {
        return Err(GattError::Io(format!("protocol error: MTU {mtu} outside 23..=517")));
    }
    Ok(mtu)
}

/// Reads records of one direction into `deliver` until the connection ends.
async fn reader_loop(
    mut r: OwnedReadHalf,
    data_type: PduType,
    max_pdu: usize,
    conn: Arc<Conn>,
    mut deliver: impl FnMut(Vec<u8>) -> bool + Send,
) {
    let allowed = [data_type, PduType::Disconnect];
    loop {
        let rec = tokio::select! {
            _ = conn.wait_closed() => return,
            rec = read_record(&mut r, &allowed, max_pdu) => rec,
        };
        match rec {
            Ok((PduType::Disconnect, _)) => {
                tracing::debug!("uds link: peer disconnected");
                conn.close(GattError::Disconnected);
                return;
            }
            Ok((_, pdu)) => {
                if !deliver(pdu) {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "uds link: closing on bad input");
                conn.close(e);
                return;
            }
        }
    }
}

/// Writes `out`'s PDUs as `data_type` records; on close sends DISCONNECT and shuts down.
async fn writer_loop(
    w: Arc<Mutex<OwnedWriteHalf>>,
    data_type: PduType,
    mut out: mpsc::UnboundedReceiver<Vec<u8>>,
    conn: Arc<Conn>,
) {
    loop {
        let next = tokio::select! {
            _ = conn.wait_closed() => None,
            pdu = out.recv() => pdu,
        };
        let Some(pdu) = next else { break };
        let mut g = w.lock().await;
        if let Err(e) = write_record(&mut g, data_type, &pdu).await {
            conn.close(e);
            break;
        }
    }
    let mut g = w.lock().await;
    let _ = write_record(&mut g, PduType::Disconnect, &[]).await;
    let _ = g.shutdown().await;
}

/// The simulator side: binds a Unix socket and yields an appliance-side link per
/// connection, with the faults of its config (connection `k` uses seed `seed + k`).
pub struct SocketListener {
    listener: UnixListener,
    path: PathBuf,
    cfg: SimLinkConfig,
    count: AtomicU64,
    stats: FaultStats,
}

impl SocketListener {
    /// Binds `path` (which must not exist).
    pub fn bind(path: impl AsRef<Path>, cfg: SimLinkConfig) -> Result<Self, GattError> {
        let path = path.as_ref().to_path_buf();
        let listener = UnixListener::bind(&path).map_err(io)?;
        Ok(Self { listener, path, cfg, count: AtomicU64::new(0), stats: FaultStats::default() })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fault counters summed over every connection.
    pub fn stats(&self) -> FaultStats {
        self.stats.clone()
    }

    /// Waits for the next phone and performs the MTU exchange (within `IO_TIMEOUT`, 5 s).
    pub async fn accept(&self) -> Result<Box<dyn GattLink>, GattError> {
        let (stream, _) = self.listener.accept().await.map_err(io)?;
        if self.cfg.live.settings().refuse_connections {
            // Closed before the MTU exchange: the phone sees the connection fail.
            tracing::debug!("uds link: refused a connection");
            drop(stream);
            return Err(GattError::Disconnected);
        }
        let k = self.count.fetch_add(1, Ordering::Relaxed);
        let cfg = SimLinkConfig { seed: self.cfg.seed.wrapping_add(k), ..self.cfg.clone() };
        let (mut r, mut w) = stream.into_split();
        let exchange = async {
            let (_, payload) = read_record(&mut r, &[PduType::MtuRequest], 0).await?;
            let mtu = parse_mtu(&payload)?.min(cfg.clamped_mtu());
            write_record(&mut w, PduType::MtuResponse, &mtu.to_be_bytes()).await?;
            Ok::<u16, GattError>(mtu)
        };
        let mtu = match tokio::time::timeout(IO_TIMEOUT, exchange).await {
            Ok(Ok(mtu)) => mtu,
            Ok(Err(e)) => {
                let _ = write_record(&mut w, PduType::Disconnect, &[]).await;
                return Err(e);
            }
            Err(_) => return Err(GattError::Timeout),
        };
        tracing::info!(connection = k, mtu, "uds link: phone connected");
        let conn = Conn::new();
        let max_pdu = usize::from(mtu) - ATT_HEADER;
        let (to_appliance, appliance_inbox) = Injector::spawn(&cfg, 0, &conn, &self.stats);
        let (to_phone, phone_out) = Injector::spawn(&cfg, 1, &conn, &self.stats);
        let w = Arc::new(Mutex::new(w));
        tokio::spawn(writer_loop(w, PduType::Notify, phone_out, conn.clone()));
        let inj = to_appliance;
        tokio::spawn(reader_loop(r, PduType::Write, max_pdu, conn.clone(), move |pdu| {
            // A refused PDU (injected disconnect) closes the connection itself.
            inj.inject(pdu).is_ok()
        }));
        Ok(Box::new(SimEnd::new(mtu, to_phone, appliance_inbox, conn)))
    }
}

/// The phone side of the UDS protocol: a [`Connector`] to a simulator's socket.
#[derive(Debug, Clone)]
pub struct SocketConnector {
    path: PathBuf,
    phone_mtu: u16,
}

impl SocketConnector {
    /// Connects to the simulator at `path`, offering `phone_mtu` (clamped to 23..=517).
    pub fn new(path: impl Into<PathBuf>, phone_mtu: u16) -> Self {
        Self { path: path.into(), phone_mtu: phone_mtu.clamp(MIN_ATT_MTU, MAX_ATT_MTU) }
    }
}

/// Phone end of a UDS link.
struct SocketLink {
    mtu: u16,
    w: Arc<Mutex<OwnedWriteHalf>>,
    inbox: Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
    conn: Arc<Conn>,
}

#[async_trait]
impl Connector for SocketConnector {
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError> {
        let stream = match tokio::time::timeout(IO_TIMEOUT, UnixStream::connect(&self.path)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e))
                if e.kind() == std::io::ErrorKind::NotFound || e.kind() == std::io::ErrorKind::ConnectionRefused =>
            {
                return Err(GattError::NotFound)
            }
            Ok(Err(e)) => return Err(io(e)),
            Err(_) => return Err(GattError::Timeout),
        };
        let (mut r, mut w) = stream.into_split();
        let exchange = async {
            write_record(&mut w, PduType::MtuRequest, &self.phone_mtu.to_be_bytes()).await?;
            let (_, payload) = read_record(&mut r, &[PduType::MtuResponse], 0).await?;
            let mtu = parse_mtu(&payload)?;
            if mtu > self.phone_mtu {
                return Err(GattError::Io(format!("protocol error: MTU {mtu} above the requested {}", self.phone_mtu)));
            }
            Ok(mtu)
        };
        let mtu = tokio::time::timeout(IO_TIMEOUT, exchange).await.map_err(|_| GattError::Timeout)??;
        tracing::info!(mtu, "uds link: connected");
        let conn = Conn::new();
        let (tx, inbox) = mpsc::unbounded_channel();
        let max_pdu = usize::from(mtu) - ATT_HEADER;
        let w = Arc::new(Mutex::new(w));
        // The phone end has no fault injection; on close it sends DISCONNECT.
        let closer_w = w.clone();
        let closer_conn = conn.clone();
        tokio::spawn(async move {
            closer_conn.wait_closed().await;
            let mut g = closer_w.lock().await;
            let _ = write_record(&mut g, PduType::Disconnect, &[]).await;
            let _ = g.shutdown().await;
        });
        tokio::spawn(reader_loop(r, PduType::Notify, max_pdu, conn.clone(), move |pdu| tx.send(pdu).is_ok()));
        Ok(Box::new(SocketLink { mtu, w, inbox: Mutex::new(inbox), conn }))
    }
}

impl Drop for SocketLink {
    fn drop(&mut self) {
        // Dropping the phone end sends DISCONNECT (the closer task) like close().
        self.conn.close(GattError::Disconnected);
    }
}

#[async_trait]
impl GattLink for SocketLink {
    fn mtu(&self) -> u16 {
        self.mtu
    }

    async fn send(&self, pdu: Vec<u8>) -> Result<(), GattError> {
        let max = usize::from(self.mtu) - ATT_HEADER;
        if pdu.len() > max {
            return Err(GattError::PduTooLarge { len: pdu.len(), max });
        }
        if self.conn.is_closed() {
            return Err(self.conn.error());
        }
        let mut g = self.w.lock().await;
        write_record(&mut g, PduType::Write, &pdu).await.inspect_err(|e| self.conn.close(e.clone()))
    }

    async fn recv(&self, timeout: Duration) -> Result<Vec<u8>, GattError> {
        recv_from(&self.inbox, &self.conn, timeout).await
    }

    async fn close(&self) {
        self.conn.close(GattError::Disconnected);
    }
}
