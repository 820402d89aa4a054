// Apple-only (AVFoundation): compiled where AVFoundation exists, i.e. not on Linux.
#if canImport(AVFoundation)
// @preconcurrency: AVFoundation's buffer and converter types are not annotated for Sendable on every SDK the
// sample supports; this class confines them to the thread that calls `convert` (see below).
@preconcurrency import AVFoundation

/// Converts PCM buffers of any format (microphone tap, audio file) to mono Float32 at the bundle's
/// sample rate. Keeps the resampler's state between calls, so feed one continuous stream per instance.
public final class A2BSAudioConverter: @unchecked Sendable {  // use one instance from one thread at a time
    public let outputFormat: AVAudioFormat
    private var converter: AVAudioConverter?
    private var output: AVAudioPCMBuffer?

    /// `sampleRate`: the manifest's sample_rate.
    public init(sampleRate: Int) {
        outputFormat = AVAudioFormat(commonFormat: .pcmFormatFloat32, sampleRate: Double(sampleRate),
                                     channels: 1, interleaved: false)!
    }

    /// `endOfStream`: this is the last buffer (flushes the resampler's tail; the converter is then done).
    public func convert(_ buffer: AVAudioPCMBuffer, endOfStream: Bool = false) throws -> [Float] {
        if buffer.format == outputFormat, let data = buffer.floatChannelData {
            return Array(UnsafeBufferPointer(start: data[0], count: Int(buffer.frameLength)))
        }
        if converter?.inputFormat != buffer.format {
            guard let made = AVAudioConverter(from: buffer.format, to: outputFormat) else {
                throw A2BSError.model("cannot convert \(buffer.format) to \(outputFormat)")
            }
            made.downmix = true  // mix all channels down to mono instead of keeping only the first
            converter = made
        }
        guard let converter = self.converter else { return [] }
        let ratio = outputFormat.sampleRate / buffer.format.sampleRate
        let slack = AVAudioFrameCount(outputFormat.sampleRate / 100)  // 10 ms: room for the resampler's tail
        let capacity = AVAudioFrameCount((Double(buffer.frameLength) * ratio).rounded(.up)) + slack
        if output == nil || output!.frameCapacity < capacity {
            output = AVAudioPCMBuffer(pcmFormat: outputFormat, frameCapacity: capacity)
        }
        guard let output = self.output else { return [] }
        output.frameLength = 0
        let consumed = Flag()
        var error: NSError?
        let status = converter.convert(to: output, error: &error) { _, inputStatus in
            if consumed.value {
                // .noDataNow keeps the resampler's state for the rest of a live stream.
                inputStatus.pointee = endOfStream ? .endOfStream : .noDataNow
                return nil
            }
            consumed.value = true
            inputStatus.pointee = .haveData
            return buffer
        }
        if status == .error { throw error ?? A2BSError.model("audio conversion failed") }
        guard let data = output.floatChannelData else { return [] }
        return Array(UnsafeBufferPointer(start: data[0], count: Int(output.frameLength)))
    }

    /// Reads a whole audio file (e.g. the bundled sample_clip.wav) as mono Float32 at `sampleRate`.
    public static func readFile(_ url: URL, sampleRate: Int) throws -> (samples: [Float], buffer: AVAudioPCMBuffer) {
        let file = try AVAudioFile(forReading: url)
        guard let buffer = AVAudioPCMBuffer(pcmFormat: file.processingFormat,
                                            frameCapacity: AVAudioFrameCount(file.length)) else {
            throw A2BSError.model("cannot allocate a buffer for \(url.lastPathComponent)")
        }
        try file.read(into: buffer)
        return (try A2BSAudioConverter(sampleRate: sampleRate).convert(buffer, endOfStream: true), buffer)
    }
}

/// A mutable flag the converter's input block can set (a class, so the block captures no mutable variable).
private final class Flag: @unchecked Sendable {  // only touched by the synchronous input block
    var value = false
}
#endif
