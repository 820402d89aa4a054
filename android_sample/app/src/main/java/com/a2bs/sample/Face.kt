package com.a2bs.sample

import androidx.compose.foundation.Canvas
import androidx.compose.foundation.layout.aspectRatio
import androidx.compose.runtime.Composable
import androidx.compose.ui.Modifier
import androidx.compose.ui.geometry.Offset
import androidx.compose.ui.geometry.Size
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.graphics.Path
import androidx.compose.ui.graphics.StrokeCap
import androidx.compose.ui.graphics.drawscope.DrawScope
import androidx.compose.ui.graphics.drawscope.Stroke
import androidx.compose.ui.graphics.drawscope.withTransform
import com.a2bs.engine.BlendshapeFrame
import com.a2bs.engine.FaceGeometry

/**
 * A flat 2D face driven by a few of the 52 ARKit blendshapes: jaw and mouth shape, brows, blinks, and moved by
 * the life layer's head rotations as the preview video draws them (FaceGeometry.headPose).
 * ARKit's Left/Right are the subject's: the subject's left side is drawn on the viewer's right.
 */
@Composable
fun Face(frame: BlendshapeFrame?, modifier: Modifier = Modifier) {
    val v: (String) -> Float = { name -> frame?.valueOr(name)?.coerceIn(0f, 1f) ?: 0f }
    val r = frame?.rotations // HeadYaw, HeadPitch, HeadRoll first (radians); zeros without the life layer
    val pose = FaceGeometry.headPose(r?.get(0) ?: 0.0, r?.get(1) ?: 0.0, r?.get(2) ?: 0.0)
    Canvas(modifier.aspectRatio(0.85f)) {
        val w = size.width
        val h = size.height
        // The head shifts with the yaw and pitch (fractions of the face's width) and tilts about the neck by the
        // roll: the pose turns counter-clockwise on screen, Compose's rotate clockwise.
        withTransform({
            translate(pose.dx * w, pose.dy * w)
            rotate(-Math.toDegrees(pose.angle.toDouble()).toFloat(), Offset(FaceGeometry.NECK_X * w, FaceGeometry.NECK_Y * h))
        }) { drawFace(v) }
    }
}

private fun DrawScope.drawFace(v: (String) -> Float) {
    val w = size.width
    val h = size.height
    val skin = Color(0xFFF2D3B3)
    val ink = Color(0xFF3B2A20)
    // The chin drops with jawOpen, whether the lips are sealed or not.
    val headHeight = h * (0.88f + FaceGeometry.chinDrop(v("jawOpen"))) // at most the canvas: 0.05 + 0.88 + 0.07
    drawOval(skin, topLeft = Offset(w * 0.1f, h * 0.05f), size = Size(w * 0.8f, headHeight))

    // Eyes: the lid closes with eyeBlink, opens wider with eyeWide, narrows with eyeSquint.
    for ((side, x) in listOf("Right" to 0.35f, "Left" to 0.65f)) {
        val open = (1f - v("eyeBlink$side")) * (1f + 0.4f * v("eyeWide$side") - 0.4f * v("eyeSquint$side"))
        val eh = h * 0.07f * open.coerceIn(0.04f, 1.4f)
        drawOval(Color.White, Offset(w * x - w * 0.07f, h * 0.38f - eh / 2), Size(w * 0.14f, eh))
        if (open > 0.15f) drawCircle(ink, radius = minOf(w * 0.03f, eh / 2), center = Offset(w * x, h * 0.38f))
    }

    // Brows: inner ends follow browInnerUp and browDown, outer ends browOuterUp and browDown.
    for ((side, sign) in listOf("Right" to -1f, "Left" to 1f)) {
        val down = v("browDown$side")
        val inner = h * (0.29f - 0.05f * v("browInnerUp") + 0.03f * down)
        val outer = h * (0.28f - 0.05f * v("browOuterUp$side") + 0.02f * down)
        drawLine(
            ink, Offset(w * (0.5f + sign * 0.06f), inner), Offset(w * (0.5f + sign * 0.24f), outer),
            strokeWidth = w * 0.025f, cap = StrokeCap.Round,
        )
    }

    drawMouth(v, ink)
}

private fun DrawScope.drawMouth(v: (String) -> Float, ink: Color) {
    val w = size.width
    val h = size.height
    val smile = (v("mouthSmileLeft") + v("mouthSmileRight")) / 2
    val stretch = (v("mouthStretchLeft") + v("mouthStretchRight")) / 2
    val frown = (v("mouthFrownLeft") + v("mouthFrownRight")) / 2
    val press = (v("mouthPressLeft") + v("mouthPressRight")) / 2
    val narrow = 0.5f * v("mouthPucker") + 0.35f * v("mouthFunnel")
    val halfWidth = w * 0.14f * maxOf(0.35f, 1f + 0.35f * smile + 0.3f * stretch - narrow)
    val shift = w * 0.04f * (v("mouthLeft") - v("mouthRight")) // subject's left = viewer's right
    val cx = w * 0.5f + shift
    val cy = h * 0.72f
    val corner = h * 0.03f * (frown - smile) // corners up when smiling
    // As in ARKit, the lips part by jawOpen - mouthClose (sealed when equal, whatever the jaw), plus lower-down
    // and funnel; pressing thins them (FaceGeometry, shared with the preview video and the iOS app).
    val lowerDown = (v("mouthLowerDownLeft") + v("mouthLowerDownRight")) / 2
    val opening = h * FaceGeometry.lipOpening(v("jawOpen"), v("mouthClose"), lowerDown, v("mouthFunnel"), press)
    // A quadratic curve reaches half-way to its control point: controls sit at twice the offset.
    val innerTop = cy - 2f * FaceGeometry.UPPER_LIP_SHARE * opening
    val innerBottom = cy + 2f * (1f - FaceGeometry.UPPER_LIP_SHARE) * opening
    val fullness = (1f - 0.5f * press) * (1f + 0.5f * v("mouthPucker") + 0.3f * v("mouthFunnel"))
    val left = Offset(cx - halfWidth, cy + corner)
    val right = Offset(cx + halfWidth, cy + corner)
    fun lens(top: Float, bottom: Float) = Path().apply {
        moveTo(left.x, left.y)
        quadraticTo(cx, top, right.x, right.y)
        quadraticTo(cx, bottom, left.x, left.y)
        close()
    }
    val lips = lens(innerTop - 2f * h * 0.022f * fullness, innerBottom + 2f * h * 0.028f * fullness)
    drawPath(lips, Color(0xFFC45C62))
    drawPath(lips, Color(0xFF963C42), style = Stroke(width = w * 0.006f))
    if (innerBottom - innerTop > h * 0.006f) {
        drawPath(lens(innerTop, innerBottom), Color(0xFF54181E))
    } else {
        val seam = Path().apply {
            moveTo(left.x, left.y)
            quadraticTo(cx, innerTop, right.x, right.y)
        }
        drawPath(seam, ink, style = Stroke(width = w * 0.008f, cap = StrokeCap.Round))
    }
}
