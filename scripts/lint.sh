#!/usr/bin/env bash
# The tree's habits, each failing loudly: formatting (rustfmt.toml; the main workspace and
# the fuzz workspace), clippy with -D warnings (the workspace with every target; the mobile
# library alone, as shipped; the FFI with its test hooks), and the API docs with rustdoc
# warnings denied. The test command (scripts/test-all.sh) runs it.
#
#   scripts/lint.sh
#   SUNSTORM_LINT_SKIP_FMT=1 scripts/lint.sh   # skip the format check (local runs only;
#                                              # the test command never sets it)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
t0=$SECONDS
step() { echo "== lint: $1 ($((SECONDS - t0))s elapsed)"; }
fail() { echo "lint: FAILED: $*" >&2; exit 1; }

if [ "${SUNSTORM_LINT_SKIP_FMT:-0}" = 1 ]; then
    step "cargo fmt --check SKIPPED (SUNSTORM_LINT_SKIP_FMT=1)"
else
    step "cargo fmt --check (rustfmt.toml)"
    cargo fmt --all --check || fail "not formatted: run cargo fmt --all (and in fuzz/)"
    (cd fuzz && cargo fmt --all --check) || fail "fuzz/ not formatted: run cargo fmt --all in fuzz/"
fi

step "clippy -D warnings (workspace, all targets)"
cargo clippy --workspace --all-targets --locked -- -D warnings || fail "clippy (workspace)"
# The mobile library alone: sunstorm-core without its reqwest transport, as shipped.
step "clippy -D warnings (the mobile library alone, as shipped)"
cargo clippy -p sunstorm-ffi --lib --locked -- -D warnings || fail "clippy (sunstorm-ffi)"
# Its test hooks (feature `testing`), which only the binding tests build.
step "clippy -D warnings (sunstorm-ffi with its test hooks)"
cargo clippy -p sunstorm-ffi --lib --features testing --locked -- -D warnings || fail "clippy (sunstorm-ffi, testing)"

step "rustdoc, warnings denied"
RUSTDOCFLAGS="${RUSTDOCFLAGS:-} -D warnings" cargo doc --workspace --no-deps --locked || fail "cargo doc (rustdoc warnings)"

step "done"
