"""Parity: how far a converted model's outputs are from the PyTorch reference, and the limits they must meet.

One definition (NumPy only, torch-free) for every place that judges a model against its reference: the
converters' self-checks, the parity column of a bundle's README and the validation gate of
`a2bs validate`. The end-to-end limits per precision class are rows of core/variants.py; the
converters' gross-failure limits are below. Why the gate is relative: docs/VALIDATION.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from a2bs.core.variants import FRONT_END_LIMITS, ParityLimits

SPREAD_FLOOR = 0.01  # a shape's error is measured against at least this spread (a still shape is not free)
# ... and its worst error against at least this range: a shape that moves less than 5% of its scale is
# judged by a visible error, not by one in proportion to its near-zero motion
RANGE_FLOOR = 0.05
ACTIVE_STD = 0.01  # a shape whose reference moves less than this has no meaningful correlation

# The converters' self-checks, on single step calls (real-speech frames): gross failures only; the
# per-variant gate above needs whole clips through the app's frame loop (mobile_validation).
# A float model computes what PyTorch computes: |got - ref| <= atol + rtol * |ref| (round-off is ~1e-6).
FLOAT_ATOL, FLOAT_RTOL = 1e-4, 1e-4
FRONT_END_ATOL = 1e-3  # the log of the mel front end amplifies round-off near silence
# A compressed or fp16 model: blendshape MAE / worst error above which it would show a wrong face
# (measured on a trained checkpoint, LiteRT full_int8 gives 0.003 / 0.08).
COMPRESSED_MAE, COMPRESSED_MAX = 0.05, 0.25

# The offline model (many frames per call) against the per-frame path the apps run: float round-off only
# (~2e-7 measured); `largest_difference` is the figure compared with it.
OFFLINE_ATOL = 1e-5


def parity_metrics(reference: np.ndarray, got: np.ndarray, names: list[str] | None = None) -> dict[str, Any]:
    """How far `got` is from `reference` ((frames, shapes)), relative to how much the reference moves.

    - rel_mae: MAE over the mean per-shape std of the reference (each at least SPREAD_FLOOR, so still shapes
      are not free), so an output that ignores its input (a constant at the reference's mean) scores close
      to 0.8 whatever the model's amount of motion (a mean of per-shape ratios would be diluted by the
      many shapes that barely move);
    - rel_max: worst error / that shape's reference range (at least RANGE_FLOOR);
    - psnr_db: the peak is the reference's own range (max - min over every shape), not 1;
    - correlation per shape whose reference moves (std >= ACTIVE_STD); an output that stays still there
      has correlation 0. Absolute MAE and max error are reported beside them.
    NaN or infinity anywhere makes every relative figure NaN, so every gate comparison fails."""
    ref, out = reference.astype(np.float64), got.astype(np.float64)
    err = out - ref
    abs_err = np.abs(err)
    ref_std, got_std = ref.std(axis=0), out.std(axis=0)
    ref_range = ref.max(axis=0) - ref.min(axis=0)
    peak = float(ref.max() - ref.min()) if ref.size else 0.0
    mse = float(np.mean(err**2))
    correlation: dict[str, float | None] = {}
    for i in range(ref.shape[1]):
        name = names[i] if names else str(i)
        if not ref_std[i] >= ACTIVE_STD:
            correlation[name] = None  # a (nearly) still reference shape: correlation says nothing
        elif got_std[i] <= 1e-9 * ref_std[i]:  # NaN fails this test and falls through to corrcoef (NaN)
            correlation[name] = 0.0  # a still output cannot follow a moving reference
        else:
            correlation[name] = float(np.corrcoef(ref[:, i], out[:, i])[0, 1])
    active = [v for v in correlation.values() if v is not None]
    psnr = 10 * np.log10(max(peak, SPREAD_FLOOR) ** 2 / max(mse, 1e-30)) if np.isfinite(mse) else float("nan")
    return {
        "non_finite": int(np.size(got) - np.count_nonzero(np.isfinite(got))),
        "rel_mae": float(abs_err.mean() / np.mean(np.maximum(ref_std, SPREAD_FLOOR))),
        "rel_max": float(np.max(abs_err / np.maximum(ref_range, RANGE_FLOOR))),
        "psnr_db": float(min(300.0, psnr)),
        "min_correlation": (float("nan") if any(np.isnan(v) for v in active) else min(active)) if active else None,
        "mae": float(abs_err.mean()),
        "max_abs": float(abs_err.max()),
        "peak": peak,
        "moving_shapes": len(active),
        "correlation": correlation,
        "mae_per_column": abs_err.mean(axis=0).tolist(),
        "reference_std": ref_std.tolist(),
    }


def gate(metrics: dict[str, Any], limits: ParityLimits) -> list[str]:
    """What is over the limits (empty: passed). Every comparison is written `not value <= limit`, so a
    NaN fails it; a missing correlation (no moving shape) fails too: nothing would then be judged."""
    problems = []
    if metrics.get("non_finite") != 0:
        problems.append(f"{metrics.get('non_finite')} outputs are NaN or infinite")
    if not metrics["rel_mae"] <= limits.mae:
        problems.append(f"MAE {metrics['rel_mae']:.2e} of the reference's spread > {limits.mae:.0e}")
    if not metrics["rel_max"] <= limits.max_abs:
        problems.append(f"max error {metrics['rel_max']:.2e} of the shape's range > {limits.max_abs:.0e}")
    if not metrics["psnr_db"] >= limits.psnr_db:
        problems.append(f"PSNR {metrics['psnr_db']:.1f} dB < {limits.psnr_db:.0f} dB (peak: the reference's range)")
    corr = metrics["min_correlation"]
    if corr is None:
        problems.append("no blendshape of the reference moves: correlation cannot judge this clip")
    elif not corr >= limits.min_correlation:
        worst = min(
            ((v, k) for k, v in metrics["correlation"].items() if v is not None),
            key=lambda item: -np.inf if np.isnan(item[0]) else item[0],
        )
        problems.append(f"correlation of {worst[1]} {worst[0]:.4f} < {limits.min_correlation}")
    return problems


def front_end_gate(metrics: dict[str, Any]) -> list[str]:
    """Mel frames (normalized log-mel, roughly unit variance): absolute MAE and max against
    FRONT_END_LIMITS, written so that NaN fails."""
    problems = []
    if metrics["non_finite"] != 0:
        problems.append(f"{metrics['non_finite']} mel values are NaN or infinite")
    if not metrics["mae"] <= FRONT_END_LIMITS.mae:
        problems.append(f"MAE {metrics['mae']:.2e} > {FRONT_END_LIMITS.mae:.0e}")
    if not metrics["max_abs"] <= FRONT_END_LIMITS.max_abs:
        problems.append(f"max error {metrics['max_abs']:.2e} > {FRONT_END_LIMITS.max_abs:.0e}")
    return problems


def margins(metrics: dict[str, Any], limits: ParityLimits) -> dict[str, float | None]:
    """How far inside its limit each gated figure is, as limit / measured (> 1: inside; PSNR and
    correlation as the distance in dB / in 1 - r). NaN where a figure is NaN."""

    def ratio(limit: float, value: float) -> float:
        return float(limit / value) if value > 0 else float("inf") if value == 0 else float("nan")

    corr = metrics["min_correlation"]
    return {
        "mae": ratio(limits.mae, metrics["rel_mae"]),
        "max_abs": ratio(limits.max_abs, metrics["rel_max"]),
        "psnr_db": float(metrics["psnr_db"] - limits.psnr_db),
        "correlation": None if corr is None else ratio(1 - limits.min_correlation, 1 - corr),
    }


# --- the converters' self-checks -------------------------------------------------------------------


def float_excess(pairs: list[tuple[np.ndarray, np.ndarray]], atol: float = FLOAT_ATOL) -> float | None:
    """The largest error of the first (reference, got) pair where |got - ref| > atol + FLOAT_RTOL * |ref|
    somewhere; None when every pair is within (a float model may differ from PyTorch by round-off only)."""
    for reference, got in pairs:
        err = np.abs(got - reference)
        if np.any(err - (atol + FLOAT_RTOL * np.abs(reference)) > 0):
            return float(err.max())
    return None


def abs_errors(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(MAE, worst error) over (reference, got) pairs: the mean of each pair's mean |error|, and the max."""
    errors = [np.abs(got - reference) for reference, got in pairs]
    return float(np.mean([e.mean() for e in errors])), float(max(e.max() for e in errors))


def compressed_problem(pairs: list[tuple[np.ndarray, np.ndarray]]) -> str | None:
    """Why a compressed (or fp16) model's blendshapes on real speech are too far from PyTorch to ship,
    or None: MAE over COMPRESSED_MAE or worst error over COMPRESSED_MAX (NaN fails; no frames fail too)."""
    if not pairs:
        return "no real-speech frames to check the blendshapes on"
    mae, worst = abs_errors(pairs)
    if mae <= COMPRESSED_MAE and worst <= COMPRESSED_MAX:
        return None
    return (
        f"blendshapes_raw differs from PyTorch on real speech by MAE {mae:.3g}, max {worst:.3g} "
        f"(limits {COMPRESSED_MAE}, {COMPRESSED_MAX}): the quantized model would show a wrong face"
    )


def largest_difference(got: np.ndarray, expected: np.ndarray) -> float:
    """max |got - expected|, and infinity for another shape or any non-finite value (NaN never passes)."""
    if got.shape != expected.shape:
        return float("inf")
    diff = np.abs(np.asarray(got, np.float64) - np.asarray(expected, np.float64))
    return float(diff.max(initial=0.0)) if np.isfinite(diff).all() else float("inf")
