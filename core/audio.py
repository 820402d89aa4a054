"""Audio loading: any WAV, FLAC, Ogg (Vorbis, Opus) or MP3 file -> 16 kHz mono float32.

Reading is done by libsndfile (via `soundfile`), resampling by soxr (band-limited, ``quality="HQ"``)
and channels are mixed down by their mean. Every problem an ordinary user can cause (missing,
unreadable, empty, truncated or corrupt files) raises `AudioError` with a one-line message that
says what is wrong and what to do; no soundfile/libsndfile exception escapes for a bad file.

Output sample ``k`` of every function here is the value at time ``k / SAMPLE_RATE`` of the same
signal, so `stream_audio`, `read_tail` and `read_segment` agree with `load_audio` to float rounding.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from a2bs.core.constants import N_FFT, SAMPLE_RATE
from a2bs.core.errors import AudioError

__all__ = [
    "AudioInfo",
    "bundled_audio_dir",
    "load_audio",
    "n_output_frames",
    "probe",
    "read_segment",
    "read_tail",
    "resample",
    "stream_audio",
]

_QUALITY = "HQ"  # soxr: 20-bit precision, passband to ~91 % of the output Nyquist (7.3 kHz at 16 kHz)
FORMATS = "WAV, FLAC, Ogg (Vorbis, Opus) or MP3"  # what libsndfile decodes that users have; README: Input
_EXPECTED = f"{FORMATS} expected"
_REEXPORT = "re-export the file"
# Extra source audio read on both sides of a segment so the resampler's filter sees the same
# neighbourhood as in a whole-file pass (HQ's kernel is < 20 ms long at every rate we tested).
_EDGE_MARGIN_S = 0.05
# Lossy decoders (Vorbis, Opus, MP3) are only sample-exact some way after a seek: seek this much
# earlier and discard (a Vorbis long block is at most 8192 samples; Opus asks for 80 ms).
_DECODER_PREROLL_FRAMES = 8192
_DECODER_PREROLL_S = 0.1
_EXACT_SEEK_SUBTYPES = ("PCM", "FLOAT", "DOUBLE", "ULAW", "ALAW")
_MAX_RIFF_CHUNKS = 4096
# Float files may overshoot [-1, 1] a little; samples this large are garbage (around 1e19 the mel
# power overflows float32 and the model would output NaN).
MAX_SAMPLE_MAGNITUDE = 1000.0
# What a header may declare (checked before any sample is read): telephony's 8 kHz halved to the highest
# PCM rate in use, up to 7th-order ambisonics, and a day per file. Outside these a header is corrupt or
# the file is not speech, and believing it costs days of work (8 MB "at 1 Hz" is 23 days of audio).
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4_000, 384_000
MAX_CHANNELS = 64
MAX_DURATION_S = 24 * 3600
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # data sizes written by streaming recorders that never finalised
# Errors libsndfile/soundfile raise for unreadable or corrupt input (LibsndfileError is a RuntimeError).
_READ_ERRORS = (sf.LibsndfileError, RuntimeError, EOFError, OSError, ValueError, TypeError, struct.error)


def bundled_audio_dir() -> Path:
    """The real speech clips shipped with a2bs (the default input, calibration and parity audio)."""
    return Path(str(resources.files("a2bs.core") / "assets" / "audio"))


def default_clip() -> Path:
    """The bundled clip `a2bs infer` animates when given no file, and the sample apps' playback clip."""
    return bundled_audio_dir() / "speech_en_us.wav"


@dataclass(frozen=True)
class AudioInfo:
    """What `probe` learned about a source file (before any resampling)."""

    path: Path
    sample_rate: int  # of the source file
    channels: int
    frames: int  # source frames actually readable
    format: str  # e.g. "WAV", "FLAC", "OGG"
    subtype: str  # e.g. "PCM_16", "FLOAT"

    @property
    def duration_s(self) -> float:
        """Length of the source in seconds."""
        return self.frames / self.sample_rate

    @property
    def samples(self) -> int:
        """Length at 16 kHz: the number of samples `load_audio` returns."""
        return _n_resampled(self.frames, self.sample_rate)


# --- public API ---------------------------------------------------------------------------------


def probe(path: str | Path) -> AudioInfo:
    """Validate and describe; raises AudioError for missing/unreadable/empty/truncated files.

    Reads only headers (and, for compressed formats, one frame at the end): cheap for any length.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(f"audio file not found: {p} (check the path)")
    if p.is_dir():
        raise AudioError(f"{p} is a directory, not an audio file (give the path of a {FORMATS} file)")
    if not p.is_file():
        raise AudioError(f"{p} is not a regular file (give the path of a {FORMATS} file)")
    try:
        size = p.stat().st_size
        wav = _parse_wav_header(p)
    except OSError as e:
        raise AudioError(f"cannot read {p}: {e.strerror or e} (check the file's permissions)") from e
    if size == 0:
        raise AudioError(f"{p} is empty (0 bytes), not an audio file ({_EXPECTED})")

    with _open(p) as f:
        info = AudioInfo(
            path=p,
            sample_rate=int(f.samplerate),
            channels=int(f.channels),
            frames=int(f.frames),
            format=str(f.format),
            subtype=str(f.subtype),
        )
        _check_header(info)
        if wav is not None:
            _check_wav_data(p, wav, info)
        if info.frames <= 0 and wav is not None:
            raise AudioError(f"{p} contains no audio samples (nothing to animate; check the recording)")
        if info.frames <= 0:  # e.g. a cut Ogg file: libsndfile cannot find its length and decodes nothing
            raise AudioError(
                f"{p} contains no audio samples that can be decoded (if it should hold audio it is "
                f"truncated or corrupt; {_REEXPORT})"
            )
        if wav is None:
            _check_readable_to_end(f, info)
    return info


def _check_header(info: AudioInfo) -> None:
    """The header's sample rate, channel count and length are within what speech can be (see the limits)."""
    declares = f"{info.path} is not usable audio: its header declares"
    if not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{declares} {info.sample_rate} Hz, outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz (a corrupt "
            f"header? {_REEXPORT})"
        )
    if not 1 <= info.channels <= MAX_CHANNELS:
        raise AudioError(f"{declares} {info.channels} channels, outside 1-{MAX_CHANNELS} ({_REEXPORT})")
    if info.duration_s > MAX_DURATION_S:
        raise AudioError(
            f"{declares} {info.duration_s / 3600:.1f} h of audio, more than {MAX_DURATION_S // 3600} h "
            "per file: split it (or re-export it, if the header is wrong)"
        )


def n_output_frames(info: AudioInfo, fps: int) -> int:
    """ceil(duration * fps) computed exactly with integers: -(-info.frames * fps // info.sample_rate)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return -(-info.frames * fps // info.sample_rate)


# --- the drift-free timeline: where each frame's analysis window sits (DESIGN.md decision 1) ----------
def frame_centers(first: int, count: int, fps: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Sample index of frame k's centre, round(k * sr / fps) (halves round up), for k in [first, first+count)."""
    k = np.arange(first, first + count, dtype=np.int64)
    return (2 * k * sample_rate + fps) // (2 * fps)


def gather_windows(audio: np.ndarray, audio_start: int, centers: np.ndarray, n_fft: int = N_FFT) -> np.ndarray:
    """(len(centers), n_fft) windows [c - n_fft/2, c + n_fft/2) from `audio`, whose first sample has the
    absolute index `audio_start`; samples outside `audio` are zeros (silence before and after the file)."""
    half = n_fft // 2
    idx = centers[:, None] - half - audio_start + np.arange(n_fft)[None, :]
    valid = (idx >= 0) & (idx < len(audio))
    out = np.zeros(idx.shape, dtype=np.float32)
    out[valid] = audio[idx[valid]]
    return out


class SampleWindow:
    """Absolute-indexed view of a 16 kHz stream that keeps only the samples still needed."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self._blocks = blocks
        self._buffer = np.zeros(0, np.float32)
        self._start = 0  # absolute index of _buffer[0]
        self._exhausted = False

    def ensure(self, stop: int) -> None:
        """Read until sample `stop` is buffered or the stream ends (beyond the end counts as silence)."""
        pieces = [self._buffer]
        have = self._start + len(self._buffer)
        while have < stop and not self._exhausted:
            block = next(self._blocks, None)
            if block is None:
                self._exhausted = True
                break
            pieces.append(block)
            have += len(block)
        if len(pieces) > 1:
            self._buffer = np.concatenate(pieces)

    def discard_before(self, start: int) -> None:
        if start > self._start:
            cut = min(start - self._start, len(self._buffer))
            self._buffer = self._buffer[cut:].copy()
            self._start += cut

    def windows(self, centers: np.ndarray) -> np.ndarray:
        self.ensure(int(centers[-1]) + N_FFT // 2)
        return gather_windows(self._buffer, self._start, centers)


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (soxr HQ) of a 1-D signal; returns float32 1-D.

    The output has ``round(len(x) * sr_out / sr_in)`` samples, sample ``k`` at time ``k / sr_out``.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"resample expects a 1-D signal, got shape {x.shape}")
    if sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_in} -> {sr_out}")
    if sr_in == sr_out:
        return x.copy()
    if x.size == 0:
        return np.zeros(0, dtype=np.float32)
    return np.ascontiguousarray(soxr.resample(x, sr_in, sr_out, quality=_QUALITY), dtype=np.float32)


def load_audio(path: str | Path) -> np.ndarray:
    """Whole file as 16 kHz mono float32 1-D (validated: finite samples).

    Built from `stream_audio` blocks, so the source is never held in memory at its own rate and
    channel count; peak memory is about twice the 16 kHz output.
    """
    blocks = list(stream_audio(path))
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(blocks)


def stream_audio(path: str | Path, block_s: float = 10.0) -> Iterator[np.ndarray]:
    """Yield the file as consecutive 16 kHz mono float32 blocks without loading it all.

    The file is probed (and a bad file rejected) when this is called, before the first block.
    Memory stays bounded by ``block_s`` of source audio. The concatenation of the blocks equals
    `load_audio` (same samples, same length). Raises AudioError on non-finite samples (with the
    time where they occur) or on decoder errors part-way through the file.
    """
    if not (math.isfinite(block_s) and block_s > 0):
        raise ValueError(f"block_s must be a positive number of seconds, got {block_s}")
    info = probe(path)
    block_frames = max(1, round(block_s * info.sample_rate))
    return _stream(info, block_frames)


def read_tail(path: str | Path, seconds: float) -> np.ndarray:
    """The last `seconds` of the file at 16 kHz mono (seek; do not read the whole file).

    The whole file if it is shorter than `seconds`.

    Equals ``load_audio(path)[-n:]`` with ``n = ceil(seconds * 16000)`` (to float rounding).
    """
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"seconds must be a non-negative number, got {seconds}")
    info = probe(path)
    n_out = info.samples
    k0 = max(0, n_out - _ceil_samples(seconds))
    return _read_output_range(info, k0, n_out)


def read_segment(path: str | Path, start_s: float, end_s: float) -> np.ndarray:
    """16 kHz mono samples for [start_s, end_s) of the source, clipped to the file (seek-based).

    Returns the output samples ``k`` with ``start_s <= k / 16000 < end_s``, i.e. the matching slice of
    `load_audio` (to float rounding); an empty array when the range lies outside the file.
    """
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ValueError(f"segment bounds must be finite, got [{start_s}, {end_s})")
    if end_s < start_s:
        raise ValueError(f"segment end {end_s} s is before its start {start_s} s")
    info = probe(path)
    n_out = info.samples
    k0 = min(max(0, _ceil_samples(start_s)), n_out)
    k1 = min(max(k0, _ceil_samples(end_s)), n_out)
    return _read_output_range(info, k0, k1)


# --- reading ------------------------------------------------------------------------------------


def _reason(e: BaseException) -> str:
    """A short, single-line reason from a soundfile/libsndfile/OS error."""
    text = getattr(e, "error_string", None) or getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(str(text).split()).rstrip(".")


def _open(p: Path) -> sf.SoundFile:
    try:  # bytes: soundfile encodes a str path as strict UTF-8, which a non-UTF-8 file name (Latin-1) is not
        return sf.SoundFile(os.fsencode(p))
    except _READ_ERRORS as e:
        raise AudioError(f"{p} is not a readable audio file ({_EXPECTED}): {_reason(e)}") from e


def _corrupt(info: AudioInfo, pos: int, e: BaseException) -> AudioError:
    t = pos / info.sample_rate
    return AudioError(f"{info.path} is corrupt at {t:.2f} s: {_reason(e)} ({_REEXPORT})")


def _short(info: AudioInfo, held: int) -> AudioError:
    return AudioError(
        f"{info.path} is truncated: header promises {info.frames} frames but the file holds {held} ({_REEXPORT})"
    )


def _seek(f: sf.SoundFile, info: AudioInfo, pos: int) -> None:
    try:
        f.seek(pos)
    except _READ_ERRORS as e:
        raise _corrupt(info, pos, e) from e


def _read_mono(f: sf.SoundFile, info: AudioInfo, pos: int, n: int) -> np.ndarray:
    """Read up to `n` frames at source frame `pos` (the current position) as finite mono float32."""
    try:
        block = f.read(n, dtype="float32", always_2d=True)
    except _READ_ERRORS as e:
        raise _corrupt(info, pos, e) from e
    mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
    bad = ~np.isfinite(mono)
    if bad.any():
        t = (pos + int(np.argmax(bad))) / info.sample_rate
        raise AudioError(f"{info.path} contains NaN or infinite samples at {t:.2f} s (the file is corrupt)")
    loud = np.abs(mono) > MAX_SAMPLE_MAGNITUDE
    if loud.any():
        i = int(np.argmax(loud))
        raise AudioError(
            f"{info.path} has a sample of {mono[i]:.3g} at {(pos + i) / info.sample_rate:.2f} s; audio lies in "
            f"[-1, 1] (float samples scaled wrong, or a corrupt file: {_REEXPORT})"
        )
    return np.ascontiguousarray(mono)


def _stream(info: AudioInfo, block_frames: int) -> Iterator[np.ndarray]:
    sr = info.sample_rate
    rs = None if sr == SAMPLE_RATE else soxr.ResampleStream(sr, SAMPLE_RATE, 1, "float32", _QUALITY)
    with _open(info.path) as f:
        pos = 0
        while pos < info.frames:
            n = min(block_frames, info.frames - pos)
            x = _read_mono(f, info, pos, n)
            if len(x) < n:
                raise _short(info, pos + len(x))
            pos += n
            y = x if rs is None else rs.resample_chunk(x, last=pos >= info.frames)
            if y.size:
                yield y


def _read_output_range(info: AudioInfo, k0: int, k1: int) -> np.ndarray:
    """Output samples [k0, k1) of the whole-file 16 kHz signal, reading only the source around them."""
    if k1 <= k0:
        return np.zeros(0, dtype=np.float32)
    sr = info.sample_rate
    if sr == SAMPLE_RATE:
        return _read_source(info, k0, k1)
    # Start on the resampling grid (a multiple of sr/gcd) so output sample j of the segment is output
    # sample o0 + j of the whole file, and pad both sides so the filter sees the same neighbourhood.
    g = math.gcd(sr, SAMPLE_RATE)
    period_in, period_out = sr // g, SAMPLE_RATE // g
    margin = math.ceil(_EDGE_MARGIN_S * sr)
    s0 = max(0, k0 * sr // SAMPLE_RATE - margin)
    s0 -= s0 % period_in
    s1 = min(info.frames, -(-k1 * sr // SAMPLE_RATE) + margin)
    y = resample(_read_source(info, s0, s1), sr)
    o0 = s0 // period_in * period_out
    return y[k0 - o0 : k1 - o0]


def _read_source(info: AudioInfo, s0: int, s1: int) -> np.ndarray:
    """Source frames [s0, s1) as mono float32, seeking (with a decoder pre-roll for lossy codecs)."""
    start = s0
    if not info.subtype.upper().startswith(_EXACT_SEEK_SUBTYPES):
        preroll = max(_DECODER_PREROLL_FRAMES, math.ceil(_DECODER_PREROLL_S * info.sample_rate))
        start = max(0, s0 - preroll)
    with _open(info.path) as f:
        _seek(f, info, start)
        x = _read_mono(f, info, start, s1 - start)
    if len(x) < s1 - start:
        raise _short(info, start + len(x))
    return x[s0 - start :]


def _n_resampled(frames: int, sr: int) -> int:
    """Length of the whole file at 16 kHz: round-half-up(frames * 16000 / sr), as soxr produces."""
    if sr == SAMPLE_RATE:
        return frames
    return (2 * frames * SAMPLE_RATE + sr) // (2 * sr)


def _ceil_samples(seconds: float) -> int:
    """ceil(seconds * 16000), ignoring float noise such as 0.3 * 16000 = 4800.000000000001."""
    return math.ceil(round(seconds * SAMPLE_RATE, 6))


def _check_readable_to_end(f: sf.SoundFile, info: AudioInfo) -> None:
    """For formats without a RIFF header check: the last promised frame must decode."""
    try:
        f.seek(info.frames - 1)
        got = len(f.read(1, dtype="float32", always_2d=True))
    except _READ_ERRORS as e:
        raise AudioError(
            f"{info.path} is truncated or corrupt: its header promises {info.duration_s:.2f} s but the "
            f"end cannot be read ({_reason(e)}; {_REEXPORT})"
        ) from e
    if got < 1:
        raise AudioError(
            f"{info.path} is truncated or corrupt: its header promises {info.duration_s:.2f} s but the "
            f"end cannot be read ({_REEXPORT})"
        )


# --- WAV header check ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _WavData:
    data_offset: int  # byte offset of the first sample
    declared: int  # data chunk size from the header
    present: int  # bytes actually in the file after data_offset
    block_align: int | None  # bytes per frame (from the fmt chunk), if found before `data`


def _parse_wav_header(p: Path) -> _WavData | None:
    """Find a RIFF/WAVE file's data chunk (header bytes only); None if not RIFF/WAVE or no data chunk."""
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        pos = 12
        block_align = None
        for _ in range(_MAX_RIFF_CHUNKS):
            fh.seek(pos)
            hdr = fh.read(8)
            if len(hdr) < 8:
                return None
            cid, csize = struct.unpack("<4sI", hdr)
            if cid == b"data":
                offset = pos + 8
                return _WavData(offset, csize, max(0, size - offset), block_align)
            if cid == b"fmt ":
                fmt = fh.read(min(csize, 16))
                if len(fmt) >= 14:  # wFormatTag, nChannels, nSamplesPerSec, nAvgBytesPerSec, nBlockAlign
                    block_align = struct.unpack("<H", fmt[12:14])[0] or None  # same in WAVE_FORMAT_EXTENSIBLE
            pos += 8 + csize + (csize & 1)
            if pos >= size:
                return None
    return None


def _check_wav_data(p: Path, wav: _WavData, info: AudioInfo) -> None:
    """Raise if the data chunk holds fewer bytes than its header declares (libsndfile just shortens it)."""
    if wav.declared in _UNKNOWN_SIZES:
        if wav.declared == 0 and info.frames == 0 and wav.present > 0:
            raise AudioError(
                f"{p} contains no audio samples: its WAV header declares 0 bytes of audio but {wav.present} "
                f"bytes follow (an unfinished recording? {_REEXPORT})"
            )
        return  # streaming header: size unknown, libsndfile reads to the end of the file
    if wav.present >= wav.declared:
        return
    if wav.block_align:
        promised, held = wav.declared // wav.block_align, wav.present // wav.block_align
        if held < promised:
            raise AudioError(
                f"{p} is truncated: header promises {promised} frames but the file holds {held} ({_REEXPORT})"
            )
        return
    raise AudioError(
        f"{p} is truncated: header promises {wav.declared} bytes of audio but the file holds {wav.present} "
        f"({_REEXPORT})"
    )
