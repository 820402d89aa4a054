"""A bundle is built and validated in staging and replaces the existing one only when it passed;
interruptions leave nothing half-done."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
from audio_fixtures import write_tone
from entry_points import copy_bundle, hidden, one_error, run, sample_app

from a2bs.cli import convert as convert_cli
from a2bs.convert.bundle import rejected_dir
from a2bs.core.errors import Interrupted, raise_if_interrupted, signals_raise

# --- convert: validated in staging, replaced only when it passed --------------------------------


@pytest.fixture
def fast_convert(android_bundle: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory):
    """Make `a2bs-convert android` copy the fixture bundle's models instead of converting, and calibrate on
    a 3 s clip (seconds, not a minute): everything else (manifest, staging, validation, replace, install)
    is real."""
    from a2bs.convert import bundle as bundle_module
    from a2bs.convert.common import ArtifactFile, calibration_set

    clip = write_tone(tmp_path_factory.mktemp("clip"), "short.wav", seconds=3)
    monkeypatch.setattr(bundle_module, "calibration_set", lambda ckpt: calibration_set(ckpt, 8, [clip]))

    manifest = json.loads((android_bundle / "manifest.json").read_text())

    def convert(ckpt, variant, folder, *, calibration, progress, overwrite=False):
        progress(f"tflite {variant}: (copied from the test fixture)")
        files = []
        for entry in manifest["files"]:
            if entry["role"] == "front_end" or entry["variant"] == variant:
                shutil.copy(android_bundle / entry["path"], folder / entry["path"])
                files.append(ArtifactFile(Path(entry["path"]), entry["role"], entry["variant"], entry["precision"]))
        return files

    monkeypatch.setattr(bundle_module, "_converter", lambda platform: convert)
    return android_bundle


def test_failed_validation_keeps_the_existing_bundle(
    fast_convert: Path, checkpoint_dirs: dict[int, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    from a2bs.mobile_validation import validate as V

    out = copy_bundle(fast_convert, tmp_path, "android")
    before = (out / "manifest.json").read_bytes()
    sample = sample_app(tmp_path, bundle_dir="assets")
    real = V.validate_bundle

    def failing(bundle, *args, **kwargs):
        report = real(bundle, *args, **kwargs, latency=False)
        report.checks.append(V.Check("x", "size", "forced failure", False, None, None, "test", reason="forced"))
        return report

    monkeypatch.setattr(V, "validate_bundle", failing)
    code, out_text, err = run(
        monkeypatch,
        capsys,
        convert_cli.main,
        "a2bs-convert",
        "android",
        "--checkpoint",
        checkpoint_dirs[30],
        "--out",
        out,
        "--force",
        "--install-into",
        sample,
    )
    assert code == 1, err
    assert "validation FAILED" in out_text and "left unchanged" in out_text
    assert (out / "manifest.json").read_bytes() == before  # the good bundle is still there, untouched
    assert (rejected_dir(out) / "manifest.json").is_file() and not (sample / "assets").exists()
    assert hidden(tmp_path) == []  # no staging folder, no lock


def test_convert_refuses_while_another_one_writes_the_same_bundle(
    fast_convert: Path, checkpoint_dirs: dict[int, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    out = copy_bundle(fast_convert, tmp_path, "android")
    before = (out / "manifest.json").read_bytes()
    lock = out.with_name(".android.lock")
    with open(lock, "w") as other:  # what a concurrent a2bs-convert holds
        fcntl.flock(other, fcntl.LOCK_EX)
        code, _, err = run(
            monkeypatch,
            capsys,
            convert_cli.main,
            "a2bs-convert",
            "android",
            "--checkpoint",
            checkpoint_dirs[30],
            "--out",
            out,
            "--force",
            "--no-validate",
        )
    one_error(code, err, "being written by another a2bs process")
    assert (out / "manifest.json").read_bytes() == before
    lock.unlink()
    assert hidden(tmp_path) == []


def test_swallowed_ctrl_c_still_stops_the_conversion(
    fast_convert: Path, checkpoint_dirs: dict[int, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    """jax's _xla_gc_callback swallows a KeyboardInterrupt raised inside it; the next stage stops anyway."""
    from a2bs.convert import bundle as bundle_module

    out = copy_bundle(fast_convert, tmp_path, "android")
    before = (out / "manifest.json").read_bytes()

    def calibration_with_swallowed_interrupt(ckpt):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs here and raises
        except KeyboardInterrupt:
            pass  # "Exception ignored in: <function _xla_gc_callback>"
        return None  # never used: the next stage line stops the conversion

    monkeypatch.setattr(bundle_module, "calibration_set", calibration_with_swallowed_interrupt)
    code, _, err = run(
        monkeypatch,
        capsys,
        convert_cli.main,
        "a2bs-convert",
        "android",
        "--checkpoint",
        checkpoint_dirs[30],
        "--out",
        out,
        "--force",
        "--no-validate",
    )
    assert code == 130 and "interrupted (SIGINT)" in err, err
    assert (out / "manifest.json").read_bytes() == before and hidden(tmp_path) == []


def test_raise_if_interrupted_remembers_a_swallowed_signal() -> None:
    raise_if_interrupted()  # nothing received: no-op
    with signals_raise():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        except Interrupted as exc:
            assert exc.signum == signal.SIGTERM
        with pytest.raises(Interrupted):
            raise_if_interrupted()
    raise_if_interrupted()  # cleared when the command ends


def test_signal_during_an_import_waits_for_the_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal raised inside a native extension's init aborts the process (CI saw SIGABRT when Ctrl-C hit
    LiteRT's MLIR bindings); the signal waits until the import is done, then interrupts."""
    (tmp_path / "slow_module_under_signal.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(0.5)\nFINISHED = True\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with signals_raise(), pytest.raises(Interrupted) as caught:
        import slow_module_under_signal  # noqa: F401

        time.sleep(5)  # the re-check timer interrupts this wait
    assert caught.value.signum == signal.SIGINT
    assert sys.modules["slow_module_under_signal"].FINISHED  # the import ran to its end
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
