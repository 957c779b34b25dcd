//! Sunstorm simulators: the appliance simulator and the octane simulator.
pub mod appliance;
pub mod link;

pub mod octane;
pub mod sp;
