//! `sunstorm sim …`: run the simulators as their own processes.

use clap::Subcommand;

use crate::output::CliError;

/// Which simulator to run.
#[derive(Subcommand, Debug)]
pub enum SimCmd {
    /// Run the octane simulator (SP API + app API over HTTP) until Ctrl-C.
    Octane(crate::cmd_sim_octane::OctaneArgs),
    /// Run the appliance simulator on a Unix socket (GATT-like PDUs) until Ctrl-C.
    Appliance(crate::cmd_sim_appliance::SimApplianceArgs),
}

/// Runs a `sim` subcommand.
pub fn run(cmd: SimCmd) -> Result<(), CliError> {
    match cmd {
        SimCmd::Octane(args) => crate::cmd_sim_octane::run(args),
        SimCmd::Appliance(args) => crate::cmd_sim_appliance::run(args),
    }
}
