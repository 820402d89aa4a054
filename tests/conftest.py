"""Shared fixtures, built once per test session.

Two families:
- `trained30` / `trained60` and the `trained_*_bundle`s: the bundled TRAINED default checkpoints (their
  outputs move), the evidence in every parity test, the CI gate and the negative controls.
- `ckpt30` / `ckpt60` and `android_bundle` / `ios_bundle`: deterministic UNTRAINED (seed 0) models, for
  mechanics only (file formats, interfaces, chunking): their outputs barely move, so a model that ignores
  its input would match them closely; never use them as evidence that a variant is accurate.

Two tiers: `make test` runs everything; `make test-fast` (A2BS_TEST_TIER=fast, `-m "not slow"`) skips what
converts models, builds the sample engines or keeps a CPU busy, and gives the untrained mechanics models a
small architecture (`TINY`: same timeline, narrower layers), so everyday work gets an answer in minutes.
A test is slow when it is marked so, lives in a folder of `SLOW_FOLDERS`, or uses a fixture of
`SLOW_FIXTURES`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from a2bs.core.architecture import ModelConfig
from a2bs.core.checkpoint import (
    CONFIG_FILE,
    Checkpoint,
    default_checkpoint_dir,
    fresh_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

FAST = os.environ.get("A2BS_TEST_TIER") == "fast"
TINY = {"d_model": 32, "n_heads": 4, "encoder_hidden": 48, "decoder_hidden": 16, "emotion_tokens": 2}
SLOW_FOLDERS = ("convert", "mobile_validation", "samples")
SLOW_FIXTURES = {
    "trained_android_bundle",
    "trained_ios_bundle",
    "android_bundle",
    "ios_bundle",
    "android_bundle60",
    "ios_bundle60",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tier (see the module docstring)."""
    root = Path(__file__).parent
    for item in items:
        folder = Path(item.path).relative_to(root).parts[0]
        if folder in SLOW_FOLDERS or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def mechanics_config(fps: int) -> ModelConfig:
    """The architecture of the untrained mechanics models: the shipped one, or `TINY` in the fast tier."""
    config = ModelConfig.for_fps(fps)
    return replace(config, **TINY) if FAST else config


def load_trained(fps: int) -> Checkpoint:
    """The bundled trained default for `fps`, loaded from its folder (never the untrained fallback)."""
    folder = default_checkpoint_dir(fps)
    assert (folder / CONFIG_FILE).is_file(), f"the trained default checkpoint is missing: {folder}"
    ckpt = load_checkpoint(folder)
    assert ckpt.trained, f"{folder} is not marked trained"
    return ckpt


@pytest.fixture(scope="session")
def trained30() -> Checkpoint:
    return load_trained(30)


@pytest.fixture(scope="session")
def trained60() -> Checkpoint:
    return load_trained(60)


def _build_bundle(out: Path, platform: str, ckpt: Checkpoint, variants: list[str]) -> Path:
    from a2bs.convert.bundle import build_bundle

    build_bundle(platform, ckpt, variants, out, progress=lambda _: None)
    return out


@pytest.fixture(scope="session")
def trained_android_bundle(trained30: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Android bundle (dynamic_int8 default + fp32) of the trained 30 fps default; treat as read-only."""
    return _build_bundle(tmp_path_factory.mktemp("trained") / "android", "android", trained30, ["dynamic_int8", "fp32"])


@pytest.fixture(scope="session")
def trained_ios_bundle(trained30: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iOS bundle (fp16 default + palettize4) of the trained 30 fps default; treat as read-only."""
    return _build_bundle(tmp_path_factory.mktemp("trained") / "ios", "ios", trained30, ["fp16", "palettize4"])


@pytest.fixture(scope="session")
def checkpoint_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """{fps: folder} of deterministic UNTRAINED (seed 0) checkpoints in the real on-disk format (mechanics)."""
    root = tmp_path_factory.mktemp("checkpoints")
    return {
        fps: save_checkpoint(fresh_checkpoint(fps, config=mechanics_config(fps)), root / f"fresh-{fps}fps")
        for fps in (30, 60)
    }


@pytest.fixture(scope="session")
def ckpt30(checkpoint_dirs: dict[int, Path]) -> Checkpoint:
    return load_checkpoint(checkpoint_dirs[30])


@pytest.fixture(scope="session")
def ckpt60(checkpoint_dirs: dict[int, Path]) -> Checkpoint:
    return load_checkpoint(checkpoint_dirs[60])


@pytest.fixture(scope="session")
def android_bundle(ckpt30: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Android bundle (dynamic_int8 default + fp32) of the seed-0 30 fps checkpoint; treat as read-only."""
    return _build_bundle(tmp_path_factory.mktemp("bundles") / "android", "android", ckpt30, ["dynamic_int8", "fp32"])


@pytest.fixture(scope="session")
def ios_bundle(ckpt30: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An iOS bundle (fp16) of the seed-0 30 fps checkpoint; treat as read-only."""
    return _build_bundle(tmp_path_factory.mktemp("bundles") / "ios", "ios", ckpt30, ["fp16"])


@pytest.fixture(scope="session")
def android_bundle60(ckpt60: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Android bundle (dynamic_int8) of the seed-0 60 fps checkpoint: the 5-frame mel history; read-only."""
    return _build_bundle(tmp_path_factory.mktemp("bundles60") / "android", "android", ckpt60, ["dynamic_int8"])


@pytest.fixture(scope="session")
def ios_bundle60(ckpt60: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An iOS bundle (fp16) of the seed-0 60 fps checkpoint: the 5-frame mel history; read-only."""
    return _build_bundle(tmp_path_factory.mktemp("bundles60") / "ios", "ios", ckpt60, ["fp16"])
