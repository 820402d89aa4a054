import A2BSEngine
import AVFoundation

/// Something that feeds 16 kHz mono samples to the engine until stopped.
protocol AudioSource: AnyObject {
    func stop()
}

/// Live microphone: AVAudioEngine input tap, converted to the bundle's sample rate on the audio thread,
/// handed to the engine's queue. Nothing is played back (no feedback).
final class MicrophoneSource: AudioSource {
    private let engine = AVAudioEngine()

    /// Asks for the record permission (NSMicrophoneUsageDescription comes from Package.swift's capabilities).
    static func requestPermission() async -> Bool {
        if #available(iOS 17.0, *) {
            return await AVAudioApplication.requestRecordPermission()
        }
        return await withCheckedContinuation { continuation in
            AVAudioSession.sharedInstance().requestRecordPermission { continuation.resume(returning: $0) }
        }
    }

    /// `onSamples` runs on the audio thread. `fps`: taps are requested about one output frame long (iOS may deliver larger buffers).
    init(sampleRate: Int, fps: Int, onSamples: @escaping @Sendable ([Float]) -> Void) throws {
        let session = AVAudioSession.sharedInstance()
        // .measurement: the least system processing (no AGC), closest to the recordings the model learnt from.
        try session.setCategory(.record, mode: .measurement)
        try session.setActive(true)
        let input = engine.inputNode
        let format = input.outputFormat(forBus: 0)
        guard format.sampleRate > 0, format.channelCount > 0 else {
            throw A2BSError.model("no microphone input is available")
        }
        let converter = A2BSAudioConverter(sampleRate: sampleRate)
        input.installTap(onBus: 0, bufferSize: AVAudioFrameCount(format.sampleRate / Double(fps)),
                         format: format) { buffer, _ in
            if let samples = try? converter.convert(buffer), !samples.isEmpty { onSamples(samples) }
        }
        engine.prepare()
        try engine.start()
    }

    func stop() {
        engine.inputNode.removeTap(onBus: 0)
        engine.stop()
        try? AVAudioSession.sharedInstance().setActive(false, options: .notifyOthersOnDeactivation)
    }
}

/// The bundled sample clip, played through AVAudioPlayerNode while its samples are fed to the engine in real
/// time: on every tick the engine receives the clip up to the play head plus the model's lookahead, so each
/// face frame is computed about when its sound is heard.
final class FilePlaybackSource: AudioSource {
    private let engine = AVAudioEngine()
    private let player = AVAudioPlayerNode()
    private let samples: [Float]
    private let sampleRate: Int
    private let leadSamples: Int
    private let onSamples: ([Float]) -> Void
    private let onAllSamplesFed: () -> Void
    private var fed = 0
    private var timer: Timer?
    private var stopped = false

    /// `leadSamples`: the schedule's lookaheadSamples. `onPlaybackEnd` runs on the main queue.
    init(url: URL, sampleRate: Int, leadSamples: Int, tick: TimeInterval,
         onSamples: @escaping ([Float]) -> Void, onAllSamplesFed: @escaping () -> Void,
         onPlaybackEnd: @escaping () -> Void) throws {
        let clip = try A2BSAudioConverter.readFile(url, sampleRate: sampleRate)
        samples = clip.samples
        self.sampleRate = sampleRate
        self.leadSamples = leadSamples
        self.onSamples = onSamples
        self.onAllSamplesFed = onAllSamplesFed
        try AVAudioSession.sharedInstance().setCategory(.playback, mode: .default)
        try AVAudioSession.sharedInstance().setActive(true)
        engine.attach(player)
        engine.connect(player, to: engine.mainMixerNode, format: clip.buffer.format)
        // The player also calls this when it is stopped (stop(), or a reload): only a clip that played to its end
        // reports, or a late callback would stop the next run and overwrite the status.
        player.scheduleBuffer(clip.buffer, at: nil, options: [], completionCallbackType: .dataPlayedBack) {
            [weak self] _ in
            DispatchQueue.main.async {
                guard let self, !self.stopped else { return }
                onPlaybackEnd()
            }
        }
        engine.prepare()
        try engine.start()
        player.play()
        feed()
        // .common modes: keep feeding while the user scrolls the bars (a default-mode timer pauses then).
        let timer = Timer(timeInterval: tick, repeats: true) { [weak self] _ in self?.feed() }
        RunLoop.main.add(timer, forMode: .common)
        self.timer = timer
    }

    /// Samples of the clip played so far, from the player's own clock.
    private var playedSamples: Int {
        guard let nodeTime = player.lastRenderTime, let playerTime = player.playerTime(forNodeTime: nodeTime),
              playerTime.sampleRate > 0 else { return 0 }
        return max(0, Int(Double(playerTime.sampleTime) * Double(sampleRate) / playerTime.sampleRate))
    }

    private func feed() {
        guard fed < samples.count else { return }
        let target = min(samples.count, playedSamples + leadSamples)
        if target > fed {
            onSamples(Array(samples[fed..<target]))
            fed = target
        }
        if fed == samples.count { onAllSamplesFed() }
    }

    func stop() {
        stopped = true
        timer?.invalidate()
        timer = nil
        player.stop()
        engine.stop()
        try? AVAudioSession.sharedInstance().setActive(false, options: .notifyOthersOnDeactivation)
    }
}
