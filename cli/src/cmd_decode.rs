//! `sunstorm decode`: the phone's review screen for a payload, offline (no octane, no
//! appliance): the title (a descriptor's intent when the call is clear), the rows (key,
//! label, value), the warnings (stable codes), `blind`, the display digest and the facts the
//! guardrails use — or the stable code of the reason the payload is refused (malformed,
//! too complex, unsupported primary type…). The contract is in `docs/signing.md`,
//! *`sunstorm decode`*.
//!
//! The screen is the phone's with the metadata bundle: the signed bundle committed in the
//! repository is built into this binary (the phone's library is not: its shells ship the
//! bundle as an asset) and verified under the pinned development metadata key before use;
//! `--metadata FILE` (and `--metadata-key`) take another, `--no-metadata` none.
//!
//! Exit 0 when the payload is shown, 2 when it (or an argument) is refused.

use std::io::Read;
use std::path::PathBuf;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use base64::Engine;
use clap::{ArgGroup, Args};
use serde_json::json;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::decode::{decode_with, display_digest, DecodeContext, DecodedPayload, DisplayDigest};
use sunstorm_core::metadata::{open_bundle, LoadedBundle};
use sunstorm_core::model::PayloadKind;
use sunstorm_core::payload::{parse_solana_message, MAX_PAYLOAD_LEN};
use uuid::Uuid;

use crate::cmd_metadata::metadata_key;
use crate::output::{print_json_ok, CliError};

/// The signed metadata bundle committed in the repository (`metadata/bundle.cbor`, signed
/// with the development metadata key), built into the CLI only.
pub(crate) const BUILT_IN_BUNDLE: &[u8] = include_bytes!("../../metadata/bundle.cbor");

/// Arguments of `sunstorm decode`.
#[derive(Args, Debug)]
#[command(group(ArgGroup::new("payload").required(true).args(["tx", "typed_data", "message", "solana_tx", "to"])))]
pub struct DecodeArgs {
    /// The request's CAIP-2 chain (`eip155:1`, `solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp`).
    #[arg(long, default_value = "eip155:1")]
    pub chain: String,
    /// An unsigned EVM transaction, hex (`0x` optional).
    #[arg(long, value_name = "HEX")]
    pub tx: Option<String>,
    /// A contract call's target (with `--data`): shown as an unsigned EIP-1559 transaction
    /// with nonce 0 and no gas, so its fee rows read 0.
    #[arg(long, value_name = "ADDRESS", requires = "data")]
    pub to: Option<String>,
    /// The call's calldata, hex (`0x` optional), selector first.
    #[arg(long, value_name = "HEX", requires = "to")]
    pub data: Option<String>,
    /// Native value sent with the call, in wei (decimal).
    #[arg(long, value_name = "WEI", requires = "to")]
    pub value: Option<String>,
    /// The signing EVM account whose screen this is (descriptors may show it as "the
    /// sender"). Default: the zero address.
    #[arg(long, value_name = "ADDRESS")]
    pub from: Option<String>,
    /// A file holding EIP-712 typed data (JSON), or `-` for standard input.
    #[arg(long, value_name = "FILE|-")]
    pub typed_data: Option<String>,
    /// An EIP-191 message, as text.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    pub message: Option<String>,
    /// A serialized Solana message (legacy or v0), standard base64. Shown to its fee payer.
    #[arg(long, value_name = "BASE64")]
    pub solana_tx: Option<String>,
    /// A signed metadata bundle file to use instead of the built-in one.
    #[arg(long, value_name = "FILE", conflicts_with = "no_metadata")]
    pub metadata: Option<PathBuf>,
    /// The metadata public key, hex (default: the pinned development key).
    #[arg(long, value_name = "HEX")]
    pub metadata_key: Option<String>,
    /// Decode without metadata (no descriptors, token list or contract names).
    #[arg(long)]
    pub no_metadata: bool,
    /// The request id the display digest is bound to. Default: the nil UUID (no request).
    #[arg(long, value_name = "UUID")]
    pub request_id: Option<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Where the metadata bundle in use came from.
struct Metadata {
    bundle: LoadedBundle,
    source: String,
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
    } else if let (Some(to), Some(data)) = (&args.to, &args.data) {
        let ChainId::Evm(chain_id) = chain else {
            return Err(reject("bad_chain", "--to/--data are EVM calls; --chain must be eip155:<id>".into()));
        };
        (
            PayloadKind::EvmTransaction,
            call_tx(chain_id, to, data, args.value.as_deref()).map_err(|(c, m)| reject(c, m))?,
        )
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
        return Err(reject("no_payload", "give one of --tx, --to/--data, --typed-data, --message, --solana-tx".into()));
    };
    let request_id = match &args.request_id {
        Some(s) => Uuid::parse_str(s.trim()).map_err(|e| reject("bad_request_id", format!("--request-id: {e}")))?,
        None => Uuid::nil(),
    };
    let from = args.from.as_deref().map(|a| parse_address("--from", a)).transpose().map_err(|(c, m)| reject(c, m))?;
    let account = reviewer(&chain, kind, &payload, from).map_err(|(c, m)| reject(c, m))?;
    let metadata = load_metadata(&args)?;
    let ctx = DecodeContext { clear: metadata.as_ref().map(|m| &*m.bundle.set), ..DecodeContext::default() };
    let decoded = decode_with(kind, &payload, &account, &ctx).map_err(|e| reject(e.code(), e.to_string()))?;
    let digest = display_digest(&request_id, &decoded);
    let shown =
        Shown { kind, decoded: &decoded, digest, request_id, metadata: metadata.as_ref(), call: args.to.is_some() };
    if json {
        print_json_ok(document(&shown));
    } else {
        print_text(&shown);
    }
    Ok(())
}

/// The bundle to decode with: `--metadata FILE`, else the built-in one (both verified
/// under the metadata key), or none with `--no-metadata`.
fn load_metadata(args: &DecodeArgs) -> Result<Option<Metadata>, CliError> {
    if args.no_metadata {
        return Ok(None);
    }
    let json = args.json;
    let key = metadata_key(args.metadata_key.as_deref(), json)?;
    let (bytes, source) = match &args.metadata {
        Some(path) => {
            let limit = u64::try_from(sunstorm_core::metadata::MAX_BUNDLE_LEN + 1).unwrap_or(u64::MAX);
            let mut bytes = Vec::new();
            std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut bytes)).map_err(|e| {
                CliError::rejected("unreadable_metadata", format!("--metadata {}: {e}", path.display()), json)
            })?;
            (bytes, path.display().to_string())
        }
        None => (BUILT_IN_BUNDLE.to_vec(), "built-in (metadata/bundle.cbor)".to_string()),
    };
    let bundle = open_bundle(&bytes, &key, None).map_err(|e| CliError::rejected(e.code(), e.to_string(), json))?;
    Ok(Some(Metadata { bundle, source }))
}

fn parse_address(what: &str, text: &str) -> Result<Address, (&'static str, String)> {
    text.trim().parse::<Address>().map_err(|e| ("bad_address", format!("{what} is not an EVM address: {e}")))
}

/// The unsigned EIP-1559 transaction of a call given as `--to`, `--data`, `--value`:
/// nonce 0, no gas (nothing here knows them).
fn call_tx(chain_id: u64, to: &str, data: &str, value: Option<&str>) -> Result<Vec<u8>, (&'static str, String)> {
    let to = parse_address("--to", to)?;
    let input = hex::decode(data.trim().trim_start_matches("0x"))
        .map_err(|e| ("bad_hex", format!("--data is not hex: {e}")))?;
    let value = match value {
        Some(v) => U256::from_str_radix(v.trim(), 10)
            .map_err(|e| ("bad_value", format!("--value is not a decimal number of wei: {e}")))?,
        None => U256::ZERO,
    };
    let tx = TxEip1559 {
        chain_id,
        nonce: 0,
        gas_limit: 0,
        max_fee_per_gas: 0,
        max_priority_fee_per_gas: 0,
        to: TxKind::Call(to),
        value,
        access_list: Default::default(),
        input: Bytes::from(input),
    };
    Ok(tx.encoded_for_signing())
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
/// none, so EVM payloads are shown for `--from` or else the zero address (a descriptor
/// showing the sender then shows the zero address) and Solana messages for their fee payer.
fn reviewer(
    chain: &ChainId,
    kind: PayloadKind,
    payload: &[u8],
    from: Option<Address>,
) -> Result<AccountId, (&'static str, String)> {
    Ok(match chain {
        ChainId::Evm(id) => AccountId::evm(*id, from.map(Address::into_array).unwrap_or([0; 20])),
        ChainId::Solana(_) if from.is_some() => {
            return Err(("bad_address", "--from is an EVM account; a Solana message is shown to its fee payer".into()))
        }
        ChainId::Solana(reference) => {
            let payer = (kind == PayloadKind::SolanaTransaction)
                .then(|| parse_solana_message(payload).ok())
                .flatten()
                .and_then(|m| m.fee_payer().copied())
                .unwrap_or([0; 32]);
            AccountId::solana(reference, &payer)
        }
    })
}

fn kind_name(kind: PayloadKind) -> &'static str {
    match kind {
        PayloadKind::EvmTransaction => "evm_transaction",
        PayloadKind::Eip191Message => "eip191_message",
        PayloadKind::Eip712TypedData => "eip712_typed_data",
        PayloadKind::SolanaTransaction => "solana_transaction",
    }
}

/// Everything `decode` prints.
struct Shown<'a> {
    kind: PayloadKind,
    decoded: &'a DecodedPayload,
    digest: DisplayDigest,
    request_id: Uuid,
    metadata: Option<&'a Metadata>,
    /// Given as `--to`/`--data`: a transaction made up here.
    call: bool,
}

/// What the output says about the request id the digest is bound to.
fn request_id_note(s: &Shown<'_>) -> &'static str {
    if s.request_id.is_nil() {
        "the nil UUID: no request was given; a phone's digest is bound to its request's id (--request-id)"
    } else {
        "given with --request-id"
    }
}

const CALL_NOTE: &str = "a call given as --to/--data, shown as an unsigned EIP-1559 transaction with nonce 0 \
                         and no gas (its fee rows read 0)";

/// The `{"ok": …}` document.
fn document(s: &Shown<'_>) -> serde_json::Value {
    let d = s.decoded;
    json!({
        "chain": d.chain.to_string(),
        "kind": kind_name(s.kind),
        "title": d.title,
        "rows": d.fields,
        "warnings": d.warnings,
        "blind": d.blind,
        "clear": d.descriptor.is_some(),
        "descriptor": d.descriptor,
        "payload_hash": d.payload_hash,
        "display_digest": {
            "hex": s.digest.hex(),
            "fingerprint": s.digest.fingerprint(),
            "request_id": s.request_id.to_string(),
            "request_id_note": request_id_note(s),
        },
        "metadata": s.metadata.map(|m| json!({
            "version": m.bundle.version,
            "sha256": m.bundle.sha256,
            "source": m.source,
        })),
        "call_note": s.call.then_some(CALL_NOTE),
        "facts": d.facts,
    })
}

fn print_text(s: &Shown<'_>) {
    let d = s.decoded;
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
    match &d.descriptor {
        Some(path) => println!("clear: yes, from the ERC-7730 descriptor {path}"),
        None => println!("clear: no (no descriptor applies)"),
    }
    match s.metadata {
        Some(m) => {
            println!("metadata: bundle version {} ({}), sha-256 {}", m.bundle.version, m.source, m.bundle.sha256)
        }
        None => println!("metadata: none (--no-metadata)"),
    }
    if s.call {
        println!("note: {CALL_NOTE}");
    }
    println!("payload sha-256: {}", d.payload_hash);
    println!("display digest: {} (fingerprint {})", s.digest.hex(), s.digest.fingerprint());
    println!("request id: {} ({})", s.request_id, request_id_note(s));
    println!("facts: {}", serde_json::to_string(&d.facts).unwrap_or_default());
}
