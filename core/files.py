"""Files written all at once or not at all, and what identifies them: atomic text files, staged
folders swapped into place, the per-output lock against a second writer, sha256 and sizes of files and
of folders (an .mlpackage is a folder). One place for these, used by every writer of the project."""

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
from pathlib import Path
from typing import ClassVar

from a2bs.core.errors import A2BSError


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


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` all at once (temp file beside it, then rename), normal permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
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
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staged.chmod(0o777 & ~umask())
    return staged


def replace_dir(staged: Path, target: Path) -> None:
    """Move the finished folder `staged` to `target`, replacing a folder already there: readers see the
    old or the new one, never a mix, and (on Linux) `target` never stops existing: the two are swapped
    in one step and `staged` then holds the old folder, which is removed. The caller has decided that
    replacing is allowed (and holds `OutputLock(target)` against concurrent writers)."""
    if not os.path.lexists(target):
        os.replace(staged, target)
        return
    if _exchange(staged, target):
        shutil.rmtree(staged, ignore_errors=True)
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


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
        self.path = self.target.with_name(f".{self.target.name}.lock")
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
