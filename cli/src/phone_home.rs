//! The phone on a desktop: its state directory (`--home`, `$SUNSTORM_HOME` or
//! `~/.sunstorm`: the core's database `sunstorm.db` and the secrets in `secrets/`, 0600
//! files), the core's `Sunstorm` over them, which owns every bond (ADR 0023), and the radio
//! that reaches each bonded appliance. Also the one-time move of the old `bond.json` (the
//! CLI's own copy of its one bond, before the core owned them) into the core.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use clap::Args;
use sunstorm_ble::{BleTarget, BtleplugConnector, CentralConfig};
use sunstorm_core::appliance::client::BondRecord;
use sunstorm_core::approval::SoftwareApprovalKey;
use sunstorm_core::ble::transport::{Connector, ConnectorFactory, GattError, GattLink};
use sunstorm_core::bytes::Key32;
use sunstorm_core::octane::transport::{HttpRequest, HttpResponse, HttpTransport, TransportError};
use sunstorm_core::secrets::FileSecretStore;
use sunstorm_core::sunstorm::{ApplianceId, CoreError, EventListener, Sunstorm, SunstormConfig};
use sunstorm_sim::link::SocketConnector;

use crate::output::CliError;

/// The old single-bond file in the home directory.
pub const LEGACY_BOND_FILE: &str = "bond.json";

/// The phone's state directory: `home`, else `$HOME/.sunstorm`.
pub fn home_dir(home: Option<&Path>) -> PathBuf {
    home.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".sunstorm")
    })
}

/// How the phone reaches an appliance from the command line: the appliance simulator's
/// Unix socket or a BLE peripheral. Given, it reaches every appliance the command uses;
/// left out, each appliance is reached at the route kept with its bond.
#[derive(Args, Debug, Clone, Default)]
pub struct RouteArgs {
    /// The appliance simulator's Unix socket.
    #[arg(long, env = "SUNSTORM_SOCKET")]
    pub socket: Option<PathBuf>,
    /// The appliance over Bluetooth LE, by address or advertised name (instead of --socket).
    #[arg(long, env = "SUNSTORM_BLE", conflicts_with = "socket")]
    pub ble: Option<String>,
    /// Bluetooth adapter for --ble (BlueZ name, e.g. `hci0`); default: the first one.
    #[arg(long = "ble-adapter", env = "SUNSTORM_BLE_ADAPTER")]
    pub ble_adapter: Option<String>,
}

impl RouteArgs {
    /// The route these flags name, as kept with a bond (`unix:PATH`, `ble:TARGET`).
    pub fn route(&self) -> Option<String> {
        match (&self.ble, &self.socket) {
            (Some(target), _) => Some(format!("ble:{target}")),
            (None, Some(path)) => Some(format!("unix:{}", path.display())),
            (None, None) => None,
        }
    }
}

/// The CLI's radio: a connector per appliance from its route (or from the flags, which
/// win when given).
struct Radio {
    flags: Option<String>,
    ble_adapter: Option<String>,
    phone_mtu: u16,
}

impl ConnectorFactory for Radio {
    fn connector(&self, route: Option<&str>) -> Arc<dyn Connector> {
        match self.flags.as_deref().or(route) {
            Some(r) => match r.split_once(':') {
                Some(("unix", path)) => Arc::new(SocketConnector::new(path, self.phone_mtu)),
                Some(("ble", target)) => Arc::new(LazyBle {
                    target: target.to_string(),
                    adapter: self.ble_adapter.clone(),
                    inner: tokio::sync::OnceCell::new(),
                }),
                _ => Arc::new(NoRoute),
            },
            None => Arc::new(NoRoute),
        }
    }
}

/// A BLE connector made on first use (making one starts the platform's Bluetooth).
struct LazyBle {
    target: String,
    adapter: Option<String>,
    inner: tokio::sync::OnceCell<BtleplugConnector>,
}

#[async_trait]
impl Connector for LazyBle {
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError> {
        let c = self
            .inner
            .get_or_try_init(|| {
                let cfg = CentralConfig { adapter: self.adapter.clone(), ..CentralConfig::default() };
                BtleplugConnector::new(BleTarget::parse(&self.target), cfg)
            })
            .await?;
        c.connect().await
    }
}

/// No route known: the appliance cannot be reached (pass --socket or --ble).
struct NoRoute;

#[async_trait]
impl Connector for NoRoute {
    async fn connect(&self) -> Result<Box<dyn GattLink>, GattError> {
        Err(GattError::NotFound)
    }
}

/// Octane for commands that are not told where it is (bonding, listing, asking an
/// appliance): any call to it fails, saying so.
#[derive(Debug)]
struct NoOctane;

#[async_trait]
impl HttpTransport for NoOctane {
    async fn send(&self, _request: HttpRequest) -> Result<HttpResponse, TransportError> {
        Err(TransportError::Offline("octane is not configured for this command (pass --octane)".into()))
    }
}

/// Where octane is and its pinned key.
pub struct Octane {
    /// Base URL.
    pub url: url::Url,
    /// Pinned key.
    pub key: Key32,
}

/// Octane from `--octane URL --octane-key KEY`: both or neither (`None`).
pub fn octane_flags(url: Option<&str>, key: Option<&str>, json: bool) -> Result<Option<Octane>, CliError> {
    let missing = |flag: &str| CliError::rejected("missing_flag", format!("{flag} is required"), json);
    match (url, key) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(missing("--octane-key")),
        (None, Some(_)) => Err(missing("--octane")),
        (Some(url), Some(key)) => {
            let url = url::Url::parse(url).map_err(|e| CliError::rejected("bad_octane_url", e.to_string(), json))?;
            let key = Key32::from_hex(key)
                .ok_or_else(|| CliError::rejected("bad_octane_key", "--octane-key must be 64 hex digits", json))?;
            Ok(Some(Octane { url, key }))
        }
    }
}

/// What opening the phone needs.
pub struct Open<'a> {
    /// The home directory.
    pub home: PathBuf,
    /// Octane (`None`: commands that never call it).
    pub octane: Option<Octane>,
    /// Accepted pair-link hosts (empty: the default).
    pub link_hosts: &'a [String],
    /// How to reach the appliance(s).
    pub route: &'a RouteArgs,
    /// The phone's MTU over the socket.
    pub phone_mtu: u16,
    /// This phone's name, as an appliance lists it when bonding.
    pub phone_name: Option<&'a str>,
    /// Told of the core's events.
    pub listener: Option<EventListener>,
    /// JSON errors.
    pub json: bool,
}

/// A CLI error from a core error (`rejected` for an input the user can fix).
pub fn core_error(e: &CoreError, json: bool) -> CliError {
    let rejected = matches!(e, CoreError::Pair(p) if p.is_rejection());
    if rejected {
        CliError::rejected(e.code(), e.to_string(), json)
    } else {
        CliError::failed(e.code(), e.to_string(), json)
    }
}

/// Opens the phone: the store and secrets in the home directory, and the bonds (moving an
/// old `bond.json` into the core first, then deleting it).
pub async fn open(o: Open<'_>) -> Result<Sunstorm, CliError> {
    let json = o.json;
    std::fs::create_dir_all(&o.home).map_err(|e| CliError::failed("home", e.to_string(), json))?;
    let secrets = FileSecretStore::new(o.home.join("secrets"))
        .map_err(|e| CliError::failed("secret_store", e.to_string(), json))?;
    let mut cfg = match o.octane {
        Some(oc) => SunstormConfig::new(oc.url, oc.key),
        None => {
            let url = url::Url::parse("https://octane.invalid/")
                .map_err(|e| CliError::failed("internal", e.to_string(), json))?;
            let mut cfg = SunstormConfig::new(url, Key32::default());
            cfg.http = Some(Arc::new(NoOctane));
            cfg
        }
    };
    cfg.db_path = Some(o.home.join("sunstorm.db"));
    // The CLI's phone signs approvals with its software key once it has one (created by
    // `appliance bond --approval-key` or `appliance enrol-approval-key`).
    if let Some(key) = SoftwareApprovalKey::load(&secrets).map_err(|e| secret_error(&e, json))? {
        cfg.approval_key = Some(Arc::new(key));
    }
    if !o.link_hosts.is_empty() {
        cfg.link_hosts = o.link_hosts.to_vec();
    }
    if let Some(name) = o.phone_name {
        cfg.phone_name = name.to_string();
    }
    let radio = Radio { flags: o.route.route(), ble_adapter: o.route.ble_adapter.clone(), phone_mtu: o.phone_mtu };
    let s = Sunstorm::open(cfg, Arc::new(secrets), Arc::new(radio), o.listener).map_err(|e| core_error(&e, json))?;
    migrate_bond_file(&s, &o.home, o.route.route().as_deref(), json).await?;
    Ok(s)
}

fn secret_error(e: &sunstorm_core::secrets::SecretError, json: bool) -> CliError {
    CliError::failed("secret_store", e.to_string(), json)
}

/// Creates the phone's software approval key in `home` (kept when it has one, replaced
/// with `renew`): the next bonding enrols it, `Sunstorm::enrol_approval_key` re-enrols it.
pub fn create_approval_key(home: &Path, renew: bool, json: bool) -> Result<(), CliError> {
    std::fs::create_dir_all(home).map_err(|e| CliError::failed("home", e.to_string(), json))?;
    let secrets = FileSecretStore::new(home.join("secrets")).map_err(|e| secret_error(&e, json))?;
    let made =
        if renew { SoftwareApprovalKey::create(&secrets) } else { SoftwareApprovalKey::load_or_create(&secrets) };
    made.map(|_| ()).map_err(|e| secret_error(&e, json))
}

/// Moves `<home>/bond.json` (the CLI's copy of its one bond, before the core owned them)
/// into the core, with `route` (the flags of this run, if any) as its route, and deletes
/// it. An unreadable file is an error and stays.
pub async fn migrate_bond_file(s: &Sunstorm, home: &Path, route: Option<&str>, json: bool) -> Result<(), CliError> {
    let path = home.join(LEGACY_BOND_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CliError::failed("bad_bond_file", format!("{}: {e}", path.display()), json)),
    };
    let rec: BondRecord = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::failed("bad_bond_file", format!("{} is not a bond record: {e}", path.display()), json)
    })?;
    s.adopt_bond(rec, route).await.map_err(|e| core_error(&e, json))?;
    std::fs::remove_file(&path).map_err(|e| CliError::failed("io", e.to_string(), json))?;
    tracing::info!("moved bond.json into the phone's database");
    Ok(())
}

/// Parses `--appliance` (an appliance id: its identity key, 64 hex digits).
pub fn parse_appliance(id: Option<&str>, json: bool) -> Result<Option<ApplianceId>, CliError> {
    match id {
        None => Ok(None),
        Some(s) => ApplianceId::from_hex(s.trim()).map(Some).ok_or_else(|| {
            CliError::rejected("bad_appliance_id", "--appliance takes an appliance id (64 hex digits)", json)
        }),
    }
}
