"""Artifact bundles: model files + manifest.json + README for the mobile developer, built atomically.

A bundle is a folder, marked as made by a2bs (core/files.py: MARKER). It is built in a temp folder beside
the target and renamed into place; an existing folder is replaced only with `force`, and only when it is a
bundle a2bs made (`check_out_dir`).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from a2bs.convert.common import ArtifactFile, ConversionError, Converter, calibration_set
from a2bs.core import constants as C
from a2bs.core.audio import default_clip, load_audio
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, GROUPS
from a2bs.core.checkpoint import Checkpoint, fingerprint
from a2bs.core.controls import FaceControls
from a2bs.core.controls import manifest_section as controls_section
from a2bs.core.deploy import (
    FRONT_END_INPUTS,
    FRONT_END_OUTPUTS,
    OFFLINE_INPUTS,
    OFFLINE_OUTPUTS,
    STEP_INPUTS,
    STEP_OUTPUTS,
    initial_state,
    mel_history_names,
)
from a2bs.core.errors import A2BSError, raise_if_interrupted
from a2bs.core.files import (
    OutputLock,
    check_output_dir,
    made_by_a2bs,
    mark_as_made,
    replace_dir,
    sha256,
    sibling,
    size_bytes,
    staging_dir,
)
from a2bs.core.life import PRESETS
from a2bs.core.life import manifest_section as life_section
from a2bs.core.model import ModelConfig
from a2bs.core.parity import OFFLINE_ATOL
from a2bs.core.progress import Progress
from a2bs.core.variants import OFFLINE_VARIANTS, PLATFORMS, default_variant, platform_variants
from a2bs.runtime.bundle_inference import offline_difference
from a2bs.runtime.manifest import load_manifest

MANIFEST = "manifest.json"
FORMAT = "a2bs-bundle"
FORMAT_VERSION = 1


def resolve_variants(platform: str, quantize: str | None, only: bool = False) -> list[str]:
    """--quantize VARIANT|all (default: the platform's default variant) -> variants, the bundle's default
    first. `only`: just VARIANT, which becomes the bundle's default (e.g. the fp16 model shipped inside
    a2bs for torch-free inference)."""
    if platform not in PLATFORMS:
        raise A2BSError(f"unknown platform {platform!r}: use ios or android")
    variants, default = platform_variants(platform), default_variant(platform)
    if only and quantize in (None, "all"):
        raise A2BSError("--only needs --quantize VARIANT: the one variant the bundle holds")
    if quantize is None:
        return [default]
    if quantize == "all":
        return [default, *(v for v in variants if v != default)]
    if quantize not in variants:
        raise A2BSError(f"unknown {platform} variant {quantize!r}: use one of {', '.join(variants)} or all")
    return [quantize] if quantize == default or only else [default, quantize]


def check_out_dir(out: Path, force: bool, validated: bool = False, fix: str = "give another --out") -> None:
    """Before any slow work, and again before the replace: `out` can take the bundle; a folder there is
    replaced only with `force` and only when it is a bundle a2bs made (core/files.py: check_output_dir).
    With `validated`, the same for OUT.rejected, where a bundle that fails validation is kept (an earlier
    rejected bundle is replaced, nothing else)."""
    check_output_dir(out, force=force, fix=fix, made_by_us=is_a2bs_bundle)
    if validated:
        check_output_dir(rejected_dir(out), force=True, fix=fix, made_by_us=is_a2bs_bundle)


def is_a2bs_bundle(folder: Path) -> bool:
    """A folder a2bs made and may replace: it carries the marker a2bs writes into every bundle, or it is a
    bundle from before the marker (its manifest.json loads as an a2bs bundle manifest)."""
    if made_by_a2bs(folder):
        return True
    try:
        load_manifest(folder)
    except A2BSError:
        return False
    return True


@dataclass
class BundleResult:
    out: Path  # where the bundle is: the target, or REJECTED beside it when its check failed
    manifest: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)  # variant, file, size, parity
    seconds: float = 0.0
    passed: bool = True  # the check passed (or there was none) and the bundle is at the target


def rejected_dir(out: Path) -> Path:
    """Where a bundle that failed its check is kept for inspection; the target is left as it was."""
    return sibling(out, "rejected", hidden=False)


def _converter(platform: str) -> Converter:
    if platform == "ios":
        from a2bs.convert.coreml import convert_coreml

        return convert_coreml
    from a2bs.convert.tflite import convert_tflite

    return convert_tflite


def _tensor_spec(name: str, shape: tuple[int, ...], description: str) -> dict[str, Any]:
    return {"name": name, "shape": list(shape), "dtype": "float32", "description": description}


def build_manifest(
    platform: str, ckpt: Checkpoint, files: list[ArtifactFile], folder: Path, default_variant: str
) -> dict[str, Any]:
    model, cfg = ckpt.model, ckpt.model.config
    state = initial_state(model)
    mel_mean, mel_std = model.front_end.stats()
    n = cfg.context_frames
    d2 = 2 * cfg.d_model
    step_inputs = [
        _tensor_spec(
            STEP_INPUTS[0],
            (1, cfg.step_mel_frames, C.N_MELS),
            f"normalized log-mel frames {', '.join(mel_history_names(cfg))}, oldest first",
        ),
        _tensor_spec(STEP_INPUTS[1], (1, n - 1, d2), "ring buffer: the last N-1 context_frame outputs, oldest first"),
        _tensor_spec(STEP_INPUTS[2], (1, C.EMOTION_DIM), "z-normalized eGeMAPS features; zeros = neutral"),
        _tensor_spec(STEP_INPUTS[3], (1, C.N_BLENDSHAPES), "the previous frame's `blendshapes` output"),
    ]
    step_outputs = [
        _tensor_spec(
            STEP_OUTPUTS[0],
            (1, C.N_BLENDSHAPES),
            "blendshapes in [0, 1], already smoothed by the model (smoothing_alpha): use these as they are",
        ),
        _tensor_spec(STEP_OUTPUTS[1], (1, C.N_BLENDSHAPES), "unsmoothed blendshapes (use for the very first frame)"),
        _tensor_spec(STEP_OUTPUTS[2], (1, d2), "encoded newest frame: append to the ring buffer"),
    ]
    models = {
        "front_end": {
            "inputs": [_tensor_spec(FRONT_END_INPUTS[0], (1, C.N_FFT), "16 kHz PCM in [-1, 1]")],
            "outputs": [_tensor_spec(FRONT_END_OUTPUTS[0], (1, C.N_MELS), "normalized log-mel")],
        },
        "step": {"inputs": step_inputs, "outputs": step_outputs},
    }
    if any(f.role == "offline" for f in files):
        models["offline"] = offline_spec(cfg)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "platform": platform,
        "a2bs_version": version("a2bs"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # the checkpoint's name, not the build machine's path; the fingerprint identifies the weights
        "checkpoint": {"source": ckpt.name, "trained": ckpt.trained, "fingerprint": fingerprint(ckpt)},
        "blendshapes": list(ARKIT_BLENDSHAPES),
        "blendshape_groups": {group: list(names) for group, names in GROUPS.items()},
        "fps": cfg.fps,
        "sample_rate": C.SAMPLE_RATE,
        "timeline": {
            "frame_center_sample": "round(j * sample_rate / fps), halves up: (2*j*sample_rate + fps) // (2*fps)",
            "window": C.N_FFT,
            "window_start_sample": "center - n_fft / 2 (samples before the stream start are 0)",
            "lookahead_frames": cfg.lookahead_frames,
            "output_frame": "the step call for mel frame j produces output frame k = j - lookahead_frames",
            "latency_ms": round(1000 * cfg.lookahead_frames / cfg.fps + 1000 * C.N_FFT / 2 / C.SAMPLE_RATE, 1),
        },
        "context_frames": n,
        "mel": {
            "n_fft": C.N_FFT,
            "n_mels": C.N_MELS,
            "fmin": C.FMIN,
            "fmax": C.FMAX,
            "window": "periodic hann",
            "mel_scale": "slaney",
            "log": f"log(mel_power + {C.LOG_EPS})",
            "normalization": {"mean": mel_mean.tolist(), "std": mel_std.tolist()},
            "note": "the front-end model already applies all of this; these values are for reference",
        },
        "emotion": {
            "dim": C.EMOTION_DIM,
            "neutral": [0.0] * C.EMOTION_DIM,
            "features": "eGeMAPSv02 functionals over 20 s windows ending at t, t-0.3 s, t-0.6 s",
            "normalization": ckpt.emotion_stats.to_json(),
            "note": EMOTION_NOTE,
        },
        "smoothing_alpha": float(model.alpha.detach()),
        # the life layer the apps run over the model's frames (docs/LIFE.md): the natural preset
        "life": life_section(PRESETS["natural"]),
        # the face controls the apps start at (docs/CONTROLS.md): the defaults leave the frames as they are
        "controls": controls_section(FaceControls()),
        "initial_state": {
            "mel_frames": state["mel_frames"][0].tolist(),
            "context_frame": state["context"][0, 0].tolist(),
            "note": "fill mel history and every ring-buffer row with these (digital silence) before the first call",
        },
        "models": models,
        "default_variant": default_variant,
        "variants": sorted({f.variant for f in files if f.role == "step"}),
        "files": [
            {
                "path": f.path.as_posix(),
                "sha256": sha256(folder / f.path),
                "bytes": size_bytes(folder / f.path),
                "role": f.role,
                "variant": f.variant,
                "precision": f.precision,
            }
            for f in files
        ],
        "call_sequence": call_sequence(cfg),
        "validation": None,
    }


def offline_spec(cfg: ModelConfig) -> dict[str, Any]:
    """The offline model's inputs and outputs (core/deploy.py: DeployOffline): B mel frames per call."""
    b, d2, rows = C.OFFLINE_FRAMES, 2 * cfg.d_model, cfg.step_mel_frames - 1
    return {
        "inputs": [
            _tensor_spec(OFFLINE_INPUTS[0], (1, b, C.N_FFT), "PCM windows of mel frames j0 .. j0+B-1"),
            _tensor_spec(OFFLINE_INPUTS[1], (1, rows, C.N_MELS), "mel frames j0-H+1 .. j0-1 (the step's history)"),
            _tensor_spec(OFFLINE_INPUTS[2], (1, cfg.context_frames - 1, d2), "encoded frames before j0, oldest first"),
            _tensor_spec(OFFLINE_INPUTS[3], (1, C.EMOTION_DIM), "z-normalized eGeMAPS features; zeros = neutral"),
        ],
        "outputs": [
            _tensor_spec(OFFLINE_OUTPUTS[0], (1, b, C.N_BLENDSHAPES), "unsmoothed blendshapes of mel frames j0 .."),
            _tensor_spec(OFFLINE_OUTPUTS[1], (1, b, C.N_MELS), "the call's mel frames"),
            _tensor_spec(OFFLINE_OUTPUTS[2], (1, b, d2), "the call's encoded frames"),
            _tensor_spec(OFFLINE_OUTPUTS[3], (1,), "smallest softmax denominator (underflow check)"),
        ],
        "note": "for files on a desktop (a2bs infer); gives the step model's frames; apps use the step model",
    }


EMOTION_NOTE = (
    "The step model's `emotion` input is the normalized 264-vector: z = (raw - mean) / max(std, 0.001 * "
    "(|mean| + 1)) with normalization.mean/std, non-finite values -> 0, clipped to +-normalization.clip. "
    "`neutral` (all zeros) is the neutral expression, what the sample apps pass. To give the face another "
    "clip's expression (a style take), compute that clip's vector once, offline, and pass it on every step "
    "call: `a2bs infer X.wav --emotion-from STYLE.wav --backend ... --bundle ...` previews the result, and "
    "`EmotionStats.from_json(normalization).normalize(a2bs.core.emotion.file_emotion('STYLE.wav'))` "
    "computes the vector."
)


def call_sequence(config: ModelConfig) -> list[str]:
    """The on-device call sequence in words (manifest and bundle README)."""
    history = ", ".join("mel_j" if name == "j" else f"mel_{{{name}}}" for name in mel_history_names(config))
    return [
        "Keep a 16 kHz mono float PCM buffer. For mel frame j = 0, 1, 2, ... wait until sample center_j + 512 exists.",
        "mel_j = front_end(pcm[center_j - 512 : center_j + 512]) (zeros before the stream start).",
        f"mel_frames = [{history}] (initial_state.mel_frames before the start).",
        "outputs = step(mel_frames, context, emotion, previous);"
        " context starts as N-1 copies of initial_state.context_frame.",
        "context = context[1:] + [outputs.context_frame] (drop the oldest row, append the new one).",
        "If j - lookahead_frames >= 0, that output frame's blendshapes are outputs.blendshapes "
        "(for output frame 0 use outputs.blendshapes_raw); previous = that frame. Before output frame 0, previous "
        "is ignored: pass zeros.",
    ]


def build_bundle(
    platform: str,
    ckpt: Checkpoint,
    variants: list[str],
    out: Path,
    *,
    force: bool = False,
    progress: Progress = print,
    check: Callable[[Path], bool] | None = None,
    offline: bool = False,
) -> BundleResult:
    """Convert every variant (the first is the bundle's default), write manifest.json and README.md in a
    staging folder beside `out`, run
    `check` on it (validation) and only if that passes move it into place; a bundle that fails goes to
    `rejected_dir(out)` and `out` is left untouched. A lock keeps concurrent builds of `out` apart; an
    interruption (SIGINT/SIGTERM) or error removes the staging folder. `offline` adds the offline model of
    each float variant (android: `a2bs infer` runs it on files), checked to give the per-frame path's frames."""
    offline_for = offline_variants(platform, variants) if offline else []
    started = time.perf_counter()
    check_out_dir(out, force, validated=check is not None)
    default = variants[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    with OutputLock(out):
        tmp = staging_dir(out)
        try:
            progress("calibration: real speech features from the bundled clips")
            calibration = calibration_set(ckpt)
            convert = _converter(platform)
            files: list[ArtifactFile] = []
            for variant in variants:
                for artifact in convert(ckpt, variant, tmp, calibration=calibration, progress=progress):
                    if all(artifact.path != f.path for f in files):
                        files.append(artifact)
            for variant in offline_for:
                files.append(_convert_offline(ckpt, variant, tmp, calibration, progress))
            progress("manifest")
            manifest = build_manifest(platform, ckpt, files, tmp, default)
            rows = [_row(tmp, f) for f in files]
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
            for artifact in files:
                if artifact.role == "offline":
                    _require_per_frame_frames(tmp, artifact.variant, progress)
            (tmp / "README.md").write_text(bundle_readme(manifest, rows))
            mark_as_made(tmp)
            passed = check(tmp) if check is not None else True
            raise_if_interrupted()  # a signal whose exception a library swallowed still stops us here
            final = out if passed else rejected_dir(out)
            # again: a folder may have appeared meanwhile; an earlier rejected bundle is replaced, nothing else
            check_out_dir(final, force or not passed, fix="nothing was replaced; give another --out")
            replace_dir(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return BundleResult(final, manifest, rows, time.perf_counter() - started, passed)


def _convert_offline(
    ckpt: Checkpoint, variant: str, folder: Path, calibration: Any, progress: Progress
) -> ArtifactFile:
    from a2bs.convert.tflite import convert_tflite_offline

    return convert_tflite_offline(ckpt, variant, folder, calibration=calibration, progress=progress)


def offline_variants(platform: str, variants: list[str]) -> list[str]:
    """The variants that get an offline model with --offline: the float ones (A2BSError before any work when
    there is none, or for an iOS bundle)."""
    if platform != "android":
        raise A2BSError("--offline adds LiteRT offline models: it goes with android bundles")
    floats = [v for v in variants if v in OFFLINE_VARIANTS]
    if not floats:
        raise A2BSError(
            f"--offline needs a float variant ({' or '.join(OFFLINE_VARIANTS)}): add --quantize fp16 (or fp32)"
        )
    return floats


def _require_per_frame_frames(bundle: Path, variant: str, progress: Progress) -> None:
    """The offline model gives the per-frame path's frames on real speech, or the build fails."""
    progress(f"tflite offline {variant}: same frames as the step model, frame by frame, on real speech")
    worst = offline_difference(bundle, variant, load_audio(default_clip()))
    if not worst <= OFFLINE_ATOL:
        raise ConversionError(
            f"verify:offline {variant}",
            f"the offline model's frames differ from the step model's by {worst:.3g} (limit {OFFLINE_ATOL:g})",
        )


def _row(folder: Path, artifact: ArtifactFile) -> dict:
    """Table row: variant, file, size and the parity figure the converter measured before writing it
    (MAE of its output vs PyTorch on real-speech frames, core/parity.py)."""
    check = artifact.check
    return {
        "variant": artifact.variant,
        "role": artifact.role,
        "file": artifact.path.as_posix(),
        "bytes": size_bytes(folder / artifact.path),
        "parity_mae": None if check is None else check.mae,
        "runtime": "not measured" if check is None else check.runtime,
    }


def bundle_readme(manifest: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    platform = manifest["platform"]
    app = "ios_sample/" if platform == "ios" else "android_sample/"
    lines = [
        f"# a2bs {platform} bundle ({manifest['fps']} fps)",
        "",
        "Speech to the 52 ARKit blendshapes on device. Everything an app needs is in `manifest.json`;",
        "read it instead of hard-coding numbers.",
        "",
        "| variant | role | file | size | parity (MAE vs PyTorch) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        parity = f"{r['parity_mae']:.2e} ({r['runtime']})" if r["parity_mae"] is not None else r["runtime"]
        lines.append(f"| {r['variant']} | {r['role']} | `{r['file']}` | {r['bytes'] / 1e6:.2f} MB | {parity} |")
    lines += [
        "",
        f"Default variant: `{manifest['default_variant']}`. Latency from sound to face: "
        f"{manifest['timeline']['latency_ms']} ms plus compute (delay audio playback by that much).",
        "",
        "## Calling the models, frame by frame",
        "",
        *[f"{i + 1}. {step}" for i, step in enumerate(manifest["call_sequence"])],
        "",
        "Inputs and outputs (names, shapes, dtypes) are under `models` in the manifest; the blendshape",
        f"order is `blendshapes`. The sample app in `{app}` runs exactly this loop;",
        f"`a2bs-convert {platform} --force --install-into {app}` copies a bundle where it expects one.",
        "",
        "## Expression (the emotion input)",
        "",
        manifest["emotion"]["note"],
        "",
        "## Smoothing",
        "",
        "The step model smooths its output itself: `blendshapes` = a * raw + (1 - a) * `previous`, with",
        f"a = `smoothing_alpha` = {manifest['smoothing_alpha']:.3f} (learned; in the manifest for reference only).",
        "That is why `previous` is an input. Publish `blendshapes` as they are and do not smooth them again in",
        "the app: a second filter would only add lag and soften the motion.",
        "",
        "## The life layer (blinks, gaze, head motion, brow raises)",
        "",
        "The model leaves what audio cannot predict (when a blink or a saccade happens) still. `life` in the",
        f"manifest holds the parameters of the layer that adds it (algorithm version {manifest['life']['version']},",
        f"random numbers from {manifest['life']['rng']}): run it on each output frame k with the PCM window",
        "centred on k's time (the front end's window of mel frame k, made lookahead_frames calls earlier) and",
        "a seed. It changes only the eye* and brow* shapes and gives the head and eye rotations; docs/LIFE.md",
        "in a2bs is its specification.",
        "A manifest without `life` (bundles made before it) means the layer off.",
    ]
    if not manifest["checkpoint"]["trained"]:
        lines += ["", "**Warning: built from an UNTRAINED checkpoint** — the face will not follow the speech."]
    return "\n".join(lines) + "\n"
