"""Coarticulation: mouth, jaw and tongue curves from timed phones (Cohen-Massaro dominance blending).

Each articulatory segment (a phone, or a part of a diphthong) has a dominance that is flat (``alpha``)
inside the segment and falls off as a Gaussian before (anticipation, ``tau_before``) and after
(carry-over, ``tau_after``) it; the curve at time t is the dominance-weighted mean of the segments'
targets (`a2bs.corpus.visemes`), sampled at t = k / fps. Synthetic and aligned real speech share it.

The lips follow ARKit's semantics: they meet when mouthClose equals jawOpen. So mouthClose is not
blended on its own: the lip gap (jawOpen - mouthClose) is, and over a sealing segment (p, b, m) the
gap is multiplied by (1 - closure), where the closure is 1 inside the segment and falls off with its
own dominance shape outside; mouthClose = jawOpen - gap. A bilabial therefore seals however short it
is and whatever its neighbours (a dominance-weighted mean alone leaves a gap next to open vowels), and
mouthClose never exceeds jawOpen (no lips pushed through each other).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX
from a2bs.corpus.visemes import (
    DOMINANCE,
    PAUSE_FULL_S,
    PAUSE_MIN_S,
    PAUSES,
    SEALED_VISEMES,
    TAU_LEAD,
    UNKNOWN_PHONE,
    VISEME_TARGETS,
    phone_spec,
)

N = len(ARKIT_BLENDSHAPES)
_JAW, _CLOSE = INDEX["jawOpen"], INDEX["mouthClose"]
_BASELINE_DOMINANCE = 1e-3  # of the rest pose, everywhere (keeps the weighted mean defined)


def _target_vectors() -> dict[str, np.ndarray]:
    out = {}
    for vis, vals in VISEME_TARGETS.items():
        v = np.zeros(N, dtype=np.float64)
        for k, x in vals.items():
            v[INDEX[k]] = x
        out[vis] = v
    return out


def _as_gap(v: np.ndarray) -> np.ndarray:
    """A target with its mouthClose entry replaced by the lip gap jawOpen - mouthClose (what is blended)."""
    out = v.copy()
    out[..., _CLOSE] = v[..., _JAW] - v[..., _CLOSE]
    return out


_TARGETS = _target_vectors()
_REST_VEC = _TARGETS["sil"]
_REST_GAP_VEC = _as_gap(_REST_VEC)


@dataclass(frozen=True)
class ArticulationScale:
    """Per-utterance speaker style (scales of the mouth gestures)."""

    jaw: float = 1.0
    round: float = 1.0
    spread: float = 1.0
    asym: float = 0.0  # > 0: left side stronger


_ROUND = ("mouthPucker", "mouthFunnel")
_SPREAD = ("mouthStretchLeft", "mouthStretchRight", "mouthSmileLeft", "mouthSmileRight")


def _segments(
    phones: Sequence[tuple[str, float, float]], accent: str, style: ArticulationScale
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Counter]:
    """Articulatory segments: (n, 2) times, (n, 4) dominance params, (n, 52) targets with the lip gap in
    place of mouthClose, (n,) whether the segment seals the lips; unknown phone counts."""
    times, doms, targets, sealed = [], [], [], []
    unknown: Counter = Counter()
    scale = np.ones(N)
    scale[_JAW] = style.jaw
    scale[_CLOSE] = style.jaw  # the lip gap scales with the jaw: a sealed target stays sealed
    for k in _ROUND:
        scale[INDEX[k]] = style.round
    for k in _SPREAD:
        scale[INDEX[k]] = style.spread
    # A run of consecutive pause phones (e.g. espeak's "_:" then "_", then the padding) is one pause.
    run_len = [0.0] * len(phones)
    i = 0
    while i < len(phones):
        j = i
        while j < len(phones) and phones[j][0] in PAUSES:
            j += 1
        for k in range(i, j):
            run_len[k] = phones[j - 1][2] - phones[i][1]
        i = max(j, i + 1)
    for (name, t0, t1), pause_len in zip(phones, run_len, strict=True):
        if t1 <= t0:
            continue
        spec = phone_spec(name, accent)
        if spec is None:
            unknown[name] += 1
            spec = UNKNOWN_PHONE
        t = t0
        for vis, frac in spec.parts:
            te = t + frac * (t1 - t0)
            d = DOMINANCE[vis]
            alpha = d.alpha * spec.dominance
            if vis == "sil":
                alpha *= float(np.clip((pause_len - PAUSE_MIN_S) / (PAUSE_FULL_S - PAUSE_MIN_S), 0.0, 1.0))
            tgt = _TARGETS[vis] if vis == "sil" else spec.strength * scale * _TARGETS[vis]
            times.append((t, te))
            doms.append((alpha, d.tau_before, d.tau_after, d.lead))
            targets.append(_as_gap(tgt))
            sealed.append(vis in SEALED_VISEMES)
            t = te
    if not times:
        return np.zeros((0, 2)), np.zeros((0, 4)), np.zeros((0, N)), np.zeros(0, dtype=bool), unknown
    return np.array(times), np.array(doms), np.array(targets), np.array(sealed, dtype=bool), unknown


def phones_to_curves(
    phones: Sequence[tuple[str, float, float]],
    n_frames: int,
    fps: int,
    *,
    accent: str = "en-us",
    style: ArticulationScale | None = None,
) -> tuple[np.ndarray, Counter]:
    """Mouth/jaw/tongue curves (n_frames, 52) in [0, 1] from phone segments; frame k at time k / fps.

    Returns the curves and a Counter of phone names that are not in `PHONEMES`. mouthClose comes from
    the blended lip gap and the bilabials' closure (module docstring): 0 <= mouthClose <= jawOpen.
    """
    seg_t, seg_d, seg_y, seg_sealed, unknown = _segments(phones, accent, style or ArticulationScale())
    t = np.arange(n_frames, dtype=np.float64)[:, None] / fps
    if len(seg_t) == 0:
        return np.tile(_REST_VEC, (n_frames, 1)).astype(np.float32), unknown
    d_before = np.maximum(seg_t[None, :, 0] - t, 0.0)
    d_after = np.maximum(t - seg_t[None, :, 1], 0.0)
    shape = np.exp(-((d_before / seg_d[None, :, 1]) ** 2) - (d_after / seg_d[None, :, 2]) ** 2)
    lead = np.where(d_before > 0, seg_d[None, :, 3] * np.exp(-d_before / TAU_LEAD), 0.0)
    w = seg_d[None, :, 0] * (shape + lead)  # (frames, segments)
    num = w @ seg_y + _BASELINE_DOMINANCE * _REST_GAP_VEC
    den = w.sum(axis=1, keepdims=True) + _BASELINE_DOMINANCE
    curves = num / den
    gap = np.clip(curves[:, _CLOSE], 0.0, None)
    if seg_sealed.any():  # 1 inside a bilabial, its own dominance shape outside
        gap = gap * (1.0 - shape[:, seg_sealed].max(axis=1))
    curves = np.clip(curves, 0.0, 1.0)
    curves[:, _CLOSE] = np.clip(curves[:, _JAW] - gap, 0.0, 1.0)
    return curves.astype(np.float32), unknown
