//! The app and the notification extension on one database at once, as two processes: this
//! test re-runs its own test binary as the extension (`std::env::current_exe`, selected by
//! an environment variable), which handles a push and reads the history through the
//! read-only path in a loop while the app (this process) takes, rejects and records sign
//! requests. Neither side sees an error; the extension sees every write the app made; the
//! file passes `integrity_check` with every row there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;
use crate::bytes::Key32;
use crate::push::payload::seal_for_push;
use crate::secrets::FileSecretStore;
use crate::sign::test_phone::{Phone, ETH};

const TEST: &str = "push::extension::shared_db_tests::the_app_and_the_extension_share_the_database";
/// Set in the child: the shared directory (database, secrets, the sealed push).
const CHILD_DIR: &str = "SUNSTORM_SHARED_DB_CHILD_DIR";
/// Set in the child: octane's public key (hex).
const CHILD_OCTANE: &str = "SUNSTORM_SHARED_DB_CHILD_OCTANE";
/// Requests the app takes and rejects while the extension reads.
const WRITES: usize = 300;
/// Longest the extension may take to see every write.
const DEADLINE: Duration = Duration::from_secs(240);

#[test]
fn the_app_and_the_extension_share_the_database() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        extension_process(std::path::Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sunstorm.db");
    let phone = Phone::on(Arc::new(Store::open(&path).unwrap()), true);
    // The push key in a secret store both processes reach (the keychain access group).
    let secrets = FileSecretStore::new(dir.path().join("secrets")).unwrap();
    let key = PushKeyPair::create(&secrets).unwrap();
    // A request the extension notifies for over and over (pair A); the app's own traffic
    // runs on pair B.
    let r = phone.send(phone.pair_a, ETH / 10);
    std::fs::write(dir.path().join("push"), seal_for_push(&key.public_key(), &r).unwrap().bytes).unwrap();
    // The extension runs on the test phone's clock (the requests are made at its time).
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir.path())
        .env(CHILD_OCTANE, Key32(phone.octane.key.verifying_key().to_bytes()).to_hex())
        .env("SUNSTORM_SHARED_DB_CLOCK", phone.now().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The app writes once the extension runs, so the two overlap.
    let ready = dir.path().join("ready");
    let waiting = Instant::now();
    while !ready.exists() {
        assert!(waiting.elapsed() < DEADLINE, "the extension process never started");
        if let Some(s) = child.try_wait().unwrap() {
            panic!("the extension process ended early: {s}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for i in 0..WRITES {
        let w = phone.send(phone.pair_b, 1_000 + i as u128);
        rt.block_on(phone.ingest(&w));
        rt.block_on(phone.engine.reject(w.request_id)).unwrap();
    }

    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > DEADLINE {
            child.kill().unwrap();
            panic!("the extension process did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(status.success(), "extension failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let reads: usize = stdout
        .lines()
        .find_map(|l| l.split("extension reads: ").nth(1))
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("the extension reported no reads:\n{stdout}"));
    let between: usize = stdout
        .lines()
        .find_map(|l| l.split("reads between: ").nth(1))
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    // It read while the app was writing (saw some of the writes, not all).
    assert!(reads > 1 && between > 0, "the extension read {reads} times, {between} mid-way:\n{stdout}");

    // No lost write, no corruption.
    let history = phone.store.sign_history(Some(phone.pair_b), 0).unwrap();
    assert_eq!(history.len(), WRITES);
    assert!(history.iter().all(|h| h.outcome == SignOutcome::Rejected));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let audit: i64 = conn.query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0)).unwrap();
    assert!(audit >= WRITES as i64);
}

/// The child: the notification extension, reading until it has seen every write.
fn extension_process(dir: &std::path::Path) {
    let octane = Key32::from_hex(&std::env::var(CHILD_OCTANE).unwrap()).unwrap();
    let now: u64 = std::env::var("SUNSTORM_SHARED_DB_CLOCK").unwrap().parse().unwrap();
    let clock: Arc<dyn Clock> = Arc::new(crate::clock::ManualClock::new(now));
    let secrets = FileSecretStore::new(dir.join("secrets")).unwrap();
    let cfg = ExtensionConfig::new(dir.join("sunstorm.db"), octane);
    let sealed = std::fs::read(dir.join("push")).unwrap();
    let started = Instant::now();
    let mut ext = NotificationExtension::open_with_clock(cfg.clone(), &secrets, clock.clone()).unwrap();
    std::fs::write(dir.join("ready"), b"").unwrap();
    let mut reads = 0usize;
    let mut between = 0usize;
    let mut last = 0usize;
    loop {
        // Every tenth round a cold open, as a new extension process would.
        if reads % 10 == 9 {
            ext = NotificationExtension::open_with_clock(cfg.clone(), &secrets, clock.clone()).unwrap();
        }
        match ext.handle_push(&sealed).unwrap() {
            NotificationOutcome::Show(n) => assert_eq!(n.title, "Acme asks you to sign"),
            other => panic!("the push was not shown: {other:?}"),
        }
        let pair_b = Uuid::from_bytes([0xb; 16]);
        let seen = ext.store.sign_history(Some(pair_b), 0).unwrap().len();
        assert!(seen >= last, "a write disappeared: {seen} after {last}");
        last = seen;
        reads += 1;
        between += usize::from(seen > 0 && seen < WRITES);
        if seen == WRITES {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "saw {seen} of {WRITES} writes");
    }
    println!("extension reads: {reads}");
    println!("reads between: {between}");
}
