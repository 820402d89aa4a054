"""Signals on real `a2bs` / `a2bs-convert` processes: no temp file, the old output kept."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from audio_fixtures import write_tone
from entry_points import BIN, copy_bundle, hidden

pytestmark = pytest.mark.slow  # real processes, each 10-25 s of start-up

# --- signals on real processes ---------------------------------------------------------------------


def _wait_for(predicate, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# One signal per command in a real process (each costs 10-25 s of start-up); SIGINT on infer and SIGTERM on
# convert take the same code path (signals_raise), and the in-process tests above cover both exit codes.
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143)])
def test_signal_during_infer_leaves_no_temp_file(
    sig: int, code: int, tmp_path: Path, checkpoint_dirs: dict[int, Path]
) -> None:
    audio = write_tone(tmp_path, "long.wav", seconds=600)
    out = tmp_path / "out" / "anim.csv"
    out.parent.mkdir()
    out.write_text("previous result")
    proc = subprocess.Popen(
        [BIN / "a2bs", "infer", audio, "-o", out, "--force", "--checkpoint", checkpoint_dirs[30], "--no-progress"],
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: any(p.suffix == ".part" for p in out.parent.iterdir()), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and f"interrupted ({signal.Signals(sig).name})" in err
    assert os.listdir(out.parent) == ["anim.csv"] and out.read_text() == "previous result"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130)])
def test_signal_during_convert_keeps_the_bundle(
    sig: int, code: int, android_bundle: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path]
) -> None:
    out = copy_bundle(android_bundle, tmp_path, "android")
    before = (out / "manifest.json").read_bytes()
    proc = subprocess.Popen(
        [BIN / "a2bs-convert", "android", "--checkpoint", checkpoint_dirs[30], "--out", out, "--force"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: any(p.name.startswith(".android.") and p.is_dir() for p in tmp_path.iterdir()), proc)
    time.sleep(2)  # well into the conversion (jax and LiteRT loaded)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    assert (out / "manifest.json").read_bytes() == before
    assert hidden(tmp_path) == [] and hidden(out) == []
