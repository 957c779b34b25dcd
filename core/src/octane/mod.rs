//! Octane, the cloud co-signer, as the core sees it: the HTTP wire types shared with the
//! octane simulator ([`api`]), the app-request authentication both ends use ([`app_auth`]),
//! the client ([`client`]), the metadata bundle download ([`metadata`]) and the HTTP
//! transport they send through ([`transport`]).

pub mod api;
pub mod app_auth;
pub mod client;
pub mod metadata;
pub mod transport;
