"""Shared fixtures: deterministic checkpoints saved once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from a2bs.core.checkpoint import Checkpoint, fresh_checkpoint, load_checkpoint, save_checkpoint


@pytest.fixture(scope="session")
def checkpoint_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """{fps: folder} of deterministic (seed 0) checkpoints, saved in the real on-disk format."""
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
    from a2bs.convert.bundle import build_bundle

    out = tmp_path_factory.mktemp("bundles") / "android"
    build_bundle("android", ckpt30, ["dynamic_int8", "fp32"], out, progress=lambda _: None)
    return out


@pytest.fixture(scope="session")
def ios_bundle(ckpt30: Checkpoint, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An iOS bundle (fp16) of the seed-0 30 fps checkpoint; treat as read-only."""
    from a2bs.convert.bundle import build_bundle

    out = tmp_path_factory.mktemp("bundles") / "ios"
    build_bundle("ios", ckpt30, ["fp16"], out, progress=lambda _: None)
    return out
