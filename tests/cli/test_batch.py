"""`a2bs infer` over many files: the tree mirrored, one bad file never stops the batch, resume, workers, a
Dask cluster started here, Ctrl-C in the middle, and the inputs a batch must refuse up front."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audio_fixtures import write_tone
from entry_points import run as run_entry_point

from a2bs.cli import main as cli
from a2bs.cli.batch import REPORT, Job, _unreported

pytestmark = pytest.mark.slow  # worker processes and Dask clusters start for real

BIN = Path(sys.executable).parent


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    return run_entry_point(monkeypatch, capsys, cli.main, "a2bs", *argv)


@pytest.fixture
def dialogue(tmp_path: Path) -> Path:
    """A small tree of lines: two scenes, one nested folder, one file that is not audio."""
    root = tmp_path / "dialogue"
    for rel, seconds in (("scene1/a.wav", 0.6), ("scene1/b.wav", 0.9), ("scene2/deep/c.wav", 0.7)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_tone(root / Path(rel).parent, Path(rel).name, seconds=seconds)
    (root / "scene2" / "broken.wav").write_bytes(b"not audio at all")
    (root / "scene2" / "notes.txt.bak").write_text("ignored: not an audio suffix")
    return root


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _report(out: Path) -> dict:
    return json.loads((out / REPORT).read_text())


def test_batch_mirrors_the_tree_and_survives_a_bad_file(
    dialogue: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys
) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(
        monkeypatch, capsys, "infer", dialogue, "-o", out, "--checkpoint", checkpoint_dirs[30], "--no-progress"
    )
    assert code == 1, err  # a failure is reported, after every other file was written
    assert _tree(out) == [REPORT, "dialogue/scene1/a.csv", "dialogue/scene1/b.csv", "dialogue/scene2/deep/c.csv"]
    assert "3 written" in stdout and "1 failed" in stdout and "broken.wav" in stdout
    report = _report(out)
    assert report["totals"] == {"written": 3, "skipped": 0, "failed": 1, "not run": 0}
    (broken,) = [f for f in report["files"] if f["status"] == "failed"]
    assert broken["source"].endswith("broken.wav") and "not a readable audio file" in broken["reason"]
    assert report["audio_hours_written"] == pytest.approx((0.6 + 0.9 + 0.7) / 3600, rel=0.01)
    # the batch writes what the single-file command writes
    single = tmp_path / "single.csv"
    assert (
        run(
            monkeypatch,
            capsys,
            "infer",
            dialogue / "scene1" / "b.wav",
            "-o",
            single,
            "--checkpoint",
            checkpoint_dirs[30],
            "--no-progress",
        )[0]
        == 0
    )
    assert single.read_bytes() == (out / "dialogue/scene1/b.csv").read_bytes()


def test_resume_skips_finished_outputs_and_force_redoes_them(
    dialogue: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys
) -> None:
    (dialogue / "scene2" / "broken.wav").unlink()
    out = tmp_path / "out"
    args = ("infer", dialogue, "-o", out, "--checkpoint", checkpoint_dirs[30], "--no-progress", "--format", "json")
    assert run(monkeypatch, capsys, *args)[0] == 0
    first = (out / "dialogue/scene1/a.json").stat().st_mtime_ns
    (out / "dialogue/scene1/b.json").unlink()  # as if the batch had stopped before this one
    code, stdout, _ = run(monkeypatch, capsys, *args)
    assert code == 0 and "1 written" in stdout and "2 skipped" in stdout
    assert (out / "dialogue/scene1/a.json").stat().st_mtime_ns == first  # untouched
    assert _report(out)["totals"] == {"written": 1, "skipped": 2, "failed": 0, "not run": 0}
    code, stdout, _ = run(monkeypatch, capsys, *args, "--force")
    assert code == 0 and "3 written" in stdout


def test_list_file_and_several_inputs(tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys) -> None:
    lines = tmp_path / "lines"
    lines.mkdir()
    write_tone(lines, "one.wav", seconds=0.5)
    write_tone(lines, "two.wav", seconds=0.5)
    listing = tmp_path / "todo.txt"
    listing.write_text("# recorded on day 1\nlines/one.wav\n\n" + f"{lines / 'two.wav'}\n")
    extra = write_tone(tmp_path, "three.wav", seconds=0.5)
    out = tmp_path / "out"
    code, _, err = run(
        monkeypatch,
        capsys,
        "infer",
        listing,
        extra,
        "-o",
        out,
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
        "--format",
        "npy",
    )
    assert code == 0, err
    assert _tree(out) == [REPORT, "one.npy", "three.npy", "two.npy"]


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d, t: [d / "scene1" / "a.wav", t / "a.wav"], "would both be written to"),
        (lambda d, t: [d, t / "missing_folder"], "does not exist"),
        (lambda d, t: [t / "empty_dir"], "no audio files"),
        (lambda d, t: [d, "--format", "txt"], "unsupported --format 'txt'"),
    ],
    ids=["duplicate-output-names", "missing-input", "no-audio", "bad-format"],
)
def test_bad_batches_are_refused_before_any_work(
    make, says: str, dialogue: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys
) -> None:
    write_tone(tmp_path, "a.wav", seconds=0.5)
    (tmp_path / "empty_dir").mkdir()
    out = tmp_path / "out"
    code, _, err = run(
        monkeypatch,
        capsys,
        "infer",
        *make(dialogue, tmp_path),
        "-o",
        out,
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
    )
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert not out.exists()


def test_unwritable_output_folder_is_one_error(dialogue: Path, tmp_path: Path, checkpoint_dirs, monkeypatch, capsys):
    folder = Path("/proc") if os.geteuid() == 0 else tmp_path / "readonly"  # root ignores file modes
    if folder != Path("/proc"):
        folder.mkdir()
        folder.chmod(0o555)
    code, _, err = run(
        monkeypatch,
        capsys,
        "infer",
        dialogue,
        "-o",
        folder / "out",
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
    )
    assert code == 2 and err.startswith("error: cannot create the output folder") and "Traceback" not in err


def test_two_worker_processes_write_the_same_files(
    dialogue: Path, tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys
) -> None:
    (dialogue / "scene2" / "broken.wav").unlink()
    one, two = tmp_path / "one", tmp_path / "two"
    base = ("infer", dialogue, "--checkpoint", checkpoint_dirs[30], "--no-progress")
    assert run(monkeypatch, capsys, *base, "-o", one)[0] == 0
    code, stdout, err = run(monkeypatch, capsys, *base, "-o", two, "--workers", "2")
    assert code == 0, err
    assert "2 worker processes" in stdout
    for rel in ("dialogue/scene1/a.csv", "dialogue/scene1/b.csv", "dialogue/scene2/deep/c.csv"):
        assert (one / rel).read_bytes() == (two / rel).read_bytes()
    workers = {f["worker"] for f in _report(two)["files"]}
    assert all(w.startswith("pid ") and w != f"pid {os.getpid()}" for w in workers)


@pytest.mark.slow
def test_dask_cluster_started_here(dialogue: Path, tmp_path: Path, checkpoint_dirs, monkeypatch, capsys) -> None:
    """A real multi-process Dask cluster (scheduler + 2 worker processes), reached by its address as a
    studio's cluster would be."""
    from distributed import LocalCluster

    (dialogue / "scene2" / "broken.wav").unlink()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        out = tmp_path / "out"
        code, stdout, err = run(
            monkeypatch,
            capsys,
            "infer",
            dialogue,
            "-o",
            out,
            "--dask",
            cluster.scheduler_address,
            "--checkpoint",
            checkpoint_dirs[30],
            "--no-progress",
        )
    assert code == 0, err
    assert f"Dask cluster {cluster.scheduler_address}" in stdout and "3 written" in stdout
    assert _tree(out) == [REPORT, "dialogue/scene1/a.csv", "dialogue/scene1/b.csv", "dialogue/scene2/deep/c.csv"]
    assert len({f["worker"] for f in _report(out)["files"]}) >= 1
    code, _, err = run(
        monkeypatch,
        capsys,
        "infer",
        dialogue,
        "-o",
        tmp_path / "x",
        "--dask",
        "tcp://127.0.0.1:9",
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
    )
    assert code == 2 and "cannot reach the Dask scheduler" in err


def test_a_file_finished_during_the_interrupt_is_reported_written(tmp_path: Path) -> None:
    """Ctrl-C can land after a worker renamed its output into place but before its result arrived: the
    report counts it as written; an older file (a --force run's previous output) or none is "not run"."""
    started = time.time()
    fresh, old, missing = (Job(tmp_path / f"{n}.wav", tmp_path / f"{n}.csv") for n in ("fresh", "old", "missing"))
    fresh.output.write_text("frame\n")
    old.output.write_text("frame\n")
    os.utime(old.output, (started - 60, started - 60))
    assert _unreported(fresh, started).status == "written"
    assert _unreported(old, started).status == "not run"
    assert _unreported(missing, started).status == "not run"


@pytest.mark.slow
def test_ctrl_c_in_the_middle_keeps_finished_files_and_resumes(tmp_path: Path, checkpoint_dirs) -> None:
    lines = tmp_path / "lines"
    lines.mkdir()
    for i in range(8):
        write_tone(lines, f"line{i}.wav", seconds=40.0)
    out = tmp_path / "out"
    cmd = [
        BIN / "a2bs",
        "infer",
        lines,
        "-o",
        out,
        "--checkpoint",
        checkpoint_dirs[30],
        "--no-progress",
        "--workers",
        "2",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(out.glob("lines/*.csv")):  # wait for the first finished file
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    finished = sorted(p.name for p in out.glob("lines/*.csv"))
    assert finished and len(finished) < 8
    assert [p.name for p in out.rglob(".*")] == []  # no temp file, no lock left anywhere
    report = _report(out)
    assert report["totals"]["not run"] > 0 and report["totals"]["written"] == len(finished)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{len(finished)} skipped" in done.stdout
    assert len(list(out.glob("lines/*.csv"))) == 8


def test_previews_single_and_batch(tmp_path: Path, checkpoint_dirs: dict[int, Path], monkeypatch, capsys) -> None:
    import imageio_ffmpeg

    lines = tmp_path / "lines"
    lines.mkdir()
    one = write_tone(lines, "one.wav", seconds=0.8)
    write_tone(lines, "two.wav", seconds=0.5)
    base = ("--checkpoint", checkpoint_dirs[30], "--no-progress")
    code, _, err = run(
        monkeypatch, capsys, "infer", one, "-o", tmp_path / "one.csv", "--preview", tmp_path / "one.mp4", *base
    )
    assert code == 0, err
    frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "one.mp4"))
    assert frames == 24 and seconds == pytest.approx(0.8, abs=0.05)  # ceil(0.8 * 30) frames at 30 fps
    code, _, err = run(
        monkeypatch, capsys, "infer", one, "-o", tmp_path / "x.csv", "--preview", tmp_path / "one.gif", *base
    )
    assert code == 2 and "unsupported preview format" in err and not (tmp_path / "x.csv").exists()
    out = tmp_path / "out"
    code, _, err = run(monkeypatch, capsys, "infer", lines, "-o", out, "--previews", *base)
    assert code == 0, err
    assert _tree(out) == [REPORT, "lines/one.csv", "lines/one.mp4", "lines/two.csv", "lines/two.mp4"]


def test_default_infer_and_batch_load_no_torch(tmp_path: Path) -> None:
    """The default engine (the shipped LiteRT model) keeps torch and pandas out of the process: what keeps
    `a2bs infer` and each batch worker small (benchmarks/bench_memory.py measures the RSS)."""
    write_tone(tmp_path, "a.wav", seconds=0.5)
    write_tone(tmp_path, "b.wav", seconds=0.5)
    code = (
        "import sys\nfrom a2bs.cli import main\n"
        f"for argv in (['infer', {str(tmp_path / 'a.wav')!r}, '-o', {str(tmp_path / 'a.csv')!r}, '--no-progress'],"
        f" ['infer', {str(tmp_path)!r}, '-o', {str(tmp_path / 'out')!r}, '--no-progress']):\n"
        "    sys.argv = ['a2bs', *argv]\n"
        "    try:\n        main.main()\n    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
        "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "a.csv").is_file() and (tmp_path / "out" / REPORT).is_file()
