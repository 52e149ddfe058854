"""A manifest of the grader, the framework and the data: a changed file stops grading.

Children cannot write these files when the grader runs as root (they belong to root and the children
run under sandbox uids); the manifest is the second line of defence and the only one for an ordinary
user: it is taken before a submission is graded and verified after its last check (and, in a batch,
before the next submission starts).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from util.config import REPO_ROOT

TRUSTED = ("grader", "learning", "envs", "util", "data", "run.py", "requirements.txt")


class IntegrityError(RuntimeError):
    """The grader's own files changed while grading."""


def manifest(root: Path = REPO_ROOT) -> dict[str, str]:
    """Relative path → sha256 of every trusted file (caches and compiled files left out)."""
    out: dict[str, str] = {}
    for item in TRUSTED:
        top = root / item
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file() or p.is_symlink())
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            rel = str(f.relative_to(root))
            try:
                out[rel] = "link:" + os.readlink(f) if f.is_symlink() else hashlib.sha256(f.read_bytes()).hexdigest()
            except OSError as e:
                out[rel] = f"unreadable:{e.errno}"
    return out


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Paths added, removed or modified between two manifests (sorted)."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def verify(before: dict[str, str], what: str) -> None:
    """Raise :class:`IntegrityError` naming the changed files if the tree differs from ``before``."""
    diff = changes(before, manifest())
    if diff:
        shown = ", ".join(diff[:5]) + (f" and {len(diff) - 5} more" if len(diff) > 5 else "")
        raise IntegrityError(f"the grader's files changed {what}: {shown}")
