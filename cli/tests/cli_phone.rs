//! Three processes, as on a developer's laptop: `sunstorm sim octane`, `sunstorm sim
//! appliance`, and the phone (`sunstorm pair`, `sunstorm sign watch`, `sunstorm pairs`,
//! `sunstorm revoke`), with `sunstorm sp …` as the service provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_sunstorm");

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a long-running command and returns it with the first stdout line matching `want`.
#[allow(clippy::zombie_processes)] // wrapped in `Proc`, which kills and waits on drop
fn start(args: &[&str], want: impl Fn(&str) -> bool) -> (Proc, Vec<String>) {
    let mut child = Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("process output");
        let done = want(&line);
        lines.push(line);
        if done {
            return (Proc(child), lines);
        }
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap()
}

fn ok_json(out: &Output) -> serde_json::Value {
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

fn wait_for(path: &Path) {
    for _ in 0..300 {
        if path.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never appeared", path.display());
}

#[test]
fn pair_sign_list_and_revoke_across_three_processes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let socket = dir.path().join("appliance.sock");
    let home_s = home.to_str().unwrap();
    let socket_s = socket.to_str().unwrap();

    // Octane (ephemeral port) and the appliance (Unix socket), each its own process.
    let (_octane, lines) = start(&["sim", "octane", "--listen", "127.0.0.1:0", "--json"], |l| l.starts_with('{'));
    let info: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let url = info["ok"]["url"].as_str().unwrap().to_string();
    let okey = info["ok"]["octane_public_key"].as_str().unwrap().to_string();
    let api_key = info["ok"]["demo_sp"]["api_key"].as_str().unwrap().to_string();
    let sp_seed = info["ok"]["demo_sp"]["sp_key_seed"].as_str().unwrap().to_string();
    let (_appliance, _) = start(
        &["sim", "appliance", "--socket", socket_s, "--pin", "135790", "--octane-key", &okey],
        |l| l.starts_with("PIN: "),
    );
    wait_for(&socket);

    // The SP opens a session; the phone pairs (bonding first with the PIN).
    let s = ok_json(&run(&[
        "sp", "create-session", "--octane", &url, "--api-key", &api_key, "--chains", "eip155:1", "--json",
    ]));
    let link = s["link"].as_str().unwrap();
    let code = s["validation_code"].as_str().unwrap();
    let phone = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(["--octane", &url, "--octane-key", &okey, "--socket", socket_s, "--home", home_s].map(String::from));
        v
    };
    let args = phone(&["pair", link, "--pin", "135790", "--code", code, "--wallets", "all", "--json"]);
    let paired = ok_json(&run(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let pair_id = paired["pair_id"].as_str().unwrap().to_string();
    let account = paired["bindings"][0].as_str().unwrap().to_string();
    assert!(account.starts_with("eip155:1:0x"));
    assert_eq!(paired["outcome"]["kind"], "done");

    // A wrong code is an input rejection: exit 2 with a stable code.
    let s2 = ok_json(&run(&[
        "sp", "create-session", "--octane", &url, "--api-key", &api_key, "--chains", "eip155:1", "--json",
    ]));
    let wrong = if s2["validation_code"] == "000000" { "111111" } else { "000000" };
    let args = phone(&["pair", s2["link"].as_str().unwrap(), "--code", wrong, "--json"]);
    let out = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("code_rejected"));

    // The SP asks for a signature (its own process, waiting for the bundle); the phone's
    // watcher approves it.
    let tx = "02ef0107843b9aca008506fc23ac0082520894111111111111111111111111111111111111111187038d7ea4c6800080c0";
    let sp_sign = Command::new(BIN)
        .args([
            "sp", "sign", "--octane", &url, "--api-key", &api_key, "--sp-key", &sp_seed, "--pair", &pair_id,
            "--account", &account, "--evm-tx", tx, "--octane-key", &okey, "--timeout", "30", "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let args = phone(&["sign", "watch", "--approve", "all", "--once", "--wait", "20", "--json"]);
    let watch = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(watch.status.success(), "{}", String::from_utf8_lossy(&watch.stderr));
    assert!(String::from_utf8_lossy(&watch.stdout).contains("\"outcome\":\"signed\""));
    let bundle = ok_json(&sp_sign.wait_with_output().unwrap());
    assert_eq!(bundle["status"], "signed");
    assert_eq!(bundle["account"], account.as_str());
    assert_eq!(bundle["appliance_sig"].as_str().unwrap().len(), 130);

    // The phone lists its pair, revokes it, and lists it revoked (no octane needed to list).
    let pairs = ok_json(&run(&["pairs", "--home", home_s, "--json"]));
    assert_eq!(pairs["pairs"][0]["pair_id"], pair_id.as_str());
    assert_eq!(pairs["pairs"][0]["status"], "active");
    let args = phone(&["revoke", &pair_id, "--json"]);
    ok_json(&run(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let pairs = ok_json(&run(&["pairs", "--home", home_s, "--json"]));
    assert_eq!(pairs["pairs"][0]["status"], "revoked");

    // Nothing secret in the phone's database.
    let db = std::fs::read(home.join("sunstorm.db")).unwrap();
    for entry in std::fs::read_dir(home.join("secrets")).unwrap() {
        let secret = std::fs::read(entry.unwrap().path()).unwrap();
        if secret.len() >= 16 {
            assert!(!db.windows(secret.len()).any(|w| w == secret.as_slice()));
        }
    }
}
