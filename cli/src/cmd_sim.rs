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
    /// Run the push gateway simulator (APNs and FCM HTTP v1 request shapes, recorded
    /// deliveries, injected failures) until Ctrl-C.
    PushGateway(crate::cmd_sim_push_gateway::PushGatewayArgs),
    /// Drive a running appliance simulator from its own side (its control API): list and
    /// forget phones.
    #[command(subcommand)]
    Control(crate::cmd_sim_control::ControlCmd),
}

/// Runs a `sim` subcommand.
pub fn run(cmd: SimCmd) -> Result<(), CliError> {
    match cmd {
        SimCmd::Octane(args) => crate::cmd_sim_octane::run(args),
        SimCmd::Appliance(args) => crate::cmd_sim_appliance::run(args),
        SimCmd::PushGateway(args) => crate::cmd_sim_push_gateway::run(args),
        SimCmd::Control(cmd) => crate::cmd_sim_control::run(cmd),
    }
}
