"""Face controls: what an animator turns per character on top of the model's 52 curves (docs/CONTROLS.md).

Lower-face and upper-face strength, expression strength (the style-driven shapes), a lip-opening offset
and smoothing per region. Strength 0 everywhere gives the neutral face (every shape 0); the defaults give
the model's curves exactly, bit for bit. The life layer (`a2bs.core.life`, with its own `amount`) runs
after the controls, so blinks, gaze and head motion are set apart from these.

Portable by design (the Swift and Kotlin engines follow docs/CONTROLS.md and are replay-tested against
this module to 1e-6): float64 arithmetic with +, -, *, / and exp only, one state (the smoothing's last
frame) updated frame by frame, so a whole file and any chunking give the same frames.

Per frame, per shape i (x the model's value):
1. smoothing: y = x + a * (y_prev - x), a = exp(-1 / (tau * fps)) for the shape's region (a = 0 at tau 0);
   the first frame after a reset is y = x;
2. strength: v = clip(y * region strength * (expression strength if i is a style shape), 0, 1);
3. lip offset d: with gap g = jawOpen - mouthClose > 0 (open lips), g' = max(0, g + d * min(1, g / SEAL_GAP))
   and mouthClose = clip(jawOpen - g', 0, 1). Sealed lips (g <= 0) stay sealed whatever the offset, and the
   offset ramps in over the seal threshold so the gap stays continuous. Lips cannot open wider than the jaw.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX, LOWER_FACE, STYLE_SHAPES
from a2bs.core.constants import SEAL_GAP
from a2bs.core.errors import A2BSError, Fields, about

__all__ = ["CONTROLS_VERSION", "ControlsFilter", "FaceControls", "controls_from_manifest", "manifest_section"]

CONTROLS_VERSION = 1  # the algorithm above; a change of any rule changes it
N_SHAPES = len(ARKIT_BLENDSHAPES)
_LOWER = np.array([name in LOWER_FACE for name in ARKIT_BLENDSHAPES])
_STYLE = np.array([name in STYLE_SHAPES for name in ARKIT_BLENDSHAPES])
_JAW, _CLOSE = INDEX["jawOpen"], INDEX["mouthClose"]


@dataclass(frozen=True)
class FaceControls:
    """The controls' values; the defaults leave the model's curves as they are."""

    lower_strength: float = field(
        default=1.0, metadata=about(0.0, 2.0, "scales the jaw, mouth, tongue and cheekPuff; 0: at rest")
    )
    upper_strength: float = field(
        default=1.0, metadata=about(0.0, 2.0, "scales the eyes, brows, cheekSquint and noseSneer; 0: still")
    )
    expression_strength: float = field(
        default=1.0,
        metadata=about(0.0, 2.0, "scales the style-driven shapes (smile, frown, dimple, squints, eyeWide, sneer)"),
    )
    lip_offset: float = field(
        default=0.0,
        metadata=about(-0.3, 0.3, "added to the lip opening (jawOpen - mouthClose) where the lips are apart"),
    )
    lower_smoothing_s: float = field(
        default=0.0, metadata=about(0.0, 1.0, "extra smoothing of the lower face: time constant, s (0: none)")
    )
    upper_smoothing_s: float = field(
        default=0.0, metadata=about(0.0, 1.0, "extra smoothing of the upper face: time constant, s (0: none)")
    )

    def to_json(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str, prefix: str = "controls.params.") -> FaceControls:
        """Each control present, a number inside its limits, no unknown key: one A2BSError line naming the key."""
        f = Fields(data, where, A2BSError, prefix)
        f.only(LIMITS, "a face control")
        return cls(**{name: f.number(name, lo, hi) for name, (lo, hi) in LIMITS.items()})

    def check(self) -> FaceControls:
        """Raise A2BSError if a value is outside its limits (controls built in code or from the CLI)."""
        return FaceControls.from_json(self.to_json(), "face controls", "")


LIMITS: dict[str, tuple[float, float]] = {f.name: f.metadata["limits"] for f in fields(FaceControls)}
DOCS: dict[str, str] = {f.name: f.metadata["doc"] for f in fields(FaceControls)}


def manifest_section(controls: FaceControls) -> dict[str, Any]:
    """The manifest's `controls` section: the values the apps' sliders start at."""
    return {"version": CONTROLS_VERSION, "params": controls.to_json()}


def controls_from_manifest(section: Any, where: str) -> FaceControls:
    """The manifest's `controls` section, checked (version, every control): one line naming the key."""
    f = Fields(section, where, A2BSError, "controls.")
    f.int("version", CONTROLS_VERSION, CONTROLS_VERSION)
    return FaceControls.from_json(f.obj("params").data, where)


def smoothing_factor(tau_s: float, fps: int) -> float:
    """The one-pole filter's a for a time constant: exp(-1 / (tau * fps)); 0 (no smoothing) at tau 0."""
    return math.exp(-1.0 / (tau_s * fps)) if tau_s > 0.0 else 0.0


class ControlsFilter:
    """The controls over a stream of frames (its state: the smoothing's last frame)."""

    def __init__(self, controls: FaceControls, fps: int) -> None:
        self.controls = controls.check()
        c = self.controls
        lower, upper = smoothing_factor(c.lower_smoothing_s, fps), smoothing_factor(c.upper_smoothing_s, fps)
        self.a = np.where(_LOWER, lower, upper)
        self.gain = np.where(_LOWER, c.lower_strength, c.upper_strength) * np.where(_STYLE, c.expression_strength, 1.0)
        self.previous: np.ndarray | None = None

    def reset(self) -> None:
        self.previous = None

    def process(self, curves: np.ndarray) -> np.ndarray:
        """(n, 52) model frames -> (n, 52) float32 frames with the controls applied."""
        curves = np.asarray(curves, dtype=np.float32)
        if curves.ndim != 2 or curves.shape[1] != N_SHAPES:
            raise A2BSError(f"the face controls take frames of shape (n, {N_SHAPES}), got {curves.shape}")
        x = curves.astype(np.float64)
        if not self.a.any():  # no smoothing: y = x exactly, as the recursion with a = 0 gives
            y = x
            previous = x[-1] if len(x) else self.previous
        else:
            y = np.empty_like(x)
            previous = self.previous
            for k in range(len(x)):  # the recursion runs frame by frame
                previous = x[k] if previous is None else x[k] + self.a * (previous - x[k])
                y[k] = previous
        self.previous = None if previous is None else previous.copy()
        v = np.clip(y * self.gain, 0.0, 1.0)
        d = self.controls.lip_offset
        if d != 0.0:
            gap = v[:, _JAW] - v[:, _CLOSE]
            apart = gap > 0.0
            moved = np.maximum(0.0, gap + d * np.minimum(1.0, gap / SEAL_GAP))
            v[:, _CLOSE] = np.where(apart, np.clip(v[:, _JAW] - moved, 0.0, 1.0), v[:, _CLOSE])
        return v.astype(np.float32)
