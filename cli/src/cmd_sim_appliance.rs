//! `sunstorm sim appliance`: the appliance simulator as a process, reachable over a Unix
//! socket that carries GATT-like PDUs (docs/ble-protocol.md), with link faults.
//!
//! Bonding mode opens at start (for `--bonding-window` seconds, or until one bond) unless
//! `--bonding-closed`; at run time SIGUSR1 opens it again and SIGUSR2 closes it.
//!
//! `--control 127.0.0.1:0` also serves the control API (docs/openapi/appliance-control.yaml):
//! the screen, its buttons, automation rules, run-time link faults, bonding mode, state.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use sunstorm_core::ble::bond_policy::{BondPolicy, BONDING_WINDOW_SECS, LOCKOUT_BASE_SECS};
use sunstorm_core::bytes::Key32;
use sunstorm_sim::appliance::{run_socket_with, ApplianceSim, ApplianceSimConfig, BondingConfig, UserScript};
use sunstorm_sim::link::{Central, SimLinkConfig};

use crate::output::CliError;

/// What the simulated person at the appliance does.
#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum UserArg {
    /// Approve everything at once.
    Approve,
    /// Decline everything.
    Reject,
    /// Ask on this terminal.
    Prompt,
    /// Answer nothing until the control API (or one of its rules) presses a button.
    Api,
}

/// Arguments of `sunstorm sim appliance`.
#[derive(Args, Debug)]
pub struct SimApplianceArgs {
    /// Unix socket path to listen on.
    #[arg(long, required_unless_present = "ble")]
    socket: Option<PathBuf>,
    /// Advertise as a real BLE peripheral instead (Linux, BlueZ), on this adapter
    /// (e.g. `hci0`; BlueZ's default adapter when no value is given).
    #[arg(long, num_args = 0..=1, value_name = "ADAPTER", conflicts_with = "socket")]
    ble: Option<Option<String>>,
    /// Seed of every key (32 bytes = 64 hex digits); a fixed demo seed if absent.
    #[arg(long)]
    seed: Option<String>,
    /// Bonding PIN (six digits); a random one if absent.
    #[arg(long)]
    pin: Option<String>,
    /// How long bonding mode stays open once opened, in seconds (it also closes after a
    /// bond). It opens at start, and again on SIGUSR1; SIGUSR2 closes it.
    #[arg(long, default_value_t = BONDING_WINDOW_SECS, value_name = "SECS")]
    bonding_window: u64,
    /// Start with bonding mode closed (as a real appliance does); open it with SIGUSR1.
    #[arg(long)]
    bonding_closed: bool,
    /// Length of the first wrong-PIN lockout in seconds (each further one doubles it).
    #[arg(long, default_value_t = LOCKOUT_BASE_SECS, value_name = "SECS")]
    lockout_secs: u64,
    /// The simulated user.
    #[arg(long, value_enum, default_value = "approve")]
    user: UserArg,
    /// Think this many milliseconds before approving (with --user approve).
    #[arg(long)]
    delay_ms: Option<u64>,
    /// Largest ATT MTU the simulated appliance accepts (23..=517).
    #[arg(long, default_value_t = 247)]
    mtu: u16,
    /// One-way latency added to every PDU, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// The phone whose radio the socket link models: `ios` (15 ms connection interval, 4
    /// PDUs per connection event), `android` (30 ms, 8) or `ideal` (PDUs leave at once).
    #[arg(long, default_value = "ios", value_parser = crate::radio::parse_central)]
    central: Central,
    /// Connection interval in milliseconds, fractions allowed (0: PDUs leave at once).
    /// Default: the central's.
    #[arg(long, value_parser = crate::radio::parse_interval_ms)]
    connection_interval_ms: Option<f64>,
    /// Most PDUs each side sends per connection event (0: no cap). Default: the central's.
    #[arg(long)]
    pdus_per_event: Option<u32>,
    /// Probability (0..1) that a PDU is dropped.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Probability (0..1) that a PDU is duplicated.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Probability (0..1) that a PDU is reordered.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// Seed of the fault RNG (the same seed replays the same faults).
    #[arg(long, default_value_t = 0)]
    fault_seed: u64,
    /// Directory for the simulator's state (bonds, pairs, answered ids); memory if absent.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Octane's Ed25519 public key (64 hex digits), as `sunstorm sim octane` prints it.
    /// Without it the appliance bonds and answers, but refuses every pair session.
    #[arg(long, env = "SUNSTORM_OCTANE_KEY")]
    octane_key: Option<String>,
    /// The appliance's name.
    #[arg(long, default_value = "Sigil simulator")]
    name: String,
    /// Serve the control API (HTTP/JSON) on this loopback address, e.g. `127.0.0.1:0` for a
    /// free port; the address is printed as `control API: http://…`.
    #[arg(long, value_name = "ADDR")]
    control: Option<std::net::SocketAddr>,
}

fn parse_args(a: &SimApplianceArgs) -> Result<(ApplianceSimConfig, SimLinkConfig), CliError> {
    let seed = match &a.seed {
        Some(h) => hex::decode(h)
            .ok()
            .filter(|s| (16..=64).contains(&s.len()))
            .ok_or_else(|| CliError::rejected("bad_seed", "--seed must be 32 to 128 hex digits", false))?,
        None => vec![0x42; 32],
    };
    if let Some(p) = &a.pin {
        if !sunstorm_core::ble::channel::is_valid_pin(p) {
            return Err(CliError::rejected("bad_pin", "--pin must be six digits", false));
        }
    }
    let octane_key = match &a.octane_key {
        Some(h) => Key32::from_hex(h)
            .ok_or_else(|| CliError::rejected("bad_octane_key", "--octane-key must be 64 hex digits", false))?,
        None => Key32::default(),
    };
    for (name, p) in [("--loss", a.loss), ("--duplicate", a.duplicate), ("--reorder", a.reorder)] {
        if !(0.0..=1.0).contains(&p) {
            return Err(CliError::rejected("bad_probability", format!("{name} must be within 0..1"), false));
        }
    }
    let radio_flags = a.connection_interval_ms.is_some() || a.pdus_per_event.is_some();
    if a.ble.is_some() && (a.latency_ms > 0 || a.loss > 0.0 || a.duplicate > 0.0 || a.reorder > 0.0 || radio_flags) {
        return Err(CliError::rejected(
            "bad_flag",
            "link faults are simulated in socket mode only (--ble uses the real radio)",
            false,
        ));
    }
    if !(23..=517).contains(&a.mtu) {
        return Err(CliError::rejected("bad_mtu", "--mtu must be within 23..=517", false));
    }
    let user = match (a.user, a.delay_ms) {
        (UserArg::Approve, Some(ms)) => UserScript::Delay(ms),
        (UserArg::Approve, None) => UserScript::Approve,
        (UserArg::Reject, _) => UserScript::Reject,
        (UserArg::Prompt, _) => UserScript::Prompt,
        (UserArg::Api, _) => UserScript::Api,
    };
    if let Some(addr) = a.control {
        if !addr.ip().is_loopback() {
            return Err(CliError::rejected(
                "bad_flag",
                "--control must be a loopback address (127.0.0.1:PORT or [::1]:PORT)",
                false,
            ));
        }
    }

    if a.bonding_window == 0 {
        return Err(CliError::rejected("bad_flag", "--bonding-window must be at least 1 s", false));
    }
    let bonding = BondingConfig {
        open_at_start: !a.bonding_closed,
        window: Duration::from_secs(a.bonding_window),
        policy: BondPolicy { lockout_base_secs: a.lockout_secs, ..BondPolicy::default() },
    };
    let cfg = ApplianceSimConfig {
        seed,
        pin: a.pin.clone(),
        bonding,
        user,
        octane_key,
        state_dir: a.state.clone(),
        name: a.name.clone(),
        ..ApplianceSimConfig::default()
    };
    let link = SimLinkConfig {
        latency: Duration::from_millis(a.latency_ms),
        drop: a.loss,
        duplicate: a.duplicate,
        reorder: a.reorder,
        seed: a.fault_seed,
        ..crate::radio::link_config(a.central, a.mtu, a.connection_interval_ms, a.pdus_per_event)
    };
    Ok((cfg, link))
}

/// Runs the simulator until Ctrl-C, printing its PIN (and every new PIN) on stdout.
pub fn run(a: SimApplianceArgs) -> Result<(), CliError> {
    let (cfg, link) = parse_args(&a)?;
    let radio = (link.connection_interval.as_secs_f64() * 1000.0, link.pdus_per_event);
    if let Some(socket) = a.socket.as_ref().filter(|s| s.exists()) {
        // A socket file nobody listens on is left over from a killed simulator: reuse it.
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Err(CliError::failed(
                "socket_in_use",
                format!("another simulator listens on {}", socket.display()),
                false,
            ));
        }
        let _ = std::fs::remove_file(socket);
    }
    if a.octane_key.is_none() {
        eprintln!(
            "warning: no --octane-key: this appliance will bond and answer, but refuse every pair \
             session. Pass the key `sunstorm sim octane` prints (\"octane public key (pin it)\")."
        );
    }
    let sim = ApplianceSim::new(cfg).map_err(|e| CliError::rejected("bad_config", e.to_string(), false))?;
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::failed("runtime", e.to_string(), false))?;
    rt.block_on(async move {
        // Before anything is printed: whoever reads our output may signal at once.
        bonding_signals(&sim, Duration::from_secs(a.bonding_window))?;
        let _control = match a.control {
            Some(addr) => {
                let server = sunstorm_sim::appliance::control::serve(sim.clone(), link.clone(), addr)
                    .await
                    .map_err(|e| CliError::failed("control_api", e.to_string(), false))?;
                println!("control API: {}", server.url());
                Some(server)
            }
            None => None,
        };
        let mut pins = sim.pin_watch();
        println!("appliance identity: {}", sim.identity());
        for w in sim.wallets() {
            println!("wallet: {w}");
        }
        match (&a.ble, &a.socket) {
            (Some(adapter), _) => {
                println!("advertising over BLE on {}", adapter.as_deref().unwrap_or("the default adapter"))
            }
            (None, Some(socket)) => {
                println!("listening on {}", socket.display());
                println!(
                    "radio: {} ms connection interval, {} (--central {})",
                    radio.0,
                    crate::radio::cap_words(radio.1),
                    a.central.name()
                );
            }
            (None, None) => {}
        }
        println!("PIN: {}", sim.pin());
        print_bonding_mode(&sim);
        let _ = std::io::stdout().flush();
        tokio::spawn(async move {
            while pins.changed().await.is_ok() {
                let pin = pins.borrow_and_update().clone();
                println!("PIN: {pin}");
                let _ = std::io::stdout().flush();
            }
        });
        if let Some(adapter) = a.ble.clone() {
            return serve_ble(sim, adapter, a.name.clone(), a.mtu).await;
        }
        let Some(socket) = a.socket.clone() else {
            return Err(CliError::rejected("missing_flag", "--socket or --ble is required", false));
        };
        tokio::select! {
            r = run_socket_with(&socket, sim, link) => {
                r.map_err(|e| CliError::failed("appliance_sim", e.to_string(), false))
            }
            _ = tokio::signal::ctrl_c() => {
                let _ = std::fs::remove_file(&socket);
                Ok(())
            }
        }
    })
}

/// Prints what bonding mode is now (never fails: nobody may be reading any more).
fn print_bonding_mode(sim: &ApplianceSim) {
    let pid = std::process::id();
    let line = match sim.bonding_window_remaining() {
        Some(left) => format!(
            "bonding mode: open for {} s (SIGUSR1 to pid {pid} opens it again, SIGUSR2 closes it)",
            left.as_secs()
        ),
        None => format!("bonding mode: closed (SIGUSR1 to pid {pid} opens it)"),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// SIGUSR1 opens bonding mode for `window`, SIGUSR2 closes it (the simulator's bonding
/// button; the process has no other control channel).
fn bonding_signals(sim: &ApplianceSim, window: Duration) -> Result<(), CliError> {
    use tokio::signal::unix::{signal, SignalKind};
    let sig = |kind| signal(kind).map_err(|e| CliError::failed("signal", e.to_string(), false));
    let (mut open, mut close) = (sig(SignalKind::user_defined1())?, sig(SignalKind::user_defined2())?);
    let sim = sim.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(()) = open.recv() => sim.open_bonding_window(window),
                Some(()) = close.recv() => sim.close_bonding_window(),
                else => break,
            }
            print_bonding_mode(&sim);
        }
    });
    Ok(())
}

/// Serves over BLE until Ctrl-C.
#[cfg(target_os = "linux")]
async fn serve_ble(sim: ApplianceSim, adapter: Option<String>, name: String, mtu: u16) -> Result<(), CliError> {
    let peripheral = crate::ble::serve_appliance(sim, adapter, name.clone(), mtu).await?;
    println!("BLE address: {} ({}), name: {name}", peripheral.address(), peripheral.adapter_name());
    let _ = std::io::stdout().flush();
    let _ = tokio::signal::ctrl_c().await;
    peripheral.stop().await;
    Ok(())
}

/// BLE peripheral mode needs BlueZ.
#[cfg(not(target_os = "linux"))]
async fn serve_ble(_: ApplianceSim, _: Option<String>, _: String, _: u16) -> Result<(), CliError> {
    Err(CliError::failed("bluetooth_unavailable", "--ble (peripheral mode) needs Linux with BlueZ", false))
}
