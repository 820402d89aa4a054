"""Tests for a2bs.core.audio: loading, validation, resampling, streaming and seeking."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from audio_fixtures import (
    bundled_speech,
    sine_signal,
    tone_signal,
    write_audio,
    write_empty_file,
    write_header_only_wav,
    write_nan_wav,
    write_not_audio,
    write_silence,
    write_tone,
    write_truncated_wav,
)

from a2bs.core.audio import (
    AudioInfo,
    load_audio,
    n_output_frames,
    probe,
    read_segment,
    read_tail,
    resample,
    stream_audio,
)
from a2bs.core.constants import SAMPLE_RATE
from a2bs.core.errors import AudioError


def _expected_len(frames: int, sr: int) -> int:
    return round(frames * SAMPLE_RATE / sr)


def _reference(path: Path) -> np.ndarray:
    """Independent reference: soundfile whole-file read, mean mix-down, one soxr HQ call."""
    data, sr = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1, dtype=np.float32)
    if sr == SAMPLE_RATE:
        return mono
    return soxr.resample(mono, sr, SAMPLE_RATE, quality="HQ")


def _assert_one_line_error(excinfo: pytest.ExceptionInfo[AudioError], *words: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg and msg.strip() == msg and msg
    for word in words:
        assert word.lower() in msg.lower(), f"{word!r} not in {msg!r}"
    return msg


def _amplitude(x: np.ndarray) -> float:
    """Sine amplitude from the RMS of the interior (resampler edge transients excluded)."""
    inner = x[len(x) // 8 : -len(x) // 8]
    return float(np.sqrt(2.0 * np.mean(inner.astype(np.float64) ** 2)))


def _peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sr / len(x))


# --- bad files -----------------------------------------------------------------------------------


def _patch_data_size(path: Path, value: int) -> Path:
    raw = bytearray(path.read_bytes())
    i = raw.index(b"data")
    raw[i + 4 : i + 8] = struct.pack("<I", value)
    path.write_bytes(bytes(raw))
    return path


BAD_FILES = {
    "missing": (lambda d: d / "nope.wav", ("not found", "nope.wav", "check the path")),
    "directory": (lambda d: d, ("directory",)),
    "not_audio": (write_not_audio, ("notes.wav", "not a readable audio file", "WAV, FLAC, Ogg (Vorbis, Opus) or MP3")),
    "empty": (write_empty_file, ("empty.wav", "empty")),
    "header_only": (write_header_only_wav, ("header_only.wav", "contains no audio samples")),
    "truncated": (write_truncated_wav, ("truncated.wav", "truncated", "16000 frames", "re-export")),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("fn", ["probe", "load_audio", "stream_audio", "read_tail", "read_segment"])
def test_bad_files_raise_audio_error(tmp_path: Path, case: str, fn: str) -> None:
    make, words = BAD_FILES[case]
    path = make(tmp_path)
    calls = {
        "probe": lambda: probe(path),
        "load_audio": lambda: load_audio(path),
        "stream_audio": lambda: stream_audio(path),  # raises on the call, before iteration
        "read_tail": lambda: read_tail(path, 1.0),
        "read_segment": lambda: read_segment(path, 0.0, 1.0),
    }
    with pytest.raises(AudioError) as excinfo:
        calls[fn]()
    _assert_one_line_error(excinfo, *words)


def test_truncated_wav_message_counts_frames(tmp_path: Path) -> None:
    path = write_truncated_wav(tmp_path, seconds=1.0, keep=0.5)
    held = (len(path.read_bytes()) - 44) // 2
    with pytest.raises(AudioError) as excinfo:
        probe(path)
    _assert_one_line_error(excinfo, f"promises 16000 frames but the file holds {held}")


def test_nan_and_inf_samples_are_reported_with_time(tmp_path: Path) -> None:
    path = write_nan_wav(tmp_path, nan_at_s=0.5, inf_at_s=0.75)
    probe(path)  # the header is fine; samples are checked when read
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_one_line_error(excinfo, "NaN or infinite", "0.50 s", "nan.wav")
    with pytest.raises(AudioError) as excinfo:
        list(stream_audio(path, block_s=0.1))
    _assert_one_line_error(excinfo, "NaN or infinite", "0.50 s")
    with pytest.raises(AudioError) as excinfo:
        read_segment(path, 0.6, 0.9)
    _assert_one_line_error(excinfo, "0.75 s")
    assert np.isfinite(read_segment(path, 0.0, 0.3)).all()  # clean region still readable


def test_inf_only_is_reported(tmp_path: Path) -> None:
    data = tone_signal(16000, 1.0)[:, 0]
    data[4000] = -np.inf
    path = write_audio(tmp_path, "inf.wav", data, 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_one_line_error(excinfo, "infinite", "0.25 s")


def test_streaming_header_ffffffff_is_not_truncated(tmp_path: Path) -> None:
    path = _patch_data_size(write_tone(tmp_path, "stream.wav", seconds=0.5), 0xFFFFFFFF)
    assert probe(path).frames == 8000
    assert len(load_audio(path)) == 8000


def test_zero_data_size_with_samples_is_explained(tmp_path: Path) -> None:
    # libsndfile reads a data size of 0 as "no samples" even when bytes follow the header.
    path = _patch_data_size(write_tone(tmp_path, "unfinished.wav", seconds=0.5), 0)
    with pytest.raises(AudioError) as excinfo:
        probe(path)
    _assert_one_line_error(excinfo, "contains no audio samples", "declares 0 bytes", "re-export")


def test_truncated_wave_format_extensible(tmp_path: Path) -> None:
    path = write_tone(tmp_path, "ext.wav", sr=48000, seconds=0.5, channels=2, subtype="PCM_24", fmt="WAVEX")
    assert struct.unpack("<H", path.read_bytes()[20:22])[0] == 0xFFFE
    assert probe(path).frames == 24000
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 600])  # 100 frames of 6 bytes missing
    with pytest.raises(AudioError) as excinfo:
        probe(path)
    _assert_one_line_error(excinfo, "truncated", "promises 24000 frames but the file holds 23900")


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_truncated_compressed_files(tmp_path: Path, fmt: str) -> None:
    path = write_tone(tmp_path, f"cut.{fmt.lower()}", sr=44100, seconds=2.0, fmt=fmt)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_one_line_error(excinfo, "cut.")


def test_garbage_after_valid_header(tmp_path: Path) -> None:
    path = tmp_path / "garbage.flac"
    path.write_bytes(b"fLaC" + bytes(range(256)) * 8)
    with pytest.raises(AudioError) as excinfo:
        load_audio(path)
    _assert_one_line_error(excinfo, "garbage.flac")


# --- formats, rates, channels --------------------------------------------------------------------

FORMATS = [
    # name, sr, seconds, channels, subtype, fmt
    ("u8.wav", 16000, 0.5, 1, "PCM_U8", "WAV"),
    ("s16.wav", 16000, 0.5, 1, "PCM_16", "WAV"),
    ("s24.wav", 22050, 0.5, 1, "PCM_24", "WAV"),
    ("s32.wav", 16000, 0.5, 1, "PCM_32", "WAV"),
    ("f32.wav", 16000, 0.5, 1, "FLOAT", "WAV"),
    ("f64.wav", 32000, 0.5, 1, "DOUBLE", "WAV"),
    ("s16.flac", 44100, 0.5, 1, "PCM_16", "FLAC"),
    ("s24.flac", 48000, 0.5, 2, "PCM_24", "FLAC"),
    ("vorbis.ogg", 44100, 0.5, 1, "VORBIS", "OGG"),
    ("opus.ogg", 48000, 0.5, 1, "OPUS", "OGG"),
    ("stereo.wav", 16000, 0.5, 2, "PCM_16", "WAV"),
    ("six.wav", 48000, 0.5, 6, "PCM_16", "WAV"),
    ("cd.wav", 44100, 0.5, 2, "PCM_16", "WAV"),
    ("dat.wav", 48000, 0.5, 2, "PCM_24", "WAV"),
    ("phone.wav", 8000, 0.5, 1, "PCM_16", "WAV"),
    ("odd_rate.wav", 11025, 0.5, 1, "PCM_16", "WAV"),
    ("short.wav", 44100, 0.2, 1, "PCM_16", "WAV"),
]


@pytest.mark.parametrize(("name", "sr", "seconds", "channels", "subtype", "fmt"), FORMATS)
def test_formats_load_as_16k_mono_float32(
    tmp_path: Path, name: str, sr: int, seconds: float, channels: int, subtype: str, fmt: str
) -> None:
    path = write_tone(tmp_path, name, sr=sr, seconds=seconds, channels=channels, subtype=subtype, fmt=fmt)
    info = probe(path)
    assert (info.sample_rate, info.channels, info.subtype) == (sr, channels, subtype)
    assert info.format == fmt
    assert abs(info.frames - round(sr * seconds)) <= 2
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - _expected_len(info.frames, sr)) <= 2
    assert np.isfinite(x).all()
    assert 0.1 < np.abs(x).max() <= 1.0
    ref = _reference(path)
    assert len(x) == len(ref)
    assert np.abs(x - ref).max() < 1e-5


def test_silence_10_s_48k_stereo(tmp_path: Path) -> None:
    path = write_silence(tmp_path, "silence.wav", sr=48000, seconds=10.0, channels=2)
    x = load_audio(path)
    assert len(x) == 160000 and x.dtype == np.float32
    assert not np.any(x)


def test_200_ms_at_44k1(tmp_path: Path) -> None:
    path = write_tone(tmp_path, "short.wav", sr=44100, seconds=0.2)
    info = probe(path)
    assert info.frames == 8820 and info.duration_s == pytest.approx(0.2)
    assert len(load_audio(path)) == 3200
    assert n_output_frames(info, 30) == 6


def test_channels_are_mixed_by_mean(tmp_path: Path) -> None:
    stereo = np.stack([sine_signal(16000, 0.5, 300.0), sine_signal(16000, 0.5, 300.0, 0.1)], axis=1)
    path = write_audio(tmp_path, "mix.wav", stereo, 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path), stereo.mean(axis=1), atol=1e-7)


def test_probe_describes_the_source(tmp_path: Path) -> None:
    path = write_tone(tmp_path, "d.wav", sr=44100, seconds=1.0, channels=2, subtype="PCM_24")
    info = probe(str(path))
    assert info == AudioInfo(path, 44100, 2, 44100, "WAV", "PCM_24")
    assert info.duration_s == pytest.approx(1.0)
    speech = probe(bundled_speech())
    assert (speech.sample_rate, speech.channels, speech.format) == (16000, 1, "WAV")
    assert speech.duration_s > 5


def test_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """Was: "not a readable audio file: 'utf-8' codec can't encode character '\\udce9'" for a real WAV whose
    name is Latin-1 (an old archive's `café.wav`): soundfile encoded the str path as strict UTF-8."""
    path = tmp_path / os.fsdecode(b"caf\xe9.wav")
    path.write_bytes(write_tone(tmp_path, "t.wav", seconds=0.5).read_bytes())
    assert probe(path).frames == 8000
    assert len(load_audio(path)) == 8000
    assert len(read_tail(path, 0.25)) == 4000
    assert sum(len(b) for b in stream_audio(path)) == 8000


# --- resampler quality ---------------------------------------------------------------------------


def test_resampler_keeps_passband_and_removes_aliases(tmp_path: Path) -> None:
    keep = write_audio(tmp_path, "7k.wav", sine_signal(48000, 1.0, 7000.0), 48000, subtype="FLOAT")
    gone = write_audio(tmp_path, "10k.wav", sine_signal(48000, 1.0, 10000.0), 48000, subtype="FLOAT")
    assert _amplitude(load_audio(keep)) == pytest.approx(0.5, rel=0.06)  # within 0.5 dB
    assert _amplitude(load_audio(gone)) < 0.5 * 10 ** (-40 / 20)  # an unfiltered 10 kHz aliases to 6 kHz


@pytest.mark.parametrize(("sr", "freq"), [(44100, 1000.0), (48000, 3150.0), (8000, 440.0), (22050, 220.0)])
def test_resampler_preserves_frequency(sr: int, freq: float) -> None:
    y = resample(sine_signal(sr, 1.0, freq), sr)
    assert len(y) == SAMPLE_RATE and y.dtype == np.float32
    assert _peak_hz(y, SAMPLE_RATE) == pytest.approx(freq, abs=1.0)
    assert _amplitude(y) == pytest.approx(0.5, rel=0.02)


def test_resample_api() -> None:
    x = sine_signal(44100, 0.3, 500.0)
    assert len(resample(x, 44100)) == _expected_len(len(x), 44100)
    same = resample(x, 16000, 16000)
    assert same is not x and np.array_equal(same, x)
    assert resample(np.zeros(0, np.float32), 48000).shape == (0,)
    assert resample(x.astype(np.float64), 44100, 22050).dtype == np.float32
    with pytest.raises(ValueError):
        resample(np.zeros((10, 2), np.float32), 44100)


def test_tone_fixture_frequency_survives_loading(tmp_path: Path) -> None:
    path = write_tone(tmp_path, "tone.flac", sr=48000, seconds=1.0, fmt="FLAC")
    assert _peak_hz(load_audio(path), SAMPLE_RATE) == pytest.approx(220.0, abs=1.0)


# --- streaming -----------------------------------------------------------------------------------


def test_stream_equals_load_on_bundled_speech() -> None:
    path = bundled_speech()
    whole = load_audio(path)
    streamed = np.concatenate(list(stream_audio(path, block_s=1.3)))
    assert len(streamed) == len(whole) == _expected_len(probe(path).frames, probe(path).sample_rate)
    assert np.abs(streamed - whole).max() < 1e-5


@pytest.mark.parametrize(("sr", "block_s"), [(44100, 0.013), (44100, 0.25), (48000, 0.1), (8000, 0.07)])
def test_stream_equals_load_resampled(tmp_path: Path, sr: int, block_s: float) -> None:
    path = write_tone(tmp_path, "s.wav", sr=sr, seconds=2.3, channels=2)
    whole = load_audio(path)
    blocks = list(stream_audio(path, block_s=block_s))
    streamed = np.concatenate(blocks)
    assert len(streamed) == len(whole)
    assert np.abs(streamed - whole).max() < 1e-5
    assert np.abs(whole - _reference(path)).max() < 1e-5
    assert all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)


def test_stream_reads_bounded_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_tone(tmp_path, "long.wav", sr=48000, seconds=6.0, channels=2)
    requested: list[int] = []
    original = sf.SoundFile.read

    def spy(self: sf.SoundFile, frames: int = -1, *args: object, **kwargs: object) -> np.ndarray:
        requested.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    blocks = list(stream_audio(path, block_s=0.5))
    assert requested and all(0 < n <= 24000 for n in requested)
    assert max(len(b) for b in blocks) <= 8000 + 1024
    assert sum(len(b) for b in blocks) == 96000


def test_stream_rejects_bad_block_size() -> None:
    with pytest.raises(ValueError):
        stream_audio(bundled_speech(), block_s=0.0)


# --- seeking: tail and segments ------------------------------------------------------------------

SEEK_CASES = [
    ("cd.wav", 44100, 2, "PCM_16", "WAV"),
    ("dat.flac", 48000, 1, "PCM_24", "FLAC"),
    ("phone.wav", 8000, 1, "PCM_16", "WAV"),
    ("native.wav", 16000, 2, "PCM_16", "WAV"),
    ("vorbis.ogg", 44100, 1, "VORBIS", "OGG"),
]


def _assert_matches(part: np.ndarray, expected: np.ndarray) -> None:
    assert part.dtype == np.float32 and part.ndim == 1
    assert abs(len(part) - len(expected)) <= 2
    n = min(len(part), len(expected))
    edge = min(64, n // 4)  # resampler transient allowance (the implementation is exact in practice)
    assert np.abs(part[edge : n - edge] - expected[edge : n - edge]).max(initial=0.0) < 1e-5


@pytest.mark.parametrize(("name", "sr", "channels", "subtype", "fmt"), SEEK_CASES)
def test_read_tail_and_segment_match_load(
    tmp_path: Path, name: str, sr: int, channels: int, subtype: str, fmt: str
) -> None:
    path = write_tone(tmp_path, name, sr=sr, seconds=3.0, channels=channels, subtype=subtype, fmt=fmt)
    whole = load_audio(path)
    for seconds in (1.0, 0.25, 0.0123):
        n = math.ceil(round(seconds * SAMPLE_RATE, 6))
        _assert_matches(read_tail(path, seconds), whole[len(whole) - n :])
    assert len(read_tail(path, 0.0)) == 0
    np.testing.assert_allclose(read_tail(path, 60.0), whole, atol=1e-5)  # longer than the file
    for start, end in ((0.0, 0.5), (1.2345, 2.0), (0.3, 0.31), (2.5, 3.0), (2.9, 10.0), (-1.0, 0.2)):
        k0, k1 = max(0, round(start * SAMPLE_RATE)), round(end * SAMPLE_RATE)
        _assert_matches(read_segment(path, start, end), whole[k0:k1])
    assert len(read_segment(path, 5.0, 6.0)) == 0
    assert len(read_segment(path, 1.0, 1.0)) == 0


def test_read_tail_seeks_instead_of_reading_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_tone(tmp_path, "seek.wav", sr=48000, seconds=8.0)
    requested: list[int] = []
    original = sf.SoundFile.read

    def spy(self: sf.SoundFile, frames: int = -1, *args: object, **kwargs: object) -> np.ndarray:
        requested.append(frames)
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", spy)
    tail = read_tail(path, 1.0)
    assert len(tail) == 16000
    assert 0 < sum(requested) < 2 * 48000  # 1 s plus the filter margin, not 8 s
    requested.clear()
    read_segment(path, 4.0, 4.5)
    assert 0 < sum(requested) < 48000


def test_segment_argument_errors() -> None:
    with pytest.raises(ValueError):
        read_segment(bundled_speech(), 2.0, 1.0)
    with pytest.raises(ValueError):
        read_tail(bundled_speech(), -1.0)


# --- output frame count --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "sr", "fps", "expected"),
    [
        (16000, 16000, 30, 30),
        (16001, 16000, 30, 31),
        (8820, 44100, 30, 6),
        (8820, 44100, 60, 12),
        (8821, 44100, 60, 13),
        (1, 48000, 30, 1),
        (48000 * 3600, 48000, 60, 216000),
        (533, 16000, 30, 1),
        (534, 16000, 30, 2),  # 533.33 samples per frame at 30 fps
    ],
)
def test_n_output_frames_is_exact(frames: int, sr: int, fps: int, expected: int) -> None:
    info = AudioInfo(Path("x.wav"), sr, 1, frames, "WAV", "PCM_16")
    assert n_output_frames(info, fps) == expected


def _sparse_wav(path: Path, sr: int, channels: int, data_bytes: int, bits: int = 16) -> Path:
    """A PCM WAV whose header declares `sr` and `channels`, followed by `data_bytes` of silence in a
    sparse file (a huge file costs no disk)."""
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, sr, sr * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_bytes)
    head = b"RIFF" + struct.pack("<I", 4 + len(chunks) + data_bytes) + b"WAVE" + chunks
    with path.open("wb") as f:
        f.write(head)
        f.truncate(len(head) + data_bytes)
    return path


@pytest.mark.parametrize(
    ("sr", "channels", "data_bytes", "bits", "says"),
    [
        (1, 1, 8_000_000, 16, "declares 1 Hz"),  # the 8 MB file that was 46 days of audio
        (1_000_000, 1, 64_000, 16, "declares 1000000 Hz"),
        (16_000, 100, 64_000, 16, "declares 100 channels"),
        (8_000, 1, 800_000_000, 8, "27.8 h of audio"),  # 800 MB of 8-bit samples
        (8_000, 2, 64_000, 16, None),  # the control: a plain 8 kHz stereo file
    ],
    ids=["1-hz", "1-mhz", "100-channels", "28-hours", "control"],
)
def test_headers_are_sanity_bounded_before_any_work(
    tmp_path: Path, sr: int, channels: int, data_bytes: int, bits: int, says: str | None
) -> None:
    """Was: any header libsndfile accepts was believed (an 8 MB WAV "at 1 Hz" became 46 days to animate)."""
    path = _sparse_wav(tmp_path / "h.wav", sr, channels, data_bytes, bits)
    if says is None:
        assert probe(path).duration_s == pytest.approx(2.0)
        return
    with pytest.raises(AudioError) as excinfo:
        probe(path)
    _assert_one_line_error(excinfo, "h.wav", says)
