"""a2bs: speech to the 52 ARKit blendshapes, and the on-device bundles that carry the model to phones.

The public API, four calls (everything else is internal and may move):

    import a2bs
    ckpt = a2bs.load_checkpoint(fps=30)                  # the bundled default, or a folder
    frames = a2bs.animate(a2bs.example_audio(), ckpt)    # (n_frames, 52) float32, row k at k / fps
    bundle = a2bs.build_bundle("android", "build/android", ckpt)   # converted, validated, swapped in
    report = a2bs.validate_bundle("build/android")       # report.passed, report.json in the bundle

`a2bs.BLENDSHAPES` is the column order of every output. Importing the package loads no torch: each
call imports what it needs (`import a2bs.runtime.engine` stays torch-free).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from a2bs.core.blendshapes import ARKIT_BLENDSHAPES as BLENDSHAPES

if TYPE_CHECKING:
    import numpy as np

    from a2bs.convert.bundle import BundleResult
    from a2bs.core.checkpoint import Checkpoint
    from a2bs.mobile_validation.validate import Report

__all__ = ["BLENDSHAPES", "animate", "build_bundle", "example_audio", "load_checkpoint", "validate_bundle"]


def example_audio() -> Path:
    """The bundled speech clip that `a2bs infer` animates when given no file (16 kHz WAV, 14 s)."""
    from a2bs.core.audio import default_clip

    return default_clip()


def load_checkpoint(path: str | Path | None = None, *, fps: int = 30) -> Checkpoint:
    """A checkpoint folder (`config.json` + `model.safetensors`, read without pickle), or the bundled
    default for `fps` (30 or 60) when `path` is None."""
    from a2bs.core.checkpoint import load_checkpoint as load
    from a2bs.core.checkpoint import load_default

    return load_default(fps) if path is None else load(path)


def animate(
    audio: str | Path, checkpoint: Checkpoint | None = None, *, emotion_from: str | Path | None = None, stride: int = 1
) -> np.ndarray:
    """Animate an audio file (any rate, channels; WAV, FLAC, Ogg or MP3) with the PyTorch model: the
    (ceil(seconds * fps), 52) float32 curves, columns in `BLENDSHAPES` order, row k at time k / fps."""
    import numpy as np

    from a2bs.core.checkpoint import load_default
    from a2bs.core.inference import iter_blendshapes
    from a2bs.core.plan import plan

    ckpt = checkpoint if checkpoint is not None else load_default(30)
    the_plan = plan(audio, ckpt.model.config.fps, stride=stride, emotion_from=emotion_from)
    chunks = list(iter_blendshapes(audio, ckpt, the_plan))
    return np.concatenate(chunks) if chunks else np.zeros((0, len(BLENDSHAPES)), np.float32)


def build_bundle(
    platform: str,
    out: str | Path,
    checkpoint: Checkpoint | None = None,
    *,
    variants: list[str] | None = None,
    validate: bool = True,
    force: bool = False,
    offline: bool = False,
) -> BundleResult:
    """Convert `checkpoint` (default: the bundled 30 fps one) for "ios" or "android" into the bundle
    folder `out`, validated before it replaces anything (see `a2bs-convert`). `variants` defaults to the
    platform's default variant; the first is the bundle's default. `offline` (android) adds the model that
    `a2bs infer` runs on files, many frames per call. `result.passed` says whether it passed."""
    from a2bs.convert.bundle import build_bundle as build
    from a2bs.convert.bundle import resolve_variants
    from a2bs.core.checkpoint import load_default
    from a2bs.mobile_validation.validate import validate_bundle as validate_folder

    ckpt = checkpoint if checkpoint is not None else load_default(30)
    names = variants if variants is not None else resolve_variants(platform, None)

    def check(folder: Path) -> bool:
        return validate_folder(folder, reference=ckpt, shown_as=Path(out)).passed

    return build(
        platform,
        ckpt,
        names,
        Path(out),
        force=force,
        progress=lambda _: None,
        check=check if validate else None,
        offline=offline,
    )


def validate_bundle(
    bundle: str | Path, audio: list[str | Path] | None = None, checkpoint: str | Path | None = None
) -> Report:
    """Every check of `a2bs validate` on a bundle folder: the report (`.passed`, `.checks`); report.json
    and report.html are written into the bundle. `checkpoint`: the folder of the checkpoint the bundle was
    built from (default: the shipped default checkpoint, when the bundle was built from it)."""
    from a2bs.mobile_validation.validate import validate_bundle as validate

    return validate(Path(bundle), [Path(a) for a in audio] if audio else None, Path(checkpoint) if checkpoint else None)
