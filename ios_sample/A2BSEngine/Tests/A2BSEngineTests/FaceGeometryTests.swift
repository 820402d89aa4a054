import Foundation
import XCTest
@testable import A2BSEngine

// The face drawing's lip geometry (FaceGeometry.swift). The cases with known answers run everywhere; the agreement
// with the Python preview's `lip_opening` reads cases that tests/test_ios_sample.py writes (A2BS_FACE_CASES: a JSON
// list of {"in": [jawOpen, mouthClose, lowerDown, funnel, press], "opening": Python's answer}).

final class FaceGeometryTests: XCTestCase {
    func testLipsAreSealedWhenMouthCloseEqualsJawOpen() {
        XCTAssertEqual(FaceGeometry.lipOpening(jawOpen: 0.3, mouthClose: 0.3, lowerDown: 0, funnel: 0, press: 0), 0)
        XCTAssertEqual(FaceGeometry.lipOpening(jawOpen: 0.8, mouthClose: 0.8, lowerDown: 0, funnel: 0, press: 0), 0)
        // mouthClose above jawOpen (lips pushed together) and pressing never open them.
        XCTAssertEqual(FaceGeometry.lipOpening(jawOpen: 0.3, mouthClose: 0.6, lowerDown: 0, funnel: 0, press: 0), 0)
        XCTAssertEqual(FaceGeometry.lipOpening(jawOpen: 0.3, mouthClose: 0.3, lowerDown: 0, funnel: 0, press: 1), 0)
        // The chin still drops: a sealed mouth with the jaw down is a longer face.
        XCTAssertGreaterThan(FaceGeometry.chinDrop(jawOpen: 0.3), 0)
    }

    func testLipsAreOpenWithoutMouthClose() {
        let opening = FaceGeometry.lipOpening(jawOpen: 0.3, mouthClose: 0, lowerDown: 0, funnel: 0, press: 0)
        XCTAssertEqual(opening, FaceGeometry.lipOpeningPerJaw * 0.3, accuracy: 1e-12)
        XCTAssertGreaterThan(opening, 0.04)
    }

    /// The head pose as preview.py's `_turned`: no turn, no shift; a positive yaw moves the face left (dx < 0), a
    /// positive pitch down, by the head's radius times the sine; the roll is the tilt.
    func testHeadPoseMovesTheFaceAsThePreview() {
        let still = FaceGeometry.headPose(yaw: 0, pitch: 0, roll: 0)
        XCTAssertEqual(still.dx, 0)
        XCTAssertEqual(still.dy, 0)
        XCTAssertEqual(still.tilt, 0)
        XCTAssertEqual(FaceGeometry.headPose(yaw: 0, pitch: 0.1, roll: 0.05).dx, 0)
        let turned = FaceGeometry.headPose(yaw: 0.2, pitch: 0.1, roll: -0.05)
        XCTAssertLessThan(turned.dx, 0)
        XCTAssertEqual(turned.dx, -FaceGeometry.headRadius * sin(0.2), accuracy: 1e-15)
        XCTAssertGreaterThan(turned.dy, 0)
        XCTAssertEqual(turned.dy, FaceGeometry.headRadius * sin(0.1), accuracy: 1e-15)
        XCTAssertEqual(turned.tilt, -0.05)
        XCTAssertGreaterThan(FaceGeometry.headPose(yaw: -0.2, pitch: 0, roll: 0).dx, 0)
    }

    func testMatchesThePythonPreview() throws {
        let environment = ProcessInfo.processInfo.environment
        guard let path = environment["A2BS_FACE_CASES"], !path.isEmpty else {
            let why = "A2BS_FACE_CASES is not set: run `pytest tests/test_ios_sample.py`, which writes the preview's cases"
            if environment["CI"].map({ !$0.isEmpty && $0 != "0" && $0.lowercased() != "false" }) ?? false {
                XCTFail(why)  // a failure, not a skip
                return
            }
            throw XCTSkip(why)
        }
        struct Case: Decodable {
            let `in`: [Double]
            let opening: Double
        }
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertGreaterThan(cases.count, 10)
        for item in cases {
            let x = item.in
            let got = FaceGeometry.lipOpening(jawOpen: x[0], mouthClose: x[1], lowerDown: x[2], funnel: x[3], press: x[4])
            XCTAssertEqual(got, item.opening, accuracy: 1e-12, "lip opening of \(x): Swift \(got), Python \(item.opening)")
        }
    }
}
