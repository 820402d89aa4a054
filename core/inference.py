"""Offline inference: an audio file -> smoothed blendshape frames, streamed in bounded memory.

Output frame k stands for time k / fps; its window covers mel frames k + L - N - 1 .. k + L
(N context frames, L lookahead, 2 frames of history for the 3-frame encoder). Audio is read and
resampled block by block, mel frames are computed once and carried between chunks, every mel
frame is encoded once (model.forward_sequence), and frames are yielded chunk by chunk: a 1-hour
file never has its audio, mel or window tensors in memory at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from a2bs.core.architecture import ModelConfig
from a2bs.core.audio import SampleWindow, frame_centers, gather_windows, stream_audio
from a2bs.core.checkpoint import Checkpoint
from a2bs.core.constants import N_FFT, SAMPLE_RATE
from a2bs.core.emotion import (
    EMOTION_SPAN_S,
    emotion_features_at,
    file_emotion,
    file_emotion_at_times,
    frame_to_refresh_index,
    refresh_times,
)
from a2bs.core.errors import A2BSError
from a2bs.core.model import smooth
from a2bs.core.plan import InferencePlan

ProgressFn = Callable[[int], None]


def _emotion_contexts(
    path: Path, ckpt: Checkpoint, the_plan: InferencePlan, n_computed: int
) -> tuple[torch.Tensor, np.ndarray | None]:
    """Emotion attention outputs: (1, 52, d) once per file, or (G, 52, d) + a grid index per computed frame."""
    duration = the_plan.info.duration_s
    if the_plan.emotion_refresh_s is None:
        raws = file_emotion(the_plan.emotion_from or path)[None]
        index = None
    else:
        times = refresh_times(duration, the_plan.emotion_refresh_s)
        raws = file_emotion_at_times(path, times)
        computed_frames = np.minimum(np.arange(n_computed) * the_plan.stride, the_plan.n_frames - 1)
        index = frame_to_refresh_index(the_plan.n_frames, the_plan.fps, times)[computed_frames]
    normalized = torch.from_numpy(ckpt.emotion_stats.normalize(raws))
    with torch.no_grad():
        return ckpt.model.emotion_context(normalized), index


def iter_blendshapes(
    path: str | Path,
    ckpt: Checkpoint,
    the_plan: InferencePlan,
    *,
    chunk_outputs: int = 512,
    progress: ProgressFn | None = None,
) -> Iterator[np.ndarray]:
    """Yield smoothed (n, 52) float32 chunks covering output frames 0 .. n_frames-1 in order.

    With stride s > 1 the model runs on every s-th frame (and one past the end) and the frames in
    between are linearly interpolated before smoothing, which is reset at the start of the file.
    """
    path = Path(path)
    model, cfg = ckpt.model, ckpt.model.config
    if the_plan.fps != cfg.fps:
        raise A2BSError(f"the checkpoint is for {cfg.fps} fps, not {the_plan.fps}: pass --fps {cfg.fps}")
    n, s, fps = the_plan.n_frames, the_plan.stride, the_plan.fps
    n_computed = -(-(n - 1) // s) + 1  # computed frames 0, s, 2s, ... reaching at least n - 1
    emo_ctx, emo_index = _emotion_contexts(path, ckpt, the_plan, n_computed)

    samples = SampleWindow(stream_audio(path))
    lookahead, context = cfg.lookahead_frames, cfg.window_mel_frames
    mel_cache = torch.zeros(0, cfg.n_mels)
    mel_first = 0  # absolute mel frame index of mel_cache[0]
    alpha = model.alpha.detach()
    state: torch.Tensor | None = None
    last_raw: torch.Tensor | None = None  # most recent computed raw frame, for interpolation
    emitted = 0
    with torch.no_grad():
        for m0 in range(0, n_computed, chunk_outputs):
            m1 = min(m0 + chunk_outputs, n_computed)
            j_lo = m0 * s + lookahead - context + 1  # first mel frame of the first window
            j_hi = (m1 - 1) * s + lookahead  # newest mel frame of the last window
            # Compute only the mel frames not already cached from the previous chunk.
            keep_from = max(j_lo - mel_first, 0)
            mel_cache, mel_first = mel_cache[keep_from:], mel_first + keep_from
            if len(mel_cache) == 0:
                mel_first = j_lo
            new_first = mel_first + len(mel_cache)
            if new_first <= j_hi:
                centers = frame_centers(new_first, j_hi - new_first + 1, fps)
                windows = torch.from_numpy(samples.windows(centers))
                mel_cache = torch.cat([mel_cache, model.front_end(windows)])
                samples.discard_before(int(frame_centers(j_hi - context, 1, fps)[0]) - N_FFT // 2)
            emo = emo_ctx if emo_index is None else emo_ctx[emo_index[m0:m1]][None]
            raw = model.forward_sequence(mel_cache[None], emo, stride=s)[0]  # (m1 - m0, 52)
            frames = _expand(raw, m0, s, last_raw, emitted, n)
            last_raw = raw[-1]
            if len(frames) == 0:
                continue
            smoothed = smooth(frames, alpha, state)  # state None at the file start: reset to raw_0
            state = smoothed[-1]
            emitted += len(frames)
            if progress:
                progress(len(frames))
            yield smoothed.numpy().astype(np.float32, copy=False)
    if emitted != n:  # pragma: no cover - an internal invariant, not a user error
        raise RuntimeError(f"internal error: produced {emitted} of {n} frames")


def _expand(raw: torch.Tensor, m0: int, stride: int, last_raw: torch.Tensor | None, emitted: int, n: int):
    """Frames emitted..min(last computed frame, n-1), interpolating between computed frames for stride > 1."""
    if stride == 1:
        return raw[: n - emitted]
    points = raw if last_raw is None else torch.cat([last_raw[None], raw])
    first_k = m0 * stride if last_raw is None else (m0 - 1) * stride
    last_k = min((m0 + len(raw) - 1) * stride, n - 1)
    ks = torch.arange(emitted, last_k + 1, dtype=torch.float32)
    position = (ks - first_k) / stride
    lower = position.floor().long().clamp(max=len(points) - 1)
    upper = (lower + 1).clamp(max=len(points) - 1)
    frac = (position - lower.float())[:, None]
    return points[lower] * (1 - frac) + points[upper] * frac


def mel_windows(cfg: ModelConfig, audio: np.ndarray, n_out: int) -> np.ndarray:
    """PCM windows (count, 1024) of every mel frame that output frames 0 .. n_out-1 of a whole
    16 kHz signal depend on, oldest first (silence before and after the signal)."""
    first, count = cfg.mel_frames_for(n_out)
    return gather_windows(audio, 0, frame_centers(first, count, cfg.fps))


def infer_array(ckpt: Checkpoint, audio: np.ndarray, emotion: np.ndarray | None = None) -> np.ndarray:
    """Whole-array reference inference (tests, training metrics): 16 kHz audio -> (ceil(dur*fps), 52).

    `emotion` is the raw 264-vector; None extracts it from the audio's end like `iter_blendshapes`."""
    model, cfg = ckpt.model, ckpt.model.config
    n = -(-len(audio) * cfg.fps // SAMPLE_RATE)
    if emotion is None:
        tail = audio[-round(EMOTION_SPAN_S * SAMPLE_RATE) :]
        emotion = emotion_features_at(tail, len(tail) / SAMPLE_RATE)
    with torch.no_grad():
        mel = model.front_end(torch.from_numpy(mel_windows(cfg, audio, n)))[None]
        emo = model.emotion_context(torch.from_numpy(ckpt.emotion_stats.normalize(emotion[None])))
        return smooth(model.forward_sequence(mel, emo), model.alpha)[0].numpy()
