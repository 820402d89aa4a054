"""Per-frame latency and peak memory of a bundle's TFLite models in the LiteRT interpreter.

Run as its own process (`python -m a2bs.mobile_validation.latency BUNDLE VARIANT THREADS AUDIO`) so
that the peak resident memory it reports is the runtime's and the models', not the harness's (which
holds torch). It imports no torch. Prints one JSON object.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
