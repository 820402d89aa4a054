"""The sample apps' frame loop in NumPy, driven by `manifest.json` alone.

`BundleEngine` is what `ios_sample/` and `android_sample/` do: PCM arrives in pieces of any size, the
front-end model turns each due window into a mel frame, the step model runs once per frame with the
ring buffer of encoded frames and the previous smoothed frame, and finished output frames come out.
Every number (fps, window, look-ahead, context length, tensor names, initial state) is read from the
manifest, exactly as the apps must. It uses no torch, so the latency harness can time the runtime alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

Runner = Callable[..., dict[str, np.ndarray]]


class BundleEngine:
    """Push PCM (16 kHz mono float32 in [-1, 1]) as it arrives; get the output frames it completes.

    `timings` collects the seconds each frame's model calls took (front end + step), for the latency
    harness; `record_timings=False` keeps it empty, so that memory stays flat over hours of audio (one
    Python float per frame is ~3.5 MB per hour at 30 fps)."""

    def __init__(
        self,
        manifest: dict[str, Any],
        front_end: Runner,
        step: Runner,
        emotion: np.ndarray | None = None,
        record_timings: bool = True,
    ) -> None:
        self.fps = int(manifest["fps"])
        self.sample_rate = int(manifest["sample_rate"])
        self.window = int(manifest["timeline"]["window"])
        self.lookahead = int(manifest["timeline"]["lookahead_frames"])
        self.n_context = int(manifest["context_frames"])
        self.names = list(manifest["blendshapes"])
        models = manifest["models"]
        self._pcm_name = models["front_end"]["inputs"][0]["name"]
        self._mel_name = models["front_end"]["outputs"][0]["name"]
        self._step_inputs = [spec["name"] for spec in models["step"]["inputs"]]  # mel, context, emotion, previous
        self._smoothed, self._raw, self._context_frame = (spec["name"] for spec in models["step"]["outputs"])
        self._initial = manifest["initial_state"]
        neutral = np.asarray(manifest["emotion"]["neutral"], np.float32)
        self.emotion = (neutral if emotion is None else np.asarray(emotion, np.float32)).reshape(1, -1)
        self.front_end, self.step = front_end, step
        self.timings: list[float] = []
        self.record_timings = record_timings
        self.reset()

    def reset(self) -> None:
        """Forget the stream: digital silence in the mel history and every ring-buffer row."""
        self._pcm = np.zeros(0, np.float32)
        self._pcm_start = 0  # absolute index of _pcm[0]
        self.received = 0  # samples pushed so far
        self.mel_index = 0  # next mel frame j
        self.emitted = 0  # output frames produced
        self._mel_history = np.asarray(self._initial["mel_frames"], np.float32)[None]
        row = np.asarray(self._initial["context_frame"], np.float32)
        self._context = np.repeat(row[None, None], self.n_context - 1, axis=1)
        self._previous = np.zeros((1, len(self.names)), np.float32)

    def center(self, j: int) -> int:
        """Sample index of mel frame j's centre: round(j * sample_rate / fps), halves up, in integers."""
        return (2 * j * self.sample_rate + self.fps) // (2 * self.fps)

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Append samples; run every frame whose window is now complete. Returns (n, 52) new frames."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        self._pcm = np.concatenate([self._pcm, samples])
        self.received += len(samples)
        out = []
        while self.center(self.mel_index) + self.window // 2 <= self.received:
            frame = self._run_frame()
            if frame is not None:
                out.append(frame)
        return np.concatenate(out) if out else np.zeros((0, len(self.names)), np.float32)

    def finish(self) -> np.ndarray:
        """End of stream: run the frames still owed (silence past the end) up to ceil(duration * fps)."""
        total = -(-self.received * self.fps // self.sample_rate)
        out = []
        while self.emitted < total:
            frame = self._run_frame()
            if frame is not None:
                out.append(frame)
        return np.concatenate(out) if out else np.zeros((0, len(self.names)), np.float32)

    def _window(self, center: int) -> np.ndarray:
        """pcm[center - window/2, center + window/2) with zeros outside what has arrived."""
        start = center - self.window // 2
        out = np.zeros((1, self.window), np.float32)
        lo, hi = max(start, self._pcm_start), min(start + self.window, self._pcm_start + len(self._pcm))
        if hi > lo:
            out[0, lo - start : hi - start] = self._pcm[lo - self._pcm_start : hi - self._pcm_start]
        return out

    def _run_frame(self) -> np.ndarray | None:
        j = self.mel_index
        pcm = self._window(self.center(j))
        started = time.perf_counter()
        mel = self.front_end(**{self._pcm_name: pcm})[self._mel_name]
        self._mel_history = np.concatenate([self._mel_history[:, 1:], mel.reshape(1, 1, -1)], axis=1)
        feeds = (self._mel_history, self._context, self.emotion, self._previous)
        result = self.step(**dict(zip(self._step_inputs, feeds, strict=True)))
        if self.record_timings:
            self.timings.append(time.perf_counter() - started)
        self._context = np.concatenate([self._context[:, 1:], result[self._context_frame].reshape(1, 1, -1)], axis=1)
        self.mel_index += 1
        # samples before the next window are never needed again
        keep_from = self.center(self.mel_index) - self.window // 2
        if keep_from > self._pcm_start:
            cut = min(keep_from - self._pcm_start, len(self._pcm))
            self._pcm, self._pcm_start = self._pcm[cut:], self._pcm_start + cut
        if j < self.lookahead:
            return None
        name = self._raw if j == self.lookahead else self._smoothed  # output frame 0 has no previous frame
        frame = np.asarray(result[name], np.float32).reshape(1, -1)
        self._previous = frame
        self.emitted += 1
        return frame


def run_stream(engine: BundleEngine, audio: np.ndarray, chunk_sizes: list[int] | None = None) -> np.ndarray:
    """Feed a whole signal in pieces (sizes cycled; default one hop) and finish: (ceil(dur*fps), 52)."""
    sizes = chunk_sizes or [engine.sample_rate // engine.fps]
    frames, position, i = [], 0, 0
    while position < len(audio):
        size = sizes[i % len(sizes)]
        frames.append(engine.push(audio[position : position + size]))
        position, i = position + size, i + 1
    frames.append(engine.finish())
    return np.concatenate(frames)
