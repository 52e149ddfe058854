"""python -m grader batch on Dask distributed: a real scheduler and workers, each its own process, on 127.0.0.1.

The cluster tests need Dask (requirements-optional.txt; CI's optional step) and skip without it; the tests of a
missing Dask and of unreadable submissions run everywhere. Gradings are unit-only and cheap (--only bc_loss).
"""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.grade import write_json_atomic  # noqa: E402
from grader.reference_submissions import write_submission  # noqa: E402

from conftest import ROOT  # noqa: E402

CHEAP = ["--", "--no-performance", "--no-hidden", "--only", "bc_loss"]


def needs_dask():
    pytest.importorskip("distributed", reason="Dask is an optional dependency (requirements-optional.txt)")


class Cluster:
    """A scheduler and workers started as separate processes (logs in ``folder``)."""

    def __init__(self, folder: Path):
        self.folder, self.procs, self.workers = folder, [], []
        folder.mkdir(parents=True, exist_ok=True)
        info = folder / "scheduler.json"
        self.procs.append(self._start("scheduler", [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                                                    "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file",
                                                    str(info)]))
        deadline = time.time() + 60
        while not info.is_file() or not info.read_text().strip():
            assert time.time() < deadline and self.procs[0].poll() is None, (folder / "scheduler.log").read_text()
            time.sleep(0.2)
        self.address = json.loads(info.read_text())["address"]

    def _start(self, name: str, argv: list[str], path: list[Path] = ()) -> subprocess.Popen:
        """Start a process that imports this checkout (as a cluster's machines would, from their own install)."""
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in [*path, ROOT]))
        log = open(self.folder / f"{name}.log", "w")
        return subprocess.Popen(argv, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)

    def add_worker(self, path: list[Path] = ()) -> subprocess.Popen:
        n = len(self.workers)
        w = self._start(f"worker{n}", [sys.executable, "-m", "distributed.cli.dask_worker", self.address,
                                       "--nthreads", "1", "--no-nanny", "--no-dashboard", "--memory-limit", "0",
                                       "--host", "127.0.0.1", "--local-directory", str(self.folder / f"w{n}")],
                        path)
        self.workers.append(w)
        self.procs.append(w)
        return w

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=30) as c:
            c.wait_for_workers(n, timeout=120)

    def close(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture
def cluster(tmp_path):
    needs_dask()
    c = Cluster(tmp_path / "cluster")
    yield c
    c.close()


def batch(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "grader", "batch", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(env or os.environ, PYTHONWARNINGS="ignore"))


def grader_children(pid: int) -> list:
    """The `python -m grader submission.zip` processes a worker started."""
    import psutil

    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for k in kids:
        try:
            if "grader" in k.cmdline() and any(a.endswith("submission.zip") for a in k.cmdline()):
                out.append(k)
        except psutil.Error:
            pass
    return out


def pregraded(res: Path, sid: str) -> dict:
    """A results file as a previous batch run left it (kept by every later run)."""
    data = {"score": 12.5, "output": "Autograded 12.5 / 15.0.", "tests": [
        {"name": "BC loss (public variant, hopper, batch 32)", "score": 12.5, "max_score": 15, "status": "failed",
         "output": "loss 1.0 differs"}]}
    write_json_atomic(data, res / f"{sid}.json")
    return data


@pytest.mark.optional
def test_two_workers_grade_the_class_and_a_killed_workers_submission_is_graded_again(cluster, tmp_path):
    subs = tmp_path / "subs"
    write_submission(subs / "alice")
    write_submission(subs / "bob", reference=False)
    (subs / "carol.zip").write_text("not a zip at all")
    first, second = cluster.add_worker(), cluster.add_worker()
    cluster.wait_for_workers(2)
    res, out_csv = tmp_path / "res", tmp_path / "g.csv"
    args = [str(subs), "--scheduler", cluster.address, "--csv", str(out_csv), "--results_dir", str(res), *CHEAP]
    proc = batch(*args)
    killed, orphans, deadline = None, [], time.time() + 600
    while killed is None and proc.poll() is None and time.time() < deadline:
        for w in (first, second):
            kids = grader_children(w.pid)
            if kids:                          # a worker is grading: kill it mid-task
                orphans = kids
                w.send_signal(signal.SIGKILL)
                killed = w
                break
        time.sleep(0.2)
    stdout, stderr = proc.communicate(timeout=600)
    assert killed is not None, "no worker was seen grading"
    assert proc.returncode == 0, stdout + stderr
    assert killed.wait(timeout=10) == -signal.SIGKILL
    import psutil

    time.sleep(1)
    assert not [k for k in orphans if k.is_running() and k.status() != psutil.STATUS_ZOMBIE]   # died with its worker
    rows = {r["student"]: r for r in csv.DictReader(open(out_csv))}
    assert set(rows) == {"alice", "bob", "carol"}
    assert float(rows["alice"]["total"]) == 15 and float(rows["bob"]["total"]) == 0     # BC loss: 15 points
    assert float(rows["carol"]["total"]) == 0 and rows["carol"]["note"].startswith("Grader error")
    alice = json.loads((res / "alice.json").read_text())
    assert [t["status"] for t in alice["tests"]] == ["passed"] * 3     # structure, BC loss: gradients and value
    bob = json.loads((res / "bob.json").read_text())
    assert "placeholder zero loss" in bob["tests"][1]["output"]                 # the untouched stub, named
    assert (tmp_path / "g_report.md").is_file() and (tmp_path / "g_report.png").is_file()
    # resumable: nothing left to grade on a second run but carol (whose zip cannot be graded at all)
    again = subprocess.run([sys.executable, "-m", "grader", "batch", *args], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "2 already graded, 1 to grade" in again.stdout
    assert json.loads((res / "alice.json").read_text()) == alice


@pytest.mark.optional
def test_an_unreachable_scheduler_is_one_error_line_and_keeps_the_results(tmp_path):
    needs_dask()
    subs, res = tmp_path / "subs", tmp_path / "res"
    write_submission(subs / "alice")
    write_submission(subs / "bob", reference=False)
    kept = pregraded(res, "alice")
    p = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--scheduler", "tcp://127.0.0.1:9",
                        "--csv", str(tmp_path / "g.csv"), "--results_dir", str(res), *CHEAP],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert "Traceback" not in p.stderr
    assert json.loads((res / "alice.json").read_text()) == kept and not (res / "bob.json").exists()


@pytest.mark.optional
@pytest.mark.parametrize("shadowed, expected", [("mujoco", "lacks the project's dependencies"),
                                                ("grader", "cannot run the grader")])
def test_a_worker_without_the_project_is_one_error_line_before_anything_is_graded(cluster, tmp_path, shadowed,
                                                                                  expected):
    """A worker whose Python cannot import mujoco (or the grader itself): named, with the fix; nothing graded."""
    fake = tmp_path / "fake" / shadowed
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(f"raise ImportError('{shadowed} is not installed here')\n")
    cluster.add_worker(path=[fake.parent])
    cluster.wait_for_workers(1)
    subs, res = tmp_path / "subs", tmp_path / "res"
    write_submission(subs / "alice")
    write_submission(subs / "bob", reference=False)
    kept = pregraded(res, "alice")
    p = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--scheduler", cluster.address,
                        "--csv", str(tmp_path / "g.csv"), "--results_dir", str(res), *CHEAP],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: worker tcp://127.0.0.1:") and expected in lines[0]
    assert shadowed in lines[0] and "pip install -r requirements.txt" in lines[0]
    assert json.loads((res / "alice.json").read_text()) == kept and not (res / "bob.json").exists()


@pytest.mark.optional
def test_a_worker_with_another_grader_is_refused_before_anything_is_graded(cluster, tmp_path):
    """Integrity per worker: a worker whose grader files differ from this machine's (here its thresholds) is named."""
    import shutil

    other = tmp_path / "other_checkout"
    for item in ("grader", "learning", "envs", "util"):
        shutil.copytree(ROOT / item, other / item, ignore=shutil.ignore_patterns("__pycache__"))
    for item in ("run.py", "requirements.txt"):
        shutil.copy2(ROOT / item, other / item)
    (other / "data").symlink_to(ROOT / "data")
    with open(other / "grader" / "thresholds.yaml", "a") as f:
        f.write("# edited on this worker\n")
    cluster.add_worker(path=[other])
    cluster.wait_for_workers(1)
    subs, res = tmp_path / "subs", tmp_path / "res"
    write_submission(subs / "alice")
    p = subprocess.run([sys.executable, "-m", "grader", "batch", str(subs), "--scheduler", cluster.address,
                        "--csv", str(tmp_path / "g.csv"), "--results_dir", str(res), *CHEAP],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "runs a different grader" in lines[0] and "grader/thresholds.yaml" in lines[0]
    assert "(1 file differs: grader/thresholds.yaml)" in lines[0] and not (res / "alice.json").exists()


def test_scheduler_without_dask_names_the_install_command(tmp_path, monkeypatch, capsys):
    import grader.distributed
    from grader.batch import main

    monkeypatch.setattr(grader.distributed, "dask_available", lambda: False)
    (tmp_path / "subs").mkdir()
    assert main([str(tmp_path / "subs"), "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --scheduler needs Dask")
    assert "pip install -r requirements-optional.txt" in err[0]


def test_unreadable_names_what_cannot_be_read():
    """As an ordinary user (the test drops to `nobody` when root): a folder inside the submission is unreadable."""
    import shutil
    import tempfile

    from grader.batch import unreadable

    top = Path(tempfile.mkdtemp(prefix="batch_unreadable_"))      # outside pytest's root-only tmp folder
    try:
        top.chmod(0o755)
        sub = write_submission(top / "bob", reference=False)
        sub.chmod(0o755)
        assert unreadable(sub) == ""
        (sub / "learning").chmod(0o000)
        if os.geteuid() != 0:
            why = unreadable(sub)
        else:
            import pwd

            nobody = pwd.getpwnam("nobody")
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:                                    # child: an ordinary user
                try:
                    os.setgid(nobody.pw_gid)
                    os.setuid(nobody.pw_uid)
                    os.write(w, unreadable(sub).encode())
                finally:
                    os._exit(0)
            os.close(w)
            os.waitpid(pid, 0)
            why = os.read(r, 4096).decode()
            os.close(r)
        assert why.startswith("Permission denied") and why.endswith(str(sub / "learning")), why
    finally:
        (top / "bob" / "learning").chmod(0o755)
        shutil.rmtree(top)


def test_an_unreadable_submission_is_one_error_line_and_keeps_the_results(tmp_path, monkeypatch, capsys):
    import grader.batch

    subs, res = tmp_path / "subs", tmp_path / "res"
    write_submission(subs / "alice")
    write_submission(subs / "bob", reference=False)
    kept = pregraded(res, "alice")
    monkeypatch.setattr(grader.batch, "unreadable",
                        lambda s, assignment="a1": f"Permission denied: {s}" if s.name == "bob" else "")
    assert grader.batch.main([str(subs), "--results_dir", str(res), "--csv", str(tmp_path / "g.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot read the submission") and "bob" in err[0]
    assert "chmod" in err[0]
    assert json.loads((res / "alice.json").read_text()) == kept and not (res / "bob.json").exists()


def test_the_worker_gets_only_the_student_files(tmp_path):
    """What a worker receives: the learning/*_agent.py files at their paths, nothing else (no configs, no data)."""
    import io
    import zipfile

    from grader.distributed import pack_submission

    sub = write_submission(tmp_path / "alice")
    (sub / "notes.txt").write_text("private notes")
    (sub / "big.bin").write_bytes(b"x" * 100_000)
    with zipfile.ZipFile(io.BytesIO(pack_submission(sub))) as z:
        names = sorted(z.namelist())
        assert names == ["learning/bc_agent.py", "learning/dagger_agent.py", "learning/dart_agent.py"]
        assert z.read("learning/bc_agent.py") == (sub / "learning" / "bc_agent.py").read_bytes()
    zipped = tmp_path / "alice.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.write(sub / "learning" / "dart_agent.py", "project/learning/dart_agent.py")
        z.write(sub / "notes.txt", "notes.txt")
    with zipfile.ZipFile(io.BytesIO(pack_submission(zipped))) as z:
        assert z.namelist() == ["project/learning/dart_agent.py"]


def test_a_changed_worker_is_named_with_the_files_and_the_submissions():
    from grader.distributed import _changed

    mine = {"grader/grade.py": "aa", "data/envs/hopper.yaml": "bb"}
    theirs = dict(mine, **{"data/envs/zz_planted.yaml": "cc"})
    msg = _changed({"sid": "mallory", "worker": "tcp://10.0.0.7:40000", "when": "while mallory was graded",
                    "manifest": theirs}, mine, ["alice", "bob"], ["carol", "mallory"])
    assert msg.startswith("the grader's files changed on worker tcp://10.0.0.7:40000 while mallory was graded "
                          "(data/envs/zz_planted.yaml)")
    assert "(running or queued): carol, mallory" in msg and "last graded: alice, bob" in msg and "restore" in msg
