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

# shellcheck source=lib/maven-tests.sh
source "$root/scripts/lib/maven-tests.sh"
phase "compiling the Android Kotlin against android-all, running the JVM tests"
run_maven_tests "android (jvm-check)" "$root/android/jvm-check" \
    -Dsunstorm.lib.dir="$(dirname "$lib")" \
    -Dsunstorm.generated.dir="$gen" || fail "Android JVM tests"
phase "done"
