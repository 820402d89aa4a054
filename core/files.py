"""Files written all at once or not at all, and what identifies them: atomic text files, staged
folders swapped into place, the per-output lock against a second writer, the names of these helpers
beside an output, the marker that says a2bs made a folder (the only folders `--force` replaces), sha256
and sizes of files and of folders (an .mlpackage is a folder). One place for these, used by every writer
of the project."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from a2bs.core.errors import A2BSError, read_untrusted

NAME_MAX = 255  # bytes in one file name (Linux, macOS): every name a2bs makes beside an output fits in it
_TEMPFILE_CHARS = 8  # the random characters tempfile puts between a prefix and a suffix
MARKER = ".a2bs-bundle"  # in every folder a2bs publishes as a whole (a bundle, an installed bundle)
_MARKER_TEXT = "a2bs bundle: this folder was made by a2bs; `a2bs-convert --force` may replace it as a whole.\n"


def sha256(path: Path) -> str:
    """sha256 of a file, or of a folder (e.g. .mlpackage): hash of its files' relative paths and bytes."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def size_bytes(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sibling(target: Path, tag: str, *, reserve: int = 0, hidden: bool = True) -> Path:
    """A path beside `target` that belongs to it: `.NAME.TAG` (a lock, the prefix of a temp file or a
    staging folder) or, with hidden=False, `NAME.TAG`. Where that would not fit in NAME_MAX bytes (with
    `reserve` bytes left for what tempfile appends), NAME is cut and a hash of the whole name keeps it
    unique, so every legal output name (up to NAME_MAX bytes) gets its helpers."""
    dot = "." if hidden else ""
    name = f"{dot}{target.name}.{tag}"
    if len(os.fsencode(name)) + reserve <= NAME_MAX:
        return target.with_name(name)
    tail = f"~{hashlib.sha256(os.fsencode(target.name)).hexdigest()[:10]}.{tag}"
    short = target.name
    while short and len(os.fsencode(f"{dot}{short}{tail}")) + reserve > NAME_MAX:
        short = short[:-1]
    return target.with_name(f"{dot}{short}{tail}")


def temp_prefix(target: Path, suffix: str = "") -> str:
    """The `prefix` to give tempfile.mkstemp/mkdtemp (with this `suffix`) for a hidden temp file or folder
    beside `target`: `.NAME.`, shortened where the whole would exceed NAME_MAX."""
    return sibling(target, "", reserve=_TEMPFILE_CHARS + len(os.fsencode(suffix))).name


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` all at once (temp file beside it, then rename), normal permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path, ".part"), suffix=".part")
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def staging_dir(target: Path) -> Path:
    """An empty folder beside `target` (same file system, so it can be renamed into place), with the
    permissions a plain mkdir would give (mkdtemp makes 0700)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=temp_prefix(target), dir=target.parent))
    staged.chmod(0o777 & ~umask())
    return staged


def replace_dir(staged: Path, target: Path) -> None:
    """Move the finished folder `staged` to `target`, replacing a folder already there: readers see the
    old or the new one, never a mix, and (on Linux) `target` never stops existing: the two are swapped
    in one step and `staged` then holds the old folder (or link, or file), which is removed: a link itself,
    never what it points to. The caller has decided that replacing is allowed (`check_output_dir` for
    what a user named) and holds `OutputLock(target)` against concurrent writers."""
    if not os.path.lexists(target):
        os.replace(staged, target)
        return
    if _exchange(staged, target):
        _remove(staged)
        return
    old = sibling(target, f"old-{os.getpid()}")
    _remove(old)
    os.replace(target, old)
    os.replace(staged, target)
    _remove(old)


def _remove(path: Path) -> None:
    """Remove a folder with its contents, or a file or symlink (rmtree refuses a symlink); gone already is fine."""
    if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    if sys.platform != "linux":
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


class OutputLock:
    """An exclusive lock on an output path (a file or a bundle folder) for one writer at a time: a
    `.NAME.lock` file beside it, locked with flock and removed on release. A second writer gets a
    one-line A2BSError at once instead of racing the first. Re-entrant within one process."""

    _held: ClassVar[dict[str, int]] = {}  # lock file -> times acquired in this process

    def __init__(self, target: Path) -> None:
        self.target = Path(target)
        self.path = sibling(self.target, "lock")
        self._key = os.path.abspath(self.path)
        self._fd: int | None = None
        self._nested = False

    def acquire(self) -> OutputLock:
        if self._key in self._held:
            self._held[self._key] += 1
            self._nested = True
            return self
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as e:
                raise A2BSError(f"cannot write {self.target}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise A2BSError(
                    f"{self.target} is being written by another a2bs process right now: "
                    "wait until it has finished, then try again"
                ) from None
            try:  # the previous holder may have removed the file we opened: lock the one that is there
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                self._fd = fd
                self._held[self._key] = 1
                return self
            os.close(fd)

    def release(self) -> None:
        """Safe to call more than once."""
        if self._nested:
            self._nested = False
            self._held[self._key] -= 1
            return
        if self._fd is None:
            return
        self._held.pop(self._key, None)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(directory: Path) -> None:
    """Make the rename durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- reader -------------------------------------------------------------------------------


def check_new_file(path: Path, *, force: bool = False, example: str = "output") -> Path:
    """The checks every writer makes before expensive work: `path` is not a folder, its folder exists and
    is writable, and no file is there unless `force`. One-line A2BSError otherwise."""
    if path.is_dir():
        raise A2BSError(f"{path} is a directory: give a file path such as {path / (example + path.suffix)}")
    parent = path.parent
    if not parent.exists():
        raise A2BSError(f"output directory {parent} does not exist: create it first (mkdir -p {parent})")
    if not parent.is_dir():
        raise A2BSError(f"{parent} is not a directory, cannot write {path}")
    if os.path.lexists(path) and not force:
        raise A2BSError(f"{path} exists: pass --force to overwrite")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise A2BSError(f"cannot write to directory {parent}: permission denied")
    return path


def check_new_dir(path: Path, what: str = "a folder") -> None:
    """A folder a builder is about to create (corpora, voice sets): nothing is there yet, and its parent is."""
    if os.path.lexists(path):
        raise A2BSError(f"{path} exists: choose a new folder ({what} is never written over another)")
    if not path.parent.is_dir():
        raise A2BSError(f"output directory {path.parent} does not exist: create it first (mkdir -p {path.parent})")


def publish_new_dir(staged: Path, target: Path) -> None:
    """Rename a finished staging folder to `target`, never over a folder that appeared meanwhile."""
    if os.path.lexists(target):
        raise A2BSError(f"{target} appeared while it was being built; nothing was written there")
    os.rename(staged, target)


# --- folders a2bs publishes as a whole: only those are replaced ------------------------------------


def mark_as_made(folder: Path) -> None:
    """Write the marker that says a2bs made `folder` (a bundle, an installed bundle), into its staging
    folder before it is published: `check_output_dir` lets `--force` replace only folders that carry it."""
    (folder / MARKER).write_text(_MARKER_TEXT)


def made_by_a2bs(folder: Path) -> bool:
    """`folder` carries the marker a2bs writes (a regular file, not a link, with the marker's text)."""
    marker = folder / MARKER
    if marker.is_symlink():
        return False
    try:
        return read_untrusted(marker, "a2bs marker", 4096).decode(errors="replace") == _MARKER_TEXT
    except A2BSError:
        return False


def check_output_dir(
    path: Path,
    *,
    force: bool,
    fix: str = "choose another folder",
    made_by_us: Callable[[Path], bool] = made_by_a2bs,
) -> None:
    """The checks, before any work and again just before the replace, for a folder a2bs publishes as a
    whole (a bundle, an installed bundle): a real folder name (not `.`, `..` or `/`) of at most NAME_MAX
    bytes per part, no file on the way, a writable folder to create it in. A folder already there is
    replaced only with `force` and only when a2bs made it (`made_by_us`, default: its marker); an empty
    one is never in the way. One-line A2BSError otherwise, saying what is there and what to do (`fix`)."""
    if path.name in ("", ".", ".."):
        raise A2BSError(f"{path} cannot hold a bundle: name a folder of its own, such as {path / 'a2bs_bundle'}")
    long = next((part for part in path.parts if len(os.fsencode(part)) > NAME_MAX), None)
    if long is not None:
        shown = long if len(long) <= 40 else long[:40] + "..."
        raise A2BSError(f"the name {shown} ({len(os.fsencode(long))} bytes) is longer than {NAME_MAX} bytes; {fix}")
    for parent in path.parents:  # the nearest one that exists must be a writable folder
        if os.path.lexists(parent) or parent == Path(parent.anchor):
            if not parent.is_dir():
                raise A2BSError(f"{parent} is not a folder: cannot create a bundle at {path}; {fix}")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise A2BSError(f"cannot write a bundle into {parent}: not a writable folder")
            break
    if not os.path.lexists(path):
        return
    if path.is_symlink():
        raise A2BSError(f"{path} is a symbolic link, not a bundle a2bs made; {fix}")
    if not path.is_dir():
        raise A2BSError(f"{path} is a file, not a bundle; {fix}")
    try:
        entries = sorted(os.listdir(path))
    except OSError as exc:
        raise A2BSError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not entries:
        return
    if not made_by_us(path):
        shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
        raise A2BSError(
            f"{path} is not a bundle a2bs made (no {MARKER} marker; it holds {shown}): a2bs replaces only "
            f"what it made, even with --force; {fix}, or move that folder away yourself"
        )
    if not force:
        raise A2BSError(f"{path} already holds a bundle: pass --force to replace it")
