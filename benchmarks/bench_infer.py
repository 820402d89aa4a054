"""Benchmark `a2bs infer` as a whole process on one thread: the three paths side by side, and the roofline.

For 6 s, 6.5 min and 1 h of speech (the bundled clips chained, with gain changes and pauses), at 30 and 60 fps:

- batched: the default, the shipped offline LiteRT model, many frames per call (runtime/offline.py);
- per-frame: `--per-frame`, the shipped step model one frame per call, as the apps run it;
- torch: `--backend torch`, the PyTorch reference (`forward_sequence`);

each with `--life off`: the model paths alone, without the life layer drawn over their frames.

Each run is a fresh process (start, imports, model load, emotion features, mel, model, CSV) with
OMP_NUM_THREADS=1, so LiteRT and torch use one thread; wall time, RTF and the child's peak RSS are measured.
The roofline of a path is its MACs per output frame (`core/architecture.model_figures`) x frames / the GEMM rate
this machine reaches on one core (numpy's float32 matmul, measured here): the time its arithmetic would take
at that rate. Also `a2bs info` (median of 5 runs). Printed, written to benchmarks/results/infer.json and
plotted to benchmarks/results/infer.png.

    python benchmarks/bench_infer.py               # everything (about 20 minutes)
    python benchmarks/bench_infer.py --no-hour     # without the 1-hour files
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from a2bs.core.audio import bundled_audio_dir, load_audio
from a2bs.core.constants import SAMPLE_RATE

RESULTS = Path(__file__).resolve().parent / "results" / "infer.json"
PLOT = RESULTS.with_suffix(".png")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# the model paths alone: the life layer (core/life.py, on by default) is measured by benchmarks/bench_life.py
PATHS = {
    "batched": ["--life", "off"],
    "per-frame": ["--per-frame", "--life", "off"],
    "torch": ["--backend", "torch", "--life", "off"],
}
LENGTHS = {"6 s": 6.0, "6.5 min": 390.0, "1 h": 3600.0}
# issue 29's targets for the default (batched) path on 6.5 min, whole process, one thread
TARGET_RTF = {30: 0.01, 60: 0.02}
TARGET_RSS_MIB = 100.0  # MiB (ru_maxrss / 1024), as the issue's per-frame baseline of 94-98 was measured
TARGET_VS_ROOFLINE = 2.0
TARGET_INFO_S = 2.0


def make_speech_file(path: Path, seconds: float, seed: int = 0) -> Path:
    """Write `seconds` of chained bundled speech (16 kHz, 16-bit) block by block."""
    rng = np.random.default_rng(seed)
    clips = [load_audio(p) for p in sorted(bundled_audio_dir().glob("*.wav"))]
    total = int(seconds * SAMPLE_RATE)
    written = 0
    with sf.SoundFile(path, "w", samplerate=SAMPLE_RATE, channels=1, subtype="PCM_16") as out:
        while written < total:
            clip = clips[rng.integers(len(clips))] * rng.uniform(0.5, 1.0)
            pause = np.zeros(int(rng.uniform(0.1, 0.8) * SAMPLE_RATE), np.float32)
            piece = np.concatenate([clip, pause])[: total - written]
            out.write(piece)
            written += len(piece)
    return path


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """(wall seconds, the child's peak RSS in MiB, its stdout) of one process with one thread."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **ONE_THREAD})
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS (ru_maxrss, KiB on Linux)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return elapsed, usage.ru_maxrss / 1024, out


def gemm_rate() -> float:
    """GMAC/s of numpy's float32 matmul (2048 x 2048) on one core: the best of 5, in a fresh process."""
    code = (
        "import numpy as np, time\n"
        "a = np.random.rand(2048, 2048).astype(np.float32); b = a.copy(); a @ b\n"
        "best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))\n"
        "print(2048 ** 3 / best / 1e9)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=ONE_THREAD)
    return float(out.stdout)


def macs_per_frame() -> dict[int, dict[str, float]]:
    """MACs per output frame of each path, per fps (the front end included where the path runs it)."""
    from a2bs.core.architecture import ModelConfig, model_figures

    out = {}
    for fps in (30, 60):
        f = model_figures(ModelConfig.for_fps(fps))
        out[fps] = {
            "batched": f["offline_model_mmac"] * 1e6,
            "per-frame": (f["shipped_step_mmac"] + f["front_end_mmac"]) * 1e6,
            "torch": (f["offline_mmac"] + f["front_end_mmac"]) * 1e6,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-hour", action="store_true", help="skip the 1-hour files")
    args = parser.parse_args()
    a2bs = str(Path(sys.executable).with_name("a2bs"))
    rate = gemm_rate()
    macs = macs_per_frame()
    results = {
        "machine": f"{platform.machine()} {_cpu()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable)",
        "python": platform.python_version(),
        "threads": 1,
        "gemm_gmac_per_s": round(rate, 1),
        "macs_per_frame": {str(fps): {k: round(v) for k, v in m.items()} for fps, m in macs.items()},
        "runs": [],
    }
    print(f"{results['machine']}; one thread; float32 GEMM {rate:.1f} GMAC/s", flush=True)
    print(f"{'audio':>8} {'fps':>3} {'path':<9} {'wall s':>8} {'RTF':>7} {'peak MiB':>8} {'roofline s':>10} {'x':>5}")
    lengths = {k: v for k, v in LENGTHS.items() if not (args.no_hour and v >= 3600)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        for label, seconds in lengths.items():
            speech = make_speech_file(tmp_dir / f"speech_{int(seconds)}s.wav", seconds)
            for fps in (30, 60):
                for path, flags in PATHS.items():
                    out = tmp_dir / f"out_{fps}_{path}.csv"
                    cmd = [a2bs, "infer", str(speech), "-o", str(out), "--fps", str(fps), "--force", "--no-progress"]
                    wall, rss, _ = timed(cmd + flags)
                    frames = sum(1 for _ in out.open()) - 1
                    roofline = macs[fps][path] * frames / (rate * 1e9)
                    run = {
                        "audio": label,
                        "audio_s": seconds,
                        "fps": fps,
                        "path": path,
                        "frames": frames,
                        "wall_s": round(wall, 2),
                        "rtf": round(wall / seconds, 4),
                        "peak_rss_mib": round(rss, 1),
                        "roofline_s": round(roofline, 2),
                        "vs_roofline": round(wall / roofline, 2),
                    }
                    results["runs"].append(run)
                    print(
                        f"{label:>8} {fps:>3} {path:<9} {wall:>8.2f} {run['rtf']:>7.4f} {rss:>8.1f} "
                        f"{roofline:>10.2f} {run['vs_roofline']:>5.2f}",
                        flush=True,
                    )
    info = sorted(timed([a2bs, "info"])[0] for _ in range(5))
    results["info_s"] = round(statistics.median(info), 2)
    print(f"a2bs info: {results['info_s']:.2f} s (median of 5; target < {TARGET_INFO_S} s)")
    results["targets"] = targets(results)
    for line in results["targets"]:
        print(line)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, PLOT)
    print(f"wrote {RESULTS} and {PLOT}")


def targets(results: dict) -> list[str]:
    """The issue's targets for the default path on 6.5 min, each with what was measured."""
    lines = []
    for run in results["runs"]:
        if run["path"] != "batched" or run["audio"] != "6.5 min":
            continue
        fps = run["fps"]
        for what, value, limit, ok in (
            ("RTF", run["rtf"], TARGET_RTF[fps], run["rtf"] <= TARGET_RTF[fps]),
            ("peak RSS MiB", run["peak_rss_mib"], TARGET_RSS_MIB, run["peak_rss_mib"] <= TARGET_RSS_MIB),
            ("x roofline", run["vs_roofline"], TARGET_VS_ROOFLINE, run["vs_roofline"] <= TARGET_VS_ROOFLINE),
        ):
            lines.append(f"{fps} fps 6.5 min {what}: {value} (target <= {limit}): {'met' if ok else 'NOT met'}")
    ok = results["info_s"] < TARGET_INFO_S
    lines.append(f"a2bs info: {results['info_s']} s (target < {TARGET_INFO_S} s): {'met' if ok else 'NOT met'}")
    return lines


def plot(results: dict, path: Path) -> None:
    """RTF per path and file length, one panel per fps, with each path's roofline and the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    lengths = list(dict.fromkeys(r["audio"] for r in results["runs"]))
    width = 0.8 / len(PATHS)
    for ax, fps in zip(axes, (30, 60), strict=True):
        for i, name in enumerate(PATHS):
            runs = {r["audio"]: r for r in results["runs"] if r["fps"] == fps and r["path"] == name}
            xs = [j + (i - 1) * width for j in range(len(lengths))]
            ax.bar(xs, [runs[n]["rtf"] for n in lengths], width, label=name)
            roof = [runs[n]["roofline_s"] / runs[n]["audio_s"] for n in lengths]
            ax.scatter(xs, roof, marker="_", s=300, color="black", label="roofline" if i == 0 else None)
        ax.axhline(TARGET_RTF[fps], color="red", linestyle="--", label=f"target RTF {TARGET_RTF[fps]}")
        ax.set_xticks(range(len(lengths)), lengths)
        ax.set_yscale("log")
        ax.set_title(f"{fps} fps, whole process, one thread")
        ax.set_ylabel("real-time factor (lower is faster)")
        ax.legend(fontsize=8)
    fig.suptitle(f"a2bs infer on {results['machine']} (GEMM {results['gemm_gmac_per_s']} GMAC/s)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or ""


if __name__ == "__main__":
    main()
