//! `uniffi-bindgen`: uniffi's binding generator (pinned to the workspace's uniffi), with
//! three additions for Sunstorm:
//!
//! - run outside a Cargo workspace, it says so in one line instead of an `anyhow` backtrace
//!   (uniffi reads `cargo metadata` to find each crate's `uniffi.toml`);
//! - input errors (a missing `--language`…) are one line, never a panic backtrace;
//! - the Kotlin it writes is made Kotlin-shaped ([`kotlin::polish`]): an exception's
//!   `message` is the Rust `Display` sentence (uniffi 0.32 puts `field=value` there and the
//!   sentence in a `toString()` that hides the exception's type from stack traces), and a
//!   case without fields is a `data object` that prints its name;
//! - in the Swift, an error's `errorDescription` (`LocalizedError`) is that sentence too
//!   ([`swift::polish`]).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod kotlin;
mod swift;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Every failure here is about the inputs: one line, no backtrace (anyhow captures one
    // when RUST_BACKTRACE is set, as our test scripts do).
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unexpected failure".into());
        eprintln!("uniffi-bindgen: {msg}");
    }));
    let generating = args.first().map(String::as_str) == Some("generate");
    if generating {
        if let Err(msg) = check_workspace() {
            eprintln!("uniffi-bindgen: {msg}");
            return ExitCode::from(2);
        }
    }
    // Exits the process with status 1 (after printing the error) on failure.
    uniffi::uniffi_bindgen_main();
    let langs = if generating { languages(&args) } else { Vec::new() };
    if let Some(out) = flag_value(&args, "--out-dir", Some("-o")).filter(|_| generating) {
        let polished =
            [("kotlin", kotlin::polish_dir as fn(&Path) -> Result<(), String>), ("swift", swift::polish_dir)]
                .into_iter()
                .filter(|(lang, _)| langs.iter().any(|l| l == lang))
                .try_for_each(|(_, polish)| polish(&out));
        if let Err(msg) = polished {
            eprintln!("uniffi-bindgen: {msg}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Applies `rewrite` to every file under `dir` whose name ends in `.ext`.
fn rewrite_files(dir: &Path, ext: &str, rewrite: fn(&str) -> Result<String, String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?.path();
        if path.is_dir() {
            rewrite_files(&path, ext, rewrite)?;
        } else if path.extension().is_some_and(|x| x == ext) {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let new = rewrite(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            if new != text {
                std::fs::write(&path, new).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// uniffi finds each crate's `uniffi.toml` through `cargo metadata`, which needs a Cargo
/// project around the working directory.
fn check_workspace() -> Result<(), String> {
    let cwd = std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?;
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output();
    let hint = "run it from the Sunstorm checkout (uniffi reads `cargo metadata` to find \
                uniffi.toml), or use `scripts/bindings.sh --out DIR` from anywhere";
    match out {
        Err(e) => Err(format!("cannot run cargo ({e}); {hint}")),
        Ok(o) if !o.status.success() => Err(format!("{} is not inside a Cargo workspace; {hint}", display(&cwd))),
        Ok(_) => Ok(()),
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

/// The values of every `--language`/`-l` (repeatable, possibly comma-separated).
fn languages(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = if a == "--language" || a == "-l" {
            it.next().cloned()
        } else {
            a.strip_prefix("--language=").map(str::to_string)
        };
        if let Some(v) = v {
            out.extend(v.split(',').map(|s| s.trim().to_ascii_lowercase()));
        }
    }
    out
}

/// The value of `--name VALUE`, `--name=VALUE` or `-s VALUE`.
fn flag_value(args: &[String], long: &str, short: Option<&str>) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == long || Some(a.as_str()) == short {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix(long).and_then(|r| r.strip_prefix('=')) {
            return Some(PathBuf::from(v));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn finds_languages_and_the_output_directory_in_every_spelling() {
        let a = args("generate --library l.so -l swift --language=kotlin,python --out-dir /tmp/x");
        assert_eq!(languages(&a), ["swift", "kotlin", "python"]);
        assert_eq!(flag_value(&a, "--out-dir", Some("-o")), Some(PathBuf::from("/tmp/x")));
        let b = args("generate -o out --language Kotlin");
        assert_eq!(languages(&b), ["kotlin"]);
        assert_eq!(flag_value(&b, "--out-dir", Some("-o")), Some(PathBuf::from("out")));
        assert_eq!(flag_value(&args("generate --out-dir=o2"), "--out-dir", Some("-o")), Some(PathBuf::from("o2")));
        assert_eq!(flag_value(&args("generate"), "--out-dir", Some("-o")), None);
    }
}
