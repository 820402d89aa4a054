"""Benchmark the life layer (core/life.py) on real speech: what it does (blinks a minute while speaking and
in pauses, blink duration, saccades a minute, head ranges, accents, nods and brow raises) and what it costs
(`a2bs infer` as a whole process, --life natural against --life off, interleaved runs).

    taskset -c 1 python benchmarks/bench_life.py core/assets/audio/speech_en_us.wav long.wav [--runs 3]

Figures are printed and written to benchmarks/results/life.json. Speaking and pauses are the layer's own
tracker's (docs/LIFE.md, "Prosody"): a pause starts 0.3 s after the speech stops.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from a2bs.core.audio import frame_centers, gather_windows, load_audio
from a2bs.core.life import PRESETS, LifeLayer
from a2bs.mobile_validation.checks import machine_summary

RESULTS = Path(__file__).resolve().parent / "results" / "life.json"
A2BS = Path(sys.executable).with_name("a2bs")


def statistics(audio: Path, curves: np.ndarray, fps: int, preset: str = "natural", seed: int = 0) -> dict:
    """The layer's events and rotations over one file, through the layer the CLI runs (same seed)."""
    samples = load_audio(audio)
    windows = gather_windows(samples, 0, frame_centers(0, len(curves), fps))
    layer = LifeLayer(PRESETS[preset], fps, seed, log=True)
    _, rotations = layer.process(curves, windows)
    speaking = np.array(layer.speaking)
    minutes = len(curves) / fps / 60
    speak_min, pause_min = speaking.sum() / fps / 60, (~speaking).sum() / fps / 60
    events = {kind: [e for e in layer.log if e.kind == kind] for kind in {e.kind for e in layer.log}}
    blinks = events.get("blink", [])
    ends = {e.frame for e in events.get("phrase_end", [])}
    in_pause = [e for e in blinks if not speaking[e.frame]]
    head = np.degrees(rotations[:, :3])
    per_min = {kind: round(len(found) / minutes, 1) for kind, found in sorted(events.items())}
    return {
        "audio": audio.name,
        "fps": fps,
        "minutes": round(minutes, 2),
        "speaking_share": round(float(speaking.mean()), 3),
        "blinks_per_min": round(len(blinks) / minutes, 1),
        "blinks_per_min_speaking": round((len(blinks) - len(in_pause)) / max(speak_min, 1e-9), 1),
        "blinks_per_min_in_pauses": round(len(in_pause) / max(pause_min, 1e-9), 1) if pause_min else None,
        "blinks_per_min_in_pauses_not_at_phrase_ends": round(
            sum(e.frame not in ends for e in in_pause) / max(pause_min, 1e-9), 1
        )
        if pause_min
        else None,
        "blink_duration_ms_mean": round(1000 * float(np.mean([e.duration_s for e in blinks])), 1) if blinks else None,
        "blink_close_over_open_mean": round(float(np.mean([e.value for e in blinks])), 2) if blinks else None,
        "events_per_min": per_min,
        "saccade_amplitude_deg_median": round(float(np.median([e.value for e in events.get("saccade", [])])), 2),
        "head_deg_min": [round(float(v), 2) for v in head.min(axis=0)],
        "head_deg_max": [round(float(v), 2) for v in head.max(axis=0)],
        "head_deg_std": [round(float(v), 2) for v in head.std(axis=0)],
    }


def infer(audio: Path, out: Path, fps: int, life: str) -> float:
    """`a2bs infer` as a whole process (start-up, model, layer, writing): its wall time in seconds."""
    command = [str(A2BS), "infer", str(audio), "-o", str(out), "--fps", str(fps), "--life", life]
    started = time.perf_counter()
    subprocess.run([*command, "--force", "--no-progress"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("audio", type=Path, nargs="+")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs of a2bs infer per setting")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    report: dict = {"machine": machine_summary(), "load_average_1min": round(os.getloadavg()[0], 2), "files": []}
    with tempfile.TemporaryDirectory() as tmp:
        for audio in args.audio:
            out = Path(tmp) / "out.npy"
            infer(audio, out, args.fps, "off")
            entry = statistics(audio, np.load(out), args.fps)
            times: dict[str, list[float]] = {"off": [], "natural": []}
            for _ in range(args.runs):
                for life in times:
                    times[life].append(infer(audio, Path(tmp) / "t.csv", args.fps, life))
            entry["infer_s_median"] = {life: round(float(np.median(t)), 2) for life, t in times.items()}
            entry["infer_s_runs"] = {life: [round(x, 2) for x in t] for life, t in times.items()}
            entry["life_adds_s"] = round(entry["infer_s_median"]["natural"] - entry["infer_s_median"]["off"], 2)
            print(json.dumps(entry, indent=1))
            report["files"].append(entry)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
