//! Shared world for the pair and sign end-to-end tests: a real octane simulator on loopback
//! HTTP, a real appliance simulator over an in-process simulated GATT link, and the core's
//! `Sunstorm` object on a SQLite file in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use sunstorm_core::ble::transport::SameConnector;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::clock::Clock;
use sunstorm_core::octane::api::{CreateSessionRequest, CreateSessionResponse, PairResult};
use sunstorm_core::pair::PairState;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_core::sunstorm::{Sunstorm, SunstormConfig};
use sunstorm_sim::appliance::{ApplianceSim, ApplianceSimConfig, UserScript};
use sunstorm_sim::link::{SimConnector, SimLinkConfig};
use sunstorm_sim::octane::{DemoSp, ManualClock, OctaneSim, OctaneSimConfig, OctaneSimHandle};
use sunstorm_sim::sp::SpClient;
use uuid::Uuid;

/// The PIN the test appliance shows.
pub const PIN: &str = "246810";

/// Everything a test needs.
pub struct World {
    /// The octane simulator.
    pub octane: OctaneSimHandle,
    /// Octane's clock (tests move it).
    pub octane_clock: Arc<ManualClock>,
    /// The demo SP.
    pub demo: DemoSp,
    /// The SP's client of octane.
    pub sp: SpClient,
    /// The appliance simulator.
    pub appliance: ApplianceSim,
    /// The phone's connector to it.
    pub connector: Arc<SimConnector>,
    /// The link's configuration (its `live` handle changes faults at run time).
    pub link: SimLinkConfig,
    /// The phone's secrets.
    pub secrets: Arc<MemorySecretStore>,
    /// The phone's clock.
    pub phone_clock: Arc<ManualClock>,
    /// Temp dir holding the phone's DB.
    pub dir: tempfile::TempDir,
    /// The phone (bonded).
    pub phone: Sunstorm,
}

/// Wall-clock now.
pub fn now() -> u64 {
    sunstorm_core::clock::now_unix()
}

impl World {
    /// A world with a bonded phone.
    pub async fn new(user: UserScript) -> World {
        let octane_clock = Arc::new(ManualClock::new(now()));
        let octane = OctaneSim::start(OctaneSimConfig {
            seed: Some([7; 32]),
            clock: octane_clock.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        let demo = octane.demo_sp.clone();
        let sp = SpClient::new(&octane.url, &demo.api_key).unwrap();
        let appliance = ApplianceSim::new(ApplianceSimConfig {
            seed: vec![0x42; 32],
            pin: Some(PIN.into()),
            user,
            octane_key: octane.octane_public_key,
            ..Default::default()
        })
        .unwrap();
        let link = SimLinkConfig::default();
        let (connector, acceptor) = SimConnector::new(link.clone());
        appliance.spawn_acceptor(acceptor);
        let secrets = Arc::new(MemorySecretStore::default());
        let dir = tempfile::tempdir().unwrap();
        let phone_clock = Arc::new(ManualClock::new(now()));
        let connector = Arc::new(connector);
        let phone = open_phone(&octane, &secrets, &connector, &dir, &phone_clock, |_| {});
        phone.bond_appliance(None, PIN).await.unwrap();
        World { octane, octane_clock, demo, sp, appliance, connector, link, secrets, phone_clock, dir, phone }
    }

    /// The phone's configuration.
    pub fn config(&self) -> SunstormConfig {
        config(&self.octane, &self.dir)
    }

    /// A second `Sunstorm` object on the same DB and secrets (an app restart).
    pub fn reopen(&self, tweak: impl FnOnce(&mut SunstormConfig)) -> Sunstorm {
        open_phone(&self.octane, &self.secrets, &self.connector, &self.dir, &self.phone_clock, tweak)
    }

    /// Like [`World::reopen`], with an event listener.
    pub fn reopen_listening(&self, listener: sunstorm_core::sunstorm::EventListener) -> Sunstorm {
        Sunstorm::open_with_clock(
            self.config(),
            self.secrets.clone(),
            Arc::new(SameConnector(self.connector.clone())),
            Some(listener),
            self.phone_clock.clone() as Arc<dyn Clock>,
        )
        .unwrap()
    }

    /// Creates a pair session as the demo SP.
    pub async fn session(&self, chains: &[ChainId], return_url: Option<&str>) -> CreateSessionResponse {
        self.sp
            .create_session(&CreateSessionRequest {
                sp_user_ref: "alice@sp".into(),
                chains: chains.to_vec(),
                return_url: return_url.map(str::to_string),
                ttl_secs: None,
            })
            .await
            .unwrap()
    }

    /// Pairs end to end (two-device: typed code, all requested wallets) and returns
    /// `(pair_id, bindings)` after the SP's own check of the result.
    pub async fn pair(&self, chains: &[ChainId]) -> (Uuid, Vec<AccountId>) {
        let s = self.session(chains, None).await;
        let flow = ready_to_approve(&self.phone, &s, chains).await;
        let st = self.phone.approve_pair(flow).await.unwrap();
        let PairState::Paired { pair_id, bindings, .. } = st else { panic!("not paired: {st:?}") };
        let r = self.sp.pair_result(&s.session_id, 5).await.unwrap();
        assert!(matches!(r, PairResult::Paired { .. }));
        (pair_id, bindings)
    }
}

/// On `phone`: opens the session's link, types its code and chooses every wallet of
/// `chains` the appliance has; returns the flow, waiting for the user's approval.
pub async fn ready_to_approve(phone: &Sunstorm, s: &CreateSessionResponse, chains: &[ChainId]) -> Uuid {
    let flow = phone.open_link(&s.link, None).await.unwrap().flow_id();
    phone.submit_code(flow, Some(&s.validation_code)).await.unwrap();
    let wallets = phone.appliance_wallets(None, chains).await.unwrap();
    phone.choose_wallets(flow, &wallets).await.unwrap();
    flow
}

/// The phone's configuration against `octane`, DB in `dir`.
pub fn config(octane: &OctaneSimHandle, dir: &tempfile::TempDir) -> SunstormConfig {
    let mut cfg = SunstormConfig::new(url::Url::parse(&octane.url).unwrap(), octane.octane_public_key);
    cfg.db_path = Some(dir.path().join("phone.db"));
    cfg.octane_connect_timeout = Duration::from_secs(2);
    cfg.octane_request_timeout = Duration::from_secs(5);
    cfg.octane_max_attempts = 2;
    cfg
}

fn open_phone(
    octane: &OctaneSimHandle,
    secrets: &Arc<MemorySecretStore>,
    connector: &Arc<SimConnector>,
    dir: &tempfile::TempDir,
    clock: &Arc<ManualClock>,
    tweak: impl FnOnce(&mut SunstormConfig),
) -> Sunstorm {
    let mut cfg = config(octane, dir);
    tweak(&mut cfg);
    Sunstorm::open_with_clock(
        cfg,
        secrets.clone(),
        Arc::new(SameConnector(connector.clone())),
        None,
        clock.clone() as Arc<dyn Clock>,
    )
    .unwrap()
}
