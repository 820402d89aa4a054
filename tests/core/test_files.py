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
from a2bs.core.files import OutputLock, replace_dir, staging_dir, write_text_atomic

NAME_MAX = 255  # bytes in a file name (Linux, macOS)

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


def test_replace_dir_over_a_symlink_replaces_the_link_only(tmp_path: Path) -> None:
    """Issue 28 item 25: a symlinked `validation_plots` left a hidden `.validation_plots.XXXX` link in the
    bundle (rmtree refuses a link); the link is replaced, what it points to is untouched."""
    outside, bundle = tmp_path / "outside", tmp_path / "bundle"
    outside.mkdir()
    (outside / "keep.png").write_text("keep")
    bundle.mkdir()
    (bundle / "validation_plots").symlink_to(outside)
    staged = staging_dir(bundle / "validation_plots")  # what `a2bs validate` does with its plots
    (staged / "parity.png").write_text("new")
    replace_dir(staged, bundle / "validation_plots")
    assert os.listdir(bundle) == ["validation_plots"] and not (bundle / "validation_plots").is_symlink()
    assert os.listdir(bundle / "validation_plots") == ["parity.png"] and os.listdir(outside) == ["keep.png"]


@pytest.mark.parametrize("name", ["a" * 251 + ".csv", "é" * 125 + "a.csv", "b" * 246 + ".csv"])
def test_longest_legal_output_names_get_their_temp_files_and_locks(name: str, tmp_path: Path) -> None:
    """Issue 28 item 24: output names of 250-255 bytes were refused because the temp file, staging folder
    and lock beside them add ~10 characters; those names are cut and hashed to fit NAME_MAX instead."""
    assert len(os.fsencode(name)) <= NAME_MAX
    out = tmp_path / name
    with open_writer(out, fps=30, n_frames=1) as writer:  # a temp file and a lock beside the output
        writer.write(FRAME)
    write_text_atomic(tmp_path / ("t" + name[1:]), "x")
    folder = tmp_path / ("d" + name[1:])
    with OutputLock(folder):
        staged = staging_dir(folder)
        replace_dir(staged, folder)
    assert sorted(os.listdir(tmp_path)) == sorted([name, "t" + name[1:], "d" + name[1:]])  # nothing else left
    twin = tmp_path / (name[:-5] + "z.csv")
    assert OutputLock(out).path.name != OutputLock(twin).path.name  # cut names stay apart


def test_infer_writes_a_255_byte_output_name(tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys):
    """Issue 28 item 24, end to end: `a2bs infer -o NAME --plot NAME` with names of NAME_MAX bytes."""
    out, plot = tmp_path / ("o" * 251 + ".csv"), tmp_path / ("p" * 251 + ".png")
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        bundled_speech(),
        "-o",
        out,
        "--plot",
        plot,
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
    )
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == sorted([out.name, plot.name]) and out.stat().st_size > 0
