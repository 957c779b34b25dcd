//! Octane, the cloud co-signer, as the core sees it: the HTTP wire types and app-request
//! authentication shared with the octane simulator ([`api`]), the client ([`client`]) and
//! the HTTP transport it sends through ([`transport`]).

pub mod api;
pub mod client;
pub mod transport;
