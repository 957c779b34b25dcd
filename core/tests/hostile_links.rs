//! Hostile pair links: each is refused with the expected `PairLinkError` variant; the valid forms
//! are accepted; property tests for never-panic and render/parse round trips.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

mod hostile_common;

use std::mem::discriminant;

use hostile_common::puny;
use proptest::prelude::*;
use sunstorm_core::code::ValidationCode;
use sunstorm_core::link::{parse_link, LinkConfig, PairIntent, PairLinkError};

const SID: &str = "AbCdEfGhIjKlMnOpQrStUv";

fn base() -> String {
    format!("https://sigilvault.xyz/pair?session={SID}")
}

fn with_code() -> String {
    format!("{}&v=123456", base())
}

fn hostile() -> Vec<(String, PairLinkError)> {
    use PairLinkError::*;
    let b = base();
    let wc = with_code();
    let q = |rest: &str| format!("https://sigilvault.xyz/pair?{rest}");
    let wrong_host = || WrongHost { host: String::new() };
    let at0 = 0usize;
    vec![
        // Empty and over-long input.
        (String::new(), Empty),
        (format!("{b}&v=123456{}", "0".repeat(2048)), TooLong { len: 0 }),
        (format!("https://sigilvault.xyz/pair?session={}", "A".repeat(2030)), TooLong { len: 0 }),
        // Control characters: NUL, CR/LF, TAB, DEL, C1.
        (format!("{wc}\0"), ControlCharacter { at: at0 }),
        (format!("https://sigilvault.xyz/pair?session={SID}\r\n&v=123456"), ControlCharacter { at: at0 }),
        ("https://sigil\nvault.xyz/pair?session=AbCdEfGhIjKlMnOpQrStUv".into(), ControlCharacter { at: at0 }),
        ("https://sigilvault.xyz/pa\tir?session=AbCdEfGhIjKlMnOpQrStUv".into(), ControlCharacter { at: at0 }),
        (format!("{b}\u{7f}"), ControlCharacter { at: at0 }),
        (format!("{b}\u{85}"), ControlCharacter { at: at0 }),
        // Whitespace, visible or not.
        (format!(" {wc}"), Whitespace { at: at0 }),
        (format!("{wc} "), Whitespace { at: at0 }),
        (format!("https://sigilvault.xyz/pair?session={SID} &v=123456"), Whitespace { at: at0 }),
        (format!("{b}\u{a0}"), Whitespace { at: at0 }),
        (format!("{b}\u{2028}"), Whitespace { at: at0 }),
        (format!("\u{3000}{b}"), Whitespace { at: at0 }),
        // Bidi overrides and isolates that make a link display as something else.
        (format!("https://sigilvault.xyz/pair?session={SID}\u{202e}654321=v&"), BidiControl { at: at0 }),
        (format!("https://\u{202e}zyx.tluavlgis/pair?session={SID}"), BidiControl { at: at0 }),
        (format!("{b}\u{2066}"), BidiControl { at: at0 }),
        (format!("{b}\u{200f}"), BidiControl { at: at0 }),
        (format!("{b}\u{61c}"), BidiControl { at: at0 }),
        // Mixed-script lookalikes and other non-ASCII.
        (format!("https://s\u{456}gilvault.xyz/pair?session={SID}"), NonAscii { at: at0 }), // Cyrillic і
        (format!("https://sigilv\u{430}ult.xyz/pair?session={SID}"), NonAscii { at: at0 }), // Cyrillic а
        (format!("https://sigilvault.\u{445}yz/pair?session={SID}"), NonAscii { at: at0 }), // Cyrillic х
        (format!("https://sigilvault\u{3002}xyz/pair?session={SID}"), NonAscii { at: at0 }), // ideographic full stop
        (format!("https://sigilvault.xyz\u{2215}pair?session={SID}"), NonAscii { at: at0 }), // division slash
        (format!("https://sigilvault.xyz\u{ff0f}pair?session={SID}"), NonAscii { at: at0 }), // full-width slash
        (format!("https://sigil\u{200b}vault.xyz/pair?session={SID}"), NonAscii { at: at0 }), // zero-width space
        (format!("{b}&v=\u{ff11}\u{ff12}\u{ff13}\u{ff14}\u{ff15}\u{ff16}"), NonAscii { at: at0 }), // full-width digits
        ("https://sigilvault.xyz/pair?session=AbCdEfGhIjKlMnOpQrStU\u{1d42f}".into(), NonAscii { at: at0 }),
        // Not URLs at all.
        ("notaurl".into(), Malformed),
        (format!("//sigilvault.xyz/pair?session={SID}"), Malformed),
        (format!("sigilvault.xyz/pair?session={SID}"), Malformed),
        ("https://".into(), Malformed),
        ("https://[::1/pair".into(), Malformed),
        ("https://sigilvault.xyz%00.evil/pair".into(), Malformed),
        // Schemes: http, custom app schemes, script and data URLs, Android intents.
        (format!("http://sigilvault.xyz/pair?session={SID}"), NotHttps),
        (format!("HTTP://sigilvault.xyz/pair?session={SID}"), NotHttps),
        (format!("sunstorm://pair?session={SID}&v=123456"), UnsupportedScheme { scheme: String::new() }),
        (format!("sigil:pair?session={SID}"), UnsupportedScheme { scheme: String::new() }),
        ("javascript:alert(1)".into(), UnsupportedScheme { scheme: String::new() }),
        (
            format!("javascript://sigilvault.xyz/pair?session={SID}%0aalert(1)"),
            UnsupportedScheme { scheme: String::new() },
        ),
        ("data:text/html,<script>alert(1)</script>".into(), UnsupportedScheme { scheme: String::new() }),
        (
            format!("intent://pair?session={SID}#Intent;scheme=https;package=com.evil;end"),
            UnsupportedScheme { scheme: String::new() },
        ),
        ("file:///pair".into(), UnsupportedScheme { scheme: String::new() }),
        (format!("ftp://sigilvault.xyz/pair?session={SID}"), UnsupportedScheme { scheme: String::new() }),
        (format!("wss://sigilvault.xyz/pair?session={SID}"), UnsupportedScheme { scheme: String::new() }),
        // Not canonical: case, backslashes, default port, dot segments, encodings, slashes.
        (format!("HTTPS://sigilvault.xyz/pair?session={SID}"), NotCanonical),
        (format!("https://SigilVault.xyz/pair?session={SID}"), NotCanonical),
        (format!("https:\\\\sigilvault.xyz\\pair?session={SID}"), NotCanonical),
        (format!("https://sigilvault.xyz\\pair?session={SID}"), NotCanonical),
        (format!("https://evil.example\\@sigilvault.xyz/pair?session={SID}"), NotCanonical),
        (format!("https://sigilvault.xyz:443/pair?session={SID}"), NotCanonical),
        (format!("https://sigilvault.xyz/./pair?session={SID}"), NotCanonical),
        (format!("https://sigilvault.xyz/x/../pair?session={SID}"), NotCanonical),
        (format!("https://sigilvault.xyz/%2e/pair?session={SID}"), NotCanonical),
        (format!("https://sigilvault.xyz/x/%2E%2E/pair?session={SID}"), NotCanonical),
        (format!("https:sigilvault.xyz/pair?session={SID}"), NotCanonical),
        (format!("https:/sigilvault.xyz/pair?session={SID}"), NotCanonical),
        (format!("https:///sigilvault.xyz/pair?session={SID}"), NotCanonical),
        (format!("https://sigilvault.xyz?session={SID}"), NotCanonical),
        (format!("https://sigilvault.%78yz/pair?session={SID}"), NotCanonical),
        (format!("https://sigilvault%2Exyz/pair?session={SID}"), NotCanonical),
        (format!("{b}&v=12'456"), NotCanonical),
        (format!("https://:@sigilvault.xyz/pair?session={SID}"), NotCanonical),
        (format!("https://0x7f.1/pair?session={SID}"), NotCanonical),
        (format!("https://2130706433/pair?session={SID}"), NotCanonical),
        // Userinfo, the classic "looks like the right host" trick.
        (format!("https://sigilvault.xyz@evil.example/pair?session={SID}"), Userinfo),
        (format!("https://evil.example@sigilvault.xyz/pair?session={SID}"), Userinfo),
        (format!("https://user:pass@sigilvault.xyz/pair?session={SID}"), Userinfo),
        (format!("https://sigilvault.xyz:443@evil.example/pair?session={SID}"), Userinfo),
        // Ports.
        (format!("https://sigilvault.xyz:8443/pair?session={SID}"), Port { port: 0 }),
        (format!("https://sigilvault.xyz:80/pair?session={SID}"), Port { port: 0 }),
        (format!("https://sigilvault.xyz:1/pair?session={SID}"), Port { port: 0 }),
        // IP addresses.
        (format!("https://127.0.0.1/pair?session={SID}"), IpHost),
        (format!("https://[::1]/pair?session={SID}"), IpHost),
        // Trailing dot.
        (format!("https://sigilvault.xyz./pair?session={SID}"), TrailingDot),
        // Wrong hosts: other domains, subdomains, suffix/prefix tricks, punycode lookalikes.
        (format!("https://evil.example/pair?session={SID}"), wrong_host()),
        (format!("https://sigilvault.xyz.evil.example/pair?session={SID}"), wrong_host()),
        (format!("https://evil-sigilvault.xyz/pair?session={SID}"), wrong_host()),
        (format!("https://www.sigilvault.xyz/pair?session={SID}"), wrong_host()),
        (format!("https://sigilvault.xy/pair?session={SID}"), wrong_host()),
        (format!("https://sigilvault.xyz-evil.example/pair?session={SID}"), wrong_host()),
        (format!("https://{}/pair?session={SID}", puny("s\u{456}gilvault.xyz")), wrong_host()),
        (format!("https://{}/pair?session={SID}", puny("sigilv\u{430}ult.xyz")), wrong_host()),
        (format!("https://{}/pair?session={SID}", puny("\u{3c3}igilvault.xyz")), wrong_host()),
        (format!("https://localhost/pair?session={SID}"), wrong_host()),
        // Paths.
        (format!("https://sigilvault.xyz/pair/?session={SID}"), WrongPath),
        (format!("https://sigilvault.xyz/PAIR?session={SID}"), WrongPath),
        (format!("https://sigilvault.xyz/%70air?session={SID}"), WrongPath),
        (format!("https://sigilvault.xyz/pair%2F?session={SID}"), WrongPath),
        (format!("https://sigilvault.xyz/pair;x?session={SID}"), WrongPath),
        (format!("https://sigilvault.xyz/evil/..%2Fpair?session={SID}"), WrongPath),
        (format!("https://sigilvault.xyz/?session={SID}"), WrongPath),
        (format!("https://sigilvault.xyz//pair?session={SID}"), WrongPath),
        // Fragments.
        (format!("{wc}#frag"), Fragment),
        (format!("{wc}#"), Fragment),
        (format!("https://sigilvault.xyz/pair#?session={SID}"), Fragment),
        (format!("{b}#v=000000"), Fragment),
        // Missing session.
        ("https://sigilvault.xyz/pair".into(), MissingSession),
        ("https://sigilvault.xyz/pair?".into(), MissingSession),
        (q("v=123456"), MissingSession),
        // Malformed query.
        (format!("{b}&"), MalformedQuery),
        (q(&format!("&session={SID}")), MalformedQuery),
        (q(&format!("session={SID}&&v=123456")), MalformedQuery),
        (q("session"), MalformedQuery),
        (format!("{b}&v"), MalformedQuery),
        (q(&format!("=x&session={SID}")), MalformedQuery),
        // Unknown parameters.
        (format!("{b}&redirect=https://evil.example"), UnknownParameter { name: String::new() }),
        (format!("{b}&V=123456"), UnknownParameter { name: String::new() }),
        (q(&format!("Session={SID}")), UnknownParameter { name: String::new() }),
        (q(&format!("s%65ssion={SID}")), UnknownParameter { name: String::new() }),
        (format!("{wc}&utm_source=mail"), UnknownParameter { name: String::new() }),
        (q(&format!("session%3D{SID}")), MalformedQuery),
        // Duplicated parameters (which one would a server read?).
        (format!("{b}&session=ZZZZZZZZZZZZZZZZZZZZZZ"), DuplicateParameter { name: String::new() }),
        (format!("{wc}&v=654321"), DuplicateParameter { name: String::new() }),
        (q(&format!("v=111111&v=222222&session={SID}")), DuplicateParameter { name: String::new() }),
        (q(&format!("session={SID}&session={SID}")), DuplicateParameter { name: String::new() }),
        // Bad session ids.
        (q("session=short"), BadSessionId),
        (q("session="), BadSessionId),
        (q(&format!("session={}", "A".repeat(21))), BadSessionId),
        (q(&format!("session={}", "A".repeat(65))), BadSessionId),
        (q("session=AbCdEfGhIjKlMnOpQrStU.v"), BadSessionId),
        (q("session=%41bCdEfGhIjKlMnOpQrStUv"), BadSessionId),
        (q("session=AbCdEfGhIjKlMnOpQrStU+v"), BadSessionId),
        (q("session=AbCdEfGhIjKlMnOpQrStU/v"), BadSessionId),
        // Bad codes.
        (format!("{b}&v=12345"), BadCode),
        (format!("{b}&v=1234567"), BadCode),
        (format!("{b}&v=12345a"), BadCode),
        (format!("{b}&v="), BadCode),
        (format!("{b}&v=%31%32%33%34%35%36"), BadCode),
        (format!("{b}&v=+12345"), BadCode),
        (format!("{b}&v=-12345"), BadCode),
        (format!("{b}&v=123-456"), BadCode),
        (format!("{b}&v=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"), BadCode),
    ]
}

#[test]
fn hostile_links_are_rejected_with_the_expected_variant() {
    let table = hostile();
    assert!(table.len() >= 60, "only {} hostile links", table.len());
    let cfg = LinkConfig::default();
    hostile_common::assert_all_refused(&table, |s| parse_link(s, &cfg), PairLinkError::code);
}

#[test]
fn variant_fields_say_where_and_what() {
    let cfg = LinkConfig::default();
    let e = |s: &str| parse_link(s, &cfg).unwrap_err();
    assert_eq!(e(&format!("{}\0", with_code())), PairLinkError::ControlCharacter { at: with_code().len() });
    assert_eq!(e(&format!(" {}", base())), PairLinkError::Whitespace { at: 0 });
    assert_eq!(e(&format!("https://s\u{456}gilvault.xyz/pair?session={SID}")), PairLinkError::NonAscii { at: 9 });
    assert_eq!(e(&format!("https://sigilvault.xyz:8443/pair?session={SID}")), PairLinkError::Port { port: 8443 });
    assert_eq!(
        e(&format!("https://evil.example/pair?session={SID}")),
        PairLinkError::WrongHost { host: "evil.example".into() }
    );
    assert_eq!(e(&format!("{}&utm_source=x", base())), PairLinkError::UnknownParameter { name: "utm_source".into() });
    assert_eq!(e(&format!("{}&v=1&v=2", base())), PairLinkError::DuplicateParameter { name: "v".into() });
    assert_eq!(e("javascript:alert(1)"), PairLinkError::UnsupportedScheme { scheme: "javascript".into() });
    assert_eq!(e(&"a".repeat(3000)), PairLinkError::TooLong { len: 3000 });
}

#[test]
fn valid_forms_are_accepted() {
    let cfg = LinkConfig::default();
    let code = ValidationCode::from_ascii_digits("123456");
    let a = parse_link(&with_code(), &cfg).unwrap();
    assert_eq!(a, PairIntent { session_id: SID.into(), code: code.clone() });
    let b = parse_link(&format!("https://sigilvault.xyz/pair?v=123456&session={SID}"), &cfg).unwrap();
    assert_eq!(a, b);
    let c = parse_link(&base(), &cfg).unwrap();
    assert_eq!(c, PairIntent { session_id: SID.into(), code: None });
    let long = "a_B-9".repeat(12) + "Zz0-"; // 64 characters
    assert_eq!(long.len(), 64);
    let d = parse_link(&format!("https://sigilvault.xyz/pair?session={long}&v=000000"), &cfg).unwrap();
    assert_eq!(d.session_id, long);
    assert_eq!(d.code.unwrap().as_str(), "000000");
}

#[test]
fn custom_accepted_hosts() {
    let cfg = LinkConfig { accepted_hosts: vec!["pair.example.com".into(), "sigil.test".into()] };
    let link = format!("https://pair.example.com/pair?session={SID}&v=654321");
    let i = parse_link(&link, &cfg).unwrap();
    assert_eq!(i.code.unwrap().as_str(), "654321");
    assert!(parse_link(&format!("https://sigil.test/pair?session={SID}"), &cfg).is_ok());
    // The default host is no longer accepted, and the custom one is not accepted by default.
    assert_eq!(parse_link(&base(), &cfg).unwrap_err().code(), "wrong_host");
    assert_eq!(parse_link(&link, &LinkConfig::default()).unwrap_err().code(), "wrong_host");
    // Nothing configured: nothing accepted.
    let none = LinkConfig { accepted_hosts: vec![] };
    assert_eq!(parse_link(&base(), &none).unwrap_err().code(), "wrong_host");
}

#[test]
fn default_config_is_exactly_sigilvault() {
    assert_eq!(LinkConfig::default().accepted_hosts, vec!["sigilvault.xyz".to_string()]);
}

#[test]
fn error_codes_are_distinct_snake_case() {
    let mut seen = std::collections::BTreeMap::new();
    for (_, e) in hostile() {
        let code = e.code();
        assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
        if let Some(prev) = seen.insert(code, discriminant(&e)) {
            assert_eq!(prev, discriminant(&e), "{code} used by two variants");
        }
    }
    assert!(seen.len() >= 20, "table covers {} variants", seen.len());
}

fn session_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{22,64}"
}

proptest! {
    #[test]
    fn any_string_never_panics(s in "\\PC{0,300}") {
        let _ = parse_link(&s, &LinkConfig::default());
    }

    #[test]
    fn any_ascii_url_shape_never_panics(s in "https://[a-z.:@\\[\\]%0-9/\\\\?&=#]{0,80}") {
        let _ = parse_link(&s, &LinkConfig::default());
    }

    #[test]
    fn render_then_parse_round_trips(sid in session_id(), code in proptest::option::of("[0-9]{6}")) {
        let intent = PairIntent {
            session_id: sid,
            code: code.as_deref().and_then(ValidationCode::from_ascii_digits),
        };
        let cfg = LinkConfig::default();
        prop_assert_eq!(parse_link(&intent.render("sigilvault.xyz"), &cfg).unwrap(), intent.clone());
        let other = LinkConfig { accepted_hosts: vec!["pair.example.org".into()] };
        prop_assert_eq!(parse_link(&intent.render("pair.example.org"), &other).unwrap(), intent);
    }

    #[test]
    fn accepted_links_are_ascii_and_bounded(sid in session_id(), junk in "[ -~]{0,8}") {
        let s = format!("https://sigilvault.xyz/pair?session={sid}{junk}");
        if let Ok(i) = parse_link(&s, &LinkConfig::default()) {
            prop_assert!(s.is_ascii() && s.len() <= 2048);
            prop_assert_eq!(parse_link(&i.render("sigilvault.xyz"), &LinkConfig::default()).unwrap(), i);
        }
    }
}
