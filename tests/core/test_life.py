"""The life layer (core/life.py): its RNG and shapes as specified, its prosody by definition, determinism,
the same frames whatever the split, the mouth untouched, and human statistics on a long synthetic
conversation (the figures docs/LIFE.md cites)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from audio_fixtures import bundled_speech

from a2bs.core import life as L
from a2bs.core.audio import frame_centers, gather_windows, load_audio
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX
from a2bs.core.constants import SAMPLE_RATE
from a2bs.core.errors import A2BSError

UNTOUCHED = [i for i, n in enumerate(ARKIT_BLENDSHAPES) if n not in L.LIFE_SHAPES]


def windows_of(audio: np.ndarray, fps: int) -> np.ndarray:
    n = -(-len(audio) * fps // SAMPLE_RATE)
    return gather_windows(audio, 0, frame_centers(0, n, fps))


def model_like(n: int, seed: int = 0) -> np.ndarray:
    """Curves that move in every column, as a model's would (values in [0, 1])."""
    return np.random.default_rng(seed).uniform(0.0, 0.4, (n, 52)).astype(np.float32)


def synthetic_conversation(minutes: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Talking turns (phrases of voiced syllables, every third or so a pitch accent, pauses of 0.4-0.7 s)
    alternating with listening turns (room noise at -60 dB), 6-12 s each: (16 kHz samples, talking flag
    per sample)."""
    rng = np.random.default_rng(seed)
    pieces, flags, total, talking = [], [], 0, True
    while total < minutes * 60 * SAMPLE_RATE:
        turn = int(rng.uniform(6, 12) * SAMPLE_RATE)
        audio = np.zeros(turn)
        if talking:
            phrases, n = [], 0
            while n < turn:
                phrase = []
                for _ in range(rng.integers(5, 14)):
                    t = np.arange(int(rng.uniform(0.12, 0.25) * SAMPLE_RATE)) / SAMPLE_RATE
                    semitones = rng.uniform(3, 5) if rng.random() < 0.3 else rng.uniform(-1, 1)
                    phase = 2 * np.pi * 110 * 2 ** (semitones / 12) * t
                    wave = sum(np.sin(h * phase) / h for h in range(1, 11))
                    envelope = np.sqrt(np.clip(np.sin(np.pi * t / t[-1]), 0, 1)) * rng.uniform(0.1, 0.3)
                    phrase += [wave * envelope, np.zeros(int(rng.uniform(0.02, 0.08) * SAMPLE_RATE))]
                phrase.append(np.zeros(int(rng.uniform(0.4, 0.7) * SAMPLE_RATE)))
                phrases.append(np.concatenate(phrase))
                n += len(phrases[-1])
            audio = np.concatenate(phrases)
        pieces.append(audio)
        flags.append(np.full(len(audio), talking))
        total += len(audio)
        talking = not talking
    audio = np.concatenate(pieces)
    audio += 1e-3 * rng.standard_normal(len(audio))
    return audio.astype(np.float32), np.concatenate(flags)


def run(layer: L.LifeLayer, curves: np.ndarray, windows: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, ...]:
    """Feed the frames in pieces of the given sizes (cycled)."""
    shapes, rotations, k, i = [], [], 0, 0
    while k < len(curves):
        n = sizes[i % len(sizes)]
        s, r = layer.process(curves[k : k + n], windows[k : k + n])
        shapes.append(s)
        rotations.append(r)
        k, i = k + n, i + 1
    return np.concatenate(shapes), np.concatenate(rotations)


# --- the specification's pieces ---------------------------------------------------------------------------


def test_splitmix64_reference_values() -> None:
    """The published SplitMix64 outputs for state 0 (Steele, Lea & Flood 2014; Vigna's splitmix64.c), and
    the double every language must get from an output."""
    r = L.SplitMix64(0)
    assert [r.next() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    r = L.SplitMix64(0)
    assert r.uniform() == (0xE220A8397B1DCDAF >> 11) / 2.0**53
    assert L.SplitMix64(7).uniform(2.0, 4.0) == 2.0 + 2.0 * L.SplitMix64(7).uniform()


def _old_motion_bump(t: np.ndarray, t0: float, t_peak: float, t_hold: float, t_end: float) -> np.ndarray:
    """corpus/motion.py's envelope before the life layer shared it (the training targets' blinks)."""
    y = np.zeros_like(t)
    up = (t >= t0) & (t < t_peak)
    y[up] = (1 - np.cos(np.pi * (t[up] - t0) / max(t_peak - t0, 1e-6))) / 2
    y[(t >= t_peak) & (t <= t_hold)] = 1.0
    dn = (t > t_hold) & (t < t_end)
    y[dn] = (1 + np.cos(np.pi * (t[dn] - t_hold) / max(t_end - t_hold, 1e-6))) / 2
    return y


def test_the_shared_bump_keeps_the_training_targets_bit_for_bit() -> None:
    """corpus/motion.py now draws blinks and brow raises with `bump`: the targets' values did not move
    (arrays), and the frame loop's float path is the same curve."""
    rng = np.random.default_rng(3)
    for i in range(300):
        t = np.arange(rng.integers(20, 300)) / rng.choice([30, 60, 100])
        t0, a, b, c = rng.uniform(-1, 2), rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0, 1)
        args = (
            (t0, t0 + a, t0 + a + b, t0 + a + b + c) if i % 3 else (float(t[4]), float(t[9]), float(t[9]), float(t[-1]))
        )
        np.testing.assert_array_equal(L.bump(t, *args), _old_motion_bump(t, *args))
        np.testing.assert_allclose([L.bump(float(x), *args) for x in t], _old_motion_bump(t, *args), atol=1e-15)


def _yin_by_definition(x: np.ndarray) -> int:
    """docs/LIFE.md's YIN, written as loops over the definition."""
    x = x.astype(np.float64)
    d = np.array([np.sum((x[: L.YIN_W] - x[tau : tau + L.YIN_W]) ** 2) for tau in range(1, L.TAU_MAX + 1)])
    total = np.cumsum(d)
    cmnd = np.array([d[i] * (i + 1) / total[i] if total[i] > 0 else 1.0 for i in range(len(d))])
    for tau in range(L.TAU_MIN, L.TAU_MAX + 1):
        if cmnd[tau - 1] < L.YIN_THRESHOLD:
            while tau < L.TAU_MAX and cmnd[tau] < cmnd[tau - 1]:
                tau += 1
            return tau
    return 0


def test_prosody_features_are_the_definition() -> None:
    """The FFT implementation gives YIN's period and the level of the loops an app may write, on real
    speech and on tones whose period is known."""
    speech = load_audio(bundled_speech())
    windows = windows_of(speech, 30)[::7]
    t = np.arange(1024) / SAMPLE_RATE
    tones = np.array([0.3 * np.sin(2 * np.pi * f * t) for f in (80.0, 125.0, 200.0, 320.0)], np.float32)
    windows = np.concatenate([windows, tones, np.zeros((1, 1024), np.float32)])
    level, tau = L.prosody_features(windows)
    assert [_yin_by_definition(w) for w in windows] == tau.tolist()
    energy = (windows.astype(np.float64) ** 2).mean(axis=1)
    np.testing.assert_allclose(level, 10 * np.log10(energy + 1e-10), atol=1e-9)
    np.testing.assert_allclose(SAMPLE_RATE / tau[-5:-1], [80.0, 125.0, 200.0, 320.0], rtol=0.01)
    assert tau[-1] == 0 and level[-1] == -100.0  # digital silence: unvoiced, the floor
    assert 0.3 < (tau[: len(tau) - 5] > 0).mean() < 0.8  # real speech is partly voiced


# --- determinism and streaming -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def speech30() -> tuple[np.ndarray, np.ndarray]:
    windows = windows_of(load_audio(bundled_speech()), 30)
    return model_like(len(windows)), windows


def test_the_same_seed_gives_the_same_frames_another_seed_others(speech30) -> None:
    curves, windows = speech30
    a = L.LifeLayer(L.PRESETS["natural"], 30, seed=5).process(curves, windows)
    b = L.LifeLayer(L.PRESETS["natural"], 30, seed=5).process(curves, windows)
    c = L.LifeLayer(L.PRESETS["natural"], 30, seed=6).process(curves, windows)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])


def test_whole_file_equals_frame_by_frame_and_any_split(speech30) -> None:
    """State lives in the layer and is updated frame by frame: one call, one frame per call (the apps'
    loop, after a reset of the same object) and odd pieces give the same frames."""
    curves, windows = speech30
    layer = L.LifeLayer(L.PRESETS["natural"], 30, seed=11)
    whole = layer.process(curves, windows)
    layer.reset()
    one_by_one = run(layer, curves, windows, [1])
    pieces = run(L.LifeLayer(L.PRESETS["natural"], 30, seed=11), curves, windows, [7, 1, 64, 3])
    for got in (one_by_one, pieces):
        for x, y in zip(whole, got, strict=True):
            np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)

    class Forgetful(L.LifeLayer):  # negative control: state that does not survive a call
        def process(self, curves: np.ndarray, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            k = self.k
            self.reset()
            self.k = k
            return super().process(curves, windows)

    forgetful = run(Forgetful(L.PRESETS["natural"], 30, seed=11), curves, windows, [7, 1, 64, 3])
    assert not np.allclose(whole[1], forgetful[1], atol=1e-6)


def test_the_mouth_jaw_cheeks_nose_and_tongue_are_untouched(speech30) -> None:
    curves, windows = speech30
    shapes, rotations = L.LifeLayer(L.PRESETS["natural"], 30).process(curves, windows)
    assert shapes.dtype == np.float32 and rotations.shape == (len(curves), 9)
    np.testing.assert_array_equal(shapes[:, UNTOUCHED], curves[:, UNTOUCHED])
    assert all(n.startswith(("eye", "brow")) for n in L.LIFE_SHAPES)
    assert {"jawOpen", "mouthClose", "cheekPuff", "tongueOut", "cheekSquintLeft"}.isdisjoint(L.LIFE_SHAPES)
    changed = np.abs(shapes - curves).max(axis=0) > 0
    assert changed[INDEX["eyeBlinkLeft"]] and changed[INDEX["browInnerUp"]] and changed[INDEX["eyeLookInLeft"]]
    assert shapes.min() >= 0.0 and shapes.max() <= 1.0


def test_amount_zero_changes_nothing_and_the_eye_columns_follow_the_shapes(speech30) -> None:
    curves, windows = speech30
    off = L.LifeLayer(replace(L.PRESETS["natural"], amount=0.0), 30)
    shapes, rotations = off.process(curves, windows)
    np.testing.assert_array_equal(shapes, curves)
    np.testing.assert_array_equal(rotations, 0.0)
    little = L.LifeLayer(replace(L.PRESETS["natural"], amount=0.01), 30).process(curves, windows)[0]
    blink = INDEX["eyeBlinkLeft"]
    assert little[:, blink].max() > 0.8  # any amount above 0: the same human blinks
    shapes, rotations = L.LifeLayer(L.PRESETS["natural"], 30).process(curves, windows)
    v = shapes.astype(np.float64)
    np.testing.assert_allclose(rotations[:, 3], 0.6 * (v[:, INDEX["eyeLookOutRight"]] - v[:, INDEX["eyeLookInRight"]]))
    np.testing.assert_allclose(rotations[:, 6], 0.6 * (v[:, INDEX["eyeLookInLeft"]] - v[:, INDEX["eyeLookOutLeft"]]))
    down, up = v[:, INDEX["eyeLookDownLeft"]], v[:, INDEX["eyeLookUpLeft"]]
    np.testing.assert_allclose(rotations[:, 7], 0.61 * down - 0.437 * up)


def test_bad_input_is_one_line() -> None:
    layer = L.LifeLayer(L.PRESETS["subtle"], 30)
    with pytest.raises(A2BSError, match="shape"):
        layer.process(np.zeros((3, 51)), np.zeros((3, 1024)))
    with pytest.raises(A2BSError, match="3 frames and 2 PCM windows"):
        layer.process(np.zeros((3, 52)), np.zeros((2, 1024)))
    with pytest.raises(A2BSError, match="NaN"):
        layer.process(np.zeros((1, 52)), np.full((1, 1024), np.nan))
    for seed in (-1, 1 << 32, 1.5, True):
        with pytest.raises(A2BSError, match="seed"):
            L.LifeLayer(L.PRESETS["natural"], 30, seed=seed)
    with pytest.raises(A2BSError, match="'blink_rate_speaking'"):
        L.LifeLayer(replace(L.PRESETS["natural"], blink_rate_speaking=500.0), 30)
    with pytest.raises(A2BSError, match="unknown life preset"):
        L.preset("lively")
    assert L.preset("off") is None


# --- statistics on a long synthetic conversation --------------------------------------------------------------


@pytest.fixture(scope="module")
def conversation() -> dict[int, tuple]:
    """20 minutes at 30 fps and 6 at 60 fps through the natural preset, fed in pieces of 4096 frames."""
    out = {}
    for fps, minutes in ((30, 20.0), (60, 6.0)):
        audio, talking = synthetic_conversation(minutes, seed=fps)
        windows = windows_of(audio, fps)
        centers = frame_centers(0, len(windows), fps)
        layer = L.LifeLayer(L.PRESETS["natural"], fps, seed=1, log=True)
        shapes, rotations = run(layer, np.zeros((len(windows), 52), np.float32), windows, [4096])
        out[fps] = (shapes, rotations, talking[np.minimum(centers, len(talking) - 1)], layer.log)
    return out


def test_blink_rates_while_talking_and_listening_are_human(conversation) -> None:
    """Doughty (2001): 10.5-32.5 blinks a minute in conversation, 8-21 in silence (primary gaze);
    Bentivoglio et al. (1997): 26 talking, 17 at rest. Talking blinks more."""
    shapes, _, talking, log = conversation[30]
    blinks = [e.frame for e in log if e.kind == "blink"]
    talk_min, listen_min = talking.sum() / 30 / 60, (~talking).sum() / 30 / 60
    talk = sum(talking[k] for k in blinks) / talk_min
    listen = sum(not talking[k] for k in blinks) / listen_min
    assert 10.5 <= talk <= 32.5 and 8.0 <= listen <= 21.0, (talk, listen)
    assert talk > listen + 4, (talk, listen)
    assert 22 <= talk <= 30 and 13 <= listen <= 20, (talk, listen)  # near the preset's 26 and 17
    # the curve shows them: every logged blink closes the eyes (> 0.8) and nothing else does
    closed = shapes[:, INDEX["eyeBlinkLeft"]] > 0.8
    onsets = np.flatnonzero(closed[1:] & ~closed[:-1]) + 1
    assert abs(len(onsets) - len(blinks)) <= 0.02 * len(blinks), (len(onsets), len(blinks))


def test_blinks_close_fast_open_slowly_and_never_overlap(conversation) -> None:
    """Durations 150-400 ms with a closing phase faster than the opening (Stern et al. 1984, Sforza et al.
    2008), read from the 60 fps curve; a blink never starts before the last one ended and its refractory
    time passed; left and right differ a little."""
    shapes, _, _, log = conversation[60]
    blinks = [e for e in log if e.kind == "blink"]
    durations = np.array([e.duration_s for e in blinks])
    assert 0.15 <= durations.mean() <= 0.3 and durations.min() >= 0.1 and durations.max() <= 0.4
    for a, b in itertools.pairwise(blinks):
        assert b.frame / 60 >= a.frame / 60 + a.duration_s + L.PRESETS["natural"].blink_refractory_s - 1e-9
    lid = shapes[:, INDEX["eyeBlinkLeft"]].astype(np.float64)
    rises, falls = [], []
    for e in blinks:
        seg = lid[e.frame : e.frame + int(e.duration_s * 60) + 2]
        peak = int(np.argmax(seg))
        rises.append(peak)
        falls.append(int(np.sum(seg[peak:] > 0.05)))
    assert np.mean(rises) < 0.8 * np.mean(falls), (np.mean(rises), np.mean(falls))
    right = shapes[:, INDEX["eyeBlinkRight"]]
    assert 0 < np.abs(lid - right).max() <= 0.1


def test_gaze_saccades_and_head_motion_are_in_range(conversation) -> None:
    """Saccades: small shifts over the listener's face and looks away at phrase starts (Kendon 1967), none
    over 15 deg (Bahill et al. 1975); head: a few degrees, moving, within its limit."""
    _, rotations, talking, log = conversation[30]
    minutes = len(talking) / 30 / 60
    saccades = [e for e in log if e.kind == "saccade"]
    rate = len(saccades) / minutes
    assert 25 <= rate <= 80, rate
    amplitudes = np.array([e.value for e in saccades])
    assert np.median(amplitudes) < 5 and amplitudes.max() <= 2 * 12 + 2  # back from one aversion to another
    starts = {e.frame for e in log if e.kind == "phrase_start"}
    aversions = [e.frame for e in log if e.kind == "aversion"]
    assert set(aversions) <= starts and set(aversions) <= {e.frame for e in saccades}
    assert 0.6 <= len(aversions) / len(starts) <= 0.8  # the preset's 0.7
    head = np.degrees(rotations[:, :3])
    assert np.abs(head).max() <= L.PRESETS["natural"].head_limit_deg
    assert np.all(np.abs(head).max(axis=0) <= [8, 8, 2]) and np.all(head.std(axis=0) >= [0.3, 0.3, 0.1])
    nods = [e for e in log if e.kind == "nod"]
    brows = [e for e in log if e.kind == "brow"]
    accents = [e for e in log if e.kind == "accent"]
    assert 10 <= len(accents) / minutes <= 60 and 0 < len(nods) < len(accents) and 0 < len(brows) < len(accents)


def test_the_eyelids_follow_vertical_gaze() -> None:
    """Looking down lowers the lids a little, looking up widens them (Becker & Fuchs 1988)."""
    params = L.PRESETS["natural"]
    curves = np.zeros((3, 52), np.float32)
    state = np.zeros((3, 9))
    state[1, 5], state[2, 5] = 10.0, -10.0  # eye pitch: down, up (degrees)
    shapes, _ = L.compose(curves, state, params)
    blink, wide = shapes[:, INDEX["eyeBlinkLeft"]], shapes[:, INDEX["eyeWideLeft"]]
    assert blink[0] == 0 and 0.05 < blink[1] < 0.2 and blink[2] == 0
    assert wide[0] == 0 and wide[1] == 0 and 0.05 < wide[2] < 0.2
    assert shapes[1, INDEX["eyeLookDownLeft"]] > 0.2 and shapes[2, INDEX["eyeLookUpRight"]] > 0.3
