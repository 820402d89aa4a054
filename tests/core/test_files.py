"""Outputs (core/files.py): locks, the atomic folder swap, an output never equal to an input."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from audio_fixtures import bundled_speech
from entry_points import FRAME, one_error, run

from a2bs.cli import main as core_cli
from a2bs.core.animation_io import open_writer
from a2bs.core.errors import A2BSError, read_untrusted
from a2bs.core.files import OutputLock, replace_dir

# --- outputs: locks, atomic folder swap, input == output ------------------------------------------


def test_two_writers_to_one_output(tmp_path: Path) -> None:
    out = tmp_path / "a.csv"
    with open_writer(out, fps=30, n_frames=1) as first:
        with open(tmp_path / ".a.csv.lock", "w") as f, pytest.raises(BlockingIOError):  # as another process
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        first.write(FRAME)
    assert sorted(os.listdir(tmp_path)) == ["a.csv"]  # the lock is gone with the writer
    with OutputLock(out), OutputLock(out):  # re-entrant within one process
        pass
    assert sorted(os.listdir(tmp_path)) == ["a.csv"]


def test_lock_held_elsewhere_refuses_the_writer(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            tmp_path / ".a.csv.lock",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(A2BSError, match=r"a\.csv is being written by another a2bs process"):
            open_writer(tmp_path / "a.csv", fps=30, n_frames=1)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "a.csv").exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_replace_dir_swaps_in_one_step(tmp_path: Path) -> None:
    target, staged = tmp_path / "bundle", tmp_path / ".bundle.new"
    for folder, text in ((target, "old"), (staged, "new")):
        folder.mkdir()
        (folder / "f").write_text(text)
    replace_dir(staged, target)
    assert (target / "f").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["bundle"]


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
def test_output_equal_to_input_is_refused(
    link: str, tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys
) -> None:
    audio = tmp_path / "take.csv"  # audio is read by content: a WAV named .csv is a valid input
    shutil.copy(bundled_speech(), audio)
    output = {"same": audio, "symlink": tmp_path / "link.csv", "hardlink": tmp_path / "hard.csv"}[link]
    if link == "symlink":
        output.symlink_to(audio)
    elif link == "hardlink":
        os.link(audio, output)
    before = audio.read_bytes()
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        audio,
        "-o",
        output,
        "--force",
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
    )
    one_error(code, err, "is the input audio")
    assert audio.read_bytes() == before


def test_plot_onto_the_input_is_refused(tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys) -> None:
    audio = tmp_path / "take.png"
    shutil.copy(bundled_speech(), audio)
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        audio,
        "-o",
        tmp_path / "o.csv",
        "--plot",
        audio,
        "--force",
        "--checkpoint",
        checkpoint_dirs[30],
    )
    one_error(code, err, "--plot", "is the input audio")


def test_read_untrusted_refuses_what_is_not_a_small_regular_file(tmp_path: Path) -> None:
    """A FIFO (would block), a device (/dev/zero: endless), a folder and an oversized file are refused at
    once with one line naming the path; a regular file within the limit is read."""
    good = tmp_path / "list.txt"
    good.write_bytes(b"a.wav\n")
    assert read_untrusted(good, "list file", 100) == b"a.wav\n"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, problem in [
        (fifo, "not a regular file"),
        (Path("/dev/zero"), "not a regular file"),
        (tmp_path, "a folder"),
        (good, "larger than 3 bytes"),
        (tmp_path / ("x" * 300), "File name too long"),
        (tmp_path / "missing", "No such file"),
    ]:
        with pytest.raises(A2BSError, match=problem) as info:
            read_untrusted(path, "list file", 3 if path == good else 100)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
