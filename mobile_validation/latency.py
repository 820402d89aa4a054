"""Latency checks: per-frame time of a bundle's models as a ratio to the PyTorch reference measured
interleaved in the same run, plus absolute figures, peak memory and MACs.

The build host is not the phone, so its load must not fail an artifact: the check fails only on what the
artifact controls (`judge`), reports a noisy measurement as "inconclusive", and applies the absolute
budget only when strict (a quiet, dedicated host). Peak memory comes from a separate torch-free process
(`python -m a2bs.mobile_validation.latency BUNDLE VARIANT THREADS AUDIO`, printing one JSON object), so it
is the runtime's and the models', not the harness's: this module imports no torch at its top. Core ML is
timed with `MLModel.predict` where it runs (macOS); elsewhere the check reports the MAC count.
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
from a2bs.core.architecture import macs
from a2bs.core.audio import load_audio
from a2bs.core.progress import Progress
from a2bs.core.threads import choose_threads, usable_cores
from a2bs.mobile_validation.checks import Check, machine_summary, not_run
from a2bs.runtime.bundle_inference import model_runner
from a2bs.runtime.engine import BundleEngine, run_stream
from a2bs.runtime.tflite_runner import TFLiteRunner

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

# The build host is not the phone: its latency is evidence, not a property of the artifact. What the
# artifact controls, and so what fails: being much slower than the PyTorch reference loop on the same host
# (measured interleaved with it, so load hits both), its peak memory and its MAC count.
MAX_RATIO_VS_TORCH = 3.0  # LiteRT front end + step may take at most 3x the PyTorch reference (measured 0.3-1.0)
MAC_BUDGET_PER_S = 3e9  # MACs per second of audio: a tenth of a phone big core's ~30 GMAC/s (NEON fp32)
NOISE_BLOCKS = 6  # the interleaved run is cut into this many blocks; their ratios must agree
MAX_BLOCK_SPREAD = 1.5  # max / min block ratio beyond which the measurement is too noisy to judge
MAX_TAIL = 4.0  # p95 / median of either loop beyond which preemption dominates the timings
LATENCY_AUDIO_S = 10.0


def run_latency(
    bundle: Path,
    manifest: dict[str, Any],
    intact: set[str],
    ckpt: Any,
    clip: Path,
    checks: list[Check],
    progress: Progress,
    strict: bool = False,
) -> None:
    """One latency check per step model: LiteRT interleaved with the PyTorch reference (Core ML on macOS),
    or, for Core ML elsewhere, the MAC count marked as not measured. `strict` (a quiet, dedicated host)
    also applies the absolute budget (p95 <= a tenth of a frame) and fails an inconclusive measurement."""
    fps = int(manifest["fps"])
    budget_ms = C.RTF_TARGET * 1000.0 / fps
    macs = _macs_per_frame(ckpt)
    for entry in manifest["files"]:
        if entry["role"] != "step":
            continue
        if entry["path"] not in intact:
            checks.append(not_run(entry, "latency", "per-frame latency", "file failed its integrity check"))
            continue
        if manifest["platform"] == "android":
            if ckpt is None:
                checks.append(not_run(entry, "latency", "per-frame latency", "no reference checkpoint to compare"))
                continue
            checks.append(_tflite_latency(bundle, manifest, entry, ckpt, clip, budget_ms, macs, strict, progress))
        else:
            checks.append(_coreml_latency(bundle, manifest, entry, ckpt, clip, budget_ms, macs, strict, progress))


def _macs_per_frame(ckpt: Any) -> float | None:
    if ckpt is None:
        return None
    counted = macs(ckpt.model.config)
    return float(counted["step"] + counted["front_end"])


def _torch_runners(ckpt: Any) -> tuple[Any, Any]:
    """The PyTorch reference as the same per-frame graph (the deploy modules), with named inputs."""
    import torch

    from a2bs.core.deploy import FRONT_END_OUTPUTS, STEP_OUTPUTS, DeployFrontEnd, DeployStep

    front, step = DeployFrontEnd(ckpt.model).eval(), DeployStep(ckpt.model).eval()

    def front_runner(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            return {FRONT_END_OUTPUTS[0]: front(*(torch.from_numpy(v) for v in inputs.values())).numpy()}

    def step_runner(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            outs = step(*(torch.from_numpy(v) for v in inputs.values()))
        return {name: o.numpy() for name, o in zip(STEP_OUTPUTS, outs, strict=True)}

    return front_runner, step_runner


def interleaved(
    manifest: dict[str, Any], artifact: tuple[Any, Any], reference: tuple[Any, Any], audio: np.ndarray
) -> dict[str, Any]:
    """Run the artifact's and the reference's frame loops side by side, one hop of PCM to each in turn, so
    that whatever else loads the machine hits both alike. Returns both loops' figures, the ratio of their
    medians, the ratio in each of NOISE_BLOCKS consecutive blocks, and whether the measurement is
    conclusive (`noise`: the reasons it is not)."""
    engines = [BundleEngine(manifest, *artifact), BundleEngine(manifest, *reference)]
    hop = engines[0].sample_rate // engines[0].fps
    for start in range(0, len(audio), hop):
        for engine in engines:
            engine.push(audio[start : start + hop])
    for engine in engines:
        engine.finish()
    ours, theirs = (np.asarray(e.timings[WARMUP_FRAMES:]) * 1000.0 for e in engines)
    pairs = zip(np.array_split(ours, NOISE_BLOCKS), np.array_split(theirs, NOISE_BLOCKS), strict=True)
    blocks = [float(np.median(a) / np.median(b)) for a, b in pairs]
    figures = {"artifact": summarize(engines[0].timings), "torch": summarize(engines[1].timings)}
    ratio = figures["artifact"]["median_ms"] / figures["torch"]["median_ms"]
    spread = max(blocks) / min(blocks)
    noise = []
    if not spread <= MAX_BLOCK_SPREAD:
        noise.append(f"the ratio varied {min(blocks):.2f}-{max(blocks):.2f} across the run (> {MAX_BLOCK_SPREAD}x)")
    for name, f in figures.items():
        tail = f["p95_ms"] / f["median_ms"]
        if not tail <= MAX_TAIL:
            noise.append(f"{name} p95 is {tail:.1f}x its median (> {MAX_TAIL:g}x): the host preempted the loop")
    return {**figures, "ratio_vs_torch": ratio, "block_ratios": blocks, "spread": spread, "noise": noise}


def _tflite_latency(
    bundle: Path,
    manifest: dict[str, Any],
    entry: dict[str, Any],
    ckpt: Any,
    clip: Path,
    budget_ms: float,
    macs: float | None,
    strict: bool,
    progress: Progress,
) -> Check:
    import torch

    front_entry = next(e for e in manifest["files"] if e["role"] == "front_end")
    audio = load_audio(clip)[: int(LATENCY_AUDIO_S * C.SAMPLE_RATE)]
    wanted = 2 if usable_cores() >= 2 else 1
    most = choose_threads(wanted, f"latency of {entry['path']} (LiteRT and PyTorch alike)", progress)
    counts = [1] if most == 1 else [1, most]
    if most < wanted:
        progress(f"latency: {wanted} threads not measured: only {most} core(s) free")
    figures: dict[int, dict[str, Any]] = {}
    threads_before = torch.get_num_threads()
    try:
        for threads in counts:
            progress(
                f"latency: {entry['path']} in the LiteRT interpreter, {threads} thread(s), interleaved "
                f"with the PyTorch reference"
            )
            torch.set_num_threads(threads)
            artifact = (
                TFLiteRunner(bundle / front_entry["path"], num_threads=threads),
                TFLiteRunner(bundle / entry["path"], num_threads=threads),
            )
            run = interleaved(manifest, artifact, _torch_runners(ckpt), audio)
            figures[threads] = {
                **run["artifact"],
                "threads": threads,
                "torch_median_ms": run["torch"]["median_ms"],
                "torch_p95_ms": run["torch"]["p95_ms"],
                "ratio_vs_torch": run["ratio_vs_torch"],
                "block_ratios": run["block_ratios"],
                "spread": run["spread"],
                "noise": run["noise"],
            }
    finally:
        torch.set_num_threads(threads_before)
    memory = _isolated_run(bundle, entry, clip)  # peak memory of the runtime alone, in its own process
    return judge(entry, figures, 1, memory, macs, budget_ms, int(manifest["fps"]), strict, clip.name)


def _isolated_run(bundle: Path, entry: dict[str, Any], clip: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "a2bs.mobile_validation.latency", str(bundle), entry["variant"], "1", str(clip)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def judge(
    entry: dict[str, Any],
    figures: dict[Any, dict[str, Any]],
    primary: Any,
    isolated: dict[str, Any],
    macs: float | None,
    budget_ms: float,
    fps: int,
    strict: bool,
    clip: str,
    runtime: str = "LiteRT interpreter (XNNPACK, CPU)",
) -> Check:
    """The latency verdict. Fails only on what the artifact controls (slower than the reference loop by
    more than MAX_RATIO_VS_TORCH, peak memory, MACs over budget); a noisy measurement is "inconclusive"
    (passes, with the reason) unless `strict`, which also applies the absolute p95 budget."""
    one = figures[primary]
    noise = list(one["noise"])  # other thread counts / compute units are evidence beside it
    verdict = "inconclusive" if noise else "measured"
    problems, notes = [], []
    if "error" in isolated:
        problems.append(f"the LiteRT run in its own process failed: {isolated['error']}")
    peak = isolated.get("peak_rss_mb")
    if peak is not None and not peak <= C.MEMORY_TARGET_MB:
        problems.append(f"peak memory {peak:.0f} MB > {C.MEMORY_TARGET_MB} MB")
    mac_budget = MAC_BUDGET_PER_S / fps
    if macs is not None and not macs <= mac_budget:
        problems.append(f"{macs / 1e6:.1f} MMAC per frame > budget {mac_budget / 1e6:.0f} MMAC")
    ratio = one["ratio_vs_torch"]
    if noise:
        notes.append("inconclusive: " + "; ".join(noise))
    elif not ratio <= MAX_RATIO_VS_TORCH:
        problems.append(f"{ratio:.2f}x the PyTorch reference's per-frame time (> {MAX_RATIO_VS_TORCH:g}x)")
    if strict:
        if noise:
            problems.append("strict latency: the measurement is inconclusive (" + "; ".join(noise) + ")")
        if not one["p95_ms"] <= budget_ms:
            problems.append(
                f"strict latency: p95 {one['p95_ms']:.2f} ms per frame > {budget_ms:.2f} ms "
                f"({C.RTF_TARGET:g} of a frame)"
            )
    reason = "; ".join(problems + notes)
    label = f"{primary} thread" if primary == 1 else str(primary)
    return Check(
        entry["path"],
        "latency",
        f"per-frame time / PyTorch reference (front end + step, {label})",
        not problems,
        ratio,
        MAX_RATIO_VS_TORCH,
        f"{runtime} vs PyTorch, interleaved",
        unit="x PyTorch",
        reason=reason,
        details={
            "verdict": verdict,
            "strict": strict,
            "ratio_vs_torch": ratio,
            "noise": noise,
            "measured": True,
            "threads" if primary == 1 else "compute_units": {str(t): f for t, f in figures.items()},
            "isolated_1_thread": isolated,
            "peak_rss_mb": peak,
            "rtf": isolated.get("rtf"),
            "budget_ms": budget_ms,
            "rtf_target": C.RTF_TARGET,
            "memory_target_mb": C.MEMORY_TARGET_MB,
            "macs_per_frame_millions": None if macs is None else macs / 1e6,
            "mac_budget_millions": mac_budget / 1e6,
            "load_average": _load(),
            "machine": machine_summary(),
            "clip": clip,
        },
    )


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _coreml_latency(
    bundle: Path,
    manifest: dict[str, Any],
    entry: dict[str, Any],
    ckpt: Any,
    clip: Path,
    budget_ms: float,
    macs: float | None,
    strict: bool,
    progress: Progress,
) -> Check:
    fps = int(manifest["fps"])
    mac_budget = MAC_BUDGET_PER_S / fps
    if host.system() != "Darwin" or ckpt is None:
        over = macs is not None and not macs <= mac_budget
        reason = (
            f"{macs / 1e6:.1f} MMAC per frame > budget {mac_budget / 1e6:.0f} MMAC"
            if over
            else "device latency not measured here; see the bundle README (Xcode performance report)"
        )
        return Check(
            entry["path"],
            "latency",
            "per-frame latency on device",
            not over,
            None if macs is None else macs / 1e6,
            mac_budget / 1e6,
            "not measured: Core ML runs only on macOS/iOS",
            unit="MMAC per frame",
            reason=reason,
            details={
                "measured": False,
                "verdict": "not measured",
                "macs_per_frame_millions": None if macs is None else macs / 1e6,
                "mac_budget_millions": mac_budget / 1e6,
                "machine": machine_summary(),
            },
        )

    audio = load_audio(clip)[: int(LATENCY_AUDIO_S * C.SAMPLE_RATE)]
    front_entry = next(e for e in manifest["files"] if e["role"] == "front_end")
    figures = {}
    for units in ("CPU_ONLY", "ALL"):
        progress(f"latency: {entry['path']} in Core ML, compute units {units}, interleaved with PyTorch")
        artifact = (
            model_runner(bundle / front_entry["path"], "ios", units),
            model_runner(bundle / entry["path"], "ios", units),
        )
        run = interleaved(manifest, artifact, _torch_runners(ckpt), audio)
        figures[units] = {
            **run["artifact"],
            "torch_median_ms": run["torch"]["median_ms"],
            "ratio_vs_torch": run["ratio_vs_torch"],
            "block_ratios": run["block_ratios"],
            "spread": run["spread"],
            "noise": run["noise"],
        }
    return judge(entry, figures, "CPU_ONLY", {}, macs, budget_ms, fps, strict, clip.name, "Core ML (MLModel.predict)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
