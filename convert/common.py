"""The skeleton both converters (Core ML, LiteRT) share, so they build, check and save the same way.

A converter is one `Converter` call per variant: check the targets before any slow work, build the
step with the variant's `Recipe` (keyed by the variant's name in core/variants.py), check it against
PyTorch on real speech (`SelfCheck`, limits in core/parity.py), stage the files and move them into
place (`save_atomically`). Failures are `ConversionError`s naming the stage and, where known, the operator.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from a2bs.core.audio import bundled_audio_dir, load_audio
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.constants import N_FFT, SAMPLE_RATE
from a2bs.core.emotion import emotion_features_at
from a2bs.core.errors import one_line
from a2bs.core.files import replace_dir, staging_dir
from a2bs.core.progress import Progress
from a2bs.core.variants import platform_variants

CHECK_FRAMES = 8  # real-speech frames each converter checks its output on


class ConversionError(RuntimeError):
    """A converter failed; the message names the stage and, where known, the operator."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"conversion failed at stage {stage}: {message}")
        self.stage = stage


@dataclass(frozen=True)
class SelfCheck:
    """What a converter measured on a model before writing it (the parity column of the bundle README):
    absolute error of one output vs PyTorch over real-speech frames, and the runtime that computed it."""

    output: str  # "blendshapes" (step) or "mel" (front end)
    mae: float
    max_abs: float
    frames: int
    runtime: str  # e.g. "LiteRT interpreter", "NumPy MIL executor, fp16 compute"


@dataclass
class ArtifactFile:
    """One model file written into a bundle (a `.mlpackage` folder counts as one file)."""

    path: Path  # relative to the bundle folder
    role: str  # "step" or "front_end"
    variant: str  # e.g. "fp16", "int8", "palettize4", "w8a8", "fp32", "dynamic_int8", "full_int8"
    precision: str  # human description, e.g. "fp16 weights, fp16 compute"
    notes: list[str] = field(default_factory=list)
    check: SelfCheck | None = None  # None: reused from an earlier call, not measured by this one


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
                (
                    mel[k + n + 2 - history : k + n + 2][None].clone(),
                    kv[k : k + n - 1][None].clone(),
                    emotion.clone(),
                    smoothed[k - 1][None].clone(),
                )
            )
            front_inputs.append(windows[k + n + 1][None].clone())
    if not front_inputs:
        front_inputs = [torch.zeros(1, N_FFT)]
    return CalibrationSet(step_inputs, front_inputs)


class Converter(Protocol):
    """The entry point of each converter (`convert_coreml`, `convert_tflite`).

    Writes `<out_dir>/a2bs_step_<variant>.<ext>` and the bundle's one front end (fp32), and returns their
    records: the step, then the front end (reused, without a `check`, when an existing one was built
    from this checkpoint). Nothing existing is replaced unless `overwrite`. `calibration` (real-speech
    inputs) feeds the self-check and the calibrated variants; it is computed when missing. Raises
    ValueError for an unknown variant, ConversionError(stage) otherwise: stage "export", "convert",
    "quantize:<variant>" or "save"."""

    def __call__(
        self,
        ckpt: Checkpoint,
        variant: str,
        out_dir: Path,
        *,
        calibration: CalibrationSet | None = None,
        progress: Progress | None = None,
        overwrite: bool = False,
    ) -> list[ArtifactFile]: ...


@dataclass(frozen=True)
class Recipe:
    """How the step of one variant is made from the float model: an optional pass on the torch module
    before export (activation quantization calibrated on real speech), an optional pass on the converted
    float model (a Core ML program, or LiteRT's quantizer configured to return the ops kept float), the
    ops that prove the pass ran, and a note for the manifest."""

    before_export: Callable[[nn.Module, tuple[torch.Tensor, ...], CalibrationSet], nn.Module] | None = None
    after_convert: Callable[[Any], Any] | None = None
    adds_ops: frozenset[str] = frozenset()
    note: str = ""


def recipes_for(platform: str, recipes: dict[str, Recipe]) -> dict[str, Recipe]:
    """`recipes`, checked to hold exactly one recipe per variant of `platform` in core/variants.py."""
    names = list(platform_variants(platform))
    if sorted(recipes) != sorted(names):
        raise RuntimeError(f"{platform} recipes {sorted(recipes)} do not match the variant table {sorted(names)}")
    return recipes


def check_targets(step: Path, front_end: Path, overwrite: bool, front_end_matches: Callable[[Path], bool]) -> bool:
    """Before any slow work: refuse an existing step model unless `overwrite`. True when an existing front
    end is to be reused (it was built from this checkpoint); ConversionError("save") when it was built
    from another one and `overwrite` is not set."""
    if step.exists() and not overwrite:
        raise ConversionError("save", f"{step} exists: refusing to overwrite it (remove it or pass overwrite)")
    if overwrite or not front_end.exists():
        return False
    if not front_end_matches(front_end):
        raise ConversionError(
            "save",
            f"the front end {front_end} exists and was built from another checkpoint (mel statistics "
            "differ): refusing to overwrite it",
        )
    return True


def step_check_inputs(step: nn.Module, calibration: CalibrationSet) -> list[tuple[torch.Tensor, ...]]:
    """The step's check inputs: a random example first (any input range), then real-speech frames."""
    return [step.example_inputs(), *calibration.step_inputs[:CHECK_FRAMES]]


def front_end_check_inputs(front: nn.Module, calibration: CalibrationSet) -> list[tuple[torch.Tensor, ...]]:
    """The front end's check inputs: a random window, digital silence, then real-speech windows."""
    example = front.example_inputs()
    return [example, (torch.zeros_like(example[0]),), *((pcm,) for pcm in calibration.front_end_inputs[:CHECK_FRAMES])]


# --- failures ----------------------------------------------------------------------------------------

_OPERATOR_PATTERNS = (
    re.compile(r"Node number \d+ \((\w+)\)"),  # LiteRT prepare/invoke errors
    re.compile(r"\b((?:aten|quantized_decomposed|prims|quantized)(?:::|\.)[\w.]+)"),  # torch.export, lowering
    re.compile(r"'(tfl\.\w+)'"),  # MLIR legalization errors
    re.compile(r"[Uu]nsupported (?:fx node|op(?:erator)?|node)\s*[:'\"`]?\s*(\w+)"),
    re.compile(r"PyTorch convert function for op '(\w+)'"),
    re.compile(r"\bop(?:erator)?\s+['\"`](\w+)['\"`]"),
    re.compile(r"\b(?:op|operator|operation)\s+'?([A-Z][A-Z0-9_]{2,})'?"),
)


def describe(exc: BaseException) -> str:
    """A library's failure in one line: "operator X: " when the message names one, the exception's type
    and its message (cut at 600 characters)."""
    message = f"{type(exc).__name__}: {one_line(exc, 600)}"
    for pattern in _OPERATOR_PATTERNS:
        match = pattern.search(str(exc))
        if match:
            return f"operator {match.group(1)}: {message}"
    return message


@contextmanager
def stage(name: str, what: str = "") -> Iterator[None]:
    """Run one stage of a conversion: any failure becomes ConversionError(name, "<what>: <describe(exc)>")."""
    try:
        yield
    except ConversionError:
        raise
    except Exception as exc:
        raise ConversionError(name, f"{what}: {describe(exc)}" if what else describe(exc)) from exc


# --- saving ------------------------------------------------------------------------------------------


def write_file(path: Path, data: bytes) -> None:
    """Write `data` to a new file, readable by others (a model file is for the app to read), synced."""
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, 0o644)


def save_atomically(
    out_dir: Path,
    writers: dict[Path, Callable[[Path], None]],
    *,
    overwrite: bool = False,
    verify: Callable[[dict[Path, Path]], None] | None = None,
) -> None:
    """Write each target (a file, or a package folder) with its writer into one staging folder inside
    `out_dir`, run `verify` on the staged paths ({target: staged}), then move each into place. A
    target that exists (or appears meanwhile) is replaced only when `overwrite`; on any failure nothing
    is left behind: no half-written model, no staging folder."""
    with stage("save"):
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = staging_dir(out_dir / ".a2bs-convert")
    try:
        staged = {target: tmp / target.name for target in writers}
        with stage("save"):
            for target, write in writers.items():
                write(staged[target])
        if verify is not None:
            verify(staged)
        for target, path in staged.items():
            _publish(path, target, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(staged: Path, target: Path, overwrite: bool) -> None:
    """Move one staged file or folder to `target`; never replace an existing one unless `overwrite`."""
    try:
        if overwrite and staged.is_dir() and target.is_dir() and not target.is_symlink():
            replace_dir(staged, target)
        elif overwrite:
            os.replace(staged, target)
        elif staged.is_dir():
            if os.path.lexists(target):
                raise FileExistsError(target)
            os.rename(staged, target)
        else:
            try:
                os.link(staged, target)  # fails if `target` appeared meanwhile: no silent overwrite
            except FileExistsError:
                raise
            except OSError:  # no hard links on this file system: check, then rename
                if os.path.lexists(target):
                    raise FileExistsError(target) from None
                os.rename(staged, target)
    except FileExistsError as exc:
        raise ConversionError("save", f"{target} exists (it appeared during the conversion): not overwritten") from exc
    except OSError as exc:
        raise ConversionError("save", f"cannot write {target}: {exc}") from exc
