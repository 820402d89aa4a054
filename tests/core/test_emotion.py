"""Emotion features (eGeMAPSv02 x 3 windows) on real speech, edge cases, one openSMILE pass, refresh grid
and statistics."""

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
    file_emotion_at_times,
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


# --- one pass against the per-window reference ------------------------------------------------------
# One openSMILE pass computes each window's descriptors with the audio around it, where a run on the window
# alone (`egemaps_functionals`, the reference) sees its edges, so they differ a little, in z-units of the
# shipped checkpoint's statistics (docs/DECISIONS.md, "eGeMAPS in one openSMILE pass"). The edges are a fixed
# stretch of frames, so their share of a window of L seconds goes as 1 / L: the tolerance on the median over
# a window's 88 features is max(0.01, 0.2 s / L) z and on their 90th percentile max(0.05, 1 s / L) z. On the
# bundled speech one pass stays under half of it (20 s windows: <= 0.004 and <= 0.022 z), while the window
# 0.6 s away is over it at every length.


def _tolerance(length_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.maximum(0.01, 0.2 / length_s), np.maximum(0.05, 1.0 / length_s)


@pytest.fixture(scope="module")
def z_scale() -> np.ndarray:
    """The shipped 30 fps checkpoint's emotion scale per window, (3, 88): what one z-unit is per feature."""
    config = json.loads((AUDIO_DIR.parent / "checkpoints/default-30fps/config.json").read_text())
    return EmotionStats.from_json(config["emotion_stats"]).scale.reshape(3, EGEMAPS_DIM)


def _reference(audio: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    """((3, 88), (3,)): each window ending at t, t-0.3 s, t-0.6 s (clipped at the start) run through openSMILE
    on its own, and its length in seconds (at least the 0.5 s it is padded to)."""
    stops = [max(0, round(t * SR) - o) for o in (0, 4800, 9600)]
    windows = [audio[max(0, stop - W) : stop] for stop in stops]
    lengths = np.array([max(w.size, SR // 2) / SR for w in windows])
    return np.stack([egemaps_functionals(w) for w in windows]), lengths


def _far(got: np.ndarray, reference: np.ndarray, lengths: np.ndarray, z_scale: np.ndarray) -> list[str]:
    """The windows (rows of (n, 88); window lengths in seconds) not within tolerance of the reference."""
    z = np.abs(got - reference) / z_scale[: len(got)]
    median_tol, p90_tol = _tolerance(np.asarray(lengths, dtype=np.float64))
    return [
        f"window {i}: median {np.median(row):.3f} z (<= {median_tol[i]:.3f}), "
        f"90th percentile {np.percentile(row, 90):.3f} z (<= {p90_tol[i]:.3f})"
        for i, row in enumerate(z)
        if not (np.median(row) <= median_tol[i] and np.percentile(row, 90) <= p90_tol[i])
    ]


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


def test_short_windows_are_padded_at_start(male: np.ndarray, z_scale: np.ndarray) -> None:
    short = male[SR : SR + SR // 5]
    pad = np.zeros(SR // 2 - short.size, dtype=np.float32)
    padded = egemaps_functionals(np.concatenate([pad, short]))
    np.testing.assert_array_equal(egemaps_functionals(short), padded)
    silence = egemaps_functionals(np.zeros(SR // 2, dtype=np.float32))
    # t = 0.2 s: every window is zero-padded at its start to 0.5 s; the earlier two hold no audio at all.
    vec = _windows(emotion_features_at(short, 0.2))
    assert not _far(vec, np.stack([padded, silence, silence]), [0.5] * 3, z_scale)
    # t = 0.3 s: the t-0.6 s window is empty, i.e. 0.5 s of digital silence.
    vec = _windows(emotion_features_at(male, 0.3))
    assert not _far(vec, _reference(male, 0.3)[0], [0.5] * 3, z_scale)
    assert not np.array_equal(vec[0], vec[2])


def test_windows_differ_in_position(male: np.ndarray) -> None:
    """The three windows see different audio (which window is which: `test_one_pass_matches_the_reference`)."""
    audio = np.concatenate([male[: 10 * SR], np.zeros(SR, dtype=np.float32)])  # speech, then 1 s silence
    vec = _windows(emotion_features_at(audio, 11.0))
    assert not np.allclose(vec[0], vec[2])
    assert not np.allclose(vec[0], vec[1])
    # More trailing silence lowers the mean loudness.
    loud = egemaps_feature_names().index("loudness_sma3_amean")
    assert vec[0][loud] < vec[2][loud]


def test_file_tail_matches_full_audio(male: np.ndarray, female: np.ndarray, z_scale: np.ndarray) -> None:
    full = np.concatenate([male, female])  # ~25.8 s: longer than one 20.6 s span
    duration = full.size / SR
    assert duration > EMOTION_SPAN_S
    tail = full[-round(EMOTION_SPAN_S * SR) :]
    from_tail = emotion_features_for_file(tail, duration)
    np.testing.assert_array_equal(from_tail, emotion_features_at(full, duration))  # the same pass: bit for bit
    # The windows are the last 20 s, 20 s to 0.3 s before the end, ... (not clipped to the tail's 20.6 s).
    assert not _far(_windows(from_tail), *_reference(full, duration), z_scale)
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


def test_grid_extraction_rows_match_single_times(female: np.ndarray, z_scale: np.ndarray) -> None:
    """Grid rows come from one pass over all their windows: each matches its own per-window reference, as
    does the single-time call (a row is not bit for bit the single-time row: the pass starts elsewhere)."""
    audio = female[: 5 * SR]
    times = np.array([0.4, 2.5, 5.0])
    rows = emotion_features_at_times(audio, times)
    assert rows.shape == (3, EMOTION_DIM) and rows.dtype == np.float32 and np.all(np.isfinite(rows))
    for t, row in zip(times, rows, strict=True):
        assert not _far(_windows(row), *_reference(audio, t), z_scale), t
    assert not _far(_windows(rows[2]), _windows(emotion_features_at(audio, 5.0)), [5.0, 4.7, 4.4], z_scale)
    assert emotion_features_at_times(audio, np.zeros(0)).shape == (0, EMOTION_DIM)


def test_file_grid_equals_the_array_grid(male: np.ndarray) -> None:
    """`file_emotion_at_times` reads the file piece by piece (10 s pieces: the 14.4 s clip takes two) and
    computes what `emotion_features_at_times` computes from the whole array, bit for bit."""
    times = np.array([2.0, 7.5, male.size / SR])
    np.testing.assert_array_equal(
        file_emotion_at_times(AUDIO_DIR / "speech_en_us.wav", times), emotion_features_at_times(male, times)
    )
    with pytest.raises(ValueError, match="finite"):
        file_emotion_at_times(AUDIO_DIR / "speech_en_us.wav", np.array([np.nan]))


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
def test_features_equal_the_packages(name: str, package_smile, z_scale: np.ndarray) -> None:
    """A window's functionals are bit for bit what `opensmile.Smile(eGeMAPSv02, Functionals).process_signal`
    gives, on every bundled clip: whole, its last 20 s window, short and padded, silent, clipped and quiet;
    a file's 264 values (one pass) are within tolerance of the package's value for each window."""
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
    np.testing.assert_array_equal(file_emotion(AUDIO_DIR / name), emotion_features_at(audio, duration))
    lengths = [min(audio.size / SR - o, 20.0) for o in EMOTION_OFFSETS_S]
    assert not _far(_windows(file_emotion(AUDIO_DIR / name)), _windows(expected), lengths, z_scale)


def test_extraction_is_thread_safe(male: np.ndarray, female: np.ndarray) -> None:
    """Threads may extract at once (the native runs are serialized) and get what one thread gets, for single
    windows and for one-pass vectors (which feed openSMILE from a second thread of their own)."""
    windows = [male[i * SR : (i + 3) * SR] for i in range(4)] + [female[i * SR : (i + 3) * SR] for i in range(4)]
    expected = [egemaps_functionals(w) for w in windows]
    expected_vectors = [emotion_features_at(w, 3.0) for w in windows[::2]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(egemaps_functionals, windows * 2))
        got_vectors = list(pool.map(lambda w: emotion_features_at(w, 3.0), windows[::2] * 2))
    for a, b in zip(got + got_vectors, expected * 2 + expected_vectors * 2, strict=True):
        np.testing.assert_array_equal(a, b)


# --- one openSMILE pass ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def long_speech(male: np.ndarray, female: np.ndarray) -> np.ndarray:
    """~25.8 s of real speech: windows that are not clipped at the start."""
    return np.concatenate([male, female])


def test_one_pass_matches_the_reference(long_speech: np.ndarray, z_scale: np.ndarray) -> None:
    """Each window of the one-pass vector is within tolerance of openSMILE run on that window alone, for
    whole 20 s windows (mid-file and at the end) and windows clipped at the start (12 s down to 0.5 s);
    negative controls: the windows in the wrong order, or a window list 0.3 s off, are caught."""
    duration = long_speech.size / SR
    for t in (duration, 22.0, 12.0, 2.5, 1.1):
        got, (reference, lengths) = _windows(emotion_features_at(long_speech, t)), _reference(long_speech, t)
        assert not _far(got, reference, lengths, z_scale), t
        assert len(_far(got[::-1], reference, lengths, z_scale)) == 2, t  # t and t-0.6 s swapped
        assert _far(_windows(emotion_features_at(long_speech, t - 0.3)), reference, lengths, z_scale), t


def test_windows_past_the_end_take_the_audio_before(male: np.ndarray, z_scale: np.ndarray) -> None:
    """t 19.8 s past the end: the t window holds 0.2 s of audio and is extended at its start to 0.5 s with
    the audio before it (zeros only stand for audio before the start); not zero-padded."""
    n = male.size
    vec = _windows(emotion_features_at(male, n / SR + 19.8))
    reference = np.stack([egemaps_functionals(male[n - k :]) for k in (SR // 2, SR // 2, 12800)])
    assert not _far(vec, reference, [0.5, 0.5, 0.8], z_scale)
    assert _far(vec[:1], egemaps_functionals(male[n - 3200 :])[None], [0.5], z_scale)  # the zero-padded 0.2 s


class _Recording:
    """Counts native runs and keeps the PCM each instance accepted (patched over the binding's class)."""

    def __init__(self, base: type) -> None:
        self.runs = 0
        self.written: list[bytes] = []
        recording = self

        class OpenSMILE(base):
            def run(self):
                recording.runs += 1
                return super().run()

            def external_audio_source_write_data(self, component_name, data):
                accepted = super().external_audio_source_write_data(component_name, data)
                if accepted:
                    recording.written.append(bytes(data))
                return accepted

        self.cls = OpenSMILE

    def samples(self) -> np.ndarray:
        return np.frombuffer(b"".join(self.written), dtype=np.int16)


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> _Recording:
    lib = emotion._smileapi().lib
    rec = _Recording(lib.OpenSMILE)
    monkeypatch.setattr(lib, "OpenSMILE", rec.cls)
    return rec


def _pcm(x: np.ndarray) -> np.ndarray:
    return (x * np.float32(32768)).astype(np.int16)


def test_each_sample_goes_through_opensmile_once(long_speech: np.ndarray, recording: _Recording) -> None:
    """One native run per group of overlapping windows, and the audio it is given is the span of the
    windows, each sample once and in order; negative control: the per-window reference runs three times."""
    n, duration = long_speech.size, long_speech.size / SR
    span = round(EMOTION_SPAN_S * SR)
    emotion_features_at(long_speech, duration)
    assert recording.runs == 1
    np.testing.assert_array_equal(recording.samples(), _pcm(long_speech[n - span :]))

    recording.runs, recording.written = 0, []
    emotion_features_at_times(long_speech, np.array([5.0, 10.0, 15.0, 20.0, duration]))  # windows overlap
    assert recording.runs == 1
    np.testing.assert_array_equal(recording.samples(), _pcm(long_speech))

    recording.runs, recording.written = 0, []
    emotion_features_at_times(long_speech, np.array([1.0, duration]))  # two groups: [-0.1 s, 1 s), the last span
    assert recording.runs == 2
    expected = np.concatenate([np.zeros(SR // 10, np.int16), _pcm(long_speech[:SR]), _pcm(long_speech[n - span :])])
    np.testing.assert_array_equal(recording.samples(), expected)

    recording.runs, recording.written = 0, []
    _reference(long_speech, duration)  # the old way: each window on its own
    assert recording.runs == 3 and recording.samples().size == 3 * W > span


def test_opensmile_failures_are_errors(long_speech: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """A native run that fails, or that returns fewer rows than windows, raises instead of hanging or
    returning a short or misaligned vector."""
    lib = emotion._smileapi().lib

    class Failing(lib.OpenSMILE):
        def run(self):
            raise lib.OpenSmileException(lib.SMILE_FAIL, "simulated")

    monkeypatch.setattr(lib, "OpenSMILE", Failing)
    with pytest.raises(RuntimeError, match=r"openSMILE failed: .*simulated"):
        emotion_features_at(long_speech, long_speech.size / SR)
    monkeypatch.undo()
    monkeypatch.setattr(emotion, "_frame_list", lambda *args: "0-99")  # one range for three windows
    with pytest.raises(RuntimeError, match="1 functional rows for 3 windows"):
        emotion_features_at(long_speech, long_speech.size / SR)


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
