//! Bonding over a lossy radio: lost, duplicated, reordered fragments and whole lost
//! messages are recovered by resending within the SAME exchange, which the appliance
//! answers idempotently (no PIN try counted, one bond, the PIN replaced once), while wrong
//! PINs are still counted exactly once each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use sunstorm_core::appliance::client::{bond_with_config, ClientConfig};
use sunstorm_core::appliance::ApplianceError;
use sunstorm_core::ble::channel::{BondRetry, MsgType};
use sunstorm_core::ble::framing::FramingConfig;
use sunstorm_core::ble::transport::{Connector, GattError, GattLink};
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_sim::appliance::{ApplianceSim, ApplianceSimConfig};
use sunstorm_sim::link::{SimConnector, SimLinkConfig};

fn framing() -> FramingConfig {
    FramingConfig { reassembly_timeout: Duration::from_millis(300), ..FramingConfig::default() }
}

fn sim(seed: u8, pin: Option<&str>) -> ApplianceSim {
    ApplianceSim::new(ApplianceSimConfig {
        seed: vec![seed; 32],
        pin: pin.map(str::to_string),
        framing: framing(),
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        ..ApplianceSimConfig::default()
    })
    .unwrap()
}

fn client_cfg() -> ClientConfig {
    ClientConfig {
        handshake_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        max_retries: 6,
        retry_backoff: Duration::from_millis(5),
        framing: framing(),
        bond_retry: BondRetry { resend_after: Duration::from_millis(250), max_resends: 10 },
        ..ClientConfig::default()
    }
}

fn lossy(mtu: u16, seed: u64) -> SimLinkConfig {
    SimLinkConfig { mtu, drop: 0.02, duplicate: 0.02, reorder: 0.02, seed, ..SimLinkConfig::default() }
}

fn connector(sim: &ApplianceSim, link: SimLinkConfig) -> SimConnector {
    let (c, acceptor) = SimConnector::new(link);
    sim.spawn_acceptor(acceptor);
    c
}

#[tokio::test]
async fn bonding_survives_a_lossy_link_with_one_bond_and_no_pin_try_counted() {
    for mtu in [23u16, 185] {
        for seed in 0..6u64 {
            let sim = sim(1, Some("123456"));
            let c = connector(&sim, lossy(mtu, seed * 7 + u64::from(mtu)));
            let store = MemorySecretStore::default();
            let rec = bond_with_config(&c, "123456", &store, "lossy phone", &client_cfg())
                .await
                .unwrap_or_else(|e| panic!("mtu {mtu} seed {seed}: {e}"));
            assert_eq!(rec.appliance_identity, sim.identity());
            assert_eq!(sim.bonded_phones().len(), 1, "exactly one bond (mtu {mtu} seed {seed})");
            assert_eq!(sim.pin_failures(), 0, "no PIN try counted (mtu {mtu} seed {seed})");
        }
    }
}

/// What the phone-side wrapper does to the appliance's `BondAccept`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AcceptFault {
    /// Drop every PDU of the first `BondAccept`.
    Drop,
    /// Drop it and then report the link as disconnected.
    DropAndDisconnect,
}

/// A phone-side link that loses the appliance's first `BondAccept` on the way in.
struct LoseAccept {
    inner: Box<dyn GattLink>,
    fault: AcceptFault,
    /// Shared across connections: the number of `BondAccept` messages lost (at most 1).
    lost: Arc<AtomicU32>,
    dropping: Mutex<bool>,
}

/// The first message byte of a framing start fragment, if `pdu` is one.
fn start_type(pdu: &[u8]) -> Option<u8> {
    if pdu.first()? & 0x80 == 0 {
        return None;
    }
    // Skip the LEB128 length (1..=3 bytes).
    let mut i = 1;
    while pdu.get(i)? & 0x80 != 0 {
        i += 1;
    }
    pdu.get(i + 1).copied()
}

#[async_trait]
impl GattLink for LoseAccept {
    fn mtu(&self) -> u16 {
        self.inner.mtu()
    }
    async fn send(&self, pdu: Vec<u8>) -> Result<(), GattError> {
        self.inner.send(pdu).await
    }
    async fn recv(&self, timeout: Duration) -> Result<Vec<u8>, GattError> {
        loop {
            let pdu = self.inner.recv(timeout).await?;
            let is_start = pdu.first().is_some_and(|b| b & 0x80 != 0);
            let dropping = {
                let mut d = self.dropping.lock().unwrap();
                if is_start {
                    *d = start_type(&pdu) == Some(MsgType::BondAccept as u8)
                        && self.lost.fetch_add(1, Ordering::SeqCst) == 0;
                }
                *d
            };
            if !dropping {
                return Ok(pdu);
            }
            if self.fault == AcceptFault::DropAndDisconnect && !is_start {
                // Once the accept's tail is being eaten, the radio goes away.
                self.inner.close().await;
                return Err(GattError::Disconnected);
            }
        }
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

struct LoseAcceptConnector {
    inner: SimConnector,
    fault: AcceptFault,
    lost: Arc<AtomicU32>,
    connections: AtomicU32,
}

#[async_trait]
impl Connector for LoseAcceptConnector {
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError> {
        self.connections.fetch_add(1, Ordering::SeqCst);
        let inner = self.inner.connect().await?;
        Ok(Box::new(LoseAccept { inner, fault: self.fault, lost: self.lost.clone(), dropping: Mutex::new(false) }))
    }
}

async fn bond_losing_the_accept(mtu: u16, fault: AcceptFault) -> (ApplianceSim, LoseAcceptConnector, String) {
    // A random PIN: the appliance replaces it after the bond, so a naive restart would fail.
    let sim = sim(2, None);
    let pin = sim.pin();
    let c = LoseAcceptConnector {
        inner: connector(&sim, SimLinkConfig { mtu, ..SimLinkConfig::default() }),
        fault,
        lost: Arc::new(AtomicU32::new(0)),
        connections: AtomicU32::new(0),
    };
    let store = MemorySecretStore::default();
    let rec = bond_with_config(&c, &pin, &store, "phone", &client_cfg()).await.unwrap();
    assert_eq!(rec.appliance_identity, sim.identity());
    assert!(c.lost.load(Ordering::SeqCst) >= 1, "the first BondAccept was lost");
    (sim, c, pin)
}

#[tokio::test]
async fn a_lost_bond_accept_is_sent_again_without_a_second_bond_or_pin_change() {
    for mtu in [23u16, 185] {
        let (sim, c, old_pin) = bond_losing_the_accept(mtu, AcceptFault::Drop).await;
        assert_eq!(c.connections.load(Ordering::SeqCst), 1, "recovered on the same connection");
        assert_eq!(sim.bonded_phones().len(), 1);
        assert_eq!(sim.pin_failures(), 0);
        assert_ne!(sim.pin(), old_pin, "the random PIN was replaced after the bond");
    }
}

#[tokio::test]
async fn a_bond_accept_lost_with_the_connection_is_recovered_on_a_new_connection() {
    let (sim, c, old_pin) = bond_losing_the_accept(23, AcceptFault::DropAndDisconnect).await;
    assert!(c.connections.load(Ordering::SeqCst) >= 2, "continued on a new connection");
    assert_eq!(sim.bonded_phones().len(), 1);
    assert_eq!(sim.pin_failures(), 0);
    assert_ne!(sim.pin(), old_pin);
}

#[tokio::test]
async fn a_wrong_pin_over_a_lossy_link_is_wrong_pin_counted_once_each() {
    for (mtu, seed) in [(23u16, 11u64), (185, 12)] {
        let sim = sim(3, Some("123456"));
        let c = connector(&sim, lossy(mtu, seed));
        let store = MemorySecretStore::default();
        for attempt in 1..=2u32 {
            let r = bond_with_config(&c, "654321", &store, "phone", &client_cfg()).await;
            assert_eq!(r.unwrap_err(), ApplianceError::WrongPin { attempts_left: 3 - attempt }, "mtu {mtu}");
            assert_eq!(sim.pin_failures(), attempt, "each wrong PIN counted once (mtu {mtu})");
        }
        let r = bond_with_config(&c, "654321", &store, "phone", &client_cfg()).await;
        assert_eq!(r.unwrap_err(), ApplianceError::PinLocked);
        assert!(sim.bonded_phones().is_empty());
        assert_ne!(sim.pin(), "123456", "a new PIN after three wrong ones");
    }
}
