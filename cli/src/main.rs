//! `sunstorm`: the desktop companion — demo, pair, sign, simulators, BLE.
//!
//! Exit codes: 0 success, 2 input rejected (a bad link, code, return URL…), 1 any other
//! failure (octane unreachable, appliance missing…). Errors are one line, never a backtrace.

mod cmd_appliance;
mod cmd_links;
mod cmd_sim;
mod cmd_sim_octane;
mod cmd_sp;
mod cmd_sim_appliance;
mod output;

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
    /// Check a pair link as the phone would: exit 0 with the intent, 2 with the reason.
    Link(cmd_links::LinkArgs),
    /// May this return URL be opened after approval? Exit 0 if so, 2 with the reason.
    ReturnUrl(cmd_links::ReturnUrlArgs),
    /// Normalise a typed validation code: exit 0 with six digits, 2 with the reason.
    Code(cmd_links::CodeArgs),
    /// Act as a service provider against octane.
    #[command(subcommand)]
    Sp(cmd_sp::SpCmd),
    /// Run a simulator as its own process.
    #[command(subcommand)]
    Sim(cmd_sim::SimCmd),
    /// Act as the phone towards an appliance (simulator): bond, info, wallets.
    #[command(subcommand)]
    Appliance(cmd_appliance::ApplianceCmd),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    output::init_logging(&cli.log);
    let result: Result<(), output::CliError> = match cli.command {
        Command::Link(a) => cmd_links::link(a),
        Command::ReturnUrl(a) => cmd_links::return_url(a),
        Command::Code(a) => cmd_links::code(a),
        Command::Sim(cmd) => cmd_sim::run(cmd),
        Command::Sp(cmd) => cmd_sp::run(cmd),
        Command::Appliance(cmd) => cmd_appliance::run(cmd),
    };
    output::finish(result)
}
