"""Deterministic synthetic training corpus: espeak-ng speech + ARKit curves from its phoneme timing.

Pipeline for one utterance (`synthesize_utterance`):

1. **espeak-ng** (C library ``libespeak-ng.so.1`` through ctypes, ``AUDIO_OUTPUT_SYNCHRONOUS`` with
   ``espeakINITIALIZE_PHONEME_EVENTS``) speaks the text at 22050 Hz int16 and reports one
   ``espeakEVENT_PHONEME`` per phone (mnemonic in ``id.string``, start in ``sample``). A phone lasts
   until the next phone event. The audio is padded with silence, peak-normalised and resampled to
   16 kHz with `a2bs.core.audio.resample`.
2. **Phoneme -> viseme -> targets**: `PHONEMES` maps espeak-ng's English mnemonics to one or more
   visemes (diphthongs are split in time), `VISEME_TARGETS` gives each viseme's ARKit values.
   Unknown mnemonics get a neutral half-open target and are counted, never fatal.
3. **Coarticulation** (Cohen-Massaro style dominance blending): each articulatory segment has a
   dominance that is flat (``alpha``) inside the segment and falls off as a Gaussian before
   (anticipation, ``tau_before``) and after (carry-over, ``tau_after``) it; the curve at time t is
   the dominance-weighted mean of the targets, sampled at t = k / fps.
4. **Non-speech motion**: blinks, gaze, brow raises on accented vowels, a per-sentence smile, small
   per-utterance offsets, so every one of the 52 streams carries something.

Why a fresh process per utterance: espeak-ng keeps static state between syntheses (pitch "flutter"
index, gain control, wave phase, ``rand()`` for breath noise), so the same request gives different
samples (and slightly different lengths) the second time in one process, even with ``srand``.
Each synthesis therefore runs in a short-lived child interpreter (``python -I -S -c``, stdlib only,
~16 ms including the library's initialisation), which loads the library, initialises it once,
synthesises and exits. That makes every utterance bit-identical for a given request, serialises
access to the library's globals by construction, and lets `build_corpus` run two at a time.

`build_corpus` writes the project's dataset format (``takes/<name>.wav`` 16 kHz PCM_16,
``takes/<name>.csv`` Live Link Face via `open_writer`, ``takes/<name>.phones.json``) plus
``corpus.json``, into a temp folder that is renamed into place at the end.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from a2bs.core.animation_io import open_writer
from a2bs.core.audio import resample
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX
from a2bs.core.constants import EGEMAPS_DIM, SAMPLE_RATE, SUPPORTED_FPS
from a2bs.core.emotion import emotion_features_at  # openSMILE is heavy: corpus builders only
from a2bs.core.errors import A2BSError
from a2bs.core.files import check_new_dir, publish_new_dir, sha256

__all__ = [
    "ACCENTS",
    "DEFAULT_HELD_OUT_VOICES",
    "DOMINANCE",
    "PHONEMES",
    "VARIANTS",
    "VISEMES",
    "VISEME_TARGETS",
    "VOICES",
    "Dominance",
    "EspeakResult",
    "PhoneSpec",
    "Utterance",
    "augment_audio",
    "build_corpus",
    "espeak_available",
    "generate_sentence",
    "phones_to_curves",
    "run_espeak",
    "synthesize_utterance",
    "tables_markdown",
]

N = len(ARKIT_BLENDSHAPES)
ESPEAK_RATE = 22050  # what espeak-ng's own (non-mbrola) voices produce; checked against Initialize's return
LIBRARY = "libespeak-ng.so.1"
_WORKER_TIMEOUT_S = 60.0

# --- voices ----------------------------------------------------------------------------------------

# Accents (espeak-ng 1.51 language names; `en-gb` is the `gmw/en` voice, reached through the name
# `en` because SetVoiceByName("en-gb") fails in 1.51) and the standard variants in voices/!v.
ACCENTS: tuple[str, ...] = (
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)  # fmt: skip
VARIANTS: tuple[str, ...] = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
VOICES: tuple[str, ...] = tuple(a + (f"+{v}" if v else "") for a in ACCENTS for v in VARIANTS)
# A whole accent (no "+variant") holds out all its variants.
DEFAULT_HELD_OUT_VOICES: tuple[str, ...] = ("en-029", "en-us+f4", "en-gb+m6")
RATE_RANGE = (130, 210)  # words per minute
PITCH_RANGE = (25, 75)  # espeakPITCH, 0-100 (50 = the voice's normal)
INTONATION_RANGE = (30, 80)  # espeakRANGE, 0 = monotone, 50 = normal

# --- the espeak-ng worker --------------------------------------------------------------------------

# Runs in a fresh `python -I -S` (stdlib only). Request: JSON on stdin. Reply on stdout: one JSON line
# (sample rate, events, voice, version) then the int16 little-endian PCM. Errors: exit 2 + one line.
_WORKER = r"""
import ctypes, json, sys
AUDIO_OUTPUT_SYNCHRONOUS = 2
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
espeakCHARS_AUTO = 0
POS_CHARACTER = 1
espeakRATE, espeakPITCH, espeakRANGE = 1, 3, 4
espeakEVENT_PHONEME = 7
ALIASES = {"en-gb": "en", "en-uk": "en"}

def fail(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(2)

class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

class Event(ctypes.Structure):  # espeak_EVENT, speak_lib.h API revision 12
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _Id)]

class Voice(ctypes.Structure):  # espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]

req = json.loads(sys.stdin.buffer.read())
try:
    lib = ctypes.CDLL(req["library"])
except OSError as e:
    fail("cannot load %s (%s): install espeak-ng (apt-get install espeak-ng)" % (req["library"], e))
lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(Voice)]
lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(Voice)
lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                             ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
lib.espeak_Info.argtypes = [ctypes.c_void_p]
lib.espeak_Info.restype = ctypes.c_char_p
rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, espeakINITIALIZE_PHONEME_EVENTS)
if rate <= 0:
    fail("espeak_Initialize failed (espeak-ng-data missing?)")

chunks, events = [], []
CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))

def on_synth(wav, n, ev):
    if wav and n > 0:
        chunks.append(ctypes.string_at(wav, 2 * n))
    i = 0
    while ev and ev[i].type != 0:
        e = ev[i]
        if e.type == espeakEVENT_PHONEME:
            name = bytes(e.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
            events.append([name, e.sample, e.audio_position, e.text_position])
        i += 1
    return 0

callback = CALLBACK(on_synth)
lib.espeak_SetSynthCallback(callback)

spec = req["voice"]
lang, _, variant = spec.partition("+")
names = [spec] + ([ALIASES[lang] + ("+" + variant if variant else "")] if lang in ALIASES else [])
if not any(lib.espeak_SetVoiceByName(n.encode()) == 0 for n in names):
    if variant or lib.espeak_SetVoiceByProperties(ctypes.byref(Voice(None, lang.encode()))) != 0:
        fail("unknown espeak-ng voice %r (see `espeak-ng --voices=en`; variants are +m1..m7, +f1..f5)" % spec)
cur = lib.espeak_GetCurrentVoice().contents
for param, key in ((espeakRATE, "rate"), (espeakPITCH, "pitch"), (espeakRANGE, "range")):
    lib.espeak_SetParameter(param, int(req[key]), 0)
text = req["text"].encode("utf-8") + b"\0"
rc = lib.espeak_Synth(text, len(text), 0, POS_CHARACTER, 0, espeakCHARS_AUTO, None, None)
if rc != 0:
    fail("espeak_Synth failed with code %d" % rc)
head = {"sample_rate": rate, "events": events, "identifier": (cur.identifier or b"").decode(),
        "version": (lib.espeak_Info(None) or b"").decode()}
out = sys.stdout.buffer
out.write(json.dumps(head).encode() + b"\n")
for c in chunks:
    out.write(c)
out.flush()
"""


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
            [sys.executable, "-I", "-S", "-c", _WORKER],
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


# --- visemes and their targets ---------------------------------------------------------------------

VISEMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou")
VOWEL_VISEMES = frozenset({"aa", "E", "ih", "oh", "ou"})


def _lr(name: str, value: float) -> dict[str, float]:
    return {f"{name}Left": value, f"{name}Right": value}


REST: dict[str, float] = {
    "jawOpen": 0.03, "mouthClose": 0.03, "mouthShrugUpper": 0.05, "mouthShrugLower": 0.05,
    "mouthRollLower": 0.03, **_lr("mouthPress", 0.06), **_lr("mouthDimple", 0.04),
}  # fmt: skip

# Absolute values of the mouth/jaw/tongue shapes for each viseme; unlisted shapes are 0 (sil: the rest pose).
VISEME_TARGETS: dict[str, dict[str, float]] = {
    "sil": REST,
    "PP": {"jawOpen": 0.08, "mouthClose": 0.42, **_lr("mouthPress", 0.45), "mouthRollLower": 0.22,
           "mouthRollUpper": 0.15, "mouthShrugLower": 0.12, "cheekPuff": 0.06},
    "FF": {"jawOpen": 0.10, "mouthRollLower": 0.50, **_lr("mouthUpperUp", 0.28), "mouthShrugUpper": 0.15,
           **_lr("mouthPress", 0.10), "mouthClose": 0.05, "jawForward": 0.06, **_lr("noseSneer", 0.05)},
    "TH": {"jawOpen": 0.16, "tongueOut": 0.30, **_lr("mouthUpperUp", 0.12), **_lr("mouthLowerDown", 0.10)},
    "DD": {"jawOpen": 0.18, **_lr("mouthUpperUp", 0.10), **_lr("mouthLowerDown", 0.12), **_lr("mouthStretch", 0.10)},
    "kk": {"jawOpen": 0.24, **_lr("mouthLowerDown", 0.10), **_lr("mouthStretch", 0.08)},
    "CH": {"jawOpen": 0.12, "mouthFunnel": 0.40, "mouthPucker": 0.22, **_lr("mouthUpperUp", 0.25),
           **_lr("mouthLowerDown", 0.18), "mouthShrugUpper": 0.15, "jawForward": 0.05},
    "SS": {"jawOpen": 0.06, **_lr("mouthStretch", 0.25), **_lr("mouthSmile", 0.10), **_lr("mouthUpperUp", 0.15),
           **_lr("mouthLowerDown", 0.15), "mouthClose": 0.05, "jawForward": 0.04},
    "nn": {"jawOpen": 0.16, **_lr("mouthLowerDown", 0.08), **_lr("mouthStretch", 0.08)},
    "RR": {"jawOpen": 0.14, "mouthPucker": 0.32, "mouthFunnel": 0.22, **_lr("mouthUpperUp", 0.08)},
    "aa": {"jawOpen": 0.62, **_lr("mouthLowerDown", 0.35), **_lr("mouthUpperUp", 0.12), **_lr("mouthStretch", 0.08)},
    "E": {"jawOpen": 0.38, **_lr("mouthLowerDown", 0.22), **_lr("mouthStretch", 0.22), **_lr("mouthSmile", 0.10),
          **_lr("mouthUpperUp", 0.10)},
    "ih": {"jawOpen": 0.20, **_lr("mouthStretch", 0.35), **_lr("mouthSmile", 0.22), **_lr("mouthUpperUp", 0.14),
           **_lr("mouthLowerDown", 0.10), **_lr("mouthDimple", 0.10)},
    "oh": {"jawOpen": 0.45, "mouthFunnel": 0.50, "mouthPucker": 0.25, **_lr("mouthLowerDown", 0.12)},
    "ou": {"jawOpen": 0.12, "mouthPucker": 0.70, "mouthFunnel": 0.40},
}  # fmt: skip


@dataclass(frozen=True)
class Dominance:
    """Dominance of one articulatory segment at distance d (s) outside it; `alpha` inside it.

    Before the segment: alpha * (exp(-(d / tau_before)^2) + lead * exp(-d / TAU_LEAD)), i.e. a
    Gaussian anticipation plus a weak, slower preparatory rise; after it: alpha * exp(-(d / tau_after)^2).
    """

    alpha: float
    tau_before: float  # s, anticipation
    tau_after: float  # s, carry-over
    lead: float = 0.0  # weight of the slow preparatory component (relative to alpha)


TAU_LEAD = 0.05  # s

DOMINANCE: dict[str, Dominance] = {
    "sil": Dominance(1.5, 0.05, 0.05),  # scaled by pause length, see _PAUSE_FULL_S
    "PP": Dominance(8.0, 0.025, 0.015, lead=0.04),
    "FF": Dominance(6.0, 0.025, 0.015, lead=0.04),
    "TH": Dominance(1.5, 0.025, 0.02),
    "DD": Dominance(0.8, 0.03, 0.02),
    "kk": Dominance(0.6, 0.03, 0.02),
    "CH": Dominance(2.0, 0.035, 0.025, lead=0.05),
    "SS": Dominance(1.5, 0.025, 0.02),
    "nn": Dominance(0.6, 0.03, 0.02),
    "RR": Dominance(1.2, 0.035, 0.025, lead=0.05),
    "aa": Dominance(1.0, 0.035, 0.03),
    "E": Dominance(1.0, 0.035, 0.03),
    "ih": Dominance(1.0, 0.035, 0.03),
    "oh": Dominance(1.2, 0.045, 0.035, lead=0.05),
    "ou": Dominance(2.0, 0.05, 0.035, lead=0.1),
}
# Pauses shorter than _PAUSE_MIN_S are transparent (the lips do not close between words); the
# silence's dominance grows to full at _PAUSE_FULL_S.
_PAUSE_MIN_S = 0.08
_PAUSE_FULL_S = 0.25
_BASELINE_DOMINANCE = 1e-3  # of the rest pose, everywhere (keeps the weighted mean defined)


@dataclass(frozen=True)
class PhoneSpec:
    """How one espeak-ng phone is articulated."""

    parts: tuple[tuple[str, float], ...]  # (viseme, fraction of the phone's duration), in time order
    strength: float = 1.0  # scales the viseme's target values (and the speaker style's scales)
    dominance: float = 1.0  # multiplies the viseme's alpha

    @property
    def visemes(self) -> str:
        return "+".join(v for v, _ in self.parts)


def _p(*visemes: str, strength: float = 1.0, dominance: float = 1.0, split: Sequence[float] | None = None) -> PhoneSpec:
    fr = tuple(split) if split is not None else tuple([1.0 / len(visemes)] * len(visemes))
    return PhoneSpec(tuple(zip(visemes, fr, strict=True)), strength, dominance)


_WEAK = 0.4
# espeak-ng English mnemonics (ph_english and its accent tables), as reported in phoneme events.
PHONEMES: dict[str, PhoneSpec] = {
    # pauses
    "_": _p("sil"), "_:": _p("sil"), "_!": _p("sil"), "_|": _p("sil"), "_^": _p("sil"), "_#": _p("sil"),
    # bilabials, labiodentals, dentals
    "p": _p("PP"), "b": _p("PP"), "m": _p("PP"),
    "f": _p("FF"), "v": _p("FF"),
    "T": _p("TH"), "D": _p("TH", strength=0.8),
    # alveolars, velars, postalveolars
    "t": _p("DD"), "d": _p("DD"), "t#": _p("DD", strength=0.7, dominance=0.6), "t[": _p("DD"), "d#": _p("DD"),
    "n": _p("nn"), "n-": _p("nn"), "l": _p("nn"), "l/": _p("nn"), "L": _p("nn"), "@L": _p("E", "nn", strength=0.7),
    "k": _p("kk"), "g": _p("kk"), "N": _p("kk"), "x": _p("kk"), "?": _p("kk", strength=0.5, dominance=0.3),
    "tS": _p("CH"), "dZ": _p("CH"), "S": _p("CH"), "Z": _p("CH"),
    "s": _p("SS"), "z": _p("SS"),
    "r": _p("RR"), "r-": _p("RR", strength=0.7, dominance=0.6), "R": _p("RR"),
    "w": _p("ou", strength=1.0, dominance=1.5), "w#": _p("ou", dominance=1.5), "W": _p("ou", dominance=1.5),
    "j": _p("ih", strength=0.8, dominance=0.8),
    ";": _p("ih", strength=0.6, dominance=0.6),  # the [j] glide espeak inserts between i and a vowel ("media")
    "h": _p("E", strength=0.5, dominance=0.15),
    # monophthongs
    "a": _p("aa", strength=0.85), "a#": _p("aa", strength=0.6, dominance=_WEAK), "aa": _p("aa"), "A:": _p("aa"),
    "A": _p("aa"), "A@": _p("aa"), "V": _p("aa", strength=0.75),
    "E": _p("E"), "E2": _p("E"), "E3": _p("E"), "e": _p("E"), "e@": _p("E", strength=0.9),
    "I": _p("ih", strength=0.85), "I2": _p("ih", strength=0.7), "I#": _p("ih", strength=0.6, dominance=_WEAK),
    "i": _p("ih", strength=0.8), "i:": _p("ih"), "IR": _p("ih", "RR"),
    "0": _p("oh", strength=0.9), "O:": _p("oh"), "O": _p("oh"), "O@": _p("oh"), "O2": _p("oh", strength=0.85),
    "o@": _p("oh", "RR", split=(0.7, 0.3)), "o": _p("oh"),
    "U": _p("ou", strength=0.7), "u:": _p("ou"), "u": _p("ou", strength=0.8), "U@": _p("ou", "E", split=(0.6, 0.4)),
    "@": _p("E", strength=0.55, dominance=_WEAK), "@2": _p("E", strength=0.5, dominance=_WEAK),
    "@5": _p("E", strength=0.5, dominance=_WEAK), "@-": _p("E", strength=0.45, dominance=_WEAK),
    "3": _p("RR", strength=0.8, dominance=0.6),
    "3:": _p("E", "RR", strength=0.85), "VR": _p("aa", "RR", split=(0.6, 0.4)),
    # diphthongs (split in time)
    "aI": _p("aa", "ih", split=(0.55, 0.45)), "aI2": _p("aa", "ih", split=(0.55, 0.45)),
    "aI3": _p("aa", "ih", split=(0.55, 0.45)), "aI@": _p("aa", "ih", "E", split=(0.4, 0.3, 0.3)),
    "aU": _p("aa", "ou", split=(0.55, 0.45)), "aU@": _p("aa", "ou", "E", split=(0.4, 0.3, 0.3)),
    "eI": _p("E", "ih", split=(0.6, 0.4)), "OI": _p("oh", "ih", split=(0.5, 0.5)),
    "oU": _p("oh", "ou", split=(0.55, 0.45)), "@U": _p("E", "ou", split=(0.5, 0.5)),
    "i@": _p("ih", "E", split=(0.6, 0.4)), "i@3": _p("ih", "E", split=(0.6, 0.4)),
}  # fmt: skip
# American accents' LOT vowel is unrounded [ɑ].
_ACCENT_OVERRIDES: dict[str, dict[str, PhoneSpec]] = {
    "en-us": {"0": _p("aa", strength=0.9)},
    "en-us-nyc": {"0": _p("aa", strength=0.9)},
}
UNKNOWN_PHONE = _p("E", strength=0.5, dominance=0.5)  # neutral half-open mouth

# ARPAbet (lower case, as in CMUdict / Festival segment files), for real speech aligned by
# `a2bs.corpus.align`. Vowels may carry a CMUdict stress digit ("ih0", "aa1"); unstressed ones are
# articulated weaker (`_UNSTRESSED`). "ax" is unstressed AH (Festival's name for AH0).
ARPABET_ACCENT = "arpabet"  # the `accent` value that selects this table
ARPABET: dict[str, PhoneSpec] = {
    "pau": _p("sil"), "sil": _p("sil"), "sp": _p("sil"), "h#": _p("sil"),
    "p": _p("PP"), "b": _p("PP"), "m": _p("PP"),
    "f": _p("FF"), "v": _p("FF"),
    "th": _p("TH"), "dh": _p("TH", strength=0.8),
    "t": _p("DD"), "d": _p("DD"), "n": _p("nn"), "l": _p("nn"), "el": _p("E", "nn", strength=0.7),
    "en": _p("E", "nn", strength=0.7),
    "k": _p("kk"), "g": _p("kk"), "ng": _p("kk"),
    "ch": _p("CH"), "jh": _p("CH"), "sh": _p("CH"), "zh": _p("CH"),
    "s": _p("SS"), "z": _p("SS"),
    "r": _p("RR"), "er": _p("E", "RR", strength=0.85), "axr": _p("RR", strength=0.8, dominance=0.6),
    "w": _p("ou", dominance=1.5), "y": _p("ih", strength=0.8, dominance=0.8),
    "hh": _p("E", strength=0.5, dominance=0.15),
    "aa": _p("aa"), "ae": _p("aa", strength=0.85), "ah": _p("aa", strength=0.75),
    "ax": _p("E", strength=0.55, dominance=_WEAK), "ao": _p("oh"), "eh": _p("E"), "ih": _p("ih", strength=0.85),
    "iy": _p("ih"),
    "uh": _p("ou", strength=0.7), "uw": _p("ou"),
    "aw": _p("aa", "ou", split=(0.55, 0.45)), "ay": _p("aa", "ih", split=(0.55, 0.45)),
    "ey": _p("E", "ih", split=(0.6, 0.4)), "ow": _p("oh", "ou", split=(0.55, 0.45)),
    "oy": _p("oh", "ih", split=(0.5, 0.5)),
}  # fmt: skip
_UNSTRESSED = (0.8, 0.7)  # (strength, dominance) factors of a vowel with stress digit 0
PAUSES = frozenset(k for table in (PHONEMES, ARPABET) for k, v in table.items() if v.parts == (("sil", 1.0),))


def _arpabet_spec(name: str) -> PhoneSpec | None:
    base = name.rstrip("012")
    if base == "ah" and name.endswith("0"):
        base = "ax"
    spec = ARPABET.get(base)
    if spec is not None and name.endswith("0") and base != "ax":
        spec = PhoneSpec(spec.parts, spec.strength * _UNSTRESSED[0], spec.dominance * _UNSTRESSED[1])
    return spec


def _phone_spec(name: str, accent: str) -> PhoneSpec | None:
    if accent == ARPABET_ACCENT:
        return _arpabet_spec(name)
    over = _ACCENT_OVERRIDES.get(accent, {})
    return over.get(name) or PHONEMES.get(name)


def _target_vectors() -> dict[str, np.ndarray]:
    out = {}
    for vis, vals in VISEME_TARGETS.items():
        v = np.zeros(N, dtype=np.float64)
        for k, x in vals.items():
            v[INDEX[k]] = x
        out[vis] = v
    return out


_TARGETS = _target_vectors()
_REST_VEC = _TARGETS["sil"]


# --- coarticulation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    """Per-utterance speaker style (scales of the mouth gestures)."""

    jaw: float = 1.0
    round: float = 1.0
    spread: float = 1.0
    asym: float = 0.0  # > 0: left side stronger


_ROUND = ("mouthPucker", "mouthFunnel")
_SPREAD = ("mouthStretchLeft", "mouthStretchRight", "mouthSmileLeft", "mouthSmileRight")


def _segments(
    phones: Sequence[tuple[str, float, float]], accent: str, style: _Style
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Counter]:
    """Articulatory segments: (n, 2) times, (n, 4) dominance params, (n, 52) targets; unknown counts."""
    times, doms, targets = [], [], []
    unknown: Counter = Counter()
    scale = np.ones(N)
    scale[INDEX["jawOpen"]] = style.jaw
    for k in _ROUND:
        scale[INDEX[k]] = style.round
    for k in _SPREAD:
        scale[INDEX[k]] = style.spread
    # A run of consecutive pause phones (e.g. espeak's "_:" then "_", then the padding) is one pause.
    run_len = [0.0] * len(phones)
    i = 0
    while i < len(phones):
        j = i
        while j < len(phones) and phones[j][0] in PAUSES:
            j += 1
        for k in range(i, j):
            run_len[k] = phones[j - 1][2] - phones[i][1]
        i = max(j, i + 1)
    for (name, t0, t1), pause_len in zip(phones, run_len, strict=True):
        if t1 <= t0:
            continue
        spec = _phone_spec(name, accent)
        if spec is None:
            unknown[name] += 1
            spec = UNKNOWN_PHONE
        t = t0
        for vis, frac in spec.parts:
            te = t + frac * (t1 - t0)
            d = DOMINANCE[vis]
            alpha = d.alpha * spec.dominance
            if vis == "sil":
                alpha *= float(np.clip((pause_len - _PAUSE_MIN_S) / (_PAUSE_FULL_S - _PAUSE_MIN_S), 0.0, 1.0))
            tgt = _TARGETS[vis] if vis == "sil" else spec.strength * scale * _TARGETS[vis]
            times.append((t, te))
            doms.append((alpha, d.tau_before, d.tau_after, d.lead))
            targets.append(tgt)
            t = te
    if not times:
        return np.zeros((0, 2)), np.zeros((0, 4)), np.zeros((0, N)), unknown
    return np.array(times), np.array(doms), np.array(targets), unknown


def phones_to_curves(
    phones: Sequence[tuple[str, float, float]],
    n_frames: int,
    fps: int,
    *,
    accent: str = "en-us",
    style: _Style | None = None,
) -> tuple[np.ndarray, Counter]:
    """Mouth/jaw/tongue curves (n_frames, 52) in [0, 1] from phone segments; frame k at time k / fps.

    Returns the curves and a Counter of phone names that are not in `PHONEMES`.
    """
    seg_t, seg_d, seg_y, unknown = _segments(phones, accent, style or _Style())
    t = np.arange(n_frames, dtype=np.float64)[:, None] / fps
    if len(seg_t) == 0:
        return np.tile(_REST_VEC, (n_frames, 1)).astype(np.float32), unknown
    d_before = np.maximum(seg_t[None, :, 0] - t, 0.0)
    d_after = np.maximum(t - seg_t[None, :, 1], 0.0)
    shape = np.exp(-((d_before / seg_d[None, :, 1]) ** 2) - (d_after / seg_d[None, :, 2]) ** 2)
    lead = np.where(d_before > 0, seg_d[None, :, 3] * np.exp(-d_before / TAU_LEAD), 0.0)
    w = seg_d[None, :, 0] * (shape + lead)  # (frames, segments)
    num = w @ seg_y + _BASELINE_DOMINANCE * _REST_VEC
    den = w.sum(axis=1, keepdims=True) + _BASELINE_DOMINANCE
    curves = np.clip(num / den, 0.0, 1.0)
    return curves.astype(np.float32), unknown


# --- non-speech motion -----------------------------------------------------------------------------


def _smooth_noise(n: int, fps: int, rng: np.random.Generator, period_s: float) -> np.ndarray:
    """Smooth random signal in [-1, 1]: random knots every `period_s`, cosine-interpolated."""
    n_knots = max(2, math.ceil(n / fps / period_s) + 2)
    knots = rng.uniform(-1.0, 1.0, n_knots)
    pos = np.arange(n) / fps / period_s + rng.uniform(0.0, 1.0)
    i = np.minimum(pos.astype(int), n_knots - 2)
    f = pos - i
    f = (1.0 - np.cos(np.pi * f)) / 2.0
    return knots[i] * (1.0 - f) + knots[i + 1] * f


def _bump(t: np.ndarray, t0: float, t_peak: float, t_hold: float, t_end: float) -> np.ndarray:
    """0 before t0, raised-cosine rise to 1 at t_peak, hold to t_hold, raised-cosine fall to 0 at t_end."""
    y = np.zeros_like(t)
    up = (t >= t0) & (t < t_peak)
    y[up] = (1 - np.cos(np.pi * (t[up] - t0) / max(t_peak - t0, 1e-6))) / 2
    y[(t >= t_peak) & (t <= t_hold)] = 1.0
    dn = (t > t_hold) & (t < t_end)
    y[dn] = (1 + np.cos(np.pi * (t[dn] - t_hold) / max(t_end - t_hold, 1e-6))) / 2
    return y


def _speech_activity(phones: Sequence[tuple[str, float, float]], t: np.ndarray) -> np.ndarray:
    """~1 while speaking, ~0 in pauses longer than _PAUSE_MIN_S (smooth edges)."""
    y = np.zeros_like(t)
    for name, t0, t1 in phones:
        if name in PAUSES and t1 - t0 >= _PAUSE_MIN_S:
            continue
        y = np.maximum(y, _bump(t, t0 - 0.1, t0, t1, t1 + 0.1))
    return y


def _accents(
    phones: Sequence[tuple[str, float, float]], audio: np.ndarray, sr: int, accent: str, rng: np.random.Generator
) -> list[tuple[float, float, float]]:
    """Pitch-accent stand-ins: vowels with high energy x duration, at least 0.6 s apart -> (start, end, strength)."""
    vowels = []
    for name, t0, t1 in phones:
        spec = _phone_spec(name, accent)
        if spec is None or spec.parts[0][0] not in VOWEL_VISEMES or spec.dominance < 1.0 or name in ("w", "j", "y"):
            continue
        seg = audio[int(t0 * sr) : max(int(t1 * sr), int(t0 * sr) + 1)]
        rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) if seg.size else 0.0
        vowels.append((t0, t1, math.log(rms + 1e-5) + 0.5 * math.log(t1 - t0 + 1e-3)))
    if not vowels:
        return []
    scores = np.array([v[2] for v in vowels])
    z = (scores - scores.mean()) / (scores.std() + 1e-6)
    out: list[tuple[float, float, float]] = []
    for (t0, t1, _), zi in sorted(zip(vowels, z, strict=True), key=lambda p: -p[1]):
        if zi < 0.5 or any(abs(t0 - a) < 0.6 for a, _, _ in out) or rng.random() > 0.75:
            continue
        out.append((t0, t1, float(min(1.0, 0.5 + 0.25 * zi))))
    return sorted(out)


# --- speaking style -> expression (the prosody curriculum) --------------------------------------------

# eGeMAPSv02 functionals the style is read from (index into the 88), with the reference mean and
# spread that turn them into z-scores: fixed numbers (measured once over real and espeak-ng speech,
# docs/VISEMES.md), so the rule is the same for every corpus and every user's data.
_STYLE_FEATURES: dict[str, tuple[int, float, float]] = {
    "pitch_level": (0, 29.0, 4.5),  # F0semitoneFrom27.5Hz_sma3nz_amean (semitones)
    "pitch_range": (5, 3.7, 1.5),  # F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2 (semitones)
    "loudness_range": (11, 0.67, 0.13),  # loudness_sma3_stddevNorm (gain-independent)
    "rate": (81, 4.3, 0.9),  # loudnessPeaksPerSec (syllable rate)
}
_Z_CLIP = 2.5


@dataclass(frozen=True)
class SpeakingStyle:
    """Utterance-level speaking style read from the emotion stream's own input (eGeMAPS), in z units.

    arousal: wide pitch range, lively loudness, fast -> brows up, eyes wide.
    tension: fast but flat -> brows down, squint, frown, sneer.
    brightness: high pitch -> smile (with arousal), less frown.
    Because the targets are a function of the features the emotion stream receives, a model can
    only reach them through that stream: the mel stream sees 8.5 s, not the 20 s functionals.
    """

    arousal: float = 0.0
    tension: float = 0.0
    brightness: float = 0.0

    @classmethod
    def from_egemaps(cls, functionals: np.ndarray) -> SpeakingStyle:
        """From the 88 eGeMAPSv02 functionals (the first 88 of the 264 emotion features)."""
        f = np.asarray(functionals, dtype=np.float64).reshape(-1)
        z = {k: float(np.clip((f[i] - m) / sd, -_Z_CLIP, _Z_CLIP)) if np.isfinite(f[i]) else 0.0
             for k, (i, m, sd) in _STYLE_FEATURES.items()}  # fmt: skip
        return cls(
            arousal=(z["pitch_range"] + z["loudness_range"] + z["rate"]) / 3.0,
            tension=(z["rate"] - z["pitch_range"]) / 2.0,
            brightness=z["pitch_level"],
        )

    def levels(self) -> dict[str, float]:
        """The per-utterance expression levels this style gives (before blinks, accents and gaze)."""
        a, t, b = self.arousal, self.tension, self.brightness
        return {
            "brow_up": float(np.clip(0.10 + 0.08 * a, 0.0, 0.40)),
            "eye_wide": float(np.clip(0.03 + 0.04 * a, 0.0, 0.20)),
            "squint": float(np.clip(0.07 + 0.05 * t, 0.0, 0.25)),
            "brow_down": float(np.clip(0.04 + 0.05 * t, 0.0, 0.20)),
            "smile": float(np.clip(0.08 + 0.06 * b + 0.04 * a - 0.03 * t, 0.0, 0.40)),
            "frown": float(np.clip(0.03 + 0.04 * t - 0.03 * b, 0.0, 0.20)),
            "sneer": float(np.clip(0.02 + 0.03 * t, 0.0, 0.12)),
        }


def _non_speech(
    n: int,
    fps: int,
    phones: Sequence[tuple[str, float, float]],
    audio: np.ndarray,
    sr: int,
    accent: str,
    rng: np.random.Generator,
    style: SpeakingStyle,
) -> tuple[np.ndarray, np.ndarray]:
    """(additive layer, overriding-smile layer) for eyes, brows, cheeks, nose, smile, jaw sway.

    Blinks, gaze, accent brow raises and sway are random or tied to the phones; the levels of brows,
    eyes, smile, frown and sneer follow the speaking style (`SpeakingStyle.levels`)."""
    level_of = style.levels()
    t = np.arange(n, dtype=np.float64) / fps
    add = np.zeros((n, N))

    def put(name: str, y: np.ndarray | float) -> None:
        add[:, INDEX[name]] += y

    # Blinks: both eyes, every 2-6 s, 120-200 ms, fast close and slower opening.
    blink = np.zeros(n)
    t_last = float(t[-1]) if n else 0.0
    tb = rng.uniform(0.3, 3.0)
    while tb < t_last + 1.0:
        dur = rng.uniform(0.12, 0.20)
        blink = np.maximum(blink, rng.uniform(0.85, 1.0) * _bump(t, tb, tb + 0.4 * dur, tb + 0.45 * dur, tb + dur))
        tb += dur + rng.uniform(2.0, 6.0)
    ratio = rng.uniform(0.94, 1.0)
    put("eyeBlinkLeft", blink)
    put("eyeBlinkRight", blink * ratio)
    # Gaze: conjugate, small, changing every 1-3 s with ~60 ms saccades.
    gx, gy = np.zeros(n), np.zeros(n)
    ts, x, y = 0.0, rng.normal(0, 0.06), rng.normal(-0.02, 0.05)
    while ts < t_last:
        te = ts + rng.uniform(1.0, 3.0)
        nx, ny = rng.normal(0, 0.07), rng.normal(-0.02, 0.05)
        ramp = np.clip((t - te) / 0.06, 0, 1)
        seg = t >= ts
        gx[seg] = (x + (nx - x) * ramp)[seg]
        gy[seg] = (y + (ny - y) * ramp)[seg]
        ts, x, y = te, nx, ny
    put("eyeLookOutLeft", np.clip(gx, 0, None))
    put("eyeLookInRight", np.clip(gx, 0, None))
    put("eyeLookInLeft", np.clip(-gx, 0, None))
    put("eyeLookOutRight", np.clip(-gx, 0, None))
    down = np.clip(-gy, 0, None) + 0.08 * blink
    for side in ("Left", "Right"):
        put(f"eyeLookUp{side}", np.clip(gy, 0, None))
        put(f"eyeLookDown{side}", down)
    # Brow raises on accented vowels (+ a little eye widening), on top of the style's brow level.
    brow = np.zeros(n)
    for t0, t1, s in _accents(phones, audio, sr, accent, rng):
        amp = s * rng.uniform(0.3, 0.6)
        brow = np.maximum(brow, amp * _bump(t, t0 - 0.15, t0 + 0.5 * (t1 - t0), t1, t1 + rng.uniform(0.25, 0.45)))
    inner, outer = rng.uniform(0.8, 1.0), rng.uniform(0.6, 0.9)
    brow_up = np.clip(level_of["brow_up"] + brow, 0.0, 1.0)
    put("browInnerUp", inner * brow_up)
    put("browOuterUpLeft", outer * brow_up)
    put("browOuterUpRight", outer * brow_up * rng.uniform(0.9, 1.0))
    # Style levels: eye squint/wide, brows down (relaxed by accent raises).
    squint = level_of["squint"]
    put("eyeSquintLeft", squint + 0.1 * blink)
    put("eyeSquintRight", squint * rng.uniform(0.95, 1.05) + 0.1 * blink)
    put("eyeWideLeft", level_of["eye_wide"] + 0.15 * brow)
    put("eyeWideRight", level_of["eye_wide"] + 0.15 * brow)
    put("browDownLeft", level_of["brow_down"] * (1 - brow))
    put("browDownRight", level_of["brow_down"] * (1 - brow))
    # Smile: the style's level with a slow drift; cheeks, dimples and sneer follow.
    smile = np.clip(level_of["smile"] + 0.02 * _smooth_noise(n, fps, rng, rng.uniform(2.0, 5.0)), 0.0, 1.0)
    sl = smile * rng.uniform(0.95, 1.05)
    sr_ = smile * rng.uniform(0.95, 1.05)
    put("mouthFrownLeft", level_of["frown"])
    put("mouthFrownRight", level_of["frown"])
    put("cheekSquintLeft", 0.5 * sl)
    put("cheekSquintRight", 0.5 * sr_)
    put("mouthDimpleLeft", 0.25 * sl)
    put("mouthDimpleRight", 0.25 * sr_)
    put("noseSneerLeft", level_of["sneer"] + 0.1 * sl)
    put("noseSneerRight", level_of["sneer"] + 0.1 * sr_)
    # Jaw and mouth sway while speaking (still in pauses).
    act = _speech_activity(phones, t)
    sway = rng.uniform(0.02, 0.06) * _smooth_noise(n, fps, rng, 0.8) * act
    put("jawLeft", np.clip(sway, 0, None))
    put("jawRight", np.clip(-sway, 0, None))
    msway = rng.uniform(0.02, 0.06) * _smooth_noise(n, fps, rng, 0.6) * act
    put("mouthLeft", np.clip(msway, 0, None))
    put("mouthRight", np.clip(-msway, 0, None))
    smile_layer = np.zeros((n, N))
    smile_layer[:, INDEX["mouthSmileLeft"]] = sl
    smile_layer[:, INDEX["mouthSmileRight"]] = sr_
    return add, smile_layer


# --- utterances ------------------------------------------------------------------------------------


@dataclass
class Utterance:
    """One synthetic take: 16 kHz audio, its phones and the 52 ARKit curves."""

    text: str
    voice: str
    audio: np.ndarray  # 16 kHz mono float32
    phones: list[tuple[str, float, float]]  # (espeak-ng mnemonic, start_s, end_s), covering the whole audio
    curves: np.ndarray  # (ceil(duration * fps), 52) float32 in [0, 1], frame k at k / fps
    fps: int
    unknown_phonemes: dict[str, int] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


_PEAK = 0.6  # clean speech is peak-normalised to this (gain augmentation then spans -12..+3 dB)


def speak(
    text: str, voice: str, rate: int, pitch: int, rng: np.random.Generator, *, pitch_range: int = 50
) -> tuple[str, np.ndarray, list[tuple[str, float, float]], dict]:
    """espeak-ng speech for `text`: (clean text, 16 kHz float32 audio, phones, meta).

    `rng` draws the silence padding (0.15-0.6 s before, 0.25-0.7 s after). The phones cover the whole
    audio; each espeak phoneme event starts a phone that lasts until the next one."""
    clean = " ".join(str(text).split())
    if not clean:
        raise A2BSError("cannot synthesise an empty text")
    res = run_espeak(clean, voice, int(rate), int(pitch), int(pitch_range))
    if res.pcm.size == 0 or not res.events:
        raise A2BSError(f"espeak-ng produced no speech for {clean!r}")
    sr = res.sample_rate
    lead = round(rng.uniform(0.15, 0.6) * sr)
    tail = round(rng.uniform(0.25, 0.7) * sr)
    pcm = np.concatenate([np.zeros(lead), res.pcm.astype(np.float64) / 32768.0, np.zeros(tail)])
    total = len(pcm)
    starts = [lead + s for _, s in res.events]
    ends = [*starts[1:], lead + len(res.pcm)]
    phones: list[tuple[str, float, float]] = [("_", 0.0, starts[0] / sr)]
    for (name, _), s, e in zip(res.events, starts, ends, strict=True):
        if e > s:
            phones.append((name, s / sr, e / sr))
    phones.append(("_", ends[-1] / sr, total / sr))
    peak = float(np.max(np.abs(pcm)))
    if peak > 0:
        pcm *= _PEAK / peak
    audio = resample(pcm.astype(np.float32), sr, SAMPLE_RATE)
    meta = {
        "rate": int(rate),
        "pitch": int(pitch),
        "pitch_range": int(pitch_range),
        "espeak_voice": res.identifier,
        "espeak_version": res.version,
        "espeak_sample_rate": sr,
    }
    return clean, audio, phones, meta


def face_curves(
    phones: Sequence[tuple[str, float, float]],
    audio: np.ndarray,
    fps: int,
    rng: np.random.Generator,
    *,
    accent: str = "en-us",
    style: SpeakingStyle | None = None,
) -> tuple[np.ndarray, Counter]:
    """All 52 curves of one take (frame k at k / fps, ceil(duration * fps) frames) and unknown phones.

    The one place where a take's targets are made, for synthetic and for aligned real speech: mouth
    shapes from the phones (a random per-take articulation scale), non-speech motion, and expression
    levels from the speaking style (`SpeakingStyle`, neutral when None)."""
    n_frames = -(-len(audio) * int(fps) // SAMPLE_RATE)
    scales = _Style(
        jaw=rng.uniform(0.8, 1.2), round=rng.uniform(0.8, 1.2), spread=rng.uniform(0.8, 1.2), asym=rng.normal(0, 0.03)
    )
    mouth, unknown = phones_to_curves(phones, n_frames, int(fps), accent=accent, style=scales)
    add, smile = _non_speech(n_frames, int(fps), phones, audio, SAMPLE_RATE, accent, rng, style or SpeakingStyle())
    curves = mouth.astype(np.float64) + add
    # The smile layer raises the mouth corners but does not stack with the viseme's own spread.
    for k in ("mouthSmileLeft", "mouthSmileRight"):
        i = INDEX[k]
        curves[:, i] = np.maximum(mouth[:, i], smile[:, i]) + 0.3 * np.minimum(mouth[:, i], smile[:, i])
    if scales.asym:  # small left/right asymmetry of the paired mouth shapes
        for k in ARKIT_BLENDSHAPES:
            if k.startswith("mouth") and k.endswith("Left"):
                curves[:, INDEX[k]] *= 1 + scales.asym
                curves[:, INDEX[k[:-4] + "Right"]] *= 1 - scales.asym
    return np.clip(curves, 0.0, 1.0).astype(np.float32), unknown


def synthesize_utterance(
    text: str,
    voice: str,
    rate: int,
    pitch: int,
    fps: int,
    rng: np.random.Generator,
    *,
    pitch_range: int = 50,
    style: SpeakingStyle | None = None,
) -> Utterance:
    """Speak `text` with espeak-ng and make matching ARKit curves (clean audio; see `augment_audio`).

    `rng` draws the silence padding, the articulation scales and all non-speech motion; the same
    arguments and rng state give identical audio and curves. `style` sets the expression levels
    (neutral when None; the corpus reads it from the augmented audio, see `_make_take`)."""
    if isinstance(fps, bool) or not isinstance(fps, int | np.integer) or fps <= 0:
        raise A2BSError(f"fps must be a positive integer, got {fps!r}")
    clean, audio, phones, meta = speak(text, voice, rate, pitch, rng, pitch_range=pitch_range)
    curves, unknown = face_curves(phones, audio, int(fps), rng, accent=voice.partition("+")[0], style=style)
    return Utterance(clean, voice, audio, phones, curves, int(fps), dict(unknown), meta)


# --- augmentation ----------------------------------------------------------------------------------


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / (np.std(x) + 1e-12)


def _active_power(x: np.ndarray, sr: int) -> float:
    """Mean power of the 20 ms frames within 30 dB of the loudest (i.e. of the speech, not the pauses)."""
    hop = max(1, sr // 50)
    m = len(x) // hop
    if m == 0:
        return float(np.mean(x**2)) if x.size else 0.0
    p = np.mean(x[: m * hop].reshape(m, hop).astype(np.float64) ** 2, axis=1)
    active = p[p >= p.max() * 1e-3]
    return float(active.mean()) if active.size else 0.0


def augment_audio(audio: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, dict]:
    """Reverb (p=0.5, RT60 0.1-0.5 s), gain (-12..+3 dB), white or pink noise (p=0.8, SNR 20-40 dB).

    Same length as the input (the reverb tail is cut; the direct path is at lag 0, so timing is kept).
    Returns the float32 audio (clipped to [-1, 1]) and a description of what was applied.
    """
    x = np.asarray(audio, dtype=np.float64)
    info: dict = {}
    if rng.random() < 0.5 and x.size:
        rt60 = float(rng.uniform(0.1, 0.5))
        wet = float(rng.uniform(0.1, 0.5))
        m = max(2, int(rt60 * sr))
        tt = np.arange(m) / sr
        ir = rng.standard_normal(m) * np.exp(-6.9078 * tt / rt60)  # -60 dB at rt60
        ir[: int(0.002 * sr)] = 0.0  # first reflections after 2 ms
        ir *= wet / (np.sqrt(np.sum(ir**2)) + 1e-12)
        ir[0] = 1.0
        nfft = 1 << (len(x) + m - 1).bit_length()
        x = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(audio)]
        info["reverb"] = {"rt60_s": round(rt60, 3), "wet": round(wet, 3)}
    gain_db = float(rng.uniform(-12.0, 3.0))
    x = x * 10 ** (gain_db / 20)
    info["gain_db"] = round(gain_db, 2)
    if rng.random() < 0.8 and x.size:
        snr = float(rng.uniform(20.0, 40.0))
        kind = "pink" if rng.random() < 0.5 else "white"
        noise = _pink(len(x), rng) if kind == "pink" else rng.standard_normal(len(x))
        p = _active_power(x, sr)
        x = x + noise * math.sqrt(p / 10 ** (snr / 10))
        info["noise"] = {"kind": kind, "snr_db": round(snr, 2)}
    return np.clip(x, -1.0, 1.0).astype(np.float32), info


# --- sentences -------------------------------------------------------------------------------------


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


_W = {
    "name": _words(
        "Bob Mary Molly Paul Bobby Emma Maggie Pam Ben Bill Mabel Bruno Fiona Vivian Victor Oliver Ruth Luke "
        "Sue Owen Joe Rosa Ruby Hugo Martha Arthur Thomas Boris Wanda Walter Maya Ava Noah Sophie Peter"
    ),
    "noun": _words(
        "boat moon balloon bubble map pepper book box bottle puppy baby apple banana pumpkin mop broom "
        "coffee muffin waffle violin voice fox wolf fish shoe spoon soup goose tooth room pool ball park farm "
        "car star heart garden market harbour ocean road window robot rope umbrella hammer feather "
        "mirror father mother brother river valley village forest mountain paper pizza piano camera blanket "
        "football movie photo phone novel puzzle oven fountain lemon cookie tomato potato orange flower"
    ),
    "plural": _words(
        "boats balloons bubbles maps apples bananas pumpkins shoes spoons boots books boxes puppies "
        "feathers violins movies photos muffins waffles flowers lemons potatoes tomatoes stars rooms"
    ),
    "verb": _words(
        "bought found moved opened painted fixed borrowed pushed pulled dropped filled folded washed "
        "carried brought wrapped mopped baked cooked played watched loved showed followed booked"
    ),
    "adj": _words(
        "big blue brown purple pink warm cool huge small smooth soft rough heavy happy funny fluffy "
        "famous foolish old new bright dark gloomy lovely vivid marvellous proper humble awful"
    ),
    "adv": _words("slowly quickly happily boldly calmly softly proudly barely probably maybe obviously"),
    "place": _words(
        "by the pool|in the boat|at the market|on the roof|near the harbour|in the garden|under the moon|"
        "at home|by the fountain|in the valley|on the farm|in the room|by the river|at the park|in the forest",
        "|",
    ),
    "time": _words(
        "on Monday|at noon|in the morning|before lunch|after school|tomorrow|at five|at half past two|"
        "last summer|every Friday|in November|all afternoon|by midnight",
        "|",
    ),
    "number": _words("two|four|five|seven|nine|ten|twelve|fifteen|twenty|thirty|forty|fifty|ninety|a hundred", "|"),
    "interj": _words("Oh|Wow|Well|Hmm|Oh boy|Ah|Whoa|Oh my|Hooray|Okay|Ouch|Yes|No|Um, well", "|"),
}
_TEMPLATES = (
    "{name} {verb} {a_adj} {noun} {place}.",
    "{name} and {name2} {verb} {number} {plural} {time}.",
    "Would you move the {adj} {noun} {place}, please?",
    "Who {verb} the {noun}? {name} did, {time}.",
    "{interj}, the {noun} is {adv} {adj}!",
    "Maybe {name} will bring a {noun} {time}, or maybe not.",
    "I think the {adj} {noun} fell off the {noun2}.",
    "{name}, look at the {adj} {plural}! They are moving {adv}.",
    "Five fluffy {plural} moved very far from the {noun}.",
    "Do you remember the {noun} we {verb} {time}?",
    "My brother Bob bought {number} {adj} {plural}.",
    "Oh, who knew the {noun} would be so {adj}?",
    "Please put the {noun} back in the box, {name}.",
    "We saw {a_adj} {noun} {place}, and it was {adj}.",
    "{interj}! {name} {verb} my {noun} again.",
    "Mom made {number} {plural} for the {adj} party.",
    "The {noun} is {adj}; the {noun2}, however, is {adj2}.",
    "You moved the moon, {name}? Prove it.",
    "{name} is {adv} waiting {place}. Are you coming?",
    "Father thought of {number} {plural} {time}.",
)
_FIELD = re.compile(r"\{(\w+)\}")


def generate_sentence(rng: np.random.Generator) -> str:
    """One templated utterance (one or two sentences, ~1.5-6 s of speech), deterministic for `rng`."""
    tpl = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]

    def pick(key: str) -> str:
        words = _W[key]
        return words[int(rng.integers(len(words)))]

    def fill(m: re.Match) -> str:
        key = m.group(1)
        if key == "a_adj":
            w = pick("adj")
            return ("an " if w[0] in "aeiou" else "a ") + w
        return pick(key.rstrip("2"))

    return _FIELD.sub(fill, tpl)


# --- corpus ----------------------------------------------------------------------------------------

_VAL_EVERY = 10  # take i is a validation take when i % 10 == 1 (so any corpus with >= 2 takes has one)
_LOOKAHEAD = 4


def _is_held_out(voice: str, held_out: Sequence[str]) -> bool:
    return any(voice == h or ("+" not in h and voice.partition("+")[0] == h) for h in held_out)


def _take_name(i: int, voice: str) -> str:
    return f"syn{i:05d}_{re.sub(r'[^A-Za-z0-9-]+', '_', voice)}"


@dataclass(frozen=True)
class _Plan:
    index: int
    name: str
    split: str
    text: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    seed: tuple[int, int]


def _plans(seed: int, train_voices: Sequence[str], val_voices: Sequence[str]) -> Iterator[_Plan]:
    """The take plans, in order; every random choice is made here, sequentially."""
    rng = np.random.default_rng([seed, 1])
    train_texts: set[str] = set()
    val_texts: set[str] = set()
    i = 0
    while True:
        split = "val" if i % _VAL_EVERY == 1 else "train"
        voices = val_voices if split == "val" else train_voices
        voice = voices[int(rng.integers(len(voices)))]
        mine, other = (val_texts, train_texts) if split == "val" else (train_texts, val_texts)
        text = generate_sentence(rng)
        for _ in range(50):  # a held-out sentence is never a training sentence (and vice versa)
            if text not in other:
                break
            text = generate_sentence(rng)
        mine.add(text)
        yield _Plan(
            i,
            _take_name(i, voice),
            split,
            text,
            voice,
            int(rng.integers(RATE_RANGE[0], RATE_RANGE[1] + 1)),
            int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
            int(rng.integers(INTONATION_RANGE[0], INTONATION_RANGE[1] + 1)),
            (seed, i),
        )
        i += 1


def _make_take(plan: _Plan, fps: int) -> tuple[Utterance, np.ndarray, dict]:
    """Speak, augment, then read the speaking style from the augmented audio (what the model hears)."""
    rng = np.random.default_rng([plan.seed[0], 2, plan.seed[1]])
    clean, speech, phones, meta = speak(plan.text, plan.voice, plan.rate, plan.pitch, rng, pitch_range=plan.pitch_range)
    augmented, aug = augment_audio(speech, rng)
    audio, emotion, style = heard_style(augmented)
    accent = plan.voice.partition("+")[0]
    curves, unknown = face_curves(phones, speech, fps, rng, accent=accent, style=style)
    meta = {**meta, "speaking_style": asdict(style), "emotion_raw": [float(v) for v in emotion]}
    return Utterance(clean, plan.voice, speech, phones, curves, fps, dict(unknown), meta), audio, aug


def heard_style(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, SpeakingStyle]:
    """(the audio as the take's 16-bit WAV holds it, its raw emotion features, its speaking style):
    the style is read from exactly what training will hear, so the targets follow the model's input."""

    heard = pcm16_roundtrip(audio)
    emotion = emotion_features_at(heard, len(heard) / SAMPLE_RATE)
    return heard, emotion, SpeakingStyle.from_egemaps(emotion[:EGEMAPS_DIM])


def pcm16_roundtrip(audio: np.ndarray) -> np.ndarray:
    """`audio` as it reads back from a 16-bit WAV (idempotent: writing the result gives the same file)."""
    buf = io.BytesIO()
    sf.write(buf, np.asarray(audio, dtype=np.float32), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    buf.seek(0)
    return sf.read(buf, dtype="float32")[0]


def _write_take(takes: Path, plan: _Plan, utt: Utterance, audio: np.ndarray, aug: dict) -> dict:
    sf.write(takes / f"{plan.name}.wav", audio, SAMPLE_RATE, subtype="PCM_16")
    with open_writer(takes / f"{plan.name}.csv", fps=utt.fps, n_frames=len(utt.curves)) as w:
        w.write(utt.curves)
    record = {
        "take": plan.name,
        "split": plan.split,
        "text": utt.text,
        "voice": utt.voice,
        **utt.meta,
        "duration_s": round(utt.duration_s, 6),
        "fps": utt.fps,
        "n_frames": len(utt.curves),
        "sample_rate": SAMPLE_RATE,
        "augmentation": aug,
        "audio_sha256": sha256(takes / f"{plan.name}.wav"),
        "unknown_phonemes": utt.unknown_phonemes,
        "phones": [[p, round(a, 6), round(b, 6)] for p, a, b in utt.phones],
    }
    (takes / f"{plan.name}.phones.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def publish_corpus(tmp: Path, out_dir: Path, manifest: dict) -> None:
    """Write corpus.json into the finished temp folder and rename it to `out_dir` (never over another)."""
    (tmp / "corpus.json").write_text(json.dumps(manifest, indent=1) + "\n")
    publish_new_dir(tmp, out_dir)


def build_corpus(
    out_dir: Path,
    minutes: float,
    seed: int,
    fps: int = 60,
    held_out_voices: Sequence[str] = DEFAULT_HELD_OUT_VOICES,
    progress: Callable[[float], None] | None = None,
    *,
    voices: Sequence[str] = VOICES,
    workers: int | None = None,
) -> dict:
    """Write a synthetic corpus of about `minutes` of speech to `out_dir` (which must not exist).

    Layout: ``takes/<take>.wav`` (16 kHz mono PCM_16, augmented), ``takes/<take>.csv`` (Live Link
    Face, `fps`), ``takes/<take>.phones.json`` and ``corpus.json`` (seed, voices, the train/val split
    -- val takes use `held_out_voices` (an accent without "+variant" holds out all its variants) and
    sentences never used for training --, every take's phone segments, unknown-phoneme counts).
    Built in a temp folder next to `out_dir` and renamed into place; deterministic for `seed`
    (independent of `workers`). Returns the contents of corpus.json.
    """
    out_dir = Path(out_dir)
    if isinstance(fps, bool) or fps not in SUPPORTED_FPS:
        raise A2BSError(f"fps must be one of {SUPPORTED_FPS}, got {fps!r}")
    if not (isinstance(minutes, int | float) and math.isfinite(minutes) and minutes > 0):
        raise A2BSError(f"minutes must be a positive number, got {minutes!r}")
    check_new_dir(out_dir, "a corpus")
    parent = out_dir.parent
    held_out = tuple(held_out_voices)
    train_voices = [v for v in voices if not _is_held_out(v, held_out)]
    val_voices = [v for v in voices if _is_held_out(v, held_out)] or [h for h in held_out if "+" in h or h in ACCENTS]
    if not train_voices:
        raise A2BSError("every voice is held out: nothing left to train on")
    if not val_voices:
        val_voices = train_voices  # no held-out voice: validation still uses held-out sentences
    for v in sorted({*train_voices[:1], *val_voices}):  # fail early on a bad voice name
        run_espeak("a", v)

    target_s = minutes * 60.0
    n_workers = workers or min(2, os.cpu_count() or 1)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        takes_dir = tmp / "takes"
        takes_dir.mkdir()
        records: list[dict] = []
        unknown: Counter = Counter()
        total = 0.0
        espeak_version = ""
        plans = _plans(seed, train_voices, val_voices)
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            queue: list[tuple[_Plan, Future]] = []
            while total < target_s:
                while len(queue) < _LOOKAHEAD:
                    p = next(plans)
                    queue.append((p, pool.submit(_make_take, p, fps)))
                plan, fut = queue.pop(0)
                utt, audio, aug = fut.result()
                records.append(_write_take(takes_dir, plan, utt, audio, aug))
                unknown.update(utt.unknown_phonemes)
                espeak_version = utt.meta["espeak_version"]
                total += utt.duration_s
                if progress is not None:
                    progress(min(total / target_s, 1.0))
            for _, fut in queue:
                fut.cancel()
        split = {s: [r["take"] for r in records if r["split"] == s] for s in ("train", "val")}
        manifest = {
            "format": "a2bs-synthetic-corpus/1",
            "generator": "a2bs.corpus.synth",
            "espeak_ng_version": espeak_version,
            "seed": seed,
            "fps": fps,
            "sample_rate": SAMPLE_RATE,
            "minutes_requested": minutes,
            "duration_s": round(total, 3),
            "n_takes": len(records),
            "voices": sorted({r["voice"] for r in records}),
            "train_voices": list(train_voices),
            "held_out_voices": list(held_out),
            "held_out_sentences": sorted({r["text"] for r in records if r["split"] == "val"}),
            "split": split,
            "unknown_phonemes": dict(unknown.most_common()),
            "takes": {
                r["take"]: {k: r[k] for k in ("split", "text", "voice", "rate", "pitch", "duration_s", "phones")}
                for r in records
            },
        }
        publish_corpus(tmp, out_dir, manifest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress is not None:
        progress(1.0)
    return manifest


# --- documentation ---------------------------------------------------------------------------------


def tables_markdown() -> str:
    """The phoneme, viseme-target and dominance tables as Markdown (docs/VISEMES.md embeds this)."""
    lines = [
        "### Phoneme -> viseme",
        "",
        "| espeak-ng | visemes (time split) | strength | dominance x |",
        "|---|---|---|---|",
    ]
    for name, spec in PHONEMES.items():
        parts = " + ".join(f"{v} ({f:.2f})" if len(spec.parts) > 1 else v for v, f in spec.parts)
        lines.append(f"| `{name}` | {parts} | {spec.strength:g} | {spec.dominance:g} |")
    for accent, over in _ACCENT_OVERRIDES.items():
        for name, spec in over.items():
            lines.append(f"| `{name}` ({accent}) | {spec.visemes} | {spec.strength:g} | {spec.dominance:g} |")
    lines.append(f"| unknown | {UNKNOWN_PHONE.visemes} | {UNKNOWN_PHONE.strength:g} | {UNKNOWN_PHONE.dominance:g} |")
    lines += [
        "",
        "### ARPAbet -> viseme (aligned real speech)",
        "",
        f"Vowels with CMUdict stress 0 get strength x{_UNSTRESSED[0]:g} and dominance x{_UNSTRESSED[1]:g}; "
        "`ah0` is `ax`.",
        "",
        "| ARPAbet | visemes (time split) | strength | dominance x |",
        "|---|---|---|---|",
    ]
    for name, spec in ARPABET.items():
        parts = " + ".join(f"{v} ({f:.2f})" if len(spec.parts) > 1 else v for v, f in spec.parts)
        lines.append(f"| `{name}` | {parts} | {spec.strength:g} | {spec.dominance:g} |")
    lines += [
        "",
        f"### Speaking style (eGeMAPSv02 functionals of the take, z = (x - mean) / spread, clipped to +-{_Z_CLIP:g})",
        "",
        "| feature | eGeMAPS index | mean | spread |",
        "|---|---|---|---|",
    ]
    for key, (i, mean, sd) in _STYLE_FEATURES.items():
        lines.append(f"| {key} | {i} | {mean:g} | {sd:g} |")
    lines += ["", "### Viseme -> ARKit targets (unlisted shapes are 0)", "", "| viseme | targets |", "|---|---|"]
    for vis in VISEMES:
        vals = VISEME_TARGETS[vis]
        lines.append(f"| {vis} | " + ", ".join(f"{k} {x:.2f}" for k, x in vals.items()) + " |")
    lines += ["", "### Dominance", "", "| viseme | alpha | tau_before (s) | tau_after (s) |", "|---|---|---|---|"]
    for vis in VISEMES:
        d = DOMINANCE[vis]
        lines.append(f"| {vis} | {d.alpha:g} | {d.tau_before:g} | {d.tau_after:g} |")
    return "\n".join(lines) + "\n"
