"""The offline model (many frames per call) gives the frames of the per-frame path that the apps run.

On the shipped bundles (the trained defaults, real speech), at 30 and 60 fps, for clip lengths that are not a
multiple of the call size and for one shorter than a call; the fallback for an underflowed call; the CLI's
choice of path; and negative controls that the comparison catches (a smoothing off by 1e-3, one frame off by
2e-5, a NaN)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import bundled_speech

from a2bs.core.audio import load_audio
from a2bs.core.constants import OFFLINE_FRAMES, SAMPLE_RATE
from a2bs.core.emotion import EmotionStats, file_emotion
from a2bs.core.errors import A2BSError
from a2bs.core.parity import OFFLINE_ATOL, largest_difference
from a2bs.runtime import offline as offline_module
from a2bs.runtime.bundle_inference import (
    iter_bundle_blendshapes,
    offline_difference,
    open_offline,
    open_runners,
)
from a2bs.runtime.engine import BundleEngine, run_stream
from a2bs.runtime.manifest import load_manifest, shipped_bundle
from a2bs.runtime.offline import OfflineEngine, offline_frames


def _speech(seconds: float) -> np.ndarray:
    audio = load_audio(bundled_speech())
    start = round(2.0 * SAMPLE_RATE)  # from inside the speech, so the short clips are not silence
    return audio[start : start + round(seconds * SAMPLE_RATE)]


def _paths(fps: int):
    bundle = shipped_bundle(fps)
    manifest, front_end, step = open_runners(bundle, "tflite", None)
    return manifest, front_end, step, open_offline(bundle, manifest, None)


def _per_frame(manifest, front_end, step, audio, emotion=None) -> np.ndarray:
    return run_stream(BundleEngine(manifest, front_end, step, emotion, record_timings=False), audio)


@pytest.mark.parametrize("fps", [30, 60])
@pytest.mark.parametrize("seconds", [0.05, 1.0, 3.37])
def test_offline_model_gives_the_per_frame_frames(fps: int, seconds: float) -> None:
    manifest, front_end, step, offline = _paths(fps)
    audio = _speech(seconds)
    n_frames = -(-len(audio) * fps // SAMPLE_RATE)
    assert n_frames % OFFLINE_FRAMES  # not a whole number of calls (0.05 s: fewer frames than one call)
    stats = EmotionStats.from_json(manifest["emotion"]["normalization"])
    for emotion in (None, stats.normalize(file_emotion(bundled_speech())[None])):  # neutral, and a real one
        expected = _per_frame(manifest, front_end, step, audio, emotion)
        got = offline_frames(manifest, offline, step, audio, emotion)
        assert expected.shape == (n_frames, 52)
        assert largest_difference(got, expected) <= OFFLINE_ATOL
    if seconds > 0.5:  # real speech moves the face: the comparison means something
        assert np.ptp(expected, axis=0).max() > 0.1


def test_the_comparison_catches_small_defects() -> None:
    """Negative controls for the gate the converter and `a2bs validate` apply: each defect is caught."""
    manifest, front_end, step, offline = _paths(30)
    audio = _speech(2.0)
    expected = _per_frame(manifest, front_end, step, audio)
    assert largest_difference(offline_frames(manifest, offline, step, audio), expected) <= OFFLINE_ATOL
    shifted = {**manifest, "smoothing_alpha": manifest["smoothing_alpha"] + 1e-3}
    assert largest_difference(offline_frames(shifted, offline, step, audio), expected) > OFFLINE_ATOL
    nudged = expected.copy()
    nudged[17, 25] += 2e-5
    assert largest_difference(nudged, expected) > OFFLINE_ATOL
    broken = expected.copy()
    broken[3, 0] = np.nan
    assert largest_difference(broken, expected) == float("inf")
    assert largest_difference(expected[:-1], expected) == float("inf")


def test_an_underflowed_call_is_recomputed_with_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call below the floor (forced here): the frames come from the step model, and are the same."""
    manifest, front_end, step, offline = _paths(30)
    audio = _speech(1.5)
    expected = _per_frame(manifest, front_end, step, audio)
    monkeypatch.setattr(offline_module, "ATTENTION_FLOOR", float("inf"))
    loads = []

    def load_step():
        loads.append(1)
        return step

    engine = OfflineEngine(manifest, offline, load_step)
    got = np.concatenate(list(engine.run(iter([audio]), len(expected))))
    calls = -(-(len(expected) + manifest["timeline"]["lookahead_frames"]) // OFFLINE_FRAMES)
    assert engine.fallback_calls == calls and len(loads) == calls
    assert largest_difference(got, expected) <= OFFLINE_ATOL


def test_a_nan_from_the_offline_model_is_recomputed() -> None:
    manifest, front_end, step, offline = _paths(30)
    audio = _speech(1.2)
    expected = _per_frame(manifest, front_end, step, audio)

    def poisoned(**inputs):
        out = offline(**inputs)
        out["blendshapes_raw"][0, 5, 7] = np.nan
        return out

    engine = OfflineEngine(manifest, poisoned, lambda: step)
    got = np.concatenate(list(engine.run(iter([audio]), len(expected))))
    assert engine.fallback_calls > 0 and largest_difference(got, expected) <= OFFLINE_ATOL


@pytest.mark.parametrize("fps", [30, 60])
def test_infer_runs_the_offline_model_unless_asked_for_the_per_frame_path(fps: int, tmp_path: Path) -> None:
    """Same frames from a file, streamed in blocks, either way; --per-frame picks the apps' loop."""
    clip = tmp_path / "clip.wav"
    sf.write(clip, _speech(2.5), SAMPLE_RATE)
    bundle = shipped_bundle(fps)
    _, n, batched = iter_bundle_blendshapes(clip, bundle, "tflite", chunk_frames=40)
    _, n2, per_frame = iter_bundle_blendshapes(clip, bundle, "tflite", chunk_frames=40, per_frame=True)
    batched_chunks, per_frame_chunks = list(batched), list(per_frame)
    assert n == n2 == sum(len(c) for c in batched_chunks)
    assert largest_difference(np.concatenate(batched_chunks), np.concatenate(per_frame_chunks)) <= OFFLINE_ATOL


def test_offline_difference_of_the_shipped_bundles() -> None:
    for fps in (30, 60):
        assert offline_difference(shipped_bundle(fps), None, _speech(1.0)) <= OFFLINE_ATOL


def test_a_bundle_without_an_offline_model_runs_frame_by_frame(tmp_path: Path) -> None:
    """Older bundles (and bundles made without --offline) load and run as before."""
    bundle = tmp_path / "old"
    shutil.copytree(shipped_bundle(30), bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if f["role"] != "offline"]
    del manifest["models"]["offline"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    (bundle / "a2bs_offline_fp16.tflite").unlink()
    loaded = load_manifest(bundle)
    assert open_offline(bundle, loaded, None) is None
    clip = tmp_path / "clip.wav"
    sf.write(clip, _speech(1.0), SAMPLE_RATE)
    _, n, frames = iter_bundle_blendshapes(clip, bundle, "tflite")
    assert sum(len(c) for c in frames) == n
    with pytest.raises(A2BSError, match="no offline model"):
        offline_difference(bundle, None, _speech(0.5))
