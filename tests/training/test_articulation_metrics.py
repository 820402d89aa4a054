"""The lip-seal and rest metrics of `a2bs.training.articulation` on hand-made curves (no model).

Each metric is checked against curves whose answer is known, including ones it must not count: lips that
stop short of sealing, bilabials too short to score, pauses too short or only partly inside the curves.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from a2bs.core.blendshapes import INDEX
from a2bs.training import articulation as A

FPS = 30
JAW, CLOSE = INDEX["jawOpen"], INDEX["mouthClose"]


def curves(seconds: float, jaw: float = 0.3, close: float = 0.0) -> np.ndarray:
    y = np.zeros((round(seconds * FPS), len(INDEX)), dtype=np.float32)
    y[:, JAW], y[:, CLOSE] = jaw, close
    return y


def set_span(y: np.ndarray, start: float, end: float, jaw: float, close: float) -> None:
    k0, k1 = math.ceil(start * FPS), math.floor(end * FPS)
    y[k0 : k1 + 1, JAW], y[k0 : k1 + 1, CLOSE] = jaw, close


# "ah p ah", the p from 0.5 to 0.6 s
PHONES = [("pau", 0.0, 0.2), ("aa", 0.2, 0.5), ("p", 0.5, 0.6), ("aa", 0.6, 1.0)]


def test_sealed_bilabial_gives_seal_one() -> None:
    y = curves(1.0)
    set_span(y, 0.5, 0.6, jaw=0.2, close=0.19)  # lips meet: gap 0.01
    gaps = A.bilabial_min_gaps(y, PHONES, FPS)
    assert gaps == pytest.approx([0.01], abs=1e-6)
    assert A.seal_rate(gaps) == 1.0
    assert A.overclosed_rate(gaps) == 0.0


def test_parted_lips_give_seal_zero() -> None:
    y = curves(1.0)
    set_span(y, 0.5, 0.6, jaw=0.2, close=0.1)  # gap 0.1: closing, never closed
    gaps = A.bilabial_min_gaps(y, PHONES, FPS)
    assert A.seal_rate(gaps) == 0.0
    assert A.overclosed_rate(gaps) == 0.0


def test_overclosed_bilabial_is_counted_and_seals() -> None:
    y = curves(1.0)
    set_span(y, 0.5, 0.6, jaw=0.08, close=0.42)  # the old PP viseme: gap -0.34
    gaps = A.bilabial_min_gaps(y, PHONES, FPS)
    assert A.overclosed_rate(gaps) == 1.0
    assert A.seal_rate(gaps) == 1.0  # it does reach the seal gap; over-closure is the separate fault


def test_gap_exactly_at_the_thresholds() -> None:
    assert A.seal_rate([A.SEAL_GAP]) == 1.0
    assert A.seal_rate([A.SEAL_GAP + 0.001]) == 0.0
    assert A.overclosed_rate([A.OVERCLOSED_GAP]) == 0.0
    assert A.overclosed_rate([A.OVERCLOSED_GAP - 0.001]) == 1.0


def test_closure_one_frame_outside_the_phone_counts_two_frames_do_not() -> None:
    # p from 0.5 to 0.6 s: frames 15..18 inside; 14 and 19 are the one frame either side
    for frame, counted in ((14, True), (19, True), (13, False), (20, False)):
        y = curves(1.0)
        y[frame, JAW], y[frame, CLOSE] = 0.2, 0.2
        assert A.seal_rate(A.bilabial_min_gaps(y, PHONES, FPS)) == float(counted), frame


def test_short_bilabials_and_other_phones_are_left_out() -> None:
    y = curves(1.0, jaw=0.2, close=0.2)  # everything sealed
    short = [("aa", 0.0, 0.5), ("b", 0.5, 0.535), ("aa", 0.535, 1.0)]  # 35 ms
    assert A.bilabial_min_gaps(y, short, FPS) == []
    assert math.isnan(A.seal_rate([])) and math.isnan(A.overclosed_rate([]))
    at_limit = [("aa", 0.0, 0.5), ("m", 0.5, 0.54), ("aa", 0.54, 1.0)]  # 40 ms
    assert len(A.bilabial_min_gaps(y, at_limit, FPS)) == 1
    no_bilabials = [("t", 0.0, 0.5), ("f", 0.5, 1.0)]
    assert A.bilabial_min_gaps(y, no_bilabials, FPS) == []


def test_bilabials_with_stress_digits_and_several_phones() -> None:
    y = curves(2.0)
    phones = [("aa1", 0.0, 0.5), ("B", 0.5, 0.6), ("aa", 0.6, 1.0), ("m", 1.0, 1.1), ("aa", 1.1, 2.0)]
    set_span(y, 0.5, 0.6, jaw=0.2, close=0.2)  # b seals, m does not
    assert A.seal_rate(A.bilabial_min_gaps(y, phones, FPS)) == 0.5


def test_pause_with_jaw_02_gives_rest_02_after_trimming() -> None:
    y = curves(2.0, jaw=0.2)
    phones = [("aa", 0.0, 0.5), ("pau", 0.5, 1.5), ("aa", 1.5, 2.0)]
    set_span(y, 0.5, 0.59, jaw=0.9, close=0.0)  # the jaw still open at the pause's edges: trimmed off
    set_span(y, 1.41, 1.5, jaw=0.9, close=0.0)
    pauses = A.pause_jaw(y, phones, FPS)
    assert len(pauses) == 1
    assert A.rest(pauses) == pytest.approx(0.2)
    assert A.rest(A.pause_jaw(curves(2.0, jaw=0.0), phones, FPS)) == 0.0


def test_untrimmed_edges_would_change_rest() -> None:
    # negative control of the trim: the same curve scored with no trim sees the open edges
    y = curves(2.0, jaw=0.2)
    phones = [("aa", 0.0, 0.5), ("pau", 0.5, 1.5), ("aa", 1.5, 2.0)]
    set_span(y, 0.5, 0.59, jaw=0.9, close=0.0)
    untrimmed = y[round(0.5 * FPS) : round(1.5 * FPS), JAW].mean()
    assert untrimmed > 0.25
    assert A.rest(A.pause_jaw(y, phones, FPS)) == pytest.approx(0.2)


def test_short_pauses_and_speech_are_not_rest() -> None:
    y = curves(2.0, jaw=0.5)
    phones = [("aa", 0.0, 0.5), ("pau", 0.5, 0.75), ("aa", 0.75, 1.0), ("sil", 1.0, 1.3), ("aa", 1.3, 2.0)]
    pauses = A.pause_jaw(y, phones, FPS)
    assert len(pauses) == 1  # the 250 ms pause is out, the 300 ms "sil" is in
    assert math.isnan(A.rest([]))
    assert A.pause_jaw(y, [("aa", 0.0, 2.0)], FPS) == []


def test_pause_past_the_curves_is_cut_or_left_out() -> None:
    y = curves(1.0, jaw=0.1)
    phones = [("aa", 0.0, 0.5), ("pau", 0.5, 1.2), ("pau", 1.5, 2.0)]
    pauses = A.pause_jaw(y, phones, FPS)
    assert len(pauses) == 1 and len(pauses[0]) == len(y) - math.ceil(0.6 * FPS)


def test_lead_rest_reads_the_prepended_second_only() -> None:
    y = curves(3.0, jaw=0.6)
    y[:FPS, JAW] = 0.05
    y[:3, JAW] = 1.0  # the first 100 ms are left out
    assert A.lead_rest(y, FPS) == pytest.approx(0.05)
    y[FPS - 1, JAW] = 0.95  # the last frame of the lead is in
    assert A.lead_rest(y, FPS) > 0.05
    with pytest.raises(ValueError):
        A.lead_rest(curves(0.5), FPS)


def test_lip_gap_is_jaw_minus_close() -> None:
    y = curves(0.1, jaw=0.3, close=0.3)
    assert np.allclose(A.lip_gap(y), 0.0)
    y[:, CLOSE] = 0.0
    assert np.allclose(A.lip_gap(y), 0.3)


def test_speaker_mean_bootstrap() -> None:
    items = {"a": [0.0] * 10, "b": [1.0] * 10}  # no spread within a speaker: the interval is the mean
    assert A.speaker_mean_bootstrap(items, A.seal_rate) == (0.5, 0.5)
    spread = {"a": [0.0, 0.0, 0.1, 0.1, 0.0, 0.1], "b": [0.0, 0.1] * 3}
    lo, hi = A.speaker_mean_bootstrap(spread, A.seal_rate)
    assert 0.0 <= lo < 1.0 and 0.0 < hi <= 1.0 and lo < hi
    assert all(math.isnan(v) for v in A.speaker_mean_bootstrap({}, A.seal_rate))
