//! `sunstorm link`, `sunstorm return-url`, `sunstorm code`: check a pair link, a return URL
//! or a typed validation code exactly as the phone would (issue 2 §5). Exit 0 when
//! accepted, 2 with the specific reason when rejected.

use clap::Args;
use serde_json::json;
use sunstorm_core::code::ValidationCode;
use sunstorm_core::link::{parse_link, LinkConfig};
use sunstorm_core::return_url::check_return_url;

use crate::output::{print_json_ok, CliError};

/// Arguments of `sunstorm link`.
#[derive(Args, Debug)]
pub struct LinkArgs {
    /// The link text, as tapped or scanned.
    #[arg(allow_hyphen_values = true)]
    pub url: String,
    /// An accepted host (repeatable); default: sigilvault.xyz.
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sunstorm return-url`.
#[derive(Args, Debug)]
pub struct ReturnUrlArgs {
    /// The return URL the service provider gave.
    #[arg(allow_hyphen_values = true)]
    pub url: String,
    /// An allowed origin, exactly `https://host` (repeatable).
    #[arg(long = "allow", value_name = "ORIGIN", required = true)]
    pub allow: Vec<String>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sunstorm code`.
#[derive(Args, Debug)]
pub struct CodeArgs {
    /// The code as a person typed it (spaces, dashes and non-ASCII digits allowed).
    #[arg(allow_hyphen_values = true)]
    pub text: String,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `sunstorm link`: prints the session id and whether a code was present (never the code).
pub fn link(args: LinkArgs) -> Result<(), CliError> {
    let config = if args.hosts.is_empty() { LinkConfig::default() } else { LinkConfig { accepted_hosts: args.hosts } };
    let intent = parse_link(&args.url, &config).map_err(|e| CliError::rejected(e.code(), e.to_string(), args.json))?;
    if args.json {
        print_json_ok(json!({
            "session_id": intent.session_id,
            "code_present": intent.code.is_some(),
        }));
    } else {
        println!("session: {}", intent.session_id);
        println!("code: {}", if intent.code.is_some() { "present" } else { "absent" });
    }
    Ok(())
}

/// `sunstorm return-url`: prints the URL and its origin when it may be opened.
pub fn return_url(args: ReturnUrlArgs) -> Result<(), CliError> {
    let url =
        check_return_url(&args.url, &args.allow).map_err(|e| CliError::rejected(e.code(), e.to_string(), args.json))?;
    let origin = url.origin().ascii_serialization();
    if args.json {
        print_json_ok(json!({ "url": url.as_str(), "origin": origin }));
    } else {
        println!("allowed: {url} (origin {origin})");
    }
    Ok(())
}

/// `sunstorm code`: prints the normalised six ASCII digits.
pub fn code(args: CodeArgs) -> Result<(), CliError> {
    let code = ValidationCode::parse(&args.text).map_err(|e| CliError::rejected(e.code(), e.to_string(), args.json))?;
    if args.json {
        print_json_ok(json!({ "code": code.as_str() }));
    } else {
        println!("{}", code.as_str());
    }
    Ok(())
}
