//! Three processes, as on a developer's laptop: `sunstorm sim octane`, `sunstorm sim
//! appliance`, and the phone (`sunstorm pair`, `sunstorm sign watch`, `sunstorm pairs`,
//! `sunstorm revoke`), with `sunstorm sp …` as the service provider.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use common::{ok_json, pair_all_wallets, run, run_owned, start, start_octane, wait_for};

#[test]
fn pair_sign_list_and_revoke_across_three_processes() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let socket = dir.path().join("appliance.sock");
    let home_s = home.to_str().unwrap();
    let socket_s = socket.to_str().unwrap();

    // Octane (ephemeral port) and the appliance (Unix socket), each its own process.
    let octane = start_octane(&[]);
    let (url, okey) = (&octane.url, &octane.octane_key);
    let (_appliance, _) =
        start(&["sim", "appliance", "--socket", socket_s, "--pin", "135790", "--octane-key", okey], |l| {
            l.starts_with("PIN: ")
        });
    wait_for(&socket);

    // The SP opens a session; the phone pairs (bonding first with the PIN).
    let phone = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(["--octane", url, "--octane-key", okey, "--socket", socket_s, "--home", home_s].map(String::from));
        v
    };
    let (pair_id, account) = pair_all_wallets(phone, &octane.create_session());

    // A wrong code is an input rejection: exit 2 with a stable code.
    let s2 = octane.create_session();
    let wrong = if s2["validation_code"] == "000000" { "111111" } else { "000000" };
    let args = phone(&["pair", s2["link"].as_str().unwrap(), "--code", wrong, "--json"]);
    let out = run_owned(&args);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("code_rejected"));

    // The SP asks for a signature (its own process, waiting for the bundle); the phone's
    // watcher approves it.
    octane.sign_evm_tx_approved_by_watcher(&pair_id, &account, phone);

    // The phone lists its pair, revokes it, and lists it revoked (no octane needed to list).
    let pairs = ok_json(&run(&["pairs", "--home", home_s, "--json"]));
    assert_eq!(pairs["pairs"][0]["pair_id"], pair_id.as_str());
    assert_eq!(pairs["pairs"][0]["status"], "active");
    ok_json(&run_owned(&phone(&["revoke", &pair_id, "--json"])));
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
