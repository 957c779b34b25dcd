//! `sunstorm demo`: the whole story in one process, narrated — an octane simulator over real
//! HTTP on loopback, an appliance simulator over a simulated BLE link, an SP, and the phone
//! core. Every signature is verified; the exit code is 0 only if every check held. The phone
//! takes the repository's signed metadata bundle from octane, so a contract call (an Aave
//! deposit) is shown from its ERC-7730 descriptor, and the SP checks the appliance's receipt
//! over the display digest of each screen the user approved and prints it.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD as B64, Engine};
use clap::Args;
use serde_json::{json, Value};
use sunstorm_core::appliance::ApplianceProgress;
use sunstorm_core::bytes::Key32;
use sunstorm_core::caip::{AccountId, ChainId, SOLANA_MAINNET};
use sunstorm_core::metadata::DEV_METADATA_PUBLIC_KEY;
use sunstorm_core::model::{PayloadKind, SignRequest, MAX_TTL_SECS, STATEMENT_VERSION};
use sunstorm_core::octane::api::{CreateSessionRequest, PairResult, SignResult};
use sunstorm_core::pair::{PairOutcome, PairState};
use sunstorm_core::payload::{evm_signer_address, signing_target, verify_appliance_signature};
use sunstorm_core::secrets::MemorySecretStore;
use sunstorm_core::sign::PendingSignature;
use sunstorm_core::sunstorm::{Event, Sunstorm};
use sunstorm_sim::appliance::{ApplianceSimConfig, EventType, UserScript, MAX_EVENTS};
use sunstorm_sim::link::{Central, SimLinkConfig};
use sunstorm_sim::octane::{OctaneSimConfig, DEMO_SP_ORIGIN};
use sunstorm_sim::samples;
use sunstorm_sim::sp::{verify_bundle_cosigners, verify_pair_result, verify_signed, ExpectedPair, SpClient};
use sunstorm_sim::world::{World, WorldConfig};
use uuid::Uuid;

use crate::output::CliError;

/// Options of `sunstorm demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Print one JSON document (steps, timings, pair, signatures, keys) instead of the story.
    #[arg(long)]
    pub json: bool,
    /// ATT MTU of the simulated BLE link (23..=517).
    #[arg(long, default_value_t = 185, value_parser = clap::value_parser!(u16).range(23..=517))]
    pub mtu: u16,
    /// One-way latency of the simulated link, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// The phone whose radio the simulated link models: `ios` (15 ms connection interval,
    /// 4 PDUs per connection event), `android` (30 ms, 8) or `ideal` (no interval, no cap).
    #[arg(long, default_value = "ios", value_parser = crate::radio::parse_central)]
    pub central: Central,
    /// BLE connection interval in milliseconds, fractions allowed (7.5 ms steps of 1.25 are
    /// what BLE offers; 0: PDUs leave at once). Default: the central's.
    #[arg(long, value_parser = crate::radio::parse_interval_ms)]
    pub connection_interval_ms: Option<f64>,
    /// Most PDUs each side sends per connection event (0: no cap). Default: the central's.
    #[arg(long)]
    pub pdus_per_event: Option<u32>,
    /// Probability (0..1) that the link drops a PDU; the core retries.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Let a person answer the phone's and the appliance's prompts on this terminal.
    #[arg(long)]
    pub interactive: bool,
}

/// One narrated step and how it went.
struct Step {
    name: String,
    outcome: String,
    ok: bool,
    ms: u128,
    detail: Value,
}

/// The story so far: steps, checks, and the data a reader needs to check signatures.
struct Story {
    json: bool,
    color: bool,
    steps: Vec<Step>,
    checks: Vec<(String, bool)>,
    doc: BTreeMap<String, Value>,
}

impl Story {
    fn say(&self, text: impl AsRef<str>) {
        if self.json {
            return;
        }
        if self.color {
            println!("{}", text.as_ref());
        } else {
            println!("{}", strip_ansi(text.as_ref()));
        }
    }

    fn heading(&self, n: usize, text: &str) {
        self.say(format!("\n\x1b[1m[{n}/5] {text}\x1b[0m"));
    }

    fn check(&mut self, what: impl Into<String>, ok: bool) -> bool {
        let what = what.into();
        self.say(format!("    {} {what}", if ok { "\x1b[32m✔\x1b[0m" } else { "\x1b[31m✘\x1b[0m" }));
        self.checks.push((what, ok));
        ok
    }

    fn record(&mut self, name: &str, started: Instant, ok: bool, outcome: &str, detail: Value) {
        let ms = started.elapsed().as_millis();
        self.say(format!("    \x1b[2m{name}: {outcome} in {:.2} s\x1b[0m", ms as f64 / 1000.0));
        self.steps.push(Step { name: name.into(), outcome: outcome.into(), ok, ms, detail });
    }

    fn all_ok(&self) -> bool {
        self.checks.iter().all(|(_, ok)| *ok) && self.steps.iter().all(|s| s.ok)
    }
}

/// Removes ANSI colour sequences (for output that is not a terminal).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn failed(code: &str, e: impl std::fmt::Display) -> CliError {
    CliError::failed(code, e.to_string(), false)
}

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

/// Prints "confirm on your appliance" and transfer progress as the core reports them.
fn progress_printer(quiet: bool) -> Arc<dyn Fn(&Event) + Send + Sync> {
    let last: Arc<Mutex<Option<(Uuid, &'static str)>>> = Arc::new(Mutex::new(None));
    Arc::new(move |e: &Event| {
        if quiet {
            return;
        }
        let Event::Progress { subject, progress } = e else { return };
        let line: Option<(&'static str, String)> = match progress {
            ApplianceProgress::WaitingForUser => Some(("wait", "    ⏳ confirm on your appliance…".to_string())),
            ApplianceProgress::Sending { sent, total } if sent == total => {
                Some(("sent", format!("    📡 {total} bytes sent to the appliance over BLE")))
            }
            ApplianceProgress::Reconnecting { attempt } => {
                Some(("retry", format!("    ↻ link dropped, retrying (attempt {attempt}, same request id)")))
            }
            _ => None,
        };
        if let Some((kind, text)) = line {
            if let Ok(mut l) = last.lock() {
                if *l != Some((*subject, kind)) {
                    *l = Some((*subject, kind));
                    println!("{text}");
                }
            }
        }
    })
}

fn ask(question: &str) -> bool {
    print!("    ? {question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes")
}

/// Runs the demo; see the module docs.
pub fn demo(args: DemoArgs) -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| failed("runtime", e))?;
    rt.block_on(run(args))
}

async fn run(args: DemoArgs) -> Result<(), CliError> {
    if !(0.0..1.0).contains(&args.loss) {
        return Err(CliError::rejected("bad_loss", "--loss must be in [0, 1)", args.json));
    }
    let color = std::io::IsTerminal::is_terminal(&std::io::stdout()) && std::env::var_os("NO_COLOR").is_none();
    let mut story = Story { json: args.json, color, steps: vec![], checks: vec![], doc: BTreeMap::new() };
    let result = story_steps(&args, &mut story).await;
    if let Err(e) = &result {
        story.checks.push((format!("demo ran to the end ({})", e.message), false));
    }
    finish(&args, &story);
    match result {
        Err(e) => Err(CliError { json: args.json, ..e }),
        Ok(()) if story.all_ok() => Ok(()),
        Ok(()) => Err(CliError::failed("check_failed", "at least one check failed (see above)", args.json)),
    }
}

fn finish(args: &DemoArgs, story: &Story) {
    if args.json {
        let mut doc: serde_json::Map<String, Value> = story.doc.clone().into_iter().collect();
        doc.insert("ok".into(), json!(story.all_ok()));
        doc.insert(
            "steps".into(),
            story
                .steps
                .iter()
                .map(|s| json!({"name": s.name, "outcome": s.outcome, "ok": s.ok, "ms": s.ms, "detail": s.detail}))
                .collect::<Vec<_>>()
                .into(),
        );
        doc.insert(
            "checks".into(),
            story.checks.iter().map(|(c, ok)| json!({"check": c, "ok": ok})).collect::<Vec<_>>().into(),
        );
        println!("{}", Value::Object(doc));
        return;
    }
    story.say("\n\x1b[1mSummary\x1b[0m");
    println!("  {:<44} {:<28} {:>9}", "step", "outcome", "time");
    for s in &story.steps {
        let mark = if s.ok { "✔" } else { "✘" };
        println!("  {mark} {:<42} {:<28} {:>7.2} s", s.name, s.outcome, s.ms as f64 / 1000.0);
    }
    let held = story.checks.iter().filter(|(_, ok)| *ok).count();
    println!("\n  {held}/{} checks held{}", story.checks.len(), if story.all_ok() { "" } else { " — FAILED" });
}

/// The keys the SP checks a signed result with: octane's pinned key and the appliance
/// identity of the pair attestation it verified.
struct Trusted {
    octane: Key32,
    appliance: Key32,
}

/// What the SP asks the phone to sign in step 4.
struct Ask {
    label: &'static str,
    account: AccountId,
    kind: PayloadKind,
    payload: Vec<u8>,
    expect_blocked: bool,
}

async fn story_steps(args: &DemoArgs, story: &mut Story) -> Result<(), CliError> {
    // ---- the world: octane, the appliance, the SP, the phone ----
    // The scripted appliance user takes a moment to press the button, so the phone shows
    // "confirm on your appliance" from the appliance's keep-alives.
    let user = if args.interactive { UserScript::Prompt } else { UserScript::Delay(700) };
    let radio = crate::radio::link_config(args.central, args.mtu, args.connection_interval_ms, args.pdus_per_event);
    let link_cfg = SimLinkConfig { latency: Duration::from_millis(args.latency_ms), drop: args.loss, seed: 7, ..radio };
    let interval_ms = link_cfg.connection_interval.as_secs_f64() * 1000.0;
    let pdus_per_event = link_cfg.pdus_per_event;
    let world = World::start(WorldConfig {
        // Octane serves the repository's signed metadata bundle to phones.
        octane: OctaneSimConfig {
            metadata_bundle: Some(crate::cmd_decode::BUILT_IN_BUNDLE.to_vec()),
            ..OctaneSimConfig::default()
        },
        appliance: ApplianceSimConfig {
            seed: vec![0x5u8; 32],
            user,
            name: "Sigil demo appliance".into(),
            keepalive: Duration::from_millis(250),
            ..ApplianceSimConfig::default()
        },
        link: link_cfg,
    })
    .await
    .map_err(|e| failed(e.code(), e))?;
    let mut cfg = world.phone_config();
    let World { octane, demo: demo_sp, sp, appliance, connector, .. } = world;
    let octane_key = octane.octane_public_key;
    cfg.phone_name = "Demo phone".into();
    // The metadata key the repository's bundle is signed with (a production app pins its own).
    cfg.metadata_key = Some(Key32(DEV_METADATA_PUBLIC_KEY));
    if args.loss > 0.0 {
        // A lossy radio: more resends of the same request id before giving up.
        cfg.appliance.max_retries = 8;
    }
    let phone = Sunstorm::open(
        cfg,
        Arc::new(MemorySecretStore::default()),
        Arc::new(sunstorm_core::ble::transport::SameConnector(connector)),
        Some(progress_printer(args.json)),
    )
    .map_err(|e| failed("phone", e))?;

    story.say(format!(
        "\x1b[1mSunstorm demo\x1b[0m — octane simulator at {} (key {}), appliance simulator over a simulated BLE link ({} radio: MTU {}, {} ms connection interval, {}, {} ms latency, {:.0} % loss)",
        octane.url,
        octane_key.fingerprint(),
        args.central.name(),
        args.mtu,
        interval_ms,
        crate::radio::cap_words(pdus_per_event),
        args.latency_ms,
        args.loss * 100.0
    ));
    story.doc.insert(
        "config".into(),
        json!({"mtu": args.mtu, "latency_ms": args.latency_ms, "central": args.central.name(), "connection_interval_ms": interval_ms, "pdus_per_event": pdus_per_event, "loss": args.loss, "octane_url": octane.url}),
    );
    story.doc.insert("octane_public_key".into(), json!(octane_key.to_hex()));
    story.doc.insert("sp_public_key".into(), json!(demo_sp.profile.public_key.to_hex()));

    // ---- 1. bonding ----
    story.heading(1, "Bonding the phone with the appliance");
    let t = Instant::now();
    let pin = appliance.pin();
    story.say(format!("    the appliance shows PIN {pin}; the phone enters it (SPAKE2, then Noise KK)"));
    let bonded = phone.bond_appliance(None, &pin).await.map_err(|e| failed("bond_failed", e))?.appliance;
    story.check(
        format!("bonded with \"{}\", identity {}", bonded.name, bonded.identity.fingerprint()),
        bonded.identity == appliance.identity(),
    );
    story.doc.insert("appliance_identity".into(), json!(bonded.identity.to_hex()));
    story.record("bond phone ↔ appliance", t, true, "bonded", json!({"identity": bonded.identity.to_hex()}));

    // The phone takes the signed metadata bundle (ERC-7730 descriptors, tokens) from octane.
    let t = Instant::now();
    let update = phone.update_metadata().await.map_err(|e| failed("metadata", e))?;
    let version = phone.metadata_status().map(|s| s.version);
    let shown = version.map_or("none".into(), |v| v.to_string());
    story.say(format!("    metadata bundle from octane: {update:?}, version {shown}"));
    story.check("the signed metadata bundle verified under the pinned key and in use", version.is_some());
    story.record("metadata bundle from octane", t, version.is_some(), "in use", json!({"version": version}));

    // ---- 2. the SP creates sessions ----
    story.heading(2, "The SP creates pair sessions");
    let t = Instant::now();
    let chains = vec![ChainId::Evm(1), ChainId::Evm(8453), ChainId::Solana(SOLANA_MAINNET.into())];
    let two = sp
        .create_session(&CreateSessionRequest {
            sp_user_ref: "user-42".into(),
            chains: chains.clone(),
            return_url: None,
            ttl_secs: None,
        })
        .await
        .map_err(|e| failed("create_session", e))?;
    story.say("    two-device: the SP's desktop page shows this QR and the code");
    story.say(format!("    link {}", two.link));
    story.say(format!(
        "    validation code {} {}",
        &two.validation_code.get(..3).unwrap_or(""),
        &two.validation_code.get(3..).unwrap_or("")
    ));
    if !args.json {
        for line in crate::qr::render(&two.link).lines() {
            println!("      {line}");
        }
    }
    let return_url = format!("{DEMO_SP_ORIGIN}/paired?user=user-42");
    let single = sp
        .create_session(&CreateSessionRequest {
            sp_user_ref: "user-42-mobile".into(),
            chains: vec![ChainId::Evm(1)],
            return_url: Some(return_url.clone()),
            ttl_secs: None,
        })
        .await
        .map_err(|e| failed("create_session", e))?;
    story.say(format!("    single-device: a Universal Link with the code in it, back to {return_url}"));
    story.say(format!("    link {}", single.link_with_code));
    story.record(
        "SP creates sessions",
        t,
        true,
        "2 sessions",
        json!({"two_device_link": two.link, "single_device_link": single.link_with_code}),
    );

    // ---- 3. the phone pairs ----
    story.heading(3, "The phone pairs (two-device, then single-device)");
    let t = Instant::now();
    let state = phone.open_link(&two.link, None).await.map_err(|e| failed("open_link", e))?;
    let flow = state.flow_id();
    if let PairState::CodeNeeded { card, .. } | PairState::SessionLoaded { card, .. } = &state {
        story.say(format!(
            "    SP card: {} ({}), key {}, for \"{}\", asks for {}, expires in {} s",
            card.sp.name,
            card.sp.homepage,
            card.sp_key_fingerprint,
            card.sp_user_ref,
            card.requested_chains.iter().map(|c| c.display_name()).collect::<Vec<_>>().join(", "),
            card.expires_at.saturating_sub(sunstorm_core::clock::now_unix())
        ));
    }
    story.check(
        "octane's signature on the session verified against the pinned key",
        !matches!(state, PairState::Failed { .. }),
    );
    let code = if args.interactive {
        print!("    ? type the validation code shown by the SP: ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        line
    } else {
        two.validation_code.clone()
    };
    story.say("    the user types the code; octane checks it (attempts are limited)");
    let state = phone.submit_code(flow, Some(&code)).await.map_err(|e| failed("code_rejected", e))?;
    story.check("validation code accepted by octane", matches!(state, PairState::CodeVerified { .. }));
    let list = phone.approval_list(flow).await.map_err(|e| failed("wallets", e))?;
    for row in &list.rows {
        story.say(format!("    wallet  {:<14} {}", row.chain_name, row.account.short_address()));
    }
    let chosen: Vec<AccountId> = list.rows.iter().map(|r| r.account.clone()).collect();
    if args.interactive && !ask(&format!("approve these {} wallets for {}?", chosen.len(), demo_sp.profile.name)) {
        return Err(CliError::failed("declined", "you declined the pair on the phone", false));
    }
    phone.choose_wallets(flow, &chosen).await.map_err(|e| failed("wallets", e))?;
    let state = phone.approve_pair(flow).await.map_err(|e| failed("pair_failed", e))?;
    let PairState::Paired { pair_id, bindings, outcome, .. } = state else {
        return Err(failed("pair_failed", format!("pair ended in state {}", state.name())));
    };
    story.check(format!("paired: pair_id {pair_id}, {} bindings", bindings.len()), !bindings.is_empty());
    story.check("two-device flow ends in a done state", outcome == PairOutcome::Done);
    let result = sp.await_pair(&two.session_id, Duration::from_secs(10)).await.map_err(|e| failed("await_pair", e))?;
    let expected = ExpectedPair {
        session_id: &two.session_id,
        validation_code: Some(&two.validation_code),
        sp_public_key: Some(&demo_sp.profile.public_key),
    };
    let attested = verify_pair_result(&result, &expected);
    story.check(
        "the SP verified the appliance's attestation (session, code, SP key, bindings, pair_id)",
        matches!(&attested, Ok(Some(a)) if a.pair_id == pair_id && a.bindings == bindings),
    );
    if let PairResult::Paired { attestation, .. } = &result {
        story.doc.insert("attestation".into(), json!({"body": b64(&attestation.body), "sig": b64(&attestation.sig)}));
    }
    let trusted = Trusted {
        octane: octane_key,
        appliance: match &attested {
            Ok(Some(a)) => a.appliance_identity,
            _ => bonded.identity,
        },
    };
    story.doc.insert("pair_id".into(), json!(pair_id));
    story.doc.insert("bindings".into(), json!(bindings.iter().map(|b| b.to_string()).collect::<Vec<_>>()));
    story.record("pair (two-device)", t, true, "paired", json!({"pair_id": pair_id, "bindings": bindings}));

    let t = Instant::now();
    let state = phone.open_link(&single.link_with_code, None).await.map_err(|e| failed("open_link", e))?;
    let flow2 = state.flow_id();
    story.check("single-device link opens with the code prefilled", matches!(state, PairState::CodePrefilled { .. }));
    phone.submit_code(flow2, None).await.map_err(|e| failed("code_rejected", e))?;
    let list2 = phone.approval_list(flow2).await.map_err(|e| failed("wallets", e))?;
    let evm_only: Vec<AccountId> = list2.rows.iter().map(|r| r.account.clone()).collect();
    phone.choose_wallets(flow2, &evm_only).await.map_err(|e| failed("wallets", e))?;
    let state = phone.approve_pair(flow2).await.map_err(|e| failed("pair_failed", e))?;
    let back = match &state {
        PairState::Paired { outcome: PairOutcome::ReturnTo { url }, .. } => Some(url.clone()),
        _ => None,
    };
    story.check(
        format!("single-device flow hands the shell the validated return_url {}", back.clone().unwrap_or_default()),
        back.as_deref() == Some(return_url.as_str()),
    );
    story.record("pair (single-device)", t, back.is_some(), "paired", json!({"return_url": back}));

    // ---- 4. signing ----
    story.heading(4, "The SP asks for signatures");
    let evm = bindings
        .iter()
        .find(|a| a.chain == ChainId::Evm(1))
        .cloned()
        .ok_or_else(|| failed("no_binding", "no Ethereum wallet bound"))?;
    let sol = bindings
        .iter()
        .find(|a| matches!(a.chain, ChainId::Solana(_)))
        .cloned()
        .ok_or_else(|| failed("no_binding", "no Solana wallet bound"))?;
    let sol_key = sol.solana_pubkey().ok_or_else(|| failed("no_binding", "bad Solana binding"))?;
    let recipient = [0x42u8; 20];
    let me = evm.evm_address().ok_or_else(|| failed("no_binding", "bad EVM binding"))?;
    let asks = vec![
        Ask {
            label: "Aave deposit of 1,000 USDC (a contract call shown from its ERC-7730 descriptor)",
            account: evm.clone(),
            kind: PayloadKind::EvmTransaction,
            payload: samples::aave_supply(3, samples::USDC, 1_000_000_000, me),
            expect_blocked: false,
        },
        Ask {
            label: "EIP-1559 transfer of 0.05 ETH",
            account: evm.clone(),
            kind: PayloadKind::EvmTransaction,
            payload: samples::eip1559_transfer(1, 0, recipient, samples::ETHER / 20),
            expect_blocked: false,
        },
        Ask {
            label: "ERC-20 approve, unlimited",
            account: evm.clone(),
            kind: PayloadKind::EvmTransaction,
            payload: samples::erc20_approve_unlimited(1, 1, samples::USDC, recipient),
            expect_blocked: true,
        },
        Ask {
            label: "Solana transfer of 0.01 SOL",
            account: sol.clone(),
            kind: PayloadKind::SolanaTransaction,
            payload: samples::solana_transfer(sol_key, [0x24; 32], 10_000_000, [0x11; 32]),
            expect_blocked: false,
        },
        Ask {
            label: "EIP-712 permit (ERC-2612, 100 USDC)",
            account: evm.clone(),
            kind: PayloadKind::Eip712TypedData,
            payload: samples::erc2612_permit(
                1,
                samples::USDC,
                evm.evm_address().ok_or_else(|| failed("no_binding", "bad EVM binding"))?,
                recipient,
                100_000_000,
                sunstorm_core::clock::now_unix() + 3_600,
            )
            .into_bytes(),
            expect_blocked: false,
        },
    ];
    let mut signed_docs = Vec::new();
    for ask_ in asks {
        sign_one(args, story, &phone, &sp, &demo_sp.signing_key, pair_id, &ask_, &trusted, &mut signed_docs).await?;
    }
    // The appliance showed each screen's fingerprint beside its own decoding (its log).
    let screens: Vec<_> = appliance
        .events_after(0, MAX_EVENTS)
        .events
        .into_iter()
        .filter(|e| e.kind == EventType::ScreenShown)
        .filter_map(|e| e.screen)
        .collect();
    let same = signed_docs.iter().all(|d| {
        screens.iter().any(|s| {
            Some(s.request_id.to_string().as_str()) == d["request_id"].as_str()
                && s.fingerprint.as_deref() == d["display_fingerprint"].as_str()
        })
    });
    story.check(
        "the appliance showed the same fingerprint for every request it signed",
        same && !signed_docs.is_empty(),
    );
    story.doc.insert("signed".into(), Value::Array(signed_docs));

    // ---- 5. revoke ----
    story.heading(5, "Revocation");
    let t = Instant::now();
    phone.revoke(pair_id).await.map_err(|e| failed("revoke_failed", e))?;
    story.say("    the appliance dropped the pair and signed the revocation; the phone posted it");
    let after = submit(
        &sp,
        &demo_sp.signing_key,
        pair_id,
        &evm,
        PayloadKind::EvmTransaction,
        samples::eip1559_transfer(1, 2, recipient, 1),
    )
    .await;
    let refused = matches!(&after, Err(e) if e.contains("403") || e.contains("pair_revoked"));
    story.check(format!("the next sign request is refused by octane: {}", after.err().unwrap_or_default()), refused);
    let pairs = phone.list_pairs().map_err(|e| failed("store", e))?;
    story.check(
        "the phone shows the pair as revoked",
        pairs.iter().any(|p| p.pair_id == pair_id && p.status == sunstorm_core::store::PairStatus::Revoked),
    );
    story.record("revoke", t, refused, "revoked, then 403", json!({"pair_id": pair_id}));

    octane.shutdown().await;
    Ok(())
}

/// Builds, signs (as the SP) and submits one request; returns its id or octane's refusal.
async fn submit(
    sp: &SpClient,
    sp_key: &ed25519_dalek::SigningKey,
    pair_id: Uuid,
    account: &AccountId,
    kind: PayloadKind,
    payload: Vec<u8>,
) -> Result<Uuid, String> {
    let now = sunstorm_core::clock::now_unix();
    let req = SignRequest {
        v: STATEMENT_VERSION,
        request_id: Uuid::new_v4(),
        pair_id,
        chain: account.chain.clone(),
        account: account.clone(),
        kind,
        payload,
        created_at: now,
        expires_at: now + MAX_TTL_SECS,
    };
    sp.submit_sign(sp_key, &req).await.map_err(|e| e.to_string())?;
    Ok(req.request_id)
}

fn show_pending(story: &Story, p: &PendingSignature) {
    story.say(format!("    📱 {} — {} on {}", p.decoded.title, p.account.short_address(), p.chain.display_name()));
    if let Some(d) = &p.decoded.descriptor {
        story.say(format!("       (shown from the ERC-7730 descriptor {d})"));
    }
    for f in &p.decoded.fields {
        story.say(format!("       {:<26} {}", f.label, f.value));
    }
    for w in &p.decoded.warnings {
        story.say(format!("       \x1b[33m⚠ {w}\x1b[0m"));
    }
    for v in &p.violations {
        story.say(format!("       \x1b[31m⛔ blocked by your rule: {}\x1b[0m", v.message));
    }
    story.say(format!("       {:<26} {}", "Screen fingerprint", p.display_digest.fingerprint()));
}

#[allow(clippy::too_many_arguments)]
async fn sign_one(
    args: &DemoArgs,
    story: &mut Story,
    phone: &Sunstorm,
    sp: &SpClient,
    sp_key: &ed25519_dalek::SigningKey,
    pair_id: Uuid,
    ask_: &Ask,
    trusted: &Trusted,
    docs: &mut Vec<Value>,
) -> Result<(), CliError> {
    let t = Instant::now();
    story.say(format!("\n  ▸ {}", ask_.label));
    let request_id = submit(sp, sp_key, pair_id, &ask_.account, ask_.kind, ask_.payload.clone())
        .await
        .map_err(|e| failed("sp_sign", e))?;
    let pending = phone.pending_sign_requests(Duration::from_secs(5)).await.map_err(|e| failed("pending", e))?;
    let Some(p) = pending.into_iter().find(|p| p.request_id == request_id) else {
        story.check(format!("{}: delivered to the phone", ask_.label), false);
        story.record(ask_.label, t, false, "not delivered", Value::Null);
        return Ok(());
    };
    story.check("SP and octane signatures verified by the phone before showing it", true);
    show_pending(story, &p);
    if p.blocked() {
        let result = sp.await_sign(&request_id, Duration::from_secs(10)).await.map_err(|e| failed("await_sign", e))?;
        let seen = matches!(&result, SignResult::Rejected { .. });
        story.check("blocked before the appliance was asked; the SP sees a rejection", seen && ask_.expect_blocked);
        if let SignResult::Rejected { reason_code, message } = &result {
            story.say(format!("    SP: rejected ({reason_code}): {message}"));
        }
        story.record(ask_.label, t, seen && ask_.expect_blocked, "blocked by guardrail", json!({"request_id": request_id, "violations": p.violations.iter().map(|v| v.code.clone()).collect::<Vec<_>>()}));
        return Ok(());
    }
    if args.interactive && !ask("sign this?") {
        phone.reject_sign(request_id).await.map_err(|e| failed("reject", e))?;
        story.record(ask_.label, t, true, "rejected by you", json!({"request_id": request_id}));
        return Ok(());
    }
    let outcome = phone.approve_sign(request_id).await.map_err(|e| failed("sign_failed", e))?;
    // The core already refused anything else; the demo shows the same check on what it got.
    let phone_checked = signing_target(ask_.kind, &ask_.payload, &ask_.account.chain)
        .map(|t| verify_appliance_signature(&t, &outcome.signature, &ask_.account).is_ok())
        .unwrap_or(false);
    story.check("the appliance's signature verified by the phone against the bound account", phone_checked);
    let result = sp.await_sign(&request_id, Duration::from_secs(10)).await.map_err(|e| failed("await_sign", e))?;
    let SignResult::Signed { bundle } = result else {
        story.check(format!("{}: the SP received the bundle", ask_.label), false);
        story.record(ask_.label, t, false, "no bundle", Value::Null);
        return Ok(());
    };
    // The SP's own checks, from the bundle alone.
    let cosigners = verify_bundle_cosigners(&bundle, &bundle.sp_public_key, &trusted.octane);
    story.check("SP signature ✔ octane signature ✔ (Ed25519, domain-separated, verify_strict)", cosigners.is_ok());
    let appliance_ok =
        signing_target(ask_.kind, &ask_.payload, &ask_.account.chain).map_err(|e| e.to_string()).and_then(|target| {
            verify_appliance_signature(&target, &bundle.appliance_sig, &ask_.account).map_err(|e| e.to_string())?;
            Ok(target)
        });
    let mut signer = Value::Null;
    match &appliance_ok {
        Ok(target) if ask_.account.chain.is_evm() => {
            let addr = evm_signer_address(target, &bundle.appliance_sig)
                .map(|a| AccountId::evm(1, a).address)
                .unwrap_or_default();
            story.check(
                format!("appliance signature ✔ recovers to {addr}, the bound account"),
                addr == ask_.account.address,
            );
            signer = json!(addr);
        }
        Ok(_) => {
            story.check("appliance signature ✔ (Ed25519 by the bound Solana key)", true);
        }
        Err(e) => {
            story.check(format!("appliance signature: {e}"), false);
        }
    }
    // What the user saw: the appliance's receipt over the display digest of the phone's
    // screen, checked with the appliance identity of the pair attestation.
    let receipt = verify_signed(&bundle, &bundle.sp_public_key, &trusted.octane, &trusted.appliance);
    let digest = receipt.as_ref().map(|v| v.display_digest).ok();
    match &receipt {
        Ok(v) => story.say(format!(
            "    SP received display digest {} (fingerprint {})",
            v.display_digest.hex(),
            v.display_digest.fingerprint()
        )),
        Err(e) => story.say(format!("    SP: {e}")),
    }
    story.check(
        "appliance receipt ✔ the SP's display digest is the digest of the screen the phone showed",
        digest == Some(p.display_digest),
    );
    let ok = cosigners.is_ok() && appliance_ok.is_ok() && digest == Some(p.display_digest);
    docs.push(json!({
        "label": ask_.label,
        "request_id": request_id,
        "kind": ask_.kind,
        "chain": ask_.account.chain.to_string(),
        "account": ask_.account.to_string(),
        "payload": b64(&ask_.payload),
        "body": b64(&bundle.body),
        "sp_sig": b64(&bundle.sp_sig),
        "octane_sig": b64(&bundle.octane_sig),
        "appliance_sig": b64(&bundle.appliance_sig),
        "sp_public_key": bundle.sp_public_key.to_hex(),
        "octane_public_key": bundle.octane_public_key.to_hex(),
        "evm_signer": signer,
        "descriptor": p.decoded.descriptor,
        "display_digest": digest.map(|d| d.hex()),
        "display_fingerprint": digest.map(|d| d.fingerprint()),
        "receipt": bundle.receipt.as_ref().map(|r| json!({"body": b64(&r.body), "sig": b64(&r.sig)})),
        "domains": {"sp": "sigil/v1/sp-sign-request", "octane": "sigil/v1/octane-sign-request"},
    }));
    story.record(ask_.label, t, ok, "signed, 3 signatures verified", json!({"request_id": request_id}));
    Ok(())
}
