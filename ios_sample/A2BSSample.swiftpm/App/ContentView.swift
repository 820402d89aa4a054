import A2BSEngine
import SwiftUI

struct ContentView: View {
    @StateObject private var controller = EngineController()

    var body: some View {
        NavigationStack {
            VStack(spacing: 10) {
                FaceView(values: controller.values, names: controller.names, rotations: controller.rotations)
                    .frame(height: 210)
                readout
                controls
                BlendshapeBars(groups: controller.groups, values: controller.values, names: controller.names)
            }
            .padding(.horizontal)
            .navigationTitle("a2bs")
            .navigationBarTitleDisplayMode(.inline)
        }
        .task { controller.load() }
    }

    private var readout: some View {
        VStack(spacing: 2) {
            Text(String(format: "frame %ld · %.2f ms per frame (mean %.2f) · face lags sound by %.0f ms + compute",
                        controller.frameIndex, controller.latencyMs, controller.meanLatencyMs, controller.lookaheadMs))
                .font(.caption.monospacedDigit())
            if controller.manifest?.isTrained == false {
                Text(EngineController.untrainedWarning)
                    .font(.caption.bold())
                    .foregroundStyle(.red)
            }
            Text(controller.status)
                .font(.caption)
                .foregroundStyle(.secondary)
                .multilineTextAlignment(.center)
        }
    }

    private var controls: some View {
        VStack(spacing: 8) {
            Picker("Source", selection: $controller.mode) {
                ForEach(EngineController.Mode.allCases) { Text($0.rawValue).tag($0) }
            }
            .pickerStyle(.segmented)
            .disabled(controller.isRunning)

            HStack {
                Picker("Compute units", selection: Binding(get: { controller.computeUnits },
                                                           set: { controller.setComputeUnits($0) })) {
                    ForEach(A2BSComputeUnits.allCases) { Text($0.label).tag($0) }
                }
                Picker("Variant", selection: Binding(get: { controller.variant },
                                                     set: { controller.setVariant($0) })) {
                    ForEach(controller.manifest?.variants ?? [], id: \.self) { Text($0).tag($0) }
                }
                Spacer()
                Button(controller.isRunning ? "Stop" : "Start") { controller.toggle() }
                    .buttonStyle(.borderedProminent)
                    .disabled(controller.isLoading || controller.manifest == nil)
            }
            .pickerStyle(.menu)
            .disabled(controller.isLoading)

            HStack {
                Text("Life")
                    .font(.caption)
                Slider(value: $controller.lifeAmount, in: 0...1)
                Text(controller.hasLife ? String(format: "%.2f", controller.lifeAmount) : "none in bundle")
                    .font(.caption.monospacedDigit())
            }
            .disabled(!controller.hasLife)

            ForEach(A2BSFaceControls.keys, id: \.self) { key in
                HStack {
                    Text(ContentView.controlLabels[key] ?? key)
                        .font(.caption)
                        .frame(width: 96, alignment: .leading)
                    Slider(value: Binding(get: { controller.controls[key] }, set: { controller.controls[key] = $0 }),
                           in: A2BSFaceControls.limits[key] ?? 0...1)
                    Text(String(format: "%.2f", controller.controls[key]))
                        .font(.caption.monospacedDigit())
                }
            }
            .disabled(controller.manifest == nil)
        }
    }

    /// Short slider labels of the face controls (manifest keys: docs/CONTROLS.md).
    static let controlLabels = [
        "lower_strength": "Lower face", "upper_strength": "Upper face", "expression_strength": "Expression",
        "lip_offset": "Lip opening", "lower_smoothing_s": "Smooth lower", "upper_smoothing_s": "Smooth upper",
    ]
}

/// The 52 values as bars, grouped by the manifest's blendshape_groups.
struct BlendshapeBars: View {
    let groups: [A2BSBlendshapeGroup]
    let values: [Float]
    let names: A2BSBlendshapeNames?

    var body: some View {
        List {
            ForEach(groups) { group in
                Section(group.name) {
                    ForEach(group.members, id: \.self) { name in
                        BarRow(name: name, value: value(of: name))
                    }
                }
            }
        }
        .listStyle(.plain)
    }

    private func value(of name: String) -> Float {
        guard let i = names?.index[name], i < values.count else { return 0 }
        return values[i]
    }
}

private struct BarRow: View {
    let name: String
    let value: Float

    var body: some View {
        HStack(spacing: 8) {
            Text(name)
                .font(.caption.monospaced())
                .lineLimit(1)
                .frame(width: 150, alignment: .leading)
            GeometryReader { geometry in
                ZStack(alignment: .leading) {
                    Capsule().fill(.quaternary)
                    Capsule().fill(.tint)
                        .frame(width: geometry.size.width * CGFloat(min(max(value, 0), 1)))
                }
            }
            .frame(height: 8)
            Text(String(format: "%.2f", value))
                .font(.caption2.monospacedDigit())
                .frame(width: 34, alignment: .trailing)
        }
    }
}
