"""Training data: takes of speech audio + ARKit curves (Live Link Face CSVs or the synthetic corpus).

Dataset format (what `a2bs data synth` writes and what a user fills with their own captures):

    DIR/takes/<name>.wav|.flac|.ogg     the take's audio (any rate/bit depth/channels)
    DIR/takes/<name>.csv                the Live Link Face CSV of the same take (30 or 60 fps)
    DIR/takes/<name>.phones.json        optional: {"phones": [[phone, start_s, end_s], ...], ...}
    DIR/corpus.json                     optional; {"split": {"train": [...], "val": [...]}}

Audio and CSV are matched by file name; row 0 of the CSV is the face at the first audio sample.
Takes that cannot be used are skipped with a reported reason, never silently altered.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from a2bs.core.animation_io import read_live_link_face_csv
from a2bs.core.audio import load_audio, n_output_frames, probe
from a2bs.core.constants import EMOTION_DIM, SUPPORTED_FPS
from a2bs.core.errors import A2BSError
from a2bs.core.files import sha256

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
# A CSV may be this much shorter or longer than its audio (trailing frames of a capture); beyond
# it the pair is treated as mismatched and skipped.
LENGTH_TOLERANCE_S = 0.5


@dataclass
class Take:
    name: str
    audio: np.ndarray  # 16 kHz mono float32
    curves: np.ndarray  # (ceil(duration * fps), 52) float32 in [0, 1], at `fps`
    fps: int
    phones: list[tuple[str, float, float]] | None = None
    emotion_raw: np.ndarray | None = None  # (264,) cached raw eGeMAPS features of exactly this audio


@dataclass
class TakeReport:
    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (take name, reason)

    def summary(self) -> str:
        lines = [f"{len(self.loaded)} takes loaded, {len(self.skipped)} skipped"]
        lines += [f"  skipped {name}: {reason}" for name, reason in self.skipped]
        return "\n".join(lines)


def resample_curves(curves: np.ndarray, src_fps: int, dst_fps: int, n_out: int) -> np.ndarray:
    """Curves at src_fps -> n_out frames at dst_fps (frame k at k / fps), linear interpolation.

    Downsampling first applies a [1/4, 1/2, 1/4] smoothing per source frame so that
    frame-rate jitter is not aliased into the lower rate."""
    src = curves.astype(np.float64)
    if dst_fps < src_fps and len(src) > 2:
        padded = np.concatenate([src[:1], src, src[-1:]])
        src = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    t_src = np.arange(len(src)) / src_fps
    t_dst = np.arange(n_out) / dst_fps
    out = np.stack([np.interp(t_dst, t_src, src[:, j]) for j in range(src.shape[1])], axis=1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def find_takes(data_dir: str | Path) -> tuple[list[tuple[str, Path, Path]], TakeReport]:
    """(name, audio, csv) for every matched pair under DIR/takes (or DIR itself); unmatched files are reported."""
    root = Path(data_dir)
    if not root.is_dir():
        raise A2BSError(f"training data folder not found: {root} (expected a folder with takes/)")
    folder = root / "takes" if (root / "takes").is_dir() else root
    report = TakeReport()
    csvs = {p.stem: p for p in sorted(folder.glob("*.csv"))}
    audios: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in AUDIO_SUFFIXES:
            audios.setdefault(p.stem, p)
    pairs = [(name, audios[name], csvs[name]) for name in sorted(csvs) if name in audios]
    report.skipped += [
        (n, "no audio file with the same name (.wav/.flac/.ogg)") for n in sorted(csvs) if n not in audios
    ]
    report.skipped += [(n, "no Live Link Face CSV with the same name") for n in sorted(audios) if n not in csvs]
    if not pairs:
        raise A2BSError(f"no usable takes in {folder}: expected <name>.wav + <name>.csv pairs")
    return pairs, report


def load_take(name: str, audio_path: Path, csv_path: Path, fps: int) -> Take:
    """Load one take at the training fps; A2BSError with the reason if it cannot be used."""
    info = probe(audio_path)
    frames, _, csv_fps = read_live_link_face_csv(csv_path)
    if len(frames) < 2:
        raise A2BSError(f"{csv_path.name} has {len(frames)} rows: too short to train on")
    duration = info.duration_s
    if csv_fps is None:  # short takes: infer the rate from the row count and the audio length
        csv_fps = min(SUPPORTED_FPS, key=lambda f: abs(len(frames) - duration * f))
    if csv_fps not in SUPPORTED_FPS:
        raise A2BSError(f"{csv_path.name} is at {csv_fps} fps: only 30 and 60 fps captures are supported")
    csv_duration = len(frames) / csv_fps
    if abs(csv_duration - duration) > LENGTH_TOLERANCE_S:
        raise A2BSError(
            f"{csv_path.name} covers {csv_duration:.2f} s but {audio_path.name} lasts {duration:.2f} s "
            f"(more than {LENGTH_TOLERANCE_S} s apart: not the same take?)"
        )
    if frames.min() < -0.01 or frames.max() > 1.01:
        raise A2BSError(f"{csv_path.name} has values outside [0, 1] ({frames.min():.3f}..{frames.max():.3f})")
    curves = resample_curves(frames, csv_fps, fps, n_output_frames(info, fps))
    phones, emotion = None, None
    phones_path = csv_path.with_suffix(".phones.json")
    if phones_path.is_file():
        try:
            data = json.loads(phones_path.read_text())
            segments = data["phones"] if isinstance(data, dict) else data
            phones = [(str(p), float(s), float(e)) for p, s, e in segments]
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise A2BSError(f"{phones_path.name} has no list of [phone, start, end]: {exc!r}") from None
        if not all(math.isfinite(s) and math.isfinite(e) and e >= s for _, s, e in phones):
            raise A2BSError(f"{phones_path.name} has phone times that are not finite or end before they start")
        emotion = _cached_emotion(data, audio_path)
    return Take(name, load_audio(audio_path), curves, fps, phones, emotion)


def _cached_emotion(data: object, audio_path: Path) -> np.ndarray | None:
    """The take's raw emotion features stored by the corpus builder, if they belong to this very file."""
    if not isinstance(data, dict) or "emotion_raw" not in data or "audio_sha256" not in data:
        return None
    try:
        raw = np.asarray(data["emotion_raw"], dtype=np.float32)
    except (TypeError, ValueError):
        return None
    if raw.shape != (EMOTION_DIM,) or not np.isfinite(raw).all():
        return None
    if sha256(audio_path) != data["audio_sha256"]:
        return None  # the audio was changed after the corpus was built: recompute
    return raw


def load_takes(data_dir: str | Path, fps: int) -> tuple[list[Take], TakeReport]:
    pairs, report = find_takes(data_dir)
    takes = []
    for name, audio_path, csv_path in pairs:
        try:
            takes.append(load_take(name, audio_path, csv_path, fps))
            report.loaded.append(name)
        except A2BSError as exc:
            report.skipped.append((name, str(exc)))
    if not takes:
        raise A2BSError(f"none of the takes in {data_dir} could be used:\n{report.summary()}")
    return takes, report


def split_takes(data_dir: str | Path, takes: list[Take], validation_fraction: float = 0.1) -> tuple[list, list]:
    """The corpus' own split if corpus.json has one, else a stable hash split by take name."""
    corpus = Path(data_dir) / "corpus.json"
    if corpus.is_file():
        val_names = _validation_names(corpus)
        if val_names:
            return [t for t in takes if t.name not in val_names], [t for t in takes if t.name in val_names]
    bucket = [zlib.crc32(t.name.encode()) % 1000 / 1000 for t in takes]
    val = [t for t, b in zip(takes, bucket, strict=True) if b < validation_fraction]
    train = [t for t, b in zip(takes, bucket, strict=True) if b >= validation_fraction]
    if not val and len(train) > 1:
        val = [train.pop()]
    return train, val


def _validation_names(corpus: Path) -> set[str]:
    """corpus.json's validation take names (`split.validation` or `split.val`); A2BSError if malformed."""
    try:
        data = json.loads(corpus.read_text())
        split = data.get("split", {}) if isinstance(data, dict) else None
        names = split.get("validation", split.get("val", [])) if isinstance(split, dict) else None
    except (ValueError, RecursionError, UnicodeDecodeError) as exc:
        raise A2BSError(f"{corpus} is not valid JSON ({exc.__class__.__name__}): fix or delete it") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise A2BSError(f"{corpus}: split.val must be a list of take names (or delete corpus.json)")
    return set(names)
