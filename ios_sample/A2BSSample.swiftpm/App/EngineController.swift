import A2BSEngine
import Combine  // ObservableObject, @Published (not re-exported by Foundation under Swift 6 / member import visibility)
import Foundation

/// The app's state: loads the engine for the chosen variant and compute units, runs the microphone or the
/// sample clip through it and publishes the latest frame for the UI. Model calls run on the engine's own
/// queue (`A2BSBackgroundEngine`); everything here is on the main actor.
@MainActor
final class EngineController: ObservableObject {
    enum Mode: String, CaseIterable, Identifiable {
        case clip = "Sample clip"
        case microphone = "Microphone"
        var id: String { rawValue }
    }

    @Published private(set) var manifest: A2BSManifest?
    @Published private(set) var names: A2BSBlendshapeNames?
    @Published private(set) var values: [Float] = []
    /// The latest frame's head and eye rotations (`A2BSLifeLayer.rotationNames`, radians): the face turns with them.
    @Published private(set) var rotations: [Double] = []
    @Published private(set) var frameIndex = 0
    @Published private(set) var latencyMs = 0.0
    @Published private(set) var meanLatencyMs = 0.0
    @Published private(set) var status = "Loading the bundle…"
    @Published private(set) var isLoading = false
    @Published private(set) var isRunning = false
    @Published private(set) var computeUnits = A2BSComputeUnits.cpuOnly
    @Published private(set) var variant = ""
    @Published var mode = Mode.clip
    /// The life layer's amount (blinks, gaze, head motion, brow raises): 0 off, 1 the bundle's preset.
    @Published var lifeAmount = 1.0 {
        didSet { background?.setLifeAmount(lifeAmount) }
    }
    /// False for bundles made before the life layer (no `life` section in the manifest): the slider is disabled.
    var hasLife: Bool { manifest?.life != nil }
    /// The face controls (one slider each, `A2BSFaceControls.keys`); they start at the manifest's `controls` values
    /// (the defaults, the model's curves as they are, for bundles made before them) and apply from the next frame.
    @Published var controls = A2BSFaceControls() {
        didSet { background?.setControls(controls) }
    }

    private var background: A2BSBackgroundEngine?
    private var source: AudioSource?
    private var latencyFrames = 0

    var groups: [A2BSBlendshapeGroup] { manifest?.orderedGroups ?? [] }
    /// Sound-to-face delay of the model before compute (lookahead frames + half a window).
    var lookaheadMs: Double {
        guard let manifest else { return 0 }
        return Double(A2BSFrameSchedule(manifest).lookaheadSamples) * 1000 / Double(manifest.sampleRate)
    }

    func setComputeUnits(_ units: A2BSComputeUnits) {
        guard units != computeUnits else { return }
        computeUnits = units
        load()
    }

    func setVariant(_ name: String) {
        guard name != variant else { return }
        variant = name
        load()
    }

    /// (Re)loads the models; the first load of a variant compiles its .mlpackage on the device.
    func load() {
        stop()
        background = nil
        guard let directory = SampleResources.bundleDirectory,
              FileManager.default.fileExists(atPath: directory.appendingPathComponent(A2BSContract.manifestFile).path)
        else {
            status = A2BSError.missingBundle(SampleResources.bundleFolder).localizedDescription
            return
        }
        isLoading = true
        status = "Loading \(variant.isEmpty ? "the default variant" : variant) on \(computeUnits.label)…"
        let chosenVariant = variant.isEmpty ? nil : variant
        let units = computeUnits.mlComputeUnits
        Task {
            do {
                let started = Date()
                // The engine goes straight to its queue (`sending`): from here on only the queue touches it.
                let background = A2BSBackgroundEngine(
                    engine: try await A2BSEngine.load(bundleDirectory: directory, variant: chosenVariant,
                                                      computeUnits: units))
                install(background, chosenVariant: chosenVariant)
                status = String(format: "Ready (loaded in %.1f s). Pick a source and press Start.",
                                Date().timeIntervalSince(started))
            } catch {
                status = error.localizedDescription
            }
            isLoading = false
        }
    }

    /// Shown above the status while the bundle says checkpoint.trained = false (as the Android sample does).
    static let untrainedWarning = "Untrained checkpoint: the face will not follow the speech."

    private func install(_ background: A2BSBackgroundEngine, chosenVariant: String?) {
        background.onFrames = { [weak self] frames in self?.show(frames) }
        background.onError = { [weak self] error in
            self?.stop()
            self?.status = error.localizedDescription
        }
        self.background = background
        background.setLifeAmount(lifeAmount)
        controls = background.manifest.controls?.params ?? A2BSFaceControls()
        manifest = background.manifest
        names = background.names
        variant = chosenVariant ?? background.manifest.defaultVariant
        values = Array(repeating: 0, count: background.manifest.blendshapes.count)
    }

    func toggle() {
        if isRunning { stop(); status = "Stopped." } else { start() }
    }

    private func start() {
        guard let background, let manifest, !isRunning else { return }
        background.reset()
        latencyFrames = 0
        meanLatencyMs = 0
        switch mode {
        case .microphone:
            Task {
                guard await MicrophoneSource.requestPermission() else {
                    status = "Microphone access denied: allow it in Settings > Privacy > Microphone."
                    return
                }
                do {
                    source = try MicrophoneSource(sampleRate: manifest.sampleRate, fps: manifest.fps) { samples in
                        background.push(samples)  // audio thread -> engine queue
                    }
                    isRunning = true
                    status = "Listening…"
                } catch {
                    status = error.localizedDescription
                }
            }
        case .clip:
            guard let clip = SampleResources.clipURL, FileManager.default.fileExists(atPath: clip.path) else {
                status = "No \(SampleResources.clipFile) in the bundle folder: reinstall the bundle."
                return
            }
            var flushed = false
            do {
                source = try FilePlaybackSource(
                    url: clip, sampleRate: manifest.sampleRate,
                    leadSamples: A2BSFrameSchedule(manifest).lookaheadSamples, tick: 1 / Double(manifest.fps),
                    onSamples: { background.push($0) },
                    onAllSamplesFed: {
                        guard !flushed else { return }
                        flushed = true
                        background.flush()  // the last frames, over silence past the end (as the Python reference)
                    },
                    onPlaybackEnd: { [weak self] in
                        self?.stop()
                        self?.status = "Clip finished."
                    })
                isRunning = true
                status = "Playing \(SampleResources.clipFile)…"
            } catch {
                status = error.localizedDescription
            }
        }
    }

    func stop() {
        source?.stop()
        source = nil
        isRunning = false
    }

    private func show(_ frames: [A2BSFrame]) {
        guard let last = frames.last else { return }
        values = last.values
        rotations = last.rotations
        frameIndex = last.index
        latencyMs = last.latencyMs
        for frame in frames {
            latencyFrames += 1
            meanLatencyMs += (frame.latencyMs - meanLatencyMs) / Double(latencyFrames)
        }
    }
}
