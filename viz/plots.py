"""Plots people look at instead of numbers: blendshape curves over time."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX
from a2bs.core.files import temp_prefix, umask


def displayable(text: str) -> str:
    """`text` with the undecodable bytes of a file name (lone surrogates, e.g. a Latin-1 `café.wav`) shown
    as U+FFFD: fonts and image libraries take only real characters, and titles come from file names."""
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


def _save_png(fig, path: Path) -> Path:
    """Write atomically (temp file beside the target, then rename) with the permissions any new file gets,
    and close the figure."""
    import matplotlib.pyplot as plt

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path, ".part"), suffix=".part")
    os.fchmod(fd, 0o666 & ~umask())  # mkstemp creates 0600
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=90)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


PLOTTED = (
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthPressLeft",
    "mouthSmileLeft",
    "browInnerUp",
    "eyeBlinkLeft",
)


def plot_curves(
    frames: np.ndarray,
    fps: int,
    path: str | Path,
    title: str = "",
    reference: np.ndarray | None = None,
    label: str = "",
    reference_label: str = "PyTorch reference",
) -> Path:
    """PNG of the mouth-critical and a few expression curves, optionally over a reference (dashed);
    written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    t = np.arange(len(frames)) / fps
    fig, axes = plt.subplots(len(PLOTTED), 1, figsize=(11, 1.3 * len(PLOTTED)), sharex=True)
    for ax, name in zip(axes, PLOTTED, strict=True):
        if reference is not None:
            ax.plot(t, reference[:, INDEX[name]], lw=1.6, color="0.6", ls="--", label=displayable(reference_label))
        ax.plot(t, frames[:, INDEX[name]], lw=1.0, label=displayable(label) or None)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    if reference is not None:
        axes[0].legend(loc="upper right", fontsize=7)
    fig.suptitle(displayable(title) or f"{len(ARKIT_BLENDSHAPES)} ARKit blendshapes at {fps} fps")
    fig.tight_layout()
    return _save_png(fig, path)


def plot_error_map(errors: np.ndarray, fps: int, path: str | Path, title: str = "") -> Path:
    """PNG heat map of |artifact - reference| per blendshape (rows) over time, beside each shape's MAE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    abs_err = np.abs(errors)
    fig, (ax, bar) = plt.subplots(1, 2, figsize=(13, 8.5), gridspec_kw={"width_ratios": [5, 1]}, sharey=True)
    duration = len(abs_err) / fps
    image = ax.imshow(
        abs_err.T,
        aspect="auto",
        interpolation="nearest",
        cmap="magma",
        extent=(0, duration, len(ARKIT_BLENDSHAPES) - 0.5, -0.5),
    )
    ax.set_yticks(range(len(ARKIT_BLENDSHAPES)), ARKIT_BLENDSHAPES, fontsize=6)
    ax.set_xlabel("time (s)")
    fig.colorbar(image, ax=ax, label="absolute error", pad=0.01)
    bar.barh(range(len(ARKIT_BLENDSHAPES)), abs_err.mean(axis=0), color="tab:red")
    bar.set_xlabel("MAE per shape")
    bar.grid(alpha=0.3, axis="x")
    fig.suptitle(displayable(title) or "per-shape error")
    fig.tight_layout()
    return _save_png(fig, path)


def plot_training(rows: list[dict], path: str | Path) -> Path:
    """PNG of the training curves from metrics.jsonl rows: losses, validation MAE, the articulation AUCs
    and the bilabial seal / over-closure rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    axes[0].plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train loss")
    axes[0].set_yscale("log")
    axes[1].plot(epochs, [r["mae"] for r in rows], marker="o", label="val MAE")
    axes[1].plot(epochs, [r["mae_mouth"] for r in rows], marker=".", label="val MAE mouth")
    axes[1].plot(epochs, [r["mae_expression"] for r in rows], marker=".", label="val MAE expression")
    for key, label in (
        ("auc_jaw", "jaw"),
        ("auc_closure", "closure"),
        ("auc_rounding", "rounding"),
        ("auc_labiodental", "f/v"),
    ):
        # rows written before the four contrasts had only the jaw one, as "jaw_open_auc"
        values = [r.get(key, r.get("jaw_open_auc", math.nan) if key == "auc_jaw" else math.nan) for r in rows]
        axes[2].plot(epochs, values, marker="o", ms=3, label=f"val AUC {label}")
    for key, label in (("seal", "seal rate"), ("overclosed", "over-closure rate")):
        if any(key in r for r in rows):
            axes[2].plot(epochs, [r.get(key, math.nan) for r in rows], marker="s", ms=3, ls=":", label=label)
    axes[2].axhline(0.9, color="gray", ls="--", lw=0.8)
    axes[2].set_ylim(0.0, 1.01)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save_png(fig, path)
