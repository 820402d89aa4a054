import Foundation

/// Runs an `A2BSEngine` on its own serial queue, so neither the audio thread nor the main thread ever waits
/// for a model call. Push from any thread; frames and errors arrive on the main queue.
public final class A2BSBackgroundEngine: @unchecked Sendable {  // all engine work is serialized on `queue`
    public let engine: A2BSEngine
    /// Frames produced by one push or flush, oldest first (main queue).
    public var onFrames: (([A2BSFrame]) -> Void)?
    /// A model call failed; the engine was reset (main queue).
    public var onError: ((Error) -> Void)?
    private let queue = DispatchQueue(label: "a2bs.engine", qos: .userInitiated)

    public init(engine: A2BSEngine) {
        self.engine = engine
    }

    /// Queues a copy of the samples (16 kHz mono in [-1, 1], the manifest's sample_rate).
    public func push(_ samples: [Float]) {
        queue.async { [self] in deliver { try engine.push(samples: samples) } }
    }

    /// Queues the end of the stream; `completion` runs on the main queue after the last frame was delivered.
    public func flush(completion: (() -> Void)? = nil) {
        queue.async { [self] in
            deliver { try engine.flush() }
            DispatchQueue.main.async { completion?() }
        }
    }

    /// Queues a reset (drops whatever was pushed before and not yet processed into frames).
    public func reset() {
        queue.async { [self] in engine.reset() }
    }

    private func deliver(_ work: () throws -> [A2BSFrame]) {
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
