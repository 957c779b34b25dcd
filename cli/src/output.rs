//! How the CLI reports: one-line errors with stable codes, `--json` documents, exit codes.

use std::process::ExitCode;

/// A failure the CLI reports: a stable snake_case code, a message, and whether it is a
/// rejection of the user's input (exit 2) or another failure (exit 1).
#[derive(Debug)]
pub struct CliError {
    /// Stable snake_case code, e.g. `wrong_host`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// Exit 2 when true (the input was rejected), 1 otherwise.
    pub rejected: bool,
    /// Print as JSON on stdout instead of text on stderr.
    pub json: bool,
}

impl CliError {
    /// An input rejection (exit 2).
    pub fn rejected(code: impl Into<String>, message: impl Into<String>, json: bool) -> Self {
        Self { code: code.into(), message: message.into(), rejected: true, json }
    }
    /// Any other failure (exit 1).
    pub fn failed(code: impl Into<String>, message: impl Into<String>, json: bool) -> Self {
        Self { code: code.into(), message: message.into(), rejected: false, json }
    }
}

/// Sends `tracing` output to stderr with the given filter.
pub fn init_logging(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Prints `{"ok": value}` on stdout.
pub fn print_json_ok(value: serde_json::Value) {
    println!("{}", serde_json::json!({ "ok": value }));
}

/// Turns a command's result into the process exit code, printing the error.
pub fn finish(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.json {
                println!("{}", serde_json::json!({ "error": { "code": e.code, "message": e.message } }));
            } else {
                eprintln!("error [{}]: {}", e.code, e.message);
            }
            if e.rejected {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
