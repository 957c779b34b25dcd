//! A lost phone, across processes: `sunstorm sim appliance` (with its control API) as a
//! child process, two phones bonded with `sunstorm appliance bond`, and the appliance's own
//! side forgetting one with `sunstorm sim control forget-phone`: the forgotten phone is
//! refused with `phone_forgotten`, the other goes on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

mod common;

use std::path::Path;
use std::process::Command;

use common::{ok_json, run, start, wait_for};

fn phone(home: &Path, socket: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    common::phone_appliance_json(home, socket, args)
}

fn control(url: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["sim", "control"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--control", url, "--json"]);
    run(&all)
}

#[test]
fn the_appliance_forgets_a_lost_phone_which_is_refused_while_the_other_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("appliance.sock");
    let s = socket.to_str().unwrap();
    let (sim, lines) =
        start(&["sim", "appliance", "--socket", s, "--pin", "123456", "--control", "127.0.0.1:0"], |l| {
            l.starts_with("PIN: ")
        });
    let url = lines.iter().find_map(|l| l.strip_prefix("control API: ")).unwrap().to_string();
    wait_for(&socket);

    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    let (code, v) = phone(&home_a, &socket, &["bond", "--pin", "123456", "--name", "phone A"]);
    assert_eq!(code, 0, "{v}");
    // A bond closes bonding mode; the appliance's user opens it again for the second phone.
    let status = Command::new("kill").arg("-USR1").arg(sim.0.id().to_string()).status().unwrap();
    assert!(status.success());
    let mut bonded = false;
    for _ in 0..50 {
        let (code, v) = phone(&home_b, &socket, &["bond", "--pin", "123456", "--name", "phone B"]);
        if code == 0 {
            bonded = true;
            break;
        }
        assert_eq!(v["error"]["code"], "bonding_closed", "{v}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(bonded, "the second phone bonds once bonding mode is open again");

    let phones = ok_json(&control(&url, &["phones"]));
    let listed = phones["phones"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{phones}");
    assert_eq!(listed[1]["name"], "phone B");
    let key_b = listed[1]["app_key"].as_str().unwrap().to_string();

    let forgot = ok_json(&control(&url, &["forget-phone", &key_b]));
    assert_eq!(forgot["app_key"], key_b.as_str());
    assert!(forgot["statement"]["sig"].is_string());

    let (code, v) = phone(&home_b, &socket, &["info"]);
    assert_eq!((code, v["error"]["code"].as_str()), (1, Some("phone_forgotten")), "{v}");
    let (code, v) = phone(&home_a, &socket, &["info"]);
    assert_eq!(code, 0, "{v}");

    let phones = ok_json(&control(&url, &["phones"]));
    assert_eq!(phones["phones"].as_array().unwrap().len(), 1);
    assert_eq!(phones["forgotten"][0]["app_key"], key_b.as_str());
    assert!(phones["forgotten"][0]["forgotten_by"].is_null());

    let again = control(&url, &["forget-phone", &key_b]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stdout).contains("unknown_phone"));
    let bad = control(&url, &["forget-phone", "zz"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("bad_app_key"));
    drop(sim);
}

/// Runs `sunstorm <args> --home <home> --octane … --octane-key … --json`: (exit code, stdout).
fn with_octane(home: &Path, octane: &common::Octane, args: &[&str]) -> (i32, String) {
    let out = Command::new(common::BIN)
        .args(args)
        .args(["--home", home.to_str().unwrap(), "--octane", &octane.url, "--octane-key", &octane.octane_key, "--json"])
        .output()
        .unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_phone_forgotten_on_the_appliance_is_refused_by_octane_once_the_other_phone_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let octane = common::start_octane(&[]);
    let socket = dir.path().join("appliance.sock");
    let s = socket.to_str().unwrap();
    let (sim, lines) = start(
        &[
            "sim",
            "appliance",
            "--socket",
            s,
            "--pin",
            "123456",
            "--control",
            "127.0.0.1:0",
            "--octane-key",
            &octane.octane_key,
        ],
        |l| l.starts_with("PIN: "),
    );
    let url = lines.iter().find_map(|l| l.strip_prefix("control API: ")).unwrap().to_string();
    wait_for(&socket);
    let (home_a, home_b) = (dir.path().join("a"), dir.path().join("b"));
    let (code, v) = phone(&home_a, &socket, &["bond", "--pin", "123456", "--name", "phone A"]);
    assert_eq!(code, 0, "{v}");
    assert!(Command::new("kill").arg("-USR1").arg(sim.0.id().to_string()).status().unwrap().success());
    let mut bonded = false;
    for _ in 0..50 {
        if phone(&home_b, &socket, &["bond", "--pin", "123456", "--name", "phone B"]).0 == 0 {
            bonded = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(bonded, "the second phone bonds once bonding mode is open again");
    let watch_b = || with_octane(&home_b, &octane, &["sign", "watch", "--approve", "all", "--once", "--wait", "0"]);
    let (code, out) = watch_b();
    assert_eq!(code, 0, "octane serves phone B: {out}");

    // The appliance's user forgets phone B on the appliance: octane does not know yet.
    let phones = ok_json(&control(&url, &["phones"]));
    let key_b = phones["phones"][1]["app_key"].as_str().unwrap().to_string();
    ok_json(&control(&url, &["forget-phone", &key_b]));
    assert_eq!(watch_b().0, 0, "octane does not know yet");

    // Phone A's sync carries the appliance's statement to octane.
    let (code, out) = with_octane(&home_a, &octane, &["pairs", "--sync", "--socket", s]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = watch_b();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("\"phone_forgotten\""), "octane refuses phone B: {out}");
    drop(sim);
}
