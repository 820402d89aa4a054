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

/// A simple 2D face: jaw, lips, brows and eyelids follow the values. All sizes are fractions of the view.
struct FaceView: View {
    let values: [Float]
    let names: A2BSBlendshapeNames?

    var body: some View {
        Canvas { context, size in
            let s = min(size.width, size.height)
            let cx = size.width / 2
            func v(_ shape: FaceBlendshape) -> CGFloat {
                guard let i = names?.index[shape.rawValue], i < values.count else { return 0 }
                return CGFloat(min(max(values[i], 0), 1))
            }
            // Screen side -1 (left) shows the person's right, +1 shows the person's left.
            func side(_ screenSide: CGFloat, _ right: FaceBlendshape, _ left: FaceBlendshape) -> CGFloat {
                screenSide < 0 ? v(right) : v(left)
            }

            // Head: the chin drops with the jaw, cheeks puff out.
            let top = (size.height - s) / 2 + s * 0.02
            let headWidth = s * 0.74 * (1 + 0.06 * v(.cheekPuff))
            let headHeight = s * 0.9 + s * 0.07 * v(.jawOpen)
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

            // Mouth: corners follow smile / frown / stretch, pucker and funnel narrow it, the jaw opens it
            // (mouthClose keeps the lips together while the jaw is open), lower-down / upper-up part the lips.
            let shift: CGFloat = s * 0.03 * (v(.jawLeft) - v(.jawRight) + v(.mouthLeft) - v(.mouthRight))
            let mouth = CGPoint(x: cx + shift, y: top + s * 0.66)
            let smile = (v(.mouthSmileLeft) + v(.mouthSmileRight)) / 2
            let stretch = (v(.mouthStretchLeft) + v(.mouthStretchRight)) / 2
            // Split into typed parts: long literal-heavy CGFloat expressions can exceed the type checker's budget.
            let narrowing: CGFloat = 0.5 * v(.mouthPucker) + 0.3 * v(.mouthFunnel)
            let widening: CGFloat = 1 + 0.3 * smile + 0.3 * stretch
            let halfWidth: CGFloat = s * 0.12 * max(0.35, widening - narrowing)
            let jawGap: CGFloat = s * 0.17 * v(.jawOpen) * (1 - 0.85 * v(.mouthClose))
            let lipGap: CGFloat = s * 0.02 * (v(.mouthLowerDownLeft) + v(.mouthLowerDownRight))
            let opening: CGFloat = jawGap + lipGap + s * 0.03 * v(.mouthFunnel)
            let upperLift: CGFloat = s * 0.015 * (v(.mouthUpperUpLeft) + v(.mouthUpperUpRight))
            func corner(_ screenSide: CGFloat) -> CGPoint {
                let up = side(screenSide, .mouthSmileRight, .mouthSmileLeft)
                let frown = side(screenSide, .mouthFrownRight, .mouthFrownLeft)
                return CGPoint(x: mouth.x + screenSide * halfWidth, y: mouth.y - s * 0.04 * up + s * 0.035 * frown)
            }
            let left = corner(-1), right = corner(1)
            // A quadratic curve reaches half-way to its control point: controls sit at twice the offset.
            var lips = Path()
            lips.move(to: left)
            lips.addQuadCurve(to: right, control: CGPoint(x: mouth.x, y: mouth.y - 2 * (upperLift + opening * 0.2)))
            lips.addQuadCurve(to: left, control: CGPoint(x: mouth.x, y: mouth.y + 2 * opening * 0.8))
            lips.closeSubpath()
            context.fill(lips, with: .color(Color(red: 0.45, green: 0.1, blue: 0.12)))
            context.stroke(lips, with: .color(Color(red: 0.75, green: 0.3, blue: 0.32)),
                           style: StrokeStyle(lineWidth: s * 0.02, lineCap: .round, lineJoin: .round))
        }
        .accessibilityLabel("Animated face")
    }
}
