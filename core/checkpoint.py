"""Checkpoints: a folder with `model.safetensors` (weights) and `config.json` (architecture, fps,
normalization statistics, provenance). Loading never unpickles anything.

Reading what a checkpoint says about itself (`read_header`: config.json and the weights' header, all
checked) needs no torch, so `a2bs info` starts fast; torch is imported by what builds or writes a model.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError, safe_open

from a2bs.core.architecture import ModelConfig, weight_shapes
from a2bs.core.audio import bundled_audio_dir, load_audio
from a2bs.core.constants import N_MELS, SUPPORTED_FPS
from a2bs.core.emotion import EmotionStats, emotion_features_at_times
from a2bs.core.errors import CheckpointError, Fields, read_json
from a2bs.core.files import temp_prefix

if TYPE_CHECKING:  # torch loads only where a model is built or written
    from a2bs.core.model import A2BSModel

FORMAT = "a2bs-checkpoint"
VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
# Fixed DFT / mel matrices are rebuilt from constants, and the mel statistics live in config.json.
_DERIVED_PREFIX = "front_end."


@dataclass
class Checkpoint:
    """A model ready for inference with everything needed to feed it."""

    model: A2BSModel
    emotion_stats: EmotionStats
    trained: bool
    source: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> int:
        return self.model.config.fps

    @property
    def name(self) -> str:
        """What a bundle records of where the weights came from: the folder's name (e.g. default-30fps), never
        the build machine's path; `fingerprint` identifies the weights themselves."""
        return Path(self.source).absolute().name  # absolute: `--checkpoint .` is named after the folder


@dataclass(frozen=True)
class CheckpointHeader:
    """A checkpoint as its files describe it, every part checked (config.json's fields; the weights' names,
    shapes and dtypes in the safetensors header against the config) with no weight read and no torch: what
    `a2bs info` reports, and the first half of `load_checkpoint`. The statistics are None only for the
    untrained fallback of `default_header`, which has no files (they are fitted when it is built)."""

    config: ModelConfig
    trained: bool
    source: str
    mel_stats: tuple[np.ndarray, np.ndarray] | None = None  # (mean, std) per mel bin
    emotion_stats: EmotionStats | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> int:
        return self.config.fps


def default_checkpoint_dir(fps: int) -> Path:
    """Where the bundled default checkpoint for `fps` lives inside the installed package."""
    return Path(str(resources.files("a2bs.core") / "assets" / "checkpoints" / f"default-{fps}fps"))


def save_checkpoint(ckpt: Checkpoint, path: str | Path, *, force: bool = False) -> Path:
    """Write atomically: build in a temp folder beside `path`, then rename."""
    from safetensors.torch import save_file

    target = Path(path)
    if target.exists() and not force:
        raise CheckpointError(f"{target} exists: pass --force to overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    mean, std = ckpt.model.front_end.stats()
    config = {
        "format": FORMAT,
        "version": VERSION,
        "model": ckpt.model.config.to_json(),
        "mel_stats": {"mean": mean.tolist(), "std": std.tolist()},
        "emotion_stats": ckpt.emotion_stats.to_json(),
        "trained": ckpt.trained,
        "info": ckpt.info,
    }
    weights = {
        k: v.detach().contiguous().clone()
        for k, v in ckpt.model.state_dict().items()
        if not k.startswith(_DERIVED_PREFIX)
    }
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target), dir=target.parent))
    try:
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT, "version": str(VERSION)})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _resolve(path: Path) -> Path:
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path} (pass a checkpoint folder with {CONFIG_FILE})")
    if path.is_file() and path.name in (CONFIG_FILE, WEIGHTS_FILE):
        path = path.parent
    if not path.is_dir():
        raise CheckpointError(f"{path} is not a checkpoint: expected a folder with {CONFIG_FILE} and {WEIGHTS_FILE}")
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (path / name).is_file():
            raise CheckpointError(f"checkpoint {path} has no {name}")
    return path


def read_header(path: str | Path) -> CheckpointHeader:
    """What a checkpoint folder (or its config.json / model.safetensors) says about itself, every part checked
    before it is used: config.json's types and ranges first, then the weights file's size and the names,
    shapes and dtypes of its header against the config. Reads no weight; CheckpointError if unusable."""
    folder = _resolve(Path(path))
    where = str(folder / CONFIG_FILE)
    config = Fields(read_json(folder / CONFIG_FILE, "a2bs checkpoint config", CheckpointError), where, CheckpointError)
    if config.data.get("format") != FORMAT:
        raise CheckpointError(f"{where} is not an a2bs checkpoint config ('format' is not {FORMAT!r})")
    if config.data.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint version {_short(config.data.get('version'))} is not supported (expected {VERSION})"
        )
    model_config = ModelConfig.from_json(config.data.get("model"), where)
    mel = config.obj("mel_stats")
    mel_mean = np.asarray(mel.numbers("mean", N_MELS, -1e3, 1e3), np.float32)
    mel_std = np.asarray(mel.numbers("std", N_MELS, 1e-6, 1e3), np.float32)
    emotion_stats = EmotionStats.from_json(config.obj("emotion_stats").data, where, "emotion_stats")
    trained = config.bool("trained", optional=True) or False
    info = config.data.get("info", {})
    if not isinstance(info, dict):
        raise CheckpointError(f"{where}: 'info' must be a JSON object")
    weights_path = folder / WEIGHTS_FILE
    expected = weight_shapes(model_config)
    _check_size(weights_path, expected)
    _check_header(weights_path, expected)
    return CheckpointHeader(model_config, trained, str(folder), (mel_mean, mel_std), emotion_stats, info)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a checkpoint folder (or its config.json / model.safetensors); CheckpointError if unusable.

    Nothing is trusted before it is checked: `read_header` first (config.json, then the weights' header
    against the config, no memory allocated for them), and only then are the weights read and the model built."""
    import torch
    from safetensors.torch import load_file

    from a2bs.core.model import A2BSModel

    header = read_header(path)
    assert header.mel_stats is not None and header.emotion_stats is not None  # read from the files
    weights_path = Path(header.source) / WEIGHTS_FILE
    try:
        weights = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{weights_path} is corrupt or not a safetensors file: {_short(exc)}") from None
    except MemoryError:
        raise CheckpointError(f"not enough memory to read {weights_path}: free some memory and try again") from None
    if not all(torch.isfinite(v).all() for v in weights.values()):
        raise CheckpointError(f"{weights_path} contains NaN or infinite weights")
    model = A2BSModel(header.config)
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    model.front_end.set_stats(*header.mel_stats)
    model.eval()
    return Checkpoint(model, header.emotion_stats, header.trained, header.source, header.info)


# safetensors' own limit on the JSON header in front of the weights
_MAX_HEADER_BYTES = 100_000_000


def _check_size(path: Path, expected: dict[str, tuple[int, ...]]) -> None:
    """The weights file can be no larger than the config's weights in the widest dtype plus a header:
    a bigger one (a 30 GB file, /dev/zero) is refused on its size, before safetensors maps it."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from None
    limit = 8 * sum(math.prod(shape) for shape in expected.values()) + 8 + _MAX_HEADER_BYTES
    if size > limit:
        raise CheckpointError(
            f"{path} is {size / 1e6:.0f} MB, more than the weights its config describes can take "
            f"({limit / 1e6:.0f} MB at most): not the weights of this checkpoint"
        )


def _check_header(path: Path, expected: dict[str, tuple[int, ...]]) -> None:
    """The safetensors header (names, shapes, dtypes) must match the config before any weight is read."""
    try:
        with safe_open(str(path), "numpy") as f:  # the header only: no tensor is read, no torch
            header = {k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is corrupt or not a safetensors file: {_short(exc)}") from None
    except MemoryError:  # safetensors maps the whole file; a memory limit (ulimit -v, a container) refuses that
        raise CheckpointError(f"not enough memory to read {path}: free some memory and try again") from None
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    wrong = sorted(k for k in set(expected) & set(header) if header[k][0] != expected[k])
    if missing or unexpected or wrong:
        parts = [
            f"{label} {names[:3]}{'...' if len(names) > 3 else ''}"
            for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if names
        ]
        raise CheckpointError(f"{path} does not match its config: " + "; ".join(parts))
    not_float = sorted(k for k, (_, dtype) in header.items() if dtype not in _FLOAT_DTYPES)
    if not_float:
        raise CheckpointError(f"{path}: weights must be floating point; {not_float[0]} is {header[not_float[0]][1]}")


_FLOAT_DTYPES = ("F32", "F16", "BF16", "F64")


def _short(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 120 else text[:117] + "..."


def fresh_checkpoint(fps: int, seed: int = 0, config: ModelConfig | None = None) -> Checkpoint:
    """A deterministic, untrained model with statistics fitted on the bundled speech clips (`config`:
    another architecture for `fps`, e.g. the small one of the fast test tier)."""
    import torch

    from a2bs.core.features import log_mel_frames
    from a2bs.core.model import A2BSModel

    torch.manual_seed(seed)
    model = A2BSModel(config or ModelConfig.for_fps(fps)).eval()
    clips = [load_audio(p) for p in sorted(bundled_audio_dir().glob("*.wav"))]
    mel = np.concatenate([log_mel_frames(clip, fps) for clip in clips])
    model.front_end.set_stats(mel.mean(0), mel.std(0) + 1e-3)
    raws = np.concatenate([emotion_features_at_times(c, np.linspace(2.0, len(c) / 16000, 6)) for c in clips])
    return Checkpoint(model, EmotionStats.fit(raws), trained=False, source=_untrained_source(seed))


def _untrained_source(seed: int) -> str:
    return f"untrained (seed {seed})"


def _bundled_default(fps: int) -> Path | None:
    """The folder of the bundled default checkpoint for `fps`, or None when none is bundled yet."""
    if fps not in SUPPORTED_FPS:
        raise CheckpointError(f"unsupported fps {fps}: use one of {', '.join(map(str, SUPPORTED_FPS))}")
    folder = default_checkpoint_dir(fps)
    return folder if (folder / CONFIG_FILE).is_file() else None


def load_default(fps: int) -> Checkpoint:
    """The bundled default checkpoint for `fps`; an untrained deterministic model if none is bundled yet."""
    folder = _bundled_default(fps)
    return fresh_checkpoint(fps) if folder is None else load_checkpoint(folder)


def default_header(fps: int) -> CheckpointHeader:
    """`read_header` of the bundled default checkpoint for `fps`, or the header of the untrained model that
    `load_default` falls back to when none is bundled (no torch either way)."""
    folder = _bundled_default(fps)
    if folder is None:
        return CheckpointHeader(ModelConfig.for_fps(fps), trained=False, source=_untrained_source(0))
    return read_header(folder)


def fingerprint(ckpt: Checkpoint) -> str:
    """sha256 of everything that decides the model's outputs (weights, config, emotion statistics).

    Bundles record it so the validation harness can prove it compares against the checkpoint the
    bundle was built from."""
    digest = hashlib.sha256()
    digest.update(json.dumps(ckpt.model.config.to_json(), sort_keys=True).encode())
    digest.update(json.dumps(ckpt.emotion_stats.to_json(), sort_keys=True).encode())
    for name, tensor in sorted(ckpt.model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
