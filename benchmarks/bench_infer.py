"""Benchmark `a2bs infer` as a whole process: real-time factor and peak memory.

Makes a long speech file by chaining the bundled speech clips (real speech, with gain changes and
short pauses so it is not one clip looped), then times `a2bs infer` end to end (process start,
model load, emotion features, mel, model, CSV) and reads the child's peak RSS.

    python benchmarks/bench_infer.py                 # 6-minute file at 30 and 60 fps
    python benchmarks/bench_infer.py --hour          # adds the 1-hour peak-memory run (30 fps)

Figures are printed and written to benchmarks/results/infer.json.
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
from a2bs.core.constants import RTF_TARGET, SAMPLE_RATE

RESULTS = Path(__file__).resolve().parent / "results" / "infer.json"


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


def run_infer(audio: Path, fps: int, out_dir: Path) -> dict:
    a2bs = Path(sys.executable).with_name("a2bs")
    output = out_dir / f"{audio.stem}_{fps}.csv"
    started = time.perf_counter()
    cmd = [str(a2bs), "infer", str(audio), "-o", str(output), "--fps", str(fps), "--force", "--no-progress"]
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    summary = child.stdout.read()  # "wrote ...: ... (RTF ..., N torch threads of M free cores)"
    _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS (ru_maxrss, KiB on Linux)
    child.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"a2bs infer failed with exit code {child.returncode}")
    duration = sf.info(str(audio)).duration
    rows = sum(1 for _ in output.open()) - 1
    return {
        "audio_s": round(duration, 2),
        "fps": fps,
        "frames": rows,
        "wall_s": round(elapsed, 2),
        "rtf": round(elapsed / duration, 4),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "threads": summary.rsplit(", ", 1)[-1].strip().rstrip(")"),  # the thread choice `a2bs infer` made
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--hour", action="store_true", help="also run a 1-hour file for peak memory")
    args = parser.parse_args()
    results = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {len(os.sched_getaffinity(0))} cores",
        "python": platform.python_version(),
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        speech = make_speech_file(tmp_dir / "speech_6min.wav", args.minutes * 60)
        for fps in (30, 60):
            run = run_infer(speech, fps, tmp_dir)
            results["runs"].append(run)
            print(
                f"{run['audio_s']:.0f} s @ {fps} fps: {run['wall_s']:.1f} s wall, RTF {run['rtf']:.4f} "
                f"(target <= {RTF_TARGET}), peak RSS {run['peak_rss_mb']} MB, {run['threads']}",
                flush=True,
            )
        if args.hour:
            long = make_speech_file(tmp_dir / "speech_1h.wav", 3600)
            run = run_infer(long, 30, tmp_dir)
            results["runs"].append(run)
            print(f"1 h @ 30 fps: {run['wall_s']:.1f} s wall, RTF {run['rtf']:.4f}, peak RSS {run['peak_rss_mb']} MB")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
