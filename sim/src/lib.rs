//! Sunstorm simulators: the appliance simulator, the octane simulator, the simulated GATT
//! link, the SP's client and sample payloads.
pub mod appliance;
pub mod link;
pub mod octane;
pub mod samples;
pub mod sp;

#[cfg(test)]
mod validity_agreement;
