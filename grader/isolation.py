"""The isolation policy: how student code is kept from the machine, decided once per grading and verified by probes.

Each check runs in its own folder (:mod:`grader.workspace`) under a trusted supervisor (:mod:`grader.supervisor`,
started by :func:`grader.runner.run_child`) that guarantees that nothing the child started survives the check; this
module decides what the child may reach of the machine.

Two modes, decided once per grading (:func:`sandbox_policy`):

* **root** (Gradescope, Docker, CI): every concurrent check runs under its own dedicated sandbox uid
  (``GRADER_SANDBOX_UID_BASE``, default 64100, + slot), which owns nothing else on the machine. The
  check folder is private to that uid; the grader's secrets (``grader/``, ``data/models/``) are made
  unreadable to it (verified by a probe run as that uid); after the check every process of that uid is
  killed and every file it owns in world-writable folders is deleted. A fresh network namespace cuts
  the network where the kernel allows it; where root may create a mount namespace the child also sees only
  :func:`grader.views.child_view` (built by :func:`grader.supervisor.enter_view`), as with bubblewrap.
* **ordinary user** (a TA's laptop): the child runs as the TA. With bubblewrap it runs in its own user,
  PID, network and mount namespaces that hold only the system folders and the Python installation
  (read-only) and its check folder (:func:`grader.views.bwrap_argv`). Without it processes are still all killed (the
  supervisor is a child subreaper), but the child can read what the TA can read and could signal or
  edit the grader; :attr:`SandboxPolicy.warnings` says so before grading starts.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from grader.views import BWRAP_NAMESPACES, SYSTEM_DIRS, bwrap_options, child_view, secret_paths, system_view
from grader.workspace import chown_tree, make_scratch, new_check_dir, remove_scratch, set_check_fs
from util.config import REPO_ROOT


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


def _try_bwrap() -> str:
    """Path of a bubblewrap that can create user, PID and network namespaces here, or ''."""
    path = shutil.which("bwrap")
    if not path:
        return ""
    try:
        r = subprocess.run([path, *BWRAP_NAMESPACES, *bwrap_options(system_view()), "true"], capture_output=True,
                           timeout=60)
        return path if r.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


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
                set_check_fs(pol.mountns)
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
        chown_tree(d.path, uid)
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
    for uid in pol.uids:   # leftovers of a grading that was killed: they are ours by construction
        n = kill_uid(uid)
        if n:
            pol.notes.append(f"killed {n} leftover process(es) of sandbox uid {uid}")
        as_uid_helper("--clear-keys", uid)
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


SUPERVISOR = Path(__file__).with_name("supervisor.py")


def as_uid_helper(action: str, uid: int) -> bool:
    """Run one of the supervisor's actions on sandbox ``uid`` (``--kill-uid``, ``--clear-keys``:
    grader.supervisor.UID_ACTIONS) in a fresh root process; True if it succeeded. This process never forks for them:
    its checks run and score in threads, and a fork() while another thread is inside a BLAS call deadlocks in
    OpenBLAS's fork handler (a stalled grading, seen in CI). subprocess starts the helper with vfork and exec, which
    runs no fork handlers (no preexec_fn, user or group: those take the fork path); the helper forks from one thread."""
    try:
        r = subprocess.run([sys.executable, "-I", "-S", "-B", str(SUPERVISOR), action, str(uid)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def kill_uid(uid: int, deadline_s: float = 20.0) -> int:
    """SIGKILL every process of ``uid`` until none is left (root only): all at once as ``uid`` (a fork cannot escape
    it: grader.supervisor.signal_every_process_of, in a helper process), then until /proc shows none. Returns the
    number of signals the scan sent."""
    from grader.supervisor import _uid, kill_matching

    as_uid_helper("--kill-uid", uid)
    sent, clean = kill_matching(lambda pid, ppid: _uid(pid) == uid, deadline_s)
    if not clean:
        raise SandboxError(f"processes of sandbox uid {uid} could not be killed within {deadline_s:.0f} s")
    return sent
