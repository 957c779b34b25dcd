//! The appliance link, layer by layer: [`transport`] (one GATT link, any backend),
//! `framing` (messages over PDUs at any MTU) and `channel` (bonding and Noise KK).
//! See `docs/ble-protocol.md`.

pub mod channel;
pub mod framing;
pub mod transport;
