"""The face controls (core/controls.py): the defaults are the identity bit for bit, strength 0 the neutral
face, each control does what docs/CONTROLS.md says and nothing else, any chunking gives the same frames,
and the lip offset never opens a seal."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX, LOWER_FACE, STYLE_SHAPES, UPPER_FACE
from a2bs.core.constants import SEAL_GAP
from a2bs.core.controls import LIMITS, ControlsFilter, FaceControls, smoothing_factor
from a2bs.core.errors import A2BSError

JAW, CLOSE = INDEX["jawOpen"], INDEX["mouthClose"]
LOWER = [INDEX[n] for n in LOWER_FACE]
UPPER = [INDEX[n] for n in UPPER_FACE]
STYLE = [INDEX[n] for n in STYLE_SHAPES]


def curves(n: int = 200, seed: int = 0) -> np.ndarray:
    """Model-like frames in [0, 1] with sealed lips (mouthClose = jawOpen) on every fifth frame."""
    x = np.random.default_rng(seed).uniform(0.0, 0.6, (n, 52)).astype(np.float32)
    x[::5, CLOSE] = x[::5, JAW]
    return x


def apply(controls: FaceControls, x: np.ndarray, fps: int = 30) -> np.ndarray:
    return ControlsFilter(controls, fps).process(x)


def test_the_defaults_are_the_identity_bit_for_bit() -> None:
    x = curves()
    out = apply(FaceControls(), x)
    assert out.dtype == np.float32 and np.array_equal(out, x)


def test_strength_zero_is_the_neutral_face_whatever_else() -> None:
    neutral = FaceControls(lower_strength=0.0, upper_strength=0.0, lip_offset=0.3, lower_smoothing_s=0.2)
    assert not apply(neutral, curves()).any()
    # the regions split the face: each strength reaches its own shapes and no other
    out = apply(FaceControls(lower_strength=0.0), curves())
    assert not out[:, LOWER].any() and np.array_equal(out[:, UPPER], curves()[:, UPPER])
    out = apply(FaceControls(upper_strength=0.0), curves())
    assert not out[:, UPPER].any() and np.array_equal(out[:, LOWER], curves()[:, LOWER])


def test_strengths_scale_and_clip() -> None:
    x = curves()
    out = apply(FaceControls(lower_strength=2.0, upper_strength=0.5, expression_strength=0.2), x)
    style = np.isin(np.arange(52), STYLE)
    gain = np.where(np.isin(np.arange(52), LOWER), 2.0, 0.5) * np.where(style, 0.2, 1.0)
    np.testing.assert_allclose(out, np.clip(x.astype(np.float64) * gain, 0, 1), atol=1e-7)
    assert out.max() == 1.0, "a strength over 1 clips at 1"
    # expression strength reaches the style shapes only
    out = apply(FaceControls(expression_strength=0.0), x)
    assert not out[:, STYLE].any() and np.array_equal(out[:, ~style], x[:, ~style])


@pytest.mark.parametrize("offset", [0.1, -0.1, 0.3, -0.3])
def test_the_lip_offset_moves_open_lips_and_leaves_seals_sealed(offset: float) -> None:
    x = curves(1000)
    out = apply(FaceControls(lip_offset=offset), x)
    others = [i for i in range(52) if i != CLOSE]
    assert np.array_equal(out[:, others], x[:, others]), "only mouthClose changes"
    gap, new_gap = x[:, JAW] - x[:, CLOSE], out[:, JAW] - out[:, CLOSE]
    sealed = gap <= 0
    assert sealed.sum() >= 200 and np.array_equal(out[sealed, CLOSE], x[sealed, CLOSE]), "sealed lips stay sealed"
    wide = (gap >= SEAL_GAP) & (x[:, CLOSE] - offset >= 0) & (x[:, CLOSE] - offset <= 1)
    assert wide.sum() > 50
    np.testing.assert_allclose(new_gap[wide], np.maximum(gap[wide] + offset, 0), atol=1e-6)
    assert (new_gap[~sealed] >= -1e-7).all(), "an offset never pushes the lips through each other"


def test_the_lip_offset_ramps_in_over_the_seal_threshold() -> None:
    """The new gap is continuous in the old one: no jump at a seal (gap 0) nor at SEAL_GAP."""
    gaps = np.linspace(-0.05, 0.1, 301)
    x = np.full((len(gaps), 52), 0.0, np.float32)
    x[:, JAW] = 0.5
    x[:, CLOSE] = 0.5 - gaps
    for offset in (0.2, -0.02):
        new_gap = (lambda o: o[:, JAW] - o[:, CLOSE])(apply(FaceControls(lip_offset=offset), x))
        assert np.abs(np.diff(new_gap)).max() < 0.025, f"offset {offset}: the gap jumps"
        assert new_gap[np.argmin(np.abs(gaps - 0.0))] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("fps", [30, 60])
def test_smoothing_has_the_documented_time_constant(fps: int) -> None:
    """A step in the model's output reaches 1 - 1/e of the way after tau seconds (the one-pole filter), in
    its own region only; the first frame starts where the model is (no fade-in from 0)."""
    tau = 0.2
    x = np.zeros((fps, 52), np.float32)
    x[:5] = 0.3
    x[5:] = 0.8
    out = apply(FaceControls(lower_smoothing_s=tau), x, fps)
    assert out[0, JAW] == pytest.approx(0.3, abs=1e-7)
    k = 5 + round(tau * fps) - 1  # tau * fps steps after the step (its first frame is one step)
    assert out[k, JAW] == pytest.approx(0.8 - 0.5 * math.exp(-1), abs=1e-6)
    assert np.array_equal(out[:, UPPER], x[:, UPPER]), "the upper face is not smoothed"
    assert smoothing_factor(0.0, fps) == 0.0


def test_any_chunking_gives_the_same_frames() -> None:
    c = FaceControls(
        lower_strength=1.3, upper_strength=0.7, lip_offset=0.05, lower_smoothing_s=0.05, upper_smoothing_s=0.3
    )
    x = curves(300)
    whole = apply(c, x)
    face = ControlsFilter(c, 30)
    cuts = [0, 1, 2, 7, 64, 65, 200, 300]
    parts = [face.process(x[a:b]) for a, b in itertools.pairwise(cuts)]
    assert np.array_equal(np.concatenate(parts), whole)
    face.reset()
    assert np.array_equal(face.process(x), whole), "reset starts the stream again"


def test_controls_out_of_range_are_one_line_naming_the_control() -> None:
    for name, (lo, hi) in LIMITS.items():
        for bad in (lo - 0.01, hi + 0.01, math.nan):
            with pytest.raises(A2BSError, match=f"'{name}' must be a number in"):
                FaceControls(**{name: bad}).check()
    with pytest.raises(A2BSError, match=r"frames of shape \(n, 52\)"):
        apply(FaceControls(), np.zeros((3, 51), np.float32))
    assert len(ARKIT_BLENDSHAPES) == len(LOWER) + len(UPPER)
