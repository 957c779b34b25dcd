//! `sunstorm decode`: the phone's review screen for a payload, offline (no octane, no
//! appliance): the title, the rows (key, label, value), the warnings (stable codes),
//! `blind` and the facts the guardrails use — or the stable code of the reason the payload
//! is refused (malformed, too complex, unsupported primary type…). The contract is in
//! `docs/signing.md`, *`sunstorm decode`*.
//!
//! Exit 0 when the payload is shown, 2 when it (or an argument) is refused.

use std::io::Read;

use base64::Engine;
use clap::{ArgGroup, Args};
use serde_json::json;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::decode::{decode, DecodedPayload};
use sunstorm_core::model::PayloadKind;
use sunstorm_core::payload::{parse_solana_message, MAX_PAYLOAD_LEN};

use crate::output::{print_json_ok, CliError};

/// Arguments of `sunstorm decode`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("payload").required(true).args(["tx", "typed_data", "message", "solana_tx"])))]
pub struct DecodeArgs {
    /// The request's CAIP-2 chain (`eip155:1`, `solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp`).
    #[arg(long)]
    pub chain: String,
    /// An unsigned EVM transaction, hex (`0x` optional).
    #[arg(long, value_name = "HEX")]
    pub tx: Option<String>,
    /// A file holding EIP-712 typed data (JSON), or `-` for standard input.
    #[arg(long, value_name = "FILE|-")]
    pub typed_data: Option<String>,
    /// An EIP-191 message, as text.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub message: Option<String>,
    /// A serialized Solana message (legacy or v0), standard base64. Shown to its fee payer.
    #[arg(long, value_name = "BASE64")]
    pub solana_tx: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `sunstorm decode`.
pub fn run(args: DecodeArgs) -> Result<(), CliError> {
    let json = args.json;
    let reject = |code: &str, message: String| CliError::rejected(code, message, json);
    let chain: ChainId = args.chain.parse().map_err(|e| reject("bad_chain", format!("--chain {}: {e}", args.chain)))?;
    let (kind, payload) = if let Some(hex_text) = &args.tx {
        let digits = hex_text.trim().trim_start_matches("0x");
        let bytes = hex::decode(digits).map_err(|e| reject("bad_hex", format!("--tx is not hex: {e}")))?;
        (PayloadKind::EvmTransaction, bytes)
    } else if let Some(path) = &args.typed_data {
        (PayloadKind::Eip712TypedData, read_input(path).map_err(|m| reject("unreadable_input", m))?)
    } else if let Some(text) = &args.message {
        (PayloadKind::Eip191Message, text.as_bytes().to_vec())
    } else if let Some(b64) = &args.solana_tx {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| reject("bad_base64", format!("--solana-tx is not base64: {e}")))?;
        (PayloadKind::SolanaTransaction, bytes)
    } else {
        return Err(reject("no_payload", "give one of --tx, --typed-data, --message, --solana-tx".into()));
    };
    let account = reviewer(&chain, kind, &payload);
    let decoded = decode(kind, &payload, &account).map_err(|e| reject(e.code(), e.to_string()))?;
    if json {
        print_json_ok(document(kind, &decoded));
    } else {
        print_text(&decoded);
    }
    Ok(())
}

/// The bytes of `--typed-data`: a file, or standard input for `-` (at most one byte more
/// than the payload cap is read, so the core reports the size).
fn read_input(path: &str) -> Result<Vec<u8>, String> {
    let limit = u64::try_from(MAX_PAYLOAD_LEN + 1).unwrap_or(u64::MAX);
    let mut out = Vec::new();
    let result = if path == "-" {
        std::io::stdin().lock().take(limit).read_to_end(&mut out)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut out))
    };
    result.map_err(|e| format!("--typed-data {path}: {e}"))?;
    Ok(out)
}

/// Whose review screen this is. The phone decodes for the bound account; offline there is
/// none, so EVM payloads are shown for the zero address (nothing in an EVM review depends
/// on it) and Solana messages for their fee payer.
fn reviewer(chain: &ChainId, kind: PayloadKind, payload: &[u8]) -> AccountId {
    match chain {
        ChainId::Evm(id) => AccountId::evm(*id, [0; 20]),
        ChainId::Solana(reference) => {
            let payer = (kind == PayloadKind::SolanaTransaction)
                .then(|| parse_solana_message(payload).ok())
                .flatten()
                .and_then(|m| m.fee_payer().copied())
                .unwrap_or([0; 32]);
            AccountId::solana(reference, &payer)
        }
    }
}

fn kind_name(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::EvmTransaction => "evm_transaction",
        PayloadKind::Eip191Message => "eip191_message",
        PayloadKind::Eip712TypedData => "eip712_typed_data",
        PayloadKind::SolanaTransaction => "solana_transaction",
    }
}

/// The `{"ok": …}` document.
fn document(kind: PayloadKind, d: &DecodedPayload) -> serde_json::Value {
    json!({
        "chain": d.chain.to_string(),
        "kind": kind_name(kind),
        "title": d.title,
        "rows": d.fields,
        "warnings": d.warnings,
        "blind": d.blind,
        "payload_hash": d.payload_hash,
        "facts": d.facts,
    })
}

fn print_text(d: &DecodedPayload) {
    println!("{}", d.title);
    for f in &d.fields {
        // A multi-line value (an EIP-191 message) is indented under its label.
        let value = f.value.replace('\n', "\n      ");
        println!("  {}: {value}  [{}]", f.label, f.key);
    }
    for w in &d.warnings {
        println!("warning [{}]: {}", w.code(), w.message());
    }
    println!("blind: {}", d.blind);
    println!("payload sha-256: {}", d.payload_hash);
    println!("facts: {}", serde_json::to_string(&d.facts).unwrap_or_default());
}
