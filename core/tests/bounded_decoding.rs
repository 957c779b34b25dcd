//! Attack 1 of issue 13: one payload must not freeze or crash the phone (or the appliance).
//! Every adversarial shape is decoded or refused with a specific error, on a small stack,
//! without recursion whose depth the payload controls. Timing figures are in the
//! `decode` benchmark, not here: the timeouts below only keep a hang from hanging the run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "common/adversarial.rs"]
mod adversarial;

use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use sunstorm_core::caip::{AccountId, SOLANA_MAINNET};
use sunstorm_core::cbor;
use sunstorm_core::decode::{decode, DecodeError};
use sunstorm_core::model::{PayloadKind, SignRequest};
use sunstorm_core::payload::solana::encode_compact_u16;
use sunstorm_core::payload::{signing_target, PayloadError, MAX_PAYLOAD_LEN};

/// Long enough for a debug build on a loaded 2-core machine; a hang never ends.
const HANG: Duration = Duration::from_secs(60);

fn evm() -> AccountId {
    AccountId::evm(1, [0x11; 20])
}

fn sol() -> AccountId {
    AccountId::solana(SOLANA_MAINNET, &[0x22; 32])
}

/// Decodes on a worker thread with a roomy stack; `None` if it did not finish in time
/// (the worker is left behind; the process ends with the test run).
fn decode_in_time(kind: PayloadKind, payload: Vec<u8>, account: AccountId) -> Option<Result<(), String>> {
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let target = signing_target(kind, &payload, &account.chain).map(|_| ());
            let decoded = decode(kind, &payload, &account).map(|_| ());
            let _ = tx.send((target.map_err(|e| e.code().to_string()), decoded));
        })
        .unwrap();
    let (target, decoded) = rx.recv_timeout(HANG).ok()?;
    // Signable exactly when displayable.
    assert_eq!(target.is_ok(), decoded.is_ok(), "signing_target and decode disagree: {target:?} / {decoded:?}");
    Some(target)
}

fn code_of(e: &DecodeError) -> &'static str {
    e.code()
}

#[test]
fn adversarial_typed_data_is_refused_with_a_specific_error() {
    let expect = [
        ("diamond_22", "too_complex"),
        ("diamond_widest", "too_complex"),
        ("chain_1500", "too_complex"),
        ("chain_longest", "too_complex"),
        ("self_reference", "recursive_type"),
        ("cycle", "recursive_type"),
        ("deep_array_type", "too_complex"),
        ("deep_json", "too_complex"),
        ("wide_array", "too_complex"),
        ("wide_struct_array", "too_complex"),
        ("huge_string", "too_complex"),
        ("huge_names", "too_complex"),
        ("many_types", "too_complex"),
        ("many_fields", "too_complex"),
        ("nested_tuple_type", "bad_typed_data"),
        ("nested_tuple_name", "bad_typed_data"),
        ("domain_as_primary", "eip712_domain_primary_type"),
    ];
    let all = adversarial::all_eip712();
    assert_eq!(all.len(), expect.len());
    for ((name, payload), (want_name, want_code)) in all.into_iter().zip(expect) {
        assert_eq!(name, want_name);
        assert!(payload.len() <= MAX_PAYLOAD_LEN, "{name}: {} bytes", payload.len());
        let got = decode_in_time(PayloadKind::Eip712TypedData, payload, evm())
            .unwrap_or_else(|| panic!("{name}: no answer within {HANG:?} (the decoder hangs)"));
        assert_eq!(got, Err(want_code.to_string()), "{name}");
    }
}

#[test]
fn the_worst_payloads_within_the_limits_are_shown() {
    use sunstorm_core::payload::eip712::limits;
    let accepts = |p: &[u8]| signing_target(PayloadKind::Eip712TypedData, p, &evm().chain).is_ok();
    for (name, payload) in [
        ("hash_work_1k", adversarial::worst_hash_work(1_024, accepts)),
        ("hash_work_16k", adversarial::worst_hash_work(limits::MAX_TYPES_TEXT, accepts)),
        ("struct_values", adversarial::worst_hash_work(200, accepts)),
        ("expansion", adversarial::worst_expansion(4, 5)),
        ("depth", adversarial::worst_depth(limits::MAX_TYPE_DEPTH)),
        ("strings", adversarial::worst_strings(limits::MAX_STRING_LEN)),
    ] {
        assert!(payload.len() <= MAX_PAYLOAD_LEN, "{name}: {} bytes", payload.len());
        let got = decode_in_time(PayloadKind::Eip712TypedData, payload, evm()).unwrap();
        assert_eq!(got, Ok(()), "{name} is within the limits");
    }
    // One more struct value, or a deeper type, is refused.
    let more = adversarial::worst_struct_values(limits::MAX_STRUCT_VALUES + 1, 200);
    assert_eq!(decode_in_time(PayloadKind::Eip712TypedData, more, evm()).unwrap(), Err("too_complex".into()));
    let d = decode(PayloadKind::Eip712TypedData, &adversarial::worst_struct_values(64, limits::MAX_TYPES_TEXT), &evm());
    assert!(matches!(d, Err(DecodeError::Payload(PayloadError::TooComplex { what: "hash_work", .. }))), "{d:?}");
    let deeper = adversarial::worst_depth(limits::MAX_TYPE_DEPTH + 1);
    assert_eq!(decode_in_time(PayloadKind::Eip712TypedData, deeper, evm()).unwrap(), Err("too_complex".into()));
}

/// A Seaport 1.5 order (OpenSea's listing format) with `items` consideration items.
fn seaport_order(items: usize) -> Vec<u8> {
    let item = |i: usize| {
        serde_json::json!({
        "itemType": 0, "token": "0x0000000000000000000000000000000000000000",
        "identifierOrCriteria": "0", "startAmount": format!("{}", 1000 + i), "endAmount": format!("{}", 1000 + i),
        "recipient": "0x5eee75727d804a2b13038928d36F8B188945A57A"})
    };
    serde_json::to_vec(&serde_json::json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}],
            "OrderComponents": [
                {"name": "offerer", "type": "address"}, {"name": "zone", "type": "address"},
                {"name": "offer", "type": "OfferItem[]"}, {"name": "consideration", "type": "ConsiderationItem[]"},
                {"name": "orderType", "type": "uint8"}, {"name": "startTime", "type": "uint256"},
                {"name": "endTime", "type": "uint256"}, {"name": "zoneHash", "type": "bytes32"},
                {"name": "salt", "type": "uint256"}, {"name": "conduitKey", "type": "bytes32"},
                {"name": "counter", "type": "uint256"}],
            "OfferItem": [
                {"name": "itemType", "type": "uint8"}, {"name": "token", "type": "address"},
                {"name": "identifierOrCriteria", "type": "uint256"}, {"name": "startAmount", "type": "uint256"},
                {"name": "endAmount", "type": "uint256"}],
            "ConsiderationItem": [
                {"name": "itemType", "type": "uint8"}, {"name": "token", "type": "address"},
                {"name": "identifierOrCriteria", "type": "uint256"}, {"name": "startAmount", "type": "uint256"},
                {"name": "endAmount", "type": "uint256"}, {"name": "recipient", "type": "address"}]
        },
        "primaryType": "OrderComponents",
        "domain": {"name": "Seaport", "version": "1.5", "chainId": 1,
                   "verifyingContract": "0x00000000000000ADc04C56Bf30aC9d3c0aAF14dC"},
        "message": {
            "offerer": "0x001e2b7dE757bA469a57bF6b23d982458a07eFcE", "zone": "0x0000000000000000000000000000000000000000",
            "offer": [{"itemType": 2, "token": "0xBC4CA0EdA7647A8aB7C2061c2E118A18a936f13D",
                       "identifierOrCriteria": "1234", "startAmount": "1", "endAmount": "1"}],
            "consideration": (0..items).map(item).collect::<Vec<_>>(),
            "orderType": 0, "startTime": "1700000000", "endTime": "1900000000",
            "zoneHash": format!("0x{}", "00".repeat(32)), "salt": "42",
            "conduitKey": format!("0x{}", "00".repeat(32)), "counter": "0"
        }
    }))
    .unwrap()
}

/// A Permit2 `PermitBatch` for `n` tokens.
fn permit2_batch(n: usize) -> Vec<u8> {
    let details: Vec<serde_json::Value> = (0..n)
        .map(|i| serde_json::json!({"token": format!("0x{:040x}", i + 1), "amount": "1000", "expiration": 1_900_000_000u64, "nonce": 0}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "PermitDetails": [{"name": "token", "type": "address"}, {"name": "amount", "type": "uint160"},
                              {"name": "expiration", "type": "uint48"}, {"name": "nonce", "type": "uint48"}],
            "PermitBatch": [{"name": "details", "type": "PermitDetails[]"}, {"name": "spender", "type": "address"},
                            {"name": "sigDeadline", "type": "uint256"}]
        },
        "primaryType": "PermitBatch",
        "domain": {"name": "Permit2", "chainId": 1, "verifyingContract": "0x000000000022D473030F116dDEE9F6B43aC78BA3"},
        "message": {"details": details, "spender": "0x5eee75727d804a2b13038928d36F8B188945A57A", "sigDeadline": 1_900_000_000u64}
    }))
    .unwrap()
}

#[test]
fn real_world_typed_data_is_within_the_limits() {
    for (name, payload) in [("seaport_order_30_items", seaport_order(30)), ("permit2_batch_100", permit2_batch(100))] {
        assert_eq!(decode_in_time(PayloadKind::Eip712TypedData, payload, evm()).unwrap(), Ok(()), "{name}");
    }
    let d = decode(PayloadKind::Eip712TypedData, &permit2_batch(100), &evm()).unwrap();
    assert_eq!(d.facts.tokens.len(), 100, "every token of the batch is a fact");
    assert_eq!(d.facts.recipients, ["0x5eee75727D804A2b13038928D36F8b188945A57a"]);
    assert!(!d.facts.unlimited_approval);
}

#[test]
fn too_complex_names_the_limit() {
    let d = decode(PayloadKind::Eip712TypedData, &adversarial::diamond(22), &evm()).unwrap_err();
    assert_eq!(code_of(&d), "too_complex");
    let DecodeError::Payload(PayloadError::TooComplex { what, limit }) = &d else { panic!("{d:?}") };
    assert_eq!(*what, "expanded_types");
    assert!(d.to_string().contains(&limit.to_string()), "{d}");
    let d = decode(PayloadKind::Eip712TypedData, &adversarial::chain(1_500), &evm()).unwrap_err();
    assert!(matches!(d, DecodeError::Payload(PayloadError::TooComplex { what: "types", .. })), "{d:?}");
}

/// What each payload kind gets thrown at it on the small stack.
fn small_stack_corpus() -> Vec<(PayloadKind, Vec<u8>)> {
    let mut all: Vec<(PayloadKind, Vec<u8>)> =
        adversarial::all_eip712().into_iter().map(|(_, p)| (PayloadKind::Eip712TypedData, p)).collect();
    // The deepest JSON serde_json itself would accept (128), inside an object.
    all.push((PayloadKind::Eip712TypedData, adversarial::deep_json(126)));
    // EVM: nested RLP lists where the access list goes, and the largest calldata.
    let mut nested = vec![0x02];
    nested.extend(std::iter::repeat_n(0xc1u8, MAX_PAYLOAD_LEN - 2));
    nested.push(0x80);
    all.push((PayloadKind::EvmTransaction, nested));
    all.push((PayloadKind::EvmTransaction, std::iter::repeat_n(0xf9u8, 4096).collect()));
    // EIP-191: the longest text, full of characters the sanitiser escapes.
    all.push((PayloadKind::Eip191Message, "\u{202e}\u{200b}a".repeat(MAX_PAYLOAD_LEN / 7).into_bytes()));
    // Solana: as many instructions of unknown programs as a transaction carries, and more.
    all.push((PayloadKind::SolanaTransaction, solana_instructions(340)));
    all.push((PayloadKind::SolanaTransaction, many_solana_instructions()));
    all
}

/// A legacy message with 3 keys and `n` empty instructions of program #1.
fn solana_instructions(n: u16) -> Vec<u8> {
    let mut m = vec![1u8, 0, 0, 3];
    for k in [[0x22u8; 32], [7; 32], [8; 32]] {
        m.extend(k);
    }
    m.extend([9u8; 32]);
    encode_compact_u16(n, &mut m);
    for _ in 0..n {
        m.extend([1u8, 0, 0]);
    }
    m
}

/// 30,000 instructions: 90 KB, far more than a transaction can carry.
fn many_solana_instructions() -> Vec<u8> {
    solana_instructions(30_000)
}

fn cbor_corpus() -> Vec<Vec<u8>> {
    vec![
        vec![0x81; 100_000],                               // arrays in arrays
        vec![0xc6; 100_000],                               // tags on tags
        [0xa1, 0x00].repeat(50_000),                       // maps in maps
        [vec![0x9f; 50_000], vec![0xff; 50_000]].concat(), // indefinite arrays
    ]
}

fn run_small_stack_corpus() {
    thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            for (kind, payload) in small_stack_corpus() {
                for account in [evm(), sol()] {
                    let _ = signing_target(kind, &payload, &account.chain);
                    let _ = decode(kind, &payload, &account);
                }
            }
            for bytes in cbor_corpus() {
                assert!(cbor::from_slice::<ciborium::Value>(&bytes).is_err());
                assert!(cbor::from_canonical_slice::<SignRequest>(&bytes).is_err());
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// A stack overflow aborts the process (uniffi cannot catch it), so the corpus runs in a
/// child process: a crash there fails this test instead of taking the whole run down.
#[test]
fn decoders_fit_a_256_kib_stack() {
    const CHILD: &str = "SUNSTORM_SMALL_STACK_CHILD";
    if std::env::var_os(CHILD).is_some() {
        run_small_stack_corpus();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "decoders_fit_a_256_kib_stack", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the decoders crashed on a 256 KiB stack ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

#[test]
fn solana_and_evm_limits_hold_on_the_largest_inputs() {
    let d = decode_in_time(PayloadKind::SolanaTransaction, many_solana_instructions(), sol()).unwrap();
    assert_eq!(d, Err("bad_solana_message".into()), "no transaction can carry it");
    // The most instructions a transaction can carry are shown (blind).
    let d = decode_in_time(PayloadKind::SolanaTransaction, solana_instructions(340), sol()).unwrap();
    assert_eq!(d, Ok(()));
    let legit = serde_json::to_vec(&serde_json::json!({
        "types": {"EIP712Domain": [{"name": "chainId", "type": "uint256"}],
                  "M": [{"name": "s", "type": "string"}]},
        "primaryType": "M", "domain": {"chainId": 1}, "message": {"s": "hello"}
    }))
    .unwrap();
    assert_eq!(decode_in_time(PayloadKind::Eip712TypedData, legit, evm()).unwrap(), Ok(()));
}
