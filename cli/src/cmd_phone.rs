//! The phone side from a terminal: `sunstorm pair`, `sunstorm sign watch`, `sunstorm pairs`,
//! `sunstorm revoke`. State lives in `--home` (default `$SUNSTORM_HOME`, else
//! `~/.sunstorm`): `sunstorm.db` (no secrets) and `secrets/` (0600 files).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use sunstorm_core::appliance::ApplianceProgress;
use sunstorm_core::caip::AccountId;
use sunstorm_core::pair::{PairOutcome, PairState};
use sunstorm_core::sign::PendingSignature;
use sunstorm_core::sunstorm::{CoreError, Event, Sunstorm};

use crate::output::{print_json_ok, CliError};
use crate::phone_home::{self, core_error, home_dir, parse_appliance, RouteArgs};

/// Where the phone's state lives and how to reach octane and the appliance.
#[derive(Args, Debug, Clone)]
pub struct PhoneArgs {
    /// Octane's base URL (HTTPS; plain HTTP only on loopback).
    #[arg(long, env = "SUNSTORM_OCTANE")]
    pub octane: Option<String>,
    /// Octane's pinned Ed25519 public key (64 hex digits).
    #[arg(long = "octane-key", env = "SUNSTORM_OCTANE_KEY")]
    pub octane_key: Option<String>,
    /// How to reach the appliance (left out: each bonded appliance at its own route).
    #[command(flatten)]
    pub route: RouteArgs,
    /// Bond with the appliance first, with the PIN it shows (when not bonded yet).
    #[arg(long)]
    pub pin: Option<String>,
    /// The phone's state directory.
    #[arg(long, env = "SUNSTORM_HOME")]
    pub home: Option<PathBuf>,
    /// Accepted pair-link host (repeatable; default sigilvault.xyz).
    #[arg(long = "link-host")]
    pub link_hosts: Vec<String>,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `sunstorm pair <LINK>` (or `sunstorm pair --resume`).
#[derive(Args, Debug)]
pub struct PairArgs {
    /// The pair link (from the QR code or the Universal Link). Opening it again after an
    /// interrupted run continues the flow already waiting on the appliance.
    #[arg(required_unless_present = "resume", conflicts_with = "resume")]
    pub link: Option<String>,
    /// Continue every pair flow an interrupted (killed) run left unfinished, without a link:
    /// a stored appliance approval is delivered to octane, a request the appliance was asked
    /// is asked again under the same id; flows in earlier stages are listed.
    #[arg(long)]
    pub resume: bool,
    /// The validation code shown on the SP's page (prompted on a TTY when absent).
    #[arg(long)]
    pub code: Option<String>,
    /// Wallets to approve: `all` (every wallet on a requested chain) or CAIP-10 accounts,
    /// comma separated (prompted on a TTY when absent).
    #[arg(long)]
    pub wallets: Option<String>,
    /// The appliance to pair (its id from `sunstorm appliance list`); needed when several
    /// are bonded.
    #[arg(long)]
    pub appliance: Option<String>,
    #[command(flatten)]
    pub phone: PhoneArgs,
}

/// How `sign watch` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApproveMode {
    /// Approve every verified, unblocked request.
    All,
    /// Ask on the terminal.
    Prompt,
    /// Reject every request (testing the SP's rejection path).
    Reject,
}

/// `sunstorm sign …`.
#[derive(Subcommand, Debug)]
pub enum SignCommand {
    /// Watch octane for sign requests, show each decoded, and relay approved ones.
    Watch(WatchArgs),
}

/// `sunstorm sign watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// How to decide.
    #[arg(long, value_enum, default_value = "prompt")]
    pub approve: ApproveMode,
    /// Stop after the first batch of requests has been handled.
    #[arg(long)]
    pub once: bool,
    /// Longest wait for requests with `--once` (seconds).
    #[arg(long, default_value_t = 60)]
    pub wait: u64,
    #[command(flatten)]
    pub phone: PhoneArgs,
}

/// `sunstorm pairs`.
#[derive(Args, Debug)]
pub struct PairsArgs {
    /// Ask octane first for SP-side revocations, for every bonded appliance; an appliance
    /// that cannot be synced is named on stderr (`sync_failed` in JSON) and the others are
    /// synced all the same.
    #[arg(long)]
    pub sync: bool,
    #[command(flatten)]
    pub phone: PhoneArgs,
}

/// `sunstorm revoke <PAIR_ID>`.
#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The pair to revoke.
    pub pair_id: String,
    #[command(flatten)]
    pub phone: PhoneArgs,
}

fn home(p: &PhoneArgs) -> PathBuf {
    home_dir(p.home.as_deref())
}

fn failed(json: bool, e: &CoreError) -> CliError {
    core_error(e, json)
}

fn runtime(json: bool) -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::failed("runtime", e.to_string(), json))
}

/// Opens the phone: store and secrets in the home dir, octane and appliance from flags;
/// bonds first when `--pin` is given and nothing is bonded.
async fn open(p: &PhoneArgs, progress: bool) -> Result<Sunstorm, CliError> {
    let json = p.json;
    let octane = phone_home::octane_flags(p.octane.as_deref(), p.octane_key.as_deref(), json)?
        .ok_or_else(|| CliError::rejected("missing_flag", "--octane is required", json))?;
    let listener: Option<sunstorm_core::sunstorm::EventListener> = (progress && !json).then(|| {
        Arc::new(|e: &Event| {
            if let Event::Progress { progress: ApplianceProgress::WaitingForUser, .. } = e {
                eprintln!("… confirm on your appliance");
            }
        }) as sunstorm_core::sunstorm::EventListener
    });
    let s = phone_home::open(phone_home::Open {
        home: home(p),
        octane: Some(octane),
        link_hosts: &p.link_hosts,
        route: &p.route,
        phone_mtu: 247,
        phone_name: None,
        listener,
        json,
    })
    .await?;
    if s.bonded_appliances().map_err(|e| failed(json, &e))?.is_empty() {
        let Some(pin) = &p.pin else {
            return Err(CliError::failed(
                "not_bonded",
                "no appliance is bonded with this phone; run `sunstorm appliance bond` or pass --pin with the PIN the appliance shows",
                json,
            ));
        };
        let Some(route) = p.route.route() else {
            return Err(CliError::rejected("missing_flag", "--socket or --ble is required to bond", json));
        };
        let a = s.bond_appliance(Some(&route), pin).await.map_err(|e| failed(json, &e))?.appliance;
        if !json {
            eprintln!("bonded with {} ({})", a.name, a.identity.fingerprint());
        }
    }
    Ok(s)
}

fn prompt(question: &str) -> Option<String> {
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).ok()?;
    Some(line.trim().to_string())
}

fn tty() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Prints a finished pair (`already`: paired by an earlier, interrupted run).
fn print_paired(json: bool, pair_id: &uuid::Uuid, bindings: &[AccountId], outcome: &PairOutcome, already: bool) {
    if json {
        print_json_ok(serde_json::json!({
            "pair_id": pair_id,
            "bindings": bindings,
            "outcome": outcome,
            "already_paired": already,
        }));
        return;
    }
    if already {
        println!("already paired: {pair_id}");
    } else {
        println!("paired: {pair_id}");
    }
    for b in bindings {
        println!("  {b}");
    }
    match outcome {
        PairOutcome::ReturnTo { url } => println!("return to: {url}"),
        PairOutcome::Done => println!("done: continue on the service's page"),
    }
}

/// The active pair this phone already holds for the link's session, if any: a run killed
/// after the pair was stored makes the session "used" for octane, yet the user is paired.
fn local_pair_for_link(s: &Sunstorm, link: &str, hosts: &[String]) -> Option<sunstorm_core::store::PairRecord> {
    let mut cfg = sunstorm_core::link::LinkConfig::default();
    if !hosts.is_empty() {
        cfg.accepted_hosts = hosts.to_vec();
    }
    let intent = sunstorm_core::link::parse_link(link, &cfg).ok()?;
    s.list_pairs()
        .ok()?
        .into_iter()
        .find(|p| p.session_id == intent.session_id && p.status == sunstorm_core::store::PairStatus::Active)
}

/// `sunstorm pair --resume`: what `Sunstorm::resume_pending` did with each unfinished flow.
async fn resume(s: &Sunstorm, json: bool) -> Result<(), CliError> {
    let results = s.resume_pending().await.map_err(|e| failed(json, &e))?;
    let mut rows = Vec::with_capacity(results.len());
    for r in &results {
        let row = match r {
            Ok(PairState::Paired { flow_id, pair_id, bindings, outcome }) => {
                if !json {
                    println!("flow {flow_id}:");
                    print_paired(false, pair_id, bindings, outcome, false);
                }
                serde_json::json!({"flow_id": flow_id, "state": "paired", "pair_id": pair_id, "bindings": bindings, "outcome": outcome})
            }
            Ok(other) => {
                if !json {
                    println!("flow {}: {} (open its link again to continue)", other.flow_id(), other.name());
                }
                serde_json::json!({"flow_id": other.flow_id(), "state": other.name()})
            }
            Err(e) => {
                if !json {
                    println!("a flow could not be continued: {} ({e})", e.code());
                }
                serde_json::json!({"state": "failed", "code": e.code(), "message": e.to_string()})
            }
        };
        rows.push(row);
    }
    if json {
        print_json_ok(serde_json::json!({ "flows": rows }));
    } else if rows.is_empty() {
        println!("no unfinished pair flows");
    }
    Ok(())
}

/// `sunstorm pair`.
pub fn pair(a: PairArgs) -> Result<(), CliError> {
    let json = a.phone.json;
    let appliance = parse_appliance(a.appliance.as_deref(), json)?;
    runtime(json)?.block_on(async move {
        let s = open(&a.phone, true).await?;
        let fail = |e: CoreError| failed(json, &e);
        let Some(link) = a.link.as_deref().filter(|_| !a.resume) else {
            return resume(&s, json).await;
        };
        let mut state = match s.open_link(link, appliance.as_ref()).await {
            Ok(st) => st,
            Err(CoreError::Pair(sunstorm_core::pair::PairError::SessionUsed)) => {
                match local_pair_for_link(&s, link, &a.phone.link_hosts) {
                    Some(p) => {
                        print_paired(json, &p.pair_id, &p.bindings, &PairOutcome::Done, true);
                        return Ok(());
                    }
                    None => return Err(fail(CoreError::Pair(sunstorm_core::pair::PairError::SessionUsed))),
                }
            }
            Err(e) => return Err(fail(e)),
        };
        let flow_id = state.flow_id();
        if let PairState::Paired { pair_id, bindings, .. } = &state {
            // This phone already paired that session (an earlier run, perhaps killed before
            // it could say so): the core answers from its store.
            print_paired(json, pair_id, bindings, &PairOutcome::Done, true);
            return Ok(());
        }
        if let PairState::WaitingForAppliance { .. } = &state {
            // An earlier run was interrupted after the appliance was asked: continue it (same
            // request id, so the appliance never approves twice) instead of starting over.
            if !json {
                eprintln!("continuing the pair already waiting on the appliance…");
            }
            state = s.approve_pair(flow_id).await.map_err(fail)?;
            return finish_pair(json, &state);
        }
        if let PairState::CodeNeeded { card, .. } | PairState::CodePrefilled { card, .. } = &state {
            if !json {
                eprintln!("{} ({}) asks to pair", card.sp.name, card.sp.homepage);
                eprintln!("  user: {}   SP key: {}", card.sp_user_ref, card.sp_key_fingerprint);
                let chains: Vec<String> = card.requested_chains.iter().map(|c| c.display_name()).collect();
                eprintln!("  wallets on: {}", chains.join(", "));
            }
        }
        // The code: prefilled, flag, or prompt; a wrong code on a TTY asks again.
        loop {
            let typed = match (&state, &a.code) {
                (PairState::CodePrefilled { .. }, None) => None,
                (_, Some(c)) => Some(c.clone()),
                (_, None) if tty() && !json => prompt("validation code: "),
                _ => return Err(CliError::rejected("code_required", "--code is required (not a terminal)", json)),
            };
            match s.submit_code(flow_id, typed.as_deref()).await {
                Ok(_) => break,
                Err(CoreError::Pair(sunstorm_core::pair::PairError::CodeRejected { attempts_left }))
                    if a.code.is_none() && tty() && !json && attempts_left > 0 =>
                {
                    eprintln!("wrong code, {attempts_left} attempts left");
                }
                Err(e) => return Err(fail(e)),
            }
        }
        let list = s.approval_list(flow_id).await.map_err(fail)?;
        let bindable: Vec<AccountId> = list
            .rows
            .iter()
            .filter(|r| r.state != sunstorm_core::wallets::RowState::NotRequested)
            .map(|r| r.account.clone())
            .collect();
        let choice = match &a.wallets {
            Some(w) => w.clone(),
            None if tty() && !json => {
                for (i, acc) in bindable.iter().enumerate() {
                    eprintln!("  [{}] {} {}", i + 1, acc.chain.display_name(), acc);
                }
                prompt("wallets to approve (all, or numbers/CAIP-10 separated by commas): ").unwrap_or_default()
            }
            None => "all".to_string(),
        };
        let selected: Vec<AccountId> = if choice.trim() == "all" {
            bindable.clone()
        } else {
            let mut v = Vec::new();
            for part in choice.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let acc = match part.parse::<usize>() {
                    Ok(n) => bindable.get(n.wrapping_sub(1)).cloned(),
                    Err(_) => AccountId::from_str(part).ok(),
                };
                v.push(acc.ok_or_else(|| CliError::rejected("bad_wallet", format!("`{part}` is not a wallet"), json))?);
            }
            v
        };
        s.choose_wallets(flow_id, &selected).await.map_err(fail)?;
        if !json {
            eprintln!("asking the appliance…");
        }
        state = s.approve_pair(flow_id).await.map_err(fail)?;
        finish_pair(json, &state)
    })
}

fn finish_pair(json: bool, state: &PairState) -> Result<(), CliError> {
    match state {
        PairState::Paired { pair_id, bindings, outcome, .. } => {
            print_paired(json, pair_id, bindings, outcome, false);
            Ok(())
        }
        other => Err(CliError::failed("not_paired", format!("the flow ended in {}", other.name()), json)),
    }
}

fn show(p: &PendingSignature) {
    eprintln!("— {} asks to sign: {} on {}", p.sp_name, p.decoded.title, p.chain.display_name());
    eprintln!("  account: {}", p.account);
    for f in &p.decoded.fields {
        eprintln!("  {:>14}: {}", f.label, f.value);
    }
    for w in &p.decoded.warnings {
        eprintln!("  ! {}", w.message());
    }
    for v in &p.violations {
        eprintln!("  ✗ blocked: {}", v.message);
    }
}

/// `sunstorm sign watch`.
pub fn sign(cmd: SignCommand) -> Result<(), CliError> {
    let SignCommand::Watch(a) = cmd;
    let json = a.phone.json;
    runtime(json)?.block_on(async move {
        let s = open(&a.phone, true).await?;
        let fail = |e: CoreError| failed(json, &e);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(a.wait);
        loop {
            let wait = if a.once {
                deadline.saturating_duration_since(tokio::time::Instant::now()).min(Duration::from_secs(25))
            } else {
                Duration::from_secs(25)
            };
            let pending = s.pending_sign_requests(wait).await.map_err(fail)?;
            let mut handled = 0usize;
            for p in pending {
                handled += 1;
                if !json {
                    show(&p);
                }
                if p.blocked() {
                    let codes: Vec<&str> = p.violations.iter().map(|v| v.code.as_str()).collect();
                    if json {
                        println!("{}", serde_json::json!({"request_id": p.request_id, "outcome": "blocked", "violations": codes}));
                    }
                    continue;
                }
                let approve = match a.approve {
                    ApproveMode::All => true,
                    ApproveMode::Reject => false,
                    ApproveMode::Prompt => {
                        matches!(prompt("approve? [y/N] ").as_deref(), Some("y" | "Y" | "yes"))
                    }
                };
                let outcome = if approve {
                    match s.approve_sign(p.request_id).await {
                        Ok(o) => serde_json::json!({"request_id": p.request_id, "outcome": "signed", "signature": hex::encode(&o.signature)}),
                        Err(e) => serde_json::json!({"request_id": p.request_id, "outcome": "failed", "code": e.code(), "message": e.to_string()}),
                    }
                } else {
                    match s.reject_sign(p.request_id).await {
                        Ok(()) => serde_json::json!({"request_id": p.request_id, "outcome": "rejected"}),
                        Err(e) => serde_json::json!({"request_id": p.request_id, "outcome": "failed", "code": e.code(), "message": e.to_string()}),
                    }
                };
                if json {
                    println!("{outcome}");
                } else {
                    eprintln!("  → {}", outcome.get("outcome").and_then(|v| v.as_str()).unwrap_or("?"));
                }
            }
            if a.once && (handled > 0 || tokio::time::Instant::now() >= deadline) {
                return Ok(());
            }
        }
    })
}

/// `sunstorm pairs`.
pub fn pairs(a: PairsArgs) -> Result<(), CliError> {
    let json = a.phone.json;
    runtime(json)?.block_on(async move {
        let fail = |e: CoreError| failed(json, &e);
        // Appliances `--sync` could not sync (the others were): (appliance id, code, why).
        let mut sync_failed = Vec::new();
        let list = if a.sync {
            let s = open(&a.phone, false).await?;
            let report = s.sync().await.map_err(fail)?;
            for f in &report.failed {
                sync_failed.push((f.appliance.to_hex(), f.error.code(), f.error.to_string()));
            }
            s.list_pairs().map_err(fail)?
        } else {
            // Reading the local store needs neither octane nor the appliance.
            let store = sunstorm_core::store::Store::open(&home(&a.phone).join("sunstorm.db"))
                .map_err(|e| CliError::failed("store_error", e.to_string(), json))?;
            store.pairs().map_err(|e| CliError::failed("store_error", e.to_string(), json))?
        };
        if json {
            let v: Vec<_> = list
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "pair_id": p.pair_id, "session_id": p.session_id, "sp": p.sp.name, "sp_id": p.sp.sp_id,
                        "sp_user_ref": p.sp_user_ref, "bindings": p.bindings, "status": p.status,
                        "created_at": p.created_at, "revoked_at": p.revoked_at,
                        "appliance_id": p.appliance_identity.to_hex(),
                    })
                })
                .collect();
            let failed: Vec<_> = sync_failed
                .iter()
                .map(|(id, code, why)| serde_json::json!({ "appliance_id": id, "code": code, "message": why }))
                .collect();
            print_json_ok(serde_json::json!({ "pairs": v, "sync_failed": failed }));
            return Ok(());
        }
        for (id, code, why) in &sync_failed {
            eprintln!("warning: appliance {id} was not synced ({code}): {why}");
        }
        if list.is_empty() {
            println!("no pairs");
        } else {
            for p in &list {
                println!(
                    "{}  {:<8} {} ({})",
                    p.pair_id,
                    format!("{:?}", p.status).to_lowercase(),
                    p.sp.name,
                    p.sp_user_ref
                );
                for b in &p.bindings {
                    println!("    {b}");
                }
            }
        }
        Ok(())
    })
}

/// `sunstorm revoke`.
pub fn revoke(a: RevokeArgs) -> Result<(), CliError> {
    let json = a.phone.json;
    let pair_id = uuid::Uuid::parse_str(&a.pair_id)
        .map_err(|_| CliError::rejected("bad_pair_id", "the pair id must be a UUID", json))?;
    runtime(json)?.block_on(async move {
        let s = open(&a.phone, true).await?;
        s.revoke(pair_id).await.map_err(|e| failed(json, &e))?;
        if json {
            print_json_ok(serde_json::json!({ "pair_id": pair_id, "status": "revoked" }));
        } else {
            println!("revoked: {pair_id}");
        }
        Ok(())
    })
}
