package com.a2bs.engine

/**
 * The front-end model: one PCM window in, one normalized log-mel frame out. Inputs and outputs are
 * keyed by the tensor names of the manifest (`models.front_end`); arrays are flat, row-major.
 *
 * The engine reuses the input arrays between calls and copies what it needs out of the returned
 * arrays before the next call, so an implementation may return buffers it reuses too.
 */
interface FrontEndModel {
    fun run(inputs: Map<String, FloatArray>): Map<String, FloatArray>

    /** Free native resources (interpreters, delegates). */
    fun close() {}
}

/**
 * The step model: (mel history, context rows, emotion, previous frame) in; (smoothed frame, raw
 * frame, new context row) out, keyed by the names of `models.step` in the manifest. Same buffer
 * rules as [FrontEndModel].
 */
interface StepModel {
    fun run(inputs: Map<String, FloatArray>): Map<String, FloatArray>

    fun close() {}
}

/** One output frame: the 52 blendshape values (manifest order), where it sits in time, what it cost. */
class BlendshapeFrame(
    /** Output frame index k (0, 1, 2, ...), at [fps] frames per second. */
    val index: Long,
    /** Time of the frame in the audio stream, seconds from the first pushed sample (k / fps). */
    val timeSeconds: Double,
    /** Blendshape values in [0, 1], in the order of [names]. */
    val values: FloatArray,
    val names: List<String>,
    /** Wall time of the front-end call of the mel frame that produced this frame. */
    val frontEndMs: Double,
    /** Wall time of the step call that produced this frame. */
    val stepMs: Double,
    /**
     * The life layer's rotations in radians, Live Link Face order (HeadYaw, HeadPitch, HeadRoll, LeftEyeYaw,
     * LeftEyePitch, LeftEyeRoll, RightEyeYaw, RightEyePitch, RightEyeRoll); zeros without the layer.
     */
    val rotations: DoubleArray = DoubleArray(LifeLayer.N_ROTATIONS)
) {
    val computeMs: Double get() = frontEndMs + stepMs

    operator fun get(name: String): Float {
        val i = names.indexOf(name)
        require(i >= 0) { "no blendshape named $name" }
        return values[i]
    }

    /** Value by name, or `default` when the bundle has no such blendshape. */
    fun valueOr(name: String, default: Float = 0f): Float {
        val i = names.indexOf(name)
        return if (i >= 0) values[i] else default
    }
}

/** Receives frames as [A2BSEngine.push] / [A2BSEngine.flush] produce them (on the calling thread). */
interface FrameListener {
    fun onFrame(frame: BlendshapeFrame)
}
