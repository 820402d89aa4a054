package com.a2bs.engine

/**
 * The life layer (docs/LIFE.md, algorithm version 1): blinks, gaze, head motion and brow raises added to the
 * model's 52 curves, read from the speech's level and pitch, deterministic for a seed. A port of the Python
 * reference `a2bs.core.life.LifeLayer`, reproducing its frames to 1e-6: the same state machine, SplitMix64
 * streams (Long arithmetic wraps mod 2^64, `ushr` for the unsigned shifts), float64 operations in the same
 * order, the shapes rounded to float32 at the end. The replay test compares it with Python frame by frame.
 */

/** A uniform range [lo, hi] of the parameters. */
data class LifeRange(val lo: Double, val hi: Double) {
    val mid: Double get() = (lo + hi) / 2.0
}

/** The layer's parameters (the manifest's `life.params`; docs/LIFE.md's table). */
data class LifeParams(
    val amount: Double,
    val blinkRateSpeaking: Double,
    val blinkRatePause: Double,
    val blinkPhraseEnd: Double,
    val blinkCloseS: LifeRange,
    val blinkHoldS: LifeRange,
    val blinkOpenRatio: LifeRange,
    val blinkAmplitude: LifeRange,
    val blinkAsymmetry: Double,
    val blinkRefractoryS: Double,
    val fixationSpeakingS: LifeRange,
    val fixationPauseS: LifeRange,
    val faceYawDeg: Double,
    val facePitchDeg: LifeRange,
    val avertProbability: Double,
    val avertDeg: LifeRange,
    val avertHoldS: LifeRange,
    val lidFollowDown: Double,
    val lidFollowUp: Double,
    val driftYawDeg: Double,
    val driftPitchDeg: Double,
    val driftRollDeg: Double,
    val driftPeriodS: LifeRange,
    val driftPauseScale: Double,
    val headGazeShare: Double,
    val nodProbability: Double,
    val nodDeg: Double,
    val nodDownS: Double,
    val nodUpS: Double,
    val settleDeg: Double,
    val settleDownS: Double,
    val settleUpS: Double,
    val headLimitDeg: Double,
    val browProbability: Double,
    val browAmplitude: Double,
    val browAttackS: Double,
    val browHoldS: Double,
    val browReleaseS: Double
) {
    companion object {
        const val VERSION = 1
        const val RNG = "splitmix64"

        /** Each parameter's manifest key, limits and whether it is a [lo, hi] range (core/life.py's LIMITS). */
        val LIMITS: List<Triple<String, DoubleArray, Boolean>> = listOf(
            Triple("amount", doubleArrayOf(0.0, 1.0), false),
            Triple("blink_rate_speaking", doubleArrayOf(0.0, 60.0), false),
            Triple("blink_rate_pause", doubleArrayOf(0.0, 60.0), false),
            Triple("blink_phrase_end", doubleArrayOf(0.0, 1.0), false),
            Triple("blink_close_s", doubleArrayOf(0.02, 0.5), true),
            Triple("blink_hold_s", doubleArrayOf(0.0, 1.0), true),
            Triple("blink_open_ratio", doubleArrayOf(0.5, 5.0), true),
            Triple("blink_amplitude", doubleArrayOf(0.0, 1.0), true),
            Triple("blink_asymmetry", doubleArrayOf(0.0, 0.5), false),
            Triple("blink_refractory_s", doubleArrayOf(0.0, 10.0), false),
            Triple("fixation_speaking_s", doubleArrayOf(0.1, 30.0), true),
            Triple("fixation_pause_s", doubleArrayOf(0.1, 30.0), true),
            Triple("face_yaw_deg", doubleArrayOf(0.0, 15.0), false),
            Triple("face_pitch_deg", doubleArrayOf(-15.0, 15.0), true),
            Triple("avert_probability", doubleArrayOf(0.0, 1.0), false),
            Triple("avert_deg", doubleArrayOf(0.0, 30.0), true),
            Triple("avert_hold_s", doubleArrayOf(0.1, 30.0), true),
            Triple("lid_follow_down", doubleArrayOf(0.0, 1.0), false),
            Triple("lid_follow_up", doubleArrayOf(0.0, 1.0), false),
            Triple("drift_yaw_deg", doubleArrayOf(0.0, 15.0), false),
            Triple("drift_pitch_deg", doubleArrayOf(0.0, 15.0), false),
            Triple("drift_roll_deg", doubleArrayOf(0.0, 15.0), false),
            Triple("drift_period_s", doubleArrayOf(0.2, 30.0), true),
            Triple("drift_pause_scale", doubleArrayOf(0.0, 1.0), false),
            Triple("head_gaze_share", doubleArrayOf(0.0, 1.0), false),
            Triple("nod_probability", doubleArrayOf(0.0, 1.0), false),
            Triple("nod_deg", doubleArrayOf(0.0, 15.0), false),
            Triple("nod_down_s", doubleArrayOf(0.02, 2.0), false),
            Triple("nod_up_s", doubleArrayOf(0.02, 2.0), false),
            Triple("settle_deg", doubleArrayOf(0.0, 15.0), false),
            Triple("settle_down_s", doubleArrayOf(0.02, 3.0), false),
            Triple("settle_up_s", doubleArrayOf(0.02, 3.0), false),
            Triple("head_limit_deg", doubleArrayOf(0.0, 45.0), false),
            Triple("brow_probability", doubleArrayOf(0.0, 1.0), false),
            Triple("brow_amplitude", doubleArrayOf(0.0, 1.0), false),
            Triple("brow_attack_s", doubleArrayOf(0.02, 2.0), false),
            Triple("brow_hold_s", doubleArrayOf(0.0, 2.0), false),
            Triple("brow_release_s", doubleArrayOf(0.02, 3.0), false)
        )

        /**
         * The manifest's `life` section (`version`, `rng`, `params`), checked like core/life.py's
         * `params_from_manifest`: every parameter present and inside its limits, no unknown key; otherwise a
         * one-line [ManifestException] naming the key.
         */
        fun fromManifest(section: Any?): LifeParams {
            val s = section as? Map<*, *> ?: throw ManifestException("manifest: '${ManifestKeys.LIFE}' must be an object")
            val version = s["version"]
            if (version != VERSION.toDouble()) {
                throw ManifestException("manifest: '${ManifestKeys.LIFE_VERSION}' is $version, this engine runs life layer version $VERSION")
            }
            if (s["rng"] != RNG) throw ManifestException("manifest: '${ManifestKeys.LIFE_RNG}' must be '$RNG', got ${s["rng"]}")
            val p = s["params"] as? Map<*, *> ?: throw ManifestException("manifest: '${ManifestKeys.LIFE_PARAMS}' must be an object")
            val known = LIMITS.map { it.first }.toSet()
            val unknown = p.keys.map { it.toString() }.filter { it !in known }.sorted()
            if (unknown.isNotEmpty()) {
                throw ManifestException("manifest: '${ManifestKeys.LIFE_PARAMS}.${unknown[0]}' is not a life-layer parameter")
            }
            val v = HashMap<String, Any>()
            for ((name, limits, isRange) in LIMITS) {
                val key = "${ManifestKeys.LIFE_PARAMS}.$name"
                val raw = p[name] ?: throw ManifestException("manifest: '$key' is missing")
                fun inside(x: Any?): Double {
                    val d = x as? Double ?: throw ManifestException("manifest: '$key' must be a number${if (isRange) " pair" else ""}")
                    if (!(d >= limits[0] && d <= limits[1])) {
                        throw ManifestException("manifest: '$key' must be in [${limits[0]}, ${limits[1]}], got $d")
                    }
                    return d
                }
                if (isRange) {
                    val pair = raw as? List<*>
                    if (pair == null || pair.size != 2) throw ManifestException("manifest: '$key' must be [lo, hi]")
                    val r = LifeRange(inside(pair[0]), inside(pair[1]))
                    if (r.lo > r.hi) throw ManifestException("manifest: '$key' must be [lo, hi] with lo <= hi, got [${r.lo}, ${r.hi}]")
                    v[name] = r
                } else {
                    v[name] = inside(raw)
                }
            }
            fun d(n: String) = v.getValue(n) as Double
            fun r(n: String) = v.getValue(n) as LifeRange
            return LifeParams(
                d("amount"), d("blink_rate_speaking"), d("blink_rate_pause"), d("blink_phrase_end"),
                r("blink_close_s"), r("blink_hold_s"), r("blink_open_ratio"), r("blink_amplitude"),
                d("blink_asymmetry"), d("blink_refractory_s"), r("fixation_speaking_s"), r("fixation_pause_s"),
                d("face_yaw_deg"), r("face_pitch_deg"), d("avert_probability"), r("avert_deg"), r("avert_hold_s"),
                d("lid_follow_down"), d("lid_follow_up"), d("drift_yaw_deg"), d("drift_pitch_deg"), d("drift_roll_deg"),
                r("drift_period_s"), d("drift_pause_scale"), d("head_gaze_share"), d("nod_probability"), d("nod_deg"),
                d("nod_down_s"), d("nod_up_s"), d("settle_deg"), d("settle_down_s"), d("settle_up_s"),
                d("head_limit_deg"), d("brow_probability"), d("brow_amplitude"), d("brow_attack_s"),
                d("brow_hold_s"), d("brow_release_s")
            )
        }
    }
}

/**
 * SplitMix64 (Steele, Lea & Flood, OOPSLA 2014) in Long arithmetic: + and * wrap mod 2^64 on the JVM, `ushr`
 * is the unsigned shift, so the bits are those of the uint64 reference.
 */
class SplitMix64(var state: Long) {
    fun next(): Long {
        state += -0x61c8864680b583ebL // 0x9E3779B97F4A7C15
        var z = state
        z = (z xor (z ushr 30)) * -0x40a7b892e31b1a47L // 0xBF58476D1CE4E5B9
        z = (z xor (z ushr 27)) * -0x6b2fb644ecceee15L // 0x94D049BB133111EB
        return z xor (z ushr 31)
    }

    /** lo + (hi - lo) * u, u = (next() >>> 11) * 2^-53: the same double as in Python. */
    fun uniform(lo: Double = 0.0, hi: Double = 1.0): Double =
        lo + (hi - lo) * ((next() ushr 11).toDouble() * (1.0 / 9007199254740992.0))

    fun uniform(r: LifeRange): Double = uniform(r.lo, r.hi)
}

/** One PCM window's level (dB) and YIN period (samples, 0: unvoiced), as core/life.py's `prosody_features`. */
object Prosody {
    const val N_FFT = 1024
    const val TAU_MIN = 40
    const val TAU_MAX = 266
    const val YIN_W = N_FFT - TAU_MAX
    const val YIN_THRESHOLD = 0.25
    private val LN10 = Math.log(10.0)

    /** Level in dB: 10 ln(mean(x^2) + 1e-10) / ln 10. */
    fun level(x: DoubleArray): Double {
        require(x.size == N_FFT) { "a life-layer window has $N_FFT samples, got ${x.size}" }
        var energy = 0.0
        for (v in x) energy += v * v
        return 10.0 * Math.log(energy / N_FFT + 1e-10) / LN10
    }

    /** YIN's period: the first lag in [40, 266] with d' < 0.25, then on while d' falls; 0 when none. */
    fun tau(x: DoubleArray): Int {
        require(x.size == N_FFT) { "a life-layer window has $N_FFT samples, got ${x.size}" }
        val cmnd = DoubleArray(TAU_MAX) // cmnd[i]: lag i + 1
        var total = 0.0
        for (i in 0 until TAU_MAX) {
            val lag = i + 1
            var d = 0.0
            for (j in 0 until YIN_W) {
                val diff = x[j] - x[j + lag]
                d += diff * diff
            }
            total += d
            cmnd[i] = if (total > 0) d * lag / total else 1.0
        }
        var first = -1
        for (i in TAU_MIN - 1 until TAU_MAX) {
            if (cmnd[i] < YIN_THRESHOLD) {
                first = i
                break
            }
        }
        if (first < 0) return 0
        var i = first
        while (i < TAU_MAX - 1 && cmnd[i + 1] < cmnd[i]) i++
        return i + 1
    }
}

/** The causal speech / pause / accent tracker (docs/LIFE.md, "Prosody: the tracker"). */
private class ProsodyTracker(private val fps: Int) {
    private val pauseFrames = frames(0.3, fps)
    private val minPhraseFrames = frames(0.5, fps)
    private val minVoicedFrames = maxOf(1, frames(0.05, fps))
    private val accentGapFrames = frames(0.5, fps)
    private val a = 1.0 - Math.exp(-1.0 / (fps * 2.0))
    private var k = -1L
    private var floor = Double.NaN
    private var peak = Double.NaN
    var speaking = false
        private set
    private var phraseStart = 0L
    private var lastActive = 0L
    private var pitchMean = Double.NaN
    private var pitchVar = Double.NaN
    private var levelMean = Double.NaN
    private var levelVar = Double.NaN
    private var voicedRun = 0
    private var score = Double.NEGATIVE_INFINITY
    private var lastAccent = -(1L shl 30)

    var started = false
        private set
    var ended = false
        private set
    /** The accent strength of the last frame, 0 when none. */
    var accent = 0.0
        private set

    fun update(rawLevel: Double, tau: Int) {
        k++
        val level = pyMax(rawLevel, -100.0)
        if (floor.isNaN()) {
            floor = level
            peak = level
        }
        floor = if (level < floor) level else pyMin(level, floor + 2.0 / fps)
        peak = if (level > peak) level else pyMax(level, peak - 4.0 / fps)
        val threshold = pyMax(pyMax(floor + 10.0, peak - 35.0), -70.0)
        val active = level > threshold && peak - floor >= 15.0
        started = false
        ended = false
        if (active) {
            if (!speaking) {
                speaking = true
                started = true
                phraseStart = k
            }
            lastActive = k
        } else if (speaking && k - lastActive >= pauseFrames) {
            speaking = false
            ended = lastActive - phraseStart + 1 >= minPhraseFrames
        }
        var score = Double.NEGATIVE_INFINITY
        if (active && tau > 0) {
            val st = 12.0 * Math.log(16000.0 / tau / 100.0) / Math.log(2.0)
            if (pitchMean.isNaN()) {
                pitchMean = st
                pitchVar = 9.0
            }
            if (Math.abs(st - pitchMean) <= 9.0) {
                voicedRun++
                if (voicedRun >= minVoicedFrames && !levelMean.isNaN()) {
                    val zPitch = (st - pitchMean) / Math.sqrt(pyMax(pitchVar, 1.0))
                    val zLevel = (level - levelMean) / Math.sqrt(pyMax(levelVar, 9.0))
                    score = pyMin(zPitch, 3.0) + 0.5 * pyMin(zLevel, 3.0)
                }
                val delta = st - pitchMean
                pitchMean += a * delta
                pitchVar += a * (delta * delta - pitchVar)
            } else {
                voicedRun = 0
            }
        } else {
            voicedRun = 0
        }
        if (active) {
            if (levelMean.isNaN()) {
                levelMean = level
                levelVar = 36.0
            }
            val delta = level - levelMean
            levelMean += a * delta
            levelVar += a * (delta * delta - levelVar)
        }
        accent = 0.0
        if (score >= 1.0 && 1.0 > this.score && k - lastAccent >= accentGapFrames) {
            accent = pyMin(1.0, 0.5 + 0.5 * (score - 1.0))
            lastAccent = k
        }
        this.score = score
    }

    companion object {
        fun frames(seconds: Double, fps: Int): Int = (seconds * fps + 0.5).toInt()
    }
}

/** Python's max(a, b): a unless b > a (the same double as Java's for the finite values here). */
private fun pyMax(a: Double, b: Double): Double = if (b > a) b else a

/** Python's min(a, b): a unless b < a. */
private fun pyMin(a: Double, b: Double): Double = if (b < a) b else a

/** 0 before t0, raised-cosine rise to 1 at tPeak, 1 until tHold, raised-cosine fall to 0 at tEnd. */
fun bump(t: Double, t0: Double, tPeak: Double, tHold: Double, tEnd: Double): Double {
    val rise = pyMin(Math.PI, pyMax(0.0, Math.PI * (t - t0) / pyMax(tPeak - t0, 1e-6)))
    val fall = pyMin(Math.PI, pyMax(0.0, Math.PI * (t - tHold) / pyMax(tEnd - tHold, 1e-6)))
    return (1 - Math.cos(rise)) / 2 * ((1 + Math.cos(fall)) / 2)
}

/**
 * One stream's life layer. Call [process] for output frames 0, 1, 2, ... in order, each with the 16 kHz PCM
 * window centred on its time (1024 samples, zeros outside the stream); [reset] when the stream restarts.
 * [amount] is the app's slider: 0 passes the frames through with zero rotations; a change applies to the
 * motion drawn from the next frame on (the Python reference runs at one amount per stream).
 *
 * @param names the blendshape names of the frames (the manifest's order)
 */
class LifeLayer(params: LifeParams, val fps: Int, val seed: Long, private val names: List<String>) {
    init {
        require(fps > 0) { "fps must be positive" }
        require(seed in 0L..MAX_SEED) { "the life layer's seed must be in [0, $MAX_SEED], got $seed" }
    }

    @Volatile var params: LifeParams = params
        private set

    /** The motion's strength (0 off, 1 the manifest's preset), settable at any time, from any thread. */
    var amount: Double
        get() = params.amount
        set(value) {
            require(value in 0.0..1.0) { "life amount must be in [0, 1], got $value" }
            params = params.copy(amount = value)
        }

    private val nShapes = names.size
    private fun index(name: String): Int {
        val i = names.indexOf(name)
        require(i >= 0) { "the life layer needs blendshape $name" }
        return i
    }

    private val lifeShapes = names.indices.filter { names[it].startsWith("eye") || names[it].startsWith("brow") }.toIntArray()
    private val sides = arrayOf("Left", "Right").map { side ->
        intArrayOf(
            index("eyeLookIn$side"), index("eyeLookOut$side"), index("eyeLookDown$side"), index("eyeLookUp$side"),
            index("eyeBlink$side"), index("eyeWide$side"), index("browOuterUp$side")
        )
    }
    private val inner = index("browInnerUp")
    private val outRight = index("eyeLookOutRight")
    private val inRight = index("eyeLookInRight")
    private val downRight = index("eyeLookDownRight")
    private val upRight = index("eyeLookUpRight")
    private val inLeft = index("eyeLookInLeft")
    private val outLeft = index("eyeLookOutLeft")
    private val downLeft = index("eyeLookDownLeft")
    private val upLeft = index("eyeLookUpLeft")

    /** Output frames processed since the last reset. */
    var frame = 0L
        private set

    private lateinit var rng: Array<SplitMix64>
    private lateinit var tracker: ProsodyTracker
    private var hazardSpeaking = 0.0
    private var hazardPause = 0.0
    private var blink: DoubleArray? = null // t0, closed, open, end, amplitude left, amplitude right
    private var blinkAllowed = 0.0
    private var gazeFromYaw = 0.0
    private var gazeFromPitch = 0.0
    private var gazeToYaw = 0.0
    private var gazeToPitch = 0.0
    private var saccT0 = 0.0
    private var saccS = 1e-6
    private var averted = false
    private var nextShift = 0.0
    private var driftFrom = DoubleArray(3)
    private var driftTo = DoubleArray(3)
    private var driftT0 = 0.0
    private var driftS = 0.0
    private var followYaw = 0.0
    private var followPitch = 0.0
    private val followA = 1.0 - Math.exp(-1.0 / (fps * HEAD_FOLLOW_S))
    private val nods = ArrayList<DoubleArray>() // t0, peak, end, degrees
    private val brows = ArrayList<DoubleArray>() // t0, peak, hold, end, left, right
    private val window = DoubleArray(Prosody.N_FFT)

    init {
        reset()
    }

    /** Back to the start of a stream: the state the first frame sees. */
    fun reset() {
        val p = params
        frame = 0L
        rng = Array(4) { SplitMix64(seed * 4 + it) }
        tracker = ProsodyTracker(fps)
        val dead = p.blinkRefractoryS + p.blinkCloseS.mid * (1.0 + p.blinkOpenRatio.mid) + p.blinkHoldS.mid
        hazardSpeaking = hazard(p.blinkRateSpeaking / 60.0, dead) / fps
        hazardPause = hazard(p.blinkRatePause / 60.0, dead) / fps
        blink = null
        blinkAllowed = 0.0
        gazeFromYaw = 0.0; gazeFromPitch = 0.0; gazeToYaw = 0.0; gazeToPitch = 0.0
        saccT0 = 0.0
        saccS = 1e-6
        averted = false
        nextShift = fixation(false)
        driftFrom = DoubleArray(3)
        driftTo = driftKnots(false)
        driftT0 = 0.0
        driftS = rng[HEAD].uniform(p.driftPeriodS)
        followYaw = 0.0; followPitch = 0.0
        nods.clear()
        brows.clear()
    }

    /**
     * The next output frame: `curves` (the model's values, manifest order) are overwritten with the layer's
     * eyes and brows; returns the 9 rotations in radians (HeadYaw, HeadPitch, HeadRoll, LeftEyeYaw,
     * LeftEyePitch, LeftEyeRoll, RightEyeYaw, RightEyePitch, RightEyeRoll). `pcm`: the frame's 1024-sample
     * window (float32 PCM, read as float64).
     */
    fun process(curves: FloatArray, pcm: FloatArray, pcmOffset: Int = 0): DoubleArray {
        require(pcmOffset >= 0 && pcmOffset + Prosody.N_FFT <= pcm.size) { "a life-layer window has ${Prosody.N_FFT} samples" }
        for (i in 0 until Prosody.N_FFT) window[i] = pcm[pcmOffset + i].toDouble()
        for (v in window) require(!v.isNaN() && !v.isInfinite()) { "the life layer got NaN or infinite PCM samples" }
        return process(curves, Prosody.level(window), Prosody.tau(window))
    }

    /** [process] with the window's level (dB) and YIN period already computed ([Prosody]). */
    fun process(curves: FloatArray, level: Double, tau: Int): DoubleArray {
        require(curves.size == nShapes) { "the life layer takes frames of $nShapes values, got ${curves.size}" }
        if (params.amount == 0.0) { // off: the model's frame as it is, no rotations
            frame++
            return DoubleArray(9)
        }
        val state = step(level, tau)
        return compose(curves, state)
    }

    private fun fixation(speaking: Boolean): Double =
        rng[GAZE].uniform(if (speaking) params.fixationSpeakingS else params.fixationPauseS)

    private fun driftKnots(speaking: Boolean): DoubleArray {
        val p = params
        val r = rng[HEAD]
        val s = 1.0 * p.amount * (if (speaking) 1.0 else p.driftPauseScale)
        val yaw = r.uniform(-1.0, 1.0) * p.driftYawDeg * s
        val pitch = r.uniform(-1.0, 1.0) * p.driftPitchDeg * s
        val roll = r.uniform(-1.0, 1.0) * p.driftRollDeg * s
        return doubleArrayOf(yaw, pitch, roll)
    }

    private fun gazeWeight(t: Double): Double {
        val s = pyMin(1.0, pyMax(0.0, (t - saccT0) / saccS))
        return (1.0 - Math.cos(Math.PI * s)) / 2.0
    }

    private fun saccade(t: Double, yaw: Double, pitch: Double) {
        val w = gazeWeight(t)
        val startYaw = gazeFromYaw + (gazeToYaw - gazeFromYaw) * w
        val startPitch = gazeFromPitch + (gazeToPitch - gazeFromPitch) * w
        val dy = yaw - startYaw
        val dp = pitch - startPitch
        val amplitude = Math.sqrt(dy * dy + dp * dp)
        gazeFromYaw = startYaw; gazeFromPitch = startPitch
        gazeToYaw = yaw; gazeToPitch = pitch
        saccT0 = t
        saccS = SACCADE_S + SACCADE_S_PER_DEG * amplitude
    }

    private fun drift(t: Double): DoubleArray {
        val s = pyMin(1.0, pyMax(0.0, (t - driftT0) / driftS))
        val w = (1.0 - Math.cos(Math.PI * s)) / 2.0
        val a = driftFrom
        val b = driftTo
        return doubleArrayOf(a[0] + (b[0] - a[0]) * w, a[1] + (b[1] - a[1]) * w, a[2] + (b[2] - a[2]) * w)
    }

    /** core/life.py's `_step`: (blink L, blink R, brow L, brow R, eye yaw, eye pitch, head yaw, pitch, roll), degrees. */
    private fun step(level: Double, tau: Int): DoubleArray {
        val p = params
        val t = frame.toDouble() / fps
        tracker.update(level, tau)
        val started = tracker.started
        val ended = tracker.ended
        val accent = tracker.accent
        val speaking = tracker.speaking

        // 1. blinks (stream 0): one draw every frame
        val u = rng[BLINK].uniform()
        if (blink != null && t >= blink!![3]) blink = null
        var chance = if (speaking) hazardSpeaking else hazardPause
        if (ended) chance = 1.0 - (1.0 - chance) * (1.0 - p.blinkPhraseEnd)
        if (blink == null && t >= blinkAllowed && u < chance) {
            val r = rng[BLINK]
            val close = r.uniform(p.blinkCloseS)
            val hold = r.uniform(p.blinkHoldS)
            val opening = close * r.uniform(p.blinkOpenRatio)
            val amp = r.uniform(p.blinkAmplitude)
            val weaker = 1.0 - r.uniform(0.0, p.blinkAsymmetry)
            val leftWeaker = r.uniform() < 0.5
            val b = doubleArrayOf(
                t,
                t + close,
                t + close + hold,
                t + close + hold + opening,
                amp * (if (leftWeaker) weaker else 1.0),
                amp * (if (leftWeaker) 1.0 else weaker)
            )
            blink = b
            blinkAllowed = b[3] + p.blinkRefractoryS
        }
        var blinkL = 0.0
        var blinkR = 0.0
        blink?.let { b ->
            val w = bump(t, b[0], b[1], b[2], b[3])
            blinkL = w * b[4]
            blinkR = w * b[5]
        }

        // 2. gaze (stream 1)
        var r = rng[GAZE]
        if (started && r.uniform() < p.avertProbability) {
            val amplitude = r.uniform(p.avertDeg) * p.amount
            val angle = r.uniform(0.0, 2.0 * Math.PI)
            saccade(t, amplitude * Math.cos(angle), 0.6 * amplitude * Math.sin(angle))
            averted = true
            nextShift = t + r.uniform(p.avertHoldS)
        } else if ((ended && averted) || t >= nextShift) {
            val yaw = r.uniform(-p.faceYawDeg, p.faceYawDeg) * p.amount
            val pitch = r.uniform(p.facePitchDeg) * p.amount
            saccade(t, yaw, pitch)
            averted = false
            nextShift = t + fixation(speaking)
        }
        val gw = gazeWeight(t)
        val gazeYaw = gazeFromYaw + (gazeToYaw - gazeFromYaw) * gw
        val gazePitch = gazeFromPitch + (gazeToPitch - gazeFromPitch) * gw

        // 3. head (stream 2)
        r = rng[HEAD]
        if (ended) {
            val now = drift(t)
            driftFrom = now
            driftTo = doubleArrayOf(0.3 * now[0], 0.3 * now[1], 0.3 * now[2])
            driftT0 = t
            driftS = p.settleDownS + p.settleUpS
            val amp = p.settleDeg * r.uniform(0.7, 1.3) * p.amount
            nods.add(doubleArrayOf(t, t + p.settleDownS, t + p.settleDownS + p.settleUpS, amp))
        } else if (t >= driftT0 + driftS) {
            driftFrom = driftTo
            driftTo = driftKnots(speaking)
            driftT0 += driftS
            driftS = r.uniform(p.driftPeriodS)
        }
        if (accent > 0 && r.uniform() < p.nodProbability) {
            val amp = p.nodDeg * accent * r.uniform(0.7, 1.3) * p.amount
            nods.add(doubleArrayOf(t, t + p.nodDownS, t + p.nodDownS + p.nodUpS, amp))
        }
        val targetYaw = gazeToYaw * p.headGazeShare
        val targetPitch = gazeToPitch * p.headGazeShare
        followYaw += followA * (targetYaw - followYaw)
        followPitch += followA * (targetPitch - followPitch)
        nods.removeAll { !(t < it[2]) }
        val d = drift(t)
        var nod = 0.0
        for (n in nods) nod += n[3] * bump(t, n[0], n[1], n[1], n[2])
        val limit = p.headLimitDeg
        val headYaw = clamp(d[0] + followYaw, limit)
        val headPitch = clamp(d[1] + followPitch + nod, limit)
        val headRoll = clamp(d[2], limit)

        // 4. brows (stream 3)
        r = rng[BROW]
        if (accent > 0 && r.uniform() < p.browProbability) {
            val amp = p.browAmplitude * accent * r.uniform(0.7, 1.3) * p.amount
            val side = r.uniform(0.85, 1.0)
            val leftWeaker = r.uniform() < 0.5
            val t1 = t + p.browAttackS
            val t2 = t1 + p.browHoldS
            brows.add(
                doubleArrayOf(
                    t, t1, t2, t2 + p.browReleaseS,
                    amp * (if (leftWeaker) side else 1.0),
                    amp * (if (leftWeaker) 1.0 else side)
                )
            )
        }
        brows.removeAll { !(t < it[3]) }
        var browL = 0.0
        var browR = 0.0
        for (b in brows) {
            val w = bump(t, b[0], b[1], b[2], b[3])
            browL = pyMax(browL, w * b[4])
            browR = pyMax(browR, w * b[5])
        }

        frame++
        // the eyes in the head: the gaze less the head
        return doubleArrayOf(
            blinkL, blinkR, browL, browR, gazeYaw - headYaw, gazePitch - headPitch, headYaw, headPitch, headRoll
        )
    }

    /** core/life.py's `compose` for one frame: the shapes (in place, float32) and the 9 rotations in radians. */
    private fun compose(curves: FloatArray, state: DoubleArray): DoubleArray {
        val p = params
        val v = DoubleArray(nShapes) { curves[it].toDouble() }
        val out = v.copyOf()
        val yaw = state[4] * DEG
        val pitch = state[5] * DEG
        val toward = pyMaxNp(yaw, 0.0) / YAW_PER_UNIT
        val away = pyMaxNp(-yaw, 0.0) / YAW_PER_UNIT
        val down = pyMaxNp(pitch, 0.0) / DOWN_PER_UNIT
        val up = pyMaxNp(-pitch, 0.0) / UP_PER_UNIT
        val raised = pyMaxNp(state[2], state[3])
        val wide = p.lidFollowUp * up + BROW_WIDE * raised
        for (i in 0..1) {
            val s = sides[i]
            val gazeIn = if (i == 0) toward else away
            val gazeOut = if (i == 0) away else toward
            out[s[0]] = v[s[0]] + gazeIn
            out[s[1]] = v[s[1]] + gazeOut
            out[s[2]] = v[s[2]] + down
            out[s[3]] = v[s[3]] + up
            val closing = Math.min(1.0, state[i] + p.lidFollowDown * down)
            out[s[4]] = v[s[4]] + (1.0 - v[s[4]]) * closing
            out[s[5]] = v[s[5]] + wide
            out[s[6]] = v[s[6]] + BROW_OUTER * state[2 + i]
        }
        out[inner] = v[inner] + raised
        for (i in lifeShapes) curves[i] = Math.min(1.0, Math.max(0.0, out[i])).toFloat()
        val rotations = DoubleArray(9)
        rotations[0] = state[6] * DEG
        rotations[1] = state[7] * DEG
        rotations[2] = state[8] * DEG
        fun o(i: Int) = curves[i].toDouble()
        rotations[3] = YAW_PER_UNIT * (o(outRight) - o(inRight))
        rotations[4] = DOWN_PER_UNIT * o(downRight) - UP_PER_UNIT * o(upRight)
        rotations[6] = YAW_PER_UNIT * (o(inLeft) - o(outLeft))
        rotations[7] = DOWN_PER_UNIT * o(downLeft) - UP_PER_UNIT * o(upLeft)
        return rotations
    }

    companion object {
        const val MAX_SEED = 4294967295L
        const val N_ROTATIONS = 9
        private const val BLINK = 0
        private const val GAZE = 1
        private const val HEAD = 2
        private const val BROW = 3
        private const val YAW_PER_UNIT = 0.6
        private const val DOWN_PER_UNIT = 0.61
        private const val UP_PER_UNIT = 0.437
        private const val SACCADE_S = 0.021
        private const val SACCADE_S_PER_DEG = 0.0022
        private const val HEAD_FOLLOW_S = 0.3
        private const val BROW_WIDE = 0.1
        private const val BROW_OUTER = 0.8
        private val DEG = Math.PI / 180.0

        private fun hazard(rate: Double, dead: Double): Double = rate / pyMax(1.0 - rate * dead, 0.05)

        private fun clamp(x: Double, limit: Double): Double = pyMin(limit, pyMax(-limit, x))

        /** np.maximum of two finite doubles. */
        private fun pyMaxNp(a: Double, b: Double): Double = Math.max(a, b)
    }
}
