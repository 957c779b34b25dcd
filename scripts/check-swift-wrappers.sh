#!/usr/bin/env bash
# Checks that ios/Sources/Sunstorm/CancellableCore.swift wraps every async method of the
# generated Swift `SunstormCore` (same parameters and defaults), so that cancelling a Swift
# Task stops the Rust call (uniffi issue #2771; docs/ios.md, "Cancellation"). The file is
# generated from the bindings by scripts/lib/swift_wrappers.py, which also tests itself.
#
#   scripts/check-swift-wrappers.sh                 # builds the bindings if missing
#   scripts/check-swift-wrappers.sh --write         # regenerate the wrapper after an API change
#   SUNSTORM_SKIP_BUILD=1 scripts/check-swift-wrappers.sh   # use bindings/generated as it is
#   SUNSTORM_SWIFT=path/Sunstorm.swift scripts/check-swift-wrappers.sh   # other generated file
#
# No Swift toolchain is needed (none exists on the Linux machines); the Swift is compiled
# on macOS by ios/build-xcframework.sh, which runs this check first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mode=--check
case "${1:-}" in
    --write) mode=--write ;;
    "") ;;
    *) echo "check-swift-wrappers: unknown argument '$1' (--write or nothing)" >&2; exit 2 ;;
esac
gen="${SUNSTORM_SWIFT:-$root/bindings/generated/swift/Sunstorm.swift}"
if [ ! -f "$gen" ] && [ -z "${SUNSTORM_SWIFT:-}" ] && [ "${SUNSTORM_SKIP_BUILD:-0}" != 1 ]; then
    scripts/bindings.sh >/dev/null
fi
[ -f "$gen" ] || { echo "check-swift-wrappers: FAILED: no generated Swift at $gen" >&2; exit 1; }

py="$root/scripts/lib/swift_wrappers.py"
python3 "$py" --self-test
python3 "$py" "$mode" "$gen" "$root/ios/Sources/Sunstorm/CancellableCore.swift"
