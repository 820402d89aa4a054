"""The life layer: blinks, gaze, head motion and brow raises added to the model's 52 curves, read from the
speech's prosody, deterministic for a seed, the same on a whole file and frame by frame.

A model trained to the mean learns ~0 for what audio cannot predict (when a blink or a saccade happens),
so the face above the mouth would stay still. This layer adds it on top, as mature tools do, and writes
the 9 head and eye rotation columns of the Live Link Face CSV. It never touches the mouth, jaw, cheeks,
nose or tongue: only eye* and brow* shapes change.

Portable by design (docs/LIFE.md is the specification the Swift and Kotlin engines follow):
- every random number comes from SplitMix64 streams (`SplitMix64`), never from NumPy's generators;
- float64 arithmetic with +, -, *, /, sqrt, exp, log, sin and cos only;
- all state lives in one `LifeLayer`, updated frame by frame in a fixed order: feeding frames one at a
  time or all at once gives the same output;
- it is causal: output frame k uses the PCM window centred on k / fps (the front end's own window, half
  a window = 32 ms of look-ahead, inside the model's latency) and nothing later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core.audio import SampleWindow, frame_centers, stream_audio
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX, LIVE_LINK_FACE_ROTATIONS
from a2bs.core.constants import LIFE_MAX_SEED as MAX_SEED
from a2bs.core.constants import N_FFT, SAMPLE_RATE
from a2bs.core.errors import A2BSError, Fields, about

__all__ = [
    "LIFE_VERSION",
    "PRESETS",
    "RNG_NAME",
    "LifeLayer",
    "LifeParams",
    "SplitMix64",
    "bump",
    "life_chunks",
    "prosody_features",
]

LIFE_VERSION = 1  # the algorithm of docs/LIFE.md; a change of any rule or constant below changes it
RNG_NAME = "splitmix64"
N_SHAPES = len(ARKIT_BLENDSHAPES)
N_ROTATIONS = len(LIVE_LINK_FACE_ROTATIONS)
DEG = math.pi / 180.0

# --- SplitMix64 ----------------------------------------------------------------------------------------

_MASK = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_MUL1 = 0xBF58476D1CE4E5B9
_MUL2 = 0x94D049BB133111EB
# One stream per component, started at state seed * 4 + stream: adding a draw to one never shifts another.
BLINK, GAZE, HEAD, BROW = range(4)


class SplitMix64:
    """Steele, Lea & Flood's SplitMix64 (OOPSLA 2014) in uint64 arithmetic: state += 0x9E3779B97F4A7C15;
    z = state; z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9; z = (z ^ z >> 27) * 0x94D049BB133111EB;
    return z ^ z >> 31 (all mod 2^64). `uniform()` is (next() >> 11) * 2^-53, exactly representable in
    [0, 1): the same double in every language."""

    def __init__(self, state: int) -> None:
        self.state = state & _MASK

    def next(self) -> int:
        self.state = (self.state + _GAMMA) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * _MUL1) & _MASK
        z = ((z ^ (z >> 27)) * _MUL2) & _MASK
        return z ^ (z >> 31)

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        """lo + (hi - lo) * u, u = (next() >> 11) * 2^-53."""
        return lo + (hi - lo) * ((self.next() >> 11) * (1.0 / 9007199254740992.0))


# --- shapes in time --------------------------------------------------------------------------------------


def bump(t: Any, t0: float, t_peak: float, t_hold: float, t_end: float) -> Any:
    """0 before t0, raised-cosine rise to 1 at t_peak, 1 until t_hold, raised-cosine fall to 0 at t_end
    (a float, or an array of times). The blink's shape (a fast close, a slower open) and every envelope
    of the life layer; corpus/motion.py draws the training targets' blinks and brow raises with it."""
    if isinstance(t, float):  # the layer's frame loop: the same formula in plain floats
        rise = min(math.pi, max(0.0, math.pi * (t - t0) / max(t_peak - t0, 1e-6)))
        fall = min(math.pi, max(0.0, math.pi * (t - t_hold) / max(t_end - t_hold, 1e-6)))
        return (1 - math.cos(rise)) / 2 * ((1 + math.cos(fall)) / 2)
    rise = np.clip(np.pi * (np.subtract(t, t0)) / max(t_peak - t0, 1e-6), 0.0, np.pi)
    fall = np.clip(np.pi * (np.subtract(t, t_hold)) / max(t_end - t_hold, 1e-6), 0.0, np.pi)
    return (1 - np.cos(rise)) / 2 * ((1 + np.cos(fall)) / 2)


# --- parameters --------------------------------------------------------------------------------------------

Range = tuple[float, float]


@dataclass(frozen=True)
class LifeParams:
    """What the layer does, per preset (docs/LIFE.md cites the figures). Pairs are uniform ranges (lo, hi).
    Limits are wide enough for any character, narrow enough that nothing breaks.

    `amount` scales every motion amplitude (gaze, head, brows; the eyelids follow the gaze): 0 is the
    layer off (the input unchanged, no rotations), 1 the full preset. Blinks keep their human rate and
    shape at any amount above 0: a half-closed blink looks like a twitch, not a calmer face."""

    amount: float = field(default=1.0, metadata=about(0.0, 1.0, "scales every motion amplitude; 0: the layer off"))
    # blinks
    blink_rate_speaking: float = field(
        default=20.0,
        metadata=about(
            0.0, 60.0, "blinks a minute while speaking; the phrase-end blinks bring it to ~26 (Bentivoglio 1997)"
        ),
    )
    blink_rate_pause: float = field(
        default=17.0, metadata=about(0.0, 60.0, "blinks a minute in pauses (at rest: 17, Bentivoglio 1997)")
    )
    blink_phrase_end: float = field(
        default=0.4, metadata=about(0.0, 1.0, "chance of a blink when a phrase ends (Nakano & Kitazawa 2010)")
    )
    blink_close_s: Range = field(
        default=(0.06, 0.09), metadata=about(0.02, 0.5, "closing time, s (~100 ms: Stern et al. 1984)")
    )
    blink_hold_s: Range = field(default=(0.0, 0.03), metadata=about(0.0, 1.0, "time closed, s"))
    blink_open_ratio: Range = field(
        default=(1.4, 2.0),
        metadata=about(0.5, 5.0, "opening time / closing time: opening is slower (Sforza et al. 2008)"),
    )
    blink_amplitude: Range = field(default=(0.85, 1.0), metadata=about(0.0, 1.0, "eyeBlink at the closed moment"))
    blink_asymmetry: float = field(
        default=0.08, metadata=about(0.0, 0.5, "one eye (drawn at random) closes by up to this fraction less")
    )
    blink_refractory_s: float = field(
        default=0.4, metadata=about(0.0, 10.0, "at least this from one blink's end to the next one's start")
    )
    # gaze (conjugate, degrees; positive yaw: eyeLookOutRight / eyeLookInLeft; positive pitch: down)
    fixation_speaking_s: Range = field(
        default=(0.5, 2.0), metadata=about(0.1, 30.0, "time between small gaze shifts while speaking, s")
    )
    fixation_pause_s: Range = field(
        default=(0.8, 3.0), metadata=about(0.1, 30.0, "time between small gaze shifts in pauses, s")
    )
    face_yaw_deg: float = field(
        default=2.0, metadata=about(0.0, 15.0, "small shifts over the listener's face: yaw within +- this, deg")
    )
    face_pitch_deg: Range = field(
        default=(-1.0, 2.0), metadata=about(-15.0, 15.0, "their pitch, deg (up, down: the mouth is below the eyes)")
    )
    avert_probability: float = field(
        default=0.7, metadata=about(0.0, 1.0, "chance of looking away when a phrase starts (over 70 %: Kendon 1967)")
    )
    avert_deg: Range = field(
        default=(5.0, 12.0),
        metadata=about(0.0, 30.0, "how far, deg (natural saccades: mostly under 15, Bahill et al. 1975)"),
    )
    avert_hold_s: Range = field(
        default=(0.8, 2.0), metadata=about(0.1, 30.0, "how long before looking back (or at the phrase's end), s")
    )
    lid_follow_down: float = field(
        default=0.35,
        metadata=about(
            0.0, 1.0, "eyeBlink per unit of the layer's eyeLookDown (lid-eye coordination: Becker & Fuchs 1988)"
        ),
    )
    lid_follow_up: float = field(default=0.25, metadata=about(0.0, 1.0, "eyeWide per unit of the layer's eyeLookUp"))
    # head (degrees)
    drift_yaw_deg: float = field(
        default=1.5, metadata=about(0.0, 15.0, "slow sway: a new yaw knot within +- this every drift period, deg")
    )
    drift_pitch_deg: float = field(default=1.0, metadata=about(0.0, 15.0, "its pitch knots, deg"))
    drift_roll_deg: float = field(default=0.8, metadata=about(0.0, 15.0, "its roll knots, deg"))
    drift_period_s: Range = field(
        default=(1.2, 2.8), metadata=about(0.2, 30.0, "time between knots, s (raised-cosine in between)")
    )
    drift_pause_scale: float = field(
        default=0.5, metadata=about(0.0, 1.0, "knots drawn in pauses are this much smaller")
    )
    head_gaze_share: float = field(
        default=0.25, metadata=about(0.0, 1.0, "the head turns this share of the gaze target")
    )
    nod_probability: float = field(
        default=0.45, metadata=about(0.0, 1.0, "chance of a nod on a pitch accent (Hadar et al. 1983)")
    )
    nod_deg: float = field(default=2.5, metadata=about(0.0, 15.0, "a nod's pitch at accent strength 1, deg"))
    nod_down_s: float = field(default=0.15, metadata=about(0.02, 2.0, "its way down, s"))
    nod_up_s: float = field(default=0.3, metadata=about(0.02, 2.0, "its way back, s"))
    settle_deg: float = field(
        default=1.5, metadata=about(0.0, 15.0, "the settling nod when a phrase ends, deg (the sway eases to 30 %)")
    )
    settle_down_s: float = field(default=0.35, metadata=about(0.02, 3.0, "its way down, s"))
    settle_up_s: float = field(default=0.6, metadata=about(0.02, 3.0, "its way back, s"))
    head_limit_deg: float = field(
        default=10.0, metadata=about(0.0, 45.0, "every head angle is clamped to +- this, deg")
    )
    # brows
    brow_probability: float = field(
        default=0.35, metadata=about(0.0, 1.0, "chance of a brow raise on a pitch accent (Krahmer & Swerts 2007)")
    )
    brow_amplitude: float = field(
        default=0.45, metadata=about(0.0, 1.0, "browInnerUp at accent strength 1 (browOuterUp: 0.8 of it)")
    )
    brow_attack_s: float = field(default=0.12, metadata=about(0.02, 2.0, "its rise, s"))
    brow_hold_s: float = field(default=0.1, metadata=about(0.0, 2.0, "its hold, s"))
    brow_release_s: float = field(default=0.35, metadata=about(0.02, 3.0, "its fall, s"))

    def to_json(self) -> dict[str, Any]:
        """The manifest's `life.params`: numbers, and [lo, hi] lists for ranges."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Any, where: str, prefix: str = "life.params.") -> LifeParams:
        """Checked like every manifest key: each parameter present, a number (or [lo, hi] with lo <= hi)
        inside its limits; an unknown key is refused too. One-line A2BSError naming the key otherwise."""
        f = Fields(data, where, A2BSError, prefix)
        f.only(LIMITS, "a life-layer parameter")
        values: dict[str, Any] = {}
        for name, (lo, hi) in LIMITS.items():
            if name in RANGES:
                pair = f.numbers(name, 2, lo, hi)
                if pair[0] > pair[1]:
                    raise A2BSError(f"{where}: '{prefix}{name}' must be [lo, hi] with lo <= hi, got {pair}")
                values[name] = (pair[0], pair[1])
            else:
                values[name] = f.number(name, lo, hi)
        return cls(**values)

    def check(self) -> LifeParams:
        """Raise A2BSError if a value is outside its limits (parameters built in code)."""
        return LifeParams.from_json(self.to_json(), "life parameters", "")


LIMITS: dict[str, tuple[float, float]] = {f.name: f.metadata["limits"] for f in fields(LifeParams)}
DOCS: dict[str, str] = {f.name: f.metadata["doc"] for f in fields(LifeParams)}
RANGES = frozenset(f.name for f in fields(LifeParams) if isinstance(f.default, tuple))

PRESETS: dict[str, LifeParams] = {
    "natural": LifeParams(),
    # half the motion, fewer looks away and accent gestures; the same blinks
    "subtle": LifeParams(amount=0.5, avert_probability=0.4, nod_probability=0.3, brow_probability=0.25),
}


def preset(name: str) -> LifeParams | None:
    """`off` -> None (no layer); `subtle` / `natural` -> their parameters."""
    if name == "off":
        return None
    if name not in PRESETS:
        raise A2BSError(f"unknown life preset {name!r}: use off, subtle or natural")
    return PRESETS[name]


def manifest_section(params: LifeParams) -> dict[str, Any]:
    """The manifest's `life` section: what the apps' layer runs with (and which algorithm and RNG)."""
    return {"version": LIFE_VERSION, "rng": RNG_NAME, "params": params.to_json()}


def params_from_manifest(section: Any, where: str) -> LifeParams:
    """The manifest's `life` section, checked (version, RNG, every parameter): one line naming the key."""
    f = Fields(section, where, A2BSError, "life.")
    f.int("version", LIFE_VERSION, LIFE_VERSION)
    f.str("rng", choices=(RNG_NAME,))
    return LifeParams.from_json(f.obj("params").data, where)


# --- prosody: one PCM window -> level and pitch ---------------------------------------------------------

F0_MIN, F0_MAX = 60.0, 400.0
TAU_MIN = int(SAMPLE_RATE / F0_MAX)  # 40 samples
TAU_MAX = int(SAMPLE_RATE / F0_MIN)  # 266 samples
YIN_W = N_FFT - TAU_MAX  # 758 samples compared at every lag
YIN_THRESHOLD = 0.25  # de Cheveigne & Kawahara 2002 use 0.1-0.2 for pitch; higher finds more voiced frames
_LN10 = math.log(10.0)
_BLOCK = 16  # windows per pass of `prosody_features` (its float64 FFT temporaries: ~1 MB)


def prosody_features(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(level_db, tau) per window of N_FFT samples (float64 math): the mean square in dB
    (10 log10(mean(x^2) + 1e-10)) and YIN's period in samples (0: unvoiced). YIN: d(tau) = sum over
    j < YIN_W of (x[j] - x[j + tau])^2 for tau = 1..TAU_MAX, d'(tau) = d(tau) tau / sum_{i<=tau} d(i),
    the first tau in [TAU_MIN, TAU_MAX] with d' < YIN_THRESHOLD, then on while d' keeps falling.
    Computed here with FFTs (the same sums to ~1e-12); an app may loop."""
    windows = np.asarray(windows).reshape(-1, N_FFT)
    if len(windows) > _BLOCK:  # bounded temporaries (~2 MB) whatever the chunk
        parts = [prosody_features(windows[i : i + _BLOCK]) for i in range(0, len(windows), _BLOCK)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    x = windows.astype(np.float64)
    energy = np.einsum("ij,ij->i", x, x) / N_FFT
    level_db = 10.0 * np.log(energy + 1e-10) / _LN10
    if not len(x):
        return level_db, np.zeros(0, np.int64)
    # r(tau) = sum_{j < YIN_W} x[j] x[j + tau]: a circular correlation of size N_FFT never wraps (j + tau < N_FFT)
    spectrum = np.fft.rfft(x)
    head = np.fft.rfft(x[:, :YIN_W], N_FFT)
    r = np.fft.irfft(np.conj(head) * spectrum, N_FFT)[:, 1 : TAU_MAX + 1]
    sq = np.concatenate([np.zeros((len(x), 1)), np.cumsum(x * x, axis=1)], axis=1)
    taus = np.arange(1, TAU_MAX + 1)
    d = np.maximum(sq[:, YIN_W, None] + (sq[:, taus + YIN_W] - sq[:, taus]) - 2.0 * r, 0.0)
    total = np.cumsum(d, axis=1)
    cmnd = np.where(total > 0, d * taus / np.where(total > 0, total, 1.0), 1.0)
    # the first lag under the threshold, then on down to its local minimum
    below = cmnd[:, TAU_MIN - 1 :] < YIN_THRESHOLD
    first = TAU_MIN - 1 + np.argmax(below, axis=1)
    lags = np.arange(TAU_MAX - 1)
    turning = (cmnd[:, 1:] >= cmnd[:, :-1]) & (lags >= first[:, None])
    minimum = np.where(turning.any(axis=1), np.argmax(turning, axis=1), TAU_MAX - 1)
    tau = np.where(below.any(axis=1), minimum + 1, 0).astype(np.int64)
    return level_db, tau


# --- prosody: frame by frame -> speech, pauses, phrase ends, accents ------------------------------------

LEVEL_FLOOR_DB = -100.0
FLOOR_RISE_DB_S = 2.0  # the noise floor follows a quieter frame at once and rises this fast
PEAK_FALL_DB_S = 4.0  # the speech peak follows a louder frame at once and falls this fast
SPEECH_OVER_FLOOR_DB = 10.0
SPEECH_UNDER_PEAK_DB = 35.0
SPEECH_MIN_DYNAMIC_DB = 15.0  # peak - floor below this: no speech at all (steady noise)
SPEECH_MIN_DB = -70.0
PAUSE_S = 0.3  # this much below the threshold ends a phrase
MIN_PHRASE_S = 0.5  # a phrase end needs this much speech before it
PITCH_TAU_S = 2.0  # running mean / variance of the voiced pitch and of the speech level
OCTAVE_GUARD_ST = 9.0  # a pitch this far from the running mean is an octave error: ignored
MIN_VOICED_S = 0.05
ACCENT_Z = 1.0
ACCENT_GAP_S = 0.5


def _frames(seconds: float, fps: int) -> int:
    return int(seconds * fps + 0.5)


class _Prosody:
    """The causal speech / pause / accent tracker (docs/LIFE.md, "Prosody")."""

    def __init__(self, fps: int) -> None:
        self.fps = fps
        self.pause_frames = _frames(PAUSE_S, fps)
        self.min_phrase_frames = _frames(MIN_PHRASE_S, fps)
        self.min_voiced_frames = max(1, _frames(MIN_VOICED_S, fps))
        self.accent_gap_frames = _frames(ACCENT_GAP_S, fps)
        self.a = 1.0 - math.exp(-1.0 / (fps * PITCH_TAU_S))
        self.k = -1  # the frame being updated
        self.floor = self.peak = math.nan
        self.speaking = False
        self.phrase_start = self.last_active = 0  # frames
        self.pitch_mean = self.pitch_var = math.nan
        self.level_mean = self.level_var = math.nan
        self.voiced_run = 0
        self.score = -math.inf
        self.last_accent = -(1 << 30)

    def update(self, level: float, tau: int) -> tuple[bool, bool, float]:
        """The next frame: (a phrase started, a phrase ended, accent strength or 0); sets `speaking`."""
        self.k += 1
        k = self.k
        level = max(level, LEVEL_FLOOR_DB)
        if math.isnan(self.floor):
            self.floor = self.peak = level
        self.floor = level if level < self.floor else min(level, self.floor + FLOOR_RISE_DB_S / self.fps)
        self.peak = level if level > self.peak else max(level, self.peak - PEAK_FALL_DB_S / self.fps)
        threshold = max(self.floor + SPEECH_OVER_FLOOR_DB, self.peak - SPEECH_UNDER_PEAK_DB, SPEECH_MIN_DB)
        active = level > threshold and self.peak - self.floor >= SPEECH_MIN_DYNAMIC_DB
        started = ended = False
        if active:
            if not self.speaking:
                self.speaking, started, self.phrase_start = True, True, k
            self.last_active = k
        elif self.speaking and k - self.last_active >= self.pause_frames:
            self.speaking = False
            ended = self.last_active - self.phrase_start + 1 >= self.min_phrase_frames
        # accents: a voiced frame well above this speaker's running pitch (and level)
        score = -math.inf
        if active and tau > 0:
            st = 12.0 * math.log(SAMPLE_RATE / tau / 100.0) / math.log(2.0)
            if math.isnan(self.pitch_mean):
                self.pitch_mean, self.pitch_var = st, 9.0
            if abs(st - self.pitch_mean) <= OCTAVE_GUARD_ST:
                self.voiced_run += 1
                if self.voiced_run >= self.min_voiced_frames and not math.isnan(self.level_mean):
                    z_pitch = (st - self.pitch_mean) / math.sqrt(max(self.pitch_var, 1.0))
                    z_level = (level - self.level_mean) / math.sqrt(max(self.level_var, 9.0))
                    score = min(z_pitch, 3.0) + 0.5 * min(z_level, 3.0)
                delta = st - self.pitch_mean
                self.pitch_mean += self.a * delta
                self.pitch_var += self.a * (delta * delta - self.pitch_var)
            else:
                self.voiced_run = 0
        else:
            self.voiced_run = 0
        if active:
            if math.isnan(self.level_mean):
                self.level_mean, self.level_var = level, 36.0
            delta = level - self.level_mean
            self.level_mean += self.a * delta
            self.level_var += self.a * (delta * delta - self.level_var)
        accent = 0.0
        if score >= ACCENT_Z > self.score and k - self.last_accent >= self.accent_gap_frames:
            accent = min(1.0, 0.5 + 0.5 * (score - ACCENT_Z))
            self.last_accent = k
        self.score = score
        return started, ended, accent


# --- the layer ------------------------------------------------------------------------------------------------

# Live Link Face's eye rotations against its eyeLook shapes (radians per unit of shape), fitted on public
# Live Link Face recordings (docs/LIFE.md): LeftEyeYaw = 0.6 (eyeLookOutRight - eyeLookInRight),
# RightEyeYaw = 0.6 (eyeLookInLeft - eyeLookOutLeft), pitch = 0.61 eyeLookDown - 0.437 eyeLookUp.
YAW_PER_UNIT = 0.6
DOWN_PER_UNIT = 0.61
UP_PER_UNIT = 0.437
SACCADE_S = 0.021  # saccade duration = SACCADE_S + SACCADE_S_PER_DEG * amplitude (main sequence)
SACCADE_S_PER_DEG = 0.0022
HEAD_FOLLOW_S = 0.3  # the head's share of a gaze aversion follows with this time constant
BROW_WIDE = 0.1  # eyeWide per unit of brow raise
BROW_OUTER = 0.8  # browOuterUp per unit of brow raise (browInnerUp takes 1)
LIFE_SHAPES = tuple(n for n in ARKIT_BLENDSHAPES if n.startswith(("eye", "brow")))

_I = INDEX
_INNER = _I["browInnerUp"]
_LIFE = tuple(_I[n] for n in LIFE_SHAPES)
_SIDE_SHAPES = ("eyeLookIn", "eyeLookOut", "eyeLookDown", "eyeLookUp", "eyeBlink", "eyeWide", "browOuterUp")
_EYE_SIDES = tuple(tuple(_I[name + side] for name in _SIDE_SHAPES) for side in ("Left", "Right"))


@dataclass
class Event:
    """A logged event for tests and benchmarks: blink (duration, close / open time), saccade (duration,
    amplitude in degrees), aversion (amplitude), nod and brow (duration, amplitude), phrase_start,
    phrase_end, accent (strength), settle (duration, amplitude)."""

    kind: str
    frame: int
    duration_s: float = 0.0
    value: float = 0.0


class LifeLayer:
    """One stream's life layer. `process(curves, windows)` takes output frames in order, any number at a
    time, with the PCM window centred on each frame, and returns (curves with life, rotations): the same
    frames whatever the split. With `log`, `log` collects `Event`s and `speaking` the tracker's speech /
    pause state of every frame (for tests and benchmarks: memory grows with the stream)."""

    def __init__(self, params: LifeParams, fps: int, seed: int = 0, log: bool = False) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise A2BSError(f"the life layer's seed must be an integer in [0, {MAX_SEED}], got {seed!r}")
        self.params, self.fps, self.seed = params.check(), int(fps), seed
        self.logging = log
        self.reset()

    def reset(self) -> None:
        """Back to the start of a stream: the state the first frame sees."""
        p = self.params
        self.log: list[Event] = []
        self.speaking: list[bool] = []
        self.k = 0
        self.rng = [SplitMix64(self.seed * 4 + i) for i in range(4)]
        self.prosody = _Prosody(self.fps)
        dead = p.blink_refractory_s + _mid(p.blink_close_s) * (1.0 + _mid(p.blink_open_ratio)) + _mid(p.blink_hold_s)
        self.hazard = {
            True: _hazard(p.blink_rate_speaking / 60.0, dead) / self.fps,
            False: _hazard(p.blink_rate_pause / 60.0, dead) / self.fps,
        }
        # blink: (t0, t_closed, t_open, t_end, amplitude left, amplitude right); next allowed start
        self.blink: tuple[float, float, float, float, float, float] | None = None
        self.blink_allowed = 0.0
        # gaze (degrees): saccade from -> to, starting at sacc_t0 for sacc_s; next shift; averted or not
        self.gaze_from = (0.0, 0.0)
        self.gaze_to = (0.0, 0.0)
        self.sacc_t0, self.sacc_s = 0.0, 1e-6
        self.averted = False
        self.next_shift = self._fixation(False)
        # head (degrees): drift knots per axis between drift_t0 and drift_t0 + drift_s; followers; nods
        self.drift_from = (0.0, 0.0, 0.0)
        self.drift_to = self._drift_knots(False, 1.0)
        self.drift_t0, self.drift_s = 0.0, self.rng[HEAD].uniform(*p.drift_period_s)
        self.follow = (0.0, 0.0)
        self.follow_a = 1.0 - math.exp(-1.0 / (self.fps * HEAD_FOLLOW_S))
        self.nods: list[tuple[float, float, float, float]] = []  # (t0, t_peak, t_end, degrees)
        self.brows: list[tuple[float, float, float, float, float, float]] = []  # (t0, peak, hold, end, l, r)

    # --- draws ---------------------------------------------------------------------------------------------
    def _fixation(self, speaking: bool) -> float:
        p = self.params
        return self.rng[GAZE].uniform(*(p.fixation_speaking_s if speaking else p.fixation_pause_s))

    def _drift_knots(self, speaking: bool, scale: float) -> tuple[float, float, float]:
        p, r = self.params, self.rng[HEAD]
        s = scale * p.amount * (1.0 if speaking else p.drift_pause_scale)
        return (
            r.uniform(-1.0, 1.0) * p.drift_yaw_deg * s,
            r.uniform(-1.0, 1.0) * p.drift_pitch_deg * s,
            r.uniform(-1.0, 1.0) * p.drift_roll_deg * s,
        )

    def _saccade(self, t: float, target: tuple[float, float]) -> None:
        start = self._gaze(t)
        amplitude = math.sqrt((target[0] - start[0]) ** 2 + (target[1] - start[1]) ** 2)
        self.gaze_from, self.gaze_to = start, target
        self.sacc_t0, self.sacc_s = t, SACCADE_S + SACCADE_S_PER_DEG * amplitude
        if self.logging:
            self.log.append(Event("saccade", self.k, self.sacc_s, amplitude))

    def _face_target(self) -> tuple[float, float]:
        p, r = self.params, self.rng[GAZE]
        return (
            r.uniform(-p.face_yaw_deg, p.face_yaw_deg) * p.amount,
            r.uniform(*p.face_pitch_deg) * p.amount,
        )

    # --- state at time t ----------------------------------------------------------------------------------
    def _gaze(self, t: float) -> tuple[float, float]:
        s = min(1.0, max(0.0, (t - self.sacc_t0) / self.sacc_s))
        w = (1.0 - math.cos(math.pi * s)) / 2.0
        return (
            self.gaze_from[0] + (self.gaze_to[0] - self.gaze_from[0]) * w,
            self.gaze_from[1] + (self.gaze_to[1] - self.gaze_from[1]) * w,
        )

    def _drift(self, t: float) -> tuple[float, float, float]:
        s = min(1.0, max(0.0, (t - self.drift_t0) / self.drift_s))
        w = (1.0 - math.cos(math.pi * s)) / 2.0
        a, b = self.drift_from, self.drift_to
        return (a[0] + (b[0] - a[0]) * w, a[1] + (b[1] - a[1]) * w, a[2] + (b[2] - a[2]) * w)

    # --- one frame --------------------------------------------------------------------------------------------
    def _step(self, level: float, tau: int) -> tuple[float, ...]:
        """Update the state for frame self.k; its (blink L, blink R, brow L, brow R, eye yaw, eye pitch,
        head yaw, head pitch, head roll), angles in degrees, eyes in the head."""
        p, fps, k = self.params, self.fps, self.k
        t = k / fps
        started, ended, accent = self.prosody.update(level, tau)
        speaking = self.prosody.speaking
        if self.logging:
            self.speaking.append(speaking)
            for kind, happened in (("phrase_start", started), ("phrase_end", ended), ("accent", accent > 0)):
                if happened:
                    self.log.append(Event(kind, k, value=accent))

        # 1. blinks (stream 0): one draw every frame
        u = self.rng[BLINK].uniform()
        if self.blink is not None and t >= self.blink[3]:
            self.blink = None
        chance = self.hazard[speaking]
        if ended:
            chance = 1.0 - (1.0 - chance) * (1.0 - p.blink_phrase_end)
        if self.blink is None and t >= self.blink_allowed and u < chance:
            r = self.rng[BLINK]
            close = r.uniform(*p.blink_close_s)
            hold = r.uniform(*p.blink_hold_s)
            opening = close * r.uniform(*p.blink_open_ratio)
            amp = r.uniform(*p.blink_amplitude)
            weaker = 1.0 - r.uniform(0.0, p.blink_asymmetry)
            left_weaker = r.uniform() < 0.5
            self.blink = (
                t,
                t + close,
                t + close + hold,
                t + close + hold + opening,
                amp * (weaker if left_weaker else 1.0),
                amp * (1.0 if left_weaker else weaker),
            )
            self.blink_allowed = self.blink[3] + p.blink_refractory_s
            if self.logging:
                self.log.append(Event("blink", k, close + hold + opening, close / opening))
        blink_l = blink_r = 0.0
        if self.blink is not None:
            b = bump(t, *self.blink[:4])
            blink_l, blink_r = b * self.blink[4], b * self.blink[5]

        # 2. gaze (stream 1)
        r = self.rng[GAZE]
        if started and r.uniform() < p.avert_probability:
            amplitude = r.uniform(*p.avert_deg) * p.amount
            angle = r.uniform(0.0, 2.0 * math.pi)
            self._saccade(t, (amplitude * math.cos(angle), 0.6 * amplitude * math.sin(angle)))
            self.averted = True
            if self.logging:
                self.log.append(Event("aversion", k, value=amplitude))
            self.next_shift = t + r.uniform(*p.avert_hold_s)
        elif (ended and self.averted) or t >= self.next_shift:
            self._saccade(t, self._face_target())
            self.averted = False
            self.next_shift = t + self._fixation(speaking)
        gaze = self._gaze(t)

        # 3. head (stream 2)
        r = self.rng[HEAD]
        if ended:
            now = self._drift(t)
            self.drift_from, self.drift_to = now, (0.3 * now[0], 0.3 * now[1], 0.3 * now[2])
            self.drift_t0, self.drift_s = t, p.settle_down_s + p.settle_up_s
            amp = p.settle_deg * r.uniform(0.7, 1.3) * p.amount
            self.nods.append((t, t + p.settle_down_s, t + p.settle_down_s + p.settle_up_s, amp))
            if self.logging:
                self.log.append(Event("settle", k, p.settle_down_s + p.settle_up_s, amp))
        elif t >= self.drift_t0 + self.drift_s:
            self.drift_from = self.drift_to
            self.drift_to = self._drift_knots(speaking, 1.0)
            self.drift_t0, self.drift_s = self.drift_t0 + self.drift_s, r.uniform(*p.drift_period_s)
        if accent > 0 and r.uniform() < p.nod_probability:
            amp = p.nod_deg * accent * r.uniform(0.7, 1.3) * p.amount
            self.nods.append((t, t + p.nod_down_s, t + p.nod_down_s + p.nod_up_s, amp))
            if self.logging:
                self.log.append(Event("nod", k, p.nod_down_s + p.nod_up_s, amp))
        target = (self.gaze_to[0] * p.head_gaze_share, self.gaze_to[1] * p.head_gaze_share)
        a = self.follow_a
        self.follow = (
            self.follow[0] + a * (target[0] - self.follow[0]),
            self.follow[1] + a * (target[1] - self.follow[1]),
        )
        self.nods = [n for n in self.nods if t < n[2]]
        drift = self._drift(t)
        nod = 0.0
        for n in self.nods:
            nod += n[3] * bump(t, n[0], n[1], n[1], n[2])
        limit = p.head_limit_deg
        head = (
            _clamp(drift[0] + self.follow[0], limit),
            _clamp(drift[1] + self.follow[1] + nod, limit),
            _clamp(drift[2], limit),
        )

        # 4. brows (stream 3)
        r = self.rng[BROW]
        if accent > 0 and r.uniform() < p.brow_probability:
            amp = p.brow_amplitude * accent * r.uniform(0.7, 1.3) * p.amount
            side = r.uniform(0.85, 1.0)
            left_weaker = r.uniform() < 0.5
            t1 = t + p.brow_attack_s
            t2 = t1 + p.brow_hold_s
            self.brows.append(
                (
                    t,
                    t1,
                    t2,
                    t2 + p.brow_release_s,
                    amp * (side if left_weaker else 1.0),
                    amp * (1.0 if left_weaker else side),
                )
            )
            if self.logging:
                self.log.append(Event("brow", k, p.brow_attack_s + p.brow_hold_s + p.brow_release_s, amp))
        self.brows = [b for b in self.brows if t < b[3]]
        brow_l = brow_r = 0.0
        for b in self.brows:
            w = bump(t, b[0], b[1], b[2], b[3])
            brow_l, brow_r = max(brow_l, w * b[4]), max(brow_r, w * b[5])

        self.k += 1
        # the eyes in the head: the gaze less the head, so they stay on target as the head moves
        return (blink_l, blink_r, brow_l, brow_r, gaze[0] - head[0], gaze[1] - head[1], *head)

    def process(self, curves: np.ndarray, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames k .. k + n - 1 of the stream: `curves` (n, 52) from the model, `windows` (n, N_FFT) the
        16 kHz PCM centred on each frame's time (zeros outside the stream). Returns the (n, 52) float32
        curves (mouth, jaw, cheeks, nose and tongue exactly as given) and the (n, 9) float64 rotations in
        radians, Live Link Face order (HeadYaw, HeadPitch, HeadRoll, LeftEyeYaw, ...)."""
        curves = np.asarray(curves, dtype=np.float32)
        if curves.ndim != 2 or curves.shape[1] != N_SHAPES:
            raise A2BSError(f"the life layer takes frames of shape (n, {N_SHAPES}), got {curves.shape}")
        windows = np.asarray(windows)
        if not np.isfinite(windows).all():
            raise A2BSError("the life layer got NaN or infinite PCM samples")
        level, tau = prosody_features(windows)
        if len(level) != len(curves):
            raise A2BSError(f"the life layer got {len(curves)} frames and {len(level)} PCM windows")
        if self.params.amount == 0.0:  # off: the model's frames as they are, no rotations
            self.k += len(curves)
            return curves.copy(), np.zeros((len(curves), N_ROTATIONS))
        state = np.array([self._step(a, b) for a, b in zip(level.tolist(), tau.tolist(), strict=True)])
        return compose(curves, state.reshape(-1, 9), self.params)


def compose(curves: np.ndarray, state: np.ndarray, params: LifeParams) -> tuple[np.ndarray, np.ndarray]:
    """Frame by frame (each row on its own): the model's curves plus the layer's state (blink L / R,
    brow L / R, eye yaw / pitch in the head, head yaw / pitch / roll; degrees) -> (curves, rotations).
    Only eye* and brow* shapes change; every value stays in [0, 1]."""
    shapes = np.array(curves, dtype=np.float32)
    v = shapes.astype(np.float64)
    blink, brow = state[:, 0:2], state[:, 2:4]
    yaw, pitch = state[:, 4] * DEG, state[:, 5] * DEG
    toward = np.maximum(yaw, 0.0) / YAW_PER_UNIT  # eyeLookOutRight and eyeLookInLeft
    away = np.maximum(-yaw, 0.0) / YAW_PER_UNIT  # eyeLookInRight and eyeLookOutLeft
    down = np.maximum(pitch, 0.0) / DOWN_PER_UNIT
    up = np.maximum(-pitch, 0.0) / UP_PER_UNIT
    raised = np.maximum(brow[:, 0], brow[:, 1])
    wide = params.lid_follow_up * up + BROW_WIDE * raised
    out = v.copy()
    for i, (look_in, look_out, look_down, look_up, lid, widen, outer) in enumerate(_EYE_SIDES):
        gaze_in, gaze_out = (toward, away) if i == 0 else (away, toward)
        out[:, look_in] = v[:, look_in] + gaze_in
        out[:, look_out] = v[:, look_out] + gaze_out
        out[:, look_down] = v[:, look_down] + down
        out[:, look_up] = v[:, look_up] + up
        closing = np.minimum(1.0, blink[:, i] + params.lid_follow_down * down)
        out[:, lid] = v[:, lid] + (1.0 - v[:, lid]) * closing
        out[:, widen] = v[:, widen] + wide
        out[:, outer] = v[:, outer] + BROW_OUTER * brow[:, i]
    out[:, _INNER] = v[:, _INNER] + raised
    life = list(_LIFE)
    shapes[:, life] = np.clip(out[:, life], 0.0, 1.0)
    # the eye columns from the final shapes, as Live Link Face relates them (LeftEye* goes with the
    # Right shapes, RightEye* with the Left ones)
    o = shapes.astype(np.float64)
    rotations = np.zeros((len(o), N_ROTATIONS))
    rotations[:, :3] = state[:, 6:9] * DEG
    rotations[:, 3] = YAW_PER_UNIT * (o[:, _I["eyeLookOutRight"]] - o[:, _I["eyeLookInRight"]])
    rotations[:, 4] = DOWN_PER_UNIT * o[:, _I["eyeLookDownRight"]] - UP_PER_UNIT * o[:, _I["eyeLookUpRight"]]
    rotations[:, 6] = YAW_PER_UNIT * (o[:, _I["eyeLookInLeft"]] - o[:, _I["eyeLookOutLeft"]])
    rotations[:, 7] = DOWN_PER_UNIT * o[:, _I["eyeLookDownLeft"]] - UP_PER_UNIT * o[:, _I["eyeLookUpLeft"]]
    return shapes, rotations


def _mid(pair: Range) -> float:
    return (pair[0] + pair[1]) / 2.0


def _hazard(rate: float, dead: float) -> float:
    """Events per second that give `rate` per second when each event blocks the next for `dead` seconds."""
    return rate / max(1.0 - rate * dead, 0.05)


def _clamp(x: float, limit: float) -> float:
    return min(limit, max(-limit, x))


def life_chunks(
    chunks: Iterable[np.ndarray], audio: str | Path, layer: LifeLayer
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The layer over a file: each model chunk (n, 52) in order, with the file's PCM windows read as a
    stream beside it, gathered _BLOCK frames at a time (bounded memory); yields (curves, rotations) per chunk."""
    pcm = SampleWindow(stream_audio(audio))
    for chunk in chunks:
        shapes, rotations = [], []
        for i in range(0, len(chunk), _BLOCK):
            part = chunk[i : i + _BLOCK]
            centers = frame_centers(layer.k, len(part), layer.fps)
            windows = pcm.windows(centers)
            pcm.discard_before(int(centers[-1]) + 1 - N_FFT // 2)
            s, r = layer.process(part, windows)
            shapes.append(s)
            rotations.append(r)
        if not shapes:
            yield layer.process(chunk, np.zeros((0, N_FFT), np.float32))
            continue
        yield np.concatenate(shapes), np.concatenate(rotations)


def with_amount(params: LifeParams, amount: float) -> LifeParams:
    """`params` at another amount (the apps' slider): 0 is off."""
    return replace(params, amount=amount).check()
