"""`a2bs infer` over many files: the tree mirrored, one bad file never stops the batch, resume, workers, a
Dask cluster started here, Ctrl-C in the middle, and the inputs a batch must refuse up front."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
from audio_fixtures import write_tone
from entry_points import run as run_entry_point

from a2bs.cli import batch
from a2bs.cli import main as cli
from a2bs.cli.animate import AnimatorSpec
from a2bs.cli.batch import REPORT, Job, Outcome, _progress_bar, _unreported, _write_report

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
    # the report covers the whole batch: the files of the first run keep their rows (was: "skipped", 0 s)
    report = _report(out)
    assert report["totals"] == {"written": 3, "skipped": 0, "failed": 0, "not run": 0}
    assert report["audio_hours_written"] == pytest.approx((0.6 + 0.9 + 0.7) / 3600, rel=0.01)
    assert report["engine"]["fps"] == 30  # the fps written at (was: null without --fps)
    rows = {Path(f["source"]).name: f for f in report["files"]}
    assert rows["a.wav"]["reason"] == "written by an earlier run" and rows["a.wav"]["audio_s"] == pytest.approx(0.6)
    assert rows["b.wav"]["reason"] == "" and rows["b.wav"]["fps"] == 30
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


def _list_file(folder: Path, name: str, body: str | bytes) -> Path:
    path = folder / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return path


def _link(target: Path, link: Path) -> Path:
    link.symlink_to(target)
    return link


TOO_LONG = "x" * 300  # over NAME_MAX (255)
HOSTILE_BATCHES = {
    # item 3: the animation of batch_report.wav would be replaced by the report
    "report-name": (lambda d, t: [write_tone(t, "batch_report.wav"), d, "--format", "json"], "the batch's report"),
    # items 6, 7, 26: list files are read as untrusted files, their entries checked before any work
    "list-fifo": (lambda d, t: [(os.mkfifo(t / "fifo.txt"), t / "fifo.txt")[1]], "not a regular file"),
    "list-dev-zero": (lambda d, t: [_link(Path("/dev/zero"), t / "zero.txt")], "not a regular file"),
    "list-missing-entry": (lambda d, t: [_list_file(t, "l.txt", "dialogue/scene1/a.wav\nnope.wav\n")], "line 2"),
    "list-not-utf8": (lambda d, t: [_list_file(t, "l.txt", b"\xff\xfe.wav\n")], "not UTF-8"),
    "list-entry-a-folder": (lambda d, t: [_list_file(t, "l.txt", "/\n")], "line 1 of"),  # was: ValueError
    # item 10: a name too long, given or listed
    "input-too-long": (lambda d, t: [d, t / f"{TOO_LONG}.wav"], "File name too long"),
    "list-entry-too-long": (lambda d, t: [_list_file(t, "l.txt", f"{TOO_LONG}.wav\n")], "File name too long"),
    # item 20: one file twice
    "same-path-twice": (lambda d, t: [d / "scene1/a.wav", d / "scene1/a.wav"], "given twice"),
    "same-folder-twice": (lambda d, t: [d, d], "given twice"),
    "repeated-list-line": (lambda d, t: [_list_file(t, "l.txt", "dialogue/scene1/a.wav\n" * 2)], "given twice"),
    "two-spellings": (lambda d, t: [d / "scene1/a.wav", d / "scene2/../scene1/a.wav"], "given twice"),
    "a-link-to-it": (lambda d, t: [d / "scene1/a.wav", _link(d / "scene1/a.wav", t / "x.wav")], "given twice"),
    "emotion-from-too-long": (lambda d, t: [d, "--emotion-from", t / TOO_LONG], "--emotion-from: File name too long"),
    "emotion-from-missing": (lambda d, t: [d, "--emotion-from", t / "nope.wav"], "--emotion-from: audio file not"),
    # items 17, 29: a malformed or unreachable scheduler address
    "dask-malformed": (lambda d, t: [d, "--dask", "tcp://host:notaport"], "not a scheduler address"),
    "dask-unreachable": (lambda d, t: [d, "--dask", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
}


@pytest.mark.parametrize(("make", "says"), HOSTILE_BATCHES.values(), ids=HOSTILE_BATCHES.keys())
def test_hostile_batches_are_refused_before_any_work(
    make, says: str, dialogue: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """One line, exit 2, nothing written (no output folder, no report), never a hang or a traceback."""
    (dialogue / "scene2" / "broken.wav").unlink()
    monkeypatch.setattr(batch, "DASK_CONNECT_S", 2, raising=False)
    out = tmp_path / "out"
    code, _, err = run(monkeypatch, capsys, "infer", *make(dialogue, tmp_path), "-o", out, "--no-progress")
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert not out.exists()


def test_an_output_folder_name_too_long_is_one_error(dialogue: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = run(monkeypatch, capsys, "infer", dialogue, "-o", tmp_path / "out" / TOO_LONG, "--no-progress")
    assert code == 2 and err.startswith("error: cannot use -o") and "File name too long" in err, err
    assert not (tmp_path / "out").exists()


def test_progress_bar_ends_at_its_total(capsys) -> None:
    """Was: the total rounded once and each file's seconds rounded again, so the bar overshot (a
    TqdmWarning, 100 % twice). Three files of 1.06 s: 3.18 s in all, 3 x 1.1 s counted."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with _progress_bar(3 * 1.06, 3, True) as advance:
            for _ in range(3):
                advance(1.06, Outcome("a.wav", "a.csv", "written"))
    assert "100%" in capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]


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
    # with previews a file is finished only with its preview (was: "written" without it)
    assert _unreported(fresh, started, previews=True).status == "not run"
    fresh.output.with_suffix(".mp4").write_bytes(b"video")
    assert _unreported(fresh, started, previews=True, durations={fresh.source: 1.5}).audio_s == 1.5


def test_a_resumed_report_keeps_what_the_earlier_run_of_the_same_engine_wrote(tmp_path: Path) -> None:
    """Rows the earlier run reported written stay written, also those that finished while it was being
    interrupted (no worker, no fps: here the only ones, so that run's fps is unknown); a report of another
    engine is not believed. Was: "skipped" with audio_s 0."""
    jobs = [Job(tmp_path / f"{n}.wav", tmp_path / f"{n}.csv") for n in ("a", "b", "c")]
    spec, started = AnimatorSpec(), time.time() - 1
    for job in jobs[:2]:
        job.output.write_text("finished during the interrupt")
    durations = {jobs[0].source: 2.0, jobs[1].source: 3.0, jobs[2].source: 4.0}
    _write_report(tmp_path, jobs, [], durations, spec, 2, None, False, 1.0, started)
    assert [f["status"] for f in _report(tmp_path)["files"]] == ["written", "written", "not run"]

    skipped = [Outcome(str(j.source), str(j.output), "skipped", "finished before") for j in jobs[:2]]
    resumed = [*skipped, Outcome(str(jobs[2].source), str(jobs[2].output), "written", "", 4.0, 1.0, "pid 8", 30)]
    _write_report(tmp_path, jobs, resumed, {jobs[2].source: 4.0}, spec, 2, None, False, 1.0, time.time())
    report = _report(tmp_path)
    assert report["totals"] == {"written": 3, "skipped": 0, "failed": 0, "not run": 0}
    assert report["audio_seconds_written"] == 9.0 and report["engine"]["fps"] == 30
    assert [f["worker"] for f in report["files"]] == ["", "", "pid 8"]

    other = AnimatorSpec(stride=2)  # the control: another engine's rows are not taken over
    _write_report(tmp_path, jobs, skipped, {}, other, 1, None, False, 1.0, time.time())
    assert _report(tmp_path)["totals"]["skipped"] == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    "extra", [("--workers", "2"), ("--dask", "auto", "--workers", "2", "--previews")], ids=["workers", "dask-previews"]
)
def test_ctrl_c_in_the_middle_keeps_finished_files_and_resumes(
    extra: tuple[str, ...], tmp_path: Path, checkpoint_dirs
) -> None:
    """Ctrl-C as a terminal sends it (to the whole process group, workers included) while files are being
    written: one line and exit 130, no temp file or lock anywhere, the report names exactly the finished
    files (with their previews), and the same command resumes into a report of the whole batch. Was: worker
    tracebacks, `.part`/`.wav` temps and locks left by Dask workers, a file without its preview "written",
    and a resumed report that counted only its own run."""
    previews = "--previews" in extra
    lines = tmp_path / "lines"
    lines.mkdir()
    for i in range(8):
        write_tone(lines, f"line{i}.wav", seconds=20.0)
    out = tmp_path / "out"
    cmd = [BIN / "a2bs", "infer", lines, "-o", out, "--checkpoint", checkpoint_dirs[30], "--no-progress", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (list(out.glob("lines/*.csv")) and list(out.glob("lines/.*.part"))):  # one done, one being written
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    said = [line for line in err.splitlines() if not line.startswith("warning: no trained")]  # the fixture model
    assert said == ["interrupted (SIGINT): nothing was left half-written"], err[-3000:]
    assert [p.name for p in out.rglob(".*")] == []  # no temp file, no lock left anywhere
    finished = sorted(p.stem for p in out.glob("lines/*.csv") if not previews or p.with_suffix(".mp4").is_file())
    assert len(finished) < 8
    report = _report(out)
    written = sorted(Path(f["output"]).stem for f in report["files"] if f["status"] == "written")
    assert written == finished and report["totals"]["not run"] == 8 - len(finished)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{8 - len(finished)} written" in done.stdout
    assert len(list(out.glob("lines/*.csv"))) == 8
    report = _report(out)
    assert report["totals"] == {"written": 8, "skipped": 0, "failed": 0, "not run": 0}
    assert report["audio_hours_written"] == pytest.approx(8 * 20 / 3600, rel=1e-3)


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
