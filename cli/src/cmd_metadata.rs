//! `sunstorm metadata`: build and check the signed metadata bundle (ERC-7730 descriptors,
//! token list, contract names).
//!
//! `build` reads the manifest (`metadata/bundle.json`), the registry checkout and token
//! lists it names, and writes the bundle signed with the key whose seed is in `--key-file`
//! (by default the documented development key). Ed25519 and the CBOR encoding are
//! deterministic, so the same inputs give the same bytes. `verify` checks a bundle file
//! against a public key, as the phone does.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sunstorm_core::metadata::{build_body, open_bundle, read_manifest, read_seed_hex, seal, DEV_METADATA_PUBLIC_KEY};

use crate::output::{print_json_ok, CliError};

/// The metadata bundle.
#[derive(Subcommand, Debug)]
pub enum MetadataCmd {
    /// Build the bundle from the manifest's sources and sign it.
    Build(BuildArgs),
    /// Verify a bundle file and print its version, sources and counts.
    Verify(VerifyArgs),
}

/// `sunstorm metadata build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The build manifest.
    #[arg(long, default_value = "metadata/bundle.json")]
    manifest: PathBuf,
    /// File holding the signing key's 32-byte seed in hex. The default is the
    /// development key (DEV ONLY: its seed is public).
    #[arg(long, default_value = "metadata/dev-metadata-key.hex")]
    key_file: PathBuf,
    /// Where to write the bundle (default: the manifest's `output`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not write: fail (exit 2) unless the existing file is byte for byte what the
    /// sources build.
    #[arg(long)]
    check: bool,
}

/// `sunstorm metadata verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The bundle file.
    #[arg(default_value = "metadata/bundle.cbor")]
    file: PathBuf,
    /// The metadata public key in hex (default: the development key).
    #[arg(long)]
    key: Option<String>,
}

fn fail(code: &str, e: impl std::fmt::Display) -> CliError {
    CliError::failed(code, e.to_string(), false)
}

/// Runs a `metadata` subcommand.
pub fn run(cmd: MetadataCmd) -> Result<(), CliError> {
    match cmd {
        MetadataCmd::Build(a) => build(a),
        MetadataCmd::Verify(a) => verify(a),
    }
}

fn build(a: BuildArgs) -> Result<(), CliError> {
    let (input, default_out) = read_manifest(&a.manifest).map_err(|e| fail(e.code(), e))?;
    let seed = std::fs::read_to_string(&a.key_file).map_err(|e| fail("key_file", e))?;
    let key = read_seed_hex(&seed).map_err(|e| fail(e.code(), e))?;
    let built = build_body(&input).map_err(|e| fail(e.code(), e))?;
    let body = built.body;
    let bytes = seal(&body, &key).map_err(|e| fail(e.code(), e))?;
    let out = a.out.unwrap_or(default_out);
    let summary = serde_json::json!({
        "file": out.display().to_string(),
        "version": body.version,
        "bytes": bytes.len(),
        "descriptors": body.descriptors.len(),
        "files": body.files.len(),
        "tokens": body.tokens.len(),
        "names": body.names.len(),
        "public_key": hex::encode(key.verifying_key().to_bytes()),
        "skipped": built.skipped.iter().map(|(p, why)| serde_json::json!({
            "file": p, "reason": why,
        })).collect::<Vec<_>>(),
    });
    if a.check {
        let existing = std::fs::read(&out).map_err(|e| fail("bundle_missing", e))?;
        if existing != bytes {
            return Err(CliError::rejected(
                "bundle_differs",
                format!("{} is not what the sources build; run `sunstorm metadata build`", out.display()),
                false,
            ));
        }
    } else {
        std::fs::write(&out, &bytes).map_err(|e| fail("write", e))?;
    }
    print_json_ok(summary);
    Ok(())
}

/// The metadata public key given in hex, or the development key when none is given.
pub(crate) fn metadata_key(hex_key: Option<&str>, json: bool) -> Result<[u8; 32], CliError> {
    match hex_key {
        Some(h) => hex::decode(h.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| CliError::rejected("bad_key", "the metadata key is not 32 bytes of hex", json)),
        None => Ok(DEV_METADATA_PUBLIC_KEY),
    }
}

fn verify(a: VerifyArgs) -> Result<(), CliError> {
    let key = metadata_key(a.key.as_deref(), false)?;
    let bytes = std::fs::read(&a.file).map_err(|e| fail("read", e))?;
    let b = open_bundle(&bytes, &key, None).map_err(|e| CliError::rejected(e.code(), e.to_string(), false))?;
    print_json_ok(serde_json::json!({
        "version": b.version,
        "sha256": b.sha256,
        "descriptors": b.set.len(),
        "sources": b.sources.iter().map(|s| serde_json::json!({
            "name": s.name, "version": s.version, "licence": s.licence,
        })).collect::<Vec<_>>(),
    }));
    Ok(())
}
