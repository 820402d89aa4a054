import Foundation

/// Mono PCM addressed by absolute sample index since the stream start. Reads below index 0 (before the
/// stream) and at or past `end` (after a flushed stream) are zeros, as in the Python reference. Samples
/// no mel frame needs any more are dropped with `discard(before:)`, so memory stays bounded in live mode.
public struct A2BSSampleBuffer {
    private var storage: [Float] = []
    /// storage[head] is the sample with absolute index `start`.
    private var head = 0
    public private(set) var start = 0

    public init() {}

    /// One past the newest sample: the number of samples received since the stream start.
    public var end: Int { start + storage.count - head }

    public mutating func append(_ samples: UnsafeBufferPointer<Float>) {
        storage.append(contentsOf: samples)
    }

    public mutating func append(_ samples: [Float]) {
        storage.append(contentsOf: samples)
    }

    /// Forgets every sample with an index below `index`.
    public mutating func discard(before index: Int) {
        let drop = min(max(index - start, 0), storage.count - head)
        head += drop
        start += drop
        if head > 0 && head >= storage.count - head {  // compact once the dead prefix outweighs the live part
            storage.removeFirst(head)
            head = 0
        }
    }

    public mutating func removeAll() {
        storage.removeAll(keepingCapacity: true)
        head = 0
        start = 0
    }

    /// Copies samples [first, first + count) into `destination`, zeros outside [0, end).
    /// Indices in [0, start) were discarded and must not be asked for.
    public func copy(from first: Int, count: Int, into destination: UnsafeMutablePointer<Float>) {
        precondition(first + count <= 0 || max(first, 0) >= start, "samples before \(start) were discarded")
        destination.update(repeating: 0, count: count)
        let lo = max(first, start)
        let hi = min(first + count, end)
        guard lo < hi else { return }
        storage.withUnsafeBufferPointer { src in
            (destination + (lo - first)).update(from: src.baseAddress! + head + (lo - start), count: hi - lo)
        }
    }
}
