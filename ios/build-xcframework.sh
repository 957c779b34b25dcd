#!/usr/bin/env bash
# Builds build/SunstormFFI.xcframework (device + simulator static libraries, the C header
# and module map) and copies the generated Swift bindings into Sources/Sunstorm.
# macOS only (needs xcodebuild, lipo). Run from anywhere:  ios/build-xcframework.sh
#
# Bindings are generated from the UNSTRIPPED host library (uniffi reads its symbol table);
# the static libraries shipped in the XCFramework are release builds with LTO.
set -euo pipefail

if [ "$(uname -s)" != "Darwin" ]; then
    echo "build-xcframework.sh: needs macOS with Xcode (xcodebuild, lipo); this is $(uname -s)" >&2
    exit 1
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
cd "$root"

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "${targets[@]}"

for t in "${targets[@]}"; do
    # The shipped way (the release profile's LTO really applies; no test hooks).
    scripts/build-mobile-lib.sh --target "$t" --crate-type staticlib >/dev/null
done

# Swift bindings + header + modulemap (generated from the host dylib, unstripped).
scripts/bindings.sh >/dev/null
gen="$root/bindings/generated/swift"
# Sources/Sunstorm/CancellableCore.swift (Task cancellation, docs/ios.md) must override
# exactly the async methods of the Swift just generated.
SUNSTORM_SWIFT="$gen/Sunstorm.swift" scripts/check-swift-wrappers.sh

build="$here/build"
rm -rf "$build"
mkdir -p "$build/headers" "$build/ios-sim"
cp "$gen/SunstormFFI.h" "$build/headers/"
# An XCFramework's headers need the module map named module.modulemap.
cp "$gen/SunstormFFI.modulemap" "$build/headers/module.modulemap"

lipo -create \
    "$target_dir/aarch64-apple-ios-sim/release/libsunstorm_ffi.a" \
    "$target_dir/x86_64-apple-ios/release/libsunstorm_ffi.a" \
    -output "$build/ios-sim/libsunstorm_ffi.a"

xcodebuild -create-xcframework \
    -library "$target_dir/aarch64-apple-ios/release/libsunstorm_ffi.a" -headers "$build/headers" \
    -library "$build/ios-sim/libsunstorm_ffi.a" -headers "$build/headers" \
    -output "$build/SunstormFFI.xcframework"

cp "$gen/Sunstorm.swift" "$here/Sources/Sunstorm/Sunstorm.swift"
echo "built $build/SunstormFFI.xcframework and Sources/Sunstorm/Sunstorm.swift"
