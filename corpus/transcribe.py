"""Lines without a script -> recognised text + confidence, a folder `a2bs data align` reads (`a2bs data transcribe`).

Studios have dialogue without scripts, and some public corpora ship audio only. Each line without a
transcript is recognised with PocketSphinx's bundled US English acoustic model, dictionary and
language model (offline, open vocabulary). Its confidence is the mean word posterior of the best
path (fillers and silences excluded): the share of the recognised words that the lattice supports.
Lines below `MIN_CONFIDENCE` are skipped with their recognised text in the reason, so a user can see
what was refused and lower the threshold deliberately (docs/DECISIONS.md has the measurements).

Input: ``SPEECH/transcripts.tsv`` or ``SPEECH/utterances.tsv`` (a path column as `a2bs data align`
reads; ``text`` optional: rows with text keep it), or audio files anywhere under SPEECH (a
``<name>.txt`` beside one is its script; speaker = the file's folder). Output: ``OUT/transcripts.tsv``
(``utt_id, speaker, path, duration_s, text, confidence, text_source``; ``path`` is the absolute path of
the source audio, which is referenced, not copied) and ``OUT/transcribe.json`` (every line's outcome,
skip reasons, the threshold). Lines the recogniser cannot read (silence, clipping, music, another
language: no words or a low confidence) are skipped with a reason; the run goes on; the folder is
built under a temp name and renamed into place only when complete.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a2bs.core.audio import load_audio
from a2bs.core.constants import SAMPLE_RATE
from a2bs.core.errors import A2BSError
from a2bs.core.files import check_new_dir, publish_new_dir, temp_prefix, umask
from a2bs.corpus.align import AUDIO_SUFFIXES, FRAME_S, MAX_LINE_S, PATH_COLUMNS, Line, safe_name
from a2bs.corpus.voices import read_table

MIN_CONFIDENCE = 0.5  # mean word posterior; below it a line is skipped
SILENCE_DBFS = -55.0  # RMS of the whole line below this: nothing to recognise
CLIPPED_SHARE = 0.002  # share of samples at full scale (|x| >= CLIP_LEVEL) above this: clipped recording
CLIP_LEVEL = 0.98
MIN_WORD_RATE = 1.0  # recognised words per loud second; below it the sound is not speech (a tone, music, noise)
LOUD_DB = 25.0  # frames within this of the line's 95th-percentile level count as loud (`loud_seconds`)
MIN_LINE_S = 0.3
TABLES = ("transcripts.tsv", "utterances.tsv")
_FILLERS = re.compile(r"^(<s>|</s>|<sil>|\[.*\])$")
FORMAT = "a2bs-transcripts/1"
COLUMNS = ("utt_id", "speaker", "path", "duration_s", "text", "confidence", "text_source")


class Unreadable(A2BSError):
    """One line the recogniser cannot read; the message is the skip reason, `kind` its summary category."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


@dataclass(frozen=True)
class Recognition:
    """The recogniser's best path: words (text, start s, end s, posterior), without fillers and silences."""

    words: tuple[tuple[str, float, float, float], ...]
    duration_s: float
    loud_s: float  # seconds of sound (`loud_seconds`)

    @property
    def text(self) -> str:
        return " ".join(w for w, _, _, _ in self.words)

    @property
    def word_rate(self) -> float:
        """Recognised words per second of sound: speech is about 2-5; a tone or music gets a word now and then."""
        return len(self.words) / self.loud_s if self.loud_s > 0 else 0.0

    @property
    def confidence(self) -> float:
        """Mean word posterior (0 for no words)."""
        return float(np.mean([p for _, _, _, p in self.words])) if self.words else 0.0


def rms_dbfs(audio: np.ndarray) -> float:
    """Loudness of a whole line (dB relative to a full-scale square wave; -inf for digital silence)."""
    power = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    return 10.0 * np.log10(power) if power > 0 else float("-inf")


def check_readable(audio: np.ndarray) -> None:
    """Unreadable for audio no recogniser should be trusted on: empty, too short or long, silent, clipped."""
    duration = len(audio) / SAMPLE_RATE
    if duration < MIN_LINE_S:
        raise Unreadable("too short", f"{duration:.2f} s long: too short to recognise (< {MIN_LINE_S} s)")
    if duration > MAX_LINE_S:
        raise Unreadable("too long", f"{duration:.0f} s long: split lines longer than {MAX_LINE_S:.0f} s")
    level = rms_dbfs(audio)
    if level < SILENCE_DBFS:
        raise Unreadable("silence", f"silence ({level:.0f} dBFS RMS, < {SILENCE_DBFS:.0f})")
    clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
    if clipped > CLIPPED_SHARE:
        raise Unreadable("clipped", f"clipped audio ({100 * clipped:.1f} % of samples at full scale)")


class Recognizer:
    """PocketSphinx's bundled US English recogniser. One per process (the decoder is stateful)."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        # bestpath: word posteriors from the lattice. A fresh feature front end (noise tracking, cepstral
        # means), batch CMN and a dither drawn afresh for each line (digital silence otherwise stalls the
        # search) make a line's result independent of the lines the decoder saw before it.
        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", bestpath=True, cmn="batch")

    def recognize(self, audio: np.ndarray) -> Recognition:
        """The best path through `audio` (16 kHz mono float32)."""
        dither = np.random.default_rng(1).integers(-1, 2, len(audio))
        pcm = np.clip(np.round(np.clip(audio, -1.0, 1.0) * 32767) + dither, -32768, 32767).astype("<i2").tobytes()
        d = self._decoder
        try:
            d.reinit_feat()  # fresh noise tracking and cepstral means
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
        except RuntimeError as exc:
            raise Unreadable("recogniser failed", f"the recogniser failed ({exc})") from None
        words: list[tuple[str, float, float, float]] = []
        if d.hyp() is not None:
            for s in d.seg():
                if _FILLERS.match(s.word):
                    continue
                word = re.sub(r"\(\d+\)$", "", s.word)
                words.append((word, s.start_frame * FRAME_S, (s.end_frame + 1) * FRAME_S, min(1.0, float(s.prob))))
        return Recognition(tuple(words), len(audio) / SAMPLE_RATE, loud_seconds(audio))

    def transcribe(self, audio: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> Recognition:
        """`recognize` for a line that must be usable; Unreadable (with the reason) when it is not."""
        check_readable(audio)
        rec = self.recognize(audio)
        check_recognition(rec, min_confidence)
        return rec


def check_recognition(rec: Recognition, min_confidence: float = MIN_CONFIDENCE) -> None:
    """Unreadable when a recognition is not to be trusted: no words, too few for the sound, low confidence."""
    if not rec.words:
        raise Unreadable("no words", "no words recognised (no speech, or not speech the US English model knows)")
    if rec.word_rate < MIN_WORD_RATE:
        raise Unreadable(
            "not speech",
            f"{len(rec.words)} words in {rec.loud_s:.1f} s of sound ({rec.word_rate:.1f}/s < {MIN_WORD_RATE}): "
            "music, noise or a held sound?",
        )
    if rec.confidence < min_confidence:
        raise Unreadable(
            "low confidence", f"confidence {rec.confidence:.2f} < {min_confidence:.2f} (recognised: {rec.text!r})"
        )


def loud_seconds(audio: np.ndarray) -> float:
    """Seconds of 10 ms frames within `LOUD_DB` of the line's 95th-percentile level: where the sound is."""
    hop = round(FRAME_S * SAMPLE_RATE)
    n = len(audio) // hop
    if n == 0:
        return 0.0
    power = np.mean(np.square(audio[: n * hop].reshape(n, hop), dtype=np.float64), axis=1)
    level = 10 * np.log10(power + 1e-12)
    return float(np.sum(level >= np.percentile(level, 95) - LOUD_DB)) * FRAME_S


# ---- word error rate -----------------------------------------------------------------------------
def normalize_words(text: str) -> list[str]:
    """Lower-case words for scoring: punctuation dropped, hyphens and dashes split, apostrophes kept."""
    clean = re.sub(r"[\u2018\u2019`]", "'", text.lower())
    clean = re.sub(r"[-\u2013\u2014/]", " ", clean)
    return [w.strip("'") for w in re.sub(r"[^a-z0-9' ]", " ", clean).split() if w.strip("'")]


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions turning `reference` into `hypothesis` (Levenshtein on words)."""
    prev = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        cur = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of `hypothesis` against `reference` (can exceed 1 with insertions)."""
    ref = normalize_words(reference)
    if not ref:
        raise ValueError("the reference has no words")
    return word_errors(ref, normalize_words(hypothesis)) / len(ref)


# ---- the folder ----------------------------------------------------------------------------------
def read_speech(folder: str | Path) -> tuple[list[Line], list[tuple[str, str, str]]]:
    """Every line under `folder` (text "" = no script) and (name, kind, reason) for unusable table rows."""
    root = Path(folder)
    if not root.is_dir():
        raise A2BSError(f"speech folder not found: {root}")
    table = next((root / t for t in TABLES if (root / t).is_file()), None)
    lines: list[Line] = []
    skipped: list[tuple[str, str, str]] = []
    if table is not None:
        rows = read_table(table)
        if not rows:
            raise A2BSError(f"{table} has no rows")
        path_key = next((k for k in PATH_COLUMNS if k in rows[0]), None)
        if path_key is None:
            raise A2BSError(f"{table} needs a path column: one of {', '.join(PATH_COLUMNS)}")
        for i, row in enumerate(rows, start=2):
            rel = (row.get(path_key) or "").strip()
            name = safe_name((row.get("utt_id") or Path(rel).stem or f"line{i}").strip())
            if not rel:
                skipped.append((name, "no audio path", f"line {i} of {table.name} has no audio path"))
                continue
            speaker = (row.get("speaker") or "speaker").strip() or "speaker"
            lines.append(Line(name, speaker, (root / rel).resolve(), (row.get("text") or "").strip()))
    else:
        for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
            name = safe_name(str(audio.relative_to(root).with_suffix("")).replace(os.sep, "_"))
            txt = audio.with_suffix(".txt")
            text = txt.read_text(encoding="utf-8", errors="replace").strip() if txt.is_file() else ""
            speaker = audio.parent.name if audio.parent != root else "speaker"
            lines.append(Line(name, speaker, audio.resolve(), text))
    if not lines and not skipped:
        raise A2BSError(f"no audio in {root}: expected transcripts.tsv / utterances.tsv or .wav/.flac/.ogg files")
    return lines, skipped


_RECOGNIZER: Recognizer | None = None


def _recognizer() -> Recognizer:
    global _RECOGNIZER
    if _RECOGNIZER is None:
        _RECOGNIZER = Recognizer()
    return _RECOGNIZER


def _process(line: Line, min_confidence: float) -> dict:
    """One line's row: its script, or its recognition; {"skipped": reason} when unusable. Never raises A2BSError."""
    row: dict = {"utt_id": line.name, "speaker": line.speaker, "path": str(line.audio)}
    try:
        audio = load_audio(line.audio)
        row["duration_s"] = round(len(audio) / SAMPLE_RATE, 3)
        if line.text:
            return row | {"text": " ".join(line.text.split()), "confidence": "", "text_source": "script"}
        rec = _recognizer().transcribe(audio, min_confidence)
        return row | {"text": rec.text, "confidence": f"{rec.confidence:.3f}", "text_source": "pocketsphinx"}
    except Unreadable as exc:
        return row | {"skipped": str(exc), "kind": exc.kind}
    except A2BSError as exc:  # load_audio: missing, unreadable or corrupt file
        return row | {"skipped": str(exc), "kind": "unreadable audio file"}


def _run(lines: list[Line], min_confidence: float, workers: int) -> Iterator[dict]:
    if workers == 1:
        yield from (_process(line, min_confidence) for line in lines)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_process, lines, [min_confidence] * len(lines), chunksize=2)


def transcribe_folder(
    src: str | Path,
    out_dir: str | Path,
    *,
    min_confidence: float = MIN_CONFIDENCE,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Recognise every unscripted line under `src`; write `out_dir` (which must not exist). Returns transcribe.json."""
    out_dir = Path(out_dir)
    if not 0.0 <= min_confidence <= 1.0:
        raise A2BSError(f"the confidence threshold must be between 0 and 1, got {min_confidence}")
    check_new_dir(out_dir, "a transcript folder")
    lines, skipped = read_speech(src)
    n_lines = len(lines) + len(skipped)
    n_workers = max(1, min(workers, os.cpu_count() or 1, len(lines) or 1))
    kept: list[dict] = []
    for done, row in enumerate(_run(lines, min_confidence, n_workers), 1):
        if "skipped" in row:
            skipped.append((row["utt_id"], row["kind"], row["skipped"]))
        else:
            kept.append(row)
        if progress is not None:
            progress(done, len(lines))
    reasons = Counter(kind for _, kind, _ in skipped)
    if not kept:
        kinds = ", ".join(f"{n} {kind}" for kind, n in reasons.most_common())
        raise A2BSError(f"no line in {src} could be used ({kinds}); first: {skipped[0][0]}: {skipped[0][2]}")
    sources = Counter(r["text_source"] for r in kept)
    summary = {
        "format": FORMAT,
        "generator": "a2bs.corpus.transcribe",
        "source": str(Path(src).resolve()),
        "recognizer": "PocketSphinx 5 bundled en-us (acoustic model, cmudict-en-us, en-us.lm.bin)",
        "confidence": "mean word posterior of the best path",
        "min_confidence": min_confidence,
        "n_lines": n_lines,
        "n_recognised": sources["pocketsphinx"],
        "n_scripted": sources["script"],
        "n_skipped": len(skipped),
        "skipped_by_kind": dict(reasons.most_common()),
        "skipped": [{"line": n, "kind": k, "reason": r} for n, k, r in skipped],
    }
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=temp_prefix(out_dir, ".tmp"), suffix=".tmp"))
    try:
        with (tmp / "transcripts.tsv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, COLUMNS, delimiter="\t", lineterminator="\n")
            writer.writeheader()
            writer.writerows(kept)
        (tmp / "transcribe.json").write_text(json.dumps(summary, indent=1) + "\n")
        tmp.chmod(0o777 & ~umask())  # mkdtemp's 0700 is for the staging folder only
        publish_new_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"recognised {sources['pocketsphinx']} lines, kept {sources['script']} scripted, skipped {len(skipped)}")
    for kind, n in reasons.most_common():
        log(f"  skipped {n}: {kind}")
    return summary
