//! `sunstorm sp …`: act as a service provider against octane — create a pair session (with a
//! QR of the link), await and verify the pair, sign requests and print the bundle.

use std::time::Duration;

use base64::Engine;
use clap::{Args, Subcommand, ValueEnum};
use ed25519_dalek::SigningKey;
use serde_json::json;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId};
use sunstorm_core::model::{PayloadKind, SignRequest, MAX_TTL_SECS, STATEMENT_VERSION};
use sunstorm_core::octane::api::{CreateSessionRequest, PairResult, SignResult};
use sunstorm_sim::samples::Sample;
use sunstorm_sim::sp::{self, ExpectedPair, SpClient, SpClientError};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::output::{self, CliError};

/// The SP commands.
#[derive(Subcommand, Debug)]
pub enum SpCmd {
    /// Create a pair session; print the link, the code and a QR of the link.
    CreateSession(CreateArgs),
    /// Wait for a session's outcome, verify the appliance's attestation, print the pair.
    Await(AwaitArgs),
    /// Sign a request as the SP, submit it, wait, print the three-signature bundle.
    Sign(SignArgs),
    /// Revoke a pair.
    Revoke(RevokeArgs),
}

/// Where octane is and how the SP authenticates.
#[derive(Args, Debug)]
pub struct Conn {
    /// Octane base URL.
    #[arg(long, env = "SUNSTORM_OCTANE_URL")]
    octane: String,
    /// The SP's bearer API key.
    #[arg(long, env = "SUNSTORM_SP_API_KEY", hide_env_values = true)]
    api_key: String,
    /// Print one JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// Arguments of `sp create-session`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    conn: Conn,
    /// Requested chains, CAIP-2, comma-separated (e.g. `eip155:1,solana:5eykt4Us…`).
    #[arg(long, value_delimiter = ',', required = true)]
    chains: Vec<String>,
    /// The SP's reference for its user, shown on the phone.
    #[arg(long, default_value = "demo-user")]
    user_ref: String,
    /// Where the phone sends the user back (single-device flow).
    #[arg(long)]
    return_url: Option<String>,
    /// Session lifetime in seconds (1..=300).
    #[arg(long)]
    ttl: Option<u64>,
    /// Do not print the QR code.
    #[arg(long)]
    no_qr: bool,
}

/// Arguments of `sp await`.
#[derive(Args, Debug)]
pub struct AwaitArgs {
    #[command(flatten)]
    conn: Conn,
    /// The session id `create-session` printed (may begin with `-`).
    #[arg(long, allow_hyphen_values = true)]
    session: String,
    /// The session's validation code, to check the attestation binds it.
    #[arg(long)]
    code: Option<String>,
    /// The SP's public key (64 hex digits), to check the attestation pins it.
    #[arg(long)]
    sp_public_key: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// A sample payload of `sp sign --sample`, built for `--account` (docs/signing.md).
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum SampleArg {
    /// EIP-1559 transfer of 0.05 ETH to 0x1111…1111 (EVM accounts).
    Eip1559,
    /// ERC-20 transfer of 25 USDC to 0x2222…2222 (EVM accounts).
    Erc20,
    /// The EIP-712 "Mail" example (EVM accounts).
    Eip712,
    /// Transfer of 0.01 SOL from the account (Solana accounts).
    Solana,
}

impl From<SampleArg> for Sample {
    fn from(a: SampleArg) -> Self {
        match a {
            SampleArg::Eip1559 => Sample::Eip1559,
            SampleArg::Erc20 => Sample::Erc20,
            SampleArg::Eip712 => Sample::Eip712,
            SampleArg::Solana => Sample::Solana,
        }
    }
}

/// Arguments of `sp sign`.
#[derive(Args, Debug)]
pub struct SignArgs {
    #[command(flatten)]
    conn: Conn,
    /// The SP's Ed25519 signing key seed (64 hex digits).
    #[arg(long, env = "SUNSTORM_SP_KEY", hide_env_values = true)]
    sp_key: String,
    /// The pair id.
    #[arg(long)]
    pair: Uuid,
    /// The bound account that must sign (CAIP-10).
    #[arg(long)]
    account: String,
    /// An unsigned EVM transaction (EIP-1559 or legacy), hex.
    #[arg(long, group = "payload")]
    evm_tx: Option<String>,
    /// An EIP-191 personal_sign message (UTF-8 text).
    #[arg(long, group = "payload")]
    message: Option<String>,
    /// A file holding EIP-712 typed data (JSON).
    #[arg(long, group = "payload")]
    typed_data: Option<std::path::PathBuf>,
    /// A serialized Solana message, base64.
    #[arg(long, group = "payload")]
    solana_tx: Option<String>,
    /// A ready-made payload for --account instead of your own.
    #[arg(long, group = "payload", value_enum)]
    sample: Option<SampleArg>,
    /// Request validity in seconds (1..=300).
    #[arg(long, default_value_t = 120)]
    ttl: u64,
    /// Octane's public key (64 hex digits) to check its countersignature against; without
    /// it the key the bundle names is used.
    #[arg(long, env = "SUNSTORM_OCTANE_KEY")]
    octane_key: Option<String>,
    /// The pair's appliance identity key (64 hex digits, as `sp await` printed it) to check
    /// the appliance's receipt against; without it the identity the bundle names is used.
    #[arg(long)]
    appliance: Option<String>,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Arguments of `sp revoke`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    #[command(flatten)]
    conn: Conn,
    /// The pair id.
    #[arg(long)]
    pair: Uuid,
}

/// Runs an `sp` subcommand.
pub fn run(cmd: SpCmd) -> Result<(), CliError> {
    let json = match &cmd {
        SpCmd::CreateSession(a) => a.conn.json,
        SpCmd::Await(a) => a.conn.json,
        SpCmd::Sign(a) => a.conn.json,
        SpCmd::Revoke(a) => a.conn.json,
    };
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::failed("runtime", e.to_string(), json))?;
    rt.block_on(async move {
        match cmd {
            SpCmd::CreateSession(a) => create_session(a).await,
            SpCmd::Await(a) => await_pair(a).await,
            SpCmd::Sign(a) => sign(a).await,
            SpCmd::Revoke(a) => revoke(a).await,
        }
    })
}

fn client(c: &Conn) -> Result<SpClient, CliError> {
    SpClient::new(&c.octane, &c.api_key).map_err(|e| CliError::rejected("bad_octane_url", e.to_string(), c.json))
}

fn api_err(e: SpClientError, json: bool) -> CliError {
    match &e {
        SpClientError::Api { status, code, .. } if (400..500).contains(status) => {
            CliError::rejected(code.as_str(), e.to_string(), json)
        }
        SpClientError::Api { code, .. } => CliError::failed(code.as_str(), e.to_string(), json),
        SpClientError::Unreachable(_) => CliError::failed("octane_unreachable", e.to_string(), json),
        SpClientError::TimedOut(_) => CliError::failed("timed_out", e.to_string(), json),
        SpClientError::BadUrl(_) => CliError::rejected("bad_octane_url", e.to_string(), json),
        _ => CliError::failed("octane_error", e.to_string(), json),
    }
}

fn parse_key32(hexstr: &str, what: &str, json: bool) -> Result<Key32, CliError> {
    Key32::from_hex(hexstr.trim())
        .ok_or_else(|| CliError::rejected("bad_key", format!("{what} must be 64 hex digits"), json))
}

fn qr(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build(),
    )
}

async fn create_session(a: CreateArgs) -> Result<(), CliError> {
    let json = a.conn.json;
    let mut chains = Vec::with_capacity(a.chains.len());
    for c in &a.chains {
        let chain: ChainId =
            c.trim().parse().map_err(|e| CliError::rejected("bad_chain", format!("`{c}`: {e}"), json))?;
        chains.push(chain);
    }
    let req = CreateSessionRequest {
        sp_user_ref: a.user_ref.clone(),
        chains,
        return_url: a.return_url.clone(),
        ttl_secs: a.ttl,
    };
    let s = client(&a.conn)?.create_session(&req).await.map_err(|e| api_err(e, json))?;
    if json {
        output::print_json_ok(json!({
            "session_id": s.session_id,
            "validation_code": s.validation_code,
            "link": s.link,
            "link_with_code": s.link_with_code,
            "created_at": s.created_at,
            "expires_at": s.expires_at,
        }));
        return Ok(());
    }
    if !a.no_qr {
        if let Some(q) = qr(&s.link) {
            println!("{q}");
        }
    }
    println!("link:            {}", s.link);
    println!("validation code: {}", s.validation_code);
    println!("single-device:   {}", s.link_with_code);
    println!("session id:      {}", s.session_id);
    let left = s.expires_at.saturating_sub(s.created_at);
    println!("expires at:      {} (in {} s)", s.expires_at, left);
    Ok(())
}

async fn await_pair(a: AwaitArgs) -> Result<(), CliError> {
    let json = a.conn.json;
    let sp_pk = a.sp_public_key.as_deref().map(|k| parse_key32(k, "--sp-public-key", json)).transpose()?;
    let result =
        client(&a.conn)?.await_pair(&a.session, Duration::from_secs(a.timeout)).await.map_err(|e| api_err(e, json))?;
    let expected =
        ExpectedPair { session_id: &a.session, validation_code: a.code.as_deref(), sp_public_key: sp_pk.as_ref() };
    match &result {
        PairResult::Paired { pair_id, bindings, appliance_identity, .. } => {
            sp::verify_pair_result(&result, &expected).map_err(|e| {
                CliError::rejected("attestation_refused", format!("the pair attestation is refused: {e}"), json)
            })?;
            let b: Vec<String> = bindings.iter().map(ToString::to_string).collect();
            let checked: Vec<&str> = [
                Some("signature"),
                Some("session_id"),
                Some("pair_id"),
                Some("bindings"),
                a.code.as_ref().map(|_| "validation_code"),
                sp_pk.as_ref().map(|_| "sp_public_key"),
            ]
            .into_iter()
            .flatten()
            .collect();
            if json {
                output::print_json_ok(json!({
                    "status": "paired",
                    "pair_id": pair_id,
                    "bindings": b,
                    "appliance_identity": appliance_identity.to_hex(),
                    "verified": checked,
                }));
            } else {
                println!("paired: {pair_id}");
                println!("appliance: {}", appliance_identity.fingerprint());
                for x in &b {
                    println!("  {x}");
                }
                println!("attestation verified ({})", checked.join(", "));
            }
            Ok(())
        }
        PairResult::Rejected { reason } => Err(CliError::rejected(
            "pair_rejected",
            format!("the user rejected the pair{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()),
            json,
        )),
        PairResult::Locked => {
            Err(CliError::rejected("session_locked", "too many wrong codes: the session is locked", json))
        }
        PairResult::Expired => Err(CliError::rejected("session_expired", "the session expired", json)),
        PairResult::Pending => Err(CliError::failed("timed_out", "no result in time", json)),
    }
}

fn payload_of(a: &SignArgs, account: &AccountId, json: bool) -> Result<(PayloadKind, Vec<u8>), CliError> {
    let bad = |m: String| CliError::rejected("bad_payload", m, json);
    if let Some(s) = a.sample {
        return Sample::from(s).payload_for(account).map_err(|e| bad(format!("--sample: {e}")));
    }
    if let Some(h) = &a.evm_tx {
        let h = h.trim();
        let bytes = hex::decode(h.strip_prefix("0x").unwrap_or(h)).map_err(|e| bad(format!("--evm-tx: {e}")))?;
        return Ok((PayloadKind::EvmTransaction, bytes));
    }
    if let Some(m) = &a.message {
        return Ok((PayloadKind::Eip191Message, m.as_bytes().to_vec()));
    }
    if let Some(p) = &a.typed_data {
        let text = std::fs::read(p).map_err(|e| bad(format!("--typed-data {}: {e}", p.display())))?;
        serde_json::from_slice::<serde_json::Value>(&text)
            .map_err(|e| bad(format!("--typed-data is not JSON: {e}")))?;
        return Ok((PayloadKind::Eip712TypedData, text));
    }
    if let Some(b) = &a.solana_tx {
        let b = b.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b))
            .map_err(|e| bad(format!("--solana-tx: {e}")))?;
        return Ok((PayloadKind::SolanaTransaction, bytes));
    }
    Err(bad("give one of --evm-tx, --message, --typed-data, --solana-tx, --sample".into()))
}

async fn sign(a: SignArgs) -> Result<(), CliError> {
    let json = a.conn.json;
    let seed = Zeroizing::new(parse_key32(&a.sp_key, "--sp-key", json)?.0);
    let sp_key = SigningKey::from_bytes(&seed);
    let sp_pk = Key32(sp_key.verifying_key().to_bytes());
    let account: AccountId =
        a.account.parse().map_err(|e| CliError::rejected("bad_account", format!("--account: {e}"), json))?;
    if a.ttl == 0 || a.ttl > MAX_TTL_SECS {
        return Err(CliError::rejected("bad_ttl", format!("--ttl must be 1..={MAX_TTL_SECS}"), json));
    }
    let pinned = a.octane_key.as_deref().map(|k| parse_key32(k, "--octane-key", json)).transpose()?;
    let pinned_appliance = a.appliance.as_deref().map(|k| parse_key32(k, "--appliance", json)).transpose()?;
    let (kind, payload) = payload_of(&a, &account, json)?;
    let now = sunstorm_core::clock::now_unix();
    let req = SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id: a.pair,
        chain: account.chain.clone(),
        account,
        kind,
        payload,
        created_at: now,
        expires_at: now + a.ttl,
    };
    let c = client(&a.conn)?;
    let accepted = c.submit_sign(&sp_key, &req).await.map_err(|e| api_err(e, json))?;
    if !json {
        eprintln!("request {} accepted; waiting for the phone and appliance…", accepted.request_id);
    }
    let result =
        c.await_sign(&accepted.request_id, Duration::from_secs(a.timeout)).await.map_err(|e| api_err(e, json))?;
    match result {
        SignResult::Signed { bundle } => {
            let octane_pk = pinned.unwrap_or(bundle.octane_public_key);
            let refused =
                |e: sp::SpCheckError| CliError::rejected("bundle_refused", format!("the bundle is refused: {e}"), json);
            let appliance_pk = pinned_appliance
                .or(bundle.appliance_identity)
                .ok_or_else(|| refused(sp::SpCheckError::MissingReceipt))?;
            let verified = sp::verify_signed(&bundle, &sp_pk, &octane_pk, &appliance_pk).map_err(refused)?;
            let digest = verified.display_digest;
            let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
            if json {
                output::print_json_ok(json!({
                    "status": "signed",
                    "request_id": req.request_id,
                    "account": bundle.account.to_string(),
                    "body": b64(&bundle.body),
                    "sp_sig": hex::encode(&bundle.sp_sig),
                    "octane_sig": hex::encode(&bundle.octane_sig),
                    "appliance_sig": hex::encode(&bundle.appliance_sig),
                    "sp_public_key": bundle.sp_public_key.to_hex(),
                    "octane_public_key": bundle.octane_public_key.to_hex(),
                    "octane_key_pinned": pinned.is_some(),
                    "display_digest": digest.hex(),
                    "display_fingerprint": digest.fingerprint(),
                    "receipt": serde_json::to_value(&bundle.receipt).unwrap_or_default(),
                    "appliance_identity": appliance_pk.to_hex(),
                    "appliance_pinned": pinned_appliance.is_some(),
                }));
            } else {
                println!("signed: request {}", req.request_id);
                println!("account:        {}", bundle.account);
                println!("SP sig:         {}  (verified, key {})", hex::encode(&bundle.sp_sig), sp_pk.fingerprint());
                println!(
                    "octane sig:     {}  (verified, key {}{})",
                    hex::encode(&bundle.octane_sig),
                    octane_pk.fingerprint(),
                    if pinned.is_some() { ", pinned" } else { ", as reported: pass --octane-key to pin" }
                );
                println!("appliance sig:  0x{}  (verified for {})", hex::encode(&bundle.appliance_sig), bundle.account);
                println!(
                    "display digest: {}  (fingerprint {}; receipt verified, appliance {}{})",
                    digest.hex(),
                    digest.fingerprint(),
                    appliance_pk.fingerprint(),
                    if pinned_appliance.is_some() { ", pinned" } else { ", as reported: pass --appliance to pin" }
                );
            }
            Ok(())
        }
        SignResult::Rejected { reason_code, message } => {
            Err(CliError::rejected("sign_rejected", format!("rejected ({reason_code}): {message}"), json))
        }
        SignResult::Expired => Err(CliError::rejected("request_expired", "the request expired unanswered", json)),
        SignResult::Pending => Err(CliError::failed("timed_out", "no result in time", json)),
    }
}

async fn revoke(a: RevokeArgs) -> Result<(), CliError> {
    let json = a.conn.json;
    let r = client(&a.conn)?.revoke(&a.pair).await.map_err(|e| api_err(e, json))?;
    if json {
        output::print_json_ok(serde_json::to_value(&r).unwrap_or_default());
    } else {
        println!("revoked: {} at {}", r.pair_id, r.revoked_at);
    }
    Ok(())
}
