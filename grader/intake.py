"""The submission intake: copy the student files out of a submission folder or .zip, bounded in every way (entries,
depth, file size), never following a link nor unpacking anything else, and find them in the copy.
"""
from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path
from typing import Callable, Iterator

from util.errors import UserError

MAX_STUDENT_FILE_BYTES = 64 * 1024      # the stubs are ~5 KB; room for comments, not for smuggled weights


class SubmissionError(UserError):
    """The submission itself cannot be read (not a folder or zip, unsafe zip)."""


MAX_SUBMISSION_ENTRIES = 100_000       # files in a submission folder, members in a zip: listed, never unpacked


def _rank(rel: tuple[str, ...]) -> tuple[bool, int, str]:
    """How good a candidate path (its parts, relative to the submission) is for a student file: a parent folder
    named ``learning`` first, then the shallowest path, then the name (the one order for folders and zips)."""
    return (len(rel) < 2 or rel[-2] != "learning", len(rel), "/".join(rel))


MAX_FOLDER_DEPTH = 32     # folder levels searched below a submission folder (a deeper nest is refused)


def walk_bounded(root: Path, max_depth: int = MAX_FOLDER_DEPTH, skip: tuple[str, ...] = (".git", "__pycache__"),
                 strict: bool = True, onerror: Callable[[OSError], None] | None = None
                 ) -> Iterator[tuple[str, tuple[str, ...], list[str], list[str]]]:
    """Iterative, link-free os.walk: yields (dirpath, its parts relative to ``root``, real subfolder names, other
    entry names), top-down, each list sorted. Folders named in ``skip`` are not entered; folders ``max_depth``
    levels below ``root`` are listed but not entered: with ``strict`` their subfolders raise SubmissionError,
    otherwise they are ignored. Never recurses, so no nesting depth raises RecursionError. Listing errors go to
    ``onerror`` (default: that folder is skipped)."""
    stack: list[tuple[str, tuple[str, ...]]] = [(os.fspath(root), ())]
    while stack:
        dirpath, rel = stack.pop()
        try:
            with os.scandir(dirpath) as it:
                entries = list(it)
        except OSError as e:
            if onerror is not None:
                onerror(e)
            continue
        dirs, files = [], []
        for e in entries:
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(e.name)
        dirs = sorted(d for d in dirs if d not in skip)
        files.sort()
        yield dirpath, rel, dirs, files
        if dirs and len(rel) >= max_depth:
            if strict:
                raise SubmissionError(f"the submission nests folders more than {max_depth} levels deep "
                                      f"({'/'.join(rel[:3])}/...): flatten it")
            continue
        stack.extend((os.path.join(dirpath, d), (*rel, d)) for d in reversed(dirs))


def materialize(submission: str | os.PathLike, dest: Path, names: list[str]) -> Path:
    """Copy into ``dest`` the student files ``names`` from a submission folder or .zip: for each name ONE file, the
    best candidate by :func:`_rank` among the regular files of that name at any depth (folders: at most
    MAX_FOLDER_DEPTH levels, deeper nesting is refused), at most
    MAX_STUDENT_FILE_BYTES + 1 bytes of it, keeping its relative path. So what the grader writes is bounded by
    ``len(names)`` files of that size, whatever the submission holds, before and independent of any check;
    nothing else is copied or unpacked (links, FIFOs, devices, other files are never opened). Returns ``dest``.

    Raises SubmissionError for a submission the grader refuses."""
    src = Path(submission)
    dest.mkdir(parents=True)
    if src.is_dir():
        best: dict[str, tuple[str, ...]] = {}
        seen = 0
        for dirpath, rel_dir, dirnames, filenames in walk_bounded(src):          # never follows links
            seen += len(filenames) + len(dirnames)
            if seen > MAX_SUBMISSION_ENTRIES:
                raise SubmissionError(f"the submission folder holds more than {MAX_SUBMISSION_ENTRIES:,} files")
            for n in filenames:
                if n in names and (n not in best or _rank((*rel_dir, n)) < _rank(best[n])) \
                        and _is_regular(os.path.join(dirpath, n)):
                    best[n] = (*rel_dir, n)
        for rel in best.values():
            _copy_regular(src.joinpath(*rel), dest.joinpath(*rel))
        return dest
    if src.is_file() and zipfile.is_zipfile(src):
        try:
            if _zip_entries(src) > MAX_SUBMISSION_ENTRIES:     # before zipfile parses the whole central directory
                raise SubmissionError(f"the zip holds more than {MAX_SUBMISSION_ENTRIES:,} entries")
            with zipfile.ZipFile(src) as z:
                infos = z.infolist()
                if len(infos) > MAX_SUBMISSION_ENTRIES:
                    raise SubmissionError(f"the zip holds more than {MAX_SUBMISSION_ENTRIES:,} entries")
                chosen: dict[str, tuple[tuple[str, ...], zipfile.ZipInfo]] = {}
                for info in infos:
                    name = info.filename.replace("\\", "/")
                    parts = tuple(p for p in name.split("/") if p not in ("", "."))
                    if name.startswith("/") or ".." in parts:
                        raise SubmissionError(f"unsafe path in zip: {name[:100]}")
                    if not parts or parts[-1] not in names or info.is_dir():
                        continue
                    if (info.external_attr >> 16) & 0o170000 not in (0, 0o100000):
                        continue            # links and special files are never unpacked
                    if parts[-1] not in chosen or _rank(parts) < _rank(chosen[parts[-1]][0]):
                        chosen[parts[-1]] = (parts, info)
                for parts, info in chosen.values():
                    target = dest.joinpath(*parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with z.open(info) as fin, open(target, "wb") as fout:
                        fout.write(fin.read(MAX_STUDENT_FILE_BYTES + 1))
        except SubmissionError:
            raise
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, ValueError, EOFError) as e:
            raise SubmissionError(f"the zip {src.name} could not be unpacked ({type(e).__name__})") from None
        return dest
    if not src.exists():
        raise SubmissionError(f"submission not found: {src}")
    raise SubmissionError(f"{src} is neither a folder nor a .zip file")


def _zip_entries(path: Path) -> int:
    """The number of entries a zip's end-of-central-directory record declares (0 if it cannot be read here; zipfile
    then raises its own error)."""
    try:
        with open(path, "rb") as f:
            end = zipfile._EndRecData(f)      # noqa: SLF001 - the record zipfile itself reads first
        return int(end[zipfile._ECD_ENTRIES_TOTAL]) if end else 0   # noqa: SLF001
    except (OSError, AttributeError, IndexError, TypeError, ValueError):
        return 0


def _copy_regular(src: Path, dst: Path) -> None:
    """Copy at most MAX_STUDENT_FILE_BYTES + 1 bytes of ``src`` if it is a regular file (not a link)."""
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return
        dst.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.dup(fd), "rb") as fin, open(dst, "wb") as fout:
            fout.write(fin.read(MAX_STUDENT_FILE_BYTES + 1))
    finally:
        os.close(fd)


def _is_regular(path: str) -> bool:
    """A regular file (lstat: a link is not)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def find_student_files(root: Path, names: list[str]) -> dict[str, Path | None]:
    """Locate learning/<agent>_agent.py (at any depth up to MAX_FOLDER_DEPTH, e.g. inside a top-level project
    folder); regular files only, the best candidate by :func:`_rank` (the order :func:`materialize` keeps one file
    by)."""
    hits: dict[str, list[tuple[str, ...]]] = {n: [] for n in names}
    for dirpath, rel, _, filenames in walk_bounded(root, skip=(), strict=False):
        for n in filenames:
            if n in hits and _is_regular(os.path.join(dirpath, n)):
                hits[n].append((*rel, n))
    return {n: root.joinpath(*min(h, key=_rank)) if h else None for n, h in hits.items()}
