#!/usr/bin/env bash
# Builds the sunstorm-ffi cdylib (debug unless PROFILE=release) and generates the Kotlin
# (Android and JVM flavours), Swift and Python bindings from the UNSTRIPPED library into
# bindings/generated/ (git-ignored). uniffi-bindgen reads the library's .symtab: never
# point it at a stripped library (build-facts: "No UniFFI metadata found").
#
#   scripts/bindings.sh            # debug library, for the binding tests
#   PROFILE=release scripts/bindings.sh
#
# Prints the path of the library it generated from on its last line.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
profile="${PROFILE:-debug}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"

case "$(uname -s)" in
    Darwin) libname="libsunstorm_ffi.dylib" ;;
    *) libname="libsunstorm_ffi.so" ;;
esac

if [ "$profile" = "release" ]; then
    cargo rustc -p sunstorm-ffi --release --crate-type cdylib >&2
    lib="$target_dir/release/$libname"
else
    # One cargo invocation (one feature resolution) for everything the caller needs;
    # SUNSTORM_EXTRA_PACKAGES adds packages (test-bindings.sh adds the CLI).
    # shellcheck disable=SC2086
    cargo build -p sunstorm-ffi -p uniffi-bindgen ${SUNSTORM_EXTRA_PACKAGES:-} >&2
    lib="$target_dir/debug/$libname"
fi
[ "$profile" = "release" ] && cargo build -p uniffi-bindgen >&2
bindgen="$target_dir/debug/uniffi-bindgen"

[ -f "$lib" ] || { echo "bindings.sh: library not found: $lib" >&2; exit 1; }

out="$root/bindings/generated"
rm -rf "$out"
mkdir -p "$out/kotlin" "$out/kotlin-jvm" "$out/swift" "$out/python"

gen() { # language outdir config
    "$bindgen" generate --library "$lib" --language "$1" --out-dir "$2" --config "$3" --no-format >&2
}
# uniffi 0.32's --config takes a "global" file; ours maps the crate's root to the workspace
# root so the root uniffi.toml (Kotlin package, Swift module names…) applies.
# Android flavour (root uniffi.toml: android = true, Android cleaner).
gen kotlin "$out/kotlin" "$root/bindings/uniffi-bindgen/config.toml"
# JVM flavour for the Maven tests: same package, JNA cleaner (no android.* imports).
gen kotlin "$out/kotlin-jvm" "$root/bindings/kotlin/uniffi-jvm.toml"
gen swift "$out/swift" "$root/bindings/uniffi-bindgen/config.toml"
gen python "$out/python" "$root/bindings/uniffi-bindgen/config.toml"

# The Python module loads the library from its own directory.
cp "$lib" "$out/python/"

for d in kotlin kotlin-jvm swift python; do
    n=$(find "$out/$d" -type f | wc -l)
    [ "$n" -gt 0 ] || { echo "bindings.sh: nothing generated for $d" >&2; exit 1; }
done
echo "bindings.sh: generated Kotlin, Swift and Python bindings from $lib" >&2
echo "$lib"
