import Foundation

/// Where the app looks for the installed bundle. These names must agree with ios_sample/a2bs-sample.json
/// (`bundle_dir`, `clip`) and with the `.copy("Resources")` rule in Package.swift; tests/test_ios_sample.py
/// checks that they do.
enum SampleResources {
    /// The resource folder of the app target (App/Resources), copied into the app as is.
    static let resourcesFolder = "Resources"
    /// The folder inside it that `a2bs-convert ios --install-into ios_sample` fills.
    static let bundleFolder = "A2BSBundle"
    /// The speech clip the installer copies next to the models (16 kHz mono 16-bit WAV).
    static let clipFile = "sample_clip.wav"

    /// The installed bundle folder inside the app, if the resources were built in.
    /// Looks in the app bundle and in any resource bundle inside it (`<Package>_<Target>.bundle`, where a package
    /// build may put a target's resources). `Bundle.module` is not used: whether Xcode generates it for an app
    /// playground's own target varies, and its generated accessor traps when the bundle it expects is missing.
    static var bundleDirectory: URL? {
        let resourceBundles = (Bundle.main.urls(forResourcesWithExtension: "bundle", subdirectory: nil) ?? [])
            .compactMap { Bundle(url: $0) }
        for bundle in [Bundle.main] + resourceBundles {
            if let resources = bundle.url(forResource: resourcesFolder, withExtension: nil) {
                return resources.appendingPathComponent(bundleFolder, isDirectory: true)
            }
        }
        return nil
    }

    static var clipURL: URL? { bundleDirectory?.appendingPathComponent(clipFile) }
}
