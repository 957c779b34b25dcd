#!/usr/bin/env bash
# End-to-end test of the FFI from the foreign side: builds the cdylib (debug) and the
# `sunstorm` CLI (the simulators run as child processes), generates the Kotlin, Swift and
# Python bindings, packages the JVM flavour (scripts/jvm-package.sh: the jar with the
# native library and the desktop helpers, installed into ~/.m2), runs the Kotlin tests on
# the JVM against that package (Maven + JNA, no -Djna.library.path) and the Python smoke
# (pytest). The library is built with the test hooks (feature `testing`: debugForcePanic,
# debugWait, which the tests call), so the bindings are generated from that build; the
# shipped mobile library never has them (scripts/size-check.sh). scripts/test-quickstart.sh
# reuses the package this builds. Installs what is missing (pytest; Maven through apt if
# absent), skips nothing, fails loudly. Maven needs the network only on its first run (~/.m2 cache afterwards);
# SUNSTORM_MVN_OFFLINE=1 forces offline mode.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
t0=$(date +%s)
phase() { echo "== test-bindings: $1 ($(( $(date +%s) - t0 ))s elapsed)"; }
fail() { echo "test-bindings: FAILED: $*" >&2; exit 1; }

phase "building the library and the sunstorm CLI, generating bindings"
lib="$(SUNSTORM_TESTING=1 SUNSTORM_EXTRA_PACKAGES="-p sunstorm-cli" scripts/bindings.sh | tail -n 1)"
[ -f "$lib" ] || fail "no library at $lib"
for f in bindings/generated/swift/Sunstorm.swift bindings/generated/swift/SunstormFFI.h \
         bindings/generated/swift/SunstormFFI.modulemap bindings/generated/python/sunstorm_ffi.py; do
    [ -s "$f" ] || fail "missing generated file $f"
done

bin="$CARGO_TARGET_DIR/debug/sunstorm"
[ -x "$bin" ] || fail "no CLI at $bin"

# ---- Kotlin on the JVM -------------------------------------------------------------
phase "the JVM package (bindings/jvm → ~/.m2)"
SUNSTORM_SKIP_BINDINGS=1 scripts/jvm-package.sh >/dev/null || fail "JVM package"

phase "Kotlin (Maven, JUnit 5) through the JVM package"
# shellcheck source=lib/maven-tests.sh
source "$root/scripts/lib/maven-tests.sh"
run_maven_tests kotlin "$root/bindings/kotlin" -Dsunstorm.bin="$bin" || fail "Kotlin tests"

# ---- Python ------------------------------------------------------------------------
phase "Python (pytest)"
if ! python3 -c 'import pytest' 2>/dev/null; then
    echo "test-bindings: installing pytest" >&2
    python3 -m pip install --quiet pytest 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages pytest \
        || fail "cannot install pytest"
fi
PYTHONPATH="$root/bindings/generated/python:$root/bindings/python" SUNSTORM_BIN="$bin" \
    python3 -m pytest -q -rs -p no:cacheprovider "$root/bindings/python" \
    || fail "Python tests failed"

phase "done: Kotlin and Python bindings pass; Swift bindings generated (compiled only on macOS)"
