import Foundation
import XCTest
@testable import A2BSEngine

// The engine against a real bundle, without Core ML: tests/test_ios_sample.py builds an iOS bundle, runs its Core ML
// models frame by frame over a speech clip (through the NumPy MIL executor on Linux) and records every call. Here
// the engine reads that bundle's manifest.json and the clip, builds every model input itself, and is answered by
// replay runners that check each input against the recording and return the recorded outputs. Its frames must equal
// the Python reference (`iter_bundle_blendshapes`). The folder comes from A2BS_REPLAY_DIR:
//
//   manifest.json          the bundle's manifest        clip.wav            16-bit mono PCM at the bundle's rate
//   trace.json, trace.f32  the recorded calls           reference.f32       the reference frames (n x blendshapes)
//   android_manifest.json  an Android bundle's manifest (must be refused)
//   reference_life.f32, reference_rotations.f64   the reference frames through the Python life layer (the
//                          manifest's `life` parameters, seed 0, each frame's PCM window): what the engine must emit
//   reference_controls.json, reference_controls_life.f32, reference_controls_rotations.f64   face controls (a
//                          manifest-style `controls` section) and the reference frames through Python's controls, then
//                          its life layer: what the engine must emit with those controls set
//
// Writes out_<spec>.f32 (the frames of each chunking), out_off.f32 (the life layer at amount 0: the model's frames),
// out_controls.f32 (with the controls) and swift_summary.json back into the folder for pytest.

/// Chunkings of the clip: one sample at a time, 10 ms, 64 ms, random sizes, all at once.
let replaySpecs = ["1", "160", "1024", "irregular", "all"]

struct ReplayMismatch: Error, CustomStringConvertible {
    let description: String
}

/// trace.json + trace.f32: `calls` records of the concatenated `fields` ("in:<name>" / "out:<name>", size),
/// little-endian float32, plus the Python frame centre of each call.
struct ReplayTrace {
    let calls: Int
    let tolerance: Float
    let centers: [Int]
    let fields: [String: Range<Int>]
    let callSize: Int
    let values: [Float]

    init(directory: URL) throws {
        struct Index: Decodable {
            let calls: Int
            let tolerance: Float
            let centers: [Int]
            let fields: [[Field]]
        }
        enum Field: Decodable {
            case name(String), size(Int)
            init(from decoder: any Decoder) throws {
                let value = try decoder.singleValueContainer()
                if let size = try? value.decode(Int.self) { self = .size(size) } else { self = .name(try value.decode(String.self)) }
            }
        }
        let index = try JSONDecoder().decode(Index.self, from: Data(contentsOf: directory.appendingPathComponent("trace.json")))
        var fields: [String: Range<Int>] = [:]
        var offset = 0
        for pair in index.fields {
            guard pair.count == 2, case .name(let name) = pair[0], case .size(let size) = pair[1] else {
                throw ReplayMismatch(description: "trace.json: bad field \(pair)")
            }
            fields[name] = offset..<(offset + size)
            offset += size
        }
        calls = index.calls
        tolerance = index.tolerance
        centers = index.centers
        self.fields = fields
        callSize = offset
        values = try readFloat32(directory.appendingPathComponent("trace.f32"))
        guard values.count == calls * callSize, centers.count == calls else {
            throw ReplayMismatch(description: "trace.f32 has \(values.count) floats, want \(calls) x \(callSize)")
        }
    }

    func field(_ name: String, call: Int) throws -> ArraySlice<Float> {
        guard let range = fields[name] else { throw ReplayMismatch(description: "the trace has no field \(name)") }
        return values[(call * callSize + range.lowerBound)..<(call * callSize + range.upperBound)]
    }
}

/// One model answered from the trace: every input the engine hands it must equal the recorded one (within the
/// trace's tolerance); the outputs are the recorded ones. `follows`: the step call j must come right after the
/// front-end call j.
final class ReplayRunner: A2BSModelRunner {
    let role: String
    let trace: ReplayTrace
    let follows: ReplayRunner?
    private(set) var calls = 0

    init(role: String, trace: ReplayTrace, follows: ReplayRunner? = nil) {
        self.role = role
        self.trace = trace
        self.follows = follows
    }

    func predict(inputs: [A2BSTensor], outputs: [A2BSTensor]) throws {
        let call = calls
        calls += 1
        guard call < trace.calls else { throw ReplayMismatch(description: "more \(role) calls than recorded (\(trace.calls))") }
        if let follows, follows.calls != call + 1 {
            throw ReplayMismatch(description: "\(role) call \(call) after \(follows.calls) \(follows.role) calls")
        }
        for tensor in inputs {
            let recorded = try trace.field("in:" + tensor.name, call: call)
            guard recorded.count == tensor.count else {
                throw ReplayMismatch(description: "\(role) call \(call) \(tensor.name): \(tensor.count) values, recorded \(recorded.count)")
            }
            // The inputs are copies of recorded values, so usually bit-identical: memcmp first (the context alone is
            // some 10^5 values per call, slow to loop over in a debug build), then the tolerance, value by value.
            let mismatch = recorded.withUnsafeBufferPointer { want -> Int? in
                if memcmp(want.baseAddress!, tensor.pointer, tensor.count * MemoryLayout<Float>.stride) == 0 { return nil }
                return (0..<tensor.count).first { !(abs(tensor.pointer[$0] - want[$0]) <= trace.tolerance) }
            }
            if let i = mismatch {
                throw ReplayMismatch(description: "\(role) call \(call) \(tensor.name): value \(i) is \(tensor.pointer[i]), "
                                         + "recorded \(recorded[recorded.startIndex + i])")
            }
        }
        for tensor in outputs { tensor.fill(with: Array(try trace.field("out:" + tensor.name, call: call))) }
    }
}

/// Little-endian float32 (the byte order of every platform Swift runs on).
func readFloat32(_ url: URL) throws -> [Float] {
    let data = try Data(contentsOf: url)
    var values = [Float](repeating: 0, count: data.count / MemoryLayout<Float>.size)
    _ = values.withUnsafeMutableBytes { data.copyBytes(to: $0) }
    return values
}

func writeFloat32(_ values: [Float], to url: URL) throws {
    var data = Data(capacity: values.count * 4)
    for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
    try data.write(to: url)
}

/// A 16-bit PCM mono WAV (what `a2bs-convert --install-into` ships as sample_clip.wav) as floats in [-1, 1).
/// The app reads the clip with AVAudioFile, which Linux lacks; this small reader stands in for it here.
func readPCM16Wav(_ url: URL) throws -> (sampleRate: Int, samples: [Float]) {
    let bytes = [UInt8](try Data(contentsOf: url))
    func u32(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24 }
    func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
    guard bytes.count >= 12, String(decoding: bytes[0..<4], as: UTF8.self) == "RIFF",
          String(decoding: bytes[8..<12], as: UTF8.self) == "WAVE" else { throw ReplayMismatch(description: "\(url.path) is not a WAV file") }
    var at = 12, sampleRate = 0
    while at + 8 <= bytes.count {
        let id = String(decoding: bytes[at..<(at + 4)], as: UTF8.self), size = u32(at + 4), body = at + 8
        if id == "fmt " {
            guard u16(body) == 1, u16(body + 2) == 1, u16(body + 14) == 16 else {
                throw ReplayMismatch(description: "\(url.path): not 16-bit PCM mono")
            }
            sampleRate = u32(body + 4)
        } else if id == "data" {
            let end = min(body + size, bytes.count)
            let samples = stride(from: body, to: end - 1, by: 2).map { Float(Int16(bitPattern: UInt16(u16($0)))) / 32768 }
            return (sampleRate, samples)
        }
        at = body + size + (size & 1)
    }
    throw ReplayMismatch(description: "\(url.path) has no data chunk")
}

/// Deterministic chunk sizes (splitmix64), so a failing chunking can be rerun.
struct ChunkSizes {
    private var state: UInt64 = 11

    mutating func next(_ spec: String, total: Int) -> Int {
        switch spec {
        case "all": return total
        case "irregular":
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Int(z % 2 == 0 ? z % 40 : z % 3000)  // 0 (an empty push) up to several frames at once
        default: return Int(spec) ?? total
        }
    }
}

/// The replay folder; in CI (environment variable CI set) a missing one is a failure, elsewhere a skip.
func replayFolder() throws -> URL {
    let environment = ProcessInfo.processInfo.environment
    guard let path = environment["A2BS_REPLAY_DIR"], !path.isEmpty else {
        let why = "A2BS_REPLAY_DIR is not set: run `pytest tests/test_ios_sample.py`, which records a trace from a real "
            + "bundle and runs `swift test` with it"
        if environment["CI"].map({ !$0.isEmpty && $0 != "0" && $0.lowercased() != "false" }) ?? false {
            throw ReplayMismatch(description: why)  // a failure, not a skip
        }
        throw XCTSkip(why)
    }
    return URL(fileURLWithPath: path, isDirectory: true)
}


final class ReplayTests: XCTestCase {
    func replayDirectory() throws -> URL { try replayFolder() }

    func testReplaysTheRecordedCoreMLTrace() throws {
        let directory = try replayDirectory()
        let manifest = try A2BSManifest.load(bundleDirectory: directory)
        let trace = try ReplayTrace(directory: directory)
        let clip = try readPCM16Wav(directory.appendingPathComponent("clip.wav"))
        XCTAssertEqual(clip.sampleRate, manifest.sampleRate)
        let width = manifest.blendshapes.count
        let modelReference = try readFloat32(directory.appendingPathComponent("reference.f32"))
        let referenceFrames = modelReference.count / width
        // The engine runs the manifest's life layer over the model's frames: the reference is Python's layer over them.
        XCTAssertNotNil(manifest.life, "the bundle's manifest has no life section")
        let reference = try readFloat32(directory.appendingPathComponent("reference_life.f32"))
        let referenceRotations = try readFloat64(directory.appendingPathComponent("reference_rotations.f64"))
        let rotationCount = A2BSLifeLayer.rotationNames.count
        XCTAssertEqual(reference.count, modelReference.count)
        XCTAssertEqual(referenceRotations.count, referenceFrames * rotationCount)
        XCTAssertEqual(referenceFrames, A2BSFrameSchedule(manifest).outputFrameCount(forSamples: clip.samples.count))

        var summary: [String: Any] = [
            "trained": manifest.isTrained, "groups": manifest.orderedGroups.map(\.name), "fps": manifest.fps,
            "variants": try manifest.variants.map { try manifest.file(role: A2BSContract.stepRole, variant: $0).path },
            "front_end": try manifest.file(role: A2BSContract.frontEndRole).path,
        ]
        // Every group of the bundle has its place in the contract's display order.
        XCTAssertEqual(Set(manifest.blendshapeGroups.keys), Set(A2BSContract.groupOrder))
        var specs: [String: Any] = [:]
        for spec in replaySpecs {
            do {
                let frames = try replay(spec, manifest: manifest, trace: trace, samples: clip.samples)
                XCTAssertEqual(frames.count, referenceFrames, spec)
                for (k, frame) in frames.enumerated() {
                    XCTAssertEqual(frame.index, k)
                    XCTAssertEqual(frame.time, Double(k) / Double(manifest.fps), accuracy: 1e-9)
                    for (i, value) in frame.values.enumerated() where !(abs(value - reference[k * width + i]) <= trace.tolerance) {
                        throw ReplayMismatch(description: "\(spec): frame \(k) \(manifest.blendshapes[i]) is \(value), "
                                                 + "the Python reference (life layer on) \(reference[k * width + i])")
                    }
                    for (i, angle) in frame.rotations.enumerated()
                    where !(abs(angle - referenceRotations[k * rotationCount + i]) <= Double(trace.tolerance)) {
                        throw ReplayMismatch(description: "\(spec): frame \(k) life layer \(A2BSLifeLayer.rotationNames[i]) is "
                                                 + "\(angle), the Python reference \(referenceRotations[k * rotationCount + i])")
                    }
                }
                try writeFloat32(frames.flatMap(\.values), to: directory.appendingPathComponent("out_\(spec).f32"))
                specs[spec] = ["frames": frames.count]
            } catch let mismatch as ReplayMismatch {
                XCTFail("replay with chunks of \(spec): \(mismatch)")
            }
        }
        summary["specs"] = specs
        // The life layer's amount at 0 (the app's slider at off): the model's frames as they are, zero rotations.
        do {
            let frames = try replay("1024", manifest: manifest, trace: trace, samples: clip.samples, lifeAmount: 0)
            XCTAssertEqual(frames.count, referenceFrames)
            for (k, frame) in frames.enumerated() {
                XCTAssertEqual(frame.rotations, [Double](repeating: 0, count: rotationCount))
                for (i, value) in frame.values.enumerated() where !(abs(value - modelReference[k * width + i]) <= trace.tolerance) {
                    throw ReplayMismatch(description: "life amount 0: frame \(k) \(manifest.blendshapes[i]) is \(value), "
                                             + "the model's \(modelReference[k * width + i])")
                }
            }
            try writeFloat32(frames.flatMap(\.values), to: directory.appendingPathComponent("out_off.f32"))
            summary["life_off"] = ["frames": frames.count]
        } catch let mismatch as ReplayMismatch {
            XCTFail("replay with the life layer off: \(mismatch)")
        }
        // The face controls set at run time: model -> controls -> life, the smoothing's state carried across chunks.
        do {
            let section = try JSONDecoder().decode(
                A2BSControlsSection.self, from: Data(contentsOf: directory.appendingPathComponent("reference_controls.json")))
            let want = try readFloat32(directory.appendingPathComponent("reference_controls_life.f32"))
            let wantRotations = try readFloat64(directory.appendingPathComponent("reference_controls_rotations.f64"))
            let frames = try replay("irregular", manifest: manifest, trace: trace, samples: clip.samples,
                                    controls: section.params)
            XCTAssertEqual(frames.count, referenceFrames)
            for (k, frame) in frames.enumerated() {
                for (i, value) in frame.values.enumerated() where !(abs(value - want[k * width + i]) <= trace.tolerance) {
                    throw ReplayMismatch(description: "controls: frame \(k) \(manifest.blendshapes[i]) is \(value), the "
                                             + "Python reference (controls, then life) \(want[k * width + i])")
                }
                for (i, angle) in frame.rotations.enumerated()
                where !(abs(angle - wantRotations[k * rotationCount + i]) <= Double(trace.tolerance)) {
                    throw ReplayMismatch(description: "controls: frame \(k) \(A2BSLifeLayer.rotationNames[i]) is \(angle), "
                                             + "the Python reference \(wantRotations[k * rotationCount + i])")
                }
            }
            try writeFloat32(frames.flatMap(\.values), to: directory.appendingPathComponent("out_controls.f32"))
            summary["controls"] = ["frames": frames.count]
        } catch let mismatch as ReplayMismatch {
            XCTFail("replay with the face controls: \(mismatch)")
        }
        let json = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
        try json.write(to: directory.appendingPathComponent("swift_summary.json"))
    }

    /// Feeds the clip in chunks of `spec`, checking after every push that exactly the frames whose window is
    /// complete ran (frame centres from Python), then flushes.
    func replay(_ spec: String, manifest: A2BSManifest, trace: ReplayTrace, samples: [Float],
                lifeAmount: Double? = nil, controls: A2BSFaceControls? = nil) throws -> [A2BSFrame] {
        let frontEnd = ReplayRunner(role: "front end", trace: trace)
        let step = ReplayRunner(role: "step", trace: trace, follows: frontEnd)
        let engine = try A2BSEngine(manifest: manifest, frontEnd: frontEnd, step: step)
        if let lifeAmount { engine.lifeAmount = lifeAmount }
        if let controls { engine.controls = controls }
        let half = manifest.timeline.window / 2, lookahead = manifest.timeline.lookaheadFrames
        var frames: [A2BSFrame] = []
        var chunks = ChunkSizes(), fed = 0, due = 0
        while fed < samples.count {
            let n = min(chunks.next(spec, total: samples.count), samples.count - fed)
            frames += try samples[fed..<(fed + n)].withUnsafeBufferPointer { try engine.push(samples: $0) }
            fed += n
            while due < trace.calls && trace.centers[due] + half <= fed { due += 1 }
            guard frontEnd.calls == due, frames.count == max(0, due - lookahead) else {
                throw ReplayMismatch(description: "after \(fed) samples: \(frontEnd.calls) mel frames ran and "
                                         + "\(frames.count) frames came out; due: \(due) and \(max(0, due - lookahead))")
            }
        }
        frames += try engine.flush()
        guard frontEnd.calls == trace.calls, step.calls == trace.calls else {
            throw ReplayMismatch(description: "\(frontEnd.calls)/\(step.calls) model calls, recorded \(trace.calls)")
        }
        return frames
    }

    /// The engine refuses a real Android bundle's manifest up front, naming the platform.
    func testRefusesAnAndroidManifest() throws {
        let directory = try replayDirectory()
        let data = try Data(contentsOf: directory.appendingPathComponent("android_manifest.json"))
        XCTAssertThrowsError(try A2BSManifest.decode(data)) { error in
            XCTAssertTrue(error.localizedDescription.contains("'android'"), error.localizedDescription)
            XCTAssertTrue(error.localizedDescription.contains("a2bs-convert ios"), error.localizedDescription)
        }
    }
}
