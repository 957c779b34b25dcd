//! Pair links: the text a phone receives (a tapped Universal Link / App Link, or a scanned QR
//! code) turned into a typed [`PairIntent`] or one specific [`PairLinkError`].
//!
//! The only accepted form is `https://<host>/pair?session=<id>[&v=<code>]` (parameters in
//! either order) where `<host>` is exactly one of [`LinkConfig::accepted_hosts`]. The first
//! rule after the character checks is that the text must equal its own canonical (WHATWG,
//! `url` crate) serialisation: that alone rejects backslashes, tabs and newlines, surrounding
//! spaces, upper-case hosts, default ports, dot segments and percent-encoding games, because
//! every one of them is rewritten by a browser-grade parser. See `docs/links.md`.

use std::fmt;

use url::Url;

use crate::code::ValidationCode;

/// Longest link accepted, in bytes.
pub const MAX_LINK_LEN: usize = 2048;

/// The host pair links are served from unless configured otherwise.
pub const DEFAULT_HOST: &str = "sigilvault.xyz";

/// The only path a pair link may have.
pub const PAIR_PATH: &str = "/pair";

/// Which hosts pair links may come from. Set by the app, never taken from a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkConfig {
    /// Exact host names (lower-case ASCII, no port, no trailing dot).
    pub accepted_hosts: Vec<String>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig { accepted_hosts: vec![DEFAULT_HOST.to_string()] }
    }
}

/// What a valid pair link asks for: open this pair session, with the code if it was in the
/// link (single-device flow) or without (the user types it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairIntent {
    /// The octane pair session id (`[A-Za-z0-9_-]{22,64}`).
    pub session_id: String,
    /// The validation code, when the link carried one.
    pub code: Option<ValidationCode>,
}

impl PairIntent {
    /// The canonical link for this intent on `host` (which [`parse_link`] accepts back).
    pub fn render(&self, host: &str) -> String {
        match &self.code {
            Some(code) => {
                format!("https://{host}{PAIR_PATH}?session={}&v={}", self.session_id, code.as_str())
            }
            None => format!("https://{host}{PAIR_PATH}?session={}", self.session_id),
        }
    }
}

/// What kind of character made text unacceptable before any URL parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadChar {
    /// A control character (NUL, CR, LF, TAB, DEL, C1 controls).
    Control,
    /// A space or other whitespace.
    Whitespace,
    /// A Unicode bidirectional control (U+202A–U+202E, U+2066–U+2069, U+200E/F, U+061C).
    Bidi,
    /// Any other non-ASCII character (lookalike letters, zero-width spaces, emoji…).
    NonAscii,
}

/// Why a pair link was refused. One variant per rejection; see [`PairLinkError::code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairLinkError {
    /// Nothing was received.
    #[error("the link is empty")]
    Empty,
    /// Longer than [`MAX_LINK_LEN`] bytes.
    #[error("the link is too long ({len} bytes, at most 2048)")]
    TooLong {
        /// Length in bytes.
        len: usize,
    },
    /// A control character (NUL, CR, LF, TAB…) — text that hides part of itself.
    #[error("the link contains a control character at byte {at}")]
    ControlCharacter {
        /// Byte offset.
        at: usize,
    },
    /// A space or other whitespace anywhere in the link.
    #[error("the link contains whitespace at byte {at}")]
    Whitespace {
        /// Byte offset.
        at: usize,
    },
    /// A bidirectional override/isolate character that can make a link look like another.
    #[error("the link contains a text-direction control character at byte {at}")]
    BidiControl {
        /// Byte offset.
        at: usize,
    },
    /// A non-ASCII character (lookalike letters from other scripts, invisible characters…).
    #[error("the link contains a non-ASCII character at byte {at}")]
    NonAscii {
        /// Byte offset.
        at: usize,
    },
    /// Not a URL at all.
    #[error("this is not a web link")]
    Malformed,
    /// `http:` — pair links must be HTTPS.
    #[error("the link is not secure (http instead of https)")]
    NotHttps,
    /// Any scheme other than https/http: a custom app scheme, `javascript:`, `data:`,
    /// `intent:`, `file:`… (any Android app can claim a custom scheme).
    #[error("links with the `{scheme}:` scheme are not accepted; only https links")]
    UnsupportedScheme {
        /// The scheme, lower-case.
        scheme: String,
    },
    /// The text differs from the canonical form of the URL it parses to (case, default
    /// port, backslashes, dot segments, percent-encoding…).
    #[error("the link is not in its exact standard form")]
    NotCanonical,
    /// A `user:password@` part, the classic `https://sigilvault.xyz@evil.example` trick.
    #[error("the link contains a user name or password")]
    Userinfo,
    /// An explicit port.
    #[error("the link names a port ({port}); pair links never do")]
    Port {
        /// The port.
        port: u16,
    },
    /// The host ends with a dot (`sigilvault.xyz.`).
    #[error("the link's host ends with a dot")]
    TrailingDot,
    /// An IP address instead of a host name.
    #[error("the link points at an IP address, not a Sigil host")]
    IpHost,
    /// A host that is not one of the accepted hosts (lookalikes, punycode, subdomains…).
    #[error("the link is not from a Sigil host ({host})")]
    WrongHost {
        /// The host the link names.
        host: String,
    },
    /// A path other than exactly `/pair`.
    #[error("the link does not lead to a pair page")]
    WrongPath,
    /// A `#fragment`.
    #[error("the link has a #fragment; pair links never do")]
    Fragment,
    /// No `session` parameter.
    #[error("the link has no session")]
    MissingSession,
    /// An empty parameter (`&&`, trailing `&`) or one without `=value`.
    #[error("the link's parameters are malformed")]
    MalformedQuery,
    /// A parameter other than `session` and `v`.
    #[error("the link has an unknown parameter `{name}`")]
    UnknownParameter {
        /// The parameter name as written (ASCII).
        name: String,
    },
    /// `session` or `v` given more than once.
    #[error("the link gives `{name}` more than once")]
    DuplicateParameter {
        /// The repeated parameter.
        name: String,
    },
    /// The session id is not 22–64 characters of `A-Z a-z 0-9 _ -`.
    #[error("the link's session id is malformed")]
    BadSessionId,
    /// `v` is not exactly six ASCII digits.
    #[error("the link's validation code is malformed (must be 6 digits)")]
    BadCode,
}

impl PairLinkError {
    /// A stable snake_case identifier for this rejection (JSON `error.code`, UI strings).
    pub fn code(&self) -> &'static str {
        match self {
            PairLinkError::Empty => "empty",
            PairLinkError::TooLong { .. } => "too_long",
            PairLinkError::ControlCharacter { .. } => "control_character",
            PairLinkError::Whitespace { .. } => "whitespace",
            PairLinkError::BidiControl { .. } => "bidi_control",
            PairLinkError::NonAscii { .. } => "non_ascii",
            PairLinkError::Malformed => "malformed",
            PairLinkError::NotHttps => "not_https",
            PairLinkError::UnsupportedScheme { .. } => "unsupported_scheme",
            PairLinkError::NotCanonical => "not_canonical",
            PairLinkError::Userinfo => "userinfo",
            PairLinkError::Port { .. } => "port",
            PairLinkError::TrailingDot => "trailing_dot",
            PairLinkError::IpHost => "ip_host",
            PairLinkError::WrongHost { .. } => "wrong_host",
            PairLinkError::WrongPath => "wrong_path",
            PairLinkError::Fragment => "fragment",
            PairLinkError::MissingSession => "missing_session",
            PairLinkError::MalformedQuery => "malformed_query",
            PairLinkError::UnknownParameter { .. } => "unknown_parameter",
            PairLinkError::DuplicateParameter { .. } => "duplicate_parameter",
            PairLinkError::BadSessionId => "bad_session_id",
            PairLinkError::BadCode => "bad_code",
        }
    }
}

/// The first character that makes `text` unacceptable as a link, with its byte offset.
/// Only printable ASCII (U+0021..U+007E) passes.
pub(crate) fn first_bad_char(text: &str) -> Option<(usize, BadChar)> {
    text.char_indices().find_map(|(at, ch)| {
        let kind = match ch {
            '!'..='~' => return None,
            c if c.is_control() => BadChar::Control,
            c if c.is_whitespace() => BadChar::Whitespace,
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}' => BadChar::Bidi,
            _ => BadChar::NonAscii,
        };
        Some((at, kind))
    })
}

/// True when the session id matches `^[A-Za-z0-9_-]{22,64}$`.
pub fn is_valid_session_id(id: &str) -> bool {
    (22..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Parses `text` as a pair link, accepting only the hosts in `config`.
pub fn parse_link(text: &str, config: &LinkConfig) -> Result<PairIntent, PairLinkError> {
    let result = parse_inner(text, config);
    match &result {
        Ok(intent) => tracing::debug!(
            session_len = intent.session_id.len(),
            code_present = intent.code.is_some(),
            "pair link accepted"
        ),
        Err(e) => tracing::info!(reason = e.code(), "pair link rejected"),
    }
    result
}

fn parse_inner(text: &str, config: &LinkConfig) -> Result<PairIntent, PairLinkError> {
    if text.is_empty() {
        return Err(PairLinkError::Empty);
    }
    if text.len() > MAX_LINK_LEN {
        return Err(PairLinkError::TooLong { len: text.len() });
    }
    if let Some((at, kind)) = first_bad_char(text) {
        return Err(match kind {
            BadChar::Control => PairLinkError::ControlCharacter { at },
            BadChar::Whitespace => PairLinkError::Whitespace { at },
            BadChar::Bidi => PairLinkError::BidiControl { at },
            BadChar::NonAscii => PairLinkError::NonAscii { at },
        });
    }
    let url = Url::parse(text).map_err(|_| PairLinkError::Malformed)?;
    match url.scheme() {
        "https" => {}
        "http" => return Err(PairLinkError::NotHttps),
        other => return Err(PairLinkError::UnsupportedScheme { scheme: truncate(other, 32) }),
    }
    if url.as_str() != text {
        return Err(PairLinkError::NotCanonical);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(PairLinkError::Userinfo);
    }
    if let Some(port) = url.port() {
        return Err(PairLinkError::Port { port });
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d,
        Some(url::Host::Ipv4(_)) | Some(url::Host::Ipv6(_)) => return Err(PairLinkError::IpHost),
        None => return Err(PairLinkError::Malformed),
    };
    if host.ends_with('.') {
        return Err(PairLinkError::TrailingDot);
    }
    if !config.accepted_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Err(PairLinkError::WrongHost { host: truncate(host, 253) });
    }
    if url.path() != PAIR_PATH {
        return Err(PairLinkError::WrongPath);
    }
    if url.fragment().is_some() {
        return Err(PairLinkError::Fragment);
    }
    let query = url.query().unwrap_or("");
    let mut session: Option<&str> = None;
    let mut code: Option<&str> = None;
    if !query.is_empty() {
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').ok_or(PairLinkError::MalformedQuery)?;
            if name.is_empty() {
                return Err(PairLinkError::MalformedQuery);
            }
            let slot = match name {
                "session" => &mut session,
                "v" => &mut code,
                other => return Err(PairLinkError::UnknownParameter { name: truncate(other, 64) }),
            };
            if slot.replace(value).is_some() {
                return Err(PairLinkError::DuplicateParameter { name: name.to_string() });
            }
        }
    }
    let session = session.ok_or(PairLinkError::MissingSession)?;
    if !is_valid_session_id(session) {
        return Err(PairLinkError::BadSessionId);
    }
    let code = match code {
        Some(v) => Some(ValidationCode::from_ascii_digits(v).ok_or(PairLinkError::BadCode)?),
        None => None,
    };
    Ok(PairIntent { session_id: session.to_string(), code })
}

/// Cuts attacker-chosen text carried in an error to at most `max` characters.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl fmt::Display for PairIntent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pair session {} ({})",
            self.session_id,
            if self.code.is_some() { "code included" } else { "no code" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AbCdEfGhIjKlMnOpQrStUv";

    #[test]
    fn accepts_both_orders() {
        let cfg = LinkConfig::default();
        let a = parse_link(&format!("https://sigilvault.xyz/pair?session={SID}&v=123456"), &cfg).unwrap();
        let b = parse_link(&format!("https://sigilvault.xyz/pair?v=123456&session={SID}"), &cfg).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.code.as_ref().map(|c| c.as_str()), Some("123456"));
        let c = parse_link(&format!("https://sigilvault.xyz/pair?session={SID}"), &cfg).unwrap();
        assert_eq!(c.code, None);
        assert_eq!(c.session_id, SID);
    }

    #[test]
    fn intent_display_and_debug_hide_code() {
        let i = PairIntent { session_id: SID.into(), code: ValidationCode::from_ascii_digits("424242") };
        assert!(!format!("{i} {i:?}").contains("424242"));
        assert_eq!(parse_link(&i.render("sigilvault.xyz"), &LinkConfig::default()).unwrap(), i);
    }
}
