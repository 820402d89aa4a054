"""Non-speech sound for training takes: real room tone harvested from recordings, mixed in at set levels.

The model must keep the mouth at rest on sound that is not speech (a microphone's room tone, a quiet
room's background). `RoomToneBank` harvests the low-energy stretches of real recordings (the pauses
and edges of read speech: ventilation, hum, hiss, the room); `add_background` prepends and appends
0.3-1.0 s of non-speech to a take (its phones get a pause there, so the targets are the rest pose)
and mixes room tone under the whole take at -60..-40 dBFS, and with p = 0.5 a louder stretch of
another room's background at -45..-30 dBFS on the added non-speech. Levels are absolute (RMS re full
scale), so this runs after gain augmentation. Levels and sources: docs/VISEMES.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a2bs.core.audio import load_audio
from a2bs.core.constants import SAMPLE_RATE
from a2bs.core.errors import A2BSError

Phones = list[tuple[str, float, float]]

ROOM_TONE_DBFS = (-60.0, -40.0)  # RMS of the room tone under the whole take
NOISE_DBFS = (-45.0, -30.0)  # RMS of the louder background on the added non-speech stretches
NOISE_P = 0.5
PAD_S = (0.3, 1.0)  # non-speech added before and after the take
_FRAME_S = 0.02
_MIN_RUN_S = 0.25
_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def quiet_stretches(audio: np.ndarray, sr: int = SAMPLE_RATE) -> list[np.ndarray]:
    """The runs of >= 250 ms of 20 ms frames within 6 dB of the recording's 10th-percentile frame power
    (its room tone, between and around the words), each trimmed by a frame at both ends."""
    hop = int(_FRAME_S * sr)
    m = len(audio) // hop
    if m < 4:
        return []
    p = np.mean(np.square(audio[: m * hop].reshape(m, hop), dtype=np.float64), axis=1)
    if not np.any(p > 0):
        return []  # digital silence is not room tone
    quiet = p <= max(np.percentile(p, 10), 1e-12) * 10**0.6
    out, i = [], 0
    while i < m:
        j = i
        while j < m and quiet[j]:
            j += 1
        if (j - i) * _FRAME_S >= _MIN_RUN_S:
            out.append(np.asarray(audio[(i + 1) * hop : (j - 1) * hop], dtype=np.float32))
        i = j + 1
    return out


@dataclass(frozen=True)
class RoomToneBank:
    """Room-tone stretches of real recordings, one list per recording (one room each)."""

    rooms: tuple[tuple[np.ndarray, ...], ...]
    sources: tuple[str, ...]

    @classmethod
    def from_folder(cls, folder: str | Path, max_files: int = 400) -> RoomToneBank:
        """Harvest every audio file under `folder` (sorted, at most `max_files`); raises A2BSError if none
        gives room tone."""
        files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in _AUDIO_SUFFIXES)[:max_files]
        rooms, sources = [], []
        for f in files:
            stretches = quiet_stretches(load_audio(f))
            if stretches:
                rooms.append(tuple(stretches))
                sources.append(str(f.relative_to(folder)))
        if not rooms:
            raise A2BSError(f"no room tone found in {folder} (no audio files with quiet stretches of >= 250 ms)")
        return cls(tuple(rooms), tuple(sources))

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """`n` samples of one room's tone (its stretches, cyclically, at unit RMS) and the room's source."""
        r = int(rng.integers(len(self.rooms)))
        parts = list(self.rooms[r])
        start = int(rng.integers(len(parts)))
        x = np.concatenate(parts[start:] + parts[:start])
        x = np.tile(x, -(-n // len(x)))[:n].astype(np.float64)
        x -= x.mean()
        return x / (np.sqrt(np.mean(x**2)) + 1e-12), self.sources[r]


def _at_dbfs(x: np.ndarray, dbfs: float) -> np.ndarray:
    return x * 10 ** (dbfs / 20)


def add_background(
    audio: np.ndarray,
    phones: Sequence[tuple[str, float, float]],
    rng: np.random.Generator,
    bank: RoomToneBank,
    *,
    pause: str,
    sr: int = SAMPLE_RATE,
) -> tuple[np.ndarray, Phones, dict]:
    """(longer audio, phones shifted and covering it, what was done): `PAD_S` of non-speech before and
    after, labelled `pause` (a pause phone of the take's phone table), room tone under everything."""
    lead, tail = (round(rng.uniform(*PAD_S) * sr) for _ in range(2))
    x = np.concatenate([np.zeros(lead), np.asarray(audio, dtype=np.float64), np.zeros(tail)])
    tone_db = float(rng.uniform(*ROOM_TONE_DBFS))
    tone, tone_src = bank.draw(len(x), rng)
    x += _at_dbfs(tone, tone_db)
    info: dict = {"room_tone": {"dbfs": round(tone_db, 2), "source": tone_src}, "pad_s": [lead / sr, tail / sr]}
    if rng.random() < NOISE_P:
        noise_db = float(rng.uniform(*NOISE_DBFS))
        for a, b in ((0, lead), (lead + len(audio), len(x))):
            seg, src = bank.draw(b - a, rng)
            fade = np.minimum(1.0, np.minimum(np.arange(b - a), np.arange(b - a)[::-1]) / (0.02 * sr))
            x[a:b] += _at_dbfs(seg * fade, noise_db)
        info["noise"] = {"dbfs": round(noise_db, 2), "source": src}
    shift = lead / sr
    moved = [(p, a + shift, b + shift) for p, a, b in phones]
    out: Phones = [(pause, 0.0, shift), *moved, (pause, moved[-1][2], len(x) / sr)] if moved else []
    return np.clip(x, -1.0, 1.0).astype(np.float32), out, info


def with_background(
    heard: np.ndarray,
    phones: Sequence[tuple[str, float, float]],
    speech: np.ndarray,
    rng: np.random.Generator,
    bank: RoomToneBank,
    *,
    pause: str = "sil",
) -> tuple[np.ndarray, Phones, np.ndarray, dict]:
    """`add_background` for a take builder: (heard audio with background, phones, the clean `speech` padded
    to the same length and timeline, what was done). `pause` is a pause phone of the take's phone table."""
    audio, moved, info = add_background(heard, phones, rng, bank, pause=pause)
    lead = round(info["pad_s"][0] * SAMPLE_RATE)
    return audio, moved, np.pad(speech, (lead, len(audio) - len(speech) - lead)), info


def main(argv: Sequence[str] | None = None) -> None:
    """Print what a folder gives as room tone: `python -m a2bs.corpus.background DIR`."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        raise SystemExit("usage: python -m a2bs.corpus.background DIR")
    bank = RoomToneBank.from_folder(args[0])
    levels = [10 * np.log10(np.mean(np.square(np.concatenate(r), dtype=np.float64)) + 1e-20) for r in bank.rooms]
    total = sum(len(s) for r in bank.rooms for s in r) / SAMPLE_RATE
    print(
        f"{len(bank.rooms)} rooms, {total:.1f} s of room tone, level {np.median(levels):.1f} dBFS median "
        f"({np.percentile(levels, 10):.1f} .. {np.percentile(levels, 90):.1f})"
    )


if __name__ == "__main__":
    main()
