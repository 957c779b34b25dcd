#!/usr/bin/env bash
# The Kotlin quickstart as a new user meets it (docs/embedding.md, "Quickstart"): the JVM
# package installed into a FRESH local Maven repository (an empty directory: Kotlin, JNA,
# coroutines and the Maven plugins come from Maven Central), then
# examples/kotlin-quickstart compiled and run against the simulators (bond → pair → sign),
# and its output checked line by line.
#
#   scripts/test-quickstart.sh                        # builds library, CLI and package first
#   SUNSTORM_SKIP_BUILD=1 scripts/test-quickstart.sh  # reuse what scripts/test-bindings.sh
#                                                     # built (bindings/jvm/target/*.jar)
#
# Built here, the package is the one users install (no test hooks); reused from
# test-bindings.sh (the test command does, to build the library once), it also carries the
# `testing` hooks, which the quickstart never calls.
#
# The fresh repository is deleted afterwards (SUNSTORM_KEEP_REPO=1 keeps it).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
t0=$(date +%s)
phase() { echo "== test-quickstart: $1 ($(( $(date +%s) - t0 ))s elapsed)"; }
fail() { echo "test-quickstart: FAILED: $*" >&2; exit 1; }

jar="$root/bindings/jvm/target/sunstorm-jvm-0.1.0.jar"
bin="$CARGO_TARGET_DIR/debug/sunstorm"
if [ "${SUNSTORM_SKIP_BUILD:-0}" != 1 ]; then
    phase "building the library, the CLI and the JVM package"
    scripts/jvm-package.sh >/dev/null
fi
[ -f "$jar" ] || fail "no package at $jar (run scripts/jvm-package.sh)"
[ -x "$bin" ] || fail "no sunstorm CLI at $bin (cargo build -p sunstorm-cli)"
lines=$(wc -l < examples/kotlin-quickstart/src/main/kotlin/Quickstart.kt)
[ "$lines" -lt 100 ] || fail "the quickstart has $lines lines (the promise is well under 100)"

repo="$(mktemp -d "${TMPDIR:-/tmp}/sunstorm-m2.XXXXXX")"
out="$(mktemp)"
work="$(mktemp -d)"
if [ "${SUNSTORM_KEEP_REPO:-0}" = 1 ]; then
    trap 'rm -rf "$out" "$work"' EXIT
else
    trap 'rm -rf "$repo" "$out" "$work"' EXIT
fi
flags=(-B -q "-Dmaven.repo.local=$repo")
[ "${CI:-}" = true ] && flags+=(-ntp)
command -v mvn >/dev/null || fail "maven is not installed (scripts/jvm-package.sh installs it)"

phase "installing sunstorm-jvm into a fresh local repository ($repo)"
# The jar scripts/jvm-package.sh built, installed as `mvn install` would (no second compile).
(cd "$work" && mvn "${flags[@]}" org.apache.maven.plugins:maven-install-plugin:3.1.2:install-file \
    -Dfile="$jar" -DpomFile="$root/bindings/jvm/pom.xml") || fail "install-file"
[ -f "$repo/xyz/sigilvault/sunstorm/sunstorm-jvm/0.1.0/sunstorm-jvm-0.1.0.jar" ] || fail "not installed in $repo"

phase "building and running examples/kotlin-quickstart (Kotlin and JNA from Maven Central)"
if ! mvn "${flags[@]}" -f examples/kotlin-quickstart/pom.xml compile exec:exec -Dsunstorm.bin="$bin" >"$out" 2>&1; then
    cat "$out" >&2
    fail "the quickstart did not run"
fi
# Maven's console resets (ESC[0m) may prefix a line: compare the text only.
perl -pi -e 's/\e\[[0-9;]*m//g' "$out"
cat "$out"
[ -d "$repo/org/jetbrains/kotlin/kotlin-stdlib" ] && [ -d "$repo/net/java/dev/jna/jna" ] \
    || fail "Kotlin/JNA were not resolved into the fresh repository"

# What a user sees, step by step (the sample is 0.05 ETH to 0x1111…1111 on Ethereum).
expect() { grep -E -q "$1" "$out" || fail "no line matching /$1/ in the quickstart's output"; }
expect '^simulators: octane at http://127\.0\.0\.1:[0-9]+, appliance PIN 246810$'
expect '^bonded: Sigil simulator \(.+\)$'
expect '^service: .+ asks for \[Ethereum\]$'
expect '^paired: [0-9a-f-]{36} with eip155:1:0x[0-9a-fA-F]{40}$'
expect '^sign request: .+'
expect '^  .+: 0\.05 ETH'
expect '^  .+: 0x1111111111111111111111111111111111111111'
expect '^signed: signed \(request [0-9a-f-]{36}\)$'
phase "done: the quickstart bonded, paired and signed from a fresh repository"
