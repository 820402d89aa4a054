"""`a2bs infer` over whole folders of dialogue: many files, one model load per worker.

Inputs are files, folders (searched recursively for audio) and list files (`.txt`/`.lst`: one path per
line, relative to the list's folder, `#` comments). Outputs mirror the input tree under OUT_DIR: a file
given directly lands at OUT_DIR/<name>.<format>, a file found in folder F at OUT_DIR/<F's name>/<path
inside F>.<format>. The batch is resumable (an output that exists is complete, because every output is
written atomically, so it is skipped unless --force) and one bad file never stops it: its reason goes to
the summary and to OUT_DIR/batch_report.json, and the command exits 1 at the end. On Ctrl-C the workers
(which ignore it) are stopped by the parent, so the files being written unwind, and the report is written
once they have stopped.

Where the work runs:
- one worker: in this process;
- `--workers N`: N processes on this machine (spawned, so each starts clean), one model load each, one
  torch thread each (N workers on N cores do not oversubscribe);
- `--dask auto|ADDRESS`: a Dask cluster, local processes or a real one: `dask scheduler` on one machine,
  `dask worker tcp://HOST:8786 --nthreads 1` on each worker machine (same a2bs install, same paths to the
  audio and the output folder, e.g. a shared file system). Each Dask worker process loads the model once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from a2bs.cli.animate import Animator, AnimatorSpec
from a2bs.core.errors import (
    A2BSError,
    AudioError,
    Fields,
    Interrupted,
    one_line,
    raise_if_interrupted,
    read_json,
    read_text,
    request_interrupt,
    signals_raise,
)

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")
LIST_SUFFIXES = (".txt", ".lst")
OUTPUT_FORMATS = ("csv", "json", "npy")
REPORT = "batch_report.json"
LIST_MAX_BYTES = 16_000_000  # some 100,000 paths; a bigger "list file" is something else, and is not read
DASK_CONNECT_S = 30  # how long a scheduler address is tried before the batch is refused
STOP_WAIT_S = 30.0  # how long an interrupted local Dask worker gets to unwind the file it is writing


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path


@dataclass
class Outcome:
    source: str
    output: str
    status: str  # written | skipped (finished before) | failed | not run
    reason: str = ""
    audio_s: float = 0.0
    seconds: float = 0.0
    worker: str = ""
    fps: int | None = None  # of the animation written


def is_batch(inputs: list[Path]) -> bool:
    """Several inputs, a folder or a list file: the batch mode (one plain file keeps `a2bs infer` as is)."""
    return len(inputs) > 1 or any(p.is_dir() or p.suffix.lower() in LIST_SUFFIXES for p in inputs)


def collect_jobs(inputs: list[Path], out_dir: Path, output_format: str) -> list[Job]:
    """Every input file with its output path; a one-line A2BSError, before any work, for a missing input
    (also inside a list file), an empty batch, a file given twice (the same path, a folder or list line
    repeated, another spelling or a link to it) and two inputs that would write the same output or the
    batch report."""
    if output_format not in OUTPUT_FORMATS:
        raise A2BSError(f"unsupported --format {output_format!r}: use csv, json or npy")
    jobs: list[Job] = []
    for given in inputs:
        kind = _stat(given, f"input {given}").st_mode
        if stat.S_ISDIR(kind):
            found = sorted(p for p in given.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            root = given.resolve().name or "audio"
            jobs += [Job(p, out_dir / root / p.relative_to(given).with_suffix(f".{output_format}")) for p in found]
        elif given.suffix.lower() in LIST_SUFFIXES:
            jobs += [Job(p, out_dir / p.with_suffix(f".{output_format}").name) for p in _read_list(given)]
        else:  # a file (one that is not audio, or a FIFO, fails in `probe` with its reason)
            jobs.append(Job(given, out_dir / given.with_suffix(f".{output_format}").name))
    if not jobs:
        raise A2BSError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {', '.join(map(str, inputs))}")
    by_file: dict[tuple[int, int], int] = {}
    for i, job in enumerate(jobs):
        info = _stat(job.source, f"input {job.source}")
        first = jobs[by_file.setdefault((info.st_dev, info.st_ino), i)].source
        if by_file[(info.st_dev, info.st_ino)] != i:
            also = "" if first == job.source else f" (also as {first})"
            raise A2BSError(f"{job.source} is given twice{also}: give each file once (nothing was animated)")
    report, by_output = out_dir / REPORT, {}
    for job in jobs:
        if job.output == report or report in job.output.parents:
            raise A2BSError(
                f"{job.source} would be written to {job.output}, the batch's report: rename it or choose "
                "another --format"
            )
        other = by_output.setdefault(job.output, job.source)
        if other != job.source:
            raise A2BSError(
                f"{other} and {job.source} would both be written to {job.output}: rename one, "
                "or give their folders as inputs so the output tree keeps them apart"
            )
    return jobs


def _stat(path: Path, what: str) -> os.stat_result:
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise A2BSError(f"{what} does not exist: check the path") from None
    except (OSError, ValueError) as exc:  # ENAMETOOLONG, EACCES, ELOOP, an embedded NUL
        raise A2BSError(f"cannot read {what}: {getattr(exc, 'strerror', None) or exc}") from None


def _read_list(path: Path) -> list[Path]:
    """The files a list file names (one path per line, relative to the list's folder, `#` comments), each
    checked to be a file now, so a wrong line is refused before any work."""
    text = read_text(path, "list file", LIST_MAX_BYTES)
    files = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        file = Path(entry) if Path(entry).is_absolute() else path.parent / entry
        what = f"{file} (line {number} of {path})"
        if not stat.S_ISREG(_stat(file, what).st_mode):
            raise A2BSError(f"{what} is not a file: a list file names audio files, one per line")
        files.append(file)
    return files


def check_out_dir(out_dir: Path) -> None:
    """-o of a batch is a folder that exists or can be made in a writable one. Nothing is created here:
    `run_batch` makes it once the workers are ready, so a refused batch leaves nothing behind."""
    existing = out_dir.absolute()
    try:
        while not existing.exists():
            existing = existing.parent
        longest = max((len(os.fsencode(p)) for p in out_dir.absolute().relative_to(existing).parts), default=0)
        if longest > os.pathconf(existing, "PC_NAME_MAX"):  # a folder to create whose name is too long
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
    except OSError as exc:
        raise A2BSError(f"cannot use -o {out_dir}: {exc.strerror or exc}") from None
    if existing == out_dir.absolute() and not existing.is_dir():
        raise A2BSError(f"-o {out_dir} is a file: for several inputs give a folder")
    if not existing.is_dir():
        raise A2BSError(f"cannot create the output folder {out_dir}: {existing} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "write to" if existing == out_dir.absolute() else "create"
        raise A2BSError(f"cannot {what} the output folder {out_dir}: permission denied (choose another -o)")


def _make_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise A2BSError(f"cannot create the output folder {out_dir}: {exc.strerror}") from None


def check_dask_address(address: str) -> None:
    """`--dask` is `auto` or a scheduler address (tcp://HOST:PORT), checked before anything is read or written."""
    if address == "auto":
        return
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address, strict=True)
        get_backend(scheme)
        port = parse_host_port(location)[1]
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is not in 1-65535")
    except (ValueError, ImportError) as exc:
        raise A2BSError(
            f"--dask {address} is not a scheduler address ({one_line(exc, 120)}): give auto or tcp://HOST:PORT"
        ) from None


# --- the work of one file, in whichever process runs it ------------------------------------------

_animators: dict[AnimatorSpec, Animator] = {}  # one loaded model per spec and process


def _animator(spec: AnimatorSpec) -> Animator:
    if spec not in _animators:
        from a2bs.cli.common import load_model

        _animators[spec] = Animator(spec, load_model)
    return _animators[spec]


def animate_job(job: Job, spec: AnimatorSpec, force: bool, preview: bool = False) -> Outcome:
    """Animate one file (and render its preview beside it); any expected problem becomes a failed Outcome
    (the batch goes on)."""
    outcome = Outcome(str(job.source), str(job.output), "written", worker=f"pid {os.getpid()}")
    try:
        job.output.parent.mkdir(parents=True, exist_ok=True)
        written = _animator(spec).write(job.source, job.output, force=force, keep_frames=2**62 if preview else 0)
        outcome.audio_s, outcome.seconds, outcome.fps = written.duration_s, written.seconds, written.fps
        if preview:
            import numpy as np

            from a2bs.viz.preview import render_preview

            render_preview(
                np.concatenate(written.kept),
                written.fps,
                job.output.with_suffix(".mp4"),
                job.source,
                labels=[written.label],
                title=job.source.name,
                force=True,
            )
    except (A2BSError, AudioError) as exc:
        outcome.status, outcome.reason = "failed", str(exc)
    except OSError as exc:
        outcome.status, outcome.reason = "failed", f"cannot write {job.output}: {exc.strerror or exc}"
    return outcome


def _worker_job(job: Job, spec: AnimatorSpec, force: bool, preview: bool) -> Outcome:
    """`animate_job` in a worker (a local process or a Dask worker): the parent stops a batch with SIGTERM
    (local processes) or `request_interrupt` (its own Dask cluster); the file being written unwinds (no
    temp file, no lock: also when the signal lands inside openSMILE's C callback, whose exception Python
    only prints, since the next chunk raises it again) and is reported "not run", without a traceback."""
    try:
        raise_if_interrupted()  # stopped while this file waited in the queue
        with signals_raise((signal.SIGTERM,)):  # in the main thread only: a Dask task thread polls instead
            return animate_job(job, spec, force, preview)
    except Interrupted as stop:
        request_interrupt(stop.signum)  # and every file still queued for this worker is not run either
        return Outcome(str(job.source), str(job.output), "not run", "interrupted", worker=f"pid {os.getpid()}")


def _worker_init() -> None:
    """A worker process on this machine: one torch thread. Ctrl-C reaches the whole process group, so the
    workers ignore SIGINT and let the parent stop them with SIGTERM, which unwinds the file being written
    (`_worker_job`); between files it is only recorded (raising there would break the executor's queue),
    so the files still queued are not run, and the executor's shutdown ends the process."""
    os.environ["OMP_NUM_THREADS"] = "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, _frame: request_interrupt(signum))


def _quiet_dask_logs() -> None:
    """Run by each worker of the batch's own Dask cluster (and here) before it closes."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def _ignore_sigint() -> None:
    """Run by each worker of the batch's own Dask cluster, on its event loop (the main thread)."""
    with contextlib.suppress(ValueError):  # not the main thread: nothing to do
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# --- running a batch -----------------------------------------------------------------------------


def run_batch(
    inputs: list[Path],
    out_dir: Path,
    spec: AnimatorSpec,
    *,
    output_format: str = "csv",
    workers: int = 1,
    dask: str | None = None,
    force: bool = False,
    previews: bool = False,
    show_progress: bool = False,
    echo: Callable[[str], None] = print,
) -> list[Outcome]:
    """Animate every input; returns the failures (also in OUT_DIR/batch_report.json)."""
    from a2bs.core.audio import probe

    started, started_wall = time.perf_counter(), time.time()
    jobs = collect_jobs(inputs, out_dir, output_format)
    check_out_dir(out_dir)
    if dask:
        check_dask_address(dask)
    if spec.emotion_from is not None:  # one clip for every file: refused once here, not failed file by file
        try:
            probe(spec.emotion_from)
        except (AudioError, OSError) as exc:
            raise A2BSError(f"--emotion-from: {getattr(exc, 'strerror', None) or exc}") from None
    outcomes: list[Outcome] = []
    todo: list[Job] = []
    durations: dict[Path, float] = {}
    for job in jobs:
        if job.output.exists() and (not previews or job.output.with_suffix(".mp4").exists()) and not force:
            outcomes.append(Outcome(str(job.source), str(job.output), "skipped", "finished before (--force redoes)"))
            continue
        try:
            durations[job.source] = probe(job.source).duration_s
        except AudioError as exc:  # unreadable: fails here, before a worker spends time on it
            outcomes.append(Outcome(str(job.source), str(job.output), "failed", str(exc)))
            continue
        todo.append(job)
    where = (
        f"Dask cluster {dask}"
        if dask
        else f"{workers} worker process{'es' * (workers > 1)}"
        if workers > 1
        else ("this process")
    )
    echo(
        f"batch: {len(jobs)} files, {len(todo)} to animate ({sum(durations.values()) / 3600:.2f} h of audio) "
        f"on {where}; {sum(o.status == 'skipped' for o in outcomes)} finished before"
    )
    made = False
    try:
        with _executor(todo, spec, force or previews, previews, workers, dask) as results:
            _make_out_dir(out_dir)  # only once the workers are there: an unreachable cluster leaves nothing
            made = True
            with _progress_bar(sum(durations.values()), len(todo), show_progress) as advance:
                for outcome in results:
                    outcomes.append(outcome)
                    advance(durations.get(Path(outcome.source), 0.0), outcome)
    finally:  # also on Ctrl-C, once the workers have stopped: what was finished; the next run resumes there
        if made:
            seconds = time.perf_counter() - started
            _write_report(out_dir, jobs, outcomes, durations, spec, workers, dask, previews, seconds, started_wall)
    failures = [o for o in outcomes if o.status == "failed"]
    elapsed = time.perf_counter() - started
    audio_h = sum(o.audio_s for o in outcomes if o.status == "written") / 3600
    echo(
        f"batch: {sum(o.status == 'written' for o in outcomes)} written ({audio_h:.2f} h of audio, "
        f"{audio_h * 3600 / max(elapsed, 1e-9):.1f}x real time), {sum(o.status == 'skipped' for o in outcomes)} "
        f"skipped, {len(failures)} failed in {elapsed:.1f} s; report: {out_dir / REPORT}"
    )
    for failure in failures:
        echo(f"  failed: {failure.source}: {failure.reason}")
    return failures


@contextlib.contextmanager
def _executor(
    todo: list[Job], spec: AnimatorSpec, force: bool, preview: bool, workers: int, dask: str | None
) -> Iterator[Iterator[Outcome]]:
    """The workers, ready (a cluster reached) before anything is written; yields the outcomes as files
    finish. Leaving it stops them, also on Ctrl-C, without leaving a temp file or a lock behind."""
    if not todo:
        yield iter(())
    elif dask:
        with _dask_cluster(todo, spec, force, preview, workers, dask) as results:
            yield results
    elif workers > 1:
        with _processes(todo, spec, force, preview, workers) as results:
            yield results
    else:
        yield _in_this_process(todo, spec, force, preview)


def _in_this_process(todo: list[Job], spec: AnimatorSpec, force: bool, preview: bool) -> Iterator[Outcome]:
    for job in todo:
        raise_if_interrupted()
        yield animate_job(job, spec, force, preview)


@contextlib.contextmanager
def _processes(
    todo: list[Job], spec: AnimatorSpec, force: bool, preview: bool, workers: int
) -> Iterator[Iterator[Outcome]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # a clean interpreter each: no state forked from this one
    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=context, initializer=_worker_init)
    try:
        futures = [pool.submit(_worker_job, job, spec, force, preview) for job in todo]
        yield (future.result() for future in as_completed(futures))
    except BaseException:
        # Ctrl-C or SIGTERM here: stop the queue, and let the files being written unwind (SIGTERM: a busy
        # worker removes its temp file and returns; every worker then returns its queued files unrun).
        for process in list(getattr(pool, "_processes", {}).values()):  # the executor keeps them privately
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@contextlib.contextmanager
def _dask_cluster(
    todo: list[Job], spec: AnimatorSpec, force: bool, preview: bool, workers: int, address: str
) -> Iterator[Iterator[Outcome]]:
    """A Dask cluster: `auto` starts one here (its workers ignore Ctrl-C; on a stop the files they are
    writing unwind before the cluster closes); a scheduler address is connected to (on a stop its queued
    files are cancelled; a file already running finishes whole on its machine: outputs are atomic)."""
    from distributed import Client, LocalCluster, as_completed, wait

    cluster = None
    try:
        if address == "auto":
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                env={"OMP_NUM_THREADS": "1"},
            )
        client = Client(cluster if cluster is not None else address, timeout=f"{DASK_CONNECT_S}s")
    except (OSError, ValueError) as exc:
        if cluster is not None:
            cluster.close()
        raise A2BSError(
            f"cannot reach the Dask scheduler at {address}: {one_line(exc, 200)}; start one with `dask scheduler`"
        ) from None
    futures: list[Any] = []
    try:
        if cluster is not None:
            client.run(_ignore_sigint)
        futures = client.map(_worker_job, todo, spec=spec, force=force, preview=preview, pure=False)
        yield (future.result() for future in as_completed(futures))
    except BaseException:
        if cluster is not None:  # ours: every running and queued file stops at its next chunk, cleanly
            with contextlib.suppress(Exception):  # a worker gone or too slow: closing the cluster ends it
                client.run(request_interrupt)
                wait(futures, timeout=STOP_WAIT_S)
        else:
            client.cancel(futures)
        raise
    finally:
        if cluster is None:
            client.close()
        else:  # its closing races (a worker's heartbeat to a scheduler gone first): noise, not the user's business
            with contextlib.suppress(Exception):
                client.run(_quiet_dask_logs)
            level = logging.getLogger("distributed").level
            _quiet_dask_logs()
            try:
                client.close()
                cluster.close()
            finally:
                logging.getLogger("distributed").setLevel(level)


@contextlib.contextmanager
def _progress_bar(total_s: float, files: int, show: bool) -> Iterator[Callable[[float, Outcome], None]]:
    """One bar in seconds of audio, with files done and failed beside it; yields `advance(seconds, outcome)`.
    Counted in whole tenths of a second of the running sum, so the bar ends exactly at its total."""
    from tqdm import tqdm

    layout = "{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}{postfix}]"
    done, failed, done_s = 0, 0, 0.0
    total = round(total_s * 10)
    with tqdm(total=total, unit_scale=0.1, disable=not show, desc="a2bs infer", bar_format=layout) as bar:

        def advance(seconds: float, outcome: Outcome) -> None:
            nonlocal done, failed, done_s
            done, failed, done_s = done + 1, failed + (outcome.status == "failed"), done_s + seconds
            bar.set_postfix_str(f"{done}/{files} files, {failed} failed", refresh=False)
            bar.update(min(total, round(done_s * 10)) - bar.n)

        yield advance


def _write_report(
    out_dir: Path,
    jobs: list[Job],
    outcomes: list[Outcome],
    durations: dict[Path, float],
    spec: AnimatorSpec,
    workers: int,
    dask: str | None,
    previews: bool,
    seconds: float,
    started_wall: float,
) -> None:
    """OUT_DIR/batch_report.json: every file of the batch. A resumed batch's report covers the runs before
    it: a file this run skipped keeps the row of the earlier run that wrote it (same engine)."""
    from a2bs.core.files import write_text_atomic

    engine = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()}
    engine["controls"] = dict(spec.controls)  # as JSON gives it back, so a resumed batch finds its engine
    fps = {o.fps for o in outcomes if o.status == "written"}
    if engine["fps"] is None and len(fps) == 1:
        engine["fps"] = fps.pop()
    earlier, earlier_fps = _earlier_rows(out_dir / REPORT, engine)
    engine["fps"] = engine["fps"] or earlier_fps
    finished = {o.source for o in outcomes}
    pending = [_unreported(j, started_wall, previews, durations) for j in jobs if str(j.source) not in finished]
    merged = [earlier.get((o.source, o.output), o) if o.status == "skipped" else o for o in outcomes]
    rows = [asdict(o) for o in _sorted([*merged, *pending])]
    written = [r for r in rows if r["status"] == "written"]
    report = {
        "format": "a2bs-batch-report",
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine": engine,
        "workers": workers,
        "dask": dask,
        "seconds": round(seconds, 2),
        "totals": {s: sum(r["status"] == s for r in rows) for s in ("written", "skipped", "failed", "not run")},
        "audio_seconds_written": round(sum(r["audio_s"] for r in written), 2),
        "audio_hours_written": round(sum(r["audio_s"] for r in written) / 3600, 6),
        "files": rows,
    }
    write_text_atomic(out_dir / REPORT, json.dumps(report, indent=1) + "\n")


def _earlier_rows(path: Path, engine: dict[str, Any]) -> tuple[dict[tuple[str, str], Outcome], int | None]:
    """The files an earlier run of the same engine wrote, from its report (by source and output), and
    that engine's fps. A report that is missing, unreadable, not ours or of another engine gives none:
    the files it lists count as skipped."""
    if not path.is_file():
        return {}, None
    try:
        report = Fields(read_json(path, "batch report"), str(path))
        theirs = report.data.get("engine")
        if report.str("format") != "a2bs-batch-report" or not isinstance(theirs, dict):
            return {}, None
        earlier_fps = Fields(theirs, str(path)).int("fps", 1, 240, optional=True)
        same = all(theirs.get(k) == v for k, v in engine.items() if k != "fps")  # fps: unknown if none was written
        if not same or (None not in (engine["fps"], earlier_fps) and engine["fps"] != earlier_fps):
            return {}, None
        files = report.list("files", 0, 10_000_000)
    except A2BSError:
        return {}, None
    rows = {}
    for row in files:
        try:
            f = Fields(row, str(path))
            if f.str("status") != "written":
                continue
            source, output, worker = f.str("source"), f.str("output"), f.data.get("worker")
            worker = worker if isinstance(worker, str) and len(worker) <= 200 else ""  # "" if not reported
            rows[(source, output)] = Outcome(
                source,
                output,
                "written",
                "written by an earlier run",
                f.number("audio_s", 0, 1e7),
                f.number("seconds", 0, 1e9),
                worker,
                f.int("fps", 1, 240, optional=True),
            )
        except A2BSError:
            continue
    return rows, earlier_fps


def _unreported(
    job: Job, started_wall: float, previews: bool = False, durations: dict[Path, float] | None = None
) -> Outcome:
    """A job whose result never reached this process (Ctrl-C). A worker may still have finished it between
    the signal and the shutdown: outputs are renamed into place whole, so one written since the run
    started (with its preview, when previews are made) is a finished file, and the report must say so."""
    outputs = [job.output, job.output.with_suffix(".mp4")] if previews else [job.output]
    try:
        done = all(p.stat().st_mtime >= started_wall for p in outputs)
    except OSError:
        done = False
    if done:
        audio_s = (durations or {}).get(job.source, 0.0)
        return Outcome(str(job.source), str(job.output), "written", "finished while the run was interrupted", audio_s)
    return Outcome(str(job.source), str(job.output), "not run", "interrupted")


def _sorted(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return sorted(outcomes, key=lambda o: o.source)
