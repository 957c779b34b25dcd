//! Shared world for the pair and sign end-to-end tests: the simulators' [`SimWorld`] (a real
//! octane simulator on loopback HTTP, a real appliance simulator over an in-process
//! simulated GATT link) and the core's `Sunstorm` object on a SQLite file in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use sunstorm_core::ble::transport::SameConnector;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::clock::Clock;
use sunstorm_core::model::{PayloadKind, SignRequest, STATEMENT_VERSION};
use sunstorm_core::octane::api::{CreateSessionRequest, CreateSessionResponse, PairResult};
use sunstorm_core::pair::PairState;
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_core::sign::PendingSignature;
use sunstorm_core::sunstorm::{EventListener, Sunstorm, SunstormConfig};
use sunstorm_sim::appliance::{ApplianceSimConfig, UserScript};
use sunstorm_sim::octane::{ManualClock, OctaneSimConfig};
use sunstorm_sim::world::{World as SimWorld, WorldConfig};
use uuid::Uuid;

/// The PIN the test appliance shows.
pub const PIN: &str = "246810";

/// Everything a test needs: the simulated world and a bonded phone in it.
pub struct World {
    /// Octane, the demo SP, the appliance and the link.
    pub sim: SimWorld,
    /// Octane's clock (tests move it).
    pub octane_clock: Arc<ManualClock>,
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

/// The tests' world: octane on a clock the test moves (seeded keys) with `extra_sps`
/// further SPs, and the `appliance` ([`appliance_config`]).
pub async fn sim_world(appliance: ApplianceSimConfig, extra_sps: u8) -> (SimWorld, Arc<ManualClock>) {
    let octane_clock = Arc::new(ManualClock::new(now()));
    let sim = SimWorld::start(WorldConfig {
        octane: OctaneSimConfig {
            seed: Some([7; 32]),
            extra_demo_sps: extra_sps,
            clock: octane_clock.clone(),
            ..Default::default()
        },
        appliance,
        link: Default::default(),
    })
    .await
    .unwrap();
    (sim, octane_clock)
}

/// An appliance seeded with `seed`, showing [`PIN`], whose user follows `user`.
pub fn appliance_config(seed: u8, user: UserScript) -> ApplianceSimConfig {
    ApplianceSimConfig { seed: vec![seed; 32], pin: Some(PIN.into()), user, ..Default::default() }
}

impl World {
    /// A world with a bonded phone.
    pub async fn new(user: UserScript) -> World {
        World::new_with(user, |_| {}).await
    }

    /// A world with a bonded phone configured by `tweak` (e.g. with an approval key, which
    /// bonding then enrols).
    pub async fn new_with(user: UserScript, tweak: impl FnOnce(&mut SunstormConfig)) -> World {
        let (sim, octane_clock) = sim_world(appliance_config(0x42, user), 0).await;
        let secrets = Arc::new(MemorySecretStore::default());
        let dir = tempfile::tempdir().unwrap();
        let phone_clock = Arc::new(ManualClock::new(now()));
        let phone = open_phone(&sim, &secrets, &dir, &phone_clock, None, tweak);
        phone.bond_appliance(None, PIN).await.unwrap();
        World { sim, octane_clock, secrets, phone_clock, dir, phone }
    }

    /// The phone's configuration.
    pub fn config(&self) -> SunstormConfig {
        config(&self.sim, &self.dir)
    }

    /// A second `Sunstorm` object on the same DB and secrets (an app restart).
    pub fn reopen(&self, tweak: impl FnOnce(&mut SunstormConfig)) -> Sunstorm {
        open_phone(&self.sim, &self.secrets, &self.dir, &self.phone_clock, None, tweak)
    }

    /// Like [`World::reopen`], with an event listener.
    pub fn reopen_listening(&self, listener: EventListener) -> Sunstorm {
        open_phone(&self.sim, &self.secrets, &self.dir, &self.phone_clock, Some(listener), |_| {})
    }

    /// Creates a pair session as the demo SP.
    pub async fn session(&self, chains: &[ChainId], return_url: Option<&str>) -> CreateSessionResponse {
        self.sim
            .sp
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
        let r = self.sim.sp.pair_result(&s.session_id, 5).await.unwrap();
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

/// The phone's configuration in `world`, DB in `dir`.
pub fn config(world: &SimWorld, dir: &tempfile::TempDir) -> SunstormConfig {
    let mut cfg = world.phone_config();
    cfg.db_path = Some(dir.path().join("phone.db"));
    cfg.octane_connect_timeout = Duration::from_secs(2);
    cfg.octane_request_timeout = Duration::from_secs(5);
    cfg.octane_max_attempts = 2;
    cfg
}

/// A phone in `world` reaching its appliance, its DB in `dir` (configured by [`config`],
/// then `tweak`).
pub fn open_phone(
    world: &SimWorld,
    secrets: &Arc<MemorySecretStore>,
    dir: &tempfile::TempDir,
    clock: &Arc<ManualClock>,
    listener: Option<EventListener>,
    tweak: impl FnOnce(&mut SunstormConfig),
) -> Sunstorm {
    let mut cfg = config(world, dir);
    tweak(&mut cfg);
    Sunstorm::open_with_clock(
        cfg,
        secrets.clone(),
        Arc::new(SameConnector(world.connector.clone())),
        listener,
        clock.clone() as Arc<dyn Clock>,
    )
    .unwrap()
}

/// A sign request of `kind` for `account` under `pair_id`, created now, valid 120 s.
pub fn sign_request(pair_id: Uuid, account: &AccountId, kind: PayloadKind, payload: Vec<u8>) -> SignRequest {
    let now = now();
    SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account.chain.clone(),
        account: account.clone(),
        kind,
        payload,
        created_at: now,
        expires_at: now + 120,
    }
}

/// Waits (a few long-polls) for request `request_id` on `phone` and returns what it shows.
pub async fn shown(phone: &Sunstorm, request_id: Uuid) -> PendingSignature {
    for _ in 0..5 {
        let pending = phone.pending_sign_requests(Duration::from_secs(2)).await.unwrap();
        if let Some(p) = pending.into_iter().find(|p| p.request_id == request_id) {
            return p;
        }
    }
    panic!("request {request_id} never reached the phone");
}
