import XCTest
@testable import A2BSEngine

// Pure-logic tests (`swift test`, on Linux and on a Mac). They use a miniature manifest with made-up sizes and fake
// models, which also proves that no size of the real bundle is baked into the engine. ReplayTests.swift drives the
// same engine with the outputs recorded from a real bundle's Core ML models.

/// A tiny but complete manifest: 10 fps at 100 Hz, window 8, lookahead 2, N = 5, 3 mel bins, 4-wide
/// context rows, 2 emotion values, 3 blendshapes.
let miniManifestJSON = """
{
  "format": "a2bs-bundle", "format_version": 1, "platform": "ios", "fps": 10, "sample_rate": 100,
  "context_frames": 5,
  "timeline": {"window": 8, "lookahead_frames": 2, "latency_ms": 240.0},
  "blendshapes": ["jawOpen", "mouthClose", "eyeBlinkLeft"],
  "blendshape_groups": {"eyes": ["eyeBlinkLeft"], "jaw": ["jawOpen"], "mouth": ["mouthClose"], "zz": []},
  "initial_state": {"mel_frames": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]],
                    "context_frame": [1, 2, 3, 4]},
  "emotion": {"dim": 2, "neutral": [0, 0]},
  "models": {
    "front_end": {"inputs": [{"name": "pcm", "shape": [1, 8], "dtype": "float32"}],
                  "outputs": [{"name": "mel", "shape": [1, 3], "dtype": "float32"}]},
    "step": {"inputs": [{"name": "mel_frames", "shape": [1, 3, 3], "dtype": "float32"},
                        {"name": "context", "shape": [1, 4, 4], "dtype": "float32"},
                        {"name": "emotion", "shape": [1, 2], "dtype": "float32"},
                        {"name": "previous", "shape": [1, 3], "dtype": "float32"}],
             "outputs": [{"name": "blendshapes", "shape": [1, 3], "dtype": "float32"},
                         {"name": "blendshapes_raw", "shape": [1, 3], "dtype": "float32"},
                         {"name": "context_frame", "shape": [1, 4], "dtype": "float32"}]}
  },
  "default_variant": "fp16", "variants": ["fp16"],
  "files": [{"path": "f.mlpackage", "sha256": "a", "bytes": 1, "role": "front_end", "variant": "fp32"},
            {"path": "s.mlpackage", "sha256": "b", "bytes": 1, "role": "step", "variant": "fp16"}]
}
"""

func miniManifest() throws -> A2BSManifest {
    try JSONDecoder().decode(A2BSManifest.self, from: Data(miniManifestJSON.utf8))
}

/// Front end: mel = [sum, first, last] of the window; records every window it saw.
final class FakeFrontEnd: A2BSModelRunner {
    var windows: [[Float]] = []
    func predict(inputs: [A2BSTensor], outputs: [A2BSTensor]) throws {
        let pcm = inputs[0].values
        windows.append(pcm)
        outputs[0].fill(with: [pcm.reduce(0, +), pcm.first!, pcm.last!])
    }
}

/// Step: a deterministic mix of every input, so any scheduling or state mistake changes the outputs.
final class FakeStep: A2BSModelRunner {
    var calls: [[[Float]]] = []
    func predict(inputs: [A2BSTensor], outputs: [A2BSTensor]) throws {
        let values = inputs.map(\.values)
        calls.append(values)
        let mel = values[0].reduce(0, +)
        let context = values[1].enumerated().map { Float($0.offset + 1) * $0.element }.reduce(0, +)
        let previous = values[3].reduce(0, +)
        outputs[0].fill(with: [mel, context, previous + 1])
        outputs[1].fill(with: [mel * 2, context * 2, previous * 2])
        outputs[2].fill(with: [mel, context / 100, previous, Float(calls.count)])
    }
}

final class ScheduleTests: XCTestCase {
    func testCentersRoundHalvesUp() {
        let schedule = A2BSFrameSchedule(fps: 3, sampleRate: 5, window: 4, lookahead: 1)
        // j * 5 / 3 = 0, 1.67, 3.33, 5 -> 0, 2, 3, 5; 0.5 rounds up: fps 2, sr 1 -> j / 2.
        XCTAssertEqual((0..<4).map { schedule.center(ofMelFrame: $0) }, [0, 2, 3, 5])
        let halves = A2BSFrameSchedule(fps: 2, sampleRate: 1, window: 2, lookahead: 0)
        XCTAssertEqual((0..<4).map { halves.center(ofMelFrame: $0) }, [0, 1, 1, 2])
    }

    func testDueAndOutputCount() throws {
        let schedule = A2BSFrameSchedule(try miniManifest())
        XCTAssertEqual(schedule.windowStart(ofMelFrame: 0), -4)
        XCTAssertEqual(schedule.samplesNeeded(forMelFrame: 0), 4)
        XCTAssertEqual(schedule.samplesNeeded(forMelFrame: 3), 34)
        XCTAssertEqual(schedule.melFramesDue(forSamples: 33), 3)
        XCTAssertEqual(schedule.melFramesDue(forSamples: 34), 4)
        XCTAssertNil(schedule.outputFrame(forMelFrame: 1))
        XCTAssertEqual(schedule.outputFrame(forMelFrame: 2), 0)
        XCTAssertEqual(schedule.outputFrameCount(forSamples: 0), 0)
        XCTAssertEqual(schedule.outputFrameCount(forSamples: 10), 1)
        XCTAssertEqual(schedule.outputFrameCount(forSamples: 11), 2)
        XCTAssertEqual(schedule.lookaheadSamples, 24)
    }
}

final class BufferTests: XCTestCase {
    func testSampleBufferZeroPadsAndDiscards() {
        var buffer = A2BSSampleBuffer()
        buffer.append((1...10).map(Float.init))
        var out = [Float](repeating: -1, count: 6)
        buffer.copy(from: -3, count: 6, into: &out)
        XCTAssertEqual(out, [0, 0, 0, 1, 2, 3])
        buffer.discard(before: 7)
        XCTAssertEqual(buffer.start, 7)
        XCTAssertEqual(buffer.end, 10)
        buffer.copy(from: 8, count: 6, into: &out)
        XCTAssertEqual(out, [9, 10, 0, 0, 0, 0])
        buffer.append([11, 12])
        buffer.copy(from: 7, count: 5, into: &out)
        XCTAssertEqual(Array(out.prefix(5)), [8, 9, 10, 11, 12])
    }

    func testContextRingKeepsNewestRowsOldestFirst() {
        var ring = A2BSContextRing(rows: 3, width: 2, initialRow: [0, 0])
        for i in 1...5 { [Float(i), Float(-i)].withUnsafeBufferPointer { ring.append($0) } }
        XCTAssertEqual((0..<3).map { ring.row($0) }, [[3, -3], [4, -4], [5, -5]])
        var flat = [Float](repeating: 0, count: 6)
        ring.copy(into: &flat)
        XCTAssertEqual(flat, [3, -3, 4, -4, 5, -5])
    }
}

final class ManifestTests: XCTestCase {
    func testDecodesAndValidates() throws {
        let manifest = try miniManifest()
        XCTAssertNoThrow(try manifest.validate())
        XCTAssertEqual(manifest.orderedGroups.map(\.name), ["jaw", "mouth", "eyes", "zz"])
        XCTAssertEqual(try manifest.file(role: A2BSContract.stepRole).path, "s.mlpackage")
        XCTAssertEqual(try manifest.file(role: A2BSContract.frontEndRole, variant: "fp16").path, "f.mlpackage")
        XCTAssertThrowsError(try manifest.file(role: A2BSContract.stepRole, variant: "int8"))
        XCTAssertEqual(A2BSSizes(manifest), A2BSSizes(manifest))
        XCTAssertEqual(A2BSSizes(manifest).melHistory, 3)
    }

    func testOptionalKeys() throws {
        // No smoothing_alpha (unused by the engine) and no checkpoint: still a valid manifest, counted as trained.
        XCTAssertFalse(miniManifestJSON.contains("smoothing_alpha"))
        XCTAssertTrue(try miniManifest().isTrained)
        let untrained = miniManifestJSON.replacingOccurrences(
            of: "\"files\":", with: "\"checkpoint\": {\"trained\": false, \"source\": \"x\"}, \"files\":")
        XCTAssertFalse(try A2BSManifest.decode(Data(untrained.utf8)).isTrained)
    }

    /// A manifest for another platform, format or format version is refused up front with a message that says
    /// what it is and what to do, even when the rest of it would not decode.
    func testRefusesOtherBundlesUpFront() throws {
        let cases: [(json: String, says: [String])] = [
            (miniManifestJSON.replacingOccurrences(of: "\"platform\": \"ios\"", with: "\"platform\": \"android\""),
             ["'android'", "a2bs-convert ios"]),
            ("{\"format\": \"a2bs-bundle\", \"format_version\": 1, \"platform\": \"android\"}", ["'android'"]),
            ("{\"format\": \"a2bs-bundle\", \"format_version\": 2, \"platform\": \"ios\"}", ["format_version 2"]),
            ("{\"format\": \"something-else\"}", ["'something-else'"]),
            ("{\"fps\": 30}", ["format none"]),
        ]
        for (json, says) in cases {
            XCTAssertThrowsError(try A2BSManifest.decode(Data(json.utf8))) { error in
                guard case A2BSError.incompatibleBundle = error else { return XCTFail("\(error) for \(json.prefix(60))") }
                let message = error.localizedDescription
                for part in says { XCTAssertTrue(message.contains(part), "\(message) lacks \(part)") }
            }
        }
        XCTAssertNoThrow(try A2BSManifest.decode(Data(miniManifestJSON.utf8)))
    }

    func testRejectsReorderedInputs() throws {
        let swapped = miniManifestJSON.replacingOccurrences(of: "\"emotion\", \"shape\"", with: "\"feeling\", \"shape\"")
        let manifest = try JSONDecoder().decode(A2BSManifest.self, from: Data(swapped.utf8))
        XCTAssertThrowsError(try manifest.validate())
    }
}

final class EngineTests: XCTestCase {
    /// Runs a stream of `total` samples pushed in the given chunk sizes (cycled), then flushes.
    func run(total: Int, chunks: [Int]) throws -> (frames: [A2BSFrame], frontEnd: FakeFrontEnd, step: FakeStep) {
        let frontEnd = FakeFrontEnd(), step = FakeStep()
        let engine = try A2BSEngine(manifest: try miniManifest(), frontEnd: frontEnd, step: step)
        let signal = (0..<total).map { Float($0 % 7) - 3 }
        var frames: [A2BSFrame] = []
        var fed = 0, i = 0
        while fed < total {
            let n = min(chunks[i % chunks.count], total - fed)
            frames += try engine.push(samples: Array(signal[fed..<(fed + n)]))
            fed += n
            i += 1
            // Frames become due exactly when their window is complete.
            XCTAssertEqual(engine.nextMelFrame, engine.schedule.melFramesDue(forSamples: fed))
        }
        frames += try engine.flush()
        return (frames, frontEnd, step)
    }

    func testChunkingDoesNotChangeTheOutput() throws {
        let reference = try run(total: 57, chunks: [57])
        XCTAssertEqual(reference.frames.map(\.index), Array(0..<6))  // ceil(57 * 10 / 100)
        for chunks in [[1], [3, 0, 11], [8], [20, 1]] {
            let other = try run(total: 57, chunks: chunks)
            XCTAssertEqual(other.frames.map(\.values), reference.frames.map(\.values), "chunks \(chunks)")
        }
    }

    func testFollowsTheCallSequence() throws {
        let (frames, frontEnd, step) = try run(total: 25, chunks: [4, 9])
        XCTAssertEqual(frames.count, 3)
        XCTAssertEqual(step.calls.count, 5)  // output frame 2 needs mel frame 4
        // Window of mel frame 0: samples [-4, 4), zeros before the stream.
        XCTAssertEqual(frontEnd.windows[0], [0, 0, 0, 0, -3, -2, -1, 0])
        // Window of mel frame 4 (centre 40): past the end of the 25 samples, all silence.
        XCTAssertEqual(frontEnd.windows[4], Array(repeating: 0, count: 8))
        // First call: initial mel history shifted by one, then mel_0; initial context; previous zeros.
        let first = step.calls[0]
        XCTAssertEqual(Array(first[0].prefix(6)), [0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
        XCTAssertEqual(first[1], Array(repeating: [Float]([1, 2, 3, 4]), count: 4).flatMap { $0 })
        XCTAssertEqual(first[3], [0, 0, 0])
        // The ring gained the first call's context_frame as its newest row.
        let weighted = first[1].enumerated().map { Float($0.offset + 1) * $0.element }.reduce(0, +)
        XCTAssertEqual(Array(step.calls[1][1].suffix(4)), [first[0].reduce(0, +), weighted / 100, 0, 1])
        // Output frame 0 is blendshapes_raw of mel frame 2; it becomes `previous` of the next call.
        XCTAssertEqual(step.calls[3][3], frames[0].values)
        XCTAssertEqual(frames[0].values[2], 0)  // raw: previous * 2 with previous = zeros
        XCTAssertEqual(frames[1].values[2], frames[0].values.reduce(0, +) + 1)  // smoothed output from then on
    }

    func testFlushResets() throws {
        let engine = try A2BSEngine(manifest: try miniManifest(), frontEnd: FakeFrontEnd(), step: FakeStep())
        try engine.push(samples: [Float](repeating: 0.5, count: 15))
        XCTAssertEqual(try engine.flush().count, 2)
        XCTAssertEqual(engine.samplesReceived, 0)
        XCTAssertEqual(engine.nextMelFrame, 0)
        XCTAssertTrue(try engine.flush().isEmpty)
    }
}

/// The queue wrapper: pushes from another thread are processed in order, frames arrive on the main actor and equal
/// the synchronous engine's, errors reset the engine and arrive on the main actor too.
/// (XCTest runs test methods on the main thread; a `@MainActor` test class crashes swift-corelibs-xctest's test
/// discovery on Linux, so each test enters the main actor with `assumeIsolated`.)
final class BackgroundEngineTests: XCTestCase {
    func testFramesArriveOnTheMainActorInOrder() throws { try MainActor.assumeIsolated { try Self.framesArriveInOrder() } }
    func testErrorsArriveOnTheMainActor() throws { try MainActor.assumeIsolated { try Self.errorsArrive() } }

    /// The app's pattern (EngineController.load) under Swift 6 region checking: an engine from a nonisolated async
    /// loader that returns it `sending` (as `A2BSEngine.load` does over Core ML) is handed from the main actor to
    /// its queue.
    func testAnEngineLoadedAsynchronouslyMovesToItsQueue() async throws {
        let background = try await Self.loadOnTheMainActor()
        XCTAssertEqual(background.names.names, try miniManifest().blendshapes)
    }

    nonisolated private static func load() async throws -> sending A2BSEngine {
        try A2BSEngine(manifest: try miniManifest(), frontEnd: FakeFrontEnd(), step: FakeStep())
    }

    @MainActor private static func loadOnTheMainActor() async throws -> A2BSBackgroundEngine {
        A2BSBackgroundEngine(engine: try await load())
    }

    @MainActor private static func framesArriveInOrder() throws {
        let signal = (0..<57).map { Float($0 % 7) - 3 }
        let expected = try A2BSEngine(manifest: try miniManifest(), frontEnd: FakeFrontEnd(), step: FakeStep())
        let want = try expected.push(samples: signal) + expected.flush()

        let background = A2BSBackgroundEngine(
            engine: try A2BSEngine(manifest: try miniManifest(), frontEnd: FakeFrontEnd(), step: FakeStep()))
        XCTAssertEqual(background.manifest, try miniManifest())
        var received: [A2BSFrame] = []
        background.onFrames = { frames in
            MainActor.assertIsolated()
            received += frames
        }
        let done = XCTestExpectation(description: "flushed")
        let pusher = Thread {  // any thread may push
            for start in stride(from: 0, to: signal.count, by: 5) {
                background.push(Array(signal[start..<min(start + 5, signal.count)]))
            }
            background.flush { done.fulfill() }
        }
        pusher.start()
        XCTAssertEqual(XCTWaiter().wait(for: [done], timeout: 30), .completed)
        XCTAssertEqual(received.map(\.index), want.map(\.index))
        XCTAssertEqual(received.map(\.values), want.map(\.values))
    }

    @MainActor private static func errorsArrive() throws {
        final class Failing: A2BSModelRunner {
            func predict(inputs: [A2BSTensor], outputs: [A2BSTensor]) throws { throw A2BSError.model("boom") }
        }
        let background = A2BSBackgroundEngine(
            engine: try A2BSEngine(manifest: try miniManifest(), frontEnd: Failing(), step: FakeStep()))
        var errors: [String] = []
        background.onError = { errors.append($0.localizedDescription) }
        let done = XCTestExpectation(description: "flushed")
        background.push([Float](repeating: 0.5, count: 40))
        background.flush { done.fulfill() }
        XCTAssertEqual(XCTWaiter().wait(for: [done], timeout: 30), .completed)
        XCTAssertEqual(errors, ["Core ML: boom"])
    }
}
