"""Hostile audio and options for `a2bs infer`: one error line that blames the right thing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import bundled_speech, write_tone
from entry_points import one_error, run

from a2bs.cli import main as core_cli
from a2bs.core.errors import A2BSError

# --- audio and options ----------------------------------------------------------------------------


def test_huge_samples_blame_the_audio(tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys) -> None:
    audio = tmp_path / "loud.wav"
    sf.write(audio, np.full(16000, 1e19, np.float32), 16000, subtype="FLOAT")
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        audio,
        "-o",
        tmp_path / "o.csv",
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
    )
    line = one_error(code, err, "loud.wav", "1e+19", "[-1, 1]")
    assert "o.csv" not in line


def test_negative_fps_names_fps(tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = run(
        monkeypatch, capsys, core_cli.main, "a2bs", "infer", bundled_speech(), "-o", tmp_path / "o.csv", "--fps", "-1"
    )
    line = one_error(code, err, "--fps -1")
    assert "--stride" not in line


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write into: chmod for a normal user; /proc for root (root ignores modes)."""
    if os.geteuid() == 0:
        return Path("/proc")
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def test_plot_into_unwritable_folder(tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys) -> None:
    folder = _unwritable_folder(tmp_path)
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        write_tone(tmp_path, "t.wav"),
        "-o",
        tmp_path / "o.csv",
        "--plot",
        folder / "p.png",
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
    )
    one_error(code, err, "--plot", "p.png")


def test_default_output_in_unwritable_current_folder(
    tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys
) -> None:
    monkeypatch.chdir(_unwritable_folder(tmp_path))
    code, _, err = run(
        monkeypatch,
        capsys,
        core_cli.main,
        "a2bs",
        "infer",
        bundled_speech(),
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
    )
    one_error(code, err, "-o")


def test_npy_on_a_full_disk_is_an_error_not_sigbus(tmp_path: Path) -> None:
    """A file-size limit stands in for a full disk: the .npy writer reports it and leaves nothing behind."""
    script = (
        "import resource, signal, sys, numpy as np\n"
        "from a2bs.core.animation_io import open_writer\n"
        "from a2bs.core.errors import A2BSError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
        "try:\n"
        "    with open_writer(sys.argv[1], fps=30, n_frames=10_000) as w:\n"
        "        w.write(np.full((10_000, 52), 0.5, np.float32))\n"
        "except A2BSError as e:\n"
        "    print(e); sys.exit(2)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, tmp_path / "a.npy"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and "cannot write" in proc.stdout, proc
    assert os.listdir(tmp_path) == []


def test_a_built_folder_never_lands_on_one_that_appeared_meanwhile(tmp_path: Path) -> None:
    """publish_new_dir (corpora, voice sets) refuses a target that appeared during the build, even an empty
    folder that os.replace would silently replace; check_new_dir refuses it up front."""
    from a2bs.core.files import check_new_dir, publish_new_dir

    staged, target = tmp_path / ".staged", tmp_path / "corpus"
    staged.mkdir()
    (staged / "takes").mkdir()
    target.mkdir()  # the rival, empty
    with pytest.raises(A2BSError, match="appeared while it was being built"):
        publish_new_dir(staged, target)
    assert (staged / "takes").is_dir() and not any(target.iterdir())
    with pytest.raises(A2BSError, match="exists: choose a new folder"):
        check_new_dir(target, "a corpus")
    with pytest.raises(A2BSError, match="does not exist: create it first"):
        check_new_dir(tmp_path / "missing" / "corpus", "a corpus")
    target.rmdir()
    publish_new_dir(staged, target)
    assert (target / "takes").is_dir() and not staged.exists()


# --- paths and options that contradict ------------------------------------------------------------

TOO_LONG = "x" * 300  # over NAME_MAX (255): ENAMETOOLONG from the first stat


@pytest.mark.parametrize(
    ("option", "name"),
    [
        ("input", f"{TOO_LONG}.wav"),
        ("-o", f"{TOO_LONG}.csv"),
        ("--plot", f"{TOO_LONG}.png"),
        ("--emotion-from", TOO_LONG),
    ],
)
def test_a_name_too_long_is_one_error_naming_it(option: str, name: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """Was: OSError [Errno 36] and a traceback from the first Path.exists/is_dir on it."""
    audio, output, extra = write_tone(tmp_path, "t.wav"), tmp_path / "o.csv", []
    if option == "input":
        audio = tmp_path / name
    elif option == "-o":
        output = tmp_path / name
    else:
        extra = [option, tmp_path / name]
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", audio, "-o", output, *extra)
    one_error(code, err, TOO_LONG, "File name too long")
    assert sorted(os.listdir(tmp_path)) == ["t.wav"]


def test_format_contradicting_the_output_suffix_is_refused(tmp_path: Path, monkeypatch, capsys) -> None:
    """Was: `--format json -o x.csv` with one input silently wrote a CSV."""
    audio = write_tone(tmp_path, "t.wav")
    code, _, err = run(
        monkeypatch, capsys, core_cli.main, "a2bs", "infer", audio, "-o", tmp_path / "x.csv", "--format", "json"
    )
    one_error(code, err, "--format json", "x.csv")
    assert sorted(os.listdir(tmp_path)) == ["t.wav"]
    monkeypatch.chdir(tmp_path)  # the control: --format alone names the default output's format
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", audio, "--format", "json")
    assert code == 0 and (tmp_path / "out" / "t.json").is_file(), err
