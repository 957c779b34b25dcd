//! The octane simulator: a real HTTP server (axum) implementing octane's SP API and app API
//! (wire types in [`sunstorm_core::octane::api`]), with its own Ed25519 key, state in SQLite
//! (in memory by default, a file on request), code-attempt limits, expiry and revocation.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sunstorm_sim::octane::OctaneSimError> {
//! use sunstorm_sim::octane::{OctaneSim, OctaneSimConfig};
//! let octane = OctaneSim::start(OctaneSimConfig::default()).await?;
//! println!("{} pinned key {}", octane.url, octane.octane_public_key);
//! octane.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See `docs/octane-api.md` for the endpoints.

mod http;
pub(crate) mod logic;
mod metadata;
mod push;

pub use metadata::VERSION_HEADER as METADATA_VERSION_HEADER;
pub use push::{PushConfig, DEFAULT_APNS_TOPIC, DEFAULT_FCM_PROJECT};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{ChainId, SOLANA_DEVNET, SOLANA_MAINNET};
use sunstorm_core::clock::{Clock, SystemClock};
use sunstorm_core::model::SpProfile;
use tokio::sync::Notify;
use zeroize::Zeroizing;

use crate::http_server::ServerTask;

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum OctaneSimError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The SQLite database could not be opened or migrated.
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    /// An SP registration is invalid (duplicate id or API key, bad origin).
    #[error("invalid SP registration: {0}")]
    BadRegistration(String),
    /// The push sender could not be set up.
    #[error("push: {0}")]
    Push(String),
}

/// An SP octane knows: its bearer API key (only a hash is stored), its public profile, and
/// the chains it may ask for.
#[derive(Clone)]
pub struct SpRegistration {
    /// Bearer API key (`Authorization: Bearer <key>`).
    pub api_key: String,
    /// Public profile (name, logo, homepage, Ed25519 key, allowed return origins).
    pub profile: SpProfile,
    /// CAIP-2 chains this SP may request.
    pub supported_chains: Vec<ChainId>,
}

impl std::fmt::Debug for SpRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpRegistration")
            .field("api_key", &"<redacted>")
            .field("profile", &self.profile)
            .field("supported_chains", &self.supported_chains)
            .finish()
    }
}

/// A clock tests move by hand (the core's, re-exported where the simulators' users find it).
pub use sunstorm_core::clock::ManualClock;

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct OctaneSimConfig {
    /// Where to listen; default `127.0.0.1:0` (an ephemeral port).
    pub listen: SocketAddr,
    /// A SQLite file to keep state in; `None` keeps it in memory.
    pub db_path: Option<PathBuf>,
    /// Seed of octane's Ed25519 key (and of the demo SP's keys); `None` draws one at random.
    pub seed: Option<[u8; 32]>,
    /// Host of the pair links handed to SPs (`https://<host>/pair?session=…`).
    pub link_host: String,
    /// Further SPs to register at start.
    pub sps: Vec<SpRegistration>,
    /// How many further demo SPs ([`extra_demo_sp`] 1..=N) to register at start, for tests
    /// and demos with several services.
    pub extra_demo_sps: u8,
    /// Time source (sessions and sign requests expire by it).
    pub clock: Arc<dyn Clock>,
    /// The signed metadata bundle to serve at `GET /metadata/bundle` (as is: octane does
    /// not verify it, phones do); `None` answers 404 until
    /// [`OctaneSimHandle::serve_metadata`].
    pub metadata_bundle: Option<Vec<u8>>,
    /// Push each routed sign request through this push gateway; `None`: no push (phones
    /// find requests by polling).
    pub push: Option<PushConfig>,
}

impl Default for OctaneSimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            db_path: None,
            seed: None,
            link_host: sunstorm_core::link::DEFAULT_HOST.to_string(),
            sps: Vec::new(),
            extra_demo_sps: 0,
            clock: Arc::new(SystemClock),
            metadata_bundle: None,
            push: None,
        }
    }
}

/// The demo SP registered at start: its API key and signing key (it is a simulator).
#[derive(Debug, Clone)]
pub struct DemoSp {
    /// Bearer API key.
    pub api_key: String,
    /// The SP's Ed25519 signing key (signs sign requests under `Domain::SpSignRequest`).
    pub signing_key: SigningKey,
    /// Its registered profile.
    pub profile: SpProfile,
    /// The chains it may request.
    pub supported_chains: Vec<ChainId>,
}

impl DemoSp {
    /// The signing key's 32-byte seed in hex (what `sunstorm sp sign --sp-key` takes).
    pub fn signing_key_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.signing_key.to_bytes()))
    }

    /// What octane registers for it.
    pub fn registration(&self) -> SpRegistration {
        SpRegistration {
            api_key: self.api_key.clone(),
            profile: self.profile.clone(),
            supported_chains: self.supported_chains.clone(),
        }
    }
}

/// Origin the demo SP may send users back to.
pub const DEMO_SP_ORIGIN: &str = "https://sp.example";

/// The chains the demo SP may request: Ethereum, Sepolia, Base, Solana and Solana devnet.
pub fn demo_chains() -> Vec<ChainId> {
    vec![
        ChainId::Evm(1),
        ChainId::Evm(11155111),
        ChainId::Evm(8453),
        ChainId::Solana(SOLANA_MAINNET.to_string()),
        ChainId::Solana(SOLANA_DEVNET.to_string()),
    ]
}

fn derive(seed: &[u8; 32], label: &str) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(b"sunstorm-sim/octane/");
    h.update(label.as_bytes());
    h.update([0u8]);
    h.update(seed);
    Zeroizing::new(h.finalize().into())
}

/// Octane's signing key as the simulator derives it from `seed` (tests play a compromised
/// octane that countersigns anything with it).
pub fn octane_signing_key(seed: &[u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&derive(seed, "octane-key"))
}

fn demo_sp(seed: &[u8; 32]) -> DemoSp {
    make_demo_sp(seed, "demo-sp", "Demo SP", DEMO_SP_ORIGIN)
}

/// The `n`-th further demo SP (`n` ≥ 1; a second service for tests and demos with several
/// SPs): `demo-sp-N`, "Demo SP N", origin `https://spN.example`, its keys derived from the
/// seed like the first's. Register it through [`OctaneSimConfig::sps`] with
/// [`DemoSp::registration`] (`sunstorm sim octane --extra-sps N` does).
pub fn extra_demo_sp(seed: &[u8; 32], n: u8) -> DemoSp {
    make_demo_sp(seed, &format!("demo-sp-{n}"), &format!("Demo SP {n}"), &format!("https://sp{n}.example"))
}

fn make_demo_sp(seed: &[u8; 32], id: &str, name: &str, origin: &str) -> DemoSp {
    let signing_key = SigningKey::from_bytes(&derive(seed, &format!("{id}-key")));
    let api = derive(seed, &format!("{id}-api-key"));
    let api_key = format!(
        "sk_demo_{}",
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, api.as_slice())
    );
    let profile = SpProfile {
        sp_id: id.into(),
        name: name.into(),
        logo_url: format!("{origin}/logo.png"),
        homepage: format!("{origin}/"),
        public_key: Key32(signing_key.verifying_key().to_bytes()),
        allowed_return_origins: vec![origin.to_string()],
    };
    DemoSp { api_key, signing_key, profile, supported_chains: demo_chains() }
}

/// The running simulator. Dropping it stops the server.
pub struct OctaneSimHandle {
    /// Base URL, `http://127.0.0.1:<port>` (no trailing slash).
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// Octane's Ed25519 public key (pin it in the core's config).
    pub octane_public_key: Key32,
    /// The demo SP, always registered.
    pub demo_sp: DemoSp,
    /// The further demo SPs asked for ([`OctaneSimConfig::extra_demo_sps`]).
    pub extra_sps: Vec<DemoSp>,
    state: Arc<http::AppState>,
    server: ServerTask,
}

impl std::fmt::Debug for OctaneSimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OctaneSimHandle")
            .field("url", &self.url)
            .field("octane_public_key", &self.octane_public_key)
            .finish_non_exhaustive()
    }
}

impl OctaneSimHandle {
    /// Registers another SP while running.
    pub fn register_sp(&self, sp: &SpRegistration) -> Result<(), OctaneSimError> {
        let mut conn =
            self.state.db.lock().map_err(|_| OctaneSimError::BadRegistration("database lock poisoned".into()))?;
        logic::register_sp(&mut conn, sp)
    }

    /// Every push target octane holds: (appliance, phone app key, target).
    pub fn push_targets(&self) -> Vec<(Key32, Key32, sunstorm_core::octane::api::PushTarget)> {
        let Ok(db) = self.state.db() else { return Vec::new() };
        logic::all_targets(&db)
            .map(|ts| ts.into_iter().map(|t| (t.appliance, t.app_key, t.target)).collect())
            .unwrap_or_default()
    }

    /// Serves `bundle` at `GET /metadata/bundle` from now on (`None`: 404). Bytes are served
    /// as they are, so tests can serve a tampered, unsigned or older file.
    pub fn serve_metadata(&self, bundle: Option<Vec<u8>>) {
        if let Ok(mut slot) = self.state.metadata.write() {
            *slot = bundle.map(metadata::ServedBundle::new);
        }
    }

    /// Stops accepting connections and ends the server (in-flight long-polls get ≤ 1 s) and
    /// the pushes in flight.
    pub async fn shutdown(mut self) {
        self.stop_pushes();
        self.server.stop().await;
    }

    /// Serves until Ctrl-C (or the server fails), then stops.
    pub async fn run_until_ctrl_c(mut self) {
        self.server.run_until_ctrl_c().await;
        self.stop_pushes();
    }

    fn stop_pushes(&self) {
        if let Some(pusher) = &self.state.pusher {
            pusher.stop();
        }
    }
}

impl Drop for OctaneSimHandle {
    fn drop(&mut self) {
        self.stop_pushes();
    }
}

/// Entry point of the octane simulator.
#[derive(Debug)]
pub struct OctaneSim;

impl OctaneSim {
    /// Opens the store, registers the SPs, binds the listener and serves in a background task.
    pub async fn start(config: OctaneSimConfig) -> Result<OctaneSimHandle, OctaneSimError> {
        let seed: Zeroizing<[u8; 32]> = match config.seed {
            Some(s) => Zeroizing::new(s),
            None => {
                let mut s = Zeroizing::new([0u8; 32]);
                OsRng.fill_bytes(s.as_mut());
                s
            }
        };
        let key = octane_signing_key(&seed);
        let code_mac_key = derive(&seed, "code-mac");
        let octane_public_key = Key32(key.verifying_key().to_bytes());

        let mut conn = logic::open(config.db_path.as_deref())?;
        let demo = demo_sp(&seed);
        logic::register_sp(&mut conn, &demo.registration())?;
        let extra_sps: Vec<DemoSp> = (1..=config.extra_demo_sps).map(|n| extra_demo_sp(&seed, n)).collect();
        for sp in &extra_sps {
            logic::register_sp(&mut conn, &sp.registration())?;
        }
        for sp in &config.sps {
            logic::register_sp(&mut conn, sp)?;
        }

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| OctaneSimError::Bind { addr: config.listen, source })?;
        let addr = listener.local_addr().map_err(|source| OctaneSimError::Bind { addr: config.listen, source })?;

        let state = Arc::new(http::AppState {
            db: Mutex::new(conn),
            key,
            code_mac_key,
            clock: config.clock.clone(),
            link_host: config.link_host.clone(),
            notify: Notify::new(),
            metadata: Arc::new(std::sync::RwLock::new(config.metadata_bundle.clone().map(metadata::ServedBundle::new))),
            pusher: config.push.clone().map(push::Pusher::new).transpose().map_err(OctaneSimError::Push)?,
        });
        let app = http::router(state.clone());
        let server = ServerTask::spawn(listener, app, "octane");
        tracing::info!(%addr, key = %octane_public_key.fingerprint(), "octane simulator listening");
        Ok(OctaneSimHandle {
            url: format!("http://{addr}"),
            addr,
            octane_public_key,
            demo_sp: demo,
            extra_sps,
            state,
            server,
        })
    }
}
