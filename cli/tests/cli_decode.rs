//! `sunstorm decode` (issue 13 §8), against the built binary: exit codes, the `{"ok": …}` /
//! `{"error": …}` documents, and that adversarial typed data is refused with its specific
//! code instead of hanging or crashing the process.
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // test helpers outside #[test] fns

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use sunstorm_sim::samples;

/// Far beyond what a refusal takes; only stops a hang from hanging the test run.
const HANG: Duration = Duration::from_secs(60);

fn run_with(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sunstorm"))
        .args(args)
        .env_remove("SUNSTORM_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
    }
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > HANG {
            child.kill().unwrap();
            panic!("sunstorm {args:?} did not finish within {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn run(args: &[&str]) -> Output {
    run_with(args, None)
}

fn json_of(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON line expected, got {text:?}");
    serde_json::from_str(&text).unwrap()
}

fn error_code(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    json_of(out)["error"]["code"].as_str().unwrap().to_string()
}

fn row<'a>(doc: &'a Value, key: &str) -> &'a Value {
    doc["ok"]["rows"].as_array().unwrap().iter().find(|r| r["key"] == key).unwrap_or(&Value::Null)
}

/// `T0 { T1 a; T1 b; } … Tn { uint256 x; }`: 2^n leaves once expanded.
fn diamond(n: usize) -> Vec<u8> {
    let mut types = serde_json::Map::new();
    types.insert("EIP712Domain".into(), json!([{"name": "chainId", "type": "uint256"}]));
    for i in 0..n {
        let next = format!("T{}", i + 1);
        types.insert(format!("T{i}"), json!([{"name": "a", "type": next}, {"name": "b", "type": next}]));
    }
    types.insert(format!("T{n}"), json!([{"name": "x", "type": "uint256"}]));
    serde_json::to_vec(&json!({"types": types, "primaryType": "T0", "domain": {"chainId": 1}, "message": {}})).unwrap()
}

#[test]
fn adversarial_typed_data_is_refused_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diamond.json");
    std::fs::write(&path, diamond(40)).unwrap();
    let out = run(&["decode", "--chain", "eip155:1", "--typed-data", path.to_str().unwrap(), "--json"]);
    assert_eq!(error_code(&out), "too_complex");
    let message = json_of(&out)["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("expanded_types"), "{message}");
    // The same from standard input, in text form: one line on stderr with the code.
    let out = run_with(&["decode", "--chain", "eip155:1", "--typed-data", "-"], Some(&diamond(40)));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("error [too_complex]"));
}

#[test]
fn domain_as_primary_type_is_refused() {
    let doc = json!({"types": {"EIP712Domain": [{"name": "chainId", "type": "uint256"}]},
                     "primaryType": "EIP712Domain", "domain": {"chainId": 1}, "message": {"to": "x"}});
    let out =
        run_with(&["decode", "--chain", "eip155:1", "--typed-data", "-", "--json"], Some(doc.to_string().as_bytes()));
    assert_eq!(error_code(&out), "eip712_domain_primary_type");
}

#[test]
fn evm_transfer_shows_rows_warnings_and_facts() {
    let tx = samples::eip1559_transfer(1, 0, [0x42; 20], samples::ETHER / 20);
    let out = run(&["decode", "--chain", "eip155:1", "--tx", &format!("0x{}", hex::encode(&tx)), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json_of(&out);
    let ok = &doc["ok"];
    assert_eq!(ok["title"], "Send ETH");
    assert_eq!(ok["kind"], "evm_transaction");
    assert_eq!(ok["blind"], false);
    assert_eq!(row(&doc, "value")["value"], "0.05 ETH");
    assert_eq!(row(&doc, "max_total")["label"], "Max total");
    assert_eq!(ok["facts"]["native_value"], "50000000000000000");
    assert_eq!(ok["facts"]["recipients"][0], "0x4242424242424242424242424242424242424242");
    assert_eq!(ok["warnings"], json!([]));
    // Text form.
    let out = run(&["decode", "--chain", "eip155:1", "--tx", &hex::encode(&tx)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("Send ETH\n") && text.contains("  Value: 0.05 ETH  [value]"), "{text}");
    assert!(text.contains("blind: false"), "{text}");
}

#[test]
fn unlimited_approval_and_blind_payloads_carry_their_codes() {
    let tx = samples::erc20_approve_unlimited(1, 1, samples::USDC, [2; 20]);
    let doc = json_of(&run(&["decode", "--chain", "eip155:1", "--tx", &hex::encode(&tx), "--json"]));
    let codes: Vec<&str> =
        doc["ok"]["warnings"].as_array().unwrap().iter().filter_map(|w| w["code"].as_str()).collect();
    assert!(codes.contains(&"unlimited_approval") && codes.contains(&"ambiguous_token_call"), "{codes:?}");
    assert_eq!(doc["ok"]["facts"]["unlimited_approval"], true);
    let mail = samples::eip712_mail(1);
    let out = run_with(&["decode", "--chain", "eip155:1", "--typed-data", "-", "--json"], Some(mail.as_bytes()));
    let doc = json_of(&out);
    assert_eq!(doc["ok"]["blind"], true);
    assert_eq!(row(&doc, "message.from.name")["label"], "Message › from.name");
}

#[test]
fn eip191_message_is_sanitised() {
    let doc = json_of(&run(&["decode", "--chain", "eip155:1", "--message", "pay bob\u{202e}.eth", "--json"]));
    assert_eq!(row(&doc, "message")["value"], "pay bob⟨U+202E⟩.eth");
    assert_eq!(doc["ok"]["warnings"][0]["code"], "text_escaped");
}

#[test]
fn solana_transfer_is_shown_to_its_fee_payer() {
    let msg = samples::solana_transfer([3; 32], [4; 32], 1_000_000, [5; 32]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&msg);
    let chain = format!("solana:{}", sunstorm_core::caip::SOLANA_MAINNET);
    let doc = json_of(&run(&["decode", "--chain", &chain, "--solana-tx", &b64, "--json"]));
    assert_eq!(doc["ok"]["title"], "Send SOL");
    assert_eq!(doc["ok"]["facts"]["native_value"], "1000000");
    assert_eq!(doc["ok"]["facts"]["max_fee"], "5000");
    assert_eq!(row(&doc, "max_total")["value"], "0.001005 SOL");
}

#[test]
fn bad_input_is_refused_with_a_stable_code() {
    let tx = hex::encode(samples::eip1559_transfer(1, 0, [0x42; 20], 1));
    for (args, code) in [
        (vec!["--chain", "eip155:01", "--tx", &tx], "bad_chain"),
        (vec!["--chain", "eip155:1", "--tx", "zz"], "bad_hex"),
        (vec!["--chain", "eip155:1", "--tx", "02c0"], "bad_transaction"),
        (vec!["--chain", "eip155:5", "--tx", &tx], "chain_mismatch"),
        (vec!["--chain", "eip155:1", "--solana-tx", "AQID"], "wrong_namespace"),
        (vec!["--chain", "eip155:1", "--solana-tx", "%%"], "bad_base64"),
        (vec!["--chain", "eip155:1", "--typed-data", "/nonexistent/x.json"], "unreadable_input"),
    ] {
        let mut all = vec!["decode", "--json"];
        all.extend(args.iter().copied());
        assert_eq!(error_code(&run(&all)), code, "{args:?}");
    }
    // Exactly one payload option.
    let out = run(&["decode", "--chain", "eip155:1"]);
    assert_eq!(out.status.code(), Some(2));
}
