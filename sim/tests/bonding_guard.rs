//! Bonding that a stranger nearby can neither disturb nor brute-force (issue 13, attack 6):
//! one exchange per connection, a wrong-PIN back-off that grows across lockouts, an hourly
//! cap, bonding mode, and a back-off that survives a restart. Over the simulated GATT link;
//! time moves by hand (`ManualClock`), never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use sunstorm_core::appliance::client::{bond_with_config, ClientConfig};
use sunstorm_core::appliance::ApplianceError;
use sunstorm_core::ble::bond_policy::{HOUR_SECS, LOCKOUT_BASE_SECS, MAX_WRONG_PINS_PER_HOUR};
use sunstorm_core::ble::channel::{BondRetry, ChannelError, MsgType, PhoneBonding, PhoneKeys};
use sunstorm_core::ble::framing::{FramedLink, FramingConfig};
use sunstorm_core::ble::transport::Connector;
use sunstorm_core::clock::Clock;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_sim::appliance::{ApplianceSim, ApplianceSimConfig, BondingConfig, MAX_BOND_EXCHANGES};
use sunstorm_sim::link::{SimConnector, SimLinkConfig};
use sunstorm_sim::octane::ManualClock;

const PIN: &str = "123456";
const WRONG: &str = "654321";
const T0: u64 = 1_800_000_000;

fn framing() -> FramingConfig {
    FramingConfig { reassembly_timeout: Duration::from_millis(300), ..FramingConfig::default() }
}

fn cfg(seed: u8, clock: &Arc<ManualClock>) -> ApplianceSimConfig {
    ApplianceSimConfig {
        seed: vec![seed; 32],
        pin: Some(PIN.into()),
        framing: framing(),
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        clock: clock.clone(),
        ..ApplianceSimConfig::default()
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(T0))
}

fn client_cfg() -> ClientConfig {
    ClientConfig {
        handshake_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        max_retries: 2,
        retry_backoff: Duration::from_millis(5),
        framing: framing(),
        bond_retry: BondRetry { resend_after: Duration::from_millis(400), max_resends: 4 },
        ..ClientConfig::default()
    }
}

fn connector(sim: &ApplianceSim) -> SimConnector {
    let (c, acceptor) = SimConnector::new(SimLinkConfig::default());
    sim.spawn_acceptor(acceptor);
    c
}

async fn open(c: &SimConnector) -> FramedLink {
    FramedLink::new(c.connect().await.unwrap(), framing())
}

async fn roundtrip(link: &FramedLink, msg: &[u8]) -> Vec<u8> {
    link.send_message(msg, None).await.unwrap();
    link.recv_message(Duration::from_secs(2)).await.unwrap()
}

/// One whole bonding attempt by a phone of its own (fresh keys) with `pin`.
async fn attempt(c: &SimConnector, pin: &str) -> Result<(), ApplianceError> {
    let store = MemorySecretStore::default();
    bond_with_config(c, pin, &store, "phone", &client_cfg()).await.map(|_| ())
}

fn evaluated(r: &Result<(), ApplianceError>) -> bool {
    matches!(r, Err(ApplianceError::WrongPin { .. } | ApplianceError::PinLocked))
}

/// Three wrong PINs; the third locks.
async fn lock_out(c: &SimConnector) {
    assert_eq!(attempt(c, WRONG).await, Err(ApplianceError::WrongPin { attempts_left: 2 }));
    assert_eq!(attempt(c, WRONG).await, Err(ApplianceError::WrongPin { attempts_left: 1 }));
    assert_eq!(attempt(c, WRONG).await, Err(ApplianceError::PinLocked));
}

fn try_later(secs: u64) -> Result<(), ApplianceError> {
    Err(ApplianceError::BondingTryLater { retry_after_secs: secs })
}

/// The victim says hello on connection A; a stranger says hello on connection B before the
/// victim's confirm arrives. The victim's right PIN still bonds, nothing counted, the PIN
/// stays — round after round (before: "wrong PIN", and after three rounds a new PIN).
#[tokio::test]
async fn a_hello_on_another_connection_does_not_disturb_the_victims_bonding() {
    let sim = ApplianceSim::new(cfg(1, &clock())).unwrap();
    let c = connector(&sim);
    let keys = PhoneKeys::load_or_create(&MemorySecretStore::default()).unwrap();
    for round in 0..4 {
        sim.open_bonding_window(Duration::from_secs(120));
        let victim = open(&c).await;
        let (st, hello) = PhoneBonding::start(PIN).unwrap();
        let pake = roundtrip(&victim, &hello).await;
        assert_eq!(MsgType::of(&pake), Some(MsgType::BondPake), "round {round}");

        let stranger = open(&c).await;
        let (_, stranger_hello) = PhoneBonding::start("000000").unwrap();
        let reply = roundtrip(&stranger, &stranger_hello).await;
        assert_eq!(MsgType::of(&reply), Some(MsgType::BondPake), "round {round}");

        let (st, confirm) = st.on_pake(&pake, &keys, "victim").unwrap();
        let accept = roundtrip(&victim, &confirm).await;
        let rec = st.on_accept(&accept).unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(rec.appliance_identity, sim.identity());
        assert_eq!(sim.pin_failures(), 0, "round {round}: the victim's right PIN counted as wrong");
        assert_eq!(sim.pin(), PIN, "round {round}: the PIN was replaced");
        victim.close().await;
        stranger.close().await;
    }
    assert_eq!(sim.bonded_phones().len(), 1);
}

/// A stranger who replays the victim's own `BondHello` (it travels in the clear) on another
/// connection and answers with a bogus confirm spends a PIN try, but the victim's exchange
/// is not spoiled (before: the victim got `bad_request`).
#[tokio::test]
async fn a_replayed_hello_with_a_bogus_confirm_does_not_spoil_the_victims_exchange() {
    let sim = ApplianceSim::new(cfg(2, &clock())).unwrap();
    let c = connector(&sim);
    let keys = PhoneKeys::load_or_create(&MemorySecretStore::default()).unwrap();
    let victim = open(&c).await;
    let (st, hello) = PhoneBonding::start(PIN).unwrap();
    let pake = roundtrip(&victim, &hello).await;

    let stranger = open(&c).await;
    let replayed = roundtrip(&stranger, &hello).await;
    assert_eq!(replayed, pake, "a replayed hello only gets the recorded answer");
    let (bogus_st, _) = PhoneBonding::start(WRONG).unwrap();
    let (_, bogus) = bogus_st.on_pake(&pake, &keys, "stranger").unwrap();
    let verdict = roundtrip(&stranger, &bogus).await;
    assert_eq!(MsgType::of(&verdict), Some(MsgType::BondReject));
    assert_eq!(sim.pin_failures(), 1, "the bogus confirm is a PIN try like any other");

    let (st, confirm) = st.on_pake(&pake, &keys, "victim").unwrap();
    let accept = roundtrip(&victim, &confirm).await;
    st.on_accept(&accept).expect("the victim still bonds");
    assert_eq!(roundtrip(&victim, &confirm).await, accept, "a resent confirm gets the same accept");
    assert_eq!(sim.bonded_phones().len(), 1);
    assert_eq!(sim.pin_failures(), 0);
}

/// Strangers flooding the appliance with hellos cannot push the victim's exchange out.
#[tokio::test]
async fn a_flood_of_hellos_does_not_evict_the_victims_exchange() {
    let sim = ApplianceSim::new(cfg(3, &clock())).unwrap();
    let c = connector(&sim);
    let keys = PhoneKeys::load_or_create(&MemorySecretStore::default()).unwrap();
    let victim = open(&c).await;
    let (st, hello) = PhoneBonding::start(PIN).unwrap();
    let pake = roundtrip(&victim, &hello).await;
    for _ in 0..MAX_BOND_EXCHANGES + 8 {
        let stranger = open(&c).await;
        let (_, h) = PhoneBonding::start("000000").unwrap();
        assert_eq!(MsgType::of(&roundtrip(&stranger, &h).await), Some(MsgType::BondPake));
        stranger.close().await;
    }
    let (st, confirm) = st.on_pake(&pake, &keys, "victim").unwrap();
    st.on_accept(&roundtrip(&victim, &confirm).await).expect("the victim still bonds");
}

/// Three wrong PINs lock bonding for 30 s, then 60 s, then 120 s…; refused attempts are
/// answered "try again in N s", cost no PIN try and change no PIN (before: the next
/// attempt was evaluated at once, ≈170 guesses/s).
#[tokio::test]
async fn wrong_pins_lock_out_with_a_back_off_that_doubles() {
    let clock = clock();
    let sim = ApplianceSim::new(cfg(4, &clock)).unwrap();
    sim.open_bonding_window(Duration::from_secs(3 * HOUR_SECS));
    let c = connector(&sim);
    for (lockout, secs) in [(1u32, LOCKOUT_BASE_SECS), (2, 2 * LOCKOUT_BASE_SECS), (3, 4 * LOCKOUT_BASE_SECS)] {
        lock_out(&c).await;
        assert_eq!(sim.bonding_lockouts(), lockout);
        let pin = sim.pin();
        assert_eq!(attempt(&c, &pin).await, try_later(secs), "lockout {lockout}");
        clock.advance(secs - 1);
        assert_eq!(attempt(&c, &pin).await, try_later(1), "lockout {lockout}");
        assert_eq!((sim.pin(), sim.pin_failures()), (pin, 0), "refusals change nothing");
        clock.advance(1);
    }
    // The owner bonds after the wait; the lockout count starts again.
    let pin = sim.pin();
    attempt(&c, &pin).await.unwrap();
    assert_eq!(sim.bonding_lockouts(), 0);
}

/// Rapid guessing over the link as fast as it goes: three are evaluated, the rest refused.
#[tokio::test]
async fn rapid_guessing_is_stopped_after_three_wrong_pins() {
    let clock = clock();
    let sim = ApplianceSim::new(cfg(5, &clock)).unwrap();
    let c = connector(&sim);
    let mut results = Vec::new();
    for _ in 0..20 {
        results.push(attempt(&c, WRONG).await);
    }
    assert_eq!(results.iter().filter(|r| evaluated(r)).count(), 3, "{results:?}");
    assert!(results[3..].iter().all(|r| *r == try_later(LOCKOUT_BASE_SECS)), "{results:?}");
}

/// No more than 10 wrong PINs in any hour, whatever the lockouts allow; the next attempt
/// waits until the oldest of them is an hour old.
#[tokio::test]
async fn at_most_ten_wrong_pins_an_hour() {
    let clock = clock();
    let sim = ApplianceSim::new(cfg(6, &clock)).unwrap();
    sim.open_bonding_window(Duration::from_secs(3 * HOUR_SECS));
    let c = connector(&sim);
    let mut evaluated_in_hour = 0;
    loop {
        let r = attempt(&c, WRONG).await;
        if evaluated(&r) {
            evaluated_in_hour += 1;
            continue;
        }
        let Err(ApplianceError::BondingTryLater { retry_after_secs }) = r else { panic!("{r:?}") };
        if clock.now_unix() + retry_after_secs >= T0 + HOUR_SECS {
            // Past the lockouts: only the hourly cap holds us back now.
            assert_eq!(clock.now_unix() + retry_after_secs, T0 + HOUR_SECS);
            break;
        }
        clock.advance(retry_after_secs);
    }
    assert_eq!(evaluated_in_hour, MAX_WRONG_PINS_PER_HOUR);
    assert_eq!(clock.now_unix(), T0 + 210, "3 wrong PINs, 30 s, 3, 60 s, 3, 120 s, 1");
    clock.set(T0 + HOUR_SECS);
    assert!(evaluated(&attempt(&c, WRONG).await), "the three oldest wrong PINs are an hour old");
}

/// Outside bonding mode every attempt is refused (`bonding_closed`) and nothing counted;
/// the window opens by hand, closes by hand, and closes after one bond.
#[tokio::test]
async fn bonding_outside_bonding_mode_is_refused() {
    let clock = clock();
    let closed = BondingConfig { open_at_start: false, ..BondingConfig::default() };
    let sim = ApplianceSim::new(ApplianceSimConfig { bonding: closed, ..cfg(7, &clock) }).unwrap();
    let c = connector(&sim);
    assert_eq!(sim.bonding_window_remaining(), None);
    assert_eq!(attempt(&c, PIN).await, Err(ApplianceError::BondingClosed));
    assert_eq!(attempt(&c, WRONG).await, Err(ApplianceError::BondingClosed));
    assert_eq!(sim.pin_failures(), 0, "refusals are not PIN tries");

    sim.open_bonding_window(Duration::from_secs(120));
    assert_eq!(sim.bonding_window_remaining(), Some(Duration::from_secs(120)));
    sim.close_bonding_window();
    assert_eq!(attempt(&c, PIN).await, Err(ApplianceError::BondingClosed));

    sim.open_bonding_window(Duration::from_secs(120));
    attempt(&c, PIN).await.unwrap();
    assert_eq!(sim.bonding_window_remaining(), None, "a bond ends bonding mode");
    assert_eq!(attempt(&c, PIN).await, Err(ApplianceError::BondingClosed), "a second phone must wait");
    assert_eq!(sim.bonded_phones().len(), 1);
}

/// Bonding mode lasts its time: after it an attempt is refused, and an exchange begun
/// inside the window cannot finish after it.
#[tokio::test]
async fn bonding_mode_expires() {
    let clock = clock();
    let sim = ApplianceSim::new(cfg(8, &clock)).unwrap();
    let c = connector(&sim);
    assert_eq!(sim.bonding_window_remaining(), Some(Duration::from_secs(120)), "open at start");
    let keys = PhoneKeys::load_or_create(&MemorySecretStore::default()).unwrap();
    let phone = open(&c).await;
    let (st, hello) = PhoneBonding::start(PIN).unwrap();
    let pake = roundtrip(&phone, &hello).await;
    clock.advance(120);
    assert_eq!(sim.bonding_window_remaining(), None);
    let (st, confirm) = st.on_pake(&pake, &keys, "late phone").unwrap();
    assert_eq!(st.on_accept(&roundtrip(&phone, &confirm).await).err(), Some(ChannelError::BondingClosed));
    assert_eq!(attempt(&c, PIN).await, Err(ApplianceError::BondingClosed));
    assert!(sim.bonded_phones().is_empty());
    assert_eq!(sim.pin_failures(), 0);
}

/// A restart keeps the back-off: the lockout still runs, and the next lockout is longer.
#[tokio::test]
async fn a_restart_keeps_the_back_off() {
    let clock = clock();
    let dir = tempfile::tempdir().unwrap();
    let with_state = || ApplianceSimConfig { state_dir: Some(dir.path().to_path_buf()), ..cfg(9, &clock) };
    {
        let sim = ApplianceSim::new(with_state()).unwrap();
        lock_out(&connector(&sim)).await;
    }
    clock.advance(10);
    let sim = ApplianceSim::new(with_state()).unwrap();
    let c = connector(&sim);
    assert_eq!(attempt(&c, PIN).await, try_later(LOCKOUT_BASE_SECS - 10), "the lockout survived the restart");
    clock.advance(LOCKOUT_BASE_SECS - 10);
    assert_eq!(attempt(&c, WRONG).await, Err(ApplianceError::WrongPin { attempts_left: 2 }));
    drop(sim);
    let sim = ApplianceSim::new(with_state()).unwrap();
    let c = connector(&sim);
    assert_eq!(sim.pin_failures(), 1, "the count against the PIN survived too");
    assert_eq!(attempt(&c, WRONG).await, Err(ApplianceError::WrongPin { attempts_left: 1 }));
    assert_eq!(attempt(&c, WRONG).await, Err(ApplianceError::PinLocked));
    assert_eq!(sim.bonding_retry_after(), Some(2 * LOCKOUT_BASE_SECS), "the second lockout is longer");
}
