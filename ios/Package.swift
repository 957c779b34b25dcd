// swift-tools-version:5.9
// Sunstorm core for iOS: the generated Swift bindings (Sources/Sunstorm/Sunstorm.swift,
// copied in by build-xcframework.sh) over the Rust library packaged as an XCFramework
// (build/SunstormFFI.xcframework, which also carries the C header and module map).
//
// Create the core as `CancellableCore` (Sources/Sunstorm/CancellableCore.swift, committed),
// the `SunstormCore` subclass whose async calls stop in Rust when their Task is cancelled
// (docs/ios.md, "Cancellation").
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
            path: "Sources/Sunstorm",
            // Complete concurrency checking (warnings in Swift 5 mode).
            swiftSettings: [.enableExperimentalFeature("StrictConcurrency")]
        ),
    ],
    // Swift 5 language mode with complete concurrency checking. The foreign traits are
    // synchronous, the path uniffi 0.32.2 makes strict-concurrency clean; its async paths
    // are not yet (docs/ios.md, "Swift 6"; ADR 0002 §3).
    swiftLanguageVersions: [.v5]
)
