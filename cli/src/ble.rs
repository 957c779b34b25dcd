//! `sunstorm ble …`: the desktop's Bluetooth LE (scan), the mapping of its failures to CLI
//! errors, and serving an appliance simulator over it. (The phone side's `--ble` route:
//! `crate::phone_home`.)

use std::time::Duration;

use clap::Subcommand;
use sunstorm_ble::CentralConfig;
use sunstorm_core::ble::transport::GattError;

use crate::output::{print_json_ok, CliError};

/// `sunstorm ble` subcommands.
#[derive(Subcommand, Debug)]
pub enum BleCommand {
    /// Lists nearby devices advertising the Sigil service (strongest first).
    Scan {
        /// How long to scan, in seconds.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Bluetooth adapter (BlueZ name, e.g. `hci0`); default: the first one.
        #[arg(long, env = "SUNSTORM_BLE_ADAPTER")]
        adapter: Option<String>,
        /// Print `{"ok": [{"address", "name", "rssi"}, …]}` on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// Maps a Bluetooth failure to a CLI error with a stable code.
pub fn link_error(e: GattError, json: bool) -> CliError {
    let code = match &e {
        GattError::Unavailable(_) => "bluetooth_unavailable",
        GattError::NotFound => "appliance_not_found",
        GattError::Timeout => "appliance_timeout",
        GattError::Disconnected => "appliance_disconnected",
        GattError::PduTooLarge { .. } | GattError::Io(_) => "bluetooth_error",
    };
    CliError::failed(code, e.to_string(), json)
}

/// Runs a `sunstorm ble` subcommand.
pub fn run(cmd: BleCommand) -> Result<(), CliError> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::failed("runtime", e.to_string(), false))?;
    match cmd {
        BleCommand::Scan { seconds, adapter, json } => {
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 600.0) {
                return Err(CliError::rejected("bad_duration", "--seconds must be in (0, 600]", json));
            }
            let cfg = CentralConfig { adapter, ..CentralConfig::default() };
            let found = rt
                .block_on(sunstorm_ble::scan(&cfg, Duration::from_secs_f64(seconds)))
                .map_err(|e| link_error(e, json))?;
            if json {
                let list: Vec<_> = found
                    .iter()
                    .map(|f| serde_json::json!({ "address": f.address, "name": f.name, "rssi": f.rssi }))
                    .collect();
                print_json_ok(serde_json::Value::Array(list));
            } else if found.is_empty() {
                println!("No Sigil appliance found.");
            } else {
                for f in &found {
                    let rssi = f.rssi.map(|r| format!("{r} dBm")).unwrap_or_else(|| "-".into());
                    println!("{}  {:<24}  {}", f.address, f.name.as_deref().unwrap_or("(no name)"), rssi);
                }
            }
            Ok(())
        }
    }
}

/// Advertises `sim` as a BLE peripheral on `adapter` (BlueZ) and serves every central that
/// connects, as `sim.serve` does for a socket connection.
#[cfg(target_os = "linux")]
pub async fn serve_appliance(
    sim: sunstorm_sim::appliance::ApplianceSim,
    adapter: Option<String>,
    name: String,
    max_mtu: u16,
) -> Result<sunstorm_ble::BluezPeripheral, CliError> {
    let cfg = sunstorm_ble::PeripheralConfig {
        adapter,
        name,
        max_mtu: Some(max_mtu),
        ..sunstorm_ble::PeripheralConfig::default()
    };
    sunstorm_ble::serve_ble_appliance(cfg, move |link| {
        let sim = sim.clone();
        async move {
            if let Err(e) = sim.serve(link).await {
                tracing::info!(error = %e, "BLE connection ended");
            }
        }
    })
    .await
    .map_err(|e| link_error(e, false))
}
