//! `sunstorm sp sign --sample`: the sample payloads are offered, and one that does not fit
//! the account is refused before anything is sent (the signing itself runs in
//! scripts/test-quickstart.sh and the binding tests).
#![allow(clippy::unwrap_used)] // test code

use std::process::Command;

fn sign(account: &str, sample: &str) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_sunstorm"))
        .args(["sp", "sign", "--octane", "http://127.0.0.1:9", "--api-key", "k", "--json"])
        .args(["--sp-key", &"11".repeat(32), "--pair", "6f1c2a5e-8d0b-4c3e-9a7f-1b2c3d4e5f60"])
        .args(["--account", account, "--sample", sample])
        .env_remove("SUNSTORM_OCTANE_KEY")
        .output()
        .unwrap();
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or_default())
}

#[test]
fn a_sample_for_another_kind_of_account_is_refused_before_anything_is_sent() {
    let evm = "eip155:1:0x1111111111111111111111111111111111111111";
    let (code, v) = sign(evm, "solana");
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(v["error"]["code"], "bad_payload", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("solana sample is for Solana"), "{v}");
    // A fitting sample gets past the payload and fails only at octane (nothing listens on :9).
    let (code, v) = sign(evm, "erc20");
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["error"]["code"], "octane_unreachable", "{v}");
}

#[test]
fn the_samples_are_listed_in_the_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_sunstorm")).args(["sp", "sign", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for name in ["eip1559", "erc20", "eip712", "solana"] {
        assert!(help.contains(name), "{name} missing from:\n{help}");
    }
}
