#!/usr/bin/env bash
# What this Linux machine can check of the Android shell (issue 9 item 3): builds the host
# cdylib and generates the bindings (scripts/bindings.sh), then, in android/jvm-check,
# compiles the Android library module, the sample app's non-Compose code and the generated
# Android-flavour bindings against the Android 14 framework jar (Robolectric's android-all,
# Maven Central) and runs their JVM tests (JUnit 5): link routing through the real core,
# the BLE adapter's write queue / connect state machine, the screen controllers.
#
# Not built here (needs the Android SDK / Gradle / Google Maven): the AAR, the APK, the
# Compose UI, resources. See docs/android.md.
#
#   scripts/test-android.sh                 # SUNSTORM_MVN_OFFLINE=1 to forbid downloads
#   SUNSTORM_SKIP_BINDINGS=1 scripts/test-android.sh   # reuse bindings/generated + the built library
#
# First run downloads ~140 MB (android-all) plus the Kotlin toolchain into ~/.m2.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
t0=$(date +%s)
phase() { echo "== test-android: $1 ($(( $(date +%s) - t0 ))s elapsed)"; }
fail() { echo "test-android: FAILED: $*" >&2; exit 1; }

case "$(uname -s)" in Darwin) libname=libsunstorm_ffi.dylib ;; *) libname=libsunstorm_ffi.so ;; esac
if [ "${SUNSTORM_SKIP_BINDINGS:-0}" = 1 ]; then
    lib="$CARGO_TARGET_DIR/debug/$libname"
else
    phase "building the library, generating bindings"
    [ -x scripts/bindings.sh ] || fail "scripts/bindings.sh is missing"
    lib="$(scripts/bindings.sh | tail -n 1)"
fi
[ -f "$lib" ] || fail "no library at $lib"
gen="$root/bindings/generated/kotlin"
[ -n "$(find "$gen" -name '*.kt' 2>/dev/null | head -n 1)" ] || fail "no generated Kotlin in $gen"

command -v java >/dev/null || fail "java is not installed (JDK 17+ needed)"
if ! command -v mvn >/dev/null; then
    echo "test-android: installing maven" >&2
    (apt-get update -qq && apt-get install -y -qq maven) >&2 || fail "cannot install maven"
fi
mvn_flags=(-B -q)
[ "${SUNSTORM_MVN_OFFLINE:-0}" = 1 ] && mvn_flags+=(-o)
[ "${CI:-}" = true ] && mvn_flags+=(-ntp)

phase "compiling the Android Kotlin against android-all, running the JVM tests"
dir="$root/android/jvm-check"
rm -rf "$dir/target/surefire-reports"
set +e
(cd "$dir" && mvn "${mvn_flags[@]}" test \
    -Dsunstorm.lib.dir="$(dirname "$lib")" \
    -Dsunstorm.generated.dir="$gen")
rc=$?
set -e
read -r tests failed errors skipped < <(python3 - "$dir/target/surefire-reports" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
t = f = e = s = 0
for p in glob.glob(sys.argv[1] + "/TEST-*.xml"):
    r = ET.parse(p).getroot()
    t += int(r.get("tests", 0)); f += int(r.get("failures", 0))
    e += int(r.get("errors", 0)); s += int(r.get("skipped", 0))
print(t, f, e, s)
PY
)
echo "android (jvm-check): $(( tests - failed - errors - skipped )) passed, $(( failed + errors )) failed, $skipped skipped"
[ "$rc" -eq 0 ] || fail "mvn exit $rc; reports in $dir/target/surefire-reports"
[ "$tests" -gt 0 ] || fail "no test ran"
[ "$skipped" -eq 0 ] || fail "$skipped tests were skipped"
phase "done"
