//! Sunstorm core: everything the Sunstorm phone app does that is not pixels or radio drivers.
//!
//! See `docs/architecture.md` for the layer diagram. Modules are named for what they are:
//! links and codes a user receives, the appliance link (framing, channel, protocol), the
//! octane client, the pair and sign flows, decoding for display, guardrails, and the store.

pub mod caip;
pub mod cbor;
pub mod clock;
pub mod envelope;
pub mod bytes;
pub mod model;
pub mod ble;
pub mod appliance;
pub mod secrets;
pub mod octane;
pub mod code;
pub mod link;
pub mod return_url;
pub mod wallets;
pub mod store;
pub mod pair;
pub mod sign;
pub mod sunstorm;

pub use sunstorm::Sunstorm;
pub mod payload;
pub mod decode;
pub mod display;
pub mod guardrails;
pub mod validity;
pub mod metadata;
