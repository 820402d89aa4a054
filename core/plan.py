"""What an inference run will produce, known before any heavy work: the audio is readable, the options
make sense, the number of output frames (so outputs can be opened and checked before a model loads).
Torch-free: the LiteRT path of `a2bs infer` plans with it too."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from a2bs.core.audio import AudioInfo, n_output_frames, probe
from a2bs.core.errors import A2BSError


@dataclass(frozen=True)
class InferencePlan:
    """What a run will produce, known before any heavy work (so outputs can be opened and checked)."""

    info: AudioInfo
    fps: int
    n_frames: int
    stride: int
    emotion_refresh_s: float | None
    emotion_from: Path | None = None  # another clip whose emotion features steer the expression


def plan(
    path: str | Path,
    fps: int,
    stride: int = 1,
    emotion_refresh_s: float | None = None,
    emotion_from: str | Path | None = None,
) -> InferencePlan:
    info = probe(path)
    if stride < 1 or stride > fps:
        raise A2BSError(f"--stride must be between 1 and {fps} frames, got {stride}")
    if emotion_refresh_s is not None and not (math.isfinite(emotion_refresh_s) and emotion_refresh_s >= 1.0):
        raise A2BSError(f"--emotion-refresh must be a finite number of seconds, at least 1 (got {emotion_refresh_s})")
    if emotion_from is not None:
        if emotion_refresh_s is not None:
            raise A2BSError("--emotion-from gives one expression for the whole file: drop --emotion-refresh")
        emotion_from = Path(emotion_from)
        probe(emotion_from)
    return InferencePlan(info, fps, n_output_frames(info, fps), stride, emotion_refresh_s, emotion_from)
