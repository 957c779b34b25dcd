//! [`SunstormCore`]: the one long-lived object the shells create at app start.

use std::future::Future;
use std::sync::{Arc, RwLock};

use sunstorm_core::sunstorm::{Sunstorm, SunstormConfig};

use crate::events::{event_forwarder, ListenerSlot};

use sunstorm_core::bytes::Key32;
use sunstorm_core::metadata::ShippedBundle;

use crate::appliance::{self, parse_appliance_id, PeripheralConnectors};
use crate::approval::{ApprovalKey, ForeignApprovalKey};
use crate::ble::{self, BleCentral, BleTimeouts};
use crate::cancel::CancelHandle;
use crate::error::SunstormError;
use crate::http::{ForeignHttp, HttpClient};
use crate::platform::{FlowListener, SecretStore, UserPresence};
use crate::secrets::ForeignSecretStore;
use crate::views::{millis, ApplianceInfoView, ApplianceRow, BondedApplianceView, FlowProgress, PairLink, WalletView};

/// How the core is set up: which octane to trust, which links to accept, where to keep
/// its database.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CoreConfig {
    /// Octane's base URL (HTTPS in production; `http://127.0.0.1:…` for the simulator).
    pub octane_url: String,
    /// Octane's pinned Ed25519 public key, 64 hex characters.
    pub octane_public_key_hex: String,
    /// Hosts whose `https://HOST/pair?...` links are accepted (e.g. `sigilvault.xyz`).
    pub accepted_link_hosts: Vec<String>,
    /// Path of the SQLite database file (in the app's private storage).
    pub database_path: String,
    /// This phone's name, shown on the appliance when bonding.
    pub phone_name: String,
    /// The pinned Ed25519 public key metadata bundles must be signed with, 64 hex
    /// characters (the repository's development key signs `metadata/bundle.cbor`; a
    /// production app pins its metadata signer's). `None` (the default): no bundle is
    /// used, contract calls without a built-in decoder are shown blind.
    #[uniffi(default = None)]
    pub metadata_public_key_hex: Option<String>,
    /// The metadata bundle the app ships as an asset (the file's bytes, e.g.
    /// `metadata/bundle.cbor`), read by the app and handed in at start; the core uses the
    /// newest verified of it and the last update from octane. `None` (the default): none.
    #[uniffi(default = None)]
    pub metadata_bundle: Option<Vec<u8>>,
}

/// A configuration checked and parsed.
#[derive(Debug, Clone)]
#[allow(dead_code)] // fields are consumed as the core's flows are bound
pub(crate) struct ValidConfig {
    pub(crate) octane_url: String,
    pub(crate) octane_key: Key32,
    pub(crate) link_hosts: Vec<String>,
    pub(crate) database_path: String,
    pub(crate) phone_name: String,
    pub(crate) metadata_key: Option<Key32>,
    pub(crate) metadata_bundle: Option<ShippedBundle>,
}

fn validate(config: CoreConfig) -> Result<ValidConfig, SunstormError> {
    let bad = |reason: &str| SunstormError::InvalidConfig { reason: reason.to_string() };
    let url = url::Url::parse(&config.octane_url).map_err(|_| bad("octane_url is not a URL"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(bad("octane_url must be https (http only on loopback)"));
    }
    let key = hex::decode(config.octane_public_key_hex.trim()).map_err(|_| bad("octane_public_key_hex is not hex"))?;
    let key: [u8; 32] = key.try_into().map_err(|_| bad("octane_public_key_hex must be 32 bytes"))?;
    if config.accepted_link_hosts.is_empty() {
        return Err(bad("accepted_link_hosts is empty"));
    }
    if config.database_path.trim().is_empty() {
        return Err(bad("database_path is empty"));
    }
    let metadata_key = match &config.metadata_public_key_hex {
        None => None,
        Some(h) => {
            let k = hex::decode(h.trim()).map_err(|_| bad("metadata_public_key_hex is not hex"))?;
            let k: [u8; 32] = k.try_into().map_err(|_| bad("metadata_public_key_hex must be 32 bytes"))?;
            Some(Key32(k))
        }
    };
    Ok(ValidConfig {
        octane_url: config.octane_url,
        octane_key: Key32(key),
        link_hosts: config.accepted_link_hosts,
        database_path: config.database_path,
        phone_name: config.phone_name,
        metadata_key,
        metadata_bundle: config.metadata_bundle.map(ShippedBundle::new),
    })
}

/// Aborts a spawned task when the caller stops waiting for it (e.g. a Kotlin coroutine or
/// Swift task is cancelled), so no flow runs on detached.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The Sunstorm core: create one at app start with the platform's services, keep it for
/// the life of the process, call its async methods from any thread.
///
/// Lifetime: in Kotlin use `.use {}` or call `close()`/`destroy()`; in Swift it is freed
/// with its last reference. The platform objects passed in are held until then; they
/// must not hold a strong reference back to this object (a cycle across the FFI is
/// never collected).
#[derive(uniffi::Object)]
pub struct SunstormCore {
    rt: Option<tokio::runtime::Runtime>,
    config: ValidConfig,
    ble: Arc<dyn BleCentral>,
    pub(crate) presence: Arc<dyn UserPresence>,
    /// The platform's approval key, if the app gave one (also held by the facade).
    pub(crate) approval_key: Option<Arc<ForeignApprovalKey>>,
    /// The core's facade: the bonds, the pair and sign flows, the pairs.
    pub(crate) facade: Arc<Sunstorm>,
    /// Where the facade's events go.
    pub(crate) listener: ListenerSlot,
}

impl Drop for SunstormCore {
    fn drop(&mut self) {
        // Dropping a runtime from inside async context panics; never block the caller.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl SunstormCore {
    /// Runs `fut` on the core's runtime, stopping it when `cancel` fires, and turning a
    /// panic inside it into [`SunstormError::Internal`].
    ///
    /// Generic only in what it must be: `fut` is boxed with a one-shot slot for its answer,
    /// and [`Self::run_boxed`] spawns that one task type for every call, so the runtime's
    /// task machinery and the cancel/panic handling exist once in the library, not once per
    /// exported method (size budget of the mobile library, docs/building.md).
    pub(crate) async fn run<T, F>(&self, cancel: Option<Arc<CancelHandle>>, fut: F) -> Result<T, SunstormError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, SunstormError>> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.run_boxed(
            cancel,
            Box::pin(async move {
                // The receiver only goes away with the caller, who no longer waits.
                let _ = tx.send(fut.await);
            }),
        )
        .await?;
        // The task ran to its end, so it sent its answer.
        rx.await.unwrap_or_else(|_| Err(SunstormError::internal("a core task ended without its answer")))
    }

    /// [`Self::run`]'s task: one spawned task per call, aborted if the caller stops
    /// waiting.
    async fn run_boxed(
        &self,
        cancel: Option<Arc<CancelHandle>>,
        job: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
    ) -> Result<(), SunstormError> {
        let rt = self.rt.as_ref().ok_or_else(|| SunstormError::internal("core is shut down"))?;
        let task = async move {
            match cancel {
                Some(c) => tokio::select! {
                    biased;
                    () = c.cancelled() => {
                        tracing::info!(target: "sunstorm_ffi", "flow cancelled");
                        Err(SunstormError::Cancelled)
                    }
                    () = job => Ok(()),
                },
                None => {
                    job.await;
                    Ok(())
                }
            }
        };
        let mut handle = AbortOnDrop(rt.spawn(task));
        match (&mut handle.0).await {
            Ok(r) => r,
            Err(e) if e.is_panic() => {
                let reason = panic_text(e.into_panic());
                tracing::error!(target: "sunstorm_ffi", %reason, "a core task panicked");
                Err(SunstormError::internal(format!("panic: {reason}")))
            }
            Err(_) => Err(SunstormError::Cancelled),
        }
    }

    /// Wraps a listener as the core's progress callback.
    #[allow(dead_code)] // used by the bound flows
    pub(crate) fn progress_fn(listener: Option<Arc<dyn FlowListener>>) -> Option<sunstorm_core::appliance::ProgressFn> {
        listener.map(|l| {
            let f: sunstorm_core::appliance::ProgressFn = Arc::new(move |p| {
                if let Err(e) = l.on_progress(FlowProgress::from(p)) {
                    tracing::warn!(target: "sunstorm_ffi", error = %e, "flow listener failed");
                }
            });
            f
        })
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl SunstormCore {
    /// Creates the core: checks `config`, starts its runtime (two worker threads) and keeps
    /// the platform services (octane is reached through `http`, the platform's HTTP stack).
    /// With `approval_key` (the platform's biometric-bound P-256 key), its public key is
    /// enrolled with each appliance at bonding and every sign approval is signed with it for
    /// the appliance to check; its biometric prompt then replaces `presence` when signing
    /// (`presence` still guards pairing). Fails with `InvalidConfig` on a bad URL or key.
    #[uniffi::constructor(default(approval_key = None))]
    pub fn new(
        config: CoreConfig,
        ble: Arc<dyn BleCentral>,
        http: Arc<dyn HttpClient>,
        secrets: Arc<dyn SecretStore>,
        presence: Arc<dyn UserPresence>,
        approval_key: Option<Arc<dyn ApprovalKey>>,
    ) -> Result<Arc<Self>, SunstormError> {
        let config = validate(config)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sunstorm-core")
            .enable_all()
            .build()
            .map_err(|e| SunstormError::internal(format!("cannot start runtime: {e}")))?;
        let secrets = Arc::new(ForeignSecretStore::new(secrets));
        let ble_timeouts = BleTimeouts::default();
        let listener: ListenerSlot = Arc::new(RwLock::new(None));
        let octane_url = url::Url::parse(&config.octane_url)
            .map_err(|_| SunstormError::InvalidConfig { reason: "octane_url is not a URL".into() })?;
        let mut fcfg = SunstormConfig::new(octane_url, config.octane_key);
        fcfg.link_hosts = config.link_hosts.clone();
        fcfg.db_path = Some(config.database_path.clone().into());
        fcfg.phone_name = config.phone_name.clone();
        fcfg.http = Some(Arc::new(ForeignHttp::new(http)));
        fcfg.metadata_key = config.metadata_key;
        fcfg.shipped_metadata = config.metadata_bundle.clone();
        let approval_key = approval_key.map(|k| Arc::new(ForeignApprovalKey::new(k)));
        fcfg.approval_key = approval_key.clone().map(|k| {
            let k: Arc<dyn sunstorm_core::approval::ApprovalKey> = k;
            k
        });
        let connectors = Arc::new(PeripheralConnectors::new(ble.clone(), ble_timeouts));
        let store: Arc<dyn sunstorm_core::secrets::SecretStore> = secrets.clone();
        // Opening touches only SQLite (and the secret store when a bond exists).
        let facade = Sunstorm::open(fcfg, store.clone(), connectors, Some(event_forwarder(listener.clone())))?;
        // Once: the FFI's own copy of a bond (before the core owned them) moves into the core.
        // On a thread of its own, so that a caller already inside an async runtime is fine.
        std::thread::scope(|scope| {
            scope
                .spawn(|| rt.block_on(appliance::migrate_legacy_bond(store.as_ref(), &facade)))
                .join()
                .unwrap_or_else(|_| Err(SunstormError::internal("bond migration panicked")))
        })?;
        tracing::info!(target: "sunstorm_ffi", version = env!("CARGO_PKG_VERSION"), "core started");
        Ok(Arc::new(Self { rt: Some(rt), config, ble, presence, approval_key, facade: Arc::new(facade), listener }))
    }

    /// Parses a tapped Universal Link / App Link or a scanned QR code. Only
    /// `https://<accepted host>/pair?session=…[&v=NNNNNN]` is accepted; anything else fails
    /// with `InvalidLink` naming the exact reason. Local and instant: nothing is fetched.
    pub fn parse_link(&self, text: String) -> Result<PairLink, SunstormError> {
        let cfg = sunstorm_core::link::LinkConfig { accepted_hosts: self.config.link_hosts.clone() };
        Ok(sunstorm_core::link::parse_link(&text, &cfg)?.into())
    }

    /// Normalises a typed validation code (drops spaces and dashes, maps any script's
    /// digits to ASCII) into six ASCII digits, or fails with `InvalidCode` saying why.
    pub fn normalize_code(&self, text: String) -> Result<String, SunstormError> {
        Ok(sunstorm_core::code::ValidationCode::parse(&text)?.as_str().to_string())
    }

    /// Scans for Sigil appliances for `timeout_ms` (default 5 s) and lists them, strongest
    /// signal first.
    #[uniffi::method(default(timeout_ms = 5000, cancel = None))]
    pub async fn scan_appliances(
        &self,
        timeout_ms: i32,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Vec<ApplianceRow>, SunstormError> {
        let central = self.ble.clone();
        self.run(cancel, async move {
            tracing::info!(target: "sunstorm_ffi::ble", timeout_ms, "scanning for appliances");
            let found = ble::scan(central, millis(timeout_ms)).await?;
            let mut rows: Vec<ApplianceRow> = found.into_iter().map(ApplianceRow::from).collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.rssi.unwrap_or(i32::MIN)));
            tracing::info!(target: "sunstorm_ffi::ble", count = rows.len(), "scan done");
            Ok(rows)
        })
        .await
    }

    /// Bonds this phone with the appliance at `peripheral_id` (from `scan_appliances`) using
    /// the PIN the appliance shows (SPAKE2; the PIN never travels), and adds it to the
    /// bonded appliances (a phone can bond several; bonding one again replaces its bond).
    /// Fails with `WrongPin { attempts_left }`, `PinLocked`, `BondingClosed` (the appliance
    /// is not in bonding mode), `BondingTryLater { retry_after_secs }` (wrong-PIN back-off),
    /// `ApplianceUnreachable`… Each evaluated attempt costs one of the appliance's PIN
    /// tries; refused ones cost none.
    #[uniffi::method(default(cancel = None, listener = None))]
    pub async fn bond_appliance(
        &self,
        peripheral_id: String,
        pin: String,
        cancel: Option<Arc<CancelHandle>>,
        listener: Option<Arc<dyn FlowListener>>,
    ) -> Result<BondedApplianceView, SunstormError> {
        let s = self.facade.clone();
        self.run(cancel, async move {
            notify(&listener, FlowProgress::ConnectingToAppliance);
            tracing::info!(target: "sunstorm_ffi::appliance", "bonding with an appliance");
            let bond = s.bond_appliance(Some(&peripheral_id), &pin).await?;
            tracing::info!(
                target: "sunstorm_ffi::appliance",
                appliance = %bond.appliance.identity.fingerprint(),
                "bonded"
            );
            Ok(BondedApplianceView::from(&bond))
        })
        .await
    }

    /// Every appliance bonded with this phone, most recently bonded first (empty before
    /// the first bond).
    pub async fn bonded_appliances(&self) -> Result<Vec<BondedApplianceView>, SunstormError> {
        let s = self.facade.clone();
        self.run(None, async move { Ok(s.bonded_appliances()?.iter().map(BondedApplianceView::from).collect()) }).await
    }

    /// Forgets the appliance `appliance_id` (may be omitted when one is bonded, else
    /// `ChooseAppliance`): it leaves the bonded appliances and no flow uses it until it is
    /// bonded again. Its pairs and history stay; the phone's keys stay (other appliances
    /// use them).
    #[uniffi::method(default(appliance_id = None))]
    pub async fn forget_appliance(&self, appliance_id: Option<String>) -> Result<(), SunstormError> {
        let id = parse_appliance_id(appliance_id.as_deref())?;
        let s = self.facade.clone();
        self.run(None, async move {
            s.forget_appliance(id.as_ref()).await?;
            Ok(())
        })
        .await
    }

    /// Asks the appliance `appliance_id` (may be omitted when one is bonded) for its name,
    /// firmware and identity (over the secure channel). `NotBonded` without a bond,
    /// `ChooseAppliance` when several are bonded and none is named; `UnknownAppliance` if
    /// its key changed.
    #[uniffi::method(default(appliance_id = None, cancel = None))]
    pub async fn appliance_info(
        &self,
        appliance_id: Option<String>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<ApplianceInfoView, SunstormError> {
        let id = parse_appliance_id(appliance_id.as_deref())?;
        let s = self.facade.clone();
        self.run(cancel, async move { Ok(s.appliance_info(id.as_ref()).await?.into()) }).await
    }

    /// The wallets of appliance `appliance_id` (may be omitted when one is bonded) on
    /// `chains` (CAIP-2 ids; all chains when empty, the default).
    #[uniffi::method(default(chains = [], appliance_id = None, cancel = None))]
    pub async fn appliance_wallets(
        &self,
        chains: Vec<String>,
        appliance_id: Option<String>,
        cancel: Option<Arc<CancelHandle>>,
    ) -> Result<Vec<WalletView>, SunstormError> {
        let chains = chains
            .iter()
            .map(|c| {
                c.parse::<sunstorm_core::caip::ChainId>()
                    .map_err(|e| SunstormError::InvalidSelection { reason: format!("{c}: {e}") })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let id = parse_appliance_id(appliance_id.as_deref())?;
        let s = self.facade.clone();
        self.run(cancel, async move {
            Ok(s.appliance_wallets(id.as_ref(), &chains).await?.into_iter().map(WalletView::from).collect())
        })
        .await
    }
}

/// Test hooks (feature `testing`): the binding tests build the library with them; the
/// shipped mobile library is built without, so these methods are absent from its bindings
/// (scripts/size-check.sh checks the symbols).
#[cfg(feature = "testing")]
#[uniffi::export(async_runtime = "tokio")]
impl SunstormCore {
    /// Panics inside a core task on purpose, to prove a panic reaches the app as
    /// `SunstormError::Internal` and never crashes it.
    pub async fn debug_force_panic(&self) -> Result<(), SunstormError> {
        self.run(None, async move {
            #[allow(clippy::panic)]
            if std::hint::black_box(true) {
                panic!("deliberate panic requested by debug_force_panic");
            }
            Ok(())
        })
        .await
    }

    /// Waits until `cancel` fires or `timeout_ms` elapses, on the core's runtime; lets the
    /// binding tests check the cancellation wiring without a device.
    #[uniffi::method(default(cancel = None))]
    pub async fn debug_wait(&self, timeout_ms: i32, cancel: Option<Arc<CancelHandle>>) -> Result<(), SunstormError> {
        self.run(cancel, async move {
            tokio::time::sleep(millis(timeout_ms)).await;
            Ok(())
        })
        .await
    }
}

/// Tells the listener, if any; a failing listener never breaks a flow.
fn notify(listener: &Option<Arc<dyn FlowListener>>, progress: FlowProgress) {
    if let Some(l) = listener {
        if let Err(e) = l.on_progress(progress) {
            tracing::warn!(target: "sunstorm_ffi", error = %e, "flow listener failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> CoreConfig {
        CoreConfig {
            octane_url: "http://127.0.0.1:1".into(),
            octane_public_key_hex: "11".repeat(32),
            accepted_link_hosts: vec!["sigilvault.xyz".into()],
            database_path: "/tmp/x.db".into(),
            phone_name: "test".into(),
            metadata_public_key_hex: None,
            metadata_bundle: None,
        }
    }

    #[test]
    fn config_is_checked() {
        assert!(validate(config()).is_ok());
        let mut c = config();
        c.octane_url = "http://octane.example".into();
        assert!(matches!(validate(c), Err(SunstormError::InvalidConfig { .. })));
        let mut c = config();
        c.octane_public_key_hex = "zz".into();
        assert!(matches!(validate(c), Err(SunstormError::InvalidConfig { .. })));
        let mut c = config();
        c.metadata_public_key_hex = Some("ab".repeat(31));
        assert_eq!(
            validate(c).unwrap_err(),
            SunstormError::InvalidConfig { reason: "metadata_public_key_hex must be 32 bytes".into() }
        );
        let mut c = config();
        c.metadata_public_key_hex = Some(hex::encode(sunstorm_core::metadata::DEV_METADATA_PUBLIC_KEY));
        c.metadata_bundle = Some(vec![1, 2, 3]);
        let v = validate(c).unwrap();
        assert_eq!(v.metadata_key, Some(Key32(sunstorm_core::metadata::DEV_METADATA_PUBLIC_KEY)));
        assert_eq!(v.metadata_bundle.map(|b| b.0.len()), Some(3));
    }
}
