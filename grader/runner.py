"""Run one check's child under the supervisor and read its answer.

:func:`run_child` writes the supervisor's spec (limits, sandbox uid or bubblewrap, view, expert oracle), starts
:mod:`grader.supervisor` (``python -I -B supervisor.py SPEC.json``), which starts the workspace's ``grader_child.py``;
:class:`ChildResult` is what came back, :func:`read_output` reads one answer file without following links and
:func:`unpack_problem` says whether an answer zip is safe to open.
"""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.isolation import SUPERVISOR, SandboxError, SandboxPolicy, kill_uid
from grader.views import bwrap_argv, child_view
from grader.workspace import CheckDir, chown_tree
from util.config import REPO_ROOT

MAX_OUTPUT_BYTES = 64 * 1024 * 1024
PEAK_SUPERVISOR_KB = [0]     # the largest supervisor seen by this process (tools/benchmark_grader.py)


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
    env_over_budget: bool = False      # assignment 2: the env server refused a step beyond the check's budget
    env_budget: int | None = None
    env_error: str = ""
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
        if self.env_over_budget:
            return (f"the training took more than {self.env_budget:,} environment steps, this check's budget (the "
                    "grader steps the environment and counts every step)")
        if self.env_error:
            return f"the environment was misused: {self.env_error}"
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
              oracle: dict | None = None, file_mb: int = CHILD_FILE_MB,
              env_server: dict | None = None) -> ChildResult:
    """Run ``grader_child.py`` on ``job`` in check folder ``d`` under the supervisor; ``private`` is a
    folder only the grader can read (for the supervisor's spec and the child's stderr). ``env_server``: the
    supervisor steps the task's environments for the child ({"env", "budget", "transform_seed"}: assignment 2's
    performance checks), and the child's view holds no simulator (grader.views.SIMULATOR_PACKAGES)."""
    (d.inputs / "job.json").write_text(json.dumps(job))
    uid = policy.acquire()
    try:
        if uid is not None:
            chown_tree(d.path, uid)
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
            "env_server": None if env_server is None else {**env_server, "repo_root": str(REPO_ROOT)},
            "wrap": bwrap_argv(policy, d, hide_simulator=env_server is not None) if policy.bwrap else [],
            "view": child_view(d, hide_simulator=env_server is not None) if policy.mountns else None,
            "view_root": str(private / f"{tag}.root"),
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
                          oracle_error=str(status.get("oracle_error", "")),
                          env_over_budget=bool(status.get("env_over_budget")), env_budget=status.get("env_budget"),
                          env_error=str(status.get("env_error", "")), supervisor_error=err,
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
