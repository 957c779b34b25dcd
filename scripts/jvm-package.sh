#!/usr/bin/env bash
# Builds and installs the JVM package xyz.sigilvault.sunstorm:sunstorm-jvm:0.1.0
# (bindings/jvm: the generated Kotlin, this host's native library inside the jar, the
# desktop helpers) into the local Maven repository, and the `sunstorm` CLI next to it
# (target/debug/sunstorm: the simulators the quickstart runs).
#
#   scripts/jvm-package.sh                   # debug library, into ~/.m2
#   scripts/jvm-package.sh --repo DIR        # into the Maven repository DIR instead
#   PROFILE=release scripts/jvm-package.sh   # the optimised library (slower to build)
#   SUNSTORM_SKIP_BINDINGS=1 …               # reuse the library and bindings/generated
#                                            # that scripts/bindings.sh just made
#   SUNSTORM_TESTING=1 …                     # with the test hooks (scripts/test-bindings.sh);
#                                            # without it, the package users install has none
#
# The library in the jar is a stripped copy (the one bindings were generated from stays
# unstripped). Prints the installed jar's path on its last line. Needs a JDK 17+; Maven is
# installed through apt when missing; Kotlin, JNA and coroutines come from Maven Central.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo=""
while [ $# -gt 0 ]; do
    case "$1" in
        --repo) [ $# -ge 2 ] || { echo "jvm-package.sh: --repo needs a directory" >&2; exit 2; }
                mkdir -p "$2"; repo="$(cd "$2" && pwd)"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "jvm-package.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
fail() { echo "jvm-package.sh: FAILED: $*" >&2; exit 1; }

case "$(uname -s)" in Darwin) libname=libsunstorm_ffi.dylib ;; *) libname=libsunstorm_ffi.so ;; esac
if [ "${SUNSTORM_SKIP_BINDINGS:-0}" = 1 ]; then
    lib="$CARGO_TARGET_DIR/${PROFILE:-debug}/$libname"
else
    lib="$(SUNSTORM_EXTRA_PACKAGES="-p sunstorm-cli" scripts/bindings.sh | tail -n 1)"
    [ "${PROFILE:-debug}" = release ] && cargo build -p sunstorm-cli >&2
fi
[ -f "$lib" ] || fail "no library at $lib (run scripts/bindings.sh)"
gen="$root/bindings/generated/kotlin-jvm"
[ -f "$gen/xyz/sigilvault/sunstorm/sunstorm_ffi.kt" ] || fail "no generated Kotlin in $gen (run scripts/bindings.sh)"

# A stripped copy for the jar: the runtime needs the dynamic symbols only.
native="$root/bindings/jvm/target/native"
rm -rf "$native" && mkdir -p "$native"
if command -v strip >/dev/null; then
    case "$(uname -s)" in
        Darwin) strip -x -o "$native/$libname" "$lib" ;;
        *) strip --strip-unneeded -o "$native/$libname" "$lib" ;;
    esac
else
    cp "$lib" "$native/$libname"
fi

if ! command -v mvn >/dev/null; then
    echo "jvm-package.sh: installing maven" >&2
    (apt-get update -qq && apt-get install -y -qq maven) >&2 || fail "cannot install maven"
fi
flags=(-B -q)
[ "${SUNSTORM_MVN_OFFLINE:-0}" = 1 ] && flags+=(-o)
[ "${CI:-}" = true ] && flags+=(-ntp)
[ -n "$repo" ] && flags+=("-Dmaven.repo.local=$repo")
(cd bindings/jvm && mvn "${flags[@]}" install \
    -Dsunstorm.lib.dir="$native" -Dsunstorm.generated.dir="$gen") >&2 || fail "mvn install"

jar="${repo:-$HOME/.m2/repository}/xyz/sigilvault/sunstorm/sunstorm-jvm/0.1.0/sunstorm-jvm-0.1.0.jar"
[ -f "$jar" ] || fail "not installed: $jar"
jar tf "$jar" | grep "/$libname\$" >/dev/null || fail "the jar has no $libname"
echo "jvm-package.sh: installed xyz.sigilvault.sunstorm:sunstorm-jvm:0.1.0 ($(du -h "$jar" | cut -f1)) with $(jar tf "$jar" | grep "/$libname$")" >&2
echo "$jar"
