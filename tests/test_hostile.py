"""Hostile bundles, sample configs, checkpoints and signals (issue 12): one regression test per case.

Nothing is read or written outside the folder a command was given, nothing is lost (an existing output
or bundle survives every failure and interruption), and every mistake is one `error:` line, exit 2.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import bundled_speech, write_tone
from safetensors.torch import load_file, save_file

from a2bs.cli import convert as convert_cli
from a2bs.cli import main as core_cli
from a2bs.convert.bundle import rejected_dir
from a2bs.core.animation_io import open_writer
from a2bs.core.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint
from a2bs.core.errors import A2BSError, CheckpointError, Interrupted, raise_if_interrupted, signals_raise
from a2bs.core.files import OutputLock, replace_dir
from a2bs.runtime.manifest import load_manifest

BIN = Path(sys.executable).parent
FRAME = np.full((1, 52), 0.5, np.float32)


def run(monkeypatch, capsys, main, *argv: str | Path) -> tuple[int, str, str]:
    """Run a console entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [str(a) for a in argv])
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_error(code: int, err: str, *words: str) -> str:
    lines = [line for line in err.splitlines() if not line.startswith("warning: no trained")]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def copy_bundle(bundle: Path, tmp_path: Path, name: str = "b") -> Path:
    out = tmp_path / name
    shutil.copytree(bundle, out)
    return out


def edit_manifest(bundle: Path, edit) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- bundles: every path stays inside, every value in range --------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every bundle, with a model-looking file an attacker would point at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "x.tflite").write_bytes(b"secret")
    (folder / "secret.md").write_text("secret")
    return folder


def _point_step_at(path: str):
    def edit(m):
        next(f for f in m["files"] if f["role"] == "step")["path"] = path

    return edit


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "readme_symlink"])
def test_bundle_paths_leading_outside_are_refused(
    kind: str, android_bundle: Path, tmp_path: Path, outside: Path, monkeypatch, capsys
) -> None:
    bundle = copy_bundle(android_bundle, tmp_path)
    if kind == "dotdot":
        edit_manifest(bundle, _point_step_at("../outside/x.tflite"))
    elif kind == "absolute":
        edit_manifest(bundle, _point_step_at(str(outside / "x.tflite")))
    elif kind == "symlink":
        step = next(f["path"] for f in json.loads((bundle / "manifest.json").read_text())["files"]
                    if f["role"] == "step")  # fmt: skip
        (bundle / step).unlink()
        (bundle / step).symlink_to(outside / "x.tflite")
    else:
        (bundle / "README.md").unlink()
        (bundle / "README.md").symlink_to(outside / "secret.md")
    with pytest.raises(A2BSError, match=r"outside|relative path"):
        load_manifest(bundle)
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "validate", bundle, "--no-latency")
    one_error(code, err)
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", bundled_speech(), "-o",
                       tmp_path / "o.csv", "--backend", "tflite", "--bundle", bundle, "--no-progress")  # fmt: skip
    one_error(code, err)
    assert not (tmp_path / "o.csv").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.md", "x.tflite"]
    assert (outside / "secret.md").read_text() == "secret"
    assert not (bundle / "report.json").exists()  # validate refused before writing anything


def test_mlpackage_manifest_leading_outside_is_refused(ios_bundle: Path, tmp_path: Path, outside: Path) -> None:
    bundle = copy_bundle(ios_bundle, tmp_path)
    package = next(bundle.glob("*.mlpackage"))
    inner = json.loads((package / "Manifest.json").read_text())
    first = next(iter(inner["itemInfoEntries"].values()))
    first["path"] = "../../../outside/x.tflite"
    (package / "Manifest.json").write_text(json.dumps(inner))
    with pytest.raises(A2BSError, match=r"Manifest\.json.*relative path"):
        load_manifest(bundle)
    first["path"] = "com.apple.CoreML/link"
    (package / "Manifest.json").write_text(json.dumps(inner))
    (package / "Data/com.apple.CoreML/link").symlink_to(outside / "x.tflite")
    with pytest.raises(A2BSError, match="leads outside"):
        load_manifest(bundle)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda m: m.update(fps=10**9), "'fps'"),
        (lambda m: m.update(sample_rate=0), "'sample_rate'"),
        (lambda m: m["timeline"].update(lookahead_frames=10**9), "'timeline.lookahead_frames'"),
        (lambda m: m.update(fps="30"), "'fps'"),
        (lambda m: m.pop("files"), "'files' is missing"),
        (lambda m: m.update(files={"path": "x"}), "'files'"),
        (lambda m: m["files"][0].update(sha256=7), "'files[0].sha256'"),
        (lambda m: m.update(context_frames=-5), "'context_frames'"),
        (lambda m: m["emotion"].update(neutral=[0.0] * 3), "'emotion.neutral'"),
        (lambda m: m.update(models=[]), "'models'"),
        (lambda m: m.update(default_variant="nope"), "'default_variant'"),
    ],
)
def test_manifest_values_out_of_range_or_of_the_wrong_type(
    edit, key: str, android_bundle: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    bundle = copy_bundle(android_bundle, tmp_path)
    edit_manifest(bundle, edit)
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", bundled_speech(), "-o",
                       tmp_path / "o.csv", "--backend", "tflite", "--bundle", bundle, "--no-progress")  # fmt: skip
    one_error(code, err, key, "manifest.json")


def test_manifest_that_does_not_fit_its_models(android_bundle: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """In range but not what the model takes: infer names the bundle and points at `a2bs validate`."""
    bundle = copy_bundle(android_bundle, tmp_path)
    edit_manifest(bundle, lambda m: m.update(context_frames=128))
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", bundled_speech(), "-o",
                       tmp_path / "o.csv", "--backend", "tflite", "--bundle", bundle, "--no-progress")  # fmt: skip
    one_error(code, err, "do not run as its manifest says", "a2bs validate")
    assert not (tmp_path / "o.csv").exists()


def test_deeply_nested_and_non_json_manifests(tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    bundle.mkdir()
    nan_fps = '{"format": "a2bs-bundle", "format_version": 1, "platform": "android", "fps": NaN}'
    for text, message in [("[" * 100_000 + "]" * 100_000, "nested too deeply"), ("{nope", "not valid JSON"),
                          (nan_fps, "'fps'.*NaN"), ("[]", "must be a JSON object")]:  # fmt: skip
        (bundle / "manifest.json").write_text(text)
        with pytest.raises(A2BSError, match=message):
            load_manifest(bundle)
    (bundle / "manifest.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(A2BSError, match="UTF-8"):
        load_manifest(bundle)


# --- sample apps: --install-into stays inside the sample -----------------------------------------


def _sample(tmp_path: Path, **spec) -> Path:
    sample = tmp_path / "android_sample"
    sample.mkdir(exist_ok=True)
    (sample / "a2bs-sample.json").write_text(json.dumps({"platform": "android", **spec}))
    return sample


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"bundle_dir": "../../victim"}, "'bundle_dir' must be a relative path"),
        ({"bundle_dir": "/tmp/victim"}, "'bundle_dir' must be a relative path"),
        ({"bundle_dir": "link/a2bs"}, "leads outside the sample"),
        ({"bundle_dir": "assets", "clip": "../../victim/file.wav"}, "'clip' must be a plain .wav file name"),
        ({"bundle_dir": "assets", "clip": "/tmp/x.wav"}, "'clip'"),
        ({"bundle_dir": 5}, "'bundle_dir' must be a non-empty string"),
        ({}, "'bundle_dir' is missing"),
        ({"bundle_dir": "."}, "'bundle_dir'"),
    ],
)
def test_install_into_refuses_paths_leading_outside_the_sample(
    spec: dict, message: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "file.wav").write_text("keep")
    sample = _sample(tmp_path, **spec)
    (sample / "link").symlink_to(victim)
    code, _, err = run(monkeypatch, capsys, convert_cli.main, "a2bs-convert", "android", "--out", tmp_path / "b",
                       "--force", "--install-into", sample)  # fmt: skip
    one_error(code, err, message)
    assert (victim / "file.wav").read_text() == "keep" and not (tmp_path / "b").exists()


def test_sample_config_that_is_not_an_object(tmp_path: Path, monkeypatch, capsys) -> None:
    sample = tmp_path / "android_sample"
    sample.mkdir()
    for text in ["[1, 2]", "{bad json", "[" * 50_000]:
        (sample / "a2bs-sample.json").write_text(text)
        code, _, err = run(monkeypatch, capsys, convert_cli.main, "a2bs-convert", "android", "--out",
                           tmp_path / "b", "--install-into", sample)  # fmt: skip
        one_error(code, err, "a2bs-sample.json")


def test_no_validate_never_installs(tmp_path: Path, monkeypatch, capsys) -> None:
    sample = _sample(tmp_path, bundle_dir="assets")
    code, _, err = run(monkeypatch, capsys, convert_cli.main, "a2bs-convert", "android", "--out", tmp_path / "b",
                       "--no-validate", "--install-into", sample)  # fmt: skip
    one_error(code, err, "--no-validate")
    assert not (tmp_path / "b").exists() and not (sample / "assets").exists()


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
    sample = _sample(tmp_path, bundle_dir="assets")
    real = V.validate_bundle

    def failing(bundle, *args, **kwargs):
        report = real(bundle, *args, **kwargs, latency=False)
        report.checks.append(V.Check("x", "size", "forced failure", False, None, None, "test", reason="forced"))
        return report

    monkeypatch.setattr(V, "validate_bundle", failing)
    code, out_text, err = run(monkeypatch, capsys, convert_cli.main, "a2bs-convert", "android", "--checkpoint",
                              checkpoint_dirs[30], "--out", out, "--force", "--install-into", sample)  # fmt: skip
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
        code, _, err = run(monkeypatch, capsys, convert_cli.main, "a2bs-convert", "android", "--checkpoint",
                           checkpoint_dirs[30], "--out", out, "--force", "--no-validate")  # fmt: skip
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
    code, _, err = run(monkeypatch, capsys, convert_cli.main, "a2bs-convert", "android", "--checkpoint",
                       checkpoint_dirs[30], "--out", out, "--force", "--no-validate")  # fmt: skip
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
    proc = subprocess.Popen([BIN / "a2bs", "infer", audio, "-o", out, "--force", "--checkpoint",
                             checkpoint_dirs[30], "--no-progress"], stderr=subprocess.PIPE, text=True)  # fmt: skip
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
    proc = subprocess.Popen([BIN / "a2bs-convert", "android", "--checkpoint", checkpoint_dirs[30], "--out", out,
                             "--force"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for(lambda: any(p.name.startswith(".android.") and p.is_dir() for p in tmp_path.iterdir()), proc)
    time.sleep(2)  # well into the conversion (jax and LiteRT loaded)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    assert (out / "manifest.json").read_bytes() == before
    assert hidden(tmp_path) == [] and hidden(out) == []


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
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'w'); "
                               "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
                               tmp_path / ".a.csv.lock"], stdout=subprocess.PIPE, text=True)  # fmt: skip
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
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", audio, "-o", output, "--force",
                       "--checkpoint", checkpoint_dirs[30], "--no-progress")  # fmt: skip
    one_error(code, err, "is the input audio")
    assert audio.read_bytes() == before


def test_plot_onto_the_input_is_refused(tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys) -> None:
    audio = tmp_path / "take.png"
    shutil.copy(bundled_speech(), audio)
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", audio, "-o", tmp_path / "o.csv",
                       "--plot", audio, "--force", "--checkpoint", checkpoint_dirs[30])  # fmt: skip
    one_error(code, err, "--plot", "is the input audio")


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
    # The named key (not an allocator's error) proves the range or header check ran before any allocation.
    with pytest.raises(CheckpointError, match=re.escape(key)) as info:
        load_checkpoint(folder)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(model=[1]), "'model' must be a JSON object"),
        (lambda c: c.update(mel_stats={"mean": "x"}), "'mel_stats.mean'"),
        (lambda c: c.pop("mel_stats"), "'mel_stats' is missing"),
        (lambda c: c.update(emotion_stats=None), "emotion statistics"),
        (lambda c: c.update(trained="yes"), "'trained'"),
        (lambda c: c.update(info=[]), "'info'"),
    ],
)
def test_checkpoint_config_wrong_types(edit, message: str, checkpoint_dirs: dict[int, Path], tmp_path: Path) -> None:
    folder = _checkpoint(checkpoint_dirs, tmp_path)
    config = json.loads((folder / CONFIG_FILE).read_text())
    edit(config)
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(folder)


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
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", write_tone(tmp_path, "t.wav"), "-o",
                       tmp_path / "o.csv", "--checkpoint", folder, "--no-progress")  # fmt: skip
    line = one_error(code, err, "the model", "NaN or infinite", "weights")
    assert "cannot write" not in line and not (tmp_path / "o.csv").exists()


# --- audio and options ----------------------------------------------------------------------------


def test_huge_samples_blame_the_audio(tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys) -> None:
    audio = tmp_path / "loud.wav"
    sf.write(audio, np.full(16000, 1e19, np.float32), 16000, subtype="FLOAT")
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", audio, "-o", tmp_path / "o.csv",
                       "--checkpoint", checkpoint_dirs[30], "--no-progress")  # fmt: skip
    line = one_error(code, err, "loud.wav", "1e+19", "[-1, 1]")
    assert "o.csv" not in line


def test_negative_fps_names_fps(tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", bundled_speech(), "-o",
                       tmp_path / "o.csv", "--fps", "-1")  # fmt: skip
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
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", write_tone(tmp_path, "t.wav"), "-o",
                       tmp_path / "o.csv", "--plot", folder / "p.png", "--checkpoint", checkpoint_dirs[30],
                       "--no-progress")  # fmt: skip
    one_error(code, err, "--plot", "p.png")


def test_default_output_in_unwritable_current_folder(
    tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys
) -> None:
    monkeypatch.chdir(_unwritable_folder(tmp_path))
    code, _, err = run(monkeypatch, capsys, core_cli.main, "a2bs", "infer", bundled_speech(), "--checkpoint",
                       checkpoint_dirs[30], "--no-progress")  # fmt: skip
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
    proc = subprocess.run([sys.executable, "-c", script, tmp_path / "a.npy"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
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
