// swift-tools-version: 5.9

// The a2bs sample app as an App Playground-style package: open this .swiftpm folder in Xcode 16 or newer and
// run it on an iPhone (this manifest is tools 5.9, but the engine, the local package ../A2BSEngine, is
// swift-tools-version 6.0, which Xcode 15 cannot read). The installed bundle
// (`a2bs-convert ios --install-into ios_sample`) lands in App/Resources/A2BSBundle, copied into the app as is
// (.copy keeps the folder layout the manifest's file paths refer to; the .mlpackages are compiled on the
// device at first launch, see A2BSModelLoader).

import AppleProductTypes
import PackageDescription

let package = Package(
    name: "A2BSSample",
    platforms: [
        .iOS("16.0")
    ],
    products: [
        .iOSApplication(
            name: "A2BSSample",
            targets: ["AppModule"],
            bundleIdentifier: "com.example.a2bs.sample",
            teamIdentifier: "",
            displayVersion: "1.0",
            bundleVersion: "1",
            appIcon: .placeholder(icon: .mic),
            accentColor: .presetColor(.indigo),
            supportedDeviceFamilies: [
                .pad,
                .phone
            ],
            supportedInterfaceOrientations: [
                .portrait,
                .portraitUpsideDown(.when(deviceFamilies: [.pad]))
            ],
            capabilities: [
                .microphone(purposeString: "The microphone drives the face: speech is turned into blendshapes on this device and never leaves it.")
            ]
        )
    ],
    dependencies: [
        .package(path: "../A2BSEngine")
    ],
    targets: [
        .executableTarget(
            name: "AppModule",
            dependencies: [
                .product(name: "A2BSEngine", package: "A2BSEngine")
            ],
            path: "App",
            resources: [
                .copy("Resources")
            ]
        )
    ]
)
