"""Articulation benchmark: do the lips and jaw make the right shape for each phone, on real voices?

For every utterance with phone timings, each phone is scored by the mean of a contrast's shapes over
the middle half of the phone; the AUC between two phone classes says how well the face tells them
apart (`a2bs.training.articulation.CONTRASTS`: jaw, closure, rounding, labiodental). Reported per speaker
(with the phones behind each figure) and as the mean over speakers with a bootstrap 95 % interval
(some speakers have three short utterances), beside the loudness baseline (normalized log-RMS as
"jawOpen"), for the PyTorch models (30 and 60 fps) and the default iOS and Android bundles (run
frame by frame in their runtimes, as the apps do). Also: where the peaks of the short gestures
(closures, f/v) fall relative to their phones, and the emotion stream (S_overall, per-group stream
weights, ablation).

    python benchmarks/bench_articulation.py                       # defaults (converts the bundles)
    python benchmarks/bench_articulation.py --checkpoint-30 runs/x/best --no-bundles

Real speech: ../shared/eval/real-speech (Festival .segs + .wav; evaluation only, never for training
or choosing checkpoints). Synthetic validation split: a held-out-voice corpus made on the fly
(`--synthetic DIR` to reuse one). Writes benchmarks/results/articulation.json and plots in
benchmarks/results/articulation/.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core.audio import load_audio
from a2bs.core.blendshapes import GROUPS, INDEX
from a2bs.core.checkpoint import Checkpoint, load_checkpoint, load_default
from a2bs.core.inference import infer_array
from a2bs.core.threads import set_torch_threads
from a2bs.corpus.dataset import load_takes, split_takes
from a2bs.corpus.voices import read_segs
from a2bs.training import articulation as A

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "articulation.json"
PLOTS = ROOT / "results" / "articulation"
DEFAULT_EVAL = ROOT.parent.parent / "shared" / "eval" / "real-speech"
Curves = dict[str, np.ndarray]  # utterance -> (n, 52)


def eval_set(folder: Path) -> list[dict[str, Any]]:
    """Utterances with phone timings: name, speaker, audio, phones."""
    manifest = json.loads((folder / "manifest.json").read_text()) if (folder / "manifest.json").is_file() else {}
    items = manifest.get("utterances", manifest) if isinstance(manifest, dict) else {}
    out = []
    for segs in sorted(folder.glob("*.segs")):
        wav = segs.with_suffix(".wav")
        if not wav.is_file():
            continue
        meta = items.get(segs.stem, {}) if isinstance(items, dict) else {}
        speaker = meta.get("speaker") if isinstance(meta, dict) else None
        out.append({"name": segs.stem, "speaker": speaker or segs.stem.split("_")[0], "audio": wav,
                    "phones": read_segs(segs)})  # fmt: skip
    if not out:
        raise SystemExit(f"no .segs + .wav pairs in {folder}")
    return out


def score(curves: Curves, utterances: list[dict[str, Any]], fps: int, espeak: bool = False) -> dict[str, Any]:
    """AUC per contrast per speaker, their mean over speakers with a bootstrap 95 % interval, the phones
    behind each speaker's figure, and the peak offsets of the short gestures."""
    by_speaker: dict[str, list] = defaultdict(list)
    offsets: dict[str, list[float]] = defaultdict(list)
    for u in utterances:
        y = curves[u["name"]]
        by_speaker[u["speaker"]].append(A.contrast_samples(y, u["phones"], fps, espeak))
        for name in A.TIMED:
            offsets[name] += A.peak_offsets_ms(y, u["phones"], fps, name, espeak)
    per_speaker = {s: A.contrast_aucs(v) for s, v in sorted(by_speaker.items())}
    mean = {c: float(np.nanmean([v[c] for v in per_speaker.values()])) for c in A.CONTRASTS}
    counts = {s: {c: [len(pos), len(neg)] for c, (pos, neg) in A.contrast_pools(v).items()}
              for s, v in sorted(by_speaker.items())}  # fmt: skip
    return {
        "per_speaker": per_speaker,
        "mean_over_speakers": mean,
        "mean_of_contrasts": float(np.mean(list(mean.values()))),
        "phones_per_speaker": counts,  # [positive, negative] phones per contrast
        "interval_95": A.speaker_mean_interval(by_speaker),
        "peak_offset_ms": {
            k: {"mean": float(np.mean(v)), "median": float(np.median(v)), "n": len(v)} for k, v in offsets.items() if v
        },
    }


def torch_curves(ckpt: Checkpoint, utterances: list[dict[str, Any]]) -> Curves:
    return {u["name"]: infer_array(ckpt, load_audio(u["audio"])) for u in utterances}


def bundle_curves(bundle: Path, backend: str, utterances: list[dict[str, Any]]) -> Curves:
    from a2bs.runtime.bundle_inference import iter_bundle_blendshapes

    out = {}
    for u in utterances:
        _, _, chunks = iter_bundle_blendshapes(u["audio"], bundle, backend)
        out[u["name"]] = np.concatenate(list(chunks))
    return out


def rule_curves(utterances: list[dict[str, Any]], fps: int) -> Curves:
    """The training targets' own rule applied to the reference phone timings: what a perfect model of
    the labels would score, and where the label rule puts the peaks (to tell label timing from model lag)."""
    from a2bs.corpus.coarticulation import phones_to_curves
    from a2bs.corpus.visemes import ARPABET_ACCENT

    out = {}
    for u in utterances:
        n = -(-round(u["phones"][-1][2] * 16000) * fps // 16000)
        out[u["name"]] = phones_to_curves(u["phones"], n, fps, accent=ARPABET_ACCENT)[0]
    return out


def loudness_curves(utterances: list[dict[str, Any]], fps: int) -> Curves:
    out = {}
    for u in utterances:
        audio = load_audio(u["audio"])
        out[u["name"]] = A.loudness_jaw(audio, fps, -(-len(audio) * fps // 16000))
    return out


def targets_met(result: dict[str, Any], loudness: dict[str, Any]) -> dict[str, bool]:
    mean = result["mean_over_speakers"]
    return {
        "every_contrast_>=_0.85": all(v >= A.TARGET_EACH for v in mean.values()),
        "mean_of_four_>=_0.90": result["mean_of_contrasts"] >= A.TARGET_MEAN,
        "jaw_>=_loudness_+_0.05": mean["jaw"] >= loudness["mean_over_speakers"]["jaw"] + A.TARGET_JAW_OVER_LOUDNESS,
    }


def emotion_report(ckpt: Checkpoint, synthetic: Path | None) -> dict[str, Any]:
    """S_overall, mean stream weights per blendshape group, and the ablation on the synthetic val split."""
    from a2bs.training.trainer import predict, prepare, raw_log_mels, specialization

    model = ckpt.model
    w_mel, w_emotion = (w.detach().numpy() for w in model.stream_weights())
    groups = {g: {"mel": float(np.mean([w_mel[INDEX[n]] for n in names])),
                  "emotion": float(np.mean([w_emotion[INDEX[n]] for n in names]))}
              for g, names in GROUPS.items()}  # fmt: skip
    out: dict[str, Any] = {
        "s_overall": specialization(model),
        "stream_weights_by_group": groups,
        # the spec's S_overall averages over categories first; this is how far each shape commits itself
        "mean_commitment_per_shape": float(np.mean(np.abs(w_mel - w_emotion))),
        "lean_on_emotion": [n for n, i in INDEX.items() if w_emotion[i] > 0.5],
        "mel_weight_by_shape": {n: round(float(w_mel[i]), 3) for n, i in INDEX.items()},
    }
    if synthetic is not None:
        takes, _ = load_takes(synthetic, model.config.fps)
        _, val = split_takes(synthetic, takes)
        data = prepare(val, raw_log_mels(val, model), model, ckpt.emotion_stats)
        rows = {"file_emotion": [], "neutral_emotion": []}
        for take in data:
            target = take.targets.numpy()
            rows["file_emotion"].append(np.abs(predict(model, take) - target))
            rows["neutral_emotion"].append(np.abs(predict(model, take, neutral_emotion=True) - target))
        from a2bs.core.blendshapes import EXPRESSION_INDICES, MOUTH_INDICES

        # "articulation": the shapes the four contrasts score (speech, not expression)
        articulation = sorted({INDEX[n] for c in A.CONTRASTS.values() for n in c.shapes})
        sets = {"mouth": list(MOUTH_INDICES), "expression": list(EXPRESSION_INDICES), "articulation": articulation,
                **{g: [INDEX[n] for n in names] for g, names in GROUPS.items()}}  # fmt: skip
        out["ablation_synthetic_val"] = {
            k: {f"mae_{name}": float(np.concatenate(v)[:, idx].mean()) for name, idx in sets.items()}
            for k, v in rows.items()
        }
    return out


def plot_utterances(curves: dict[str, Curves], utterances: list[dict[str, Any]], fps: int, folder: Path) -> list[str]:
    """One PNG per utterance: each contrast's shapes over time for every model, with the phone strip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for u in utterances:
        fig, axes = plt.subplots(len(A.CONTRASTS), 1, figsize=(13, 8), sharex=True)
        end = u["phones"][-1][2]
        for ax, (name, c) in zip(axes, A.CONTRASTS.items(), strict=True):
            for label, by_utt in curves.items():
                y = by_utt[u["name"]][:, [INDEX[s] for s in c.shapes]].sum(axis=1)
                if label == "loudness" and name != "jaw":
                    continue  # the loudness baseline is a "jawOpen" only
                dashed = label.startswith("labels")
                style = {"lw": 1.4} if label == "torch" else {"lw": 0.9, "ls": "--" if dashed else "-"}
                ax.plot(np.arange(len(y)) / fps, y, label=label, **style)
            for phone, a, b in u["phones"]:
                cls = A.arpabet_class(phone)
                color = "tab:green" if cls in c.positive else "tab:red" if cls in c.negative else None
                if color:
                    ax.axvspan(a, b, color=color, alpha=0.12, lw=0)
                if name == "jaw" and phone != "pau":
                    ax.text((a + b) / 2, 1.02, phone, transform=ax.get_xaxis_transform(), ha="center", fontsize=6)
            ax.set_ylabel(f"{name}\n" + "+".join(s.replace("mouth", "") for s in c.shapes), fontsize=7)
            ax.set_xlim(0, end)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, loc="upper right")
        axes[-1].set_xlabel("s (green: positive phones, red: negative)")
        fig.suptitle(f"{u['name']} ({u['speaker']})", fontsize=9)
        fig.tight_layout()
        path = folder / f"{u['name']}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path.relative_to(ROOT)))
    return written


def convert_defaults(tmp: Path) -> dict[str, Path]:
    """The default iOS and Android bundles (30 fps), built without validation (this is not the gate)."""
    out = {}
    for platform_name in ("ios", "android"):
        folder = tmp / platform_name
        cmd = [sys.executable, "-m", "a2bs.cli.convert", platform_name, "--out", str(folder), "--no-validate"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        out[platform_name] = folder
    return out


def synthetic_val(tmp: Path) -> Path:
    from a2bs.corpus.synth import build_corpus

    folder = tmp / "synthetic"
    build_corpus(folder, 3.0, seed=101)  # held-out voices and sentences are its "val" split
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", type=Path, default=DEFAULT_EVAL, help="real speech with .segs phone timings")
    parser.add_argument("--checkpoint-30", type=Path, help="default: the bundled 30 fps checkpoint")
    parser.add_argument("--checkpoint-60", type=Path, help="default: the bundled 60 fps checkpoint")
    parser.add_argument("--synthetic", type=Path, help="a synthetic corpus whose val split is scored (default: made)")
    parser.add_argument("--no-bundles", action="store_true", help="skip the iOS and Android bundles")
    parser.add_argument("--fps", type=int, nargs="+", default=[30, 60], choices=[30, 60], help="torch models to score")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.eval.is_dir():
        raise SystemExit(f"evaluation folder not found: {args.eval} (pass --eval DIR)")
    started = time.perf_counter()
    set_torch_threads("the PyTorch models", print)
    utterances = eval_set(args.eval)
    results: dict[str, Any] = {"eval": str(args.eval), "utterances": len(utterances),
                               "speakers": sorted({u["speaker"] for u in utterances})}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        synthetic = args.synthetic or synthetic_val(tmp)
        synth_takes, _ = load_takes(synthetic, 30)
        _, synth_val = split_takes(synthetic, synth_takes)
        plotted: dict[str, Curves] = {}
        loudness = {fps: loudness_curves(utterances, fps) for fps in {30, *args.fps}}
        loud_scores = {fps: score(curves, utterances, fps) for fps, curves in loudness.items()}
        rules30 = rule_curves(utterances, 30)
        models: dict[str, Any] = {"rule_curves_from_reference_phones_30fps": {
            "real_speech": score(rules30, utterances, 30)}}  # fmt: skip
        for fps, path in ((f, args.checkpoint_30 if f == 30 else args.checkpoint_60) for f in args.fps):
            ckpt = load_checkpoint(path) if path else load_default(fps)
            loud = loud_scores[fps]
            curves = torch_curves(ckpt, utterances)
            real = score(curves, utterances, fps)
            syn_utts = [{"name": t.name, "speaker": t.name.split("_", 1)[1], "phones": t.phones} for t in synth_val]
            syn_curves = {t.name: infer_array(ckpt, t.audio) for t in synth_val}
            models[f"torch_{fps}fps"] = {
                "checkpoint": str(path or f"default-{fps}fps"),
                "real_speech": real,
                "loudness_baseline": loud,
                "targets_met": targets_met(real, loud),
                "synthetic_val": score(syn_curves, syn_utts, fps, espeak=True),
                "emotion": emotion_report(ckpt, synthetic),
            }
            if fps == 30:
                plotted = {"torch": curves, "labels (rule curves from the phones)": rules30, "loudness": loudness[30]}
        if not args.no_bundles:
            for platform_name, bundle in convert_defaults(tmp).items():
                backend = "coreml" if platform_name == "ios" else "tflite"
                curves = bundle_curves(bundle, backend, utterances)
                real = score(curves, utterances, 30)
                met = targets_met(real, loud_scores[30])
                models[f"{platform_name}_bundle_30fps"] = {"real_speech": real, "targets_met": met}
                plotted[platform_name] = curves
        others = [u for u in utterances if u["speaker"] != "lj"]
        picks = others[:3] + [u for u in utterances if u["speaker"] == "lj"][:1]
        results["plots"] = plot_utterances(plotted, picks, 30, PLOTS) if plotted else []
    results["models"] = models
    results["machine"] = f"{platform.machine()}, {platform.processor() or platform.platform()}"
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(summary(results))
    print(f"wrote {args.out}")


def summary(results: dict[str, Any]) -> str:
    lines = [f"{'model':24} {'real: jaw':>9} {'closure':>8} {'rounding':>8} {'f/v':>6} {'mean':>6} | "
             f"{'synth: jaw':>10} {'closure':>8} {'rounding':>8} {'f/v':>6} | closure/fv peak ms"]  # fmt: skip
    for name, m in results["models"].items():
        r = m["real_speech"]
        row = [f"{r['mean_over_speakers'][c]:.3f}" for c in A.CONTRASTS] + [f"{r['mean_of_contrasts']:.3f}"]
        syn = m.get("synthetic_val")
        srow = [f"{syn['mean_over_speakers'][c]:.3f}" for c in A.CONTRASTS] if syn else ["-"] * 4
        peaks = "/".join(f"{r['peak_offset_ms'][k]['mean']:+.0f}" for k in A.TIMED if k in r["peak_offset_ms"])
        lines.append(f"{name:24} {row[0]:>9} {row[1]:>8} {row[2]:>8} {row[3]:>6} {row[4]:>6} | "
                     f"{srow[0]:>10} {srow[1]:>8} {srow[2]:>8} {srow[3]:>6} | {peaks}")  # fmt: skip
        if "interval_95" in r:
            ci = [
                f"{r['interval_95'][c][0]:.2f}-{r['interval_95'][c][1]:.2f}"
                for c in (*A.CONTRASTS, "mean_of_contrasts")
            ]
            lines.append(f"{'  95 % interval':24} {ci[0]:>9} {ci[1]:>8} {ci[2]:>8} {ci[3]:>6} {ci[4]:>6}")
        if "loudness_baseline" in m:
            lb = m["loudness_baseline"]["mean_over_speakers"]["jaw"]
            lines.append(f"{'  loudness baseline':24} {lb:>9.3f}   targets met: {m['targets_met']}")
        if "emotion" in m:
            e = m["emotion"]
            lines.append(
                f"  S_overall {e['s_overall']:.3f}; stream weights (mel/emotion): "
                + ", ".join(f"{g} {w['mel']:.2f}/{w['emotion']:.2f}" for g, w in e["stream_weights_by_group"].items())
            )
            if "lean_on_emotion" in e:
                lines.append(f"  per shape |w_mel - w_emotion| {e['mean_commitment_per_shape']:.2f}; on the emotion "
                             f"stream: {', '.join(e['lean_on_emotion']) or 'none'}")  # fmt: skip
            ab = e.get("ablation_synthetic_val")
            if ab:
                lines.append(
                    "  ablation, MAE with file / neutral emotion: "
                    + ", ".join(
                        f"{k[4:]} {ab['file_emotion'][k]:.4f}/{ab['neutral_emotion'][k]:.4f}"
                        for k in ab["file_emotion"]
                    )
                )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
