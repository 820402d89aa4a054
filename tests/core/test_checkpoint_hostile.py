"""Hostile checkpoints: the config is checked before any allocation; wrong weights are refused."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import safetensors.torch
from audio_fixtures import write_tone
from entry_points import one_error, run
from safetensors.torch import load_file, save_file

from a2bs.cli import main as core_cli
from a2bs.core.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint, read_header
from a2bs.core.errors import CheckpointError

# --- checkpoints: config checked before any allocation -----------------------------------------


def _checkpoint(checkpoint_dirs: dict[int, Path], tmp_path: Path) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(checkpoint_dirs[30], folder)
    return folder


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda m: m.update(d_model=16384, n_heads=8), "'model.d_model'"),
        (lambda m: m.update(d_model=10**12), "'model.d_model'"),
        (lambda m: m.update(d_model=256.5), "'model.d_model'"),
        (lambda m: m.update(d_model=-256), "'model.d_model'"),
        (lambda m: m.update(n_heads=0), "'model.n_heads'"),
        (lambda m: m.update(n_heads=7), "multiple of 'model.n_heads'"),
        (lambda m: m.update(context_frames=-1), "'model.context_frames'"),
        (lambda m: m.update(lookahead_frames=-100), "'model.lookahead_frames'"),
        (lambda m: m.update(lookahead_frames=10**6), "'model.lookahead_frames'"),
        (lambda m: m.update(fps="30"), "'model.fps'"),
        (lambda m: m.pop("d_model"), "'model.d_model' is missing"),
        (lambda m: m.update(encoder_hidden=512), "does not match its config"),  # in range, but not these weights
    ],
)
def test_checkpoint_config_checked_before_allocation(
    edit, key: str, checkpoint_dirs: dict[int, Path], tmp_path: Path
) -> None:
    folder = _checkpoint(checkpoint_dirs, tmp_path)
    config = json.loads((folder / CONFIG_FILE).read_text())
    edit(config["model"])
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    # The named key (not an allocator's error) proves the range or header check ran before any allocation;
    # `read_header` (what `a2bs info` reads, no weight and no torch) refuses the same.
    for read in (load_checkpoint, read_header):
        with pytest.raises(CheckpointError, match=re.escape(key)) as info:
            read(folder)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(model=[1]), "'model' must be a JSON object"),
        (lambda c: c.update(mel_stats={"mean": "x"}), "'mel_stats.mean'"),
        (lambda c: c.pop("mel_stats"), "'mel_stats' is missing"),
        (lambda c: c.update(emotion_stats=None), "'emotion_stats' must be a JSON object"),
        (lambda c: c.update(trained="yes"), "'trained'"),
        (lambda c: c.update(info=[]), "'info'"),
    ],
)
def test_checkpoint_config_wrong_types(edit, message: str, checkpoint_dirs: dict[int, Path], tmp_path: Path) -> None:
    folder = _checkpoint(checkpoint_dirs, tmp_path)
    config = json.loads((folder / CONFIG_FILE).read_text())
    edit(config)
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    for read in (load_checkpoint, read_header):
        with pytest.raises(CheckpointError, match=message):
            read(folder)


def test_int32_weights_are_refused(checkpoint_dirs: dict[int, Path], tmp_path: Path) -> None:
    folder = _checkpoint(checkpoint_dirs, tmp_path)
    weights = load_file(str(folder / WEIGHTS_FILE))
    weights["queries"] = weights["queries"].to(dtype=__import__("torch").int32)
    save_file(weights, str(folder / WEIGHTS_FILE))
    with pytest.raises(CheckpointError, match="floating point; queries is I32"):
        load_checkpoint(folder)


def test_huge_weights_blame_the_model_not_the_output(
    checkpoint_dirs: dict[int, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    folder = _checkpoint(checkpoint_dirs, tmp_path)
    weights = load_file(str(folder / WEIGHTS_FILE))
    save_file({k: v * 1e30 for k, v in weights.items()}, str(folder / WEIGHTS_FILE))
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        write_tone(tmp_path, "t.wav"),
        "-o",
        tmp_path / "o.csv",
        "--checkpoint",
        folder,
        "--no-progress",
    )
    line = one_error(code, err, "the model", "NaN or infinite", "weights")
    assert "cannot write" not in line and not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("emotion_stats", "key"),
    [
        ([1, 2, 3], "'emotion_stats' must be a JSON object"),
        ({"mean": "zeros", "std": [1.0] * 264}, "'emotion_stats.mean'"),
        ({"mean": [0.0] * 264, "std": ["1"] * 264}, "'emotion_stats.std'"),
        ({"mean": [0.0] * 264, "std": [1.0] * 264, "clip": "10"}, "'emotion_stats.clip'"),
        ({"mean": [0.0] * 264, "std": [1.0] * 264, "feature_set": 7}, "'emotion_stats.feature_set'"),
    ],
)
def test_wrong_emotion_stats_name_the_file_and_the_key(
    emotion_stats, key: str, checkpoint_dirs: dict[int, Path], tmp_path: Path
) -> None:
    folder = _checkpoint(checkpoint_dirs, tmp_path)
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["emotion_stats"] = emotion_stats
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=re.escape(key)) as info:
        load_checkpoint(folder)
    assert str(folder / CONFIG_FILE) in str(info.value)


def test_weights_larger_than_the_config_allows_are_refused_under_a_memory_limit(
    checkpoint_dirs: dict[int, Path], tmp_path: Path
) -> None:
    """An 8 GB model.safetensors (sparse) under a 6 GB address-space limit: one error line on its size,
    not a MemoryError from safetensors mapping it."""
    folder = _checkpoint(checkpoint_dirs, tmp_path)
    os.truncate(folder / WEIGHTS_FILE, 8 * 2**30)
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))\n"
        "from a2bs.cli.main import main\n"
        f"sys.argv = ['a2bs', 'infer', {str(write_tone(tmp_path, 't.wav'))!r}, '-o', {str(tmp_path / 'o.csv')!r},"
        f" '--checkpoint', {str(folder)!r}, '--no-progress']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: ") and WEIGHTS_FILE in lines[0] and "MB" in lines[0]
    assert not (tmp_path / "o.csv").exists()


def test_running_out_of_memory_reading_weights_is_one_error_line(
    checkpoint_dirs: dict[int, Path], tmp_path: Path, monkeypatch
) -> None:
    """Weights of a plausible size that still do not fit in memory (a tight container)."""
    import a2bs.core.checkpoint as checkpoint_module

    def no_memory(*args, **kwargs):
        raise MemoryError("Cannot allocate memory (os error 12)")

    folder = _checkpoint(checkpoint_dirs, tmp_path)
    # the header (read without torch), then the weights (read by safetensors' torch reader)
    for module, name in ((checkpoint_module, "safe_open"), (safetensors.torch, "load_file")):
        with monkeypatch.context() as patch:
            patch.setattr(module, name, no_memory)
            with pytest.raises(CheckpointError, match=r"not enough memory to read .*model\.safetensors"):
                load_checkpoint(folder)
