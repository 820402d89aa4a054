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

Lips and rest (issue 26), per speaker and as the mean over speakers with a bootstrap 95 % interval:
the seal rate and over-closure rate of p/b/m (their smallest lip gap `jawOpen - mouthClose`), the rest
(mean `jawOpen` in pauses), and the rest over one second of non-speech sound prepended to every clip:
digital silence, room tone at -48 dBFS and a real noise recording, both cut from the non-speech
stretches of `../shared/data/real-speech-untranscribed` (`--noise-from`; training data, not evaluation
data). Plots of the lip gap and jawOpen over the phone strip go to benchmarks/results/articulation/.

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
import re
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
DEFAULT_NOISE = ROOT.parent.parent / "shared" / "data" / "real-speech-untranscribed"
ROOM_TONE_DBFS = -48.0
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
        out.append(
            {"name": segs.stem, "speaker": speaker or segs.stem.split("_")[0], "audio": wav, "phones": read_segs(segs)}
        )
    if not out:
        raise SystemExit(f"no .segs + .wav pairs in {folder}")
    return out


def held_out_set(corpora: list[Path], fps: int) -> list[dict[str, Any]]:
    """Real speakers never trained on: the validation takes of training corpora with a speaker-disjoint
    split (corpus.json `val_speakers`), originals only (not the perturbed `_vN` copies). Their phone
    timings come from the forced aligner, not from hand labels. The defaults' checkpoints were chosen on
    these speakers (validation); they are never trained on."""
    out = []
    for corpus in corpora:
        meta = json.loads((corpus / "corpus.json").read_text()) if (corpus / "corpus.json").is_file() else {}
        speakers = sorted(meta.get("val_speakers") or [], key=len, reverse=True)
        if not speakers or not meta.get("speaker_disjoint_validation"):
            raise SystemExit(f"error: {corpus} has no speaker-disjoint validation split (corpus.json val_speakers)")
        takes, _ = load_takes(corpus, fps)
        _, val = split_takes(corpus, takes)
        for t in val:
            if t.phones and not re.search(r"_v\d+$", t.name):
                speaker = next((s for s in speakers if t.name.startswith(s)), t.name)
                out.append({"name": t.name, "speaker": speaker, "audio": t.audio, "phones": t.phones})
    return out


def audio_of(u: dict[str, Any]) -> np.ndarray:
    """An utterance's samples: a file of the evaluation set or a held-out take's array."""
    return u["audio"] if isinstance(u["audio"], np.ndarray) else load_audio(u["audio"])


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
    counts = {
        s: {c: [len(pos), len(neg)] for c, (pos, neg) in A.contrast_pools(v).items()}
        for s, v in sorted(by_speaker.items())
    }
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


def lips(curves: Curves, utterances: list[dict[str, Any]], fps: int) -> dict[str, Any]:
    """Seal rate, over-closure rate and rest per speaker (with the bilabials and pauses behind them) and
    their means over the speakers with enough of them, with bootstrap 95 % intervals."""
    gaps: dict[str, list[float]] = defaultdict(list)
    pauses: dict[str, list[np.ndarray]] = defaultdict(list)
    for u in utterances:
        gaps[u["speaker"]] += A.bilabial_min_gaps(curves[u["name"]], u["phones"], fps)
        pauses[u["speaker"]] += A.pause_jaw(curves[u["name"]], u["phones"], fps)
    speakers = sorted({u["speaker"] for u in utterances})
    sealed = {s: gaps[s] for s in speakers if len(gaps[s]) >= A.MIN_BILABIALS_PER_SPEAKER}
    rested = {s: pauses[s] for s in speakers if len(pauses[s]) >= A.MIN_PAUSES_PER_SPEAKER}
    stats = {"seal": (sealed, A.seal_rate), "overclosed": (sealed, A.overclosed_rate), "rest": (rested, A.rest)}
    return {
        "per_speaker": {
            s: {
                "seal": A.seal_rate(gaps[s]),
                "overclosed": A.overclosed_rate(gaps[s]),
                "rest": A.rest(pauses[s]),
                "bilabials": len(gaps[s]),
                "pauses": len(pauses[s]),
                "median_min_gap": float(np.median(gaps[s])) if gaps[s] else float("nan"),
            }
            for s in speakers
        },
        "mean_over_speakers": {
            k: float(np.mean([f(v) for v in items.values()])) if items else float("nan")
            for k, (items, f) in stats.items()
        },
        "interval_95": {k: A.speaker_mean_bootstrap(items, f) for k, (items, f) in stats.items()},
        "speakers_in_mean": {"seal": sorted(sealed), "rest": sorted(rested)},
    }


def jaw_vs_loudness(real: dict[str, Any], loud: dict[str, Any]) -> dict[str, Any]:
    """Per speaker, the jaw contrast against the loudness baseline's, and whether it clears it by the target."""
    rows = {}
    for s, v in real["per_speaker"].items():
        jaw, base = v["jaw"], loud["per_speaker"][s]["jaw"]
        rows[s] = {"jaw": jaw, "loudness": base, "met": bool(jaw >= base + A.TARGET_JAW_OVER_LOUDNESS)}
    return {"per_speaker": rows, "speakers_met": sum(r["met"] for r in rows.values()), "speakers": len(rows)}


def quiet_stretch(audio: np.ndarray, seconds: float, sr: int = 16_000) -> tuple[np.ndarray, float] | None:
    """The first `seconds` of a recording's longest run of 20 ms frames within 4 dB of its noise floor
    (10th percentile of the frame powers), i.e. of a stretch without speech, and that floor in dBFS;
    None if no such run is long enough (40 ms are left out at each end of the run)."""
    hop, edge = sr // 50, 2
    m = len(audio) // hop
    if m < 10:
        return None
    power = np.mean(np.asarray(audio[: m * hop], dtype=np.float64).reshape(m, hop) ** 2, axis=1)
    db = 10 * np.log10(power + 1e-12)
    floor = float(np.percentile(db, 10))
    quiet = np.concatenate([[False], db <= floor + 4.0, [False]])
    starts, ends = np.flatnonzero(~quiet[:-1] & quiet[1:]), np.flatnonzero(quiet[:-1] & ~quiet[1:])
    j = int(np.argmax(ends - starts))
    a, b = (starts[j] + edge) * hop, (ends[j] - edge) * hop
    if b - a < seconds * sr:
        return None
    return np.asarray(audio[a : a + round(seconds * sr)], dtype=np.float32), floor


def noise_leads(folder: Path, seconds: float = 1.0) -> dict[str, dict[str, Any]]:
    """One second each of digital silence, room tone and a real noise recording, to prepend to clips.

    Room tone: the non-speech stretch of the recording in `folder` whose noise floor is nearest
    ROOM_TONE_DBFS, scaled to ROOM_TONE_DBFS RMS. Real noise: the loudest non-speech stretch of a recording
    whose floor is below -20 dBFS (louder floors are recordings with sound throughout), at its own level."""
    found = []
    for path in sorted(folder.rglob("*.flac")) + sorted(folder.rglob("*.wav")):
        got = quiet_stretch(load_audio(path), seconds)
        if got is not None and -80.0 < got[1] < -20.0:
            found.append((path, *got))
    if not found:
        raise SystemExit(f"error: no recording in {folder} has {seconds} s without speech (pass --noise-from DIR)")
    room_path, room, _ = min(found, key=lambda f: abs(f[2] - ROOM_TONE_DBFS))
    noise_path, noise, _ = max(found, key=lambda f: f[2])

    def dbfs(x: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))

    room = (room * 10 ** ((ROOM_TONE_DBFS - dbfs(room)) / 20)).astype(np.float32)
    return {
        "silence": {"audio": np.zeros(round(seconds * 16_000), dtype=np.float32), "source": "digital zeros"},
        "room_tone": {"audio": room, "source": str(room_path.relative_to(folder))},
        "real_noise": {"audio": noise, "source": str(noise_path.relative_to(folder))},
    }


def lead_rests(ckpt: Checkpoint, utterances: list[dict[str, Any]], leads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per kind of prepended sound: mean jawOpen over that second (its first 100 ms left out), per speaker
    (mean over its clips) and as the mean over speakers with a bootstrap 95 % interval."""
    fps = ckpt.model.config.fps
    out = {}
    for kind, lead in leads.items():
        by_speaker: dict[str, list[float]] = defaultdict(list)
        for u in utterances:
            curves = infer_array(ckpt, np.concatenate([lead["audio"], audio_of(u)]))
            by_speaker[u["speaker"]].append(A.lead_rest(curves, fps, len(lead["audio"]) / 16_000))
        per = {s: float(np.mean(v)) for s, v in sorted(by_speaker.items())}
        out[kind] = {
            "source": lead["source"],
            "dbfs": round(float(10 * np.log10(np.mean(np.square(lead["audio"], dtype=np.float64)) + 1e-20)), 1),
            "per_speaker": per,
            "mean_over_speakers": float(np.mean(list(per.values()))),
            "interval_95": A.speaker_mean_bootstrap(by_speaker, np.mean),
        }
    return out


def torch_curves(ckpt: Checkpoint, utterances: list[dict[str, Any]]) -> Curves:
    return {u["name"]: infer_array(ckpt, audio_of(u)) for u in utterances}


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
        audio = audio_of(u)
        out[u["name"]] = A.loudness_jaw(audio, fps, -(-len(audio) * fps // 16000))
    return out


def targets(m: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 26's targets for one model's results: rows of (target, value, threshold, met)."""
    mean = m["real_speech"]["mean_over_speakers"]
    rows = [(f"{c} contrast >= {A.TARGET_EACH}", mean[c], A.TARGET_EACH, mean[c] >= A.TARGET_EACH) for c in A.CONTRASTS]
    value = m["real_speech"]["mean_of_contrasts"]
    rows.append((f"mean of the contrasts >= {A.TARGET_MEAN}", value, A.TARGET_MEAN, value >= A.TARGET_MEAN))
    if "loudness_baseline" in m:
        need = m["loudness_baseline"]["mean_over_speakers"]["jaw"] + A.TARGET_JAW_OVER_LOUDNESS
        rows.append((f"jaw >= loudness + {A.TARGET_JAW_OVER_LOUDNESS} (mean)", mean["jaw"], need, mean["jaw"] >= need))
        per = m["jaw_vs_loudness"]
        rows.append(
            (
                "jaw >= loudness + 0.05 (speakers)",
                per["speakers_met"],
                per["speakers"],
                per["speakers_met"] == per["speakers"],
            )
        )
    lip = m["lips"]["mean_over_speakers"]
    rows += [
        (f"seal >= {A.TARGET_SEAL}", lip["seal"], A.TARGET_SEAL, lip["seal"] >= A.TARGET_SEAL),
        (
            f"over-closure <= {A.TARGET_OVERCLOSED}",
            lip["overclosed"],
            A.TARGET_OVERCLOSED,
            lip["overclosed"] <= A.TARGET_OVERCLOSED,
        ),
        (f"rest <= {A.TARGET_REST}", lip["rest"], A.TARGET_REST, lip["rest"] <= A.TARGET_REST),
    ]
    if "lead_rest" in m:
        room = m["lead_rest"]["room_tone"]["mean_over_speakers"]
        rows.append((f"rest over room tone <= {A.TARGET_REST}", room, A.TARGET_REST, room <= A.TARGET_REST))
    return [{"target": t, "value": v, "threshold": th, "met": bool(ok)} for t, v, th, ok in rows]


def rate_comparison(models: dict[str, Any]) -> list[dict[str, Any]]:
    """60 fps no worse than 30 fps on any contrast (mean over speakers), when both were scored."""
    if "torch_30fps" not in models or "torch_60fps" not in models:
        return []
    a, b = (models[f"torch_{f}fps"]["real_speech"]["mean_over_speakers"] for f in (30, 60))
    return [
        {"target": f"60 fps >= 30 fps: {c}", "value": b[c], "threshold": a[c], "met": bool(b[c] >= a[c])}
        for c in A.CONTRASTS
    ]


def emotion_report(ckpt: Checkpoint, synthetic: Path | None) -> dict[str, Any]:
    """S_overall, mean stream weights per blendshape group, and the ablation on the synthetic val split."""
    from a2bs.training.trainer import predict, prepare, raw_log_mels, specialization

    model = ckpt.model
    w_mel, w_emotion = (w.detach().numpy() for w in model.stream_weights())
    groups = {
        g: {
            "mel": float(np.mean([w_mel[INDEX[n]] for n in names])),
            "emotion": float(np.mean([w_emotion[INDEX[n]] for n in names])),
        }
        for g, names in GROUPS.items()
    }
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
        from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, EXPRESSION_INDICES, MOUTH_INDICES, STYLE_SHAPES

        # "articulation": the shapes the four contrasts score (speech, not expression)
        articulation = sorted({INDEX[n] for c in A.CONTRASTS.values() for n in c.shapes})
        sets = {
            "mouth": list(MOUTH_INDICES),
            # the mouth less the style shapes the emotion stream carries (smile, frown, dimple): speech only
            "mouth_speech": [i for i in MOUTH_INDICES if ARKIT_BLENDSHAPES[i] not in STYLE_SHAPES],
            "expression": list(EXPRESSION_INDICES),
            "articulation": articulation,
            **{g: [INDEX[n] for n in names] for g, names in GROUPS.items()},
        }
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


def plot_lip_gap(curves: dict[str, tuple[Curves, int]], utterances: list[dict[str, Any]], folder: Path) -> list[str]:
    """One PNG per utterance: the lip gap and jawOpen of every model over time, above the phone strip
    (p/b/m highlighted, pauses shaded), with the seal and over-closure lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from a2bs.corpus.visemes import PAUSES

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for u in utterances:
        fig, axes = plt.subplots(3, 1, figsize=(13, 6), sharex=True, gridspec_kw={"height_ratios": [3, 2, 0.6]})
        for label, (by_utt, fps) in curves.items():
            y = by_utt[u["name"]]
            t = np.arange(len(y)) / fps
            style = {"lw": 0.9, "ls": "--"} if label.startswith("labels") else {"lw": 1.3}
            axes[0].plot(t, A.lip_gap(y), label=label, **style)
            axes[1].plot(t, y[:, INDEX["jawOpen"]], label=label, **style)
        axes[0].axhline(A.SEAL_GAP, color="k", lw=0.7, ls=":")
        axes[0].axhline(A.OVERCLOSED_GAP, color="tab:red", lw=0.7, ls=":")
        axes[0].axhline(0.0, color="k", lw=0.5)
        axes[1].axhline(A.TARGET_REST, color="k", lw=0.7, ls=":")
        for phone, a, b in u["phones"]:
            bilabial = A.arpabet_class(phone) in A.BILABIALS
            color = "tab:orange" if bilabial else "0.6" if phone in PAUSES else None
            if color:
                for ax in axes:
                    ax.axvspan(a, b, color=color, alpha=0.25 if bilabial else 0.15, lw=0)
            axes[2].axvline(a, color="0.7", lw=0.4)
            if phone not in PAUSES:
                weight = "bold" if bilabial else "normal"
                axes[2].text((a + b) / 2, 0.5, phone, ha="center", va="center", fontsize=6, fontweight=weight)
        axes[0].set_ylabel("lip gap\njawOpen - mouthClose", fontsize=8)
        axes[1].set_ylabel("jawOpen", fontsize=8)
        axes[2].set_yticks([])
        axes[2].set_xlim(0, u["phones"][-1][2])
        axes[2].set_xlabel(
            f"s (orange: p/b/m; grey: pauses; dotted: seal {A.SEAL_GAP}, over-closed "
            f"{A.OVERCLOSED_GAP}, rest target {A.TARGET_REST})"
        )
        for ax in axes[:2]:
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7, loc="upper right")
        fig.suptitle(f"{u['name']} ({u['speaker']}): lips and rest", fontsize=9)
        fig.tight_layout()
        path = folder / f"lipgap_{u['name']}.png"
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
    parser.add_argument(
        "--noise-from",
        type=Path,
        default=DEFAULT_NOISE,
        help="recordings whose non-speech stretches give the room tone and the real noise",
    )
    parser.add_argument(
        "--held-out",
        type=Path,
        action="append",
        default=[],
        help="a training corpus whose held-out validation speakers are also scored (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.eval.is_dir():
        raise SystemExit(f"error: evaluation folder not found: {args.eval} (pass --eval DIR)")
    if not args.noise_from.is_dir():
        raise SystemExit(f"error: noise folder not found: {args.noise_from} (pass --noise-from DIR)")
    started = time.perf_counter()
    set_torch_threads("the PyTorch models", print)
    utterances = eval_set(args.eval)
    leads = noise_leads(args.noise_from)
    results: dict[str, Any] = {
        "eval": str(args.eval),
        "utterances": len(utterances),
        "speakers": sorted({u["speaker"] for u in utterances}),
        "thresholds": thresholds(),
        "prepended": {k: v["source"] for k, v in leads.items()},
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        synthetic = args.synthetic or synthetic_val(tmp)
        synth_takes, _ = load_takes(synthetic, 30)
        _, synth_val = split_takes(synthetic, synth_takes)
        plotted: dict[str, Curves] = {}
        loudness = {fps: loudness_curves(utterances, fps) for fps in {30, *args.fps}}
        loud_scores = {fps: score(curves, utterances, fps) for fps, curves in loudness.items()}
        rules30 = rule_curves(utterances, 30)
        models: dict[str, Any] = {
            "rule_curves_from_reference_phones_30fps": {
                "real_speech": score(rules30, utterances, 30),
                "lips": lips(rules30, utterances, 30),
            }
        }
        lip_plots: dict[str, tuple[Curves, int]] = {"labels (rule curves from the phones)": (rules30, 30)}
        for fps, path in ((f, args.checkpoint_30 if f == 30 else args.checkpoint_60) for f in args.fps):
            ckpt = load_checkpoint(path) if path else load_default(fps)
            loud = loud_scores[fps]
            curves = torch_curves(ckpt, utterances)
            real = score(curves, utterances, fps)
            syn_utts = [{"name": t.name, "speaker": t.name.split("_", 1)[1], "phones": t.phones} for t in synth_val]
            syn_curves = {t.name: infer_array(ckpt, t.audio) for t in synth_val}
            models[f"torch_{fps}fps"] = m = {
                "checkpoint": str(path or f"default-{fps}fps"),
                "real_speech": real,
                "loudness_baseline": loud,
                "jaw_vs_loudness": jaw_vs_loudness(real, loud),
                "lips": lips(curves, utterances, fps),
                "lead_rest": lead_rests(ckpt, utterances, leads),
                "synthetic_val": score(syn_curves, syn_utts, fps, espeak=True),
                "emotion": emotion_report(ckpt, synthetic),
            }
            m["targets"] = targets(m)
            m["targets_met"] = {row["target"]: row["met"] for row in m["targets"]}
            lip_plots[f"torch {fps} fps"] = (curves, fps)
            if args.held_out:
                held = held_out_set(args.held_out, fps)
                held_curves = torch_curves(ckpt, held)
                held_loud = score(loudness_curves(held, fps), held, fps)
                h = {"real_speech": score(held_curves, held, fps), "loudness_baseline": held_loud}
                h["jaw_vs_loudness"] = jaw_vs_loudness(h["real_speech"], held_loud)
                h["lips"] = lips(held_curves, held, fps)
                h["lead_rest"] = lead_rests(ckpt, held, leads)
                h["targets"] = targets(h)
                h["targets_met"] = {row["target"]: row["met"] for row in h["targets"]}
                models[f"torch_{fps}fps_held_out"] = h
                results["held_out"] = {"corpora": [str(c) for c in args.held_out], "utterances": len(held)}
            if fps == 30:
                plotted = {"torch": curves, "labels (rule curves from the phones)": rules30, "loudness": loudness[30]}
        if not args.no_bundles:
            for platform_name, bundle in convert_defaults(tmp).items():
                backend = "coreml" if platform_name == "ios" else "tflite"
                curves = bundle_curves(bundle, backend, utterances)
                m = {"real_speech": score(curves, utterances, 30), "loudness_baseline": loud_scores[30]}
                m["jaw_vs_loudness"] = jaw_vs_loudness(m["real_speech"], loud_scores[30])
                m["lips"] = lips(curves, utterances, 30)
                m["targets"] = targets(m)
                m["targets_met"] = {row["target"]: row["met"] for row in m["targets"]}
                models[f"{platform_name}_bundle_30fps"] = m
                plotted[platform_name] = curves
        others = [u for u in utterances if u["speaker"] != "lj"]
        picks = others[:3] + [u for u in utterances if u["speaker"] == "lj"][:1]
        results["plots"] = plot_utterances(plotted, picks, 30, PLOTS) if plotted else []
        results["plots"] += plot_lip_gap(lip_plots, picks, PLOTS)
    results["models"] = models
    results["rate_comparison"] = rate_comparison(models)
    results["machine"] = f"{platform.machine()}, {platform.processor() or platform.platform()}"
    results["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(summary(results))
    print(f"wrote {args.out}")


def summary(results: dict[str, Any]) -> str:
    lines = [
        f"{'model':24} {'real: jaw':>9} {'closure':>8} {'rounding':>8} {'f/v':>6} {'mean':>6} | "
        f"{'synth: jaw':>10} {'closure':>8} {'rounding':>8} {'f/v':>6} | closure/fv peak ms"
    ]
    for name, m in results["models"].items():
        r = m["real_speech"]
        row = [f"{r['mean_over_speakers'][c]:.3f}" for c in A.CONTRASTS] + [f"{r['mean_of_contrasts']:.3f}"]
        syn = m.get("synthetic_val")
        srow = [f"{syn['mean_over_speakers'][c]:.3f}" for c in A.CONTRASTS] if syn else ["-"] * 4
        peaks = "/".join(f"{r['peak_offset_ms'][k]['mean']:+.0f}" for k in A.TIMED if k in r["peak_offset_ms"])
        lines.append(
            f"{name:24} {row[0]:>9} {row[1]:>8} {row[2]:>8} {row[3]:>6} {row[4]:>6} | "
            f"{srow[0]:>10} {srow[1]:>8} {srow[2]:>8} {srow[3]:>6} | {peaks}"
        )
        if "interval_95" in r:
            ci = [
                f"{r['interval_95'][c][0]:.2f}-{r['interval_95'][c][1]:.2f}"
                for c in (*A.CONTRASTS, "mean_of_contrasts")
            ]
            lines.append(f"{'  95 % interval':24} {ci[0]:>9} {ci[1]:>8} {ci[2]:>8} {ci[3]:>6} {ci[4]:>6}")
        if "loudness_baseline" in m:
            lb = m["loudness_baseline"]["mean_over_speakers"]["jaw"]
            lines.append(f"{'  loudness baseline':24} {lb:>9.3f}")
        if "emotion" in m:
            e = m["emotion"]
            lines.append(
                f"  S_overall {e['s_overall']:.3f}; stream weights (mel/emotion): "
                + ", ".join(f"{g} {w['mel']:.2f}/{w['emotion']:.2f}" for g, w in e["stream_weights_by_group"].items())
            )
            if "lean_on_emotion" in e:
                lines.append(
                    f"  per shape |w_mel - w_emotion| {e['mean_commitment_per_shape']:.2f}; on the emotion "
                    f"stream: {', '.join(e['lean_on_emotion']) or 'none'}"
                )
            ab = e.get("ablation_synthetic_val")
            if ab:
                lines.append(
                    "  ablation, MAE with file / neutral emotion: "
                    + ", ".join(
                        f"{k[4:]} {ab['file_emotion'][k]:.4f}/{ab['neutral_emotion'][k]:.4f}"
                        for k in ab["file_emotion"]
                    )
                )
    lines += lips_table(results)
    return "\n".join(lines)


def thresholds() -> dict[str, Any]:
    """The definitions and speaker-count thresholds behind the lip and rest figures (stated in the output)."""
    return {
        "bilabials": f"p/b/m >= {A.BILABIAL_MIN_S * 1000:.0f} ms; smallest jawOpen - mouthClose over the phone's "
        "frames and one frame either side",
        "seal": f"smallest gap <= {A.SEAL_GAP}",
        "overclosed": f"smallest gap < {A.OVERCLOSED_GAP}",
        "rest": f"mean jawOpen over pauses >= {A.PAUSE_MIN_S * 1000:.0f} ms, {A.PAUSE_TRIM_S * 1000:.0f} ms trimmed "
        "at each edge (frames pooled per speaker)",
        "lead_rest": "mean jawOpen over 1 s prepended to each clip, its first 100 ms left out; mean over a "
        f"speaker's clips; room tone scaled to {ROOM_TONE_DBFS:.0f} dBFS RMS",
        "min_bilabials_per_speaker": A.MIN_BILABIALS_PER_SPEAKER,
        "min_pauses_per_speaker": A.MIN_PAUSES_PER_SPEAKER,
        "speakers_below_threshold": "reported per speaker, left out of the mean over speakers",
        "interval": "bootstrap 95 %: each speaker's bilabials / pauses / clips redrawn with replacement, 1000 times",
    }


def lips_table(results: dict[str, Any]) -> list[str]:
    """Per speaker: seal, over-closure, rest, rest over prepended sound, jaw against loudness; then the
    targets table (pass/fail; the script reports, it does not fail)."""
    t = results["thresholds"]
    lines = [
        "",
        f"lips and rest: bilabials {t['bilabials']}; seal: {t['seal']}; over-closed: {t['overclosed']}",
        f"  rest: {t['rest']}; prepended: {t['lead_rest']}",
        f"  sources: {results['prepended']}",
        f"  per-speaker figures count in the means with >= {t['min_bilabials_per_speaker']} bilabials (seal, "
        f"over-closure) / >= {t['min_pauses_per_speaker']} pause (rest); {t['interval']}",
    ]
    for name, m in results["models"].items():
        if "lips" not in m:
            continue
        lip, lead = m["lips"], m.get("lead_rest", {})
        jvl = m.get("jaw_vs_loudness", {}).get("per_speaker", {})
        lines.append(f"\n{name}")
        lines.append(
            f"{'speaker':10} {'seal':>6} {'over':>6} {'(p/b/m)':>8} {'rest':>6} {'(paus)':>7} "
            f"{'silence':>8} {'room':>6} {'noise':>6} | {'jaw':>6} {'loud':>6} {'+0.05':>10}"
        )
        for s, v in lip["per_speaker"].items():
            few = v["bilabials"] < t["min_bilabials_per_speaker"]
            seal = "-" if few else f"{v['seal']:.2f}"
            over = "-" if few else f"{v['overclosed']:.2f}"
            lr = [
                f"{lead[k]['per_speaker'][s]:.3f}" if k in lead else "-" for k in ("silence", "room_tone", "real_noise")
            ]
            j = jvl.get(s)
            jcols = f"{j['jaw']:>6.3f} {j['loudness']:>6.3f} {'yes' if j['met'] else 'no':>10}" if j else ""
            lines.append(
                f"{s:10} {seal:>6} {over:>6} {v['bilabials']:>8} {v['rest']:>6.3f} {v['pauses']:>7} "
                f"{lr[0]:>8} {lr[1]:>6} {lr[2]:>6} | {jcols}"
            )
        mean, ci = lip["mean_over_speakers"], lip["interval_95"]
        lr = [
            f"{lead[k]['mean_over_speakers']:.3f}" if k in lead else "-" for k in ("silence", "room_tone", "real_noise")
        ]
        lines.append(
            f"{'mean':10} {mean['seal']:>6.2f} {mean['overclosed']:>6.2f} {'':>8} {mean['rest']:>6.3f} "
            f"{'':>7} {lr[0]:>8} {lr[1]:>6} {lr[2]:>6}"
        )
        lines.append(
            f"{'  95 %':10} "
            + ", ".join(f"{k} {lo:.3f}-{hi:.3f}" for k, (lo, hi) in ci.items())
            + "".join(f", {k} {v['interval_95'][0]:.3f}-{v['interval_95'][1]:.3f}" for k, v in lead.items())
        )
    lines.append("\ntargets (issue 26; reported, not enforced)")
    lines.append(f"{'model':24} {'target':42} {'value':>7} {'needs':>7}  met")
    rows = [(name, r) for name, m in results["models"].items() for r in m.get("targets", [])]
    rows += [("torch 60 vs 30 fps", r) for r in results.get("rate_comparison", [])]
    for name, r in rows:
        value, need = (f"{x:>7}" if isinstance(x, int) else f"{x:>7.3f}" for x in (r["value"], r["threshold"]))
        lines.append(f"{name:24} {r['target']:42} {value} {need}  {'yes' if r['met'] else 'NO'}")
    return lines


if __name__ == "__main__":
    main()
