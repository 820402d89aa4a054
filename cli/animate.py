"""One audio file to one animation file, with a model loaded once: what `a2bs infer` does for a single
file, and what each batch worker does for every file it is given (`cli/batch.py`).

`AnimatorSpec` is the picklable description a worker receives (which backend, checkpoint or bundle, the
inference options and the life layer's preset and seed); `Animator` is the loaded model; `Animator.write`
streams one file into an atomic writer, through the face controls (core/controls.py: the bundle's, with the
user's over them) and the life layer (blinks, gaze, head, brows: core/life.py) unless it is off, and names a
NaN or infinite output's real cause.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core.animation_io import open_writer
from a2bs.core.controls import ControlsFilter, FaceControls
from a2bs.core.errors import A2BSError, raise_if_interrupted
from a2bs.core.life import LifeLayer, life_chunks, preset, with_amount
from a2bs.runtime.manifest import SHIPPED_DIR, face_controls


@dataclass(frozen=True)
class AnimatorSpec:
    backend: str = "torch"  # torch | tflite | coreml
    checkpoint: Path | None = None  # torch: a checkpoint folder (default: the bundled one)
    fps: int | None = None
    bundle: Path | None = None  # tflite / coreml: a folder made by a2bs-convert
    variant: str | None = None
    stride: int = 1
    emotion_refresh: float | None = None
    emotion_from: Path | None = None
    per_frame: bool = False  # tflite: one frame per call as the apps do, not the bundle's offline model
    life: str = "natural"  # the life layer's preset: off | subtle | natural
    seed: int = 0  # the life layer's seed
    life_amount: float | None = None  # the life layer's amount (None: the preset's)
    controls: tuple[tuple[str, float], ...] = ()  # face controls set by the user, over the bundle's (hashable)


@dataclass
class Animation:
    fps: int
    n_frames: int
    duration_s: float
    label: str  # what produced it, for messages: "trained", "UNTRAINED", "tflite dynamic_int8"
    metadata: dict[str, Any]
    chunks: Callable[[Callable[[int], None]], Iterator[np.ndarray]]


@dataclass
class Written:
    output: Path
    fps: int
    n_frames: int
    duration_s: float
    seconds: float
    label: str
    # the first `keep_frames` frames, for a plot / preview: (n, 52), or (n, 61) with the 9 rotations of the life layer
    kept: list[np.ndarray] = field(default_factory=list)


class Animator:
    """A model loaded once (a torch checkpoint, or a bundle's artifacts) that animates file after file."""

    def __init__(self, spec: AnimatorSpec, load_checkpoint: Callable[[Path | None, int | None], Any]) -> None:
        self.spec = spec
        self.threads_note = ""
        if spec.backend == "torch":
            from a2bs.core.threads import free_cores, set_torch_threads

            self.ckpt = load_checkpoint(spec.checkpoint, spec.fps)
            n = set_torch_threads("inference")
            self.threads_note = f", {n} torch thread{'s' * (n > 1)} of {free_cores()} free cores"
            self.fps = self.ckpt.fps
            self.controls = FaceControls(**dict(spec.controls)).check()
        else:
            from a2bs.runtime.bundle_inference import offline_entry, open_offline, open_runners

            if spec.bundle is None:
                raise A2BSError(f"--backend {spec.backend} needs --bundle DIR (a folder made by a2bs-convert)")
            manifest, *_ = open_runners(spec.bundle, spec.backend, spec.variant)  # checked before any work is done
            self.fps = int(manifest["fps"])
            self.controls = FaceControls(**{**face_controls(manifest).to_json(), **dict(spec.controls)}).check()
            if spec.fps is not None and spec.fps != self.fps:
                raise A2BSError(f"{spec.bundle} is a {self.fps} fps bundle: drop --fps or pass --fps {self.fps}")
            from a2bs.core.threads import choose_threads, omp_threads, usable_cores

            # LiteRT threads: the free cores (a batch worker: OMP_NUM_THREADS=1, one each)
            self.threads = choose_threads(omp_threads() or usable_cores(), "LiteRT") if spec.backend == "tflite" else 1
            shipped = spec.bundle.resolve().parent == SHIPPED_DIR
            what = "the shipped LiteRT model" if shipped else spec.backend
            offline = spec.backend == "tflite" and not spec.per_frame and offline_entry(manifest, spec.variant)
            if offline:
                open_offline(spec.bundle, manifest, spec.variant)  # checked too, before any work is done
            what += ", many frames per call" if offline else ", frame by frame"
            self.threads_note = f", {what}, {self.threads} thread{'s' * (self.threads > 1)}"

    def animate(self, audio: Path) -> Animation:
        spec = self.spec
        emotion_from = str(spec.emotion_from) if spec.emotion_from else None
        if spec.backend == "torch":
            from a2bs.core.inference import iter_blendshapes
            from a2bs.core.plan import plan

            the_plan = plan(audio, self.fps, spec.stride, spec.emotion_refresh, spec.emotion_from)
            metadata = {
                "audio": str(audio),
                "checkpoint": self.ckpt.source,
                "trained": self.ckpt.trained,
                "stride": spec.stride,
                "emotion_from": emotion_from,
            }
            return Animation(
                self.fps,
                the_plan.n_frames,
                the_plan.info.duration_s,
                "trained" if self.ckpt.trained else "UNTRAINED",
                metadata,
                lambda update: iter_blendshapes(audio, self.ckpt, the_plan, progress=update),
            )
        from a2bs.core.audio import probe
        from a2bs.runtime.bundle_inference import iter_bundle_blendshapes

        fps, n_frames, frames = iter_bundle_blendshapes(
            audio,
            spec.bundle,
            spec.backend,
            spec.variant,
            emotion_from=spec.emotion_from,
            num_threads=self.threads,
            per_frame=spec.per_frame,
        )
        metadata = {
            "audio": str(audio),
            "bundle": str(spec.bundle),
            "backend": spec.backend,
            "variant": spec.variant,
            "emotion_from": emotion_from,
        }

        def chunks(update: Callable[[int], None]) -> Iterator[np.ndarray]:
            for chunk in frames:
                update(len(chunk))
                yield chunk

        return Animation(
            fps, n_frames, probe(audio).duration_s, f"{spec.backend} {spec.variant or 'default'}", metadata, chunks
        )

    def write(
        self,
        audio: Path,
        output: Path,
        *,
        force: bool = False,
        progress: Callable[[int], None] | None = None,
        keep_frames: int = 0,
    ) -> Written:
        """Animate `audio` into `output` (atomic: a complete file or none), with the life layer of the spec
        (head and eye rotations in the output) unless it is off. `progress(n)` gets frame counts."""
        started = time.perf_counter()
        params = preset(self.spec.life)
        if params is not None and self.spec.life_amount is not None:
            params = with_amount(params, self.spec.life_amount)
        animation = self.animate(audio)
        animation.metadata.update(life=self.spec.life, seed=self.spec.seed if params is not None else None)
        if params is not None and self.spec.life_amount is not None:
            animation.metadata["life_amount"] = params.amount
        tuned = self.controls != FaceControls()  # the defaults change nothing: skipped, the files as they were
        if tuned:
            animation.metadata["controls"] = self.controls.to_json()
        written = Written(output, animation.fps, animation.n_frames, animation.duration_s, 0.0, animation.label)
        kept = 0

        def checked() -> Iterator[np.ndarray]:
            done = 0
            for chunk in animation.chunks(progress or (lambda _n: None)):
                raise_if_interrupted()
                check_finite(chunk, done, audio, animation.label)
                done += len(chunk)
                yield chunk

        def controlled() -> Iterator[np.ndarray]:
            if not tuned:
                yield from checked()
                return
            face = ControlsFilter(self.controls, animation.fps)
            for chunk in checked():
                yield face.process(chunk)

        if params is None:
            frames: Iterator[tuple[np.ndarray, np.ndarray | None]] = ((chunk, None) for chunk in controlled())
        else:
            frames = life_chunks(controlled(), audio, LifeLayer(params, animation.fps, self.spec.seed))
        with open_writer(
            output,
            animation.fps,
            animation.n_frames,
            force=force,
            metadata=animation.metadata,
            rotations=params is not None,
        ) as w:
            for chunk, rotations in frames:
                w.write(chunk, rotations)
                if kept < keep_frames:
                    both = chunk if rotations is None else np.concatenate([chunk, rotations.astype(np.float32)], axis=1)
                    written.kept.append(both[: keep_frames - kept])
                    kept += len(written.kept[-1])
        written.seconds = time.perf_counter() - started
        return written


def check_finite(chunk: np.ndarray, first_frame: int, audio: Path, label: str) -> None:
    """Name the real cause of a NaN or infinite output: the model (its weights or extreme audio), not the
    output file the writer would otherwise blame."""
    bad = ~np.isfinite(chunk)
    if bad.any():
        frame = first_frame + int(np.argwhere(bad)[0][0])
        raise A2BSError(
            f"the model ({label}) produced NaN or infinite values at frame {frame} for {audio}: "
            "its weights are broken or out of range (nothing was written)"
        )
