//! Several phones per appliance, and a lost phone: the phone's appliance client against the
//! appliance simulator over the simulated GATT link. Two phones bond; one lists the phones
//! and forgets the other; the forgotten phone is cut off at once and refused from then on,
//! with an error that says so, until it bonds again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use sunstorm_core::appliance::client::{app_signing_key, bond_with_config, ApplianceClient, BondRecord, ClientConfig};
use sunstorm_core::appliance::{ApplianceApi, ApplianceError};
use sunstorm_core::ble::channel;
use sunstorm_core::ble::framing::FramingConfig;
use sunstorm_core::bytes::Key32;
use sunstorm_core::envelope::Domain;
use sunstorm_core::model::PhoneForgotten;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_sim::appliance::{ApplianceSim, ApplianceSimConfig, ScreenKind, UserScript};
use sunstorm_sim::link::{SimConnector, SimLinkConfig};
use uuid::Uuid;

fn fast_framing() -> FramingConfig {
    FramingConfig { reassembly_timeout: Duration::from_millis(100), ..FramingConfig::default() }
}

fn sim(state_dir: Option<std::path::PathBuf>) -> ApplianceSim {
    ApplianceSim::new(ApplianceSimConfig {
        seed: vec![7; 32],
        pin: Some("123456".into()),
        framing: fast_framing(),
        keepalive: Duration::from_millis(200),
        handshake_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_secs(5),
        state_dir,
        ..ApplianceSimConfig::default()
    })
    .unwrap()
}

fn client_cfg() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_millis(600),
        handshake_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(2),
        max_retries: 3,
        max_resends: 4,
        retry_backoff: Duration::from_millis(5),
        framing: fast_framing(),
        bond_retry: channel::BondRetry { resend_after: Duration::from_millis(300), max_resends: 4 },
    }
}

/// One phone: its secret store, bond and a client over its own link.
struct Phone {
    store: MemorySecretStore,
    app_key: Key32,
    client: ApplianceClient,
}

async fn bond_phone(sim: &ApplianceSim, name: &str) -> Phone {
    sim.open_bonding_window(Duration::from_secs(60));
    let store = MemorySecretStore::default();
    let rec = bond_with_config(connector(sim).as_ref(), &sim.pin(), &store, name, &client_cfg()).await.unwrap();
    phone_with(sim, store, rec)
}

fn phone_with(sim: &ApplianceSim, store: MemorySecretStore, rec: BondRecord) -> Phone {
    let app_key = Key32(app_signing_key(&store).unwrap().verifying_key().to_bytes());
    let client = ApplianceClient::new(connector(sim), rec, &store, client_cfg()).unwrap();
    Phone { store, app_key, client }
}

fn connector(sim: &ApplianceSim) -> Arc<SimConnector> {
    let (c, acceptor) = SimConnector::new(SimLinkConfig::default());
    sim.spawn_acceptor(acceptor);
    Arc::new(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_lists_the_phones_and_forgets_another_which_is_refused_until_it_bonds_again() {
    let sim = sim(None);
    let a = bond_phone(&sim, "Alice's phone").await;
    let b = bond_phone(&sim, "Bob's phone\u{202e}").await;

    // Both phones are listed, in bonding order, names sanitised, the asker marked.
    let listed = a.client.list_phones().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0].app_key, listed[0].this_phone), (a.app_key, true));
    assert_eq!((listed[1].app_key, listed[1].this_phone), (b.app_key, false));
    assert_eq!(listed[0].name, "Alice's phone");
    assert!(!listed[1].name.contains('\u{202e}'), "a bidi override never reaches the screen");

    // B holds a live session.
    b.client.info().await.unwrap();

    // A cannot forget itself; it forgets B (its user approves on the appliance).
    assert_eq!(
        a.client.forget_phone(Uuid::new_v4(), a.app_key, None).await.unwrap_err(),
        ApplianceError::CannotForgetSelf
    );
    let id = Uuid::new_v4();
    let receipt = a.client.forget_phone(id, b.app_key, None).await.unwrap();
    let st: PhoneForgotten = receipt.envelope.open(Domain::PhoneForgotten, sim.identity().as_bytes()).unwrap();
    assert_eq!(st, receipt.statement);
    assert_eq!((st.app_key, st.forgotten_by, st.appliance_identity), (b.app_key, Some(a.app_key), sim.identity()));
    // Retried with the same id (a lost answer), the same statement comes back.
    assert_eq!(a.client.forget_phone(id, b.app_key, None).await.unwrap(), receipt);

    // B's live session was cut and B is refused from now on, saying why.
    assert_eq!(b.client.info().await.unwrap_err(), ApplianceError::PhoneForgotten);
    assert_eq!(b.client.list_phones().await.unwrap_err(), ApplianceError::PhoneForgotten);
    assert_eq!(
        b.client.forget_phone(Uuid::new_v4(), a.app_key, None).await.unwrap_err(),
        ApplianceError::PhoneForgotten
    );
    assert_eq!(sim.bonded_phones().len(), 1);
    assert_eq!(sim.forgotten_phones()[0].app_key, b.app_key);
    // A goes on; forgetting B again says B is unknown.
    assert_eq!(a.client.list_phones().await.unwrap().len(), 1);
    assert_eq!(a.client.forget_phone(Uuid::new_v4(), b.app_key, None).await.unwrap_err(), ApplianceError::UnknownPhone);

    // B bonds again (same keys): it is served again.
    sim.open_bonding_window(Duration::from_secs(60));
    let rec =
        bond_with_config(connector(&sim).as_ref(), &sim.pin(), &b.store, "Bob's phone", &client_cfg()).await.unwrap();
    let b2 = phone_with(&sim, b.store, rec);
    assert_eq!(b2.app_key, b.app_key);
    b2.client.info().await.unwrap();
    assert!(sim.forgotten_phones().is_empty());
    assert_eq!(a.client.list_phones().await.unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgetting_from_the_appliance_cancels_the_phones_pending_request_and_a_declined_forget_changes_nothing() {
    let sim = sim(None);
    let a = bond_phone(&sim, "A").await;
    let b = bond_phone(&sim, "B").await;

    // The person at the appliance declines: nothing is forgotten.
    sim.set_user(UserScript::Reject);
    assert_eq!(a.client.forget_phone(Uuid::new_v4(), b.app_key, None).await.unwrap_err(), ApplianceError::UserRejected);
    assert_eq!(sim.bonded_phones().len(), 2);

    // B asks to forget A; the screen waits. Meanwhile the appliance's owner forgets B on the
    // appliance: B's pending request ends with `PhoneForgotten`, its screen goes, A stays.
    sim.set_user(UserScript::Api);
    let b_app = b.app_key;
    let pending = tokio::spawn(async move { b.client.forget_phone(Uuid::new_v4(), a.app_key, None).await });
    for _ in 0..100 {
        if sim.screen().0.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.screen().0.unwrap().kind, ScreenKind::ForgetPhone);
    let statement = sim.forget_phone(&b_app).unwrap();
    let st: PhoneForgotten = statement.open(Domain::PhoneForgotten, sim.identity().as_bytes()).unwrap();
    assert_eq!((st.app_key, st.forgotten_by), (b_app, None));
    let r = tokio::time::timeout(Duration::from_secs(5), pending).await.unwrap().unwrap();
    assert_eq!(r.unwrap_err(), ApplianceError::PhoneForgotten);
    assert!(sim.screen().0.is_none(), "the forgotten phone's screen is withdrawn");
    assert_eq!(sim.bonded_phones().len(), 1);
    sim.set_user(UserScript::Approve);
    a.client.info().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forgotten_phone_stays_refused_after_the_appliance_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let first = sim(Some(dir.path().to_path_buf()));
    let a = bond_phone(&first, "A").await;
    let b = bond_phone(&first, "B").await;
    a.client.forget_phone(Uuid::new_v4(), b.app_key, None).await.unwrap();
    let rec_b = b.client.bond_record().clone();
    drop(first);

    let again = sim(Some(dir.path().to_path_buf()));
    let b = phone_with(&again, b.store, rec_b);
    assert_eq!(b.client.info().await.unwrap_err(), ApplianceError::PhoneForgotten);
    let a = phone_with(&again, a.store, a.client.bond_record().clone());
    assert_eq!(a.client.list_phones().await.unwrap().len(), 1);
}
