"""`a2bs infer` over whole folders of dialogue: many files, one model load per worker.

Inputs are files, folders (searched recursively for audio) and list files (`.txt`/`.lst`: one path per
line, relative to the list's folder, `#` comments). Outputs mirror the input tree under OUT_DIR: a file
given directly lands at OUT_DIR/<name>.<format>, a file found in folder F at OUT_DIR/<F's name>/<path
inside F>.<format>. The batch is resumable (an output that exists is complete, because every output is
written atomically, so it is skipped unless --force) and one bad file never stops it: its reason goes to
the summary and to OUT_DIR/batch_report.json, and the command exits 1 at the end.

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
import json
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from a2bs.cli.animate import Animator, AnimatorSpec
from a2bs.core.errors import A2BSError, AudioError, raise_if_interrupted, signals_raise

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")
LIST_SUFFIXES = (".txt", ".lst")
OUTPUT_FORMATS = ("csv", "json", "npy")
REPORT = "batch_report.json"


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path


@dataclass
class Outcome:
    source: str
    output: str
    status: str  # written | skipped (finished before) | failed
    reason: str = ""
    audio_s: float = 0.0
    seconds: float = 0.0
    worker: str = ""


def is_batch(inputs: list[Path]) -> bool:
    """Several inputs, a folder or a list file: the batch mode (one plain file keeps `a2bs infer` as is)."""
    return len(inputs) > 1 or any(p.is_dir() or p.suffix.lower() in LIST_SUFFIXES for p in inputs)


def collect_jobs(inputs: list[Path], out_dir: Path, output_format: str) -> list[Job]:
    """Every input file with its output path; a one-line A2BSError for a missing input, an empty batch or
    two inputs that would write the same output."""
    if output_format not in OUTPUT_FORMATS:
        raise A2BSError(f"unsupported --format {output_format!r}: use csv, json or npy")
    jobs: list[Job] = []
    for given in inputs:
        if given.is_dir():
            found = sorted(p for p in given.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            root = given.resolve().name or "audio"
            jobs += [Job(p, out_dir / root / p.relative_to(given).with_suffix(f".{output_format}")) for p in found]
        elif given.suffix.lower() in LIST_SUFFIXES:
            jobs += [Job(p, out_dir / p.with_suffix(f".{output_format}").name) for p in _read_list(given)]
        elif given.is_file():
            jobs.append(Job(given, out_dir / given.with_suffix(f".{output_format}").name))
        else:
            raise A2BSError(f"input {given} does not exist: check the path")
    if not jobs:
        raise A2BSError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {', '.join(map(str, inputs))}")
    by_output: dict[Path, Path] = {}
    for job in jobs:
        other = by_output.setdefault(job.output, job.source)
        if other != job.source:
            raise A2BSError(
                f"{other} and {job.source} would both be written to {job.output}: rename one, "
                "or give their folders as inputs so the output tree keeps them apart"
            )
    return jobs


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise A2BSError(f"cannot read the list file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return [p if p.is_absolute() else path.parent / p for p in map(Path, entries)]


def check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise A2BSError(f"-o {out_dir} is a file: for several inputs give a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise A2BSError(f"cannot create the output folder {out_dir}: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise A2BSError(f"cannot write to the output folder {out_dir}: permission denied (choose another -o)")


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
        outcome.audio_s, outcome.seconds = written.duration_s, written.seconds
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


_worker_signals: list[contextlib.AbstractContextManager[list[int]]] = []


def _worker_init() -> None:
    """A local worker process: one torch thread; SIGINT and SIGTERM unwind the file being written (its temp
    file is removed, never left half-written), also when the signal lands inside openSMILE's C callback,
    whose exception Python would only print: `signals_raise` records it and the next chunk raises it."""
    os.environ["OMP_NUM_THREADS"] = "1"
    _worker_signals.append(signals_raise())  # kept referenced: collecting it would restore the old handlers
    _worker_signals[0].__enter__()  # for the life of the worker


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
    try:
        results = _run(todo, spec, force or previews, previews, workers, dask)
        with _progress_bar(sum(durations.values()), len(todo), show_progress) as advance, contextlib.closing(results):
            for outcome in results:  # closing: a Ctrl-C landing here still stops the workers before we exit
                outcomes.append(outcome)
                advance(durations.get(Path(outcome.source), 0.0), outcome)
    finally:  # also on Ctrl-C: the report says what was finished, the next run resumes from there
        _write_report(out_dir, jobs, outcomes, spec, workers, dask, time.perf_counter() - started, started_wall)
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


def _run(
    todo: list[Job], spec: AnimatorSpec, force: bool, preview: bool, workers: int, dask: str | None
) -> Iterator[Outcome]:
    if not todo:
        return
    if dask:
        yield from _run_dask(todo, spec, force, preview, workers, dask)
    elif workers > 1:
        yield from _run_processes(todo, spec, force, preview, workers)
    else:
        for job in todo:
            raise_if_interrupted()
            yield animate_job(job, spec, force, preview)


def _run_processes(todo: list[Job], spec: AnimatorSpec, force: bool, preview: bool, workers: int) -> Iterator[Outcome]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # a clean interpreter each: no state forked from this one
    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=context, initializer=_worker_init)
    try:
        futures = [pool.submit(animate_job, job, spec, force, preview) for job in todo]
        for future in as_completed(futures):
            yield future.result()
    except BaseException:
        # Ctrl-C or SIGTERM here: stop the queue, and let the files being written unwind (each worker
        # removes its temp file) instead of killing workers mid-write.
        for process in list(getattr(pool, "_processes", {}).values()):  # the executor keeps them privately
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run_dask(
    todo: list[Job], spec: AnimatorSpec, force: bool, preview: bool, workers: int, address: str
) -> Iterator[Outcome]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if address == "auto":
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"OMP_NUM_THREADS": "1"},
        )
    try:
        client = Client(cluster if cluster is not None else address, timeout="30s")
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise A2BSError(
            f"cannot reach the Dask scheduler at {address}: {exc}; start one with `dask scheduler`"
        ) from None
    futures = []
    try:
        futures = client.map(animate_job, todo, spec=spec, force=force, preview=preview, pure=False)
        for future in as_completed(futures):
            yield future.result()
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def _progress_bar(total_s: float, files: int, show: bool) -> Iterator[Callable[[float, Outcome], None]]:
    """One bar in seconds of audio, with files done and failed beside it; yields `advance(seconds, outcome)`."""
    from tqdm import tqdm

    layout = "{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}{postfix}]"
    done, failed = 0, 0
    with tqdm(total=round(total_s, 1), disable=not show, desc="a2bs infer", bar_format=layout) as bar:

        def advance(seconds: float, outcome: Outcome) -> None:
            nonlocal done, failed
            done, failed = done + 1, failed + (outcome.status == "failed")
            bar.set_postfix_str(f"{done}/{files} files, {failed} failed", refresh=False)
            bar.update(round(seconds, 1))

        yield advance


def _write_report(
    out_dir: Path,
    jobs: list[Job],
    outcomes: list[Outcome],
    spec: AnimatorSpec,
    workers: int,
    dask: str | None,
    seconds: float,
    started_wall: float,
) -> None:
    from a2bs.core.files import write_text_atomic

    finished = {o.source for o in outcomes}
    pending = [_unreported(j, started_wall) for j in jobs if str(j.source) not in finished]
    rows = [asdict(o) for o in _sorted([*outcomes, *pending])]
    written = [r for r in rows if r["status"] == "written"]
    report = {
        "format": "a2bs-batch-report",
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "engine": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(spec).items()},
        "workers": workers,
        "dask": dask,
        "seconds": round(seconds, 2),
        "totals": {s: sum(r["status"] == s for r in rows) for s in ("written", "skipped", "failed", "not run")},
        "audio_seconds_written": round(sum(r["audio_s"] for r in written), 2),
        "audio_hours_written": round(sum(r["audio_s"] for r in written) / 3600, 6),
        "files": rows,
    }
    write_text_atomic(out_dir / REPORT, json.dumps(report, indent=1) + "\n")


def _unreported(job: Job, started_wall: float) -> Outcome:
    """A job whose result never reached this process (Ctrl-C). A worker may still have finished it between
    the signal and the shutdown: outputs are renamed into place whole, so one written since the run
    started is a finished file, and the report must say so."""
    try:
        done = job.output.stat().st_mtime >= started_wall
    except OSError:
        done = False
    if done:
        return Outcome(str(job.source), str(job.output), "written", "finished while the run was being interrupted")
    return Outcome(str(job.source), str(job.output), "not run", "interrupted")


def _sorted(outcomes: Iterable[Outcome]) -> list[Outcome]:
    return sorted(outcomes, key=lambda o: o.source)
