"""Command-line tests: `a2bs infer` / `a2bs info`, the bad-input contract and full-length output.

The bad-input contract: a mistake the user can make (bad path, bad audio, bad option, bad output
path, bad checkpoint) exits with code 2 and prints exactly one short line on stderr that starts
with ``error:`` and says what is wrong; no traceback, and no output file (nor a hidden ``.part``
temp file) is left behind. Valid but unusual audio gives a full-length animation:
``ceil(duration * fps)`` rows, computed with integers from the source frame count.

Most tests call `a2bs.cli.main.main()` in-process (fast); two run the installed console script.
Every run passes a fixture checkpoint (`checkpoint_dirs` in conftest.py: deterministic, untrained)
and ``--no-progress``. An untrained checkpoint makes the CLI print a one-line warning on stderr
when it loads, so the error tests use a copy flagged ``trained`` (`quiet30`): there stderr must be
exactly the one error line. `test_untrained_warning_precedes_error` pins the untrained case.
Click usage errors (an option value of the wrong type, an unknown option) are Click's own: a
usage line and one `Error: ...` line, exit 2, no traceback.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_fixtures import (
    bundled_speech,
    write_empty_file,
    write_header_only_wav,
    write_nan_wav,
    write_not_audio,
    write_silence,
    write_tone,
    write_truncated_wav,
)
from entry_points import copy_bundle, edit_manifest

from a2bs.cli import main as cli
from a2bs.core.animation_io import format_timecode, open_writer
from a2bs.core.blendshapes import ARKIT_BLENDSHAPES, INDEX, LIVE_LINK_FACE_BLENDSHAPES, LIVE_LINK_FACE_COLUMNS
from a2bs.core.checkpoint import load_checkpoint
from a2bs.core.controls import ControlsFilter, FaceControls
from a2bs.core.controls import manifest_section as controls_section
from a2bs.core.life import LIFE_SHAPES
from a2bs.core.model import count_parameters
from a2bs.runtime.bundle_inference import iter_bundle_blendshapes
from a2bs.runtime.manifest import shipped_bundle

A2BS = Path(sys.executable).with_name("a2bs")  # the venv's console script
UNTRAINED_WARNING = "warning: no trained checkpoint"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_ERROR_CHARS = 300  # "short": error lines quote tmp paths (~80 chars), sometimes twice
# Stride 3 vs stride 1 on the bundled clip (see test_stride_3_close_to_stride_1).
STRIDE_MAX_MEAN_ABS_DIFF = 0.05
STRIDE_MAX_RELATIVE_DIFF = 0.25


# --- running the CLI ------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


Run = Callable[..., Result]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Call `a2bs <args>` in-process; a successful run may return without SystemExit (code 0)."""

    def _run(*args: str | Path) -> Result:
        monkeypatch.setattr(sys, "argv", ["a2bs", *map(str, args)])
        capsys.readouterr()  # drop anything printed before this run
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return _run


def infer(run: Run, audio: Path, output: Path, checkpoint: Path, *extra: str | Path) -> Result:
    return run("infer", audio, "-o", output, "--checkpoint", checkpoint, "--no-progress", *extra)


@pytest.fixture(scope="module")
def quiet30(checkpoint_dirs: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 30 fps fixture checkpoint (same weights) flagged ``trained``: no untrained-model warning."""
    folder = tmp_path_factory.mktemp("quiet") / "quiet-30fps"
    shutil.copytree(checkpoint_dirs[30], folder)
    config = json.loads((folder / "config.json").read_text())
    config["trained"] = True
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# --- assertions -----------------------------------------------------------------------------


def listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))  # includes hidden .part temp files


def assert_one_error_line(result: Result, *keywords: str) -> str:
    """Exit 2, stderr is exactly one short `error:` line containing every keyword, no traceback."""
    assert "Traceback" not in result.err
    assert result.code == 2, result
    lines = result.err.splitlines()
    assert len(lines) == 1, f"expected exactly one stderr line, got {lines}"
    line = lines[0]
    assert line.startswith("error: "), line
    assert len(line) <= MAX_ERROR_CHARS, line
    for word in keywords:
        assert word.lower() in line.lower(), f"{word!r} not in {line!r}"
    assert "wrote" not in result.out
    return line


def assert_success(result: Result, n_rows: int, fps: int) -> None:
    assert "Traceback" not in result.err
    assert result.code == 0, result
    assert f"{n_rows} frames at {fps} fps" in result.out
    # Only the untrained-model warning may appear (--no-progress: no bar).
    assert all(line.startswith(UNTRAINED_WARNING) for line in result.err.splitlines()), result.err


def expected_rows(audio: Path, fps: int) -> int:
    """ceil(duration * fps) with integers, from the source file's own frame count and rate."""
    info = sf.info(str(audio))
    return -(-info.frames * fps // info.samplerate)


def read_csv_values(path: Path, fps: int) -> np.ndarray:
    """Check the Live Link Face layout (header, timecodes, 61 count, rotations: zeros without the life
    layer, small radians with it); (n, 52) values."""
    return read_csv(path, fps)[0]


def read_csv(path: Path, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """`read_csv_values`, and the (n, 9) rotations (zeros when the file has the plain "0" columns)."""
    with open(path, newline="") as f:
        header, *rows = list(csv.reader(f))
    assert header == list(LIVE_LINK_FACE_COLUMNS)
    assert all(len(row) == len(header) for row in rows)
    assert [row[0] for row in rows] == [format_timecode(k, fps) for k in range(len(rows))]
    assert {row[1] for row in rows} <= {"61"}
    shape_cols = [header.index(name) for name in LIVE_LINK_FACE_BLENDSHAPES]
    rotation_cols = [j for j in range(2, len(header)) if j not in shape_cols]
    texts = {row[j] for row in rows for j in rotation_cols}
    rotations = np.array([[row[j] for j in rotation_cols] for row in rows], dtype=np.float64).reshape(-1, 9)
    assert texts <= {"0"} or (np.abs(rotations) < 0.5).all(), "rotations are radians of a few degrees"
    return np.array([[row[j] for j in shape_cols] for row in rows], dtype=np.float64).reshape(-1, 52), rotations


def assert_unit_range(values: np.ndarray) -> None:
    assert np.isfinite(values).all()
    assert values.min() >= 0.0 and values.max() <= 1.0


def assert_full_csv(path: Path, audio: Path, fps: int) -> np.ndarray:
    values = read_csv_values(path, fps)
    assert values.shape == (expected_rows(audio, fps), 52)
    assert_unit_range(values)
    return values


# --- bad input ------------------------------------------------------------------------------

# Each case: (set-up, keywords the error line must contain). A set-up receives the input folder,
# the (empty) output folder and {30: quiet30, 60: the 60 fps fixture checkpoint}, writes what it
# needs and returns the argv after "a2bs". What it leaves in the output folder is expected there.
Setup = Callable[[Path, Path, dict[int, Path]], list]


def _infer_args(audio: Path, output: Path, ckpt: Path, *extra: str | Path) -> list:
    return ["infer", audio, "-o", output, "--checkpoint", ckpt, "--no-progress", *extra]


def _tone(inp: Path) -> Path:
    return write_tone(inp, "tone.wav", seconds=0.5)


def _ckpt_copy(inp: Path, ckpt: Path) -> Path:
    copy = inp / "ckpt-copy"
    shutil.copytree(ckpt, copy)
    return copy


def _garbage_weights(inp: Path, out: Path, ck: dict[int, Path]) -> list:
    copy = _ckpt_copy(inp, ck[30])
    (copy / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    return _infer_args(_tone(inp), out / "anim.csv", copy)


def _invalid_json(inp: Path, out: Path, ck: dict[int, Path]) -> list:
    copy = _ckpt_copy(inp, ck[30])
    (copy / "config.json").write_text('{"format": "a2bs-checkpoint", "version": 1,')
    return _infer_args(_tone(inp), out / "anim.csv", copy)


def _fps_mismatch(inp: Path, out: Path, ck: dict[int, Path]) -> list:
    """config.json says 60 fps (the 60 fps fixture's model config), the weights are the 30 fps ones."""
    copy = _ckpt_copy(inp, ck[30])
    config = json.loads((copy / "config.json").read_text())
    config["model"] = json.loads((ck[60] / "config.json").read_text())["model"]
    assert config["model"]["fps"] == 60
    (copy / "config.json").write_text(json.dumps(config))
    return _infer_args(_tone(inp), out / "anim.csv", copy)


def _output_is_directory(inp: Path, out: Path, ck: dict[int, Path]) -> list:
    (out / "anim.csv").mkdir()
    return _infer_args(_tone(inp), out / "anim.csv", ck[30])


def _output_folder_missing(inp: Path, out: Path, ck: dict[int, Path]) -> list:
    return _infer_args(_tone(inp), out / "missing" / "anim.csv", ck[30])


def _for_info(setup: Setup) -> Setup:
    """The checkpoint that `setup` damages, given to `a2bs info`: it reads no weight, but checks the same."""

    def info_args(inp: Path, out: Path, ck: dict[int, Path]) -> list:
        argv = setup(inp, out, ck)
        return ["info", "--checkpoint", argv[argv.index("--checkpoint") + 1]]

    return info_args


def _int32_weights(inp: Path, out: Path, ck: dict[int, Path]) -> list:
    """A weight stored as int32: the header's dtype is refused (`a2bs info` reads the header only)."""
    from safetensors.torch import load_file, save_file

    copy = _ckpt_copy(inp, ck[30])
    weights = load_file(str(copy / "model.safetensors"))
    weights["queries"] = weights["queries"].int()
    save_file(weights, str(copy / "model.safetensors"))
    return ["info", "--checkpoint", copy]


def _huge_d_model(inp: Path, out: Path, ck: dict[int, Path]) -> list:
    copy = _ckpt_copy(inp, ck[30])
    config = json.loads((copy / "config.json").read_text())
    config["model"]["d_model"] = 16384
    (copy / "config.json").write_text(json.dumps(config))
    return ["info", "--checkpoint", copy]


BAD_INPUT = [
    pytest.param(
        lambda inp, out, ck: _infer_args(inp / "nope.wav", out / "anim.csv", ck[30]),
        ("not found", "nope.wav"),
        id="missing-path",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(write_not_audio(inp), out / "anim.csv", ck[30]),
        ("notes.wav", "not a readable audio file"),
        id="not-audio",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(write_empty_file(inp), out / "anim.csv", ck[30]),
        ("empty.wav", "empty", "0 bytes"),
        id="empty-file",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(write_header_only_wav(inp), out / "anim.csv", ck[30]),
        ("header_only.wav", "no audio samples"),
        id="header-only-wav",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(write_truncated_wav(inp), out / "anim.csv", ck[30]),
        ("truncated.wav", "truncated"),
        id="truncated-wav",
    ),
    pytest.param(
        # Found only while decoding (after the output is opened): the temp file must go.
        lambda inp, out, ck: _infer_args(write_nan_wav(inp), out / "anim.csv", ck[30]),
        ("nan.wav", "NaN or infinite", "0.50 s"),
        id="nan-inf-samples",
    ),
    pytest.param(
        # a folder is a batch input; one without audio is an error, before any model loads
        lambda inp, out, ck: _infer_args(inp, out / "anim.csv", ck[30]),
        ("no audio files", ".wav"),
        id="directory-without-audio",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(_tone(inp), out / "anim.csv", ck[30], "--fps", "25"),
        ("unsupported", "--fps 25", "30 or 60"),
        id="fps-25",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(_tone(inp), out / "anim.csv", ck[30], "--stride", "0"),
        ("--stride", "got 0"),
        id="stride-0",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(_tone(inp), out / "anim.csv", ck[30], "--stride", "31"),
        ("--stride", "between 1 and 30", "got 31"),
        id="stride-above-fps",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(_tone(inp), out / "anim.csv", ck[30], "--emotion-refresh", "0.5"),
        ("--emotion-refresh", "at least 1", "0.5"),
        id="emotion-refresh-too-short",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(_tone(inp), out / "anim.txt", ck[30]),
        ("unsupported output format", ".txt", ".csv"),
        id="output-suffix-txt",
    ),
    pytest.param(_output_folder_missing, ("does not exist", "missing"), id="output-folder-missing"),
    pytest.param(_output_is_directory, ("anim.csv", "is a directory"), id="output-is-directory"),
    pytest.param(
        lambda inp, out, ck: _infer_args(_tone(inp), out / "anim.csv", ck[30], "--plot", out / "curves.jpg"),
        ("--plot", ".png", "curves.jpg"),
        id="plot-suffix-jpg",
    ),
    pytest.param(
        lambda inp, out, ck: _infer_args(_tone(inp), out / "anim.csv", inp / "no-such-ckpt"),
        ("checkpoint not found", "no-such-ckpt"),
        id="checkpoint-missing",
    ),
    pytest.param(_garbage_weights, ("model.safetensors", "corrupt"), id="checkpoint-garbage-weights"),
    pytest.param(_invalid_json, ("config.json", "not valid JSON"), id="checkpoint-invalid-json"),
    pytest.param(_fps_mismatch, ("model.safetensors", "does not match its config"), id="checkpoint-fps-mismatch"),
    pytest.param(
        lambda inp, out, ck: _infer_args(_tone(inp), out / "anim.csv", ck[30], "--fps", "60"),
        ("30 fps checkpoint", "--fps 30"),
        id="fps-60-with-30fps-checkpoint",
    ),
    pytest.param(
        lambda inp, out, ck: ["info", "--checkpoint", inp / "no-such-ckpt"],
        ("checkpoint not found", "no-such-ckpt"),
        id="info-checkpoint-missing",
    ),
    pytest.param(_for_info(_garbage_weights), ("model.safetensors", "corrupt"), id="info-checkpoint-garbage-weights"),
    pytest.param(_for_info(_invalid_json), ("config.json", "not valid JSON"), id="info-checkpoint-invalid-json"),
    pytest.param(
        _for_info(_fps_mismatch), ("model.safetensors", "does not match its config"), id="info-checkpoint-fps-mismatch"
    ),
    pytest.param(_int32_weights, ("model.safetensors", "floating point", "I32"), id="info-checkpoint-int32-weights"),
    pytest.param(_huge_d_model, ("config.json", "'model.d_model'", "16384"), id="info-checkpoint-huge-d-model"),
    pytest.param(
        lambda inp, out, ck: ["info", "--checkpoint", ck[30], "--fps", "60"],
        ("30 fps checkpoint", "--fps 30"),
        id="info-fps-60-with-30fps-checkpoint",
    ),
    pytest.param(lambda inp, out, ck: ["info", "--fps", "25"], ("unsupported", "--fps 25"), id="info-fps-25"),
]


@pytest.mark.parametrize(("setup", "keywords"), BAD_INPUT)
def test_bad_input_one_error_line_no_output(
    run: Run,
    tmp_path: Path,
    quiet30: Path,
    checkpoint_dirs: dict[int, Path],
    setup: Setup,
    keywords: tuple[str, ...],
) -> None:
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    out.mkdir()
    argv = setup(inp, out, {30: quiet30, 60: checkpoint_dirs[60]})
    before = listing(out)
    result = run(*argv)
    assert_one_error_line(result, *keywords)
    assert listing(out) == before  # no output, no .part temp file, no new folder


def test_output_exists_without_force_is_untouched(run: Run, tmp_path: Path, quiet30: Path) -> None:
    audio = write_tone(tmp_path, "tone.wav", seconds=0.5)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "anim.csv"
    precious = b"my hand-tuned animation\r\n\x00\xff keep me\n"
    target.write_bytes(precious)
    result = infer(run, audio, target, quiet30)
    assert_one_error_line(result, "anim.csv", "exists", "--force")
    assert target.read_bytes() == precious
    assert listing(out) == ["anim.csv"]


def test_output_exists_with_force_is_replaced(run: Run, tmp_path: Path, checkpoint_dirs: dict[int, Path]) -> None:
    audio = write_tone(tmp_path, "tone.wav", seconds=0.5)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "anim.csv"
    target.write_bytes(b"old content\n")
    result = infer(run, audio, target, checkpoint_dirs[30], "--force")
    assert_success(result, expected_rows(audio, 30), 30)
    assert_full_csv(target, audio, 30)
    assert listing(out) == ["anim.csv"]


def test_option_errors_come_before_the_untrained_warning(
    run: Run, tmp_path: Path, checkpoint_dirs: dict[int, Path]
) -> None:
    """Options and paths are checked before the model loads: even with an untrained checkpoint,
    a bad option gives exactly one stderr line (no warning first)."""
    audio = write_tone(tmp_path, "tone.wav", seconds=0.5)
    for extra, key in ((["--stride", "0"], "--stride"), (["--plot", "x.jpg"], "--plot")):
        result = infer(run, audio, tmp_path / "anim.csv", checkpoint_dirs[30], *extra)
        assert result.code == 2
        assert "Traceback" not in result.err
        lines = result.err.splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith("error: ") and key in lines[0]
    result = infer(run, audio, tmp_path / "anim.txt", checkpoint_dirs[30])
    assert result.err.splitlines() == ["error: unsupported output format '.txt': use .csv, .json or .npy"]
    assert listing(tmp_path) == ["tone.wav"]


# --- valid but unusual audio ----------------------------------------------------------------

# (file name, writer, writer kwargs, fps, rows). Short clips; odd durations exercise the ceil. `rows`
# pins the count by hand; the test also derives it from the file: -(-frames * fps // sample_rate).
GOOD_AUDIO = [
    pytest.param("u8.wav", write_tone, {"subtype": "PCM_U8", "seconds": 0.73}, 30, 22, id="wav-pcm_u8"),
    pytest.param("s16.wav", write_tone, {"subtype": "PCM_16", "seconds": 1.01}, 30, 31, id="wav-pcm_16"),
    pytest.param("s24.wav", write_tone, {"subtype": "PCM_24", "sr": 22050, "seconds": 0.77}, 30, 24, id="wav-pcm_24"),
    pytest.param("s32.wav", write_tone, {"subtype": "PCM_32", "seconds": 0.5}, 30, 15, id="wav-pcm_32"),
    pytest.param("f32.wav", write_tone, {"subtype": "FLOAT", "seconds": 0.61}, 30, 19, id="wav-float"),
    pytest.param("f64.wav", write_tone, {"subtype": "DOUBLE", "seconds": 0.52}, 30, 16, id="wav-double"),
    pytest.param("tone.flac", write_tone, {"fmt": "FLAC", "seconds": 0.9}, 30, 27, id="flac"),
    pytest.param("tone.ogg", write_tone, {"fmt": "OGG", "seconds": 1.1}, 30, 33, id="ogg-vorbis"),
    pytest.param("stereo.wav", write_tone, {"channels": 2, "seconds": 0.8}, 30, 24, id="stereo"),
    pytest.param("44k.wav", write_tone, {"sr": 44100, "seconds": 0.99}, 30, 30, id="44k1"),
    pytest.param("48k.wav", write_tone, {"sr": 48000, "seconds": 1.0}, 30, 30, id="48k"),
    pytest.param("silence.wav", write_silence, {"seconds": 10.0}, 30, 300, id="silence-10s"),
    pytest.param("short.wav", write_tone, {"seconds": 0.2}, 30, 6, id="200ms"),
    pytest.param("short.wav", write_tone, {"seconds": 0.2}, 60, 12, id="200ms-60fps"),
    pytest.param("44k.wav", write_tone, {"sr": 44100, "seconds": 0.99}, 60, 60, id="44k1-60fps"),
]


@pytest.mark.parametrize(("name", "writer", "kwargs", "fps", "rows"), GOOD_AUDIO)
def test_unusual_audio_gives_full_length_csv(
    run: Run,
    tmp_path: Path,
    checkpoint_dirs: dict[int, Path],
    name: str,
    writer: Callable[..., Path],
    kwargs: dict,
    fps: int,
    rows: int,
) -> None:
    audio = writer(tmp_path, name, **kwargs)
    output = tmp_path / "out.csv"
    n = expected_rows(audio, fps)
    assert n == rows
    if fps == 60:  # the same clip at 60 fps: twice the 30 fps rows (one fewer when the ceil rounded up)
        assert n in (2 * expected_rows(audio, 30), 2 * expected_rows(audio, 30) - 1)
    result = infer(run, audio, output, checkpoint_dirs[fps])
    assert_success(result, n, fps)
    assert_full_csv(output, audio, fps)
    assert listing(tmp_path) == sorted([name, "out.csv"])  # no .part temp file left


# --- output formats -------------------------------------------------------------------------


def test_json_output(run: Run, tmp_path: Path, checkpoint_dirs: dict[int, Path]) -> None:
    audio = write_tone(tmp_path, "tone.wav", seconds=0.7)
    output = tmp_path / "anim.json"
    n = expected_rows(audio, 30)
    result = infer(run, audio, output, checkpoint_dirs[30])
    assert_success(result, n, 30)
    assert re.search(r"\(RTF \d\.\d+, \d torch threads? of \d free cores\)", result.out)  # chosen, and said
    data = json.loads(output.read_text())
    assert data["blendshapes"] == list(ARKIT_BLENDSHAPES)
    assert data["fps"] == 30
    assert data["frame_count"] == n
    frames = np.array(data["frames"], dtype=np.float64)
    assert frames.shape == (n, 52)
    assert_unit_range(frames)
    assert data["metadata"]["audio"] == str(audio)
    assert listing(tmp_path) == ["anim.json", "tone.wav"]


def test_npy_output(run: Run, tmp_path: Path, checkpoint_dirs: dict[int, Path]) -> None:
    audio = write_tone(tmp_path, "tone.wav", seconds=0.7)
    output = tmp_path / "anim.npy"
    n = expected_rows(audio, 30)
    assert_success(infer(run, audio, output, checkpoint_dirs[30]), n, 30)
    frames = np.load(output)
    assert frames.shape == (n, 61)  # the 52 shapes, then the life layer's 9 rotations
    assert frames.dtype == np.float32
    assert_unit_range(frames[:, :52])
    assert listing(tmp_path) == ["anim.npy", "tone.wav"]


def test_plot_png(run: Run, tmp_path: Path, checkpoint_dirs: dict[int, Path]) -> None:
    audio = write_tone(tmp_path, "tone.wav", seconds=0.5)
    plot = tmp_path / "curves.png"
    result = infer(run, audio, tmp_path / "anim.csv", checkpoint_dirs[30], "--plot", plot)
    assert_success(result, expected_rows(audio, 30), 30)
    assert f"wrote {plot}" in result.out
    assert plot.read_bytes()[:8] == PNG_MAGIC
    assert listing(tmp_path) == ["anim.csv", "curves.png", "tone.wav"]


# --- the life layer -------------------------------------------------------------------------


def test_life_off_writes_the_models_curves_bit_for_bit(run: Run, tmp_path: Path) -> None:
    """`--life off` is the output before the life layer: the model's frames as they come (here the default
    path's, the shipped LiteRT model) and zero rotations; the natural layer (the default) leaves every
    mouth, jaw, cheek, nose and tongue column exactly as --life off writes it, moves the eyes and brows and
    fills the rotations; the same seed repeats itself, another one differs."""
    audio = bundled_speech()
    outputs = {}
    for name, extra in [
        ("off", ["--life", "off"]),
        ("natural", []),
        ("again", ["--seed", "0"]),
        ("seed7", ["--seed", "7"]),
    ]:
        outputs[name] = tmp_path / f"{name}.csv"
        assert run("infer", audio, "-o", outputs[name], "--no-progress", *extra).code == 0
    _, n, chunks = iter_bundle_blendshapes(audio, shipped_bundle(30), "tflite")
    with open_writer(tmp_path / "model.csv", 30, n) as w:
        for chunk in chunks:
            w.write(chunk)
    assert outputs["off"].read_bytes() == (tmp_path / "model.csv").read_bytes()
    assert outputs["natural"].read_bytes() == outputs["again"].read_bytes()
    off, _ = read_csv(outputs["off"], 30)
    natural, rotations = read_csv(outputs["natural"], 30)
    other, other_rotations = read_csv(outputs["seed7"], 30)
    life = [i for i, name in enumerate(ARKIT_BLENDSHAPES) if name in LIFE_SHAPES]
    rest = [i for i in range(52) if i not in life]
    np.testing.assert_array_equal(natural[:, rest], off[:, rest])
    assert natural[:, INDEX["eyeBlinkLeft"]].max() > 0.8 > off[:, INDEX["eyeBlinkLeft"]].max()
    assert np.abs(rotations[:, :3]).max() > np.radians(1) and np.abs(rotations).max() < np.radians(12)
    assert not np.array_equal(rotations, other_rotations) and not np.array_equal(natural[:, life], other[:, life])


def test_life_in_json_and_a_preview(run: Run, tmp_path: Path) -> None:
    """The JSON names the preset and seed and carries the rotations; the preview draws the layer."""
    audio = write_tone(tmp_path, "tone.wav", seconds=1.0)
    result = run("infer", audio, "-o", tmp_path / "a.json", "--no-progress", "--life", "subtle", "--seed", "3")
    assert result.code == 0, result
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["metadata"]["life"] == "subtle" and doc["metadata"]["seed"] == 3
    assert np.array(doc["rotations"]).shape == (30, 9) and doc["rotation_unit"] == "radians"
    result = run("infer", audio, "-o", tmp_path / "b.csv", "--no-progress", "--preview", tmp_path / "b.mp4")
    assert result.code == 0 and (tmp_path / "b.mp4").stat().st_size > 0, result


@pytest.mark.parametrize(("option", "value"), [("--life", "lively"), ("--seed", "-1"), ("--seed", str(1 << 32))])
def test_bad_life_options_are_usage_errors(run: Run, tmp_path: Path, option: str, value: str) -> None:
    audio = write_tone(tmp_path, "tone.wav", seconds=0.3)
    result = run("infer", audio, "-o", tmp_path / "o.csv", "--no-progress", option, value)
    assert result.code == 2 and "Traceback" not in result.err and option in result.err
    assert listing(tmp_path) == ["tone.wav"]


# --- the face controls -----------------------------------------------------------------------


def test_face_controls_in_infer(run: Run, tmp_path: Path) -> None:
    """The defaults write the file written without them, byte for byte; strength 0 is the neutral face; the
    options are Python's `ControlsFilter` over the model's frames (then the life layer), a bundle's manifest
    sets them and an option overrides it; the JSON names them."""
    audio = bundled_speech()

    def infer_csv(name: str, *extra: object, bundle: Path | None = None) -> Path:
        out = tmp_path / f"{name}.csv"
        where = ("--backend", "tflite", "--bundle", bundle) if bundle else ()
        result = run("infer", audio, "-o", out, "--no-progress", "--life", "off", *where, *extra)
        assert result.code == 0, result
        return out

    plain = infer_csv("plain")
    assert infer_csv("defaults", "--lower-strength", "1", "--lip-offset", "0").read_bytes() == plain.read_bytes()
    neutral, _ = read_csv(infer_csv("neutral", "--lower-strength", "0", "--upper-strength", "0"), 30)
    assert not neutral.any()
    model, _ = read_csv(plain, 30)
    tuned = FaceControls(lower_strength=1.5, lip_offset=0.05, upper_smoothing_s=0.2)
    options = ("--lower-strength", "1.5", "--lip-offset", "0.05", "--upper-smoothing", "0.2")
    got, _ = read_csv(infer_csv("tuned", *options), 30)
    np.testing.assert_allclose(
        got, ControlsFilter(tuned, 30).process(model), atol=5e-6
    )  # CSV rounding (6 decimals), times 1.5
    assert np.abs(got - model).max() > 0.05
    # a bundle whose manifest sets the controls, and an option over it
    bundle = copy_bundle(shipped_bundle(30), tmp_path, "tuned_bundle")
    edit_manifest(bundle, lambda m: m.update(controls=controls_section(tuned)))
    from_manifest, _ = read_csv(infer_csv("manifest", bundle=bundle), 30)
    np.testing.assert_allclose(from_manifest, got, atol=0)
    over, _ = read_csv(infer_csv("over", "--lower-strength", "0", "--upper-strength", "0", bundle=bundle), 30)
    assert not over.any()
    result = run(
        "infer", audio, "-o", tmp_path / "a.json", "--no-progress", "--lip-offset", "0.05", "--life-amount", "0.5"
    )
    assert result.code == 0, result
    metadata = json.loads((tmp_path / "a.json").read_text())["metadata"]
    assert metadata["controls"]["lip_offset"] == 0.05 and metadata["life_amount"] == 0.5


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--lower-strength", "2.5"), "--lower-strength"),
        (("--lip-offset", "-0.5"), "--lip-offset"),
        (("--upper-smoothing", "nan"), "--upper-smoothing"),
        (("--life-amount", "1.5"), "--life-amount"),
        (("--life", "off", "--life-amount", "0.5"), "--life-amount goes with a life preset"),
    ],
)
def test_bad_control_options_are_one_line_errors(run: Run, tmp_path: Path, options: tuple[str, ...], expected: str):
    audio = write_tone(tmp_path, "tone.wav", seconds=0.3)
    result = run("infer", audio, "-o", tmp_path / "o.csv", "--no-progress", *options)
    assert result.code != 0 and "Traceback" not in result.err and expected in result.err, result
    assert listing(tmp_path) == ["tone.wav"]


# --- real speech (bundled clip) -------------------------------------------------------------


@pytest.fixture(scope="module")
def speech_cache(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """CSV outputs of the bundled clip, keyed by CLI options; filled lazily by `speech_csv`."""
    return {"dir": tmp_path_factory.mktemp("speech")}


def speech_csv(run: Run, cache: dict, checkpoint_dirs: dict[int, Path], fps: int, *extra: str) -> Path:
    """Run `infer` on the bundled clip once per option set in this module; check it; return the CSV."""
    key = (fps, *extra)
    if key not in cache:
        output = cache["dir"] / f"speech-{fps}fps{''.join(extra)}.csv"
        audio = bundled_speech()
        result = infer(run, audio, output, checkpoint_dirs[fps], *extra)
        assert_success(result, expected_rows(audio, fps), fps)
        cache[key] = output
    return cache[key]


@pytest.mark.parametrize("fps", [30, 60])
def test_bundled_speech_full_length(run: Run, speech_cache: dict, checkpoint_dirs: dict[int, Path], fps: int) -> None:
    audio = bundled_speech()
    n = expected_rows(audio, fps)
    assert n == {30: 432, 60: 864}[fps]  # 14.39 s; computed from the file above, pinned here
    values = assert_full_csv(speech_csv(run, speech_cache, checkpoint_dirs, fps), audio, fps)
    assert values.std(axis=0).max() > 0  # the curves move


def test_stride_3_close_to_stride_1(run: Run, speech_cache: dict, checkpoint_dirs: dict[int, Path]) -> None:
    """--stride 3: same row count; curves close to stride 1.

    Tolerances: mean |stride3 - stride1| < 0.05 (absolute, blendshape units in [0, 1]) and < 25 %
    of the curves' own mean absolute deviation from their means. The fixture model is untrained and
    its curves move little (mean deviation about 0.003), so the absolute bound alone is nearly
    vacuous; the relative bound checks the interpolation follows the curves (measured: about 4 %).
    """
    audio = bundled_speech()
    one = assert_full_csv(speech_csv(run, speech_cache, checkpoint_dirs, 30), audio, 30)
    three = assert_full_csv(speech_csv(run, speech_cache, checkpoint_dirs, 30, "--stride", "3"), audio, 30)
    assert one.shape == three.shape
    assert not np.array_equal(one, three)  # the option took effect
    diff = np.abs(three - one).mean()
    movement = np.abs(one - one.mean(axis=0)).mean()
    assert diff < STRIDE_MAX_MEAN_ABS_DIFF
    assert diff < STRIDE_MAX_RELATIVE_DIFF * movement, (diff, movement)


def test_emotion_refresh(run: Run, tmp_path: Path, checkpoint_dirs: dict[int, Path]) -> None:
    """--emotion-refresh 5 on a 6.5 s clip (emotion features at two times): full row count."""
    audio = write_tone(tmp_path, "tone.wav", seconds=6.5)
    output = tmp_path / "anim.csv"
    result = infer(run, audio, output, checkpoint_dirs[30], "--emotion-refresh", "5")
    assert_success(result, expected_rows(audio, 30), 30)
    assert_full_csv(output, audio, 30)


# --- info -----------------------------------------------------------------------------------


def test_info(run: Run, checkpoint_dirs: dict[int, Path]) -> None:
    """`a2bs info`: the checkpoint, its parameter count (matches the model) and MACs per frame."""
    ckpt = checkpoint_dirs[30]
    result = run("info", "--checkpoint", ckpt)
    assert result.code == 0, result
    assert "Traceback" not in result.err
    assert f"checkpoint: {ckpt} (untrained)" in result.out
    match = re.search(r"([\d,]+) parameters", result.out)
    assert match, result.out
    assert int(match.group(1).replace(",", "")) == count_parameters(load_checkpoint(ckpt).model)
    assert re.search(r"\d+(\.\d+)? MMAC", result.out), result.out
    assert "at 30 fps" in result.out


@pytest.mark.parametrize("args", [(), ("--fps", "60"), ("--checkpoint", "FIXTURE")], ids=["default", "fps60", "folder"])
def test_info_runs_without_torch(checkpoint_dirs: dict[int, Path], args: tuple[str, ...]) -> None:
    """`a2bs info` checks the checkpoint's config and weights header and computes its figures from the config:
    torch is never imported (so it starts fast). Control: the same probe sees torch once the model is imported."""
    argv = ["a2bs", "info", *(str(checkpoint_dirs[30]) if a == "FIXTURE" else a for a in args)]
    probe = f"import sys\nfrom a2bs.cli.main import main\nsys.argv = {argv!r}\n"
    probe += (
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc\nprint('torch' in sys.modules)\n"
    )
    for first, torch_loaded in (("", "False"), ("import a2bs.core.model\n", "True")):
        proc = subprocess.run([sys.executable, "-c", first + probe], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "MMAC offline LiteRT model" in proc.stdout
        assert proc.stdout.splitlines()[-1] == torch_loaded, proc.stdout


# --- the real console script (subprocess) ---------------------------------------------------


def _script(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert A2BS.is_file(), f"console script not found at {A2BS}"
    return subprocess.run(
        [str(A2BS), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


def test_script_missing_file(tmp_path: Path, quiet30: Path) -> None:
    proc = _script("infer", "missing.wav", "-o", "anim.csv", "--checkpoint", quiet30, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_error_line(Result(proc.returncode, proc.stdout, proc.stderr), "not found", "missing.wav")
    assert listing(tmp_path) == []


@pytest.mark.slow
def test_script_bundled_speech(tmp_path: Path, speech_cache: dict, run: Run, checkpoint_dirs: dict[int, Path]) -> None:
    """End to end through the console script; identical bytes to the in-process run (deterministic)."""
    audio = bundled_speech()
    args = ("infer", audio, "-o", "anim.csv", "--checkpoint", checkpoint_dirs[30], "--no-progress")
    proc = _script(*args, cwd=tmp_path)
    assert_success(Result(proc.returncode, proc.stdout, proc.stderr), expected_rows(audio, 30), 30)
    assert_full_csv(tmp_path / "anim.csv", audio, 30)
    assert listing(tmp_path) == ["anim.csv"]
    in_process = speech_csv(run, speech_cache, checkpoint_dirs, 30)
    assert (tmp_path / "anim.csv").read_bytes() == in_process.read_bytes()


def test_script_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    """Was: on a strict UTF-8 terminal (e.g. LANG=en_US.UTF-8) the `wrote ...` line of a Latin-1 named file
    (`café.wav` from an old archive) raised UnicodeEncodeError after the work: a traceback and exit 1. Found
    by tests/test_fuzz.py. Such names print as Python prints them on stderr (backslash escapes)."""
    name = os.fsdecode(b"caf\xe9")
    (tmp_path / f"{name}.wav").write_bytes(write_tone(tmp_path, "t.wav", seconds=0.5).read_bytes())
    proc = subprocess.run(
        [str(A2BS), "infer", f"{name}.wav", "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        timeout=180,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
    )
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert b"wrote out/caf\\udce9.csv: 15 frames" in proc.stdout
    assert (tmp_path / "out" / f"{name}.csv").is_file()


# --- regressions: bugs found while writing these tests --------------------------------------


@pytest.mark.parametrize(
    ("args", "mentions"),
    [(["--stride", "abc"], "--stride"), (["--no-such-option"], "--no-such-option")],
    ids=["bad-int", "unknown-option"],
)
def test_usage_error_no_traceback(run: Run, tmp_path: Path, quiet30: Path, args: list[str], mentions: str) -> None:
    """Was: main() did `import click` (typer 0.29 vendors it as typer._click): ModuleNotFoundError, exit 1."""
    audio = write_tone(tmp_path, "tone.wav", seconds=0.5)
    result = run("infer", audio, "-o", tmp_path / "anim.csv", "--checkpoint", quiet30, "--no-progress", *args)
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "Usage:" in result.err and mentions in result.err
    assert listing(tmp_path) == ["tone.wav"]


def test_no_arguments_shows_usage(run: Run) -> None:
    result = run()
    assert result.code == 2
    assert "Traceback" not in result.err
    assert "Usage:" in result.out + result.err


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_emotion_refresh_not_finite(run: Run, tmp_path: Path, quiet30: Path, value: str) -> None:
    """Was: plan() only checked `< 1.0` (False for nan/inf); refresh_times raised ValueError."""
    audio = write_tone(tmp_path, "tone.wav", seconds=0.5)
    result = infer(run, audio, tmp_path / "anim.csv", quiet30, "--emotion-refresh", value)
    assert_one_error_line(result, "--emotion-refresh", "finite", value)
    assert listing(tmp_path) == ["tone.wav"]


def test_default_output_folder_is_a_file(
    run: Run, tmp_path: Path, quiet30: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: without -o, Path("out").mkdir(exist_ok=True) ran first: FileExistsError traceback."""
    audio = write_tone(tmp_path, "tone.wav", seconds=0.5)
    (tmp_path / "out").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    result = run("infer", audio, "--checkpoint", quiet30, "--no-progress")
    assert_one_error_line(result, "out", "not a folder", "-o")
    assert (tmp_path / "out").read_text() == "not a folder"
    assert listing(tmp_path) == ["out", "tone.wav"]


def test_default_output_no_folder_left_on_error(
    run: Run, tmp_path: Path, quiet30: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: without -o, ./out was created before the audio was checked, and left by a failed run."""
    monkeypatch.chdir(tmp_path)
    result = run("infer", "missing.wav", "--checkpoint", quiet30, "--no-progress")
    assert_one_error_line(result, "not found", "missing.wav")
    assert listing(tmp_path) == []


def test_default_output_goes_to_out_folder(
    run: Run, tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without -o the animation goes to ./out/<audio stem>.csv; the folder is created when needed."""
    audio = write_tone(tmp_path, "tone.wav", seconds=0.5)
    monkeypatch.chdir(tmp_path)
    result = run("infer", audio, "--checkpoint", checkpoint_dirs[30], "--no-progress")
    assert_success(result, expected_rows(audio, 30), 30)
    assert_full_csv(tmp_path / "out" / "tone.csv", audio, 30)
    assert listing(tmp_path / "out") == ["tone.csv"]


def test_plot_onto_directory(run: Run, tmp_path: Path, quiet30: Path) -> None:
    """Was: passed the --plot checks with --force, then plot_curves raised IsADirectoryError after
    the CSV was written, leaving .curves.png.part behind."""
    audio = write_tone(tmp_path, "tone.wav", seconds=0.2)
    (tmp_path / "curves.png").mkdir()
    result = infer(run, audio, tmp_path / "anim.csv", quiet30, "--plot", tmp_path / "curves.png", "--force")
    assert_one_error_line(result, "--plot", "curves.png", "folder")
    assert listing(tmp_path) == ["curves.png", "tone.wav"]  # no .part, and no anim.csv either


# --- --emotion-from: the expression from another clip -----------------------------------------------


@pytest.fixture(scope="module")
def five_seconds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 5 s of the bundled English clip (the input); the bundled female clip is the style."""
    audio, sr = sf.read(bundled_speech(), dtype="float32")
    path = tmp_path_factory.mktemp("emotion") / "five.wav"
    sf.write(path, audio[: 5 * sr], sr)
    return path


STYLE = bundled_speech().with_name("speech_en_gb_f.wav")


def test_emotion_from_steers_the_expression(run: Run, tmp_path: Path, five_seconds: Path) -> None:
    """With the trained default checkpoint: another clip's expression changes the curves; the input's
    own clip as the style gives exactly the plain output."""
    outputs = {}
    runs = {"plain": [], "self": ["--emotion-from", five_seconds], "style": ["--emotion-from", STYLE]}
    for name, extra in runs.items():
        output = tmp_path / f"{name}.json"
        result = run("infer", five_seconds, "-o", output, "--no-progress", *extra)
        assert result.code == 0, result
        written = json.loads(output.read_text())
        outputs[name] = np.array(written["frames"])
        assert written["metadata"]["emotion_from"] == (str(extra[1]) if extra else None)
    np.testing.assert_array_equal(outputs["self"], outputs["plain"])
    assert np.abs(outputs["style"] - outputs["plain"]).max() > 1e-4  # 100 steps of the 6 written decimals


def test_emotion_from_errors(run: Run, tmp_path: Path, five_seconds: Path, quiet30: Path) -> None:
    result = infer(run, five_seconds, tmp_path / "a.csv", quiet30, "--emotion-from", tmp_path / "missing.wav")
    assert_one_error_line(result, "missing.wav", "not found")
    style = tmp_path / "style.csv"  # a WAV named .csv: a valid style clip and a valid output path
    shutil.copy(STYLE, style)
    before = style.read_bytes()
    result = infer(run, five_seconds, style, quiet30, "--emotion-from", style, "--force")
    assert_one_error_line(result, "--emotion-from", "choose another output path")
    assert style.read_bytes() == before
    result = infer(run, five_seconds, tmp_path / "b.csv", quiet30, "--emotion-from", STYLE, "--emotion-refresh", "5")
    assert_one_error_line(result, "--emotion-refresh")
    assert listing(tmp_path) == ["style.csv"]
