"""Checkpoints: safetensors + JSON round trip, no pickle, clear errors for bad files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from a2bs.core.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Checkpoint,
    default_checkpoint_dir,
    fingerprint,
    load_checkpoint,
    load_default,
    save_checkpoint,
)
from a2bs.core.errors import CheckpointError


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(src, dst)
    return dst


def test_round_trip_is_exact(ckpt30: Checkpoint, tmp_path: Path) -> None:
    path = save_checkpoint(ckpt30, tmp_path / "copy")
    loaded = load_checkpoint(path)
    assert loaded.model.config == ckpt30.model.config
    for (name, a), (_, b) in zip(ckpt30.model.state_dict().items(), loaded.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert (loaded.emotion_stats.mean == ckpt30.emotion_stats.mean).all()
    # either file of the folder is accepted too
    assert load_checkpoint(path / CONFIG_FILE).fps == 30
    assert load_checkpoint(path / WEIGHTS_FILE).fps == 30


def test_files_are_plain_safetensors_and_json(checkpoint_dirs: dict[int, Path]) -> None:
    folder = checkpoint_dirs[60]
    config = json.loads((folder / CONFIG_FILE).read_text())
    assert config["format"] == "a2bs-checkpoint" and config["model"]["fps"] == 60
    assert len(config["mel_stats"]["mean"]) == 80 and len(config["emotion_stats"]["mean"]) == 264
    weights = load_file(str(folder / WEIGHTS_FILE))
    assert "queries" in weights and weights["queries"].shape == (52, config["model"]["d_model"])
    assert not any(k.startswith("front_end.") for k in weights)  # fixed DFT/mel matrices are rebuilt
    assert (folder / WEIGHTS_FILE).read_bytes()[:2] != b"\x80\x04"  # not a pickle


def test_refuses_to_overwrite(ckpt30: Checkpoint, tmp_path: Path) -> None:
    path = save_checkpoint(ckpt30, tmp_path / "c")
    with pytest.raises(CheckpointError, match="--force"):
        save_checkpoint(ckpt30, path)
    save_checkpoint(ckpt30, path, force=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: shutil.rmtree(d), "not found"),
        (lambda d: (d / WEIGHTS_FILE).unlink(), "no model.safetensors"),
        (lambda d: (d / WEIGHTS_FILE).write_bytes(b"\x00garbage" * 10), "corrupt"),
        (lambda d: (d / WEIGHTS_FILE).write_bytes((d / WEIGHTS_FILE).read_bytes()[:1000]), "corrupt"),
        (lambda d: (d / CONFIG_FILE).write_text("{not json"), "not valid JSON"),
        (lambda d: (d / CONFIG_FILE).write_text('{"format": "other"}'), "not an a2bs checkpoint"),
    ],
)
def test_damaged_checkpoints(checkpoint_dirs: dict[int, Path], tmp_path: Path, damage, message: str) -> None:
    folder = _copy(checkpoint_dirs[30], tmp_path)
    damage(folder)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(folder)


def _edit_config(folder: Path, edit) -> None:
    config = json.loads((folder / CONFIG_FILE).read_text())
    edit(config)
    (folder / CONFIG_FILE).write_text(json.dumps(config))


def test_weights_that_do_not_match_the_config(checkpoint_dirs: dict[int, Path], tmp_path: Path) -> None:
    folder = _copy(checkpoint_dirs[30], tmp_path)
    _edit_config(folder, lambda c: c["model"].update(fps=60, context_frames=512, lookahead_frames=4))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(folder)


def test_bad_statistics_and_fields(checkpoint_dirs: dict[int, Path], tmp_path: Path) -> None:
    folder = _copy(checkpoint_dirs[30], tmp_path)
    _edit_config(folder, lambda c: c["mel_stats"].update(std=[0.0] * 80))
    with pytest.raises(CheckpointError, match="std"):
        load_checkpoint(folder)
    _edit_config(folder, lambda c: c["model"].update(surprise=1))
    with pytest.raises(CheckpointError, match="unknown model fields"):
        load_checkpoint(folder)


def test_nan_weights_are_rejected(checkpoint_dirs: dict[int, Path], tmp_path: Path) -> None:
    folder = _copy(checkpoint_dirs[30], tmp_path)
    weights = load_file(str(folder / WEIGHTS_FILE))
    weights["queries"][0, 0] = float("nan")
    save_file(weights, str(folder / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(folder)


@pytest.mark.parametrize("fps", [30, 60])
def test_trained_default_checkpoint_is_bundled(fps: int) -> None:
    """The shipped defaults are on disk and trained: loading must not fall back to an untrained model."""
    folder = default_checkpoint_dir(fps)
    assert (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file(), f"missing: {folder}"
    ckpt = load_default(fps)
    assert ckpt.trained and ckpt.fps == fps and Path(ckpt.source).resolve() == folder.resolve()
    assert fingerprint(ckpt) == fingerprint(load_checkpoint(folder))
    with pytest.raises(CheckpointError, match="fps"):
        load_default(25)
