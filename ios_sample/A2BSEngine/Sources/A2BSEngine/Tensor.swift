/// A float32 tensor the engine owns for the whole stream: allocated once, written in place every frame.
/// On Apple platforms Core ML sees it through an `MLMultiArray` that wraps the same memory (no copy on the
/// input side, see CoreMLRunner.swift).
public final class A2BSTensor {
    public let name: String
    public let shape: [Int]
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(_ spec: A2BSTensorSpec) {
        name = spec.name
        shape = spec.shape
        count = spec.count
        pointer = .allocate(capacity: count)
        pointer.initialize(repeating: 0, count: count)
    }

    deinit { pointer.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var values: [Float] { Array(buffer) }

    public func fill(with values: [Float]) {
        precondition(values.count == count, "\(name) has \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    /// Row-major strides of `shape`.
    var contiguousStrides: [Int] {
        var strides = Array(repeating: 1, count: shape.count)
        for axis in stride(from: shape.count - 2, through: 0, by: -1) { strides[axis] = strides[axis + 1] * shape[axis + 1] }
        return strides
    }
}

/// One model of the bundle. `A2BSEngine` calls it once per mel frame with its own preallocated tensors
/// (the same objects every call), in manifest order, always from the thread or queue that drives the engine.
/// `A2BSCoreMLRunner` (Apple platforms) runs an `MLModel`; tests substitute fakes and replays of recorded
/// Core ML outputs, which is how the engine is tested without Core ML.
public protocol A2BSModelRunner: AnyObject {
    /// Runs the model on `inputs` and writes every output into the tensor of the same name.
    func predict(inputs: [A2BSTensor], outputs: [A2BSTensor]) throws
}
