"""Inference through a bundle's artifacts, frame by frame, exactly as the manifest tells an app to.

`a2bs infer AUDIO --backend tflite --bundle DIR [--variant V]` uses this: the front-end model turns
each PCM window into a mel frame, the step model runs once per frame with the ring buffer of
encoded frames and the previous smoothed frame. Emotion features are extracted once per file like
the torch backend (apps without openSMILE pass zeros, the neutral vector). CoreML bundles run in
Core ML on macOS and in the NumPy MIL executor (`a2bs.mobile_validation.mil_executor`) elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.convert.deploy import FRONT_END_INPUTS, FRONT_END_OUTPUTS, STEP_INPUTS, STEP_OUTPUTS
from a2bs.core.audio import n_output_frames, probe, read_tail, stream_audio
from a2bs.core.constants import N_FFT, SAMPLE_RATE
from a2bs.core.emotion import EMOTION_SPAN_S, EmotionStats, emotion_features_at
from a2bs.core.errors import A2BSError
from a2bs.core.features import frame_centers
from a2bs.core.inference import SampleWindow

Runner = Callable[..., dict[str, np.ndarray]]


def load_manifest(bundle: Path) -> dict[str, Any]:
    path = bundle / "manifest.json"
    if not path.is_file():
        raise A2BSError(f"{bundle} is not an a2bs bundle: no manifest.json (build one with a2bs-convert)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise A2BSError(f"{path} is not valid JSON: {exc}") from None


def _file(manifest: dict[str, Any], role: str, variant: str | None) -> dict[str, Any]:
    wanted = variant or manifest["default_variant"]
    for entry in manifest["files"]:
        if entry["role"] == role and (role == "front_end" or entry["variant"] == wanted):
            return entry
    available = sorted({f["variant"] for f in manifest["files"] if f["role"] == "step"})
    raise A2BSError(f"the bundle has no {role} model for variant {wanted!r} (it has: {', '.join(available)})")


def open_runners(bundle: Path, backend: str, variant: str | None) -> tuple[dict[str, Any], Runner, Runner]:
    """(manifest, front_end runner, step runner) for a bundle on the given runtime."""
    manifest = load_manifest(bundle)
    platform = {"tflite": "android", "coreml": "ios"}[backend]
    if manifest.get("platform") != platform:
        raise A2BSError(f"--backend {backend} needs an {platform} bundle; {bundle} is for {manifest.get('platform')}")
    front, step = _file(manifest, "front_end", None), _file(manifest, "step", variant)
    if backend == "tflite":
        from a2bs.convert.tflite import TFLiteRunner

        return manifest, TFLiteRunner(bundle / front["path"]), TFLiteRunner(bundle / step["path"])
    import platform as host

    if host.system() == "Darwin":  # Core ML itself
        import coremltools as ct

        def coreml_runner(path: Path) -> Runner:
            model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
            return lambda **inputs: model.predict(inputs)
    else:  # elsewhere the NumPy MIL executor (fp16 compute emulated where the program uses it)
        from a2bs.mobile_validation.mil_executor import MILExecutor

        def coreml_runner(path: Path) -> Runner:
            return MILExecutor(path)

    return manifest, coreml_runner(bundle / front["path"]), coreml_runner(bundle / step["path"])


def iter_bundle_blendshapes(
    audio_path: Path, bundle: Path, backend: str, variant: str | None = None,
    progress: Callable[[int], None] | None = None, chunk_frames: int = 256,
) -> tuple[int, int, Iterator[np.ndarray]]:  # fmt: skip
    """(fps, n_frames, iterator of (n, 52) chunks) running the bundle frame by frame."""
    manifest, front_end, step = open_runners(bundle, backend, variant)
    fps, lookahead = int(manifest["fps"]), int(manifest["timeline"]["lookahead_frames"])
    n_context = int(manifest["context_frames"])
    info = probe(audio_path)
    n_frames = n_output_frames(info, fps)
    stats = EmotionStats.from_json(manifest["emotion"]["normalization"])
    tail = read_tail(audio_path, EMOTION_SPAN_S)
    emotion = stats.normalize(emotion_features_at(tail, len(tail) / SAMPLE_RATE)[None]).astype(np.float32)

    def frames() -> Iterator[np.ndarray]:
        state = manifest["initial_state"]
        mel_history = np.asarray(state["mel_frames"], np.float32)[None]  # (1, 3, 80)
        context = np.repeat(np.asarray(state["context_frame"], np.float32)[None, None], n_context - 1, axis=1)
        previous = np.zeros((1, len(manifest["blendshapes"])), np.float32)
        samples = SampleWindow(stream_audio(audio_path))
        out: list[np.ndarray] = []
        emitted = 0
        j = 0
        while emitted < n_frames:
            center = int(frame_centers(j, 1, fps)[0])
            window = samples.windows(np.array([center]))  # zeros past the end of the stream
            mel = front_end(**{FRONT_END_INPUTS[0]: window})[FRONT_END_OUTPUTS[0]].reshape(1, 1, -1)
            mel_history = np.concatenate([mel_history[:, 1:], mel.astype(np.float32)], axis=1)
            result = step(**dict(zip(STEP_INPUTS, (mel_history, context, emotion, previous), strict=True)))
            context = np.concatenate([context[:, 1:], result[STEP_OUTPUTS[2]].reshape(1, 1, -1)], axis=1)
            k = j - lookahead
            if k >= 0:
                frame = result[STEP_OUTPUTS[1] if k == 0 else STEP_OUTPUTS[0]].reshape(1, -1).astype(np.float32)
                previous = frame
                out.append(frame)
                emitted += 1
                if len(out) == chunk_frames or emitted == n_frames:
                    if progress:
                        progress(len(out))
                    yield np.concatenate(out)
                    out = []
            j += 1
            samples.discard_before(center - N_FFT)  # older samples are never needed again

    return fps, n_frames, frames()
