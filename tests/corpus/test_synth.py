"""Synthetic corpus: espeak-ng phoneme timing, visemes, coarticulation, non-speech motion, corpus layout."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from a2bs.core.animation_io import read_live_link_face_csv
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX, MOUTH_INDICES
from a2bs.core.constants import SAMPLE_RATE
from a2bs.core.errors import A2BSError
from a2bs.corpus import augment, background, coarticulation, espeak, sentences, synth, visemes

JAW, CLOSE, PUCKER, FUNNEL = INDEX["jawOpen"], INDEX["mouthClose"], INDEX["mouthPucker"], INDEX["mouthFunnel"]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "VISEMES.md"


def _utt(text: str, voice: str = "en-us", seed: int = 0, fps: int = 60, rate: int = 160) -> synth.Utterance:
    return synth.synthesize_utterance(text, voice, rate, 50, fps, np.random.default_rng(seed))


def _frame(u: synth.Utterance, t: float) -> int:
    return min(round(t * u.fps), len(u.curves) - 1)


def _centre(u: synth.Utterance, start: float, end: float) -> np.ndarray:
    return u.curves[_frame(u, (start + end) / 2)]


def _gap(y: np.ndarray) -> np.ndarray:
    """ARKit's lip gap: the lips meet when mouthClose equals jawOpen."""
    return y[..., JAW].astype(np.float64) - y[..., CLOSE]


def test_phoneme_events_ordered_within_audio_and_aligned() -> None:
    res = espeak.run_espeak("Bob and mama want five blue boots. Who are you?", "en-us")
    assert res.sample_rate == espeak.ESPEAK_RATE
    names = [n for n, _ in res.events]
    samples = np.array([s for _, s in res.events])
    assert {"b", "m", "u:", "f", "v"} <= set(names)
    assert np.all(np.diff(samples) >= 0) and samples[0] >= 0 and samples[-1] <= len(res.pcm)
    x = res.pcm.astype(np.float64) / 32768
    assert np.max(np.abs(x[: samples[0]])) < 1e-3  # silence before the first phoneme
    ends = [*samples[1:], len(x)]
    rms = {"vowel": [], "pause": []}
    for (name, s), e in zip(res.events, ends, strict=True):
        if e - s < 200:
            continue
        kind = "pause" if name.startswith("_") else "vowel" if name in ("A:", "u:", "aI", "0", "a") else None
        if kind:
            rms[kind].append(float(np.sqrt(np.mean(x[s:e] ** 2))))
    assert rms["vowel"] and rms["pause"]
    assert min(rms["vowel"]) > 0.03 and max(rms["pause"]) < 0.3 * min(rms["vowel"])


def test_utterance_shapes_ranges_and_phone_cover() -> None:
    for fps in (30, 60):
        u = _utt("Maybe Bob will bring a violin.", fps=fps, seed=1)
        assert u.audio.dtype == np.float32 and u.audio.ndim == 1
        n = len(u.audio)
        assert u.curves.shape == (-(-n * fps // SAMPLE_RATE), 52) == (math.ceil(u.duration_s * fps), 52)
        assert u.curves.dtype == np.float32 and np.isfinite(u.curves).all()
        assert u.curves.min() >= 0.0 and u.curves.max() <= 1.0
        starts = np.array([a for _, a, _ in u.phones])
        ends = np.array([b for _, _, b in u.phones])
        assert starts[0] == 0.0 and math.isclose(ends[-1], u.duration_s, abs_tol=1e-3)
        assert np.allclose(starts[1:], ends[:-1]) and np.all(ends > starts)
        assert u.unknown_phonemes == {}
        # every blendshape stream moves somewhere or has a non-zero level
        assert (u.curves.max(axis=0) > 0).sum() >= 45


@pytest.mark.parametrize("text", ["mama", "Bob", "papa"])
def test_bilabials_close_and_vowels_open(text: str) -> None:
    u = _utt(text, seed=2)
    closures = [(a, b) for p, a, b in u.phones if p in ("m", "b", "p")]
    vowels = [(a, b) for p, a, b in u.phones if p in ("A:", "0", "a", "aa")]
    assert closures and vowels, u.phones
    for a, b in closures:
        c = _centre(u, a, b)
        assert abs(_gap(c)) <= 0.005 and c[JAW] < 0.2, (text, a, c[CLOSE], c[JAW])  # sealed, jaw nearly closed
    jaw_closed = max(_centre(u, a, b)[JAW] for a, b in closures)
    jaw_open = max(_centre(u, a, b)[JAW] for a, b in vowels)
    assert jaw_open > 0.3 and jaw_open > jaw_closed + 0.2


@pytest.mark.parametrize(("rounded", "spread"), [("who", "he"), ("you", "ye")])
def test_rounded_vowels_pucker(rounded: str, spread: str) -> None:
    def vowel_values(text: str, vowel: str) -> np.ndarray:
        u = _utt(text, seed=3)
        segs = [(a, b) for p, a, b in u.phones if p == vowel]
        assert segs, u.phones
        return _centre(u, *segs[0])

    r = vowel_values(rounded, "u:")
    s = vowel_values(spread, "i:")
    assert r[PUCKER] > 0.4 and r[FUNNEL] > 0.2
    assert s[PUCKER] < 0.1 and r[PUCKER] > s[PUCKER] + 0.3


def test_closure_is_anticipated() -> None:
    u = _utt("I saw Bob.", seed=4, rate=150)
    names = [p for p, _, _ in u.phones]
    i = names.index("b")
    vowel_start, onset = u.phones[i - 1][1], u.phones[i][1]
    assert names[i - 1] == "O:", u.phones
    gap = _gap(u.curves)
    before = gap[_frame(u, (vowel_start + onset) / 2)]  # middle of the preceding vowel
    at_onset = gap[int(onset * u.fps)]  # last frame at or before the acoustic onset
    early = gap[int((onset - 0.03) * u.fps)]  # ~30 ms before the onset
    assert early < before - 0.03  # the lips are already closing
    assert at_onset < early and at_onset < 0.6 * before


def test_phones_to_curves_anticipation_and_unknown() -> None:
    phones = [
        ("_", 0.0, 0.3),
        ("A:", 0.3, 0.45),
        ("Qx", 0.45, 0.5),
        ("b", 0.5, 0.56),
        ("A:", 0.56, 0.7),
        ("_", 0.7, 1.2),
    ]
    y, unknown = coarticulation.phones_to_curves(phones, 1200, 1000)
    assert unknown == {"Qx": 1}
    assert y.shape == (1200, 52) and np.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    # the lip gap narrows before the /b/ onset (at 500 ms) ...
    gap = _gap(y)
    assert gap[440] > gap[480] > gap[500]
    close_start = 500 - int(np.argmax(gap[500:380:-1] > gap[375] - 0.02))
    assert 30 <= 500 - close_start <= 150
    # ... is 0 (sealed) over the closure and opens into the vowel
    assert np.abs(gap[500:561]).max() <= 1e-6 and y[530, JAW] < 0.15 and y[640, JAW] > 0.45 and gap[640] > 0.4


def test_silence_is_still() -> None:
    u = _utt("Who moved my blue boat? Bob did.", seed=5)
    speech = [(a, b) for p, a, b in u.phones if p not in visemes.PAUSES]
    t = np.arange(len(u.curves)) / u.fps
    far = np.array([all(x < a - 0.12 or x > b + 0.12 for a, b in speech) for x in t])
    assert far.sum() >= 10
    mouth = u.curves[:, list(MOUTH_INDICES)]
    quiet = far[1:] & far[:-1]
    assert np.abs(np.diff(mouth, axis=0))[quiet].max() < 0.005
    resting = [i for i in MOUTH_INDICES if not ARKIT_BLENDSHAPES[i].startswith(("mouthSmile", "mouthDimple"))]
    assert u.curves[np.ix_(far, resting)].max() < 0.12  # a relaxed mouth (a resting smile is allowed)


def test_deterministic_for_a_seed() -> None:
    def make(seed: int) -> tuple[synth.Utterance, np.ndarray]:
        rng = np.random.default_rng(seed)
        u = synth.synthesize_utterance("Five fluffy puppies moved home.", "en-gb+f3", 180, 60, 60, rng)
        audio, _ = augment.augment_audio(u.audio, rng)
        return u, audio

    (u1, a1), (u2, a2), (u3, a3) = make(11), make(11), make(12)
    assert u1.audio.tobytes() == u2.audio.tobytes() and a1.tobytes() == a2.tobytes()
    assert np.array_equal(u1.curves, u2.curves) and u1.phones == u2.phones
    assert a1.tobytes() != a3.tobytes() and not np.array_equal(u1.curves[: len(u3.curves)], u3.curves[: len(u1.curves)])


def test_augmentation_is_bounded_and_keeps_length() -> None:
    rng = np.random.default_rng(0)
    x = (0.5 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    for _ in range(5):
        y, info = augment.augment_audio(x, rng)
        assert y.shape == x.shape and y.dtype == np.float32 and np.abs(y).max() <= 1.0
        assert -12 <= info["gain_db"] <= 3
        if "noise" in info:
            assert 20 <= info["noise"]["snr_db"] <= 40
        if "reverb" in info:
            assert 0.1 <= info["reverb"]["rt60_s"] <= 0.5


def test_sentences_are_deterministic_and_varied() -> None:
    a = [sentences.generate_sentence(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng = np.random.default_rng(4)
    many = [sentences.generate_sentence(rng) for _ in range(200)]
    assert len(set(many)) > 150 and all("{" not in s for s in many)


def test_unknown_voice_is_an_error() -> None:
    with pytest.raises(A2BSError, match="unknown espeak-ng voice"):
        espeak.run_espeak("hello", "xx-nowhere+m3")


def test_build_corpus(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    seen: list[float] = []
    m = synth.build_corpus(out, 0.3, seed=5, progress=seen.append)
    assert seen and seen[-1] == 1.0 and all(0 <= p <= 1 for p in seen)
    assert sorted(os.listdir(tmp_path)) == ["corpus"]  # no temp folder left behind
    on_disk = json.loads((out / "corpus.json").read_text())
    assert on_disk == m and m["seed"] == 5 and m["fps"] == 60 and m["duration_s"] >= 18
    train, val = m["split"]["train"], m["split"]["val"]
    assert train and val and not set(train) & set(val)
    assert set(train) | set(val) == set(m["takes"])
    texts = {n: m["takes"][n]["text"] for n in m["takes"]}
    assert {texts[n] for n in val} == set(m["held_out_sentences"])
    assert not {texts[n] for n in train} & set(m["held_out_sentences"])
    for n in val:
        assert synth._is_held_out(m["takes"][n]["voice"], m["held_out_voices"])
    for n in train:
        assert not synth._is_held_out(m["takes"][n]["voice"], m["held_out_voices"])
    for name, take in m["takes"].items():
        info = sf.info(str(out / "takes" / f"{name}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
        frames, _, fps = read_live_link_face_csv(out / "takes" / f"{name}.csv")
        assert frames.shape == (math.ceil(info.frames * 60 / SAMPLE_RATE), 52)
        assert fps in (60, None) and frames.min() >= 0 and frames.max() <= 1
        phones = json.loads((out / "takes" / f"{name}.phones.json").read_text())
        assert phones["phones"] == take["phones"] and phones["sample_rate"] == SAMPLE_RATE

    # deterministic for a seed (bit-identical files), and never written over an existing folder
    again = synth.build_corpus(tmp_path / "again", 0.3, seed=5)
    assert again["split"] == m["split"]
    for name in m["takes"]:
        for ext in (".wav", ".csv", ".phones.json"):
            assert (out / "takes" / f"{name}{ext}").read_bytes() == (
                tmp_path / "again" / "takes" / f"{name}{ext}"
            ).read_bytes()
    with pytest.raises(A2BSError, match="exists"):
        synth.build_corpus(out, 0.1, seed=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(A2BSError, match="exists"):
        synth.build_corpus(tmp_path / "empty", 0.1, seed=1)
    with pytest.raises(A2BSError, match="fps"):
        synth.build_corpus(tmp_path / "new", 0.1, seed=1, fps=25)


def test_docs_tables_match_code() -> None:
    assert synth.tables_markdown() in DOCS.read_text(), "regenerate the tables in docs/VISEMES.md"


def test_espeak_runtime_is_installed() -> None:
    """`make` installs espeak-ng (APT_PACKAGES); without it the corpus cannot be built."""
    assert espeak.espeak_available()


# --- ARKit lip semantics: bilabials seal, nothing over-closes, pauses and non-speech rest ----------------

BILABIALS = {"p", "b", "m"}
# Aligned-like ARPAbet phones: fast bilabials (40-60 ms) between open vowels, long and short pauses.
ALIGNED_LIKE = [
    ("pau", 0.0, 0.25),
    ("b", 0.25, 0.29),
    ("aa1", 0.29, 0.41),
    ("p", 0.41, 0.45),
    ("ae1", 0.45, 0.55),
    ("m", 0.55, 0.60),
    ("aa1", 0.60, 0.70),
    ("b", 0.70, 0.74),
    ("ay1", 0.74, 0.90),
    ("pau", 0.90, 1.30),
    ("m", 1.30, 1.36),
    ("ao1", 1.36, 1.48),
    ("p", 1.48, 1.53),
    ("ah0", 1.53, 1.58),
    ("m", 1.58, 1.62),
    ("eh1", 1.62, 1.75),
    ("pau", 1.75, 2.20),
]


def _bilabial_gaps(phones: list[tuple[str, float, float]], curves: np.ndarray, fps: int) -> list[float]:
    """The smallest lip gap over each p/b/m of >= 40 ms (its frames and one frame either side)."""
    out = []
    for p, a, b in phones:
        if p.rstrip("012") in BILABIALS and b - a >= 0.04:
            lo, hi = max(math.floor(a * fps) - 1, 0), min(math.ceil(b * fps) + 1, len(curves))
            out.append(float(_gap(curves[lo:hi]).min()))
    return out


@pytest.mark.parametrize("fps", [30, 60])
def test_every_bilabial_seals_and_lips_never_pass_through(fps: int) -> None:
    u = synth.synthesize_utterance(
        "Pop, Bob! Mama bought a pub map, maybe a boppy puppy.", "en-us", 210, 50, fps, np.random.default_rng(5)
    )
    audio = np.zeros(round(ALIGNED_LIKE[-1][2] * SAMPLE_RATE), np.float32)
    aligned, _ = synth.face_curves(ALIGNED_LIKE, audio, fps, np.random.default_rng(6), accent=visemes.ARPABET_ACCENT)
    for phones, curves in ((u.phones, u.curves), (ALIGNED_LIKE, aligned)):
        gaps = _bilabial_gaps(phones, curves, fps)
        assert len(gaps) >= 6 and max(gaps) <= 0.01, gaps  # sealed
        assert _gap(curves).min() >= -0.02  # mouthClose never above jawOpen: pressing is mouthPress/Roll's
    # the seal is the lips', not a closed jaw: an /m/ between open vowels keeps some jaw opening
    i = round(0.575 * fps)
    assert aligned[i, JAW] > 0.08 and abs(_gap(aligned[i])) <= 1e-6


def test_viseme_table_follows_arkit_lip_semantics() -> None:
    for vis, target in visemes.VISEME_TARGETS.items():
        assert target.get("mouthClose", 0.0) <= target["jawOpen"], vis  # no over-closed target
    assert set(visemes.SEALED_VISEMES) == {"PP"}
    assert all(visemes.phone_spec(p, "en-us").visemes == "PP" for p in ("p", "b", "m"))
    assert all(visemes.phone_spec(p, visemes.ARPABET_ACCENT).visemes == "PP" for p in ("p", "b", "m"))
    # f/v keep their character: lower lip rolled in under the teeth, lips not sealed
    y, _ = coarticulation.phones_to_curves([("_", 0, 0.3), ("A:", 0.3, 0.5), ("f", 0.5, 0.6), ("A:", 0.6, 0.8)], 48, 60)
    f = y[33]
    assert f[INDEX["mouthRollLower"]] > 0.35 and _gap(f) > 0.02


def test_pauses_relax_to_a_closed_rest() -> None:
    audio = np.zeros(round(ALIGNED_LIKE[-1][2] * SAMPLE_RATE), np.float32)
    for fps in (30, 60):
        y, _ = synth.face_curves(ALIGNED_LIKE, audio, fps, np.random.default_rng(7), accent=visemes.ARPABET_ACCENT)
        for p, a, b in ALIGNED_LIKE:
            if p == "pau" and b - a >= 0.3:
                rest = y[math.ceil((a + 0.15) * fps) : math.floor((b - 0.1) * fps)]
                assert len(rest) and rest[:, JAW].max() <= 0.035 and np.abs(_gap(rest)).max() <= 0.005, (a, b)


def _room_recording(path: Path, level_dbfs: float = -55.0) -> None:
    """3 s of a room: noise at `level_dbfs` RMS, with a loud 1 s 'speech' burst in the middle."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal(3 * SAMPLE_RATE) * 10 ** (level_dbfs / 20)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    x[SAMPLE_RATE : 2 * SAMPLE_RATE] += 0.3 * np.sin(2 * np.pi * 220 * t)
    sf.write(path, x.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def test_room_tone_is_harvested_from_quiet_stretches_only(tmp_path: Path) -> None:
    _room_recording(tmp_path / "room.wav")
    bank = background.RoomToneBank.from_folder(tmp_path)
    stretches = bank.rooms[0]
    assert len(stretches) == 2 and sum(len(s) for s in stretches) > 1.5 * SAMPLE_RATE
    for s in stretches:  # the burst is left out
        assert np.abs(s).max() < 0.05 and abs(10 * np.log10(np.mean(s.astype(np.float64) ** 2)) + 55) < 1.5
    (tmp_path / "silent").mkdir()
    sf.write(tmp_path / "silent" / "x.wav", np.zeros(SAMPLE_RATE), SAMPLE_RATE)
    with pytest.raises(A2BSError, match="no room tone"):  # digital silence is not room tone
        background.RoomToneBank.from_folder(tmp_path / "silent")


def test_non_speech_stretches_have_rest_targets(tmp_path: Path) -> None:
    _room_recording(tmp_path / "room.wav")
    bank = background.RoomToneBank.from_folder(tmp_path)
    u = _utt("Bob moved the map.", seed=8, fps=30)
    rng = np.random.default_rng(10)
    seen_noise = False
    for _ in range(4):
        audio, phones, info = background.add_background(u.audio, u.phones, rng, bank, pause="_")
        lead, tail = (round(s * SAMPLE_RATE) for s in info["pad_s"])
        assert len(audio) == len(u.audio) + lead + tail and phones[0] == ("_", 0.0, lead / SAMPLE_RATE)
        assert math.isclose(phones[-1][2], len(audio) / SAMPLE_RATE) and len(phones) == len(u.phones) + 2
        level = 10 * np.log10(np.mean(audio[:lead].astype(np.float64) ** 2))
        lo, hi = background.NOISE_DBFS if "noise" in info else background.ROOM_TONE_DBFS
        assert lo - 2 <= level <= hi + 2, (level, info)
        seen_noise |= "noise" in info
        y, _ = synth.face_curves(phones, audio, 30, rng)
        for a, b in (
            (0.0, lead / SAMPLE_RATE),
            (len(audio) / SAMPLE_RATE - tail / SAMPLE_RATE, len(audio) / SAMPLE_RATE),
        ):
            rest = y[math.ceil(a * 30) : math.floor(b * 30)]
            assert rest[:, JAW].max() <= 0.035 and np.abs(_gap(rest)).max() <= 0.005
    assert seen_noise
    m = synth.build_corpus(tmp_path / "corpus", 0.05, seed=2, background=bank)
    assert m["background_rooms"] == 1
    for take in m["takes"]:
        record = json.loads((tmp_path / "corpus" / "takes" / f"{take}.phones.json").read_text())
        assert record["augmentation"]["background"]["room_tone"]["source"] == "room.wav"
        assert record["phones"][0][2] >= background.PAD_S[0]
