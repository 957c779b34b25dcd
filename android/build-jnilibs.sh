#!/usr/bin/env bash
# Builds the core for Android with cargo-ndk into sunstorm/src/main/jniLibs/<abi>/
# libsunstorm_ffi.so (release, LTO: scripts/build-mobile-lib.sh, see docs/building.md)
# and copies the generated Android-flavour Kotlin bindings into sunstorm/src/generated.
#
# Needs: rustup, cargo-ndk (`cargo install cargo-ndk`), an Android NDK r26+ in
# ANDROID_NDK_HOME (or ANDROID_HOME/ndk/<version>). Not run on the project's CI machine.
#
#   android/build-jnilibs.sh                  # arm64-v8a armeabi-v7a x86_64
#   ABIS="x86_64" android/build-jnilibs.sh    # emulator only, faster
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
abis="${ABIS:-arm64-v8a armeabi-v7a x86_64}"
out="$here/sunstorm/src/main/jniLibs"
api="${ANDROID_MIN_API:-30}"

command -v cargo-ndk >/dev/null || { echo "build-jnilibs: install cargo-ndk: cargo install cargo-ndk" >&2; exit 1; }
if [ -z "${ANDROID_NDK_HOME:-}" ] && [ -d "${ANDROID_HOME:-/nonexistent}/ndk" ]; then
    ANDROID_NDK_HOME="$(ls -d "$ANDROID_HOME"/ndk/* | sort -V | tail -n 1)"
    export ANDROID_NDK_HOME
fi
[ -n "${ANDROID_NDK_HOME:-}" ] || { echo "build-jnilibs: set ANDROID_NDK_HOME to an NDK (r26+)" >&2; exit 1; }

declare -A triple=([arm64-v8a]=aarch64-linux-android [armeabi-v7a]=armv7-linux-androideabi
                   [x86_64]=x86_64-linux-android [x86]=i686-linux-android)
targets=()
for abi in $abis; do
    t="${triple[$abi]:-}"
    [ -n "$t" ] || { echo "build-jnilibs: unknown ABI $abi" >&2; exit 1; }
    targets+=("$t")
done
rustup target add "${targets[@]}"

cd "$root"
rm -rf "$out"
mkdir -p "$out"
# Through cargo-ndk, the shipped way (LTO, no test hooks), into $out/<abi>/.
for abi in $abis; do
    scripts/build-mobile-lib.sh --android "$abi" --android-api "$api" --android-out "$out" >/dev/null
done

# The bindings come from the host build (unstripped, same sources): Android flavour.
scripts/bindings.sh >/dev/null
rm -rf "$here/sunstorm/src/generated/kotlin"
mkdir -p "$here/sunstorm/src/generated"
cp -R "$root/bindings/generated/kotlin" "$here/sunstorm/src/generated/kotlin"

find "$out" -name '*.so' -exec ls -la {} \;
echo "build-jnilibs: done; now: cd android && gradle :sample:installDebug" >&2
