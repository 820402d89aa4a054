"""Benchmark the face above the mouth on real speech (`make bench`): the life layer (core/life.py: blinks a
minute while speaking and in pauses, blink duration, saccades a minute, head ranges, accents, nods and brow
raises, and what it costs: `a2bs infer` as a whole process, --life natural against --life off, interleaved
runs), and the model's expression stream (S_overall, how much each shape group varies over an utterance of
the evaluation set, and a calm against a lively reading of the same text).

    taskset -c 1 python benchmarks/bench_life.py                       # the bundled clip and the evaluation set
    taskset -c 1 python benchmarks/bench_life.py a.wav long.wav [--runs 3]

With no files: the bundled clip, and the 42 utterances of ../shared/eval/real-speech chained (4.3 min; read,
never trained on). Figures are printed and written to benchmarks/results/life.json, the expression figures
also drawn in benchmarks/results/expression.png. Speaking and pauses are the layer's own tracker's
(docs/LIFE.md, "Prosody"): a pause starts 0.3 s after the speech stops.
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
PLOT = RESULTS.with_name("expression.png")
A2BS = Path(sys.executable).with_name("a2bs")
EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "real-speech"
# The calm and the lively reading: PSOLA (`corpus.align.perturb`, as `a2bs data align` perturbs lines) of
# one real reading, the pitch median times `pitch`, its range times `range`, the duration times `duration`,
# the level changed by `gain_db`: the words and the voice stay, the speaking style changes.
READINGS = {
    "calm": {"pitch": 0.92, "range": 0.45, "duration": 1.12, "gain_db": -6.0},
    "lively": {"pitch": 1.18, "range": 1.8, "duration": 0.9, "gain_db": 3.0},
}


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


def _groups() -> dict[str, list[int]]:
    from a2bs.core.blendshapes import GROUPS, INDEX, STYLE_SHAPES

    out = {g: [INDEX[n] for n in names] for g, names in GROUPS.items()}
    out["style shapes"] = [INDEX[n] for n in STYLE_SHAPES]
    return out


def _frames(audio: Path, fps: int, emotion_from: Path | None = None) -> np.ndarray:
    """The shipped bundle's frames for a file (the model alone: no controls, no life layer)."""
    from a2bs.runtime.bundle_inference import iter_bundle_blendshapes
    from a2bs.runtime.manifest import shipped_bundle

    _, _, chunks = iter_bundle_blendshapes(audio, shipped_bundle(fps), "tflite", emotion_from=emotion_from)
    return np.concatenate(list(chunks))


def _reading(audio: Path, style: dict[str, float], out: Path) -> Path:
    import soundfile as sf

    from a2bs.corpus.align import Perturbation, perturb

    change = Perturbation(pitch_factor=style["pitch"], pitch_range=style["range"], duration=style["duration"])
    y, _ = perturb(load_audio(audio), [], change)
    y = y * 10 ** (style["gain_db"] / 20)
    sf.write(out, np.clip(y, -0.99, 0.99).astype(np.float32), 16000, subtype="FLOAT")
    return out


def expression_report(eval_dir: Path, fps: int, tmp: Path) -> dict:
    """The expression stream on real speech: S_overall of the default checkpoint; per shape group, the mean
    over utterances of the shapes' standard deviation over the utterance (the model alone, and with the life
    layer); and one utterance per speaker animated with the expression of a calm and of a lively reading of
    itself (`--emotion-from`): each group's mean in both and their mean absolute difference."""
    from a2bs.core.checkpoint import default_checkpoint_dir, load_checkpoint
    from a2bs.training.trainer import specialization

    groups = _groups()
    wavs = sorted(eval_dir.glob("*.wav"))
    variation: dict[str, list[float]] = {g: [] for g in groups}
    with_life: dict[str, list[float]] = {g: [] for g in groups}
    for wav in wavs:
        frames = _frames(wav, fps)
        windows = gather_windows(load_audio(wav), 0, frame_centers(0, len(frames), fps))
        lively, _ = LifeLayer(PRESETS["natural"], fps, 0).process(frames, windows)
        for g, idx in groups.items():
            variation[g].append(float(frames[:, idx].std(axis=0).mean()))
            with_life[g].append(float(lively[:, idx].std(axis=0).mean()))
    speakers = sorted({w.name.split("_")[0] for w in wavs})
    firsts = [next(w for w in wavs if w.name.startswith(s + "_")) for s in speakers]
    styles: dict[str, dict[str, list[float]]] = {name: {g: [] for g in groups} for name in READINGS}
    differences: dict[str, list[float]] = {g: [] for g in groups}
    for wav in firsts:
        got = {
            name: _frames(wav, fps, _reading(wav, style, tmp / f"{name}_{wav.name}"))
            for name, style in READINGS.items()
        }
        for g, idx in groups.items():
            for name in READINGS:
                styles[name][g].append(float(got[name][:, idx].mean()))
            differences[g].append(float(np.abs(got["lively"][:, idx] - got["calm"][:, idx]).mean()))
    return {
        "s_overall": round(specialization(load_checkpoint(default_checkpoint_dir(fps)).model), 3),
        "utterances": len(wavs),
        "variation_std_by_group": {g: round(float(np.mean(v)), 4) for g, v in variation.items()},
        "variation_std_by_group_with_life": {g: round(float(np.mean(v)), 4) for g, v in with_life.items()},
        "readings": READINGS,
        "reading_utterances": [w.stem for w in firsts],
        "mean_by_group": {name: {g: round(float(np.mean(v)), 4) for g, v in by.items()} for name, by in styles.items()},
        "lively_minus_calm_mean_abs_by_group": {g: round(float(np.mean(v)), 4) for g, v in differences.items()},
    }


def plot_expression(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(report["variation_std_by_group"])
    x = np.arange(len(groups))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].bar(x - 0.2, [report["variation_std_by_group"][g] for g in groups], 0.4, label="model")
    axes[0].bar(x + 0.2, [report["variation_std_by_group_with_life"][g] for g in groups], 0.4, label="+ life layer")
    axes[0].set_title(f"variation over an utterance ({report['utterances']} real utterances)")
    axes[0].set_ylabel("std over frames, mean over the group's shapes")
    for i, name in enumerate(READINGS):
        axes[1].bar(x + (i - 0.5) * 0.4, [report["mean_by_group"][name][g] for g in groups], 0.4, label=name)
    axes[1].set_title("the same words, expression from a calm / a lively reading")
    axes[1].set_ylabel("mean value")
    for ax in axes:
        ax.set_xticks(x, groups, rotation=20)
        ax.legend()
    fig.suptitle(f"expression stream, S_overall {report['s_overall']:.3f} (spec: 0.6-0.9)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chained(wavs: list[Path], out: Path) -> Path:
    """The files one after another with 0.5 s of digital silence between them (one long file)."""
    import soundfile as sf

    gap = np.zeros(8000, np.float32)
    sf.write(out, np.concatenate([x for w in wavs for x in (load_audio(w), gap)]), 16000, subtype="FLOAT")
    return out


def infer(audio: Path, out: Path, fps: int, life: str) -> float:
    """`a2bs infer` as a whole process (start-up, model, layer, writing): its wall time in seconds."""
    command = [str(A2BS), "infer", str(audio), "-o", str(out), "--fps", str(fps), "--life", life]
    started = time.perf_counter()
    subprocess.run([*command, "--force", "--no-progress"], check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("audio", type=Path, nargs="*", help="default: the bundled clip and the evaluation set")
    parser.add_argument("--eval", type=Path, default=EVAL, help="real speech for the expression figures")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs of a2bs infer per setting")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()
    report: dict = {"machine": machine_summary(), "load_average_1min": round(os.getloadavg()[0], 2), "files": []}
    with tempfile.TemporaryDirectory() as tmp:
        files = args.audio
        if not files:
            from a2bs.core.audio import default_clip

            files = [default_clip()]
            if args.eval.is_dir():
                files.append(chained(sorted(args.eval.glob("*.wav")), Path(tmp) / "eval_real_speech_chained.wav"))
        for audio in files:
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
        if args.eval.is_dir():
            report["expression"] = expression_report(args.eval, args.fps, Path(tmp))
            print(json.dumps(report["expression"], indent=1))
            plot_expression(report["expression"], PLOT)
            print(f"wrote {PLOT}")
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
