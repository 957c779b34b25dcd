//! Octane's HTTPS through the platform: the [`HttpClient`] foreign trait (URLSession on
//! iOS, `HttpURLConnection` or the app's OkHttp on Android) and its adapter to the core's
//! [`HttpTransport`]. The mobile library has no TLS stack of its own (ADR 0006): the
//! platform's stack brings certificate checks, proxies, VPNs and data-saver rules the
//! user already configured.

use std::sync::Arc;

use sunstorm_core::octane::transport::{
    HttpMethod as CoreMethod, HttpRequest as CoreRequest, HttpResponse as CoreResponse, HttpTransport, TransportError,
};

use crate::error::HttpError;

/// An HTTP method octane's app API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST`, always with a JSON body.
    Post,
}

/// One request header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpHeader {
    /// Header name (lower case).
    pub name: String,
    /// Header value (visible ASCII; it carries request signatures, not secrets).
    pub value: String,
}

/// One request to octane, fully formed by the core (signed headers included).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpRequest {
    /// The method.
    pub method: HttpMethod,
    /// The absolute URL (HTTPS; `http://127.0.0.1…` only against a local simulator).
    pub url: String,
    /// Headers to send, in order.
    pub headers: Vec<HttpHeader>,
    /// The body (empty for `GET`).
    pub body: Vec<u8>,
    /// Longest wait for the whole exchange, connection included (milliseconds, > 0).
    pub timeout_ms: i32,
}

/// The answer: status and body. Non-2xx statuses are answers too, not errors.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HttpResponse {
    /// The HTTP status code (100..=599; anything else is refused as a malformed answer).
    pub status: i32,
    /// The response body.
    pub body: Vec<u8>,
}

/// The platform's HTTP client, used for every call to octane.
///
/// Contract: perform the request with the platform's TLS validation, **do not follow
/// redirects**, give up after `timeout_ms`, and return any status (4xx/5xx included) as an
/// [`HttpResponse`]. Fail with [`HttpError::Offline`] when there is no connection
/// (offline, DNS, refused, TLS failure) and [`HttpError::Timeout`] on timeout. Called
/// from the core's worker threads (never the main thread), possibly concurrently; block
/// until done.
#[uniffi::export(with_foreign)]
pub trait HttpClient: Send + Sync {
    /// Performs `request`.
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

/// The core's [`HttpTransport`] over the platform's [`HttpClient`]: each request runs on a
/// blocking worker thread so a slow platform call never stalls the core's runtime.
pub(crate) struct ForeignHttp {
    inner: Arc<dyn HttpClient>,
}

impl ForeignHttp {
    /// Wraps the platform's client.
    pub(crate) fn new(inner: Arc<dyn HttpClient>) -> Self {
        Self { inner }
    }
}

impl std::fmt::Debug for ForeignHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ForeignHttp")
    }
}

fn to_foreign(req: CoreRequest) -> HttpRequest {
    let timeout_ms = i32::try_from(req.timeout.as_millis()).unwrap_or(i32::MAX).max(1);
    HttpRequest {
        method: match req.method {
            CoreMethod::Get => HttpMethod::Get,
            CoreMethod::Post => HttpMethod::Post,
        },
        url: req.url.to_string(),
        headers: req.headers.into_iter().map(|(name, value)| HttpHeader { name, value }).collect(),
        body: req.body,
        timeout_ms,
    }
}

impl From<HttpError> for TransportError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Offline { reason } => TransportError::Offline(reason),
            HttpError::Timeout => TransportError::Timeout,
            HttpError::Failed { reason } => TransportError::Protocol(reason),
        }
    }
}

#[async_trait::async_trait]
impl HttpTransport for ForeignHttp {
    async fn send(&self, request: CoreRequest) -> Result<CoreResponse, TransportError> {
        let path = request.url.path().to_string();
        let method = request.method.as_str();
        let inner = self.inner.clone();
        let foreign = to_foreign(request);
        let started = std::time::Instant::now();
        // The foreign call blocks; the octane client bounds the wait even if the platform
        // ignores `timeout_ms` (the thread then finishes on its own).
        let answer = crate::blocking::on_blocking_pool(move || inner.send(foreign))
            .await
            .map_err(|e| TransportError::Protocol(format!("the platform HTTP client failed: {e}")))?;
        let elapsed = started.elapsed();
        match answer {
            Ok(r) => {
                let Some(status) = u16::try_from(r.status).ok().filter(|s| (100..=599).contains(s)) else {
                    tracing::warn!(target: "sunstorm_ffi::http", method, %path, status = r.status,
                        "the platform HTTP client returned an impossible status");
                    return Err(TransportError::Protocol(format!("impossible HTTP status {}", r.status)));
                };
                tracing::debug!(target: "sunstorm_ffi::http", method, %path, status,
                    ms = elapsed.as_millis() as u64, "octane answered");
                Ok(CoreResponse { status, body: r.body })
            }
            Err(e) => {
                tracing::info!(target: "sunstorm_ffi::http", method, %path, error = %e,
                    ms = elapsed.as_millis() as u64, "octane request failed");
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[derive(Debug)]
    struct Echo;
    impl HttpClient for Echo {
        fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
            if request.url.contains("offline") {
                return Err(HttpError::Offline { reason: "airplane mode".into() });
            }
            if let Some(status) = request.url.strip_prefix("https://status.example/") {
                return Ok(HttpResponse { status: status.parse().unwrap(), body: vec![] });
            }
            let mut body = format!("{:?} {} {}", request.method, request.url, request.timeout_ms).into_bytes();
            for h in request.headers {
                body.extend_from_slice(format!(" {}={}", h.name, h.value).as_bytes());
            }
            Ok(HttpResponse { status: 201, body })
        }
    }

    fn req(url: &str) -> CoreRequest {
        CoreRequest {
            method: CoreMethod::Post,
            url: url::Url::parse(url).unwrap(),
            headers: vec![("x-a".into(), "1".into())],
            body: b"{}".to_vec(),
            timeout: Duration::from_millis(1500),
        }
    }

    #[tokio::test]
    async fn requests_reach_the_platform_client_whole_and_answers_come_back() {
        let http = ForeignHttp::new(Arc::new(Echo));
        let r = http.send(req("https://octane.example/v1/x")).await.unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(String::from_utf8(r.body).unwrap(), "Post https://octane.example/v1/x 1500 x-a=1");
    }

    #[tokio::test]
    async fn an_impossible_status_from_the_platform_is_a_protocol_error() {
        let http = ForeignHttp::new(Arc::new(Echo));
        assert_eq!(http.send(req("https://status.example/404")).await.unwrap().status, 404);
        for bad in ["-1", "0", "99", "600", "70000"] {
            let e = http.send(req(&format!("https://status.example/{bad}"))).await.unwrap_err();
            assert!(matches!(e, TransportError::Protocol(ref m) if m.contains(bad)), "{bad}: {e:?}");
        }
    }

    #[tokio::test]
    async fn platform_failures_become_transport_errors() {
        let http = ForeignHttp::new(Arc::new(Echo));
        let e = http.send(req("https://offline.example/")).await.unwrap_err();
        assert_eq!(e, TransportError::Offline("airplane mode".into()));
    }
}
