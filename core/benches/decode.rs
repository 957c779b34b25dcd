//! Decode benchmark (issue 13, attack 1): the worst EIP-712 payloads within the 128 KiB
//! payload cap, and the largest payload of every other kind, each decoded (the phone:
//! `decode::decode`, which derives the signing target first) or refused. Every one must
//! take well under 50 ms.
//!
//! Run: `cargo bench -p sunstorm-core --bench decode`. Prints a Markdown table (pasted in
//! `docs/signing.md`, *Bounded decoding*).

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

#[path = "../tests/common/adversarial.rs"]
mod adversarial;

use std::hint::black_box;
use std::time::{Duration, Instant};

use sunstorm_core::caip::{AccountId, SOLANA_MAINNET};
use sunstorm_core::decode::decode;
use sunstorm_core::model::PayloadKind;
use sunstorm_core::payload::eip712::limits;
use sunstorm_core::payload::solana::{encode_compact_u16, MAX_TRANSACTION_SIZE};
use sunstorm_core::payload::{signing_target, MAX_PAYLOAD_LEN};

const RUNS: usize = 25;

/// Median and slowest of [`RUNS`] runs of the appliance's check alone (`signing_target`).
fn measure_target(kind: PayloadKind, payload: &[u8], account: &AccountId) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        let _ = black_box(signing_target(kind, black_box(payload), &account.chain));
        times.push(t.elapsed());
    }
    times.sort();
    (times[RUNS / 2], times[RUNS - 1])
}

fn measure(kind: PayloadKind, payload: &[u8], account: &AccountId) -> (Duration, Duration, String) {
    let mut times = Vec::with_capacity(RUNS);
    let mut outcome = String::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let r = black_box(decode(kind, black_box(payload), account));
        times.push(t.elapsed());
        outcome = match r {
            Ok(d) if d.blind => "shown (blind)".into(),
            Ok(_) => "shown".into(),
            Err(e) => format!("refused `{}`", e.code()),
        };
    }
    times.sort();
    (times[RUNS / 2], times[RUNS - 1], outcome)
}

fn evm_max_calldata() -> Vec<u8> {
    use alloy_consensus::{SignableTransaction, TxEip1559};
    let mut input = vec![0x09, 0x5e, 0xa7, 0xb3];
    input.resize(MAX_PAYLOAD_LEN - 100, 0xff);
    let tx = TxEip1559 {
        chain_id: 1,
        gas_limit: 30_000_000,
        to: alloy_primitives::TxKind::Call([1u8; 20].into()),
        input: input.into(),
        ..Default::default()
    };
    let mut p = Vec::new();
    tx.encode_for_signing(&mut p);
    p
}

fn solana_max_instructions() -> Vec<u8> {
    let mut m = vec![1u8, 0, 0, 3];
    for k in [[0x22u8; 32], [7; 32], [8; 32]] {
        m.extend(k);
    }
    m.extend([9u8; 32]);
    // As many as a transaction can carry (larger messages are refused unread).
    let n = u16::try_from((MAX_TRANSACTION_SIZE - 65 - 135) / 3).unwrap();
    encode_compact_u16(n, &mut m);
    for _ in 0..n {
        m.extend([1u8, 0, 0]);
    }
    m
}

fn main() {
    let evm = AccountId::evm(1, [0x11; 20]);
    let sol = AccountId::solana(SOLANA_MAINNET, &[0x22; 32]);
    let mut cases: Vec<(String, PayloadKind, Vec<u8>, &AccountId)> = adversarial::all_eip712()
        .into_iter()
        .map(|(n, p)| (format!("EIP-712 {n}"), PayloadKind::Eip712TypedData, p, &evm))
        .collect();
    let accepts = |p: &[u8]| signing_target(PayloadKind::Eip712TypedData, p, &evm.chain).is_ok();
    let accepted = [
        ("EIP-712 worst accepted: hash work, 4 KiB of types", adversarial::worst_hash_work(4_096, accepts)),
        (
            "EIP-712 worst accepted: hash work, 16 KiB of types",
            adversarial::worst_hash_work(limits::MAX_TYPES_TEXT, accepts),
        ),
        ("EIP-712 worst accepted: most struct values of a small type", adversarial::worst_hash_work(200, accepts)),
        ("EIP-712 worst accepted: expansion (781 nodes, 5^4 leaves)", adversarial::worst_expansion(4, 5)),
        ("EIP-712 worst accepted: depth", adversarial::worst_depth(limits::MAX_TYPE_DEPTH)),
        ("EIP-712 worst accepted: strings", adversarial::worst_strings(limits::MAX_STRING_LEN)),
    ];
    for (n, p) in accepted {
        cases.push((n.into(), PayloadKind::Eip712TypedData, p, &evm));
    }
    cases.push(("EVM tx, 128 KiB calldata".into(), PayloadKind::EvmTransaction, evm_max_calldata(), &evm));
    cases.push((
        "EIP-191, 128 KiB of escapes".into(),
        PayloadKind::Eip191Message,
        "\u{202e}\u{200b}a".repeat(MAX_PAYLOAD_LEN / 7).into_bytes(),
        &evm,
    ));
    cases.push((
        "Solana, most instructions a transaction carries".into(),
        PayloadKind::SolanaTransaction,
        solana_max_instructions(),
        &sol,
    ));
    cases.push(("Solana, 128 KiB".into(), PayloadKind::SolanaTransaction, vec![1u8; MAX_PAYLOAD_LEN], &sol));

    println!("| payload | bytes | outcome | phone: `decode` median / max | appliance: `signing_target` median / max |");
    println!("|---|---:|---|---:|---:|");
    let mut worst = Duration::ZERO;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (name, kind, payload, account) in &cases {
        assert!(payload.len() <= MAX_PAYLOAD_LEN, "{name}: {} bytes", payload.len());
        let (median, max, outcome) = measure(*kind, payload, account);
        let (t_median, t_max) = measure_target(*kind, payload, account);
        worst = worst.max(max).max(t_max);
        println!(
            "| {name} | {} | {outcome} | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
            payload.len(),
            ms(median),
            ms(max),
            ms(t_median),
            ms(t_max)
        );
    }
    println!("\nslowest single run: {:.2} ms", ms(worst));
}
