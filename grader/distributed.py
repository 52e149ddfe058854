"""Batch grading on Dask distributed (``python -m grader batch``: a local cluster, or ``--scheduler ADDRESS``).

The client (the TA's machine) reads each submission and sends a zip of only its student files
(``learning/*_agent.py``, as ``grader.intake.materialize`` copies them) to a worker; the worker runs
``python -m grader submission.zip --out ...`` in a subprocess, with every isolation of a single grading (sandbox,
uids, integrity manifest), and returns the results.json content, which the client writes atomically into the
results folder. Workers need neither the submissions nor the results folder.

Integrity per worker: every worker's grader, framework and data must match the client's manifest before each
submission and after it (the grader itself also verifies, exit 3); a change stops the batch and names the
submissions graded then. A worker lost mid-task has its submissions graded again elsewhere (the scheduler
reschedules them; ``retries`` covers a task that failed with an error). Workers are probed before grading: one
that cannot import the project or its dependencies, or runs a different grader, stops the batch with one
``error:`` line (exit 2) before anything is graded.
"""
from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grader.integrity import IntegrityError, changes, manifest

from util.config import REPO_ROOT

INSTALL_HINT = "pip install -r requirements-optional.txt"
SETUP_HINT = ("install this project at the same commit, with its requirements, wherever the scheduler and workers "
              "run (pip install -r requirements.txt -r requirements-optional.txt in a checkout; grader/README.md)")
CONNECT_TIMEOUT_S = 10
WAIT_WORKERS_S = 60
RETRIES = 2
# what the grader's processes import: a worker whose Python lacks any of it cannot grade
PROBE_IMPORTS = "import numpy, torch, yaml, gymnasium, mujoco, grader.grade, grader.child"


class BatchError(RuntimeError):
    """A bad input or a cluster that cannot grade (exit 2; results already written are kept)."""


class WorkerError(RuntimeError):
    """Raised on a worker that cannot grade (its setup, not the submission)."""


def dask_available() -> bool:
    return importlib.util.find_spec("distributed") is not None


def digest(files: dict[str, str]) -> str:
    """One hash of a manifest (path → sha256)."""
    return hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()


def pack_submission(sub: Path, assignment: str = "a1") -> bytes:
    """A zip (bytes) of ``assignment``'s student files of a submission folder or .zip, exactly the files the grader
    would use.

    Raises grader.intake.SubmissionError for a submission the grader refuses (not a zip, unsafe paths, ...)."""
    from grader.intake import materialize
    from learning.agents import todo_manifest

    names = [spec.file_name for spec in todo_manifest("full", assignment).values()]
    with tempfile.TemporaryDirectory(prefix="grader_pack_") as tmp:
        files = materialize(sub, Path(tmp) / "s", names)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(files.rglob("*")):
                if p.is_file():
                    z.write(p, p.relative_to(files).as_posix())
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------- worker side

def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "this worker"


def worker_probe(expected: str) -> dict[str, Any]:
    """Run on each worker (client.run): can its Python import what grading needs, and is its grader the client's?

    Returns {"problem": "" or the import error's last line, "manifest": None if it matches ``expected`` else the
    worker's manifest, "python": the worker's interpreter}."""
    proc = subprocess.run([sys.executable, "-c", PROBE_IMPORTS], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600)
    problem = "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["import failed"])[-1]
    files = manifest()
    return {"problem": problem, "manifest": None if digest(files) == expected else files, "python": sys.executable}


def grade_task(sid: str, payload: bytes, extra: list[str], timeout: float, expected: str) -> dict[str, Any]:
    """Grade one submission (zip bytes) on this worker with ``python -m grader`` and return its results.

    Returns {"sid", "worker", "status": "ok", "results": results.json content, "note"} or, when this worker's
    grader files differ from ``expected`` before or after grading, {"status": "changed", "when", "manifest"}.
    Raises WorkerError when the worker cannot grade (no temporary folder, the grader cannot start)."""
    from grader.batch import run_grader
    from grader.workspace import make_scratch, remove_scratch

    where = _worker_name()
    before = manifest()
    if digest(before) != expected:
        return {"sid": sid, "worker": where, "status": "changed", "when": f"before {sid} was graded",
                "manifest": before}
    try:        # a grade_* scratch folder: removed by the next grading on this machine if this worker is killed
        root, private = make_scratch()
    except OSError as e:
        raise WorkerError(f"worker {where} cannot create a temporary folder in {tempfile.gettempdir()} "
                          f"({e.strerror}): free space there or point TMPDIR at a writable folder") from None
    try:
        sub, out = private / "submission.zip", private / "results.json"
        sub.write_bytes(payload)
        hidden = [p for p in os.environ.get("GRADER_PRIVATE_PATHS", "").split(os.pathsep) if p]
        env = dict(os.environ, GRADER_PRIVATE_PATHS=os.pathsep.join([*hidden, str(root)]))
        code, note = run_grader(sub, out, extra, timeout, env=env, die_with_parent=True)
        try:
            data = json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
    except OSError as e:
        raise WorkerError(f"worker {where} cannot write its temporary folder {root} ({e.strerror}): free space "
                          "there or point TMPDIR at a writable folder") from None
    finally:
        remove_scratch(root)
    after = manifest()
    if code == 3 or digest(after) != expected:
        return {"sid": sid, "worker": where, "status": "changed", "when": f"while {sid} was graded",
                "manifest": after}
    if not isinstance(data, dict):
        raise WorkerError(f"the grader could not start on worker {where} ({note or 'no results'}): {SETUP_HINT}")
    return {"sid": sid, "worker": where, "status": "ok", "results": data, "note": note}


# ----------------------------------------------------------------------------------------------- client side

def open_client(scheduler: str | None, jobs: int) -> tuple[Any, Any, str]:
    """(client, local cluster or None, a description). Raises BatchError when the scheduler cannot be reached or
    has no workers."""
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    if scheduler is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                               memory_limit=0, silence_logs=logging.ERROR)
        return Client(cluster), cluster, f"a local Dask cluster of {jobs} worker{'s' * (jobs > 1)}"
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        raise BatchError(f"cannot reach the Dask scheduler at {scheduler} ({' '.join(str(e).split())[:200]}): "
                         "check the address (tcp://HOST:PORT, as the scheduler printed it), that the scheduler runs "
                         "and that this machine may connect to it (grader/README.md)") from None
    try:
        client.wait_for_workers(1, timeout=WAIT_WORKERS_S)
    except (TimeoutError, OSError):
        client.close()
        raise BatchError(f"the Dask scheduler at {scheduler} has no workers after {WAIT_WORKERS_S} s: start some "
                         f"(dask worker {scheduler}) on machines where this project is installed") from None
    n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
    return client, None, f"the Dask scheduler at {scheduler} ({n} worker{'s' * (n != 1)} now)"


def check_workers(client: Any, mine: dict[str, str]) -> None:
    """Probe every worker; raise BatchError naming the first one that cannot grade or runs another grader."""
    answers = client.run(worker_probe, digest(mine), on_error="return")
    for addr, a in sorted(answers.items()):
        if isinstance(a, BaseException):
            raise BatchError(f"worker {addr} cannot run the grader ({_short(a)}): {SETUP_HINT}")
        if a["problem"]:
            raise BatchError(f"worker {addr} lacks the project's dependencies ({a['problem']}, Python "
                             f"{a['python']}): {SETUP_HINT}")
        if a["manifest"] is not None:
            diff = changes(mine, a["manifest"])
            n = f"{len(diff)} file{' differs' if len(diff) == 1 else 's differ'}"
            raise BatchError(f"worker {addr} runs a different grader than this machine ({n}: {', '.join(diff[:3])}"
                             f"{', ...' if len(diff) > 3 else ''}): install this same commit on every worker")


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    if text.startswith("Exception(") and text.endswith(")"):
        text = text[len("Exception("):-1].strip("'\"")       # client.run wraps a worker's error this way
    return f"{type(e).__name__}: {text[:300]}" if type(e).__name__ != "Exception" else text[:300]


def _explain(e: BaseException, sid: str) -> str:
    """An error line for a task that raised on the cluster (not a changed grader)."""
    if type(e).__name__ == "KilledWorker":
        return (f"the workers grading {sid} died repeatedly ({_short(e)}): their logs say why; a worker without "
                f"this project dies when it receives a task ({SETUP_HINT}), or give the workers more memory")
    if isinstance(e, WorkerError):
        return str(e)
    if "deserializ" in str(e):
        return f"the Dask scheduler cannot load the grader's tasks ({_short(e)}): {SETUP_HINT}"
    return f"grading {sid} failed on the cluster ({_short(e)}); the results written so far are kept, run again"


def _changed(r: dict[str, Any], mine: dict[str, str], finished: list[str], running: list[str]) -> str:
    diff = changes(mine, r["manifest"])
    files = ", ".join(diff[:3]) or "restored since"
    return (f"the grader's files changed on worker {r['worker']} {r['when']} ({files}); on the workers then "
            f"(running or queued): {', '.join(running) or r['sid']}; last graded: "
            f"{', '.join(finished[-4:]) or 'none yet'}. The batch "
            "stopped: restore the grader (git checkout / reinstall) on that machine and inspect those submissions "
            "before grading again")


def grade_all(client: Any, items: list[tuple[str, bytes]], extra: list[str], timeout: float, mine: dict[str, str],
              save: Callable[[str, dict[str, Any], str], None], progress: bool = False) -> None:
    """Grade ``items`` (student id, zip bytes) on the cluster, in order of priority, calling ``save(sid, results,
    note)`` as each one comes back. Raises BatchError (the cluster cannot grade) or IntegrityError (a worker's
    grader changed); either way the futures left are cancelled and nothing more is saved."""
    from distributed import as_completed
    from tqdm import tqdm

    expected, run = digest(mine), uuid.uuid4().hex[:8]
    futures = {client.submit(grade_task, sid, payload, extra, timeout, expected, key=f"grade-{run}-{i}",
                             priority=len(items) - i, retries=RETRIES, pure=False): sid
               for i, (sid, payload) in enumerate(items)}
    keys = {f.key: sid for f, sid in futures.items()}
    finished: list[str] = []
    try:
        for fut in tqdm(as_completed(futures), total=len(futures), desc="batch", unit="sub", disable=not progress):
            sid = futures[fut]
            try:
                r = fut.result()
            except Exception as e:  # noqa: BLE001 - anything the cluster raised becomes one error line
                raise BatchError(_explain(e, sid)) from None
            if r["status"] == "changed":
                running = [keys[k] for ks in client.processing().values() for k in ks if k in keys]
                raise IntegrityError(_changed(r, mine, finished, sorted({r["sid"], *running})))
            save(sid, r["results"], r["note"])
            finished.append(sid)
    finally:
        client.cancel(list(futures), force=True)
