"""Offline inference: the streaming, chunked path equals the whole-array reference on real speech.

Run on the TRAINED defaults: their outputs move, so a chunk-boundary or carry bug shows (an untrained
model's outputs barely move and would hide it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import bundled_speech, write_audio

from a2bs.core.audio import load_audio
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.emotion import emotion_features_at
from a2bs.core.inference import infer_array, iter_blendshapes
from a2bs.core.plan import plan
from a2bs.mobile_validation import parity as P


def _run(path: Path, ckpt: Checkpoint, **kwargs) -> np.ndarray:
    chunk = kwargs.pop("chunk_outputs", 512)
    the_plan = plan(path, ckpt.fps, **kwargs)
    frames = np.concatenate(list(iter_blendshapes(path, ckpt, the_plan, chunk_outputs=chunk)))
    assert frames.shape == (the_plan.n_frames, 52)
    return frames


@pytest.mark.parametrize("fps", [30, 60])
def test_streaming_equals_whole_array_reference(fps: int, request: pytest.FixtureRequest) -> None:
    ckpt = request.getfixturevalue(f"trained{fps}")
    path = bundled_speech()
    audio = load_audio(path)
    expected = infer_array(ckpt, audio)
    assert len(expected) == -(-len(audio) * fps // 16000)
    # small chunks force many chunk boundaries (mel cache carry, smoothing carry)
    got = _run(path, ckpt, chunk_outputs=97)
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_stream_blocks_do_not_matter(trained30: Checkpoint, tmp_path: Path) -> None:
    """A 48 kHz stereo file streams through the resampler block by block with the same result."""
    audio = load_audio(bundled_speech())[: 16000 * 6]
    import soxr

    stereo = np.stack([soxr.resample(audio, 16000, 48000)] * 2, axis=1)
    path = write_audio(tmp_path, "s48.wav", stereo, 48000, subtype="FLOAT")
    got = _run(path, trained30, chunk_outputs=50)
    expected = infer_array(trained30, load_audio(path))
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_stride_interpolates_between_computed_frames(trained30: Checkpoint) -> None:
    """Striding costs a little accuracy relative to how much the output moves; a model that stopped
    following the audio (its mean, every frame) would be far worse."""
    full = _run(bundled_speech(), trained30)
    still = P.parity_metrics(full, np.broadcast_to(full.mean(axis=0), full.shape))
    for stride in (2, 3):
        strided = _run(bundled_speech(), trained30, stride=stride, chunk_outputs=40)
        assert strided.shape == full.shape
        metrics = P.parity_metrics(full, strided)
        # measured with the default of 2026-11-30: 0.16 (stride 2) and 0.26 (stride 3) of the still model's error.
        # The issue 26 default closes the lips for each p/b/m (2-3 frames at 30 fps), which a stride of 3 frames
        # interpolates across: its weakest shape correlates 0.80 with the full rate (measured 2026-12-07).
        limit, correlation = (0.25, 0.8) if stride == 2 else (0.35, 0.75)
        assert metrics["rel_mae"] < limit * still["rel_mae"], metrics["rel_mae"]
        assert metrics["min_correlation"] > correlation, metrics["min_correlation"]


@pytest.mark.slow
def test_emotion_refresh_changes_only_emotion(trained30: Checkpoint, tmp_path: Path) -> None:
    audio = load_audio(bundled_speech())
    # quiet first half, loud second half: refreshed emotion features differ between halves
    mixed = np.concatenate([audio * 0.1, audio])
    path = write_audio(tmp_path, "mixed.wav", mixed, 16000)
    once = _run(path, trained30)
    refreshed = _run(path, trained30, emotion_refresh_s=5.0, chunk_outputs=64)
    assert once.shape == refreshed.shape
    # the last refresh window ends at the file's end, like the once-per-file features
    np.testing.assert_allclose(refreshed[-10:], once[-10:], atol=1e-2)
    assert not np.allclose(refreshed[:100], once[:100], atol=1e-6)


def test_neutral_emotion_drives_the_face_from_the_audio(trained30: Checkpoint) -> None:
    """What an app without openSMILE passes: raw features at the statistics' mean, which normalize to the
    neutral zeros. The emotion input matters (the output changes), but the audio still drives the face:
    the mouth follows the same speech as with the clip's own features."""
    audio = load_audio(bundled_speech())[: 6 * 16000]
    raw = emotion_features_at(audio, len(audio) / 16000)
    neutral = trained30.emotion_stats.mean
    np.testing.assert_allclose(trained30.emotion_stats.normalize(neutral[None]), 0.0, atol=1e-6)
    own, calm = infer_array(trained30, audio, emotion=raw), infer_array(trained30, audio, emotion=neutral)
    assert own.shape == calm.shape == (180, 52) and np.isfinite(calm).all()
    assert not np.allclose(own, calm, atol=1e-4)  # the emotion input is used
    jaw = ARKIT_BLENDSHAPES.index("jawOpen")
    assert calm[:, jaw].std() > 0.02 and np.corrcoef(own[:, jaw], calm[:, jaw])[0, 1] > 0.8


def test_very_short_audio_gives_full_length(ckpt60: Checkpoint, tmp_path: Path) -> None:
    path = write_audio(tmp_path, "blip.wav", np.full(1, 0.1, np.float32), 16000)
    assert _run(path, ckpt60).shape == (1, 52)
