package com.a2bs.engine

/**
 * Every manifest key the engine and the app read, in one place (dotted paths from the root).
 *
 * The project's tests parse this file and check each path against a freshly built bundle, so a
 * renamed key in the converter breaks the build on Linux CI rather than the app on a phone.
 * Keep one constant per line, its value the dotted path.
 */
object ManifestKeys {
    const val FORMAT = "format"
    const val FORMAT_VERSION = "format_version"
    const val PLATFORM = "platform"
    const val FPS = "fps"
    const val SAMPLE_RATE = "sample_rate"
    const val CONTEXT_FRAMES = "context_frames"
    const val WINDOW = "timeline.window"
    const val LOOKAHEAD_FRAMES = "timeline.lookahead_frames"
    const val LATENCY_MS = "timeline.latency_ms"
    const val BLENDSHAPES = "blendshapes"
    const val BLENDSHAPE_GROUPS = "blendshape_groups"
    const val INITIAL_MEL_FRAMES = "initial_state.mel_frames"
    const val INITIAL_CONTEXT_FRAME = "initial_state.context_frame"
    const val EMOTION_NEUTRAL = "emotion.neutral"
    const val FRONT_END_INPUTS = "models.front_end.inputs"
    const val FRONT_END_OUTPUTS = "models.front_end.outputs"
    const val STEP_INPUTS = "models.step.inputs"
    const val STEP_OUTPUTS = "models.step.outputs"
    const val DEFAULT_VARIANT = "default_variant"
    const val VARIANTS = "variants"
    const val FILES = "files"
    const val CHECKPOINT_TRAINED = "checkpoint.trained"
    /** The life layer (docs/LIFE.md); optional: bundles made before it have none (the layer off). */
    const val LIFE = "life"
    const val LIFE_VERSION = "life.version"
    const val LIFE_RNG = "life.rng"
    const val LIFE_PARAMS = "life.params"
    /** The face controls' starting values (docs/CONTROLS.md); optional: bundles made before them have none (the defaults). */
    const val CONTROLS = "controls"
    const val CONTROLS_VERSION = "controls.version"
    const val CONTROLS_PARAMS = "controls.params"

    /** Keys of each entry of `models.*.inputs` / `models.*.outputs`. */
    const val TENSOR_NAME = "name"
    const val TENSOR_SHAPE = "shape"
    const val TENSOR_DTYPE = "dtype"

    /** Keys of each entry of `files`. */
    const val FILE_PATH = "path"
    const val FILE_ROLE = "role"
    const val FILE_VARIANT = "variant"
    const val FILE_BYTES = "bytes"
    const val FILE_SHA256 = "sha256"

    /** Values of `files[].role`. */
    const val ROLE_FRONT_END = "front_end"
    const val ROLE_STEP = "step"

    /** The only tensor dtype the engine feeds and reads. */
    const val DTYPE_FLOAT32 = "float32"
}
