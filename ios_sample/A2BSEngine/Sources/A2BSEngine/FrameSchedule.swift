// When each mel frame can run and which samples it reads. Integer arithmetic only, identical to the
// Python reference (`core/features.py::frame_centers`, `core/audio.py::n_output_frames`).

/// The timeline of one stream: mel frame j is centred on sample round(j * sampleRate / fps) (halves up),
/// reads `window` samples around it and, once `lookahead` later frames exist, yields output frame j - lookahead.
public struct A2BSFrameSchedule: Equatable {
    public let fps: Int
    public let sampleRate: Int
    public let window: Int
    public let lookahead: Int

    public init(fps: Int, sampleRate: Int, window: Int, lookahead: Int) {
        self.fps = fps
        self.sampleRate = sampleRate
        self.window = window
        self.lookahead = lookahead
    }

    public init(_ manifest: A2BSManifest) {
        self.init(fps: manifest.fps, sampleRate: manifest.sampleRate, window: manifest.timeline.window,
                  lookahead: manifest.timeline.lookaheadFrames)
    }

    /// Centre sample of mel frame j: (2 j sr + fps) / (2 fps), i.e. round(j sr / fps) with halves up.
    public func center(ofMelFrame j: Int) -> Int { (2 * j * sampleRate + fps) / (2 * fps) }

    /// First sample of mel frame j's window (negative near the start: those samples are zeros).
    public func windowStart(ofMelFrame j: Int) -> Int { center(ofMelFrame: j) - window / 2 }

    /// Mel frame j is due once this many samples (indices 0 ..< n) have arrived: its window ends there.
    public func samplesNeeded(forMelFrame j: Int) -> Int { windowStart(ofMelFrame: j) + window }

    /// The output frame the step call of mel frame j produces, or nil while the lookahead fills.
    public func outputFrame(forMelFrame j: Int) -> Int? { j >= lookahead ? j - lookahead : nil }

    /// Output frames of a finished stream of n samples: ceil(n fps / sr).
    public func outputFrameCount(forSamples n: Int) -> Int { (n * fps + sampleRate - 1) / sampleRate }

    /// Mel frames that can run once n samples have arrived.
    public func melFramesDue(forSamples n: Int) -> Int {
        var j = 0
        while samplesNeeded(forMelFrame: j) <= n { j += 1 }
        return j
    }

    /// How many samples past an output frame's centre must arrive before the frame exists
    /// (the sound-to-face delay before compute; the manifest's timeline.latency_ms in samples).
    public var lookaheadSamples: Int { samplesNeeded(forMelFrame: lookahead) - center(ofMelFrame: 0) }
}
