//! The README's main command: `sunstorm demo` runs the whole story and its JSON carries
//! everything needed to check each of the three signatures with code independent of the
//! signing path (plain ed25519-dalek, k256 and keccak here, not the core's checkers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use ed25519_dalek::{Signature, VerifyingKey};
use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, VerifyingKey as EcdsaKey};
use serde_json::Value;
use sha3::{Digest, Keccak256};

fn sunstorm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sunstorm"))
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().expect("base64 string")).expect("valid base64")
}

fn key32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

fn verify_ed25519(key: &[u8; 32], tag: &str, body: &[u8], sig: &[u8]) -> bool {
    let mut msg = tag.as_bytes().to_vec();
    msg.push(0);
    msg.extend_from_slice(body);
    let sig = Signature::from_slice(sig).unwrap();
    VerifyingKey::from_bytes(key).unwrap().verify_strict(&msg, &sig).is_ok()
}

fn eth_address(key: &EcdsaKey) -> String {
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    format!("0x{}", hex::encode(&hash[12..]))
}

fn recover(digest: [u8; 32], sig: &[u8], v_base: u8) -> String {
    assert_eq!(sig.len(), 65);
    let s = EcdsaSignature::from_slice(&sig[..64]).unwrap();
    assert!(s.normalize_s().is_none(), "the appliance must return low-s signatures");
    let recid = RecoveryId::from_byte(sig[64] - v_base).unwrap();
    eth_address(&EcdsaKey::recover_from_prehash(&digest, &s, recid).unwrap())
}

#[test]
fn demo_json_has_three_independently_verifiable_signatures() {
    let out = sunstorm().args(["demo", "--json"]).output().unwrap();
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stdout));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document on stdout");
    assert_eq!(doc["ok"], true);

    let steps = doc["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for expected in
        ["bond phone ↔ appliance", "metadata bundle from octane", "pair (two-device)", "pair (single-device)", "revoke"]
    {
        assert!(names.contains(&expected), "missing step {expected}: {names:?}");
    }
    assert!(steps.iter().all(|s| s["ok"] == true && s["ms"].is_u64()));
    let blocked: Vec<&Value> = steps.iter().filter(|s| s["outcome"] == "blocked by guardrail").collect();
    assert_eq!(blocked.len(), 1, "exactly one request is blocked by a guardrail");
    assert!(doc["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true));
    uuid::Uuid::parse_str(doc["pair_id"].as_str().unwrap()).unwrap();
    assert!(doc["bindings"].as_array().unwrap().len() >= 2);

    let octane_key = key32(&doc["octane_public_key"]);
    let sp_key = key32(&doc["sp_public_key"]);
    let signed = doc["signed"].as_array().unwrap();
    assert_eq!(signed.len(), 4, "an Aave deposit, EIP-1559, Solana and EIP-712 are signed");
    // The contract call (and the permit) were shown from their ERC-7730 descriptors.
    let descriptors: Vec<&str> = signed.iter().filter_map(|s| s["descriptor"].as_str()).collect();
    assert!(descriptors.contains(&"registry/aave/calldata-lpv3.json"), "{descriptors:?}");
    let mut kinds = Vec::new();
    for s in signed {
        let body = b64(&s["body"]);
        let payload = b64(&s["payload"]);
        // The SP and octane signed the same canonical body, which carries the payload.
        assert_eq!(key32(&s["sp_public_key"]), sp_key);
        assert_eq!(key32(&s["octane_public_key"]), octane_key);
        assert!(verify_ed25519(&sp_key, "sigil/v1/sp-sign-request", &body, &b64(&s["sp_sig"])));
        assert!(verify_ed25519(&octane_key, "sigil/v1/octane-sign-request", &body, &b64(&s["octane_sig"])));
        assert!(!verify_ed25519(&octane_key, "sigil/v1/sp-sign-request", &body, &b64(&s["octane_sig"])));
        assert!(body.windows(payload.len()).any(|w| w == payload.as_slice()));
        // The display digest the SP received, with the appliance's receipt over it.
        let digest = s["display_digest"].as_str().unwrap();
        assert_eq!(digest.len(), 64);
        let fingerprint = s["display_fingerprint"].as_str().unwrap();
        assert_eq!(fingerprint.replace('-', "").to_lowercase(), digest[..8]);
        let receipt = b64(&s["receipt"]["body"]);
        let identity = key32(&doc["appliance_identity"]);
        assert!(verify_ed25519(&identity, "sigil/v1/sign-receipt", &receipt, &b64(&s["receipt"]["sig"])));
        assert!(receipt.windows(32).any(|w| hex::encode(w) == digest), "the receipt names the digest");

        let appliance_sig = b64(&s["appliance_sig"]);
        let account = s["account"].as_str().unwrap();
        let address = account.rsplit(':').next().unwrap();
        let kind = s["kind"].as_str().unwrap();
        kinds.push(kind.to_string());
        match kind {
            "evm_transaction" => {
                // Typed (EIP-1559) transaction: keccak of the unsigned bytes, y-parity v.
                let digest: [u8; 32] = Keccak256::digest(&payload).into();
                let signer = recover(digest, &appliance_sig, 0);
                assert_eq!(signer, address.to_lowercase());
                assert_eq!(s["evm_signer"].as_str().unwrap().to_lowercase(), signer);
            }
            "eip712_typed_data" => {
                let typed: alloy_dyn_abi::TypedData = serde_json::from_slice(&payload).unwrap();
                let digest = typed.eip712_signing_hash().unwrap();
                let signer = recover(digest.0, &appliance_sig, 27);
                assert_eq!(signer, address.to_lowercase());
            }
            "solana_transaction" => {
                let key: [u8; 32] = bs58::decode(address).into_vec().unwrap().try_into().unwrap();
                let sig = Signature::from_slice(&appliance_sig).unwrap();
                VerifyingKey::from_bytes(&key).unwrap().verify_strict(&payload, &sig).unwrap();
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    kinds.sort();
    assert_eq!(kinds, ["eip712_typed_data", "evm_transaction", "evm_transaction", "solana_transaction"]);
}

#[test]
fn demo_narrates_and_exits_zero_on_a_small_lossy_link() {
    let out = sunstorm()
        .args(["demo", "--mtu", "23", "--loss", "0.01", "--latency-ms", "2"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Summary"));
    assert!(text.contains("checks held"));
    assert!(text.contains("confirm on your appliance"));
    assert!(!text.contains('\x1b'), "no colour codes when stdout is not a terminal");
}

#[test]
fn demo_bonds_and_signs_over_a_five_percent_loss_link() {
    // 5 % of PDUs lost: bonding and every request recover by resending the same messages.
    let out = sunstorm().args(["demo", "--json", "--loss", "0.05"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["appliance_identity"].is_string(), "bonded: {doc}");
}

fn assert_clear_error(out: std::process::Output, exit: i32) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(exit), "stderr: {err}");
    assert!(err.contains("error ["), "a one-line error with a code: {err}");
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "no backtrace: {err}");
    }
}

#[test]
fn clear_errors_for_unreachable_octane_missing_socket_and_bad_link() {
    let dir = tempfile::tempdir().unwrap();
    // Octane unreachable: nothing listens on port 9 of loopback.
    let out = sunstorm()
        .args(["sp", "create-session", "--octane", "http://127.0.0.1:9", "--api-key", "k", "--chains", "eip155:1"])
        .output()
        .unwrap();
    assert_clear_error(out, 1);
    // No appliance on that socket.
    let missing = dir.path().join("no-appliance.sock");
    let out = sunstorm()
        .args(["appliance", "info", "--socket"])
        .arg(&missing)
        .arg("--home")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_clear_error(out, 1);
    // A bad link is a rejection (exit 2) with its reason.
    let out = sunstorm().args(["link", "http://sigilvault.xyz/pair?session=abc"]).output().unwrap();
    assert_clear_error(out, 2);
}
