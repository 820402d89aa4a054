"""What both commands (`a2bs`, `a2bs-convert`) share: loading the model they are given, and running a
Typer app so that expected mistakes are one line and signals clean up."""

from __future__ import annotations

import io
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer

from a2bs.core.constants import SUPPORTED_FPS
from a2bs.core.errors import A2BSError, signals_raise

if TYPE_CHECKING:  # torch loads only when a command needs the model
    from a2bs.core.checkpoint import Checkpoint, CheckpointHeader

Loaded = TypeVar("Loaded", "Checkpoint", "CheckpointHeader")


def check_fps(fps: int | None) -> None:
    """`--fps` is 30 or 60 (None: the command's default)."""
    if fps is not None and fps not in SUPPORTED_FPS:
        raise A2BSError(f"unsupported --fps {fps}: use 30 or 60")


def load_model(checkpoint: Path | None, fps: int | None) -> Checkpoint:
    """The checkpoint that `--checkpoint` / `--fps` name (default: the bundled one), with a warning when it
    is untrained; a mismatch of the two is a one-line error."""
    from a2bs.core.checkpoint import load_checkpoint, load_default

    return _chosen(checkpoint, fps, load_default, load_checkpoint)


def read_model_header(checkpoint: Path | None, fps: int | None) -> CheckpointHeader:
    """`load_model` without the weights and without torch: the header of the checkpoint that `--checkpoint` /
    `--fps` name, every part checked, with the same warning and errors."""
    from a2bs.core.checkpoint import default_header, read_header

    return _chosen(checkpoint, fps, default_header, read_header)


def _chosen(
    checkpoint: Path | None, fps: int | None, default: Callable[[int], Loaded], read: Callable[[Path], Loaded]
) -> Loaded:
    check_fps(fps)
    if checkpoint is None:
        chosen = default(fps or 30)
    else:
        chosen = read(checkpoint)
        if fps is not None and fps != chosen.fps:
            raise A2BSError(f"{checkpoint} is a {chosen.fps} fps checkpoint: drop --fps or pass --fps {chosen.fps}")
    if not chosen.trained:
        typer.secho(
            f"warning: no trained checkpoint for {chosen.fps} fps is bundled yet; using a deterministic UNTRAINED "
            "model. The output has the right format and timing but does not follow the speech.",
            fg=typer.colors.YELLOW,
            err=True,
        )
    return chosen


def run_app(typer_app: typer.Typer, fatal: tuple[type[Exception], ...] = ()) -> None:
    """Run a Typer app as a console script: expected errors -> `error: ...` on stderr, exit 2, no
    traceback; so is an OSError on a path (every check names its path; this is the net for the rest).
    Typer's standalone mode handles usage errors itself (usage line + message, exit 2).
    SIGINT and SIGTERM clean up (no temp file, staging folder or half-replaced output) and exit 130 / 143."""
    for stream in (sys.stdout, sys.stderr):  # a non-UTF-8 file name prints escaped, not a UnicodeEncodeError
        if isinstance(stream, io.TextIOWrapper):  # on a strict UTF-8 stream (stderr is one when redirected)
            stream.reconfigure(errors="backslashreplace")
    with signals_raise() as received:
        try:
            typer_app()
        except (A2BSError, *fatal) as exc:
            if not received:
                typer.echo(f"error: {exc}", err=True)
                sys.exit(2)
        except OSError as exc:  # a path the checks did not foresee (e.g. a name too long): one line naming it
            if exc.filename is None:
                raise
            if not received:
                typer.echo(f"error: cannot use {exc.filename}: {exc.strerror or exc}", err=True)
                sys.exit(2)
        except KeyboardInterrupt:
            received.append(received[0] if received else signal.SIGINT)
        except SystemExit:
            if not received:  # Typer turns KeyboardInterrupt into "Aborted!" and exit 1
                raise
        signum = received[0] if received else None
    if signum is not None:
        typer.echo(f"interrupted ({signal.Signals(signum).name}): nothing was left half-written", err=True)
        sys.exit(128 + signum)
