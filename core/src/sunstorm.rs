//! [`Sunstorm`]: the one long-lived object the FFI and the CLI hold. It owns the store, the
//! octane client, the appliance client and the pair and sign engines, and stays thin over
//! [`crate::pair`] and [`crate::sign`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;
use uuid::Uuid;

use crate::appliance::client::{app_signing_key, bond_with_config, ApplianceClient, BondRecord, ClientConfig};
use crate::appliance::{ApplianceApi, ApplianceError, ApplianceProgress, ProgressFn};
use crate::ble::transport::Connector;
use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::clock::{Clock, SystemClock};
use crate::guardrails::Guardrails;
use crate::link::LinkConfig;
use crate::octane::api::PendingSignRequest;
use crate::octane::client::{AppCredentials, OctaneClient, OctaneConfig, OctaneError};
use crate::octane::transport::HttpTransport;
#[cfg(feature = "testing")]
use crate::pair::CrashPoint;
use crate::pair::{PairEngine, PairError, PairState};
use crate::secrets::SecretStore;
use crate::sign::{PendingSignature, SignEngine, SignError, SignedOutcome};
use crate::store::{AuditEntry, BondedAppliance, PairRecord, SignRecord, Store, StoreError};
use crate::wallets::ApprovalList;

/// Everything a [`Sunstorm`] needs to know at start.
#[derive(Debug, Clone)]
pub struct SunstormConfig {
    /// Octane's base URL (HTTPS; plain HTTP only on loopback).
    pub octane_url: Url,
    /// Octane's pinned Ed25519 public key.
    pub octane_key: Key32,
    /// Hosts pair links may come from.
    pub link_hosts: Vec<String>,
    /// The SQLite file (`None`: in memory, for tests and demos).
    pub db_path: Option<PathBuf>,
    /// Octane: connection timeout.
    pub octane_connect_timeout: Duration,
    /// Octane: per-request timeout (long-polls add their wait).
    pub octane_request_timeout: Duration,
    /// Octane: attempts for idempotent calls.
    pub octane_max_attempts: u32,
    /// Appliance link timeouts and retries.
    pub appliance: ClientConfig,
    /// The name this phone gives itself when bonding.
    pub phone_name: String,
    /// Tolerated clock skew for sign requests (seconds).
    pub sign_max_skew_secs: u64,
    /// How octane's HTTPS requests are sent (the platform's stack on phones). `None`: the
    /// built-in reqwest transport (feature `reqwest`; without it, opening fails).
    pub http: Option<Arc<dyn HttpTransport>>,
    /// Test-only fault injection (feature `testing`).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub crash_point: CrashPoint,
}

impl SunstormConfig {
    /// A configuration with default timeouts and the default link host.
    pub fn new(octane_url: Url, octane_key: Key32) -> Self {
        Self {
            octane_url,
            octane_key,
            link_hosts: LinkConfig::default().accepted_hosts,
            db_path: None,
            octane_connect_timeout: Duration::from_secs(5),
            octane_request_timeout: Duration::from_secs(15),
            octane_max_attempts: 3,
            appliance: ClientConfig::default(),
            phone_name: "Sunstorm".into(),
            sign_max_skew_secs: crate::sign::DEFAULT_MAX_SKEW_SECS,
            http: None,
            #[cfg(feature = "testing")]
            crash_point: CrashPoint::None,
        }
    }
}

#[cfg(feature = "reqwest")]
fn default_transport(cfg: &OctaneConfig) -> Result<Arc<dyn HttpTransport>, OctaneError> {
    OctaneClient::reqwest_transport(cfg)
}

#[cfg(not(feature = "reqwest"))]
fn default_transport(_cfg: &OctaneConfig) -> Result<Arc<dyn HttpTransport>, OctaneError> {
    Err(OctaneError::Config("no HTTP transport: pass one in SunstormConfig::http".into()))
}

/// What the listener is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A pair flow changed state.
    PairState(Box<PairState>),
    /// Progress of an appliance operation (e.g. "confirm on your appliance").
    Progress {
        /// The pair flow or sign request it concerns.
        subject: Uuid,
        /// What happens.
        progress: ApplianceProgress,
    },
}

/// A callback told of every [`Event`].
pub type EventListener = Arc<dyn Fn(&Event) + Send + Sync>;

/// Why a [`Sunstorm`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SunstormError {
    /// No appliance is bonded yet (bond first).
    #[error("no appliance is bonded with this phone")]
    NotBonded,
    /// A pair flow step failed.
    #[error(transparent)]
    Pair(#[from] PairError),
    /// A sign step failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The appliance failed.
    #[error(transparent)]
    Appliance(#[from] ApplianceError),
    /// Octane failed.
    #[error(transparent)]
    Octane(#[from] OctaneError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SunstormError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SunstormError::NotBonded => "not_bonded",
            SunstormError::Pair(e) => e.code(),
            SunstormError::Sign(e) => e.code(),
            SunstormError::Appliance(_) => "appliance_error",
            SunstormError::Octane(e) => e.code(),
            SunstormError::Store(_) => "store_error",
        }
    }
}

/// The parts that exist once an appliance is bonded.
struct Bonded {
    record: BondRecord,
    appliance: Arc<ApplianceClient>,
    pair: PairEngine,
    sign: SignEngine,
}

/// The Sunstorm core, as the shells and the CLI use it.
pub struct Sunstorm {
    cfg: SunstormConfig,
    store: Arc<Store>,
    secrets: Arc<dyn SecretStore>,
    connector: Arc<dyn Connector>,
    clock: Arc<dyn Clock>,
    listener: Option<EventListener>,
    bonded: tokio::sync::RwLock<Option<Arc<Bonded>>>,
}

impl std::fmt::Debug for Sunstorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sunstorm").field("octane", &self.cfg.octane_url.as_str()).finish_non_exhaustive()
    }
}

impl Sunstorm {
    /// Opens the store, and if an appliance is already bonded, prepares its clients.
    pub fn open(
        cfg: SunstormConfig,
        secrets: Arc<dyn SecretStore>,
        connector: Arc<dyn Connector>,
        listener: Option<EventListener>,
    ) -> Result<Self, SunstormError> {
        Self::open_with_clock(cfg, secrets, connector, listener, Arc::new(SystemClock))
    }

    /// [`Sunstorm::open`] with an explicit clock (tests).
    pub fn open_with_clock(
        cfg: SunstormConfig,
        secrets: Arc<dyn SecretStore>,
        connector: Arc<dyn Connector>,
        listener: Option<EventListener>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SunstormError> {
        let store = Arc::new(match &cfg.db_path {
            Some(p) => Store::open(p)?,
            None => Store::open_in_memory()?,
        });
        let me = Self { cfg, store, secrets, connector, clock, listener, bonded: tokio::sync::RwLock::new(None) };
        if let Some(a) = me.store.appliances()?.into_iter().next() {
            let record = BondRecord {
                appliance_identity: a.identity,
                appliance_static: a.static_key,
                appliance_name: a.name,
                endorsement: a.endorsement,
            };
            let b = me.build(record)?;
            // No one else can hold the lock yet.
            if let Ok(mut slot) = me.bonded.try_write() {
                *slot = Some(Arc::new(b));
            }
        }
        Ok(me)
    }

    fn build(&self, record: BondRecord) -> Result<Bonded, SunstormError> {
        let appliance = Arc::new(ApplianceClient::new(
            self.connector.clone(),
            record.clone(),
            self.secrets.as_ref(),
            self.cfg.appliance.clone(),
        )?);
        let app_key = app_signing_key(self.secrets.as_ref())?;
        let mut ocfg = OctaneConfig::new(self.cfg.octane_url.clone(), self.cfg.octane_key);
        ocfg.connect_timeout = self.cfg.octane_connect_timeout;
        ocfg.request_timeout = self.cfg.octane_request_timeout;
        ocfg.max_attempts = self.cfg.octane_max_attempts;
        let http = match &self.cfg.http {
            Some(h) => h.clone(),
            None => default_transport(&ocfg)?,
        };
        let octane = OctaneClient::new(
            ocfg,
            AppCredentials { app_key, endorsement: record.endorsement.clone() },
            self.clock.clone(),
            http,
        )?;
        let listener = self.listener.clone();
        let pair = PairEngine::new(
            self.store.clone(),
            octane.clone(),
            self.secrets.clone(),
            self.clock.clone(),
            LinkConfig { accepted_hosts: self.cfg.link_hosts.clone() },
        )
        .with_listener(listener.map(|l| {
            Arc::new(move |s: &PairState| l(&Event::PairState(Box::new(s.clone())))) as crate::pair::StateListener
        }));
        #[cfg(feature = "testing")]
        let pair = pair.with_crash_point(self.cfg.crash_point);
        let sign =
            SignEngine::new(self.store.clone(), octane, self.clock.clone()).with_max_skew(self.cfg.sign_max_skew_secs);
        Ok(Bonded { record, appliance, pair, sign })
    }

    async fn bonded(&self) -> Result<Arc<Bonded>, SunstormError> {
        self.bonded.read().await.clone().ok_or(SunstormError::NotBonded)
    }

    fn progress(&self, subject: Uuid) -> Option<ProgressFn> {
        let l = self.listener.clone()?;
        Some(Arc::new(move |p: ApplianceProgress| l(&Event::Progress { subject, progress: p })))
    }

    /// The store (read-only uses: history, audit log).
    pub fn store(&self) -> &Store {
        &self.store
    }

    // ---- appliance ----

    /// Bonds with the appliance the connector reaches, using the PIN it shows.
    #[tracing::instrument(skip_all)]
    pub async fn bond_appliance(&self, pin: &str) -> Result<BondedAppliance, SunstormError> {
        let record = bond_with_config(
            self.connector.as_ref(),
            pin,
            self.secrets.as_ref(),
            &self.cfg.phone_name,
            &self.cfg.appliance,
        )
        .await?;
        self.adopt_bond(record).await
    }

    /// Adopts a bond record made elsewhere (e.g. by `sunstorm appliance bond`).
    pub async fn adopt_bond(&self, record: BondRecord) -> Result<BondedAppliance, SunstormError> {
        let a = BondedAppliance {
            identity: record.appliance_identity,
            static_key: record.appliance_static,
            name: record.appliance_name.clone(),
            endorsement: record.endorsement.clone(),
            bonded_at: self.clock.now_unix(),
        };
        let b = self.build(record)?;
        self.store.put_appliance(&a)?;
        *self.bonded.write().await = Some(Arc::new(b));
        Ok(a)
    }

    /// The bonded appliance's bond record, if any.
    pub async fn bond_record(&self) -> Option<BondRecord> {
        self.bonded.read().await.as_ref().map(|b| b.record.clone())
    }

    /// The appliance's wallets on `chains` (all when empty).
    pub async fn appliance_wallets(&self, chains: &[ChainId]) -> Result<Vec<AccountId>, SunstormError> {
        Ok(self.bonded().await?.appliance.wallets(chains).await?)
    }

    // ---- pair ----

    /// Opens a pair link (QR or Universal Link).
    pub async fn open_link(&self, link: &str) -> Result<PairState, SunstormError> {
        let b = self.bonded().await?;
        Ok(b.pair.open_link(link, b.record.appliance_identity).await?)
    }

    /// Submits the code (`None`: the one the link carried).
    pub async fn submit_code(&self, flow_id: Uuid, code: Option<&str>) -> Result<PairState, SunstormError> {
        Ok(self.bonded().await?.pair.submit_code(flow_id, code).await?)
    }

    /// The wallet approval list for a code-verified flow.
    pub async fn approval_list(&self, flow_id: Uuid) -> Result<ApprovalList, SunstormError> {
        let b = self.bonded().await?;
        Ok(b.pair.approval_list(flow_id, b.appliance.as_ref()).await?)
    }

    /// Records the user's wallet choice.
    pub async fn choose_wallets(&self, flow_id: Uuid, wallets: &[AccountId]) -> Result<PairState, SunstormError> {
        let b = self.bonded().await?;
        Ok(b.pair.choose_wallets(flow_id, wallets, b.appliance.as_ref()).await?)
    }

    /// Asks the appliance to approve and completes the pair with octane.
    pub async fn approve_pair(&self, flow_id: Uuid) -> Result<PairState, SunstormError> {
        let b = self.bonded().await?;
        Ok(b.pair.approve(flow_id, b.appliance.as_ref(), self.progress(flow_id)).await?)
    }

    /// The user declines the pair on the phone.
    pub async fn reject_pair(&self, flow_id: Uuid) -> Result<PairState, SunstormError> {
        Ok(self.bonded().await?.pair.reject(flow_id).await?)
    }

    /// The current state of a pair flow.
    pub async fn pair_state(&self, flow_id: Uuid) -> Result<PairState, SunstormError> {
        Ok(self.bonded().await?.pair.state(flow_id)?)
    }

    /// Resumes unfinished pair flows after a restart (see [`PairEngine::resume_pending`]).
    pub async fn resume_pending(&self) -> Result<Vec<Result<PairState, PairError>>, SunstormError> {
        let b = self.bonded().await?;
        Ok(b.pair.resume_pending(Some(b.appliance.as_ref())).await?)
    }

    // ---- pairs ----

    /// Every pair this phone holds, newest first.
    pub fn list_pairs(&self) -> Result<Vec<PairRecord>, SunstormError> {
        Ok(self.store.pairs()?)
    }

    /// Revokes a pair from the phone (the appliance drops it and signs the revocation).
    pub async fn revoke(&self, pair_id: Uuid) -> Result<(), SunstormError> {
        let b = self.bonded().await?;
        Ok(b.sign.revoke(pair_id, b.appliance.as_ref()).await?)
    }

    /// Learns SP-side revocations from octane and tells the appliance; returns the pairs
    /// newly revoked.
    pub async fn sync(&self) -> Result<Vec<Uuid>, SunstormError> {
        let b = self.bonded().await?;
        Ok(b.sign.sync(Some(b.appliance.as_ref())).await?)
    }

    // ---- sign ----

    /// Long-polls octane (up to `wait`) and returns every verified request awaiting the
    /// user, including those fetched earlier; refused requests are logged, never shown.
    pub async fn pending_sign_requests(&self, wait: Duration) -> Result<Vec<PendingSignature>, SunstormError> {
        let b = self.bonded().await?;
        let mut blocked = Vec::new();
        for r in b.sign.fetch(wait).await? {
            match r {
                Ok(p) if p.blocked() => blocked.push(p),
                Ok(_) => {}
                Err(e) => tracing::warn!(code = e.code(), error = %e, "sign: request refused"),
            }
        }
        let mut all = b.sign.pending();
        all.extend(blocked);
        Ok(all)
    }

    /// Runs one request delivered by push (or any other channel) through the checks.
    pub async fn receive_sign_request(
        &self,
        delivered: &PendingSignRequest,
    ) -> Result<PendingSignature, SunstormError> {
        Ok(self.bonded().await?.sign.ingest(delivered).await?)
    }

    /// The user approves a request: the appliance signs; the verified signature goes to octane.
    pub async fn approve_sign(&self, request_id: Uuid) -> Result<SignedOutcome, SunstormError> {
        let b = self.bonded().await?;
        Ok(b.sign.approve(request_id, b.appliance.as_ref(), self.progress(request_id)).await?)
    }

    /// The user declines a request.
    pub async fn reject_sign(&self, request_id: Uuid) -> Result<(), SunstormError> {
        Ok(self.bonded().await?.sign.reject(request_id).await?)
    }

    /// The user's guardrails (stored in the database; defaults when never set). Needs no
    /// bond, so a settings screen works before onboarding.
    pub async fn guardrails(&self) -> Result<Guardrails, SunstormError> {
        Ok(crate::sign::load_guardrails(&self.store)?)
    }

    /// Replaces the user's guardrails (persisted; they apply to every later request and to
    /// requests already waiting, which are checked again on approval) and records the
    /// change in the audit log (`guardrails_changed`). Spend limits are per phone.
    pub async fn set_guardrails(&self, g: &Guardrails) -> Result<(), SunstormError> {
        crate::sign::save_guardrails(&self.store, g)?;
        let detail = serde_json::to_value(g).unwrap_or(serde_json::Value::Null);
        if let Err(e) = self.store.audit(self.clock.now_unix(), "guardrails_changed", "guardrails", &detail) {
            tracing::warn!(error = %e, "guardrails: audit log write failed");
        }
        tracing::info!("guardrails replaced");
        Ok(())
    }

    /// Sign history since `since` (Unix seconds), newest first.
    pub fn sign_history(&self, since: u64) -> Result<Vec<SignRecord>, SunstormError> {
        Ok(self.store.sign_history(None, since)?)
    }

    /// The newest `limit` sign history rows, newest first.
    pub fn recent_signs(&self, limit: u32) -> Result<Vec<SignRecord>, SunstormError> {
        Ok(self.store.recent_signs(limit)?)
    }

    /// The newest `limit` audit log entries.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, SunstormError> {
        Ok(self.store.audit_log(limit)?)
    }
}
