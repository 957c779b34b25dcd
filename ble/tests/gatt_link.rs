//! The GATT seam over a user-space BlueZ: btleplug central (hci0) ↔ bluer peripheral (hci1).
//! Raw PDUs only (an echo peripheral); the appliance protocol runs in `appliance_ble.rs`.
#![cfg(target_os = "linux")] // BlueZ (the peripheral side and the mock) is Linux-only
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use common::{BluezMock, CENTRAL_ADAPTER, PERIPHERAL_ADAPTER, PERIPHERAL_ADDRESS};
use sunstorm_ble::{scan, serve_ble_appliance, BleTarget, BtleplugConnector, CentralConfig, PeripheralConfig};
use sunstorm_core::ble::transport::{Connector, GattError, GattLink};

fn central(max_mtu: Option<u16>) -> CentralConfig {
    CentralConfig { adapter: Some(CENTRAL_ADAPTER.into()), max_mtu, ..CentralConfig::default() }
}

fn peripheral(name: &str, max_mtu: Option<u16>) -> PeripheralConfig {
    PeripheralConfig { adapter: Some(PERIPHERAL_ADAPTER.into()), name: name.into(), max_mtu, ..Default::default() }
}

/// Echoes every PDU back, prefixed with the appliance side's MTU.
async fn echo(link: Box<dyn GattLink>) {
    while let Ok(pdu) = link.recv(Duration::from_secs(60)).await {
        if link.send(pdu).await.is_err() {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_lists_the_advertising_appliance() {
    common::logs();
    let Some(_mock) = BluezMock::start("scan_lists_the_advertising_appliance").await else {
        return;
    };
    let _p = serve_ble_appliance(peripheral("Sigil Test", None), echo).await.unwrap();
    let found = scan(&central(None), Duration::from_secs(3)).await.unwrap();
    let me = found.iter().find(|f| f.address == PERIPHERAL_ADDRESS).unwrap_or_else(|| panic!("not in {found:?}"));
    assert_eq!(me.name.as_deref(), Some("Sigil Test"));
    assert!(me.advertises_sigil);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdus_round_trip_in_order_at_a_forced_small_mtu() {
    common::logs();
    let Some(_mock) = BluezMock::start("pdus_round_trip").await else {
        return;
    };
    let _p = serve_ble_appliance(peripheral("Sigil Echo", Some(23)), echo).await.unwrap();
    let connector = BtleplugConnector::new(BleTarget::parse("Sigil Echo"), central(Some(23))).await.unwrap();
    let link = connector.connect().await.unwrap();
    assert_eq!(link.mtu(), 23);
    assert_eq!(link.max_pdu(), 20);
    assert!(matches!(link.send(vec![0; 21]).await, Err(GattError::PduTooLarge { len: 21, max: 20 })));
    for i in 0..100u8 {
        link.send(vec![i; 20]).await.unwrap();
    }
    for i in 0..100u8 {
        assert_eq!(link.recv(Duration::from_secs(5)).await.unwrap(), vec![i; 20], "PDU {i}");
    }
    link.close().await;
    assert_eq!(link.send(vec![1]).await, Err(GattError::Disconnected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_mtu_is_used_when_not_capped() {
    common::logs();
    let Some(_mock) = BluezMock::start("platform_mtu").await else {
        return;
    };
    let _p = serve_ble_appliance(peripheral("Sigil Big", None), echo).await.unwrap();
    let connector = BtleplugConnector::new(BleTarget::parse(PERIPHERAL_ADDRESS), central(None)).await.unwrap();
    let link = connector.connect().await.unwrap();
    // bluezoo reports 512 for every link.
    assert_eq!(link.mtu(), 512);
    // bluer keeps 2 bytes of margin on notifications (ATT MTU 510 on the appliance side).
    let big = (0..507u16).map(|i| i as u8).collect::<Vec<u8>>();
    link.send(big.clone()).await.unwrap();
    assert_eq!(link.recv(Duration::from_secs(5)).await.unwrap(), big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peripheral_restart_is_seen_and_the_connector_reconnects() {
    common::logs();
    let Some(_mock) = BluezMock::start("peripheral_restart").await else {
        return;
    };
    let p = serve_ble_appliance(peripheral("Sigil R", None), echo).await.unwrap();
    let connector = BtleplugConnector::new(BleTarget::Any, central(None)).await.unwrap();
    let link = connector.connect().await.unwrap();
    link.send(b"one".to_vec()).await.unwrap();
    assert_eq!(link.recv(Duration::from_secs(5)).await.unwrap(), b"one");
    p.stop().await;
    assert_eq!(link.recv(Duration::from_secs(10)).await, Err(GattError::Disconnected), "{}", _mock.log());
    let _p = serve_ble_appliance(peripheral("Sigil R", None), echo).await.unwrap();
    let link = connector.connect().await.unwrap();
    link.send(b"two".to_vec()).await.unwrap();
    assert_eq!(link.recv(Duration::from_secs(5)).await.unwrap(), b"two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absent_bluetooth_is_reported_as_unavailable() {
    common::logs();
    let Some(_mock) = BluezMock::start("unavailable").await else {
        return;
    };
    let err =
        BtleplugConnector::new(BleTarget::Any, CentralConfig { adapter: Some("hci7".into()), ..Default::default() })
            .await
            .unwrap_err();
    assert!(matches!(&err, GattError::Unavailable(m) if m.contains("hci7")), "{err:?}");
    // Bluetooth switched off on the phone's adapter.
    let session = bluer::Session::new().await.unwrap();
    session.adapter(CENTRAL_ADAPTER).unwrap().set_powered(false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = BtleplugConnector::new(BleTarget::Any, central(None)).await.unwrap_err();
    assert_eq!(err, GattError::Unavailable("Bluetooth is off".into()));
    let err = scan(&central(None), Duration::from_millis(10)).await.unwrap_err();
    assert_eq!(err, GattError::Unavailable("Bluetooth is off".into()));
    let err = serve_ble_appliance(PeripheralConfig { adapter: Some("hci7".into()), ..Default::default() }, echo)
        .await
        .unwrap_err();
    assert!(matches!(&err, GattError::Unavailable(m) if m.contains("hci7")), "{err:?}");
}
