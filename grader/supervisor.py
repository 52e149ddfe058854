"""Per-check supervisor: the trusted process between the grader and one untrusted child.

Usage (by grader.runner only): python -I -B supervisor.py SPEC.json   → prints one JSON status line.

It makes itself a *child subreaper* (prctl PR_SET_CHILD_SUBREAPER), so every process the child
starts — double-forked, ``setsid()``, signal-ignoring daemons included — stays its descendant and is
re-parented to it when its own parent dies. It starts the child with resource limits, optionally in a
fresh network namespace and under a dedicated sandbox uid, answers the child's expert queries (the
expert oracle: the child never holds the expert's weights), and when the child's main process ends or
times out it kills every remaining descendant and, with a sandbox uid, every process of that uid, then
deletes every file that uid left in world-writable folders (/tmp, /dev/shm, ...) and its SysV IPC
objects. Only then does it report, so nothing a child started or wrote outlives its check.
"""
from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import stat
import struct
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNET = 0x40000000
CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
PRIVATE_TMPFS_MB = 32               # a private /tmp, /var/tmp, /dev/shm lives in memory: cap it (a check uses ~0)
TMPFS_OPTIONS = f"mode=1777,size={PRIVATE_TMPFS_MB}m,nr_inodes=4096"
CHECK_FS_MB = 288                   # root with CAP_SYS_ADMIN: a check folder is its own tmpfs of this size ...
CHECK_FS_INODES = 10_000            # ... and inodes (the disk guard stops it at 256 MB / 8192 files first)
HEADER = struct.Struct("<II")          # request: (rows, obs_dim); response: (status, rows)
MAX_ROWS_PER_REQUEST = 65536
ENV_HEADER = struct.Struct("<III")     # env request: (op, env index, payload bytes); reply: HEADER (status, bytes)
ENV_MAKE, ENV_RESET, ENV_STEP = 1, 2, 3
MAX_ENVS = 16

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


# ----------------------------------------------------------------------------------------------- processes
def _proc_entries() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of ``pid`` or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    return rest[0], int(rest[1])


def _uid(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_matching(match, deadline_s: float = 20.0, reap: bool = False) -> tuple[int, bool]:
    """SIGKILL every live process (not zombies, not us) for which ``match(pid, ppid)`` holds, until none is left.

    Returns (signals sent, True if none is left before ``deadline_s``). ``reap``: wait for our dead children.
    """
    me = os.getpid()
    killed = 0
    end = time.time() + deadline_s
    while time.time() < end:
        victims = []
        for pid in _proc_entries():
            st = _stat(pid) if pid != me else None
            if st is not None and st[0] != "Z" and match(pid, st[1]):
                victims.append(pid)
        if not victims:
            if reap:
                _reap()
            return killed, True
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(0.01)
        if reap:
            _reap()
    return killed, False


def signal_every_process_of(uid: int) -> bool:
    """SIGKILL every process of ``uid`` in one pass of the kernel: a forked helper becomes ``uid`` and calls
    kill(-1, SIGKILL), which signals every process the uid owns under the task-list lock, and a process with SIGKILL
    pending cannot complete a fork. A scan of /proc alone can miss a process (a daemon's intermediate parent that
    forks and exits while the scan reads: the scan lists the parent, finds it dead, never lists the new child).
    Only root can become ``uid``; nothing of ``uid`` can start after this but from root. True if the helper ran."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)                 # real, effective and saved uid: it may signal exactly uid's processes
            os.kill(-1, signal.SIGKILL)    # every process it may signal but itself
            os._exit(0)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def kill_leftovers(sandbox_uid: int | None, deadline_s: float = 20.0) -> tuple[int, bool]:
    """SIGKILL every descendant (they are all re-parented to us) and every process of ``sandbox_uid`` (first all
    at once, :func:`signal_every_process_of`; then until /proc shows none)."""
    me = os.getpid()
    if sandbox_uid is not None and os.geteuid() == 0:
        signal_every_process_of(sandbox_uid)
    return kill_matching(lambda pid, ppid: ppid == me or (sandbox_uid is not None and _uid(pid) == sandbox_uid),
                         deadline_s, reap=True)


# ----------------------------------------------------------------------------------------------- files
def remove_files_of(uid: int, roots: list[str]) -> int:
    """Delete everything owned by ``uid`` in the world-writable folders ``roots`` (recursively through
    world-writable subfolders, never following links). Returns the number of entries removed."""
    removed = 0
    stack = [(r, 0) for r in roots]
    while stack:
        d, depth = stack.pop()
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            p = os.path.join(d, n)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if st.st_uid == uid:
                _remove_tree(p)
                removed += 1
            elif stat.S_ISDIR(st.st_mode) and st.st_mode & 0o002 and depth < 8:
                stack.append((p, depth + 1))
    return removed


def _remove_tree(p: str) -> None:
    try:
        st = os.lstat(p)
    except OSError:
        return
    if stat.S_ISDIR(st.st_mode):
        try:
            os.chmod(p, 0o700)
            names = os.listdir(p)
        except OSError:
            names = []
        for n in names:
            _remove_tree(os.path.join(p, n))
        try:
            os.rmdir(p)
        except OSError:
            pass
    else:
        try:
            os.unlink(p)
        except OSError:
            pass


def remove_ipc_of(uid: int) -> int:
    """Remove the SysV shared memory segments, message queues and semaphore sets owned by ``uid``."""
    removed = 0
    for kind, call in (("shm", "shmctl"), ("msg", "msgctl"), ("sem", "semctl")):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for ln in lines:
            cols = ln.split()
            try:
                ident = int(cols[1])
                owner = int(cols[7] if kind == "shm" else (cols[6] if kind == "msg" else cols[4]))
            except (IndexError, ValueError):
                continue
            if owner != uid:
                continue
            fn = getattr(_libc, call)
            rc = fn(ident, 0, 0) if kind == "sem" else fn(ident, 0, None)   # IPC_RMID = 0
            removed += rc == 0
    return removed


SYS_KEYCTL = {"x86_64": 250, "aarch64": 219, "riscv64": 219, "ppc64le": 311, "s390x": 280}
KEYCTL_CLEAR, KEYCTL_GET_PERSISTENT = 7, 22
KEY_SPEC_PROCESS_KEYRING, KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -2, -4, -5


def clear_keys_of(uid: int) -> bool:
    """Empty ``uid``'s kernel keyrings that outlive its processes (user, user-session, persistent): keys are
    neither files nor processes, and a later check under the same uid could read them (the blind red team did).
    Runs as ``uid`` in a forked helper (a keyring's owner may clear it). True if the helper succeeded."""
    number = SYS_KEYCTL.get(os.uname().machine)
    if number is None:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            ok = True
            for ring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
                ok &= _libc.syscall(number, KEYCTL_CLEAR, ring) == 0
            persistent = _libc.syscall(number, KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_PROCESS_KEYRING)
            if persistent >= 0:
                ok &= _libc.syscall(number, KEYCTL_CLEAR, persistent) == 0
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


# ----------------------------------------------------------------------------------------------- oracle
class Oracle:
    """Answers expert queries over a pipe; charges each distinct observation once against ``budget``.

    The expert is the plain-NumPy actor (``learning/actor.py``, exported by the grader, see
    grader.performance.export_expert): the same code and arrays that label a student's own run, and no torch in this
    process.
    """

    def __init__(self, spec: dict):
        import numpy as np

        if spec["repo_root"] not in sys.path:
            sys.path.insert(0, spec["repo_root"])
        from learning.actor import MLPActor      # NumPy only

        self.np = np
        with np.load(spec["expert_npz"], allow_pickle=False) as f:
            self.actor = MLPActor({k: np.array(f[k]) for k in f.files})
        self.obs_dim, self.act_dim = int(spec["obs_dim"]), int(spec["act_dim"])
        self.budget = int(spec["budget"])
        self.cache: dict[bytes, object] = {}
        self.over_budget = False

    def act(self, obs):
        """(N, obs_dim) float32 → (N, act_dim) deterministic env actions, exactly as a student's run computes them."""
        return self.actor.act(obs)

    def answer(self, rows: int, payload: bytes) -> bytes:
        np = self.np
        obs = np.frombuffer(payload, np.float32).reshape(rows, self.obs_dim)
        keys = [obs[i].tobytes() for i in range(rows)]
        fresh = list(dict.fromkeys(k for k in keys if k not in self.cache))
        if len(self.cache) + len(fresh) > self.budget:
            self.over_budget = True
            return HEADER.pack(1, 0)
        if fresh:
            batch = np.frombuffer(b"".join(fresh), np.float32).reshape(len(fresh), self.obs_dim)
            acts = self.act(batch).reshape(len(fresh), self.act_dim)
            for k, a in zip(fresh, acts, strict=True):
                self.cache[k] = a.copy()
        out = np.stack([self.cache[k] for k in keys]).astype(np.float32)
        return HEADER.pack(0, rows) + out.tobytes()


# ----------------------------------------------------------------------------------------------- env server
class EnvServer:
    """Steps an assignment-2 performance check's environments for the child, which holds no simulator: every step
    counts against ``budget`` (the check's environment steps), and the child sees the task through the check's hidden
    change of coordinates (grader/env_transform.py).

    Requests (ENV_HEADER + payload): MAKE → (env index, obs_dim, act_dim, low, high as float32); RESET (payload: the
    seed, int64) → observation; STEP (payload: act_dim float32) → observation, reward (float64), terminated, truncated
    (uint8 each). Replies are HEADER (status, payload bytes) + payload; status 1: the budget is spent."""

    def __init__(self, spec: dict):
        import numpy as np

        if spec["repo_root"] not in sys.path:
            sys.path.insert(0, spec["repo_root"])
        from envs.builder import action_bounds, env_dims, make_env, resolve_env_config
        from grader.env_transform import EnvTransform

        self.np = np
        self.cfg = resolve_env_config(spec["env"])
        self.make_env = make_env
        probe = make_env(self.cfg)
        self.obs_dim, self.act_dim = env_dims(probe)
        low, high = action_bounds(probe)
        probe.close()
        self.transform = EnvTransform(int(spec["transform_seed"]), self.obs_dim, low, high)
        self.budget, self.steps = int(spec["budget"]), 0
        self.envs: list = []
        self.live: list[bool] = []
        self.over_budget = False

    def request_size(self, buf: bytes) -> int | str:
        """Bytes of the first whole request in ``buf`` (0: not all there yet), or why it is malformed."""
        if len(buf) < ENV_HEADER.size:
            return 0
        op, idx, n = ENV_HEADER.unpack_from(buf)
        want = {ENV_MAKE: 0, ENV_RESET: 8, ENV_STEP: 4 * self.act_dim}.get(op)
        if want is None or n != want:
            return f"malformed environment request (operation {op}, {n} bytes)"
        if op != ENV_MAKE and not 0 <= idx < len(self.envs):
            return f"environment request for env {idx}, of {len(self.envs)} made"
        return ENV_HEADER.size + n if len(buf) >= ENV_HEADER.size + n else 0

    def answer(self, request: bytes) -> tuple[bytes, str]:
        """(reply, error): one whole request answered; an error ends the check."""
        np = self.np
        op, idx, n = ENV_HEADER.unpack_from(request)
        payload = request[ENV_HEADER.size:ENV_HEADER.size + n]
        if op == ENV_MAKE:
            if len(self.envs) >= MAX_ENVS:
                return b"", f"more than {MAX_ENVS} environments made"
            self.envs.append(self.make_env(self.cfg))
            self.live.append(False)
            body = struct.pack("<III", len(self.envs) - 1, self.obs_dim, self.act_dim) + \
                self.transform.low.tobytes() + self.transform.high.tobytes()
            return HEADER.pack(0, len(body)) + body, ""
        env = self.envs[idx]
        if op == ENV_RESET:
            (seed,) = struct.unpack("<q", payload)
            obs, _ = env.reset(seed=int(seed) % (2 ** 32))
            self.live[idx] = True
            body = self.transform.observation(obs).tobytes()
            return HEADER.pack(0, len(body)) + body, ""
        if not self.live[idx]:
            return b"", "an environment was stepped before its reset or after its episode ended"
        if self.steps >= self.budget:
            self.over_budget = True
            return HEADER.pack(1, 0), ""
        action = np.frombuffer(payload, np.float32)
        if not np.all(np.isfinite(action)):
            return b"", "an action with NaN or inf"
        real = np.clip(self.transform.action(action), self.transform.env_low, self.transform.env_high)
        obs, reward, terminated, truncated, _ = env.step(real)
        self.steps += 1
        if terminated or truncated:
            self.live[idx] = False
        body = self.transform.observation(obs).tobytes() + struct.pack("<dBB", float(reward), bool(terminated),
                                                                         bool(truncated))
        return HEADER.pack(0, len(body)) + body, ""


# ----------------------------------------------------------------------------------------------- mount view
def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda x: None if x is None else x.encode())
    if _libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {src} on {dst}: {os.strerror(err)}")


def _mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` in this mount namespace, outermost first."""
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            point = line.split()[4].decode("utf-8", "surrogateescape")
            point = point.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            point = point.replace("\\134", "\\")
            if point == path or point.startswith(path.rstrip("/") + "/"):
                out.append(point)
    return out


def _proc_options() -> str | None:
    """``hidepid=invisible`` (the child sees only its own uid's processes) where each proc mount has its own
    options (Linux >= 5.8); on older kernels the option would change every /proc of the machine, so none."""
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return None
    return "hidepid=invisible" if (major, minor) >= (5, 8) else None


# SysV IPC of a check's own IPC namespace: detached shared memory is in no process's memory and holds no open file,
# so the memory guard cannot see it and no rlimit bounds it; the namespace's own limits do (64 MB of segments, 16
# message queues of 16 KB). Written as root right after unshare(CLONE_NEWIPC): they apply to the new namespace only.
IPC_LIMITS = {"kernel/shmmax": 32 << 20, "kernel/shmall": (64 << 20) // 4096, "kernel/shmmni": 16,
              "kernel/msgmni": 16, "kernel/msgmnb": 16384, "kernel/msgmax": 8192}


def limit_ipc() -> None:
    """Cap SysV shared memory and message queues in the calling process's (new) IPC namespace (OSError if not)."""
    for key, value in IPC_LIMITS.items():
        with open(f"/proc/sys/{key}", "w") as f:
            f.write(str(value))


def sysv_shm_bytes(uid: int) -> int:
    """Bytes of the SysV shared-memory segments ``uid`` owns or created in this IPC namespace (attached or not)."""
    total = 0
    try:
        with open("/proc/sysvipc/shm") as f:
            head = f.readline().split()
            col = {name: i for i, name in enumerate(head)}
            for line in f:
                v = line.split()
                if int(v[col["uid"]]) == uid or int(v[col["cuid"]]) == uid:
                    total += int(v[col["size"]])
    except (OSError, KeyError, ValueError, IndexError):
        return total
    return total


def enter_view(plan: list[list[str]], staging: str, cwd: str) -> None:
    """Make the calling process (root, about to drop to its sandbox uid) see only ``plan`` (see
    :func:`grader.views.child_view`): a private mount and IPC namespace holding a fresh tmpfs with the planned
    folders (read-only ones also nosuid, nodev), a minimal /dev and /proc. pivot_root makes that tmpfs the root and
    the machine's own root is detached, so nothing else of it exists in this namespace. The view itself is a
    folder of that tmpfs, entered with chroot: a chrooted process may not create user namespaces (the kernel
    refuses), so the sandbox uid cannot gain capabilities there (to mount an unbounded tmpfs, for one) and
    cannot leave the chroot. ``staging`` is an empty folder only root can reach; it stays empty outside.
    Raises OSError on any failure (then the child must not run)."""
    if _libc.unshare(CLONE_NEWNS | CLONE_NEWIPC) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    limit_ipc()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)          # nothing we mount leaks back to the machine
    _mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")

    def at(path: str) -> str:
        return staging + "/view" + path

    os.makedirs(at("/dev"))
    _mount("tmpfs", at("/dev"), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name in DEV_NODES:
        if os.path.exists(f"/dev/{name}"):
            open(at(f"/dev/{name}"), "wb").close()
            _mount(f"/dev/{name}", at(f"/dev/{name}"), None, MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, at(f"/dev/{name}"))
    os.makedirs(at("/proc"))
    _mount("proc", at("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, _proc_options())
    for step in plan:
        kind, path = step[0], step[-1]
        if kind == "link":
            os.makedirs(os.path.dirname(at(path)), exist_ok=True)
            os.symlink(step[1], at(path))
            continue
        os.makedirs(at(path), exist_ok=True)
        if kind == "tmp":
            _mount("tmpfs", at(path), "tmpfs", MS_NOSUID | MS_NODEV, TMPFS_OPTIONS)
            continue
        _mount(path, at(path), None, MS_BIND | MS_REC)
        extra = MS_RDONLY if kind == "ro" else 0
        for point in _mounts_under(at(path)):     # every submount too (a bind's flags are per mount)
            _mount(None, point, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | extra)
    os.chdir(staging)                  # pivot_root(".", "."), then detach the old root: it is gone from this
    number = SYS_PIVOT_ROOT.get(os.uname().machine)                     # namespace, not merely out of reach
    if number is None or _libc.syscall(number, b".", b".") != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pivot_root: {os.strerror(err) if number else 'unknown machine'}")
    if _libc.umount2(b".", MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount2 of the old root: {os.strerror(err)}")
    os.chroot("view")
    os.chdir(cwd)


# ----------------------------------------------------------------------------------------------- disk
DISK_BYTES = 256 << 20            # what one check's own files may take (a correct check writes a few MB)
DISK_INODES = 8192                # and how many files and folders (a correct check makes about a hundred)
DISK_RESERVE_BYTES = 1 << 30      # never let a check take the last of its file system
DISK_RESERVE_INODES = 10_000
BIG_CHECK_BYTES, BIG_CHECK_INODES = 64 << 20, 2000   # beyond this a check counts as a cause of a full disk


def _usage_below(dir_fd: int, uid: int | None = None) -> tuple[int, int]:
    """(bytes allocated, entries) of the tree under the open folder ``dir_fd`` (never following links; only the
    entries owned by ``uid`` and everything below them when ``uid`` is given)."""
    total = count = 0
    try:
        for _, dirnames, filenames, fd in os.fwalk(".", dir_fd=dir_fd, follow_symlinks=False):
            keep = []
            for name in dirnames + filenames:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError:
                    continue
                if uid is None or st.st_uid == uid:
                    total += st.st_blocks * 512
                    count += 1
                    if uid is not None and stat.S_ISDIR(st.st_mode):
                        sub_b, sub_n = _usage_below_name(fd, name)
                        total, count = total + sub_b, count + sub_n
                elif stat.S_ISDIR(st.st_mode) and st.st_mode & 0o002:
                    keep.append(name)      # a world-writable folder: look for the uid's entries inside
            if uid is not None:
                dirnames[:] = [d for d in dirnames if d in keep]
    except OSError:
        pass
    return total, count


def _usage_below_name(parent_fd: int, name: str) -> tuple[int, int]:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError:
        return 0, 0
    try:
        return _usage_below(fd)
    finally:
        os.close(fd)


class DiskGuard:
    """Stops a check whose own files take more than ``limit`` bytes or ``inodes`` files and folders, or that is
    among the causes (own files beyond :data:`BIG_CHECK_BYTES` / :data:`BIG_CHECK_INODES`) when its file system
    falls below the reserves. RLIMIT_FSIZE bounds one file, not how many.

    It measures the check, not the file system: the tree under its check folder, through a folder descriptor
    opened before the child starts (renaming or moving the folder cannot blind it, and a parallel check's files
    are not counted), plus, with a sandbox uid and no private /tmp (``shared_dirs``), the uid's own entries in the
    machine's world-writable folders. Polled by the supervisor's loop; a walk costs time in proportion to the
    files, so it is spaced out to at least five times its own duration."""

    def __init__(self, path: str, limit: int, inodes: int = DISK_INODES, uid: int | None = None,
                 shared_dirs: list[str] | None = None):
        self.limit, self.inodes, self.tripped = limit, inodes, False
        self.uid, self.used = uid, (0, 0)
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        self.shared: list[int] = []
        for d in shared_dirs or []:
            try:
                self.shared.append(os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW))
            except OSError:
                pass
        self.next_scan = 0.0

    def close(self) -> None:
        for fd in [self.fd, *self.shared]:
            try:
                os.close(fd)
            except OSError:
                pass

    def measure(self) -> tuple[int, int]:
        b, n = _usage_below(self.fd)
        for fd in self.shared:
            sb, sn = _usage_below(fd, self.uid)
            b, n = b + sb, n + sn
        return b, n

    def exceeded(self, force: bool = False) -> bool:
        now = time.monotonic()
        if self.tripped or (now < self.next_scan and not force):
            return self.tripped
        self.used = b, n = self.measure()
        self.next_scan = now + max(0.5, 5 * (time.monotonic() - now))
        try:
            st = os.fstatvfs(self.fd)
            free_b, free_i = st.f_bavail * st.f_frsize, st.f_favail
            low = free_b < DISK_RESERVE_BYTES or (st.f_files > 0 and free_i < DISK_RESERVE_INODES)
        except OSError:
            low = False
        self.tripped = (b > self.limit or n > self.inodes
                        or (low and (b > BIG_CHECK_BYTES or n > BIG_CHECK_INODES)))
        return self.tripped


# ----------------------------------------------------------------------------------------------- memory
def _status_kb(pid: int, keys: tuple[str, ...]) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            return sum(int(ln.split()[1]) for ln in f if ln.split(b":")[0].decode() in keys)
    except (OSError, ValueError, IndexError):
        return 0


def _memfd_bytes(pid: int) -> int:
    """Bytes of the memfds (and other deleted or in-memory files) ``pid`` holds open: memory outside RLIMIT_AS."""
    total = 0
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for n in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{n}")
            if target.startswith("/memfd:") or target.endswith(" (deleted)"):
                total += os.stat(f"/proc/{pid}/fd/{n}").st_size
        except OSError:
            continue
    return total


class MemoryGuard:
    """Stops a check whose processes together hold more than ``limit`` bytes: resident anonymous and shared memory
    (RssAnon + RssShmem) of every process of the check (its sandbox uid's, or the supervisor's descendants) plus the
    memfds and deleted files they hold open. Polled with the disk guard (every 0.25 s at most);
    RLIMIT_NPROC/AS/NOFILE/FSIZE bound what a check can take between two polls (grader/README.md)."""

    def __init__(self, limit: int, uid: int | None, every_s: float = 0.25):
        self.limit, self.uid, self.tripped, self.peak = limit, uid, False, 0
        self.every_s, self.next_scan = every_s, 0.0

    def _pids(self) -> list[int]:
        me = os.getpid()
        procs = {}
        for pid in _proc_entries():
            st = _stat(pid) if pid != me else None
            if st is not None and st[0] != "Z":
                procs[pid] = st[1]
        if self.uid is not None:
            return [pid for pid in procs if _uid(pid) == self.uid]
        mine, frontier = [], [me]
        while frontier:
            parent = frontier.pop()
            kids = [pid for pid, ppid in procs.items() if ppid == parent]
            mine += kids
            frontier += kids
        return mine

    def exceeded(self) -> bool:
        now = time.monotonic()
        if self.tripped or self.limit <= 0 or now < self.next_scan:
            return self.tripped
        self.next_scan = now + self.every_s          # a scan of /proc costs milliseconds: not at every expert query
        used = sum(_status_kb(pid, ("RssAnon", "RssShmem")) * 1024 + _memfd_bytes(pid) for pid in self._pids())
        if self.uid is not None:     # without its own IPC namespace a check's detached SysV segments live here
            used += sysv_shm_bytes(self.uid)
        self.peak = max(self.peak, used)
        self.tripped = used > self.limit
        return self.tripped


# ----------------------------------------------------------------------------------------------- main
def _preexec(spec: dict):
    lim = spec["limits"]

    def apply() -> None:
        import resource

        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (lim["mem_bytes"], lim["mem_bytes"]))
        resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (lim["file_bytes"], lim["file_bytes"]))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        nofile = int(lim.get("nofile", 0))
        if nofile:     # open files (memfds included: each at most RLIMIT_FSIZE) per process; inherited: 20,000
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        if spec.get("netns"):
            if _libc.unshare(CLONE_NEWNET) != 0:
                os._exit(121)
        if spec.get("view"):
            enter_view(spec["view"], spec["view_root"], spec["cwd"])   # an OSError here: Popen raises, nothing ran
        uid = spec.get("uid")
        if uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (lim["nproc"], lim["nproc"]))
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:   # setuid programs (su, mount, ...) run
                os._exit(123)                                      # without their privileges

    return apply


def supervise(spec: dict) -> dict:
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    oracle = Oracle(spec["oracle"]) if spec.get("oracle") else None
    envs = EnvServer(spec["env_server"]) if spec.get("env_server") else None
    pass_fds: tuple[int, ...] = ()
    env = dict(spec["env"])
    channels: list[dict] = []     # the services the child talks to over pipes: the expert oracle, the env server
    for name, service, var in (("oracle", oracle, "GRADER_ORACLE_FDS"), ("env", envs, "GRADER_ENV_FDS")):
        if service is not None:
            req_r, req_w = os.pipe()      # child → supervisor
            rep_r, rep_w = os.pipe()      # supervisor → child
            env[var] = f"{rep_r},{req_w}"
            pass_fds += (rep_r, req_w)
            channels.append({"name": name, "req_r": req_r, "rep_w": rep_w, "child_fds": (rep_r, req_w), "buf": b""})
    lim = spec["limits"]
    clean_view = spec.get("uid") is not None and not spec.get("view")     # no private /tmp: count the uid's files
    # opened before the child exists: renaming its folder later cannot blind the guard
    disk = DiskGuard(spec.get("check_dir") or spec["cwd"], int(lim.get("disk_bytes", DISK_BYTES)),
                     int(lim.get("disk_inodes", DISK_INODES)), spec.get("uid"),
                     spec.get("clean_dirs", []) if clean_view else [])
    memory = MemoryGuard(int(lim.get("check_mem_bytes", 0)), spec.get("uid"))
    t0 = time.time()
    with open(spec["stderr_path"], "wb") as err:
        try:
            proc = subprocess.Popen([*spec.get("wrap", []), *spec["argv"]], cwd=spec["cwd"], env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    pass_fds=pass_fds, preexec_fn=_preexec(spec))
        except (OSError, subprocess.SubprocessError) as e:      # e.g. its mount view could not be built
            disk.close()
            return {"returncode": None, "all_dead": True, "start_error": f"{type(e).__name__}: {e}"[:300],
                    "supervisor_maxrss_kb": _peak_rss_kb()}
    for ch in channels:
        for fd in ch["child_fds"]:
            os.close(fd)
        os.set_blocking(ch["req_r"], False)
        os.set_blocking(ch["rep_w"], False)
    deadline = t0 + float(spec["timeout"])
    timed_out, protocol_error, env_error = False, "", ""

    def must_stop() -> bool:
        """The limits the supervisor keeps watching, also while it talks to the child."""
        return proc.poll() is not None or time.time() >= deadline or disk.exceeded() or memory.exceeded()

    def serve_oracle(ch: dict) -> str:
        """Answer the whole expert queries in the channel's buffer; returns an error that ends the check ("" none)."""
        while len(ch["buf"]) >= HEADER.size:
            rows, dim = HEADER.unpack_from(ch["buf"])
            if dim != oracle.obs_dim:
                return f"malformed expert query (observations of size {dim}, expected {oracle.obs_dim})"
            if not 0 < rows <= MAX_ROWS_PER_REQUEST:
                return f"an expert query of {rows} observations (one query asks about 1 to {MAX_ROWS_PER_REQUEST})"
            need = HEADER.size + rows * dim * 4
            if len(ch["buf"]) < need:
                return ""
            reply = oracle.answer(rows, ch["buf"][HEADER.size:need])
            ch["buf"] = ch["buf"][need:]
            if not _write_all(ch["rep_w"], reply, must_stop):
                if time.time() < deadline and not disk.tripped and not memory.tripped and proc.poll() is None:
                    return "the child stopped reading the expert's answers"
                return "stopped"
            if oracle.over_budget:
                return ""
        return ""

    def serve_envs(ch: dict) -> str:
        """Answer the whole environment requests in the channel's buffer (an error ends the check)."""
        while True:
            size = envs.request_size(ch["buf"])
            if isinstance(size, str):
                return size
            if size == 0:
                return ""
            reply, why = envs.answer(ch["buf"][:size])
            ch["buf"] = ch["buf"][size:]
            if why:
                return why
            if not _write_all(ch["rep_w"], reply, must_stop):
                if time.time() < deadline and not disk.tripped and not memory.tripped and proc.poll() is None:
                    return "the child stopped reading the environment's answers"
                return "stopped"

    while True:
        if proc.poll() is not None:
            break
        left = deadline - time.time()
        if left <= 0:
            timed_out = True
            break
        if disk.exceeded() or memory.exceeded():
            break
        open_channels = [ch for ch in channels if not ch.get("done")
                         and not (ch["name"] == "oracle" and (oracle.over_budget or protocol_error))]
        if not open_channels:
            try:
                proc.wait(timeout=min(left, 0.5))
            except subprocess.TimeoutExpired:
                pass
            continue
        ready, _, _ = select.select([ch["req_r"] for ch in open_channels], [], [], min(left, 0.5))
        stop = False
        for ch in open_channels:
            if ch["req_r"] not in ready:
                continue
            try:
                chunk = os.read(ch["req_r"], 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:           # the child closed its end: keep waiting for it to exit
                ch["done"] = True
                continue
            ch["buf"] += chunk
            if ch["name"] == "oracle":
                why = serve_oracle(ch)
                if why:
                    protocol_error = "" if why == "stopped" else why
                    ch["done"] = True
                    stop = stop or why != "stopped"
            else:
                why = serve_envs(ch)
                if why:
                    env_error = "" if why == "stopped" else why
                    ch["done"] = True
                    stop = stop or why != "stopped"
        if stop:
            break                # a misused oracle or env server ends the check now, not at its timeout
    timed_out = timed_out or (time.time() >= deadline and proc.poll() is None and not disk.tripped
                              and not memory.tripped)
    seconds = time.time() - t0
    for kill in (os.killpg, os.kill):   # the child's group, then the child itself (it may have left its group)
        try:
            kill(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        proc.wait(timeout=10)            # collect its status before reaping anything else
    except subprocess.TimeoutExpired:
        pass
    killed, clean = kill_leftovers(spec.get("uid"))
    clean = clean and proc.returncode is not None
    removed = ipc = 0
    keys_cleared = None
    if spec.get("uid") is not None:
        removed = remove_files_of(spec["uid"], spec.get("clean_dirs", []))
        ipc = remove_ipc_of(spec["uid"])
        keys_cleared = clear_keys_of(spec["uid"])
    for ch in channels:
        for fd in (ch["req_r"], ch["rep_w"]):
            try:
                os.close(fd)
            except OSError:
                pass
    disk.close()
    return {
        "returncode": proc.returncode, "timed_out": timed_out, "seconds": round(seconds, 3),
        "disk_exceeded": disk.tripped, "disk_bytes": disk.limit, "disk_inodes": disk.inodes,
        "disk_used": list(disk.used), "mem_exceeded": memory.tripped, "mem_limit": memory.limit,
        "mem_peak": memory.peak,
        "processes_killed": killed, "all_dead": clean, "files_removed": removed, "ipc_removed": ipc,
        "keys_cleared": keys_cleared,
        "oracle_queries": None if oracle is None else len(oracle.cache),
        "oracle_over_budget": bool(oracle and oracle.over_budget),
        "oracle_budget": None if oracle is None else oracle.budget,
        "oracle_error": protocol_error,
        "env_steps": None if envs is None else envs.steps,
        "env_over_budget": bool(envs and envs.over_budget),
        "env_budget": None if envs is None else envs.budget,
        "env_error": env_error,
        "supervisor_maxrss_kb": _peak_rss_kb(),
    }


def _peak_rss_kb() -> int:
    """This process's own peak resident memory (VmHWM; getrusage's ru_maxrss also counts a forked child here)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _write_all(fd: int, data: bytes, must_stop) -> bool:
    """Write ``data`` to the non-blocking ``fd``; False as soon as ``must_stop()`` (checked at least every 0.5 s:
    the limits stay watched while a child does not read) or the pipe breaks."""
    view = memoryview(data)
    while view:
        if must_stop():
            return False
        _, ready, _ = select.select([], [fd], [], 0.5)
        if not ready:
            continue
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            continue
        except OSError:
            return False
        view = view[n:]
    return True


# ``python -I -S supervisor.py ACTION UID`` (root): one action on a sandbox uid, from a fresh single-threaded process.
# The grading process must not fork while checks run: they score in threads, and a fork() while another thread is in
# a BLAS call deadlocks in OpenBLAS's fork handler (grader.isolation.as_uid_helper starts this with vfork and exec).
UID_ACTIONS = {"--kill-uid": signal_every_process_of, "--clear-keys": clear_keys_of}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] in UID_ACTIONS:
        sys.exit(0 if UID_ACTIONS[sys.argv[1]](int(sys.argv[2])) else 1)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):   # one BLAS thread: no per-thread
        os.environ[var] = "1"                                                  # buffers (hundreds of MB)
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    status = supervise(spec)
    sys.stdout.write(json.dumps(status) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
