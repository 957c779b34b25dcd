//! Across a real process boundary: `sunstorm sim appliance` as a child process, and
//! `sunstorm appliance bond/list/info/wallets/forget` as the phone, over the Unix-socket
//! GATT-like link.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{spawn_lines, Proc, BIN};

/// A simulator child process, killed on drop.
struct Sim {
    proc: Proc,
    pins: mpsc::Receiver<String>,
    /// Its `bonding mode: …` lines.
    modes: mpsc::Receiver<String>,
    identity: String,
    socket: PathBuf,
}

impl Sim {
    fn start(socket: &Path, extra: &[&str]) -> Sim {
        let args = ["sim", "appliance", "--socket"].map(OsStr::new);
        let (proc, rx) = spawn_lines(args.into_iter().chain([socket.as_os_str()]).chain(extra.iter().map(OsStr::new)));
        let (pin_tx, pins) = mpsc::channel();
        let (mode_tx, modes) = mpsc::channel();
        let mut identity = String::new();
        loop {
            let line = rx.recv_timeout(Duration::from_secs(20)).expect("simulator output");
            if let Some(id) = line.strip_prefix("appliance identity: ") {
                identity = id.to_string();
            }
            if let Some(pin) = line.strip_prefix("PIN: ") {
                pin_tx.send(pin.to_string()).unwrap();
                break;
            }
        }
        std::thread::spawn(move || {
            while let Ok(line) = rx.recv() {
                if let Some(pin) = line.strip_prefix("PIN: ") {
                    let _ = pin_tx.send(pin.to_string());
                }
                if let Some(mode) = line.strip_prefix("bonding mode: ") {
                    let _ = mode_tx.send(mode.to_string());
                }
            }
        });
        // The socket exists once the simulator listens.
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Sim { proc, pins, modes, identity, socket: socket.to_path_buf() }
    }

    fn pin(&self) -> String {
        self.pins.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    /// The next `bonding mode: …` line.
    fn mode(&self) -> String {
        self.modes.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    /// Sends `signal` (`USR1`: open bonding mode, `USR2`: close it) and waits for the
    /// simulator to say what bonding mode is now.
    fn signal(&self, signal: &str) -> String {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.proc.0.id().to_string()).status().unwrap();
        assert!(status.success());
        self.mode()
    }
}

fn phone(home: &Path, args: &[&str], socket: &Path) -> (i32, serde_json::Value) {
    common::phone_appliance_json(home, socket, args)
}

#[test]
fn bond_info_and_wallets_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let sim = Sim::start(&dir.path().join("appliance.sock"), &["--mtu", "23", "--latency-ms", "2"]);
    let pin = sim.pin();

    let (code, v) = phone(&home, &["bond", "--pin", &pin], &sim.socket);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"]["appliance_identity"], sim.identity.as_str());
    assert_eq!(v["ok"]["appliance_id"], sim.identity.as_str());
    assert_eq!(v["ok"]["route"], format!("unix:{}", sim.socket.display()));
    assert!(!home.join("bond.json").exists(), "the core's database is the one copy of the bond");
    assert!(home.join("secrets/channel.x25519").exists());
    assert!(home.join("secrets/app.ed25519").exists());

    let (code, v) = phone(&home, &["info"], &sim.socket);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"]["identity"], sim.identity.as_str());
    assert_eq!(v["ok"]["protocol_version"], 1);

    let (code, v) = phone(&home, &["wallets"], &sim.socket);
    assert_eq!(code, 0, "{v}");
    let wallets: Vec<String> = serde_json::from_value(v["ok"].clone()).unwrap();
    assert_eq!(wallets.len(), 3);
    assert!(wallets.iter().any(|w| w.starts_with("eip155:1:0x")));
    assert!(wallets.iter().any(|w| w.starts_with("eip155:8453:0x")));
    assert!(wallets.iter().any(|w| w.starts_with("solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp:")));
    let (_, v) = phone(&home, &["wallets", "--chain", "eip155:8453"], &sim.socket);
    assert_eq!(v["ok"].as_array().unwrap().len(), 1);
}

#[test]
fn wrong_pins_lock_out_and_an_impostor_is_refused_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let sim = Sim::start(&dir.path().join("a.sock"), &["--pin", "246810", "--lockout-secs", "5"]);
    assert_eq!(sim.pin(), "246810");
    for left in [2, 1] {
        let (code, v) = phone(&home, &["bond", "--pin", "111111"], &sim.socket);
        assert_eq!(code, 2);
        assert_eq!(v["error"]["code"], "wrong_pin");
        assert!(v["error"]["message"].as_str().unwrap().contains(&format!("{left} attempts left")));
    }
    let (code, v) = phone(&home, &["bond", "--pin", "111111"], &sim.socket);
    assert_eq!((code, v["error"]["code"].as_str()), (2, Some("pin_locked")));
    let new_pin = sim.pin();
    assert_ne!(new_pin, "246810");
    // Bonding waits out the lockout ("try again in N s"; nothing counted), then bonds.
    let (code, v) = phone(&home, &["bond", "--pin", &new_pin], &sim.socket);
    assert_eq!((code, v["error"]["code"].as_str()), (2, Some("bonding_try_later")), "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    let wait: u64 = message.split("try again in ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    assert!((1..=5).contains(&wait), "{message}");
    std::thread::sleep(Duration::from_secs(wait));
    let (code, v) = phone(&home, &["bond", "--pin", &new_pin], &sim.socket);
    assert_eq!(code, 0, "{v}");

    // Another appliance (other seed) on another socket, posing as the bonded one.
    let impostor = Sim::start(&dir.path().join("b.sock"), &["--seed", &"07".repeat(32)]);
    let (code, v) = phone(&home, &["info"], &impostor.socket);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("unknown_appliance")), "{v}");
    let (code, _) = phone(&home, &["info"], &sim.socket);
    assert_eq!(code, 0);
}

#[test]
fn bonding_mode_opens_and_closes_on_signals_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start(&dir.path().join("m.sock"), &["--pin", "246810", "--bonding-closed"]);
    assert!(sim.mode().starts_with("closed"));
    let bond = |home: &str| phone(&dir.path().join(home), &["bond", "--pin", "246810"], &sim.socket);
    let (code, v) = bond("a");
    assert_eq!((code, v["error"]["code"].as_str()), (2, Some("bonding_closed")), "{v}");
    assert!(sim.signal("USR1").starts_with("open for 120 s"));
    assert!(sim.signal("USR2").starts_with("closed"));
    assert_eq!(bond("a").1["error"]["code"], "bonding_closed");
    assert!(sim.signal("USR1").starts_with("open"));
    assert_eq!(bond("a").0, 0);
    // One bond ends bonding mode: a second phone waits for the user to open it again.
    assert_eq!(bond("b").1["error"]["code"], "bonding_closed");
    assert!(sim.signal("USR1").starts_with("open"));
    assert_eq!(bond("b").0, 0);
}

#[test]
fn a_restarted_simulator_process_keeps_its_bonds() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let state = dir.path().join("state");
    let socket = dir.path().join("s.sock");
    let state_arg = state.to_str().unwrap().to_string();
    {
        let sim = Sim::start(&socket, &["--state", &state_arg]);
        let pin = sim.pin();
        assert_eq!(phone(&home, &["bond", "--pin", &pin], &sim.socket).0, 0);
    }
    assert!(state.join("appliance-state.json").exists());
    let sim = Sim::start(&socket, &["--state", &state_arg, "--loss", "0.02", "--fault-seed", "3"]);
    // The bond survived the restart; a lossy link may need the client's retries.
    let (code, v) = phone(&home, &["info"], &sim.socket);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"]["identity"], sim.identity.as_str());
}

#[test]
fn bad_arguments_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["sim", "appliance", "--socket"])
        .arg(dir.path().join("x.sock"))
        .args(["--pin", "12"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let (code, v) = phone(&dir.path().join("p"), &["info"], &dir.path().join("none.sock"));
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("not_bonded")));
}

/// `sunstorm appliance …` without `--socket`/`--ble`: each appliance at the route kept with
/// its bond.
fn phone_at_routes(home: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let out = Command::new(BIN).arg("appliance").args(args).arg("--home").arg(home).arg("--json").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("json: {stdout} / {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), v)
}

#[test]
fn two_appliances_are_listed_chosen_by_id_and_one_is_forgotten_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let kitchen = Sim::start(&dir.path().join("kitchen.sock"), &["--name", "Kitchen"]);
    let office = Sim::start(&dir.path().join("office.sock"), &["--name", "Office", "--seed", &"43".repeat(32)]);
    assert_ne!(kitchen.identity, office.identity);
    assert_eq!(phone(&home, &["bond", "--pin", &kitchen.pin()], &kitchen.socket).0, 0);
    assert_eq!(phone(&home, &["bond", "--pin", &office.pin()], &office.socket).0, 0);

    let (code, v) = phone_at_routes(&home, &["list"]);
    assert_eq!(code, 0, "{v}");
    let mut listed: Vec<(String, String)> = v["ok"]["appliances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["appliance_id"].as_str().unwrap().to_string(), a["appliance_name"].as_str().unwrap().to_string()))
        .collect();
    listed.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(listed, vec![(kitchen.identity.clone(), "Kitchen".into()), (office.identity.clone(), "Office".into())]);

    // Two bonds: a command that needs one asks which; each is reached at its own socket.
    let (code, v) = phone_at_routes(&home, &["info"]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("choose_appliance")), "{v}");
    for sim in [&kitchen, &office] {
        let (code, v) = phone_at_routes(&home, &["info", "--appliance", &sim.identity]);
        assert_eq!(code, 0, "{v}");
        assert_eq!(v["ok"]["identity"], sim.identity.as_str());
    }
    let (code, v) = phone_at_routes(&home, &["info", "--appliance", &"ab".repeat(32)]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("no_such_appliance")), "{v}");
    let (code, v) = phone_at_routes(&home, &["info", "--appliance", "kitchen"]);
    assert_eq!((code, v["error"]["code"].as_str()), (2, Some("bad_appliance_id")), "{v}");

    // Forgetting the office appliance leaves the kitchen one as the only bond.
    let (code, v) = phone_at_routes(&home, &["forget", "--appliance", &office.identity]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"]["forgotten"], office.identity.as_str());
    let (_, v) = phone_at_routes(&home, &["list"]);
    assert_eq!(v["ok"]["appliances"].as_array().unwrap().len(), 1);
    let (code, v) = phone_at_routes(&home, &["info"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"]["identity"], kitchen.identity.as_str());
    let (code, v) = phone_at_routes(&home, &["wallets", "--appliance", &office.identity]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("no_such_appliance")), "{v}");
}

/// A home written by the CLI before the core owned the bonds kept its one bond in
/// `bond.json`: the next command moves it into the core's database and deletes the file.
#[test]
fn an_old_bond_json_moves_into_the_phone_database() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let sim = Sim::start(&dir.path().join("old.sock"), &[]);
    // Bond the way the old CLI did: the record as JSON beside the secrets.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let secrets = sunstorm_core::secrets::FileSecretStore::new(home.join("secrets")).unwrap();
    let connector = sunstorm_sim::link::SocketConnector::new(&sim.socket, 517);
    let record =
        rt.block_on(sunstorm_core::appliance::client::bond(&connector, &sim.pin(), &secrets, "old cli")).unwrap();
    std::fs::write(home.join("bond.json"), serde_json::to_vec_pretty(&record).unwrap()).unwrap();

    let (code, v) = phone(&home, &["info"], &sim.socket);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"]["identity"], sim.identity.as_str());
    assert!(!home.join("bond.json").exists(), "bond.json was moved, not copied");
    let (_, v) = phone_at_routes(&home, &["list"]);
    let listed = v["ok"]["appliances"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{v}");
    assert_eq!(listed[0]["appliance_id"], sim.identity.as_str());
    assert_eq!(listed[0]["route"], format!("unix:{}", sim.socket.display()));
    // The moved bond works on its own route from now on.
    let (code, v) = phone_at_routes(&home, &["wallets", "--chain", "eip155:1"]);
    assert_eq!(code, 0, "{v}");
}

#[test]
fn an_unreadable_bond_json_is_reported_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("bond.json"), b"{not json").unwrap();
    let (code, v) = phone_at_routes(&home, &["list"]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("bad_bond_file")), "{v}");
    assert!(home.join("bond.json").exists());
}
