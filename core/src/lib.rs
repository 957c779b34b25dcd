//! Sunstorm core: everything the Sunstorm phone app does that is not pixels or radio drivers.
//!
//! See `docs/architecture.md` for the layer diagram. Modules are named for what they are:
//! links and codes a user receives, the appliance link (framing, channel, protocol), the
//! octane client, the pair and sign flows, decoding for display, guardrails, and the store.

pub mod address_book;
pub mod appliance;
pub mod approval;
pub mod audit;
pub mod ble;
pub mod bytes;
pub mod caip;
pub mod cbor;
pub mod clock;
pub mod code;
pub mod envelope;
pub mod link;
pub mod model;
pub mod octane;
pub mod pair;
pub mod ports;
pub mod receipt;
pub mod return_url;
pub mod secrets;
pub mod sign;
pub mod store;
pub mod sunstorm;
pub mod wallets;

pub use sunstorm::Sunstorm;
pub mod decode;
pub mod display;
pub mod guardrails;
pub mod metadata;
pub mod payload;
pub mod push;
pub mod risk;
pub mod validity;

#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod fakes;
