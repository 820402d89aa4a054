"""Emotion features (eGeMAPSv02 x 3 windows) on real speech, edge cases, refresh grid and statistics."""

from __future__ import annotations

import json
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from a2bs.core import emotion
from a2bs.core.constants import EGEMAPS_DIM, EMOTION_DIM, EMOTION_MIN_WINDOW_S, EMOTION_OFFSETS_S, SAMPLE_RATE
from a2bs.core.emotion import (
    EMOTION_SPAN_S,
    EmotionStats,
    egemaps_feature_names,
    egemaps_functionals,
    emotion_feature_names,
    emotion_features_at,
    emotion_features_at_times,
    emotion_features_for_file,
    file_emotion,
    frame_to_refresh_index,
    neutral_emotion,
    refresh_times,
)
from a2bs.core.errors import CheckpointError

AUDIO_DIR = Path(__file__).resolve().parents[2] / "core/assets/audio"
SR = SAMPLE_RATE
W = 20 * SR  # samples per 20 s window
F0_MEAN = "F0semitoneFrom27.5Hz_sma3nz_amean"


def _load(name: str) -> np.ndarray:
    audio, sr = sf.read(AUDIO_DIR / name, dtype="float32")
    assert sr == SR and audio.ndim == 1
    return audio


@pytest.fixture(scope="module")
def male() -> np.ndarray:
    return _load("speech_en_us.wav")


@pytest.fixture(scope="module")
def female() -> np.ndarray:
    return _load("speech_en_gb_f.wav")


def _windows(vec: np.ndarray) -> np.ndarray:
    """(264,) -> (3, 88): rows are the windows ending at t, t-0.3 s, t-0.6 s."""
    return vec.reshape(3, EGEMAPS_DIM)


# --- names ------------------------------------------------------------------------


def test_feature_names() -> None:
    base = egemaps_feature_names()
    names = emotion_feature_names()
    assert len(base) == EGEMAPS_DIM and len(set(base)) == EGEMAPS_DIM
    assert F0_MEAN in base
    assert len(names) == EMOTION_DIM and len(set(names)) == EMOTION_DIM
    assert names[0] == f"{base[0]}@t-0.0s"
    assert names[EGEMAPS_DIM] == f"{base[0]}@t-0.3s"
    assert names[-1] == f"{base[-1]}@t-0.6s"
    assert base == emotion.EGEMAPS_NAMES  # lazy module attribute


# --- extraction: shapes, finiteness, edge cases -------------------------------------


def test_silence_and_short_audio_are_finite(male: np.ndarray) -> None:
    silence = np.zeros(2 * SR, dtype=np.float32)
    short = male[SR : SR + SR // 5]  # 200 ms of speech
    cases = [
        emotion_features_at(silence, 2.0),
        emotion_features_at(short, 0.2),
        emotion_features_at(male, 0.3),  # t < 0.6 s: the t-0.6 s window is empty
        emotion_features_at(male, -1.0),  # before the audio: every window is empty
        emotion_features_at(np.zeros(0, dtype=np.float32), 0.0),
        emotion_features_for_file(short, 0.2),
    ]
    for vec in cases:
        assert vec.shape == (EMOTION_DIM,) and vec.dtype == np.float32
        assert np.all(np.isfinite(vec))
    for window in (np.zeros(0, np.float32), np.zeros(10, np.float32), short[:100], silence):
        vec = egemaps_functionals(window)
        assert vec.shape == (EGEMAPS_DIM,) and vec.dtype == np.float32 and np.all(np.isfinite(vec))


def test_short_windows_are_padded_at_start(male: np.ndarray) -> None:
    short = male[SR : SR + SR // 5]
    pad = np.zeros(SR // 2 - short.size, dtype=np.float32)
    padded = egemaps_functionals(np.concatenate([pad, short]))
    np.testing.assert_array_equal(egemaps_functionals(short), padded)
    np.testing.assert_array_equal(_windows(emotion_features_at(short, 0.2))[0], padded)
    # t = 0.3 s: the t-0.6 s window is empty, i.e. 0.5 s of digital silence.
    vec = _windows(emotion_features_at(male, 0.3))
    np.testing.assert_array_equal(vec[2], egemaps_functionals(np.zeros(SR // 2, dtype=np.float32)))
    assert not np.array_equal(vec[0], vec[2])


def test_windows_differ_in_position(male: np.ndarray) -> None:
    audio = np.concatenate([male[: 10 * SR], np.zeros(SR, dtype=np.float32)])  # speech, then 1 s silence
    vec = _windows(emotion_features_at(audio, 11.0))
    assert not np.allclose(vec[0], vec[2])
    assert not np.allclose(vec[0], vec[1])
    # Each sub-vector is exactly the window it claims: ends at t, t-0.3, t-0.6 (clipped at the start).
    for row, end in zip(vec, (11 * SR, 11 * SR - 4800, 11 * SR - 9600), strict=True):
        np.testing.assert_array_equal(row, egemaps_functionals(audio[max(end - W, 0) : end]))
    # More trailing silence lowers the mean loudness.
    loud = egemaps_feature_names().index("loudness_sma3_amean")
    assert vec[0][loud] < vec[2][loud]


def test_file_tail_matches_full_audio(male: np.ndarray, female: np.ndarray) -> None:
    full = np.concatenate([male, female])  # ~25.8 s: longer than one 20.6 s span
    duration = full.size / SR
    assert duration > EMOTION_SPAN_S
    tail = full[-round(EMOTION_SPAN_S * SR) :]
    from_tail = emotion_features_for_file(tail, duration)
    np.testing.assert_array_equal(from_tail, emotion_features_at(full, duration))
    # The window ending at t is the last 20 s exactly (not clipped to the tail's 20.6 s).
    np.testing.assert_array_equal(_windows(from_tail)[0], egemaps_functionals(full[-W:]))
    with pytest.raises(ValueError, match="need the last"):
        emotion_features_for_file(tail[SR:], duration)
    with pytest.raises(ValueError, match="more than"):
        emotion_features_for_file(tail, 10.0)


def test_short_file_tail_is_whole_file(female: np.ndarray) -> None:
    duration = female.size / SR
    np.testing.assert_array_equal(emotion_features_for_file(female, duration), emotion_features_at(female, duration))


def _synthetic_voice(f0_hz: float, seconds: float = 2.0) -> np.ndarray:
    """A harmonic tone with 5 Hz vibrato: a voice-like signal of known pitch."""
    t = np.arange(round(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0_hz * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 15))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def test_f0_higher_for_female_voice(male: np.ndarray, female: np.ndarray) -> None:
    i = egemaps_feature_names().index(F0_MEAN)
    # The bundled female speaker is low-pitched (median F0 ~110 Hz vs ~97 Hz for the male clip,
    # also by pYIN), so the margin is ~1 semitone, not the octave a typical pair would show.
    assert egemaps_functionals(female)[i] > egemaps_functionals(male)[i] + 0.5
    # Known pitch: semitones above 27.5 Hz = 12 * log2(f0 / 27.5).
    for f0 in (110.0, 220.0):
        expected = 12 * math.log2(f0 / 27.5)
        assert egemaps_functionals(_synthetic_voice(f0))[i] == pytest.approx(expected, abs=0.5)


def test_grid_extraction_rows_match_single_times(female: np.ndarray) -> None:
    times = np.array([0.4, 5.0])
    rows = emotion_features_at_times(female[: 5 * SR], times)
    assert rows.shape == (2, EMOTION_DIM)
    np.testing.assert_array_equal(rows[1], emotion_features_at(female[: 5 * SR], 5.0))


def test_rejects_bad_audio() -> None:
    with pytest.raises(ValueError, match="float"):
        emotion_features_at(np.zeros(SR, dtype=np.int16), 1.0)
    with pytest.raises(ValueError, match="1-D"):
        emotion_features_at(np.zeros((2, SR), dtype=np.float32), 1.0)


# --- the same openSMILE as the `opensmile` package, without importing it ------------------


@pytest.fixture(scope="module")
def package_smile():
    """The `opensmile` package's own extractor (it imports pandas): the reference for our pandas-free path."""
    import opensmile

    level = opensmile.FeatureLevel.Functionals
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=level)


def _package_functionals(smile, window: np.ndarray) -> np.ndarray:
    """What `egemaps_functionals` returned when it called the package: padding, process_signal, nan -> 0."""
    x, shortest = np.asarray(window, np.float32), round(SR * EMOTION_MIN_WINDOW_S)
    if x.size < shortest:
        x = np.concatenate([np.zeros(shortest - x.size, np.float32), x])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Segment too short, filling with NaN."
        values = smile.process_signal(x, SR).to_numpy()
    return np.nan_to_num(values[0].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def test_names_are_the_packages(package_smile) -> None:
    assert egemaps_feature_names() == list(package_smile.feature_names)


@pytest.mark.parametrize("name", sorted(p.name for p in AUDIO_DIR.glob("*.wav")))
def test_features_equal_the_packages(name: str, package_smile) -> None:
    """Bit for bit what `opensmile.Smile(eGeMAPSv02, Functionals).process_signal` gives, on every bundled
    clip: whole, its last 20 s window, short and padded, silent, clipped and quiet."""
    audio = _load(name)
    windows = {
        "whole": audio,
        "last 20 s": audio[-W:],
        "1 s": audio[SR : 2 * SR],
        "200 ms (padded)": audio[SR : SR + SR // 5],
        "100 samples (padded)": audio[:100],
        "empty (padded)": audio[:0],
        "silence": np.zeros(SR, np.float32),
        "clipped": np.clip(audio * 8, -1, 1),
        "quiet": audio * 1e-3,
    }
    for what, window in windows.items():
        np.testing.assert_array_equal(egemaps_functionals(window), _package_functionals(package_smile, window), what)
    duration = audio.size / SR
    expected = np.concatenate(
        [
            _package_functionals(package_smile, audio[max(0, end - W) : end])
            for end in (audio.size - round(o * SR) for o in EMOTION_OFFSETS_S)
        ]
    )
    np.testing.assert_array_equal(file_emotion(AUDIO_DIR / name), expected)
    np.testing.assert_array_equal(emotion_features_at(audio, duration), expected)


def test_extraction_is_thread_safe(male: np.ndarray, female: np.ndarray) -> None:
    """Threads may extract at once (the native runs are serialized) and get what one thread gets."""
    windows = [male[i * SR : (i + 3) * SR] for i in range(4)] + [female[i * SR : (i + 3) * SR] for i in range(4)]
    expected = [egemaps_functionals(w) for w in windows]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(egemaps_functionals, windows * 2))
    for a, b in zip(got, expected * 2, strict=True):
        np.testing.assert_array_equal(a, b)


# --- refresh grid -------------------------------------------------------------------


def test_refresh_times_exact() -> None:
    np.testing.assert_allclose(refresh_times(10.0, 4.0), [4.0, 8.0, 10.0])
    np.testing.assert_allclose(refresh_times(8.0, 4.0), [4.0, 8.0])  # end not duplicated
    np.testing.assert_allclose(refresh_times(3.0, 4.0), [3.0])
    np.testing.assert_allclose(refresh_times(0.0, 4.0), [0.0])
    with pytest.raises(ValueError):
        refresh_times(10.0, 0.0)


def test_frame_to_refresh_index_exact() -> None:
    times = refresh_times(10.0, 4.0)
    idx = frame_to_refresh_index(300, 30, times)
    expected = np.array([0] * 121 + [1] * 120 + [2] * 59)  # frame 120 (t = 4.0 s) still uses 4.0 s
    np.testing.assert_array_equal(idx, expected)
    assert frame_to_refresh_index(0, 30, times).shape == (0,)


@pytest.mark.parametrize(("duration", "refresh", "fps"), [(5.03, 0.7, 60), (61.7, 10.0, 30), (0.9, 0.3, 30)])
def test_frame_to_refresh_index_properties(duration: float, refresh: float, fps: int) -> None:
    times = refresh_times(duration, refresh)
    assert np.all(np.diff(times) > 0) and times[-1] == duration
    n_frames = math.ceil(duration * fps)
    idx = frame_to_refresh_index(n_frames, fps, times)
    frame_t = np.arange(n_frames) / fps
    assert idx.shape == (n_frames,) and idx.min() >= 0 and idx.max() <= times.size - 1
    assert np.all(times[idx] >= frame_t - 1e-9)  # never uses a time before the frame's own
    earlier = idx > 0
    assert np.all(times[idx[earlier] - 1] < frame_t[earlier])  # ... and the first such time
    assert np.all(np.diff(idx) >= 0)
    assert np.all(times[idx] - frame_t <= refresh + 1e-9)  # looks ahead at most one interval


# --- normalization statistics -------------------------------------------------------------


def test_stats_fit_and_normalize() -> None:
    rng = np.random.default_rng(0)
    raws = rng.normal(50.0, 7.0, size=(40, EMOTION_DIM)).astype(np.float32)
    raws[:, 5] = 3.0  # constant in training: floored std, clipped, never inf
    stats = EmotionStats.fit(raws)
    z = stats.normalize(raws)
    assert z.shape == raws.shape and z.dtype == np.float32 and np.all(np.isfinite(z))
    keep = np.arange(EMOTION_DIM) != 5
    np.testing.assert_allclose(z[:, keep].mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z[:, keep].std(axis=0), 1.0, atol=1e-4)
    assert np.all(z[:, 5] == 0.0)
    off = raws[0].copy()
    off[5] = 1e6
    off[7] = np.nan
    zo = stats.normalize(off)
    assert zo[5] == stats.clip and zo[7] == 0.0 and np.all(np.isfinite(zo))
    np.testing.assert_allclose(stats.normalize(stats.mean), neutral_emotion())


def test_stats_identity_and_neutral() -> None:
    raw = np.linspace(-120.0, 300.0, EMOTION_DIM).astype(np.float32)
    np.testing.assert_array_equal(EmotionStats.identity().normalize(raw), raw)
    assert neutral_emotion().shape == (EMOTION_DIM,) and not neutral_emotion().any()
    assert not emotion.NEUTRAL_EMOTION.flags.writeable


def test_stats_on_real_features_are_finite(male: np.ndarray) -> None:
    raws = np.stack([emotion_features_at(male[: 3 * SR], 3.0), emotion_features_at(np.zeros(SR, np.float32), 1.0)])
    z = EmotionStats.fit(raws).normalize(raws)
    assert np.all(np.isfinite(z)) and np.abs(z).max() <= 10.0


def test_stats_json_round_trip() -> None:
    rng = np.random.default_rng(1)
    stats = EmotionStats.fit(rng.normal(size=(5, EMOTION_DIM)) * 10.0)
    restored = EmotionStats.from_json(json.loads(json.dumps(stats.to_json())))
    np.testing.assert_array_equal(restored.mean, stats.mean)
    np.testing.assert_array_equal(restored.std, stats.std)
    assert restored.clip == stats.clip
    ident = EmotionStats.from_json(json.loads(json.dumps(EmotionStats.identity().to_json())))
    assert ident.clip is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(mean=d["mean"][:-1]),
        lambda d: d.update(std=[*d["std"], 1.0]),
        lambda d: d.update(std=[[v] for v in d["std"]]),
        lambda d: d.update(mean="zeros"),
        lambda d: d.pop("std"),
        lambda d: d.update(mean=[None] * EMOTION_DIM),
        lambda d: d.update(std=[-1.0] * EMOTION_DIM),
        lambda d: d.update(feature_set="ComParE_2016"),
    ],
)
def test_stats_bad_json_raises_checkpoint_error(mutate) -> None:
    d = EmotionStats.identity().to_json()
    mutate(d)
    with pytest.raises(CheckpointError):
        EmotionStats.from_json(d)
    with pytest.raises(CheckpointError):
        EmotionStats.from_json([1, 2, 3])
