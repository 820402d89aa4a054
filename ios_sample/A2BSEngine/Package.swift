// swift-tools-version: 5.9
// A2BSEngine: speech (16 kHz PCM) to the 52 ARKit blendshapes with an a2bs Core ML bundle. No UI.
// `swift test` on a Mac runs the pure-logic tests (schedule, sample buffer, ring buffer, manifest, engine loop
// with fake models); the Core ML wrappers need a bundle and run in the sample app.
import PackageDescription

let package = Package(
    name: "A2BSEngine",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "A2BSEngine", targets: ["A2BSEngine"]),
    ],
    targets: [
        .target(name: "A2BSEngine"),
        .testTarget(name: "A2BSEngineTests", dependencies: ["A2BSEngine"]),
    ]
)
