import A2BSEngine
import SwiftUI

/// The ARKit blendshapes the face drawing reads (names as in the manifest's `blendshapes`; checked by
/// tests/test_ios_sample.py). ARKit's Left / Right are the person's own sides: the face is drawn as you see
/// someone facing you, so the person's left eye is on the right of the screen.
enum FaceBlendshape: String, CaseIterable {
    case jawOpen
    case jawLeft
    case jawRight
    case mouthClose
    case mouthFunnel
    case mouthPucker
    case mouthLeft
    case mouthRight
    case mouthSmileLeft
    case mouthSmileRight
    case mouthFrownLeft
    case mouthFrownRight
    case mouthStretchLeft
    case mouthStretchRight
    case mouthLowerDownLeft
    case mouthLowerDownRight
    case mouthUpperUpLeft
    case mouthUpperUpRight
    case mouthPressLeft
    case mouthPressRight
    case browInnerUp
    case browDownLeft
    case browDownRight
    case browOuterUpLeft
    case browOuterUpRight
    case eyeBlinkLeft
    case eyeBlinkRight
    case eyeWideLeft
    case eyeWideRight
    case eyeSquintLeft
    case eyeSquintRight
    case cheekPuff
}

/// A simple 2D face: jaw, lips, brows and eyelids follow the values, the whole face turns with the head rotations
/// (as the preview video). All sizes are fractions of the view.
struct FaceView: View {
    let values: [Float]
    let names: A2BSBlendshapeNames?
    /// The frame's Live Link Face rotations (`A2BSLifeLayer.rotationNames`, radians); empty: the head still.
    var rotations: [Double] = []

    var body: some View {
        Canvas { context, size in
            let s = min(size.width, size.height)
            let cx = size.width / 2
            // Head motion: shift by the yaw and pitch, tilt by the roll about the neck (FaceGeometry.headPose, as the
            // preview's `_turned`). Drawn points p land at pivot + shift + turn(p - pivot); SwiftUI's rotate turns
            // clockwise on screen for a positive angle, the tilt counter-clockwise.
            func rotation(_ name: String) -> Double {
                guard let i = A2BSLifeLayer.rotationNames.firstIndex(of: name), i < rotations.count else { return 0 }
                return rotations[i]
            }
            let pose = FaceGeometry.headPose(yaw: rotation("HeadYaw"), pitch: rotation("HeadPitch"),
                                             roll: rotation("HeadRoll"))
            let pivot = CGPoint(x: cx - s / 2 + s * CGFloat(FaceGeometry.neckX),
                                y: (size.height - s) / 2 + s * CGFloat(FaceGeometry.neckY))
            context.translateBy(x: s * CGFloat(pose.dx) + pivot.x, y: s * CGFloat(pose.dy) + pivot.y)
            context.rotate(by: .radians(-pose.tilt))
            context.translateBy(x: -pivot.x, y: -pivot.y)
            func v(_ shape: FaceBlendshape) -> CGFloat {
                guard let i = names?.index[shape.rawValue], i < values.count else { return 0 }
                return CGFloat(min(max(values[i], 0), 1))
            }
            // Screen side -1 (left) shows the person's right, +1 shows the person's left.
            func side(_ screenSide: CGFloat, _ right: FaceBlendshape, _ left: FaceBlendshape) -> CGFloat {
                screenSide < 0 ? v(right) : v(left)
            }

            // Head: the chin drops with the jaw (whether the lips are sealed or not), cheeks puff out.
            let top = (size.height - s) / 2 + s * 0.02
            let headWidth = s * 0.74 * (1 + 0.06 * v(.cheekPuff))
            let headHeight = s * 0.9 + s * CGFloat(FaceGeometry.chinDrop(jawOpen: Double(v(.jawOpen))))
            let head = Path(ellipseIn: CGRect(x: cx - headWidth / 2, y: top, width: headWidth, height: headHeight))
            context.fill(head, with: .color(Color(red: 0.98, green: 0.86, blue: 0.74)))
            context.stroke(head, with: .color(.brown.opacity(0.6)), lineWidth: s * 0.008)

            for screenSide: CGFloat in [-1, 1] {
                // Eye: lid opening shrinks with blink and squint, grows with wide.
                let eye = CGPoint(x: cx + screenSide * s * 0.15, y: top + s * 0.36)
                let blink = side(screenSide, .eyeBlinkRight, .eyeBlinkLeft)
                let wide = side(screenSide, .eyeWideRight, .eyeWideLeft)
                let squint = side(screenSide, .eyeSquintRight, .eyeSquintLeft)
                let eyeWidth = s * 0.12
                let open: CGFloat = s * 0.06 * (1 - blink) * (1 + 0.4 * wide) * (1 - 0.35 * squint)
                let eyeRect = CGRect(x: eye.x - eyeWidth / 2, y: eye.y - open / 2, width: eyeWidth, height: max(open, 1))
                if open > s * 0.006 {
                    context.fill(Path(ellipseIn: eyeRect), with: .color(.white))
                    let pupil = min(open, s * 0.045)
                    context.fill(Path(ellipseIn: CGRect(x: eye.x - pupil / 2, y: eye.y - pupil / 2,
                                                        width: pupil, height: pupil)), with: .color(.black))
                }
                var lid = Path()
                lid.move(to: CGPoint(x: eyeRect.minX, y: eye.y))
                lid.addQuadCurve(to: CGPoint(x: eyeRect.maxX, y: eye.y), control: CGPoint(x: eye.x, y: eye.y - open))
                context.stroke(lid, with: .color(.brown), lineWidth: s * 0.01)

                // Brow: inner end up with browInnerUp, outer end up with browOuterUp*, both down with browDown*.
                let down = side(screenSide, .browDownRight, .browDownLeft)
                let outerUp = side(screenSide, .browOuterUpRight, .browOuterUpLeft)
                let browY = eye.y - s * 0.09
                let inner = CGPoint(x: cx + screenSide * s * 0.07,
                                    y: browY - s * 0.06 * v(.browInnerUp) + s * 0.04 * down)
                let outer = CGPoint(x: cx + screenSide * s * 0.24, y: browY - s * 0.05 * outerUp + s * 0.015 * down)
                var brow = Path()
                brow.move(to: inner)
                brow.addQuadCurve(to: outer, control: CGPoint(x: (inner.x + outer.x) / 2,
                                                             y: min(inner.y, outer.y) - s * 0.02))
                context.stroke(brow, with: .color(.brown), style: StrokeStyle(lineWidth: s * 0.022, lineCap: .round))
            }

            // Mouth: corners follow smile / frown / stretch, pucker and funnel narrow it. As in ARKit, the lips part by
            // jawOpen - mouthClose (sealed when equal, whatever the jaw), plus lower-down and funnel; pressing thins
            // them (FaceGeometry in A2BSEngine, shared with the preview video and the Android app); upper-up lifts
            // the upper lip.
            let shift: CGFloat = s * 0.03 * (v(.jawLeft) - v(.jawRight) + v(.mouthLeft) - v(.mouthRight))
            let mouth = CGPoint(x: cx + shift, y: top + s * 0.66)
            let smile = (v(.mouthSmileLeft) + v(.mouthSmileRight)) / 2
            let stretch = (v(.mouthStretchLeft) + v(.mouthStretchRight)) / 2
            let press = (v(.mouthPressLeft) + v(.mouthPressRight)) / 2
            let lowerDown = (v(.mouthLowerDownLeft) + v(.mouthLowerDownRight)) / 2
            // Split into typed parts: long literal-heavy CGFloat expressions can exceed the type checker's budget.
            let narrowing: CGFloat = 0.5 * v(.mouthPucker) + 0.3 * v(.mouthFunnel)
            let widening: CGFloat = 1 + 0.3 * smile + 0.3 * stretch
            let halfWidth: CGFloat = s * 0.12 * max(0.35, widening - narrowing)
            let lipOpening: Double = FaceGeometry.lipOpening(
                jawOpen: Double(v(.jawOpen)), mouthClose: Double(v(.mouthClose)), lowerDown: Double(lowerDown),
                funnel: Double(v(.mouthFunnel)), press: Double(press))
            let opening: CGFloat = s * CGFloat(lipOpening)
            let upperShare = CGFloat(FaceGeometry.upperLipShare)
            let upperLift: CGFloat = s * 0.015 * (v(.mouthUpperUpLeft) + v(.mouthUpperUpRight))
            // A quadratic curve reaches half-way to its control point: controls sit at twice the offset.
            let innerTop: CGFloat = mouth.y - 2 * (upperLift + upperShare * opening)
            let innerBottom: CGFloat = max(innerTop, mouth.y + 2 * (1 - upperShare) * opening)
            let fullness: CGFloat = (1 - 0.5 * press) * (1 + 0.5 * v(.mouthPucker) + 0.3 * v(.mouthFunnel))
            func corner(_ screenSide: CGFloat) -> CGPoint {
                let up = side(screenSide, .mouthSmileRight, .mouthSmileLeft)
                let frown = side(screenSide, .mouthFrownRight, .mouthFrownLeft)
                return CGPoint(x: mouth.x + screenSide * halfWidth, y: mouth.y - s * 0.04 * up + s * 0.035 * frown)
            }
            let left = corner(-1), right = corner(1)
            func lens(_ topControl: CGFloat, _ bottomControl: CGFloat) -> Path {
                var path = Path()
                path.move(to: left)
                path.addQuadCurve(to: right, control: CGPoint(x: mouth.x, y: topControl))
                path.addQuadCurve(to: left, control: CGPoint(x: mouth.x, y: bottomControl))
                path.closeSubpath()
                return path
            }
            let lips = lens(innerTop - 2 * s * 0.022 * fullness, innerBottom + 2 * s * 0.028 * fullness)
            context.fill(lips, with: .color(Color(red: 0.77, green: 0.36, blue: 0.38)))
            context.stroke(lips, with: .color(Color(red: 0.59, green: 0.24, blue: 0.26)), lineWidth: s * 0.006)
            if innerBottom - innerTop > s * 0.006 {
                context.fill(lens(innerTop, innerBottom), with: .color(Color(red: 0.33, green: 0.09, blue: 0.12)))
            } else {
                var seam = Path()
                seam.move(to: left)
                seam.addQuadCurve(to: right, control: CGPoint(x: mouth.x, y: innerTop))
                context.stroke(seam, with: .color(Color(red: 0.59, green: 0.24, blue: 0.26)),
                               style: StrokeStyle(lineWidth: s * 0.008, lineCap: .round))
            }
        }
        .accessibilityLabel("Animated face")
    }
}
