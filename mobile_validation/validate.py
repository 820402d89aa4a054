"""`a2bs validate BUNDLE`: prove that every artifact of a bundle matches the PyTorch reference, fits
under the size limit and runs fast enough; write `report.json`, `report.html` and plots into the bundle.

Checks (each one names its artifact, kind, runtime, value and threshold; a check that cannot run is a
failing check with the reason, never a skip and never a crash):

- integrity: each file of the manifest exists with its sha256; no model file the manifest omits.
- manifest: each model's real inputs/outputs (read from the file) equal the manifest's; the reference
  checkpoint is the one the bundle was built from (fingerprint).
- size: bytes on disk per model (an .mlpackage counts its whole folder), and the deployed pair
  (front end + step) <= 10 MB.
- parity: the app's frame loop (`streaming.BundleEngine`, hop-sized PCM pieces) through the real runtime
  (LiteRT interpreter; Core ML on macOS, the NumPy MIL executor elsewhere) against offline PyTorch
  inference on real speech: MAE, max error, PSNR, per-shape correlation, worst frames. The front end
  is compared mel for mel. Compressed weights are decompressed and compared with the torch weights.
- streaming: the same audio pushed in irregular pieces and in one piece gives the same frames.
- latency: per-frame latency (front end + step) of each TFLite variant, 1 and 2 threads, median / p95,
  peak memory and RTF, beside the PyTorch reference in the same run. Core ML latency where Core ML runs
  (macOS); elsewhere the MAC count, marked as not measured.

Thresholds and their reasons are in `PARITY_LIMITS` / `WEIGHT_LIMITS` below and in docs/VALIDATION.md.
"""

from __future__ import annotations

import json
import os
import platform as host
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core import constants as C
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, MOUTH_CRITICAL
from a2bs.core.errors import A2BSError

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
PLOTS_DIR = "validation_plots"
MAX_MODEL_BYTES = C.MODEL_SIZE_TARGET_MB * 1_000_000
STREAM_CHUNKS = [1, 7, 160, 333, 1024, 4000, 17, 2]  # irregular PCM pieces, cycled
STREAM_CHECK_S = 4.0  # seconds of the first clip replayed for the streaming check
WORST_FRAMES = 5
ACTIVE_STD = 0.01  # a shape whose reference moves less than this has no meaningful correlation


@dataclass(frozen=True)
class ParityLimits:
    """Gates for end-to-end blendshapes (values in [0, 1]) of one precision class, and why."""

    mae: float
    max_abs: float
    psnr_db: float
    min_correlation: float
    reason: str


PARITY_LIMITS: dict[str, ParityLimits] = {
    "fp32": ParityLimits(1e-5, 1e-3, 80.0, 0.9999, "same arithmetic as PyTorch; only summation order differs"),
    "fp16": ParityLimits(1e-3, 2e-2, 50.0, 0.999, "fp16 weights/compute: ~3 significant digits per op"),
    "int8": ParityLimits(
        3e-3, 5e-2, 45.0, 0.995, "int8 per-channel weights (activations float or dynamically quantized)"
    ),
    "palettized": ParityLimits(1e-2, 1e-1, 38.0, 0.98, "4-6 bit weight look-up tables: coarser weights"),
    "activation_int8": ParityLimits(
        2e-2, 2e-1, 35.0, 0.95, "int8 weights and int8 activations (static calibration): the coarsest variant"
    ),
}
# Mel frames (normalized log-mel, roughly unit variance) from the fp32 front end.
FRONT_END_LIMITS = ParityLimits(1e-4, 1e-2, 80.0, 0.9999, "fp32 DFT + mel matrices; log amplifies near-silence")
# Relative RMS error ||W_decompressed - W|| / ||W|| of each compressed weight matrix.
WEIGHT_LIMITS: dict[str, tuple[float, str]] = {
    "int8": (0.01, "8-bit per-channel: step/2 ~ 0.2% of each channel's range"),
    "activation_int8": (0.02, "8-bit weights with calibrated (w8a8: per-tensor) scales"),
    "palettize6": (0.04, "64-entry k-means table per tensor"),
    "palettize4": (0.15, "16-entry k-means table per tensor"),
}
PRECISION_CLASS = {
    "fp32": "fp32", "fp16": "fp16", "int8": "int8", "dynamic_int8": "int8",
    "palettize6": "palettized", "palettize4": "palettized", "w8a8": "activation_int8", "full_int8": "activation_int8",
}  # fmt: skip
COMPRESSED = {"int8": "int8", "dynamic_int8": "int8", "palettize6": "palettize6", "palettize4": "palettize4",
              "w8a8": "activation_int8", "full_int8": "activation_int8"}  # fmt: skip


@dataclass
class Check:
    artifact: str
    kind: str  # integrity | manifest | size | parity | streaming | latency
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    runtime: str
    unit: str = ""
    reason: str = ""  # why it failed (or what was not measured)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    bundle: Path
    manifest: dict[str, Any]
    checks: list[Check]
    audio: list[dict[str, Any]]
    plots: list[str]
    seconds: float
    data: dict[str, Any] = field(default_factory=dict)  # report.json as written

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


Progress = Callable[[str], None]


def validate_bundle(
    bundle: Path, audio: list[Path] | None = None, checkpoint: Path | None = None, *,
    latency: bool = True, progress: Progress = lambda _: None, reference: Any = None,
) -> Report:  # fmt: skip
    """Run every check on `bundle`, write the reports into it, and return the report.

    `reference` (a loaded Checkpoint) saves loading it again when the caller has it; it is still
    checked against the bundle's fingerprint."""
    from a2bs.convert.backends import load_manifest

    started = time.perf_counter()
    bundle = Path(bundle)
    if not bundle.is_dir():
        raise A2BSError(f"no bundle folder at {bundle} (build one with a2bs-convert ios|android)")
    manifest = load_manifest(bundle)
    if manifest.get("format") != "a2bs-bundle" or manifest.get("platform") not in ("ios", "android"):
        raise A2BSError(f"{bundle}/manifest.json is not an a2bs bundle manifest (format/platform missing)")
    clips = _clips(audio)
    checks: list[Check] = []
    progress("integrity: sha256 of every file")
    intact = _integrity(bundle, manifest, checks)
    progress("manifest: model inputs/outputs and reference checkpoint")
    ckpt = _reference(manifest, checkpoint, checks, reference)
    _manifest_io(bundle, manifest, intact, checks)
    _sizes(bundle, manifest, intact, checks)
    plots: list[str] = []
    plot_dir = Path(tempfile.mkdtemp(prefix=".validation-", dir=bundle))
    try:
        if ckpt is None:
            for entry in manifest["files"]:
                why = "no reference checkpoint (see the manifest check)"
                checks.append(_not_run(entry, "parity", "end-to-end", why))
        else:
            plots = _parity(bundle, manifest, intact, ckpt, clips, checks, plot_dir, progress)
        if latency:
            _latency(bundle, manifest, intact, ckpt, clips[0], checks, progress)
        report = Report(bundle, manifest, checks, [_clip_info(c) for c in clips], plots, 0.0)
        report.seconds = time.perf_counter() - started
        _write(report, plot_dir)
    finally:
        import shutil

        shutil.rmtree(plot_dir, ignore_errors=True)
    return report


# --- inputs ------------------------------------------------------------------------------------


def _clips(audio: list[Path] | None) -> list[Path]:
    from a2bs.core.audio import probe
    from a2bs.core.checkpoint import bundled_audio_dir

    clips = sorted(bundled_audio_dir().glob("*.wav")) + [Path(a) for a in audio or []]
    for clip in clips:
        probe(clip)  # a clear AudioError for a missing / unreadable file before any slow work
    return clips


def _clip_info(path: Path) -> dict[str, Any]:
    from a2bs.core.audio import probe

    info = probe(path)
    return {"path": str(path), "name": path.name, "seconds": round(info.duration_s, 3)}


def _not_run(entry: dict[str, Any], kind: str, name: str, reason: str) -> Check:
    return Check(entry["path"], kind, name, False, None, None, "not run", reason=reason)


def _integrity(bundle: Path, manifest: dict[str, Any], checks: list[Check]) -> set[str]:
    """sha256 of each listed file; files a model-looking name the manifest omits. Returns intact paths."""
    from a2bs.convert.bundle import sha256, size_bytes

    intact = set()
    for entry in manifest["files"]:
        path = bundle / entry["path"]
        if not path.exists():
            checks.append(Check(entry["path"], "integrity", "sha256", False, None, None, "sha256",
                                reason=f"{entry['path']} is missing from the bundle"))  # fmt: skip
            continue
        digest = sha256(path)
        ok = digest == entry["sha256"]
        reason = "" if ok else f"{entry['path']}: sha256 {digest[:12]}... != manifest {entry['sha256'][:12]}..."
        checks.append(Check(entry["path"], "integrity", "sha256", ok, None, None, "sha256", reason=reason,
                            details={"sha256": digest, "bytes": size_bytes(path)}))  # fmt: skip
        if ok:
            intact.add(entry["path"])
    listed = {e["path"] for e in manifest["files"]}
    for path in sorted(bundle.iterdir()):
        if path.suffix in (".tflite", ".mlpackage", ".mlmodel", ".mlmodelc") and path.name not in listed:
            checks.append(Check(path.name, "integrity", "listed in manifest", False, None, None, "manifest",
                                reason=f"{path.name} is in the bundle but not in manifest.json"))  # fmt: skip
    return intact


def _reference(manifest: dict[str, Any], checkpoint: Path | None, checks: list[Check], loaded: Any = None) -> Any:
    """The torch reference: --checkpoint, else the manifest's source, else the bundled default, checked by
    fingerprint so a parity figure is never computed against the wrong model."""
    from a2bs.core.checkpoint import default_checkpoint_dir, fingerprint, load_checkpoint

    wanted = manifest["checkpoint"].get("fingerprint")
    if loaded is not None and fingerprint(loaded) == wanted:
        checks.append(Check("manifest.json", "manifest", "reference checkpoint", True, None, None, "PyTorch",
                            details={"checkpoint": loaded.source, "fingerprint": wanted}))  # fmt: skip
        return loaded
    candidates = [checkpoint] if checkpoint else [Path(manifest["checkpoint"]["source"]),
                                                  default_checkpoint_dir(int(manifest["fps"]))]  # fmt: skip
    tried = []
    for path in candidates:
        if not path or not Path(path).is_dir():
            tried.append(f"{path} (not found)")
            continue
        ckpt = load_checkpoint(path)
        got = fingerprint(ckpt)
        if wanted is None or got == wanted:
            checks.append(Check("manifest.json", "manifest", "reference checkpoint", True, None, None, "PyTorch",
                                details={"checkpoint": str(path), "fingerprint": got}))  # fmt: skip
            return ckpt
        tried.append(f"{path} (different weights)")
    reason = ("no checkpoint matches the one this bundle was built from; tried " + "; ".join(tried)
              + ". Pass --checkpoint DIR")  # fmt: skip
    checks.append(Check("manifest.json", "manifest", "reference checkpoint", False, None, None, "PyTorch",
                        reason=reason))  # fmt: skip
    return None


def _declared_io(model: Any) -> list[tuple[str, tuple[int, ...]]]:
    return [(spec["name"], tuple(spec["shape"])) for spec in model]


def _actual_io(path: Path, platform: str) -> tuple[list, list]:
    if platform == "android":
        from a2bs.mobile_validation.tflite_runner import TFLiteRunner

        io = TFLiteRunner(path).signature_io()
        return ([(n, tuple(i["shape"])) for n, i in io["inputs"].items()],
                [(n, tuple(i["shape"])) for n, i in io["outputs"].items()])  # fmt: skip
    from a2bs.convert.coreml import load_spec_summary

    spec = load_spec_summary(path)
    return [(f["name"], f["shape"]) for f in spec["inputs"]], [(f["name"], f["shape"]) for f in spec["outputs"]]


def _manifest_io(bundle: Path, manifest: dict[str, Any], intact: set[str], checks: list[Check]) -> None:
    for entry in manifest["files"]:
        if entry["path"] not in intact:
            checks.append(_not_run(entry, "manifest", "inputs/outputs", "file failed its integrity check"))
            continue
        declared = manifest["models"][entry["role"]]
        try:
            inputs, outputs = _actual_io(bundle / entry["path"], manifest["platform"])
        except Exception as exc:  # a model the runtime cannot even open is a failing check
            checks.append(_not_run(entry, "manifest", "inputs/outputs", f"cannot read the model: {_short(exc)}"))
            continue
        problems = []
        want_in, want_out = _declared_io(declared["inputs"]), _declared_io(declared["outputs"])
        if sorted(inputs) != sorted(want_in):
            problems.append(f"inputs {inputs} != manifest {want_in}")
        if sorted(outputs) != sorted(want_out):
            problems.append(f"outputs {outputs} != manifest {want_out}")
        checks.append(Check(entry["path"], "manifest", "inputs/outputs", not problems, None, None,
                            "LiteRT interpreter" if manifest["platform"] == "android" else "Core ML spec",
                            reason="; ".join(problems)))  # fmt: skip


def _sizes(bundle: Path, manifest: dict[str, Any], intact: set[str], checks: list[Check]) -> None:
    from a2bs.convert.bundle import size_bytes

    sizes = {}
    for entry in manifest["files"]:
        path = bundle / entry["path"]
        if not path.exists():
            checks.append(_not_run(entry, "size", "bytes on disk", "file is missing"))
            continue
        sizes[(entry["role"], entry["variant"])] = size = size_bytes(path)
        ok = size <= MAX_MODEL_BYTES
        checks.append(Check(entry["path"], "size", "bytes on disk", ok, size / 1e6, MAX_MODEL_BYTES / 1e6, "disk",
                            unit="MB", reason="" if ok else f"{size / 1e6:.2f} MB > 10 MB"))  # fmt: skip
    front = next((b for (role, _), b in sizes.items() if role == "front_end"), None)
    for (role, variant), size in sizes.items():
        if role == "step" and front is not None:
            total = size + front
            ok = total <= MAX_MODEL_BYTES
            checks.append(Check(f"front end + step {variant}", "size", "deployed pair", ok, total / 1e6,
                                MAX_MODEL_BYTES / 1e6, "disk", unit="MB",
                                reason="" if ok else f"together {total / 1e6:.2f} MB > 10 MB"))  # fmt: skip


# --- parity ------------------------------------------------------------------------------------


def runtime_name(platform: str, runner: Any) -> str:
    if platform == "android":
        return "LiteRT interpreter (XNNPACK, CPU)"
    if host.system() == "Darwin":
        return "Core ML (MLModel.predict, CPU only)"
    return f"NumPy MIL executor ({'fp16' if getattr(runner, 'fp16_compute', False) else 'fp32'} compute)"


def _runner(path: Path, platform: str) -> Any:
    from a2bs.convert.backends import model_runner

    return model_runner(path, platform)


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

    from a2bs.core.audio import load_audio
    from a2bs.core.emotion import EMOTION_SPAN_S, emotion_features_at
    from a2bs.core.inference import infer_array, mel_windows

    out = []
    for path in clips:
        audio = load_audio(path)
        tail = audio[-round(EMOTION_SPAN_S * C.SAMPLE_RATE) :]
        raw = emotion_features_at(tail, len(tail) / C.SAMPLE_RATE)
        reference = infer_array(ckpt, audio, raw)
        windows = mel_windows(ckpt.model.config, audio, len(reference))
        with torch.no_grad():
            mel = ckpt.model.front_end(torch.from_numpy(windows)).numpy()
        emotion = ckpt.emotion_stats.normalize(raw[None]).astype(np.float32)
        out.append(_Clip(path.name, audio, emotion, reference, windows, mel))
    return out


def parity_metrics(reference: np.ndarray, got: np.ndarray, names: list[str] | None = None) -> dict[str, Any]:
    """MAE, max error, PSNR (peak 1: blendshapes live in [0, 1]) and per-column correlation."""
    err = got.astype(np.float64) - reference.astype(np.float64)
    mse = float(np.mean(err**2))
    ref_std, got_std = reference.std(axis=0), got.std(axis=0)
    correlation: dict[str, float | None] = {}
    for i in range(reference.shape[1]):
        name = names[i] if names else str(i)
        if ref_std[i] < ACTIVE_STD or got_std[i] == 0:
            correlation[name] = None  # a (nearly) still shape: correlation says nothing
        else:
            correlation[name] = float(np.corrcoef(reference[:, i], got[:, i])[0, 1])
    active = [v for v in correlation.values() if v is not None]
    return {
        "mae": float(np.mean(np.abs(err))),
        "max_abs": float(np.max(np.abs(err))),
        "psnr_db": min(200.0, 10 * np.log10(1.0 / max(mse, 1e-20))),
        "min_correlation": min(active) if active else None,
        "correlation": correlation,
        "mae_per_column": np.abs(err).mean(axis=0).tolist(),
    }


def _gate(metrics: dict[str, Any], limits: ParityLimits) -> list[str]:
    problems = []
    if metrics["mae"] > limits.mae:
        problems.append(f"MAE {metrics['mae']:.2e} > {limits.mae:.0e}")
    if metrics["max_abs"] > limits.max_abs:
        problems.append(f"max error {metrics['max_abs']:.2e} > {limits.max_abs:.0e}")
    if metrics["psnr_db"] < limits.psnr_db:
        problems.append(f"PSNR {metrics['psnr_db']:.1f} dB < {limits.psnr_db:.0f} dB")
    if metrics["min_correlation"] is not None and metrics["min_correlation"] < limits.min_correlation:
        worst = min((v, k) for k, v in metrics["correlation"].items() if v is not None)
        problems.append(f"correlation of {worst[1]} {worst[0]:.4f} < {limits.min_correlation}")
    return problems


def _worst_frames(clips: list[_Clip], outputs: list[np.ndarray], fps: int) -> list[dict[str, Any]]:
    rows = []
    for clip, got in zip(clips, outputs, strict=True):
        err = np.abs(got - clip.reference)
        for k in np.argsort(err.max(axis=1))[::-1][:WORST_FRAMES]:
            s = int(err[k].argmax())
            rows.append({"clip": clip.name, "frame": int(k), "time_s": round(k / fps, 3),
                         "shape": ARKIT_BLENDSHAPES[s], "error": float(err[k, s]),
                         "reference": float(clip.reference[k, s]), "artifact": float(got[k, s])})  # fmt: skip
    return sorted(rows, key=lambda r: -r["error"])[:WORST_FRAMES]


def _parity(
    bundle: Path, manifest: dict[str, Any], intact: set[str], ckpt: Any, clip_paths: list[Path],
    checks: list[Check], plot_dir: Path, progress: Progress,
) -> list[str]:  # fmt: skip
    from a2bs.core.plots import plot_curves, plot_error_map
    from a2bs.mobile_validation.streaming import BundleEngine, run_stream

    platform, fps = manifest["platform"], int(manifest["fps"])
    progress(f"reference: offline PyTorch inference on {len(clip_paths)} clip(s)")
    clips = _prepare_clips(ckpt, clip_paths)
    front_entry = next((e for e in manifest["files"] if e["role"] == "front_end"), None)
    if front_entry is None or front_entry["path"] not in intact:
        for entry in manifest["files"]:
            checks.append(_not_run(entry, "parity", "end-to-end", "the front-end model is missing or damaged"))
        return []
    front = _front_end_parity(bundle, front_entry, manifest, clips, checks)
    plots: list[str] = []
    for entry in manifest["files"]:
        if entry["role"] != "step":
            continue
        variant = entry["variant"]
        if entry["path"] not in intact or front is None:
            why = "file failed its integrity check" if front is not None else "the front-end model did not run"
            checks.append(_not_run(entry, "parity", "end-to-end", why))
            continue
        if variant in COMPRESSED:
            checks.append(_weights_check(bundle / entry["path"], entry, platform, ckpt))
        progress(f"parity: {entry['path']} frame by frame on {len(clips)} clip(s)")
        try:
            step = _runner(bundle / entry["path"], platform)
            runtime = runtime_name(platform, step)
            outputs = []
            for clip in clips:
                engine = BundleEngine(manifest, front, step, clip.emotion)
                outputs.append(run_stream(engine, clip.audio))
        except Exception as exc:  # unsupported op, runtime failure: a failing check naming the file
            checks.append(_not_run(entry, "parity", "end-to-end", f"{entry['path']} did not run: {_short(exc)}"))
            continue
        reference, got = np.concatenate([c.reference for c in clips]), np.concatenate(outputs)
        if reference.shape != got.shape:
            checks.append(_not_run(entry, "parity", "end-to-end", f"frames {got.shape} != reference {reference.shape}"))
            continue
        metrics = parity_metrics(reference, got, list(ARKIT_BLENDSHAPES))
        limits = PARITY_LIMITS[PRECISION_CLASS.get(variant, "activation_int8")]
        problems = _gate(metrics, limits)
        curves = f"{PLOTS_DIR}/parity_{variant}.png"
        errors = f"{PLOTS_DIR}/errors_{variant}.png"
        plot_curves(outputs[0], fps, plot_dir / Path(curves).name, reference=clips[0].reference,
                    label=f"{variant} ({runtime})",
                    title=f"{entry['path']} vs PyTorch on {clips[0].name}")  # fmt: skip
        plot_error_map(outputs[0] - clips[0].reference, fps, plot_dir / Path(errors).name,
                       title=f"|{variant} - PyTorch| per shape on {clips[0].name}")  # fmt: skip
        plots += [curves, errors]
        checks.append(Check(entry["path"], "parity", "end-to-end blendshapes", not problems, metrics["mae"],
                            limits.mae, runtime, reason="; ".join(problems), details={
                                "variant": variant, "precision_class": PRECISION_CLASS.get(variant),
                                "limits": asdict(limits), "mae": metrics["mae"], "max_abs": metrics["max_abs"],
                                "psnr_db": metrics["psnr_db"], "min_correlation": metrics["min_correlation"],
                                "mouth_critical_correlation": {n: metrics["correlation"][n] for n in MOUTH_CRITICAL},
                                "correlation": metrics["correlation"],
                                "worst_frames": _worst_frames(clips, outputs, fps),
                                "frames": len(got), "clips": [c.name for c in clips], "plots": [curves, errors],
                            }))  # fmt: skip
        if variant == manifest["default_variant"]:
            checks.append(_streaming_check(manifest, front, step, clips[0], outputs[0], entry, runtime))
    return plots


def _front_end_parity(bundle: Path, entry: dict[str, Any], manifest: dict[str, Any], clips: list[_Clip],
                      checks: list[Check]) -> Any:  # fmt: skip
    platform, spec = manifest["platform"], manifest["models"]["front_end"]
    pcm, mel = spec["inputs"][0]["name"], spec["outputs"][0]["name"]
    try:
        front = _runner(bundle / entry["path"], platform)
        got = np.concatenate([np.stack([front(**{pcm: w[None]})[mel].reshape(-1) for w in c.windows])
                              for c in clips])  # fmt: skip
    except Exception as exc:
        checks.append(_not_run(entry, "parity", "mel frames", f"{entry['path']} did not run: {_short(exc)}"))
        return None
    reference = np.concatenate([c.mel_reference for c in clips])
    metrics = parity_metrics(reference, got)
    err = np.abs(got - reference)
    problems = _gate({**metrics, "psnr_db": 200.0, "min_correlation": None}, FRONT_END_LIMITS)  # MAE and max only
    checks.append(Check(entry["path"], "parity", "mel frames", not problems, metrics["mae"], FRONT_END_LIMITS.mae,
                        runtime_name(platform, front), reason="; ".join(problems), details={
                            "limits": asdict(FRONT_END_LIMITS), "mae": metrics["mae"], "max_abs": metrics["max_abs"],
                            "frames": len(got), "worst_mel_bin": int(err.max(axis=0).argmax()),
                        }))  # fmt: skip
    return front


def _streaming_check(manifest: dict[str, Any], front: Any, step: Any, clip: _Clip, hop_output: np.ndarray,
                     entry: dict[str, Any], runtime: str) -> Check:  # fmt: skip
    """Irregular pieces and one whole piece must give the frames the hop-sized replay gave."""
    from a2bs.mobile_validation.streaming import BundleEngine, run_stream

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
    if worst > 1e-6:
        problems.append(f"chunking changed the output by up to {worst:.2e}")
    return Check(entry["path"], "streaming", "PCM pieces of any size = offline", not problems, worst, 1e-6, runtime,
                 reason="; ".join(problems), details={
                     "max_diff_by_chunking": diffs, "frames": n, "chunk_sizes": STREAM_CHUNKS,
                     "seconds": STREAM_CHECK_S,
                 })  # fmt: skip


def _weights_check(path: Path, entry: dict[str, Any], platform: str, ckpt: Any) -> Check:
    """Decompress the stored weights (int8 scales, LUTs) and compare them with the torch weights, so a bad
    codebook or scale shows up apart from runtime error."""
    from a2bs.convert.deploy import DeployStep

    variant = entry["variant"]
    limit, why = WEIGHT_LIMITS[COMPRESSED[variant]]
    runtime = "coremltools decompress_weights" if platform == "ios" else "LiteRT tensor buffers, dequantized"
    try:
        stored = _coreml_weights(path) if platform == "ios" else _tflite_weights(path)
    except Exception as exc:
        return _not_run(entry, "parity", "decompressed weights", f"cannot read the weights: {_short(exc)}")
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
        return Check(entry["path"], "parity", "decompressed weights", False, None, limit, runtime,
                     reason=f"no stored weight matches a torch weight (variant {variant})")  # fmt: skip
    worst = max(rows, key=lambda r: r["relative_error"])
    ok = worst["relative_error"] <= limit
    return Check(entry["path"], "parity", "decompressed weights", ok, worst["relative_error"], limit, runtime,
                 unit="relative RMS", reason="" if ok else (
                     f"weight {worst['stored']} ({worst['torch']}): relative error {worst['relative_error']:.3f}"),
                 details={"weights": rows, "why": why})  # fmt: skip


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


def _coreml_weights(path: Path) -> dict[str, np.ndarray]:
    from a2bs.convert.coreml import compressed_weights

    return compressed_weights(path)


def _tflite_weights(path: Path) -> dict[str, np.ndarray]:
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


# --- latency -----------------------------------------------------------------------------------


def _latency(bundle: Path, manifest: dict[str, Any], intact: set[str], ckpt: Any, clip: Path,
             checks: list[Check], progress: Progress) -> None:  # fmt: skip
    fps = int(manifest["fps"])
    budget_ms = C.RTF_TARGET * 1000.0 / fps
    torch_ms = _torch_latency(ckpt, manifest, clip) if ckpt is not None else {}
    for entry in manifest["files"]:
        if entry["role"] != "step":
            continue
        if entry["path"] not in intact:
            checks.append(_not_run(entry, "latency", "per-frame latency", "file failed its integrity check"))
            continue
        if manifest["platform"] == "android":
            progress(f"latency: {entry['path']} in the LiteRT interpreter, 1 and 2 threads")
            checks.append(_tflite_latency(bundle, entry, clip, budget_ms, torch_ms))
        else:
            checks.append(_coreml_latency(bundle, manifest, entry, ckpt, clip, budget_ms, torch_ms, progress))


def _torch_latency(ckpt: Any, manifest: dict[str, Any], clip: Path) -> dict[int, dict[str, float]]:
    """The PyTorch reference (the same per-frame graph) run through the same frame loop, 1 and 2 threads."""
    import torch

    from a2bs.convert.deploy import FRONT_END_OUTPUTS, STEP_OUTPUTS, DeployFrontEnd, DeployStep
    from a2bs.core.audio import load_audio
    from a2bs.mobile_validation.latency import summarize
    from a2bs.mobile_validation.streaming import BundleEngine, run_stream

    front, step = DeployFrontEnd(ckpt.model).eval(), DeployStep(ckpt.model).eval()

    def front_runner(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        return {FRONT_END_OUTPUTS[0]: front(*(torch.from_numpy(v) for v in inputs.values())).numpy()}

    def step_runner(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        outs = step(*(torch.from_numpy(v) for v in inputs.values()))
        return {name: o.numpy() for name, o in zip(STEP_OUTPUTS, outs, strict=True)}

    audio = load_audio(clip)[: 10 * C.SAMPLE_RATE]
    threads_before = torch.get_num_threads()
    out = {}
    try:
        with torch.no_grad():
            for threads in (1, 2):
                torch.set_num_threads(threads)
                engine = BundleEngine(manifest, front_runner, step_runner)
                run_stream(engine, audio)
                out[threads] = summarize(engine.timings)
    finally:
        torch.set_num_threads(threads_before)
    return out


def _tflite_latency(bundle: Path, entry: dict[str, Any], clip: Path, budget_ms: float,
                    torch_ms: dict[int, dict[str, float]]) -> Check:  # fmt: skip
    runtime = "LiteRT interpreter (XNNPACK, CPU)"
    figures = {}
    for threads in (1, 2):
        cmd = [sys.executable, "-m", "a2bs.mobile_validation.latency", str(bundle), entry["variant"], str(threads),
               str(clip)]  # fmt: skip
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if done.returncode != 0:
            lines = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return _not_run(entry, "latency", "per-frame latency", f"the LiteRT run failed: {lines}")
        figures[threads] = json.loads(done.stdout.strip().splitlines()[-1])
        if threads in torch_ms:
            figures[threads]["torch_median_ms"] = torch_ms[threads]["median_ms"]
            figures[threads]["torch_p95_ms"] = torch_ms[threads]["p95_ms"]
            figures[threads]["ratio_vs_torch"] = figures[threads]["median_ms"] / torch_ms[threads]["median_ms"]
    one = figures[1]
    problems = []
    if one["p95_ms"] > budget_ms:
        problems.append(f"p95 {one['p95_ms']:.2f} ms per frame > {budget_ms:.2f} ms ({C.RTF_TARGET:g} of a frame)")
    peak = max(f["peak_rss_mb"] for f in figures.values())
    if peak > C.MEMORY_TARGET_MB:
        problems.append(f"peak memory {peak:.0f} MB > {C.MEMORY_TARGET_MB} MB")
    return Check(entry["path"], "latency", "per-frame latency (front end + step), p95, 1 thread", not problems,
                 one["p95_ms"], budget_ms, runtime, unit="ms", reason="; ".join(problems),
                 details={"threads": {str(t): f for t, f in figures.items()}, "peak_rss_mb": peak,
                          "rtf": one["rtf"], "rtf_target": C.RTF_TARGET, "memory_target_mb": C.MEMORY_TARGET_MB,
                          "machine": machine_summary(), "clip": clip.name})  # fmt: skip


def _coreml_latency(bundle: Path, manifest: dict[str, Any], entry: dict[str, Any], ckpt: Any, clip: Path,
                    budget_ms: float, torch_ms: dict[int, dict[str, float]], progress: Progress) -> Check:  # fmt: skip
    macs = None
    if ckpt is not None:
        from a2bs.core.model import macs_per_frame

        counted = macs_per_frame(ckpt.model)
        macs = (counted["device_step"] + counted["front_end"]) / 1e6
    if host.system() != "Darwin":
        return Check(entry["path"], "latency", "per-frame latency on device", True, macs, None,
                     "not measured: Core ML runs only on macOS/iOS", unit="MMAC per frame",
                     reason="device latency not measured here; see the bundle README (Xcode performance report)",
                     details={"measured": False, "macs_per_frame_millions": macs,
                              "torch_reference_ms": torch_ms, "machine": machine_summary()})  # fmt: skip
    from a2bs.convert.backends import model_runner
    from a2bs.core.audio import load_audio
    from a2bs.mobile_validation.latency import summarize
    from a2bs.mobile_validation.streaming import BundleEngine, run_stream

    audio = load_audio(clip)[: 10 * C.SAMPLE_RATE]
    front_entry = next(e for e in manifest["files"] if e["role"] == "front_end")
    figures = {}
    for units in ("CPU_ONLY", "ALL"):
        progress(f"latency: {entry['path']} in Core ML, compute units {units}")
        front = model_runner(bundle / front_entry["path"], "ios", units)
        step = model_runner(bundle / entry["path"], "ios", units)
        engine = BundleEngine(manifest, front, step)
        run_stream(engine, audio)
        figures[units] = summarize(engine.timings)
    one = figures["CPU_ONLY"]
    ok = one["p95_ms"] <= budget_ms
    return Check(entry["path"], "latency", "per-frame latency (front end + step), p95, CPU only", ok, one["p95_ms"],
                 budget_ms, "Core ML (MLModel.predict)", unit="ms",
                 reason="" if ok else f"p95 {one['p95_ms']:.2f} ms > {budget_ms:.2f} ms",
                 details={"measured": True, "compute_units": figures, "torch_reference_ms": torch_ms,
                          "macs_per_frame_millions": macs, "machine": machine_summary()})  # fmt: skip


# --- reports -----------------------------------------------------------------------------------


def machine_summary() -> dict[str, Any]:
    cpu = host.processor() or host.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"os": f"{host.system()} {host.release()}", "cpu": cpu, "cores": os.cpu_count(),
            "python": host.python_version()}  # fmt: skip


def report_json(report: Report) -> dict[str, Any]:
    from importlib.metadata import version

    versions = {}
    for package in ("a2bs", "torch", "ai-edge-litert", "coremltools"):
        try:
            versions[package] = version(package)
        except Exception:
            versions[package] = None
    return {
        "format": "a2bs-validation",
        "passed": report.passed,
        "bundle": str(report.bundle),
        "platform": report.manifest["platform"],
        "fps": report.manifest["fps"],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(report.seconds, 1),
        "machine": machine_summary(),
        "versions": versions,
        "audio": report.audio,
        "thresholds": {
            "parity": {k: asdict(v) for k, v in PARITY_LIMITS.items()},
            "front_end": asdict(FRONT_END_LIMITS),
            "weights": {k: {"relative_rms": v[0], "reason": v[1]} for k, v in WEIGHT_LIMITS.items()},
            "model_bytes": MAX_MODEL_BYTES,
            "latency_ms_per_frame": C.RTF_TARGET * 1000.0 / report.manifest["fps"],
            "memory_mb": C.MEMORY_TARGET_MB,
        },
        "checks": [asdict(c) for c in report.checks],
        "plots": report.plots,
    }


def _write(report: Report, plot_dir: Path) -> None:
    """report.json, report.html, the plots and manifest["validation"], each replaced atomically."""
    from a2bs.core.export import replace_dir, staging_dir, write_text_atomic
    from a2bs.mobile_validation.report import README_HEADING, readme_section, render_html

    bundle = report.bundle
    data = report.data = report_json(report)
    pngs = sorted(plot_dir.glob("*.png"))
    if pngs:
        staged = staging_dir(bundle / PLOTS_DIR)
        for png in pngs:
            os.replace(png, staged / png.name)
        replace_dir(staged, bundle / PLOTS_DIR)
    write_text_atomic(bundle / REPORT_JSON, json.dumps(data, indent=1) + "\n")
    write_text_atomic(bundle / REPORT_HTML, render_html(data, bundle))
    readme = bundle / "README.md"
    if readme.is_file():
        text = readme.read_text().split("\n" + README_HEADING + "\n")[0].rstrip("\n")
        write_text_atomic(readme, text + "\n\n" + readme_section(data))
    manifest = json.loads((bundle / "manifest.json").read_text())
    failed = report.failures()
    manifest["validation"] = {
        "passed": report.passed, "report": REPORT_JSON, "html": REPORT_HTML, "created": data["created"],
        "checks": len(report.checks), "failed": [f"{c.artifact}: {c.kind} {c.name}: {c.reason}" for c in failed],
        "machine": f"{data['machine']['cpu']}, {data['machine']['cores']} cores, {data['machine']['os']}",
    }  # fmt: skip
    write_text_atomic(bundle / "manifest.json", json.dumps(manifest, indent=1) + "\n")


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
