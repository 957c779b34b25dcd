//! May this `return_url` be opened after a pair approval (single-device flow)?
//!
//! Only when the text is its own canonical WHATWG serialisation, https, without userinfo,
//! explicit port, fragment or trailing dot, at most 2048 bytes, and its origin
//! (`https://host`) is exactly — byte for byte, no wildcards, no prefix or suffix matching —
//! one of the service provider's registered allowed origins (RFC 9700 §2.1 and §4.1.3:
//! redirect URIs are compared by exact string matching). See `docs/links.md`.

use url::Url;

use crate::link::{first_bad_char, truncate, BadChar};

/// Longest return URL accepted, in bytes.
pub const MAX_RETURN_URL_LEN: usize = 2048;

/// Why a return URL may not be opened. One variant per rejection; see
/// [`ReturnUrlError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReturnUrlError {
    /// Nothing was given.
    #[error("the return address is empty")]
    Empty,
    /// Longer than [`MAX_RETURN_URL_LEN`] bytes.
    #[error("the return address is too long ({len} bytes, at most 2048)")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// A control character (NUL, CR, LF, TAB…).
    #[error("the return address contains a control character at byte {at}")]
    ControlCharacter {
        /// Byte offset.
        at: usize,
    },
    /// A space or other whitespace.
    #[error("the return address contains whitespace at byte {at}")]
    Whitespace {
        /// Byte offset.
        at: usize,
    },
    /// A bidirectional override/isolate character.
    #[error("the return address contains a text-direction control character at byte {at}")]
    BidiControl {
        /// Byte offset.
        at: usize,
    },
    /// A non-ASCII character (internationalised hosts must be given in punycode form).
    #[error("the return address contains a non-ASCII character at byte {at}")]
    NonAscii {
        /// Byte offset.
        at: usize,
    },
    /// Not a URL.
    #[error("the return address is not a web address")]
    Malformed,
    /// `http:`.
    #[error("the return address is not secure (http instead of https)")]
    NotHttps,
    /// `javascript:`, `data:`, `intent:`, `file:`, a custom app scheme…
    #[error("return addresses with the `{scheme}:` scheme are never opened")]
    UnsupportedScheme {
        /// The scheme, lower-case.
        scheme: String,
    },
    /// The text differs from its canonical form.
    #[error("the return address is not in its exact standard form")]
    NotCanonical,
    /// A `user:password@` part.
    #[error("the return address contains a user name or password")]
    Userinfo,
    /// An explicit port.
    #[error("the return address names a port ({port})")]
    Port {
        /// The port.
        port: u16,
    },
    /// The host ends with a dot.
    #[error("the return address's host ends with a dot")]
    TrailingDot,
    /// A `#fragment`.
    #[error("the return address has a #fragment")]
    Fragment,
    /// The origin is not one the service provider registered.
    #[error("the return address {origin} is not one this service registered")]
    OriginNotAllowed {
        /// The URL's origin (`https://host`).
        origin: String,
    },
}

impl ReturnUrlError {
    /// A stable snake_case identifier for this rejection (JSON `error.code`, UI strings).
    pub fn code(&self) -> &'static str {
        match self {
            ReturnUrlError::Empty => "empty",
            ReturnUrlError::TooLong { .. } => "too_long",
            ReturnUrlError::ControlCharacter { .. } => "control_character",
            ReturnUrlError::Whitespace { .. } => "whitespace",
            ReturnUrlError::BidiControl { .. } => "bidi_control",
            ReturnUrlError::NonAscii { .. } => "non_ascii",
            ReturnUrlError::Malformed => "malformed",
            ReturnUrlError::NotHttps => "not_https",
            ReturnUrlError::UnsupportedScheme { .. } => "unsupported_scheme",
            ReturnUrlError::NotCanonical => "not_canonical",
            ReturnUrlError::Userinfo => "userinfo",
            ReturnUrlError::Port { .. } => "port",
            ReturnUrlError::TrailingDot => "trailing_dot",
            ReturnUrlError::Fragment => "fragment",
            ReturnUrlError::OriginNotAllowed { .. } => "origin_not_allowed",
        }
    }
}

/// Checks `text` against the service provider's `allowed_origins` (each exactly
/// `https://host`, as registered) and returns the URL to open.
pub fn check_return_url(text: &str, allowed_origins: &[String]) -> Result<Url, ReturnUrlError> {
    let result = check_inner(text, allowed_origins);
    if let Err(e) = &result {
        tracing::info!(reason = e.code(), "return_url refused");
    }
    result
}

fn check_inner(text: &str, allowed_origins: &[String]) -> Result<Url, ReturnUrlError> {
    if text.is_empty() {
        return Err(ReturnUrlError::Empty);
    }
    if text.len() > MAX_RETURN_URL_LEN {
        return Err(ReturnUrlError::TooLong { len: text.len() });
    }
    if let Some((at, kind)) = first_bad_char(text) {
        return Err(match kind {
            BadChar::Control => ReturnUrlError::ControlCharacter { at },
            BadChar::Whitespace => ReturnUrlError::Whitespace { at },
            BadChar::Bidi => ReturnUrlError::BidiControl { at },
            BadChar::NonAscii => ReturnUrlError::NonAscii { at },
        });
    }
    let url = Url::parse(text).map_err(|_| ReturnUrlError::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" => return Err(ReturnUrlError::NotHttps),
        other => return Err(ReturnUrlError::UnsupportedScheme { scheme: truncate(other, 32) }),
    }
    if url.as_str() != text {
        return Err(ReturnUrlError::NotCanonical);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ReturnUrlError::Userinfo);
    }
    if let Some(port) = url.port() {
        return Err(ReturnUrlError::Port { port });
    }
    if url.host_str().is_some_and(|h| h.ends_with('.')) {
        return Err(ReturnUrlError::TrailingDot);
    }
    if url.fragment().is_some() {
        return Err(ReturnUrlError::Fragment);
    }
    let origin = url.origin().ascii_serialization();
    if !allowed_origins.contains(&origin) {
        return Err(ReturnUrlError::OriginNotAllowed { origin: truncate(&origin, 300) });
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_origin_is_accepted() {
        let allowed = vec!["https://shop.example".to_string()];
        let u = check_return_url("https://shop.example/done?x=1", &allowed).unwrap();
        assert_eq!(u.as_str(), "https://shop.example/done?x=1");
        assert!(matches!(
            check_return_url("https://evil.shop.example/", &allowed),
            Err(ReturnUrlError::OriginNotAllowed { .. })
        ));
    }
}
