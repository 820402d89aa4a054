"""Helpers that write test audio files (good and bad) into a directory and return their paths.

Plain functions, not pytest fixtures, so any test module can ``from audio_fixtures import ...``
(pytest puts tests/ on sys.path). Pass ``tmp_path`` as ``directory``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf

BUNDLED_SPEECH = Path(__file__).resolve().parents[1] / "core/assets/audio/speech_en_us.wav"


def bundled_speech() -> Path:
    """The bundled 16 kHz mono English speech clip (about 14.4 s)."""
    return BUNDLED_SPEECH


def tone_signal(sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    """A speech-band test signal: 220 Hz + harmonics with a syllable-rate envelope, shape (frames, channels).

    Channel c is scaled by ``1 - 0.2 c`` so a mean mix-down is distinguishable from taking channel 0.
    """
    n = round(sr * seconds)
    t = np.arange(n) / sr
    x = np.zeros(n)
    for h, a in ((1, 0.5), (2, 0.25), (3, 0.12), (5, 0.06), (8, 0.03)):
        if 220 * h < sr / 2:
            x += a * np.sin(2 * np.pi * 220 * h * t)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)  # 4 Hz, roughly the syllable rate
    x *= envelope * 0.9
    return np.stack([x * (1.0 - 0.2 * c) for c in range(channels)], axis=1).astype(np.float32)


def sine_signal(sr: int, seconds: float, freq: float, amplitude: float = 0.5) -> np.ndarray:
    """A pure sine, float32 1-D."""
    t = np.arange(round(sr * seconds)) / sr
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_audio(
    directory: Path, name: str, data: np.ndarray, sr: int, subtype: str = "PCM_16", fmt: str = "WAV"
) -> Path:
    """Write `data` ((frames,) or (frames, channels)) with soundfile; PCM subtypes become VORBIS for OGG."""
    if fmt.upper() == "OGG" and subtype.upper().startswith("PCM"):
        subtype = "VORBIS"
    path = Path(directory) / name
    sf.write(path, data, sr, subtype=subtype, format=fmt)
    return path


def write_tone(
    directory: Path,
    name: str,
    sr: int = 16000,
    seconds: float = 1.0,
    channels: int = 1,
    subtype: str = "PCM_16",
    fmt: str = "WAV",
) -> Path:
    """A `tone_signal` file. For ``fmt="OGG"`` a PCM subtype is replaced by VORBIS."""
    return write_audio(directory, name, tone_signal(sr, seconds, channels), sr, subtype, fmt)


def write_silence(
    directory: Path,
    name: str,
    sr: int = 16000,
    seconds: float = 10.0,
    channels: int = 1,
    subtype: str = "PCM_16",
    fmt: str = "WAV",
) -> Path:
    """Digital silence."""
    data = np.zeros((round(sr * seconds), channels), dtype=np.float32)
    return write_audio(directory, name, data, sr, subtype, fmt)


def write_empty_file(directory: Path, name: str = "empty.wav") -> Path:
    """A 0-byte file."""
    path = Path(directory) / name
    path.write_bytes(b"")
    return path


def write_header_only_wav(directory: Path, name: str = "header_only.wav", sr: int = 16000) -> Path:
    """A valid 44-byte PCM_16 mono WAV header whose data chunk is empty."""
    fmt = struct.pack("<HHIIHH", 1, 1, sr, sr * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", 0)
    path = Path(directory) / name
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def write_truncated_wav(
    directory: Path, name: str = "truncated.wav", sr: int = 16000, seconds: float = 1.0, keep: float = 0.5
) -> Path:
    """A PCM_16 mono tone whose file is cut to `keep` of its bytes (header still promises everything)."""
    path = write_tone(directory, name, sr=sr, seconds=seconds)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])
    return path


def write_nan_wav(
    directory: Path, name: str = "nan.wav", sr: int = 16000, nan_at_s: float = 0.5, inf_at_s: float = 0.75
) -> Path:
    """A 1 s float WAV with a NaN at `nan_at_s` and an +Inf at `inf_at_s`."""
    data = tone_signal(sr, 1.0)[:, 0]
    data[round(nan_at_s * sr)] = np.nan
    data[round(inf_at_s * sr)] = np.inf
    return write_audio(directory, name, data, sr, subtype="FLOAT")


def write_not_audio(directory: Path, name: str = "notes.wav") -> Path:
    """A text file with an audio extension."""
    path = Path(directory) / name
    path.write_text("These are meeting notes, not audio.\n" * 20, encoding="utf-8")
    return path
