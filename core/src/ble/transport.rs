//! The seam between the protocol and a radio: one GATT link seen as a pipe of PDUs.
//!
//! Backends: btleplug (desktop), the shells' native BLE (through the FFI's `BleCentral`
//! foreign trait) and the simulated link (in-process or over a Unix socket, `sunstorm-sim`).
//! The phone side writes to the write characteristic and receives notifications; the
//! appliance side receives writes and notifies. Both are a [`GattLink`].

use std::time::Duration;

use async_trait::async_trait;

/// The Sigil GATT primary service UUID (the project's own).
pub const SERVICE_UUID: &str = "5a3c0001-7e1f-4b8e-9c2d-51a7e5000001";
/// The write characteristic (phone → appliance), write without response where allowed.
pub const WRITE_CHAR_UUID: &str = "5a3c0002-7e1f-4b8e-9c2d-51a7e5000001";
/// The notify characteristic (appliance → phone).
pub const NOTIFY_CHAR_UUID: &str = "5a3c0003-7e1f-4b8e-9c2d-51a7e5000001";

/// Smallest ATT MTU BLE allows.
pub const MIN_ATT_MTU: u16 = 23;
/// Largest ATT MTU BLE allows.
pub const MAX_ATT_MTU: u16 = 517;
/// ATT header bytes in a write or notification (opcode + handle).
pub const ATT_HEADER: usize = 3;

/// Why a GATT link operation failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum GattError {
    /// The peer disconnected or the link was closed.
    #[error("the appliance disconnected")]
    Disconnected,
    /// Nothing arrived or the write did not complete within the allotted time.
    #[error("the appliance did not answer in time")]
    Timeout,
    /// No appliance with that address or name was found.
    #[error("appliance not found")]
    NotFound,
    /// Bluetooth is off, absent, or the app lacks permission.
    #[error("Bluetooth is unavailable: {0}")]
    Unavailable(String),
    /// A PDU longer than the link's MTU allows was offered.
    #[error("PDU of {len} bytes exceeds the link's payload size {max}")]
    PduTooLarge {
        /// Offered length.
        len: usize,
        /// Largest allowed.
        max: usize,
    },
    /// Any other transport failure, with the backend's words.
    #[error("Bluetooth error: {0}")]
    Io(String),
}

/// One connected GATT link, from either end, as a pipe of PDUs.
#[async_trait]
pub trait GattLink: Send + Sync {
    /// The negotiated ATT MTU (23..=517). A PDU carries at most `mtu() - 3` bytes.
    fn mtu(&self) -> u16;

    /// Largest PDU payload this link carries.
    fn max_pdu(&self) -> usize {
        usize::from(self.mtu()).saturating_sub(ATT_HEADER)
    }

    /// Sends one PDU: a write on the phone side, a notification on the appliance side.
    async fn send(&self, pdu: Vec<u8>) -> Result<(), GattError>;

    /// Receives the next PDU, waiting at most `timeout`.
    async fn recv(&self, timeout: Duration) -> Result<Vec<u8>, GattError>;

    /// Closes the link; later calls fail with [`GattError::Disconnected`].
    async fn close(&self);
}

/// Opens (and reopens, after a disconnect) links to one appliance, for the phone side.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Connects and negotiates the MTU.
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError>;
}

/// Makes the [`Connector`] for one bonded appliance from how the platform reaches it (a BLE
/// peripheral id, an address, a simulator socket), chosen at run time and kept with the
/// bond (ADR 0023). One factory serves every appliance the phone is bonded with.
pub trait ConnectorFactory: Send + Sync {
    /// A connector to the appliance at `peripheral` (`None`: the bond records no route; the
    /// factory may use a default, or return a connector that fails with
    /// [`GattError::NotFound`] at connect time).
    fn connector(&self, peripheral: Option<&str>) -> std::sync::Arc<dyn Connector>;
}

impl<F> ConnectorFactory for F
where
    F: Fn(Option<&str>) -> std::sync::Arc<dyn Connector> + Send + Sync,
{
    fn connector(&self, peripheral: Option<&str>) -> std::sync::Arc<dyn Connector> {
        self(peripheral)
    }
}

/// One connector for every appliance, whatever its route (a single known link: one
/// simulator, a desktop target given on the command line).
pub struct SameConnector(pub std::sync::Arc<dyn Connector>);

impl ConnectorFactory for SameConnector {
    fn connector(&self, _peripheral: Option<&str>) -> std::sync::Arc<dyn Connector> {
        self.0.clone()
    }
}
