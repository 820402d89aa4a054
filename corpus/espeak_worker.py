"""One espeak-ng synthesis in a fresh process: the program `a2bs.corpus.espeak.run_espeak` launches.

Run by file path in ``python -I -S`` (stdlib only, no project imports). Request: one JSON object on
stdin (library, text, voice, rate, pitch, range). Reply on stdout: one JSON line (sample rate, phoneme
events, voice identifier, library version), then the int16 little-endian PCM. Errors: exit code 2 and
one line on stderr. Why a process per synthesis: espeak-ng keeps static state between syntheses, so
only a fresh process gives bit-identical audio for the same request (`a2bs.corpus.espeak`).
"""

from __future__ import annotations

import ctypes
import json
import sys
from typing import NoReturn

AUDIO_OUTPUT_SYNCHRONOUS = 2
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
espeakCHARS_AUTO = 0
POS_CHARACTER = 1
espeakRATE, espeakPITCH, espeakRANGE = 1, 3, 4
espeakEVENT_PHONEME = 7
ALIASES = {"en-gb": "en", "en-uk": "en"}  # SetVoiceByName("en-gb") fails in espeak-ng 1.51


def fail(msg: str) -> NoReturn:
    """One line on stderr and exit code 2 (run_espeak turns it into an A2BSError)."""
    sys.stderr.write(msg + "\n")
    sys.exit(2)


class _Id(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class Event(ctypes.Structure):  # espeak_EVENT, speak_lib.h API revision 12
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


class Voice(ctypes.Structure):  # espeak_VOICE
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))


def _load(library: str) -> ctypes.CDLL:
    """The library with the signatures this program calls."""
    try:
        lib = ctypes.CDLL(library)
    except OSError as e:
        fail(f"cannot load {library} ({e}): install espeak-ng (apt-get install espeak-ng)")
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(Voice)]
    lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(Voice)
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    return lib


def main() -> None:
    """Read the request from stdin, synthesise, write the reply to stdout."""
    req = json.loads(sys.stdin.buffer.read())
    lib = _load(req["library"])
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, None, espeakINITIALIZE_PHONEME_EVENTS)
    if rate <= 0:
        fail("espeak_Initialize failed (espeak-ng-data missing?)")

    chunks: list[bytes] = []
    events: list[list] = []

    def on_synth(wav, n, ev) -> int:  # ctypes pointers to the samples and the event list
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

    callback = CALLBACK(on_synth)  # kept referenced until the synthesis returns
    lib.espeak_SetSynthCallback(callback)

    spec = req["voice"]
    lang, _, variant = spec.partition("+")
    names = [spec] + ([ALIASES[lang] + ("+" + variant if variant else "")] if lang in ALIASES else [])
    if not any(lib.espeak_SetVoiceByName(n.encode()) == 0 for n in names) and (
        variant or lib.espeak_SetVoiceByProperties(ctypes.byref(Voice(None, lang.encode()))) != 0
    ):
        fail(f"unknown espeak-ng voice {spec!r} (see `espeak-ng --voices=en`; variants are +m1..m7, +f1..f5)")
    cur = lib.espeak_GetCurrentVoice().contents
    for param, key in ((espeakRATE, "rate"), (espeakPITCH, "pitch"), (espeakRANGE, "range")):
        lib.espeak_SetParameter(param, int(req[key]), 0)
    text = req["text"].encode("utf-8") + b"\0"
    rc = lib.espeak_Synth(text, len(text), 0, POS_CHARACTER, 0, espeakCHARS_AUTO, None, None)
    if rc != 0:
        fail(f"espeak_Synth failed with code {rc}")
    head = {
        "sample_rate": rate,
        "events": events,
        "identifier": (cur.identifier or b"").decode(),
        "version": (lib.espeak_Info(None) or b"").decode(),
    }
    out = sys.stdout.buffer
    out.write(json.dumps(head).encode() + b"\n")
    for c in chunks:
        out.write(c)
    out.flush()


if __name__ == "__main__":
    main()
