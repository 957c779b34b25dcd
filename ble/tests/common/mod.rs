//! A fresh user-space BlueZ (bluezoo, two adapters, on a private D-Bus) per scenario,
//! through `scripts/bluez-mock.sh`. bluezoo does not clean up GATT objects on disconnect, so
//! every test takes its own instance; tests run one at a time (the bus is process-wide).
//!
//! When the environment cannot be built: with `CI=true` the test fails loudly; otherwise it
//! prints why and skips.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

/// Central adapter (btleplug) in the mock.
pub const CENTRAL_ADAPTER: &str = "hci0";
/// Peripheral adapter (bluer) in the mock.
pub const PERIPHERAL_ADAPTER: &str = "hci1";
/// The peripheral adapter's address.
pub const PERIPHERAL_ADDRESS: &str = "00:00:00:22:22:22";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The process's private bus: libdbus reads the system bus address once per process, so
/// one bus serves every scenario of a test binary and bluezoo is restarted per scenario.
/// A watchdog started by the script stops it when this process exits.
static BUS: std::sync::OnceLock<Result<(PathBuf, String), String>> = std::sync::OnceLock::new();

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/bluez-mock.sh")
}

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

fn run(args: &[&str]) -> Result<std::process::Output, String> {
    Command::new("bash").arg(script()).args(args).output().map_err(|e| format!("cannot run bluez-mock.sh: {e}"))
}

fn check(out: Result<std::process::Output, String>, what: &str) -> Result<String, (Option<i32>, String)> {
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).to_string()),
        Ok(o) => Err((
            o.status.code(),
            format!("bluez-mock.sh {what} exited {:?}: {}", o.status.code(), String::from_utf8_lossy(&o.stderr).trim()),
        )),
        Err(e) => Err((None, e)),
    }
}

fn start_bus() -> Result<(PathBuf, String), String> {
    let dir = std::env::temp_dir().join(format!("sunstorm-ble-test-{}", std::process::id()));
    let dir_s = dir.to_str().ok_or("non-UTF-8 temp dir")?.to_owned();
    let pid = std::process::id().to_string();
    if in_ci() {
        // CI installs whatever is missing (idempotent, quick when all is there).
        check(run(&["install"]), "install").map_err(|(_, e)| e)?;
    }
    let out = check(run(&["bus", &dir_s, &pid]), "bus");
    let stdout = out.map_err(|(_, e)| e)?;
    let address = stdout
        .lines()
        .find_map(|l| l.strip_prefix("DBUS_SYSTEM_BUS_ADDRESS="))
        .ok_or("bluez-mock.sh printed no bus address")?
        .to_owned();
    Ok((dir, address))
}

/// One running bluezoo (a fresh BlueZ); stopped on drop.
pub struct BluezMock {
    dir: PathBuf,
    pub address: String,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl BluezMock {
    /// Starts a fresh mock, or returns `None` (after printing why) when it cannot be built
    /// outside CI. Panics in CI.
    pub async fn start(test: &str) -> Option<Self> {
        let serial = SERIAL.lock().await;
        let started = BUS.get_or_init(start_bus).clone().and_then(|(dir, address)| {
            let dir_s = dir.to_str().unwrap_or_default().to_owned();
            check(run(&["zoo", &dir_s]), "zoo").map_err(|(_, e)| e)?;
            Ok((dir, address))
        });
        match started {
            Ok((dir, address)) => {
                // Both btleplug and bluer open the system bus from this variable.
                std::env::set_var("DBUS_SYSTEM_BUS_ADDRESS", &address);
                Some(Self { dir, address, _serial: serial })
            }
            Err(reason) => {
                assert!(!in_ci(), "CI=true and the BlueZ mock for {test} cannot be built: {reason}");
                // Straight to stderr, past the test harness's capture, so the skip is seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {test}: the BlueZ mock is unavailable ({reason}); run scripts/bluez-mock.sh install"
                );
                None
            }
        }
    }

    /// bluezoo's log so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bluezoo.log")).unwrap_or_default()
    }
}

impl Drop for BluezMock {
    fn drop(&mut self) {
        let _ = run(&["stop-zoo", self.dir.to_str().unwrap_or_default()]);
    }
}

/// Sends `tracing` output to the test's captured output (`RUST_LOG` filters it).
pub fn logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
}
