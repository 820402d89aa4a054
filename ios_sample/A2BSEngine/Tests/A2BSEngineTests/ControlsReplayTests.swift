import Foundation
import XCTest
@testable import A2BSEngine

// The face controls against the Python reference (core/controls.py): tests/samples/test_ios_sample.py runs the
// bundle's model over the bundled speech clip and writes, into A2BS_REPLAY_DIR (`write_controls_cases`),
//
//   controls_cases.json    per case its name, manifest-style `controls` section, fps, frames, tolerance and files
//   controls_curves.f32    the model's frames (n x blendshapes)     controls_<case>.f32   Python's output frames
//   manifest.json          the bundle's manifest (the blendshape names, and the section the parsing test edits)
//
// Swift runs A2BSControlsFilter over the same curves, whole and in irregular chunks, and must give the same frames
// (max abs difference <= tolerance), naming the case otherwise; it writes controls_summary.json (the differences).

struct ControlsCase: Decodable {
    let name: String
    let controls: A2BSControlsSection
    let fps: Int
    let frames: Int
    let tolerance: Double
    let curves: String
    let expected: String
}

/// Chunk sizes 1, 2, 3, 5, 8, 13, ... (cycling) over n frames: every boundary kind, a 1-frame chunk included.
func irregularChunks(_ n: Int) -> [Range<Int>] {
    let sizes = [1, 2, 3, 5, 8, 13, 21, 34, 55, 7, 1, 1, 89]
    var out: [Range<Int>] = [], start = 0, i = 0
    while start < n {
        let end = min(n, start + sizes[i % sizes.count])
        out.append(start..<end)
        start = end
        i += 1
    }
    return out
}

/// Max abs difference of frames from the expected (flat) values, with where it is.
func framesDifference(_ frames: [[Float]], _ expected: [Float]) -> (value: Double, frame: Int, shape: Int) {
    var worst = (value: 0.0, frame: 0, shape: 0)
    for (k, frame) in frames.enumerated() {
        for (i, value) in frame.enumerated() {
            let d = abs(Double(value) - Double(expected[k * frame.count + i]))
            if !(d <= worst.value) { worst = (d.isNaN ? .infinity : d, k, i) }
        }
    }
    return worst
}

final class ControlsReplayTests: XCTestCase {
    func testReplaysThePythonControls() throws {
        let directory = try replayFolder()
        let names = try A2BSManifest.load(bundleDirectory: directory).blendshapes
        let width = names.count
        let index = try Data(contentsOf: directory.appendingPathComponent("controls_cases.json"))
        let cases = try JSONDecoder().decode([ControlsCase].self, from: index)
        XCTAssertGreaterThanOrEqual(cases.count, 5)
        var summary: [String: Any] = [:]
        for item in cases {
            try item.controls.validate()
            let flat = try readFloat32(directory.appendingPathComponent(item.curves))
            let expected = try readFloat32(directory.appendingPathComponent(item.expected))
            XCTAssertEqual(flat.count, item.frames * width, item.name)
            XCTAssertEqual(expected.count, item.frames * width, item.name)
            let curves = (0..<item.frames).map { Array(flat[($0 * width)..<(($0 + 1) * width)]) }
            let filter = try A2BSControlsFilter(controls: item.controls.params, fps: item.fps, names: names)
            let whole = filter.process(curves)
            filter.reset()
            let chunked = irregularChunks(curves.count).flatMap { filter.process(Array(curves[$0])) }
            let d = framesDifference(whole, expected), dc = framesDifference(chunked, expected)
            for (how, diff) in [("whole clip", d), ("irregular chunks", dc)] where !(diff.value <= item.tolerance) {
                XCTFail("controls case \(item.name) (\(how)): frame \(diff.frame) \(names[diff.shape]) differs from "
                            + "Python by \(diff.value) > \(item.tolerance)")
            }
            // The controls did something (but at their defaults, the identity, bit for bit).
            let moved = framesDifference(whole, flat).value
            if item.controls.params == A2BSFaceControls() {
                XCTAssertEqual(whole.flatMap { $0 }, flat, "\(item.name): the defaults must give the model's frames")
            } else {
                XCTAssertGreaterThan(moved, 0.01, "\(item.name): the controls did nothing")
            }
            summary[item.name] = ["whole": d.value, "chunks": dc.value, "moved": moved, "frames": whole.count]
        }
        let json = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
        try json.write(to: directory.appendingPathComponent("controls_summary.json"))
    }

    /// Changing the controls mid-stream keeps the smoothing's state: setting the same values again changes nothing,
    /// where a reset at that frame would (so the check can fail); strength 0 everywhere is the neutral face.
    func testChangingTheControlsKeepsTheSmoothingState() throws {
        let names = A2BSControlsFilter.lowerFace + ["eyeBlinkLeft", "browDownLeft"]
        let n = 60, half = 30
        let curves = (0..<n).map { k in names.indices.map { i in Float(0.5 + 0.4 * sin(Double(k * (i + 1)) * 0.37)) } }
        let controls = A2BSFaceControls(lowerStrength: 1.3, expressionStrength: 0.5, lipOffset: 0.05,
                                        lowerSmoothingS: 0.1, upperSmoothingS: 0.3)
        let straight = try A2BSControlsFilter(controls: controls, fps: 30, names: names).process(curves)
        let filter = try A2BSControlsFilter(controls: controls, fps: 30, names: names)
        var changed = filter.process(Array(curves[..<half]))
        filter.controls = A2BSFaceControls()
        filter.controls = controls
        changed += filter.process(Array(curves[half...]))
        XCTAssertEqual(changed, straight)
        let restarted = try A2BSControlsFilter(controls: controls, fps: 30, names: names)
        var reset = restarted.process(Array(curves[..<half]))
        restarted.reset()
        reset += restarted.process(Array(curves[half...]))
        XCTAssertGreaterThan(framesDifference(reset, straight.flatMap { $0 }).value, 1e-3)
        // A value out of its limits set at run time is clamped; all strengths 0: every shape 0.
        filter.controls = A2BSFaceControls(lowerStrength: -1, upperStrength: 0, expressionStrength: 7)
        XCTAssertEqual(filter.controls.lowerStrength, 0)
        XCTAssertEqual(filter.controls.expressionStrength, 2)
        XCTAssertTrue(filter.process(curves).allSatisfy { $0.allSatisfy { $0 == 0 } })
    }

    /// The bundle's manifest carries the controls (the defaults); without `controls` (older bundles) the defaults
    /// apply; a value out of its limits, an unknown or missing key, a non-number and another version are refused in
    /// one line naming the key.
    func testReadsTheControlsSectionOfTheManifest() throws {
        let directory = try replayFolder()
        let data = try Data(contentsOf: directory.appendingPathComponent("manifest.json"))
        let manifest = try A2BSManifest.decode(data)
        XCTAssertEqual(manifest.controls?.params, A2BSFaceControls())
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let section = try XCTUnwrap(json["controls"] as? [String: Any])
        let params = try XCTUnwrap(section["params"] as? [String: Any])
        XCTAssertEqual(Set(params.keys), Set(A2BSFaceControls.keys))
        XCTAssertEqual(Set(A2BSFaceControls.limits.keys), Set(A2BSFaceControls.keys))
        json["controls"] = nil
        let older = try A2BSManifest.decode(JSONSerialization.data(withJSONObject: json))
        XCTAssertNil(older.controls)
        XCTAssertEqual(try A2BSControlsFilter(manifest: older).controls, A2BSFaceControls())
        // The values a manifest gives are the filter's (and the sliders' starting points).
        var lively = params
        lively["lip_offset"] = 0.06
        lively["upper_smoothing_s"] = 0.2
        json["controls"] = ["version": 1, "params": lively]
        let tuned = try A2BSManifest.decode(JSONSerialization.data(withJSONObject: json))
        XCTAssertEqual(try A2BSControlsFilter(manifest: tuned).controls,
                       A2BSFaceControls(lipOffset: 0.06, upperSmoothingS: 0.2))
        let broken: [(String, Any?, String)] = [
            ("lip_offset", 0.5, "'controls.params.lip_offset' must be in [-0.3, 0.3], got 0.5"),
            ("lower_strength", -0.1, "'controls.params.lower_strength'"),
            ("mouth_strength", 1.0, "'controls.params.mouth_strength' is not a face control"),
            ("upper_smoothing_s", nil, "'controls.params.upper_smoothing_s' is missing"),
            ("expression_strength", "high", "'controls.params.expression_strength' must be a number"),
            ("version", 2, "'controls.version' is 2"),
        ]
        for (key, value, named) in broken {
            var edited = section, editedParams = params
            if key == "version" { edited[key] = value } else { editedParams[key] = value }
            edited["params"] = editedParams
            json["controls"] = edited
            XCTAssertThrowsError(try A2BSManifest.decode(JSONSerialization.data(withJSONObject: json)), key) { error in
                let message = error.localizedDescription
                XCTAssertTrue(message.contains(named), "\(key): \(message)")
                XCTAssertFalse(message.contains("\n"), "\(key): not one line: \(message)")
            }
        }
    }
}
