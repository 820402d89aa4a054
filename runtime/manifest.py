"""A bundle's manifest.json, read as untrusted input: every value the runtime uses is checked (types,
ranges, files that stay inside the bundle) before anything reads a model."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from a2bs.core.blendshapes import ARKIT_BLENDSHAPES
from a2bs.core.constants import (
    CONTEXT_FRAMES,
    DETAIL_FRAMES,
    DETAIL_SPACING,
    EMOTION_DIM,
    MODEL_SIZE_TARGET_MB,
    N_BLENDSHAPES,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    SUPPORTED_FPS,
)
from a2bs.core.controls import FaceControls, controls_from_manifest
from a2bs.core.emotion import EmotionStats
from a2bs.core.errors import A2BSError, Fields, one_line, read_json
from a2bs.core.files import sha256, size_bytes
from a2bs.core.life import LifeParams, params_from_manifest

MANIFEST = "manifest.json"
# The LiteRT fp16 models of the bundled default checkpoints, shipped inside a2bs: `a2bs infer` runs them by
# default, without torch. Rebuilt by `make shipped-models` whenever a default checkpoint changes (a test
# checks their fingerprints against the checkpoints and their parity against PyTorch).
SHIPPED_DIR = Path(__file__).resolve().parent / "assets"


def shipped_bundle(fps: int) -> Path:
    return SHIPPED_DIR / f"default-{fps}fps"


ROLES = ("front_end", "step", "offline")
MAX_FILES = 64
MAX_MODEL_BYTES = MODEL_SIZE_TARGET_MB * 1_000_000  # the size gate of `a2bs validate`: nothing larger is hashed
_SHA256_CHARS = set("0123456789abcdef")


def load_manifest(bundle: Path) -> dict[str, Any]:
    """The manifest of an untrusted bundle, checked before anything reads a model: every value the
    runtime uses has the right type and a sane range, and every file it names (and every file inside
    an `.mlpackage`, through its own Manifest.json) stays inside the bundle: no `..`, no absolute
    path, no symlink leading out. One-line A2BSError naming the key otherwise. The one loader of
    bundles: `a2bs infer --backend`, `a2bs validate` and the converter all read bundles through it."""
    try:
        return _load_manifest(Path(bundle))
    except (OSError, RuntimeError) as exc:  # a name too long, no permission, a symlink loop (pathlib: RuntimeError)
        where = getattr(exc, "filename", None) or bundle
        raise A2BSError(f"cannot read bundle {where}: {getattr(exc, 'strerror', None) or one_line(exc)}") from None


def _load_manifest(bundle: Path) -> dict[str, Any]:
    path = bundle / MANIFEST
    if not bundle.is_dir() or not path.is_file():
        raise A2BSError(f"{bundle} is not an a2bs bundle: no {MANIFEST} (build one with a2bs-convert)")
    root = bundle.resolve()
    for name in (MANIFEST, "README.md", "report.json", "report.html"):
        _inside(root, bundle / name, name)  # a symlinked README would have validate copy an outside file in
    m = Fields(read_json(path, "a2bs bundle manifest"), str(path))
    if m.data.get("format") != "a2bs-bundle":
        raise A2BSError(f"{path} is not an a2bs bundle manifest ('format' is not \"a2bs-bundle\")")
    m.int("format_version", 1, 1)
    m.str("platform", choices=("ios", "android"))
    fps = m.int("fps", min(SUPPORTED_FPS), max(SUPPORTED_FPS))
    if fps not in SUPPORTED_FPS:
        raise A2BSError(f"{path}: 'fps' must be one of {', '.join(map(str, SUPPORTED_FPS))}, got {fps}")
    m.int("sample_rate", SAMPLE_RATE, SAMPLE_RATE)
    context = m.int("context_frames", 8, 2048)
    timeline = m.obj("timeline")
    timeline.int("window", N_FFT, N_FFT)
    lookahead = timeline.int("lookahead_frames", 0, min(fps, context - 1))
    latency = timeline.number("latency_ms", 0.0, 10_000.0)
    expected_latency = round(1000 * lookahead / fps + 1000 * N_FFT / 2 / SAMPLE_RATE, 1)
    if abs(latency - expected_latency) > 0.051:  # the apps delay playback by it
        raise A2BSError(
            f"{path}: 'timeline.latency_ms' must be {expected_latency} ({lookahead} frames of look-ahead at "
            f"{fps} fps plus half a window), got {latency:g}"
        )
    _blendshapes(m)
    m.number("smoothing_alpha", 0.0, 1.0)
    emotion = m.obj("emotion")
    emotion.numbers("neutral", EMOTION_DIM, -1e3, 1e3)
    EmotionStats.from_json(emotion.obj("normalization").data, str(path), "emotion.normalization", A2BSError)
    width = m.obj("initial_state").list("context_frame", 2, 4096)  # a ring-buffer row: 2 x d_model numbers
    models = m.obj("models")
    _tensors(models.obj("front_end"), 1, 1)
    _tensors(models.obj("step"), 4, 3)
    if "offline" in models.data:  # bundles made with `a2bs-convert android --offline` (older ones have none)
        _tensors(models.obj("offline"), 4, 4)
    initial = m.obj("initial_state")
    mel_frames = initial.list("mel_frames", 3, 9)  # the mel history: 3 at 30 fps, 5 at 60 fps
    for i, row in enumerate(mel_frames):
        Fields({str(i): row}, str(path), A2BSError, "initial_state.mel_frames.").numbers(str(i), N_MELS, -1e3, 1e3)
    history_shape = models.data["step"]["inputs"][0]["shape"]
    if history_shape != [1, len(mel_frames), N_MELS]:  # the apps size their mel ring from both
        raise A2BSError(
            f"{path}: 'initial_state.mel_frames' has {len(mel_frames)} rows but the step's first "
            f"input has shape {history_shape}: rebuild the bundle with a2bs-convert"
        )
    _fps_fits_the_models(path, fps, context, len(mel_frames), models.data["step"]["inputs"][1]["shape"])
    initial.numbers("context_frame", len(width), -1e6, 1e6)
    files = m.list("files", 2, MAX_FILES)
    entries = [Fields(e, str(path), A2BSError, f"files[{i}].") for i, e in enumerate(files)]
    for entry in entries:
        rel = entry.str("path", max_len=255)
        check_relative(path, entry.prefix + "path", rel)
        _inside(root, bundle / rel, rel, walk=True)
        digest = entry.str("sha256", max_len=64)
        if len(digest) != 64 or not set(digest) <= _SHA256_CHARS:
            raise A2BSError(f"{path}: '{entry.prefix}sha256' must be 64 lowercase hex digits")
        entry.int("bytes", 0, 1 << 40)
        entry.str("role", choices=ROLES)
        entry.str("variant", max_len=64)
    step_variants = [e.data["variant"] for e in entries if e.data["role"] == "step"]
    if not step_variants or sum(e.data["role"] == "front_end" for e in entries) != 1:
        raise A2BSError(f"{path}: 'files' must list one front_end model and at least one step model")
    if len(set(step_variants)) != len(step_variants):
        raise A2BSError(f"{path}: 'files' lists two step models of one variant")
    offline_variants = [e.data["variant"] for e in entries if e.data["role"] == "offline"]
    if len(set(offline_variants)) != len(offline_variants) or not set(offline_variants) <= set(step_variants):
        raise A2BSError(f"{path}: 'files' must list at most one offline model per variant, each with its step model")
    if offline_variants and "offline" not in models.data:
        raise A2BSError(f"{path}: 'files' lists an offline model but 'models' does not describe it")
    default = m.str("default_variant", choices=tuple(step_variants), max_len=64)
    variants = m.list("variants", 1, MAX_FILES)  # the apps' variant picker (a name without a step file is not offered)
    if not all(isinstance(v, str) and v for v in variants) or len(set(variants)) != len(variants):
        raise A2BSError(f"{path}: 'variants' must be a list of different variant names")
    if default not in variants:
        raise A2BSError(f"{path}: 'variants' must include the default variant {default!r}")
    checkpoint = m.obj("checkpoint")
    checkpoint.str("source", optional=True)
    checkpoint.bool("trained")
    if checkpoint.data.get("fingerprint") is not None:
        checkpoint.str("fingerprint", max_len=64)
    if m.data.get("validation") is not None:
        m.obj("validation")
    if "life" in m.data:  # bundles made before the life layer have none: the apps run it off
        params_from_manifest(m.data["life"], str(path))
    if "controls" in m.data:  # bundles made before the face controls have none: the apps use the defaults
        controls_from_manifest(m.data["controls"], str(path))
    return m.data


def life_params(manifest: dict[str, Any]) -> LifeParams | None:
    """The life layer's parameters of a manifest `load_manifest` checked; None (the layer off) when it has
    no `life` section, as in bundles made before the layer existed."""
    section = manifest.get("life")
    return None if section is None else params_from_manifest(section, MANIFEST)


def face_controls(manifest: dict[str, Any]) -> FaceControls:
    """The face controls of a manifest `load_manifest` checked; the defaults (the model's curves as they are)
    when it has no `controls` section, as in bundles made before the controls existed."""
    section = manifest.get("controls")
    return FaceControls() if section is None else controls_from_manifest(section, MANIFEST)


def _blendshapes(m: Fields) -> None:
    """The 52 names in the models' output order (column i of every output is ARKIT_BLENDSHAPES[i]), and
    groups that put each of them in exactly one group (the sample apps draw their bars from both)."""
    names = m.list("blendshapes", N_BLENDSHAPES, N_BLENDSHAPES)
    if names != list(ARKIT_BLENDSHAPES):
        wrong = next(i for i, n in enumerate(names) if n != ARKIT_BLENDSHAPES[i])
        raise A2BSError(
            f"{m.where}: 'blendshapes' must be the {N_BLENDSHAPES} ARKit names in the models' output order; "
            f"item {wrong} is {repr(names[wrong])[:40]}, the models' output {wrong} is {ARKIT_BLENDSHAPES[wrong]!r}"
        )
    groups = m.obj("blendshape_groups")
    if not 1 <= len(groups.data) <= N_BLENDSHAPES:
        raise A2BSError(f"{m.where}: 'blendshape_groups' must hold 1 to {N_BLENDSHAPES} groups")
    grouped: list[str] = []
    for group in groups.data:
        if not group or len(group) > 64:
            raise A2BSError(f"{m.where}: 'blendshape_groups' has a group name of {len(group)} characters")
        grouped += groups.list(group, 0, N_BLENDSHAPES)
    if not all(isinstance(n, str) for n in grouped) or sorted(grouped) != sorted(names):
        raise A2BSError(f"{m.where}: 'blendshape_groups' must put each of the {N_BLENDSHAPES} blendshapes in one group")


def _fps_fits_the_models(path: Path, fps: int, context: int, mel_rows: int, context_shape: list[int]) -> None:
    """`fps` agrees with what the models take: the window of encoded frames (context_frames; the step's
    ring-buffer input holds context_frames - 1 of them) and the mel history rows are those of an `fps`
    model (core/constants.py). The models themselves are compared with these shapes by
    `bundle_inference.io_mismatch`, so a manifest whose fps was edited (or repeated) is refused."""
    rows = (DETAIL_FRAMES - 1) * DETAIL_SPACING[fps] + 1
    if context != CONTEXT_FRAMES[fps] or mel_rows != rows or context_shape[:2] != [1, context - 1]:
        raise A2BSError(
            f"{path}: 'fps' {fps} does not fit the models: a {fps} fps model has {CONTEXT_FRAMES[fps]} context "
            f"frames and {rows} mel rows, these have {context} ('context_frames', step input {context_shape}) "
            f"and {mel_rows}: rebuild the bundle with a2bs-convert"
        )


def _tensors(model: Fields, n_inputs: int, n_outputs: int) -> None:
    """A model's input and output specs: a name and 1 to 4 dimensions each. Whether they match the model
    file is `bundle_inference.io_mismatch` (a failing check in `a2bs validate`, a refused bundle in the runtimes)."""
    for side, count in (("inputs", n_inputs), ("outputs", n_outputs)):
        specs = model.list(side, count, count)
        for i in range(count):
            spec = Fields(specs[i], model.where, A2BSError, f"{model.prefix}{side}[{i}].")
            spec.str("name", max_len=128)
            shape = spec.list("shape", 1, 4)
            if not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 100_000 for d in shape):
                raise A2BSError(f"{model.where}: '{spec.prefix}shape' must hold sizes in [1, 100000]")


def check_relative(where: Path | str, key: str, rel: str, inside: str = "the bundle") -> None:
    """A plain relative path: no absolute path, no `..`, no backslashes or NUL bytes."""
    parts = rel.split("/")
    if rel.startswith("/") or "\\" in rel or "\0" in rel or ".." in parts or rel in (".", ""):
        raise A2BSError(f"{where}: '{key}' must be a relative path inside {inside} without '..', got {rel!r}")


def _inside(root: Path, path: Path, name: str, walk: bool = False) -> None:
    """`path` (existing or not) and, with `walk`, everything under it, resolve inside `root` (symlinks included)."""
    todo = [path]  # a missing file too: its parent folders may be symlinks leading out
    if walk and path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            todo += [Path(folder) / n for n in dirs + files]
    for item in todo:
        if not item.resolve().is_relative_to(root):
            raise A2BSError(f"{name!r} in bundle {root} leads outside it (to {item.resolve()}): refusing to read it")
    if walk and path.suffix == ".mlpackage" and path.is_dir():
        _check_mlpackage(root, path, name)


def _check_mlpackage(root: Path, package: Path, name: str) -> None:
    """An `.mlpackage`'s own Manifest.json names its items relative to Data/: they must stay inside it."""
    manifest = package / "Manifest.json"
    if not manifest.is_file():
        raise A2BSError(f"{package}: not a Core ML package (no Manifest.json)")
    items = Fields(read_json(manifest, "Core ML package manifest"), str(manifest)).obj("itemInfoEntries")
    for key, item in items.data.items():
        rel = Fields(item, str(manifest), A2BSError, f"itemInfoEntries.{key}.").str("path", max_len=255)
        check_relative(manifest, f"itemInfoEntries.{key}.path", rel)
        if not (package / "Data" / rel).resolve().is_relative_to(package.resolve()):
            raise A2BSError(f"{manifest}: item {rel!r} leads outside {name}: refusing to read it")


@dataclass
class FileCheck:
    """What `verify_file` found: `problem` is "" for an intact file; `bytes` when its size could be read."""

    problem: str
    bytes: int | None = None
    sha256: str | None = None


def verify_file(bundle: Path, entry: dict[str, Any]) -> FileCheck:
    """One model file of a bundle against its manifest entry: there, of its kind (an `.mlpackage` is a
    folder, anything else a regular file: never a FIFO or a device), of the manifest's size and at most
    MAX_MODEL_BYTES, all from its size on disk before a byte is hashed (a 30 GB file costs a stat, not
    minutes), then of the manifest's sha256. The one integrity check of a bundle: `a2bs validate`
    reports it, and the runtimes refuse a model file that fails it."""
    rel, want = entry["path"], entry["bytes"]
    path = Path(bundle) / rel
    folder = rel.endswith(".mlpackage")
    try:
        if not os.path.lexists(path):
            return FileCheck(f"{rel} is missing from the bundle")
        mode = path.stat().st_mode
        if not (stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)):
            return FileCheck(f"{rel} is not a {'folder (a Core ML package)' if folder else 'regular file'}")
        odd = next((p for p in path.rglob("*") if not (p.is_dir() or p.is_file())), None) if folder else None
        if odd is not None:  # a FIFO inside a package would block the Core ML reader
            return FileCheck(f"{rel}: {odd.relative_to(path)} is not a regular file")
        size = size_bytes(path)
        if size != want:
            return FileCheck(f"{rel} is {size:,} bytes, the manifest says {want:,} (not hashed)", size)
        if size > MAX_MODEL_BYTES:
            limit = f"{MAX_MODEL_BYTES / 1e6:g} MB"
            return FileCheck(f"{rel} is {size / 1e6:.1f} MB, over the {limit} limit for a model (not hashed)", size)
        digest = sha256(path)
    except OSError as exc:
        return FileCheck(f"cannot read {rel}: {exc.strerror or exc}")
    if digest != entry["sha256"]:
        return FileCheck(f"{rel}: sha256 {digest[:12]}... != manifest {entry['sha256'][:12]}...", size, digest)
    return FileCheck("", size, digest)


def bundle_file(manifest: dict[str, Any], role: str, variant: str | None) -> dict[str, Any]:
    wanted = variant or manifest["default_variant"]
    for entry in manifest["files"]:
        if entry["role"] == role and (role == "front_end" or entry["variant"] == wanted):
            return entry
    available = sorted({f["variant"] for f in manifest["files"] if f["role"] == "step"})
    raise A2BSError(f"the bundle has no {role} model for variant {wanted!r} (it has: {', '.join(available)})")
