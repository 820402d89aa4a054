"""Errors for expected user mistakes (the CLI prints them as one line, without a traceback), and the
checks that turn untrusted JSON (bundle manifests, sample configs, checkpoint configs) into them."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

# Bigger than any file we write (a manifest is ~100 kB): a larger one is not ours, and is not parsed.
MAX_JSON_BYTES = 16_000_000


class A2BSError(Exception):
    """A problem with the user's input that they can fix; the message says what and how."""


class AudioError(A2BSError):
    """Audio that cannot be read or used."""


class CheckpointError(A2BSError):
    """A checkpoint that is missing, corrupt or does not match the model."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: every `except BaseException` cleanup runs, then the CLI exits 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def read_untrusted(path: Path, what: str, limit: int, error: type[A2BSError] = A2BSError) -> bytes:
    """The bytes of a file named by the user or by another file (a manifest, list file, sample config):
    it must be a regular file of at most `limit` bytes. Opened without blocking and checked on the open
    descriptor, so a FIFO, a device (/dev/zero), a folder or a huge file is refused at once, never read.
    Any OSError (missing, permission, ENAMETOOLONG, ...) becomes one line naming the path."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"cannot read {path} ({what}): {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise error(f"cannot read {path} ({what}): {kind}; give a regular file")
        if info.st_size > limit:
            raise error(f"{path} is not a valid {what}: larger than {_show_bytes(limit)}")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:  # grew while being read
                raise error(f"{path} is not a valid {what}: larger than {_show_bytes(limit)}")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"cannot read {path} ({what}): {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _show_bytes(n: int) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n} bytes"


def read_text(path: Path, what: str, limit: int, error: type[A2BSError] = A2BSError) -> str:
    """The text of an untrusted UTF-8 file (a list file, a transcripts table, a JSON file), read with
    `read_untrusted`; text that is not UTF-8 is one line naming the file and the byte."""
    data = read_untrusted(Path(path), what, limit, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not a valid {what}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different: with a repeated key, readers disagree on which value
    counts (Python keeps the last, other parsers the first), so a file could say one thing to a2bs
    validate and another to an app."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def read_json(path: Path, what: str, error: type[A2BSError] = A2BSError) -> Any:
    """The parsed contents of an untrusted JSON file; `error` with one line for anything unreadable
    (missing, a folder, a FIFO, too big, not UTF-8, not JSON, nested too deeply, a key repeated in one
    object). NaN and Infinity literals parse (training metrics in a checkpoint's info may be NaN);
    `Fields` refuses them wherever a number is used."""
    text = read_text(Path(path), what, MAX_JSON_BYTES, error)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise error(f"{path} is not a valid {what}: the key '{exc.key[:60]}' appears twice in one object") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON ({what}): {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise error(f"{path} is not valid JSON ({what}): nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more than 4300 digits
        raise error(f"{path} is not valid JSON ({what}): {' '.join(str(exc).split())[:120]}") from None


class Fields:
    """Typed, range-checked access to one JSON object; every error names the file and the key.

    ``Fields(data, "manifest.json").int("fps", 1, 240)`` -> the value or `error`
    "manifest.json: 'fps' must be an integer in [1, 240], got 1000000000"."""

    def __init__(self, data: Any, where: str, error: type[A2BSError] = A2BSError, prefix: str = "") -> None:
        self.where, self.error, self.prefix = where, error, prefix
        if not isinstance(data, dict):
            raise self._fail("", f"must be a JSON object, got {_kind(data)}")
        self.data = data

    def _fail(self, key: str, problem: str) -> A2BSError:
        name = f"'{self.prefix}{key}' " if key else (f"'{self.prefix.rstrip('.')}' " if self.prefix else "")
        return self.error(f"{self.where}: {name}{problem}")

    def _get(self, key: str, optional: bool) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise self._fail(key, "is missing")
        return self.data[key]

    def int(self, key: str, lo: int, hi: int, *, optional: bool = False) -> int | None:
        value = self._get(key, optional)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self._fail(key, f"must be an integer in [{lo}, {hi}], got {_show(value)}")
        return value

    def number(self, key: str, lo: float, hi: float, *, optional: bool = False) -> float | None:
        value = self._get(key, optional)
        if value is None and optional:
            return None
        if not _is_number(value) or not lo <= value <= hi:
            raise self._fail(key, f"must be a number in [{lo:g}, {hi:g}], got {_show(value)}")
        return float(value)

    def str(
        self, key: str, *, choices: tuple[str, ...] | None = None, optional: bool = False, max_len: int = 4096
    ) -> str | None:
        value = self._get(key, optional)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value or len(value) > max_len:
            raise self._fail(key, f"must be a non-empty string, got {_show(value)}")
        if choices is not None and value not in choices:
            raise self._fail(key, f"must be one of {', '.join(choices)}, got {_show(value)}")
        return value

    def bool(self, key: str, *, optional: bool = False) -> bool | None:
        value = self._get(key, optional)
        if value is None and optional:
            return None
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, got {_show(value)}")
        return value

    def numbers(self, key: str, length: int, lo: float = -math.inf, hi: float = math.inf) -> list[float]:
        """A list of exactly `length` finite numbers in [lo, hi]."""
        value = self._get(key, False)
        ok = isinstance(value, list) and len(value) == length
        ok = ok and all(_is_number(v) and lo <= v <= hi for v in value)
        if not ok:
            got = f"{len(value)} values" if isinstance(value, list) else _show(value)
            bounds = "" if math.isinf(lo) and math.isinf(hi) else f" in [{lo:g}, {hi:g}]"
            raise self._fail(key, f"must be a list of {length} numbers{bounds}, got {got}")
        return [float(v) for v in value]

    def list(self, key: str, min_len: int, max_len: int) -> list[Any]:
        value = self._get(key, False)
        if not isinstance(value, list) or not min_len <= len(value) <= max_len:
            got = f"{len(value)} items" if isinstance(value, list) else _show(value)
            raise self._fail(key, f"must be a list of {min_len} to {max_len} items, got {got}")
        return value

    def only(self, keys: Iterable[str], noun: str) -> None:
        """Refuse a key outside `keys`, naming the first: "'prefix.key' is not NOUN"."""
        unknown = sorted(set(self.data) - set(keys))
        if unknown:
            raise self._fail(unknown[0], f"is not {noun}")

    def obj(self, key: str) -> Fields:
        return Fields(self._get(key, False), self.where, self.error, f"{self.prefix}{key}.")


def about(lo: float, hi: float, doc: str) -> dict[str, Any]:
    """A dataclass field's metadata for parameters a manifest holds: its limits (checked with `Fields`) and
    what it does (the docs' tables)."""
    return {"limits": (lo, hi), "doc": doc}


def _is_number(value: Any) -> bool:
    """A finite JSON number (json.loads turns 1e999 into inf)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, str | int | float | bool | type(None)) else _kind(value)
    return text if len(text) <= 40 else text[:37] + "..."


# --- signals --------------------------------------------------------------------------------------

_received: list[int] = []  # signals received while `signals_raise` is active, oldest first


def raise_if_interrupted() -> None:
    """Raise `Interrupted` again if a signal arrived but its exception was swallowed somewhere (jax's
    garbage-collection callback prints "Exception ignored in: _xla_gc_callback" and carries on).
    Called at safe points: each conversion stage, each output chunk, before anything is replaced."""
    if _received:
        raise Interrupted(_received[0])


_IMPORT_RECHECK_S = 0.1  # how often a signal that arrived during an import is retried


def _inside_import(frame: FrameType | None) -> bool:
    """Whether Python is importing a module: a native extension (LiteRT's MLIR bindings) that runs Python
    code in its init aborts the process when that code raises, so the signal waits for the import."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def request_interrupt(signum: int = signal.SIGTERM) -> None:
    """Record a stop request as if `signum` had arrived: the next `raise_if_interrupted` in any thread of
    this process raises `Interrupted`. How a Dask worker's event loop stops the files its task threads are
    writing (signals reach only the main thread)."""
    _received.append(signum)


@contextlib.contextmanager
def signals_raise(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[list[int]]:
    """While active, `signals` (SIGINT and SIGTERM) raise `Interrupted` (so every `except BaseException` /
    `finally` cleanup runs: no temp file, no staging folder, no half-replaced output) and are recorded for
    `raise_if_interrupted`. Yields the list of received signals."""
    if threading.current_thread() is not threading.main_thread():
        yield _received
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        _received.append(signum)
        if _inside_import(frame):  # raising here can abort a native extension's init (SIGABRT, core dump)
            signal.setitimer(signal.ITIMER_REAL, _IMPORT_RECHECK_S)
            return
        raise Interrupted(signum)

    def recheck(signum: int, frame: FrameType | None) -> None:
        if not _received:
            return
        if _inside_import(frame):
            signal.setitimer(signal.ITIMER_REAL, _IMPORT_RECHECK_S)
            return
        raise Interrupted(_received[0])

    def unraisable(info: Any) -> None:
        if not isinstance(info.exc_value, Interrupted):  # swallowed interruptions are re-raised, not printed
            previous_hook(info)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, recheck)
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    try:
        yield _received
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, old in previous.items():
            signal.signal(sig, old)
        sys.unraisablehook = previous_hook
        _received.clear()


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's message on one line (whitespace collapsed, cut at `limit` characters), or its type's
    name when it has none: how a failure is quoted in an error, a check's reason or a report."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
