import Foundation

// The life layer: blinks, gaze, head motion and brow raises over the model's curves, read from the speech's
// prosody, deterministic for a seed. A port of the Python reference `core/life.py` following docs/LIFE.md
// (algorithm version 1): the same state machine, SplitMix64 streams in UInt64 wrapping arithmetic and float64
// math in the same order, so that the same seed, curves and PCM windows give the same frames to 1e-6
// (ReplayTests.swift's life replay against traces Python writes). Parameters come from the manifest's `life`
// section; a manifest without it means the layer off.

/// `life`: the layer's algorithm version, its random number generator and its parameters (the natural preset).
public struct A2BSLifeSection: Decodable, Equatable, Sendable {
    public let version: Int
    public let rng: String
    public let params: A2BSLifeParams

    enum CodingKeys: String, CodingKey {
        case version
        case rng
        case params
    }

    /// The algorithm and RNG this engine implements (docs/LIFE.md).
    public static let supportedVersion = 1
    public static let supportedRNG = "splitmix64"
}

/// A uniform range [lo, hi], written [lo, hi] in the manifest.
public struct A2BSLifeRange: Decodable, Equatable, Sendable {
    public let lo: Double
    public let hi: Double

    public init(_ lo: Double, _ hi: Double) {
        self.lo = lo
        self.hi = hi
    }

    public init(from decoder: any Decoder) throws {
        var pair = try decoder.unkeyedContainer()
        lo = try pair.decode(Double.self)
        hi = try pair.decode(Double.self)
        guard pair.isAtEnd else {
            throw DecodingError.dataCorruptedError(in: pair, debugDescription: "a range is [lo, hi]")
        }
    }

    var mid: Double { (lo + hi) / 2.0 }
}

/// The layer's parameters (docs/LIFE.md's table; `LifeParams` in core/life.py). `amount` scales every motion:
/// 0 is the layer off, 1 the full preset.
public struct A2BSLifeParams: Decodable, Equatable, Sendable {
    public var amount: Double
    public var blinkRateSpeaking: Double
    public var blinkRatePause: Double
    public var blinkPhraseEnd: Double
    public var blinkCloseS: A2BSLifeRange
    public var blinkHoldS: A2BSLifeRange
    public var blinkOpenRatio: A2BSLifeRange
    public var blinkAmplitude: A2BSLifeRange
    public var blinkAsymmetry: Double
    public var blinkRefractoryS: Double
    public var fixationSpeakingS: A2BSLifeRange
    public var fixationPauseS: A2BSLifeRange
    public var faceYawDeg: Double
    public var facePitchDeg: A2BSLifeRange
    public var avertProbability: Double
    public var avertDeg: A2BSLifeRange
    public var avertHoldS: A2BSLifeRange
    public var lidFollowDown: Double
    public var lidFollowUp: Double
    public var driftYawDeg: Double
    public var driftPitchDeg: Double
    public var driftRollDeg: Double
    public var driftPeriodS: A2BSLifeRange
    public var driftPauseScale: Double
    public var headGazeShare: Double
    public var nodProbability: Double
    public var nodDeg: Double
    public var nodDownS: Double
    public var nodUpS: Double
    public var settleDeg: Double
    public var settleDownS: Double
    public var settleUpS: Double
    public var headLimitDeg: Double
    public var browProbability: Double
    public var browAmplitude: Double
    public var browAttackS: Double
    public var browHoldS: Double
    public var browReleaseS: Double

    enum CodingKeys: String, CodingKey {
        case amount
        case blinkRateSpeaking = "blink_rate_speaking"
        case blinkRatePause = "blink_rate_pause"
        case blinkPhraseEnd = "blink_phrase_end"
        case blinkCloseS = "blink_close_s"
        case blinkHoldS = "blink_hold_s"
        case blinkOpenRatio = "blink_open_ratio"
        case blinkAmplitude = "blink_amplitude"
        case blinkAsymmetry = "blink_asymmetry"
        case blinkRefractoryS = "blink_refractory_s"
        case fixationSpeakingS = "fixation_speaking_s"
        case fixationPauseS = "fixation_pause_s"
        case faceYawDeg = "face_yaw_deg"
        case facePitchDeg = "face_pitch_deg"
        case avertProbability = "avert_probability"
        case avertDeg = "avert_deg"
        case avertHoldS = "avert_hold_s"
        case lidFollowDown = "lid_follow_down"
        case lidFollowUp = "lid_follow_up"
        case driftYawDeg = "drift_yaw_deg"
        case driftPitchDeg = "drift_pitch_deg"
        case driftRollDeg = "drift_roll_deg"
        case driftPeriodS = "drift_period_s"
        case driftPauseScale = "drift_pause_scale"
        case headGazeShare = "head_gaze_share"
        case nodProbability = "nod_probability"
        case nodDeg = "nod_deg"
        case nodDownS = "nod_down_s"
        case nodUpS = "nod_up_s"
        case settleDeg = "settle_deg"
        case settleDownS = "settle_down_s"
        case settleUpS = "settle_up_s"
        case headLimitDeg = "head_limit_deg"
        case browProbability = "brow_probability"
        case browAmplitude = "brow_amplitude"
        case browAttackS = "brow_attack_s"
        case browHoldS = "brow_hold_s"
        case browReleaseS = "brow_release_s"
    }

    /// What a manifest may hold, per key (core/life.py's LIMITS; tests/samples/test_ios_sample.py compares them).
    static let limits: [String: ClosedRange<Double>] = [
        "amount": 0.0...1.0,
        "blink_rate_speaking": 0.0...60.0,
        "blink_rate_pause": 0.0...60.0,
        "blink_phrase_end": 0.0...1.0,
        "blink_close_s": 0.02...0.5,
        "blink_hold_s": 0.0...1.0,
        "blink_open_ratio": 0.5...5.0,
        "blink_amplitude": 0.0...1.0,
        "blink_asymmetry": 0.0...0.5,
        "blink_refractory_s": 0.0...10.0,
        "fixation_speaking_s": 0.1...30.0,
        "fixation_pause_s": 0.1...30.0,
        "face_yaw_deg": 0.0...15.0,
        "face_pitch_deg": -15.0...15.0,
        "avert_probability": 0.0...1.0,
        "avert_deg": 0.0...30.0,
        "avert_hold_s": 0.1...30.0,
        "lid_follow_down": 0.0...1.0,
        "lid_follow_up": 0.0...1.0,
        "drift_yaw_deg": 0.0...15.0,
        "drift_pitch_deg": 0.0...15.0,
        "drift_roll_deg": 0.0...15.0,
        "drift_period_s": 0.2...30.0,
        "drift_pause_scale": 0.0...1.0,
        "head_gaze_share": 0.0...1.0,
        "nod_probability": 0.0...1.0,
        "nod_deg": 0.0...15.0,
        "nod_down_s": 0.02...2.0,
        "nod_up_s": 0.02...2.0,
        "settle_deg": 0.0...15.0,
        "settle_down_s": 0.02...3.0,
        "settle_up_s": 0.02...3.0,
        "head_limit_deg": 0.0...45.0,
        "brow_probability": 0.0...1.0,
        "brow_amplitude": 0.0...1.0,
        "brow_attack_s": 0.02...2.0,
        "brow_hold_s": 0.0...2.0,
        "brow_release_s": 0.02...3.0,
    ]
    /// Every parameter by its manifest key, with its value (ranges: [lo, hi]).
    var named: [(String, [Double])] {
        [
            ("amount", [amount]),
            ("blink_rate_speaking", [blinkRateSpeaking]),
            ("blink_rate_pause", [blinkRatePause]),
            ("blink_phrase_end", [blinkPhraseEnd]),
            ("blink_close_s", [blinkCloseS.lo, blinkCloseS.hi]),
            ("blink_hold_s", [blinkHoldS.lo, blinkHoldS.hi]),
            ("blink_open_ratio", [blinkOpenRatio.lo, blinkOpenRatio.hi]),
            ("blink_amplitude", [blinkAmplitude.lo, blinkAmplitude.hi]),
            ("blink_asymmetry", [blinkAsymmetry]),
            ("blink_refractory_s", [blinkRefractoryS]),
            ("fixation_speaking_s", [fixationSpeakingS.lo, fixationSpeakingS.hi]),
            ("fixation_pause_s", [fixationPauseS.lo, fixationPauseS.hi]),
            ("face_yaw_deg", [faceYawDeg]),
            ("face_pitch_deg", [facePitchDeg.lo, facePitchDeg.hi]),
            ("avert_probability", [avertProbability]),
            ("avert_deg", [avertDeg.lo, avertDeg.hi]),
            ("avert_hold_s", [avertHoldS.lo, avertHoldS.hi]),
            ("lid_follow_down", [lidFollowDown]),
            ("lid_follow_up", [lidFollowUp]),
            ("drift_yaw_deg", [driftYawDeg]),
            ("drift_pitch_deg", [driftPitchDeg]),
            ("drift_roll_deg", [driftRollDeg]),
            ("drift_period_s", [driftPeriodS.lo, driftPeriodS.hi]),
            ("drift_pause_scale", [driftPauseScale]),
            ("head_gaze_share", [headGazeShare]),
            ("nod_probability", [nodProbability]),
            ("nod_deg", [nodDeg]),
            ("nod_down_s", [nodDownS]),
            ("nod_up_s", [nodUpS]),
            ("settle_deg", [settleDeg]),
            ("settle_down_s", [settleDownS]),
            ("settle_up_s", [settleUpS]),
            ("head_limit_deg", [headLimitDeg]),
            ("brow_probability", [browProbability]),
            ("brow_amplitude", [browAmplitude]),
            ("brow_attack_s", [browAttackS]),
            ("brow_hold_s", [browHoldS]),
            ("brow_release_s", [browReleaseS]),
        ]
    }
}

public extension A2BSLifeSection {
    /// As the Python loader: the version and RNG this engine implements, every parameter inside its limits, ranges
    /// with lo <= hi; one message naming the key otherwise.
    func validate() throws {
        func fail(_ message: String) -> A2BSError { .incompatibleBundle("life: \(message)") }
        guard version == A2BSLifeSection.supportedVersion else {
            throw fail("'life.version' is \(version), this engine runs version \(A2BSLifeSection.supportedVersion)")
        }
        guard rng == A2BSLifeSection.supportedRNG else {
            throw fail("'life.rng' is '\(rng)', this engine implements '\(A2BSLifeSection.supportedRNG)'")
        }
        for (name, values) in params.named {
            guard let limits = A2BSLifeParams.limits[name] else { throw fail("no limits for 'life.params.\(name)'") }
            for value in values where !limits.contains(value) {
                throw fail("'life.params.\(name)' must be in [\(limits.lowerBound), \(limits.upperBound)], got \(value)")
            }
            if values.count == 2 && values[0] > values[1] {
                throw fail("'life.params.\(name)' must be [lo, hi] with lo <= hi, got \(values)")
            }
        }
    }
}

// MARK: - Random numbers

/// Steele, Lea & Flood's SplitMix64 (OOPSLA 2014), UInt64 arithmetic wrapping as in docs/LIFE.md.
public struct A2BSSplitMix64: Sendable {
    public private(set) var state: UInt64

    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// lo + (hi - lo) * u, u = (next() >> 11) * 2^-53: the same double in every language.
    public mutating func uniform(_ lo: Double = 0.0, _ hi: Double = 1.0) -> Double {
        lo + (hi - lo) * (Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0))
    }

    mutating func uniform(_ range: A2BSLifeRange) -> Double { uniform(range.lo, range.hi) }
}

/// 0 before t0, raised-cosine rise to 1 at tPeak, 1 until tHold, raised-cosine fall to 0 at tEnd.
public func a2bsBump(_ t: Double, _ t0: Double, _ tPeak: Double, _ tHold: Double, _ tEnd: Double) -> Double {
    let rise = min(Double.pi, max(0.0, Double.pi * (t - t0) / max(tPeak - t0, 1e-6)))
    let fall = min(Double.pi, max(0.0, Double.pi * (t - tHold) / max(tEnd - tHold, 1e-6)))
    return (1 - cos(rise)) / 2 * ((1 + cos(fall)) / 2)
}

// MARK: - Prosody

/// One PCM window's level (dB) and YIN period (samples; 0: unvoiced).
public struct A2BSProsodyFeatures: Equatable, Sendable {
    public let level: Double
    public let tau: Int
}

/// Level and YIN pitch of the front end's PCM windows (docs/LIFE.md, "one PCM window per frame"), by direct sums.
public struct A2BSProsodyAnalyzer: Sendable {
    public let sampleRate: Int
    public let window: Int
    let tauMin: Int
    let tauMax: Int
    let compared: Int
    static let f0Min = 60.0
    static let f0Max = 400.0
    static let threshold = 0.25

    public init(sampleRate: Int, window: Int) {
        self.sampleRate = sampleRate
        self.window = window
        tauMin = Int(Double(sampleRate) / A2BSProsodyAnalyzer.f0Max)
        tauMax = Int(Double(sampleRate) / A2BSProsodyAnalyzer.f0Min)
        compared = window - tauMax
    }

    /// `window` samples (float32 PCM, analysed in float64).
    public func features(_ pcm: UnsafeBufferPointer<Float>) -> A2BSProsodyFeatures {
        precondition(pcm.count == window, "the life layer's PCM window has \(window) samples, got \(pcm.count)")
        let x = pcm.map(Double.init)
        var energy = 0.0
        for v in x { energy += v * v }
        energy /= Double(window)
        let level = 10.0 * log(energy + 1e-10) / log(10.0)
        // d(tau), tau = 1 ... tauMax; d'(tau) = d(tau) tau / sum_{i <= tau} d(i)
        var cmnd = [Double](repeating: 1.0, count: tauMax)
        var total = 0.0
        x.withUnsafeBufferPointer { x in
            for tau in 1...tauMax {
                var d = 0.0
                for j in 0..<compared {
                    let diff = x[j] - x[j + tau]
                    d += diff * diff
                }
                total += d
                cmnd[tau - 1] = total > 0 ? d * Double(tau) / total : 1.0
            }
        }
        guard let first = (tauMin - 1..<tauMax).first(where: { cmnd[$0] < A2BSProsodyAnalyzer.threshold }) else {
            return A2BSProsodyFeatures(level: level, tau: 0)
        }
        var i = first
        while i < tauMax - 1 && cmnd[i + 1] < cmnd[i] { i += 1 }
        return A2BSProsodyFeatures(level: level, tau: i + 1)
    }

    public func features(_ pcm: [Float]) -> A2BSProsodyFeatures { pcm.withUnsafeBufferPointer { features($0) } }
}

/// The causal speech / pause / accent tracker (docs/LIFE.md, "the tracker"; `_Prosody` in core/life.py).
struct A2BSProsodyTracker {
    let fps: Double
    let sampleRate: Double
    let pauseFrames: Int
    let minPhraseFrames: Int
    let minVoicedFrames: Int
    let accentGapFrames: Int
    let a: Double
    var k = -1
    var floor = Double.nan
    var peak = Double.nan
    var speaking = false
    var phraseStart = 0
    var lastActive = 0
    var pitchMean = Double.nan
    var pitchVar = Double.nan
    var levelMean = Double.nan
    var levelVar = Double.nan
    var voicedRun = 0
    var score = -Double.infinity
    var lastAccent = -(1 << 30)

    init(fps: Int, sampleRate: Int) {
        func frames(_ seconds: Double) -> Int { Int(seconds * Double(fps) + 0.5) }
        self.fps = Double(fps)
        self.sampleRate = Double(sampleRate)
        pauseFrames = frames(0.3)
        minPhraseFrames = frames(0.5)
        minVoicedFrames = max(1, frames(0.05))
        accentGapFrames = frames(0.5)
        a = 1.0 - exp(-1.0 / (Double(fps) * 2.0))
    }

    /// The next frame: (a phrase started, a phrase ended, accent strength or 0); sets `speaking`.
    mutating func update(level rawLevel: Double, tau: Int) -> (started: Bool, ended: Bool, accent: Double) {
        k += 1
        let level = max(rawLevel, -100.0)
        if floor.isNaN {
            floor = level
            peak = level
        }
        floor = level < floor ? level : min(level, floor + 2.0 / fps)
        peak = level > peak ? level : max(level, peak - 4.0 / fps)
        let threshold = max(floor + 10.0, peak - 35.0, -70.0)
        let active = level > threshold && peak - floor >= 15.0
        var started = false, ended = false
        if active {
            if !speaking {
                speaking = true
                started = true
                phraseStart = k
            }
            lastActive = k
        } else if speaking && k - lastActive >= pauseFrames {
            speaking = false
            ended = lastActive - phraseStart + 1 >= minPhraseFrames
        }
        var score = -Double.infinity
        if active && tau > 0 {
            let st = 12.0 * log(sampleRate / Double(tau) / 100.0) / log(2.0)
            if pitchMean.isNaN {
                pitchMean = st
                pitchVar = 9.0
            }
            if abs(st - pitchMean) <= 9.0 {
                voicedRun += 1
                if voicedRun >= minVoicedFrames && !levelMean.isNaN {
                    let zPitch = (st - pitchMean) / sqrt(max(pitchVar, 1.0))
                    let zLevel = (level - levelMean) / sqrt(max(levelVar, 9.0))
                    score = min(zPitch, 3.0) + 0.5 * min(zLevel, 3.0)
                }
                let delta = st - pitchMean
                pitchMean += a * delta
                pitchVar += a * (delta * delta - pitchVar)
            } else {
                voicedRun = 0
            }
        } else {
            voicedRun = 0
        }
        if active {
            if levelMean.isNaN {
                levelMean = level
                levelVar = 36.0
            }
            let delta = level - levelMean
            levelMean += a * delta
            levelVar += a * (delta * delta - levelVar)
        }
        var accent = 0.0
        if score >= 1.0 && 1.0 > self.score && k - lastAccent >= accentGapFrames {
            accent = min(1.0, 0.5 + 0.5 * (score - 1.0))
            lastAccent = k
        }
        self.score = score
        return (started, ended, accent)
    }
}

// MARK: - The layer

/// One life-layer output frame: the curves (only eye* and brow* changed) and the 9 Live Link Face rotations in
/// radians (HeadYaw, HeadPitch, HeadRoll, LeftEyeYaw, LeftEyePitch, LeftEyeRoll, RightEyeYaw, RightEyePitch,
/// RightEyeRoll).
public struct A2BSLifeFrame: Sendable {
    public let values: [Float]
    public let rotations: [Double]
}

/// One stream's life layer (`LifeLayer` in core/life.py). Feed output frames in order with `process`, each with
/// the PCM window centred on its time (the front end's window of its mel frame); `reset()` at a stream start.
/// Not thread-safe: use it from the engine's queue.
public final class A2BSLifeLayer {
    /// Live Link Face's rotation columns, in the order of `A2BSLifeFrame.rotations` (radians).
    public static let rotationNames = [
        "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw", "RightEyePitch",
        "RightEyeRoll",
    ]
    static let yawPerUnit = 0.6
    static let downPerUnit = 0.61
    static let upPerUnit = 0.437
    static let browWide = 0.1
    static let browOuter = 0.8
    static let deg = Double.pi / 180.0

    /// The parameters; `amount` may change at run time (a slider): 0 is the layer off, and a new amount scales the
    /// motions drawn from then on.
    public var params: A2BSLifeParams
    public let fps: Int
    public let seed: UInt32
    public let analyzer: A2BSProsodyAnalyzer
    public private(set) var k = 0

    // Indices of the shapes the layer writes, per side (Left, Right); nil when the names lack them.
    private let sides: [Side]
    private let inner: Int
    private let lifeShapes: [Int]
    private struct Side {
        let lookIn, lookOut, lookDown, lookUp, blink, wide, outer: Int
    }

    private var rng: [A2BSSplitMix64] = []
    private var prosody: A2BSProsodyTracker
    private var hazardSpeaking = 0.0
    private var hazardPause = 0.0
    // blink: (t0, tClosed, tOpen, tEnd, amplitude left, amplitude right)
    private var blink: (Double, Double, Double, Double, Double, Double)?
    private var blinkAllowed = 0.0
    private var gazeFrom = (0.0, 0.0)
    private var gazeTo = (0.0, 0.0)
    private var saccT0 = 0.0
    private var saccS = 1e-6
    private var averted = false
    private var nextShift = 0.0
    private var driftFrom = (0.0, 0.0, 0.0)
    private var driftTo = (0.0, 0.0, 0.0)
    private var driftT0 = 0.0
    private var driftS = 1.0
    private var follow = (0.0, 0.0)
    private let followA: Double
    private var nods: [(Double, Double, Double, Double)] = []
    private var brows: [(Double, Double, Double, Double, Double, Double)] = []

    /// `names`: the blendshape names of the curves (the manifest's `blendshapes`).
    public init(params: A2BSLifeParams, fps: Int, sampleRate: Int, window: Int, names: [String], seed: UInt32 = 0) throws {
        self.params = params
        self.fps = fps
        self.seed = seed
        analyzer = A2BSProsodyAnalyzer(sampleRate: sampleRate, window: window)
        prosody = A2BSProsodyTracker(fps: fps, sampleRate: sampleRate)
        followA = 1.0 - exp(-1.0 / (Double(fps) * 0.3))
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        func at(_ name: String) throws -> Int {
            guard let i = index[name] else { throw A2BSError.incompatibleBundle("the life layer needs \(name)") }
            return i
        }
        sides = try ["Left", "Right"].map { side in
            Side(lookIn: try at("eyeLookIn" + side), lookOut: try at("eyeLookOut" + side),
                 lookDown: try at("eyeLookDown" + side), lookUp: try at("eyeLookUp" + side),
                 blink: try at("eyeBlink" + side), wide: try at("eyeWide" + side), outer: try at("browOuterUp" + side))
        }
        inner = try at("browInnerUp")
        lifeShapes = names.indices.filter { names[$0].hasPrefix("eye") || names[$0].hasPrefix("brow") }
        reset()
    }

    /// The layer of a manifest (nil: the manifest has no `life` section, the layer off).
    public convenience init?(manifest: A2BSManifest, seed: UInt32 = 0) throws {
        guard let life = manifest.life else { return nil }
        try self.init(params: life.params, fps: manifest.fps, sampleRate: manifest.sampleRate,
                      window: manifest.timeline.window, names: manifest.blendshapes, seed: seed)
    }

    /// Back to the start of a stream: the state the first frame sees.
    public func reset() {
        let p = params
        k = 0
        rng = (0..<4).map { A2BSSplitMix64(state: UInt64(seed) &* 4 &+ UInt64($0)) }
        prosody = A2BSProsodyTracker(fps: fps, sampleRate: analyzer.sampleRate)
        let dead = p.blinkRefractoryS + p.blinkCloseS.mid * (1.0 + p.blinkOpenRatio.mid) + p.blinkHoldS.mid
        func hazard(_ rate: Double) -> Double { rate / max(1.0 - rate * dead, 0.05) }
        hazardSpeaking = hazard(p.blinkRateSpeaking / 60.0) / Double(fps)
        hazardPause = hazard(p.blinkRatePause / 60.0) / Double(fps)
        blink = nil
        blinkAllowed = 0.0
        gazeFrom = (0.0, 0.0)
        gazeTo = (0.0, 0.0)
        saccT0 = 0.0
        saccS = 1e-6
        averted = false
        nextShift = fixation(speaking: false)
        driftFrom = (0.0, 0.0, 0.0)
        driftTo = driftKnots(speaking: false)
        driftT0 = 0.0
        driftS = rng[2].uniform(p.driftPeriodS)
        follow = (0.0, 0.0)
        nods = []
        brows = []
    }

    // MARK: draws

    private func fixation(speaking: Bool) -> Double {
        rng[1].uniform(speaking ? params.fixationSpeakingS : params.fixationPauseS)
    }

    private func driftKnots(speaking: Bool) -> (Double, Double, Double) {
        let p = params
        let s = 1.0 * p.amount * (speaking ? 1.0 : p.driftPauseScale)
        let yaw = rng[2].uniform(-1.0, 1.0) * p.driftYawDeg * s
        let pitch = rng[2].uniform(-1.0, 1.0) * p.driftPitchDeg * s
        let roll = rng[2].uniform(-1.0, 1.0) * p.driftRollDeg * s
        return (yaw, pitch, roll)
    }

    private func saccade(_ t: Double, to target: (Double, Double)) {
        let start = gaze(t)
        let dy = target.0 - start.0, dp = target.1 - start.1
        let amplitude = sqrt(dy * dy + dp * dp)
        gazeFrom = start
        gazeTo = target
        saccT0 = t
        saccS = 0.021 + 0.0022 * amplitude
    }

    private func faceTarget() -> (Double, Double) {
        let p = params
        let yaw = rng[1].uniform(-p.faceYawDeg, p.faceYawDeg) * p.amount
        let pitch = rng[1].uniform(p.facePitchDeg) * p.amount
        return (yaw, pitch)
    }

    // MARK: state at time t

    private func gaze(_ t: Double) -> (Double, Double) {
        let s = min(1.0, max(0.0, (t - saccT0) / saccS))
        let w = (1.0 - cos(Double.pi * s)) / 2.0
        return (gazeFrom.0 + (gazeTo.0 - gazeFrom.0) * w, gazeFrom.1 + (gazeTo.1 - gazeFrom.1) * w)
    }

    private func drift(_ t: Double) -> (Double, Double, Double) {
        let s = min(1.0, max(0.0, (t - driftT0) / driftS))
        let w = (1.0 - cos(Double.pi * s)) / 2.0
        let a = driftFrom, b = driftTo
        return (a.0 + (b.0 - a.0) * w, a.1 + (b.1 - a.1) * w, a.2 + (b.2 - a.2) * w)
    }

    private static func clamp(_ x: Double, _ limit: Double) -> Double { min(limit, max(-limit, x)) }

    // MARK: one frame

    /// Updates the state for frame k: (blink L, blink R, brow L, brow R, eye yaw, eye pitch, head yaw, head pitch,
    /// head roll), degrees, the eyes in the head.
    private func step(_ features: A2BSProsodyFeatures) -> [Double] {
        let p = params, t = Double(k) / Double(fps)
        let (started, ended, accent) = prosody.update(level: features.level, tau: features.tau)
        let speaking = prosody.speaking

        // 1. blinks (stream 0): one draw every frame
        let u = rng[0].uniform()
        if let b = blink, t >= b.3 { blink = nil }
        var chance = speaking ? hazardSpeaking : hazardPause
        if ended { chance = 1.0 - (1.0 - chance) * (1.0 - p.blinkPhraseEnd) }
        if blink == nil && t >= blinkAllowed && u < chance {
            let close = rng[0].uniform(p.blinkCloseS)
            let hold = rng[0].uniform(p.blinkHoldS)
            let opening = close * rng[0].uniform(p.blinkOpenRatio)
            let amp = rng[0].uniform(p.blinkAmplitude)
            let weaker = 1.0 - rng[0].uniform(0.0, p.blinkAsymmetry)
            let leftWeaker = rng[0].uniform() < 0.5
            let b = (t, t + close, t + close + hold, t + close + hold + opening,
                     amp * (leftWeaker ? weaker : 1.0), amp * (leftWeaker ? 1.0 : weaker))
            blink = b
            blinkAllowed = b.3 + p.blinkRefractoryS
        }
        var blinkL = 0.0, blinkR = 0.0
        if let b = blink {
            let w = a2bsBump(t, b.0, b.1, b.2, b.3)
            blinkL = w * b.4
            blinkR = w * b.5
        }

        // 2. gaze (stream 1)
        if started && rng[1].uniform() < p.avertProbability {
            let amplitude = rng[1].uniform(p.avertDeg) * p.amount
            let angle = rng[1].uniform(0.0, 2.0 * Double.pi)
            saccade(t, to: (amplitude * cos(angle), 0.6 * amplitude * sin(angle)))
            averted = true
            nextShift = t + rng[1].uniform(p.avertHoldS)
        } else if (ended && averted) || t >= nextShift {
            saccade(t, to: faceTarget())
            averted = false
            nextShift = t + fixation(speaking: speaking)
        }
        let gazeNow = gaze(t)

        // 3. head (stream 2)
        if ended {
            let now = drift(t)
            driftFrom = now
            driftTo = (0.3 * now.0, 0.3 * now.1, 0.3 * now.2)
            driftT0 = t
            driftS = p.settleDownS + p.settleUpS
            let amp = p.settleDeg * rng[2].uniform(0.7, 1.3) * p.amount
            nods.append((t, t + p.settleDownS, t + p.settleDownS + p.settleUpS, amp))
        } else if t >= driftT0 + driftS {
            driftFrom = driftTo
            driftTo = driftKnots(speaking: speaking)
            driftT0 = driftT0 + driftS
            driftS = rng[2].uniform(p.driftPeriodS)
        }
        if accent > 0 && rng[2].uniform() < p.nodProbability {
            let amp = p.nodDeg * accent * rng[2].uniform(0.7, 1.3) * p.amount
            nods.append((t, t + p.nodDownS, t + p.nodDownS + p.nodUpS, amp))
        }
        let target = (gazeTo.0 * p.headGazeShare, gazeTo.1 * p.headGazeShare)
        follow = (follow.0 + followA * (target.0 - follow.0), follow.1 + followA * (target.1 - follow.1))
        nods = nods.filter { t < $0.2 }
        let sway = drift(t)
        var nod = 0.0
        for n in nods { nod += n.3 * a2bsBump(t, n.0, n.1, n.1, n.2) }
        let limit = p.headLimitDeg
        let head = (A2BSLifeLayer.clamp(sway.0 + follow.0, limit), A2BSLifeLayer.clamp(sway.1 + follow.1 + nod, limit),
                    A2BSLifeLayer.clamp(sway.2, limit))

        // 4. brows (stream 3)
        if accent > 0 && rng[3].uniform() < p.browProbability {
            let amp = p.browAmplitude * accent * rng[3].uniform(0.7, 1.3) * p.amount
            let side = rng[3].uniform(0.85, 1.0)
            let leftWeaker = rng[3].uniform() < 0.5
            let t1 = t + p.browAttackS
            let t2 = t1 + p.browHoldS
            brows.append((t, t1, t2, t2 + p.browReleaseS, amp * (leftWeaker ? side : 1.0), amp * (leftWeaker ? 1.0 : side)))
        }
        brows = brows.filter { t < $0.3 }
        var browL = 0.0, browR = 0.0
        for b in brows {
            let w = a2bsBump(t, b.0, b.1, b.2, b.3)
            browL = max(browL, w * b.4)
            browR = max(browR, w * b.5)
        }

        k += 1
        return [blinkL, blinkR, browL, browR, gazeNow.0 - head.0, gazeNow.1 - head.1, head.0, head.1, head.2]
    }

    /// The model's curves plus the layer's state -> the output frame (core/life.py's `compose`, one row).
    private func compose(_ curves: [Float], _ state: [Double]) -> A2BSLifeFrame {
        let p = params
        let v = curves.map(Double.init)
        let yaw = state[4] * A2BSLifeLayer.deg, pitch = state[5] * A2BSLifeLayer.deg
        let toward = max(yaw, 0.0) / A2BSLifeLayer.yawPerUnit
        let away = max(-yaw, 0.0) / A2BSLifeLayer.yawPerUnit
        let down = max(pitch, 0.0) / A2BSLifeLayer.downPerUnit
        let up = max(-pitch, 0.0) / A2BSLifeLayer.upPerUnit
        let raised = max(state[2], state[3])
        let wide = p.lidFollowUp * up + A2BSLifeLayer.browWide * raised
        var out = v
        for (i, s) in sides.enumerated() {
            let (gazeIn, gazeOut) = i == 0 ? (toward, away) : (away, toward)
            out[s.lookIn] = v[s.lookIn] + gazeIn
            out[s.lookOut] = v[s.lookOut] + gazeOut
            out[s.lookDown] = v[s.lookDown] + down
            out[s.lookUp] = v[s.lookUp] + up
            let closing = min(1.0, state[i] + p.lidFollowDown * down)
            out[s.blink] = v[s.blink] + (1.0 - v[s.blink]) * closing
            out[s.wide] = v[s.wide] + wide
            out[s.outer] = v[s.outer] + A2BSLifeLayer.browOuter * state[2 + i]
        }
        out[inner] = v[inner] + raised
        var shapes = curves
        for i in lifeShapes { shapes[i] = Float(min(1.0, max(0.0, out[i]))) }
        let o = shapes.map(Double.init)
        let left = sides[0], right = sides[1]
        let rotations = [
            state[6] * A2BSLifeLayer.deg, state[7] * A2BSLifeLayer.deg, state[8] * A2BSLifeLayer.deg,
            A2BSLifeLayer.yawPerUnit * (o[right.lookOut] - o[right.lookIn]),
            A2BSLifeLayer.downPerUnit * o[right.lookDown] - A2BSLifeLayer.upPerUnit * o[right.lookUp],
            0.0,
            A2BSLifeLayer.yawPerUnit * (o[left.lookIn] - o[left.lookOut]),
            A2BSLifeLayer.downPerUnit * o[left.lookDown] - A2BSLifeLayer.upPerUnit * o[left.lookUp],
            0.0,
        ]
        return A2BSLifeFrame(values: shapes, rotations: rotations)
    }

    /// The next output frame: the model's curves and its prosody (`analyzer.features` of its PCM window). With
    /// amount 0 the curves come back as they are, with zero rotations.
    public func process(curves: [Float], features: A2BSProsodyFeatures) -> A2BSLifeFrame {
        if params.amount == 0.0 {
            k += 1
            return A2BSLifeFrame(values: curves, rotations: [Double](repeating: 0.0, count: A2BSLifeLayer.rotationNames.count))
        }
        return compose(curves, step(features))
    }

    /// The next output frame from its curves and its PCM window (`analyzer.window` samples centred on its time).
    public func process(curves: [Float], window: [Float]) -> A2BSLifeFrame {
        process(curves: curves, features: analyzer.features(window))
    }

    /// Frames k ..< k + n in order, as core/life.py's `process(curves, windows)`.
    public func process(curves: [[Float]], windows: [[Float]]) -> [A2BSLifeFrame] {
        precondition(curves.count == windows.count, "the life layer got \(curves.count) frames and \(windows.count) windows")
        return zip(curves, windows).map { process(curves: $0, window: $1) }
    }
}
