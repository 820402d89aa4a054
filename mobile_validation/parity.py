"""Parity checks: each artifact against the PyTorch reference on real speech, through the app's frame
loop, plus the decompressed weights of compressed variants and the streaming (chunking) check.

The metrics and the gate are core/parity.py's; the limits per precision class are core/variants.py's.
"""

from __future__ import annotations

import platform as host
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core import constants as C
from a2bs.core.audio import load_audio
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX, MOUTH_CRITICAL
from a2bs.core.emotion import emotion_features_for_file
from a2bs.core.errors import one_line
from a2bs.core.parity import OFFLINE_ATOL, front_end_gate, gate, largest_difference, margins, parity_metrics
from a2bs.core.progress import Progress
from a2bs.core.variants import FRONT_END_LIMITS, find_variant, platform_variants
from a2bs.mobile_validation.checks import Check, not_run
from a2bs.runtime.bundle_inference import model_runner
from a2bs.runtime.engine import BundleEngine, run_stream
from a2bs.runtime.offline import offline_frames
from a2bs.viz.plots import plot_curves, plot_error_map
from a2bs.viz.preview import render_preview

PLOTS_DIR = "validation_plots"
STREAM_CHUNKS = [1, 7, 160, 333, 1024, 4000, 17, 2]  # irregular PCM pieces, cycled
STREAM_CHECK_S = 4.0  # seconds of the first clip replayed for the streaming check
WORST_FRAMES = 5
PREVIEW_S = 4.0  # seconds of the first clip in the report's face video (default variant beside the reference)
PREVIEW_FACE_PX = 320  # per face: small enough to embed in report.html


def compute_units(platform: str) -> tuple[str, ...]:
    """Core ML compute-unit settings parity runs under: on macOS both CPU only and all units (Neural
    Engine and GPU may compute differently); elsewhere there is one runtime (the name is then moot)."""
    return ("CPU_ONLY", "ALL") if platform == "ios" and host.system() == "Darwin" else ("CPU_ONLY",)


def runtime_name(platform: str, runner: Any, units: str = "CPU_ONLY") -> str:
    if platform == "android":
        return "LiteRT interpreter (XNNPACK, CPU)"
    if host.system() == "Darwin":
        return f"Core ML (MLModel.predict, {units})"
    return f"NumPy MIL executor ({'fp16' if getattr(runner, 'fp16_compute', False) else 'fp32'} compute)"


def _runner(path: Path, platform: str, units: str = "CPU_ONLY") -> Any:

    return model_runner(path, platform, units)


@dataclass
class _Clip:
    name: str
    audio: np.ndarray
    emotion: np.ndarray  # normalized (1, 264)
    reference: np.ndarray  # (n, 52) offline PyTorch
    windows: np.ndarray  # PCM windows of every mel frame the reference used
    mel_reference: np.ndarray


def _prepare_clips(ckpt: Any, clips: list[Path]) -> list[_Clip]:
    import torch

    from a2bs.core.inference import infer_array, mel_windows

    out = []
    for path in clips:
        audio = load_audio(path)
        raw = emotion_features_for_file(audio, len(audio) / C.SAMPLE_RATE)  # as `a2bs infer` does
        reference = infer_array(ckpt, audio, raw)
        windows = mel_windows(ckpt.model.config, audio, len(reference))
        with torch.no_grad():
            mel = ckpt.model.front_end(torch.from_numpy(windows)).numpy()
        emotion = ckpt.emotion_stats.normalize(raw[None]).astype(np.float32)
        out.append(_Clip(path.name, audio, emotion, reference, windows, mel))
    return out


def _worst_frames(clips: list[_Clip], outputs: list[np.ndarray], fps: int) -> list[dict[str, Any]]:
    rows = []
    for clip, got in zip(clips, outputs, strict=True):
        err = np.abs(got - clip.reference)
        for k in np.argsort(err.max(axis=1))[::-1][:WORST_FRAMES]:
            s = int(err[k].argmax())
            rows.append(
                {
                    "clip": clip.name,
                    "frame": int(k),
                    "time_s": round(k / fps, 3),
                    "shape": ARKIT_BLENDSHAPES[s],
                    "error": float(err[k, s]),
                    "reference": float(clip.reference[k, s]),
                    "artifact": float(got[k, s]),
                }
            )
    return sorted(rows, key=lambda r: -r["error"])[:WORST_FRAMES]


def run_parity(
    bundle: Path,
    manifest: dict[str, Any],
    intact: set[str],
    ckpt: Any,
    clip_paths: list[Path],
    checks: list[Check],
    plot_dir: Path,
    progress: Progress,
) -> list[str]:

    platform, fps = manifest["platform"], int(manifest["fps"])
    progress(f"reference: offline PyTorch inference on {len(clip_paths)} clip(s)")
    clips = _prepare_clips(ckpt, clip_paths)
    front_entry = next((e for e in manifest["files"] if e["role"] == "front_end"), None)
    if front_entry is None or front_entry["path"] not in intact:
        for entry in manifest["files"]:
            checks.append(not_run(entry, "parity", "end-to-end", "the front-end model is missing or damaged"))
        return []
    front = _front_end_parity(bundle, front_entry, manifest, clips, checks)
    plots: list[str] = []
    for entry in manifest["files"]:
        if entry["role"] != "step":
            continue
        variant = entry["variant"]
        if entry["path"] not in intact or front is None:
            why = "file failed its integrity check" if front is not None else "the front-end model did not run"
            checks.append(not_run(entry, "parity", "end-to-end", why))
            continue
        row = platform_variants(platform).get(variant)
        if row is not None and row.weight_limit is not None:
            checks.append(weights_check(bundle / entry["path"], entry, platform, ckpt))
        for units in compute_units(platform):
            progress(
                f"parity: {entry['path']} frame by frame on {len(clips)} clip(s)"
                + (f", Core ML compute units {units}" if units != "CPU_ONLY" else "")
            )
            try:
                step = _runner(bundle / entry["path"], platform, units)
                runtime = runtime_name(platform, step, units)
                outputs = [run_stream(BundleEngine(manifest, front, step, clip.emotion), clip.audio) for clip in clips]
            except Exception as exc:  # unsupported op, runtime failure: a failing check naming the file
                checks.append(not_run(entry, "parity", "end-to-end", f"{entry['path']} did not run: {one_line(exc)}"))
                continue
            first = units == "CPU_ONLY"
            check = _blendshape_check(entry, platform, clips, outputs, fps, runtime, plot_dir if first else None)
            default = first and variant == manifest["default_variant"]
            if default and check.runtime != "not run":
                progress(f"preview: the PyTorch reference and {entry['path']} side by side")
                check.details["preview"] = _preview(plot_dir, variant, runtime, clips[0], outputs[0], fps)
            checks.append(check)
            plots += check.details.get("plots", [])
            if default:
                checks.append(_streaming_check(manifest, front, step, clips[0], outputs[0], entry, runtime))
            offline = next((e for e in manifest["files"] if e["role"] == "offline" and e["variant"] == variant), None)
            if first and offline is not None:
                progress(f"parity: {offline['path']}, many frames per call, against {entry['path']} frame by frame")
                checks.append(_offline_check(bundle, manifest, offline, intact, step, clips, outputs))
    return plots


def _offline_check(
    bundle: Path,
    manifest: dict[str, Any],
    entry: dict[str, Any],
    intact: set[str],
    step: Any,
    clips: list[_Clip],
    per_frame: list[np.ndarray],
) -> Check:
    """The offline model gives the frames of the per-frame path (the apps' loop) on every clip, to float
    round-off: the largest difference against OFFLINE_ATOL (another shape or NaN counts as infinite)."""
    name = "offline = per-frame"
    if entry["path"] not in intact:
        return not_run(entry, "parity", name, "file failed its integrity check")
    try:
        offline = _runner(bundle / entry["path"], "android", "CPU_ONLY")
        worst = max(
            largest_difference(offline_frames(manifest, offline, step, clip.audio, clip.emotion), expected)
            for clip, expected in zip(clips, per_frame, strict=True)
        )
    except Exception as exc:  # a model the runtime cannot run: a failing check naming the file
        return not_run(entry, "parity", name, f"{entry['path']} did not run: {one_line(exc)}")
    ok = worst <= OFFLINE_ATOL
    reason = "" if ok else f"differs from the step model frame by frame by {worst:.3g} (limit {OFFLINE_ATOL:g})"
    return Check(entry["path"], "parity", name, ok, worst, OFFLINE_ATOL, "LiteRT interpreter", reason=reason)


def _blendshape_check(
    entry: dict[str, Any],
    platform: str,
    clips: list[_Clip],
    outputs: list[np.ndarray],
    fps: int,
    runtime: str,
    plot_dir: Path | None,
) -> Check:
    """End-to-end parity of one step variant on one runtime; plots (into `plot_dir`) when given one."""

    variant = entry["variant"]
    reference, got = np.concatenate([c.reference for c in clips]), np.concatenate(outputs)
    if reference.shape != got.shape:
        return not_run(entry, "parity", "end-to-end", f"frames {got.shape} != reference {reference.shape}")
    row = platform_variants(platform).get(variant)
    if row is None:  # never judge an unknown precision by some other class's limits
        return not_run(entry, "parity", "end-to-end", f"unknown variant {variant!r}: no parity limits for it")
    metrics = parity_metrics(reference, got, list(ARKIT_BLENDSHAPES))
    limits = row.limits
    problems = gate(metrics, limits)
    plots = []
    if plot_dir is not None:
        curves, errors = f"{PLOTS_DIR}/parity_{variant}.png", f"{PLOTS_DIR}/errors_{variant}.png"
        plot_curves(
            outputs[0],
            fps,
            plot_dir / Path(curves).name,
            reference=clips[0].reference,
            label=f"{variant} ({runtime})",
            title=f"{entry['path']} vs PyTorch on {clips[0].name}",
        )
        plot_error_map(
            outputs[0] - clips[0].reference,
            fps,
            plot_dir / Path(errors).name,
            title=f"|{variant} - PyTorch| per shape on {clips[0].name}",
        )
        plots = [curves, errors]
    return Check(
        entry["path"],
        "parity",
        "end-to-end blendshapes",
        not problems,
        metrics["rel_mae"],
        limits.mae,
        runtime,
        unit="MAE / reference spread",
        reason="; ".join(problems),
        details={
            "variant": variant,
            "precision_class": row.precision_class,
            "limits": asdict(limits),
            "rel_mae": metrics["rel_mae"],
            "rel_max": metrics["rel_max"],
            "psnr_db": metrics["psnr_db"],
            "min_correlation": metrics["min_correlation"],
            "mae": metrics["mae"],
            "max_abs": metrics["max_abs"],
            "peak": metrics["peak"],
            "non_finite": metrics["non_finite"],
            "moving_shapes": metrics["moving_shapes"],
            "margins": margins(metrics, limits),
            "mouth_critical_correlation": {n: metrics["correlation"][n] for n in MOUTH_CRITICAL},
            "correlation": metrics["correlation"],
            "worst_frames": _worst_frames(clips, outputs, fps),
            "frames": len(got),
            "clips": [c.name for c in clips],
            "plots": plots,
        },
    )


def _preview(plot_dir: Path, variant: str, runtime: str, clip: _Clip, got: np.ndarray, fps: int) -> dict[str, Any]:
    """A face video of about PREVIEW_S seconds of `clip` with its sound, the PyTorch reference beside the
    artifact, where the reference's jaw moves most (speech, not the silence around it). A preview that cannot
    be rendered is a note in the report, never a failed check: it is evidence for a person, not a gate."""
    name = f"preview_{variant}.mp4"
    try:
        n = min(len(clip.reference), round(PREVIEW_S * fps))
        jaw = clip.reference[:, INDEX["jawOpen"]]
        motion = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(jaw, prepend=jaw[:1])))])
        start = int(np.argmax(motion[n:] - motion[: len(motion) - n]))
        a0, a1 = (round(k * C.SAMPLE_RATE / fps) for k in (start, start + n))
        span = f"{start / fps:.2f}-{(start + n) / fps:.2f} s"
        render_preview(
            [clip.reference[start : start + n], got[start : start + n]],
            fps,
            plot_dir / name,
            clip.audio[a0:a1],
            labels=["PyTorch reference", f"{variant} ({runtime})"],
            title=f"{clip.name}, {span}",
            size=PREVIEW_FACE_PX,
        )
    except Exception as exc:  # any failure of the preview is reported, and validation goes on
        return {"path": None, "variant": variant, "note": f"face preview not rendered: {one_line(exc)}"}
    return {"path": f"{PLOTS_DIR}/{name}", "variant": variant, "clip": clip.name, "span": span, "frames": n, "note": ""}


def _front_end_parity(
    bundle: Path, entry: dict[str, Any], manifest: dict[str, Any], clips: list[_Clip], checks: list[Check]
) -> Any:
    platform, spec = manifest["platform"], manifest["models"]["front_end"]
    pcm, mel = spec["inputs"][0]["name"], spec["outputs"][0]["name"]
    try:
        front = _runner(bundle / entry["path"], platform)
        got = np.concatenate([np.stack([front(**{pcm: w[None]})[mel].reshape(-1) for w in c.windows]) for c in clips])
    except Exception as exc:
        checks.append(not_run(entry, "parity", "mel frames", f"{entry['path']} did not run: {one_line(exc)}"))
        return None
    reference = np.concatenate([c.mel_reference for c in clips])
    metrics = parity_metrics(reference, got)
    err = np.abs(got - reference)
    problems = front_end_gate(metrics)
    checks.append(
        Check(
            entry["path"],
            "parity",
            "mel frames",
            not problems,
            metrics["mae"],
            FRONT_END_LIMITS.mae,
            runtime_name(platform, front),
            reason="; ".join(problems),
            details={
                "limits": asdict(FRONT_END_LIMITS),
                "mae": metrics["mae"],
                "max_abs": metrics["max_abs"],
                "frames": len(got),
                "worst_mel_bin": int(err.max(axis=0).argmax()),
            },
        )
    )
    return front


def _streaming_check(
    manifest: dict[str, Any],
    front: Any,
    step: Any,
    clip: _Clip,
    hop_output: np.ndarray,
    entry: dict[str, Any],
    runtime: str,
) -> Check:
    """Irregular pieces and one whole piece must give the frames the hop-sized replay gave."""

    audio = clip.audio[: int(STREAM_CHECK_S * manifest["sample_rate"])]
    fps = int(manifest["fps"])
    n = -(-len(audio) * fps // manifest["sample_rate"])
    runs = {
        "irregular pieces": run_stream(BundleEngine(manifest, front, step, clip.emotion), audio, STREAM_CHUNKS),
        "one piece": run_stream(BundleEngine(manifest, front, step, clip.emotion), audio, [len(audio)]),
        "hop pieces": run_stream(BundleEngine(manifest, front, step, clip.emotion), audio),
    }
    problems, diffs = [], {}
    for name, frames in runs.items():
        if len(frames) != n:
            problems.append(f"{name}: {len(frames)} frames, expected ceil(duration * fps) = {n}")
            continue
        # every frame but the last few (which see the end of the excerpt) equals the whole-clip replay
        settled = max(0, n - int(manifest["timeline"]["lookahead_frames"]) - 2)
        diffs[name] = float(np.max(np.abs(frames[:settled] - hop_output[:settled]))) if settled else 0.0
    worst = max(diffs.values(), default=0.0)
    if not worst <= 1e-6:  # NaN fails too
        problems.append(f"chunking changed the output by up to {worst:.2e}")
    return Check(
        entry["path"],
        "streaming",
        "PCM pieces of any size = offline",
        not problems,
        worst,
        1e-6,
        runtime,
        reason="; ".join(problems),
        details={
            "max_diff_by_chunking": diffs,
            "frames": n,
            "chunk_sizes": STREAM_CHUNKS,
            "seconds": STREAM_CHECK_S,
        },
    )


def weights_check(path: Path, entry: dict[str, Any], platform: str, ckpt: Any) -> Check:
    """Decompress the stored weights (int8 scales, LUTs) and compare them with the torch weights, so a bad
    codebook or scale shows up apart from runtime error."""
    from a2bs.core.deploy import DeployStep

    variant = entry["variant"]
    limit, why = find_variant(platform, variant).weight_limit
    runtime = "coremltools decompress_weights" if platform == "ios" else "LiteRT tensor buffers, dequantized"
    try:
        stored = coreml_weights(path) if platform == "ios" else tflite_weights(path)
    except Exception as exc:
        return not_run(entry, "parity", "decompressed weights", f"cannot read the weights: {one_line(exc)}")
    torch_weights = {k: v.detach().numpy() for k, v in DeployStep(ckpt.model).state_dict().items() if v.ndim == 2}
    rows = []
    for name, w in stored.items():
        candidates = {k: t for k, t in torch_weights.items() if t.shape == w.shape}
        if not candidates:
            continue
        normalized = name.removeprefix("p_").split("_to_fp16")[0]
        same_name = [k for k in candidates if k.replace(".", "_") == normalized]
        errors = {k: _weight_error(w, candidates[k], limit) for k in same_name or candidates}
        best = min(errors, key=lambda k: errors[k][0])
        rows.append({"stored": name, "torch": best, "relative_error": errors[best][0], "folded": errors[best][1]})
    if not rows:
        return Check(
            entry["path"],
            "parity",
            "decompressed weights",
            False,
            None,
            limit,
            runtime,
            reason=f"no stored weight matches a torch weight (variant {variant})",
        )
    bad = [r for r in rows if not r["relative_error"] <= limit]  # NaN counts as bad
    worst = bad[0] if bad else max(rows, key=lambda r: r["relative_error"])
    ok = not bad
    return Check(
        entry["path"],
        "parity",
        "decompressed weights",
        ok,
        worst["relative_error"],
        limit,
        runtime,
        unit="relative RMS",
        reason=""
        if ok
        else (f"weight {worst['stored']} ({worst['torch']}): relative error {worst['relative_error']:.3f}"),
        details={"weights": rows, "why": why},
    )


def _weight_error(stored: np.ndarray, reference: np.ndarray, limit: float) -> tuple[float, bool]:
    """(relative RMS error, folded). Converters fold a LayerNorm's scale into the next layer's weight
    (stored = reference * g per input column); when the plain error is over the limit, the error left
    after fitting that per-column scale is reported instead, marked as folded. Random error from a bad
    codebook or scale cannot be absorbed by one scale per column."""
    norm = max(float(np.linalg.norm(reference)), 1e-12)
    plain = float(np.linalg.norm(stored - reference)) / norm
    if plain <= limit:
        return plain, False
    scale = (stored * reference).sum(axis=0) / np.maximum((reference * reference).sum(axis=0), 1e-12)
    fitted = float(np.linalg.norm(stored - reference * scale[None, :])) / norm
    return (fitted, True) if fitted < plain else (plain, False)


def coreml_weights(path: Path) -> dict[str, np.ndarray]:
    from a2bs.runtime.coreml_package import compressed_weights

    return compressed_weights(path)


def tflite_weights(path: Path) -> dict[str, np.ndarray]:
    """The int8 weight matrices of the FULLY_CONNECTED ops of a .tflite file, dequantized with their
    per-channel scales (the layers the int8 variants quantize; activations are skipped)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    weights = {op["inputs"][1] for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"}
    out = {}
    for detail in interpreter.get_tensor_details():
        if detail["index"] not in weights or detail["dtype"] != np.int8 or len(detail["shape"]) != 2:
            continue
        q = detail["quantization_parameters"]
        scales, zeros = np.asarray(q["scales"], np.float32), np.asarray(q["zero_points"], np.float32)
        shape = [1, 1]
        shape[int(q["quantized_dimension"])] = -1
        data = interpreter.get_tensor(detail["index"]).astype(np.float32)
        name = f"{detail['name'].split('/')[-1]}#{detail['index']}"
        out[name] = (data - zeros.reshape(shape)) * scales.reshape(shape)
    return out
