"""The mel front end: PCM windows -> normalized log-mel frames, on a drift-free timeline.

Frame k stands for time k / fps exactly: its 1024-sample Hann window is centred on sample
round(k * 16000 / fps) (DESIGN.md decision 1). An integer hop (533 at 30 fps) would drift
~37 ms per minute against video; rounding each centre separately never drifts.

The front end is a torch module built from fixed DFT and mel matrices (plain matmuls), so the
same module exports to CoreML and TFLite and an app turns raw PCM into exactly these features.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from a2bs.core.audio import frame_centers, gather_windows
from a2bs.core.constants import FMAX, FMIN, LOG_EPS, N_FFT, N_MELS, SAMPLE_RATE


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (the librosa/Auditory Toolbox default)."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-9) / min_log_hz) / logstep, hz / f_sp)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_edges_hz(n_mels: int = N_MELS, fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """(n_mels + 2,) filter edges in Hz, evenly spaced in mel; filter k peaks at edge k + 1 (its centre)."""
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))


def mel_filterbank(
    sample_rate: int = SAMPLE_RATE,
    n_fft: int = N_FFT,
    n_mels: int = N_MELS,
    fmin: float = FMIN,
    fmax: float = FMAX,
) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on the Slaney mel scale, area-normalized ("slaney")."""
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges_hz = mel_edges_hz(n_mels, fmin, fmax)
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return weights.astype(np.float32)


def folded_dft_bases(n_fft: int = N_FFT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-size bases of the periodic-Hann-windowed real DFT, folded by symmetry.

    For n = 1 .. n_fft/2 - 1, x[n] and x[n_fft - n] share cos(2 pi k n / N) and have opposite
    sin terms, and the periodic Hann window is symmetric with w[0] = 0. So with
    u = x[n] + x[N - n] and v = x[n] - x[N - n]:
        Re X[k] = u @ C + x[N/2] * (-1)^k,   Im X[k] = v @ S,
    C = w[n] cos(2 pi k n / N), S = -w[n] sin(2 pi k n / N): half the parameters of the full
    (1024 x 1026) matrix, which keeps the shipped front-end model near 2 MB.
    Returns (C, S, nyquist_row), shapes (N/2 - 1, N/2 + 1) twice and (N/2 + 1,).
    """
    half = n_fft // 2
    n = np.arange(1, half)
    k = np.arange(half + 1)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)  # periodic Hann, as librosa/torch use
    phase = 2 * np.pi * np.outer(n, k) / n_fft
    cos_basis = (window[:, None] * np.cos(phase)).astype(np.float32)
    sin_basis = (-window[:, None] * np.sin(phase)).astype(np.float32)
    nyquist_row = np.cos(np.pi * k).astype(np.float32)  # w[N/2] = 1
    return cos_basis, sin_basis, nyquist_row


class MelFrontEnd(nn.Module):
    """PCM windows (..., 1024) -> normalized log-mel (..., 80).

    The windowed DFT uses the folded half-size bases of `folded_dft_bases`. log-mel =
    log(mel_power + 1e-6), then (x - mean) / std with per-bin statistics stored in the checkpoint.
    Only slices, a reverse, matmuls, square, add, log: converts to CoreML and TFLite as is.
    """

    def __init__(self, mel_mean: np.ndarray | None = None, mel_std: np.ndarray | None = None) -> None:
        super().__init__()
        cos_basis, sin_basis, nyquist_row = folded_dft_bases()
        self.register_buffer("dft_cos", torch.from_numpy(cos_basis))
        self.register_buffer("dft_sin", torch.from_numpy(sin_basis))
        self.register_buffer("dft_nyquist", torch.from_numpy(nyquist_row))
        self.register_buffer("mel_basis", torch.from_numpy(mel_filterbank().T.copy()))
        mean = np.zeros(N_MELS, np.float32) if mel_mean is None else np.asarray(mel_mean, np.float32)
        std = np.ones(N_MELS, np.float32) if mel_std is None else np.asarray(mel_std, np.float32)
        self.register_buffer("mel_mean", torch.from_numpy(mean.copy()))
        self.register_buffer("mel_inv_std", torch.from_numpy((1.0 / np.maximum(std, 1e-5)).astype(np.float32)))

    def log_mel(self, windows: torch.Tensor) -> torch.Tensor:
        half = N_FFT // 2
        head = windows[..., 1:half]  # x[1 .. N/2 - 1]
        tail = windows[..., half + 1 :].flip(-1)  # x[N - 1 .. N/2 + 1] reversed: x[N - n] for the same n
        real = (head + tail) @ self.dft_cos + windows[..., half : half + 1] * self.dft_nyquist
        imag = (head - tail) @ self.dft_sin
        power = real.square() + imag.square()
        return torch.log(power @ self.mel_basis + LOG_EPS)

    def normalize(self, log_mel: torch.Tensor) -> torch.Tensor:
        return (log_mel - self.mel_mean) * self.mel_inv_std

    def denormalize(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalized log-mel -> log-mel (the inverse of `normalize`; training's augmentations work on it)."""
        return mel / self.mel_inv_std + self.mel_mean

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.log_mel(windows))

    def set_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mel_mean.copy_(torch.as_tensor(np.asarray(mean, np.float32)))
        self.mel_inv_std.copy_(torch.as_tensor(1.0 / np.maximum(np.asarray(std, np.float32), 1e-5)))

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mel_mean.numpy().copy(), (1.0 / self.mel_inv_std).numpy().copy()


@torch.no_grad()
def log_mel_frames(audio: np.ndarray, fps: int, first: int = 0, count: int | None = None) -> np.ndarray:
    """Un-normalized log-mel frames of a whole 16 kHz signal (for statistics and tests).

    Default `count` is ceil(len(audio) * fps / sr), i.e. one frame per output frame."""
    if count is None:
        count = -(-len(audio) * fps // SAMPLE_RATE)
    front = _shared_front_end()
    windows = gather_windows(audio, 0, frame_centers(first, count, fps))
    return front.log_mel(torch.from_numpy(windows)).numpy()


_FRONT_END: MelFrontEnd | None = None


def _shared_front_end() -> MelFrontEnd:
    global _FRONT_END
    if _FRONT_END is None:
        _FRONT_END = MelFrontEnd()
    return _FRONT_END
