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
import com.a2bs.engine.BlendshapeFrame

/**
 * A flat 2D face driven by a few of the 52 ARKit blendshapes: jaw and mouth shape, brows, blinks.
 * ARKit's Left/Right are the subject's: the subject's left side is drawn on the viewer's right.
 */
@Composable
fun Face(frame: BlendshapeFrame?, modifier: Modifier = Modifier) {
    val v: (String) -> Float = { name -> frame?.valueOr(name)?.coerceIn(0f, 1f) ?: 0f }
    Canvas(modifier.aspectRatio(0.85f)) {
        val w = size.width
        val h = size.height
        val skin = Color(0xFFF2D3B3)
        val ink = Color(0xFF3B2A20)
        drawOval(skin, topLeft = Offset(w * 0.1f, h * 0.05f), size = Size(w * 0.8f, h * 0.9f))

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
}

private fun DrawScope.drawMouth(v: (String) -> Float, ink: Color) {
    val w = size.width
    val h = size.height
    val smile = (v("mouthSmileLeft") + v("mouthSmileRight")) / 2
    val stretch = (v("mouthStretchLeft") + v("mouthStretchRight")) / 2
    val frown = (v("mouthFrownLeft") + v("mouthFrownRight")) / 2
    val narrow = 0.5f * v("mouthPucker") + 0.35f * v("mouthFunnel")
    val halfWidth = w * 0.14f * (1f + 0.35f * smile + 0.3f * stretch - narrow)
    val shift = w * 0.04f * (v("mouthLeft") - v("mouthRight")) // subject's left = viewer's right
    val cx = w * 0.5f + shift
    val cy = h * 0.72f
    val corner = h * 0.03f * (frown - smile) // corners up when smiling
    // The lips part with jawOpen unless mouthClose holds them together; funnel rounds the opening.
    val open = h * 0.16f * (v("jawOpen") * (1f - v("mouthClose")) + 0.3f * v("mouthFunnel")).coerceIn(0f, 1f)
    val upper = cy - h * 0.01f - 0.25f * open
    val lower = cy + h * 0.01f + 0.75f * open + h * 0.02f * smile

    val path = Path().apply {
        moveTo(cx - halfWidth, cy + corner)
        quadraticTo(cx, upper - 0.4f * (upper - cy), cx + halfWidth, cy + corner)
        quadraticTo(cx, lower + 0.4f * (lower - cy), cx - halfWidth, cy + corner)
        close()
    }
    drawPath(path, if (open > h * 0.01f) Color(0xFF5A1E1E) else ink)
    drawPath(path, ink, style = Stroke(width = w * 0.012f))
}
