//! The simulated radio's timing model, on tokio's paused clock (deterministic, not timed):
//! PDUs leave on connection-event boundaries, at most `pdus_per_event` per event and
//! direction, in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use sunstorm_core::ble::transport::GattLink;
use sunstorm_sim::link::{sim_pair_with_stats, Central, SimLinkConfig};
use tokio::time::Instant;

const T: Duration = Duration::from_secs(5);

/// Sends `n` PDUs from `from` at once and returns, for each PDU `to` receives, how many
/// connection intervals after `start` it arrived.
async fn burst(from: &dyn GattLink, to: &dyn GattLink, n: u8, start: Instant, iv: Duration) -> Vec<u128> {
    for i in 0..n {
        from.send(vec![i; 10]).await.unwrap();
    }
    let mut events = Vec::new();
    for i in 0..n {
        let pdu = to.recv(T).await.unwrap();
        assert_eq!(pdu, vec![i; 10], "PDUs of one direction arrive in order");
        events.push((Instant::now() - start).as_nanos() / iv.as_nanos());
    }
    events
}

#[tokio::test(start_paused = true)]
async fn the_link_honours_the_per_event_cap_in_both_directions() {
    let iv = Duration::from_millis(10);
    let cfg = SimLinkConfig { connection_interval: iv, pdus_per_event: 4, ..SimLinkConfig::default() };
    let start = Instant::now();
    let (phone, appliance, stats) = sim_pair_with_stats(cfg.clone());
    // Ten writes offered at once leave 4 + 4 + 2 on three consecutive connection events.
    let up = burst(phone.as_ref(), appliance.as_ref(), 10, start, iv).await;
    assert_eq!(up, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]);
    assert_eq!(cfg.events_for(10), 3);
    // The appliance's notifications, offered during event 2, get the same cap from then on.
    let up_done = Instant::now();
    let down = burst(appliance.as_ref(), phone.as_ref(), 6, start, iv).await;
    assert_eq!(up_done - start, 2 * iv);
    assert_eq!(down, [2, 2, 2, 2, 3, 3]);
    let s = stats.snapshot();
    assert_eq!((s.to_appliance, s.to_phone, s.pdus), (10, 6, 16));
}

#[tokio::test(start_paused = true)]
async fn without_a_cap_every_pdu_leaves_on_the_next_event() {
    let iv = Duration::from_millis(10);
    let cfg = SimLinkConfig { connection_interval: iv, pdus_per_event: 0, ..SimLinkConfig::default() };
    let start = Instant::now();
    let (phone, appliance) = sunstorm_sim::link::sim_pair(cfg.clone());
    assert_eq!(burst(phone.as_ref(), appliance.as_ref(), 10, start, iv).await, [0; 10]);
    assert_eq!(cfg.events_for(10), 1);
}

#[tokio::test(start_paused = true)]
async fn a_cap_carries_over_to_pdus_offered_later_in_the_same_event() {
    let iv = Duration::from_millis(10);
    let cfg = SimLinkConfig { connection_interval: iv, pdus_per_event: 2, ..SimLinkConfig::default() };
    let (phone, appliance) = sunstorm_sim::link::sim_pair(cfg);
    tokio::time::sleep(Duration::from_millis(3)).await;
    let start = Instant::now() - Duration::from_millis(3);
    // Two PDUs fill event 1; one more offered a moment later (still before event 1) waits
    // for event 2.
    phone.send(vec![0]).await.unwrap();
    phone.send(vec![1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    phone.send(vec![2]).await.unwrap();
    let mut at = Vec::new();
    for _ in 0..3 {
        appliance.recv(T).await.unwrap();
        at.push((Instant::now() - start).as_millis());
    }
    assert_eq!(at, [10, 10, 20]);
}

#[test]
fn phone_profiles_have_a_connection_interval_and_a_cap() {
    for c in Central::ALL {
        assert_eq!(Central::from_name(c.name()), Some(c));
        let cfg = SimLinkConfig::central(c, 185);
        assert_eq!(cfg.mtu, 185);
        if c == Central::Ideal {
            assert_eq!((cfg.connection_interval, cfg.pdus_per_event), (Duration::ZERO, 0));
        } else {
            assert!(cfg.connection_interval >= Duration::from_micros(7_500));
            assert!((1..=16).contains(&cfg.pdus_per_event));
        }
    }
    assert!(Central::Android.pdus_per_event() > Central::Ios.pdus_per_event());
}
