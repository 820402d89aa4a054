// swift-tools-version: 6.0
// A2BSEngine: speech (16 kHz PCM) to the 52 ARKit blendshapes with an a2bs Core ML bundle. No UI.
//
// Swift 6 language mode (complete concurrency checking). The platform-independent core (manifest, frame
// schedule, sample buffer, context ring, engine loop, background queue, and the sample face's lip geometry)
// builds and is tested anywhere Swift runs, Linux included (`swift build && swift test`); the Core ML runner
// and model loader (`#if canImport(CoreML)`, CoreMLRunner.swift) and the AVAudioConverter wrapper
// (`#if canImport(AVFoundation)`, AudioConverter.swift) compile only on Apple platforms.
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
