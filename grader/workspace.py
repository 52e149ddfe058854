"""A check's private folder: what it holds, how it is built, and the scratch folder that holds the check folders.

Each check gets its own folder, built completely before its child starts and deleted after it:
``ws/`` (a copy of the framework with the student's files, only the reference code of the *other* TODOs that check
needs, only the data it needs, and the child harness: the package :mod:`grader.child` as ``grader_harness/`` and its
entry script ``grader_child.py``), ``run/`` (the child's cwd, HOME and TMPDIR), ``in/`` (the check's inputs) and
``out/`` (where it answers with plain files). The check folders live in a scratch folder
(:func:`make_scratch`) that sandbox uids may traverse but not list.
"""
from __future__ import annotations

import ast
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from util.config import REPO_ROOT

FRAMEWORK_DIRS = ("learning", "envs", "util")
CHILD = Path(__file__).with_name("child")         # the child harness, a package (grader/child/)


@dataclass
class CheckDir:
    """The private folder of one check: ws/ (code), run/ (cwd), out/ (answers), in/ (inputs)."""

    path: Path

    @property
    def ws(self) -> Path:
        return self.path / "ws"

    @property
    def inputs(self) -> Path:
        return self.path / "in"

    @property
    def run(self) -> Path:
        return self.path / "run"

    @property
    def out(self) -> Path:
        return self.path / "out"


_CHECK_FS = [False]     # root mode with CAP_SYS_ADMIN (a mount namespace works): each check folder is its own tmpfs


def set_check_fs(on: bool) -> None:
    """Whether each new check folder is its own tmpfs (root mode with a mount namespace, decided by
    :func:`grader.isolation.sandbox_policy`)."""
    _CHECK_FS[0] = on


def new_check_dir(scratch: Path, name: str) -> CheckDir:
    """A fresh check folder in ``scratch``; where root may mount (:attr:`grader.isolation.SandboxPolicy.mountns`), a
    tmpfs of its own (CHECK_FS_MB, CHECK_FS_INODES): what a check writes is bounded by its own file system, and no
    other check's writes can fill it."""
    d = CheckDir(Path(tempfile.mkdtemp(prefix=f"{name}_", dir=scratch)))
    if _CHECK_FS[0]:
        from grader.supervisor import CHECK_FS_INODES, CHECK_FS_MB, MS_NODEV, MS_NOSUID, _mount

        try:
            _mount("tmpfs", str(d.path), "tmpfs", MS_NOSUID | MS_NODEV,
                   f"mode=0711,uid=0,gid=0,size={CHECK_FS_MB}m,nr_inodes={CHECK_FS_INODES}")
        except OSError:
            _CHECK_FS[0] = False          # the disk guard alone bounds the checks from now on (grader/README.md)
    for sub in (d.ws, d.inputs, d.run, d.out):
        sub.mkdir()
    return d


def _unmount_under(root: str) -> None:
    """Detach every mount at or below ``root`` (deepest first): the check folders' tmpfs."""
    from grader.supervisor import MNT_DETACH, _libc, _mounts_under

    try:
        points = _mounts_under(root)
    except OSError:
        return
    for point in reversed(points):
        _libc.umount2(point.encode(), MNT_DETACH)


SUBMISSION_PACKAGE = "submission"     # ws/submission/<agent>_agent.py: the student's files, beside the framework's


def reference_source(module: str) -> str:
    """The text of ``grader_ref/<owner>_<method>.py``: ``grader/solution/<owner>_solution.py`` with every top-level
    function but ``method`` cut out (its imports kept), so that a check's workspace holds the reference of exactly the
    methods it runs from the reference, never that of the method under test."""
    owner, method = module.split("_", 1)
    path = REPO_ROOT / "grader" / "solution" / f"{owner}_solution.py"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    drop = [(n.lineno - 1 - len(n.decorator_list), n.end_lineno) for n in ast.parse(text).body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name != method]
    for start, end in sorted(drop, reverse=True):
        del lines[start:end]
    return "".join(lines)


def build_workspace(d: CheckDir, student_files: dict[str, Path | None], references: list[str],
                    data_files: list[Path | tuple[Path, str]]) -> None:
    """Fill ``d.ws``: the framework (its own ``learning/*_agent.py`` included, untouched), the student's files as the
    package ``submission/`` (the child splices their TODO methods onto the framework's classes),
    ``grader_ref/<owner>_<method>.py`` for each name in ``references`` (:func:`reference_source`), the data files (a
    path under the repo, or (source, path in the workspace)), and the child harness (``grader_harness/``, its entry
    ``grader_child.py``)."""
    ws = d.ws
    for sub in FRAMEWORK_DIRS:
        shutil.copytree(REPO_ROOT / sub, ws / sub, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (ws / SUBMISSION_PACKAGE).mkdir()
    (ws / SUBMISSION_PACKAGE / "__init__.py").write_text("")
    for name, src in student_files.items():
        if src is not None:
            shutil.copyfile(src, ws / SUBMISSION_PACKAGE / name)
    if references:
        (ws / "grader_ref").mkdir()
        (ws / "grader_ref" / "__init__.py").write_text("")
        for mod in references:
            (ws / "grader_ref" / f"{mod}.py").write_text(reference_source(mod))
    for f in data_files:
        src, rel = (f, str(f.relative_to(REPO_ROOT))) if isinstance(f, Path) else f
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, ws / rel)
    (ws / "grader_harness").mkdir()
    for src in sorted(CHILD.glob("*.py")):
        if src.name != "__main__.py":
            shutil.copyfile(src, ws / "grader_harness" / src.name)
    shutil.copyfile(CHILD / "__main__.py", ws / "grader_child.py")


def chown_tree(root: Path, uid: int) -> None:
    """Give everything inside the check folder ``root`` to ``uid``; ``root`` itself stays the grader's (mode 0711:
    the child may enter it, not list, rename or replace what is in it, e.g. swap ``out/`` for a link)."""
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath != str(root):
            os.chown(dirpath, uid, uid)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), uid, uid, follow_symlinks=False)
    os.chown(root, os.geteuid(), os.getegid())
    os.chmod(root, 0o711)


def remove_check_dir(d: CheckDir) -> None:
    if _CHECK_FS[0] or os.path.ismount(d.path):
        _unmount_under(str(d.path))
    shutil.rmtree(d.path, ignore_errors=True)


SCRATCH_PREFIX = "grade_"
_SCRATCH_LOCKS: dict[str, int] = {}     # scratch root -> its open, flock'ed owner.lock (released by the kernel at exit)


def make_scratch() -> tuple[Path, Path]:
    """(scratch root that sandbox uids may traverse but not list, a grader-only private folder inside it).

    The root holds ``private/owner.lock``, locked (flock) for as long as this process keeps the scratch, so that a
    later grading can tell a scratch folder whose grader was killed (SIGKILL, power loss) from one in use and remove
    it (:func:`sweep_stale_scratch`). Give it back with :func:`remove_scratch`."""
    import fcntl

    sweep_stale_scratch()
    root = Path(os.path.realpath(tempfile.mkdtemp(prefix=SCRATCH_PREFIX)))   # no link on the path (read_output)
    os.chmod(root, 0o711)
    private = root / "private"
    private.mkdir(mode=0o700)
    fd = os.open(private / "owner.lock.new", os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(private / "owner.lock.new", private / "owner.lock")   # never seen unlocked by a sweep
    _SCRATCH_LOCKS[str(root)] = fd
    return root, private


def remove_scratch(root: Path) -> None:
    """Delete a scratch folder made by :func:`make_scratch` (and any check folder's tmpfs left in it) and release
    its lock."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        _unmount_under(str(root))
    shutil.rmtree(root, ignore_errors=True)
    fd = _SCRATCH_LOCKS.pop(str(root), None)
    if fd is not None:
        os.close(fd)


def sweep_stale_scratch(parent: str | None = None) -> list[str]:
    """Remove the scratch folders of graders that died without cleaning up: ``grade_*`` folders of this user in the
    temp folder whose ``private/owner.lock`` nobody holds. Folders without that file (not ours, or older) and
    folders in use are left alone. Returns the removed paths."""
    import fcntl

    parent = parent or tempfile.gettempdir()
    removed = []
    try:
        names = [n for n in os.listdir(parent) if n.startswith(SCRATCH_PREFIX)]
    except OSError:
        return removed
    for name in names:
        root = os.path.join(parent, name)
        lock = os.path.join(root, "private", "owner.lock")
        try:
            st, lst = os.lstat(root), os.lstat(lock)
        except OSError:
            continue
        if (not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or not stat.S_ISREG(lst.st_mode)
                or lst.st_uid != os.geteuid() or root in _SCRATCH_LOCKS):
            continue
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue                      # its grader is alive
        if os.geteuid() == 0:
            _unmount_under(os.path.realpath(root))     # a killed grader's check folders may still be tmpfs mounts
        shutil.rmtree(root, ignore_errors=True)
        os.close(fd)
        removed.append(root)
    return removed
