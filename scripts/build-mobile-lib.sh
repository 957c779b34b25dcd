#!/usr/bin/env bash
# Builds the shipped sunstorm-ffi library: the one place that knows how. The release profile
# (fat LTO, opt-level "z", panic = "unwind") only applies through
# `cargo rustc -p sunstorm-ffi --crate-type …`: cargo silently skips LTO for a crate that is
# also a `lib` (bindings/Cargo.toml), see docs/building.md. Prints the library's path on its
# last line (stdout); cargo's output goes to stderr.
#
#   scripts/build-mobile-lib.sh                            # host cdylib, release
#   scripts/build-mobile-lib.sh --target aarch64-apple-ios --crate-type staticlib
#   scripts/build-mobile-lib.sh --android arm64-v8a --android-api 30 --android-out DIR
#                                         # through cargo-ndk (its linker); copies the .so
#                                         # into DIR/<abi>/ (needs ANDROID_NDK_HOME)
#   scripts/build-mobile-lib.sh --profile dev --features testing   # other profile/features
#   scripts/build-mobile-lib.sh --link-as-android          # host cdylib linked the way the
#                                         # Android one is (packed relative relocations), so its
#                                         # size stands in for arm64 (scripts/size-check.sh)
#
# Android (API >= 30) libraries are linked with packed relative relocations (RELR,
# `--pack-dyn-relocs=relr`, read by Android's loader since API 28 and standardised at 30):
# the ~150 KB of .rela.dyn a PIC library of Rust vtables and string tables carries shrinks
# to a bitmap of a few KB (docs/building.md). iOS needs nothing: Mach-O chained fixups are
# already compact.
#
# The mobile builds (size check, Android, iOS) pass no features: the `testing` hooks are
# never in a shipped library (scripts/size-check.sh checks its symbols).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=""
crate_type=cdylib
profile=release
features=""
abi=""
api="${ANDROID_MIN_API:-30}"
android_out=""
link_as_android=0
need() { [ "$2" -ge 2 ] || { echo "build-mobile-lib.sh: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
    case "$1" in
        --target) need "$1" $#; target="$2"; shift 2 ;;
        --crate-type) need "$1" $#; crate_type="$2"; shift 2 ;;
        --profile) need "$1" $#; profile="$2"; shift 2 ;;
        --features) need "$1" $#; features="$2"; shift 2 ;;
        --android) need "$1" $#; abi="$2"; shift 2 ;;
        --android-api) need "$1" $#; api="$2"; shift 2 ;;
        --android-out) need "$1" $#; android_out="$2"; shift 2 ;;
        --link-as-android) link_as_android=1; shift ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-mobile-lib.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
case "$crate_type" in cdylib|staticlib) ;; *) echo "build-mobile-lib.sh: --crate-type is cdylib or staticlib" >&2; exit 2 ;; esac
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

cmd=(cargo)
if [ -n "$abi" ]; then
    case "$abi" in
        arm64-v8a) target=aarch64-linux-android ;;
        armeabi-v7a) target=armv7-linux-androideabi ;;
        x86_64) target=x86_64-linux-android ;;
        x86) target=i686-linux-android ;;
        *) echo "build-mobile-lib.sh: unknown Android ABI $abi" >&2; exit 2 ;;
    esac
    [ "$crate_type" = cdylib ] || { echo "build-mobile-lib.sh: Android takes a cdylib" >&2; exit 2; }
    # cargo-ndk sets the NDK's linker and passes --target itself.
    cmd=(cargo ndk --platform "$api" -t "$abi")
    [ -n "$android_out" ] && cmd+=(-o "$android_out")
fi
cmd+=(rustc -p sunstorm-ffi)
case "$profile" in
    release) cmd+=(--release); dir=release ;;
    dev|debug) dir=debug ;;
    *) cmd+=(--profile "$profile"); dir="$profile" ;;
esac
[ -n "$target" ] && [ -z "$abi" ] && cmd+=(--target "$target")
[ -n "$features" ] && cmd+=(--features "$features")
cmd+=(--crate-type "$crate_type")
# Link arguments for this crate only (after `--`): no dependency is rebuilt for them.
link_args=()
if [ -n "$abi" ] && [ "$api" -ge 30 ]; then
    link_args+=(-C link-arg=-Wl,--pack-dyn-relocs=relr)
elif [ "$link_as_android" = 1 ]; then
    [ -z "$target" ] && [ "$(uname -s)" = Linux ] \
        || { echo "build-mobile-lib.sh: --link-as-android is for the Linux host library" >&2; exit 2; }
    # The same packing for glibc (>= 2.36 loads it): rustc links with lld here.
    link_args+=(-C link-arg=-Wl,-z,pack-relative-relocs)
fi
[ "${#link_args[@]}" -gt 0 ] && cmd+=(-- "${link_args[@]}")

"${cmd[@]}" >&2

os="$(uname -s)"
case "$target" in
    *apple*) os=Darwin ;;
    *linux*|*android*) os=Linux ;;
esac
if [ "$crate_type" = staticlib ]; then
    name=libsunstorm_ffi.a
elif [ "$os" = Darwin ]; then
    name=libsunstorm_ffi.dylib
else
    name=libsunstorm_ffi.so
fi
lib="$target_dir/${target:+$target/}$dir/$name"
[ -f "$lib" ] || { echo "build-mobile-lib.sh: no library at $lib" >&2; exit 1; }
echo "$lib"
