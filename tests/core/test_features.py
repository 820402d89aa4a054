"""The mel front end against librosa (an independent implementation) on real speech, and the timeline."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch
from audio_fixtures import bundled_speech

from a2bs.core.audio import frame_centers, gather_windows, load_audio
from a2bs.core.constants import FMAX, FMIN, LOG_EPS, N_FFT, N_MELS, SAMPLE_RATE
from a2bs.core.features import MelFrontEnd, log_mel_frames, mel_filterbank


def test_filterbank_matches_librosa() -> None:
    ours = mel_filterbank()
    ref = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    np.testing.assert_allclose(ours, ref, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("hop", [320, 160])
def test_log_mel_matches_librosa_on_real_speech(hop: int) -> None:
    """At integer hops our frame centres are k * hop, exactly librosa's centred frames."""
    audio = load_audio(bundled_speech())
    power = librosa.feature.melspectrogram(
        y=audio,
        sr=SAMPLE_RATE,
        n_fft=N_FFT,
        hop_length=hop,
        n_mels=N_MELS,
        fmin=FMIN,
        fmax=FMAX,
        power=2.0,
        center=True,
        pad_mode="constant",
    )
    ref = np.log(power + LOG_EPS).T
    ours = log_mel_frames(audio, SAMPLE_RATE // hop, 0, len(ref))
    assert ours.shape == ref.shape
    # float32 DFT vs. float32 FFT: log-mel agrees to ~1e-4 where there is energy
    assert np.abs(ours - ref).max() < 1e-3
    assert np.abs(ours - ref).mean() < 1e-5


def test_frame_centers_do_not_drift() -> None:
    for fps in (30, 60):
        centers = frame_centers(0, 3600 * fps + 1, fps)
        k = np.arange(len(centers))
        # exact: |centre - k * sr / fps| <= 0.5 sample for every frame of an hour
        assert np.abs(centers - k * SAMPLE_RATE / fps).max() <= 0.5
        assert centers[60 * fps] == 60 * SAMPLE_RATE  # one minute is one minute
        assert centers[3600 * fps] == 3600 * SAMPLE_RATE
    assert list(frame_centers(0, 4, 30)) == [0, 533, 1067, 1600]


def test_frame_centers_negative_frames_and_offset() -> None:
    assert list(frame_centers(-2, 3, 30)) == [-1067, -533, 0]
    np.testing.assert_array_equal(frame_centers(100, 5, 60), frame_centers(0, 105, 60)[100:])


def test_gather_windows_pads_with_silence() -> None:
    audio = np.arange(1, 3001, dtype=np.float32)
    windows = gather_windows(audio, 0, np.array([0, 2999, 5000]))
    assert windows.shape == (3, N_FFT)
    assert np.all(windows[0, :512] == 0) and windows[0, 512] == 1.0
    assert windows[1, 511] == audio[2998] and windows[1, 512] == audio[2999] and np.all(windows[1, 513:] == 0)
    assert np.all(windows[2] == 0)
    # an offset buffer gives the same windows as the whole signal
    part = gather_windows(audio[1000:], 1000, np.array([1600, 2400]))
    np.testing.assert_array_equal(part, gather_windows(audio, 0, np.array([1600, 2400])))


def test_front_end_normalizes_with_stored_statistics() -> None:
    audio = load_audio(bundled_speech())
    windows = torch.from_numpy(gather_windows(audio, 0, frame_centers(0, 200, 30)))
    front = MelFrontEnd()
    raw = front.log_mel(windows)
    mean, std = raw.mean(0).numpy(), raw.std(0).numpy()
    front.set_stats(mean, std)
    normalized = front(windows)
    np.testing.assert_allclose(normalized.mean(0).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(0).numpy(), 1, atol=1e-3)
    got_mean, got_std = front.stats()
    np.testing.assert_allclose(got_mean, mean)
    np.testing.assert_allclose(got_std, std, rtol=1e-6)


def test_silence_is_finite() -> None:
    front = MelFrontEnd()
    out = front.log_mel(torch.zeros(2, N_FFT))
    assert torch.isfinite(out).all()
    np.testing.assert_allclose(out.numpy(), np.log(LOG_EPS), rtol=1e-6)
