"""Safe files for runs: atomic replacement, per-process temporary names, and a one-run-per-folder lock.

* :func:`atomic_write` writes through a temporary file unique to this process (``.<name>.<pid>.<rand>.tmp``)
  in the destination folder, then ``os.replace``s it: a kill at any instant leaves the old or the new
  file, never a shorter one, and two processes never share a temporary name.
* :class:`FolderLock` holds an exclusive lock (``flock``; a byte-range lock on Windows) on ``<folder>/.lock``;
  the operating system drops it when the holder dies, so a lock left by a killed run is taken over without
  any staleness heuristic.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
from pathlib import Path
from typing import Callable, Iterator

from util.errors import UserError

TMP_SUFFIX = ".tmp"


class OutputPathError(UserError):
    """An output path cannot be used (a file where a folder should be, no permission, ...)."""


def temp_path(path: str | os.PathLike) -> Path:
    """A temporary name beside ``path``, unique to this process, keeping the suffix (for format detection)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.{secrets.token_hex(3)}{TMP_SUFFIX}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "file") -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically, on failure it is removed."""
    path = Path(path)
    ensure_folder(path.parent, what)
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a folder; give a file name.")
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        raise OutputPathError(f"cannot write {what} {path}: {e.strerror or e}.") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write(path: str | os.PathLike, data: str | bytes, what: str = "file") -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) atomically."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path, what) as tmp:
        with open(tmp, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())


def atomic_save(path: str | os.PathLike, save: Callable[[Path], None], what: str = "file") -> None:
    """``save(tmp_path)`` then replace ``path`` atomically (for torch.save, np.savez, savefig, ...)."""
    with atomic_path(path, what) as tmp:
        save(tmp)


def ensure_folder(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``path`` (and parents) as a writable folder, or raise :class:`OutputPathError` saying why not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {path} is a file, not a folder; pick another path.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputPathError(f"cannot create {what} {path}: {e.strerror or e}.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputPathError(f"{what} {path} is not writable; pick another path.")
    return path


def check_output_file(path: str | os.PathLike, flag: str) -> Path:
    """Fail early, naming ``flag``, when ``path`` cannot be written as a file (a folder, a read-only place)."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{flag} {path} is a folder; give the path of a file (inside it, for example).")
    ensure_folder(path.parent, f"{flag} folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputPathError(f"{flag} {path} is read-only; pick another path.")
    return path


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Delete temporary files left in ``folder`` by killed processes (call only while holding its lock)."""
    for p in Path(folder).glob(f".*{TMP_SUFFIX}*"):
        with contextlib.suppress(OSError):
            p.unlink()


class FolderBusyError(UserError):
    """Another live process holds the folder's lock."""


class FolderLock:
    """Exclusive lock on ``<folder>/.lock`` for the lifetime of one run (released on any exit, even a kill)."""

    NAME = ".lock"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        path = self.folder / self.NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputPathError(f"cannot lock output folder {self.folder}: {e.strerror or e}.") from None
        try:
            _lock(fd)
        except OSError as e:
            os.lseek(fd, 0, os.SEEK_SET)
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK, errno.EDEADLK):
                who = f" (process {holder})" if holder.isdigit() else ""
                raise FolderBusyError(f"another run{who} is writing into {self.folder}. Wait for it to finish, "
                                      "or pick another --out_dir.") from None
            raise OutputPathError(f"cannot lock output folder {self.folder}: {e.strerror or e}.") from None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
                _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# The lock primitive: flock on POSIX; on Windows a byte-range lock far beyond the pid written at offset 0.
# Both are dropped by the operating system when the holding process dies, however it dies.
_WINDOWS_LOCK_OFFSET = 1 << 30

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
