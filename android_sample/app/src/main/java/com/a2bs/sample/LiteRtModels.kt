package com.a2bs.sample

import android.util.Log
import com.a2bs.engine.FrontEndModel
import com.a2bs.engine.StepModel
import com.a2bs.engine.TensorSpec
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.FloatBuffer
import org.tensorflow.lite.Delegate
import org.tensorflow.lite.Interpreter
import org.tensorflow.lite.gpu.CompatibilityList
import org.tensorflow.lite.gpu.GpuDelegate
import org.tensorflow.lite.nnapi.NnApiDelegate

/** Where the models run. */
enum class Accelerator(val label: String) {
    /** LiteRT's CPU kernels through XNNPACK (on by default in LiteRT), `threads` threads. */
    CPU("CPU (XNNPACK)"),
    /** The LiteRT GPU delegate (OpenCL, else OpenGL ES); fp16 arithmetic. */
    GPU("GPU"),
    /** NNAPI, which hands supported ops to the vendor driver (Hexagon NPU/DSP on Snapdragon). */
    NPU("NPU (NNAPI)"),
}

/**
 * One bundle model in the LiteRT Interpreter, called through its signature with the tensor names of
 * the manifest (the TFLite tensor order is not the manifest order; the signature names are).
 *
 * If the chosen delegate cannot be created or applied, the model is built on the CPU instead and
 * [fallbackReason] says why, so the UI can show it rather than crash. Use it on one thread.
 */
class LiteRtModel(
    model: ByteBuffer,
    inputs: List<TensorSpec>,
    outputs: List<TensorSpec>,
    requested: Accelerator,
    threads: Int,
) : FrontEndModel, StepModel {
    val active: Accelerator
    val fallbackReason: String?
    private val interpreter: Interpreter
    private var delegate: Delegate? = null
    private val signature: String

    // Direct buffers allocated once; the FloatBuffer views are what we fill and read.
    private val inputBuffers = inputs.associate { it.name to direct(it.size) }
    private val inputViews = inputBuffers.mapValues { it.value.asFloatBuffer() }
    private val outputBuffers = outputs.associate { it.name to direct(it.size) }
    private val outputViews = outputBuffers.mapValues { it.value.asFloatBuffer() }
    private val outputArrays = outputs.associate { it.name to FloatArray(it.size) }

    init {
        var reason: String? = null
        var built: Interpreter? = null
        if (requested != Accelerator.CPU) {
            try {
                val d = createDelegate(requested)
                delegate = d
                built = Interpreter(model, Interpreter.Options().setNumThreads(threads).addDelegate(d))
            } catch (t: Throwable) { // IllegalArgumentException (delegate not applied), linkage errors, ...
                Log.w(TAG, "${requested.label} unavailable, falling back to CPU", t)
                (delegate as? AutoCloseable)?.close()
                delegate = null
                reason = t.message ?: t.javaClass.simpleName
            }
        }
        interpreter = built ?: Interpreter(model, Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true))
        active = if (built != null) requested else Accelerator.CPU
        fallbackReason = reason
        signature = try {
            val key = interpreter.signatureKeys.singleOrNull()
                ?: throw IllegalStateException("expected one signature, the model has ${interpreter.signatureKeys.toList()}")
            val modelInputs = interpreter.getSignatureInputs(key).toSet()
            val modelOutputs = interpreter.getSignatureOutputs(key).toSet()
            check(modelInputs == inputBuffers.keys && modelOutputs == outputBuffers.keys) {
                "model signature $modelInputs -> $modelOutputs does not match the manifest ${inputBuffers.keys} -> ${outputBuffers.keys}"
            }
            key
        } catch (e: Exception) {
            close() // the caller never gets this object: free the interpreter and delegate here
            throw e
        }
    }

    override fun run(inputs: Map<String, FloatArray>): Map<String, FloatArray> {
        for ((name, view) in inputViews) {
            view.rewind()
            view.put(inputs[name] ?: throw IllegalArgumentException("missing input $name"))
        }
        for (b in outputBuffers.values) b.rewind()
        interpreter.runSignature(inputBuffers, outputBuffers, signature)
        for ((name, view) in outputViews) {
            view.rewind()
            view.get(outputArrays.getValue(name))
        }
        return outputArrays
    }

    override fun close() {
        interpreter.close()
        (delegate as? AutoCloseable)?.close()
    }

    private companion object {
        const val TAG = "a2bs"

        fun direct(floats: Int): ByteBuffer = ByteBuffer.allocateDirect(floats * 4).order(ByteOrder.nativeOrder())

        fun createDelegate(accelerator: Accelerator): Delegate = when (accelerator) {
            Accelerator.GPU -> {
                val compatibility = CompatibilityList()
                try {
                    if (!compatibility.isDelegateSupportedOnThisDevice) {
                        throw UnsupportedOperationException("the GPU delegate does not support this device's GPU")
                    }
                    GpuDelegate(compatibility.bestOptionsForThisDevice)
                } finally {
                    compatibility.close()
                }
            }
            Accelerator.NPU -> NnApiDelegate(
                NnApiDelegate.Options()
                    .setExecutionPreference(NnApiDelegate.Options.EXECUTION_PREFERENCE_SUSTAINED_SPEED)
                    .setAllowFp16(true)
                    .setUseNnapiCpu(false) // NNAPI's own CPU path is slower than XNNPACK: leave those ops to LiteRT
            )
            Accelerator.CPU -> throw IllegalArgumentException("CPU needs no delegate")
        }
    }
}

/** The bundle's two models on one accelerator choice. */
class LoadedModels(val frontEnd: LiteRtModel, val step: LiteRtModel) {
    /** e.g. "GPU", or "CPU (XNNPACK) — GPU failed: ..." */
    fun describe(requested: Accelerator): String {
        val parts = listOf("front end" to frontEnd, "step" to step)
        if (parts.all { it.second.active == requested }) return requested.label
        return parts.joinToString("; ") { (role, m) ->
            if (m.fallbackReason != null) "$role: ${requested.label} failed, on CPU (${m.fallbackReason})" else "$role: ${m.active.label}"
        }
    }

    fun close() {
        frontEnd.close()
        step.close()
    }
}
