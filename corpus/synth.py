"""Deterministic synthetic training corpus: espeak-ng speech + ARKit curves from its phoneme timing.

Pipeline for one utterance (`synthesize_utterance`):

1. **Speech** (`speak`): espeak-ng (`a2bs.corpus.espeak`) speaks the text and reports when each phone
   starts; a phone lasts until the next one. The audio is padded with silence, peak-normalised and
   resampled to 16 kHz.
2. **Targets** (`face_curves`, shared with aligned real speech): mouth, jaw and tongue from the phones
   (`a2bs.corpus.visemes` tables, `a2bs.corpus.coarticulation` blending; unknown phones get a neutral
   half-open target and are counted, never fatal), plus non-speech motion and the speaking style's
   expression (`a2bs.corpus.motion`), so every one of the 52 streams carries something.

`build_corpus` plans takes (templated sentences from `a2bs.corpus.sentences`, voices, rates, pitches),
augments their audio (`a2bs.corpus.augment`) and writes the project's dataset format
(``takes/<name>.wav`` 16 kHz PCM_16, ``takes/<name>.csv`` Live Link Face via `open_writer`,
``takes/<name>.phones.json``) plus ``corpus.json``, into a temp folder that is renamed into place at the end.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
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
from a2bs.core.files import check_new_dir, publish_new_dir, sha256, temp_prefix
from a2bs.corpus.augment import augment_audio
from a2bs.corpus.background import RoomToneBank, with_background
from a2bs.corpus.coarticulation import ArticulationScale, phones_to_curves
from a2bs.corpus.espeak import ACCENTS, VOICES, run_espeak
from a2bs.corpus.motion import STYLE_FEATURES, Z_CLIP, SpeakingStyle, non_speech_motion
from a2bs.corpus.sentences import generate_sentence
from a2bs.corpus.visemes import (
    ACCENT_OVERRIDES,
    ARPABET,
    DOMINANCE,
    PHONEMES,
    SEALED_VISEMES,
    UNKNOWN_PHONE,
    UNSTRESSED,
    VISEME_TARGETS,
    VISEMES,
)

__all__ = [
    "DEFAULT_HELD_OUT_VOICES",
    "Utterance",
    "build_corpus",
    "face_curves",
    "heard_style",
    "pcm16_roundtrip",
    "publish_corpus",
    "speak",
    "synthesize_utterance",
    "tables_markdown",
]

# Voices held out for validation by default; a whole accent (no "+variant") holds out all its variants.
DEFAULT_HELD_OUT_VOICES: tuple[str, ...] = ("en-029", "en-us+f4", "en-gb+m6")
RATE_RANGE = (130, 210)  # words per minute
PITCH_RANGE = (25, 75)  # espeakPITCH, 0-100 (50 = the voice's normal)
INTONATION_RANGE = (30, 80)  # espeakRANGE, 0 = monotone, 50 = normal

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
    scales = ArticulationScale(
        jaw=rng.uniform(0.8, 1.2), round=rng.uniform(0.8, 1.2), spread=rng.uniform(0.8, 1.2), asym=rng.normal(0, 0.03)
    )
    mouth, unknown = phones_to_curves(phones, n_frames, int(fps), accent=accent, style=scales)
    style = style or SpeakingStyle()
    add, smile = non_speech_motion(n_frames, int(fps), phones, audio, SAMPLE_RATE, accent, rng, style)
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


def _make_take(plan: _Plan, fps: int, background: RoomToneBank | None = None) -> tuple[Utterance, np.ndarray, dict]:
    """Speak, augment, add real room tone and non-speech stretches (with `background`), then read the
    speaking style from the result (what the model hears)."""
    rng = np.random.default_rng([plan.seed[0], 2, plan.seed[1]])
    clean, speech, phones, meta = speak(plan.text, plan.voice, plan.rate, plan.pitch, rng, pitch_range=plan.pitch_range)
    augmented, aug = augment_audio(speech, rng)
    if background is not None:
        augmented, phones, speech, aug["background"] = with_background(
            augmented, phones, speech, rng, background, pause="_"
        )
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
    background: RoomToneBank | None = None,
) -> dict:
    """Write a synthetic corpus of about `minutes` of speech to `out_dir` (which must not exist).

    Layout: ``takes/<take>.wav`` (16 kHz mono PCM_16, augmented), ``takes/<take>.csv`` (Live Link
    Face, `fps`), ``takes/<take>.phones.json`` and ``corpus.json`` (seed, voices, the train/val split
    -- val takes use `held_out_voices` (an accent without "+variant" holds out all its variants) and
    sentences never used for training --, every take's phone segments, unknown-phoneme counts).
    Built in a temp folder next to `out_dir` and renamed into place; deterministic for `seed`
    (independent of `workers`). With `background` (real room tone, `a2bs.corpus.background`), every
    take gets non-speech stretches with rest targets and room tone under it. Returns the contents of corpus.json.
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
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=temp_prefix(out_dir, ".tmp"), suffix=".tmp"))
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
                    queue.append((p, pool.submit(_make_take, p, fps, background)))
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
            "background_rooms": len(background.rooms) if background is not None else 0,
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
    for accent, over in ACCENT_OVERRIDES.items():
        for name, spec in over.items():
            lines.append(f"| `{name}` ({accent}) | {spec.visemes} | {spec.strength:g} | {spec.dominance:g} |")
    lines.append(f"| unknown | {UNKNOWN_PHONE.visemes} | {UNKNOWN_PHONE.strength:g} | {UNKNOWN_PHONE.dominance:g} |")
    lines += [
        "",
        "### ARPAbet -> viseme (aligned real speech)",
        "",
        f"Vowels with CMUdict stress 0 get strength x{UNSTRESSED[0]:g} and dominance x{UNSTRESSED[1]:g}; "
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
        f"### Speaking style (eGeMAPSv02 functionals of the take, z = (x - mean) / spread, clipped to +-{Z_CLIP:g})",
        "",
        "| feature | eGeMAPS index | mean | spread |",
        "|---|---|---|---|",
    ]
    for key, (i, mean, sd) in STYLE_FEATURES.items():
        lines.append(f"| {key} | {i} | {mean:g} | {sd:g} |")
    lines += [
        "",
        "### Viseme -> ARKit targets (unlisted shapes are 0)",
        "",
        "The lip gap jawOpen - mouthClose is what is blended (ARKit's lips meet at 0); over "
        + ", ".join(sorted(SEALED_VISEMES))
        + " it is held at 0 (sealed). mouthClose never exceeds jawOpen.",
        "",
        "| viseme | targets |",
        "|---|---|",
    ]
    for vis in VISEMES:
        vals = VISEME_TARGETS[vis]
        lines.append(f"| {vis} | " + ", ".join(f"{k} {x:.2f}" for k, x in vals.items()) + " |")
    lines += ["", "### Dominance", "", "| viseme | alpha | tau_before (s) | tau_after (s) |", "|---|---|---|---|"]
    for vis in VISEMES:
        d = DOMINANCE[vis]
        lines.append(f"| {vis} | {d.alpha:g} | {d.tau_before:g} | {d.tau_after:g} |")
    return "\n".join(lines) + "\n"
