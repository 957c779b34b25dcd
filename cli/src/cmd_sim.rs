//! `sunstorm sim …`: run the simulators as their own processes.

use clap::Subcommand;

use crate::output::CliError;

/// Which simulator to run.
#[derive(Subcommand, Debug)]
pub enum SimCmd {
    /// Run the appliance simulator on a Unix socket (GATT-like PDUs) until Ctrl-C.
    Appliance(crate::cmd_sim_appliance::SimApplianceArgs),
}

/// Runs a `sim` subcommand.
pub fn run(cmd: SimCmd) -> Result<(), CliError> {
    match cmd {
        SimCmd::Appliance(args) => crate::cmd_sim_appliance::run(args),
    }
}
