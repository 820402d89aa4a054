package com.a2bs.engine

/** One model input or output as the manifest describes it. */
class TensorSpec(val name: String, val shape: IntArray, val dtype: String) {
    /** Number of elements (product of the shape). */
    val size: Int get() = shape.fold(1) { a, b -> a * b }

    override fun toString(): String = "$name${shape.joinToString(prefix = "[", postfix = "]")} $dtype"
}

/** A model file of the bundle (`files[]`). */
class BundleFile(val path: String, val role: String, val variant: String, val bytes: Long, val sha256: String)

/**
 * The bundle's `manifest.json`, parsed and checked: everything the frame loop needs (sizes, names,
 * initial state) comes from here, never from constants in code.
 *
 * The step model's inputs are, in manifest order, the mel history, the context ring buffer, the
 * emotion vector and the previous frame; its outputs the smoothed frame, the raw frame and the new
 * context row. Their *names* are read from the manifest; the roles are checked against the shapes
 * so a reordered manifest fails here instead of feeding the wrong tensor.
 */
class A2BSManifest private constructor(root: Map<String, Any?>) {
    init {
        checkBundleKind(root) // first: a bundle for another platform or format is refused before anything else is read
    }

    val platform: String = str(root, ManifestKeys.PLATFORM)
    val fps: Int = int(root, ManifestKeys.FPS)
    val sampleRate: Int = int(root, ManifestKeys.SAMPLE_RATE)
    /** N: the step sees the last N-1 context rows plus the new frame. */
    val contextFrames: Int = int(root, ManifestKeys.CONTEXT_FRAMES)
    /** PCM samples per front-end call (n_fft), centred on the frame. */
    val window: Int = int(root, ManifestKeys.WINDOW)
    /** L: the step call for mel frame j produces output frame j - L. */
    val lookaheadFrames: Int = int(root, ManifestKeys.LOOKAHEAD_FRAMES)
    /** Sound-to-face delay of the model itself (lookahead + half a window), without compute. */
    val latencyMs: Double = num(root, ManifestKeys.LATENCY_MS)
    val blendshapes: List<String> = strings(root, ManifestKeys.BLENDSHAPES)
    /** Group name -> blendshape names (jaw, mouth, eyes, brows, cheeks_nose), in manifest order. */
    val blendshapeGroups: Map<String, List<String>>
    val defaultVariant: String = str(root, ManifestKeys.DEFAULT_VARIANT)
    val variants: List<String> = strings(root, ManifestKeys.VARIANTS)
    val files: List<BundleFile>
    val trained: Boolean = (path(root, ManifestKeys.CHECKPOINT_TRAINED) as? Boolean) ?: true
    /** The life layer's parameters (`life`, checked); null when the manifest has none: the layer off. */
    val life: LifeParams? = path(root, ManifestKeys.LIFE)?.let { LifeParams.fromManifest(it) }
    /** The face controls' values (`controls`, checked): what the app's sliders start at; the defaults when none. */
    val controls: FaceControls = path(root, ManifestKeys.CONTROLS)?.let { FaceControls.fromManifest(it) } ?: FaceControls()

    val frontEndInputs: List<TensorSpec> = tensors(root, ManifestKeys.FRONT_END_INPUTS)
    val frontEndOutputs: List<TensorSpec> = tensors(root, ManifestKeys.FRONT_END_OUTPUTS)
    val stepInputs: List<TensorSpec> = tensors(root, ManifestKeys.STEP_INPUTS)
    val stepOutputs: List<TensorSpec> = tensors(root, ManifestKeys.STEP_OUTPUTS)

    /** Rows of mel history the step takes (3) and mel bins per row (80). */
    val melHistory: Int
    val nMels: Int
    /** Width of one context row (512). */
    val contextDim: Int

    /** Initial mel history, row-major (melHistory x nMels), oldest first. */
    val initialMelFrames: FloatArray
    /** The row the context ring buffer starts filled with. */
    val initialContextFrame: FloatArray
    /** Neutral emotion vector (zeros): apps have no openSMILE, so they pass this. */
    val emotionNeutral: FloatArray = floats(path(root, ManifestKeys.EMOTION_NEUTRAL), ManifestKeys.EMOTION_NEUTRAL)

    // Tensor names, read from the manifest by role.
    val pcmInput: String get() = frontEndInputs[0].name
    val melOutput: String get() = frontEndOutputs[0].name
    val melFramesInput: String get() = stepInputs[0].name
    val contextInput: String get() = stepInputs[1].name
    val emotionInput: String get() = stepInputs[2].name
    val previousInput: String get() = stepInputs[3].name
    val blendshapesOutput: String get() = stepOutputs[0].name
    val blendshapesRawOutput: String get() = stepOutputs[1].name
    val contextFrameOutput: String get() = stepOutputs[2].name

    init {
        @Suppress("UNCHECKED_CAST")
        val groups = path(root, ManifestKeys.BLENDSHAPE_GROUPS) as? Map<String, Any?>
            ?: throw ManifestException("${ManifestKeys.BLENDSHAPE_GROUPS} must be an object")
        val g = LinkedHashMap<String, List<String>>()
        for ((name, members) in groups) g[name] = stringList(members, "${ManifestKeys.BLENDSHAPE_GROUPS}.$name")
        blendshapeGroups = g

        val fileList = path(root, ManifestKeys.FILES) as? List<*>
            ?: throw ManifestException("${ManifestKeys.FILES} must be an array")
        files = fileList.mapIndexed { i, e ->
            @Suppress("UNCHECKED_CAST")
            val m = e as? Map<String, Any?> ?: throw ManifestException("${ManifestKeys.FILES}[$i] must be an object")
            BundleFile(
                path = str(m, ManifestKeys.FILE_PATH),
                role = str(m, ManifestKeys.FILE_ROLE),
                variant = str(m, ManifestKeys.FILE_VARIANT),
                bytes = (m[ManifestKeys.FILE_BYTES] as? Double)?.toLong() ?: -1L,
                sha256 = (m[ManifestKeys.FILE_SHA256] as? String) ?: ""
            )
        }

        // Shapes: check the roles the frame loop assumes and derive the sizes from them.
        check(frontEndInputs.size == 1 && frontEndOutputs.size == 1) { "the front end must have one input and one output" }
        check(stepInputs.size == 4 && stepOutputs.size == 3) { "the step must have 4 inputs and 3 outputs" }
        for (t in frontEndInputs + frontEndOutputs + stepInputs + stepOutputs) {
            check(t.dtype == ManifestKeys.DTYPE_FLOAT32) { "tensor ${t.name} is ${t.dtype}; the engine feeds float32 only" }
        }
        val pcm = frontEndInputs[0]
        check(pcm.size == window) { "front-end input $pcm must hold timeline.window=$window samples" }
        val mel = frontEndOutputs[0]
        nMels = mel.size
        val melFrames = stepInputs[0]
        check(melFrames.shape.size == 3 && melFrames.shape[2] == nMels) { "step input $melFrames must be [1, history, $nMels]" }
        melHistory = melFrames.shape[1]
        val context = stepInputs[1]
        check(context.shape.size == 3 && context.shape[1] == contextFrames - 1) {
            "step input $context must be [1, context_frames - 1 = ${contextFrames - 1}, dim]"
        }
        contextDim = context.shape[2]
        check(stepInputs[2].size == emotionNeutral.size) { "step input ${stepInputs[2]} must match emotion.neutral (${emotionNeutral.size})" }
        val nb = blendshapes.size
        check(stepInputs[3].size == nb) { "step input ${stepInputs[3]} must hold the $nb blendshapes" }
        check(stepOutputs[0].size == nb && stepOutputs[1].size == nb) { "step outputs 0 and 1 must hold the $nb blendshapes" }
        check(stepOutputs[2].size == contextDim) { "step output ${stepOutputs[2]} must be one context row of $contextDim" }

        initialMelFrames = floats(path(root, ManifestKeys.INITIAL_MEL_FRAMES), ManifestKeys.INITIAL_MEL_FRAMES)
        check(initialMelFrames.size == melHistory * nMels) { "${ManifestKeys.INITIAL_MEL_FRAMES} must be $melHistory x $nMels" }
        initialContextFrame = floats(path(root, ManifestKeys.INITIAL_CONTEXT_FRAME), ManifestKeys.INITIAL_CONTEXT_FRAME)
        check(initialContextFrame.size == contextDim) { "${ManifestKeys.INITIAL_CONTEXT_FRAME} must have $contextDim values" }
        check(fps > 0 && sampleRate > 0 && window > 0 && window % 2 == 0 && lookaheadFrames >= 0 && contextFrames >= 2) {
            "bad timeline numbers"
        }
        check(defaultVariant in variants) { "default_variant $defaultVariant is not in variants $variants" }
    }

    /**
     * The (front end, step) files for a variant (default: `default_variant`). Like the Python
     * reference, the front end is the bundle's front-end file whatever the variant (it stays fp32).
     */
    fun modelFiles(variant: String? = null): Pair<BundleFile, BundleFile> {
        val wanted = variant ?: defaultVariant
        val front = files.firstOrNull { it.role == ManifestKeys.ROLE_FRONT_END }
            ?: throw ManifestException("the bundle has no front_end model")
        val step = files.firstOrNull { it.role == ManifestKeys.ROLE_STEP && it.variant == wanted }
            ?: throw ManifestException(
                "the bundle has no step model for variant '$wanted' (it has: " +
                    files.filter { it.role == ManifestKeys.ROLE_STEP }.map { it.variant }.sorted().joinToString() + ")"
            )
        return Pair(front, step)
    }

    /** Variants that have a step file (what a variant picker should offer). */
    val availableVariants: List<String>
        get() = variants.filter { v -> files.any { it.role == ManifestKeys.ROLE_STEP && it.variant == v } }

    companion object {
        /** The bundles this engine reads: manifest.json's `format`, `format_version` and `platform`. */
        const val BUNDLE_FORMAT = "a2bs-bundle"
        const val BUNDLE_FORMAT_VERSION = 1
        const val BUNDLE_PLATFORM = "android"

        fun parse(jsonText: String): A2BSManifest {
            @Suppress("UNCHECKED_CAST")
            val root = Json.parse(jsonText) as? Map<String, Any?> ?: throw ManifestException("manifest.json must be an object")
            return A2BSManifest(root)
        }

        /** Refuses a manifest of another format, format version or platform with what it is and what to do. */
        private fun checkBundleKind(root: Map<String, Any?>) {
            val format = root[ManifestKeys.FORMAT]
            check(format == BUNDLE_FORMAT) {
                "manifest.json has format ${describe(format)}, not '$BUNDLE_FORMAT': install a bundle built by `a2bs-convert android`"
            }
            val version = root[ManifestKeys.FORMAT_VERSION]
            check(version == BUNDLE_FORMAT_VERSION.toDouble()) {
                "bundle format_version ${describe(version)}, this engine reads version $BUNDLE_FORMAT_VERSION: " +
                    "rebuild the bundle with this a2bs version (`a2bs-convert android`)"
            }
            val platform = root[ManifestKeys.PLATFORM]
            check(platform == BUNDLE_PLATFORM) {
                "this is a bundle for ${describe(platform)}, not '$BUNDLE_PLATFORM': build one with `a2bs-convert android`"
            }
        }

        private fun describe(value: Any?): String = when (value) {
            null -> "none"
            is String -> "'$value'"
            is Double -> if (value == Math.floor(value)) value.toLong().toString() else value.toString()
            else -> value.toString()
        }

        private fun check(ok: Boolean, message: () -> String) {
            if (!ok) throw ManifestException(message())
        }

        /** Value at a dotted path, or null. */
        fun path(root: Map<String, Any?>, dotted: String): Any? {
            var cur: Any? = root
            for (part in dotted.split('.')) cur = (cur as? Map<*, *>)?.get(part) ?: return null
            return cur
        }

        private fun num(root: Map<String, Any?>, key: String): Double =
            path(root, key) as? Double ?: throw ManifestException("manifest: '$key' must be a number")

        private fun int(root: Map<String, Any?>, key: String): Int {
            val d = num(root, key)
            if (d != Math.floor(d)) throw ManifestException("manifest: '$key' must be an integer, got $d")
            return d.toInt()
        }

        private fun str(root: Map<String, Any?>, key: String): String =
            path(root, key) as? String ?: throw ManifestException("manifest: '$key' must be a string")

        private fun strings(root: Map<String, Any?>, key: String): List<String> = stringList(path(root, key), key)

        private fun stringList(v: Any?, key: String): List<String> {
            val list = v as? List<*> ?: throw ManifestException("manifest: '$key' must be an array of strings")
            return list.map { it as? String ?: throw ManifestException("manifest: '$key' must be an array of strings") }
        }

        /** A number array of any nesting, flattened row-major. */
        private fun floats(v: Any?, key: String): FloatArray {
            val out = ArrayList<Float>()
            fun walk(x: Any?) {
                when (x) {
                    is Double -> out.add(x.toFloat())
                    is List<*> -> x.forEach { walk(it) }
                    else -> throw ManifestException("manifest: '$key' must be a (nested) array of numbers")
                }
            }
            walk(v ?: throw ManifestException("manifest: '$key' is missing"))
            return out.toFloatArray()
        }

        private fun tensors(root: Map<String, Any?>, key: String): List<TensorSpec> {
            val list = path(root, key) as? List<*> ?: throw ManifestException("manifest: '$key' must be an array")
            return list.map { e ->
                val m = e as? Map<*, *> ?: throw ManifestException("manifest: '$key' entries must be objects")
                val name = m[ManifestKeys.TENSOR_NAME] as? String ?: throw ManifestException("manifest: '$key' entry without a name")
                val shape = (m[ManifestKeys.TENSOR_SHAPE] as? List<*>)?.map { (it as Double).toInt() }?.toIntArray()
                    ?: throw ManifestException("manifest: '$key' entry $name without a shape")
                val dtype = m[ManifestKeys.TENSOR_DTYPE] as? String ?: throw ManifestException("manifest: '$key' entry $name without a dtype")
                TensorSpec(name, shape, dtype)
            }
        }
    }
}

class ManifestException(message: String) : RuntimeException(message)
