//! Sunstorm simulators: the appliance simulator and the octane simulator.
pub mod link;

pub mod octane;
pub mod sp;
