"""Emotion stream features: eGeMAPSv02 functionals over three 20 s windows (design decision 4).

For a time t, openSMILE's 88 eGeMAPSv02 functionals are computed over the 20 s of audio ending at
t, at t - 0.3 s and at t - 0.6 s, and concatenated in that order to 264 values. The windows give
the model a slow, utterance-level view of prosody (pitch, loudness, voice quality) and, through
their offsets, of how it is trending.

Extraction is slow (~0.018 s per second of audio), so it is never done per output frame. Offline,
either extract once per file with windows ending at the file's end (`emotion_features_for_file`,
the spec's "efficient" approach), or, for long files, on a coarse grid (`refresh_times`,
`frame_to_refresh_index`). Both are non-causal by at most one refresh interval (or the file).

One openSMILE pass per set of overlapping windows: the low-level descriptors (10 ms frames) are
computed once over the span the windows cover and the functionals once per window (openSMILE's
`frameMode = list`), streamed through ring buffers, so no sample goes through openSMILE twice and
memory does not grow with the span. A window's values therefore see the audio around it (pitch
smoothing, 3-frame averages) where a separate run on the window alone would see its edges; they match
such a run (`egemaps_functionals`) closely but not bit for bit (docs/DECISIONS.md, "eGeMAPS in one
openSMILE pass").

Edge rules, so every input gives 264 finite numbers:
- windows are clipped at the start of the audio and at its end (`t` past the end sees only the
  audio that exists);
- a window shorter than `EMOTION_MIN_WINDOW_S` is extended at its start to that length, with zeros
  before the start of the audio (so a window clipped at the start, or an empty one when
  t - 0.6 s < 0, is zero-padded at its start): openSMILE returns all-NaN for segments shorter than
  ~1000 samples (62.5 ms) and finite values for padded or silent ones;
- any non-finite value openSMILE still produces is replaced by 0 in the raw vector (none was
  observed for silence, noise, tones, DC or clipped speech once padded).

Raw features span very different scales (semitones, dB, Hz, ratios), so the model sees them
z-normalized with statistics stored in the checkpoint (`EmotionStats`). The normalized neutral
vector is zeros: a caller without emotion features passes `neutral_emotion()`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core.audio import probe, read_segment, read_tail
from a2bs.core.constants import (
    EGEMAPS_DIM,
    EMOTION_DIM,
    EMOTION_MIN_WINDOW_S,
    EMOTION_OFFSETS_S,
    EMOTION_WINDOW_S,
    SAMPLE_RATE,
)
from a2bs.core.errors import A2BSError, CheckpointError, Fields

FEATURE_SET = "eGeMAPSv02"
# Audio needed before t for all three windows: 20 s + 0.6 s. Callers read this much of a file's
# tail (e.g. `read_tail(path, EMOTION_SPAN_S)`) for `emotion_features_for_file`.
EMOTION_SPAN_S = EMOTION_WINDOW_S + max(EMOTION_OFFSETS_S)
# Normalized features are clipped to +-this: z-scores beyond it are out of distribution, and a
# bounded input keeps the emotion Linear layer (and its int8 quantization) well behaved.
DEFAULT_CLIP = 10.0

_WINDOW_SAMPLES = round(EMOTION_WINDOW_S * SAMPLE_RATE)
_MIN_WINDOW_SAMPLES = round(EMOTION_MIN_WINDOW_S * SAMPLE_RATE)
_OFFSET_SAMPLES = tuple(round(o * SAMPLE_RATE) for o in EMOTION_OFFSETS_S)
_SPAN_SAMPLES = _WINDOW_SAMPLES + max(_OFFSET_SAMPLES)
_TIME_EPS = 1e-9  # seconds; absorbs float error when comparing frame times with grid times

_smile_lock = threading.Lock()

# openSMILE as the `opensmile` package drives it (`opensmile.Smile` with eGeMAPSv02 functionals and
# `process_signal`), but without importing the package: its __init__ imports pandas, audinterface and
# audobject (~90 MB of RSS), which an inference process must not pay. We load the package's own ctypes
# binding of libSMILEapi (`opensmile/core/lib.py`, which imports only ctypes and numpy) by file path,
# and pass the same config files and options that `Smile._options` and `Smile._extract` pass.
_CONFIG_FILE = "egemaps/v02/eGeMAPSv02.conf"  # opensmile.FeatureSet.eGeMAPSv02
_SINK_LEVEL = "func"  # opensmile.FeatureLevel.Functionals
_SOURCE = "extsource"  # opensmile config.EXTERNAL_SOURCE_COMPONENT
_SINK = "extsink"  # opensmile config.EXTERNAL_OUTPUT_COMPONENT
_LOGLEVEL = 2  # Smile's default


@dataclass(frozen=True)
class _SmileAPI:
    """openSMILE's ctypes binding (the module `opensmile/core/lib.py`) and the package's config folder."""

    lib: Any
    config_root: Path

    def options(self, sample_rate: int | None) -> dict[str, object]:
        """The options `opensmile.Smile` passes: `_options()` plus the external-source entries of
        `_extract` (`sample_rate` given) or of `_feature_names` (None)."""
        root = self.config_root
        options: dict[str, object] = {
            "sink": str(root / "shared/standard_external_data_output_single.conf.inc"),
            "sinkLevel": _SINK_LEVEL,
            "bufferModeRbConf": str(root / "shared/BufferModeRb.conf.inc"),
            "frameModeFunctionalsConf": str(root / "shared/FrameModeFunctionals.conf.inc"),
            "source": str(root / "shared/standard_external_wave_input.conf.inc"),
        }
        if sample_rate is not None:
            options |= {"sampleRate": sample_rate, "nBits": 16}
        return options

    def instance(self, sample_rate: int | None, includes: dict[str, str] | None = None) -> Any:
        """A fresh native openSMILE instance with the eGeMAPSv02 config (one per signal, as `Smile` does);
        `includes` replaces some of the included config files (option name -> path)."""
        smile = self.lib.OpenSMILE()
        smile.initialize(
            config_file=str(self.config_root / _CONFIG_FILE),
            options=self.options(sample_rate) | (includes or {}),
            loglevel=_LOGLEVEL,
            log_file=None,
            debug=False,
        )
        return smile


@functools.cache
def _smileapi() -> _SmileAPI:
    """Loads libSMILEapi through the `opensmile` package's binding, once, without the package's __init__."""
    spec = importlib.util.find_spec("opensmile")  # locates the package; does not import it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the `opensmile` package is not installed; emotion features need it (pip install opensmile)")
    core = Path(next(iter(spec.submodule_search_locations))).resolve() / "core"
    lib_spec = importlib.util.spec_from_file_location("a2bs_opensmile_lib", core / "lib.py")
    if lib_spec is None or lib_spec.loader is None:
        raise RuntimeError(f"cannot load openSMILE's binding {core / 'lib.py'}")
    lib = importlib.util.module_from_spec(lib_spec)
    lib_spec.loader.exec_module(lib)  # runs ctypes.cdll.LoadLibrary(libSMILEapi) and declares the signatures
    api = _SmileAPI(lib=lib, config_root=core / "config")
    if not (api.config_root / _CONFIG_FILE).is_file():
        raise RuntimeError(f"openSMILE's {FEATURE_SET} config is missing: {api.config_root / _CONFIG_FILE}")
    return api


def _smile_functionals(x: np.ndarray) -> np.ndarray:
    """(n_frames, 88) functionals of 16 kHz float32 audio, as `Smile.process_signal(x, 16000)` computes
    them: scaled to 16-bit PCM, written to the external audio source, read back from the external sink.
    All-NaN (1, 88) when openSMILE outputs nothing (input too short), like `Smile`."""
    api = _smileapi()
    pcm = (x * np.float32(32768)).astype(np.int16)  # Smile._extract: signal *= 32768; astype(int16)
    rows: list[np.ndarray] = []
    with _smile_lock:  # one extraction at a time, as with the shared `opensmile.Smile` before
        smile = api.instance(SAMPLE_RATE)
        try:
            smile.external_sink_set_callback_ex(_SINK, lambda data, meta: rows.append(data.copy()))
            smile.external_audio_source_write_data(_SOURCE, pcm.tobytes())
            smile.external_audio_source_set_eoi(_SOURCE)
            smile.run()
        finally:
            smile.free()
    if not rows:
        return np.full((1, EGEMAPS_DIM), np.nan, dtype=np.float32)
    return np.vstack(rows)


# --- one pass over many windows ------------------------------------------------------------------
# The low-level descriptors come every 10 ms: frame k of a pass starts at its sample 160 k. The levels
# built on 60 ms frames (pitch, formants, voice quality) hold L // 160 - 4 frames of L samples, the
# fewest of all levels, so the window of L samples that starts at frame s is frames s .. s + L // 160 - 5
# for every functional: as many as a run on the window alone gives those levels.
_HOP_SAMPLES = 160
_SHORT_LEVEL_FRAMES = 4
# Our own includes (the package's files stay untouched), written for each pass and read by `initialize`:
# the functionals of listed frame ranges (`{frames}`), also of ranges that end with the input; the audio
# and the descriptor levels before the functionals as ring buffers, so memory does not grow with the
# span (openSMILE enlarges a ring that one of its readers needs bigger, e.g. to the longest window).
_FRAME_LIST_CONF = """\
frameMode = list
frameList = {frames}
frameSize = 0
frameStep = 0
frameCenterSpecial = left
noPostEOIprocessing = 0
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = 5
"""
_SOURCE_CONF = f"""\
[componentInstances:cComponentManager]
instance[{_SOURCE}].type = cExternalAudioSource

[{_SOURCE}:cExternalAudioSource]
writer.dmLevel = wave
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = {4 * SAMPLE_RATE}
sampleRate = {SAMPLE_RATE}
nBits = 16
channels = 1
"""
_RING_CONF = f"""\
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = {2 * _SPAN_SAMPLES // _HOP_SAMPLES}
writer.levelconf.noHang = 2
"""
_WRITE_SAMPLES = SAMPLE_RATE // 4  # audio handed to openSMILE per call (its ring holds 4 s)
_READ_SAMPLES = 10 * SAMPLE_RATE  # audio asked of the caller per call
_RETRY_S = 0.001  # wait before handing audio again to a full ring
_STALL_S = 60.0  # openSMILE taking no audio (or not finishing) this long is a failure, not a wait

Window = tuple[int, int]  # samples [lo, hi) of a signal; lo < 0: zeros before its first sample


def _frame_list(windows: Sequence[Window], base: int, stop: int) -> str:
    """openSMILE's `frameList` (inclusive frame ranges) for `windows` in a pass over samples [base, stop)."""
    last = (stop - base) // _HOP_SAMPLES - _SHORT_LEVEL_FRAMES - 1
    ranges = []
    for lo, hi in windows:
        first = round((lo - base) / _HOP_SAMPLES)
        ranges.append(f"{first}-{min(first + (hi - lo) // _HOP_SAMPLES - _SHORT_LEVEL_FRAMES - 1, last)}")
    return ",".join(ranges)


def _run_into(smile: Any, failure: list[BaseException]) -> None:
    try:
        smile.run()
    except BaseException as e:  # reported by the feeding thread
        failure.append(e)


def _feed(smile: Any, runner: threading.Thread, pieces: Iterable[np.ndarray]) -> int:
    """Hands `pieces` to the running instance as 16-bit PCM, waiting while its ring is full; samples written."""
    written = 0
    for piece in pieces:
        for i in range(0, len(piece), _WRITE_SAMPLES):
            pcm = (piece[i : i + _WRITE_SAMPLES] * np.float32(32768)).astype(np.int16)  # as `_smile_functionals`
            waited = 0.0
            while not smile.external_audio_source_write_data(_SOURCE, pcm.tobytes()):
                if not runner.is_alive() or waited > _STALL_S:
                    raise RuntimeError(f"openSMILE stopped taking audio after {written} samples")
                time.sleep(_RETRY_S)
                waited += _RETRY_S
            written += len(pcm)
    return written


def _list_pass(pieces: Iterable[np.ndarray], n_samples: int, frame_list: str, n_rows: int) -> np.ndarray:
    """(n_rows, 88) functionals of the frame ranges of `frame_list`, from one openSMILE run over `pieces`
    (16 kHz float32 audio, `n_samples` in all) that are fed while openSMILE runs in a second thread."""
    api = _smileapi()
    rows: list[np.ndarray] = []
    failure: list[BaseException] = []
    error: BaseException | None = None
    written = 0
    with _smile_lock:  # one extraction at a time
        with tempfile.TemporaryDirectory(prefix="a2bs-opensmile-") as folder:
            texts = {
                "frameModeFunctionalsConf": _FRAME_LIST_CONF.format(frames=frame_list),
                "source": _SOURCE_CONF,
                "bufferModeConf": _RING_CONF,
            }
            includes = {option: str(Path(folder) / f"{option}.conf.inc") for option in texts}
            for option, text in texts.items():
                Path(includes[option]).write_text(text, encoding="ascii")
            smile = api.instance(SAMPLE_RATE, includes)
        smile.external_sink_set_callback_ex(_SINK, lambda data, meta: rows.append(data.copy()))
        runner = threading.Thread(target=_run_into, args=(smile, failure), name="a2bs-opensmile", daemon=True)
        runner.start()
        try:
            written = _feed(smile, runner, pieces)
            smile.external_audio_source_set_eoi(_SOURCE)
        except BaseException as e:  # KeyboardInterrupt too: stop the run before leaving
            error = e
            with contextlib.suppress(Exception):
                smile.abort()
                smile.external_audio_source_set_eoi(_SOURCE)  # wakes a run waiting for audio
        runner.join(_STALL_S)
        if not runner.is_alive():  # never free an instance that still runs
            smile.free()
    if failure:
        raise RuntimeError(f"openSMILE failed: {failure[0]}") from failure[0]
    if error is not None:
        raise error
    if runner.is_alive():
        raise RuntimeError(f"openSMILE did not finish within {_STALL_S:.0f} s of the end of its input")
    if written != n_samples or len(rows) != n_rows:
        raise RuntimeError(
            f"openSMILE gave {len(rows)} functional rows for {n_rows} windows over {written} of {n_samples} samples"
        )
    return np.vstack(rows)


def _windows_functionals(read: Callable[[int, int], np.ndarray], windows: Sequence[Window]) -> np.ndarray:
    """(len(windows), 88) float32 functionals, always finite, of `windows` of one signal, whose samples
    a..b-1 `read(a, b)` returns (0 <= a < b). One openSMILE pass per group of overlapping windows, over
    the span the group covers: each sample is read and goes through openSMILE at most once."""
    out = np.empty((len(windows), EGEMAPS_DIM), dtype=np.float32)
    groups: list[list[int]] = []
    stop = 0
    for i in sorted(range(len(windows)), key=windows.__getitem__):  # by start
        lo, hi = windows[i]
        if groups and lo < stop:
            groups[-1].append(i)
            stop = max(stop, hi)
        else:
            groups.append([i])
            stop = hi
    for group in groups:
        group.sort(key=lambda i: windows[i][::-1])  # openSMILE takes the ranges in the order their data ends
        base = min(windows[i][0] for i in group)
        stop = max(windows[i][1] for i in group)
        pieces = itertools.chain(
            [np.zeros(-base, dtype=np.float32)] if base < 0 else [],
            (read(a, min(a + _READ_SAMPLES, stop)) for a in range(max(base, 0), stop, _READ_SAMPLES)),
        )
        frame_list = _frame_list([windows[i] for i in group], base, stop)
        out[group] = _list_pass(pieces, stop - base, frame_list, len(group))
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


@functools.cache
def _egemaps_names() -> tuple[str, ...]:
    with _smile_lock:
        smile = _smileapi().instance(None)
        try:
            n = smile.external_sink_get_num_elements(_SINK)
            names = tuple(smile.external_sink_get_element_name(_SINK, i) for i in range(n))
        finally:
            smile.free()
    if len(names) != EGEMAPS_DIM:
        raise RuntimeError(f"openSMILE {FEATURE_SET} returned {len(names)} features, expected {EGEMAPS_DIM}")
    return names


def egemaps_feature_names() -> list[str]:
    """The 88 eGeMAPSv02 functional names, in openSMILE's output order."""
    return list(_egemaps_names())


def emotion_feature_names() -> list[str]:
    """The 264 raw emotion feature names: each eGeMAPS name per window, e.g. `loudness_sma3_amean@t-0.3s`."""
    return [f"{name}@t-{offset:.1f}s" for offset in EMOTION_OFFSETS_S for name in _egemaps_names()]


def __getattr__(name: str) -> list[str]:
    # PEP 562: `EGEMAPS_NAMES` / `EMOTION_FEATURE_NAMES` without building openSMILE at import time.
    if name == "EGEMAPS_NAMES":
        return egemaps_feature_names()
    if name == "EMOTION_FEATURE_NAMES":
        return emotion_feature_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def neutral_emotion() -> np.ndarray:
    """The normalized emotion vector to pass when no features are available: zeros, shape (264,)."""
    return np.zeros(EMOTION_DIM, dtype=np.float32)


def _as_mono_float32(audio: np.ndarray, what: str) -> np.ndarray:
    """Checks and converts 16 kHz mono audio; integer PCM is refused (openSMILE expects [-1, 1])."""
    arr = np.asarray(audio)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D mono audio, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{what} must be float audio in [-1, 1], got dtype {arr.dtype}; scale integer PCM")
    return np.ascontiguousarray(arr, dtype=np.float32)


def egemaps_functionals(window: np.ndarray) -> np.ndarray:
    """The 88 eGeMAPSv02 functionals of one 16 kHz window, float32, always finite.

    Windows shorter than `EMOTION_MIN_WINDOW_S` are zero-padded at the start (openSMILE gives NaN
    for very short input); remaining non-finite outputs are set to 0.
    """
    x = _as_mono_float32(window, "window")
    if x.shape[0] < _MIN_WINDOW_SAMPLES:
        x = np.concatenate([np.zeros(_MIN_WINDOW_SAMPLES - x.shape[0], dtype=np.float32), x])
    values = _smile_functionals(x)
    if values.shape != (1, EGEMAPS_DIM):
        raise RuntimeError(f"openSMILE returned shape {values.shape}, expected (1, {EGEMAPS_DIM})")
    return np.nan_to_num(values[0].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _windows_ending_at(origin: int, n: int, end: int) -> list[Window]:
    """The three windows ending at absolute sample `end` (minus each offset), in samples of an `n`-sample
    signal whose first sample is absolute sample `origin`: clipped to the signal and to absolute sample 0,
    then extended at the start to `EMOTION_MIN_WINDOW_S` (zeros before the signal's first sample)."""
    windows = []
    for offset in _OFFSET_SAMPLES:
        stop = end - offset
        start = max(stop - _WINDOW_SAMPLES, 0)
        lo = min(max(start - origin, 0), n)
        hi = min(max(stop - origin, 0), n)
        windows.append((min(lo, hi - _MIN_WINDOW_SAMPLES), hi))
    return windows


def _features_ending_at(audio: np.ndarray, origin: int, end: int) -> np.ndarray:
    """264 raw features for windows ending at absolute sample `end` (minus each offset), in one pass.

    `audio[0]` is absolute sample `origin`; window starts are clipped at absolute sample 0.
    """
    windows = _windows_ending_at(origin, audio.shape[0], end)
    return _windows_functionals(lambda a, b: audio[a:b], windows).reshape(EMOTION_DIM)


def emotion_features_at(audio: np.ndarray, t_s: float) -> np.ndarray:
    """Raw (264,) features for time `t_s`, measured from `audio[0]` (16 kHz mono float).

    Windows end at t, t - 0.3 s and t - 0.6 s; see the module notes for clipping and padding.
    """
    x = _as_mono_float32(audio, "audio")
    if not math.isfinite(t_s):
        raise ValueError(f"t_s must be finite, got {t_s}")
    return _features_ending_at(x, origin=0, end=round(t_s * SAMPLE_RATE))


def _grid_times(times_s: np.ndarray) -> np.ndarray:
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(times)):
        raise ValueError("times_s must be finite")
    return times


def emotion_features_at_times(audio: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Raw (len(times_s), 264) features, one row per time (e.g. a `refresh_times` grid), in one openSMILE
    pass per group of overlapping windows."""
    x = _as_mono_float32(audio, "audio")
    times = _grid_times(times_s)
    windows = [w for t in times for w in _windows_ending_at(0, x.shape[0], round(float(t) * SAMPLE_RATE))]
    return _windows_functionals(lambda a, b: x[a:b], windows).reshape(times.shape[0], EMOTION_DIM)


def emotion_features_for_file(audio_tail: np.ndarray, duration_s: float) -> np.ndarray:
    """The spec's efficient approach: one raw (264,) vector for the whole file, windows ending at its end.

    `audio_tail` holds the last min(duration, `EMOTION_SPAN_S` = 20.6 s) of the file (more is
    fine), so callers can seek instead of loading a 1-hour file. The result equals
    `emotion_features_at(full_audio, duration_s)`.
    """
    x = _as_mono_float32(audio_tail, "audio_tail")
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise ValueError(f"duration_s must be finite and >= 0, got {duration_s}")
    total = round(duration_s * SAMPLE_RATE)
    if x.shape[0] > total:
        if x.shape[0] - total > 1:  # one sample of slack for a rounded duration
            raise ValueError(
                f"audio_tail has {x.shape[0]} samples, more than the file's duration "
                f"{duration_s:.6f} s ({total} samples)"
            )
        x = x[x.shape[0] - total :]
    needed = min(total, _SPAN_SAMPLES)
    if x.shape[0] < needed - 1:
        raise ValueError(
            f"audio_tail has {x.shape[0] / SAMPLE_RATE:.3f} s, need the last "
            f"{needed / SAMPLE_RATE:.3f} s of the file (min(duration, {EMOTION_SPAN_S} s))"
        )
    return _features_ending_at(x, origin=total - x.shape[0], end=total)


def refresh_times(duration_s: float, refresh_s: float) -> np.ndarray:
    """Extraction times for long files: refresh_s, 2*refresh_s, ... and the file end.

    The end is always included so the last segment is covered. An output frame at time u uses
    the first grid time >= u (`frame_to_refresh_index`): like the per-file approach this looks
    ahead, but by at most one refresh interval.
    """
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise ValueError(f"duration_s must be finite and >= 0, got {duration_s}")
    if not (math.isfinite(refresh_s) and refresh_s > 0):
        raise ValueError(f"refresh_s must be finite and > 0, got {refresh_s}")
    k = np.arange(1, math.floor(duration_s / refresh_s) + 1, dtype=np.float64)
    grid = k * refresh_s
    grid = grid[grid < duration_s - 1e-6]  # the end is appended exactly; no near-duplicate
    return np.append(grid, float(duration_s))


def frame_to_refresh_index(n_frames: int, fps: int, times: np.ndarray) -> np.ndarray:
    """For each output frame k (time k / fps), the index of the first grid time >= k / fps.

    Frames past the last grid time map to the last index, so every index is valid.
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    grid = np.asarray(times, dtype=np.float64).reshape(-1)
    if grid.size == 0:
        raise ValueError("times must not be empty")
    if np.any(np.diff(grid) <= 0):
        raise ValueError("times must be strictly increasing")
    frame_times = np.arange(n_frames, dtype=np.float64) / fps
    idx = np.searchsorted(grid, frame_times - _TIME_EPS, side="left")
    return np.minimum(idx, grid.size - 1).astype(np.int64)


def _vector(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (EMOTION_DIM,):
        raise ValueError(f"{name} must have shape ({EMOTION_DIM},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


@dataclass
class EmotionStats:
    """Per-feature mean and std of the raw 264-d vector, stored with the checkpoint.

    `normalize` z-scores with std floored at 1e-3 * (|mean| + 1), so a feature that was constant
    in training cannot blow up, and clips to +-`clip` (None: no clipping, as in `identity`).
    """

    mean: np.ndarray
    std: np.ndarray
    clip: float | None = field(default=DEFAULT_CLIP)

    def __post_init__(self) -> None:
        self.mean = _vector(self.mean, "mean")
        self.std = _vector(self.std, "std")
        if np.any(self.std < 0):
            raise ValueError("std must be >= 0")
        if self.clip is not None:
            self.clip = float(self.clip)
            if not (math.isfinite(self.clip) and self.clip > 0):
                raise ValueError(f"clip must be a positive number or None, got {self.clip}")

    @property
    def scale(self) -> np.ndarray:
        """The divisor `normalize` uses: std, floored so near-constant features stay bounded."""
        return np.maximum(self.std, 1e-3 * (np.abs(self.mean) + 1.0))

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """z-score raw features of shape (..., 264); float32, finite (non-finite inputs -> 0, neutral)."""
        x = np.asarray(raw, dtype=np.float64)
        if x.shape[-1:] != (EMOTION_DIM,):
            raise ValueError(f"raw emotion features must end in dimension {EMOTION_DIM}, got shape {x.shape}")
        z = (x - self.mean) / self.scale
        z = np.where(np.isfinite(z), z, 0.0)
        if self.clip is not None:
            z = np.clip(z, -self.clip, self.clip)
        return z.astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (plain lists of floats) for checkpoints and mobile manifests."""
        return {
            "feature_set": FEATURE_SET,
            "dim": EMOTION_DIM,
            "offsets_s": list(EMOTION_OFFSETS_S),
            "window_s": EMOTION_WINDOW_S,
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "clip": self.clip,
        }

    @classmethod
    def from_json(
        cls, d: Any, where: str = "emotion statistics", key: str = "", error: type[A2BSError] = CheckpointError
    ) -> EmotionStats:
        """Inverse of `to_json`; `error` naming the file (`where`) and the key (`key`: where the statistics
        sit in it, e.g. "emotion_stats") if the stored statistics do not fit this model."""
        f = Fields(d, where, error, f"{key}." if key else "")
        mean = f.numbers("mean", EMOTION_DIM)
        std = f.numbers("std", EMOTION_DIM, 0.0)
        feature_set = f.str("feature_set", optional=True, max_len=64) or FEATURE_SET
        if feature_set != FEATURE_SET:
            raise error(
                f"{where}: '{f.prefix}feature_set' is {feature_set!r}: these emotion statistics are for another "
                f"feature set, this model uses {FEATURE_SET!r}"
            )
        clip = f.number("clip", 1e-6, 1e6, optional=True) if "clip" in f.data else DEFAULT_CLIP  # null: no clipping
        return cls(mean=mean, std=std, clip=clip)

    @classmethod
    def identity(cls) -> EmotionStats:
        """Mean 0, std 1, no clipping: `normalize` returns the raw features unchanged (as float32)."""
        return cls(mean=np.zeros(EMOTION_DIM), std=np.ones(EMOTION_DIM), clip=None)

    @classmethod
    def fit(cls, raws: np.ndarray, clip: float | None = DEFAULT_CLIP) -> EmotionStats:
        """Statistics of raw feature vectors, shape (n, 264) with n >= 1 (e.g. one per training file)."""
        x = np.asarray(raws, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != EMOTION_DIM or x.shape[0] < 1:
            raise ValueError(f"raws must have shape (n >= 1, {EMOTION_DIM}), got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("raws must be finite")
        return cls(mean=x.mean(axis=0), std=x.std(axis=0), clip=clip)


NEUTRAL_EMOTION: np.ndarray = neutral_emotion()
NEUTRAL_EMOTION.setflags(write=False)  # shared constant; use neutral_emotion() for a writable copy


def file_emotion(path: str | Path) -> np.ndarray:
    """The raw (264,) emotion features of a whole file (windows ending at its end), read from its tail:
    what inference uses once per file, and what `--emotion-from` takes from another clip."""
    tail = read_tail(path, EMOTION_SPAN_S)
    return emotion_features_at(tail, len(tail) / SAMPLE_RATE)


def file_emotion_at_times(path: str | Path, times_s: np.ndarray) -> np.ndarray:
    """`emotion_features_at_times` of a whole file, read piece by piece: memory does not grow with the
    file, and each sample is read and goes through openSMILE at most once (`--emotion-refresh`)."""
    times = _grid_times(times_s)
    n = probe(path).samples
    windows = [w for t in times for w in _windows_ending_at(0, n, round(float(t) * SAMPLE_RATE))]

    def read(a: int, b: int) -> np.ndarray:
        return read_segment(path, a / SAMPLE_RATE, b / SAMPLE_RATE)

    return _windows_functionals(read, windows).reshape(times.shape[0], EMOTION_DIM)
