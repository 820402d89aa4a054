"""Inference through a bundle's artifacts, frame by frame, exactly as the manifest tells an app to.

`a2bs infer AUDIO --backend tflite --bundle DIR [--variant V]` uses this: the front-end model turns
each PCM window into a mel frame, the step model runs once per frame with the ring buffer of
encoded frames and the previous smoothed frame. Emotion features are extracted once per file like
the torch backend (apps without openSMILE pass zeros, the neutral vector). CoreML bundles run in
Core ML on macOS and in the NumPy MIL executor (`a2bs.mobile_validation.mil_executor`) elsewhere.
"""

from __future__ import annotations

import itertools
import json
import platform as host
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core.audio import n_output_frames, probe, read_tail, stream_audio
from a2bs.core.constants import SAMPLE_RATE
from a2bs.core.emotion import EMOTION_SPAN_S, EmotionStats, emotion_features_at
from a2bs.core.errors import A2BSError
from a2bs.mobile_validation.streaming import BundleEngine

Runner = Callable[..., dict[str, np.ndarray]]


def load_manifest(bundle: Path) -> dict[str, Any]:
    path = bundle / "manifest.json"
    if not path.is_file():
        raise A2BSError(f"{bundle} is not an a2bs bundle: no manifest.json (build one with a2bs-convert)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise A2BSError(f"{path} is not valid JSON: {exc}") from None


def bundle_file(manifest: dict[str, Any], role: str, variant: str | None) -> dict[str, Any]:
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
    front, step = bundle_file(manifest, "front_end", None), bundle_file(manifest, "step", variant)
    return manifest, model_runner(bundle / front["path"], platform), model_runner(bundle / step["path"], platform)


def model_runner(path: Path, platform: str, compute_units: str = "CPU_ONLY") -> Runner:
    """Named-input runner of one model file: the LiteRT interpreter for android; Core ML itself on macOS
    (`compute_units` as in coremltools' ComputeUnit) and the NumPy MIL executor elsewhere for ios."""
    if platform == "android":
        from a2bs.mobile_validation.tflite_runner import TFLiteRunner

        return TFLiteRunner(path)
    if host.system() == "Darwin":
        import coremltools as ct

        model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_units))
        return lambda **inputs: model.predict(inputs)
    from a2bs.mobile_validation.mil_executor import MILExecutor  # fp16 compute emulated where the program uses it

    return MILExecutor(path)


def iter_bundle_blendshapes(
    audio_path: Path, bundle: Path, backend: str, variant: str | None = None,
    progress: Callable[[int], None] | None = None, chunk_frames: int = 256, neutral_emotion: bool = False,
) -> tuple[int, int, Iterator[np.ndarray]]:  # fmt: skip
    """(fps, n_frames, iterator of (n, 52) chunks) running the bundle frame by frame.

    `neutral_emotion` passes the manifest's neutral vector, as the sample apps do (no openSMILE on the
    phone), instead of the file's eGeMAPS features."""
    manifest, front_end, step = open_runners(bundle, backend, variant)
    fps = int(manifest["fps"])
    info = probe(audio_path)
    n_frames = n_output_frames(info, fps)
    if neutral_emotion:
        emotion = np.asarray(manifest["emotion"]["neutral"], np.float32)[None]
    else:
        stats = EmotionStats.from_json(manifest["emotion"]["normalization"])
        tail = read_tail(audio_path, EMOTION_SPAN_S)
        emotion = stats.normalize(emotion_features_at(tail, len(tail) / SAMPLE_RATE)[None]).astype(np.float32)

    def frames() -> Iterator[np.ndarray]:
        engine = BundleEngine(manifest, front_end, step, emotion)
        pending: list[np.ndarray] = []
        for block in itertools.chain(stream_audio(audio_path), [None]):  # None: end of stream
            new = engine.push(block) if block is not None else engine.finish()
            if len(new):
                pending.append(new)
            while sum(len(p) for p in pending) >= chunk_frames or (block is None and pending):
                ready = np.concatenate(pending)
                chunk, rest = ready[:chunk_frames], ready[chunk_frames:]
                pending = [rest] if len(rest) else []
                if progress:
                    progress(len(chunk))
                yield chunk

    return fps, n_frames, frames()
