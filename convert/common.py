"""Shared by the CoreML and TFLite converters: artifact records and real-audio calibration data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from a2bs.core.audio import bundled_audio_dir, load_audio
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.constants import N_FFT, SAMPLE_RATE
from a2bs.core.emotion import emotion_features_at


class ConversionError(RuntimeError):
    """A converter failed; the message names the stage and, where known, the operator."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"conversion failed at stage {stage}: {message}")
        self.stage = stage


@dataclass
class ArtifactFile:
    """One model file written into a bundle (a `.mlpackage` folder counts as one file)."""

    path: Path  # relative to the bundle folder
    role: str  # "step" or "front_end"
    variant: str  # e.g. "fp16", "int8", "palettize4", "w8a8", "fp32", "dynamic_int8", "full_int8"
    precision: str  # human description, e.g. "fp16 weights, fp16 compute"
    notes: list[str] = field(default_factory=list)


@dataclass
class CalibrationSet:
    """Real inputs of the step and front-end models, recorded from offline inference on real speech."""

    step_inputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
    front_end_inputs: list[torch.Tensor]


@torch.no_grad()
def calibration_set(
    ckpt: Checkpoint, n_frames: int = 64, audio_files: list[Path] | None = None, seed: int = 0
) -> CalibrationSet:
    """Step inputs (mel_frames, context, emotion, previous) at `n_frames` frames spread over real speech.

    The context ring, previous frame and emotion vector are exactly what an app would hold at those
    frames (computed with the reference model), so activation ranges are the real ones."""
    from a2bs.core.inference import mel_windows
    from a2bs.core.model import smooth

    model, cfg = ckpt.model, ckpt.model.config
    files = audio_files or sorted(bundled_audio_dir().glob("*.wav"))
    rng = np.random.default_rng(seed)
    per_file = max(1, n_frames // len(files))
    step_inputs, front_inputs = [], []
    for path in files:
        audio = load_audio(path)
        n_out = -(-len(audio) * cfg.fps // SAMPLE_RATE)
        windows = torch.from_numpy(mel_windows(cfg, audio, n_out))
        mel = model.front_end(windows)  # (count, 80), oldest first
        emotion = torch.from_numpy(
            ckpt.emotion_stats.normalize(emotion_features_at(audio, len(audio) / SAMPLE_RATE)[None])
        )
        kv = model.encode_frames(mel[None])[0]  # encoded index t is mel index t + 2
        raw = model.forward_sequence(mel[None], model.emotion_context(emotion))[0]
        smoothed = smooth(raw, model.alpha)
        picks = np.sort(rng.choice(np.arange(1, n_out), size=min(per_file, n_out - 1), replace=False))
        n = cfg.context_frames
        history = cfg.step_mel_frames
        for k in picks:  # output k: encoded window k .. k+N-1, newest mel frame j = k+N+1
            step_inputs.append(
                (mel[k + n + 2 - history : k + n + 2][None].clone(), kv[k : k + n - 1][None].clone(),
                 emotion.clone(), smoothed[k - 1][None].clone())
            )  # fmt: skip
            front_inputs.append(windows[k + n + 1][None].clone())
    if not front_inputs:
        front_inputs = [torch.zeros(1, N_FFT)]
    return CalibrationSet(step_inputs, front_inputs)
