//! Downloading the signed metadata bundle octane serves ([`paths::METADATA_BUNDLE`]): one
//! unauthenticated, conditional `GET` through the same [`HttpTransport`] as the rest of
//! octane's calls, with a timeout. The bytes are not trusted here: the caller verifies them
//! under the pinned metadata key ([`crate::metadata`]).

use std::time::Duration;

use url::Url;

use super::api::paths;
use super::client::{check_base_url, map_status, transport_error, OctaneError, TRANSPORT_GRACE};
use super::transport::{HttpMethod, HttpRequest, HttpTransport, MAX_RESPONSE_LEN};

/// What octane answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleFetch {
    /// 304: the bundle named by `If-None-Match` is still the one octane serves.
    NotModified,
    /// 200: a bundle file (not verified yet).
    Bundle(Vec<u8>),
}

/// Fetches the bundle from octane at `base_url`, conditionally on `etag` (the entity tag
/// of the bundle in use, [`crate::store::bundle_etag`]), giving up after `timeout`.
#[tracing::instrument(skip_all)]
pub async fn fetch_bundle(
    http: &dyn HttpTransport,
    base_url: &Url,
    etag: Option<&str>,
    timeout: Duration,
) -> Result<BundleFetch, OctaneError> {
    check_base_url(base_url)?;
    let url = base_url.join(paths::METADATA_BUNDLE).map_err(|e| OctaneError::Config(e.to_string()))?;
    let mut headers = vec![("accept".to_string(), "application/cbor".to_string())];
    if let Some(tag) = etag {
        headers.push(("if-none-match".to_string(), tag.to_string()));
    }
    let request = HttpRequest { method: HttpMethod::Get, url, headers, body: Vec::new(), timeout };
    let resp = tokio::time::timeout(timeout.saturating_add(TRANSPORT_GRACE), http.send(request))
        .await
        .map_err(|_| OctaneError::Timeout)?
        .map_err(transport_error)?;
    match resp.status {
        304 => {
            tracing::info!("octane: metadata bundle not modified");
            Ok(BundleFetch::NotModified)
        }
        200 if resp.body.len() > MAX_RESPONSE_LEN => Err(OctaneError::Protocol("answer too large".into())),
        200 => {
            tracing::info!(bytes = resp.body.len(), "octane: metadata bundle received");
            Ok(BundleFetch::Bundle(resp.body))
        }
        status => Err(map_status(status, &resp.body)),
    }
}
