"""More voices for the speaker spread: Festival and Flite speak lines and say where each phone is.

The real training speech is one speaker. Diphone and cluster voices are built from other people's
recordings, so their formant transitions into and out of closures are real speech from other vocal
tracts, and the synthesizer reports its own phone timings (no aligner error). `speak_lines` writes
``OUT/<voice>/<voice>_<n>.wav`` + ``.txt`` + ``.segs`` (Festival segment format); `a2bs data align OUT`
then uses those timings instead of aligning (`a2bs.corpus.align.given_phones`) and adds the usual
perturbed copies, curves and speaking style.

Voices (Debian packages, installed by `make setup`): Festival's ``kal`` and ``ked`` diphone voices and
Flite's ``rms`` (CMU ARCTIC's rms). Flite's ``awb`` and ``slt`` are left out on purpose: they are
speakers of the evaluation set (``shared/eval/real-speech``), which is never trained on.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from a2bs.core.errors import A2BSError, read_text
from a2bs.core.files import check_new_dir, publish_new_dir, temp_prefix


@dataclass(frozen=True)
class Voice:
    name: str
    engine: str  # "festival" or "flite"
    ident: str  # Festival's voice function or Flite's voice name


# All US English male: two diphone voices (Debian festvox-kallpc16k, festvox-kdlpc16k) and CMU ARCTIC's
# rms as a Flite clustergen voice.
VOICES: dict[str, Voice] = {
    "kal": Voice("kal", "festival", "voice_kal_diphone"),
    "ked": Voice("ked", "festival", "voice_ked_diphone"),
    "rms": Voice("rms", "flite", "rms"),
}
EVALUATION_SPEAKERS = ("awb", "slt")  # Flite has them; the evaluation set has them: never trained on
_FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices/english")


def missing_voices(names: Sequence[str]) -> list[str]:
    """Why each asked-for voice cannot speak here (empty: all can)."""
    problems = []
    for name in names:
        if name in EVALUATION_SPEAKERS:
            problems.append(f"{name} is a speaker of the evaluation set: never trained on")
        elif name not in VOICES:
            problems.append(f"unknown voice {name!r} (choose from {', '.join(VOICES)})")
        elif shutil.which(VOICES[name].engine) is None:
            engine = VOICES[name].engine
            problems.append(f"{engine} is not installed (make setup, or apt-get install {engine})")
        elif VOICES[name].engine == "festival" and not (_FESTIVAL_VOICE_DIR / f"{name}_diphone").is_dir():
            problems.append(f"Festival voice {name} is not installed (make setup)")
    return problems


MAX_TABLE_BYTES = 64_000_000  # some 500,000 lines of transcript; a bigger "table" is something else


def read_table(path: Path) -> list[dict[str, str]]:
    """The rows of a tab-separated table with a header line (transcripts.tsv, utterances.tsv): an untrusted
    file (`read_text`: regular, bounded, UTF-8), so anything malformed is one line naming it."""
    text = read_text(path, "tab-separated table", MAX_TABLE_BYTES).removeprefix("\ufeff")
    try:
        return list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t"))
    except csv.Error as exc:  # e.g. a field over csv's limit, a NUL
        raise A2BSError(f"{path} is not a valid tab-separated table: {exc}") from None


def read_texts(path: str | Path) -> list[str]:
    """Sentences from a transcripts.tsv (its ``text`` column) or a text file (one per line), de-duplicated."""
    path = Path(path)
    if not path.is_file():
        raise A2BSError(f"text file not found: {path} (a transcripts.tsv or one sentence per line)")
    if path.suffix == ".tsv":
        rows = read_table(path)
        if rows and "text" not in rows[0]:
            raise A2BSError(f"{path} has no 'text' column")
        texts = [r["text"] or "" for r in rows]
    else:
        texts = path.read_text(encoding="utf-8", errors="replace").splitlines()
    seen: dict[str, None] = {}
    for text in texts:
        text = " ".join(text.split())
        if text:
            seen.setdefault(text, None)
    if not seen:
        raise A2BSError(f"no sentences in {path}")
    return list(seen)


def _festival(voice: Voice, jobs: list[tuple[str, Path]]) -> None:
    """One Festival process speaks every line of one voice (start-up costs more than a line)."""
    script = [f"({voice.ident})"]
    for text, stem in jobs:
        quoted = text.replace("\\", " ").replace('"', "'")
        script += [
            f'(set! utt (utt.synth (Utterance Text "{quoted}")))',
            f'(utt.save.segs utt "{stem}.segs")',
            f'(utt.save.wave utt "{stem}.wav" \'riff)',
        ]
    with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as f:
        f.write("\n".join(script) + "\n")
    try:
        subprocess.run(["festival", "-b", f.name], check=False, capture_output=True, timeout=60 + 10 * len(jobs))
    finally:
        os.unlink(f.name)


def _flite(voice: Voice, text: str, stem: Path) -> None:
    """Flite prints ``phone:end`` pairs with -psdur; they become a Festival segment file."""
    done = subprocess.run(
        ["flite", "-voice", voice.ident, "-t", text, "-o", f"{stem}.wav", "-psdur"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    pairs = [p.rsplit(":", 1) for p in done.stdout.split() if ":" in p]
    if done.returncode == 0 and pairs:
        stem.with_suffix(".segs").write_text("#\n" + "".join(f"{float(t):.4f} 100 {ph}\n" for ph, t in pairs))


def speak_lines(
    texts: Sequence[str],
    out: str | Path,
    voices: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Every voice speaks every text into `out` (which must not exist); returns lines written per voice.
    A line a synthesizer fails on is left out (and counted); the folder appears only when complete."""
    out = Path(out)
    problems = missing_voices(voices)
    if problems:
        raise A2BSError("; ".join(problems))
    check_new_dir(out, "a voice set")
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=temp_prefix(out, ".tmp"), suffix=".tmp"))
    written: dict[str, int] = {}
    try:
        total, done = len(texts) * len(voices), 0
        for name in voices:
            voice, folder = VOICES[name], tmp / name
            folder.mkdir()
            jobs = [(text, folder / f"{name}_{i:04d}") for i, text in enumerate(texts)]
            for start in range(0, len(jobs), 50):  # in pieces: progress, and one bad line costs little
                piece = jobs[start : start + 50]
                if voice.engine == "festival":
                    _festival(voice, piece)
                else:
                    for text, stem in piece:
                        _flite(voice, text, stem)
                done += len(piece)
                if progress is not None:
                    progress(done, total)
            written[name] = 0
            for text, stem in jobs:
                wav, segs = stem.with_suffix(".wav"), stem.with_suffix(".segs")
                if wav.is_file() and segs.is_file() and wav.stat().st_size > 1000:
                    stem.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
                    written[name] += 1
                else:
                    wav.unlink(missing_ok=True)
                    segs.unlink(missing_ok=True)
            if written[name] < len(jobs):
                log(f"{name}: {len(jobs) - written[name]} of {len(jobs)} lines failed to synthesize and are left out")
        publish_new_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def read_segs(path: str | Path) -> list[tuple[str, float, float]]:
    """Festival segment file (`#`, then `END_S 100 PHONE` lines) -> (phone, start, end)."""
    phones, t = [], 0.0
    body = Path(path).read_text().split("#", 1)[-1]
    for line in body.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        end = float(parts[0])
        phones.append((parts[2], t, end))
        t = end
    return phones
