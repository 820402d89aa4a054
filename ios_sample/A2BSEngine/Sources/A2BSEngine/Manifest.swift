import Foundation

// The bundle's manifest.json, decoded with Codable. Only the keys the engine and the sample app use are
// declared; the rest of the file (mel and emotion statistics, call_sequence, ...) is reference material.
// Every JSON key the Swift code reads is spelled out in a CodingKeys enum in this file; the replay test
// (Tests/A2BSEngineTests/ReplayTests.swift, run by tests/test_ios_sample.py) decodes a freshly built bundle.

/// Top level of `manifest.json`.
public struct A2BSManifest: Decodable, Equatable, Sendable {
    public let format: String
    public let formatVersion: Int
    public let platform: String
    public let fps: Int
    public let sampleRate: Int
    /// N: the step model sees the last N - 1 encoded frames (its `context` input) plus the current one.
    public let contextFrames: Int
    public let timeline: A2BSTimeline
    /// The blendshape names in the order of the model outputs.
    public let blendshapes: [String]
    /// UI grouping (jaw, mouth, eyes, brows, cheeks_nose). JSON object order is lost by JSONDecoder:
    /// use `orderedGroups` for display.
    public let blendshapeGroups: [String: [String]]
    public let initialState: A2BSInitialState
    public let emotion: A2BSEmotion
    public let models: A2BSModels
    public let defaultVariant: String
    public let variants: [String]
    public let files: [A2BSFileEntry]
    /// Which checkpoint the models come from; optional (older bundles and hand-written test manifests lack it).
    public let checkpoint: A2BSCheckpointInfo?
    /// The life layer's algorithm and parameters (LifeLayer.swift); nil in bundles made before it: the layer off.
    public let life: A2BSLifeSection?
    /// The face controls' starting values (FaceControls.swift); nil in bundles made before them: the defaults.
    public let controls: A2BSControlsSection?

    /// False when the bundle says its checkpoint is untrained (random weights: the face will not follow the
    /// speech); apps should say so. A bundle without the key counts as trained.
    public var isTrained: Bool { checkpoint?.trained ?? true }

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case platform
        case fps
        case sampleRate = "sample_rate"
        case contextFrames = "context_frames"
        case timeline
        case blendshapes
        case blendshapeGroups = "blendshape_groups"
        case initialState = "initial_state"
        case emotion
        case models
        case defaultVariant = "default_variant"
        case variants
        case files
        case checkpoint
        case life
        case controls
    }
}

/// `checkpoint`: where the models come from.
public struct A2BSCheckpointInfo: Decodable, Equatable, Sendable {
    /// False for a bundle converted from an untrained (randomly initialised) checkpoint.
    public let trained: Bool?

    enum CodingKeys: String, CodingKey {
        case trained
    }
}

/// The three keys that say what a manifest is, decoded (and checked) before anything else, so a bundle for
/// another platform or format version is refused with a clear message instead of a decoding error later.
struct A2BSBundleHeader: Decodable, Equatable, Sendable {
    let format: String?
    let formatVersion: Int?
    let platform: String?

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case platform
    }

    func check() throws {
        guard format == A2BSContract.bundleFormat else {
            throw A2BSError.incompatibleBundle(
                "manifest.json has format \(format.map { "'\($0)'" } ?? "none"), not '\(A2BSContract.bundleFormat)': "
                    + "install a bundle built by `a2bs-convert ios`")
        }
        guard formatVersion == A2BSContract.formatVersion else {
            throw A2BSError.incompatibleBundle(
                "bundle format_version \(formatVersion.map(String.init) ?? "none"), this engine reads version "
                    + "\(A2BSContract.formatVersion): rebuild the bundle with this a2bs version (`a2bs-convert ios`)")
        }
        guard platform == A2BSContract.platform else {
            throw A2BSError.incompatibleBundle(
                "this is a bundle for \(platform.map { "'\($0)'" } ?? "no platform"), not "
                    + "'\(A2BSContract.platform)': build one with `a2bs-convert ios`")
        }
    }
}

/// `timeline`: where each mel frame's PCM window sits and how far the output lags the input.
public struct A2BSTimeline: Decodable, Equatable, Sendable {
    /// PCM samples per front-end call (the STFT size); the window of mel frame j is centred on its centre sample.
    public let window: Int
    /// L: the step call for mel frame j produces output frame j - L.
    public let lookaheadFrames: Int
    /// Sound-to-face delay before compute, in milliseconds (reference; the engine derives it from the schedule).
    public let latencyMs: Double

    enum CodingKeys: String, CodingKey {
        case window
        case lookaheadFrames = "lookahead_frames"
        case latencyMs = "latency_ms"
    }
}

/// `initial_state`: what the mel history and the context ring hold before the first call (digital silence).
public struct A2BSInitialState: Decodable, Equatable, Sendable {
    /// The mel history, oldest first (one row per history slot of the step model's `mel_frames` input).
    public let melFrames: [[Float]]
    /// Every row of the context ring buffer starts as this encoded frame.
    public let contextFrame: [Float]

    enum CodingKeys: String, CodingKey {
        case melFrames = "mel_frames"
        case contextFrame = "context_frame"
    }
}

/// `emotion`: the step model's emotion input. Apps pass `neutral` (there is no openSMILE on device).
public struct A2BSEmotion: Decodable, Equatable, Sendable {
    public let dim: Int
    public let neutral: [Float]

    enum CodingKeys: String, CodingKey {
        case dim
        case neutral
    }
}

/// `models`: input and output specs of both models.
public struct A2BSModels: Decodable, Equatable, Sendable {
    public let frontEnd: A2BSModelSpec
    public let step: A2BSModelSpec

    enum CodingKeys: String, CodingKey {
        case frontEnd = "front_end"
        case step
    }
}

/// Inputs and outputs of one model, in the order the contract gives them meaning (see `A2BSContract`).
public struct A2BSModelSpec: Decodable, Equatable, Sendable {
    public let inputs: [A2BSTensorSpec]
    public let outputs: [A2BSTensorSpec]

    enum CodingKeys: String, CodingKey {
        case inputs
        case outputs
    }
}

/// One model input or output: the feature name in the Core ML model, its shape and dtype.
public struct A2BSTensorSpec: Decodable, Equatable, Sendable {
    public let name: String
    public let shape: [Int]
    public let dtype: String

    enum CodingKeys: String, CodingKey {
        case name
        case shape
        case dtype
    }

    /// Number of scalars (product of the shape).
    public var count: Int { shape.reduce(1, *) }
}

/// One entry of `files`: a model package of the bundle.
public struct A2BSFileEntry: Decodable, Equatable, Sendable {
    /// Relative to the bundle folder (an `.mlpackage` directory for iOS bundles).
    public let path: String
    /// Of the package's files; used as the cache key of the compiled model.
    public let sha256: String
    public let bytes: Int
    /// "front_end" or "step" (`A2BSContract.frontEndRole`, `A2BSContract.stepRole`).
    public let role: String
    public let variant: String
    public let precision: String?

    enum CodingKeys: String, CodingKey {
        case path
        case sha256
        case bytes
        case role
        case variant
        case precision
    }
}

// MARK: - Loading and derived values

public extension A2BSManifest {
    /// Decodes `manifest.json` from a bundle folder and checks it is a bundle this engine can run.
    static func load(bundleDirectory: URL) throws -> A2BSManifest {
        let url = bundleDirectory.appendingPathComponent(A2BSContract.manifestFile)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw A2BSError.missingBundle(bundleDirectory.path)
        }
        return try decode(Data(contentsOf: url))
    }

    /// Decodes and validates `manifest.json` data. The format, its version and the platform are checked
    /// first, then the whole manifest is decoded and its names and sizes checked (`validate()`).
    static func decode(_ data: Data) throws -> A2BSManifest {
        try JSONDecoder().decode(A2BSBundleHeader.self, from: data).check()
        let manifest = try JSONDecoder().decode(A2BSManifest.self, from: data)
        try manifest.validate()
        return manifest
    }

    /// Groups in display order: the contract's order first, then any group a newer bundle adds.
    var orderedGroups: [A2BSBlendshapeGroup] {
        let known = A2BSContract.groupOrder.filter { blendshapeGroups[$0] != nil }
        let extra = blendshapeGroups.keys.filter { !A2BSContract.groupOrder.contains($0) }.sorted()
        return (known + extra).map { A2BSBlendshapeGroup(name: $0, members: blendshapeGroups[$0] ?? []) }
    }

    /// The model file for a role; the front end is shared by all variants, the step model has one per variant
    /// (same rule as the Python reference, `runtime/bundle_inference.py::_file`).
    func file(role: String, variant: String? = nil) throws -> A2BSFileEntry {
        let wanted = variant ?? defaultVariant
        let match = files.first { $0.role == role && (role == A2BSContract.frontEndRole || $0.variant == wanted) }
        guard let entry = match else {
            throw A2BSError.incompatibleBundle("no \(role) model for variant \(wanted) (variants: \(variants))")
        }
        return entry
    }

    /// Checks that the inputs and outputs are the ones this engine drives, in the same order, and that every
    /// size agrees across the manifest. Sizes are never hard-coded: they all come from here.
    func validate() throws {
        func fail(_ message: String) -> A2BSError { .incompatibleBundle(message) }
        try A2BSBundleHeader(format: format, formatVersion: formatVersion, platform: platform).check()
        let names = (
            models.frontEnd.inputs.map(\.name), models.frontEnd.outputs.map(\.name),
            models.step.inputs.map(\.name), models.step.outputs.map(\.name)
        )
        guard names.0 == A2BSContract.frontEndInputs, names.1 == A2BSContract.frontEndOutputs,
              names.2 == A2BSContract.stepInputs, names.3 == A2BSContract.stepOutputs
        else { throw fail("unexpected model inputs/outputs \(names)") }
        let all = models.frontEnd.inputs + models.frontEnd.outputs + models.step.inputs + models.step.outputs
        guard all.allSatisfy({ $0.dtype == A2BSContract.float32 }) else { throw fail("all tensors must be float32") }
        let sizes = A2BSSizes(self)
        guard models.frontEnd.inputs[0].count == timeline.window,
              models.step.inputs[0].count == sizes.melHistory * sizes.melBins,
              initialState.melFrames.count == sizes.melHistory,
              initialState.melFrames.allSatisfy({ $0.count == sizes.melBins }),
              models.step.inputs[1].count == (contextFrames - 1) * sizes.contextWidth,
              initialState.contextFrame.count == sizes.contextWidth,
              models.step.inputs[2].count == emotion.neutral.count,
              models.step.inputs[3].count == blendshapes.count,
              models.step.outputs[0].count == blendshapes.count,
              models.step.outputs[1].count == blendshapes.count,
              fps > 0, sampleRate > 0, timeline.lookaheadFrames >= 0, contextFrames > 1
        else { throw fail("sizes in the manifest do not agree with each other") }
        guard variants.contains(defaultVariant) else { throw fail("default_variant \(defaultVariant) not in variants") }
        try life?.validate()
        try controls?.validate()
    }
}

/// Sizes derived from the manifest's tensor specs (the engine's only source of numbers).
public struct A2BSSizes: Equatable, Sendable {
    /// Values per mel frame (front-end output).
    public let melBins: Int
    /// Mel frames per step call (oldest first).
    public let melHistory: Int
    /// Values per encoded frame (one context ring row).
    public let contextWidth: Int

    public init(_ manifest: A2BSManifest) {
        melBins = manifest.models.frontEnd.outputs[0].count
        melHistory = manifest.initialState.melFrames.count
        contextWidth = manifest.models.step.outputs[2].count
    }
}

public enum A2BSError: Error, LocalizedError, Equatable, Sendable {
    case missingBundle(String)
    case incompatibleBundle(String)
    case model(String)

    public var errorDescription: String? {
        switch self {
        case .missingBundle(let path):
            return "No a2bs bundle at \(path). Run `a2bs-convert ios --install-into ios_sample` and rebuild."
        case .incompatibleBundle(let why): return "Incompatible a2bs bundle: \(why)"
        case .model(let why): return "Core ML: \(why)"
        }
    }
}
