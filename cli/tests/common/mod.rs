//! Shared fixtures for the CLI's cross-process tests: the `sunstorm` binary as child
//! processes (killed on drop), their stdout as lines, one-shot commands and their JSON.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `sunstorm` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sunstorm");

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `sunstorm <args>` with stdout piped (stderr discarded) and returns it with a
/// channel of its stdout lines, read on a background thread.
pub fn spawn_lines<I, A>(args: I) -> (Proc, mpsc::Receiver<String>)
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    spawn_reading(args, false)
}

/// [`spawn_lines`] reading stderr instead (what the phone tells its user while it waits;
/// stdout discarded).
pub fn spawn_stderr_lines<I, A>(args: I) -> (Proc, mpsc::Receiver<String>)
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    spawn_reading(args, true)
}

#[allow(clippy::zombie_processes)] // wrapped in `Proc`, which kills and waits on drop
fn spawn_reading<I, A>(args: I, stderr: bool) -> (Proc, mpsc::Receiver<String>)
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let (out_cfg, err_cfg) = if stderr { (Stdio::null(), Stdio::piped()) } else { (Stdio::piped(), Stdio::null()) };
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("SUNSTORM_LOG")
        .stdin(Stdio::null())
        .stdout(out_cfg)
        .stderr(err_cfg)
        .spawn()
        .unwrap();
    let out: Box<dyn std::io::Read + Send> =
        if stderr { Box::new(child.stderr.take().unwrap()) } else { Box::new(child.stdout.take().unwrap()) };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Proc(child), rx)
}

/// Starts a long-running command and returns it with its stdout lines up to and including
/// the first one matching `want`.
pub fn start(args: &[&str], want: impl Fn(&str) -> bool) -> (Proc, Vec<String>) {
    let (proc, rx) = spawn_lines(args);
    let mut lines = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("process output");
        let done = want(&line);
        lines.push(line);
        if done {
            return (proc, lines);
        }
    }
}

/// Runs `sunstorm <args>` to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap()
}

/// [`run`] with owned arguments.
pub fn run_owned(args: &[String]) -> Output {
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Asserts success and returns the `ok` field of the last JSON line on stdout.
pub fn ok_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().rev().find(|l| l.starts_with('{')).unwrap();
    serde_json::from_str::<serde_json::Value>(last).unwrap()["ok"].clone()
}

/// Waits (up to 30 s) for a line matching `want` on `rx` and returns every line read so far;
/// fails naming `what` and the lines seen when the process ends or stays silent.
pub fn wait_line(rx: &mpsc::Receiver<String>, want: impl Fn(&str) -> bool, what: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let done = want(&line);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no {what} within 30 s; saw: {seen:#?}"),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the process ended before {what}; saw: {seen:#?}"),
        }
    }
}

/// Runs `sunstorm <args> --json`: (exit code, the last JSON document it printed).
pub fn run_json<I, A>(args: I) -> (i32, serde_json::Value)
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let out = Command::new(BIN).args(args).arg("--json").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
    let v = serde_json::from_str(last)
        .unwrap_or_else(|_| panic!("json: {stdout} / {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

/// Runs the phone's `sunstorm <args> --home <home> --json`.
pub fn phone_json(home: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.extend([std::ffi::OsStr::new("--home"), home.as_os_str()]);
    run_json(all)
}

/// Runs `sunstorm appliance <args> --socket <socket> --home <home> --json` (the phone's
/// commands about its appliance).
pub fn phone_appliance_json(home: &Path, socket: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all: Vec<&std::ffi::OsStr> = vec![std::ffi::OsStr::new("appliance")];
    all.extend(args.iter().map(std::ffi::OsStr::new));
    all.extend([std::ffi::OsStr::new("--socket"), socket.as_os_str()]);
    all.extend([std::ffi::OsStr::new("--home"), home.as_os_str()]);
    run_json(all)
}

/// `sunstorm sim appliance` on `socket`, pinned to `octane`, PIN 135790, with `extra`
/// arguments; waits for its socket.
pub fn start_appliance(octane: &Octane, socket: &Path, extra: &[&str]) -> Proc {
    let _ = std::fs::remove_file(socket);
    let mut args = vec!["sim", "appliance", "--socket", socket.to_str().unwrap(), "--pin", "135790"];
    args.extend_from_slice(&["--octane-key", &octane.octane_key]);
    args.extend_from_slice(extra);
    let (proc, _) = start(&args, |l| l.starts_with("PIN: "));
    wait_for(socket);
    proc
}

/// Waits (up to 3 s) for `path` to exist.
pub fn wait_for(path: &Path) {
    for _ in 0..300 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

/// `sunstorm sim octane` on an ephemeral loopback port, with what its JSON banner says.
pub struct Octane {
    /// The process (killed on drop).
    pub proc: Proc,
    /// Base URL.
    pub url: String,
    /// Octane's public key (hex).
    pub octane_key: String,
    /// The demo SP's bearer API key.
    pub api_key: String,
    /// The demo SP's signing-key seed (hex).
    pub sp_seed: String,
    /// The demo SP's public key (hex).
    pub sp_public_key: String,
    /// The further demo services (`--extra-sps N`).
    pub extra_sps: Vec<Sp>,
}

/// A demo service registered with the octane simulator (simulator only: its keys are
/// printed).
#[derive(Clone)]
pub struct Sp {
    /// Its bearer API key.
    pub api_key: String,
    /// Its signing-key seed (hex).
    pub sp_seed: String,
    /// Its public key (hex).
    pub sp_public_key: String,
}

fn sp_of(v: &serde_json::Value) -> Sp {
    let s = |k: &str| v[k].as_str().unwrap().to_string();
    Sp { api_key: s("api_key"), sp_seed: s("sp_key_seed"), sp_public_key: s("sp_public_key") }
}

/// Starts `sunstorm sim octane --listen 127.0.0.1:0 --json <extra>` and reads its banner.
pub fn start_octane(extra: &[&str]) -> Octane {
    let mut args = vec!["sim", "octane", "--listen", "127.0.0.1:0", "--json"];
    args.extend_from_slice(extra);
    let (proc, lines) = start(&args, |l| l.starts_with('{'));
    let info: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let ok = &info["ok"];
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
    let demo = sp_of(&ok["demo_sp"]);
    Octane {
        url: s(&ok["url"]),
        octane_key: s(&ok["octane_public_key"]),
        api_key: demo.api_key,
        sp_seed: demo.sp_seed,
        sp_public_key: demo.sp_public_key,
        extra_sps: ok["extra_sps"].as_array().map(|a| a.iter().map(sp_of).collect()).unwrap_or_default(),
        proc,
    }
}

impl Octane {
    /// The demo service.
    pub fn demo(&self) -> Sp {
        Sp { api_key: self.api_key.clone(), sp_seed: self.sp_seed.clone(), sp_public_key: self.sp_public_key.clone() }
    }

    /// `sunstorm sp create-session` for `eip155:1`; returns its `ok` object.
    pub fn create_session(&self) -> serde_json::Value {
        self.create_session_as(&self.demo())
    }

    /// [`Self::create_session`] as service `sp`.
    pub fn create_session_as(&self, sp: &Sp) -> serde_json::Value {
        ok_json(&run(&[
            "sp",
            "create-session",
            "--octane",
            &self.url,
            "--api-key",
            &sp.api_key,
            "--chains",
            "eip155:1",
            "--json",
        ]))
    }

    /// `sunstorm sp await` for `session` (its code and the demo SP's key checked against the
    /// appliance's attestation); returns its `ok` object.
    pub fn await_pair(&self, session: &serde_json::Value) -> serde_json::Value {
        // `--session=…`: a session id may begin with `-`.
        let sid = format!("--session={}", session["session_id"].as_str().unwrap());
        ok_json(&run(&[
            "sp",
            "await",
            "--octane",
            &self.url,
            "--api-key",
            &self.api_key,
            &sid,
            "--code",
            session["validation_code"].as_str().unwrap(),
            "--sp-public-key",
            &self.sp_public_key,
            "--timeout",
            "20",
            "--json",
        ]))
    }

    /// The SP asks, in its own process (killed on drop; [`Self::signed_bundle`] waits for
    /// its bundle), for an EIP-1559 transaction signature from `account` of `pair_id`.
    pub fn spawn_sp_sign_evm_tx(&self, pair_id: &str, account: &str) -> Proc {
        self.spawn_sp_sign_evm_tx_as(&self.demo(), pair_id, account)
    }

    /// [`Self::spawn_sp_sign_evm_tx`] as service `sp`.
    #[allow(clippy::zombie_processes)] // wrapped in `Proc`, which kills and waits on drop
    pub fn spawn_sp_sign_evm_tx_as(&self, sp: &Sp, pair_id: &str, account: &str) -> Proc {
        let tx = "02ef0107843b9aca008506fc23ac0082520894111111111111111111111111111111111111111187038d7ea4c6800080c0";
        let child = Command::new(BIN)
            .args([
                "sp",
                "sign",
                "--octane",
                &self.url,
                "--api-key",
                &sp.api_key,
                "--sp-key",
                &sp.sp_seed,
                "--pair",
                pair_id,
                "--account",
                account,
                "--evm-tx",
                tx,
                "--octane-key",
                &self.octane_key,
                "--timeout",
                "30",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Proc(child)
    }

    /// Waits for the SP's signed bundle for `account` (`sp_sign` from
    /// [`Self::spawn_sp_sign_evm_tx`]), checks it and returns its `ok` object.
    pub fn signed_bundle(mut sp_sign: Proc, account: &str) -> serde_json::Value {
        use std::io::Read;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        // A few short lines at most on stderr (JSON mode): reading it second cannot block.
        sp_sign.0.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
        sp_sign.0.stderr.take().unwrap().read_to_end(&mut stderr).unwrap();
        let status = sp_sign.0.wait().unwrap();
        let bundle = ok_json(&Output { status, stdout, stderr });
        assert_eq!(bundle["status"], "signed");
        assert_eq!(bundle["account"], account);
        assert_eq!(bundle["appliance_sig"].as_str().unwrap().len(), 130);
        bundle
    }

    /// The SP asks (in its own process, waiting for the bundle) for an EIP-1559 transaction
    /// signature from `account` of `pair_id`; `phone` builds the phone's command line, whose
    /// `sign watch` approves it. Checks the watcher's outcome and the SP's signed bundle.
    pub fn sign_evm_tx_approved_by_watcher(
        &self,
        pair_id: &str,
        account: &str,
        phone: impl Fn(&[&str]) -> Vec<String>,
    ) {
        self.sign_evm_tx_approved_by_watcher_as(&self.demo(), pair_id, account, phone);
    }

    /// [`Self::sign_evm_tx_approved_by_watcher`] as service `sp`.
    pub fn sign_evm_tx_approved_by_watcher_as(
        &self,
        sp: &Sp,
        pair_id: &str,
        account: &str,
        phone: impl Fn(&[&str]) -> Vec<String>,
    ) {
        let sp_sign = self.spawn_sp_sign_evm_tx_as(sp, pair_id, account);
        let watch = run_owned(&phone(&["sign", "watch", "--approve", "all", "--once", "--wait", "20", "--json"]));
        assert!(watch.status.success(), "{}", String::from_utf8_lossy(&watch.stderr));
        assert!(String::from_utf8_lossy(&watch.stdout).contains("\"outcome\":\"signed\""));
        Self::signed_bundle(sp_sign, account);
    }
}

/// The phone (`phone` builds its command line) pairs through the SP's `session` with PIN
/// 135790 and all wallets; checks it is done with an `eip155:1` binding and returns
/// `(pair_id, first binding)`.
pub fn pair_all_wallets(phone: impl Fn(&[&str]) -> Vec<String>, session: &serde_json::Value) -> (String, String) {
    let link = session["link"].as_str().unwrap();
    let code = session["validation_code"].as_str().unwrap();
    let paired =
        ok_json(&run_owned(&phone(&["pair", link, "--pin", "135790", "--code", code, "--wallets", "all", "--json"])));
    let pair_id = paired["pair_id"].as_str().unwrap().to_string();
    let account = paired["bindings"][0].as_str().unwrap().to_string();
    assert!(account.starts_with("eip155:1:0x"));
    assert_eq!(paired["outcome"]["kind"], "done");
    (pair_id, account)
}
