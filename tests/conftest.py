"""Shared fixtures, built once per test session.

Two families:
- `trained30` / `trained60` and the `trained_*_bundle`s: the bundled TRAINED default checkpoints (their
  outputs move), the evidence in every parity test, the CI gate and the negative controls.
- `ckpt30` / `ckpt60` and `android_bundle` / `ios_bundle`: deterministic UNTRAINED (seed 0) models, for
  mechanics only (file formats, interfaces, chunking): their outputs barely move, so a model that ignores
  its input would match them closely; never use them as evidence that a variant is accurate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from a2bs.core.checkpoint import (
    CONFIG_FILE,
    Checkpoint,
    default_checkpoint_dir,
    fresh_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


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
    return {fps: save_checkpoint(fresh_checkpoint(fps), root / f"fresh-{fps}fps") for fps in (30, 60)}


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
