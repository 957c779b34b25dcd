//! Run outside a Cargo workspace, the generator says so in one line (uniffi alone prints
//! an `anyhow` error with a 24-frame backtrace when RUST_BACKTRACE is set).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::process::Command;

#[test]
fn outside_the_workspace_the_error_is_one_line_naming_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--library", "libsunstorm_ffi.so", "--language", "kotlin", "--out-dir", "out"])
        .current_dir(dir.path())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("not inside a Cargo workspace") && stderr.contains("scripts/bindings.sh --out DIR"),
        "{stderr}"
    );
    assert!(!dir.path().join("out").exists(), "nothing is generated");
}

#[test]
fn a_missing_language_is_one_line_too() {
    let out = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--library", "libsunstorm_ffi.so", "--out-dir", "out"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success());
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("uniffi-bindgen: ") && stderr.contains("language"), "{stderr}");
}
