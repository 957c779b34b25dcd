//! `sunstorm sim octane`: the octane simulator as a process, for the three-process demo and
//! for mobile developers on a laptop.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use sunstorm_sim::octane::{DemoSp, OctaneSim, OctaneSimConfig, PushConfig};

use crate::output::{self, CliError};

/// Arguments of `sunstorm sim octane`.
#[derive(Args, Debug)]
pub struct OctaneArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Keep state in this SQLite file (default: in memory). Reuse it with the same --seed.
    #[arg(long)]
    db: Option<PathBuf>,
    /// 32-byte seed (64 hex digits) for octane's key and the demo SP's keys; random if absent.
    #[arg(long, env = "SUNSTORM_OCTANE_SEED")]
    seed: Option<String>,
    /// Host of the pair links handed out.
    #[arg(long, default_value = sunstorm_core::link::DEFAULT_HOST)]
    link_host: String,
    /// Register this many further demo services (`demo-sp-1`…, keys derived from the seed
    /// like the first's), for trying several services at once.
    #[arg(long = "extra-sps", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=9))]
    extra_sps: u8,
    /// Serve this signed metadata bundle at `GET /metadata/bundle` (e.g.
    /// `metadata/bundle.cbor`); without it that endpoint answers 404.
    #[arg(long = "metadata-bundle", value_name = "FILE")]
    metadata_bundle: Option<PathBuf>,
    /// Push each routed sign request through this push gateway (e.g. the one
    /// `sunstorm sim push-gateway` runs); without it, no push (phones poll).
    #[arg(long = "push-gateway", env = "SUNSTORM_PUSH_GATEWAY", value_name = "URL")]
    push_gateway: Option<url::Url>,
    /// `apns-topic` of the pushes (the iOS app's bundle id).
    #[arg(long = "apns-topic", default_value = sunstorm_sim::octane::DEFAULT_APNS_TOPIC)]
    apns_topic: String,
    /// FCM project id of the pushes.
    #[arg(long = "fcm-project", default_value = sunstorm_sim::octane::DEFAULT_FCM_PROJECT)]
    fcm_project: String,
    /// Print the startup facts as one JSON document.
    #[arg(long)]
    json: bool,
}

/// Starts the simulator, prints what clients need, serves until Ctrl-C.
pub fn run(args: OctaneArgs) -> Result<(), CliError> {
    let json = args.json;
    let seed = match &args.seed {
        None => None,
        Some(h) => {
            let v = hex::decode(h.trim())
                .ok()
                .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
                .ok_or_else(|| CliError::rejected("bad_seed", "--seed must be 64 hex digits", json))?;
            Some(v)
        }
    };
    let metadata_bundle = match &args.metadata_bundle {
        None => None,
        Some(p) => Some(std::fs::read(p).map_err(|e| {
            CliError::rejected("bad_metadata_bundle", format!("cannot read {}: {e}", p.display()), json)
        })?),
    };
    let push = args.push_gateway.clone().map(|url| PushConfig {
        apns_topic: args.apns_topic.clone(),
        fcm_project: args.fcm_project.clone(),
        ..PushConfig::new(url)
    });
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::failed("runtime", e.to_string(), json))?;
    rt.block_on(async move {
        let handle = OctaneSim::start(OctaneSimConfig {
            listen: args.listen,
            db_path: args.db.clone(),
            seed,
            link_host: args.link_host.clone(),
            extra_demo_sps: args.extra_sps,
            metadata_bundle,
            push,
            ..Default::default()
        })
        .await
        .map_err(|e| CliError::failed("octane_start", e.to_string(), json))?;
        let demo = handle.demo_sp.clone();
        if json {
            output::print_json_ok(serde_json::json!({
                "url": handle.url,
                "octane_public_key": handle.octane_public_key.to_hex(),
                "demo_sp": sp_json(&demo),
                "extra_sps": handle.extra_sps.iter().map(sp_json).collect::<Vec<_>>(),
                "push_gateway": args.push_gateway.as_ref().map(|u| u.as_str()),
            }));
        } else {
            println!("octane simulator listening on {}", handle.url);
            println!("octane public key (pin it): {}", handle.octane_public_key);
            let d = &demo;
            println!("demo SP:            {} ({})", d.profile.name, d.profile.sp_id);
            println!("demo SP API key:    {}", d.api_key);
            println!("demo SP key seed:   {}  (simulator only)", d.signing_key_hex().as_str());
            println!("demo SP public key: {}", d.profile.public_key);
            println!("return origins:     {}", d.profile.allowed_return_origins.join(", "));
            let chains: Vec<String> = d.supported_chains.iter().map(ToString::to_string).collect();
            println!("chains:             {}", chains.join(", "));
            for sp in &handle.extra_sps {
                println!("extra SP:           {} ({})", sp.profile.name, sp.profile.sp_id);
                println!("  API key:          {}", sp.api_key);
                println!("  key seed:         {}  (simulator only)", sp.signing_key_hex().as_str());
            }
            match &args.push_gateway {
                Some(u) => println!("push gateway:       {u}"),
                None => println!("push gateway:       none (phones poll)"),
            }
            println!("Ctrl-C to stop.");
        }
        handle.run_until_ctrl_c().await;
        Ok(())
    })
}

/// What a client needs of a demo service (simulator only: its keys are printed).
fn sp_json(sp: &DemoSp) -> serde_json::Value {
    serde_json::json!({
        "sp_id": sp.profile.sp_id,
        "name": sp.profile.name,
        "api_key": sp.api_key,
        "sp_key_seed": sp.signing_key_hex().as_str(),
        "sp_public_key": sp.profile.public_key.to_hex(),
        "allowed_return_origins": sp.profile.allowed_return_origins,
        "chains": sp.supported_chains.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}
