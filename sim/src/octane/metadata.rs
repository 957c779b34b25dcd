//! The signed metadata bundle octane serves to phones (`GET /metadata/bundle`): the file as
//! the bundle tool wrote it, with its version (read, not verified: phones verify) and an
//! entity tag, its SHA-256 in quotes, so a phone asking with `If-None-Match` gets 304.

use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sunstorm_core::metadata::{BundleBody, SignedBundle};
use sunstorm_core::store::bundle_etag;

/// Response header carrying the served bundle's content version (when it decodes).
pub const VERSION_HEADER: &str = "sunstorm-metadata-version";

/// A bundle being served.
#[derive(Debug, Clone)]
pub(crate) struct ServedBundle {
    bytes: Bytes,
    etag: String,
    version: Option<u64>,
}

impl ServedBundle {
    /// Serves `bytes` as they are (a test may serve a tampered or unsigned file).
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        let etag = bundle_etag(&hex::encode(Sha256::digest(&bytes)));
        let version = sunstorm_core::cbor::from_slice::<SignedBundle>(&bytes)
            .ok()
            .and_then(|s| sunstorm_core::cbor::from_slice::<BundleBody>(&s.body).ok())
            .map(|b| b.version);
        ServedBundle { bytes: Bytes::from(bytes), etag, version }
    }
}

/// The bundle slot, replaced while running by [`super::OctaneSimHandle::serve_metadata`].
pub(crate) type Slot = Arc<RwLock<Option<ServedBundle>>>;

/// Whether `If-None-Match` names `etag` (or is `*`).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}

/// The answer to `GET /metadata/bundle`: `None` when no bundle is served (the caller
/// answers 404 `not_found`).
pub(crate) fn answer(slot: &Slot, headers: &HeaderMap) -> Option<Response> {
    let served = slot.read().ok()?.clone()?;
    let etag = HeaderValue::from_str(&served.etag).ok()?;
    if matches(headers, &served.etag) {
        return Some((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/cbor")), (header::ETAG, etag)],
        served.bytes,
    )
        .into_response();
    if let Some(v) = served.version {
        resp.headers_mut().insert(VERSION_HEADER, HeaderValue::from(v));
    }
    Some(resp)
}
