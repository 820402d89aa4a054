// The face drawing's lip geometry: pure arithmetic, no UI framework, so it is compiled and tested on any platform
// Swift runs (the app's FaceView, SwiftUI, only on Apple's). The same formula and constants are in the preview
// video (a2bs/viz/preview.py, `lip_opening`) and the Android sample (FaceGeometry.kt); tests/test_ios_sample.py
// checks that the three agree.

/// Where the lips and chin go, in fractions of the face's size.
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

    /// How far the chin drops below its rest position.
    public static func chinDrop(jawOpen: Double) -> Double {
        chinDropPerJaw * min(1, max(0, jawOpen))
    }
}
