#!/usr/bin/env bash
# Builds and runs one fuzz target of fuzz/ with libFuzzer on the stable toolchain.
#   scripts/fuzz.sh <target> [seconds] [extra libFuzzer args...]
#   scripts/fuzz.sh --list
# No cargo-fuzz and no nightly needed: cargo builds the target with the same SanitizerCoverage
# flags cargo-fuzz uses (minus AddressSanitizer, which needs -Zsanitizer). See docs/fuzzing.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"

if [[ "${1:-}" == "--list" || -z "${1:-}" ]]; then
  grep -A1 '^\[\[bin\]\]' "$fuzz/Cargo.toml" | sed -n 's/^name = "\(.*\)"/\1/p'
  [[ -n "${1:-}" ]] && exit 0
  echo "usage: $0 <target> [seconds] [libFuzzer args...]" >&2
  exit 64
fi
target="$1"; shift
seconds="${1:-60}"; [[ $# -gt 0 ]] && shift

if ! command -v c++ >/dev/null 2>&1; then
  # libfuzzer-sys compiles libFuzzer (C++) in its build script.
  echo "fuzz.sh: installing a C++ compiler" >&2
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq g++ >/dev/null
  else
    echo "fuzz.sh: need a C++ compiler (c++) for libFuzzer" >&2; exit 1
  fi
fi

host="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$fuzz/target}"
# The flags cargo-fuzz passes (cargo-fuzz/src/project.rs), without -Zsanitizer=address.
# --target keeps them off build scripts and proc-macros.
export RUSTFLAGS="${RUSTFLAGS:-} -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks"

(cd "$fuzz" && cargo build --release --target "$host" --bin "$target")

corpus="$fuzz/corpus/$target"
artifacts="$fuzz/artifacts/$target"
mkdir -p "$corpus" "$artifacts"
seeds="$fuzz/seeds/$target"
dirs=("$corpus")
[[ -d "$seeds" ]] && dirs+=("$seeds")

exec "$CARGO_TARGET_DIR/$host/release/$target" \
  -max_total_time="$seconds" -artifact_prefix="$artifacts/" "$@" "${dirs[@]}"
