"""Benchmark the face preview (`a2bs.viz.preview`): drawing alone and the whole video (drawing + the
wheel's ffmpeg encoding H.264 + AAC), for one face and two side by side, 480 x 480 pixels per face.

    python benchmarks/bench_preview.py            # 20 s of speech-like curves at 30 fps

Figures are printed and written to benchmarks/results/preview.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from a2bs.core.audio import bundled_audio_dir
from a2bs.mobile_validation.checks import machine_summary
from a2bs.viz.preview import FaceRenderer, render_preview

RESULTS = Path(__file__).resolve().parent / "results" / "preview.json"
SIZE = 480


def curves(n: int, seed: int = 0) -> np.ndarray:
    """Smooth curves in [0, 1], every shape moving (the mouth opens and closes as in speech)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)[:, None] / 30.0
    level, amount = rng.uniform(0.0, 0.5, 52), rng.uniform(0.1, 0.5, 52)
    return np.clip(level + amount * np.sin(rng.uniform(1, 12, 52) * t + rng.uniform(0, 6, 52)), 0, 1).astype(np.float32)


def draw_ms(frames: np.ndarray, faces: int) -> float:
    """Median over 5 passes of the drawing time per output frame (all faces), in ms."""
    renderers = [FaceRenderer(SIZE) for _ in range(faces)]
    passes = []
    for _ in range(5):
        started = time.perf_counter()
        for frame in frames:
            for renderer in renderers:
                renderer.draw(frame)
        passes.append((time.perf_counter() - started) * 1000 / len(frames))
    return float(np.median(passes))


def video_ms(frames: np.ndarray, faces: int, audio: Path, out: Path) -> float:
    started = time.perf_counter()
    render_preview(
        [frames] * faces if faces > 1 else frames,
        30,
        out,
        audio,
        force=True,
        labels=["reference", "artifact"][:faces] if faces > 1 else None,
    )
    return (time.perf_counter() - started) * 1000 / len(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    n = round(args.seconds * 30)
    frames = curves(n)
    audio = sorted(bundled_audio_dir().glob("*.wav"))[0]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for faces in (1, 2):
            out = Path(tmp) / f"preview_{faces}.mp4"
            run = {
                "faces": faces,
                "face_px": SIZE,
                "frames": n,
                "fps": 30,
                "draw_ms_per_frame": round(draw_ms(frames[:300], faces), 2),
                "video_ms_per_frame": round(video_ms(frames, faces, audio, out), 2),
            }
            run["mp4_kb_per_s"] = round(out.stat().st_size / 1000 / args.seconds, 1)
            runs.append(run)
            print(
                f"{faces} face(s) of {SIZE}x{SIZE}: drawing {run['draw_ms_per_frame']} ms/frame, whole video "
                f"(drawing + ffmpeg H.264/AAC) {run['video_ms_per_frame']} ms/frame, {run['mp4_kb_per_s']} kB/s"
            )
    results = {"machine": machine_summary(), "load_average_1min": round(os.getloadavg()[0], 2), "runs": runs}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
