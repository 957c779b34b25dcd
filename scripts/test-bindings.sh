#!/usr/bin/env bash
# End-to-end test of the FFI from the foreign side: builds the cdylib (debug) and the
# `sunstorm` CLI (the simulators run as child processes), generates the Kotlin, Swift and
# Python bindings, runs the Kotlin tests on the JVM (Maven + JNA) and the Python smoke
# (pytest). Installs what is missing (pytest; Maven through apt if absent), skips nothing,
# fails loudly. Maven needs the network only on its first run (~/.m2 cache afterwards);
# SUNSTORM_MVN_OFFLINE=1 forces offline mode.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
t0=$(date +%s)
phase() { echo "== test-bindings: $1 ($(( $(date +%s) - t0 ))s elapsed)"; }
fail() { echo "test-bindings: FAILED: $*" >&2; exit 1; }

phase "building the library and the sunstorm CLI, generating bindings"
lib="$(SUNSTORM_EXTRA_PACKAGES="-p sunstorm-cli" scripts/bindings.sh | tail -n 1)"
[ -f "$lib" ] || fail "no library at $lib"
for f in bindings/generated/swift/Sunstorm.swift bindings/generated/swift/SunstormFFI.h \
         bindings/generated/swift/SunstormFFI.modulemap bindings/generated/python/sunstorm_ffi.py; do
    [ -s "$f" ] || fail "missing generated file $f"
done

bin="$CARGO_TARGET_DIR/debug/sunstorm"
[ -x "$bin" ] || fail "no CLI at $bin"

# ---- Kotlin on the JVM -------------------------------------------------------------
phase "Kotlin (Maven, JUnit 5)"
command -v java >/dev/null || fail "java is not installed (JDK 17+ needed)"
if ! command -v mvn >/dev/null; then
    echo "test-bindings: installing maven" >&2
    (apt-get update -qq && apt-get install -y -qq maven) >&2 || fail "cannot install maven"
fi
mvn_flags=(-B -q)
[ "${SUNSTORM_MVN_OFFLINE:-0}" = 1 ] && mvn_flags+=(-o)
[ "${CI:-}" = true ] && mvn_flags+=(-ntp)
kt_dir="$root/bindings/kotlin"
rm -rf "$kt_dir/target/surefire-reports"
set +e
(cd "$kt_dir" && mvn "${mvn_flags[@]}" test \
    -Dsunstorm.lib.dir="$(dirname "$lib")" \
    -Dsunstorm.bin="$bin" \
    -Dsunstorm.generated.dir="$root/bindings/generated/kotlin-jvm")
kt_rc=$?
set -e
# Surefire's own summary is hidden by -q: count from its XML reports.
read -r kt_tests kt_fail kt_err kt_skip < <(python3 - "$kt_dir/target/surefire-reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
t = f = e = s = 0
for p in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    r = ET.parse(p).getroot()
    t += int(r.get("tests", 0)); f += int(r.get("failures", 0))
    e += int(r.get("errors", 0)); s += int(r.get("skipped", 0))
print(t, f, e, s)
PY
)
echo "kotlin: $(( kt_tests - kt_fail - kt_err - kt_skip )) passed, $(( kt_fail + kt_err )) failed, $kt_skip skipped"
[ "$kt_rc" -eq 0 ] || fail "Kotlin tests failed (mvn exit $kt_rc); reports in $kt_dir/target/surefire-reports"
[ "$kt_tests" -gt 0 ] || fail "no Kotlin test ran"
[ "$kt_skip" -eq 0 ] || fail "$kt_skip Kotlin tests were skipped"

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
