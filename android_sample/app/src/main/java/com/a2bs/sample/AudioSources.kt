package com.a2bs.sample

import android.annotation.SuppressLint
import android.media.AudioAttributes
import android.media.AudioFormat
import android.media.AudioRecord
import android.media.AudioTrack
import android.media.MediaRecorder

/** 16 kHz mono capture, delivered as floats in [-1, 1]. Float capture if the device offers it, else 16-bit. */
class MicCapture(private val sampleRate: Int) : AutoCloseable {
    private val record: AudioRecord
    private val float: Boolean
    private val shorts: ShortArray

    init {
        val attempt = open(AudioFormat.ENCODING_PCM_FLOAT)
        if (attempt != null) {
            record = attempt
            float = true
        } else {
            record = open(AudioFormat.ENCODING_PCM_16BIT)
                ?: throw IllegalStateException("the microphone cannot record 16 kHz mono")
            float = false
        }
        shorts = ShortArray(sampleRate / 10)
        record.startRecording()
    }

    // The caller checked RECORD_AUDIO before creating a MicCapture.
    @SuppressLint("MissingPermission")
    private fun open(encoding: Int): AudioRecord? {
        val min = AudioRecord.getMinBufferSize(sampleRate, AudioFormat.CHANNEL_IN_MONO, encoding)
        if (min <= 0) return null
        val bytesPerSample = if (encoding == AudioFormat.ENCODING_PCM_FLOAT) 4 else 2
        val r = try {
            AudioRecord(
                MediaRecorder.AudioSource.VOICE_RECOGNITION, // tuned for speech, no heavy processing
                sampleRate, AudioFormat.CHANNEL_IN_MONO, encoding,
                maxOf(min, sampleRate / 2 * bytesPerSample), // half a second of slack
            )
        } catch (e: IllegalArgumentException) { // format rejected: let the caller try 16-bit
            return null
        } catch (e: UnsupportedOperationException) {
            return null
        }
        if (r.state != AudioRecord.STATE_INITIALIZED) {
            r.release()
            return null
        }
        return r
    }

    /** Blocks until up to dst.size samples are read; returns how many (negative: error). */
    fun read(dst: FloatArray): Int {
        if (float) return record.read(dst, 0, dst.size, AudioRecord.READ_BLOCKING)
        val n = record.read(shorts, 0, minOf(shorts.size, dst.size), AudioRecord.READ_BLOCKING)
        for (i in 0 until n) dst[i] = shorts[i] / 32768f
        return n
    }

    override fun close() {
        runCatching { record.stop() }
        record.release()
    }
}

/** Streaming float playback at the clip's rate; [write] blocks, which paces the file mode in real time. */
class ClipPlayer(private val sampleRate: Int) : AutoCloseable {
    private val track: AudioTrack = AudioTrack.Builder()
        .setAudioAttributes(
            AudioAttributes.Builder()
                .setUsage(AudioAttributes.USAGE_MEDIA)
                .setContentType(AudioAttributes.CONTENT_TYPE_SPEECH)
                .build()
        )
        .setAudioFormat(
            AudioFormat.Builder()
                .setSampleRate(sampleRate)
                .setEncoding(AudioFormat.ENCODING_PCM_FLOAT)
                .setChannelMask(AudioFormat.CHANNEL_OUT_MONO)
                .build()
        )
        .setTransferMode(AudioTrack.MODE_STREAM)
        .setBufferSizeInBytes(
            maxOf(
                AudioTrack.getMinBufferSize(sampleRate, AudioFormat.CHANNEL_OUT_MONO, AudioFormat.ENCODING_PCM_FLOAT),
                sampleRate / 5 * 4, // 200 ms: covers the model's lookahead so the face can wait for the sound
            )
        )
        .build()

    init {
        track.play()
    }

    fun write(samples: FloatArray, offset: Int, length: Int): Int =
        track.write(samples, offset, length, AudioTrack.WRITE_BLOCKING)

    /** The track's buffer in frames (what is written but not yet played when it is full). */
    val bufferSamples: Int get() = track.bufferSizeInFrames

    /** Samples played so far: the time base the face is synchronised to. */
    val playedSamples: Long get() = track.playbackHeadPosition.toLong() and 0xFFFFFFFFL

    override fun close() {
        runCatching { track.stop() }
        track.release()
    }
}
