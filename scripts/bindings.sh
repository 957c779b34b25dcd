#!/usr/bin/env bash
# Builds the sunstorm-ffi cdylib (debug unless PROFILE=release) and generates the Kotlin
# (Android and JVM flavours), Swift and Python bindings from the UNSTRIPPED library.
# uniffi-bindgen reads the library's .symtab: never point it at a stripped library
# ("No UniFFI metadata found"; docs/building.md).
#
#   scripts/bindings.sh                  # debug library → bindings/generated/ (replaced)
#   scripts/bindings.sh --out DIR        # → DIR/{kotlin,kotlin-jvm,swift,python}; nothing
#                                        #   else in DIR is touched, bindings/generated neither
#   PROFILE=release scripts/bindings.sh
#   SUNSTORM_TESTING=1 scripts/bindings.sh   # with the test hooks (feature `testing`:
#                                        #   debugForcePanic, debugWait) the binding tests call
#
# Works from any directory (the generator runs in the checkout, where `cargo metadata`
# finds uniffi.toml). Prints the path of the library it generated from on its last line.
set -euo pipefail

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bindings/generated"
custom_out=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || { echo "bindings.sh: --out needs a directory" >&2; exit 2; }
               mkdir -p "$2"; out="$(cd "$2" && pwd)"; custom_out=1; shift 2 ;;
        --out=*) mkdir -p "${1#--out=}"; out="$(cd "${1#--out=}" && pwd)"; custom_out=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "bindings.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
cd "$root"
profile="${PROFILE:-debug}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

case "$(uname -s)" in
    Darwin) libname="libsunstorm_ffi.dylib" ;;
    *) libname="libsunstorm_ffi.so" ;;
esac

testing="${SUNSTORM_TESTING:-0}"
if [ "$profile" = "release" ]; then
    if [ "$testing" = 1 ]; then
        lib="$(scripts/build-mobile-lib.sh --features testing | tail -n 1)"
    else
        lib="$(scripts/build-mobile-lib.sh | tail -n 1)"
    fi
else
    # One cargo invocation (one feature resolution) for everything the caller needs;
    # SUNSTORM_EXTRA_PACKAGES adds packages (test-bindings.sh adds the CLI).
    extra="${SUNSTORM_EXTRA_PACKAGES:-}"
    [ "$testing" = 1 ] && extra="$extra --features sunstorm-ffi/testing"
    # shellcheck disable=SC2086
    cargo build -p sunstorm-ffi -p uniffi-bindgen $extra >&2
    lib="$target_dir/debug/$libname"
fi
[ "$profile" = "release" ] && cargo build -p uniffi-bindgen >&2
bindgen="$target_dir/debug/uniffi-bindgen"

[ -f "$lib" ] || { echo "bindings.sh: library not found: $lib" >&2; exit 1; }

langs=(kotlin kotlin-jvm swift python)
if [ "$custom_out" = 1 ]; then
    for d in "${langs[@]}"; do rm -rf "${out:?}/$d"; done
else
    rm -rf "$out"
fi
for d in "${langs[@]}"; do mkdir -p "$out/$d"; done

gen() { # language outdir config
    "$bindgen" generate --library "$lib" --language "$1" --out-dir "$2" --config "$3" --no-format >&2
}
# uniffi 0.32's --config takes a "global" file; ours maps the crate's root to the workspace
# root so the root uniffi.toml (Kotlin package, Swift module names…) applies.
# Android flavour (root uniffi.toml: android = true, Android cleaner).
gen kotlin "$out/kotlin" "$root/bindings/uniffi-bindgen/config.toml"
# JVM flavour for desktop JVMs (bindings/jvm): same API, JNA cleaner (no android.* imports).
gen kotlin "$out/kotlin-jvm" "$root/bindings/jvm/uniffi-jvm.toml"
gen swift "$out/swift" "$root/bindings/uniffi-bindgen/config.toml"
gen python "$out/python" "$root/bindings/uniffi-bindgen/config.toml"

# The Python module loads the library from its own directory.
cp "$lib" "$out/python/"

for d in "${langs[@]}"; do
    n=$(find "$out/$d" -type f | wc -l)
    [ "$n" -gt 0 ] || { echo "bindings.sh: nothing generated for $d" >&2; exit 1; }
done
echo "bindings.sh: generated Kotlin, Swift and Python bindings in $out from $lib" >&2
echo "$lib"
