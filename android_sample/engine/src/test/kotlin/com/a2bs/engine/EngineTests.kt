package com.a2bs.engine

import java.io.File
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.util.Random

/**
 * Engine tests without JUnit (not available offline for the Debian kotlinc the CI uses): a main()
 * with plain checks, driven by `tests/test_android_sample.py`, which writes the inputs and checks
 * the outputs against the Python reference.
 *
 *   unit DIR                       unit tests; DIR holds centers.json, wav.json (+ files), manifest.json,
 *                                  refusals.json (+ manifests of other platforms / formats / versions);
 *                                  prints one JSON line describing the parsed manifest
 *   replay DIR SPEC[,SPEC...]      replays DIR/trace.json + trace.f32 through the engine, fed DIR/clip.wav
 *                                  in chunks of SPEC (a number, "irregular" or "all"); writes DIR/out_SPEC.f32
 *                                  (SPEC "life-X": chunks of X with the manifest's life layer, seed 0; also
 *                                  writes DIR/rot_life-X.f64, the rotations; "controls-X": the same with the face
 *                                  controls of DIR/replay_controls.json, set at run time, before the life layer)
 *   life DIR                       the life layer against Python's: DIR/life_cases.json lists cases (parameters,
 *                                  fps, seed, the model curves and PCM windows per frame, Python's curves and
 *                                  rotations); every value must be within the case's tolerance; prints a JSON
 *                                  line per case and one with the parameter limits (checked against Python's)
 *   controls DIR                   the face controls against Python's: DIR/controls_cases.json lists cases (the
 *                                  manifest section, fps, the model curves, Python's frames); each case run whole
 *                                  and in irregular chunks must be within its tolerance; prints a JSON line per
 *                                  case and one with the limits, SEAL_GAP and the regions (checked against Python's)
 *   face DIR                       the face drawing's lip geometry: known answers (lips sealed when mouthClose =
 *                                  jawOpen, open without mouthClose), then DIR/face_cases.json (inputs and the
 *                                  Python preview's answers, written by the test) must match; the head pose:
 *                                  known answers, then DIR/head_cases.json (yaw, pitch, roll and the preview's
 *                                  shift) must match
 *
 * Exit code 0 when every check passed; a failed check throws (non-zero exit, message on stderr).
 */
fun main(args: Array<String>) {
    require(args.size >= 2) { "usage: unit DIR | replay DIR SPECS | life DIR | controls DIR | face DIR" }
    val dir = File(args[1])
    when (args[0]) {
        "unit" -> UnitTests(dir).runAll()
        "replay" -> for (spec in args[2].split(',')) Replay(dir).run(spec)
        "face" -> faceGeometry(dir)
        "life" -> lifeCases(dir)
        "controls" -> controlsCases(dir)
        else -> throw IllegalArgumentException("unknown mode ${args[0]}")
    }
}

private fun fail(message: String): Nothing = throw AssertionError(message)

private fun expect(ok: Boolean, message: () -> String) {
    if (!ok) fail(message())
}

private inline fun <reified T : Throwable> expectThrows(what: String, block: () -> Unit) {
    try {
        block()
    } catch (e: Throwable) {
        if (e is T) return
        fail("$what: expected ${T::class.java.simpleName}, got $e")
    }
    fail("$what: expected ${T::class.java.simpleName}, nothing thrown")
}

private fun readF32(file: File): FloatArray {
    val b = ByteBuffer.wrap(file.readBytes()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer()
    val out = FloatArray(b.remaining())
    b.get(out)
    return out
}

private fun writeF32(file: File, values: FloatArray) {
    val b = ByteBuffer.allocate(values.size * 4).order(ByteOrder.LITTLE_ENDIAN)
    b.asFloatBuffer().put(values)
    file.writeBytes(b.array())
}

private fun readF64(file: File): DoubleArray {
    val b = ByteBuffer.wrap(file.readBytes()).order(ByteOrder.LITTLE_ENDIAN).asDoubleBuffer()
    val out = DoubleArray(b.remaining())
    b.get(out)
    return out
}

private fun writeF64(file: File, values: DoubleArray) {
    val b = ByteBuffer.allocate(values.size * 8).order(ByteOrder.LITTLE_ENDIAN)
    b.asDoubleBuffer().put(values)
    file.writeBytes(b.array())
}

private fun jsonString(s: String): String = "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""

private fun faceGeometry(dir: File) {
    val sealed = FaceGeometry.lipOpening(0.3f, 0.3f, 0f, 0f, 0f)
    expect(sealed == 0f) { "face: lips not sealed at mouthClose = jawOpen = 0.3 (opening $sealed)" }
    expect(FaceGeometry.lipOpening(0.8f, 0.8f, 0f, 0f, 0f) == 0f) { "face: lips not sealed with the jaw at 0.8" }
    expect(FaceGeometry.lipOpening(0.3f, 0.6f, 0f, 0f, 0f) == 0f) { "face: mouthClose above jawOpen opens the lips" }
    expect(FaceGeometry.lipOpening(0.3f, 0.3f, 0f, 0f, 1f) == 0f) { "face: pressing opens the lips" }
    expect(FaceGeometry.chinDrop(0.3f) > 0f) { "face: the chin does not drop with the lips sealed" }
    val open = FaceGeometry.lipOpening(0.3f, 0f, 0f, 0f, 0f)
    expect(Math.abs(open - FaceGeometry.LIP_OPENING_PER_JAW * 0.3f) < 1e-7f && open > 0.04f) {
        "face: lips not open at jawOpen 0.3, mouthClose 0 (opening $open)"
    }
    val cases = Json.parse(File(dir, "face_cases.json").readText()) as List<*>
    expect(cases.size > 10) { "face: only ${cases.size} cases from Python" }
    for (case in cases) {
        val x = ((case as Map<*, *>)["in"] as List<*>).map { (it as Double).toFloat() }
        val want = (case["opening"] as Double).toFloat()
        val got = FaceGeometry.lipOpening(x[0], x[1], x[2], x[3], x[4])
        expect(Math.abs(got - want) <= 1e-6f) { "face: lip opening of $x: Kotlin $got, Python $want" }
    }
    // The head pose: no turn, no shift; the preview's signs (positive yaw to the viewer's left, positive pitch down)
    val still = FaceGeometry.headPose(0.0, 0.0, 0.0)
    expect(still.dx == 0f && still.dy == 0f && still.angle == 0f) { "head: a still head moves" }
    val turned = FaceGeometry.headPose(0.2, 0.0, 0.0)
    expect(turned.dx < 0f && turned.dy == 0f) { "head: yaw 0.2 shifts by (${turned.dx}, ${turned.dy})" }
    expect(Math.abs(turned.dx + FaceGeometry.HEAD_RADIUS * Math.sin(0.2)) < 1e-7) { "head: yaw 0.2 shifts by ${turned.dx}" }
    val nodded = FaceGeometry.headPose(0.0, 0.1, 0.0)
    expect(nodded.dx == 0f && nodded.dy > 0f) { "head: pitch 0.1 shifts by (${nodded.dx}, ${nodded.dy})" }
    expect(FaceGeometry.headPose(0.0, 0.0, -0.05).angle == -0.05f) { "head: the roll is not the tilt" }
    val heads = Json.parse(File(dir, "head_cases.json").readText()) as List<*>
    expect(heads.size > 10) { "head: only ${heads.size} cases from Python" }
    for (case in heads) {
        val x = ((case as Map<*, *>)["in"] as List<*>).map { it as Double }
        val want = (case["pose"] as List<*>).map { it as Double }
        val got = FaceGeometry.headPose(x[0], x[1], x[2])
        val diff = listOf(got.dx - want[0], got.dy - want[1], got.angle - want[2]).map { Math.abs(it) }.max() ?: 0.0
        expect(diff <= 1e-6) { "head: pose of $x: Kotlin (${got.dx}, ${got.dy}, ${got.angle}), Python $want" }
    }
    println("{\"face_cases\": ${cases.size}, \"head_cases\": ${heads.size}}")
}

/** The life layer's own checks, then each case of DIR/life_cases.json against the Python frames. */
private fun lifeCases(dir: File) {
    // SplitMix64's reference outputs from state 0 (docs/LIFE.md)
    val rng = SplitMix64(0L)
    val want = listOf(-0x1ddf57c684e23251L, 0x6E789E6AA1B965F4L, 0x06C45D188009454FL) // 0xE220A8397B1DCDAF, ...
    for ((i, w) in want.withIndex()) {
        val got = rng.next()
        expect(got == w) { "life: SplitMix64 output $i is ${java.lang.Long.toHexString(got)}" }
    }
    val cases = Json.parse(File(dir, "life_cases.json").readText()) as List<*>
    expect(cases.isNotEmpty()) { "life: no cases" }
    for (c in cases) {
        val m = c as Map<*, *>
        val name = m["name"] as String
        val params = LifeParams.fromManifest(m["life"])
        val fps = (m["fps"] as Double).toInt()
        val seed = (m["seed"] as Double).toLong()
        val names = (m["names"] as List<*>).map { it as String }
        val n = (m["frames"] as Double).toInt()
        val tol = m["tolerance"] as Double
        val curves = readF32(File(dir, m["curves"] as String))
        val windows = readF32(File(dir, m["windows"] as String))
        val wantCurves = readF32(File(dir, m["expected_curves"] as String))
        val wantRot = readF64(File(dir, m["expected_rotations"] as String))
        val nb = names.size
        expect(curves.size == n * nb && wantCurves.size == n * nb && windows.size == n * Prosody.N_FFT && wantRot.size == n * 9) {
            "life $name: file sizes do not match $n frames"
        }
        val layer = LifeLayer(params, fps, seed, names)
        var maxCurves = 0.0
        var maxRot = 0.0
        for (k in 0 until n) {
            val frame = curves.copyOfRange(k * nb, (k + 1) * nb)
            val rot = layer.process(frame, windows, k * Prosody.N_FFT)
            for (i in 0 until nb) {
                val d = Math.abs(frame[i].toDouble() - wantCurves[k * nb + i])
                maxCurves = Math.max(maxCurves, d)
                expect(d <= tol) { "life $name: frame $k ${names[i]} is ${frame[i]}, Python ${wantCurves[k * nb + i]}" }
            }
            for (i in 0 until 9) {
                val d = Math.abs(rot[i] - wantRot[k * 9 + i])
                maxRot = Math.max(maxRot, d)
                expect(d <= tol) { "life $name: frame $k rotation $i is ${rot[i]}, Python ${wantRot[k * 9 + i]}" }
            }
        }
        // reset() starts the stream over: the first frame again
        layer.reset()
        val again = curves.copyOfRange(0, nb)
        layer.process(again, windows, 0)
        for (i in 0 until nb) expect(Math.abs(again[i] - wantCurves[i]) <= tol) { "life $name: reset changed frame 0" }
        println("{\"case\":${jsonString(name)},\"frames\":$n,\"max_curves\":$maxCurves,\"max_rotations\":$maxRot}")
    }
    // amount 0: the frames pass through, no rotations
    val first = cases[0] as Map<*, *>
    val off = LifeLayer(LifeParams.fromManifest(first["life"]), 30, 0L, (first["names"] as List<*>).map { it as String })
    off.amount = 0.0
    val frame = FloatArray((first["names"] as List<*>).size) { -0.25f + it * 0.03f }
    val copy = frame.copyOf()
    val rot = off.process(frame, FloatArray(Prosody.N_FFT) { Math.sin(it * 0.3).toFloat() })
    expect(frame.contentEquals(copy) && rot.all { it == 0.0 }) { "life: amount 0 changed the frame" }
    expectThrows<IllegalArgumentException>("life: amount above 1") { off.amount = 1.5 }
    val limits = LifeParams.LIMITS.joinToString(",") { (key, lim, isRange) -> "${jsonString(key)}:[${lim[0]},${lim[1]},$isRange]" }
    println("{\"limits\":{$limits}}")
}

/** The face controls' own checks, then each case of DIR/controls_cases.json against the Python frames. */
private fun controlsCases(dir: File) {
    val names = (Json.parse(File(dir, "controls_cases.json").readText()) as List<*>).let { cases ->
        expect(cases.isNotEmpty()) { "controls: no cases" }
        ((cases[0] as Map<*, *>)["names"] as List<*>).map { it as String }
    }
    val nb = names.size
    val rnd = Random(5)
    // the defaults leave the frames as they are, bit for bit; every strength 0 gives the neutral face
    val inside = FloatArray(7 * nb) { rnd.nextFloat() }
    val same = inside.copyOf()
    ControlsFilter(FaceControls(), 60, names).process(same)
    expect(same.contentEquals(inside)) { "controls: the defaults changed a frame in [0, 1]" }
    val outside = FloatArray(3 * nb) { rnd.nextFloat() * 3f - 1f } // the defaults skip the work, like `a2bs infer`
    val passed = outside.copyOf()
    ControlsFilter(FaceControls(), 30, names).process(passed)
    expect(passed.contentEquals(outside)) { "controls: the defaults changed a frame" }
    val neutral = inside.copyOf()
    ControlsFilter(FaceControls(0.0, 0.0, 1.0, 0.3, 0.2, 0.0), 30, names).process(neutral)
    expect(neutral.all { it == 0f }) { "controls: strength 0 is not the neutral face" }
    expectThrows<IllegalArgumentException>("controls: lip offset above its limit") { FaceControls(lipOffset = 0.31) }
    // a slider's Float end overshoots the Double limit: clamped, not refused
    val slid = FaceControls.withValue(FaceControls().values, 3, 0.3f.toDouble())
    expect(0.3f.toDouble() > 0.3 && slid.lipOffset == 0.3 && slid.copy(lipOffset = 0.0) == FaceControls()) { "controls: a slider at 0.3f" }
    expectThrows<IllegalArgumentException>("controls: negative strength") { FaceControls(upperStrength = -0.01) }
    expectThrows<IllegalArgumentException>("controls: a partial frame") { ControlsFilter(FaceControls(), 30, names).process(FloatArray(nb + 1)) }

    val cases = Json.parse(File(dir, "controls_cases.json").readText()) as List<*>
    for (c in cases) {
        val m = c as Map<*, *>
        val name = m["name"] as String
        val controls = FaceControls.fromManifest(m["controls"])
        val fps = (m["fps"] as Double).toInt()
        val n = (m["frames"] as Double).toInt()
        val tol = m["tolerance"] as Double
        expect((m["names"] as List<*>) == names) { "controls $name: the names differ from the first case's" }
        val curves = readF32(File(dir, m["curves"] as String))
        val want = readF32(File(dir, m["expected"] as String))
        expect(curves.size == n * nb && want.size == n * nb) { "controls $name: file sizes do not match $n frames" }
        fun compare(got: FloatArray, how: String): Double {
            var worst = 0.0
            for (k in 0 until n) for (i in 0 until nb) {
                val d = Math.abs(got[k * nb + i].toDouble() - want[k * nb + i])
                worst = Math.max(worst, d)
                expect(d <= tol) { "controls $name ($how): frame $k ${names[i]} is ${got[k * nb + i]}, Python ${want[k * nb + i]}" }
            }
            return worst
        }
        val filter = ControlsFilter(controls, fps, names)
        val whole = curves.copyOf()
        filter.process(whole)
        val maxWhole = compare(whole, "whole")
        // irregular chunks, after a reset: the smoothing's state carries across them
        filter.reset()
        val chunked = curves.copyOf()
        var k = 0
        while (k < n) {
            val len = minOf(n - k, 1 + rnd.nextInt(if (rnd.nextBoolean()) 3 else 40))
            val chunk = chunked.copyOfRange(k * nb, (k + len) * nb)
            filter.process(chunk)
            System.arraycopy(chunk, 0, chunked, k * nb, chunk.size)
            k += len
        }
        val maxChunks = compare(chunked, "chunks")
        println("{\"case\":${jsonString(name)},\"frames\":$n,\"max_whole\":$maxWhole,\"max_chunks\":$maxChunks}")
    }
    val limits = FaceControls.LIMITS.joinToString(",") { "${jsonString(it.key)}:[${it.lo},${it.hi}]" }
    val lower = names.filter { FaceControls.isLowerFace(it) }.joinToString(",") { jsonString(it) }
    val style = FaceControls.STYLE_SHAPES.joinToString(",") { jsonString(it) }
    println("{\"limits\":{$limits},\"seal_gap\":${FaceControls.SEAL_GAP},\"lower\":[$lower],\"style\":[$style]}")
}

private class UnitTests(private val dir: File) {
    private var passed = 0

    fun runAll() {
        json()
        contextRing()
        sampleBuffer()
        scheduler()
        wav()
        engineWithFakeModels()
        refusals()
        manifestSummary()
        System.err.println("unit: $passed groups passed")
    }

    private fun json() {
        @Suppress("UNCHECKED_CAST")
        val v = Json.parse(""" { "a": [1, -2.5e3, 0.125, true, false, null], "b": {"c": "x\"y\u00e9\\\n\/"}, "": [] } """)
            as Map<String, Any?>
        expect(v.keys.toList() == listOf("a", "b", "")) { "json: key order ${v.keys}" }
        expect(v["a"] == listOf(1.0, -2500.0, 0.125, true, false, null)) { "json: array ${v["a"]}" }
        expect((v["b"] as Map<*, *>)["c"] == "x\"y\u00e9\\\n/") { "json: string escapes ${v["b"]}" }
        expect(Json.parse("-0.0") == -0.0 && Json.parse("[[]]") == listOf(listOf<Any?>())) { "json: edge values" }
        expect((Json.parse("-2.0518486499786377") as Double).toFloat() == -2.0518486499786377f) { "json: float32 round trip" }
        for (bad in listOf("", "{", "[1,]", "{\"a\" 1}", "01", "1.", "tru", "\"abc", "[1] 2", "{\"a\":1,}", "\"\u0001\"")) {
            expectThrows<JsonException>("json: parse of '$bad'") { Json.parse(bad) }
        }
        passed++
    }

    private fun contextRing() {
        val rows = 5
        val dim = 3
        val ring = ContextRing(rows, dim)
        val initial = floatArrayOf(-1f, -2f, -3f)
        ring.fill(initial)
        val model = ArrayList<FloatArray>()
        repeat(rows) { model.add(initial.copyOf()) }
        val dst = FloatArray(rows * dim + 2)
        for (step in 0 until 23) {
            val row = FloatArray(dim) { step * 10f + it }
            ring.push(row)
            model.removeAt(0)
            model.add(row)
            ring.copyOldestFirst(dst, 2)
            for (r in 0 until rows) for (c in 0 until dim) {
                expect(dst[2 + r * dim + c] == model[r][c]) { "ring: step $step row $r col $c" }
            }
            expect(ring.row(rows - 1).contentEquals(row)) { "ring: newest row after step $step" }
            expect(ring.row(0).contentEquals(model[0])) { "ring: oldest row after step $step" }
        }
        expectThrows<IllegalArgumentException>("ring: short row") { ring.push(FloatArray(dim - 1)) }
        passed++
    }

    private fun sampleBuffer() {
        val rnd = Random(7)
        val buf = SampleBuffer(8)
        val all = ArrayList<Float>()
        var discarded = 0L
        for (round in 0 until 300) {
            val n = rnd.nextInt(50)
            val chunk = FloatArray(n) { (all.size + it).toFloat() + 0.5f }
            val off = rnd.nextInt(3)
            val padded = FloatArray(n + off + 2)
            System.arraycopy(chunk, 0, padded, off, n)
            buf.append(padded, off, n)
            chunk.forEach { all.add(it) }
            expect(buf.end == all.size.toLong()) { "samples: end ${buf.end} != ${all.size}" }
            if (rnd.nextInt(4) == 0) {
                discarded = maxOf(discarded, buf.end - rnd.nextInt(40))
                buf.discardBefore(discarded)
            }
            val from = maxOf(discarded, buf.start) - rnd.nextInt(3) * (if (buf.start == 0L) 7 else 0)
            val len = rnd.nextInt(80)
            val dst = FloatArray(len)
            buf.copy(from, dst)
            for (i in 0 until len) {
                val abs = from + i
                val want = if (abs < 0 || abs >= all.size) 0f else all[abs.toInt()]
                expect(dst[i] == want) { "samples: round $round index $abs got ${dst[i]} want $want" }
            }
        }
        if (buf.start > 0) expectThrows<IllegalStateException>("samples: read discarded") { buf.copy(buf.start - 1, FloatArray(2)) }
        val fresh = SampleBuffer(4)
        val dst = FloatArray(6)
        fresh.append(floatArrayOf(1f, 2f))
        fresh.copy(-3, dst)
        expect(dst.contentEquals(floatArrayOf(0f, 0f, 0f, 1f, 2f, 0f))) { "samples: zero padding ${dst.toList()}" }
        passed++
    }

    private fun scheduler() {
        val cases = Json.parse(File(dir, "centers.json").readText()) as List<*>
        for (c in cases) {
            val m = c as Map<*, *>
            val fps = (m["fps"] as Double).toInt()
            val sr = (m["sample_rate"] as Double).toInt()
            val first = (m["first"] as Double).toLong()
            val s = FrameScheduler(sr, fps, 1024, 2)
            (m["centers"] as List<*>).forEachIndexed { i, want ->
                val got = s.center(first + i)
                expect(got == (want as Double).toLong()) { "scheduler: fps $fps frame ${first + i}: $got != $want" }
                expect(s.windowStart(first + i) == got - 512 && s.windowEnd(first + i) == got + 512) { "scheduler: window" }
            }
            for (n in listOf(0L, 1L, 533L, 534L, 16000L, 48001L)) {
                val want = Math.ceil(n * fps.toDouble() / sr).toLong()
                expect(s.outputFrames(n) == want) { "scheduler: outputFrames($n) at $fps fps" }
            }
        }
        passed++
    }

    private fun wav() {
        val cases = Json.parse(File(dir, "wav.json").readText()) as List<*>
        for (c in cases) {
            val m = c as Map<*, *>
            val name = m["wav"] as String
            val wav = WavReader.read(File(dir, name))
            val want = readF32(File(dir, m["expected"] as String))
            val tol = (m["tol"] as Double).toFloat()
            expect(wav.sampleRate == (m["sample_rate"] as Double).toInt()) { "wav $name: rate ${wav.sampleRate}" }
            expect(wav.channels == (m["channels"] as Double).toInt()) { "wav $name: channels ${wav.channels}" }
            expect(wav.samples.size == want.size) { "wav $name: ${wav.samples.size} samples, want ${want.size}" }
            for (i in want.indices) expect(Math.abs(wav.samples[i] - want[i]) <= tol) { "wav $name: sample $i ${wav.samples[i]} != ${want[i]}" }
        }
        expectThrows<WavException>("wav: not a wav") { WavReader.read("hello, this is not audio at all".toByteArray()) }
        passed++
    }

    /** Chunking, flush, reset and misuse with deterministic fake models (the real contract is in replay). */
    private fun engineWithFakeModels() {
        val manifest = A2BSManifest.parse(File(dir, "manifest.json").readText())
        val nb = manifest.blendshapes.size
        val front = object : FrontEndModel {
            override fun run(inputs: Map<String, FloatArray>): Map<String, FloatArray> {
                val pcm = inputs.getValue(manifest.pcmInput)
                var s = 0f
                for (i in pcm.indices) s += pcm[i] * (i % 7)
                return mapOf(manifest.melOutput to FloatArray(manifest.nMels) { s + it })
            }
        }
        val step = object : StepModel {
            override fun run(inputs: Map<String, FloatArray>): Map<String, FloatArray> {
                val mel = inputs.getValue(manifest.melFramesInput)
                val ctx = inputs.getValue(manifest.contextInput)
                val prev = inputs.getValue(manifest.previousInput)
                val a = mel[mel.size - 1] + 0.25f * mel[0] + ctx[ctx.size - 1] * 0.5f + ctx[0] * 0.125f
                return mapOf(
                    manifest.blendshapesOutput to FloatArray(nb) { a + prev[it] * 0.5f + it },
                    manifest.blendshapesRawOutput to FloatArray(nb) { a - it },
                    manifest.contextFrameOutput to FloatArray(manifest.contextDim) { a * 0.001f + it }
                )
            }
        }
        val rnd = Random(3)
        val audio = FloatArray(manifest.sampleRate * 2 + 77) { (rnd.nextFloat() - 0.5f) * 0.2f }
        fun runChunks(sizes: (Int) -> Int): List<BlendshapeFrame> {
            val engine = A2BSEngine(manifest, front, step, manifest.emotionNeutral, null) // the model path alone (life: replay)
            val out = ArrayList<BlendshapeFrame>()
            var pos = 0
            var n = 0
            while (pos < audio.size) {
                val len = minOf(sizes(n++), audio.size - pos)
                out.addAll(engine.push(audio, pos, len))
                pos += len
            }
            out.addAll(engine.flush())
            expect(engine.flush().isEmpty()) { "engine: second flush emits nothing" }
            expectThrows<IllegalStateException>("engine: push after flush") { engine.push(FloatArray(10)) }
            return out
        }
        val whole = runChunks { audio.size }
        val total = Math.ceil(audio.size * manifest.fps.toDouble() / manifest.sampleRate).toInt()
        expect(whole.size == total) { "engine: ${whole.size} frames, want $total" }
        whole.forEachIndexed { i, f -> expect(f.index == i.toLong() && f.values.size == nb) { "engine: frame $i index ${f.index}" } }
        for (sizes in listOf<(Int) -> Int>({ 1 + it % 3 }, { 160 }, { 1000 + 999 * (it % 2) })) {
            val other = runChunks(sizes)
            expect(other.size == whole.size) { "engine: chunking changed the frame count" }
            for (i in whole.indices) expect(other[i].values.contentEquals(whole[i].values)) { "engine: chunking changed frame $i" }
        }
        // reset() starts over: the same audio gives the same frames; the listener sees each frame once.
        val engine = A2BSEngine(manifest, front, step, manifest.emotionNeutral, null) // the model path alone (life: replay)
        engine.push(audio, 0, 5000)
        engine.reset()
        val heard = ArrayList<Long>()
        engine.listener = object : FrameListener {
            override fun onFrame(frame: BlendshapeFrame) { heard.add(frame.index) }
        }
        val again = engine.push(audio) + engine.flush()
        expect(again.size == whole.size && heard == again.map { it.index }) { "engine: reset/listener" }
        for (i in whole.indices) expect(again[i].values.contentEquals(whole[i].values)) { "engine: reset changed frame $i" }
        expect(whole[0][manifest.blendshapes[1]] == whole[0].values[1]) { "engine: frame lookup by name" }
        // Frame 0 is the raw output; later frames the smoothed one.
        expect(whole[0].values[1] < whole[0].values[0]) { "engine: frame 0 must be blendshapes_raw" }
        expectThrows<IllegalArgumentException>("engine: wrong emotion size") { A2BSEngine(manifest, front, step, FloatArray(3)) }
        passed++
    }

    /** Manifests of another platform, format or version are refused up front, saying what they are and what to do. */
    private fun refusals() {
        val cases = Json.parse(File(dir, "refusals.json").readText()) as List<*>
        expect(cases.isNotEmpty()) { "refusals: no cases" }
        for (c in cases) {
            val m = c as Map<*, *>
            val name = m["file"] as String
            try {
                A2BSManifest.parse(File(dir, name).readText())
                fail("refusals: $name was accepted")
            } catch (e: ManifestException) {
                val message = e.message ?: ""
                for (part in m["says"] as List<*>) expect(message.contains(part as String)) { "refusals: $name: '$message' lacks '$part'" }
            }
        }
        val noLife = A2BSManifest.parse(File(dir, "no_life.json").readText())
        expect(noLife.life == null) { "refusals: a manifest without 'life' must load with the layer off" }
        val engine = A2BSEngine(noLife, object : FrontEndModel {
            override fun run(inputs: Map<String, FloatArray>): Map<String, FloatArray> = emptyMap()
        }, object : StepModel {
            override fun run(inputs: Map<String, FloatArray>): Map<String, FloatArray> = emptyMap()
        })
        expect(engine.life == null && engine.lifeAmount == 0.0) { "refusals: an engine without 'life' runs a layer" }
        val noControls = A2BSManifest.parse(File(dir, "no_controls.json").readText())
        expect(noControls.controls == FaceControls()) { "refusals: a manifest without 'controls' must load with the defaults" }
        passed++
    }

    /** One JSON line with what the engine parsed, for the Python contract test. */
    private fun manifestSummary() {
        val m = A2BSManifest.parse(File(dir, "manifest.json").readText())
        val files = m.availableVariants.joinToString(",") { v ->
            val (f, s) = m.modelFiles(v)
            "${jsonString(v)}:[${jsonString(f.path)},${jsonString(s.path)}]"
        }
        val names = listOf(
            m.pcmInput, m.melOutput, m.melFramesInput, m.contextInput, m.emotionInput, m.previousInput,
            m.blendshapesOutput, m.blendshapesRawOutput, m.contextFrameOutput
        ).joinToString(",") { jsonString(it) }
        expectThrows<ManifestException>("manifest: unknown variant") { m.modelFiles("no-such-variant") }
        println(
            "{\"fps\":${m.fps},\"sample_rate\":${m.sampleRate},\"context_frames\":${m.contextFrames}," +
                "\"window\":${m.window},\"lookahead\":${m.lookaheadFrames},\"mel_history\":${m.melHistory}," +
                "\"n_mels\":${m.nMels},\"context_dim\":${m.contextDim},\"blendshapes\":${m.blendshapes.size}," +
                "\"groups\":[${m.blendshapeGroups.keys.joinToString(",") { jsonString(it) }}]," +
                "\"default_variant\":${jsonString(m.defaultVariant)},\"files\":{$files},\"names\":[$names]," +
                "\"life\":${m.life != null},\"controls\":[${m.controls.values.joinToString(",")}],\"initial_mel_sum\":${m.initialMelFrames.sum()},\"initial_context_sum\":${m.initialContextFrame.sum()}}"
        )
        passed++
    }
}

/**
 * Replays a trace recorded in Python with the bundle's real TFLite models: the fake models check
 * that every input the engine builds equals the recorded one and return the recorded outputs.
 */
private class Replay(private val dir: File) {
    private val manifest = A2BSManifest.parse(File(dir, "manifest.json").readText())
    private val index = Json.parse(File(dir, "trace.json").readText()) as Map<*, *>
    private val trace = readF32(File(dir, "trace.f32"))
    private val fields = (index["fields"] as List<*>).map { (it as List<*>)[0] as String to ((it[1] as Double).toInt()) }
    private val callSize = fields.fold(0) { acc, f -> acc + f.second }
    private val calls = (index["calls"] as Double).toInt()
    private val tol = (index["tolerance"] as Double).toFloat()

    init {
        expect(trace.size == calls * callSize) { "replay: trace has ${trace.size} floats, want ${calls * callSize}" }
    }

    private fun field(call: Int, name: String): FloatArray {
        var off = call * callSize
        for ((n, size) in fields) {
            if (n == name) return trace.copyOfRange(off, off + size)
            off += size
        }
        fail("replay: no field $name in the trace")
    }

    private fun expectClose(what: String, got: FloatArray, want: FloatArray) {
        expect(got.size == want.size) { "$what: ${got.size} values, recorded ${want.size}" }
        for (i in got.indices) {
            expect(Math.abs(got[i] - want[i]) <= tol) { "$what: value $i is ${got[i]}, recorded ${want[i]}" }
        }
    }

    fun run(spec: String) {
        var frontCalls = 0
        var stepCalls = 0
        val pcmKey = "in:" + manifest.pcmInput
        val front = object : FrontEndModel {
            override fun run(inputs: Map<String, FloatArray>): Map<String, FloatArray> {
                val j = frontCalls++
                expect(j < calls) { "replay: more front-end calls than recorded ($calls)" }
                expectClose("front end call $j ${manifest.pcmInput}", inputs.getValue(manifest.pcmInput), field(j, pcmKey))
                return mapOf(manifest.melOutput to field(j, "out:" + manifest.melOutput))
            }
        }
        val step = object : StepModel {
            override fun run(inputs: Map<String, FloatArray>): Map<String, FloatArray> {
                val j = stepCalls++
                expect(j == frontCalls - 1) { "replay: step call $j does not follow front-end call ${frontCalls - 1}" }
                expect(inputs.keys.toList() == manifest.stepInputs.map { it.name }) { "replay: step input names ${inputs.keys}" }
                expectClose("step call $j ${manifest.melFramesInput}", inputs.getValue(manifest.melFramesInput), field(j, "in:" + manifest.melFramesInput))
                expectClose("step call $j ${manifest.contextInput}", inputs.getValue(manifest.contextInput), field(j, "in:" + manifest.contextInput))
                expectClose("step call $j ${manifest.emotionInput}", inputs.getValue(manifest.emotionInput), field(j, "in:" + manifest.emotionInput))
                expectClose("step call $j ${manifest.previousInput}", inputs.getValue(manifest.previousInput), field(j, "in:" + manifest.previousInput))
                return mapOf(
                    manifest.blendshapesOutput to field(j, "out:" + manifest.blendshapesOutput),
                    manifest.blendshapesRawOutput to field(j, "out:" + manifest.blendshapesRawOutput),
                    manifest.contextFrameOutput to field(j, "out:" + manifest.contextFrameOutput)
                )
            }
        }
        val audio = WavReader.read(File(dir, "clip.wav"))
        expect(audio.sampleRate == manifest.sampleRate) { "replay: clip is ${audio.sampleRate} Hz" }
        val withControls = spec.startsWith("controls-")
        val withLife = spec.startsWith("life-") || withControls
        val engine = A2BSEngine(manifest, front, step, manifest.emotionNeutral, if (withLife) manifest.life else null, 0L)
        expect(!withLife || engine.life != null) { "replay $spec: the manifest has no life section" }
        expect(engine.controls == manifest.controls) { "replay $spec: the engine does not start at the manifest's controls" }
        if (withControls) engine.controls = FaceControls.fromManifest(Json.parse(File(dir, "replay_controls.json").readText()))
        val s = engine.scheduler
        val rnd = Random(11)
        val frames = ArrayList<BlendshapeFrame>()
        var pos = 0
        while (pos < audio.samples.size) {
            val chunking = spec.removePrefix("life-").removePrefix("controls-")
            val want = when (chunking) {
                "all" -> audio.samples.size
                "irregular" -> 1 + rnd.nextInt(if (rnd.nextBoolean()) 40 else 3000)
                else -> chunking.toInt()
            }
            val len = minOf(want, audio.samples.size - pos)
            frames.addAll(engine.push(audio.samples, pos, len))
            pos += len
            // Live mode: every frame is out as soon as its lookahead window is complete, not later.
            var ready = 0L
            while (s.windowEnd(ready) <= pos) ready++
            val due = maxOf(0L, ready - manifest.lookaheadFrames)
            expect(engine.framesEmitted == due) { "replay $spec: ${engine.framesEmitted} frames after $pos samples, want $due" }
        }
        frames.addAll(engine.flush())
        expect(frontCalls == calls && stepCalls == calls) { "replay $spec: $frontCalls/$stepCalls model calls, recorded $calls" }
        val out = FloatArray(frames.size * manifest.blendshapes.size)
        frames.forEachIndexed { i, f ->
            expect(f.index == i.toLong()) { "replay $spec: frame $i has index ${f.index}" }
            expect(Math.abs(f.timeSeconds - i.toDouble() / manifest.fps) < 1e-9) { "replay $spec: frame $i time ${f.timeSeconds}" }
            System.arraycopy(f.values, 0, out, i * manifest.blendshapes.size, manifest.blendshapes.size)
        }
        writeF32(File(dir, "out_$spec.f32"), out)
        if (withLife) writeF64(File(dir, "rot_$spec.f64"), frames.flatMap { it.rotations.toList() }.toDoubleArray())
        println("{\"spec\":${jsonString(spec)},\"frames\":${frames.size},\"calls\":$stepCalls}")
    }
}
