//! `sunstorm sim …`: run the simulators as their own processes.

use clap::Subcommand;

use crate::output::CliError;

/// Which simulator to run.
#[derive(Subcommand, Debug)]
pub enum SimCmd {
    /// Run the octane simulator (SP API + app API over HTTP) until Ctrl-C.
    Octane(crate::cmd_sim_octane::OctaneArgs),
}

/// Runs a `sim` subcommand.
pub fn run(cmd: SimCmd) -> Result<(), CliError> {
    match cmd {
        SimCmd::Octane(args) => crate::cmd_sim_octane::run(args),
    }
}
