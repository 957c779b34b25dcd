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

fn warning_codes(doc: &Value) -> Vec<&str> {
    doc["ok"]["warnings"].as_array().unwrap().iter().filter_map(|w| w["code"].as_str()).collect()
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
    // Without metadata the phone cannot tell an ERC-20 amount from an ERC-721 token ID.
    let doc = json_of(&run(&["decode", "--chain", "eip155:1", "--tx", &hex::encode(&tx), "--no-metadata", "--json"]));
    let codes = warning_codes(&doc);
    assert!(codes.contains(&"unlimited_approval") && codes.contains(&"ambiguous_token_call"), "{codes:?}");
    assert_eq!(doc["ok"]["facts"]["unlimited_approval"], true);
    assert_eq!(doc["ok"]["metadata"], Value::Null);
    // With the built-in bundle, USDC is a known ERC-20 token.
    let doc = json_of(&run(&["decode", "--chain", "eip155:1", "--tx", &hex::encode(&tx), "--json"]));
    let codes = warning_codes(&doc);
    assert!(codes.contains(&"unlimited_approval") && !codes.contains(&"ambiguous_token_call"), "{codes:?}");
    assert_eq!(row(&doc, "allowance")["value"], "Unlimited USDC");
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

/// `transfer(to, amount)` calldata, hex.
fn transfer_data(to: [u8; 20], amount: u64) -> String {
    let mut data = vec![0xa9, 0x05, 0x9c, 0xbb];
    data.extend([0u8; 12]);
    data.extend(to);
    data.extend([0u8; 24]);
    data.extend(amount.to_be_bytes());
    hex::encode(data)
}

#[test]
fn a_usdc_call_reads_one_point_five_usdc_with_its_display_digest() {
    let usdc = format!("0x{}", hex::encode(samples::USDC));
    let data = transfer_data([0x42; 20], 1_500_000);
    let args = ["decode", "--to", usdc.as_str(), "--data", data.as_str(), "--json"];
    let out = run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc = json_of(&out);
    let ok = &doc["ok"];
    assert_eq!(ok["chain"], "eip155:1", "the chain defaults to Ethereum");
    assert_eq!(ok["title"], "Token transfer");
    assert_eq!(row(&doc, "amount")["value"], "1.5 USDC");
    assert_eq!(row(&doc, "token_contract")["value"], "USD Coin (0xA0b8…eB48)");
    assert_eq!(ok["blind"], false);
    assert_eq!(ok["metadata"]["source"], "built-in (metadata/bundle.cbor)");
    assert!(ok["call_note"].as_str().unwrap().contains("nonce 0"));
    // The display digest, bound to the nil request id unless one is given.
    let digest = &ok["display_digest"];
    let hex_digest = digest["hex"].as_str().unwrap();
    assert_eq!(hex_digest.len(), 64);
    assert_eq!(digest["request_id"], "00000000-0000-0000-0000-000000000000");
    assert!(digest["request_id_note"].as_str().unwrap().contains("no request"));
    let fp = digest["fingerprint"].as_str().unwrap();
    assert_eq!(fp.replace('-', ""), hex_digest[..8].to_uppercase());
    assert_eq!(json_of(&run(&args))["ok"]["display_digest"]["hex"], hex_digest, "the same screen, the same digest");
    let id = "5b0a9c1e-3f4d-4e8a-9b7c-2d1e0f3a4b5c";
    let mut with_id = args.to_vec();
    with_id.extend(["--request-id", id]);
    let other = json_of(&run(&with_id));
    assert_eq!(other["ok"]["display_digest"]["request_id"], id);
    assert_ne!(other["ok"]["display_digest"]["hex"], hex_digest);
    // Text form: the title, the rows with their keys, the digest and the request id.
    let text = String::from_utf8(run(&args[..args.len() - 1]).stdout).unwrap();
    assert!(text.starts_with("Token transfer\n") && text.contains("  Amount: 1.5 USDC  [amount]"), "{text}");
    assert!(text.contains(&format!("display digest: {hex_digest} (fingerprint {fp})")), "{text}");
    assert!(text.contains("request id: 00000000-0000-0000-0000-000000000000 (the nil UUID"), "{text}");
}

#[test]
fn a_uniswap_swap_is_shown_from_its_descriptor() {
    let cases = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../metadata/erc7730-registry/registry/uniswap/tests/calldata-UniswapV3Router02.tests.json"),
    )
    .unwrap();
    let cases: Value = serde_json::from_str(&cases).unwrap();
    let raw = cases["tests"][1]["rawTx"].as_str().unwrap();
    let tx = sunstorm_core::payload::parse_evm_tx(&hex::decode(raw.trim_start_matches("0x")).unwrap()).unwrap();
    let sunstorm_core::payload::EvmTx::Eip1559(tx) = tx else { panic!("an EIP-1559 case") };
    let to = tx.to.to().unwrap().to_string();
    let data = hex::encode(&tx.input);
    let doc = json_of(&run(&["decode", "--to", &to, "--data", &data, "--value", "0", "--json"]));
    let ok = &doc["ok"];
    assert_eq!(ok["title"], "swap");
    assert_eq!(ok["clear"], true);
    assert_eq!(ok["descriptor"], "registry/uniswap/calldata-UniswapV3Router02.json");
    assert_eq!(row(&doc, "clear.contract")["value"], "Uniswap Labs");
    assert_eq!(row(&doc, "clear.params.amountIn")["label"], "Send");
    assert_eq!(row(&doc, "clear.params.amountIn")["value"], "0.006471375668623977 WETH");
    assert_eq!(row(&doc, "clear.params.amountOutMinimum")["value"], "13.901216 USDT");
    assert_eq!(row(&doc, "clear.params.fee")["value"], "0.3%");
    assert_eq!(row(&doc, "to")["value"], "Uniswap v3 Router 2 (0x68b3…Fc45)");
    assert_eq!(ok["blind"], false);
    // The same call in its real transaction (`--tx`) has the same rows but for the fees.
    let full = json_of(&run(&["decode", "--tx", raw, "--json"]));
    assert_eq!(full["ok"]["title"], "swap");
    assert_eq!(row(&full, "clear.params.amountIn"), row(&doc, "clear.params.amountIn"));
    assert_eq!(row(&full, "max_fee")["value"], "0.00032 ETH");
    // Text form.
    let out = run(&["decode", "--to", &to, "--data", &data]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("swap\n"), "{text}");
    assert!(text.contains("  Minimum to Receive: 13.901216 USDT  [clear.params.amountOutMinimum]"), "{text}");
    assert!(text.contains("clear: yes, from the ERC-7730 descriptor registry/uniswap/"), "{text}");
}

#[test]
fn call_arguments_and_metadata_files_are_checked() {
    let data = transfer_data([0x42; 20], 1);
    let usdc = format!("0x{}", hex::encode(samples::USDC));
    for (args, code) in [
        (vec!["--to", "0x12", "--data", &data], "bad_address"),
        (vec!["--to", &usdc, "--data", "xyz"], "bad_hex"),
        (vec!["--to", &usdc, "--data", &data, "--value", "1.5"], "bad_value"),
        (vec!["--to", &usdc, "--data", &data, "--from", "bob"], "bad_address"),
        (vec!["--to", &usdc, "--data", &data, "--request-id", "nope"], "bad_request_id"),
        (vec!["--to", &usdc, "--data", &data, "--metadata-key", "00"], "bad_key"),
        (vec!["--to", &usdc, "--data", &data, "--metadata", "/nonexistent/bundle.cbor"], "unreadable_metadata"),
    ] {
        let mut all = vec!["decode", "--json"];
        all.extend(args.iter().copied());
        assert_eq!(error_code(&run(&all)), code, "{args:?}");
    }
    // The built-in bundle under another key is refused.
    let other_key = "11".repeat(32);
    let out = run(&["decode", "--to", &usdc, "--data", &data, "--metadata-key", &other_key, "--json"]);
    assert_eq!(error_code(&out), "metadata_bad_signature");
    // A tampered bundle file is refused.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.cbor");
    let mut bytes =
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../metadata/bundle.cbor")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let out = run(&["decode", "--to", &usdc, "--data", &data, "--metadata", path.to_str().unwrap(), "--json"]);
    assert!(error_code(&out).starts_with("metadata_"));
}

#[test]
fn a_permit2_signature_is_shown_from_its_descriptor() {
    let cases = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../metadata/erc7730-registry/registry/uniswap/tests/eip712-uniswap-permit2.tests.json"),
    )
    .unwrap();
    let cases: Value = serde_json::from_str(&cases).unwrap();
    let typed = serde_json::to_vec(&cases["tests"][0]["data"]).unwrap();
    let args = ["decode", "--typed-data", "-", "--json"];
    let doc = json_of(&run_with(&args, Some(&typed)));
    let ok = &doc["ok"];
    assert_eq!(ok["kind"], "eip712_typed_data");
    assert_eq!(ok["clear"], true, "{doc}");
    assert_eq!(ok["blind"], false);
    let rows = ok["rows"].as_array().unwrap();
    let shown = |label: &str| rows.iter().find(|r| r["label"] == label).map(|r| r["value"].clone());
    assert_eq!(shown("Amount allowance"), Some(json!("2,500 USDC")));
    assert_eq!(shown("Approval expires"), Some(json!("2026-07-01 12:00:00 AM UTC")));
    assert!(rows.iter().all(|r| r["key"].as_str().unwrap().starts_with("clear.")
        || ["network", "domain.verifying_contract"].contains(&r["key"].as_str().unwrap())));
    // Permit2 allowances: the decoders' facts, an approval to the spender.
    assert_eq!(ok["facts"]["tokens"][0]["action"], "approve");
    assert_eq!(ok["facts"]["tokens"][0]["amount"], "2500000000");
    // Without the bundle the phone shows its own Permit2 screen.
    let mut plain = args.to_vec();
    plain.push("--no-metadata");
    let doc = json_of(&run_with(&plain, Some(&typed)));
    assert_eq!(doc["ok"]["title"], "Permit2 allowance");
    assert_eq!(doc["ok"]["clear"], false);
}
