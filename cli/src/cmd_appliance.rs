//! `sunstorm appliance …`: the CLI as the phone — bond with appliances (simulators over
//! their Unix sockets, or BLE with `--ble`), list them, ask one for its info and wallets
//! through the secure channel, and forget one. The core's `Sunstorm` owns the bonds
//! (`crate::phone_home`); a phone can bond several appliances, and a command that needs
//! one takes `--appliance <id>` when several are bonded. Also the phones bonded with an
//! appliance, and forgetting a lost one from another phone (`phones`, `forget-phone`).

use clap::{Args, Subcommand};
use sunstorm_core::appliance::ApplianceError;
use sunstorm_core::approval::ApprovalPolicy;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::ChainId;
use sunstorm_core::sunstorm::{ApplianceBond, CoreError, Sunstorm};

use crate::output::{print_json_ok, CliError};
use crate::phone_home::{self, home_dir, parse_appliance, RouteArgs};

/// The phone's largest ATT MTU.
const PHONE_MTU: u16 = 517;

/// `sunstorm appliance` subcommands.
#[derive(Subcommand, Debug)]
pub enum ApplianceCmd {
    /// Bond this phone with the appliance using the PIN it shows (adds it to the bonds).
    Bond(BondArgs),
    /// The appliances bonded with this phone.
    List(ListArgs),
    /// A bonded appliance's name, firmware, protocol version and identity.
    Info(QueryArgs),
    /// A bonded appliance's wallets (CAIP-10).
    Wallets(WalletArgs),
    /// Forget a bonded appliance (its pairs and history stay; bond again to use it).
    Forget(ForgetArgs),
    /// The phones bonded with an appliance (asks the appliance); this phone is marked.
    Phones(QueryArgs),
    /// Forget another phone bonded with the appliance (a lost phone): the appliance asks its
    /// user to confirm, then refuses that phone; octane is told (with --octane) so it stops
    /// routing the appliance's requests to it.
    ForgetPhone(ForgetPhoneArgs),
    /// Enrol this phone's approval key with the appliance (its user confirms); with
    /// --renew a new key replaces the old one first (what a phone does after a biometric
    /// change invalidated its key). The CLI's key is software, without a biometric gate.
    EnrolApprovalKey(EnrolKeyArgs),
    /// Ask the appliance to change when it needs this phone's approval proof for a pair:
    /// `always`, `never` or `above:<amount in the chain's smallest unit>` (its user confirms).
    ApprovalPolicy(PolicyArgs),
}

/// Arguments of `sunstorm appliance enrol-approval-key`.
#[derive(Args, Debug)]
pub struct EnrolKeyArgs {
    /// Replace the approval key with a new one first.
    #[arg(long)]
    renew: bool,
    #[command(flatten)]
    query: QueryArgs,
}

/// Arguments of `sunstorm appliance approval-policy`.
#[derive(Args, Debug)]
pub struct PolicyArgs {
    /// The pair (its id from `sunstorm pairs`).
    pair_id: String,
    /// `always`, `never` or `above:<amount>` (smallest unit, e.g. wei).
    policy: String,
    #[command(flatten)]
    query: QueryArgs,
}

/// Where the phone keeps its state.
#[derive(Args, Debug)]
pub struct Home {
    /// Phone state directory (default: $SUNSTORM_HOME or ~/.sunstorm).
    #[arg(long, env = "SUNSTORM_HOME")]
    home: Option<std::path::PathBuf>,
}

/// Arguments of `sunstorm appliance bond`.
#[derive(Args, Debug)]
pub struct BondArgs {
    #[command(flatten)]
    route: RouteArgs,
    /// The PIN the appliance shows.
    #[arg(long)]
    pin: String,
    /// This phone's name, as the appliance will list it.
    #[arg(long, default_value = "sunstorm cli")]
    name: String,
    /// Create this phone's (software) approval key if it has none and enrol it with the
    /// bond: the appliance then asks for its proof on every signature of the pairs this
    /// phone approves.
    #[arg(long)]
    approval_key: bool,
    #[command(flatten)]
    home: Home,
    /// Print a JSON document.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sunstorm appliance list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    home: Home,
    /// Print a JSON document.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sunstorm appliance info`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The appliance (its id from `sunstorm appliance list`); needed when several are bonded.
    #[arg(long)]
    appliance: Option<String>,
    #[command(flatten)]
    route: RouteArgs,
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

/// Arguments of `sunstorm appliance forget`.
#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// The appliance (its id from `sunstorm appliance list`); needed when several are bonded.
    #[arg(long)]
    appliance: Option<String>,
    #[command(flatten)]
    home: Home,
    /// Print a JSON document.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sunstorm appliance forget-phone`.
#[derive(Args, Debug)]
pub struct ForgetPhoneArgs {
    /// The phone's app key (64 hex digits, as `sunstorm appliance phones` lists it).
    app_key: String,
    /// Octane's base URL, to tell it at once. Without it the appliance's statement waits in
    /// this phone's database until `sunstorm pairs --sync` delivers it.
    #[arg(long, env = "SUNSTORM_OCTANE")]
    octane: Option<String>,
    /// Octane's pinned Ed25519 public key (64 hex digits), with --octane.
    #[arg(long = "octane-key", env = "SUNSTORM_OCTANE_KEY")]
    octane_key: Option<String>,
    #[command(flatten)]
    query: QueryArgs,
}

/// Runs an `appliance` subcommand.
pub fn run(cmd: ApplianceCmd) -> Result<(), CliError> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::failed("runtime", e.to_string(), false))?;
    match cmd {
        ApplianceCmd::Bond(a) => rt.block_on(run_bond(a)),
        ApplianceCmd::List(a) => rt.block_on(run_list(a)),
        ApplianceCmd::Info(a) => rt.block_on(run_info(a)),
        ApplianceCmd::Wallets(a) => rt.block_on(run_wallets(a)),
        ApplianceCmd::Forget(a) => rt.block_on(run_forget(a)),
        ApplianceCmd::Phones(a) => rt.block_on(run_phones(a)),
        ApplianceCmd::ForgetPhone(a) => rt.block_on(run_forget_phone(a)),
        ApplianceCmd::EnrolApprovalKey(a) => rt.block_on(run_enrol_key(a)),
        ApplianceCmd::ApprovalPolicy(a) => rt.block_on(run_policy(a)),
    }
}

fn cli_error(e: CoreError, json: bool) -> CliError {
    let CoreError::Appliance(e) = e else { return phone_home::core_error(&e, json) };
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

async fn open(home: &Home, route: &RouteArgs, name: Option<&str>, json: bool) -> Result<Sunstorm, CliError> {
    open_with(home, route, name, None, json).await
}

async fn open_with(
    home: &Home,
    route: &RouteArgs,
    name: Option<&str>,
    octane: Option<phone_home::Octane>,
    json: bool,
) -> Result<Sunstorm, CliError> {
    phone_home::open(phone_home::Open {
        home: home_dir(home.home.as_deref()),
        octane,
        link_hosts: &[],
        route,
        phone_mtu: PHONE_MTU,
        phone_name: name,
        listener: None,
        json,
    })
    .await
}

fn bond_json(b: &ApplianceBond) -> serde_json::Value {
    serde_json::json!({
        "appliance_id": b.id().to_hex(),
        "appliance_name": b.appliance.name,
        "appliance_identity": b.appliance.identity.to_hex(),
        "appliance_static": b.appliance.static_key.to_hex(),
        "fingerprint": b.appliance.identity.fingerprint(),
        "route": b.peripheral,
        "bonded_at": b.appliance.bonded_at,
    })
}

async fn run_bond(a: BondArgs) -> Result<(), CliError> {
    if !sunstorm_core::ble::channel::is_valid_pin(&a.pin) {
        return Err(CliError::rejected("bad_pin", "the PIN is six digits", a.json));
    }
    let Some(route) = a.route.route() else {
        return Err(CliError::rejected("missing_flag", "--socket or --ble is required", a.json));
    };
    if a.approval_key {
        phone_home::create_approval_key(&home_dir(a.home.home.as_deref()), false, a.json)?;
    }
    let s = open(&a.home, &a.route, Some(&a.name), a.json).await?;
    let b = s.bond_appliance(Some(&route), &a.pin).await.map_err(|e| cli_error(e, a.json))?;
    if a.json {
        print_json_ok(bond_json(&b));
    } else {
        println!("bonded with {} ({})", b.appliance.name, b.appliance.identity.fingerprint());
        println!("appliance id: {}", b.id().to_hex());
    }
    Ok(())
}

async fn run_list(a: ListArgs) -> Result<(), CliError> {
    let s = open(&a.home, &RouteArgs::default(), None, a.json).await?;
    let bonds = s.bonded_appliances().map_err(|e| cli_error(e, a.json))?;
    if a.json {
        print_json_ok(serde_json::json!({ "appliances": bonds.iter().map(bond_json).collect::<Vec<_>>() }));
    } else if bonds.is_empty() {
        println!("no appliance is bonded with this phone");
    } else {
        for b in &bonds {
            let name = sunstorm_core::display::clean(&b.appliance.name, sunstorm_core::display::TextKind::Name);
            let route = b.peripheral.as_deref().unwrap_or("(no route: pass --socket or --ble)");
            println!("{}  {name}  {}  {route}", b.id().to_hex(), b.appliance.identity.fingerprint());
        }
    }
    Ok(())
}

async fn run_info(q: QueryArgs) -> Result<(), CliError> {
    let id = parse_appliance(q.appliance.as_deref(), q.json)?;
    let s = open(&q.home, &q.route, None, q.json).await?;
    let info = s.appliance_info(id.as_ref()).await.map_err(|e| cli_error(e, q.json))?;
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
    let id = parse_appliance(a.query.appliance.as_deref(), json)?;
    let s = open(&a.query.home, &a.query.route, None, json).await?;
    let wallets = s.appliance_wallets(id.as_ref(), &chains).await.map_err(|e| cli_error(e, json))?;
    if json {
        print_json_ok(serde_json::json!(wallets.iter().map(|w| w.to_string()).collect::<Vec<_>>()));
    } else {
        for w in wallets {
            println!("{w}  ({})", w.chain.display_name());
        }
    }
    Ok(())
}

async fn run_forget(a: ForgetArgs) -> Result<(), CliError> {
    let id = parse_appliance(a.appliance.as_deref(), a.json)?;
    let s = open(&a.home, &RouteArgs::default(), None, a.json).await?;
    let forgotten = s.forget_appliance(id.as_ref()).await.map_err(|e| cli_error(e, a.json))?;
    if a.json {
        print_json_ok(serde_json::json!({ "forgotten": forgotten.to_hex() }));
    } else {
        println!("forgot appliance {} ({})", forgotten.to_hex(), forgotten.fingerprint());
    }
    Ok(())
}

async fn run_phones(q: QueryArgs) -> Result<(), CliError> {
    let id = parse_appliance(q.appliance.as_deref(), q.json)?;
    let s = open(&q.home, &q.route, None, q.json).await?;
    let phones = s.bonded_phones(id.as_ref()).await.map_err(|e| cli_error(e, q.json))?;
    if q.json {
        let rows: Vec<_> = phones
            .iter()
            .map(|p| {
                serde_json::json!({
                    "app_key": p.app_key.to_hex(),
                    "fingerprint": p.app_key.fingerprint(),
                    "name": p.name,
                    "bonded_at": p.bonded_at,
                    "this_phone": p.this_phone,
                })
            })
            .collect();
        print_json_ok(serde_json::json!({ "phones": rows }));
    } else {
        // The core's client cleaned the names the appliance sent.
        for p in &phones {
            let this = if p.this_phone { "  (this phone)" } else { "" };
            println!("{}  {}  bonded at {}{this}", p.app_key.to_hex(), p.name, p.bonded_at);
        }
    }
    Ok(())
}

async fn run_enrol_key(a: EnrolKeyArgs) -> Result<(), CliError> {
    let json = a.query.json;
    phone_home::create_approval_key(&home_dir(a.query.home.home.as_deref()), a.renew, json)?;
    let id = parse_appliance(a.query.appliance.as_deref(), json)?;
    let s = open(&a.query.home, &a.query.route, None, json).await?;
    s.enrol_approval_key(id.as_ref()).await.map_err(|e| cli_error(e, json))?;
    if json {
        print_json_ok(serde_json::json!({ "enrolled": true, "renewed": a.renew }));
    } else {
        println!("the appliance enrolled this phone's approval key");
    }
    Ok(())
}

/// `always`, `never` or `above:<amount>`.
fn parse_policy(text: &str, json: bool) -> Result<ApprovalPolicy, CliError> {
    let bad = || CliError::rejected("bad_policy", "the policy is always, never or above:<amount>", json);
    match text.trim() {
        "always" => Ok(ApprovalPolicy::Always),
        "never" => Ok(ApprovalPolicy::Never),
        other => {
            let amount = other.strip_prefix("above:").ok_or_else(bad)?;
            Ok(ApprovalPolicy::Above { native: amount.parse().map_err(|_| bad())? })
        }
    }
}

async fn run_policy(a: PolicyArgs) -> Result<(), CliError> {
    let json = a.query.json;
    let policy = parse_policy(&a.policy, json)?;
    let Ok(pair_id) = uuid::Uuid::parse_str(a.pair_id.trim()) else {
        return Err(CliError::rejected("bad_pair_id", "the pair id is a UUID", json));
    };
    let s = open(&a.query.home, &a.query.route, None, json).await?;
    let now = s.set_approval_policy(pair_id, policy).await.map_err(|e| cli_error(e, json))?;
    if json {
        let above = match now {
            ApprovalPolicy::Above { native } => Some(native.to_string()),
            _ => None,
        };
        print_json_ok(serde_json::json!({ "pair_id": pair_id, "policy": now.as_str(), "above": above }));
    } else {
        println!("pair {pair_id}: the appliance asks for this phone's approval {now}");
    }
    Ok(())
}

async fn run_forget_phone(a: ForgetPhoneArgs) -> Result<(), CliError> {
    let json = a.query.json;
    let Some(key) = Key32::from_hex(a.app_key.trim()) else {
        return Err(CliError::rejected("bad_app_key", "the app key is 64 hex digits", json));
    };
    let octane = phone_home::octane_flags(a.octane.as_deref(), a.octane_key.as_deref(), json)?;
    let id = parse_appliance(a.query.appliance.as_deref(), json)?;
    let s = open_with(&a.query.home, &a.query.route, None, octane, json).await?;
    let f = s.forget_phone(id.as_ref(), key).await.map_err(|e| cli_error(e, json))?;
    if json {
        print_json_ok(serde_json::json!({
            "app_key": f.app_key.to_hex(),
            "forgotten_at": f.forgotten_at,
            "octane_told": f.octane_told,
        }));
    } else {
        println!("forgot phone {} ({}) at {}", f.app_key.to_hex(), f.app_key.fingerprint(), f.forgotten_at);
        if f.octane_told {
            println!("octane was told: it no longer routes this appliance's requests to that phone");
        } else {
            println!("octane was not told yet: run `sunstorm pairs --sync` with --octane and --octane-key to tell it");
        }
    }
    Ok(())
}
