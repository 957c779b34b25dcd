// swift-tools-version:5.9
// Sunstorm core for iOS: the generated Swift bindings (Sources/Sunstorm/Sunstorm.swift,
// copied in by build-xcframework.sh) over the Rust library packaged as an XCFramework
// (build/SunstormFFI.xcframework, which also carries the C header and module map).
//
// Build first, on a macOS host with Xcode and the Rust iOS targets:
//     ios/build-xcframework.sh
// Swift cannot be compiled on the Linux development machines of this project; the
// bindings are generated there (scripts/bindings.sh) but only compiled here, on macOS.
import PackageDescription

let package = Package(
    name: "Sunstorm",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Sunstorm", targets: ["Sunstorm"]),
    ],
    targets: [
        .binaryTarget(name: "SunstormFFI", path: "build/SunstormFFI.xcframework"),
        .target(
            name: "Sunstorm",
            dependencies: ["SunstormFFI"],
            path: "Sources/Sunstorm"
        ),
    ],
    // Swift 5 language mode with complete concurrency checking: the uniffi 0.32 bindings
    // use only synchronous foreign traits (see docs/embedding.md, "Swift 6"), the case
    // uniffi has made strict-concurrency clean.
    swiftLanguageVersions: [.v5]
)
