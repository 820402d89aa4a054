"""Articulation scores: does the face make the right shape for each phone?

For two classes of phones (for example bilabials p b m against alveolars and velars), each phone is
scored by the mean of some shapes over the middle half of the phone, and the AUC between the two
classes says how well the shapes tell them apart (1 = always, 0.5 = chance). Used by training's
validation metrics and by `benchmarks/bench_articulation.py` (real speech with phone timings).

Phones are ARPAbet (lower case, optional stress digit; "ax" = unstressed AH, i.e. schwa, which no
contrast uses; "pau" = pause) or espeak-ng mnemonics (the synthetic corpus), which are mapped to the
same classes through their visemes (`a2bs.corpus.visemes.PHONEMES`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from a2bs.core.blendshapes import INDEX
from a2bs.core.constants import SEAL_GAP
from a2bs.corpus.visemes import ARPABET, PAUSES, PHONEMES

Phones = Sequence[tuple[str, float, float]]


@dataclass(frozen=True)
class Contrast:
    shapes: tuple[str, ...]
    positive: frozenset[str]  # ARPAbet phones whose score should be high
    negative: frozenset[str]


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


CONTRASTS: dict[str, Contrast] = {
    "jaw": Contrast(("jawOpen",), _set("aa ae ah ao aw ay"), _set("p b m")),
    "closure": Contrast(("mouthClose", "mouthPressLeft", "mouthPressRight"), _set("p b m"), _set("t d n k g s z l ng")),
    "rounding": Contrast(("mouthPucker", "mouthFunnel"), _set("uw uh ow oy w"), _set("iy ih ey eh ae")),
    "labiodental": Contrast(("mouthRollLower",), _set("f v"), _set("t d n k g s z l")),
}
# Targets on real speech (issue 26, raised from issue 10's 0.85 / 0.90): every contrast >= 0.88 (mean
# over speakers), their mean >= 0.92, and the jaw contrast at least 0.05 above plain loudness.
TARGET_EACH = 0.88
TARGET_MEAN = 0.92
TARGET_JAW_OVER_LOUDNESS = 0.05

# Short gestures whose timing is checked: the peak of the contrast's shapes near each phone.
TIMED = ("closure", "labiodental")


def is_espeak(phones: Phones) -> bool:
    """True for espeak-ng mnemonics (the synthetic corpus), False for ARPAbet."""

    return not all(p.lower().rstrip("012") in ARPABET for p, _, _ in phones)


def arpabet_class(phone: str, espeak: bool = False) -> str | None:
    """The ARPAbet base name a phone counts as (stress removed; espeak-ng phones through their viseme)."""
    if not espeak:
        # Schwa (Festival's "ax", CMUdict's AH0) is its own class, in no contrast: it is a weak, reduced
        # vowel that takes its neighbours' shape (docs/VISEMES.md), not an open vowel; the espeak-ng
        # side leaves it out too (docs/DECISIONS.md, "Schwa is not an open vowel").
        name = phone.lower()
        return "ax" if name == "ah0" else name.rstrip("012")

    spec = PHONEMES.get(phone)
    if spec is None or spec.dominance < 1.0 or spec.strength < 0.75:
        return None  # weak/reduced phones (schwa, glottal stop, h) are left out
    first = spec.parts[0][0]
    by_phone = {
        "p": "p",
        "b": "b",
        "m": "m",
        "f": "f",
        "v": "v",
        "t": "t",
        "d": "d",
        "n": "n",
        "l": "l",
        "k": "k",
        "g": "g",
        "N": "ng",
        "s": "s",
        "z": "z",
        "w": "w",
    }
    if phone in by_phone:
        return by_phone[phone]
    if len(spec.parts) > 1:  # diphthongs: aI -> ay, aU -> aw, oU/@U -> ow, OI -> oy, eI -> ey
        return {"aa+ih": "ay", "aa+ou": "aw", "oh+ou": "ow", "E+ou": "ow", "oh+ih": "oy", "E+ih": "ey"}.get(
            spec.visemes
        )
    return {"aa": "aa", "oh": "ao", "ou": "uw", "ih": "iy", "E": "eh"}.get(first)


def phone_scores(curves: np.ndarray, phones: Phones, fps: int, shapes: Sequence[str]) -> list[tuple[str, float]]:
    """(phone, mean of `shapes` over the middle half of the phone) for every phone with a frame in it."""
    idx = [INDEX[s] for s in shapes]
    y = curves[:, idx].sum(axis=1)
    out = []
    for phone, start, end in phones:
        a, b = start + 0.25 * (end - start), end - 0.25 * (end - start)
        k0, k1 = math.ceil(a * fps - 1e-9), math.floor(b * fps + 1e-9)
        if k1 < k0:  # shorter than a frame: the nearest frame to the centre
            k0 = k1 = round((start + end) / 2 * fps)
        if k0 < 0 or k1 >= len(y):
            continue
        out.append((phone, float(y[k0 : k1 + 1].mean())))
    return out


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    diff = np.asarray(positive, dtype=np.float64)[:, None] - np.asarray(negative, dtype=np.float64)[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def contrast_samples(
    curves: np.ndarray, phones: Phones, fps: int, espeak: bool = False
) -> dict[str, tuple[list[float], list[float]]]:
    """Per contrast, (positive scores, negative scores) of one utterance."""
    out = {}
    for name, c in CONTRASTS.items():
        pos, neg = [], []
        for phone, score in phone_scores(curves, phones, fps, c.shapes):
            cls = arpabet_class(phone, espeak)
            if cls in c.positive:
                pos.append(score)
            elif cls in c.negative:
                neg.append(score)
        out[name] = (pos, neg)
    return out


def contrast_pools(
    samples: Sequence[dict[str, tuple[list[float], list[float]]]],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per contrast, (positive scores, negative scores) of several utterances, pooled."""
    return {
        name: tuple(np.array([v for s in samples for v in s[name][side]], dtype=np.float64) for side in (0, 1))
        for name in CONTRASTS
    }


def contrast_aucs(samples: Sequence[dict[str, tuple[list[float], list[float]]]]) -> dict[str, float]:
    """AUC per contrast over several utterances' samples (pooled)."""
    return {name: auc(pos, neg) for name, (pos, neg) in contrast_pools(samples).items()}


def speaker_mean_interval(
    by_speaker: dict[str, Sequence[dict[str, tuple[list[float], list[float]]]]],
    reps: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Bootstrap interval of each contrast's mean over speakers and of the mean of the contrasts.

    Each replicate redraws, per speaker and contrast, its positive and its negative phone scores with
    replacement. A speaker with a handful of phones of a class (three short utterances) moves its AUC,
    and the mean over speakers, a lot: the interval says how far the figures can be read. Phones of
    one utterance are treated as independent, so the interval is, if anything, too narrow."""
    rng = np.random.default_rng(seed)
    pooled = {spk: contrast_pools(samples) for spk, samples in by_speaker.items()}
    draws = {name: np.empty(reps) for name in CONTRASTS}
    for r in range(reps):
        for name in CONTRASTS:
            values = [
                auc(rng.choice(pos, len(pos)), rng.choice(neg, len(neg))) if len(pos) and len(neg) else math.nan
                for pos, neg in (pools[name] for pools in pooled.values())
            ]
            draws[name][r] = np.nanmean(values) if not np.all(np.isnan(values)) else math.nan
    draws["mean_of_contrasts"] = np.mean([draws[name] for name in CONTRASTS], axis=0)
    tail = 100 * (1 - level) / 2
    return {k: (float(np.nanpercentile(v, tail)), float(np.nanpercentile(v, 100 - tail))) for k, v in draws.items()}


def peak_offsets_ms(curves: np.ndarray, phones: Phones, fps: int, contrast: str, espeak: bool = False) -> list[float]:
    """For each positive phone of `contrast`, (time of the shapes' peak within +-150 ms of the phone's
    centre) - (the centre), in ms. Positive: the face is late."""
    c = CONTRASTS[contrast]
    y = curves[:, [INDEX[s] for s in c.shapes]].sum(axis=1)
    reach = round(0.15 * fps)
    out = []
    for phone, start, end in phones:
        if arpabet_class(phone, espeak) not in c.positive:
            continue
        centre = (start + end) / 2
        k = round(centre * fps)
        lo, hi = max(0, k - reach), min(len(y), k + reach + 1)
        if hi - lo < 3:
            continue
        seg = y[lo:hi]
        j = int(np.argmax(seg))
        # Parabolic interpolation around the peak frame for sub-frame timing.
        frac = 0.0
        if 0 < j < len(seg) - 1:
            den = seg[j - 1] - 2 * seg[j] + seg[j + 1]
            frac = 0.5 * (seg[j - 1] - seg[j + 1]) / den if den < 0 else 0.0
        out.append(((lo + j + frac) / fps - centre) * 1000.0)
    return out


def loudness_jaw(audio: np.ndarray, fps: int, n_frames: int, sample_rate: int = 16_000) -> np.ndarray:
    """The loudness baseline: log-RMS over a 64 ms window at each frame time, min-max normalized,
    as a "jawOpen" curve (n_frames, 52) with every other shape 0."""
    half = int(0.032 * sample_rate)
    x = np.asarray(audio, dtype=np.float64)
    padded = np.pad(x, (half, half))
    power = np.cumsum(np.concatenate([[0.0], padded**2]))
    centres = np.round(np.arange(n_frames) * sample_rate / fps).astype(int) + half
    lo, hi = np.clip(centres - half, 0, len(padded)), np.clip(centres + half, 0, len(padded))
    rms = np.sqrt((power[hi] - power[lo]) / np.maximum(hi - lo, 1))
    level = np.log(rms + 1e-5)
    level = (level - level.min()) / max(level.max() - level.min(), 1e-9)
    curves = np.zeros((n_frames, len(INDEX)), dtype=np.float32)
    curves[:, INDEX["jawOpen"]] = level
    return curves


# ---- lip seal and rest ----------------------------------------------------------------------------
# In ARKit the lips meet when mouthClose is about jawOpen: a frame's lip gap is jawOpen - mouthClose.
# Targets (issue 26), on real speech as a mean over speakers.
BILABIALS = frozenset(("p", "b", "m"))
BILABIAL_MIN_S = 0.040  # shorter bilabials are left out: at 30 fps they may fall between two frames
OVERCLOSED_GAP = -0.08  # sealed: smallest gap <= SEAL_GAP; over-closed (lips pushed through each other): below this
PAUSE_MIN_S = 0.300  # pauses scored for rest
PAUSE_TRIM_S = 0.100  # trimmed at each edge of a pause (the mouth may still be closing or opening)
TARGET_SEAL = 0.90
TARGET_OVERCLOSED = 0.05
TARGET_REST = 0.03
# Per-speaker figures need this much behind them; speakers with fewer count in no mean.
MIN_BILABIALS_PER_SPEAKER = 5
MIN_PAUSES_PER_SPEAKER = 1


def lip_gap(curves: Any) -> Any:
    """jawOpen - mouthClose per frame: about 0 when the lips meet, negative when they are pressed through.
    Curves (..., 52), a NumPy array or a torch tensor (the training loss uses the same definition)."""
    return curves[..., INDEX["jawOpen"]] - curves[..., INDEX["mouthClose"]]


def bilabial_min_gaps(curves: np.ndarray, phones: Phones, fps: int, espeak: bool = False) -> list[float]:
    """The smallest lip gap of each p/b/m phone >= BILABIAL_MIN_S, over the frames inside the phone and
    one frame either side (a closure may peak just before or after the labelled boundary)."""
    gap = lip_gap(curves)
    out = []
    for phone, start, end in phones:
        if arpabet_class(phone, espeak) not in BILABIALS or end - start < BILABIAL_MIN_S - 1e-9:
            continue
        k0 = max(0, math.ceil(start * fps - 1e-9) - 1)
        k1 = min(len(gap) - 1, math.floor(end * fps + 1e-9) + 1)
        if k1 < k0:
            continue  # past the end of the curves
        out.append(float(gap[k0 : k1 + 1].min()))
    return out


def seal_rate(min_gaps: Sequence[float]) -> float:
    """Share of bilabials whose smallest lip gap reaches SEAL_GAP (nan without bilabials)."""
    return float(np.mean(np.asarray(min_gaps) <= SEAL_GAP)) if len(min_gaps) else math.nan


def overclosed_rate(min_gaps: Sequence[float]) -> float:
    """Share of bilabials whose smallest lip gap is below OVERCLOSED_GAP (nan without bilabials)."""
    return float(np.mean(np.asarray(min_gaps) < OVERCLOSED_GAP)) if len(min_gaps) else math.nan


def pause_jaw(curves: np.ndarray, phones: Phones, fps: int) -> list[np.ndarray]:
    """jawOpen over each pause >= PAUSE_MIN_S, PAUSE_TRIM_S trimmed at each edge (frames whose time is
    inside the trimmed pause; pauses past the end of the curves are left out)."""
    jaw = curves[:, INDEX["jawOpen"]]
    out = []
    for phone, start, end in phones:
        if phone not in PAUSES or end - start < PAUSE_MIN_S - 1e-9:
            continue
        k0 = math.ceil((start + PAUSE_TRIM_S) * fps - 1e-9)
        k1 = min(len(jaw) - 1, math.floor((end - PAUSE_TRIM_S) * fps + 1e-9))
        if k1 >= k0:
            out.append(np.asarray(jaw[k0 : k1 + 1], dtype=np.float64))
    return out


def rest(pauses: Sequence[np.ndarray]) -> float:
    """Mean jawOpen over the frames of the (trimmed) pauses (nan without pauses)."""
    return float(np.concatenate(pauses).mean()) if len(pauses) else math.nan


def lead_rest(curves: np.ndarray, fps: int, lead_s: float = 1.0, skip_s: float = 0.1) -> float:
    """Mean jawOpen over the first `lead_s` of a clip, its first `skip_s` left out: the rest of the mouth
    over non-speech sound prepended to a clip."""
    k0, k1 = math.ceil(skip_s * fps - 1e-9), math.ceil(lead_s * fps - 1e-9)
    if k1 > len(curves) or k1 <= k0:
        raise ValueError(f"curves of {len(curves)} frames have no {skip_s}-{lead_s} s lead at {fps} fps")
    return float(curves[k0:k1, INDEX["jawOpen"]].mean())


def speaker_mean_bootstrap(
    items: dict[str, Sequence[Any]],
    statistic: Callable[[Sequence[Any]], float],
    reps: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of the mean over speakers of `statistic` of each speaker's items (bilabials'
    smallest gaps, pauses' frames, clips' lead rests): each replicate redraws every speaker's items with
    replacement, as `speaker_mean_interval` does for the contrasts."""
    rng = np.random.default_rng(seed)
    kept = [list(v) for v in items.values() if len(v)]
    if not kept:
        return (math.nan, math.nan)
    draws = np.empty(reps)
    for r in range(reps):
        draws[r] = np.mean([statistic([v[i] for i in rng.integers(0, len(v), len(v))]) for v in kept])
    tail = 100 * (1 - level) / 2
    return (float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail)))
