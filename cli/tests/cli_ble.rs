//! The CLI over Bluetooth LE, on a user-space BlueZ (private D-Bus + bluezoo, see
//! docs/ble-testing.md): `sunstorm sim appliance --ble hci1` advertises, `sunstorm ble scan`
//! finds it, and the phone-side commands reach it with `--ble <NAME>` on hci0 — bond, info,
//! wallets, then pair with the octane simulator and sign an EVM transaction.
#![cfg(target_os = "linux")] // BlueZ (the peripheral side and the mock) is Linux-only
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

#[path = "../../ble/tests/common/mod.rs"]
mod bluez;
mod common;

use bluez::BluezMock;
use common::{ok_json, pair_all_wallets, run, spawn_lines, start_octane, wait_line};

const NAME: &str = "Sigil CLI";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_bond_pair_and_sign_over_ble_across_processes() {
    let Some(_mock) = BluezMock::start("cli scan_bond_pair_and_sign_over_ble").await else { return };
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("phone");
    let home_s = home.to_str().unwrap();
    let probe_home = dir.path().join("probe");
    let probe_s = probe_home.to_str().unwrap();

    let octane = start_octane(&[]);
    let (url, okey) = (&octane.url, &octane.octane_key);

    // The appliance advertises on the second adapter; a small MTU makes every message span PDUs.
    let (appliance, appliance_out) = spawn_lines([
        "sim",
        "appliance",
        "--ble",
        "hci1",
        "--name",
        NAME,
        "--pin",
        "135790",
        "--octane-key",
        okey,
        "--mtu",
        "64",
    ]);
    let lines = wait_line(&appliance_out, |l| l.starts_with("BLE address: "), "the appliance advertising");
    assert!(lines.iter().any(|l| l == "PIN: 135790"), "{lines:?}");

    // Scan from the first adapter.
    let found = ok_json(&run(&["ble", "scan", "--adapter", "hci0", "--seconds", "2", "--json"]));
    let me = found.as_array().unwrap().iter().find(|f| f["name"] == NAME).unwrap_or_else(|| panic!("{found}"));
    assert_eq!(me["address"], bluez::PERIPHERAL_ADDRESS);

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

    // One bond ends bonding mode: the user opens it again (SIGUSR1) for the phone.
    let pid = appliance.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-USR1", &pid]).status().unwrap().success());
    wait_line(&appliance_out, |l| l.starts_with("bonding mode: open"), "bonding mode open again");

    // The SP opens a session; the phone bonds and pairs over BLE.
    let phone = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(["--octane", url, "--octane-key", okey, "--home", home_s].map(String::from));
        v.extend(ble.map(String::from));
        v
    };
    let (pair_id, account) = pair_all_wallets(phone, &octane.create_session());

    // The SP asks for an EIP-1559 transaction signature; the phone's watcher approves it.
    octane.sign_evm_tx_approved_by_watcher(&pair_id, &account, phone);
}
