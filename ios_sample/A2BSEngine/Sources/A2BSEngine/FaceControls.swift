import Foundation

// The face controls: what an animator turns per character on top of the model's curves (lower-face, upper-face and
// expression strength, a lip-opening offset, smoothing per region). A port of the Python reference
// `core/controls.py` (docs/CONTROLS.md, algorithm version 1): the same steps in the same order in Double arithmetic,
// one state (the smoothing's last frame, in Double), so the same curves give the same frames to 1e-6 whatever the
// chunking (ControlsReplayTests.swift, against cases Python writes). The values come from the manifest's `controls`
// section; a manifest without it means the defaults, which give the model's curves bit for bit.

/// `controls`: the algorithm version and the values the app's sliders start at.
public struct A2BSControlsSection: Decodable, Equatable, Sendable {
    public let version: Int
    public let params: A2BSFaceControls

    enum CodingKeys: String, CodingKey {
        case version
        case params
    }

    /// The algorithm this engine implements (core/controls.py's CONTROLS_VERSION).
    public static let supportedVersion = 1

    public init(version: Int = A2BSControlsSection.supportedVersion, params: A2BSFaceControls) {
        self.version = version
        self.params = params
    }

    /// As the Python loader: the version this engine implements and every control inside its limits; one message
    /// naming the key otherwise.
    public func validate() throws {
        guard version == A2BSControlsSection.supportedVersion else {
            throw A2BSFaceControls.fail(
                "'controls.version' is \(version), this engine runs version \(A2BSControlsSection.supportedVersion)")
        }
        try params.validate()
    }
}

/// The controls' values (`FaceControls` in core/controls.py); the defaults leave the model's curves as they are.
public struct A2BSFaceControls: Decodable, Equatable, Sendable {
    /// Scales the jaw, mouth, tongue and cheekPuff; 0: at rest.
    public var lowerStrength = 1.0
    /// Scales the eyes, brows, cheekSquint and noseSneer; 0: still.
    public var upperStrength = 1.0
    /// Scales the style-driven shapes (smile, frown, dimple, squints, eyeWide, sneer).
    public var expressionStrength = 1.0
    /// Added to the lip opening (jawOpen - mouthClose) where the lips are apart.
    public var lipOffset = 0.0
    /// Extra smoothing of the lower face: time constant, s (0: none).
    public var lowerSmoothingS = 0.0
    /// Extra smoothing of the upper face: time constant, s (0: none).
    public var upperSmoothingS = 0.0

    public init(lowerStrength: Double = 1.0, upperStrength: Double = 1.0, expressionStrength: Double = 1.0,
                lipOffset: Double = 0.0, lowerSmoothingS: Double = 0.0, upperSmoothingS: Double = 0.0) {
        self.lowerStrength = lowerStrength
        self.upperStrength = upperStrength
        self.expressionStrength = expressionStrength
        self.lipOffset = lipOffset
        self.lowerSmoothingS = lowerSmoothingS
        self.upperSmoothingS = upperSmoothingS
    }

    /// The manifest keys, in the order of core/controls.py (and of the app's sliders).
    public static let keys = [
        "lower_strength", "upper_strength", "expression_strength", "lip_offset", "lower_smoothing_s",
        "upper_smoothing_s",
    ]

    /// What a manifest may hold, per key (core/controls.py's LIMITS; tests/samples/test_ios_sample.py compares them).
    public static let limits: [String: ClosedRange<Double>] = [
        "lower_strength": 0.0...2.0,
        "upper_strength": 0.0...2.0,
        "expression_strength": 0.0...2.0,
        "lip_offset": -0.3...0.3,
        "lower_smoothing_s": 0.0...1.0,
        "upper_smoothing_s": 0.0...1.0,
    ]

    /// A control by its manifest key (for sliders and the manifest); an unknown key reads 0 and writes nothing.
    public subscript(key: String) -> Double {
        get {
            switch key {
            case "lower_strength": return lowerStrength
            case "upper_strength": return upperStrength
            case "expression_strength": return expressionStrength
            case "lip_offset": return lipOffset
            case "lower_smoothing_s": return lowerSmoothingS
            case "upper_smoothing_s": return upperSmoothingS
            default: return 0
            }
        }
        set {
            switch key {
            case "lower_strength": lowerStrength = newValue
            case "upper_strength": upperStrength = newValue
            case "expression_strength": expressionStrength = newValue
            case "lip_offset": lipOffset = newValue
            case "lower_smoothing_s": lowerSmoothingS = newValue
            case "upper_smoothing_s": upperSmoothingS = newValue
            default: break
            }
        }
    }

    static func fail(_ message: String) -> A2BSError { .incompatibleBundle("controls: \(message)") }

    /// Every control present and a number, no unknown key (what only decoding sees); the limits are `validate()`'s.
    public init(from decoder: any Decoder) throws {
        struct Key: CodingKey {
            let stringValue: String
            init(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }
        let container = try decoder.container(keyedBy: Key.self)
        let unknown = container.allKeys.map(\.stringValue).filter { A2BSFaceControls.limits[$0] == nil }.sorted()
        if let unknown = unknown.first {
            throw A2BSFaceControls.fail("'controls.params.\(unknown)' is not a face control")
        }
        for key in A2BSFaceControls.keys {
            let limits = A2BSFaceControls.limits[key] ?? 0...0
            guard container.contains(Key(stringValue: key)) else {
                throw A2BSFaceControls.fail("'controls.params.\(key)' is missing")
            }
            guard let value = try? container.decode(Double.self, forKey: Key(stringValue: key)) else {
                throw A2BSFaceControls.fail(
                    "'controls.params.\(key)' must be a number in [\(limits.lowerBound), \(limits.upperBound)]")
            }
            self[key] = value
        }
    }

    /// Every control inside its limits; one message naming the key otherwise.
    public func validate() throws {
        for key in A2BSFaceControls.keys {
            guard let limits = A2BSFaceControls.limits[key] else {
                throw A2BSFaceControls.fail("no limits for 'controls.params.\(key)'")
            }
            let value = self[key]
            guard limits.contains(value) else {
                throw A2BSFaceControls.fail(
                    "'controls.params.\(key)' must be in [\(limits.lowerBound), \(limits.upperBound)], got \(value)")
            }
        }
    }

    /// Each control moved inside its limits (what a slider or a caller hands the engine at run time).
    public func clamped() -> A2BSFaceControls {
        var out = self
        for key in A2BSFaceControls.keys {
            guard let limits = A2BSFaceControls.limits[key] else { continue }
            out[key] = self[key].isNaN ? limits.lowerBound : min(limits.upperBound, max(limits.lowerBound, self[key]))
        }
        return out
    }
}

/// The controls over a stream of frames (`ControlsFilter` in core/controls.py). Per frame, per shape i (x the model's
/// value, all in Double):
/// 1. smoothing: y = x + a * (y_prev - x), a = exp(-1 / (tau * fps)) for the shape's region (a = 0 at tau 0); the
///    first frame after a reset is y = x;
/// 2. strength: v = clip(y * gain, 0, 1), gain = region strength * (expression strength if i is a style shape);
/// 3. lip offset d: where the lips are apart (g = jawOpen - mouthClose > 0), g' = max(0, g + d * min(1, g / sealGap))
///    and mouthClose = clip(jawOpen - g', 0, 1); sealed lips stay sealed.
///
/// At the defaults the frames come back as they are, bit for bit (as `a2bs infer`, which skips the identity), even
/// values outside [0, 1] that step 2 would clip; the smoothing's state still follows them.
///
/// `controls` may change at run time (sliders): the smoothing's state is kept (no jump), and the new values apply
/// from the next frame; only `reset()` (a new stream) forgets it. Not thread-safe: use it from the engine's queue.
public final class A2BSControlsFilter {
    /// The jaw, mouth, tongue and cheekPuff: the lower face (core/blendshapes.py LOWER_FACE); every other shape is
    /// the upper face.
    public static let lowerFace = [
        "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight",
        "mouthLeft", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft",
        "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper",
        "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft",
        "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "tongueOut", "cheekPuff"
    ]
    /// The shapes the speaking style drives, which the expression strength scales (core/blendshapes.py STYLE_SHAPES).
    public static let styleShapes = [
        "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "browDownLeft", "browDownRight",
        "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight",
        "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight"
    ]
    /// A lip gap (jawOpen - mouthClose) up to this counts as sealed: the offset ramps in over it (core/constants.py
    /// SEAL_GAP).
    public static let sealGap = 0.03

    public let fps: Int
    private let lower: [Bool]
    private let style: [Bool]
    private let jaw: Int
    private let close: Int
    private var a: [Double] = []
    private var gain: [Double] = []
    private var previous: [Double]?
    private var values: A2BSFaceControls

    /// The controls in use; a new value is clamped to the limits and applies from the next frame, keeping the
    /// smoothing's state.
    public var controls: A2BSFaceControls {
        get { values }
        set {
            values = newValue.clamped()
            configure()
        }
    }

    /// `names`: the blendshape names of the curves (the manifest's `blendshapes`).
    public init(controls: A2BSFaceControls, fps: Int, names: [String]) throws {
        try controls.validate()
        guard fps > 0 else { throw A2BSError.incompatibleBundle("the face controls need fps > 0, got \(fps)") }
        guard let jaw = names.firstIndex(of: "jawOpen"), let close = names.firstIndex(of: "mouthClose") else {
            throw A2BSError.incompatibleBundle("the face controls need jawOpen and mouthClose")
        }
        self.fps = fps
        self.jaw = jaw
        self.close = close
        lower = names.map(A2BSControlsFilter.lowerFace.contains)
        style = names.map(A2BSControlsFilter.styleShapes.contains)
        values = controls
        configure()
    }

    /// The filter of a manifest: its `controls` section, or the defaults when it has none (older bundles).
    public convenience init(manifest: A2BSManifest) throws {
        try self.init(controls: manifest.controls?.params ?? A2BSFaceControls(), fps: manifest.fps,
                      names: manifest.blendshapes)
    }

    /// The one-pole filter's a for a time constant: exp(-1 / (tau * fps)); 0 (no smoothing) at tau 0.
    static func smoothingFactor(_ tau: Double, fps: Int) -> Double {
        tau > 0.0 ? exp(-1.0 / (tau * Double(fps))) : 0.0
    }

    private func configure() {
        let c = values
        let lowerA = A2BSControlsFilter.smoothingFactor(c.lowerSmoothingS, fps: fps)
        let upperA = A2BSControlsFilter.smoothingFactor(c.upperSmoothingS, fps: fps)
        a = lower.map { $0 ? lowerA : upperA }
        gain = zip(lower, style).map { ($0 ? c.lowerStrength : c.upperStrength) * ($1 ? c.expressionStrength : 1.0) }
    }

    /// Back to the start of a stream: the next frame is not smoothed with anything.
    public func reset() {
        previous = nil
    }

    /// The next frame: the model's curves (one value per name) -> the curves with the controls applied.
    public func process(_ curves: [Float]) -> [Float] {
        precondition(curves.count == a.count, "the face controls take \(a.count) values a frame, got \(curves.count)")
        let x = curves.map(Double.init)
        var y = x
        if let previous {
            for i in y.indices { y[i] = x[i] + a[i] * (previous[i] - x[i]) }
        }
        previous = y
        if values == A2BSFaceControls() { return curves }
        var v = y
        for i in v.indices { v[i] = min(1.0, max(0.0, y[i] * gain[i])) }
        let d = values.lipOffset
        if d != 0.0 {
            let gap = v[jaw] - v[close]
            if gap > 0.0 {
                let moved = max(0.0, gap + d * min(1.0, gap / A2BSControlsFilter.sealGap))
                v[close] = min(1.0, max(0.0, v[jaw] - moved))
            }
        }
        return v.map(Float.init)
    }

    /// Frames in order (core/controls.py's `process` over a block).
    public func process(_ curves: [[Float]]) -> [[Float]] {
        curves.map { process($0) }
    }
}
