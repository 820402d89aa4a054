"""A bundle's manifest.json, read as untrusted input: every value the runtime uses is checked (types,
ranges, files that stay inside the bundle) before anything reads a model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from a2bs.core.constants import EMOTION_DIM, N_BLENDSHAPES, N_FFT, N_MELS, SAMPLE_RATE, SUPPORTED_FPS
from a2bs.core.emotion import EmotionStats
from a2bs.core.errors import A2BSError, Fields, read_json

MANIFEST = "manifest.json"
# The LiteRT fp16 models of the bundled default checkpoints, shipped inside a2bs: `a2bs infer` runs them by
# default, without torch. Rebuilt by `make shipped-models` whenever a default checkpoint changes (a test
# checks their fingerprints against the checkpoints and their parity against PyTorch).
SHIPPED_DIR = Path(__file__).resolve().parent / "assets"


def shipped_bundle(fps: int) -> Path:
    return SHIPPED_DIR / f"default-{fps}fps"


ROLES = ("front_end", "step")
MAX_FILES = 64
_SHA256_CHARS = set("0123456789abcdef")


def load_manifest(bundle: Path) -> dict[str, Any]:
    """The manifest of an untrusted bundle, checked before anything reads a model: every value the
    runtime uses has the right type and a sane range, and every file it names (and every file inside
    an `.mlpackage`, through its own Manifest.json) stays inside the bundle: no `..`, no absolute
    path, no symlink leading out. One-line A2BSError naming the key otherwise. The one loader of
    bundles: `a2bs infer --backend`, `a2bs validate` and the converter all read bundles through it."""
    bundle = Path(bundle)
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
    timeline.int("lookahead_frames", 0, min(fps, context - 1))
    names = m.list("blendshapes", N_BLENDSHAPES, N_BLENDSHAPES)
    if not all(isinstance(n, str) and n for n in names):
        raise A2BSError(f"{path}: 'blendshapes' must be {N_BLENDSHAPES} names")
    m.number("smoothing_alpha", 0.0, 1.0)
    emotion = m.obj("emotion")
    emotion.numbers("neutral", EMOTION_DIM, -1e3, 1e3)
    try:
        EmotionStats.from_json(emotion.data.get("normalization"))
    except A2BSError as exc:
        raise A2BSError(f"{path}: 'emotion.normalization': {exc}") from None
    width = m.obj("initial_state").list("context_frame", 2, 4096)  # a ring-buffer row: 2 x d_model numbers
    models = m.obj("models")
    _tensors(models.obj("front_end"), 1, 1)
    _tensors(models.obj("step"), 4, 3)
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
    m.str("default_variant", choices=tuple(step_variants), max_len=64)
    checkpoint = m.obj("checkpoint")
    checkpoint.str("source", optional=True)
    checkpoint.bool("trained")
    if checkpoint.data.get("fingerprint") is not None:
        checkpoint.str("fingerprint", max_len=64)
    if m.data.get("validation") is not None:
        m.obj("validation")
    return m.data


def _tensors(model: Fields, n_inputs: int, n_outputs: int) -> None:
    """A model's input and output specs: a name and 1 to 4 dimensions each. Whether they match the model
    file is `a2bs validate`'s manifest check (a failing check, not a refused bundle)."""
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


def bundle_file(manifest: dict[str, Any], role: str, variant: str | None) -> dict[str, Any]:
    wanted = variant or manifest["default_variant"]
    for entry in manifest["files"]:
        if entry["role"] == role and (role == "front_end" or entry["variant"] == wanted):
            return entry
    available = sorted({f["variant"] for f in manifest["files"] if f["role"] == "step"})
    raise A2BSError(f"the bundle has no {role} model for variant {wanted!r} (it has: {', '.join(available)})")
