//! Sunstorm simulators: the appliance simulator, the octane simulator, the simulated GATT
//! link, the SP's client, sample payloads, and the [`world::World`] that puts them together.
pub mod appliance;
mod http_server;
pub mod link;
pub mod octane;
pub mod push_gateway;
pub mod samples;
pub mod sp;
pub mod world;

#[cfg(test)]
mod validity_agreement;
