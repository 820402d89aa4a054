package com.a2bs.sample

import android.Manifest
import android.content.pm.PackageManager
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.rememberLauncherForActivityResult
import androidx.activity.compose.setContent
import androidx.activity.enableEdgeToEdge
import androidx.activity.result.contract.ActivityResultContracts
import androidx.activity.viewModels
import androidx.compose.foundation.isSystemInDarkTheme
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Box
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.safeDrawingPadding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.DropdownMenu
import androidx.compose.material3.DropdownMenuItem
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Slider
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.material3.darkColorScheme
import androidx.compose.material3.lightColorScheme
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.unit.dp
import androidx.core.content.ContextCompat
import com.a2bs.engine.FaceControls
import androidx.lifecycle.compose.collectAsStateWithLifecycle

class MainActivity : ComponentActivity() {
    private val model: SampleViewModel by viewModels()

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        // targetSdk 35: Android 15 draws the app edge to edge anyway; do it on every version and keep
        // the content out of the system bars with safeDrawingPadding (below).
        enableEdgeToEdge()
        setContent {
            MaterialTheme(colorScheme = if (isSystemInDarkTheme()) darkColorScheme() else lightColorScheme()) {
                Surface(Modifier.fillMaxSize()) { SampleScreen(model) }
            }
        }
    }

    override fun onStop() {
        super.onStop()
        // No recording or playback in the background; a rotation (fullUser orientation) is not that.
        if (!isChangingConfigurations) model.stop()
    }
}

@Composable
private fun SampleScreen(model: SampleViewModel) {
    val state by model.state.collectAsStateWithLifecycle()
    val context = LocalContext.current
    var micDenied by remember { mutableStateOf(false) }
    val permission = rememberLauncherForActivityResult(ActivityResultContracts.RequestPermission()) { granted ->
        micDenied = !granted
        if (granted) model.startMic()
    }
    val manifest = state.manifest

    Column(Modifier.fillMaxSize().safeDrawingPadding().verticalScroll(rememberScrollState()).padding(16.dp)) {
        Text("a2bs: speech to face", style = MaterialTheme.typography.headlineSmall)
        state.error?.let { Text(it, color = Color(0xFFB00020)) }
        if (manifest == null) return@Column
        Text("${manifest.fps} fps · ${manifest.blendshapes.size} blendshapes · model latency ${"%.1f".format(manifest.latencyMs)} ms + compute")
        if (!manifest.trained) Text("Untrained checkpoint: the face will not follow the speech.", color = Color(0xFFB00020))

        // Accelerator, threads, variant.
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            for (a in Accelerator.values()) {
                FilterChip(
                    selected = state.accelerator == a, onClick = { model.configure(accelerator = a) },
                    label = { Text(a.label) },
                )
            }
        }
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            Text("CPU threads", Modifier.padding(top = 12.dp))
            for (t in listOf(1, 2, 4)) {
                FilterChip(selected = state.threads == t, onClick = { model.configure(threads = t) }, label = { Text("$t") })
            }
        }
        VariantPicker(manifest.availableVariants, state.variant) { model.configure(variant = it) }
        if (manifest.life != null) { // bundles made before the life layer have none
            Text("Life (blinks, gaze, head, brows): %.2f".format(state.lifeAmount), Modifier.padding(top = 8.dp))
            Slider(
                value = state.lifeAmount.toFloat(), onValueChange = { model.setLifeAmount(it.toDouble()) },
                valueRange = 0f..1f,
            )
        }
        ControlSliders(state.controls, onChange = model::setControl, onReset = { model.setControls(manifest.controls) })
        Text("Running on: ${state.delegateStatus}", style = MaterialTheme.typography.bodySmall)

        // Live microphone or the bundled clip.
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp), modifier = Modifier.padding(vertical = 8.dp)) {
            if (state.mode == Mode.IDLE) {
                Button(onClick = {
                    val granted = ContextCompat.checkSelfPermission(context, Manifest.permission.RECORD_AUDIO) ==
                        PackageManager.PERMISSION_GRANTED
                    if (granted) model.startMic() else permission.launch(Manifest.permission.RECORD_AUDIO)
                }) { Text("Microphone") }
                OutlinedButton(onClick = { model.playClip() }) { Text("Play $CLIP_FILE") }
            } else {
                Button(onClick = { model.stop() }) { Text(if (state.mode == Mode.MIC) "Stop microphone" else "Stop playback") }
            }
        }
        if (micDenied) Text("Microphone permission denied: use the clip, or allow it in Settings.")

        val frame = state.frame
        Text(
            if (frame == null) "Latency: -" else
                "Frame ${frame.index} (%.2f s) · front end %.1f ms + step %.1f ms · mean %.1f ms/frame (budget %.1f ms)".format(
                    frame.timeSeconds, frame.frontEndMs, frame.stepMs, state.meanComputeMs, 1000.0 / manifest.fps,
                ),
            style = MaterialTheme.typography.bodySmall,
        )
        Face(frame, Modifier.fillMaxWidth(0.6f).padding(vertical = 8.dp))
        GroupedBars(manifest.blendshapeGroups, frame, Modifier.fillMaxWidth())
    }
}

/** One slider per face control (docs/CONTROLS.md), within its limits, and a reset to the bundle's values. */
@Composable
private fun ControlSliders(controls: FaceControls, onChange: (Int, Double) -> Unit, onReset: () -> Unit) {
    val values = controls.values
    for ((i, limit) in FaceControls.LIMITS.withIndex()) {
        Text("${limit.label}: %.2f".format(values[i]), Modifier.padding(top = 4.dp))
        Slider(
            value = values[i].toFloat(), onValueChange = { onChange(i, it.toDouble()) },
            valueRange = limit.lo.toFloat()..limit.hi.toFloat(),
        )
    }
    OutlinedButton(onClick = onReset) { Text("Reset the face controls") }
}

@Composable
private fun VariantPicker(variants: List<String>, selected: String, onPick: (String) -> Unit) {
    var menuExpanded by remember { mutableStateOf(false) }
    Box { // anchors the menu to the button
        OutlinedButton(onClick = { menuExpanded = true }, enabled = variants.size > 1) { Text("Variant: $selected") }
        DropdownMenu(expanded = menuExpanded, onDismissRequest = { menuExpanded = false }) {
            for (v in variants) {
                DropdownMenuItem(text = { Text(v) }, onClick = { menuExpanded = false; onPick(v) })
            }
        }
    }
}
