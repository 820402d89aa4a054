// The face drawing's lip geometry and head pose: pure arithmetic, no UI framework, so it is compiled and tested on
// any platform Swift runs (the app's FaceView, SwiftUI, only on Apple's). The same formulas and constants are in the
// preview video (a2bs/viz/preview.py, `lip_opening` and `_turned`), the lip geometry also in the Android sample
// (FaceGeometry.kt); tests/test_ios_sample.py checks that they agree.

import Foundation

/// Where the lips, the chin and the head go, in fractions of the face's size.
public enum FaceGeometry {
    /// Lip opening per unit of jawOpen - mouthClose.
    public static let lipOpeningPerJaw = 0.17
    /// Lip opening per unit of mouthLowerDown (mean of the two sides).
    public static let lipOpeningPerLowerDown = 0.04
    public static let lipOpeningPerFunnel = 0.03
    /// mouthPress = 1 halves the opening: pressing thins the lips, never opens them.
    public static let lipOpeningPress = 0.5
    /// The upper lip takes this share of the opening, the lower lip (on the jaw) the rest.
    public static let upperLipShare = 0.2
    /// The chin drops with jawOpen, sealed lips or not.
    public static let chinDropPerJaw = 0.07
    /// The head's half-width: how far a turn moves the features (the face's surface moves by radius x sine).
    public static let headRadius = 0.37
    /// Where the head tilts about (the neck), from the face square's top-left corner.
    public static let neckX = 0.5
    public static let neckY = 0.92

    /// The gap between the lips at the middle of the mouth (inputs clipped to [0, 1]; `lowerDown` and `press` are
    /// the means of their Left / Right shapes). ARKit's lips meet when mouthClose equals jawOpen, so the jaw parts
    /// them by jawOpen - mouthClose, never below 0.
    public static func lipOpening(jawOpen: Double, mouthClose: Double, lowerDown: Double, funnel: Double,
                                  press: Double) -> Double {
        func unit(_ x: Double) -> Double { min(1, max(0, x)) }
        var opening = lipOpeningPerJaw * max(0, unit(jawOpen) - unit(mouthClose))
        opening += lipOpeningPerLowerDown * unit(lowerDown) + lipOpeningPerFunnel * unit(funnel)
        return opening * (1 - lipOpeningPress * unit(press))
    }

    /// How the drawn face moves with the head (Live Link Face's HeadYaw, HeadPitch, HeadRoll, radians), as the
    /// preview: shifted by `dx` to the right (a positive yaw moves it left) and `dy` down (a positive pitch moves it
    /// down), then tilted counter-clockwise on screen by `tilt` radians about (neckX, neckY).
    public static func headPose(yaw: Double, pitch: Double, roll: Double) -> (dx: Double, dy: Double, tilt: Double) {
        (dx: -headRadius * sin(yaw), dy: headRadius * sin(pitch), tilt: roll)
    }

    /// How far the chin drops below its rest position.
    public static func chinDrop(jawOpen: Double) -> Double {
        chinDropPerJaw * min(1, max(0, jawOpen))
    }
}
