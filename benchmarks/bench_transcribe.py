"""Recogniser benchmark: how good is `a2bs data transcribe` on lines whose transcripts we know?

For a stated sample of lines with transcripts (default: every line of the small speakers (<= 50 lines) of
../shared/data/real-speech-multi, every 25th line of its large one, every 80th line of
../shared/data/real-speech), each line is recognised with `a2bs.corpus.transcribe.Recognizer` and scored:

- word error rate against the true transcript (`transcribe.wer`), beside each confidence measure
  considered (mean word posterior, share of words with posterior >= 0.5, duration-weighted mean), so
  the threshold can be read off (plot: WER vs confidence, threshold drawn);
- phone-boundary offset: the line is force-aligned (`a2bs.corpus.align.Aligner`) once with the true
  text and once with the recognised text; phones are matched by label (stress dropped, pauses
  ignored, longest common subsequence) and |start offset| is reported (median, 90th percentile, ms),
  with the share of speech frames (10 ms) whose phone is the same in both alignments;
- which lines `a2bs data transcribe` keeps at the threshold (its own checks, on the stored recognition),
  and the WER of the kept and the skipped lines; a sweep of thresholds.

    python benchmarks/bench_transcribe.py               # writes benchmarks/results/transcribe.json + plot
    python benchmarks/bench_transcribe.py --reuse       # re-aggregate the per-line rows of the last run

Training data only (never ../shared/eval).
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core.audio import load_audio
from a2bs.core.errors import A2BSError
from a2bs.corpus.align import Aligner
from a2bs.corpus.transcribe import (
    MIN_CONFIDENCE,
    Recognition,
    Recognizer,
    Unreadable,
    check_readable,
    check_recognition,
    normalize_words,
    word_errors,
)

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results" / "transcribe.json"
PLOT = ROOT / "results" / "transcribe_wer_vs_confidence.png"
DATA = ROOT.parent.parent / "shared" / "data"
if not DATA.is_dir():  # run from a worktree: /work/wt-x/benchmarks -> /work/shared/data
    DATA = Path("/work/shared/data")


def sample(multi_step: int, single_step: int) -> list[dict[str, str]]:
    """The stated sample: small speakers whole, a speaker with > 50 lines every `multi_step`-th (or `single_step`-th
    for real-speech), in file order."""
    rows: list[dict[str, str]] = []
    for folder, step in (("real-speech-multi", multi_step), ("real-speech", single_step)):
        root = DATA / folder
        with (root / "transcripts.tsv").open(newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f, delimiter="\t"))
        counts: dict[str, int] = {}
        for row in table:
            counts[row["speaker"]] = counts.get(row["speaker"], 0) + 1
        seen: dict[str, int] = {}
        for row in table:
            k = seen.get(row["speaker"], 0)
            seen[row["speaker"]] = k + 1
            if counts[row["speaker"]] <= 50 or k % step == 0:
                rows.append(
                    {
                        "set": folder,
                        "utt_id": row["utt_id"],
                        "speaker": row["speaker"],
                        "text": row["text"],
                        "audio": str(root / row["relative_flac_path"]),
                    }
                )
    return rows


_TOOLS: tuple[Recognizer, Aligner] | None = None


def _phones(aligner: Aligner, audio: np.ndarray, text: str) -> list[tuple[str, float, float]]:
    """Aligned phones covering the line, stress dropped (pauses kept, as "pau")."""
    return [(n.rstrip("012"), a, b) for n, a, b in aligner.align(audio, text)]


def _frame_labels(phones: list[tuple[str, float, float]], n: int) -> list[str]:
    """The phone label of each 10 ms frame."""
    labels = ["pau"] * n
    for name, a, b in phones:
        for k in range(round(a * 100), min(n, round(b * 100))):
            labels[k] = name
    return labels


def measure(item: dict[str, str]) -> dict[str, Any]:
    """One line: recognition (words kept for re-aggregation), WER, confidence measures, and against the
    alignment with the true text: |start offset| (ms) of matched phones and the frames with the same phone."""
    global _TOOLS
    if _TOOLS is None:
        _TOOLS = (Recognizer(), Aligner())
    recognizer, aligner = _TOOLS
    out: dict[str, Any] = {k: item[k] for k in ("set", "utt_id", "speaker", "text")}
    audio = load_audio(item["audio"])
    out["duration_s"] = round(len(audio) / 16000, 3)
    try:
        check_readable(audio)
    except A2BSError as exc:
        out["unreadable"] = str(exc)
    t0 = time.process_time()
    rec = recognizer.recognize(audio)
    out["decode_cpu_s"] = round(time.process_time() - t0, 3)
    ref = normalize_words(item["text"])
    out["hyp"] = rec.text
    out["words"] = [[w, round(a, 2), round(b, 2), round(p, 4)] for w, a, b, p in rec.words]
    out["loud_s"] = round(rec.loud_s, 2)
    out["n_ref"] = len(ref)
    out["errors"] = word_errors(ref, normalize_words(rec.text))
    post = np.array([p for *_, p in rec.words])
    dur = np.array([b - a for _, a, b, _ in rec.words])
    out["conf_mean_posterior"] = rec.confidence
    out["word_rate"] = round(rec.word_rate, 3)
    out["conf_share_over_half"] = float(np.mean(post >= 0.5)) if post.size else 0.0
    out["conf_weighted_posterior"] = float(np.sum(post * dur) / np.sum(dur)) if post.size else 0.0
    try:
        truth = _phones(aligner, audio, item["text"])
    except A2BSError as exc:
        out["align_error_true_text"] = str(exc)
        return out
    try:
        heard = _phones(aligner, audio, rec.text)
    except A2BSError as exc:
        out["align_error_recognised_text"] = str(exc)
        return out
    t, h = [p for p in truth if p[0] != "pau"], [p for p in heard if p[0] != "pau"]
    matcher = difflib.SequenceMatcher(None, [p[0] for p in t], [p[0] for p in h], autojunk=False)
    offsets = [abs(t[b.a + k][1] - h[b.b + k][1]) * 1000 for b in matcher.get_matching_blocks() for k in range(b.size)]
    out["n_phones_true"] = len(t)
    out["offsets_ms"] = [round(o, 1) for o in offsets]
    n = round(len(audio) / 160)
    ft, fh = _frame_labels(truth, n), _frame_labels(heard, n)
    speech = [k for k in range(n) if ft[k] != "pau"]
    out["frame_phone_agreement"] = round(sum(ft[k] == fh[k] for k in speech) / max(len(speech), 1), 4)
    return out


def _kept(row: dict[str, Any], threshold: float) -> bool:
    """What `a2bs data transcribe` decides for this line (the module's own checks on the stored recognition)."""
    if "unreadable" in row:
        return False
    rec = Recognition(tuple((w, a, b, p) for w, a, b, p in row["words"]), row["duration_s"], row["loud_s"])
    try:
        check_recognition(rec, threshold)
    except Unreadable:
        return False
    return True


def summarize(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Corpus WER (errors / reference words), per set and per confidence bin; offsets; the threshold's effect."""

    def corpus_wer(rs: list[dict[str, Any]]) -> float | None:
        n = sum(r["n_ref"] for r in rs)
        return round(sum(r["errors"] for r in rs) / n, 4) if n else None

    def offsets(rs: list[dict[str, Any]]) -> dict[str, Any]:
        o = np.concatenate([np.asarray(r.get("offsets_ms", []), dtype=float) for r in rs] + [np.zeros(0)])
        n_true = sum(r.get("n_phones_true", 0) for r in rs if "offsets_ms" in r)
        if not o.size:
            return {"n_matched": 0}
        return {
            "n_lines": sum(1 for r in rs if "offsets_ms" in r),
            "n_matched": int(o.size),
            "matched_share_of_true_phones": round(o.size / max(n_true, 1), 3),
            "median_ms": round(float(np.median(o)), 1),
            "p90_ms": round(float(np.percentile(o, 90)), 1),
            "p95_ms": round(float(np.percentile(o, 95)), 1),
            "mean_ms": round(float(np.mean(o)), 1),
            "share_within_20ms": round(float(np.mean(o <= 20)), 3),
            "share_over_50ms": round(float(np.mean(o > 50)), 3),
            "frame_phone_agreement": round(
                float(np.mean([r["frame_phone_agreement"] for r in rs if "offsets_ms" in r])), 3
            ),
        }

    kept = [r for r in rows if _kept(r, threshold)]
    measures = ("conf_mean_posterior", "conf_share_over_half", "conf_weighted_posterior")
    line_wer = np.array([r["errors"] / max(r["n_ref"], 1) for r in rows])
    return {
        "n_lines": len(rows),
        "minutes": round(sum(r["duration_s"] for r in rows) / 60, 2),
        "wer": {
            "all": corpus_wer(rows),
            **{s: corpus_wer([r for r in rows if r["set"] == s]) for s in sorted({r["set"] for r in rows})},
        },
        "wer_per_speaker": {
            s: corpus_wer([r for r in rows if r["speaker"] == s]) for s in sorted({r["speaker"] for r in rows})
        },
        "spearman_line_wer_vs_confidence": {
            m: round(float(_spearman(np.array([r[m] for r in rows]), line_wer)), 3) for m in measures
        },
        "threshold": threshold,
        "kept": {"n_lines": len(kept), "wer": corpus_wer(kept), "offsets": offsets(kept)},
        "skipped": {"n_lines": len(rows) - len(kept), "wer": corpus_wer([r for r in rows if r not in kept])},
        "offsets_all": offsets(rows),
        "wer_by_confidence_bin": {
            f"{k / 10:.1f}-{(k + 1) / 10:.1f}": {"n": len(b), "wer": corpus_wer(b)}
            for k in range(10)
            if (b := [r for r in rows if min(int(r["conf_mean_posterior"] * 10), 9) == k])
        },
        "threshold_sweep": {
            f"{t:.2f}": {"kept_lines": len(k), "kept_wer": corpus_wer(k)}
            for t in (0.0, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)
            if (k := [r for r in rows if _kept(r, t)]) is not None
        },
        "decode_cpu_rtf": round(sum(r["decode_cpu_s"] for r in rows) / sum(r["duration_s"] for r in rows), 3),
        "align_errors": {
            which: [{"utt_id": r["utt_id"], "reason": r[key]} for r in rows if key in r]
            for which, key in (
                ("true_text", "align_error_true_text"),
                ("recognised_text", "align_error_recognised_text"),
            )
        },
    }


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def plot(rows: list[dict[str, Any]], threshold: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s, marker in (("real-speech-multi", "o"), ("real-speech", "^")):
        rs = [r for r in rows if r["set"] == s]
        ax.scatter(
            [r["conf_mean_posterior"] for r in rs],
            [r["errors"] / max(r["n_ref"], 1) for r in rs],
            s=14,
            marker=marker,
            alpha=0.6,
            label=f"{s} ({len(rs)} lines)",
        )
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.2f}: lines left of it are skipped")
    ax.set_xlabel("confidence (mean word posterior)")
    ax.set_ylabel("line word error rate")
    ax.set_ylim(-0.03, min(1.5, max(1.0, max(r["errors"] / max(r["n_ref"], 1) for r in rows))) + 0.03)
    ax.set_title("PocketSphinx en-us on lines with known transcripts")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--multi-step", type=int, default=25, help="every Nth line of a large real-speech-multi speaker"
    )
    parser.add_argument("--single-step", type=int, default=80, help="every Nth line of a large real-speech speaker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=MIN_CONFIDENCE)
    parser.add_argument("--reuse", action="store_true", help="re-aggregate the per-line rows of --out")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    if args.reuse:
        previous = json.loads(args.out.read_text())
        rows, machine, wall = previous["lines"], previous["machine"], previous["wall_s"]
    else:
        items = sample(args.multi_step, args.single_step)
        print(f"{len(items)} lines; recognising and aligning with {args.workers} workers ...", flush=True)
        rows = []
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for k, row in enumerate(pool.map(measure, items, chunksize=2), 1):
                rows.append(row)
                print(
                    f"{k}/{len(items)} {row['utt_id']}: wer {row['errors'] / max(row['n_ref'], 1):.2f} "
                    f"conf {row['conf_mean_posterior']:.2f} rate {row['word_rate']:.1f}",
                    flush=True,
                )
        wall = round(time.perf_counter() - started, 1)
        machine = f"{platform.processor() or platform.machine()}, {args.workers} workers (shared 2-core VM)"
    summary = summarize(rows, args.threshold)
    results = {
        "sample": f"real-speech-multi: speakers with <= 50 lines whole, others every {args.multi_step}th line; "
        f"real-speech: every {args.single_step}th line of a large speaker, small speakers whole",
        "machine": machine,
        "wall_s": wall,
        **summary,
        "lines": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    plot(rows, args.threshold, PLOT)
    print(json.dumps({k: v for k, v in results.items() if k != "lines"}, indent=1))
    print(f"wrote {args.out} and {PLOT}")


if __name__ == "__main__":
    main()
