//! Octane, the cloud co-signer, as the core sees it: the HTTP wire types and app-request
//! authentication shared with the octane simulator ([`api`]).

pub mod api;
pub mod client;
