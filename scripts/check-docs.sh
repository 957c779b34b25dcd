#!/usr/bin/env bash
# Checks that what the docs quote exists (scripts/lib/check_docs.py): every `sunstorm …`
# command (its --help runs; its flags are ones it has), every repository path and
# page#anchor link, the Kotlin/Swift names of the embedding pages against the generated
# bindings and the shells' sources, Gradle module names, and the file + symbol of every row
# of the concern tables (docs/architecture.md, "Where is …?": at least 25 answered rows).
#
#   scripts/check-docs.sh                     # builds the CLI and the bindings if missing
#   SUNSTORM_SKIP_BUILD=1 scripts/check-docs.sh   # use what scripts/test-bindings.sh built
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
bin="$CARGO_TARGET_DIR/debug/sunstorm"
gen="$root/bindings/generated"
if [ "${SUNSTORM_SKIP_BUILD:-0}" != 1 ]; then
    [ -x "$bin" ] && [ -f "$gen/kotlin/xyz/sigilvault/sunstorm/sunstorm_ffi.kt" ] \
        || SUNSTORM_EXTRA_PACKAGES="-p sunstorm-cli" scripts/bindings.sh >/dev/null
fi
[ -x "$bin" ] || { echo "check-docs: FAILED: no sunstorm CLI at $bin" >&2; exit 1; }
[ -f "$gen/swift/Sunstorm.swift" ] || { echo "check-docs: FAILED: no generated bindings in $gen" >&2; exit 1; }
python3 "$root/scripts/lib/check_docs.py" "$root" "$bin" || { echo "check-docs: FAILED (fix the docs or the code they quote)" >&2; exit 1; }
