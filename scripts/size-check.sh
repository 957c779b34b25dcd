#!/usr/bin/env bash
# Size budget of the mobile library: builds the release cdylib exactly as shipped
# (scripts/build-mobile-lib.sh: fat LTO, opt-level "z", panic = "unwind", no `testing`
# feature), strips a COPY (the unstripped original is what bindings are generated from),
# reports its size and fails above 4 MiB. x86_64 here stands in for arm64. Also refuses
# btleplug and uniffi's bindgen in the library's dependency tree, and any test hook
# (`debug_force_panic`, `debug_wait`: feature `testing`) among its symbols.
#
#   scripts/size-check.sh           # check
#   scripts/size-check.sh --top     # also list the heaviest crates and symbols
#   scripts/size-check.sh --report  # also list what weighs, and exit 0 even when over budget
#                                   # (to explore; the test command runs the plain check)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
budget=4194304

tree="$(cargo tree -p sunstorm-ffi -e normal --prefix none 2>/dev/null)"
# The shells bring BLE (BleCentral) and HTTPS (HttpClient): no radio stack, no TLS stack,
# no bindgen in the library (ADR 0006).
for banned in btleplug uniffi_bindgen uniffi-bindgen bindgen reqwest rustls hyper; do
    if grep -q "^$banned v" <<<"$tree"; then
        echo "size-check: FAILED: $banned is in the mobile library's dependencies" >&2
        exit 1
    fi
done

# x86_64 stands in for arm64, built as arm64 is: linked as Android links (packed relative
# relocations, `--link-as-android`), and curve25519-dalek on its serial backend — its AVX2
# backend exists only on x86_64; on arm64 it compiles the serial one (ADR 0031). The flag
# changes every crate's fingerprint, so this build has a target directory of its own.
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }--cfg curve25519_dalek_backend=\"serial\""
export CARGO_TARGET_DIR="$target_dir/arm64-stand-in"
t0=$(date +%s)
lib="$(scripts/build-mobile-lib.sh --link-as-android | tail -n 1)"
build_s=$(( $(date +%s) - t0 ))

name="$(basename "$lib")"
[ -f "$lib" ] || { echo "size-check: no library at $lib" >&2; exit 1; }
# The test hooks (feature `testing`) stay out of the shipped library: neither their uniffi
# scaffolding (exported) nor their metadata (what bindings are generated from).
hooks="$(nm "$lib" 2>/dev/null | grep -i -E 'debug_force_panic|debug_wait' || true)"
if [ -n "$hooks" ]; then
    echo "size-check: FAILED: test hooks in the mobile library (built with feature testing?):" >&2
    head -n 5 <<<"$hooks" >&2
    exit 1
fi
mkdir -p "$target_dir/size-check"
copy="$target_dir/size-check/$name"
cp "$lib" "$copy"
strip "$copy"
unstripped=$(wc -c <"$lib")
size=$(wc -c <"$copy")

printf 'size-check: %s (release, LTO, opt z, panic=unwind, no test hooks, built in %ss)\n' "$name" "$build_s"
printf 'size-check: unstripped %d bytes, stripped %d bytes (%.2f MiB); budget %d bytes (4 MiB)\n' \
    "$unstripped" "$size" "$(python3 -c "print($size / 1048576)")" "$budget"

if [ "${1:-}" = "--top" ] || [ "${1:-}" = "--report" ] || [ "$size" -gt "$budget" ]; then
    nm --size-sort -S -C "$lib" 2>/dev/null | python3 -c '
import sys, collections
tot = collections.Counter(); syms = []
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) < 4:
        continue
    size, name = int(parts[1], 16), parts[3]
    syms.append((size, name))
    n = name.lstrip("<_")
    crate = n.split("::")[0] if "::" in n else "(C / unnamed)"
    tot[crate] += size
print("size-check: heaviest crates (symbol bytes in the unstripped library, by first path segment):")
for crate, size in tot.most_common(25):
    print(f"{size:10d}  {crate}")
print("size-check: heaviest symbols:")
for size, name in sorted(syms, reverse=True)[:15]:
    print(f"{size:10d}  {name[:140]}")
'
fi

if [ "$size" -gt "$budget" ] && [ "${1:-}" = "--report" ]; then
    echo "size-check: OVER BUDGET: stripped library is $size bytes, above the 4 MiB budget"
    exit 0
fi
if [ "$size" -gt "$budget" ]; then
    echo "size-check: FAILED: stripped library is $size bytes, above the 4 MiB budget" >&2
    exit 1
fi
echo "size-check: OK"
