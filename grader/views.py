"""What a check's child sees of the machine: the grader's secrets, the system folders, the mount plan of one check
(one plan for both ways of building it: bubblewrap in ordinary-user mode, a mount namespace in root mode).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from util.config import REPO_ROOT

if TYPE_CHECKING:
    from grader.isolation import SandboxPolicy
    from grader.workspace import CheckDir


def secret_paths() -> list[Path]:
    """What student code must not read: every top-level entry of the repository (solutions, hidden checks,
    thresholds, the expert, its git history, runs of the reference solution in runs/ or output/...) except the
    one holding the interpreter, and the git directory shared by a worktree. A child needs none of them: its
    workspace is a copy."""
    keep = Path(sys.prefix).resolve()
    out = []
    for entry in sorted(REPO_ROOT.iterdir()):
        if entry.is_symlink():
            continue
        if entry.resolve() == keep or entry.resolve() in keep.parents:
            continue
        out.append(entry)
    git = REPO_ROOT / ".git"
    if git.is_file():      # a worktree: "gitdir: <common>/.git/worktrees/<name>"
        try:
            gitdir = Path(git.read_text().split("gitdir:", 1)[1].strip())
            common = gitdir.parent.parent if gitdir.parent.name == "worktrees" else gitdir
            out.append(common.resolve())
        except (OSError, IndexError):
            pass
    return out


BWRAP_NAMESPACES = ["--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                    "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev"]
# the only parts of the machine a child sees (read-only), besides the Python installation and its check folder:
# programs, libraries and system settings. Not /home, /root, /srv, /opt, /mnt, /work, /var...: another copy of
# the grader, other students' submissions or your own files there stay invisible.
SYSTEM_DIRS = ("/usr", "/etc", "/sys", "/nix", "/gnu")
ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")   # symlinks into /usr on merged-usr systems


def system_view() -> list[list[str]]:
    """Mount steps (see :func:`child_view`) for the system folders and the merged-usr links."""
    plan: list[list[str]] = []
    for p in SYSTEM_DIRS:
        if os.path.isdir(p) and not os.path.islink(p):
            plan.append(["ro", p])
    for p in ROOT_LINKS:
        if os.path.islink(p):
            plan.append(["link", os.readlink(p), p])
        elif os.path.isdir(p):
            plan.append(["ro", p])
    return plan


def bwrap_options(plan: list[list[str]]) -> list[str]:
    argv: list[str] = []
    for step in plan:
        kind, path = step[0], step[-1]
        argv += {"ro": ["--ro-bind", path, path], "link": ["--symlink", step[1], path],
                 "tmp": ["--tmpfs", path], "rw": ["--bind", path, path]}[kind]
    return argv


# what an assignment-2 performance check's child must not hold (the supervisor steps the environment for it): the
# physics simulator's packages, hidden by an empty tmpfs over each where it lies in the view
SIMULATOR_PACKAGES = ("mujoco", "mujoco_core", "mujoco_studio")


def simulator_dirs() -> list[str]:
    """The folders of the simulator's Python packages (their compiled libraries inside), where installed."""
    import importlib.util

    out = []
    for name in SIMULATOR_PACKAGES:
        spec = importlib.util.find_spec(name)
        for loc in (spec.submodule_search_locations or []) if spec is not None else []:
            if os.path.isdir(loc):
                out.append(os.path.realpath(loc))
    return sorted(set(out))


def child_view(d: CheckDir, hide_simulator: bool = False) -> list[list[str]]:
    """What a check's child sees of the machine, as mount steps in order (one plan for both ways of building
    it: bubblewrap in ordinary-user mode, :func:`grader.supervisor.enter_view` in root mode):

    * ``["ro", path]``: the system folders (:data:`SYSTEM_DIRS`), then the Python installation, read-only;
    * ``["link", target, path]``: the ``/bin``, ``/lib*`` links of a merged-usr system;
    * ``["tmp", path]``: a fresh empty tmpfs: private ``/tmp``, ``/var/tmp``, ``/dev/shm``, and the grader's
      secrets, your home folder and GRADER_PRIVATE_PATHS where they lie inside that view (e.g. a grader checked
      out under /usr/local);
    * ``["rw", path]``: the check folder, writable.

    ``hide_simulator``: the simulator's packages (:func:`simulator_dirs`) are empty tmpfs too, so the child can
    step no environment of its own (assignment 2's performance checks: the supervisor's env server counts steps).

    Nothing else of the machine exists there: no /home, /root, /srv, /opt, /work, other checkouts or submissions.
    ``/dev`` (null, zero, full, random, urandom, tty) and ``/proc`` are added by whoever builds the view."""
    import site

    plan = system_view() + [["tmp", "/tmp"], ["tmp", "/var/tmp"], ["tmp", "/dev/shm"]]

    def inside(path: str, folders: list[str]) -> bool:
        return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)

    shown = [os.path.realpath(step[1]) for step in plan if step[0] == "ro"]
    hidden = [str(p) for p in secret_paths() if p.is_dir()] + [os.path.expanduser("~")]
    hidden += [p for p in os.environ.get("GRADER_PRIVATE_PATHS", "").split(os.pathsep) if p]
    emptied: list[str] = []
    for h in hidden:
        real = os.path.realpath(h)
        if os.path.isdir(h) and real != "/" and inside(real, shown) and real not in emptied:
            plan.append(["tmp", real])
            emptied.append(real)
    visible = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    visible.update(p for p in [getattr(site, "getusersitepackages", lambda: "")()] if p)
    visible.update(p for p in sys.path if p and os.path.isdir(p) and "site-packages" in p)
    bound: list[str] = []
    for v in sorted(os.path.realpath(v) for v in visible if os.path.isdir(v)):
        if inside(v, bound) or (inside(v, shown) and not inside(v, emptied)):
            continue      # already in the view
        plan.append(["ro", v])
        bound.append(v)
    if hide_simulator:
        plan += [["tmp", p] for p in simulator_dirs()]
    plan.append(["rw", str(d.path)])
    return plan


def bwrap_argv(policy: SandboxPolicy, d: CheckDir, hide_simulator: bool = False) -> list[str]:
    """bubblewrap options for one check: its own namespaces and :func:`child_view`, cwd ``run/``."""
    return [policy.bwrap, *BWRAP_NAMESPACES, *bwrap_options(child_view(d, hide_simulator)), "--chdir", str(d.run),
            "--"]

