//! Hostile return URLs: each is refused with the expected `ReturnUrlError` variant; exact
//! origin matches are accepted (RFC 9700 §2.1: exact string matching, no wildcards).
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

mod hostile_common;

use hostile_common::puny;
use proptest::prelude::*;
use sunstorm_core::return_url::{check_return_url, ReturnUrlError};

fn allowed() -> Vec<String> {
    vec!["https://shop.example".into(), "https://sp.example.com".into()]
}

fn hostile() -> Vec<(String, ReturnUrlError)> {
    use ReturnUrlError::*;
    let scheme = || UnsupportedScheme { scheme: String::new() };
    let origin = || OriginNotAllowed { origin: String::new() };
    vec![
        (String::new(), Empty),
        (format!("https://shop.example/{}", "a".repeat(2030)), TooLong { len: 0 }),
        ("https://shop.example/done\0".into(), ControlCharacter { at: 0 }),
        ("https://shop.example/done\r\nSet-Cookie: x=y".into(), ControlCharacter { at: 0 }),
        ("https://shop.example/\ndone".into(), ControlCharacter { at: 0 }),
        ("https://shop.ex\tample/done".into(), ControlCharacter { at: 0 }),
        (" https://shop.example/done".into(), Whitespace { at: 0 }),
        ("https://shop.example/done ".into(), Whitespace { at: 0 }),
        ("https://shop.example/a b".into(), Whitespace { at: 0 }),
        ("https://shop.example/\u{202e}enod".into(), BidiControl { at: 0 }),
        ("\u{202a}https://shop.example/".into(), BidiControl { at: 0 }),
        ("https://shop.example/\u{2067}".into(), BidiControl { at: 0 }),
        ("https://sh\u{43e}p.example/done".into(), NonAscii { at: 0 }), // Cyrillic о
        ("https://shop\u{3002}example/".into(), NonAscii { at: 0 }),
        ("https://shop.example\u{2215}@evil.example/".into(), NonAscii { at: 0 }),
        ("https://shop.example/\u{200b}".into(), NonAscii { at: 0 }),
        ("javascript:alert(document.cookie)".into(), scheme()),
        ("JavaScript:alert(1)".into(), scheme()),
        ("javascript://shop.example/%0aalert(1)".into(), scheme()),
        ("data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==".into(), scheme()),
        ("intent://shop.example/#Intent;scheme=https;package=com.evil;end".into(), scheme()),
        ("file:///etc/passwd".into(), scheme()),
        ("sunstorm://done".into(), scheme()),
        ("vbscript:msgbox(1)".into(), scheme()),
        ("blob:https://shop.example/uuid".into(), scheme()),
        ("about:blank".into(), scheme()),
        ("http://shop.example/done".into(), NotHttps),
        ("/done".into(), Malformed),
        ("//evil.example/done".into(), Malformed),
        ("https://".into(), Malformed),
        ("https://shop.example%00.evil/".into(), Malformed),
        ("HTTPS://shop.example/done".into(), NotCanonical),
        ("https://Shop.Example/done".into(), NotCanonical),
        ("https://shop.example:443/done".into(), NotCanonical),
        ("https:\\\\evil.example\\shop.example".into(), NotCanonical),
        ("https://shop.example\\@evil.example/".into(), NotCanonical),
        ("https://shop.example/a/../done".into(), NotCanonical),
        ("https://shop.example/%2e%2e/done".into(), NotCanonical),
        ("https://shop.example".into(), NotCanonical),
        ("https://shop%2Eexample/".into(), NotCanonical),
        ("https:shop.example/done".into(), NotCanonical),
        ("https:///shop.example/done".into(), NotCanonical),
        ("https://shop.example/done?q='x'".into(), NotCanonical),
        ("https://shop.example@evil.example/".into(), Userinfo),
        ("https://evil.example@shop.example/".into(), Userinfo),
        ("https://user:pw@shop.example/".into(), Userinfo),
        ("https://shop.example:8443/done".into(), Port { port: 0 }),
        ("https://shop.example:80/".into(), Port { port: 0 }),
        ("https://shop.example./done".into(), TrailingDot),
        ("https://shop.example/done#access_token=x".into(), Fragment),
        ("https://shop.example/done#".into(), Fragment),
        ("https://evil.example/done".into(), origin()),
        ("https://shop.example.evil.example/".into(), origin()),
        ("https://evil-shop.example/".into(), origin()),
        ("https://sub.shop.example/".into(), origin()),
        ("https://shop.exampl/".into(), origin()),
        ("https://example/".into(), origin()),
        ("https://127.0.0.1/".into(), origin()),
        ("https://[::1]/".into(), origin()),
        ("https://localhost/done".into(), origin()),
        ("https://example.com/".into(), origin()),
        (format!("https://{}/done", puny("sh\u{43e}p.example")), origin()),
        (format!("https://{}/done", puny("\u{3c3}p.example.com")), origin()),
    ]
}

#[test]
fn hostile_return_urls_are_refused_with_the_expected_variant() {
    let table = hostile();
    assert!(table.len() >= 40, "only {} hostile return URLs", table.len());
    let allowed = allowed();
    hostile_common::assert_all_refused(&table, |s| check_return_url(s, &allowed), ReturnUrlError::code);
}

#[test]
fn exact_origins_are_accepted() {
    let allowed = allowed();
    for ok in [
        "https://shop.example/",
        "https://shop.example/done",
        "https://shop.example/done?order=42&status=paired",
        "https://sp.example.com/a/b/c?x=%20y",
    ] {
        let url = check_return_url(ok, &allowed).unwrap();
        assert_eq!(url.as_str(), ok);
    }
}

#[test]
fn origin_matching_is_exact_string_matching() {
    // A registered origin written differently (trailing slash, path, upper case) matches
    // nothing: registration must use the ASCII serialisation `https://host`.
    let u = "https://shop.example/done";
    for reg in [
        "https://shop.example/",
        "https://SHOP.example",
        "https://shop.example/done",
        "shop.example",
        "https://*.example",
    ] {
        assert_eq!(check_return_url(u, &[reg.to_string()]).unwrap_err().code(), "origin_not_allowed", "{reg}");
    }
    assert!(check_return_url(u, &["https://shop.example".to_string()]).is_ok());
    // Registering an http origin does not make http acceptable.
    assert_eq!(
        check_return_url("http://shop.example/", &["http://shop.example".to_string()]),
        Err(ReturnUrlError::NotHttps)
    );
    // No registered origins: nothing may be opened.
    assert_eq!(check_return_url(u, &[]).unwrap_err().code(), "origin_not_allowed");
}

#[test]
fn variant_fields() {
    let a = allowed();
    assert_eq!(check_return_url("https://shop.example:8443/", &a), Err(ReturnUrlError::Port { port: 8443 }));
    assert_eq!(
        check_return_url("https://evil.example/x", &a),
        Err(ReturnUrlError::OriginNotAllowed { origin: "https://evil.example".into() })
    );
    assert_eq!(
        check_return_url("javascript:alert(1)", &a),
        Err(ReturnUrlError::UnsupportedScheme { scheme: "javascript".into() })
    );
    assert_eq!(check_return_url("https://shop.example/\0", &a), Err(ReturnUrlError::ControlCharacter { at: 21 }));
}

proptest! {
    #[test]
    fn any_string_never_panics(s in "\\PC{0,300}") {
        let _ = check_return_url(&s, &allowed());
    }

    #[test]
    fn accepted_means_exact_origin(path in "(/[a-z0-9]{0,8}){1,3}", query in proptest::option::of("[a-z]{1,5}=[0-9]{1,5}")) {
        let mut s = format!("https://shop.example{path}");
        if let Some(q) = &query { s.push('?'); s.push_str(q); }
        let url = check_return_url(&s, &allowed()).unwrap();
        prop_assert_eq!(url.origin().ascii_serialization(), "https://shop.example");
        prop_assert_eq!(url.as_str(), s.as_str());
    }

    #[test]
    fn other_hosts_never_accepted(host in "[a-z]{1,10}(\\.[a-z]{1,5}){0,2}") {
        prop_assume!(host != "shop.example" && host != "sp.example.com");
        let url = format!("https://{host}/");
        prop_assert!(check_return_url(&url, &allowed()).is_err());
    }
}
