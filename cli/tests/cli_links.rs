//! The CLI contract of issue 2 §5, against the built `sunstorm` binary: exit codes, JSON
//! documents, and that the code in a link is never printed.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may unwrap

use std::process::{Command, Output};

use serde_json::Value;

const SID: &str = "AbCdEfGhIjKlMnOpQrStUv";

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sunstorm")).args(args).env_remove("SUNSTORM_LOG").output().unwrap()
}

fn json_of(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON line expected, got {text:?}");
    serde_json::from_str(&text).unwrap()
}

fn link(code: &str) -> String {
    format!("https://sigilvault.xyz/pair?session={SID}&v={code}")
}

#[test]
fn link_accepted_json_hides_code() {
    let out = run(&["link", &link("918273"), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json_of(&out);
    assert_eq!(v["ok"]["session_id"], SID);
    assert_eq!(v["ok"]["code_present"], true);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("918273"), "the code leaked: {all}");
}

#[test]
fn link_accepted_text_hides_code() {
    let out = run(&["--log", "trace", "link", &link("918273")]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(SID) && stdout.contains("code: present"), "{stdout}");
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("918273"), "the code leaked: {all}");
    let out = run(&["link", &format!("https://sigilvault.xyz/pair?session={SID}"), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["ok"]["code_present"], false);
}

#[test]
fn link_rejections_exit_2_with_stable_codes() {
    for (input, code) in [
        (format!("https://evil.example/pair?session={SID}"), "wrong_host"),
        (format!("http://sigilvault.xyz/pair?session={SID}"), "not_https"),
        (format!("https://sigilvault.xyz:8443/pair?session={SID}"), "port"),
        (format!("{}&v=1", link("123456")), "duplicate_parameter"),
        ("javascript:alert(1)".to_string(), "unsupported_scheme"),
        ("-x".to_string(), "malformed"),
    ] {
        let out = run(&["link", &input, "--json"]);
        assert_eq!(out.status.code(), Some(2), "{input}");
        let v = json_of(&out);
        assert_eq!(v["error"]["code"], code, "{input}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(v.get("ok").is_none());
    }
    // Text mode: one line on stderr naming the code.
    let out = run(&["link", &format!("https://evil.example/pair?session={SID}")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong_host"));
}

#[test]
fn link_custom_hosts() {
    let l = format!("https://pair.example.org/pair?session={SID}");
    assert_eq!(run(&["link", &l]).status.code(), Some(2));
    let out = run(&["link", &l, "--host", "other.example", "--host", "pair.example.org", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["ok"]["session_id"], SID);
}

#[test]
fn return_url_contract() {
    let out = run(&["return-url", "https://shop.example/done?x=1", "--allow", "https://shop.example", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json_of(&out);
    assert_eq!(v["ok"]["url"], "https://shop.example/done?x=1");
    assert_eq!(v["ok"]["origin"], "https://shop.example");
    for (input, code) in [
        ("https://evil.example/", "origin_not_allowed"),
        ("javascript:alert(1)", "unsupported_scheme"),
        ("https://shop.example/#x", "fragment"),
        ("https://user@shop.example/", "userinfo"),
    ] {
        let out =
            run(&["return-url", input, "--allow", "https://shop.example", "--allow", "https://b.example", "--json"]);
        assert_eq!(out.status.code(), Some(2), "{input}");
        assert_eq!(json_of(&out)["error"]["code"], code, "{input}");
    }
    let out = run(&["return-url", "https://shop.example/", "--allow", "https://shop.example"]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn code_contract() {
    let out = run(&["code", "１２３-４５６", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_of(&out)["ok"]["code"], "123456");
    let out = run(&["code", "٠٩٨ ٧٦٥"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "098765");
    for (input, code) in [
        ("12345", "code_too_short"),
        ("1234567", "code_too_long"),
        ("12a456", "code_not_a_digit"),
        ("", "code_empty"),
        ("-", "code_empty"),
    ] {
        let out = run(&["code", input, "--json"]);
        assert_eq!(out.status.code(), Some(2), "{input}");
        assert_eq!(json_of(&out)["error"]["code"], code, "{input}");
    }
}
