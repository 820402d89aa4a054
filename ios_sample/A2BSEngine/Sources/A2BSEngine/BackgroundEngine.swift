import Dispatch
import Foundation

/// Runs an `A2BSEngine` on its own serial queue, so neither the audio thread nor the main thread ever waits
/// for a model call. Push from any thread (samples arrive in the order they were pushed); frames and errors are
/// delivered on the main actor, in order.
///
/// Swift 6 concurrency: the engine is not `Sendable`; it is handed over (`sending`) at init and from then on
/// touched only on `queue`, which is what makes this class safe to share (`@unchecked Sendable`). The callbacks
/// are main-actor state, set and called on the main actor. What the UI needs from the engine (`manifest`,
/// `names`) is copied out as `Sendable` values.
public final class A2BSBackgroundEngine: @unchecked Sendable {
    public let manifest: A2BSManifest
    public let names: A2BSBlendshapeNames
    /// Frames produced by one push or flush, oldest first.
    @MainActor public var onFrames: (@MainActor ([A2BSFrame]) -> Void)?
    /// A model call failed; the engine was reset.
    @MainActor public var onError: (@MainActor (any Error) -> Void)?
    private let engine: A2BSEngine  // only on `queue`
    private let queue = DispatchQueue(label: "a2bs.engine", qos: .userInitiated)

    public init(engine: sending A2BSEngine) {
        manifest = engine.manifest
        names = engine.names
        self.engine = engine
    }

    /// Queues a copy of the samples (mono Float32 in [-1, 1] at the manifest's sample_rate).
    public func push(_ samples: [Float]) {
        queue.async { [self] in deliver { try engine.push(samples: samples) } }
    }

    /// Queues the end of the stream; `completion` runs on the main actor after the last frame was delivered.
    public func flush(completion: (@MainActor @Sendable () -> Void)? = nil) {
        queue.async { [self] in
            deliver { try engine.flush() }
            DispatchQueue.main.async { completion?() }
        }
    }

    /// Queues a new life-layer amount (0: off, 1: the manifest's preset; `A2BSEngine.lifeAmount`), for a slider:
    /// frames made after it use it. No effect when the manifest has no `life` section.
    public func setLifeAmount(_ amount: Double) {
        queue.async { [self] in engine.lifeAmount = amount }
    }

    /// Queues new face controls (`A2BSEngine.controls`: clamped to their limits, the smoothing's state kept), for
    /// sliders: frames made after it use them.
    public func setControls(_ controls: A2BSFaceControls) {
        queue.async { [self] in engine.controls = controls }
    }

    /// Queues a reset (drops whatever was pushed before and not yet processed into frames).
    public func reset() {
        queue.async { [self] in engine.reset() }
    }

    /// Runs `work` on the engine (on its queue) and delivers the frames or the error on the main actor.
    private func deliver(_ work: () throws -> [A2BSFrame]) {
        dispatchPrecondition(condition: .onQueue(queue))
        do {
            let frames = try work()
            guard !frames.isEmpty else { return }
            DispatchQueue.main.async { [weak self] in self?.onFrames?(frames) }
        } catch {
            engine.reset()
            DispatchQueue.main.async { [weak self] in self?.onError?(error) }
        }
    }
}
