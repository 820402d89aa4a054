"""Files, many frames per call: a bundle's offline model run over a whole stream, without torch.

The offline model (`core.deploy.DeployOffline`, `a2bs_offline_<variant>.tflite`) computes `OFFLINE_FRAMES`
mel frames per call from their PCM windows, the mel frames and encoded frames before them, and the emotion
vector; this loop carries those between calls, smooths as the step model does (`smoothing_alpha`, output
frame 0 unsmoothed) and gives the same frames as the per-frame loop of `engine.BundleEngine` (what the apps
run), to float round-off (`core.parity.OFFLINE_ATOL`, checked by the converter, `a2bs validate` and the tests). A call
whose attention weights underflowed (`attention_floor` below `ATTENTION_FLOOR`, never seen on speech) is
recomputed frame by frame with the step model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from a2bs.core.audio import SampleWindow, frame_centers
from a2bs.runtime.engine import Runner

# Smallest softmax denominator the factorized attention trusts: above it, every weight the float32 exponent
# flushed to zero is < 1e-10 of its window's largest weight (docs/DECISIONS.md, "The offline model").
ATTENTION_FLOOR = 1e-25
StepLoader = Callable[[], Runner]  # the step model, loaded when first needed


class OfflineEngine:
    """Runs a bundle's offline model over one stream: `run(blocks, n_frames)` yields (n, 52) smoothed frames.

    `step` gives the bundle's step model of the same variant, which recomputes a call whose attention
    underflowed."""

    def __init__(
        self, manifest: dict[str, Any], offline: Runner, step: StepLoader, emotion: np.ndarray | None = None
    ) -> None:
        self.fps = int(manifest["fps"])
        self.lookahead = int(manifest["timeline"]["lookahead_frames"])
        self.n_context = int(manifest["context_frames"])
        spec = manifest["models"]["offline"]
        self._inputs = [s["name"] for s in spec["inputs"]]  # pcm, mel_history, context, emotion
        self._outputs = [s["name"] for s in spec["outputs"]]  # blendshapes_raw, mel, context_frames, floor
        self.frames = int(spec["inputs"][0]["shape"][1])
        self._step_inputs = [s["name"] for s in manifest["models"]["step"]["inputs"]]
        self._step_raw, self._step_context = (s["name"] for s in manifest["models"]["step"]["outputs"][1:3])
        self.n_shapes = len(manifest["blendshapes"])
        self.alpha = np.float32(manifest["smoothing_alpha"])
        initial = manifest["initial_state"]
        self._initial_mel = np.asarray(initial["mel_frames"], np.float32)[None]  # (1, H, 80)
        self.history_rows = self._initial_mel.shape[1]  # H: the mel frames one step call reads
        self._initial_context = np.asarray(initial["context_frame"], np.float32)
        neutral = np.asarray(manifest["emotion"]["neutral"], np.float32)
        self.emotion = (neutral if emotion is None else np.asarray(emotion, np.float32)).reshape(1, -1)
        self.offline, self.step = offline, step
        self.fallback_calls = 0  # calls recomputed frame by frame (underflow)

    def run(self, blocks: Iterator[np.ndarray], n_frames: int, chunk_frames: int = 1024) -> Iterator[np.ndarray]:
        """Smoothed output frames 0 .. n_frames-1 of the 16 kHz stream `blocks`, in chunks of about
        `chunk_frames`; samples past the stream's end are silence, as for the apps at the end of a file."""
        samples = SampleWindow(blocks)
        mel_history = self._initial_mel[:, 1:]  # (1, H-1, 80): the mel frames before j0
        context = np.repeat(self._initial_context[None, None], self.n_context - 1, axis=1)
        previous: np.ndarray | None = None
        pending: list[np.ndarray] = []
        emitted, n_mel = 0, n_frames + self.lookahead
        for j0 in range(0, n_mel, self.frames):
            centers = frame_centers(j0, self.frames, self.fps)
            pcm = samples.windows(centers)[None]
            samples.discard_before(int(frame_centers(j0 + self.frames, 1, self.fps)[0]) - pcm.shape[-1] // 2)
            feeds = dict(zip(self._inputs, (pcm, mel_history, context, self.emotion), strict=True))
            out = self.offline(**feeds)
            raw, mel, encoded, floor = (out[name] for name in self._outputs)
            if not (float(floor.min()) >= ATTENTION_FLOOR and np.isfinite(raw).all()):
                raw = self._frame_by_frame(np.concatenate([mel_history, mel], 1), context)
            mel_history = np.concatenate([mel_history, mel], 1)[:, -(self.history_rows - 1) :]
            context = np.concatenate([context, encoded], 1)[:, -(self.n_context - 1) :]
            first = max(self.lookahead - j0, 0)  # mel frames before the look-ahead produce no output frame
            frames = raw.reshape(-1, raw.shape[-1])[first : first + n_frames - emitted]
            smoothed, previous = self._smooth(frames, previous)
            emitted += len(smoothed)
            pending.append(smoothed)
            if sum(len(p) for p in pending) >= chunk_frames:
                yield np.concatenate(pending)
                pending = []
        if pending:
            yield np.concatenate(pending)

    def _smooth(self, raw: np.ndarray, previous: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """The step model's smoothing, in float32: b_k = a * raw_k + (1 - a) * b_(k-1); frame 0 is raw."""
        out = np.empty_like(raw)
        a, keep = self.alpha, np.float32(1) - self.alpha
        for k in range(len(raw)):
            previous = raw[k] if previous is None else a * raw[k] + keep * previous
            out[k] = previous
        return out, previous

    def _frame_by_frame(self, mel: np.ndarray, context: np.ndarray) -> np.ndarray:
        """Raw frames of one call from the step model: `mel` (1, H-1+B, 80) are the mel frames from H-1 before
        the call, `context` the encoded frames before it."""
        self.fallback_calls += 1
        rows, step = self.history_rows, self.step()
        raws = []
        for b in range(self.frames):
            feeds = (mel[:, b : b + rows], context, self.emotion, np.zeros((1, self.n_shapes), np.float32))
            result = step(**dict(zip(self._step_inputs, feeds, strict=True)))
            raws.append(result[self._step_raw].reshape(1, -1))
            context = np.concatenate([context[:, 1:], result[self._step_context].reshape(1, 1, -1)], 1)
        return np.concatenate(raws)[None]


def offline_frames(
    manifest: dict[str, Any], offline: Runner, step: Runner, audio: np.ndarray, emotion: np.ndarray | None = None
) -> np.ndarray:
    """(ceil(duration * fps), 52) frames of a whole 16 kHz signal through the offline model."""
    n_frames = -(-len(audio) * int(manifest["fps"]) // int(manifest["sample_rate"]))
    engine = OfflineEngine(manifest, offline, lambda: step, emotion)
    chunks = list(engine.run(iter([np.asarray(audio, np.float32)]), n_frames))
    return np.concatenate(chunks) if chunks else np.zeros((0, len(manifest["blendshapes"])), np.float32)
