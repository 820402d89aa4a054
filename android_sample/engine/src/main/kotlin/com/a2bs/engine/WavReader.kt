package com.a2bs.engine

import java.io.File
import java.io.InputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder

/** Decoded WAV audio: mono floats in [-1, 1] (channels averaged), at the file's sample rate. */
class WavAudio(val sampleRate: Int, val channels: Int, val samples: FloatArray) {
    val durationSeconds: Double get() = samples.size.toDouble() / sampleRate
}

/**
 * A small RIFF/WAVE reader: PCM 8/16/24/32-bit and IEEE float 32/64, plain or WAVE_FORMAT_EXTENSIBLE,
 * any channel count (averaged to mono). Unknown chunks (LIST, fact, ...) are skipped. It does not
 * resample: check [WavAudio.sampleRate] against the manifest.
 */
object WavReader {
    private const val FORMAT_PCM = 1
    private const val FORMAT_FLOAT = 3
    private const val FORMAT_EXTENSIBLE = 0xFFFE

    fun read(file: File): WavAudio = read(file.readBytes())

    fun read(stream: InputStream): WavAudio = read(stream.readBytes())

    fun read(bytes: ByteArray): WavAudio {
        val b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN)
        if (bytes.size < 12 || tag(bytes, 0) != "RIFF" || tag(bytes, 8) != "WAVE") throw WavException("not a RIFF/WAVE file")
        var pos = 12
        var format = -1
        var channels = 0
        var sampleRate = 0
        var bits = 0
        var dataStart = -1
        var dataSize = 0
        while (pos + 8 <= bytes.size) {
            val id = tag(bytes, pos)
            val size = b.getInt(pos + 4).toLong() and 0xFFFFFFFFL
            val body = pos + 8
            if (id == "fmt ") {
                if (size < 16) throw WavException("fmt chunk too short")
                format = b.getShort(body).toInt() and 0xFFFF
                channels = b.getShort(body + 2).toInt() and 0xFFFF
                sampleRate = b.getInt(body + 4)
                bits = b.getShort(body + 14).toInt() and 0xFFFF
                if (format == FORMAT_EXTENSIBLE) {
                    if (size < 40) throw WavException("WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
                    format = b.getShort(body + 24).toInt() and 0xFFFF // first two bytes of the sub-format GUID
                }
            } else if (id == "data") {
                dataStart = body
                // A streaming writer may leave the size unset (0 or 0xFFFFFFFF): read to the end of the file.
                val available = (bytes.size - body).toLong()
                dataSize = (if (size == 0L || size > available) available else size).toInt()
                break
            }
            pos = body + size.toInt() + (size.toInt() and 1) // chunks are padded to even sizes
        }
        if (format < 0) throw WavException("no fmt chunk")
        if (dataStart < 0) throw WavException("no data chunk")
        if (channels < 1 || sampleRate <= 0) throw WavException("bad fmt chunk: $channels channels, $sampleRate Hz")
        val bytesPerSample = bits / 8
        val supported = (format == FORMAT_PCM && bits in intArrayOf(8, 16, 24, 32)) ||
            (format == FORMAT_FLOAT && (bits == 32 || bits == 64))
        if (!supported) throw WavException("unsupported WAV encoding: format $format, $bits bits")
        val frameBytes = bytesPerSample * channels
        val frames = dataSize / frameBytes
        val out = FloatArray(frames)
        for (f in 0 until frames) {
            var sum = 0.0
            for (c in 0 until channels) {
                val p = dataStart + f * frameBytes + c * bytesPerSample
                sum += when {
                    format == FORMAT_FLOAT && bits == 32 -> b.getFloat(p).toDouble()
                    format == FORMAT_FLOAT -> b.getDouble(p)
                    bits == 8 -> ((bytes[p].toInt() and 0xFF) - 128) / 128.0
                    bits == 16 -> b.getShort(p) / 32768.0
                    bits == 24 -> {
                        val v = (bytes[p].toInt() and 0xFF) or ((bytes[p + 1].toInt() and 0xFF) shl 8) or (bytes[p + 2].toInt() shl 16)
                        v / 8388608.0
                    }
                    else -> b.getInt(p) / 2147483648.0
                }
            }
            out[f] = (if (channels == 1) sum else sum / channels).toFloat()
        }
        return WavAudio(sampleRate, channels, out)
    }

    private fun tag(bytes: ByteArray, at: Int): String = String(bytes, at, 4, Charsets.US_ASCII)
}

class WavException(message: String) : RuntimeException(message)
