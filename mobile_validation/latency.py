"""Latency checks: per-frame latency and peak memory of a bundle's models, beside the PyTorch reference.

TFLite models are timed in a separate process (`python -m a2bs.mobile_validation.latency BUNDLE VARIANT
THREADS AUDIO`, which prints one JSON object) so that the peak memory it reports is the runtime's and the
models', not the harness's (which holds torch): the module imports no torch at its top. Core ML is timed
with `MLModel.predict` where it runs (macOS); elsewhere the check reports the MAC count as not measured.
"""

from __future__ import annotations

import json
import os
import platform as host
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from a2bs.core import constants as C
from a2bs.mobile_validation.checks import Check, Progress, machine_summary, not_run
from a2bs.mobile_validation.streaming import BundleEngine, run_stream
from a2bs.mobile_validation.tflite_runner import TFLiteRunner

WARMUP_FRAMES = 10  # first calls pay for allocation and XNNPACK packing


def summarize(timings_s: list[float], warmup: int = WARMUP_FRAMES) -> dict[str, float | int]:
    """Median, p95 and mean per-frame latency in ms over the timed calls (after the warm-up)."""
    ms = np.asarray(timings_s[warmup:] or timings_s) * 1000.0
    return {
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "frames_timed": len(ms),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB. On Linux VmHWM, which starts afresh at exec;
    ru_maxrss would carry over the peak of the (torch-holding) parent that forked this process."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def measure_tflite(bundle: Path, variant: str, threads: int, audio_path: Path) -> dict[str, Any]:
    """Run the front end + step of `variant` over the whole clip, frame by frame, as an app does."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    files = {(f["role"], f["variant"]): f["path"] for f in manifest["files"]}
    front_path = next(p for (role, _), p in files.items() if role == "front_end")
    front = TFLiteRunner(bundle / front_path, num_threads=threads)
    step = TFLiteRunner(bundle / files[("step", variant)], num_threads=threads)
    audio, rate = sf.read(str(audio_path), dtype="float32", always_2d=True)
    if rate != manifest["sample_rate"]:
        raise ValueError(f"{audio_path} is {rate} Hz; the latency harness takes {manifest['sample_rate']} Hz clips")
    audio = audio.mean(axis=1)
    engine = BundleEngine(manifest, front, step)
    started = time.perf_counter()
    run_stream(engine, audio)
    elapsed = time.perf_counter() - started
    duration = len(audio) / manifest["sample_rate"]
    return {
        **summarize(engine.timings),
        "threads": threads,
        "rtf": elapsed / duration,
        "audio_s": duration,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str]) -> int:
    bundle, variant, threads, audio = argv
    print(json.dumps(measure_tflite(Path(bundle), variant, int(threads), Path(audio))))
    return 0


# --- latency checks (run by the harness; torch is imported only here, lazily) ---------------------


def run_latency(bundle: Path, manifest: dict[str, Any], intact: set[str], ckpt: Any, clip: Path,
                checks: list[Check], progress: Progress) -> None:  # fmt: skip
    """One latency check per step model: measured (LiteRT; Core ML on macOS) or, for Core ML elsewhere,
    the MAC count marked as not measured."""
    fps = int(manifest["fps"])
    budget_ms = C.RTF_TARGET * 1000.0 / fps
    torch_ms = _torch_latency(ckpt, manifest, clip) if ckpt is not None else {}
    for entry in manifest["files"]:
        if entry["role"] != "step":
            continue
        if entry["path"] not in intact:
            checks.append(not_run(entry, "latency", "per-frame latency", "file failed its integrity check"))
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
            return not_run(entry, "latency", "per-frame latency", f"the LiteRT run failed: {lines}")
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
        from a2bs.convert.deploy import deployed_macs

        counted = deployed_macs(ckpt.model)
        macs = (counted["step"] + counted["front_end"]) / 1e6
    if host.system() != "Darwin":
        return Check(entry["path"], "latency", "per-frame latency on device", True, macs, None,
                     "not measured: Core ML runs only on macOS/iOS", unit="MMAC per frame",
                     reason="device latency not measured here; see the bundle README (Xcode performance report)",
                     details={"measured": False, "macs_per_frame_millions": macs,
                              "torch_reference_ms": torch_ms, "machine": machine_summary()})  # fmt: skip
    from a2bs.convert.backends import model_runner
    from a2bs.core.audio import load_audio

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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
