package com.a2bs.engine

/**
 * The face drawing's lip geometry and head pose: pure arithmetic, no Android API, so it is compiled and tested on any JVM (the
 * app's Compose `Face`, which calls it, only in Android Studio). The same formula and constants are in the preview
 * video (a2bs/viz/preview.py, `lip_opening` and `_turned`) and the iOS sample (FaceGeometry.swift); tests/test_android_sample.py
 * checks that they agree. All lengths are fractions of the face's size.
 */
object FaceGeometry {
    /** Lip opening per unit of jawOpen - mouthClose. */
    const val LIP_OPENING_PER_JAW = 0.17f

    /** Lip opening per unit of mouthLowerDown (mean of the two sides). */
    const val LIP_OPENING_PER_LOWER_DOWN = 0.04f
    const val LIP_OPENING_PER_FUNNEL = 0.03f

    /** mouthPress = 1 halves the opening: pressing thins the lips, never opens them. */
    const val LIP_OPENING_PRESS = 0.5f

    /** The upper lip takes this share of the opening, the lower lip (on the jaw) the rest. */
    const val UPPER_LIP_SHARE = 0.2f

    /** The chin drops with jawOpen, sealed lips or not. */
    const val CHIN_DROP_PER_JAW = 0.07f

    /** The head's half-width: a turn moves the features by this times the sine of the angle. */
    const val HEAD_RADIUS = 0.37f

    /** Where the head tilts about (the preview's NECK): across and down the face. */
    const val NECK_X = 0.5f
    const val NECK_Y = 0.92f

    /**
     * Where the drawn face moves as the head turns: [dx] sideways and [dy] down (fractions of the face's size, as
     * far as the face's surface moves), and [angle], the roll in radians, turning counter-clockwise on screen about
     * the neck ([NECK_X], [NECK_Y]). Apply the tilt about the neck, then the shift.
     */
    class HeadPose(val dx: Float, val dy: Float, val angle: Float)

    /**
     * The head pose of the life layer's rotations (radians, Live Link Face's HeadYaw, HeadPitch, HeadRoll): shifted
     * by -HEAD_RADIUS sin(yaw) sideways and HEAD_RADIUS sin(pitch) down, tilted by the roll, as the preview draws it.
     */
    fun headPose(yaw: Double, pitch: Double, roll: Double): HeadPose =
        HeadPose((-HEAD_RADIUS * Math.sin(yaw)).toFloat(), (HEAD_RADIUS * Math.sin(pitch)).toFloat(), roll.toFloat())

    private fun unit(x: Float): Float = minOf(1f, maxOf(0f, x))

    /**
     * The gap between the lips at the middle of the mouth (inputs clipped to [0, 1]; [lowerDown] and [press] are
     * the means of their Left / Right shapes). ARKit's lips meet when mouthClose equals jawOpen, so the jaw parts
     * them by jawOpen - mouthClose, never below 0.
     */
    fun lipOpening(jawOpen: Float, mouthClose: Float, lowerDown: Float, funnel: Float, press: Float): Float {
        var opening = LIP_OPENING_PER_JAW * maxOf(0f, unit(jawOpen) - unit(mouthClose))
        opening += LIP_OPENING_PER_LOWER_DOWN * unit(lowerDown) + LIP_OPENING_PER_FUNNEL * unit(funnel)
        return opening * (1f - LIP_OPENING_PRESS * unit(press))
    }

    /** How far the chin drops below its rest position. */
    fun chinDrop(jawOpen: Float): Float = CHIN_DROP_PER_JAW * unit(jawOpen)
}
