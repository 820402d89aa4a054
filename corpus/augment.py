"""Training-audio augmentation: reverb, gain and noise, applied to a take's audio without moving its timing."""

from __future__ import annotations

import math

import numpy as np

from a2bs.core.constants import SAMPLE_RATE


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / (np.std(x) + 1e-12)


def _active_power(x: np.ndarray, sr: int) -> float:
    """Mean power of the 20 ms frames within 30 dB of the loudest (i.e. of the speech, not the pauses)."""
    hop = max(1, sr // 50)
    m = len(x) // hop
    if m == 0:
        return float(np.mean(x**2)) if x.size else 0.0
    p = np.mean(x[: m * hop].reshape(m, hop).astype(np.float64) ** 2, axis=1)
    active = p[p >= p.max() * 1e-3]
    return float(active.mean()) if active.size else 0.0


def augment_audio(audio: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, dict]:
    """Reverb (p=0.5, RT60 0.1-0.5 s), gain (-12..+3 dB), white or pink noise (p=0.8, SNR 20-40 dB).

    Same length as the input (the reverb tail is cut; the direct path is at lag 0, so timing is kept).
    Returns the float32 audio (clipped to [-1, 1]) and a description of what was applied.
    """
    x = np.asarray(audio, dtype=np.float64)
    info: dict = {}
    if rng.random() < 0.5 and x.size:
        rt60 = float(rng.uniform(0.1, 0.5))
        wet = float(rng.uniform(0.1, 0.5))
        m = max(2, int(rt60 * sr))
        tt = np.arange(m) / sr
        ir = rng.standard_normal(m) * np.exp(-6.9078 * tt / rt60)  # -60 dB at rt60
        ir[: int(0.002 * sr)] = 0.0  # first reflections after 2 ms
        ir *= wet / (np.sqrt(np.sum(ir**2)) + 1e-12)
        ir[0] = 1.0
        nfft = 1 << (len(x) + m - 1).bit_length()
        x = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(audio)]
        info["reverb"] = {"rt60_s": round(rt60, 3), "wet": round(wet, 3)}
    gain_db = float(rng.uniform(-12.0, 3.0))
    x = x * 10 ** (gain_db / 20)
    info["gain_db"] = round(gain_db, 2)
    if rng.random() < 0.8 and x.size:
        snr = float(rng.uniform(20.0, 40.0))
        kind = "pink" if rng.random() < 0.5 else "white"
        noise = _pink(len(x), rng) if kind == "pink" else rng.standard_normal(len(x))
        p = _active_power(x, sr)
        x = x + noise * math.sqrt(p / 10 ** (snr / 10))
        info["noise"] = {"kind": kind, "snr_db": round(snr, 2)}
    return np.clip(x, -1.0, 1.0).astype(np.float32), info
