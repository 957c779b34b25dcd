//! How octane's HTTPS requests leave the phone: an [`HttpTransport`] the client is given.
//!
//! Mobile shells hand in the platform's own HTTP stack (URLSession, OkHttp /
//! `HttpURLConnection`) through the FFI, so the mobile library carries no TLS stack of its
//! own and follows the system's proxy, VPN, certificate and data-saver settings (ADR 0006).
//! Desktop tools, simulators and tests use [`ReqwestTransport`] (feature `reqwest`, on by
//! default; the FFI crate turns it off).
//!
//! A transport only moves bytes: status mapping, retries, request signing, response limits
//! and octane's signatures are the client's job ([`super::client`]), the same whichever
//! transport is used.

use std::time::Duration;

use url::Url;

/// The HTTP methods octane's app API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// `GET`.
    Get,
    /// `POST` (always with a JSON body).
    Post,
}

impl HttpMethod {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

/// One request to octane, fully formed (signed headers included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: HttpMethod,
    /// The absolute URL (HTTPS; plain HTTP only on loopback, checked by the client).
    pub url: Url,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body (empty for `GET`).
    pub body: Vec<u8>,
    /// Longest wait for the whole exchange; the transport must give up after it.
    pub timeout: Duration,
}

/// Largest response body read from octane (bytes); a longer answer is refused (by the
/// transport while reading, and by the client as a protocol error).
pub const MAX_RESPONSE_LEN: usize = 4 * 1024 * 1024;

/// Octane's answer: status and body (no response header is needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body, at most [`MAX_RESPONSE_LEN`] bytes (longer is refused).
    pub body: Vec<u8>,
}

/// Why a request did not get an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No connection (offline, DNS, refused, TLS failure).
    #[error("octane is unreachable: {0}")]
    Offline(String),
    /// No complete answer within the request's timeout.
    #[error("no answer in time")]
    Timeout,
    /// The answer was cut off or malformed at the HTTP level, or too large.
    #[error("broken answer: {0}")]
    Protocol(String),
}

/// Sends one request and returns the answer. Implementations must honour
/// [`HttpRequest::timeout`], must not follow redirects, and must verify TLS certificates
/// the platform's way. They may be called concurrently.
#[async_trait::async_trait]
pub trait HttpTransport: Send + Sync + std::fmt::Debug {
    /// Performs `request`.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

#[cfg(feature = "reqwest")]
pub use reqwest_transport::ReqwestTransport;

#[cfg(feature = "reqwest")]
mod reqwest_transport {
    use super::{HttpMethod, HttpRequest, HttpResponse, HttpTransport, TransportError, MAX_RESPONSE_LEN};
    use std::time::Duration;

    /// [`HttpTransport`] over reqwest with rustls (desktop tools, simulators, tests).
    #[derive(Debug, Clone)]
    pub struct ReqwestTransport {
        http: reqwest::Client,
    }

    impl ReqwestTransport {
        /// A transport that gives up connecting after `connect_timeout`; `https_only`
        /// refuses plain HTTP (the client allows it only for loopback URLs).
        pub fn new(connect_timeout: Duration, https_only: bool) -> Result<Self, TransportError> {
            let http = reqwest::Client::builder()
                .use_rustls_tls()
                .https_only(https_only)
                .connect_timeout(connect_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| TransportError::Protocol(root_cause(&e)))?;
            Ok(Self { http })
        }
    }

    fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
        let mut cur: &(dyn std::error::Error + 'static) = e;
        while let Some(next) = cur.source() {
            cur = next;
        }
        cur.to_string()
    }

    fn map_error(e: &reqwest::Error) -> TransportError {
        if e.is_timeout() {
            TransportError::Timeout
        } else if e.is_decode() || e.is_body() {
            TransportError::Protocol(root_cause(e))
        } else {
            TransportError::Offline(root_cause(e))
        }
    }

    #[async_trait::async_trait]
    impl HttpTransport for ReqwestTransport {
        async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
            let method = match request.method {
                HttpMethod::Get => reqwest::Method::GET,
                HttpMethod::Post => reqwest::Method::POST,
            };
            let mut req = self.http.request(method, request.url).timeout(request.timeout);
            for (name, value) in &request.headers {
                req = req.header(name.as_str(), value.as_str());
            }
            if request.method == HttpMethod::Post {
                req = req.body(request.body);
            }
            let mut resp = req.send().await.map_err(|e| map_error(&e))?;
            let status = resp.status().as_u16();
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len().saturating_add(chunk.len()) > MAX_RESPONSE_LEN {
                            return Err(TransportError::Protocol("answer too large".into()));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => return Ok(HttpResponse { status, body }),
                    Err(e) => return Err(map_error(&e)),
                }
            }
        }
    }
}
