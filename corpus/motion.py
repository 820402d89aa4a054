"""Non-speech motion of a take: blinks, gaze, brow raises on accented vowels, jaw and mouth sway, and
the expression levels a speaking style (read from the take's eGeMAPS functionals) gives.

These layers make every one of the 52 streams carry something, and tie brows, eyes, smile, frown and
sneer to the features the model's emotion stream receives, so the model can learn them from it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX
from a2bs.core.life import bump
from a2bs.corpus.visemes import PAUSE_MIN_S, PAUSES, VOWEL_VISEMES, phone_spec

N = len(ARKIT_BLENDSHAPES)


def _smooth_noise(n: int, fps: int, rng: np.random.Generator, period_s: float) -> np.ndarray:
    """Smooth random signal in [-1, 1]: random knots every `period_s`, cosine-interpolated."""
    n_knots = max(2, math.ceil(n / fps / period_s) + 2)
    knots = rng.uniform(-1.0, 1.0, n_knots)
    pos = np.arange(n) / fps / period_s + rng.uniform(0.0, 1.0)
    i = np.minimum(pos.astype(int), n_knots - 2)
    f = pos - i
    f = (1.0 - np.cos(np.pi * f)) / 2.0
    return knots[i] * (1.0 - f) + knots[i + 1] * f


def _speech_activity(phones: Sequence[tuple[str, float, float]], t: np.ndarray) -> np.ndarray:
    """~1 while speaking, ~0 in pauses longer than PAUSE_MIN_S (smooth edges)."""
    y = np.zeros_like(t)
    for name, t0, t1 in phones:
        if name in PAUSES and t1 - t0 >= PAUSE_MIN_S:
            continue
        y = np.maximum(y, bump(t, t0 - 0.1, t0, t1, t1 + 0.1))
    return y


def _accents(
    phones: Sequence[tuple[str, float, float]], audio: np.ndarray, sr: int, accent: str, rng: np.random.Generator
) -> list[tuple[float, float, float]]:
    """Pitch-accent stand-ins: vowels with high energy x duration, at least 0.6 s apart -> (start, end, strength)."""
    vowels = []
    for name, t0, t1 in phones:
        spec = phone_spec(name, accent)
        if spec is None or spec.parts[0][0] not in VOWEL_VISEMES or spec.dominance < 1.0 or name in ("w", "j", "y"):
            continue
        seg = audio[int(t0 * sr) : max(int(t1 * sr), int(t0 * sr) + 1)]
        rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) if seg.size else 0.0
        vowels.append((t0, t1, math.log(rms + 1e-5) + 0.5 * math.log(t1 - t0 + 1e-3)))
    if not vowels:
        return []
    scores = np.array([v[2] for v in vowels])
    z = (scores - scores.mean()) / (scores.std() + 1e-6)
    out: list[tuple[float, float, float]] = []
    for (t0, t1, _), zi in sorted(zip(vowels, z, strict=True), key=lambda p: -p[1]):
        if zi < 0.5 or any(abs(t0 - a) < 0.6 for a, _, _ in out) or rng.random() > 0.75:
            continue
        out.append((t0, t1, float(min(1.0, 0.5 + 0.25 * zi))))
    return sorted(out)


# --- speaking style -> expression (the prosody curriculum) --------------------------------------------

# eGeMAPSv02 functionals the style is read from (index into the 88), with the reference mean and
# spread that turn them into z-scores: fixed numbers (measured once over real and espeak-ng speech,
# docs/VISEMES.md), so the rule is the same for every corpus and every user's data.
STYLE_FEATURES: dict[str, tuple[int, float, float]] = {
    "pitch_level": (0, 29.0, 4.5),  # F0semitoneFrom27.5Hz_sma3nz_amean (semitones)
    "pitch_range": (5, 3.7, 1.5),  # F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2 (semitones)
    "loudness_range": (11, 0.67, 0.13),  # loudness_sma3_stddevNorm (gain-independent)
    "rate": (81, 4.3, 0.9),  # loudnessPeaksPerSec (syllable rate)
}
Z_CLIP = 2.5


@dataclass(frozen=True)
class SpeakingStyle:
    """Utterance-level speaking style read from the emotion stream's own input (eGeMAPS), in z units.

    arousal: wide pitch range, lively loudness, fast -> brows up, eyes wide.
    tension: fast but flat -> brows down, squint, frown, sneer.
    brightness: high pitch -> smile (with arousal), less frown.
    Because the targets are a function of the features the emotion stream receives, a model can
    only reach them through that stream: the mel stream sees 8.5 s, not the 20 s functionals.
    """

    arousal: float = 0.0
    tension: float = 0.0
    brightness: float = 0.0

    @classmethod
    def from_egemaps(cls, functionals: np.ndarray) -> SpeakingStyle:
        """From the 88 eGeMAPSv02 functionals (the first 88 of the 264 emotion features)."""
        f = np.asarray(functionals, dtype=np.float64).reshape(-1)
        z = {
            k: float(np.clip((f[i] - m) / sd, -Z_CLIP, Z_CLIP)) if np.isfinite(f[i]) else 0.0
            for k, (i, m, sd) in STYLE_FEATURES.items()
        }
        return cls(
            arousal=(z["pitch_range"] + z["loudness_range"] + z["rate"]) / 3.0,
            tension=(z["rate"] - z["pitch_range"]) / 2.0,
            brightness=z["pitch_level"],
        )

    def levels(self) -> dict[str, float]:
        """The per-utterance expression levels this style gives (before blinks, accents and gaze)."""
        a, t, b = self.arousal, self.tension, self.brightness
        return {
            "brow_up": float(np.clip(0.10 + 0.08 * a, 0.0, 0.40)),
            "eye_wide": float(np.clip(0.03 + 0.04 * a, 0.0, 0.20)),
            "squint": float(np.clip(0.07 + 0.05 * t, 0.0, 0.25)),
            "brow_down": float(np.clip(0.04 + 0.05 * t, 0.0, 0.20)),
            "smile": float(np.clip(0.08 + 0.06 * b + 0.04 * a - 0.03 * t, 0.0, 0.40)),
            "frown": float(np.clip(0.03 + 0.04 * t - 0.03 * b, 0.0, 0.20)),
            "sneer": float(np.clip(0.02 + 0.03 * t, 0.0, 0.12)),
        }


def non_speech_motion(
    n: int,
    fps: int,
    phones: Sequence[tuple[str, float, float]],
    audio: np.ndarray,
    sr: int,
    accent: str,
    rng: np.random.Generator,
    style: SpeakingStyle,
) -> tuple[np.ndarray, np.ndarray]:
    """(additive layer, overriding-smile layer) for eyes, brows, cheeks, nose, smile, jaw sway.

    Blinks, gaze, accent brow raises and sway are random or tied to the phones; the levels of brows,
    eyes, smile, frown and sneer follow the speaking style (`SpeakingStyle.levels`)."""
    level_of = style.levels()
    t = np.arange(n, dtype=np.float64) / fps
    add = np.zeros((n, N))

    def put(name: str, y: np.ndarray | float) -> None:
        add[:, INDEX[name]] += y

    # Blinks: both eyes, every 2-6 s, 120-200 ms, fast close and slower opening.
    blink = np.zeros(n)
    t_last = float(t[-1]) if n else 0.0
    tb = rng.uniform(0.3, 3.0)
    while tb < t_last + 1.0:
        dur = rng.uniform(0.12, 0.20)
        blink = np.maximum(blink, rng.uniform(0.85, 1.0) * bump(t, tb, tb + 0.4 * dur, tb + 0.45 * dur, tb + dur))
        tb += dur + rng.uniform(2.0, 6.0)
    ratio = rng.uniform(0.94, 1.0)
    put("eyeBlinkLeft", blink)
    put("eyeBlinkRight", blink * ratio)
    # Gaze: conjugate, small, changing every 1-3 s with ~60 ms saccades.
    gx, gy = np.zeros(n), np.zeros(n)
    ts, x, y = 0.0, rng.normal(0, 0.06), rng.normal(-0.02, 0.05)
    while ts < t_last:
        te = ts + rng.uniform(1.0, 3.0)
        nx, ny = rng.normal(0, 0.07), rng.normal(-0.02, 0.05)
        ramp = np.clip((t - te) / 0.06, 0, 1)
        seg = t >= ts
        gx[seg] = (x + (nx - x) * ramp)[seg]
        gy[seg] = (y + (ny - y) * ramp)[seg]
        ts, x, y = te, nx, ny
    put("eyeLookOutLeft", np.clip(gx, 0, None))
    put("eyeLookInRight", np.clip(gx, 0, None))
    put("eyeLookInLeft", np.clip(-gx, 0, None))
    put("eyeLookOutRight", np.clip(-gx, 0, None))
    down = np.clip(-gy, 0, None) + 0.08 * blink
    for side in ("Left", "Right"):
        put(f"eyeLookUp{side}", np.clip(gy, 0, None))
        put(f"eyeLookDown{side}", down)
    # Brow raises on accented vowels (+ a little eye widening), on top of the style's brow level.
    brow = np.zeros(n)
    for t0, t1, s in _accents(phones, audio, sr, accent, rng):
        amp = s * rng.uniform(0.3, 0.6)
        brow = np.maximum(brow, amp * bump(t, t0 - 0.15, t0 + 0.5 * (t1 - t0), t1, t1 + rng.uniform(0.25, 0.45)))
    inner, outer = rng.uniform(0.8, 1.0), rng.uniform(0.6, 0.9)
    brow_up = np.clip(level_of["brow_up"] + brow, 0.0, 1.0)
    put("browInnerUp", inner * brow_up)
    put("browOuterUpLeft", outer * brow_up)
    put("browOuterUpRight", outer * brow_up * rng.uniform(0.9, 1.0))
    # Style levels: eye squint/wide, brows down (relaxed by accent raises).
    squint = level_of["squint"]
    put("eyeSquintLeft", squint + 0.1 * blink)
    put("eyeSquintRight", squint * rng.uniform(0.95, 1.05) + 0.1 * blink)
    put("eyeWideLeft", level_of["eye_wide"] + 0.15 * brow)
    put("eyeWideRight", level_of["eye_wide"] + 0.15 * brow)
    put("browDownLeft", level_of["brow_down"] * (1 - brow))
    put("browDownRight", level_of["brow_down"] * (1 - brow))
    # Smile: the style's level with a slow drift; cheeks, dimples and sneer follow.
    smile = np.clip(level_of["smile"] + 0.02 * _smooth_noise(n, fps, rng, rng.uniform(2.0, 5.0)), 0.0, 1.0)
    sl = smile * rng.uniform(0.95, 1.05)
    sr_ = smile * rng.uniform(0.95, 1.05)
    put("mouthFrownLeft", level_of["frown"])
    put("mouthFrownRight", level_of["frown"])
    put("cheekSquintLeft", 0.5 * sl)
    put("cheekSquintRight", 0.5 * sr_)
    put("mouthDimpleLeft", 0.25 * sl)
    put("mouthDimpleRight", 0.25 * sr_)
    put("noseSneerLeft", level_of["sneer"] + 0.1 * sl)
    put("noseSneerRight", level_of["sneer"] + 0.1 * sr_)
    # Jaw and mouth sway while speaking (still in pauses).
    act = _speech_activity(phones, t)
    sway = rng.uniform(0.02, 0.06) * _smooth_noise(n, fps, rng, 0.8) * act
    put("jawLeft", np.clip(sway, 0, None))
    put("jawRight", np.clip(-sway, 0, None))
    msway = rng.uniform(0.02, 0.06) * _smooth_noise(n, fps, rng, 0.6) * act
    put("mouthLeft", np.clip(msway, 0, None))
    put("mouthRight", np.clip(-msway, 0, None))
    smile_layer = np.zeros((n, N))
    smile_layer[:, INDEX["mouthSmileLeft"]] = sl
    smile_layer[:, INDEX["mouthSmileRight"]] = sr_
    return add, smile_layer
