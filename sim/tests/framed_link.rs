//! FramedLink over the simulated link: in-process and across a real Unix socket, with faults.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sunstorm_core::ble::framing::{FramedLink, FramingConfig, FramingError};
use sunstorm_core::ble::transport::{Connector, GattError};
use sunstorm_sim::link::{sim_pair, sim_pair_with_stats, SimConnector, SimLinkConfig, SocketConnector, SocketListener};

const T: Duration = Duration::from_secs(5);

fn msg(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt)).collect()
}

fn cfg_fast() -> FramingConfig {
    FramingConfig { reassembly_timeout: Duration::from_millis(300), ..FramingConfig::default() }
}

#[tokio::test]
async fn perfect_link_round_trips_messages_with_progress() {
    let (p, a) = sim_pair(SimLinkConfig { mtu: 23, ..Default::default() });
    let (phone, app) = (FramedLink::new(p, FramingConfig::default()), FramedLink::new(a, FramingConfig::default()));
    assert_eq!(phone.mtu(), 23);
    let calls = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(AtomicUsize::new(0));
    let (c2, l2) = (calls.clone(), last.clone());
    let cb = move |sent: usize, total: usize| {
        assert!(sent <= total);
        c2.fetch_add(1, Ordering::SeqCst);
        l2.store(sent, Ordering::SeqCst);
    };
    let m = msg(1024, 1);
    phone.send_message(&m, Some(&cb)).await.unwrap();
    assert_eq!(app.recv_message(T).await.unwrap(), m);
    assert_eq!(calls.load(Ordering::SeqCst), 54, "1 KiB at MTU 23 is 54 fragments");
    assert_eq!(last.load(Ordering::SeqCst), 1024);
    // And back, including an empty message.
    app.send_message(&[], None).await.unwrap();
    app.send_message(b"pong", None).await.unwrap();
    assert_eq!(phone.recv_message(T).await.unwrap(), Vec::<u8>::new());
    assert_eq!(phone.recv_message(T).await.unwrap(), b"pong".to_vec());
}

#[tokio::test]
async fn recv_times_out_then_still_works() {
    let (p, a) = sim_pair(SimLinkConfig::default());
    let (phone, app) = (FramedLink::new(p, cfg_fast()), FramedLink::new(a, cfg_fast()));
    assert_eq!(app.recv_message(Duration::from_millis(20)).await, Err(FramingError::Link(GattError::Timeout)));
    phone.send_message(b"late", None).await.unwrap();
    assert_eq!(app.recv_message(T).await.unwrap(), b"late".to_vec());
}

#[tokio::test]
async fn oversize_send_is_refused() {
    let (p, _a) = sim_pair(SimLinkConfig::default());
    let phone = FramedLink::new(p, FramingConfig { max_message_len: 100, ..FramingConfig::default() });
    assert_eq!(phone.send_message(&[0; 101], None).await, Err(FramingError::TooLarge { len: 101, max: 100 }));
}

/// Sends `n` messages over a faulty link one by one; returns (ok, errors) as seen by the
/// receiver. Every message either arrives intact or the receiver reports an error.
async fn pump(phone: &FramedLink, app: &FramedLink, n: usize, len: usize) -> (usize, Vec<FramingError>) {
    let mut ok = 0;
    let mut errors = Vec::new();
    for i in 0..n {
        let m = msg(len, i as u8);
        if phone.send_message(&m, None).await.is_err() {
            break;
        }
        // Drain: the message, or errors until a timeout says nothing more is coming.
        loop {
            match app.recv_message(Duration::from_millis(400)).await {
                Ok(got) => {
                    if got == m {
                        ok += 1;
                        break;
                    }
                    panic!("corrupted or stale message delivered");
                }
                Err(FramingError::Link(GattError::Timeout)) => break,
                Err(e) => errors.push(e),
            }
        }
    }
    (ok, errors)
}

#[tokio::test]
async fn faulty_sim_pair_reports_failures_and_later_messages_pass() {
    let cfg = SimLinkConfig { mtu: 23, drop: 0.02, duplicate: 0.02, reorder: 0.02, seed: 7, ..Default::default() };
    let (p, a, stats) = sim_pair_with_stats(cfg);
    let (phone, app) = (FramedLink::new(p, cfg_fast()), FramedLink::new(a, cfg_fast()));
    let (ok, errors) = pump(&phone, &app, 40, 200).await;
    let c = stats.snapshot();
    assert!(c.dropped + c.duplicated + c.reordered > 0, "faults were injected: {c:?}");
    assert!(!errors.is_empty(), "failures were reported");
    assert!(ok > 10, "most messages still got through: {ok}");
    for e in &errors {
        assert!(
            matches!(
                e,
                FramingError::LostFragment
                    | FramingError::DuplicateFragment
                    | FramingError::OutOfOrder
                    | FramingError::ReassemblyTimeout
            ),
            "specific error: {e:?}"
        );
    }
    // A perfect message after all that still goes through.
    phone.send_message(b"after", None).await.unwrap();
    let mut got = app.recv_message(T).await;
    while matches!(got, Err(ref e) if !matches!(e, FramingError::Link(_))) {
        got = app.recv_message(T).await;
    }
    assert_eq!(got.unwrap(), b"after".to_vec());
}

async fn faults_with_seed(seed: u64) -> sunstorm_sim::link::FaultCounters {
    let cfg = SimLinkConfig { mtu: 23, drop: 0.05, duplicate: 0.05, reorder: 0.05, seed, ..Default::default() };
    let (p, a, stats) = sim_pair_with_stats(cfg);
    let phone = FramedLink::new(p, cfg_fast());
    for i in 0..20 {
        phone.send_message(&msg(300, i), None).await.unwrap();
    }
    drop(a);
    stats.snapshot()
}

#[tokio::test]
async fn same_seed_replays_the_same_faults() {
    let a = faults_with_seed(42).await;
    let b = faults_with_seed(42).await;
    let c = faults_with_seed(43).await;
    assert_eq!(a, b);
    assert!(a.dropped > 0 && a.duplicated > 0 && a.reordered > 0, "{a:?}");
    assert_ne!(a, c, "another seed gives other faults");
}

#[tokio::test]
async fn disconnect_after_n_pdus() {
    let cfg = SimLinkConfig { mtu: 23, disconnect_after: Some(5), ..Default::default() };
    let (p, a, stats) = sim_pair_with_stats(cfg);
    let (phone, app) = (FramedLink::new(p, cfg_fast()), FramedLink::new(a, cfg_fast()));
    let r = phone.send_message(&msg(200, 0), None).await;
    assert_eq!(r, Err(FramingError::Link(GattError::Disconnected)));
    assert_eq!(stats.snapshot().disconnects, 1);
    assert_eq!(app.recv_message(T).await, Err(FramingError::Link(GattError::Disconnected)));
}

#[tokio::test]
async fn sim_connector_hands_appliance_ends_to_acceptor() {
    let (connector, acceptor) = SimConnector::new(SimLinkConfig { mtu: 247, ..Default::default() });
    for round in 0..2u8 {
        let phone = FramedLink::new(connector.connect().await.unwrap(), FramingConfig::default());
        let app = FramedLink::new(acceptor.accept_timeout(T).await.unwrap(), FramingConfig::default());
        phone.send_message(&[round; 3000], None).await.unwrap();
        assert_eq!(app.recv_message(T).await.unwrap(), vec![round; 3000]);
        phone.close().await;
        assert_eq!(app.recv_message(T).await, Err(FramingError::Link(GattError::Disconnected)));
    }
    assert_eq!(connector.stats().snapshot().pdus, 2 * 13);
}

#[tokio::test]
async fn uds_round_trip_with_latency_and_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.sock");
    let cfg = SimLinkConfig {
        mtu: 185,
        latency: Duration::from_millis(2),
        connection_interval: Duration::from_millis(7),
        ..Default::default()
    };
    let listener = SocketListener::bind(&path, cfg).unwrap();
    let server = tokio::spawn(async move {
        let app = FramedLink::new(listener.accept().await.unwrap(), FramingConfig::default());
        // Echo until disconnect.
        while let Ok(m) = app.recv_message(T).await {
            app.send_message(&m, None).await.unwrap();
        }
    });
    let phone = FramedLink::new(SocketConnector::new(&path, 247).connect().await.unwrap(), FramingConfig::default());
    assert_eq!(phone.mtu(), 185, "negotiated min(phone, sim)");
    for len in [0, 1, 181, 182, 5000] {
        let m = msg(len, 9);
        phone.send_message(&m, None).await.unwrap();
        assert_eq!(phone.recv_message(T).await.unwrap(), m);
    }
    phone.close().await;
    tokio::time::timeout(T, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn uds_with_faults_reports_failures_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.sock");
    let cfg = SimLinkConfig { mtu: 23, drop: 0.03, duplicate: 0.03, reorder: 0.03, seed: 3, ..Default::default() };
    let listener = SocketListener::bind(&path, cfg).unwrap();
    let stats = listener.stats();
    let server = tokio::spawn(async move { FramedLink::new(listener.accept().await.unwrap(), cfg_fast()) });
    let phone = FramedLink::new(SocketConnector::new(&path, 517).connect().await.unwrap(), cfg_fast());
    assert_eq!(phone.mtu(), 23);
    let app = server.await.unwrap();
    let (ok, errors) = pump(&phone, &app, 30, 150).await;
    assert!(stats.snapshot().pdus > 0);
    assert!(!errors.is_empty(), "faults surfaced as errors ({:?})", stats.snapshot());
    assert!(ok > 5, "later messages got through: {ok}");
}

#[tokio::test]
async fn uds_garbage_from_phone_disconnects_without_panic() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.sock");
    let listener = SocketListener::bind(&path, SimLinkConfig { mtu: 23, ..Default::default() }).unwrap();
    let server = tokio::spawn(async move {
        let link = listener.accept().await.unwrap();
        link.recv(T).await
    });
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    s.write_all(&[0x01, 0x00, 0x02, 0x02, 0x05]).await.unwrap(); // MTU_REQUEST 517
    let mut resp = [0u8; 5];
    s.read_exact(&mut resp).await.unwrap();
    assert_eq!(resp, [0x02, 0x00, 0x02, 0x00, 23]);
    // An oversized WRITE (len 0xFFFF) at MTU 23.
    s.write_all(&[0x03, 0xFF, 0xFF, 1, 2, 3]).await.unwrap();
    let r = tokio::time::timeout(T, server).await.unwrap().unwrap();
    assert!(matches!(r, Err(GattError::Io(ref m)) if m.contains("protocol error")), "{r:?}");
    // The simulator said DISCONNECT and closed.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(rest, vec![0x05, 0, 0]);
}

#[tokio::test]
async fn uds_unknown_type_and_bad_mtu_are_refused() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.sock");
    let listener = SocketListener::bind(&path, SimLinkConfig::default()).unwrap();
    let mut s = tokio::net::UnixStream::connect(&path).await.unwrap();
    s.write_all(&[0x01, 0x00, 0x02, 0x00, 0x05]).await.unwrap(); // MTU 5: invalid
    assert!(matches!(listener.accept().await, Err(GattError::Io(_))));
    let mut s2 = tokio::net::UnixStream::connect(&path).await.unwrap();
    s2.write_all(&[0x77, 0x00, 0x00]).await.unwrap();
    assert!(matches!(listener.accept().await, Err(GattError::Io(_))));
    assert_eq!(
        SocketConnector::new(dir.path().join("none.sock"), 185).connect().await.err(),
        Some(GattError::NotFound)
    );
}

#[tokio::test]
async fn dropping_one_end_disconnects_the_other() {
    let (p, a) = sim_pair(SimLinkConfig::default());
    drop(a);
    assert_eq!(p.recv(T).await, Err(GattError::Disconnected));
    assert_eq!(p.send(vec![1]).await, Err(GattError::Disconnected));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    let listener = SocketListener::bind(&path, SimLinkConfig::default()).unwrap();
    let server = tokio::spawn(async move { listener.accept().await.unwrap() });
    let phone = SocketConnector::new(&path, 185).connect().await.unwrap();
    let app = server.await.unwrap();
    drop(phone);
    assert_eq!(app.recv(T).await, Err(GattError::Disconnected));
}

#[tokio::test]
async fn oversized_pdu_is_refused_by_the_link() {
    let (p, _a) = sim_pair(SimLinkConfig { mtu: 23, ..Default::default() });
    assert_eq!(p.send(vec![0; 21]).await, Err(GattError::PduTooLarge { len: 21, max: 20 }));
}
