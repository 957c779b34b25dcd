//! `sunstorm appliance …`: the CLI as the phone — bond with an appliance (simulator) over
//! its Unix socket or BLE (`--ble`), then ask it for its info and wallets through the secure channel.
//!
//! The phone's secrets live in `<home>/secrets` (0600 files), the bond record in
//! `<home>/bond.json` (public data only). `<home>` is `--home`, `$SUNSTORM_HOME` or
//! `~/.sunstorm`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use sunstorm_core::appliance::client::{bond, ApplianceClient, BondRecord, ClientConfig};
use sunstorm_core::appliance::{ApplianceApi, ApplianceError};
use sunstorm_core::caip::ChainId;
use sunstorm_core::secrets::FileSecretStore;

use crate::output::{print_json_ok, CliError};

/// The phone's largest ATT MTU.
const PHONE_MTU: u16 = 517;

/// `sunstorm appliance` subcommands.
#[derive(Subcommand, Debug)]
pub enum ApplianceCmd {
    /// Bond this phone with the appliance using the PIN it shows.
    Bond(BondArgs),
    /// The bonded appliance's name, firmware, protocol version and identity.
    Info(QueryArgs),
    /// The bonded appliance's wallets (CAIP-10).
    Wallets(WalletArgs),
}

/// Where the phone keeps its state.
#[derive(Args, Debug)]
pub struct Home {
    /// Phone state directory (default: $SUNSTORM_HOME or ~/.sunstorm).
    #[arg(long, env = "SUNSTORM_HOME")]
    home: Option<PathBuf>,
}

impl Home {
    fn dir(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(|| {
            std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".sunstorm")
        })
    }
}

/// Arguments of `sunstorm appliance bond`.
#[derive(Args, Debug)]
pub struct BondArgs {
    #[command(flatten)]
    target: crate::ble::ApplianceTarget,
    /// The PIN the appliance shows.
    #[arg(long)]
    pin: String,
    /// This phone's name, as the appliance will list it.
    #[arg(long, default_value = "sunstorm cli")]
    name: String,
    #[command(flatten)]
    home: Home,
    /// Print a JSON document.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sunstorm appliance info`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    target: crate::ble::ApplianceTarget,
    #[command(flatten)]
    home: Home,
    /// Print a JSON document.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sunstorm appliance wallets`.
#[derive(Args, Debug)]
pub struct WalletArgs {
    #[command(flatten)]
    query: QueryArgs,
    /// Only these CAIP-2 chains (repeatable).
    #[arg(long = "chain")]
    chains: Vec<String>,
}

/// Runs an `appliance` subcommand.
pub fn run(cmd: ApplianceCmd) -> Result<(), CliError> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::failed("runtime", e.to_string(), false))?;
    match cmd {
        ApplianceCmd::Bond(a) => rt.block_on(run_bond(a)),
        ApplianceCmd::Info(a) => rt.block_on(run_info(a)),
        ApplianceCmd::Wallets(a) => rt.block_on(run_wallets(a)),
    }
}

fn cli_error(e: ApplianceError, json: bool) -> CliError {
    let (code, rejected) = match &e {
        ApplianceError::WrongPin { .. } => ("wrong_pin", true),
        ApplianceError::PinLocked => ("pin_locked", true),
        ApplianceError::BondingClosed => ("bonding_closed", true),
        ApplianceError::BondingTryLater { .. } => ("bonding_try_later", true),
        ApplianceError::UnknownAppliance => ("unknown_appliance", false),
        ApplianceError::NotBonded => ("not_bonded", false),
        ApplianceError::Timeout => ("timeout", false),
        ApplianceError::Link(_) => ("link", false),
        ApplianceError::Channel(_) => ("channel", false),
        ApplianceError::UserRejected => ("user_rejected", false),
        ApplianceError::Refused { .. } => ("refused", false),
        ApplianceError::Protocol(_) => ("protocol", false),
        ApplianceError::Cancelled => ("cancelled", false),
        ApplianceError::Secret(_) => ("secret_store", false),
        ApplianceError::PhoneForgotten => ("phone_forgotten", false),
        ApplianceError::CannotForgetSelf => ("cannot_forget_self", true),
        ApplianceError::UnknownPhone => ("unknown_phone", true),
    };
    if rejected {
        CliError::rejected(code, e.to_string(), json)
    } else {
        CliError::failed(code, e.to_string(), json)
    }
}

fn store(home: &Path, json: bool) -> Result<FileSecretStore, CliError> {
    FileSecretStore::new(home.join("secrets")).map_err(|e| CliError::failed("secret_store", e.to_string(), json))
}

fn bond_path(home: &Path) -> PathBuf {
    home.join("bond.json")
}

fn load_bond(home: &Path, json: bool) -> Result<BondRecord, CliError> {
    let bytes = std::fs::read(bond_path(home)).map_err(|_| {
        CliError::failed("not_bonded", "no appliance is bonded; run `sunstorm appliance bond` first", json)
    })?;
    serde_json::from_slice(&bytes).map_err(|e| CliError::failed("bad_bond_record", e.to_string(), json))
}

fn save_bond(home: &Path, rec: &BondRecord, json: bool) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::failed("io", e.to_string(), json);
    std::fs::create_dir_all(home).map_err(io)?;
    let tmp = home.join(".bond.json.tmp");
    let bytes = serde_json::to_vec_pretty(rec).map_err(|e| CliError::failed("io", e.to_string(), json))?;
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, bond_path(home)).map_err(io)
}

async fn run_bond(a: BondArgs) -> Result<(), CliError> {
    if !sunstorm_core::ble::channel::is_valid_pin(&a.pin) {
        return Err(CliError::rejected("bad_pin", "the PIN is six digits", a.json));
    }
    let home = a.home.dir();
    let store = store(&home, a.json)?;
    let connector = a.target.connector(PHONE_MTU, a.json).await?;
    let rec = bond(connector.as_ref(), &a.pin, &store, &a.name).await.map_err(|e| cli_error(e, a.json))?;
    save_bond(&home, &rec, a.json)?;
    if a.json {
        print_json_ok(serde_json::json!({
            "appliance_name": rec.appliance_name,
            "appliance_identity": rec.appliance_identity.to_hex(),
            "appliance_static": rec.appliance_static.to_hex(),
            "bond_file": bond_path(&home).display().to_string(),
        }));
    } else {
        println!("bonded with {} ({})", rec.appliance_name, rec.appliance_identity.fingerprint());
        println!("identity: {}", rec.appliance_identity);
    }
    Ok(())
}

async fn client(q: &QueryArgs) -> Result<ApplianceClient, CliError> {
    let home = q.home.dir();
    let rec = load_bond(&home, q.json)?;
    let store = store(&home, q.json)?;
    let connector = q.target.connector(PHONE_MTU, q.json).await?;
    ApplianceClient::new(connector, rec, &store, ClientConfig::default()).map_err(|e| cli_error(e, q.json))
}

async fn run_info(q: QueryArgs) -> Result<(), CliError> {
    let c = client(&q).await?;
    let info = c.info().await.map_err(|e| cli_error(e, q.json))?;
    c.disconnect().await;
    if q.json {
        print_json_ok(serde_json::to_value(&info).unwrap_or_default());
    } else {
        println!("name:     {}", info.name);
        println!("firmware: {}", info.firmware);
        println!("protocol: {}", info.protocol_version);
        println!("identity: {}", info.identity);
    }
    Ok(())
}

async fn run_wallets(a: WalletArgs) -> Result<(), CliError> {
    let json = a.query.json;
    let chains = a
        .chains
        .iter()
        .map(|c| c.parse::<ChainId>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::rejected("bad_chain", e.to_string(), json))?;
    let c = client(&a.query).await?;
    let wallets = c.wallets(&chains).await.map_err(|e| cli_error(e, json))?;
    c.disconnect().await;
    if json {
        print_json_ok(serde_json::json!(wallets.iter().map(|w| w.to_string()).collect::<Vec<_>>()));
    } else {
        for w in wallets {
            println!("{w}  ({})", w.chain.display_name());
        }
    }
    Ok(())
}
