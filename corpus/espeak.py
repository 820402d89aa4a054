"""espeak-ng speech through its C library, one synthesis per short-lived process.

`run_espeak` launches `a2bs.corpus.espeak_worker` (by file path, in ``python -I -S``: stdlib only,
~16 ms including the library's initialisation), which loads ``libespeak-ng.so.1`` through ctypes,
speaks at 22050 Hz int16 (``AUDIO_OUTPUT_SYNCHRONOUS`` with ``espeakINITIALIZE_PHONEME_EVENTS``) and
reports one ``espeakEVENT_PHONEME`` per phone (mnemonic, start sample).

Why a fresh process per utterance: espeak-ng keeps static state between syntheses (pitch "flutter"
index, gain control, wave phase, ``rand()`` for breath noise), so the same request gives different
samples (and slightly different lengths) the second time in one process, even with ``srand``. A fresh
process makes every utterance bit-identical for a given request, serialises access to the library's
globals by construction, and lets `a2bs.corpus.synth.build_corpus` run two at a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from a2bs.core.errors import A2BSError

ESPEAK_RATE = 22050  # what espeak-ng's own (non-mbrola) voices produce; checked against Initialize's return
LIBRARY = "libespeak-ng.so.1"
WORKER = Path(__file__).with_name("espeak_worker.py")
_WORKER_TIMEOUT_S = 60.0

# --- voices ----------------------------------------------------------------------------------------

# Accents (espeak-ng 1.51 language names; `en-gb` is the `gmw/en` voice, reached through the name
# `en` because SetVoiceByName("en-gb") fails in 1.51) and the standard variants in voices/!v.
ACCENTS: tuple[str, ...] = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
VARIANTS: tuple[str, ...] = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
VOICES: tuple[str, ...] = tuple(a + (f"+{v}" if v else "") for a in ACCENTS for v in VARIANTS)


@dataclass(frozen=True)
class EspeakResult:
    """What one espeak-ng synthesis returned: int16 PCM and the phoneme events."""

    pcm: np.ndarray  # int16, at `sample_rate`
    sample_rate: int
    events: list[tuple[str, int]]  # (mnemonic, sample index of the phone's start), in order
    identifier: str  # voice file espeak-ng loaded, e.g. "gmw/en-US+f3"
    version: str


def run_espeak(text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> EspeakResult:
    """Synthesise `text` in a fresh worker process (see the module docstring); raises A2BSError."""
    req = {"library": LIBRARY, "text": text, "voice": voice, "rate": rate, "pitch": pitch, "range": pitch_range}
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", str(WORKER)],
            input=json.dumps(req).encode(),
            capture_output=True,
            timeout=_WORKER_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise A2BSError(f"espeak-ng synthesis failed for voice {voice!r}: {e}") from e
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise A2BSError(msg[-1] if msg else f"espeak-ng worker exited with code {proc.returncode}")
    head, sep, body = proc.stdout.partition(b"\n")
    if not sep:
        raise A2BSError("espeak-ng worker returned no data")
    info = json.loads(head)
    sr = int(info["sample_rate"])
    if len(body) % 2:
        body = body[:-1]
    pcm = np.frombuffer(body, dtype="<i2").astype(np.int16)
    events = []
    for name, sample, ms, _ in info["events"]:
        # `sample` is the exact position; fall back to the ms field if a build leaves it unset.
        pos = sample if abs(sample * 1000 / sr - ms) <= 2.0 else round(ms * sr / 1000)
        events.append((str(name), int(min(max(pos, 0), len(pcm)))))
    return EspeakResult(pcm, sr, events, str(info["identifier"]), str(info["version"]))


_AVAILABLE: bool | None = None


def espeak_available() -> bool:
    """True if the espeak-ng runtime library loads and speaks (checked once per process)."""
    global _AVAILABLE
    if _AVAILABLE is None:
        try:
            _AVAILABLE = len(run_espeak("a", "en-us").pcm) > 0
        except A2BSError:
            _AVAILABLE = False
    return _AVAILABLE
