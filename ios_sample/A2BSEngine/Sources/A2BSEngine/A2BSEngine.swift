import Dispatch
import Foundation

/// One output frame: the 52 (manifest `blendshapes`) values, the head and eye rotations, and what it cost to compute.
public struct A2BSFrame: Sendable {
    /// Output frame index since the stream start; its time is index / fps seconds.
    public let index: Int
    public let time: TimeInterval
    /// In the order of `names`: the model's values through the face controls, with the life layer's eyes and brows
    /// when it runs.
    public let values: [Float]
    public let names: A2BSBlendshapeNames
    /// Live Link Face's 9 rotation columns in radians (`A2BSLifeLayer.rotationNames`): the life layer's head and
    /// eyes; zeros when the layer is off.
    public let rotations: [Double]
    /// Wall time of the front-end and step calls that produced this frame, and of the controls' and life layer's parts.
    public let frontEndMs: Double
    public let stepMs: Double
    public let controlsMs: Double
    public let lifeMs: Double
    public var latencyMs: Double { frontEndMs + stepMs + controlsMs + lifeMs }

    public subscript(name: String) -> Float {
        guard let i = names.index[name] else { return 0 }
        return values[i]
    }

    /// (name, value) pairs in manifest order.
    public var named: [(name: String, value: Float)] { zip(names.names, values).map { (name: $0, value: $1) } }
}

/// One entry of the manifest's blendshape_groups (for grouping bars in a UI).
public struct A2BSBlendshapeGroup: Identifiable, Equatable, Sendable {
    public let name: String
    public let members: [String]
    public var id: String { name }
}

/// The blendshape names of a bundle with a name -> position index, shared by all frames.
public final class A2BSBlendshapeNames: Sendable {
    public let names: [String]
    public let index: [String: Int]
    public init(_ names: [String]) {
        self.names = names
        index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
    }
}

/// Speech to blendshapes, frame by frame, exactly as the bundle manifest prescribes (the Python reference is
/// `runtime/bundle_inference.py::iter_bundle_blendshapes`).
///
/// Feed 16 kHz mono Float32 samples in chunks of any size with `push(samples:)`; every mel frame whose
/// window is complete runs immediately (front end, then step) and each output frame is returned and passed
/// to `frameHandler`. Output frame k appears `lookahead` frames plus half a window after its own time.
/// At the end of a file call `flush()`: it runs the remaining frames with silence past the end, emits
/// exactly ceil(samples * fps / sample_rate) frames in total and resets for a new stream.
///
/// Each output frame goes through the face controls (FaceControls.swift: strength per region, expression strength,
/// lip-opening offset, smoothing per region) before the life layer: model -> controls -> life, as `a2bs infer`. They
/// start at the manifest's `controls` section (the defaults, the model's frames as they are, without one) and
/// `controls` changes them at run time, keeping the smoothing's state across the change and across chunks.
///
/// When the manifest has a `life` section, the life layer (LifeLayer.swift) adds blinks, gaze, head motion and
/// brow raises to each output frame k, from the PCM window of mel frame k (analysed when that window was made,
/// `lookahead` calls earlier, so no added latency); `lifeAmount` scales it at run time (0: off).
///
/// Not thread-safe, and deliberately not `Sendable`: call it from one serial queue, never the main thread
/// (`A2BSBackgroundEngine` does that). After a thrown error call `reset()`. On Apple platforms
/// `A2BSEngine.load(bundleDirectory:variant:computeUnits:)` (CoreMLRunner.swift) builds one over Core ML.
public final class A2BSEngine {
    public let manifest: A2BSManifest
    public let schedule: A2BSFrameSchedule
    public let sizes: A2BSSizes
    public let names: A2BSBlendshapeNames
    /// Called with every output frame, on the thread that called push / flush.
    public var frameHandler: ((A2BSFrame) -> Void)?

    private let frontEnd: A2BSModelRunner
    private let step: A2BSModelRunner
    // Model inputs and outputs, manifest order, allocated once.
    private let frontEndInputs: [A2BSTensor]
    private let frontEndOutputs: [A2BSTensor]
    private let stepInputs: [A2BSTensor]
    private let stepOutputs: [A2BSTensor]
    private var samples = A2BSSampleBuffer()
    private var ring: A2BSContextRing
    private var emotion: [Float]
    /// The life layer of the manifest's `life` section; nil when the bundle has none (made before the layer).
    public let life: A2BSLifeLayer?
    /// The face controls over the model's frames (the manifest's `controls` values, or the defaults).
    private let controlsFilter: A2BSControlsFilter
    /// Prosody of the mel frames' PCM windows whose output frame has not come out yet (oldest first).
    private var pendingProsody: [A2BSProsodyFeatures] = []
    /// Next mel frame j to run, and output frames emitted so far.
    public private(set) var nextMelFrame = 0
    public private(set) var emittedFrames = 0

    /// An engine over any two runners (Core ML, or fakes and trace replays in tests). The manifest is validated here.
    /// `lifeSeed` draws the life layer's blinks and motions (the same seed and audio give the same frames).
    public init(manifest: A2BSManifest, frontEnd: A2BSModelRunner, step: A2BSModelRunner, lifeSeed: UInt32 = 0) throws {
        try manifest.validate()
        self.manifest = manifest
        self.frontEnd = frontEnd
        self.step = step
        schedule = A2BSFrameSchedule(manifest)
        sizes = A2BSSizes(manifest)
        names = A2BSBlendshapeNames(manifest.blendshapes)
        frontEndInputs = manifest.models.frontEnd.inputs.map(A2BSTensor.init)
        frontEndOutputs = manifest.models.frontEnd.outputs.map(A2BSTensor.init)
        stepInputs = manifest.models.step.inputs.map(A2BSTensor.init)
        stepOutputs = manifest.models.step.outputs.map(A2BSTensor.init)
        ring = A2BSContextRing(rows: manifest.contextFrames - 1, width: sizes.contextWidth,
                               initialRow: manifest.initialState.contextFrame)
        emotion = manifest.emotion.neutral
        controlsFilter = try A2BSControlsFilter(manifest: manifest)
        life = try A2BSLifeLayer(manifest: manifest, seed: lifeSeed)
        reset()
    }

    /// The life layer's amount, 0 (off: the model's frames, zero rotations) to 1 (the manifest's preset), for a
    /// slider; it applies from the next frame on. Always 0 without a `life` section.
    public var lifeAmount: Double {
        get { life?.params.amount ?? 0 }
        set { life?.params.amount = min(1, max(0, newValue)) }
    }

    /// The face controls (sliders): each value is clamped to its limits and applies from the next frame; the
    /// smoothing's state is kept, so a change never makes the face jump. Starts at the manifest's values.
    public var controls: A2BSFaceControls {
        get { controlsFilter.controls }
        set { controlsFilter.controls = newValue }
    }

    /// Samples received since the stream start.
    public var samplesReceived: Int { samples.end }

    /// The emotion input for the following frames (default: the manifest's neutral vector, zeros).
    /// Only for apps that compute the bundle's z-normalized eGeMAPS features themselves.
    public func setEmotion(_ values: [Float]) {
        precondition(values.count == manifest.emotion.neutral.count, "emotion needs \(manifest.emotion.dim) values")
        emotion = values
        stepInputs[2].fill(with: values)
    }

    /// Appends samples and runs every mel frame that became due. Returns the output frames produced.
    @discardableResult
    public func push(samples chunk: UnsafeBufferPointer<Float>) throws -> [A2BSFrame] {
        samples.append(chunk)
        var frames: [A2BSFrame] = []
        while schedule.samplesNeeded(forMelFrame: nextMelFrame) <= samples.end {
            if let frame = try runNextMelFrame() { frames.append(frame) }
        }
        return frames
    }

    @discardableResult
    public func push(samples chunk: [Float]) throws -> [A2BSFrame] {
        try chunk.withUnsafeBufferPointer { try push(samples: $0) }
    }

    /// Ends the stream: runs frames over silence past the last sample until all
    /// ceil(samples * fps / sample_rate) output frames exist, then resets for a new stream.
    @discardableResult
    public func flush() throws -> [A2BSFrame] {
        let total = schedule.outputFrameCount(forSamples: samples.end)
        var frames: [A2BSFrame] = []
        while emittedFrames < total {
            if let frame = try runNextMelFrame() { frames.append(frame) }
        }
        reset()
        return frames
    }

    /// Forgets the stream: initial mel history and context ring, previous = zeros, sample 0 next.
    public func reset() {
        samples.removeAll()
        nextMelFrame = 0
        emittedFrames = 0
        stepInputs[0].fill(with: manifest.initialState.melFrames.flatMap { $0 })
        ring.reset(initialRow: manifest.initialState.contextFrame)
        stepInputs[2].fill(with: emotion)
        stepInputs[3].buffer.update(repeating: 0)  // previous: ignored by the model before output frame 0
        pendingProsody.removeAll()
        controlsFilter.reset()
        life?.reset()
    }

    // MARK: - One mel frame

    private func runNextMelFrame() throws -> A2BSFrame? {
        let j = nextMelFrame
        let melFrames = stepInputs[0], context = stepInputs[1], previous = stepInputs[3]
        let blendshapes = stepOutputs[0], blendshapesRaw = stepOutputs[1], contextFrame = stepOutputs[2]
        let mel = frontEndOutputs[0]

        let start = DispatchTime.now().uptimeNanoseconds
        let pcm = frontEndInputs[0]
        samples.copy(from: schedule.windowStart(ofMelFrame: j), count: pcm.count, into: pcm.pointer)
        try frontEnd.predict(inputs: frontEndInputs, outputs: frontEndOutputs)
        let frontEndDone = DispatchTime.now().uptimeNanoseconds

        // Mel history, oldest first: drop the oldest frame, append mel_j.
        let bins = sizes.melBins, floatSize = MemoryLayout<Float>.stride
        _ = memmove(melFrames.pointer, melFrames.pointer + bins, (melFrames.count - bins) * floatSize)
        _ = memcpy(melFrames.pointer + (melFrames.count - bins), mel.pointer, bins * floatSize)
        ring.copy(into: context.pointer)
        try step.predict(inputs: stepInputs, outputs: stepOutputs)
        ring.append(UnsafeBufferPointer(contextFrame.buffer))
        let stepDone = DispatchTime.now().uptimeNanoseconds
        // The life layer's prosody of this window, kept until its output frame (lookahead calls later).
        if let life { pendingProsody.append(life.analyzer.features(UnsafeBufferPointer(pcm.buffer))) }

        nextMelFrame = j + 1
        samples.discard(before: schedule.windowStart(ofMelFrame: nextMelFrame))
        guard let k = schedule.outputFrame(forMelFrame: j) else { return nil }
        // Output frame 0 is the unsmoothed one (nothing to smooth with yet); then the smoothed output.
        let source = k == 0 ? blendshapesRaw : blendshapes
        _ = memcpy(previous.pointer, source.pointer, previous.count * floatSize)
        emittedFrames += 1
        var values = controlsFilter.process(source.values)
        let controlsDone = DispatchTime.now().uptimeNanoseconds
        var rotations = [Double](repeating: 0, count: A2BSLifeLayer.rotationNames.count)
        if let life {
            let lived = life.process(curves: values, features: pendingProsody.removeFirst())
            values = lived.values
            rotations = lived.rotations
        }
        let lifeDone = DispatchTime.now().uptimeNanoseconds
        let frame = A2BSFrame(index: k, time: TimeInterval(k) / TimeInterval(schedule.fps), values: values,
                              names: names, rotations: rotations, frontEndMs: Double(frontEndDone - start) / 1e6,
                              stepMs: Double(stepDone - frontEndDone) / 1e6,
                              controlsMs: Double(controlsDone - stepDone) / 1e6,
                              lifeMs: Double(lifeDone - controlsDone) / 1e6)
        frameHandler?(frame)
        return frame
    }
}
