//! Sunstorm simulators: the appliance simulator and the octane simulator.

pub mod octane;
pub mod sp;
pub mod link;
pub mod samples;
