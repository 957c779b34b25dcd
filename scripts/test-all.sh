#!/usr/bin/env bash
# Every test of Sunstorm core, on a fresh machine with nothing installed by hand:
#   1. Rust: unit, property, CLI, cross-process and end-to-end tests (incl. the demo's JSON)
#   2. lint (scripts/lint.sh: rustfmt check, clippy -D warnings, rustdoc with warnings
#      denied), and the fuzz targets (their own workspace) compile
#   3. the generated Kotlin (JVM, through the JVM package) and Python bindings against the
#      simulators
#   4. the Kotlin quickstart: the JVM package in a fresh Maven repository, bond/pair/sign
#   5. the docs check: quoted CLI commands, Kotlin/Swift names and file paths exist
#   6. the simulators' HTTP APIs against their OpenAPI documents (docs/openapi/) with
#      schemathesis: no 5xx, only documented statuses and bodies, invalid input refused
#   7. the Android shell's Kotlin against the Android framework jar, with JVM tests
#   8. real BLE stacks: btleplug <-> bluer over a user-space BlueZ mock (bluezoo)
#   9. the mobile library's stripped size against its 4 MiB budget (fails above it)
# Each stage installs what it needs (apt-get / pip / Maven Central) and fails loudly.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
export RUST_BACKTRACE=1

t_all=$SECONDS
stage() { printf '\n==> %s\n' "$*"; t_stage=$SECONDS; }
done_stage() { printf '<== %s: %ss\n' "$1" "$((SECONDS - t_stage))"; }

stage "Rust tests (workspace; the BLE-stack tests run in their own stage below)"
cargo test --workspace --locked --exclude sunstorm-ble -- --skip scan_bond_pair_and_sign_over_ble
done_stage "rust tests"

stage "lint: fmt, clippy, rustdoc"
bash scripts/lint.sh
done_stage "lint"

stage "fuzz targets compile (running them: scripts/fuzz.sh, docs/fuzzing.md)"
(cd fuzz && cargo check --bins --locked)
done_stage "fuzz check"

stage "bindings: Kotlin on the JVM and Python"
bash scripts/test-bindings.sh
done_stage "bindings"

stage "Kotlin quickstart from a fresh Maven repository (bond, pair, sign)"
# Reuses the library, the CLI and the JVM package the previous stage built (with the
# `testing` hooks, which the quickstart never calls: one build instead of two).
SUNSTORM_SKIP_BUILD=1 bash scripts/test-quickstart.sh
done_stage "quickstart"

stage "docs check: commands, names and paths quoted in the docs exist"
SUNSTORM_SKIP_BUILD=1 bash scripts/check-docs.sh
SUNSTORM_SKIP_BUILD=1 bash scripts/check-swift-wrappers.sh   # Swift Task cancellation (docs/ios.md)
done_stage "docs"

stage "OpenAPI: schemathesis against the simulators' HTTP APIs (docs/openapi/)"
SUNSTORM_SKIP_BUILD=1 bash scripts/test-openapi.sh   # reuses target/debug/sunstorm
done_stage "openapi"

stage "Android shell: Kotlin compiled against the Android framework jar, JVM tests"
# Reuses the library and the bindings the previous stage just built and generated.
SUNSTORM_SKIP_BINDINGS=1 bash scripts/test-android.sh
done_stage "android"

stage "BLE over a user-space BlueZ (bluezoo)"
bash scripts/test-ble.sh
done_stage "ble"

stage "mobile library size (budget 4 MiB)"
bash scripts/size-check.sh
done_stage "size"


printf '\nAll stages passed in %ss.\n' "$((SECONDS - t_all))"
