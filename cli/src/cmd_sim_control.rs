//! `sunstorm sim control …`: drive a running appliance simulator from its own side through
//! its control API (`--control` of `sunstorm sim appliance`): list the phones bonded with
//! it, and forget one (a lost phone), as the appliance's own menu would.

use clap::{Args, Subcommand};
use sunstorm_core::display::{clean, TextKind};
use sunstorm_sim::appliance::control::api::ControlErrorCode;
use sunstorm_sim::appliance::control::{Client, ClientError};

use crate::output::{print_json_ok, CliError};

/// `sunstorm sim control` subcommands.
#[derive(Subcommand, Debug)]
pub enum ControlCmd {
    /// The phones bonded with the appliance, and the phones it forgot.
    Phones(ControlArgs),
    /// Forget a bonded phone: the appliance drops its bond, cuts its session and refuses
    /// it from then on; prints the signed statement to relay to octane.
    ForgetPhone(ForgetPhoneArgs),
}

/// Which simulator.
#[derive(Args, Debug)]
pub struct ControlArgs {
    /// The simulator's control API, as it prints it (`control API: http://127.0.0.1:PORT`).
    #[arg(long, env = "SUNSTORM_SIM_CONTROL", value_name = "URL")]
    control: String,
    /// Print a JSON document.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sunstorm sim control forget-phone`.
#[derive(Args, Debug)]
pub struct ForgetPhoneArgs {
    #[command(flatten)]
    target: ControlArgs,
    /// The phone's app key (64 hex digits, as `phones` lists it).
    app_key: String,
}

fn cli_error(e: ClientError, json: bool) -> CliError {
    match e.code() {
        Some(ControlErrorCode::UnknownPhone) => CliError::rejected("unknown_phone", e.to_string(), json),
        Some(ControlErrorCode::InvalidPath) => CliError::rejected("bad_app_key", e.to_string(), json),
        _ => CliError::failed("control_api", e.to_string(), json),
    }
}

/// Runs a `sim control` subcommand.
pub fn run(cmd: ControlCmd) -> Result<(), CliError> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::failed("runtime", e.to_string(), false))?;
    match cmd {
        ControlCmd::Phones(a) => rt.block_on(phones(a)),
        ControlCmd::ForgetPhone(a) => rt.block_on(forget_phone(a)),
    }
}

fn client(a: &ControlArgs) -> Result<Client, CliError> {
    Client::new(&a.control).map_err(|e| CliError::rejected("bad_control_url", e.to_string(), a.json))
}

async fn phones(a: ControlArgs) -> Result<(), CliError> {
    let v = client(&a)?.phones().await.map_err(|e| cli_error(e, a.json))?;
    if a.json {
        print_json_ok(serde_json::to_value(&v).unwrap_or_default());
        return Ok(());
    }
    if v.phones.is_empty() {
        println!("no phone is bonded");
    }
    for p in &v.phones {
        println!("{}  {}  bonded at {}", p.app_key, clean(&p.name, TextKind::Name), p.bonded_at);
    }
    for f in &v.forgotten {
        println!("{}  {}  forgotten at {}", f.app_key, clean(&f.name, TextKind::Name), f.forgotten_at);
    }
    Ok(())
}

async fn forget_phone(a: ForgetPhoneArgs) -> Result<(), CliError> {
    let json = a.target.json;
    if sunstorm_core::bytes::Key32::from_hex(&a.app_key).is_none() {
        return Err(CliError::rejected("bad_app_key", "the app key is 64 hex digits", json));
    }
    let v = client(&a.target)?.forget_phone(&a.app_key).await.map_err(|e| cli_error(e, json))?;
    if json {
        print_json_ok(serde_json::to_value(&v).unwrap_or_default());
    } else {
        println!("forgot phone {} at {}", v.app_key, v.forgotten_at);
    }
    Ok(())
}
