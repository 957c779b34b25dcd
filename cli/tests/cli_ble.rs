//! The CLI over Bluetooth LE, on a user-space BlueZ (private D-Bus + bluezoo, see
//! docs/ble-testing.md): `sunstorm sim appliance --ble hci1` advertises, `sunstorm ble scan`
//! finds it, and the phone-side commands reach it with `--ble <NAME>` on hci0 — bond, info,
//! wallets, then pair with the octane simulator and sign an EVM transaction.
#![cfg(target_os = "linux")] // BlueZ (the peripheral side and the mock) is Linux-only
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../../ble/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::BluezMock;

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

const NAME: &str = "Sigil CLI";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_bond_pair_and_sign_over_ble_across_processes() {
    let Some(_mock) = BluezMock::start("cli scan_bond_pair_and_sign_over_ble").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let home_s = home.to_str().unwrap();
    let probe_home = dir.path().join("probe");
    let probe_s = probe_home.to_str().unwrap();

    let (_octane, lines) = start(&["sim", "octane", "--listen", "127.0.0.1:0", "--json"], |l| l.starts_with('{'));
    let info: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    let url = info["ok"]["url"].as_str().unwrap().to_string();
    let okey = info["ok"]["octane_public_key"].as_str().unwrap().to_string();
    let api_key = info["ok"]["demo_sp"]["api_key"].as_str().unwrap().to_string();
    let sp_seed = info["ok"]["demo_sp"]["sp_key_seed"].as_str().unwrap().to_string();

    // The appliance advertises on the second adapter; a small MTU makes every message span PDUs.
    let (_appliance, lines) = start(
        &["sim", "appliance", "--ble", "hci1", "--name", NAME, "--pin", "135790", "--octane-key", &okey, "--mtu", "64"],
        |l| l.starts_with("BLE address: "),
    );
    assert!(lines.iter().any(|l| l == "PIN: 135790"), "{lines:?}");

    // Scan from the first adapter.
    let found = ok_json(&run(&["ble", "scan", "--adapter", "hci0", "--seconds", "2", "--json"]));
    let me = found.as_array().unwrap().iter().find(|f| f["name"] == NAME).unwrap_or_else(|| panic!("{found}"));
    assert_eq!(me["address"], common::PERIPHERAL_ADDRESS);

    // `appliance bond/info/wallets` over BLE (a separate phone home).
    let ble = ["--ble", NAME, "--ble-adapter", "hci0"];
    let mut args = vec!["appliance", "bond", "--pin", "135790", "--home", probe_s, "--json"];
    args.extend(ble);
    let bonded = ok_json(&run(&args));
    assert_eq!(bonded["appliance_name"], NAME);
    let mut args = vec!["appliance", "info", "--home", probe_s, "--json"];
    args.extend(ble);
    assert_eq!(ok_json(&run(&args))["identity"], bonded["appliance_identity"]);
    let mut args = vec!["appliance", "wallets", "--chain", "eip155:1", "--home", probe_s, "--json"];
    args.extend(ble);
    let wallets = ok_json(&run(&args));
    assert!(wallets.to_string().contains("eip155:1:0x"), "{wallets}");

    // The SP opens a session; the phone bonds and pairs over BLE.
    let s = ok_json(&run(&[
        "sp", "create-session", "--octane", &url, "--api-key", &api_key, "--chains", "eip155:1", "--json",
    ]));
    let link = s["link"].as_str().unwrap();
    let code = s["validation_code"].as_str().unwrap();
    let phone = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(["--octane", &url, "--octane-key", &okey, "--home", home_s].map(String::from));
        v.extend(ble.map(String::from));
        v
    };
    let args = phone(&["pair", link, "--pin", "135790", "--code", code, "--wallets", "all", "--json"]);
    let paired = ok_json(&run(&args.iter().map(String::as_str).collect::<Vec<_>>()));
    let pair_id = paired["pair_id"].as_str().unwrap().to_string();
    let account = paired["bindings"][0].as_str().unwrap().to_string();
    assert!(account.starts_with("eip155:1:0x"));
    assert_eq!(paired["outcome"]["kind"], "done");

    // The SP asks for an EIP-1559 transaction signature; the phone's watcher approves it.
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
}
