//! Approvals the appliance can verify, across processes: `sunstorm sim octane` and
//! `sunstorm sim appliance` (its state in a directory, restarted with another simulated
//! user) as child processes. The phone bonds with `--approval-key` (its software key is
//! enrolled inside the bonding exchange), pairs (the appliance then asks for its proof on
//! every signature) and signs. A new key the appliance's user declined to enrol makes the
//! appliance refuse the phone's approvals — the SP sees `approval_invalid` — until its
//! user confirms the new key; a policy change needs that confirmation too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

mod common;

use std::io::Read;
use std::path::Path;

use common::{pair_all_wallets, phone_json as phone, run_owned, start_appliance, start_octane, Octane, Proc};

/// `sunstorm sim appliance` on `socket` with its state in `state`, whose user answers `user`.
fn appliance(octane: &Octane, socket: &Path, state: &Path, user: &str) -> Proc {
    start_appliance(octane, socket, &["--state", state.to_str().unwrap(), "--user", user])
}

/// What the SP's `sp sign` process ended with: its `ok` document or its error.
fn sp_outcome(mut sp_sign: Proc) -> serde_json::Value {
    let mut stdout = Vec::new();
    sp_sign.0.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    sp_sign.0.wait().unwrap();
    let text = String::from_utf8_lossy(&stdout);
    serde_json::from_str(text.lines().rev().find(|l| l.starts_with('{')).unwrap()).unwrap()
}

#[test]
fn the_appliance_checks_the_phones_approval_key_across_processes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let octane = start_octane(&[]);
    let (sock, state, home) = (dir.path().join("a.sock"), dir.path().join("state"), dir.path().join("phone"));
    let sim = appliance(&octane, &sock, &state, "approve");
    let octane_flags = ["--octane", octane.url.as_str(), "--octane-key", octane.octane_key.as_str()];
    let cmd = {
        let home = home.to_str().unwrap().to_string();
        let flags: Vec<String> = octane_flags.iter().map(|s| s.to_string()).collect();
        move |extra: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            v.extend(flags.iter().cloned());
            v.extend(["--home".to_string(), home.clone()]);
            v
        }
    };

    // Bonding enrols the key; the pair asks for proofs; a signature with one is made.
    let bond = ["appliance", "bond", "--socket", sock.to_str().unwrap(), "--pin", "135790", "--approval-key"];
    let (code, bonded) = phone(&home, &bond);
    assert_eq!(code, 0, "{bonded}");
    let (pair_id, account) = pair_all_wallets(&cmd, &octane.create_session());
    octane.sign_evm_tx_approved_by_watcher(&pair_id, &account, &cmd);

    // The appliance restarts with a user who declines: a new key is not enrolled...
    drop(sim);
    let sim = appliance(&octane, &sock, &state, "reject");
    let (code, refused) = phone(&home, &["appliance", "enrol-approval-key", "--renew"]);
    assert_eq!((code, refused["error"]["code"].as_str()), (1, Some("user_rejected")), "{refused}");
    // ...so the appliance refuses the phone's approvals with the new key, and the SP reads why.
    let sp_sign = octane.spawn_sp_sign_evm_tx(&pair_id, &account);
    let watch = run_owned(&cmd(&["sign", "watch", "--approve", "all", "--once", "--wait", "20", "--json"]));
    let watched = String::from_utf8_lossy(&watch.stdout);
    assert!(watched.contains("approval_invalid"), "{watched}");
    let outcome = sp_outcome(sp_sign);
    assert_eq!(outcome["error"]["code"], "sign_rejected", "{outcome}");
    assert!(outcome["error"]["message"].as_str().unwrap().contains("approval_invalid"), "{outcome}");
    // A policy change is declined too.
    let (code, declined) = phone(&home, &["appliance", "approval-policy", &pair_id, "never"]);
    assert_eq!((code, declined["error"]["code"].as_str()), (1, Some("user_rejected")), "{declined}");

    // Restarted with a user who confirms: the new key is enrolled and signing works again.
    drop(sim);
    let _sim = appliance(&octane, &sock, &state, "approve");
    let (code, enrolled) = phone(&home, &["appliance", "enrol-approval-key"]);
    assert_eq!(code, 0, "{enrolled}");
    octane.sign_evm_tx_approved_by_watcher(&pair_id, &account, &cmd);
    let (code, set) = phone(&home, &["appliance", "approval-policy", &pair_id, "above:1000000000000000000"]);
    assert_eq!(code, 0, "{set}");
    assert_eq!(
        (set["ok"]["policy"].as_str(), set["ok"]["above"].as_str()),
        (Some("above"), Some("1000000000000000000"))
    );
    let (code, bad) = phone(&home, &["appliance", "approval-policy", &pair_id, "sometimes"]);
    assert_eq!((code, bad["error"]["code"].as_str()), (2, Some("bad_policy")), "{bad}");
}
