"""Inference through a bundle's artifacts, frame by frame, exactly as the manifest tells an app to.

`a2bs infer AUDIO --backend tflite --bundle DIR [--variant V]` uses this: the front-end model turns
each PCM window into a mel frame, the step model runs once per frame with the ring buffer of
encoded frames and the previous smoothed frame. Emotion features are extracted once per file like
the torch backend (apps without openSMILE pass zeros, the neutral vector). CoreML bundles run in
Core ML on macOS and in the NumPy MIL executor (`a2bs.runtime.mil_executor`) elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import itertools
import platform as host
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from a2bs.core.audio import n_output_frames, probe, stream_audio
from a2bs.core.emotion import EmotionStats, file_emotion
from a2bs.core.errors import A2BSError, one_line
from a2bs.core.parity import largest_difference
from a2bs.runtime.engine import BundleEngine, Runner, run_stream
from a2bs.runtime.manifest import bundle_file, load_manifest, verify_file
from a2bs.runtime.offline import OfflineEngine, StepLoader, offline_frames
from a2bs.runtime.tflite_runner import TFLiteRunner


def open_runners(
    bundle: Path, backend: str, variant: str | None, num_threads: int = 1
) -> tuple[dict[str, Any], Runner, Runner]:
    """(manifest, front_end runner, step runner) for a bundle on the given runtime (`num_threads`: LiteRT's).

    The bundle is checked as `a2bs validate` checks it before anything runs: each model file's size and
    sha256 (`verify_file`), then its real inputs and outputs against the manifest (`io_mismatch`), so a
    damaged, tampered or mislabelled bundle is a one-line A2BSError, never a traceback or wrong frames."""
    manifest = bundle_manifest(bundle, backend)
    platform = manifest["platform"]
    entries = bundle_file(manifest, "front_end", None), bundle_file(manifest, "step", variant)
    front_end, step = (_open_model(bundle, manifest, entry, platform, num_threads) for entry in entries)
    return manifest, front_end, step


def bundle_manifest(bundle: Path, backend: str) -> dict[str, Any]:
    """The bundle's checked manifest, refused when the bundle is not for `backend`'s platform."""
    manifest = load_manifest(bundle)
    platform = {"tflite": "android", "coreml": "ios"}[backend]
    if manifest.get("platform") != platform:
        raise A2BSError(f"--backend {backend} needs an {platform} bundle; {bundle} is for {manifest.get('platform')}")
    return manifest


def step_loader(bundle: Path, manifest: dict[str, Any], variant: str | None, num_threads: int = 1) -> StepLoader:
    """The step model of `variant`, loaded (and checked) on first use: the offline path needs it only to
    recompute a call whose attention underflowed, so it costs no memory otherwise."""
    entry = bundle_file(manifest, "step", variant)
    return functools.cache(lambda: _open_model(bundle, manifest, entry, "android", num_threads))


def offline_entry(manifest: dict[str, Any], variant: str | None) -> dict[str, Any] | None:
    """The bundle's offline model of `variant` (default: the bundle's), or None when it has none."""
    wanted = variant or manifest["default_variant"]
    return next((f for f in manifest["files"] if f["role"] == "offline" and f["variant"] == wanted), None)


def open_offline(bundle: Path, manifest: dict[str, Any], variant: str | None, num_threads: int = 1) -> Runner | None:
    """The offline model's runner (checked like `open_runners` checks the others), or None without one."""
    entry = offline_entry(manifest, variant)
    return None if entry is None else _open_model(bundle, manifest, entry, "android", num_threads)


def _open_model(bundle: Path, manifest: dict[str, Any], entry: dict[str, Any], platform: str, threads: int) -> Runner:
    found = verify_file(bundle, entry)
    if found.problem:
        raise A2BSError(f"bundle {bundle} is damaged: {found.problem}; see `a2bs validate {bundle}`")
    path = bundle / entry["path"]
    try:
        runner = model_runner(path, platform, num_threads=threads)
        problem = io_mismatch(path, platform, manifest["models"][entry["role"]])
    except Exception as exc:  # the runtime's own error for a file it cannot load (corrupt, unsupported op)
        raise A2BSError(f"cannot load {path}: {one_line(exc, 160)}") from None
    if problem:
        raise A2BSError(
            f"the models of {bundle} do not run as its manifest says ({entry['path']}: {problem}): "
            f"check the bundle with `a2bs validate {bundle}`"
        )
    return runner


def offline_difference(
    bundle: Path, variant: str | None, audio: np.ndarray, emotion: np.ndarray | None = None
) -> float:
    """Largest difference between the bundle's offline model and its per-frame path (the apps' loop, front end
    and step model) over `audio` (16 kHz mono float): the offline model's contract, <= OFFLINE_ATOL. NaN
    counts as infinitely different."""
    manifest, front_end, step = open_runners(Path(bundle), "tflite", variant)
    offline = open_offline(Path(bundle), manifest, variant)
    if offline is None:
        raise A2BSError(f"bundle {bundle} has no offline model for variant {variant or manifest['default_variant']!r}")
    per_frame = run_stream(BundleEngine(manifest, front_end, step, emotion, record_timings=False), audio)
    return largest_difference(offline_frames(manifest, offline, step, audio, emotion), per_frame)


def model_io(path: Path, platform: str) -> tuple[list[tuple[str, tuple[int, ...]]], list[tuple[str, tuple[int, ...]]]]:
    """(inputs, outputs) of a model file as (name, shape) pairs, read from the file itself: the LiteRT
    interpreter's signature for android, the Core ML spec (no Core ML needed) for ios."""
    if platform == "android":
        io = TFLiteRunner(path).signature_io()
        return (
            [(n, tuple(i["shape"])) for n, i in io["inputs"].items()],
            [(n, tuple(i["shape"])) for n, i in io["outputs"].items()],
        )
    from a2bs.runtime.coreml_package import load_spec_summary

    spec = load_spec_summary(path)
    return [(f["name"], f["shape"]) for f in spec["inputs"]], [(f["name"], f["shape"]) for f in spec["outputs"]]


def io_mismatch(path: Path, platform: str, declared: dict[str, Any]) -> str:
    """How a model's real inputs and outputs differ from the manifest's `models.<role>` ("" if they do not).
    Shared by `a2bs validate` (a failing check) and the runtimes (a refused bundle)."""
    inputs, outputs = model_io(path, platform)
    want_in = [(spec["name"], tuple(spec["shape"])) for spec in declared["inputs"]]
    want_out = [(spec["name"], tuple(spec["shape"])) for spec in declared["outputs"]]
    problems = []
    if sorted(inputs) != sorted(want_in):
        problems.append(f"inputs {inputs} != manifest {want_in}")
    if sorted(outputs) != sorted(want_out):
        problems.append(f"outputs {outputs} != manifest {want_out}")
    return "; ".join(problems)


def model_runner(path: Path, platform: str, compute_units: str = "CPU_ONLY", num_threads: int = 1) -> Runner:
    """Named-input runner of one model file: the LiteRT interpreter for android; Core ML itself on macOS
    (`compute_units` as in coremltools' ComputeUnit) and the NumPy MIL executor elsewhere for ios."""
    if platform == "android":
        return TFLiteRunner(path, num_threads=num_threads)
    if host.system() == "Darwin":
        import coremltools as ct

        model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_units))
        return lambda **inputs: model.predict(inputs)
    from a2bs.runtime.mil_executor import MILExecutor  # fp16 compute emulated where the program uses it

    return MILExecutor(path)


def iter_bundle_blendshapes(
    audio_path: str | Path,
    bundle: str | Path,
    backend: str,
    variant: str | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_frames: int = 256,
    neutral_emotion: bool = False,
    emotion_from: str | Path | None = None,
    num_threads: int = 1,
    per_frame: bool = False,
) -> tuple[int, int, Iterator[np.ndarray]]:
    """(fps, n_frames, iterator of (n, 52) chunks) running the bundle: through its offline model, many frames
    per call, when it has one for the variant (LiteRT), else (or with `per_frame`) frame by frame as the apps
    do; both give the same frames (runtime/offline.py).

    `neutral_emotion` passes the manifest's neutral vector, as the sample apps do (no openSMILE on the
    phone), instead of the file's eGeMAPS features; `emotion_from` takes them from another clip. Paths may
    be strings: the sample READMEs tell app developers to call this from a Python prompt."""
    audio_path, bundle = Path(audio_path), Path(bundle)
    emotion_from = None if emotion_from is None else Path(emotion_from)
    manifest = bundle_manifest(bundle, backend)
    offline = None if per_frame or backend != "tflite" else open_offline(bundle, manifest, variant, num_threads)
    if offline is None:
        manifest, front_end, step = open_runners(bundle, backend, variant, num_threads)
    else:  # the front end and step models are not needed: not loaded
        load_step = step_loader(bundle, manifest, variant, num_threads)
    fps = int(manifest["fps"])
    info = probe(audio_path)
    n_frames = n_output_frames(info, fps)
    if neutral_emotion:
        emotion = np.asarray(manifest["emotion"]["neutral"], np.float32)[None]
    else:
        stats = EmotionStats.from_json(manifest["emotion"]["normalization"])
        emotion = stats.normalize(file_emotion(emotion_from or audio_path)[None])
        release_free_heap()  # what openSMILE freed (~7 MB) goes back to the system before the model runs

    def frames() -> Iterator[np.ndarray]:
        engine = BundleEngine(manifest, front_end, step, emotion, record_timings=False)
        pending: list[np.ndarray] = []
        for block in itertools.chain(stream_audio(audio_path), [None]):  # None: end of stream
            with _runtime_errors(bundle):
                new = engine.push(block) if block is not None else engine.finish()
            if len(new):
                pending.append(new)
            while sum(len(p) for p in pending) >= chunk_frames or (block is None and pending):
                ready = np.concatenate(pending)
                chunk, rest = ready[:chunk_frames], ready[chunk_frames:]
                pending = [rest] if len(rest) else []
                if progress:
                    progress(len(chunk))
                yield chunk

    def offline_frames() -> Iterator[np.ndarray]:
        engine = OfflineEngine(manifest, offline, load_step, emotion)
        chunks = engine.run(stream_audio(audio_path), n_frames, chunk_frames)
        while True:
            with _runtime_errors(bundle):
                chunk = next(chunks, None)
            if chunk is None:
                return
            if progress:
                progress(len(chunk))
            yield chunk

    return fps, n_frames, frames() if offline is None else offline_frames()


def release_free_heap() -> None:
    """Give the C heap's freed memory back to the system (glibc's malloc_trim; elsewhere nothing): native
    libraries free their buffers, but glibc keeps them for reuse and the process's peak memory counts them."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


@contextlib.contextmanager
def _runtime_errors(bundle: Path) -> Iterator[None]:
    """The runtimes' errors for inputs a model does not take: a bundle whose models and manifest disagree."""
    try:
        yield
    except (ValueError, RuntimeError, KeyError, IndexError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise A2BSError(
            f"the models of {bundle} do not run as its manifest says ({reason}): "
            f"check the bundle with `a2bs validate {bundle}`"
        ) from None
