package com.a2bs.sample

import android.app.Application
import android.os.Process
import androidx.lifecycle.AndroidViewModel
import com.a2bs.engine.A2BSEngine
import com.a2bs.engine.A2BSManifest
import com.a2bs.engine.BlendshapeFrame
import com.a2bs.engine.FaceControls
import java.util.ArrayDeque
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.update

enum class Mode { IDLE, MIC, FILE }

data class UiState(
    val manifest: A2BSManifest? = null,
    val error: String? = null,
    val variant: String = "",
    val accelerator: Accelerator = Accelerator.CPU,
    val threads: Int = 2,
    /** What the models actually run on, with any fallback spelled out. */
    val delegateStatus: String = "",
    val mode: Mode = Mode.IDLE,
    val frame: BlendshapeFrame? = null,
    /** Mean front end + step wall time over the last frames, ms. */
    val meanComputeMs: Double = 0.0,
    /** The life layer's amount (blinks, gaze, head, brows; 0 off, 1 the bundle's preset). */
    val lifeAmount: Double = 1.0,
    /** The face controls (strengths, lip offset, smoothing): the manifest's values to start with. */
    val controls: FaceControls = FaceControls(),
)

/**
 * Owns the models, the engine and the audio loop. Everything model-related runs on one worker
 * thread ("a2bs-engine"): LiteRT interpreters and the GPU delegate must stay on the thread that
 * created them, and the engine is single-threaded by design.
 */
class SampleViewModel(app: Application) : AndroidViewModel(app) {
    private val bundle = BundleAssets(app.assets)
    private val worker = Executors.newSingleThreadExecutor { r ->
        Thread({ Process.setThreadPriority(Process.THREAD_PRIORITY_URGENT_AUDIO); r.run() }, "a2bs-engine")
    }
    /** Bumped by every start/stop: an audio loop runs while its generation is current. */
    private val generation = AtomicInteger()
    private val _state = MutableStateFlow(UiState())
    val state: StateFlow<UiState> = _state

    // Worker-thread only.
    private var models: LoadedModels? = null
    @Volatile private var engine: A2BSEngine? = null // set on the worker; read by setLifeAmount and setControl
    private val recentCompute = ArrayDeque<Double>()

    init {
        worker.execute {
            try {
                val manifest = bundle.manifest()
                _state.update { it.copy(manifest = manifest, variant = manifest.defaultVariant, controls = manifest.controls) }
                loadModels()
            } catch (e: Exception) {
                _state.update { it.copy(error = e.message ?: e.toString()) }
            }
        }
    }

    /** Rebuild the interpreters for the chosen variant / accelerator / threads (stops the audio first). */
    fun configure(variant: String? = null, accelerator: Accelerator? = null, threads: Int? = null) {
        stop()
        _state.update {
            it.copy(variant = variant ?: it.variant, accelerator = accelerator ?: it.accelerator, threads = threads ?: it.threads)
        }
        worker.execute { runCatching { loadModels() }.onFailure { e -> _state.update { it.copy(error = e.message) } } }
    }

    /** The life slider: applies from the next frame, also while audio runs (the amount may be set from any thread). */
    fun setLifeAmount(amount: Double) {
        _state.update { it.copy(lifeAmount = amount) }
        engine?.takeIf { it.life != null }?.lifeAmount = amount
    }

    /** A face control's slider ([FaceControls.LIMITS]' index): applies from the next frame, also while audio runs. */
    fun setControl(index: Int, value: Double) {
        setControls(FaceControls.withValue(_state.value.controls.values, index, value))
    }

    /** All the face controls at once (e.g. back to the manifest's); they may be set from any thread. */
    fun setControls(controls: FaceControls) {
        _state.update { it.copy(controls = controls) }
        engine?.controls = controls
    }

    private fun loadModels() {
        val s = _state.value
        val manifest = s.manifest ?: return
        models?.close()
        models = null
        engine = null
        val (frontFile, stepFile) = manifest.modelFiles(s.variant)
        val front = LiteRtModel(
            bundle.mapModel(frontFile.path), manifest.frontEndInputs, manifest.frontEndOutputs, s.accelerator, s.threads
        )
        val step = try {
            LiteRtModel(bundle.mapModel(stepFile.path), manifest.stepInputs, manifest.stepOutputs, s.accelerator, s.threads)
        } catch (e: Throwable) {
            front.close() // don't leak the front end's interpreter and delegate
            throw e
        }
        val loaded = LoadedModels(front, step)
        models = loaded
        engine = A2BSEngine(manifest, front, step).also { e -> // neutral emotion: no openSMILE on the device
            e.controls = s.controls
            if (e.life != null) e.lifeAmount = s.lifeAmount
        }
        _state.update { it.copy(delegateStatus = loaded.describe(s.accelerator), error = null, frame = null) }
    }

    fun startMic() = start(Mode.MIC) { engine, manifest, active ->
        MicCapture(manifest.sampleRate).use { mic ->
            val chunk = FloatArray(manifest.sampleRate / 100 * 2) // 20 ms reads
            while (active()) {
                val n = mic.read(chunk)
                if (n < 0) throw IllegalStateException("AudioRecord.read failed: $n")
                val frames = engine.push(chunk, 0, n)
                if (frames.isNotEmpty()) publish(frames.last(), frames)
            }
        }
    }

    fun playClip() = start(Mode.FILE) { engine, manifest, active ->
        val clip = bundle.sampleClip()
        check(clip.sampleRate == manifest.sampleRate) { "$CLIP_FILE is ${clip.sampleRate} Hz, the bundle wants ${manifest.sampleRate}" }
        val pending = ArrayDeque<BlendshapeFrame>()
        ClipPlayer(clip.sampleRate).use { player ->
            // Show each frame when the speaker reaches its time stamp (the engine is ahead by the
            // track's buffer, behind by the model's lookahead: the buffer covers it).
            fun showDue() {
                val now = player.playedSamples.toDouble() / clip.sampleRate
                var due: BlendshapeFrame? = null
                val batch = ArrayList<BlendshapeFrame>()
                while (pending.isNotEmpty() && pending.peekFirst()!!.timeSeconds <= now) {
                    due = pending.pollFirst()
                    batch.add(due!!)
                }
                if (due != null) publish(due, batch)
            }
            val hop = clip.sampleRate / manifest.fps // write about one frame of audio at a time
            var pos = 0
            while (active() && pos < clip.samples.size) {
                val n = minOf(hop, clip.samples.size - pos)
                player.write(clip.samples, pos, n)
                pending.addAll(engine.push(clip.samples, pos, n))
                pos += n
                showDue()
            }
            if (active()) {
                pending.addAll(engine.flush())
                // Keep feeding silence until the speaker has reached the last frames. A stream track
                // does not play a last, partly filled period until more data (or stop(), which also
                // resets the playback head) comes, so waiting alone could hang at the end of the clip.
                // Bounded: one buffer plus a second of silence.
                val silence = FloatArray(hop)
                var padded = 0
                val maxPadding = player.bufferSamples + clip.sampleRate
                while (active() && pending.isNotEmpty() && padded < maxPadding) {
                    player.write(silence, 0, hop)
                    padded += hop
                    showDue()
                }
            }
        }
    }

    private fun start(mode: Mode, loop: (A2BSEngine, A2BSManifest, () -> Boolean) -> Unit) {
        val id = generation.incrementAndGet() // also ends a loop still running
        val active = { generation.get() == id }
        _state.update { it.copy(mode = mode, error = null) }
        worker.execute {
            try {
                if (!active()) return@execute
                val engine = engine ?: throw IllegalStateException(_state.value.error ?: "models are not loaded")
                engine.reset()
                recentCompute.clear()
                loop(engine, _state.value.manifest!!, active)
            } catch (e: Exception) {
                _state.update { it.copy(error = e.message ?: e.toString()) }
            } finally {
                if (active()) _state.update { it.copy(mode = Mode.IDLE) }
            }
        }
    }

    fun stop() {
        generation.incrementAndGet()
        _state.update { it.copy(mode = Mode.IDLE) }
    }

    private fun publish(latest: BlendshapeFrame, all: List<BlendshapeFrame>) {
        for (f in all) {
            recentCompute.addLast(f.computeMs)
            if (recentCompute.size > 60) recentCompute.removeFirst()
        }
        val mean = recentCompute.sum() / recentCompute.size
        _state.update { it.copy(frame = latest, meanComputeMs = mean) }
    }

    override fun onCleared() {
        stop()
        worker.execute { models?.close() }
        worker.shutdown()
    }
}
