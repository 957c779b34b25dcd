//! `sunstorm sim push-gateway`: the push gateway simulator (APNs and FCM HTTP v1 request
//! shapes, recorded deliveries, injected failures) as a process; point
//! `sunstorm sim octane --push-gateway <url>` at it.

use std::net::SocketAddr;

use clap::Args;
use sunstorm_sim::push_gateway::{PushGatewayConfig, PushGatewaySim};

use crate::output::{self, CliError};

/// Arguments of `sunstorm sim push-gateway`.
#[derive(Args, Debug)]
pub struct PushGatewayArgs {
    /// Address to listen on (loopback; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// Print the startup facts as one JSON document.
    #[arg(long)]
    json: bool,
}

/// Starts the gateway, prints its URL, serves until Ctrl-C.
pub fn run(args: PushGatewayArgs) -> Result<(), CliError> {
    let json = args.json;
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::failed("runtime", e.to_string(), json))?;
    rt.block_on(async move {
        let handle = PushGatewaySim::start(PushGatewayConfig { listen: args.listen })
            .await
            .map_err(|e| CliError::failed("push_gateway_start", e.to_string(), json))?;
        if json {
            output::print_json_ok(serde_json::json!({
                "url": handle.url,
                "apns": format!("{}/3/device/<token>", handle.url),
                "fcm": format!("{}/v1/projects/<project>/messages:send", handle.url),
                "deliveries": format!("{}/sim/deliveries", handle.url),
            }));
        } else {
            println!("push gateway simulator listening on {}", handle.url);
            println!("APNs:       POST {}/3/device/<token>", handle.url);
            println!("FCM:        POST {}/v1/projects/<project>/messages:send", handle.url);
            println!("deliveries: GET  {}/sim/deliveries", handle.url);
            println!(
                "failures:   POST {}/sim/failures  {{\"kind\":\"unregistered\",\"token\":\"…\",\"count\":1}}",
                handle.url
            );
            println!("Ctrl-C to stop.");
        }
        handle.run_until_ctrl_c().await;
        Ok(())
    })
}
