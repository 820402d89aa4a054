// The Apple-only part of the engine: Core ML compute units, the `MLModel` runner and the model loader.
// Everything else is platform-independent and tested on Linux; this file compiles only where Core ML exists.
#if canImport(CoreML)
import CoreML
import Foundation

/// Which processors Core ML may use. A small model run once per frame: see the README for advice.
public enum A2BSComputeUnits: String, CaseIterable, Identifiable, Sendable {
    case all
    case cpuAndNeuralEngine
    case cpuAndGPU
    case cpuOnly

    public var id: String { rawValue }
    public var mlComputeUnits: MLComputeUnits {
        switch self {
        case .all: return .all
        case .cpuAndNeuralEngine: return .cpuAndNeuralEngine
        case .cpuAndGPU: return .cpuAndGPU
        case .cpuOnly: return .cpuOnly
        }
    }
    public var label: String {
        switch self {
        case .all: return "All"
        case .cpuAndNeuralEngine: return "CPU + ANE"
        case .cpuAndGPU: return "CPU + GPU"
        case .cpuOnly: return "CPU only"
        }
    }
}

public extension A2BSEngine {
    /// Loads the front end and the step model of `variant` (default: the manifest's default_variant)
    /// from a bundle folder, compiling the `.mlpackage`s on first use (see `A2BSModelLoader`).
    /// The engine is returned `sending`: hand it to one queue (`A2BSBackgroundEngine`) and use it only there.
    /// `computeUnits` defaults to `.cpuOnly`, the safe choice for one small model per frame (README: compute units).
    static func load(bundleDirectory: URL, variant: String? = nil,
                     computeUnits: MLComputeUnits = .cpuOnly) async throws -> sending A2BSEngine {
        let manifest = try A2BSManifest.load(bundleDirectory: bundleDirectory)
        let frontEndFile = try manifest.file(role: A2BSContract.frontEndRole)
        let stepFile = try manifest.file(role: A2BSContract.stepRole, variant: variant)
        let frontEnd = try await A2BSModelLoader.load(bundleDirectory.appendingPathComponent(frontEndFile.path),
                                                      sha256: frontEndFile.sha256, computeUnits: computeUnits)
        let step = try await A2BSModelLoader.load(bundleDirectory.appendingPathComponent(stepFile.path),
                                                  sha256: stepFile.sha256, computeUnits: computeUnits)
        return try A2BSEngine(manifest: manifest,
                              frontEnd: A2BSCoreMLRunner(model: frontEnd, spec: manifest.models.frontEnd),
                              step: A2BSCoreMLRunner(model: step, spec: manifest.models.step))
    }
}

/// An `MLModel` behind `A2BSModelRunner`. Input MLMultiArrays wrap the engine's tensors and the feature
/// provider is built once; outputs are copied (a few hundred floats) honouring their strides, which Core ML
/// may pad on the GPU / Neural Engine.
public final class A2BSCoreMLRunner: A2BSModelRunner {
    public let model: MLModel
    private let options = MLPredictionOptions()
    private var provider: MLFeatureProvider?
    private var boundInputs: [ObjectIdentifier] = []
    private var boundTensors: [A2BSTensor] = []  // keeps the wrapped memory alive as long as the arrays

    public init(model: MLModel, spec: A2BSModelSpec) throws {
        self.model = model
        let description = model.modelDescription
        for tensor in spec.inputs where description.inputDescriptionsByName[tensor.name] == nil {
            throw A2BSError.model("the model has no input \(tensor.name)")
        }
        for tensor in spec.outputs where description.outputDescriptionsByName[tensor.name] == nil {
            throw A2BSError.model("the model has no output \(tensor.name)")
        }
    }

    public func predict(inputs: [A2BSTensor], outputs: [A2BSTensor]) throws {
        if provider == nil || boundInputs != inputs.map({ ObjectIdentifier($0) }) { try bind(inputs) }
        let result = try model.prediction(from: provider!, options: options)
        for tensor in outputs {
            guard let array = result.featureValue(for: tensor.name)?.multiArrayValue else {
                throw A2BSError.model("no output \(tensor.name)")
            }
            try Self.copy(array, into: tensor)
        }
    }

    private func bind(_ inputs: [A2BSTensor]) throws {
        var features: [String: Any] = [:]
        for tensor in inputs {
            features[tensor.name] = try MLMultiArray(
                dataPointer: tensor.pointer, shape: tensor.shape.map { NSNumber(value: $0) }, dataType: .float32,
                strides: tensor.contiguousStrides.map { NSNumber(value: $0) }, deallocator: nil)
        }
        provider = try MLDictionaryFeatureProvider(dictionary: features)
        boundInputs = inputs.map { ObjectIdentifier($0) }
        boundTensors = inputs
    }

    /// Copies a (possibly strided) output array into a contiguous tensor of the same element count.
    static func copy(_ array: MLMultiArray, into tensor: A2BSTensor) throws {
        let shape = array.shape.map(\.intValue)
        guard shape.reduce(1, *) == tensor.count else {
            throw A2BSError.model("\(tensor.name) has shape \(shape), the manifest says \(tensor.shape)")
        }
        let strides = array.strides.map(\.intValue)
        if array.dataType == .float32 && strides == tensor.contiguousStrides {  // the usual case: one memcpy
            array.withUnsafeBufferPointer(ofType: Float.self) { src in
                _ = memcpy(tensor.pointer, src.baseAddress!, tensor.count * MemoryLayout<Float>.stride)
            }
            return
        }
        // Offsets of every element in row-major order (the tensors here are a few hundred values).
        var offsets = [0]
        for axis in shape.indices {
            offsets = offsets.flatMap { base in (0..<shape[axis]).map { base + $0 * strides[axis] } }
        }
        switch array.dataType {
        case .float32:
            array.withUnsafeBufferPointer(ofType: Float.self) { src in
                for (i, offset) in offsets.enumerated() { tensor.pointer[i] = src[offset] }
            }
        case .double:
            array.withUnsafeBufferPointer(ofType: Double.self) { src in
                for (i, offset) in offsets.enumerated() { tensor.pointer[i] = Float(src[offset]) }
            }
        default:  // float16 / int32: slow but correct
            var index = Array(repeating: 0, count: shape.count)
            for i in 0..<tensor.count {
                var rest = i
                for axis in shape.indices.reversed() {
                    index[axis] = rest % shape[axis]
                    rest /= shape[axis]
                }
                tensor.pointer[i] = array[index.map { NSNumber(value: $0) }].floatValue
            }
        }
    }
}

/// Loads the `.mlpackage` files of a bundle.
///
/// A bundle copied into the app as a plain resource folder holds `.mlpackage` sources, which Core ML cannot
/// load directly: they are compiled on the device the first time (`MLModel.compileModel(at:)`, a second or
/// so) and the compiled `.mlmodelc` is cached under Application Support, keyed by the file's sha256 from the
/// manifest and the OS version. If instead you add the `.mlpackage` to an Xcode app target, Xcode compiles it
/// at build time; pass the resulting `.mlmodelc` URL and it is loaded as is.
public enum A2BSModelLoader {
    public static func load(_ url: URL, sha256: String, computeUnits: MLComputeUnits) async throws -> MLModel {
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        let compiled = url.pathExtension == "mlmodelc" ? url : try await compiledModel(for: url, sha256: sha256)
        return try await MLModel.load(contentsOf: compiled, configuration: configuration)
    }

    static func compiledModel(for source: URL, sha256: String) async throws -> URL {
        let fileManager = FileManager.default
        let cache = try fileManager.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil,
                                        create: true).appendingPathComponent("A2BSCompiledModels", isDirectory: true)
        try fileManager.createDirectory(at: cache, withIntermediateDirectories: true)
        let os = ProcessInfo.processInfo.operatingSystemVersionString
            .components(separatedBy: CharacterSet.alphanumerics.inverted).joined()
        let target = cache.appendingPathComponent("\(sha256)-\(os).mlmodelc", isDirectory: true)
        if fileManager.fileExists(atPath: target.path) { return target }
        let temporary = try await MLModel.compileModel(at: source)
        try? fileManager.removeItem(at: target)
        try fileManager.moveItem(at: temporary, to: target)
        return target
    }
}
#endif
