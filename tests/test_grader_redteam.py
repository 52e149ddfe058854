"""The blind red team's findings of session 11, each a real attack that must now fail (grader/README.md).

- SysV shared memory detached from every process: outside the memory guard and every rlimit. A check's own IPC
  namespace is capped (grader/supervisor.py: IPC_LIMITS); without one, the memory guard counts the uid's segments.
- A student class's __getattribute__ routing the framework's train() back to the student's loop: refused.
- Line numbers compiled into code at made-up positions (a 31-bit channel out of a performance check): only lines
  that exist in the submitted file are shown.
- One expert query of millions of rows: ends the check at once, with a message that says so.
"""
import ctypes
import json
import os
import textwrap

import pytest

pytest.importorskip("grader.solution", reason="the grader's own tests are not part of the student release")

from grader.child.agent import splice  # noqa: E402
from grader.feedback import describe_error  # noqa: E402
from grader.grade import grade  # noqa: E402
from grader.reference_submissions import write_submission  # noqa: E402

from conftest import run_supervisor, supervisor_spec  # noqa: E402


ROOT_MODE = hasattr(os, "geteuid") and os.geteuid() == 0

SHM_AGGREGATE = textwrap.dedent('''
    def aggregate(self, dataset, visited_obs, expert_labels):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        made = 0
        for _ in range({count}):
            sid = libc.shmget(0, 32 << 20, 0o1600)          # IPC_PRIVATE, IPC_CREAT | 0600
            if sid < 0:
                break
            addr = libc.shmat(sid, None, 0)
            ctypes.memset(addr, 1, 32 << 20)
            libc.shmdt(ctypes.c_void_p(addr))                # detached: in no process's memory
            made += 1
        import time
        time.sleep({sleep})
        raise RuntimeError(f"made {{made}} segments")
''')


def by_prefix(report, prefix: str) -> list:
    return [t for t in report.tests if t.name.startswith(prefix)]


@pytest.mark.skipif(not ROOT_MODE, reason="a check's own IPC namespace is made by root")
def test_a_checks_ipc_namespace_caps_sysv_shared_memory():
    from grader.supervisor import CLONE_NEWIPC, IPC_LIMITS, limit_ipc

    pid = os.fork()
    if pid == 0:      # the child: a new IPC namespace with the check's limits, then as many 32 MB segments as it gets
        code = 1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWIPC) == 0:
                limit_ipc()
                made = 0
                while made < 20 and libc.shmget(0, 32 << 20, 0o1600) >= 0:
                    made += 1
                code = 10 + made
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    made = os.WEXITSTATUS(status) - 10
    assert 0 <= made and made * (32 << 20) <= IPC_LIMITS["kernel/shmall"] * 4096 == 64 << 20


@pytest.mark.slow
@pytest.mark.skipif(not ROOT_MODE, reason="sandbox uids and the mount/IPC view are root mode's")
def test_detached_shared_memory_is_capped_in_the_view_and_counted_without_it(tmp_path, monkeypatch):
    # with the view (own IPC namespace): at most 64 MB of segments, the student's own error is the check's feedback
    sub = write_submission(tmp_path / "view", {"aggregate": SHM_AGGREGATE.format(count=64, sleep=0)})
    report = grade(sub, include_hidden=False, include_performance=False, jobs=1, only={"dagger_aggregate"})
    out = by_prefix(report, "DAgger aggregation")[0].output
    assert "made 2 segments" in out or "memory" in out, out        # capped at 64 MB, or (no view) stopped
    # without it (Docker's default profile): the memory guard counts the uid's segments and stops the check
    import grader.isolation as isolation
    import grader.workspace as workspace

    monkeypatch.setenv("GRADER_MOUNTNS", "off")
    monkeypatch.setattr(isolation, "_POLICY", None)      # the mode is decided once per process: decide it again
    monkeypatch.setattr(workspace, "_CHECK_FS", [False])
    # (1024 MB: each process's address space is also --mem-mb, and importing torch alone reserves ~600 MB of it,
    # more on a machine with more cores; 48 segments of 32 MB = 1.5 GB pass the guard's limit on any machine)
    sub = write_submission(tmp_path / "noview", {"aggregate": SHM_AGGREGATE.format(count=48, sleep=60)})
    report = grade(sub, include_hidden=False, include_performance=False, jobs=1, only={"dagger_aggregate"},
                   mem_mb=1024, unit_timeout=100)
    t = by_prefix(report, "DAgger aggregation")[0]
    assert t.score == 0 and "processes held more than 1024 MB" in t.output, t.output   # the guard, not a kill


def test_special_methods_and_metaclasses_of_a_student_class_are_refused():
    from learning.dart_agent import DARTAgent

    base = DARTAgent.__mro__[1]

    class Routes(base):
        def __getattribute__(self, name):                    # the red team's: train → the student's own loop
            return object.__getattribute__(self, name)

    class Meta(type):
        pass

    class WithMeta(base, metaclass=Meta):
        pass

    class Hook(base):
        def __init_subclass__(cls, **kw):                   # would run on the spliced class and could re-point it
            cls.train = lambda self: None

    with pytest.raises(TypeError, match="defines __getattribute__"):
        splice(DARTAgent, Routes, ("noisy_expert_step",))
    with pytest.raises(TypeError, match="metaclass"):
        splice(DARTAgent, WithMeta, ("noisy_expert_step",))
    with pytest.raises(TypeError, match="__init_subclass__"):
        splice(DARTAgent, Hook, ("noisy_expert_step",))


def test_feedback_shows_only_line_numbers_that_exist_in_the_submitted_file():
    rec = json.dumps({"type": "ValueError", "message": "x", "frames": [["dart_agent.py", 1250, "train"]]}).encode()
    assert "line 1250" in describe_error(rec, False)
    hidden = describe_error(rec, False, line_counts={"dart_agent.py": 90})
    assert "1250" not in hidden and "in learning/dart_agent.py" in hidden
    assert "line 80" in describe_error(rec.replace(b"1250", b"80"), False, line_counts={"dart_agent.py": 90})


def test_a_huge_expert_query_ends_the_check_at_once(tmp_path):
    """The supervisor alone: one query of 4,000,000 rows is refused and the child is stopped (not at its timeout)."""
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent('''
        import os, struct, time
        r, w = (int(x) for x in os.environ["GRADER_ORACLE_FDS"].split(","))
        wf = os.fdopen(w, "wb", buffering=0)
        wf.write(struct.pack("<II", 4_000_000, 17))
        time.sleep(120)
    '''))
    status = run_supervisor(supervisor_spec(script, tmp_path, 100, oracle_budget=100), tmp_path, timeout=90)
    assert "4000000 observations" in status["oracle_error"] and status["seconds"] < 30 and not status["timed_out"]
