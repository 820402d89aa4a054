package com.a2bs.engine

/**
 * Where mel frame j sits in the sample stream (the manifest's `timeline`).
 *
 * center_j = round(j * sampleRate / fps) with halves rounded up, in exact integer arithmetic:
 * (2 j sampleRate + fps) / (2 fps). Frame j's PCM window is [center_j - window/2, center_j + window/2);
 * samples before the stream start are zeros.
 */
class FrameScheduler(val sampleRate: Int, val fps: Int, val window: Int, val lookaheadFrames: Int) {
    init {
        require(sampleRate > 0 && fps > 0 && window > 0 && window % 2 == 0 && lookaheadFrames >= 0)
    }

    /** Absolute sample index of mel frame j's centre. */
    fun center(j: Long): Long = (2L * j * sampleRate + fps) / (2L * fps)

    /** First sample of frame j's window (negative near the stream start). */
    fun windowStart(j: Long): Long = center(j) - window / 2

    /** One past the last sample of frame j's window: frame j can run once this many samples exist. */
    fun windowEnd(j: Long): Long = center(j) + window / 2

    /** Output frames for a stream of `samples` samples: ceil(samples * fps / sampleRate). */
    fun outputFrames(samples: Long): Long = (samples * fps + sampleRate - 1) / sampleRate

    /** Output frame k's time stamp in seconds (k / fps: the centre of its window). */
    fun timeSeconds(k: Long): Double = k.toDouble() / fps
}

/**
 * PCM samples addressed by absolute index (0 = first sample of the stream), keeping only the tail
 * still needed. Reads outside what was pushed (before the start, or past the end) give zeros.
 */
class SampleBuffer(initialCapacity: Int = 16384) {
    private var data = FloatArray(initialCapacity)
    private var offset = 0 // data[offset] holds absolute sample `start`
    private var count = 0
    /** Absolute index of the oldest sample still held. */
    var start = 0L
        private set
    /** Absolute index one past the newest sample (= samples pushed so far). */
    val end: Long get() = start + count

    fun append(samples: FloatArray, from: Int = 0, length: Int = samples.size - from) {
        require(from >= 0 && length >= 0 && from + length <= samples.size)
        if (offset + count + length > data.size) {
            // Compact first; grow only if the live tail itself does not fit.
            val needed = count + length
            val target = if (needed > data.size) FloatArray(maxOf(needed, data.size * 2)) else data
            System.arraycopy(data, offset, target, 0, count)
            data = target
            offset = 0
        }
        System.arraycopy(samples, from, data, offset + count, length)
        count += length
    }

    /** Forget samples before absolute index `absolute` (never needed again). */
    fun discardBefore(absolute: Long) {
        if (absolute <= start) return
        val cut = minOf(absolute - start, count.toLong()).toInt()
        offset += cut
        count -= cut
        start += cut
    }

    /**
     * Copy `length` samples starting at absolute index `from` into `dst` at `dstOffset`, zeros where the stream has no sample
     * (before 0, or at or after `end`). Reading discarded samples is a bug and throws.
     */
    fun copy(from: Long, dst: FloatArray, dstOffset: Int = 0, length: Int = dst.size - dstOffset) {
        var i = 0
        while (i < length) {
            val abs = from + i
            if (abs >= 0 && abs < start) throw IllegalStateException("sample $abs was already discarded (oldest kept: $start)")
            if (abs < 0 || abs >= end) {
                dst[dstOffset + i] = 0f
                i++
            } else {
                val n = minOf((end - abs).toInt(), length - i)
                System.arraycopy(data, offset + (abs - start).toInt(), dst, dstOffset + i, n)
                i += n
            }
        }
    }

    fun clear() {
        offset = 0
        count = 0
        start = 0L
    }
}

/**
 * The step's context input: the last `rows` context rows, oldest first, as a circular buffer.
 * Appending overwrites the oldest row in place; [copyOldestFirst] writes the model's input layout
 * with two array copies, so no per-frame allocation of the rows x dim array.
 */
class ContextRing(val rows: Int, val dim: Int) {
    private val data = FloatArray(rows * dim)
    private var head = 0 // physical row holding the oldest row

    /** Fill every row with `row` (the manifest's initial context frame). */
    fun fill(row: FloatArray) {
        require(row.size == dim) { "context row must have $dim values, got ${row.size}" }
        for (r in 0 until rows) System.arraycopy(row, 0, data, r * dim, dim)
        head = 0
    }

    /** Drop the oldest row and append `row` as the newest. */
    fun push(row: FloatArray, from: Int = 0) {
        require(from >= 0 && from + dim <= row.size) { "context row must have $dim values" }
        System.arraycopy(row, from, data, head * dim, dim)
        head = (head + 1) % rows
    }

    /** Logical row i (0 = oldest), copied into dst. */
    fun row(i: Int, dst: FloatArray = FloatArray(dim)): FloatArray {
        require(i in 0 until rows)
        System.arraycopy(data, ((head + i) % rows) * dim, dst, 0, dim)
        return dst
    }

    /** Write all rows, oldest first, into `dst` from `dstOffset` (rows * dim values). */
    fun copyOldestFirst(dst: FloatArray, dstOffset: Int = 0) {
        require(dstOffset >= 0 && dstOffset + rows * dim <= dst.size)
        val firstPart = (rows - head) * dim
        System.arraycopy(data, head * dim, dst, dstOffset, firstPart)
        System.arraycopy(data, 0, dst, dstOffset + firstPart, head * dim)
    }
}
