//! A killed app: the phone (`sunstorm pair`, `sunstorm sign watch`) is SIGKILLed mid-flow
//! while octane, the appliance and the SP run on as their own processes; the phone is then
//! started again on the same data dir. The store must open, list what it holds, never hold
//! two pairs for one session, and the flow must complete on a retry — with the appliance
//! having approved (or signed) at most once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{ok_json, run, run_owned, spawn_stderr_lines, start, start_octane, wait_for, wait_line, Octane, Proc};

/// What the phone prints (stderr) once the appliance reports its user is deciding.
const WAITING: &str = "confirm on your appliance";

/// Octane, an appliance whose user thinks `delay_ms` before approving (its state in a
/// directory, to count what it approved), and a phone data dir bonded with it.
struct Rig {
    _dir: tempfile::TempDir,
    octane: Octane,
    _appliance: Proc,
    home: PathBuf,
    socket: PathBuf,
    appliance_state: PathBuf,
}

impl Rig {
    fn new(delay_ms: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("phone");
        let socket = dir.path().join("appliance.sock");
        let appliance_state = dir.path().join("appliance-state");
        let octane = start_octane(&[]);
        let delay = delay_ms.to_string();
        let (appliance, _) = start(
            &[
                "sim",
                "appliance",
                "--socket",
                socket.to_str().unwrap(),
                "--pin",
                "135790",
                "--octane-key",
                &octane.octane_key,
                "--delay-ms",
                &delay,
                "--state",
                appliance_state.to_str().unwrap(),
            ],
            |l| l.starts_with("PIN: "),
        );
        wait_for(&socket);
        let rig = Rig { _dir: dir, octane, _appliance: appliance, home, socket, appliance_state };
        // Bonded once, uninterrupted: the kills below are about pairing and signing.
        ok_json(&run(&[
            "appliance",
            "bond",
            "--socket",
            rig.socket.to_str().unwrap(),
            "--pin",
            "135790",
            "--home",
            rig.home.to_str().unwrap(),
            "--json",
        ]));
        rig
    }

    /// The phone's command line: `extra` then octane, the appliance and the data dir.
    fn phone(&self, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        v.extend(
            [
                "--octane",
                &self.octane.url,
                "--octane-key",
                &self.octane.octane_key,
                "--socket",
                self.socket.to_str().unwrap(),
                "--home",
                self.home.to_str().unwrap(),
            ]
            .map(String::from),
        );
        v
    }

    /// `sunstorm pair <link> --code … --wallets all` (human output, so the phone tells on
    /// stderr when it waits for the appliance).
    fn pair_args(&self, session: &serde_json::Value) -> Vec<String> {
        self.phone(&[
            "pair",
            session["link"].as_str().unwrap(),
            "--code",
            session["validation_code"].as_str().unwrap(),
            "--wallets",
            "all",
        ])
    }

    /// `sunstorm pairs --json` (the local store only): must succeed on whatever a kill left.
    fn pairs(&self) -> Vec<serde_json::Value> {
        let v = ok_json(&run(&["pairs", "--home", self.home.to_str().unwrap(), "--json"]));
        v["pairs"].as_array().unwrap().clone()
    }

    /// Pairs the appliance approved (its persisted state), as `(pair_id, session_id)`.
    fn appliance_pairs(&self) -> Vec<(String, String)> {
        let path = self.appliance_state.join("appliance-state.json");
        let Ok(bytes) = std::fs::read(&path) else { return Vec::new() };
        let state: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        state["pairs"]
            .as_object()
            .map(|m| m.iter().map(|(id, p)| (id.clone(), p["session_id"].as_str().unwrap().to_string())).collect())
            .unwrap_or_default()
    }

    fn appliance_state(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.appliance_state.join("appliance-state.json")).unwrap()).unwrap()
    }

    /// After a pair of `session` completed: the phone, octane (the SP's view) and the
    /// appliance agree on exactly one pair for it, `pair_id`, active on the phone.
    fn assert_paired_once(&self, session: &serde_json::Value, pair_id: &str) {
        let sid = session["session_id"].as_str().unwrap();
        let local: Vec<_> = self.pairs().into_iter().filter(|p| p["session_id"] == sid).collect();
        assert_eq!(local.len(), 1, "the phone holds {} pairs for session {sid}: {local:#?}", local.len());
        assert_eq!(local[0]["pair_id"], pair_id);
        assert_eq!(local[0]["status"], "active");
        let sp = self.octane.await_pair(session);
        assert_eq!(sp["status"], "paired");
        assert_eq!(sp["pair_id"], pair_id, "octane's pair for the session is another one");
        let approved: Vec<_> = self.appliance_pairs().into_iter().filter(|(_, s)| s == sid).collect();
        assert_eq!(approved.len(), 1, "the appliance approved session {sid} {} times", approved.len());
        assert_eq!(approved[0].0, pair_id);
    }
}

/// SIGKILLs the process (`Child::kill` is SIGKILL on Unix) and says whether the kill ended
/// it (false: it had already exited on its own, successfully).
fn sigkill(p: &mut Proc) -> bool {
    let _ = p.0.kill();
    let status = p.0.wait().unwrap();
    match status.signal() {
        Some(9) => true,
        Some(other) => panic!("the phone died of signal {other}"),
        None => {
            assert!(status.success(), "the phone failed on its own before the kill: {status:?}");
            false
        }
    }
}

fn paired_id(out: &serde_json::Value) -> String {
    out["pair_id"].as_str().unwrap().to_string()
}

#[test]
fn phone_killed_while_the_appliance_decides_resumes_to_exactly_one_pair() {
    // The appliance's user takes 2.5 s: its keep-alive (every 1 s) makes the phone say
    // "confirm on your appliance" well before the answer.
    let rig = Rig::new(2500);
    let session = rig.octane.create_session();
    let (mut phone, lines) = spawn_stderr_lines(rig.pair_args(&session));
    wait_line(&lines, |l| l.contains(WAITING), "the phone waiting for the appliance");
    assert!(sigkill(&mut phone), "the phone should still have been waiting when killed");

    // Started again: the store opens and holds no pair yet; the SP sees none either.
    assert!(rig.pairs().is_empty(), "no pair may be stored before octane accepted it");

    // `pair --resume` continues the flow: same appliance request id (the appliance answers
    // it once), then octane.
    let resumed = ok_json(&run_owned(&rig.phone(&["pair", "--resume", "--json"])));
    let flows = resumed["flows"].as_array().unwrap();
    assert_eq!(flows.len(), 1, "one unfinished flow: {flows:#?}");
    assert_eq!(flows[0]["state"], "paired", "{flows:#?}");
    let pair_id = paired_id(&flows[0]);
    rig.assert_paired_once(&session, &pair_id);

    // Nothing is left to resume, and the user tapping the link again is told it is paired
    // (same pair, no second one anywhere).
    let again = ok_json(&run_owned(&rig.phone(&["pair", "--resume", "--json"])));
    assert_eq!(again["flows"].as_array().unwrap().len(), 0);
    let mut retry = rig.pair_args(&session);
    retry.push("--json".into());
    let retried = ok_json(&run_owned(&retry));
    assert_eq!(paired_id(&retried), pair_id);
    assert_eq!(retried["already_paired"], true);
    rig.assert_paired_once(&session, &pair_id);
}

#[test]
fn phone_killed_at_varied_points_of_the_pair_flow_always_retries_to_one_pair() {
    let rig = Rig::new(1200);
    // Kill points spread over the whole flow (process start, link, code, wallets, the
    // appliance's decision, octane), shifted a little on each run.
    let jitter = u64::from(std::process::id() % 97);
    let mut killed_mid_flow = 0;
    for (i, base) in [10u64, 35, 80, 600, 1250].into_iter().enumerate() {
        let session = rig.octane.create_session();
        let sid = session["session_id"].as_str().unwrap().to_string();
        let (mut phone, lines) = spawn_stderr_lines(rig.pair_args(&session));
        let at = Duration::from_millis(base + jitter * (i as u64 + 1) % 40);
        let t0 = Instant::now();
        while t0.elapsed() < at && phone.0.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let killed = sigkill(&mut phone);
        killed_mid_flow += usize::from(killed);
        let last = lines.try_iter().last().unwrap_or_else(|| "(nothing yet)".into());

        // The store opens and is consistent: never two pairs for one session.
        let pairs = rig.pairs();
        let mut sessions: Vec<&str> = pairs.iter().map(|p| p["session_id"].as_str().unwrap()).collect();
        sessions.sort_unstable();
        let n = sessions.len();
        sessions.dedup();
        assert_eq!(sessions.len(), n, "iteration {i}: two pairs for one session: {pairs:#?}");
        assert!(pairs.iter().all(|p| p["status"] == "active"), "iteration {i}: {pairs:#?}");

        // The user opens the link again: the flow completes (continued, started over, or
        // already done), with one pair everywhere.
        let mut retry = rig.pair_args(&session);
        retry.push("--json".into());
        let out = ok_json(&run_owned(&retry));
        let pair_id = paired_id(&out);
        eprintln!(
            "kill {i} at {at:?}: {}, last said {last:?}; retry: {}",
            if killed { "killed" } else { "had finished" },
            if out["already_paired"] == true { "already paired" } else { "paired" }
        );
        rig.assert_paired_once(&session, &pair_id);
        assert_eq!(rig.pairs().len(), i + 1, "iteration {i}: one pair per session so far");
        assert!(rig.pairs().iter().any(|p| p["session_id"] == sid.as_str()));
    }
    // Nothing left half-done.
    let resumed = ok_json(&run_owned(&rig.phone(&["pair", "--resume", "--json"])));
    let open = resumed["flows"].as_array().unwrap();
    assert!(open.is_empty(), "unfinished flows after the retries: {open:#?}");
    assert!(killed_mid_flow >= 3, "only {killed_mid_flow} of 5 kills landed inside the flow");
}

#[test]
fn phone_killed_while_the_appliance_signs_delivers_exactly_one_signature() {
    let rig = Rig::new(2500);
    let session = rig.octane.create_session();
    let mut args = rig.pair_args(&session);
    args.push("--json".into());
    let paired = ok_json(&run_owned(&args));
    let pair_id = paired_id(&paired);
    let account = paired["bindings"][0].as_str().unwrap().to_string();

    // The SP asks for a signature; the phone's watcher takes it to the appliance and is
    // killed while the appliance's user decides (after the request reached the phone,
    // before any signature was posted).
    let sp_sign = rig.octane.spawn_sp_sign_evm_tx(&pair_id, &account);
    let (mut watch, lines) =
        spawn_stderr_lines(rig.phone(&["sign", "watch", "--approve", "all", "--once", "--wait", "30"]));
    wait_line(&lines, |l| l.contains(WAITING), "the watcher waiting for the appliance to sign");
    assert!(sigkill(&mut watch), "the watcher should still have been waiting when killed");

    // Started again: octane delivers the request again, the phone asks the appliance under
    // the same id, and the SP gets one bundle.
    let watch = run_owned(&rig.phone(&["sign", "watch", "--approve", "all", "--once", "--wait", "20", "--json"]));
    assert!(watch.status.success(), "{}", String::from_utf8_lossy(&watch.stderr));
    let stdout = String::from_utf8_lossy(&watch.stdout);
    assert_eq!(stdout.matches("\"outcome\":\"signed\"").count(), 1, "{stdout}");
    let bundle = Octane::signed_bundle(sp_sign, &account);
    let request_id = bundle["request_id"].as_str().unwrap();
    assert!(stdout.contains(request_id), "the watcher signed another request: {stdout}");

    // The appliance signed it exactly once, and made no other signature.
    let state = rig.appliance_state();
    assert_eq!(state["signatures"][request_id], 1, "{state:#?}");
    assert_eq!(state["total_signatures"], 1, "{state:#?}");
    assert_paired_still(&rig, &pair_id);
}

fn assert_paired_still(rig: &Rig, pair_id: &str) {
    let pairs = rig.pairs();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0]["pair_id"], pair_id);
    assert_eq!(pairs[0]["status"], "active");
}
