//! [`Sunstorm`]: the one long-lived object the FFI and the CLI hold. It owns the store, the
//! bonds (several appliances per phone, keyed by [`ApplianceId`]), and per bonded appliance
//! its octane client, appliance client and pair and sign engines; it stays thin over
//! [`crate::pair`] and [`crate::sign`].
//!
//! The one owner of the bonds: their public parts live in the store (`appliances` table,
//! with how the platform reaches each), the phone's keys in the [`SecretStore`]. Flows pick
//! the appliance of their pair or pair flow; an operation that needs an appliance and names
//! none fails with [`CoreError::ChooseAppliance`] when several are bonded.

mod metadata;
mod phones;

pub use metadata::MetadataUpdate;
pub use phones::ForgottenPhone;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use url::Url;
use uuid::Uuid;

use crate::address_book::{AddressBookError, UserAddressBook};
use crate::appliance::client::{app_signing_key, bond_enrolling, ApplianceClient, BondRecord, ClientConfig};
use crate::approval::{ApprovalKey, ApprovalKeyError, ApprovalPolicy, ApprovalPublicKey};
use crate::audit::AuditEvent;

use crate::appliance::{ApplianceApi, ApplianceError, ApplianceInfo, ApplianceProgress, ProgressFn};
use crate::ble::transport::ConnectorFactory;
use crate::bytes::Key32;
use crate::caip::{AccountId, ChainId};
use crate::clock::{Clock, SystemClock};
use crate::guardrails::Guardrails;
use crate::link::LinkConfig;
use crate::metadata::{LiveMetadata, MetadataError, ShippedBundle};
use crate::octane::api::{PendingSignRequest, PushPlatform, PushTargetRequest};
use crate::octane::client::{AppCredentials, OctaneClient, OctaneConfig, OctaneError};
use crate::octane::transport::HttpTransport;
#[cfg(feature = "testing")]
use crate::pair::CrashPoint;
use crate::pair::{PairEngine, PairError, PairState};
use crate::ports::OctaneApi;
use crate::push::{unseal, PushContent, PushError, PushKeyPair, PushPublicKey};
use crate::secrets::SecretStore;
use crate::sign::{PendingSignature, SignEngine, SignError, SignedOutcome};
use crate::store::{AuditEntry, BondedAppliance, PairRecord, SignRecord, SqliteBundleStore, Store, StoreError};
use crate::wallets::ApprovalList;

/// Everything a [`Sunstorm`] needs to know at start.
#[derive(Debug, Clone)]
pub struct SunstormConfig {
    /// Octane's base URL (HTTPS; plain HTTP only on loopback).
    pub octane_url: Url,
    /// Octane's pinned Ed25519 public key.
    pub octane_key: Key32,
    /// The pinned Ed25519 public key metadata bundles must be signed with (production
    /// builds pin their metadata signer's; [`crate::metadata::DEV_METADATA_PUBLIC_KEY`]
    /// signs the repository's development bundle). `None`: no bundle is used, contract
    /// calls without a built-in decoder are shown blind.
    pub metadata_key: Option<Key32>,
    /// The metadata bundle shipped with the app (an asset; see `docs/embedding.md`). At
    /// open the newest verified of it and the cached update from octane is used.
    pub shipped_metadata: Option<ShippedBundle>,
    /// Longest wait for octane's metadata bundle download.
    pub metadata_timeout: Duration,
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
    /// The platform approval key (P-256, biometric-bound): its public key is enrolled with
    /// every appliance at bonding and it signs every approval for the appliance to check
    /// (`docs/signing.md`). `None`: approvals carry no proof (an appliance whose policy
    /// asks for one refuses them).
    pub approval_key: Option<Arc<dyn ApprovalKey>>,
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
            metadata_key: None,
            shipped_metadata: None,
            metadata_timeout: Duration::from_secs(60),
            link_hosts: LinkConfig::default().accepted_hosts,
            db_path: None,
            octane_connect_timeout: Duration::from_secs(5),
            octane_request_timeout: Duration::from_secs(15),
            octane_max_attempts: 3,
            appliance: ClientConfig::default(),
            phone_name: "Sunstorm".into(),
            sign_max_skew_secs: crate::sign::DEFAULT_MAX_SKEW_SECS,
            approval_key: None,
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

/// Which appliance: its Ed25519 identity key (64 hex characters at the FFI and the CLI).
pub type ApplianceId = Key32;

/// A bonded appliance as the facade lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplianceBond {
    /// Its public keys, name, endorsement and bonding time.
    pub appliance: BondedAppliance,
    /// How the platform reaches it (peripheral id, address, socket path), if recorded.
    pub peripheral: Option<String>,
}

impl ApplianceBond {
    /// Its id.
    pub fn id(&self) -> ApplianceId {
        self.appliance.identity
    }
}

/// What [`Sunstorm::sync`] did, appliance by appliance.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// The pairs newly revoked, over every appliance that synced.
    pub revoked: Vec<Uuid>,
    /// The appliances that could not be synced, and why (the others were).
    pub failed: Vec<SyncFailure>,
}

/// One appliance [`Sunstorm::sync`] could not sync.
#[derive(Debug)]
pub struct SyncFailure {
    /// The appliance.
    pub appliance: ApplianceId,
    /// Why (e.g. octane refuses this phone for it: `phone_forgotten`).
    pub error: CoreError,
}

/// Why a [`Sunstorm`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No appliance is bonded yet (bond first).
    #[error("no appliance is bonded with this phone")]
    NotBonded,
    /// Several appliances are bonded and the operation names none: the user picks one.
    #[error("several appliances are bonded with this phone: choose one")]
    ChooseAppliance,
    /// The appliance named is not bonded with this phone (never, or forgotten).
    #[error("that appliance is not bonded with this phone")]
    NoSuchAppliance,
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
    /// A metadata bundle was refused (the previous one stays in use).
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// An address book change was refused.
    #[error(transparent)]
    AddressBook(#[from] AddressBookError),
}

impl CoreError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::NotBonded => "not_bonded",
            CoreError::ChooseAppliance => "choose_appliance",
            CoreError::NoSuchAppliance => "no_such_appliance",
            CoreError::Pair(e) => e.code(),
            CoreError::Sign(e) => e.code(),
            CoreError::Appliance(_) => "appliance_error",
            CoreError::Octane(e) => e.code(),
            CoreError::Store(_) => "store_error",
            CoreError::Metadata(e) => e.code(),
            CoreError::AddressBook(e) => e.code(),
        }
    }
}

/// A push failure as the facade reports it: the secret store's as the appliance link's
/// secret failures are, a payload that does not open as a malformed request.
fn push_error(e: PushError) -> CoreError {
    match e {
        PushError::Secret(s) => CoreError::Appliance(ApplianceError::Secret(s)),
        other => CoreError::Sign(SignError::Malformed(format!("push payload: {other}"))),
    }
}

/// The parts that exist per bonded appliance.
struct Bonded {
    record: BondRecord,
    peripheral: Option<String>,
    appliance: Arc<ApplianceClient>,
    octane: Arc<OctaneClient>,
    pair: PairEngine,
    sign: SignEngine,
}

/// The Sunstorm core, as the shells and the CLI use it.
pub struct Sunstorm {
    cfg: SunstormConfig,
    store: Arc<Store>,
    secrets: Arc<dyn SecretStore>,
    connectors: Arc<dyn ConnectorFactory>,
    clock: Arc<dyn Clock>,
    listener: Option<EventListener>,
    /// The verified metadata bundle in use (`None` when no metadata key is pinned).
    metadata: Option<Arc<LiveMetadata>>,
    /// The user's address book.
    book: Arc<UserAddressBook>,
    /// Every bonded appliance's parts, by id.
    bonds: tokio::sync::RwLock<HashMap<ApplianceId, Arc<Bonded>>>,
}

impl std::fmt::Debug for Sunstorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sunstorm").field("octane", &self.cfg.octane_url.as_str()).finish_non_exhaustive()
    }
}

impl Sunstorm {
    /// Opens the store and prepares the clients of every bonded appliance. `connectors`
    /// makes the connector to each appliance from the route kept with its bond.
    pub fn open(
        cfg: SunstormConfig,
        secrets: Arc<dyn SecretStore>,
        connectors: Arc<dyn ConnectorFactory>,
        listener: Option<EventListener>,
    ) -> Result<Self, CoreError> {
        Self::open_with_clock(cfg, secrets, connectors, listener, Arc::new(SystemClock))
    }

    /// [`Sunstorm::open`] with an explicit clock (tests).
    pub fn open_with_clock(
        cfg: SunstormConfig,
        secrets: Arc<dyn SecretStore>,
        connectors: Arc<dyn ConnectorFactory>,
        listener: Option<EventListener>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CoreError> {
        let store = Arc::new(match &cfg.db_path {
            Some(p) => Store::open(p)?,
            None => Store::open_in_memory()?,
        });
        let metadata = cfg.metadata_key.map(|key| {
            let cache = Arc::new(SqliteBundleStore::new(store.clone(), clock.clone()).with_index(secrets.clone()));
            Arc::new(LiveMetadata::start(*key.as_bytes(), cache, cfg.shipped_metadata.as_ref().map(|b| &*b.0)))
        });
        let book = Arc::new(UserAddressBook::load(store.clone(), clock.clone())?);
        let me = Self {
            cfg,
            store,
            secrets,
            connectors,
            clock,
            listener,
            metadata,
            book,
            bonds: tokio::sync::RwLock::new(HashMap::new()),
        };
        let mut bonds = HashMap::new();
        for (id, peripheral) in me.store.active_bonds()? {
            let Some(a) = me.store.appliance(&id)? else { continue };
            bonds.insert(id, Arc::new(me.build(record_of(a), peripheral)?));
        }
        tracing::info!(bonds = bonds.len(), "sunstorm: opened");
        Ok(Self { bonds: tokio::sync::RwLock::new(bonds), ..me })
    }

    fn build(&self, record: BondRecord, peripheral: Option<String>) -> Result<Bonded, CoreError> {
        let appliance = Arc::new(ApplianceClient::new(
            self.connectors.connector(peripheral.as_deref()),
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
        let octane = Arc::new(octane);
        let port: Arc<dyn OctaneApi> = octane.clone();
        let listener = self.listener.clone();
        let pair = PairEngine::new(
            self.store.clone(),
            port.clone(),
            self.secrets.clone(),
            self.clock.clone(),
            LinkConfig { accepted_hosts: self.cfg.link_hosts.clone() },
        )
        .with_listener(listener.map(|l| {
            Arc::new(move |s: &PairState| l(&Event::PairState(Box::new(s.clone())))) as crate::pair::StateListener
        }));
        #[cfg(feature = "testing")]
        let pair = pair.with_crash_point(self.cfg.crash_point);
        let sign = SignEngine::new(self.store.clone(), port, self.clock.clone())
            .with_max_skew(self.cfg.sign_max_skew_secs)
            .with_clear_signing(self.metadata.clone(), self.book.clone())
            .with_approval_key(self.cfg.approval_key.clone());
        Ok(Bonded { record, peripheral, appliance, octane, pair, sign })
    }

    /// The bond `id` names, or the only one when `id` is `None`.
    async fn resolve(&self, id: Option<&ApplianceId>) -> Result<Arc<Bonded>, CoreError> {
        let bonds = self.bonds.read().await;
        match id {
            Some(id) => bonds.get(id).cloned().ok_or(CoreError::NoSuchAppliance),
            None => {
                let mut all = bonds.values();
                match (all.next(), all.next()) {
                    (None, _) => Err(CoreError::NotBonded),
                    (Some(b), None) => Ok(b.clone()),
                    (Some(_), Some(_)) => Err(CoreError::ChooseAppliance),
                }
            }
        }
    }

    /// Any bond, for a call about something the store does not know (its engine reports
    /// the specific error, e.g. an unknown flow).
    async fn any(&self) -> Result<Arc<Bonded>, CoreError> {
        let bonds = self.bonds.read().await;
        let mut all: Vec<_> = bonds.iter().collect();
        all.sort_by_key(|(id, _)| **id);
        all.first().map(|(_, b)| Arc::clone(b)).ok_or(CoreError::NotBonded)
    }

    /// The bond of an appliance the store names (a pair's or a flow's).
    async fn named(&self, id: Option<ApplianceId>) -> Result<Arc<Bonded>, CoreError> {
        match id {
            Some(id) => self.resolve(Some(&id)).await,
            None => self.any().await,
        }
    }

    /// The bond a pair flow belongs to.
    async fn for_flow(&self, flow_id: Uuid) -> Result<Arc<Bonded>, CoreError> {
        match self.store.flow(flow_id)? {
            Some(f) => match f.appliance_identity {
                Some(id) => self.resolve(Some(&id)).await,
                None => self.resolve(None).await,
            },
            None => self.any().await,
        }
    }

    /// The bond a pair belongs to.
    async fn for_pair(&self, pair_id: Uuid) -> Result<Arc<Bonded>, CoreError> {
        self.named(self.store.pair(pair_id)?.map(|p| p.appliance_identity)).await
    }

    /// The bond a sign request belongs to (the one holding it, else its pair's).
    async fn for_request(&self, request_id: Uuid) -> Result<Arc<Bonded>, CoreError> {
        {
            let bonds = self.bonds.read().await;
            if let Some(b) = bonds.values().find(|b| b.sign.pending().iter().any(|p| p.request_id == request_id)) {
                return Ok(b.clone());
            }
        }
        match self.store.sign_record(request_id)? {
            Some(r) => self.for_pair(r.pair_id).await,
            None => self.any().await,
        }
    }

    /// Every bond's parts, in a stable order.
    async fn all(&self) -> Vec<Arc<Bonded>> {
        let bonds = self.bonds.read().await;
        let mut all: Vec<_> = bonds.iter().map(|(id, b)| (*id, b.clone())).collect();
        all.sort_by_key(|(id, _)| *id);
        all.into_iter().map(|(_, b)| b).collect()
    }

    fn progress(&self, subject: Uuid) -> Option<ProgressFn> {
        let l = self.listener.clone()?;
        Some(Arc::new(move |p: ApplianceProgress| l(&Event::Progress { subject, progress: p })))
    }

    /// The store (read-only uses: history, audit log).
    pub fn store(&self) -> &Store {
        &self.store
    }

    // ---- appliances ----

    /// Bonds with the appliance at `peripheral` (as the connector factory understands it),
    /// using the PIN it shows. Adds it to the bonds (bonding an appliance again replaces its
    /// bond and route).
    #[tracing::instrument(skip_all)]
    pub async fn bond_appliance(&self, peripheral: Option<&str>, pin: &str) -> Result<ApplianceBond, CoreError> {
        let connector = self.connectors.connector(peripheral);
        let approval_key = self.approval_public_key().await?;
        let (secrets, name) = (self.secrets.as_ref(), &self.cfg.phone_name);
        let record = bond_enrolling(connector.as_ref(), pin, secrets, name, approval_key, &self.cfg.appliance).await?;
        self.adopt_bond(record, peripheral).await
    }

    /// The approval key's public half, to enrol with an appliance (`None` without a key).
    async fn approval_public_key(&self) -> Result<Option<ApprovalPublicKey>, CoreError> {
        let Some(key) = self.cfg.approval_key.clone() else { return Ok(None) };
        let public = tokio::task::spawn_blocking(move || key.public_key())
            .await
            .map_err(|e| ApprovalKeyError::Other(format!("the approval key's thread failed: {e}")))
            .and_then(|r| r)
            .map_err(|e| CoreError::Sign(SignError::Approval(e)))?;
        Ok(Some(ApprovalPublicKey(public)))
    }

    /// Enrols the approval key (new after a biometric change invalidated the old one)
    /// with the appliance `id` names; its user confirms on the appliance.
    #[tracing::instrument(skip_all)]
    pub async fn enrol_approval_key(&self, id: Option<&ApplianceId>) -> Result<(), CoreError> {
        let key = self.approval_public_key().await?.ok_or(CoreError::Sign(SignError::Approval(
            ApprovalKeyError::Other("this phone has no approval key".into()),
        )))?;
        let b = self.resolve(id).await?;
        let request_id = Uuid::new_v4();
        b.appliance.enrol_approval_key(request_id, &key, self.progress(request_id)).await?;
        tracing::info!(key = %key.fingerprint(), "approval key enrolled");
        Ok(())
    }

    /// Asks the appliance of `pair_id` to hold `policy` for it (its user confirms);
    /// returns the policy the appliance now holds.
    #[tracing::instrument(skip(self))]
    pub async fn set_approval_policy(
        &self,
        pair_id: Uuid,
        policy: ApprovalPolicy,
    ) -> Result<ApprovalPolicy, CoreError> {
        let b = self.for_pair(pair_id).await?;
        let request_id = Uuid::new_v4();
        Ok(b.appliance.set_approval_policy(request_id, pair_id, policy, self.progress(request_id)).await?)
    }

    /// Adopts a bond record made elsewhere (a shell's or the CLI's copy from before the
    /// facade owned the bonds; their migration calls this once, then deletes the copy).
    #[tracing::instrument(skip_all, fields(appliance = %record.appliance_identity.fingerprint()))]
    pub async fn adopt_bond(&self, record: BondRecord, peripheral: Option<&str>) -> Result<ApplianceBond, CoreError> {
        let a = BondedAppliance {
            identity: record.appliance_identity,
            static_key: record.appliance_static,
            name: record.appliance_name.clone(),
            endorsement: record.endorsement.clone(),
            bonded_at: self.clock.now_unix(),
        };
        let b = self.build(record, peripheral.map(str::to_string))?;
        self.store.put_appliance(&a)?;
        self.store.activate_bond(&a.identity, peripheral)?;
        let old = self.bonds.write().await.insert(a.identity, Arc::new(b));
        if let Some(old) = old {
            old.appliance.disconnect().await;
        }
        tracing::info!("bonded");
        Ok(ApplianceBond { appliance: a, peripheral: peripheral.map(str::to_string) })
    }

    /// Every appliance bonded with this phone, most recently bonded first.
    pub fn bonded_appliances(&self) -> Result<Vec<ApplianceBond>, CoreError> {
        let mut out = Vec::new();
        for (id, peripheral) in self.store.active_bonds()? {
            if let Some(appliance) = self.store.appliance(&id)? {
                out.push(ApplianceBond { appliance, peripheral });
            }
        }
        Ok(out)
    }

    /// The bond record of appliance `id` (the only one when `None`).
    pub async fn bond_record(&self, id: Option<&ApplianceId>) -> Result<BondRecord, CoreError> {
        Ok(self.resolve(id).await?.record.clone())
    }

    /// Forgets appliance `id` (the only one when `None`): it leaves the bonds, its link is
    /// closed and no flow uses it until it is bonded again. Its pairs and history stay on
    /// the phone; the phone's own keys stay (other appliances use them).
    #[tracing::instrument(skip_all)]
    pub async fn forget_appliance(&self, id: Option<&ApplianceId>) -> Result<ApplianceId, CoreError> {
        let b = self.resolve(id).await?;
        let id = b.record.appliance_identity;
        self.store.forget_bond(&id, self.clock.now_unix())?;
        self.bonds.write().await.remove(&id);
        b.appliance.disconnect().await;
        let event =
            AuditEvent::ApplianceForgotten { name: b.record.appliance_name.clone(), peripheral: b.peripheral.clone() };
        if let Err(e) = self.store.audit(self.clock.now_unix(), &id.to_hex(), &event) {
            tracing::warn!(error = %e, "forget: audit log write failed");
        }
        tracing::info!(appliance = %id.fingerprint(), "appliance forgotten");
        Ok(id)
    }

    /// Appliance `id`'s name, firmware, protocol version and identity, over the channel.
    pub async fn appliance_info(&self, id: Option<&ApplianceId>) -> Result<ApplianceInfo, CoreError> {
        Ok(self.resolve(id).await?.appliance.info().await?)
    }

    /// Appliance `id`'s wallets on `chains` (all when empty).
    pub async fn appliance_wallets(
        &self,
        id: Option<&ApplianceId>,
        chains: &[ChainId],
    ) -> Result<Vec<AccountId>, CoreError> {
        Ok(self.resolve(id).await?.appliance.wallets(chains).await?)
    }

    // ---- pair ----

    /// Opens a pair link (QR or Universal Link) for appliance `id` (the only one when
    /// `None`; with several bonded, [`CoreError::ChooseAppliance`]).
    pub async fn open_link(&self, link: &str, id: Option<&ApplianceId>) -> Result<PairState, CoreError> {
        let b = self.resolve(id).await?;
        Ok(b.pair.open_link(link, b.record.appliance_identity).await?)
    }

    /// Submits the code (`None`: the one the link carried).
    pub async fn submit_code(&self, flow_id: Uuid, code: Option<&str>) -> Result<PairState, CoreError> {
        Ok(self.for_flow(flow_id).await?.pair.submit_code(flow_id, code).await?)
    }

    /// The wallet approval list for a code-verified flow (its appliance's wallets).
    pub async fn approval_list(&self, flow_id: Uuid) -> Result<ApprovalList, CoreError> {
        let b = self.for_flow(flow_id).await?;
        Ok(b.pair.approval_list(flow_id, b.appliance.as_ref()).await?)
    }

    /// Records the user's wallet choice.
    pub async fn choose_wallets(&self, flow_id: Uuid, wallets: &[AccountId]) -> Result<PairState, CoreError> {
        let b = self.for_flow(flow_id).await?;
        Ok(b.pair.choose_wallets(flow_id, wallets, b.appliance.as_ref()).await?)
    }

    /// Asks the flow's appliance to approve and completes the pair with octane.
    pub async fn approve_pair(&self, flow_id: Uuid) -> Result<PairState, CoreError> {
        let b = self.for_flow(flow_id).await?;
        Ok(b.pair.approve(flow_id, b.appliance.as_ref(), self.progress(flow_id)).await?)
    }

    /// The user declines the pair on the phone.
    pub async fn reject_pair(&self, flow_id: Uuid) -> Result<PairState, CoreError> {
        Ok(self.for_flow(flow_id).await?.pair.reject(flow_id).await?)
    }

    /// The current state of a pair flow.
    pub async fn pair_state(&self, flow_id: Uuid) -> Result<PairState, CoreError> {
        Ok(self.for_flow(flow_id).await?.pair.state(flow_id)?)
    }

    /// Resumes unfinished pair flows after a restart, each with its own appliance (see
    /// [`PairEngine::resume_pending_for`]); flows of a forgotten appliance stay as they are.
    pub async fn resume_pending(&self) -> Result<Vec<Result<PairState, PairError>>, CoreError> {
        let all = self.all().await;
        if all.is_empty() {
            return Err(CoreError::NotBonded);
        }
        let mut out = Vec::new();
        for b in all {
            let id = b.record.appliance_identity;
            out.extend(b.pair.resume_pending_for(&id, Some(b.appliance.as_ref())).await?);
        }
        Ok(out)
    }

    // ---- pairs ----

    /// Every pair this phone holds, newest first (each names its appliance).
    pub fn list_pairs(&self) -> Result<Vec<PairRecord>, CoreError> {
        Ok(self.store.pairs()?)
    }

    /// Revokes a pair from the phone: its appliance drops it and signs the revocation, the
    /// pair is revoked here, and octane is told — or, when octane cannot be reached, the
    /// revocation waits in the store's outbox and [`Sunstorm::sync`] delivers it.
    pub async fn revoke(&self, pair_id: Uuid) -> Result<(), CoreError> {
        let b = self.for_pair(pair_id).await?;
        Ok(b.sign.revoke(pair_id, b.appliance.as_ref()).await?)
    }

    /// Learns SP-side revocations from octane for every bonded appliance and tells each
    /// appliance; first delivers the statements octane is owed (a forgotten phone's, when
    /// octane was unreachable at the time), then relays the phones each reachable appliance
    /// forgot on its own side (it has no network of its own). One appliance failing (it forgot this phone,
    /// octane refuses for it) does not stop the others: the report names it. Fails only
    /// when every appliance failed.
    pub async fn sync(&self) -> Result<SyncReport, CoreError> {
        let all = self.all().await;
        if all.is_empty() {
            return Err(CoreError::NotBonded);
        }
        if let Err(e) = self.relay_outbox().await {
            tracing::warn!(error = %e, "sync: the octane outbox could not be read");
        }
        let mut report = SyncReport::default();
        let mut synced = 0usize;
        let mut learned = 0usize;
        for b in &all {
            match b.sign.sync(Some(b.appliance.as_ref())).await {
                Ok(revoked) => {
                    synced += 1;
                    report.revoked.extend(revoked);
                    // Phones the appliance forgot on its own side: only its phones can tell octane.
                    match self.fetch_own_forgets(&b.record.appliance_identity, &b.appliance).await {
                        Ok(n) => learned += n,
                        Err(e) => tracing::warn!(error = %e, "sync: the appliance's own forgets were not read"),
                    }
                }
                Err(e) => {
                    let appliance = b.record.appliance_identity;
                    tracing::warn!(code = e.code(), error = %e, appliance = %appliance.fingerprint(), "sync failed");
                    report.failed.push(SyncFailure { appliance, error: e.into() });
                }
            }
        }
        if synced == 0 {
            if let Some(f) = report.failed.pop() {
                return Err(f.error);
            }
        }
        if learned > 0 {
            if let Err(e) = self.relay_outbox().await {
                tracing::warn!(error = %e, "sync: the octane outbox could not be read");
            }
        }
        Ok(report)
    }

    // ---- sign ----

    /// Long-polls octane (up to `wait`, for every bonded appliance at once) and returns
    /// every verified request awaiting the user, including those fetched earlier; refused
    /// requests are logged, never shown. Fails only when every appliance's poll failed.
    pub async fn pending_sign_requests(&self, wait: Duration) -> Result<Vec<PendingSignature>, CoreError> {
        let all = self.all().await;
        if all.is_empty() {
            return Err(CoreError::NotBonded);
        }
        let fetched = futures::future::join_all(all.iter().map(|b| b.sign.fetch(wait))).await;
        let mut first_err = None;
        let mut polled = 0usize;
        let mut blocked = Vec::new();
        for (b, r) in all.iter().zip(fetched) {
            match r {
                Ok(results) => {
                    polled += 1;
                    for r in results {
                        match r {
                            Ok(p) if p.blocked() => blocked.push(p),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(code = e.code(), error = %e, "sign: request refused"),
                        }
                    }
                }
                Err(e) => {
                    let appliance = b.record.appliance_identity.fingerprint();
                    tracing::warn!(code = e.code(), error = %e, %appliance, "sign: poll failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        if polled == 0 {
            if let Some(e) = first_err {
                return Err(e.into());
            }
        }
        let mut out: Vec<PendingSignature> = all.iter().flat_map(|b| b.sign.pending()).collect();
        crate::sign::sort_by_expiry(&mut out);
        out.extend(blocked);
        Ok(out)
    }

    /// Runs one request delivered by push (or any other channel) through the checks, with
    /// the appliance of its pair.
    pub async fn receive_sign_request(&self, delivered: &PendingSignRequest) -> Result<PendingSignature, CoreError> {
        Ok(self.for_pair(delivered.pair_id).await?.sign.ingest(delivered).await?)
    }

    /// The phone's push public key (created in the secret store on first use), for the
    /// app to register with octane as its push target (docs/push.md).
    pub fn push_public_key(&self) -> Result<PushPublicKey, CoreError> {
        Ok(PushKeyPair::load_or_create(self.secrets.as_ref()).map_err(push_error)?.public_key())
    }

    /// Registers this phone's push target with octane for every bonded appliance: the
    /// platform, the device token the platform gave the app, and the push key octane seals
    /// to. Call again when the platform rotates the token (it replaces the old one), and
    /// after bonding another appliance. Returns how many appliances now push to it; fails
    /// only when none does (an invalid token: octane's `bad_request`).
    #[tracing::instrument(skip_all, fields(platform = platform.as_str()))]
    pub async fn register_push_target(&self, platform: PushPlatform, token: &str) -> Result<u32, CoreError> {
        let all = self.all().await;
        if all.is_empty() {
            return Err(CoreError::NotBonded);
        }
        let target = PushTargetRequest { platform, token: token.to_string(), push_key: self.push_public_key()? };
        let results = futures::future::join_all(all.iter().map(|b| b.octane.register_push_target(&target))).await;
        Self::count_push_results(results.into_iter().map(|r| r.map(|_| true)))
    }

    /// Removes this phone's push target at octane for every bonded appliance (push turned
    /// off or denied: the app polls). Returns how many targets there were.
    #[tracing::instrument(skip_all)]
    pub async fn remove_push_target(&self) -> Result<u32, CoreError> {
        let all = self.all().await;
        let results = futures::future::join_all(all.iter().map(|b| b.octane.remove_push_target())).await;
        Self::count_push_results(results.into_iter().map(|r| r.map(|x| x.removed)))
    }

    /// How many of the bonded appliances' octane calls said yes; the first error when every
    /// call failed.
    fn count_push_results(results: impl Iterator<Item = Result<bool, OctaneError>>) -> Result<u32, CoreError> {
        let (mut yes, mut ok) = (0u32, 0u32);
        let mut first_err = None;
        for r in results {
            match r {
                Ok(said) => {
                    ok += 1;
                    yes += u32::from(said);
                }
                Err(e) => {
                    tracing::warn!(code = e.code(), error = %e, "push: octane call failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if ok == 0 => Err(e.into()),
            _ => Ok(yes),
        }
    }

    /// A push the app itself received (in the foreground, or the notification the user
    /// tapped): unseals it with the push key and runs the request it carries through the
    /// sign engine's checks — what the long-poll would deliver, without fetching it again.
    /// A push that carries only the request id (too large for a push) fetches its pair's
    /// queue once, without waiting. Polling stays the fallback when push is off.
    #[tracing::instrument(skip_all)]
    pub async fn receive_push(&self, sealed: &[u8]) -> Result<PendingSignature, CoreError> {
        let key = PushKeyPair::load_or_create(self.secrets.as_ref()).map_err(push_error)?;
        match unseal(&key, sealed).map_err(push_error)? {
            PushContent::Request(delivered) => self.receive_sign_request(&delivered).await,
            PushContent::RequestId { pair_id, request_id } => {
                let b = self.for_pair(pair_id).await?;
                let fetched = b.sign.fetch(Duration::ZERO).await?;
                let blocked = fetched.into_iter().flatten().find(|p| p.request_id == request_id);
                let waiting = b.sign.pending().into_iter().find(|p| p.request_id == request_id);
                waiting.or(blocked).ok_or(CoreError::Sign(SignError::UnknownRequest))
            }
        }
    }

    /// The user approves a request: its pair's appliance signs; the verified signature goes
    /// to octane.
    pub async fn approve_sign(&self, request_id: Uuid) -> Result<SignedOutcome, CoreError> {
        let b = self.for_request(request_id).await?;
        Ok(b.sign.approve(request_id, b.appliance.as_ref(), self.progress(request_id)).await?)
    }

    /// The user declines a request.
    pub async fn reject_sign(&self, request_id: Uuid) -> Result<(), CoreError> {
        Ok(self.for_request(request_id).await?.sign.reject(request_id).await?)
    }

    /// The user's guardrails (stored in the database; defaults when never set). Needs no
    /// bond, so a settings screen works before onboarding.
    pub async fn guardrails(&self) -> Result<Guardrails, CoreError> {
        Ok(crate::sign::load_guardrails(&self.store)?)
    }

    /// Replaces the user's guardrails (persisted; they apply to every later request and to
    /// requests already waiting, which are checked again on approval) and records the
    /// change in the audit log (`guardrails_changed`). Spend limits are per phone.
    pub async fn set_guardrails(&self, g: &Guardrails) -> Result<(), CoreError> {
        crate::sign::save_guardrails(&self.store, g)?;
        let event = AuditEvent::GuardrailsChanged { guardrails: g.clone() };
        if let Err(e) = self.store.audit(self.clock.now_unix(), "guardrails", &event) {
            tracing::warn!(error = %e, "guardrails: audit log write failed");
        }
        tracing::info!("guardrails replaced");
        Ok(())
    }

    /// Sign history since `since` (Unix seconds), newest first.
    pub fn sign_history(&self, since: u64) -> Result<Vec<SignRecord>, CoreError> {
        Ok(self.store.sign_history(None, since)?)
    }

    /// The newest `limit` sign history rows, newest first.
    pub fn recent_signs(&self, limit: u32) -> Result<Vec<SignRecord>, CoreError> {
        Ok(self.store.recent_signs(limit)?)
    }

    /// The newest `limit` audit log entries.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, CoreError> {
        Ok(self.store.audit_log(limit)?)
    }
}

/// The bond record of a stored appliance.
fn record_of(a: BondedAppliance) -> BondRecord {
    BondRecord {
        appliance_identity: a.identity,
        appliance_static: a.static_key,
        appliance_name: a.name,
        endorsement: a.endorsement,
    }
}

#[cfg(test)]
#[path = "sunstorm_tests.rs"]
mod tests;
