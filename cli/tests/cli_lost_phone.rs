//! The lost-phone procedure across processes: `sunstorm sim octane` (two services) and two
//! `sunstorm sim appliance`s as child processes; phone one (its own home) bonds both
//! appliances, pairs each with a different service and signs on both; phone two (another
//! home) bonds appliance A, lists A's phones and forgets phone one with `sunstorm appliance
//! forget-phone`. Appliance A then refuses phone one, octane refuses phone one's requests
//! about A (`phone_forgotten`), and appliance B goes on signing for phone one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)] // test code

mod common;

use std::path::Path;
use std::process::Command;

use common::{pair_all_wallets, phone_json as phone, run_owned, start_appliance as appliance, start_octane};

fn error_code(r: &(i32, serde_json::Value)) -> (i32, Option<&str>) {
    (r.0, r.1["error"]["code"].as_str())
}

#[test]
fn a_second_phone_forgets_a_lost_one_which_the_appliance_and_octane_then_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let octane = start_octane(&["--extra-sps", "1"]);
    let (sock_a, sock_b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let sim_a = appliance(&octane, &sock_a, &["--name", "Kitchen"]);
    let _sim_b = appliance(&octane, &sock_b, &["--name", "Office", "--seed", &"43".repeat(32)]);
    let (home_one, home_two) = (dir.path().join("one"), dir.path().join("two"));
    let octane_flags = ["--octane", octane.url.as_str(), "--octane-key", octane.octane_key.as_str()];

    // Phone one bonds both appliances (each kept with its own socket as its route).
    let bond = |home: &Path, socket: &Path, name: &str| {
        phone(home, &["appliance", "bond", "--socket", socket.to_str().unwrap(), "--pin", "135790", "--name", name])
    };
    let (code, a) = bond(&home_one, &sock_a, "phone one");
    assert_eq!(code, 0, "{a}");
    let (code, b) = bond(&home_one, &sock_b, "phone one");
    assert_eq!(code, 0, "{b}");
    let (id_a, id_b) = (a["ok"]["appliance_id"].as_str().unwrap(), b["ok"]["appliance_id"].as_str().unwrap());

    // Phone one pairs A with the demo service and B with the other, and signs on both.
    let one = |appliance: Option<&str>| {
        let home = home_one.to_str().unwrap().to_string();
        let flags: Vec<String> = octane_flags.iter().map(|s| s.to_string()).collect();
        let appliance = appliance.map(str::to_string);
        move |extra: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            v.extend(flags.iter().cloned());
            v.extend(["--home".to_string(), home.clone()]);
            if let Some(id) = &appliance {
                v.extend(["--appliance".to_string(), id.clone()]);
            }
            v
        }
    };
    let (service_a, service_b) = (octane.demo(), octane.extra_sps[0].clone());
    let (pair_a, account_a) = pair_all_wallets(one(Some(id_a)), &octane.create_session_as(&service_a));
    let (pair_b, account_b) = pair_all_wallets(one(Some(id_b)), &octane.create_session_as(&service_b));
    assert_ne!(account_a, account_b, "each appliance has its own wallets");
    octane.sign_evm_tx_approved_by_watcher_as(&service_a, &pair_a, &account_a, one(None));
    octane.sign_evm_tx_approved_by_watcher_as(&service_b, &pair_b, &account_b, one(None));

    // Phone two bonds appliance A once its user opens bonding mode again.
    let status = Command::new("kill").arg("-USR1").arg(sim_a.0.id().to_string()).status().unwrap();
    assert!(status.success());
    let mut bonded = false;
    for _ in 0..50 {
        let r = bond(&home_two, &sock_a, "phone two");
        if r.0 == 0 {
            bonded = true;
            break;
        }
        assert_eq!(error_code(&r), (2, Some("bonding_closed")), "{}", r.1);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(bonded, "phone two bonds once bonding mode is open again");

    // Both phones list A's phones, each marking itself.
    let (code, listed) = phone(&home_two, &["appliance", "phones"]);
    assert_eq!(code, 0, "{listed}");
    let phones = listed["ok"]["phones"].as_array().unwrap();
    let names: Vec<(&str, bool)> =
        phones.iter().map(|p| (p["name"].as_str().unwrap(), p["this_phone"].as_bool().unwrap())).collect();
    assert_eq!(names, vec![("phone one", false), ("phone two", true)]);
    let (key_one, key_two) = (phones[0]["app_key"].as_str().unwrap(), phones[1]["app_key"].as_str().unwrap());
    let (code, seen) = phone(&home_one, &["appliance", "phones", "--appliance", id_a]);
    assert_eq!(code, 0, "{seen}");
    assert_eq!(seen["ok"]["phones"][0]["app_key"], key_one);
    assert_eq!(seen["ok"]["phones"][0]["this_phone"], true);
    let r = phone(&home_one, &["appliance", "phones"]);
    assert_eq!(error_code(&r), (1, Some("choose_appliance")), "{}", r.1);

    // Phone two forgets phone one (not itself), telling octane at once.
    let forget = |key: &str| {
        let mut args = vec!["appliance", "forget-phone", key];
        args.extend_from_slice(&octane_flags);
        phone(&home_two, &args)
    };
    let r = forget(key_two);
    assert_eq!(error_code(&r), (2, Some("cannot_forget_self")), "{}", r.1);
    let r = forget("zz");
    assert_eq!(error_code(&r), (2, Some("bad_app_key")), "{}", r.1);
    let (code, forgot) = forget(key_one);
    assert_eq!(code, 0, "{forgot}");
    assert_eq!(forgot["ok"]["app_key"], key_one);
    assert_eq!(forgot["ok"]["octane_told"], true);
    let (_, listed) = phone(&home_two, &["appliance", "phones"]);
    assert_eq!(listed["ok"]["phones"].as_array().unwrap().len(), 1, "{listed}");
    let r = forget(key_one);
    assert_eq!(error_code(&r), (2, Some("unknown_phone")), "{}", r.1);

    // Appliance A refuses phone one from now on.
    let r = phone(&home_one, &["appliance", "info", "--appliance", id_a]);
    assert_eq!(error_code(&r), (1, Some("phone_forgotten")), "{}", r.1);

    // Appliance B never forgot phone one: it signs for its service as before.
    octane.sign_evm_tx_approved_by_watcher_as(&service_b, &pair_b, &account_b, one(None));

    // Octane no longer routes A's requests to phone one: with B forgotten on phone one,
    // its only poll (about A) is refused.
    let (code, v) = phone(&home_one, &["appliance", "forget", "--appliance", id_b]);
    assert_eq!(code, 0, "{v}");
    let watch = one(None)(&["sign", "watch", "--approve", "all", "--once", "--wait", "2", "--json"]);
    let out = run_owned(&watch);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("\"phone_forgotten\""), "octane refuses: {stdout}");
}
