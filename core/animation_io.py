"""Streaming, atomic writers for blendshape animation, and a Live Link Face CSV reader.

The offline inference loop produces frames chunk by chunk; a writer takes each chunk as it
comes and never holds the whole animation (an hour at 60 fps is 216,000 frames), so memory
stays bounded by the chunk size::

    with open_writer("out.csv", fps=60, n_frames=n, force=args.force) as w:
        for chunk in model_chunks():  # (k, 52) float32, ARKIT_BLENDSHAPES order
            w.write(chunk)

Atomicity: frames go to a hidden temp file in the target's directory
(``.out.csv.XXXXXXXX.part``); ``close()`` checks that exactly ``n_frames`` frames were
written, fsyncs and ``os.replace``-s the temp file onto the target. Any failure (a bad
chunk, a short or long file, an exception or Ctrl-C inside the ``with`` block, a full disk)
removes the temp file, so a partial output never appears and an existing file is never
clobbered by one.

Formats, chosen by suffix (case-insensitive):

``.csv``  Live Link Face layout: header ``LIVE_LINK_FACE_COLUMNS``; per frame the timecode
          ``HH:MM:SS:FF.fff`` (frame k at k/fps: FF = k % fps, ``.fff`` = ``000`` because
          frames sit on frame boundaries; HH is not wrapped at 24 and grows past 99 for
          files over 100 hours), ``BlendShapeCount`` = 61 (52 shapes + 9 rotations, as
          Live Link Face writes it), the 52 values with fixed 6 decimals (``0.123457``),
          then the 9 head and eye rotations in radians (``-0.012345``), or 9 zeros when
          the writer was opened without rotations.
``.json`` ``{"fps", "blendshapes" (52 camelCase names), "frame_count", "metadata",
          "frames": [[52 floats], ...]}``, one frame per line, values with 6 decimals; with
          rotations also ``"rotation_names"`` (the 9 Live Link Face names), ``"rotation_unit"``
          (``"radians"``) and ``"rotations": [[9 floats], ...]`` after the frames (spooled to an
          anonymous temp file while the frames stream, copied at the end).
``.npy``  float32 array of shape (n_frames, 52), written as a stream; with rotations
          (n_frames, 61): the 52 shapes, then the 9 rotations in radians (the CSV's column order).

Rotations are optional (`open_writer(..., rotations=True)`, then `write(frames, rotations)`);
they must be finite and within +-pi.

``metadata`` is stored in JSON only: the Live Link Face CSV and the .npy layout have no
place for it (it must be JSON-serializable; that is checked before any work is done).

Values outside [0, 1] are clipped (a smoothing filter may overshoot slightly; the text
layouts rely on the range); NaN or infinite values are an error. Every error is an
`A2BSError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from a2bs.core.blendshapes import (
    ARKIT_BLENDSHAPES,
    LIVE_LINK_FACE_BLENDSHAPES,
    LIVE_LINK_FACE_COLUMNS,
    LIVE_LINK_FACE_ROTATIONS,
)
from a2bs.core.errors import A2BSError
from a2bs.core.files import OutputLock, check_new_file, fsync_dir, temp_prefix, umask

__all__ = [
    "FORMATS",
    "BlendshapeWriter",
    "CsvWriter",
    "JsonWriter",
    "NpyWriter",
    "format_timecode",
    "open_writer",
    "read_live_link_face_csv",
]

N_SHAPES = len(ARKIT_BLENDSHAPES)
N_ROTATIONS = len(LIVE_LINK_FACE_ROTATIONS)
BLEND_SHAPE_COUNT = N_SHAPES + N_ROTATIONS  # 61, the value Live Link Face writes
ROTATION_LIMIT = float(np.pi)  # radians: a head or an eye turned further is not a face
DECIMALS = 6
# Rows formatted per numpy pass: bounds the temporaries (~30 MB) whatever chunk size the caller uses.
_BLOCK = 8192
_POW10 = 10 ** np.arange(DECIMALS - 1, -1, -1, dtype=np.int32)  # 100000 ... 1
_SCALE = 10**DECIMALS


# --- public helpers -----------------------------------------------------------------------


def format_timecode(frame: int, fps: int) -> str:
    """Live Link Face timecode of frame `frame` (at time frame/fps): ``HH:MM:SS:FF.000``.

    HH is not wrapped at 24 and may exceed 99 for very long files.
    """
    seconds, ff = divmod(frame, fps)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}:{ff:0{_ff_width(fps)}d}.000"


def _ff_width(fps: int) -> int:
    return max(2, len(str(fps - 1)))


# --- vectorized text formatting -----------------------------------------------------------


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded ASCII digits of non-negative integers: (n,) -> (n, width) uint8."""
    pow10 = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // pow10 % 10 + 48).astype(np.uint8)


def _encode_values(frames: np.ndarray) -> np.ndarray:
    """(n, 52) values in [0, 1] -> (n, 52 * 9) uint8: ``d.dddddd,`` per value (6 decimals)."""
    q = np.rint(frames.astype(np.float64) * _SCALE).astype(np.int32)  # 0 ... 1_000_000
    out = np.empty((*q.shape, DECIMALS + 3), dtype=np.uint8)
    out[..., 0] = 48 + q // _SCALE
    out[..., 1] = ord(".")
    out[..., 2 : 2 + DECIMALS] = 48 + (q % _SCALE)[..., None] // _POW10 % 10
    out[..., -1] = ord(",")
    return out.reshape(len(q), -1)


def _encode_signed(values: np.ndarray, last: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) values with |v| < 10 -> ``-d.dddddd,`` per value (`last` instead of the final comma) as
    (n, m * 10) uint8, and the mask of the bytes to keep: a value that is not negative drops its sign."""
    n, m = values.shape
    q = np.rint(np.abs(values.astype(np.float64)) * _SCALE).astype(np.int64)
    out = np.empty((n, m, DECIMALS + 4), dtype=np.uint8)
    out[..., 0] = ord("-")
    out[..., 1] = 48 + q // _SCALE
    out[..., 2] = ord(".")
    out[..., 3 : 3 + DECIMALS] = 48 + (q % _SCALE)[..., None] // _POW10 % 10
    out[..., -1] = ord(",")
    out[:, -1, -1] = ord(last)
    keep = np.ones(out.shape, dtype=bool)
    keep[..., 0] = (values < 0) & (q > 0)
    return out.reshape(n, -1), keep.reshape(n, -1)


_CSV_ROTATION_TAIL = np.frombuffer(b",".join([b"0"] * N_ROTATIONS) + b"\n", dtype=np.uint8)
_CSV_COUNT = np.frombuffer(f",{BLEND_SHAPE_COUNT},".encode(), dtype=np.uint8)


def _csv_rows(frames: np.ndarray, start: int, fps: int, rotations: np.ndarray | None = None) -> bytes:
    """CSV rows for `frames` (values already in [0, 1]) and their rotations (zeros when None), the first
    being frame number `start`."""
    n = len(frames)
    k = np.arange(start, start + n, dtype=np.int64)
    seconds, ff = np.divmod(k, fps)
    if rotations is None:
        tail = np.broadcast_to(_CSV_ROTATION_TAIL, (n, len(_CSV_ROTATION_TAIL)))
        tail_keep = None
    else:
        tail, tail_keep = _encode_signed(rotations, "\n")
    body = np.concatenate([np.broadcast_to(_CSV_COUNT, (n, len(_CSV_COUNT))), _encode_values(frames), tail], axis=1)
    keep = None
    if tail_keep is not None:
        keep = np.concatenate([np.ones((n, body.shape[1] - tail.shape[1]), dtype=bool), tail_keep], axis=1)
    if n and seconds[-1] // 3600 >= 100:
        # Hours no longer fit two digits: rare enough to format these timecodes one by one.
        return b"".join(
            format_timecode(int(f), fps).encode() + (body[i] if keep is None else body[i][keep[i]]).tobytes()
            for i, f in enumerate(k)
        )
    colon = np.full((n, 1), ord(":"), dtype=np.uint8)
    timecode = [
        _digits(seconds // 3600, 2),
        colon,
        _digits(seconds // 60 % 60, 2),
        colon,
        _digits(seconds % 60, 2),
        colon,
        _digits(ff, _ff_width(fps)),
        np.broadcast_to(np.frombuffer(b".000", dtype=np.uint8), (n, 4)),
    ]
    rows = np.concatenate([*timecode, body], axis=1)
    if keep is None:
        return rows.tobytes()
    return rows[np.concatenate([np.ones((n, rows.shape[1] - keep.shape[1]), dtype=bool), keep], axis=1)].tobytes()


def _json_rows(frames: np.ndarray, signed: bool = False) -> bytes:
    """``,\\n[v, ...]`` per frame (the caller drops the leading comma of the file's first row); `signed`:
    values of either sign (the rotations)."""
    n = len(frames)
    lead = np.broadcast_to(np.frombuffer(b",\n[", dtype=np.uint8), (n, 3))
    if signed:
        values, keep = _encode_signed(frames, "]")
        rows = np.concatenate([lead, values], axis=1)
        return rows[np.concatenate([np.ones((n, 3), dtype=bool), keep], axis=1)].tobytes()
    values = _encode_values(frames)
    values[:, -1] = ord("]")
    return np.concatenate([lead, values], axis=1).tobytes()


# --- writers ------------------------------------------------------------------------------


class BlendshapeWriter(ABC):
    """Streaming writer for (n_frames, 52) blendshape animation; see the module docstring.

    Use as a context manager: leaving the block normally calls `close()`, leaving it by any
    exception (including KeyboardInterrupt) calls `abort()`.
    """

    def __init__(self, path: Path, tmp_path: Path, fps: int, n_frames: int, force: bool, rotations: bool) -> None:
        self.path = path
        self.rotations = rotations  # whether every write carries the 9 head and eye rotations
        self.fps = fps
        self.n_frames = n_frames
        self.frames_written = 0
        self._tmp_path = tmp_path
        self._force = force
        self._state = "open"  # "open" | "closed" | "aborted"
        self.lock: OutputLock | None = None  # held from open_writer until close/abort

    # subclasses --------------------------------------------------------------------------
    @abstractmethod
    def _write_block(self, frames: np.ndarray, rotations: np.ndarray | None) -> None:
        """Append frames (float32, finite, clipped to [0, 1], at most _BLOCK rows) and, when the writer
        has them, their rotations (float64, finite, within +-ROTATION_LIMIT)."""

    @abstractmethod
    def _finish(self) -> None:
        """Write any trailer, flush and fsync the temp file and release it."""

    @abstractmethod
    def _release(self) -> None:
        """Release the temp file without finishing it (must not raise)."""

    # public API --------------------------------------------------------------------------
    def write(self, frames: np.ndarray, rotations: np.ndarray | None = None) -> None:
        """Append a (n, 52) chunk in ARKIT_BLENDSHAPES order, with its (n, 9) rotations in radians when the
        writer was opened with rotations (and only then). On any error the writer aborts."""
        self._check_open()
        try:
            rot = self._check_rotations(rotations, len(frames))
            arr = np.asarray(frames, dtype=np.float32)
            if arr.ndim != 2 or arr.shape[1] != N_SHAPES:
                raise A2BSError(f"cannot write {self.path}: expected frames of shape (n, 52), got {arr.shape}")
            if self.frames_written + len(arr) > self.n_frames:
                raise A2BSError(
                    f"cannot write {self.path}: this chunk makes {self.frames_written + len(arr)} frames, "
                    f"more than the {self.n_frames} declared"
                )
            bad = ~np.isfinite(arr)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                raise A2BSError(
                    f"cannot write {self.path}: frame {self.frames_written + int(row)} "
                    f"{ARKIT_BLENDSHAPES[col]} is {arr[row, col]}"
                )
            for i in range(0, len(arr), _BLOCK):
                block = np.clip(arr[i : i + _BLOCK], 0.0, 1.0)
                self._write_block(block, None if rot is None else rot[i : i + _BLOCK])
                self.frames_written += len(block)
        except OSError as e:
            self.abort()
            raise A2BSError(f"cannot write {self.path}: {e}") from e
        except BaseException:
            self.abort()
            raise

    def _check_rotations(self, rotations: np.ndarray | None, n: int) -> np.ndarray | None:
        if (rotations is None) != (not self.rotations):
            have = "was opened with" if self.rotations else "was opened without"
            raise A2BSError(f"cannot write {self.path}: the writer {have} head and eye rotations")
        if rotations is None:
            return None
        rot = np.asarray(rotations, dtype=np.float64)
        if rot.shape != (n, N_ROTATIONS):
            raise A2BSError(f"cannot write {self.path}: expected rotations of shape ({n}, 9), got {rot.shape}")
        bad = ~(np.abs(rot) <= ROTATION_LIMIT)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise A2BSError(
                f"cannot write {self.path}: frame {self.frames_written + int(row)} {LIVE_LINK_FACE_ROTATIONS[col]} "
                f"is {rot[row, col]} (radians within +-pi expected)"
            )
        return rot

    def close(self) -> None:
        """Finish the file and atomically move it into place; aborts and raises if it is short."""
        if self._state == "closed":
            return
        self._check_open()
        try:
            if self.frames_written != self.n_frames:
                raise A2BSError(
                    f"cannot write {self.path}: {self.frames_written} of {self.n_frames} frames written; "
                    "nothing was saved"
                )
            self._finish()
            if not self._force and os.path.lexists(self.path):
                raise A2BSError(f"{self.path} exists: pass --force to overwrite")
            os.replace(self._tmp_path, self.path)
        except OSError as e:
            self.abort()
            raise A2BSError(f"cannot write {self.path}: {e}") from e
        except BaseException:
            self.abort()
            raise
        self._state = "closed"
        fsync_dir(self.path.parent)
        if self.lock:
            self.lock.release()

    def abort(self) -> None:
        """Discard everything written so far: the temp file is removed. Safe to call twice."""
        if self._state != "open":
            return
        self._state = "aborted"
        self._release()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp_path)
        if self.lock:
            self.lock.release()

    def __enter__(self) -> BlendshapeWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _check_open(self) -> None:
        if self._state != "open":
            raise A2BSError(f"cannot write {self.path}: the writer was already {self._state}")


class _StreamWriter(BlendshapeWriter):
    """Text formats: a buffered binary file on the temp file's descriptor."""

    def __init__(self, fd: int, *args: Any) -> None:
        super().__init__(*args)
        self._file = os.fdopen(fd, "wb", buffering=1 << 20)

    def _finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def _release(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()


class CsvWriter(_StreamWriter):
    """Live Link Face CSV (see the module docstring for the exact layout)."""

    def __init__(self, fd: int, *args: Any) -> None:
        super().__init__(fd, *args)
        self._file.write((",".join(LIVE_LINK_FACE_COLUMNS) + "\n").encode())

    def _write_block(self, frames: np.ndarray, rotations: np.ndarray | None) -> None:
        self._file.write(_csv_rows(frames, self.frames_written, self.fps, rotations))


class JsonWriter(_StreamWriter):
    """JSON with a header and one frame per line, written incrementally."""

    def __init__(self, fd: int, *args: Any, metadata_json: str) -> None:
        super().__init__(fd, *args)
        head = json.dumps({"fps": self.fps, "blendshapes": list(ARKIT_BLENDSHAPES), "frame_count": self.n_frames})
        self._file.write(f'{head[:-1]}, "metadata": {metadata_json}, "frames": ['.encode())
        # the rotations follow the frames: spooled to an anonymous file (gone with it) until then
        self._spool = tempfile.TemporaryFile(dir=self.path.parent) if self.rotations else None  # noqa: SIM115 (closed in _finish / _release)

    def _write_block(self, frames: np.ndarray, rotations: np.ndarray | None) -> None:
        rows = _json_rows(frames)
        self._file.write(rows[1:] if self.frames_written == 0 else rows)
        if self._spool is not None and rotations is not None:
            rows = _json_rows(rotations, signed=True)
            self._spool.write(rows[1:] if self.frames_written == 0 else rows)

    def _finish(self) -> None:
        self._file.write(b"\n]")
        if self._spool is not None:
            names = json.dumps(list(LIVE_LINK_FACE_ROTATIONS))
            self._file.write(f', "rotation_names": {names}, "rotation_unit": "radians", "rotations": ['.encode())
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, self._file, 1 << 20)
            self._spool.close()
            self._file.write(b"\n]")
        self._file.write(b"}\n")
        super()._finish()

    def _release(self) -> None:
        if self._spool is not None:
            with contextlib.suppress(OSError):
                self._spool.close()
        super()._release()


class NpyWriter(_StreamWriter):
    """(n_frames, 52) little-endian float32 .npy, written as a stream: header, then the rows. (A memory
    map would die with SIGBUS instead of an error on a full disk.)"""

    def __init__(self, fd: int, *args: Any) -> None:
        super().__init__(fd, *args)
        columns = BLEND_SHAPE_COUNT if self.rotations else N_SHAPES
        header = {"descr": "<f4", "fortran_order": False, "shape": (self.n_frames, columns)}
        np.lib.format.write_array_header_1_0(self._file, header)

    def _write_block(self, frames: np.ndarray, rotations: np.ndarray | None) -> None:
        if rotations is not None:
            frames = np.concatenate([frames, rotations.astype(np.float32)], axis=1)
        self._file.write(np.ascontiguousarray(frames, dtype="<f4").tobytes())


FORMATS: dict[str, type[BlendshapeWriter]] = {".csv": CsvWriter, ".json": JsonWriter, ".npy": NpyWriter}


def check_output_path(path: str | Path, *, force: bool = False) -> Path:
    """The output checks `open_writer` makes, for callers that want them before expensive work:
    a supported suffix, not a directory, an existing writable parent, no existing file unless `force`."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise A2BSError(f"unsupported output format '{path.suffix}': use .csv, .json or .npy")
    return check_new_file(path, force=force, example="animation")


def open_writer(
    path: str | Path,
    fps: int,
    n_frames: int,
    *,
    force: bool = False,
    metadata: dict | None = None,
    rotations: bool = False,
) -> BlendshapeWriter:
    """Check the output path and open a streaming writer for it (format from the suffix).

    All checks happen here, before the caller starts any expensive work: a supported suffix,
    not a directory, the parent directory exists and is writable, and the file does not exist
    unless `force`. `rotations`: every `write` carries the 9 head and eye rotations (radians). Raises
    `A2BSError`.
    """
    path = check_output_path(path, force=force)
    suffix, parent = path.suffix.lower(), path.parent
    if isinstance(fps, bool) or not isinstance(fps, int | np.integer) or fps <= 0:
        raise A2BSError(f"fps must be a positive integer, got {fps!r}")
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 0:
        raise A2BSError(f"n_frames must be a non-negative integer, got {n_frames!r}")
    fps, n_frames = int(fps), int(n_frames)
    metadata_json = "{}"
    if suffix == ".json":
        try:
            metadata_json = json.dumps(metadata or {}, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise A2BSError(f"metadata for {path} is not JSON-serializable: {e}") from e

    lock = OutputLock(path).acquire()
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=temp_prefix(path, ".part"), suffix=".part")
    except OSError as e:
        lock.release()
        raise A2BSError(f"cannot write to directory {parent}: {e}") from e
    tmp_path = Path(tmp)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp creates 0600; give the result normal permissions
        args = (fd, path, tmp_path, fps, n_frames, force, rotations)
        writer = JsonWriter(*args, metadata_json=metadata_json) if suffix == ".json" else FORMATS[suffix](*args)
        writer.lock = lock
        return writer
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        lock.release()
        if isinstance(e, OSError):
            raise A2BSError(f"cannot write {path}: {e}") from e
        raise


_TIMECODE = re.compile(r"(\d+:\d{2}:\d{2}):(\d+)(?:\.(\d+))?")
_READ_BATCH = 4096


def read_live_link_face_csv(path: str | Path) -> tuple[np.ndarray, list[str], int | None]:
    """Read a Live Link Face CSV (ours or a real capture).

    Columns are matched by name, in any order, case-insensitively: ``Timecode`` and the 52
    shapes are required; ``BlendShapeCount`` and the 9 head/eye rotations are optional and
    ignored; any other column is an error. Returns ``(frames, timecodes, fps)``: frames is
    (n, 52) float32 in ARKIT_BLENDSHAPES order (values as stored, not clipped), timecodes the
    raw strings, and fps the most common number of rows per whole timecode second, or None
    when no whole second is covered or the timecodes do not parse.
    """
    path = Path(path)
    if not path.is_file():
        raise A2BSError(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return _read_llf(path, csv.reader(f))
    except UnicodeDecodeError as e:
        raise A2BSError(f"{path}: not a text CSV file ({e.reason} at byte {e.start})") from e
    except csv.Error as e:
        raise A2BSError(f"{path}: malformed CSV: {e}") from e


def _read_llf(path: Path, reader: Any) -> tuple[np.ndarray, list[str], int | None]:
    header = next(reader, None)
    if header is None:
        raise A2BSError(f"{path} is empty: expected a Live Link Face CSV header")
    names = [h.strip() for h in header]
    shape_index = {n.lower(): i for i, n in enumerate(LIVE_LINK_FACE_BLENDSHAPES)}
    ignored = {"blendshapecount", *(r.lower() for r in LIVE_LINK_FACE_ROTATIONS)}
    shape_cols = [-1] * N_SHAPES
    tc_col = -1
    seen: set[str] = set()
    for j, name in enumerate(names):
        key = name.lower()
        if key in seen:
            raise A2BSError(f"{path}: column {name} appears twice")
        seen.add(key)
        if key == "timecode":
            tc_col = j
        elif key in shape_index:
            shape_cols[shape_index[key]] = j
        elif key not in ignored:
            raise A2BSError(f"{path}: unknown column {name!r} (column {j + 1}); expected Live Link Face columns")
    missing = (["Timecode"] if tc_col < 0 else []) + [
        LIVE_LINK_FACE_BLENDSHAPES[i] for i, j in enumerate(shape_cols) if j < 0
    ]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise A2BSError(f"{path}: missing column(s) {', '.join(missing[:5])}{more}")

    timecodes: list[str] = []
    chunks: list[np.ndarray] = []
    batch: list[list[str]] = []
    lines: list[int] = []

    def flush() -> None:
        try:
            arr = np.array(batch, dtype=np.float64)
        except ValueError:
            arr = None
        if arr is None or not np.isfinite(arr).all():
            arr = np.array(
                [[_cell(path, line, i, t) for i, t in enumerate(row)] for line, row in zip(lines, batch, strict=True)]
            )
        chunks.append(arr.astype(np.float32))
        batch.clear()
        lines.clear()

    for row in reader:
        if not row or all(not c.strip() for c in row):
            continue  # blank line (e.g. at the end of the file)
        if len(row) != len(names):
            raise A2BSError(f"{path}: line {reader.line_num} has {len(row)} fields, the header has {len(names)}")
        timecodes.append(row[tc_col].strip())
        batch.append([row[j] for j in shape_cols])
        lines.append(reader.line_num)
        if len(batch) == _READ_BATCH:
            flush()
    if batch:
        flush()
    frames = np.concatenate(chunks) if chunks else np.zeros((0, N_SHAPES), dtype=np.float32)
    return frames, timecodes, _infer_fps(timecodes)


def _cell(path: Path, line: int, shape: int, text: str) -> float:
    """One value, or an error naming the line and the column."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise A2BSError(
            f"{path}: line {line}, column {LIVE_LINK_FACE_BLENDSHAPES[shape]}: {text.strip()!r} is not a finite number"
        )
    return value


def _infer_fps(timecodes: list[str]) -> int | None:
    """Most common row count per whole timecode second (runs of equal HH:MM:SS)."""
    runs: list[list[int]] = []  # [count, starts at the top of the second]
    previous = None
    for tc in timecodes:
        m = _TIMECODE.fullmatch(tc)
        if m is None:
            return None
        if m.group(1) != previous:
            previous = m.group(1)
            runs.append([0, int(m.group(2)) == 0 and not int(m.group(3) or 0)])
        runs[-1][0] += 1
    if len(runs) >= 3:
        counts = [c for c, _ in runs[1:-1]]
    elif len(runs) == 2 and runs[0][1]:
        counts = [runs[0][0]]
    else:
        return None
    return Counter(counts).most_common(1)[0][0]
