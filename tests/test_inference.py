"""Offline inference: the streaming, chunked path equals the whole-array reference on real speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import bundled_speech, write_audio

from a2bs.core.audio import load_audio
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.emotion import emotion_features_at
from a2bs.core.inference import infer_array, iter_blendshapes, plan


def _run(path: Path, ckpt: Checkpoint, **kwargs) -> np.ndarray:
    chunk = kwargs.pop("chunk_outputs", 512)
    the_plan = plan(path, ckpt.fps, **kwargs)
    frames = np.concatenate(list(iter_blendshapes(path, ckpt, the_plan, chunk_outputs=chunk)))
    assert frames.shape == (the_plan.n_frames, 52)
    return frames


@pytest.mark.parametrize("fps", [30, 60])
def test_streaming_equals_whole_array_reference(fps: int, request: pytest.FixtureRequest) -> None:
    ckpt = request.getfixturevalue(f"ckpt{fps}")
    path = bundled_speech()
    audio = load_audio(path)
    expected = infer_array(ckpt, audio)
    assert len(expected) == -(-len(audio) * fps // 16000)
    # small chunks force many chunk boundaries (mel cache carry, smoothing carry)
    got = _run(path, ckpt, chunk_outputs=97)
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_stream_blocks_do_not_matter(ckpt30: Checkpoint, tmp_path: Path) -> None:
    """A 48 kHz stereo file streams through the resampler block by block with the same result."""
    audio = load_audio(bundled_speech())[: 16000 * 6]
    import soxr

    stereo = np.stack([soxr.resample(audio, 16000, 48000)] * 2, axis=1)
    path = write_audio(tmp_path, "s48.wav", stereo, 48000, subtype="FLOAT")
    got = _run(path, ckpt30, chunk_outputs=50)
    expected = infer_array(ckpt30, load_audio(path))
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_stride_interpolates_between_computed_frames(ckpt30: Checkpoint) -> None:
    full = _run(bundled_speech(), ckpt30)
    for stride in (2, 3):
        strided = _run(bundled_speech(), ckpt30, stride=stride, chunk_outputs=40)
        assert strided.shape == full.shape
        assert np.abs(strided - full).mean() < 0.02


def test_emotion_refresh_changes_only_emotion(ckpt30: Checkpoint, tmp_path: Path) -> None:
    audio = load_audio(bundled_speech())
    # quiet first half, loud second half: refreshed emotion features differ between halves
    mixed = np.concatenate([audio * 0.1, audio])
    path = write_audio(tmp_path, "mixed.wav", mixed, 16000)
    once = _run(path, ckpt30)
    refreshed = _run(path, ckpt30, emotion_refresh_s=5.0, chunk_outputs=64)
    assert once.shape == refreshed.shape
    # the last refresh window ends at the file's end, like the once-per-file features
    np.testing.assert_allclose(refreshed[-10:], once[-10:], atol=1e-2)
    assert not np.allclose(refreshed[:100], once[:100], atol=1e-6)


def test_neutral_emotion_is_accepted(ckpt30: Checkpoint) -> None:
    audio = load_audio(bundled_speech())[:32000]
    raw = emotion_features_at(audio, len(audio) / 16000)
    a = infer_array(ckpt30, audio, emotion=raw)
    neutral = ckpt30.emotion_stats.mean  # raw features at the statistics' mean normalize to zeros
    b = infer_array(ckpt30, audio, emotion=neutral)
    assert a.shape == b.shape == (60, 52)


def test_very_short_audio_gives_full_length(ckpt60: Checkpoint, tmp_path: Path) -> None:
    path = write_audio(tmp_path, "blip.wav", np.full(1, 0.1, np.float32), 16000)
    assert _run(path, ckpt60).shape == (1, 52)
