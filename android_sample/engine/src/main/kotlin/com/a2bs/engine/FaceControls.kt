package com.a2bs.engine

/**
 * The face controls (docs/CONTROLS.md, algorithm version 1): lower-face, upper-face and expression strength, a
 * lip-opening offset and smoothing per region, applied to the model's 52 curves before the life layer. A port of
 * the Python reference `a2bs.core.controls`, reproducing its frames to 1e-6 (the replay test compares them): the
 * same steps in the same order, in Double arithmetic, rounded to Float at the end. The defaults leave the
 * model's frames exactly as they are; every strength 0 gives the neutral face (every shape 0).
 */
data class FaceControls(
    val lowerStrength: Double = 1.0,
    val upperStrength: Double = 1.0,
    val expressionStrength: Double = 1.0,
    val lipOffset: Double = 0.0,
    val lowerSmoothingS: Double = 0.0,
    val upperSmoothingS: Double = 0.0
) {
    init {
        for ((i, limit) in LIMITS.withIndex()) {
            val v = values[i]
            require(v >= limit.lo && v <= limit.hi) { "face control ${limit.key} must be in [${limit.lo}, ${limit.hi}], got $v" }
        }
    }

    /** The values in [LIMITS]' order (the manifest's key order). */
    val values: DoubleArray
        get() = doubleArrayOf(lowerStrength, upperStrength, expressionStrength, lipOffset, lowerSmoothingS, upperSmoothingS)

    /** A control's manifest key, limits, what it does (core/controls.py's LIMITS and DOCS) and a slider's label. */
    class Limit(val key: String, val lo: Double, val hi: Double, val doc: String, val label: String)

    companion object {
        const val VERSION = 1

        /** ARKit's lips meet when mouthClose ~ jawOpen: a lip gap at most this counts as sealed (core/constants.py). */
        const val SEAL_GAP = 0.03

        /** The controls in the manifest's order: each one's key, limits and what it does. */
        val LIMITS: List<Limit> = listOf(
            Limit("lower_strength", 0.0, 2.0, "scales the jaw, mouth, tongue and cheekPuff; 0: at rest", "Lower face"),
            Limit("upper_strength", 0.0, 2.0, "scales the eyes, brows, cheekSquint and noseSneer; 0: still", "Upper face"),
            Limit(
                "expression_strength", 0.0, 2.0, "scales the style-driven shapes (smile, frown, dimple, squints, eyeWide, sneer)",
                "Expression"
            ),
            Limit(
                "lip_offset", -0.3, 0.3, "added to the lip opening (jawOpen - mouthClose) where the lips are apart",
                "Lip opening offset"
            ),
            Limit("lower_smoothing_s", 0.0, 1.0, "extra smoothing of the lower face: time constant, s (0: none)", "Lower-face smoothing, s"),
            Limit("upper_smoothing_s", 0.0, 1.0, "extra smoothing of the upper face: time constant, s (0: none)", "Upper-face smoothing, s")
        )

        /** The shapes the speaking style drives: what expression strength scales (core/blendshapes.py STYLE_SHAPES). */
        val STYLE_SHAPES: List<String> =
            listOf("eyeSquint", "eyeWide", "browDown", "mouthSmile", "mouthFrown", "mouthDimple", "cheekSquint", "noseSneer")
                .flatMap { listOf(it + "Left", it + "Right") }

        /** The lower face (jaw, mouth, tongue, cheekPuff; core/blendshapes.py LOWER_FACE); the rest is the upper face. */
        fun isLowerFace(name: String): Boolean =
            name.startsWith("jaw") || name.startsWith("mouth") || name.startsWith("tongue") || name == "cheekPuff"

        /** [values] with control [index] set to [value], clamped to its limits (a Float slider's ends overshoot them). */
        fun withValue(values: DoubleArray, index: Int, value: Double): FaceControls {
            val limit = LIMITS[index]
            return of(values.copyOf().also { it[index] = Math.min(limit.hi, Math.max(limit.lo, value)) })
        }

        /** The controls from values in [LIMITS]' order. */
        fun of(values: DoubleArray): FaceControls {
            require(values.size == LIMITS.size) { "face controls take ${LIMITS.size} values, got ${values.size}" }
            return FaceControls(values[0], values[1], values[2], values[3], values[4], values[5])
        }

        /**
         * The manifest's `controls` section (`version`, `params`), checked like core/controls.py's
         * `controls_from_manifest`: every control present and inside its limits, no unknown key; otherwise a
         * one-line [ManifestException] naming the key. A manifest without the section has the defaults
         * ([A2BSManifest.controls]).
         */
        fun fromManifest(section: Any?): FaceControls {
            val s = section as? Map<*, *> ?: throw ManifestException("manifest: '${ManifestKeys.CONTROLS}' must be an object")
            val version = s["version"]
            if (version != VERSION.toDouble()) {
                throw ManifestException("manifest: '${ManifestKeys.CONTROLS_VERSION}' is $version, this engine runs face controls version $VERSION")
            }
            val p = s["params"] as? Map<*, *> ?: throw ManifestException("manifest: '${ManifestKeys.CONTROLS_PARAMS}' must be an object")
            val known = LIMITS.map { it.key }.toSet()
            val unknown = p.keys.map { it.toString() }.filter { it !in known }.sorted()
            if (unknown.isNotEmpty()) {
                throw ManifestException("manifest: '${ManifestKeys.CONTROLS_PARAMS}.${unknown[0]}' is not a face control")
            }
            return of(DoubleArray(LIMITS.size) { i ->
                val limit = LIMITS[i]
                val key = "${ManifestKeys.CONTROLS_PARAMS}.${limit.key}"
                val raw = p[limit.key] ?: throw ManifestException("manifest: '$key' is missing")
                val d = raw as? Double ?: throw ManifestException("manifest: '$key' must be a number")
                if (!(d >= limit.lo && d <= limit.hi)) throw ManifestException("manifest: '$key' must be in [${limit.lo}, ${limit.hi}], got $d")
                d
            })
        }

        /** The one-pole filter's a for a time constant: exp(-1 / (tau * fps)); 0 (no smoothing) at tau 0. */
        fun smoothingFactor(tauS: Double, fps: Int): Double = if (tauS > 0.0) Math.exp(-1.0 / (tauS * fps)) else 0.0
    }
}

/**
 * The face controls over one stream of frames (core/controls.py's `ControlsFilter`); its state is the smoothing's
 * last frame, so a whole stream and any chunking give the same frames. Per frame, per shape i (x the model's value):
 * 1. smoothing y = x + a * (y_prev - x), a per region (y = x on the first frame after [reset]);
 * 2. v = clip(y * region strength * (expression strength for a style shape), 0, 1);
 * 3. the lip offset d, where the lips are apart (g = jawOpen - mouthClose > 0):
 *    mouthClose = clip(jawOpen - max(0, g + d * min(1, g / SEAL_GAP)), 0, 1); sealed lips stay sealed.
 *
 * At the defaults the frames pass as they are (the identity, as `a2bs infer` skips the work), the state still kept.
 * [controls] may be set from any thread: it applies from the next call, the smoothing's state carries on.
 *
 * @param names the blendshape names of the frames (the manifest's order)
 */
class ControlsFilter(controls: FaceControls, val fps: Int, names: List<String>) {
    init {
        require(fps > 0) { "fps must be positive" }
    }

    @Volatile var controls: FaceControls = controls

    private val nShapes = names.size
    private val lower = BooleanArray(nShapes) { FaceControls.isLowerFace(names[it]) }
    private val style = BooleanArray(nShapes) { names[it] in FaceControls.STYLE_SHAPES }
    private val jaw = names.indexOf("jawOpen")
    private val close = names.indexOf("mouthClose")

    init {
        require(jaw >= 0 && close >= 0) { "the face controls need blendshapes jawOpen and mouthClose" }
    }

    // Derived from `built` (the controls they were computed for): rebuilt when [controls] changes.
    private var built: FaceControls? = null
    private var identity = true
    private val a = DoubleArray(nShapes)
    private val gain = DoubleArray(nShapes)
    private val previous = DoubleArray(nShapes)
    private var started = false

    /** Back to the start of a stream: the next frame is not smoothed towards the last one. */
    fun reset() {
        started = false
    }

    private fun build(c: FaceControls) {
        val aLower = FaceControls.smoothingFactor(c.lowerSmoothingS, fps)
        val aUpper = FaceControls.smoothingFactor(c.upperSmoothingS, fps)
        for (i in 0 until nShapes) {
            a[i] = if (lower[i]) aLower else aUpper
            gain[i] = (if (lower[i]) c.lowerStrength else c.upperStrength) * (if (style[i]) c.expressionStrength else 1.0)
        }
        identity = c == FaceControls()
        built = c
    }

    /** Frames (any number, [names]' order, one after the other) overwritten with the controls applied. */
    fun process(frames: FloatArray) {
        require(frames.size % nShapes == 0) { "the face controls take frames of $nShapes values, got ${frames.size} values" }
        val c = controls
        if (c !== built) build(c)
        if (identity) { // y = x (a = 0): the state is the last frame
            if (frames.isNotEmpty()) {
                for (i in 0 until nShapes) previous[i] = frames[frames.size - nShapes + i].toDouble()
                started = true
            }
            return
        }
        val d = c.lipOffset
        val v = DoubleArray(nShapes)
        for (start in 0 until frames.size step nShapes) {
            for (i in 0 until nShapes) {
                val x = frames[start + i].toDouble()
                previous[i] = if (started) x + a[i] * (previous[i] - x) else x // a = 0 gives x exactly
                v[i] = Math.min(1.0, Math.max(0.0, previous[i] * gain[i]))
            }
            started = true
            if (d != 0.0) {
                val gap = v[jaw] - v[close]
                if (gap > 0.0) {
                    val moved = Math.max(0.0, gap + d * Math.min(1.0, gap / FaceControls.SEAL_GAP))
                    v[close] = Math.min(1.0, Math.max(0.0, v[jaw] - moved))
                }
            }
            for (i in 0 until nShapes) frames[start + i] = v[i].toFloat()
        }
    }
}
