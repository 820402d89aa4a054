package com.a2bs.engine

/**
 * Speech to blendshapes, frame by frame, exactly as the bundle manifest prescribes (the Python
 * reference is `a2bs.runtime.bundle_inference.iter_bundle_blendshapes`):
 *
 * for mel frame j = 0, 1, 2, ... once sample center_j + window/2 exists:
 *  1. mel_j = frontEnd(pcm[center_j - window/2, center_j + window/2)) (zeros before the stream start);
 *  2. mel history = the last `melHistory` mel frames, oldest first (initially the manifest's);
 *  3. step(mel history, context rows oldest first, emotion, previous);
 *  4. the context ring drops its oldest row and appends the step's new context row;
 *  5. k = j - lookahead: if k >= 0, output frame k is the step's raw frame for k == 0 and its
 *     smoothed frame after that; previous := that frame (zeros before frame 0).
 *
 * Feed any chunk sizes to [push]; the output does not depend on how the audio is split. Call
 * [flush] at the end of a finite stream (it pads zeros, as the reference does, until all
 * ceil(samples * fps / sample_rate) frames are out), [reset] to start a new stream.
 *
 * Not thread-safe: call it from one thread (e.g. the audio worker). The models run on that thread.
 *
 * Face controls: each published frame first goes through a [ControlsFilter] (lower / upper / expression strength,
 * lip-opening offset, smoothing per region; docs/CONTROLS.md), starting at the manifest's values (the defaults,
 * which leave the frames as they are, when it has none); [controls] is the runtime setting (from any thread, like
 * [lifeAmount]: it takes effect from the next frame, the smoothing carries on). Order: model -> controls -> life.
 *
 * Life layer: when the manifest has a `life` section (or [lifeParams] is given), each published frame
 * also goes through a [LifeLayer] (blinks, gaze, head motion, brow raises; docs/LIFE.md) with the PCM window
 * of mel frame k (computed `lookahead` calls earlier: its level and pitch are kept until frame k is out),
 * so it adds no latency; [BlendshapeFrame.rotations] holds the 9 head and eye rotations. The model's own
 * frame is what feeds back as `previous`. [lifeAmount] is the runtime slider (0 off; unlike the rest, it may
 * be set from any thread: it takes effect from the next frame).
 *
 * @param emotion the emotion input (default: the manifest's neutral vector; there is no openSMILE
 *   on the device, so apps pass neutral).
 * @param controls the face controls (default: the manifest's)
 * @param lifeParams the life layer's parameters (default: the manifest's; null: no layer)
 * @param lifeSeed its seed, in [0, 2^32 - 1]: the same seed and audio give the same frames as Python
 */
class A2BSEngine @JvmOverloads constructor(
    val manifest: A2BSManifest,
    private val frontEnd: FrontEndModel,
    private val step: StepModel,
    emotion: FloatArray = manifest.emotionNeutral,
    lifeParams: LifeParams? = manifest.life,
    lifeSeed: Long = 0L,
    controls: FaceControls = manifest.controls
) {
    val scheduler = FrameScheduler(manifest.sampleRate, manifest.fps, manifest.window, manifest.lookaheadFrames)

    /** Optional push-style consumer, called for every frame before push/flush return it. */
    var listener: FrameListener? = null

    private val samples = SampleBuffer(maxOf(4 * manifest.window, manifest.sampleRate))
    private val ring = ContextRing(manifest.contextFrames - 1, manifest.contextDim)

    // Model inputs, allocated once and refilled every frame.
    private val pcm = FloatArray(manifest.window)
    private val melHistory = FloatArray(manifest.melHistory * manifest.nMels)
    private val context = FloatArray((manifest.contextFrames - 1) * manifest.contextDim)
    private val emotionInput = FloatArray(manifest.emotionNeutral.size)
    private val previous = FloatArray(manifest.blendshapes.size)
    private val frontEndInputs: Map<String, FloatArray> = mapOf(manifest.pcmInput to pcm)
    private val stepInputs: Map<String, FloatArray> = linkedMapOf(
        manifest.melFramesInput to melHistory,
        manifest.contextInput to context,
        manifest.emotionInput to emotionInput,
        manifest.previousInput to previous
    )

    private val controlsFilter = ControlsFilter(controls, manifest.fps, manifest.blendshapes)

    /** The face controls (the manifest's to start with), settable from any thread: they apply from the next frame. */
    var controls: FaceControls
        get() = controlsFilter.controls
        set(value) {
            controlsFilter.controls = value
        }

    /** The life layer, or null when the manifest has none. */
    val life: LifeLayer? = lifeParams?.let {
        require(manifest.window == Prosody.N_FFT && manifest.sampleRate == 16000) {
            "the life layer reads ${Prosody.N_FFT}-sample windows of 16 kHz PCM; this bundle has ${manifest.window} at ${manifest.sampleRate} Hz"
        }
        LifeLayer(it, manifest.fps, lifeSeed, manifest.blendshapes)
    }

    /** The life layer's amount (0: off, 1: the manifest's preset); 0 when there is no layer. */
    var lifeAmount: Double
        get() = life?.amount ?: 0.0
        set(value) {
            val layer = life ?: throw IllegalStateException("this bundle's manifest has no life layer")
            layer.amount = value
        }

    // Level and YIN period of the last lookahead + 1 mel windows: output frame k uses mel frame k's.
    private val lifeLevels = DoubleArray(manifest.lookaheadFrames + 1)
    private val lifeTaus = IntArray(manifest.lookaheadFrames + 1)
    private val lifeWindow = DoubleArray(manifest.window)

    /** Next mel frame index j to compute. */
    private var nextMel = 0L
    private var flushed = false

    /** Output frames produced since the last reset. */
    var framesEmitted = 0L
        private set

    /** Samples pushed since the last reset. */
    val samplesPushed: Long get() = samples.end

    init {
        setEmotion(emotion)
        reset()
    }

    /** Replace the emotion input (size `emotion.dim` of the manifest); takes effect from the next frame. */
    fun setEmotion(values: FloatArray) {
        require(values.size == emotionInput.size) { "emotion must have ${emotionInput.size} values, got ${values.size}" }
        System.arraycopy(values, 0, emotionInput, 0, values.size)
    }

    /** Back to the start of a new stream (the models are kept). */
    fun reset() {
        samples.clear()
        ring.fill(manifest.initialContextFrame)
        System.arraycopy(manifest.initialMelFrames, 0, melHistory, 0, melHistory.size)
        previous.fill(0f)
        controlsFilter.reset()
        life?.reset()
        nextMel = 0L
        framesEmitted = 0L
        flushed = false
    }

    /**
     * Append mono PCM at the manifest's sample rate (floats in [-1, 1]) and run every mel frame
     * whose window is now complete. Returns the new output frames (possibly none), oldest first.
     */
    @JvmOverloads
    fun push(audio: FloatArray, offset: Int = 0, length: Int = audio.size - offset): List<BlendshapeFrame> {
        check(!flushed) { "the stream was flushed; call reset() before pushing a new one" }
        samples.append(audio, offset, length)
        val out = ArrayList<BlendshapeFrame>()
        while (scheduler.windowEnd(nextMel) <= samples.end) runMelFrame(out)
        return out
    }

    /**
     * End of stream: run the remaining mel frames with zeros past the last sample until all
     * ceil(samples * fps / sample_rate) output frames are out. Call [reset] before the next stream.
     */
    fun flush(): List<BlendshapeFrame> {
        val out = ArrayList<BlendshapeFrame>()
        if (flushed) return out
        val total = scheduler.outputFrames(samples.end)
        while (framesEmitted < total) runMelFrame(out)
        flushed = true
        return out
    }

    private fun runMelFrame(out: MutableList<BlendshapeFrame>) {
        val j = nextMel
        samples.copy(scheduler.windowStart(j), pcm)
        if (life != null) {
            for (i in pcm.indices) lifeWindow[i] = pcm[i].toDouble()
            val slot = (j % lifeLevels.size).toInt()
            lifeLevels[slot] = Prosody.level(lifeWindow)
            lifeTaus[slot] = Prosody.tau(lifeWindow)
        }

        val t0 = System.nanoTime()
        val mel = output(frontEnd.run(frontEndInputs), manifest.melOutput, manifest.nMels)
        val t1 = System.nanoTime()

        // Mel history: drop the oldest row, append mel_j.
        val n = manifest.nMels
        System.arraycopy(melHistory, n, melHistory, 0, melHistory.size - n)
        System.arraycopy(mel, 0, melHistory, melHistory.size - n, n)
        ring.copyOldestFirst(context)

        val t2 = System.nanoTime()
        val result = step.run(stepInputs)
        val t3 = System.nanoTime()

        ring.push(output(result, manifest.contextFrameOutput, manifest.contextDim))
        val k = j - manifest.lookaheadFrames
        if (k >= 0) {
            val name = if (k == 0L) manifest.blendshapesRawOutput else manifest.blendshapesOutput
            val values = output(result, name, previous.size).copyOf()
            System.arraycopy(values, 0, previous, 0, values.size) // the model's own frame feeds back
            controlsFilter.process(values)
            val slot = (k % lifeLevels.size).toInt()
            val rotations = life?.process(values, lifeLevels[slot], lifeTaus[slot]) ?: DoubleArray(LifeLayer.N_ROTATIONS)
            val frame = BlendshapeFrame(
                k, scheduler.timeSeconds(k), values, manifest.blendshapes, (t1 - t0) / 1e6, (t3 - t2) / 1e6, rotations
            )
            framesEmitted++
            listener?.onFrame(frame)
            out.add(frame)
        }
        nextMel = j + 1
        samples.discardBefore(scheduler.windowStart(nextMel)) // older samples are never needed again
    }

    private fun output(result: Map<String, FloatArray>, name: String, size: Int): FloatArray {
        val v = result[name] ?: throw IllegalStateException("model returned no output '$name' (got ${result.keys})")
        check(v.size == size) { "model output '$name' has ${v.size} values, expected $size" }
        return v
    }
}
