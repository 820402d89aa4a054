"""Benchmark the animator's batch workflow: audio hours animated per wall-clock hour.

Makes N short dialogue lines (2-6 s, cut from the bundled real speech with gain changes), then animates
them four ways, each into a fresh output folder:
- the loop an animator would write without batch mode: one `a2bs infer FILE -o OUT` process per line
  (each process starts Python and loads the model again);
- `a2bs infer LINES/ -o OUT` in one process;
- `--workers 2` (two local processes, one model load each);
- `--dask auto --workers 2` (a local Dask cluster).
Prints and writes benchmarks/results/batch.json: wall time, audio h per wall h, speed-up over the loop,
peak RSS of the batch process (and of its children: the workers).

    python benchmarks/bench_batch.py                 # 200 lines
    python benchmarks/bench_batch.py --lines 40      # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from a2bs.core.audio import bundled_audio_dir, load_audio
from a2bs.core.constants import SAMPLE_RATE

RESULTS = Path(__file__).resolve().parent / "results" / "batch.json"
A2BS = Path(sys.executable).with_name("a2bs")


def make_lines(folder: Path, n: int, seed: int = 0) -> float:
    """Write n lines of 2-6 s of real speech; returns their total duration in seconds."""
    rng = np.random.default_rng(seed)
    speech = np.concatenate([load_audio(p) for p in sorted(bundled_audio_dir().glob("*.wav"))])
    folder.mkdir(parents=True)
    total = 0.0
    for i in range(n):
        length = int(rng.uniform(2.0, 6.0) * SAMPLE_RATE)
        start = int(rng.integers(0, len(speech) - length))
        sf.write(
            folder / f"line{i:04d}.wav",
            speech[start : start + length] * rng.uniform(0.5, 1.0),
            SAMPLE_RATE,
            subtype="PCM_16",
        )
        total += length / SAMPLE_RATE
    return total


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one command. On Linux the child's ru_maxrss is the largest of the
    process and the workers it waited for: the peak of any one process of the run."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--skip-loop", action="store_true", help="skip the one-process-per-file loop (slow)")
    args = parser.parse_args()
    results: dict = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {len(os.sched_getaffinity(0))} cores",
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "lines": args.lines,
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        audio_s = make_lines(root / "lines", args.lines)
        results["audio_s"] = round(audio_s, 1)
        print(f"{args.lines} lines, {audio_s / 60:.1f} min of speech", flush=True)
        runs = []
        if not args.skip_loop:
            (root / "loop").mkdir()
            started = time.perf_counter()
            peak = 0.0
            for wav in sorted((root / "lines").glob("*.wav")):
                _, rss = timed(
                    [str(A2BS), "infer", str(wav), "-o", str(root / "loop" / f"{wav.stem}.csv"), "--no-progress"]
                )
                peak = max(peak, rss)
            runs.append(("one process per file (loop)", time.perf_counter() - started, peak))
        base = [str(A2BS), "infer", str(root / "lines"), "--no-progress"]
        for name, extra in (
            ("batch, 1 process", []),
            ("batch, --workers 2", ["--workers", "2"]),
            ("batch, --dask auto --workers 2", ["--dask", "auto", "--workers", "2"]),
        ):
            wall, rss = timed([*base, "-o", str(root / name.replace(" ", "_")), *extra])
            runs.append((name, wall, rss))
        loop_wall = runs[0][1] if not args.skip_loop else None
        for name, wall, rss in runs:
            row = {
                "run": name,
                "wall_s": round(wall, 1),
                "audio_h_per_wall_h": round(audio_s / wall, 1),
                "speedup_vs_loop": round(loop_wall / wall, 2) if loop_wall else None,
                "peak_rss_mb_any_process": round(rss, 1),
            }
            results["runs"].append(row)
            print(
                f"{name:<32} {wall:7.1f} s  {row['audio_h_per_wall_h']:6.1f} audio h / wall h  "
                f"speed-up {row['speedup_vs_loop']}x  peak RSS {rss:.0f} MB",
                flush=True,
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
