//! `sunstorm`: the desktop companion — demo, pair, sign, simulators, BLE.
//!
//! Exit codes: 0 success, 2 input rejected (a bad link, code, return URL…), 1 any other
//! failure (octane unreachable, appliance missing…). Errors are one line, never a backtrace.

mod ble;
mod cmd_appliance;
mod cmd_decode;
mod cmd_demo;
mod cmd_links;
mod cmd_metadata;
mod cmd_phone;
mod cmd_sim;
mod cmd_sim_appliance;
mod cmd_sim_control;
mod cmd_sim_octane;
mod cmd_sim_push_gateway;
mod cmd_sp;
mod output;
mod phone_home;
mod qr;
mod radio;

use clap::{Parser, Subcommand};

/// Sunstorm: pair a Sigil appliance with a service provider and sign, from a terminal.
#[derive(Parser, Debug)]
#[command(name = "sunstorm", version, about)]
struct Cli {
    /// Log filter (e.g. `info`, `sunstorm_core=debug`); logs go to stderr.
    #[arg(long, global = true, env = "SUNSTORM_LOG", default_value = "warn")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The whole story on embedded simulators: bond, pair, sign (three verified signatures), revoke.
    Demo(cmd_demo::DemoArgs),
    /// Check a pair link as the phone would: exit 0 with the intent, 2 with the reason.
    Link(cmd_links::LinkArgs),
    /// May this return URL be opened after approval? Exit 0 if so, 2 with the reason.
    ReturnUrl(cmd_links::ReturnUrlArgs),
    /// Normalise a typed validation code: exit 0 with six digits, 2 with the reason.
    Code(cmd_links::CodeArgs),
    /// Show a payload as the phone's review screen would, offline: exit 0 with the rows,
    /// warnings and facts, 2 with the reason it is refused.
    Decode(cmd_decode::DecodeArgs),
    /// Pair with a service provider as the phone: open the link, check the code, choose
    /// wallets, get the appliance's approval.
    Pair(cmd_phone::PairArgs),
    /// The phone's side of signing.
    #[command(subcommand)]
    Sign(cmd_phone::SignCommand),
    /// List this phone's pairs.
    Pairs(cmd_phone::PairsArgs),
    /// Revoke a pair from the phone (the appliance signs the revocation).
    Revoke(cmd_phone::RevokeArgs),
    /// Bluetooth LE on this computer: find appliances.
    #[command(subcommand)]
    Ble(ble::BleCommand),
    /// Run a simulator as its own process (octane, appliance).
    #[command(subcommand)]
    Sim(cmd_sim::SimCmd),
    /// Act as a service provider against octane.
    #[command(subcommand)]
    Sp(cmd_sp::SpCmd),
    /// Act as the phone towards an appliance (simulator): bond, info, wallets.
    #[command(subcommand)]
    Appliance(cmd_appliance::ApplianceCmd),
    /// Build or verify the signed metadata bundle (ERC-7730 descriptors, tokens, names).
    #[command(subcommand)]
    Metadata(cmd_metadata::MetadataCmd),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    output::init_logging(&cli.log);
    let result: Result<(), output::CliError> = match cli.command {
        Command::Demo(a) => cmd_demo::demo(a),
        Command::Link(a) => cmd_links::link(a),
        Command::ReturnUrl(a) => cmd_links::return_url(a),
        Command::Code(a) => cmd_links::code(a),
        Command::Decode(a) => cmd_decode::run(a),
        Command::Pair(a) => cmd_phone::pair(a),
        Command::Sign(c) => cmd_phone::sign(c),
        Command::Pairs(a) => cmd_phone::pairs(a),
        Command::Revoke(a) => cmd_phone::revoke(a),
        Command::Ble(cmd) => ble::run(cmd),
        Command::Sim(cmd) => cmd_sim::run(cmd),
        Command::Sp(cmd) => cmd_sp::run(cmd),
        Command::Appliance(cmd) => cmd_appliance::run(cmd),
        Command::Metadata(cmd) => cmd_metadata::run(cmd),
    };
    output::finish(result)
}
