//! The appliance link, layer by layer: [`transport`] (one GATT link, any backend),
//! `framing` (messages over PDUs at any MTU), `channel` (bonding and Noise KK) and
//! [`bond_policy`] (when the appliance accepts bonding attempts).
//! See `docs/ble-protocol.md`.

pub mod bond_policy;
pub mod channel;
pub mod framing;
pub mod transport;
