"""Run untrusted student code in a child process with a timeout and CPU, memory and file-size limits.

The child gets a private scratch folder holding a copy of the framework with the student's files in
place (see :func:`make_workspace`). It receives its job as a JSON file and answers only with plain
files (``.npz`` without pickle, weights-only ``.pt``) in its ``out`` folder; the parent reads those
files as data and computes every score itself. Nothing the child prints or returns is trusted.

When the grader runs as root (Gradescope), the child drops to an unprivileged user, so it cannot
write outside its scratch folder.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from util.config import REPO_ROOT

# framework pieces copied into every workspace (never the grader, its solutions or hidden checks)
FRAMEWORK_DIRS = ("learning", "envs", "util")
STUDENT_FILES = ("bc_agent.py", "dagger_agent.py", "dart_agent.py")
UNPRIVILEGED_UID = 65534  # nobody


@dataclass
class ChildResult:
    ok: bool
    returncode: int | None
    timed_out: bool
    seconds: float
    stderr_tail: str
    out_dir: Path
    tampered: bool = False

    def message(self) -> str:
        if self.tampered:
            return "your code modified files outside its scratch folder (the grader's own files)"
        if self.timed_out:
            return f"timed out after {self.seconds:.0f} s (infinite loop or too slow)"
        if self.returncode is not None and self.returncode < 0:
            sig = -self.returncode
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            hint = " (memory or CPU limit exceeded)" if name in ("SIGKILL", "SIGXCPU", "SIGSEGV", "SIGABRT") else ""
            return f"killed by {name}{hint}"
        tail = self.stderr_tail.strip().splitlines()
        return tail[-1][:300] if tail else f"exited with code {self.returncode}"


def make_workspace(root: Path, student_learning: dict[str, Path | None], data_files: list[Path]) -> Path:
    """Create ``root/ws``: framework copy + the student's agent files + the data the checks need."""
    ws = root / "ws"
    for d in FRAMEWORK_DIRS:
        shutil.copytree(REPO_ROOT / d, ws / d, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in STUDENT_FILES:
        src = student_learning.get(name)
        dst = ws / "learning" / name
        if src is not None:
            shutil.copyfile(src, dst)
        elif dst.exists():
            dst.unlink()  # a missing student file must not fall back to the stub
    for f in data_files:
        rel = f.relative_to(REPO_ROOT)
        (ws / rel.parent).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, ws / rel)
    (ws / "a1").mkdir(exist_ok=True)
    return ws


def _limits(mem_bytes: int, cpu_seconds: int, file_bytes: int, drop: bool):
    def apply() -> None:
        import resource

        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop:
            os.setgid(UNPRIVILEGED_UID)
            os.setuid(UNPRIVILEGED_UID)

    return apply


_DROP_OK: bool | None = None


def can_drop_privileges() -> bool:
    """True when running as root and an unprivileged child can still start this Python (checked once).

    GRADER_DROP_PRIVILEGES=never disables the drop; =always makes a failed preflight an error.
    """
    global _DROP_OK
    if _DROP_OK is None:
        mode = os.environ.get("GRADER_DROP_PRIVILEGES", "auto")
        if mode == "never" or not hasattr(os, "geteuid") or os.geteuid() != 0:
            _DROP_OK = False
        else:
            def demote() -> None:
                os.setgid(UNPRIVILEGED_UID)
                os.setuid(UNPRIVILEGED_UID)

            try:
                r = subprocess.run([sys.executable, "-I", "-c", "import numpy, torch"], preexec_fn=demote,
                                   capture_output=True, timeout=120, cwd="/")
                _DROP_OK = r.returncode == 0
            except (OSError, subprocess.SubprocessError):
                _DROP_OK = False
            if not _DROP_OK and mode == "always":
                raise RuntimeError("GRADER_DROP_PRIVILEGES=always but user 'nobody' cannot run this Python; "
                                   "install the grader where all users can read it")
    return _DROP_OK


def tree_digest(paths: list[Path]) -> str:
    """Hash of every file under ``paths`` (names, sizes and contents): detects writes by a child."""
    import hashlib

    h = hashlib.blake2b(digest_size=16)
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for f in files:
            h.update(str(f).encode())
            try:
                h.update(f.read_bytes())
            except OSError:
                h.update(b"<unreadable>")
    return h.hexdigest()


TRUSTED = [REPO_ROOT / d for d in ("grader", "learning", "envs", "util", "data", "run.py")]


def run_child(workspace: Path, job: dict, timeout: float, mem_mb: int = 2048, file_mb: int = 64) -> ChildResult:
    """Run ``python -m grader_child`` in ``workspace`` on ``job``; outputs land in a fresh out folder."""
    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=workspace.parent))
    out_dir = run_dir / "out"
    out_dir.mkdir()
    job_path = run_dir / "job.json"
    job_path.write_text(json.dumps(job))
    shutil.copyfile(Path(__file__).with_name("child.py"), workspace / "grader_child.py")
    ref = workspace / "grader_ref"
    if not ref.exists() and (REPO_ROOT / "grader" / "solution").is_dir():  # reference TODO methods for the other parts
        ref.mkdir()
        for f in ("bc_solution.py", "dagger_solution.py", "dart_solution.py"):
            shutil.copyfile(REPO_ROOT / "grader" / "solution" / f, ref / f)
        (ref / "__init__.py").write_text("")
    drop = can_drop_privileges()
    before = tree_digest(TRUSTED)
    if drop:
        for p in [workspace.parent, *workspace.parent.rglob("*")]:
            try:
                os.chown(p, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
            except OSError:
                pass
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(run_dir),
        "PYTHONPATH": str(workspace),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
        "TMPDIR": str(run_dir),
    }
    t0 = time.time()
    stderr_path = run_dir / "stderr.txt"
    with open(stderr_path, "wb") as err, open(os.devnull, "wb") as devnull:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-B", str(workspace / "grader_child.py"), str(job_path), str(out_dir)],
            cwd=str(run_dir), env=env, stdin=subprocess.DEVNULL, stdout=devnull, stderr=err,
            preexec_fn=_limits(mem_mb * 1024 * 1024, int(timeout) + 10, file_mb * 1024 * 1024, drop),
        )
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it started
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
    try:
        with open(stderr_path, "rb") as f:
            f.seek(max(0, stderr_path.stat().st_size - 4000))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        tail = ""
    done = (out_dir / "DONE").is_file()
    tampered = tree_digest(TRUSTED) != before
    return ChildResult(ok=(not timed_out and proc.returncode == 0 and done and not tampered), returncode=proc.returncode,
                       timed_out=timed_out, seconds=time.time() - t0, stderr_tail=tail, out_dir=out_dir,
                       tampered=tampered)
