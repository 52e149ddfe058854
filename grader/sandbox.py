"""Run untrusted student code: one child process per check, in a complete private workspace.

Each check gets its own folder, built completely before its child starts and deleted after it:
``ws/`` (a copy of the framework with the student's files, only the reference code of the *other*
TODOs that check needs, only the data it needs), ``run/`` (the child's cwd, HOME and TMPDIR) and
``out/`` (where it answers with plain files). A trusted supervisor (:mod:`grader.supervisor`) starts
the child and guarantees that nothing it started survives the check.

Two modes, decided once per grading (:func:`sandbox_policy`):

* **root** (Gradescope, Docker, CI): every concurrent check runs under its own dedicated sandbox uid
  (``GRADER_SANDBOX_UID_BASE``, default 64100, + slot), which owns nothing else on the machine. The
  check folder is private to that uid; the grader's secrets (``grader/``, ``data/models/``) are made
  unreadable to it (verified by a probe run as that uid); after the check every process of that uid is
  killed and every file it owns in world-writable folders is deleted. A fresh network namespace cuts
  the network where the kernel allows it; where root may create a mount namespace the child also sees only
  :func:`child_view` (built by :func:`grader.supervisor.enter_view`), as with bubblewrap.
* **ordinary user** (a TA's laptop): the child runs as the TA. With bubblewrap it runs in its own user,
  PID, network and mount namespaces that hold only the system folders and the Python installation
  (read-only) and its check folder (:func:`bwrap_argv`). Without it processes are still all killed (the
  supervisor is a child subreaper), but the child can read what the TA can read and could signal or
  edit the grader; :attr:`SandboxPolicy.warnings` says so before grading starts.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from util.config import REPO_ROOT

FRAMEWORK_DIRS = ("learning", "envs", "util")
SUPERVISOR = Path(__file__).with_name("supervisor.py")
CHILD = Path(__file__).with_name("child.py")


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


MAX_OUTPUT_BYTES = 64 * 1024 * 1024
PEAK_SUPERVISOR_KB = [0]     # the largest supervisor seen by this process (tools/benchmark_grader.py)


class SandboxError(RuntimeError):
    """The machine cannot give the guarantees the grader needs (message says how to fix it)."""


# ----------------------------------------------------------------------------------------------- policy
@dataclass
class SandboxPolicy:
    root: bool
    uids: list[int] = field(default_factory=list)     # one sandbox uid per concurrent slot (root mode)
    netns: bool = False
    mountns: bool = False                              # root mode: each check sees only child_view()
    bwrap: str = ""                                    # ordinary-user mode: bubblewrap, when it works here
    clean_dirs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _free: list[int] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def describe(self) -> str:
        if self.bwrap:
            return ("sandbox: ordinary-user mode with bubblewrap: each check in its own user, PID, network and mount "
                    "namespaces, seeing only the system folders (/usr, /etc, ...) and the Python installation "
                    "read-only and its own folder, private /tmp; every process of a check dies with it")
        if self.root:
            net = "no network (own namespace)" if self.netns else "network NOT isolated (no namespace support)"
            view = ("seeing only the system folders, the Python installation and its own folder (own mount "
                    "namespace), private /tmp" if self.mountns else
                    "secrets unreadable but other files every user may read are readable (no mount namespace here)")
            return (f"sandbox: root mode, each check under its own uid ({self.uids[0]}..{self.uids[-1]}), "
                    f"{view}, every process and /tmp file of a check removed after it, {net}")
        return "sandbox: ordinary-user mode (see warnings)"

    def acquire(self) -> int | None:
        """A free sandbox uid (root mode) or None."""
        if not self.root:
            return None
        with self._lock:
            while not self._free:
                self._lock.wait()
            return self._free.pop()

    def release(self, uid: int | None) -> None:
        if uid is None:
            return
        with self._lock:
            self._free.append(uid)
            self._lock.notify()


def _try_netns() -> bool:
    def unshare() -> None:
        import ctypes

        if ctypes.CDLL(None, use_errno=True).unshare(0x40000000) != 0:
            os._exit(3)

    try:
        r = subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], preexec_fn=unshare, timeout=60,
                           capture_output=True)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


BWRAP_NAMESPACES = ["--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                    "--die-with-parent", "--new-session", "--proc", "/proc", "--dev", "/dev"]
# the only parts of the machine a child sees (read-only), besides the Python installation and its check folder:
# programs, libraries and system settings. Not /home, /root, /srv, /opt, /mnt, /work, /var...: another copy of
# the grader, other students' submissions or your own files there stay invisible.
SYSTEM_DIRS = ("/usr", "/etc", "/sys", "/nix", "/gnu")
ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")   # symlinks into /usr on merged-usr systems


def _system_view() -> list[list[str]]:
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


def _bwrap_options(plan: list[list[str]]) -> list[str]:
    argv: list[str] = []
    for step in plan:
        kind, path = step[0], step[-1]
        argv += {"ro": ["--ro-bind", path, path], "link": ["--symlink", step[1], path],
                 "tmp": ["--tmpfs", path], "rw": ["--bind", path, path]}[kind]
    return argv


def _try_bwrap() -> str:
    """Path of a bubblewrap that can create user, PID and network namespaces here, or ''."""
    path = shutil.which("bwrap")
    if not path:
        return ""
    try:
        r = subprocess.run([path, *BWRAP_NAMESPACES, *_bwrap_options(_system_view()), "true"], capture_output=True,
                           timeout=60)
        return path if r.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def child_view(d: "CheckDir") -> list[list[str]]:
    """What a check's child sees of the machine, as mount steps in order (one plan for both ways of building
    it: bubblewrap in ordinary-user mode, :func:`grader.supervisor.enter_view` in root mode):

    * ``["ro", path]``: the system folders (:data:`SYSTEM_DIRS`), then the Python installation, read-only;
    * ``["link", target, path]``: the ``/bin``, ``/lib*`` links of a merged-usr system;
    * ``["tmp", path]``: a fresh empty tmpfs: private ``/tmp``, ``/var/tmp``, ``/dev/shm``, and the grader's
      secrets, your home folder and GRADER_PRIVATE_PATHS where they lie inside that view (e.g. a grader checked
      out under /usr/local);
    * ``["rw", path]``: the check folder, writable.

    Nothing else of the machine exists there: no /home, /root, /srv, /opt, /work, other checkouts or submissions.
    ``/dev`` (null, zero, full, random, urandom, tty) and ``/proc`` are added by whoever builds the view."""
    import site

    plan = _system_view() + [["tmp", "/tmp"], ["tmp", "/var/tmp"], ["tmp", "/dev/shm"]]

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
    plan.append(["rw", str(d.path)])
    return plan


def bwrap_argv(policy: "SandboxPolicy", d: "CheckDir") -> list[str]:
    """bubblewrap options for one check: its own namespaces and :func:`child_view`, cwd ``run/``."""
    return [policy.bwrap, *BWRAP_NAMESPACES, *_bwrap_options(child_view(d)), "--chdir", str(d.run), "--"]


def world_writable_dirs() -> list[str]:
    """Folders any user may create files in (searched 3 levels deep, plus the usual shared ones)."""
    found = {d for d in ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue", "/run/lock") if os.path.isdir(d)}
    stack = [("/", 0)]
    while stack:
        d, depth = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.path in ("/proc", "/sys") or not e.is_dir(follow_symlinks=False):
                continue
            try:
                mode = e.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if mode & 0o002:
                found.add(e.path)
            elif depth < 2:
                stack.append((e.path, depth + 1))
    return sorted(found)


_POLICY: SandboxPolicy | None = None
_POLICY_LOCK = threading.Lock()


def sandbox_policy(slots: int = 2) -> SandboxPolicy:
    """Decide the mode once per process; root mode is verified by a probe run as the sandbox uid."""
    global _POLICY
    with _POLICY_LOCK:
        if _POLICY is not None and (not _POLICY.root or len(_POLICY.uids) >= slots):
            return _POLICY
        mode = os.environ.get("GRADER_SANDBOX", "auto")   # auto | user (testing the ordinary-user path)
        netns_wanted = os.environ.get("GRADER_NETNS", "auto") != "off"
        if hasattr(os, "geteuid") and os.geteuid() == 0 and mode != "user":
            uids = _claim_uids(max(1, slots) - (len(_POLICY.uids) if _POLICY and _POLICY.root else 0))
            if _POLICY is not None and _POLICY.root:
                uids = _POLICY.uids + uids
            pol = SandboxPolicy(root=True, uids=uids, _free=list(reversed(uids)))
            _prepare_root(pol)
            pol.netns = netns_wanted and _try_netns()
            if os.environ.get("GRADER_MOUNTNS", "auto") != "off":
                pol.mountns, why = _try_mount_view(pol.uids[0])
                _CHECK_FS[0] = pol.mountns
                if why:
                    pol.notes.append(f"no mount namespace for the checks: {why}; other files every user may read "
                                     "on this machine are readable by student code (grader/README.md)")
            pol.clean_dirs = world_writable_dirs()
        else:
            pol = SandboxPolicy(root=False,
                                bwrap=_try_bwrap() if os.environ.get("GRADER_BWRAP", "auto") != "off" else "")
            if pol.bwrap:
                pol.warnings = [
                    "student code runs as your own user inside the namespaces; it sees only the system folders "
                    f"({', '.join(d for d in SYSTEM_DIRS if os.path.isdir(d))}) and the Python installation: "
                    "files you can read there (e.g. submissions or a copy of the solutions kept under /usr/local or "
                    "inside your Python environment) are readable",
                ]
            else:
                pol.warnings = [
                    "student code runs as your own user: it can READ the reference solutions, hidden checks, "
                    "thresholds, the expert's weights and any of your files, and it could signal or edit the grader",
                    "files a check writes outside its workspace (e.g. in /tmp) are not removed after it",
                    "the network is not cut off",
                    "processes a check starts are still killed after it (child subreaper), unless the check kills the "
                    "grader's supervisor first",
                "for the full guarantees install bubblewrap (`apt install bubblewrap`, with unprivileged user "
                "namespaces enabled), or grade as root in a container, e.g. "
                "`docker run --rm -v $PWD:/g -w /g python:3.11 python -m grader SUB` or "
                "`sudo .venv/bin/python -m grader SUB`",
                ]
        _POLICY = pol
        return pol


def _try_mount_view(uid: int) -> tuple[bool, str]:
    """(whether root can give each check its own view here, why not): :func:`child_view` built by
    :func:`grader.supervisor.enter_view` (needs CAP_SYS_ADMIN, which Docker's default profile withholds). A probe
    as ``uid`` inside that view must see its own folder and /usr, not this repository's files, and import what a
    check imports (a package installed outside the Python installation, e.g. an editable install, would be missing
    from the view: then no view, rather than every check failing)."""
    from grader.supervisor import enter_view

    scratch, private = make_scratch()
    try:
        d = new_check_dir(scratch, "probe")
        _chown_tree(d.path, uid)
        staging = private / "probe.root"
        staging.mkdir(mode=0o700)
        code = ("import os, sys\n"
                "if not (os.path.isdir(sys.argv[1]) and os.path.isdir('/usr') and not os.path.exists(sys.argv[2])\n"
                "        and open('/dev/null', 'wb').write(b'x') == 1):\n"
                "    sys.exit(9)\n"
                "import numpy, torch, gymnasium, mujoco\n")

        def enter() -> None:
            try:
                enter_view(child_view(d), str(staging), str(d.run))
            except OSError:
                os._exit(8)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

        try:
            r = subprocess.run([sys.executable, "-I", "-B", "-c", code, str(d.run), str(REPO_ROOT / "grader")],
                               preexec_fn=enter, cwd=str(d.run), capture_output=True, timeout=120,
                               env={"PATH": "/usr/bin:/bin", "HOME": str(d.run)})
        except (OSError, subprocess.SubprocessError) as e:
            return False, f"its probe failed ({type(e).__name__})"
        if r.returncode == 0:
            return True, ""
        if r.returncode == 8:
            return False, "root may not create a mount namespace here (no CAP_SYS_ADMIN)"
        if r.returncode == 9:
            return False, "the probe saw the wrong files inside the view"
        last = (r.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1][:200]
        return False, f"Python could not import its packages inside the view ({last})"
    finally:
        remove_scratch(scratch)


_CLAIMS: list[int] = []   # open lock files: held for this process's life, released by the kernel when it ends


def _claim_uids(n: int) -> list[int]:
    """Claim ``n`` sandbox uids no other grader process on this machine uses (an flock per uid)."""
    import fcntl

    base = int(os.environ.get("GRADER_SANDBOX_UID_BASE", "64100"))
    lock_dir = "/run/lock" if os.path.isdir("/run/lock") and os.access("/run/lock", os.W_OK) else "/tmp"
    got: list[int] = []
    for uid in range(base, base + 256):
        if len(got) == n:
            break
        fd = os.open(f"{lock_dir}/il-grader-uid-{uid}.lock", os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        _CLAIMS.append(fd)
        got.append(uid)
    if len(got) < n:
        raise SandboxError(f"no free sandbox uid in {base}..{base + 255} (256 gradings running?)")
    return got


def _prepare_root(pol: SandboxPolicy) -> None:
    for uid in pol.uids:
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            continue
        raise SandboxError(f"sandbox uid {uid} belongs to user '{name}'; choose a free range with "
                           "GRADER_SANDBOX_UID_BASE=<uid> (uids no account uses)")
    from grader.supervisor import clear_keys_of

    for uid in pol.uids:   # leftovers of a grading that was killed: they are ours by construction
        n = kill_uid(uid)
        if n:
            pol.notes.append(f"killed {n} leftover process(es) of sandbox uid {uid}")
        clear_keys_of(uid)
    secrets = secret_paths()
    probe = _probe(pol.uids[0], [str(p) for p in secrets])
    if not probe["python"]:
        raise SandboxError(
            f"the grader runs as root but its sandbox user (uid {pol.uids[0]}) cannot run {sys.executable} "
            f"({probe['python_error']}). Create the virtualenv from the system Python in a folder every user "
            "can read, e.g. `/usr/bin/python3 -m venv /opt/grader-venv && /opt/grader-venv/bin/pip install -r "
            "requirements.txt`, and run the grader with that Python")
    if probe["readable"]:
        changed = []
        for p in secrets:
            mode = stat.S_IMODE(p.lstat().st_mode)
            if mode & 0o077:
                os.chmod(p, mode & ~0o077)
                changed.append(p.name if p.parent == REPO_ROOT else str(p))
        pol.notes.append(f"made {', '.join(changed)} in {REPO_ROOT} private to root (chmod go-rwx) so that student "
                         "code cannot read them (the interpreter's folder stays readable)")
        probe = _probe(pol.uids[0], [str(p) for p in secrets])
        if probe["readable"]:
            raise SandboxError(f"student code could still read {probe['readable'][0]} after chmod go-rwx; "
                               "put the grader on a filesystem with Unix permissions")


_PROBE = r"""
import json, os, sys

def readable(p):
    if not os.path.isdir(p):
        open(p, "rb").close()
        return True
    names = os.listdir(p)
    for n in names[:50]:
        q = os.path.join(p, n)
        try:
            if os.path.isfile(q):
                open(q, "rb").close()
                return True
        except OSError:
            pass
    return bool(names)

out = {"readable": []}
for p in json.loads(sys.argv[1]):
    try:
        if readable(p):
            out["readable"].append(p)
    except OSError:
        pass
try:
    import numpy, torch, gymnasium, mujoco
    out["python"], out["python_error"] = True, ""
except BaseException as e:
    out["python"], out["python_error"] = False, f"{type(e).__name__}: {e}"[:200]
print(json.dumps(out))
"""


def _probe(uid: int, paths: list[str]) -> dict:
    def demote() -> None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)

    try:
        r = subprocess.run([sys.executable, "-I", "-c", _PROBE, json.dumps(paths)], preexec_fn=demote, cwd="/",
                           capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": "/"})
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        return {"readable": [], "python": False, "python_error": f"{type(e).__name__}: {e}"[:200]}


def kill_uid(uid: int, deadline_s: float = 20.0) -> int:
    """SIGKILL every process of ``uid`` until none is left (root only). Returns the number of signals sent."""
    from grader.supervisor import _uid, kill_matching

    sent, clean = kill_matching(lambda pid, ppid: _uid(pid) == uid, deadline_s)
    if not clean:
        raise SandboxError(f"processes of sandbox uid {uid} could not be killed within {deadline_s:.0f} s")
    return sent


# ----------------------------------------------------------------------------------------------- workspace
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


def new_check_dir(scratch: Path, name: str) -> CheckDir:
    """A fresh check folder in ``scratch``; where root may mount (:attr:`SandboxPolicy.mountns`), a tmpfs of its own
    (CHECK_FS_MB, CHECK_FS_INODES): what a check writes is bounded by its own file system, and no other check's
    writes can fill it."""
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


def build_workspace(d: CheckDir, student_files: dict[str, Path | None], references: list[str],
                    data_files: list[Path | tuple[Path, str]]) -> None:
    """Fill ``d.ws``: the framework (its own ``learning/*_agent.py`` included, untouched), the student's files as the
    package ``submission/`` (the child splices their TODO methods onto the framework's classes), ``grader_ref/<module>.py``
    for each name in ``references``, the data files (a path under the repo, or (source, path in the workspace)), and
    the child script."""
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
            shutil.copyfile(REPO_ROOT / "grader" / "solution" / f"{mod}.py", ws / "grader_ref" / f"{mod}.py")
    for f in data_files:
        src, rel = (f, str(f.relative_to(REPO_ROOT))) if isinstance(f, Path) else f
        (ws / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, ws / rel)
    shutil.copyfile(CHILD, ws / "grader_child.py")


def _chown_tree(root: Path, uid: int) -> None:
    """Give everything inside the check folder ``root`` to ``uid``; ``root`` itself stays the grader's (mode 0711:
    the child may enter it, not list, rename or replace what is in it, e.g. swap ``out/`` for a link)."""
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath != str(root):
            os.chown(dirpath, uid, uid)
        for n in filenames:
            os.chown(os.path.join(dirpath, n), uid, uid, follow_symlinks=False)
    os.chown(root, os.geteuid(), os.getegid())
    os.chmod(root, 0o711)


# ----------------------------------------------------------------------------------------------- running
@dataclass
class ChildResult:
    returncode: int | None
    timed_out: bool
    seconds: float
    out: Path
    all_dead: bool = True
    oracle_over_budget: bool = False
    oracle_budget: int | None = None
    oracle_error: str = ""
    supervisor_error: str = ""
    disk_exceeded: bool = False
    disk_bytes: int = 0
    disk_inodes: int = 0
    mem_exceeded: bool = False
    mem_limit: int = 0

    @property
    def finished(self) -> bool:
        return (not self.timed_out and not self.disk_exceeded and not self.mem_exceeded and self.returncode == 0
                and read_output(self, "DONE", 64) is not None)

    def message(self) -> str:
        """Why the child produced no answer, in the grader's own words (never the student's text)."""
        if self.supervisor_error:
            return f"grader error: {self.supervisor_error}"
        if self.oracle_over_budget:
            return (f"the expert was asked about more than {self.oracle_budget} distinct states, this check's "
                    "sample budget (each labelled sample costs one expert query)")
        if self.oracle_error:
            return f"the expert oracle was misused: {self.oracle_error}"
        if self.disk_exceeded:
            return (f"stopped: its files took more than {self.disk_bytes >> 20} MB or {self.disk_inodes:,} files and "
                    "folders (or the disk was nearly full while it wrote a lot)")
        if self.mem_exceeded:
            return (f"stopped: its processes held more than {self.mem_limit >> 20} MB of memory together (memory "
                    "in every process and in memfds counts)")
        if self.timed_out:
            return f"timed out after {self.seconds:.0f} s (an infinite loop, or far too slow)"
        if self.returncode is not None and self.returncode < 0:
            sig = -self.returncode
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            hint = " (memory or CPU limit exceeded)" if name in ("SIGKILL", "SIGXCPU", "SIGSEGV", "SIGABRT") else ""
            return f"the process was killed by {name}{hint}"
        return "the grading process ended early (sys.exit/os._exit, or a crash in your code)"


# What bounds one check's memory (grader/README.md, threat model): at most CHILD_NPROC processes and threads of its
# sandbox uid, each process at most --mem-mb of address space and CHILD_NOFILE open files (a memfd or a deleted file
# among them at most RLIMIT_FSIZE = CHILD_FILE_MB each), plus its tmpfs (check folder, /tmp, /var/tmp, /dev/shm).
# Measured on a training child (cheetah DAgger and BC, torch with 1 thread + MuJoCo): 2 threads, 11 open files (it
# also trains under RLIMIT_NOFILE 20), 0.88 GB of address space, largest file 1.5 MB (checkpoint.pt; 2.6 MB with 25
# demos).
CHILD_NPROC = 6
CHILD_NOFILE = 32
CHILD_FILE_MB = 16


def memory_bound_mb(mem_mb: int, mountns: bool) -> int:
    """The most memory one check can hold (MB) under these limits: processes × (address space + open files × file
    size) + the tmpfs it may fill (with a mount namespace: its check folder, its private /tmp, /var/tmp, /dev/shm;
    without one its files are on disk)."""
    from grader.supervisor import CHECK_FS_MB, IPC_LIMITS, PRIVATE_TMPFS_MB

    tmpfs = CHECK_FS_MB + 3 * PRIVATE_TMPFS_MB if mountns else 0
    ipc = (IPC_LIMITS["kernel/shmall"] * 4096 + IPC_LIMITS["kernel/msgmni"] * IPC_LIMITS["kernel/msgmnb"]) >> 20
    return CHILD_NPROC * (mem_mb + CHILD_NOFILE * CHILD_FILE_MB) + tmpfs + (ipc if mountns else 0)


def run_child(policy: SandboxPolicy, d: CheckDir, private: Path, job: dict, timeout: float, mem_mb: int = 2048,
              oracle: dict | None = None, file_mb: int = CHILD_FILE_MB) -> ChildResult:
    """Run ``grader_child.py`` on ``job`` in check folder ``d`` under the supervisor; ``private`` is a
    folder only the grader can read (for the supervisor's spec and the child's stderr)."""
    (d.inputs / "job.json").write_text(json.dumps(job))
    uid = policy.acquire()
    try:
        if uid is not None:
            _chown_tree(d.path, uid)
        env = {
            "PATH": "/usr/bin:/bin", "HOME": str(d.run), "TMPDIR": str(d.run), "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "MPLCONFIGDIR": str(d.run), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
        }
        tag = d.path.name
        spec = {
            "argv": [sys.executable, "-I", "-B", str(d.ws / "grader_child.py"), str(d.inputs / "job.json"), str(d.out)],
            "cwd": str(d.run), "env": env, "timeout": timeout, "uid": uid, "netns": policy.netns,
            "limits": {"mem_bytes": mem_mb * 1024 * 1024, "cpu_s": int(timeout) + 10,
                       "file_bytes": file_mb * 1024 * 1024, "nproc": CHILD_NPROC, "nofile": CHILD_NOFILE,
                       "check_mem_bytes": mem_mb * 1024 * 1024},
            "check_dir": str(d.path),
            "clean_dirs": policy.clean_dirs, "stderr_path": str(private / f"{tag}.stderr"),
            "oracle": None if oracle is None else {**oracle, "repo_root": str(REPO_ROOT)},
            "wrap": bwrap_argv(policy, d) if policy.bwrap else [],
            "view": child_view(d) if policy.mountns else None, "view_root": str(private / f"{tag}.root"),
        }
        if policy.mountns:
            (private / f"{tag}.root").mkdir(mode=0o700)
        spec_path = private / f"{tag}.json"
        spec_path.write_text(json.dumps(spec))
        try:
            p = subprocess.run([sys.executable, "-I", "-B", str(SUPERVISOR), str(spec_path)], capture_output=True,
                               text=True, timeout=timeout + 120, stdin=subprocess.DEVNULL)
            status = json.loads(p.stdout.strip().splitlines()[-1])
            err = f"the check could not be started ({status['start_error']})" if status.get("start_error") else ""
        except (subprocess.SubprocessError, ValueError, IndexError) as e:
            status, err = {}, f"the check's supervisor failed ({type(e).__name__})"
        PEAK_SUPERVISOR_KB[0] = max(PEAK_SUPERVISOR_KB[0], int(status.get("supervisor_maxrss_kb", 0)))
        if uid is not None:
            kill_uid(uid)                 # belt and braces: nothing of this uid may survive the check
        res = ChildResult(returncode=status.get("returncode"), timed_out=bool(status.get("timed_out")),
                          seconds=float(status.get("seconds", 0.0)), out=d.out,
                          all_dead=bool(status.get("all_dead", False)),
                          oracle_over_budget=bool(status.get("oracle_over_budget")),
                          oracle_budget=status.get("oracle_budget"),
                          oracle_error=str(status.get("oracle_error", "")), supervisor_error=err,
                          disk_exceeded=bool(status.get("disk_exceeded")), disk_bytes=int(status.get("disk_bytes", 0)),
                          disk_inodes=int(status.get("disk_inodes", 0)),
                          mem_exceeded=bool(status.get("mem_exceeded")), mem_limit=int(status.get("mem_limit", 0)))
        if not res.all_dead and not err:
            raise SandboxError("a check left processes that could not be killed; grading stopped")
        return res
    finally:
        policy.release(uid)


MAX_UNPACKED_BYTES = 256 * 1024 * 1024     # what a child's zip answer (result.npz, model.pt) may unpack to
MAX_ZIP_MEMBERS = 4096


def unpack_problem(raw: bytes, max_bytes: int = MAX_UNPACKED_BYTES) -> str:
    """'' if ``raw`` is a zip (an ``.npz``, a torch file) that is safe to hand to numpy or torch, else why not.

    Safe means: at most :data:`MAX_ZIP_MEMBERS` members that unpack to at most ``max_bytes`` in all (a
    64 MB file of deflated zeros would otherwise unpack to gigabytes in the grader, as root: the blind red team
    did this), and every ``.npy`` header describing no more data than its member holds (numpy allocates what the
    header says before reading)."""
    import io
    import zipfile

    import numpy as np

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = z.infolist()
            if len(infos) > MAX_ZIP_MEMBERS or sum(i.file_size for i in infos) > max_bytes:
                return f"it unpacks to more than {max_bytes >> 20} MB or {MAX_ZIP_MEMBERS} files"
            for info in infos:
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:
                        return f"unsupported .npy version {version}"
                n = 1
                for dim in shape:
                    n *= int(dim)
                if dtype.hasobject or n * dtype.itemsize > info.file_size:
                    return f"{info.filename} claims more data than it holds"
    except Exception as e:  # noqa: BLE001 - anything unreadable is the child's fault
        return f"not a readable archive ({type(e).__name__})"
    return ""


def _open_beneath(path: Path, flags: int) -> int:
    """Open ``path`` (absolute) one component at a time from ``/``, each folder with O_DIRECTORY | O_NOFOLLOW and the
    last component with ``flags`` | O_NOFOLLOW: no link anywhere on the path is followed (O_NOFOLLOW alone guards
    only the last component; a child that owns a folder on the path could replace it by a link to a root-only
    file). Raises OSError."""
    parts = [p for p in Path(path).parts[1:] if p]
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], flags | os.O_NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


def read_output(res: ChildResult, name: str, max_bytes: int = MAX_OUTPUT_BYTES) -> bytes | None:
    """Bytes of ``out/<name>`` if it is a regular file with one link, reached without following any link (see
    :func:`_open_beneath`), else None."""
    try:
        fd = _open_beneath(res.out / name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, IndexError):
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes or st.st_nlink != 1:
            return None                    # a hard link could name a file the child may not read
        chunks, total = [], 0
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                break
            total += len(b)
            if total > max_bytes:
                return None
            chunks.append(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


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
