//! Conformance against the ERC-7730 registry's own test cases.
//!
//! Every case of `registry/*/tests/*.tests.json` in the vendored registry is rendered from
//! the committed, signed metadata bundle: `rawTx` through `payload::parse_evm_tx` and
//! `DescriptorSet::render_transaction` (with the signing account recovered from the
//! transaction's signature by `payload::evm_signer_address`, as the phone knows the account
//! it signs for; unsigned cases have none), EIP-712 `data` through
//! `payload::parse_typed_data` and `render_typed_data`.
//!
//! The screen is compared as the phone shows it: the intent as the title, then one
//! "label value" line per row, in order. Two rates are measured:
//!
//! - **raw**: the definition — every `expectedTexts` entry, whitespace removed,
//!   appears in the screen's text, whitespace removed. Nothing else is adjusted.
//! - **adjusted** (the gate): the expectations are captures of Ledger devices, so before
//!   comparing, the device-only text that no phone screen shows is taken out of them by
//!   the fixed rules below ([`DEVICE_PHRASES`], [`DEVICE_FRAGMENTS`], [`GAP_MARKERS`], a
//!   final `?`); our thousands separators are ignored (the device groups no digits), and
//!   an expected hex value written in a single case (no EIP-55 checksum case; Ledger shows
//!   some addresses so) compares without case. No rule names a case or an expected value.
//!
//! Each failure is put in a cause found mechanically. `docs/metadata.md` carries the
//! report (regenerate with `SUNSTORM_UPDATE_DOCS=1`); the test fails if the report is
//! stale or the adjusted rate falls below the gate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy_consensus::{SignableTransaction, Signed, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::Address;
use sunstorm_core::caip::ChainId;
use sunstorm_core::decode::erc7730::{DescriptorSet, NoAddressBook, Screen};
use sunstorm_core::metadata::{open_bundle, DEV_METADATA_PUBLIC_KEY};
use sunstorm_core::model::PayloadKind;
use sunstorm_core::payload::{
    evm_signer_address, parse_evm_tx, parse_typed_data, signing_target, EvmTx, SigningTarget,
};

/// The goal.
const GOAL_PERCENT: f64 = 95.0;
/// The gate on the adjusted rate, the rate measured with the bundle's sources (305 of
/// 425): the test fails below it. The goal is not reached; docs/metadata.md says what
/// blocks each remaining case.
const GATE_PERCENT: f64 = 71.5;
const START: &str = "<!-- conformance:start -->";
const END: &str = "<!-- conformance:end -->";

/// Ledger screen text no phone screen shows, removed from expectations (each leaves a gap:
/// what stood before and after it must still appear, in order): the review and sign
/// prompts around the intent ("Review transaction to Swap", whose large "R" the capture
/// reads apart as "R" + "eview transaction to …"), the swipe and hold prompts, and the
/// "More" button after a value the device truncates.
const DEVICE_PHRASES: &[&str] = &[
    "Review transaction to",
    "eview transaction to",
    "Sign transaction to",
    "Swipe to review",
    "Hold to sign",
    "... More",
];
/// Whole expectations that are fragments of those prompts or of the device's final
/// "Transaction signed" screen: they carry nothing of the transaction.
const DEVICE_FRAGMENTS: &[&str] = &["R", "review", "signed"];
/// Where the device leaves text out: `...` where it truncates a label or value, `???`
/// where it has no ticker for a token (our screen shows "base units" there). The text
/// around a marker must appear in order.
const GAP_MARKERS: &[&str] = &["...", "???"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// r‖s‖v of a signed transaction in the `v` convention of its signing target.
fn sig_bytes<T: SignableTransaction<alloy_primitives::Signature>>(
    s: &Signed<T>,
    legacy_chain: Option<u64>,
) -> Option<[u8; 65]> {
    let sig = s.signature();
    if sig.r().is_zero() || sig.s().is_zero() {
        return None;
    }
    let mut out = [0u8; 65];
    out[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    out[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
    let parity = u64::from(sig.v());
    let v = match legacy_chain {
        Some(c) => 35 + 2 * c + parity,
        None => parity,
    };
    out[64] = u8::try_from(v).ok()?;
    Some(out)
}

/// The unsigned transaction of a raw transaction that may carry a signature, and the
/// account that signed it (when it is signed).
fn unsigned_tx(raw: &[u8]) -> Result<(EvmTx, Option<Address>), String> {
    if let Ok(tx) = parse_evm_tx(raw) {
        return Ok((tx, None));
    }
    let mut buf = raw;
    let env = TxEnvelope::decode_2718(&mut buf).map_err(|e| format!("rawTx does not decode: {e}"))?;
    let mut unsigned = Vec::new();
    let sig = match &env {
        TxEnvelope::Legacy(s) => {
            s.tx().encode_for_signing(&mut unsigned);
            s.tx().chain_id.and_then(|c| sig_bytes(s, Some(c)))
        }
        TxEnvelope::Eip2930(s) => {
            s.tx().encode_for_signing(&mut unsigned);
            sig_bytes(s, None)
        }
        TxEnvelope::Eip1559(s) => {
            s.tx().encode_for_signing(&mut unsigned);
            sig_bytes(s, None)
        }
        other => return Err(format!("unsupported transaction type {}", other.tx_type())),
    };
    let tx = parse_evm_tx(&unsigned).map_err(|e| format!("payload refused: {e}"))?;
    let from = sig.and_then(|sig| {
        let target = signing_target(PayloadKind::EvmTransaction, &unsigned, &ChainId::Evm(tx.chain_id())).ok()?;
        matches!(target, SigningTarget::EvmDigest { .. }).then_some(())?;
        evm_signer_address(&target, &sig).ok().map(Address::from)
    });
    Ok((tx, from))
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Removes `,` between digits (our thousands separators).
fn ungroup(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, c) in chars.iter().enumerate() {
        let between_digits = *c == ','
            && i > 0
            && chars.get(i - 1).is_some_and(|p| p.is_ascii_digit())
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if !between_digits {
            out.push(*c);
        }
    }
    out
}

/// Lowercases the hex digits of every `0x…` word (words end at whitespace).
fn hex_lower(s: &str) -> String {
    s.split_inclusive(char::is_whitespace)
        .map(|w| match w.strip_prefix("0x") {
            Some(rest) => {
                let digits = rest.chars().take_while(char::is_ascii_hexdigit).count();
                let (hex, tail) = rest.split_at(digits);
                format!("0x{}{tail}", hex.to_ascii_lowercase())
            }
            None => w.to_string(),
        })
        .collect()
}

/// An expectation that is one hex value written in a single case (no EIP-55 checksum
/// case): such a value is compared without case.
fn single_case_hex(squashed: &str) -> bool {
    let Some(digits) = squashed.strip_prefix("0x") else { return false };
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_hexdigit())
        && (!digits.chars().any(|c| c.is_ascii_lowercase()) || !digits.chars().any(|c| c.is_ascii_uppercase()))
}

/// The screen as the phone shows it: the intent as the title, then "label value" lines.
fn screen_lines(s: &Screen) -> String {
    let mut t = s.intent.clone();
    for r in &s.rows {
        t.push('\n');
        t.push_str(&r.label);
        t.push(' ');
        t.push_str(&r.value);
    }
    t
}

/// An expectation with the device-only text taken out: the parts that must appear in
/// order (none when the expectation is device text only).
fn adjusted_parts(expected: &str) -> Vec<String> {
    let squashed = squash(expected);
    if DEVICE_FRAGMENTS.iter().any(|f| squash(f) == squashed) {
        return Vec::new();
    }
    let mut text = squashed;
    if text.ends_with('?') && !text.ends_with("???") {
        text.pop();
    }
    const GAP: char = '\u{1}';
    for p in DEVICE_PHRASES.iter().chain(GAP_MARKERS) {
        text = text.replace(&squash(p), &GAP.to_string());
    }
    if single_case_hex(&text) {
        return vec![text.to_ascii_lowercase()];
    }
    text.split(GAP).filter(|p| !p.is_empty()).map(ungroup).collect()
}

fn contains_in_order(hay: &str, parts: &[String]) -> bool {
    let mut rest = hay;
    for p in parts {
        match rest.find(p.as_str()) {
            Some(at) => rest = rest.get(at + p.len()..).unwrap_or(""),
            None => return false,
        }
    }
    true
}

struct Outcome {
    entity: String,
    case: String,
    raw_pass: bool,
    pass: bool,
    reason: String,
    category: &'static str,
}

const C_PAYLOAD: &str = "payload refused by core::payload (legacy EIP-155 v must fit one byte)";
const C_NO_DESC: &str = "no descriptor: the message's EIP-712 domain differs from the descriptor's constraint";
const C_TOKEN: &str = "token not in any vendored token source (vault shares, new tokens)";
const C_CASE: &str = "spelt in another case (tickers: our only source, Ledger's public list, \
                      writes capitals)";
const C_ENS: &str = "ENS reverse name (Ledger's name service; nothing is resolved offline)";
const C_SENDER: &str = "signing account: the capture shows Ledger's own account (unsigned rawTx, \
                        or another signer)";
const C_LEDGER_UNKNOWN: &str = "Ledger had no ticker (`???`, base units) where we know the token";
const C_OTHER: &str = "other (see the case)";

/// The cause of a failure: the first, in this order, that explains a missing expectation.
fn classify(screen: &Screen, text: &str, missing: &[&String]) -> &'static str {
    let lower = text.to_lowercase();
    let from_row = screen.rows.iter().any(|r| r.key.ends_with("@.from"));
    let of = |m: &str| -> &'static str {
        let sq = squash(m);
        let parts: Vec<String> = adjusted_parts(m).iter().map(|p| p.to_lowercase()).collect();
        if sq.contains(".eth") {
            C_ENS
        } else if screen.has_warning("unknown_token") && sq.chars().any(|c| c.is_ascii_digit()) {
            C_TOKEN
        } else if contains_in_order(&lower, &parts) {
            C_CASE
        } else if sq.contains("???") {
            C_LEDGER_UNKNOWN
        } else if sq.contains("0x") && (from_row || screen.has_warning("sender_unknown")) {
            C_SENDER
        } else {
            C_OTHER
        }
    };
    let found: Vec<&'static str> = missing.iter().map(|m| of(m)).collect();
    [C_TOKEN, C_CASE, C_LEDGER_UNKNOWN, C_SENDER, C_ENS, C_OTHER]
        .into_iter()
        .find(|c| found.contains(c))
        .unwrap_or(C_OTHER)
}

fn run_case(set: &DescriptorSet, case: &serde_json::Value) -> (bool, bool, String, &'static str) {
    let expected: Vec<String> = case
        .get("expectedTexts")
        .and_then(|e| e.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).map(str::to_string).collect())
        .unwrap_or_default();
    let rendered = if let Some(raw) = case.get("rawTx").and_then(|r| r.as_str()) {
        let bytes = match hex::decode(raw.trim_start_matches("0x")) {
            Ok(b) => b,
            Err(e) => return (false, false, format!("rawTx is not hex: {e}"), C_OTHER),
        };
        match unsigned_tx(&bytes) {
            Ok((tx, from)) => set.render_transaction(&tx, from, &NoAddressBook),
            Err(e) => return (false, false, e, C_PAYLOAD),
        }
    } else if let Some(data) = case.get("data") {
        match parse_typed_data(data.to_string().as_bytes()) {
            Ok(td) => set.render_typed_data(&td, None, &NoAddressBook),
            Err(e) => return (false, false, format!("payload refused: {e}"), C_PAYLOAD),
        }
    } else {
        return (false, false, "neither rawTx nor data".into(), C_OTHER);
    };
    let screen = match rendered {
        Ok(Some(s)) => s,
        Ok(None) => return (false, false, "no descriptor matched".into(), C_NO_DESC),
        Err(e) => return (false, false, format!("{}: {e}", e.code()), C_OTHER),
    };
    let lines = screen_lines(&screen);
    let raw_text = squash(&lines);
    let raw_pass = expected.iter().all(|e| raw_text.contains(&squash(e)));
    let text = ungroup(&raw_text);
    let text_hex_lower = ungroup(&squash(&hex_lower(&lines)));
    let found = |e: &String| {
        let hay = if single_case_hex(&squash(e)) { &text_hex_lower } else { &text };
        contains_in_order(hay, &adjusted_parts(e))
    };
    let missing: Vec<&String> = expected.iter().filter(|e| !found(e)).collect();
    if missing.is_empty() {
        return (raw_pass, true, String::new(), "");
    }
    let category = classify(&screen, &text, &missing);
    let quoted: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
    let shown = lines.replace('\n', " · ").replace('|', "\\|");
    (false, false, format!("missing {}; shown: {shown}", quoted.join(", ")), category)
}

fn pct(n: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    }
}

fn report(outcomes: &[Outcome]) -> (String, f64) {
    let total = outcomes.len();
    let passed = outcomes.iter().filter(|o| o.pass).count();
    let raw = outcomes.iter().filter(|o| o.raw_pass).count();
    let mut per: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for o in outcomes {
        let e = per.entry(o.entity.as_str()).or_default();
        e.2 += 1;
        e.0 += usize::from(o.pass);
        e.1 += usize::from(o.raw_pass);
    }
    let mut md = String::new();
    md.push_str(&format!(
        "Generated by `cargo test -p sunstorm-core --test erc7730_conformance` \
         (`SUNSTORM_UPDATE_DOCS=1` rewrites this section).\n\n\
         **Adjusted: {passed} of {total} cases pass ({:.1} %)**; raw (whitespace removed \
         only): {raw} of {total} ({:.1} %). The goal is {GOAL_PERCENT} %; the test's gate \
         is {GATE_PERCENT} % adjusted.\n\n",
        pct(passed, total),
        pct(raw, total)
    ));
    md.push_str("| entity | adjusted | raw | cases |\n|---|---:|---:|---:|\n");
    for (e, (p, r, t)) in &per {
        md.push_str(&format!("| {e} | {p} | {r} | {t} |\n"));
    }
    let mut cats: BTreeMap<&str, usize> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| !o.pass) {
        *cats.entry(o.category).or_default() += 1;
    }
    md.push_str("\nFailures (adjusted) by cause:\n\n| cause | cases |\n|---|---:|\n");
    for (c, n) in &cats {
        md.push_str(&format!("| {c} | {n} |\n"));
    }
    md.push_str("\nFailing cases (adjusted):\n\n");
    for o in outcomes.iter().filter(|o| !o.pass) {
        md.push_str(&format!("- `{}` — {} [{}]: {}\n", o.entity, o.case, o.category, o.reason));
    }
    (md, pct(passed, total))
}

#[test]
fn device_text_rules_keep_the_transaction_text() {
    assert!(adjusted_parts("R").is_empty());
    assert_eq!(adjusted_parts("eview transaction to Swap Swipe to review"), ["Swap"]);
    assert_eq!(adjusted_parts("eceive 2105045649 ???"), ["eceive2105045649"]);
    assert_eq!(adjusted_parts("Amount to... 7538 ???"), ["Amountto", "7538"]);
    assert_eq!(adjusted_parts("0x9715f449 74927cee3... More"), ["0x9715f44974927cee3"]);
    assert_eq!(adjusted_parts("kens?"), ["kens"]);
    assert_eq!(adjusted_parts("0xDad77910 DbDF"), ["0xDad77910DbDF"]);
    assert_eq!(adjusted_parts("0x9d7ae84c"), ["0x9d7ae84c"]);
    assert_eq!(adjusted_parts("0x5B3E7D9A 11C4"), ["0x5b3e7d9a11c4"]);
    assert!(!single_case_hex("0xDad7"));
    assert!(contains_in_order("abcdef", &["ab".into(), "ef".into()]));
    assert!(!contains_in_order("abcdef", &["ef".into(), "ab".into()]));
    assert_eq!(hex_lower("To 0xAbC Zed 0xFFx"), "To 0xabc Zed 0xffx");
    assert_eq!(ungroup("1,000.5 and a,b"), "1000.5 and a,b");
}

#[test]
fn registry_test_cases_render_from_the_signed_bundle() {
    let root = repo();
    let bundle = std::fs::read(root.join("metadata/bundle.cbor")).unwrap();
    let loaded = open_bundle(&bundle, &DEV_METADATA_PUBLIC_KEY, None).unwrap();
    let set = loaded.set;
    let reg = root.join("metadata/erc7730-registry/registry");
    let mut files: Vec<PathBuf> = Vec::new();
    for entity in std::fs::read_dir(&reg).unwrap() {
        let dir = entity.unwrap().path().join("tests");
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for f in rd {
                let p = f.unwrap().path();
                if p.to_string_lossy().ends_with(".tests.json") {
                    files.push(p);
                }
            }
        }
    }
    files.sort();
    let mut outcomes = Vec::new();
    for f in &files {
        let entity = f.parent().and_then(|p| p.parent()).and_then(|p| p.file_name()).unwrap();
        let entity = entity.to_string_lossy().into_owned();
        let file = f.file_name().unwrap().to_string_lossy().into_owned();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        for (i, case) in v["tests"].as_array().unwrap().iter().enumerate() {
            let desc = case.get("description").and_then(|d| d.as_str()).unwrap_or("");
            let (raw_pass, pass, reason, category) = run_case(&set, case);
            outcomes.push(Outcome {
                entity: entity.clone(),
                case: format!("{file} #{} ({desc})", i + 1),
                raw_pass,
                pass,
                category,
                reason,
            });
        }
    }
    let (md, rate) = report(&outcomes);
    let docs = root.join("docs/metadata.md");
    let current = std::fs::read_to_string(&docs).unwrap_or_default();
    let (Some(a), Some(b)) = (current.find(START), current.find(END)) else {
        panic!("docs/metadata.md has no conformance markers");
    };
    let updated = format!("{}{START}\n{md}{}", &current[..a], &current[b..]);
    if std::env::var("SUNSTORM_UPDATE_DOCS").is_ok() {
        std::fs::write(&docs, &updated).unwrap();
    } else {
        assert!(
            updated == current,
            "docs/metadata.md's conformance report is stale; rerun with SUNSTORM_UPDATE_DOCS=1"
        );
    }
    assert!(
        rate >= GATE_PERCENT,
        "conformance {rate:.1} % fell below the gate {GATE_PERCENT} % (goal {GOAL_PERCENT} %):\n{md}"
    );
}
