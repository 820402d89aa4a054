import Foundation
import XCTest
@testable import A2BSEngine

// The life layer against the Python reference (core/life.py): tests/samples/test_ios_sample.py runs the bundle's
// model over the bundled speech clip and writes, into A2BS_REPLAY_DIR,
//
//   life_cases.json        fps, sample rate, window, blendshape names, tolerance, and per case its name, seed and
//                          manifest-style `life` section (natural and subtle presets, two seeds)
//   life_curves.f32        the model's frames (n x blendshapes)   life_windows.f32   each frame's PCM window
//   life_<case>_curves.f32, life_<case>_rotations.f64             Python's output curves and 9 rotations
//
// Swift runs A2BSLifeLayer over the same inputs, frame by frame and in one block, and must give the same curves and
// rotations (max abs difference <= 1e-6). Negative controls: another seed, and a perturbed parameter, must not.

struct LifeCases: Decodable {
    struct Case: Decodable {
        let name: String
        let seed: UInt32
        let life: A2BSLifeSection
    }
    let fps: Int
    let sampleRate: Int
    let window: Int
    let frames: Int
    let blendshapes: [String]
    let tolerance: Double
    let cases: [Case]

    enum CodingKeys: String, CodingKey {
        case fps, window, frames, blendshapes, tolerance, cases
        case sampleRate = "sample_rate"
    }
}

func readFloat64(_ url: URL) throws -> [Double] {
    let data = try Data(contentsOf: url)
    var values = [Double](repeating: 0, count: data.count / MemoryLayout<Double>.size)
    _ = values.withUnsafeMutableBytes { data.copyBytes(to: $0) }
    return values
}

/// Max abs difference of the layer's frames from the expected curves and rotations.
func lifeDifference(_ frames: [A2BSLifeFrame], curves: [Float], rotations: [Double]) -> (curves: Double, rotations: Double) {
    var dc = 0.0, dr = 0.0
    for (k, frame) in frames.enumerated() {
        let width = frame.values.count, rotationCount = frame.rotations.count
        for i in 0..<width { dc = max(dc, abs(Double(frame.values[i]) - Double(curves[k * width + i]))) }
        for i in 0..<rotationCount { dr = max(dr, abs(frame.rotations[i] - rotations[k * rotationCount + i])) }
    }
    return (dc, dr)
}

final class LifeReplayTests: XCTestCase {
    func testSplitMix64MatchesTheReferenceValues() {
        var rng = A2BSSplitMix64(state: 0)
        XCTAssertEqual(rng.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(rng.next(), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(rng.next(), 0x06C4_5D18_8009_454F)
    }

    func testReplaysThePythonLifeLayer() throws {
        let directory = try replayFolder()
        let index = try JSONDecoder().decode(LifeCases.self, from: Data(contentsOf: directory.appendingPathComponent("life_cases.json")))
        let width = index.blendshapes.count
        let flatCurves = try readFloat32(directory.appendingPathComponent("life_curves.f32"))
        let flatWindows = try readFloat32(directory.appendingPathComponent("life_windows.f32"))
        XCTAssertEqual(flatCurves.count, index.frames * width)
        XCTAssertEqual(flatWindows.count, index.frames * index.window)
        let curves = (0..<index.frames).map { Array(flatCurves[($0 * width)..<(($0 + 1) * width)]) }
        let windows = (0..<index.frames).map { Array(flatWindows[($0 * index.window)..<(($0 + 1) * index.window)]) }
        XCTAssertEqual(index.cases.count, 4)
        var summary: [String: Any] = [:]
        func layer(_ params: A2BSLifeParams, seed: UInt32) throws -> A2BSLifeLayer {
            try A2BSLifeLayer(params: params, fps: index.fps, sampleRate: index.sampleRate, window: index.window,
                              names: index.blendshapes, seed: seed)
        }
        for item in index.cases {
            try item.life.validate()
            let wantCurves = try readFloat32(directory.appendingPathComponent("life_\(item.name)_curves.f32"))
            let wantRotations = try readFloat64(directory.appendingPathComponent("life_\(item.name)_rotations.f64"))
            // frame by frame, with the prosody computed once per window (as the engine does)
            let perFrame = try layer(item.life.params, seed: item.seed)
            let frames = zip(curves, windows).map { perFrame.process(curves: $0, features: perFrame.analyzer.features($1)) }
            let diff = lifeDifference(frames, curves: wantCurves, rotations: wantRotations)
            XCTAssertLessThanOrEqual(diff.curves, index.tolerance, "\(item.name): curves")
            XCTAssertLessThanOrEqual(diff.rotations, index.tolerance, "\(item.name): rotations")
            // in one block, after a reset: the same frames
            perFrame.reset()
            let block = perFrame.process(curves: curves, windows: windows)
            let blockDiff = lifeDifference(block, curves: wantCurves, rotations: wantRotations)
            XCTAssertLessThanOrEqual(max(blockDiff.curves, blockDiff.rotations), index.tolerance, "\(item.name): one block")
            // the layer moved the face (a replay of unchanged frames would prove nothing)
            let moved = lifeDifference(frames, curves: flatCurves, rotations: [Double](repeating: 0, count: wantRotations.count))
            XCTAssertGreaterThan(min(moved.curves, moved.rotations), 0.01, "\(item.name): the layer did nothing")
            // negative controls: another seed, and one parameter changed, are caught
            let otherSeed = try layer(item.life.params, seed: item.seed + 1).process(curves: curves, windows: windows)
            let seedDiff = lifeDifference(otherSeed, curves: wantCurves, rotations: wantRotations)
            XCTAssertGreaterThan(max(seedDiff.curves, seedDiff.rotations), 100 * index.tolerance, "\(item.name): seed + 1")
            var perturbed = item.life.params
            perturbed.blinkCloseS = A2BSLifeRange(perturbed.blinkCloseS.lo, perturbed.blinkCloseS.hi * 1.01)
            let other = try layer(perturbed, seed: item.seed).process(curves: curves, windows: windows)
            let paramDiff = lifeDifference(other, curves: wantCurves, rotations: wantRotations)
            XCTAssertGreaterThan(max(paramDiff.curves, paramDiff.rotations), 100 * index.tolerance, "\(item.name): blink_close_s")
            let seedMax: Double = max(seedDiff.curves, seedDiff.rotations)
            let paramMax: Double = max(paramDiff.curves, paramDiff.rotations)
            summary[item.name] = ["curves": diff.curves, "rotations": diff.rotations, "frames": frames.count,
                                  "other_seed": seedMax, "perturbed": paramMax] as [String: Any]
        }
        let json = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
        try json.write(to: directory.appendingPathComponent("life_summary.json"))
    }

    /// The bundle's manifest carries the layer (the natural preset); without `life` (older bundles) the layer is off;
    /// a parameter out of its limits, a range upside down or another version is refused naming the key.
    func testReadsTheLifeSectionOfTheManifest() throws {
        let directory = try replayFolder()
        let data = try Data(contentsOf: directory.appendingPathComponent("manifest.json"))
        let manifest = try A2BSManifest.decode(data)
        XCTAssertEqual(manifest.life?.params.amount, 1.0)
        XCTAssertNotNil(try A2BSLifeLayer(manifest: manifest))
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let life = try XCTUnwrap(json["life"] as? [String: Any])
        json["life"] = nil
        let older = try A2BSManifest.decode(JSONSerialization.data(withJSONObject: json))
        XCTAssertNil(older.life)
        XCTAssertNil(try A2BSLifeLayer(manifest: older))
        let params = try XCTUnwrap(manifest.life?.params)
        XCTAssertEqual(params.named.count, A2BSLifeParams.limits.count)
        XCTAssertEqual(Set(params.named.map(\.0)), Set(A2BSLifeParams.limits.keys))
        // Out of range, a range upside down, another algorithm version: one message naming the key.
        let values = try XCTUnwrap(life["params"] as? [String: Any])
        for (key, value, named) in [("nod_deg", 99.0 as Any, "'life.params.nod_deg'"),
                                    ("blink_close_s", [0.09, 0.06] as Any, "'life.params.blink_close_s'"),
                                    ("amount", -0.5 as Any, "'life.params.amount'"),
                                    ("version", 2 as Any, "'life.version'")] {
            var broken = life, brokenParams = values
            if key == "version" { broken[key] = value } else { brokenParams[key] = value }
            broken["params"] = brokenParams
            json["life"] = broken
            XCTAssertThrowsError(try A2BSManifest.decode(JSONSerialization.data(withJSONObject: json))) { error in
                XCTAssertTrue(error.localizedDescription.contains(named), error.localizedDescription)
            }
        }
    }
}
