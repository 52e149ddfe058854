"""Child-process side of the grader: runs student code on one job and writes plain-data results.

Run only by grader.runner, from a check's workspace, where this package is copied as ``grader_harness/`` beside its
entry script ``grader_child.py`` (a copy of ``__main__.py``): ``python -I -B grader_child.py JOB.json OUT_DIR``.
Writes OUT_DIR/result.npz (arrays only) or OUT_DIR/error.json, then OUT_DIR/DONE.
Nothing here decides a score: the parent checks the arrays against its own reference, and reads
error.json as untrusted data (it keeps only a whitelisted, shortened excerpt).
Expert queries and assignment 2's environment steps go over pipes to the trusted supervisor (:mod:`.remote`).
One job per check (:data:`JOBS`, named by the check's key), in a module per agent family.
"""
import json
import os
import sys

from . import jobs_bc, jobs_cem, jobs_pg, jobs_rounds, jobs_train
from .agent import seed_globals
from .plain import error_record

# job name → function: every ``job_<name>`` of the jobs modules (a unit check's job is named by its key)
JOBS = {name[len("job_"):]: fn for module in (jobs_bc, jobs_rounds, jobs_cem, jobs_pg, jobs_train)
        for name, fn in vars(module).items() if name.startswith("job_") and callable(fn)}


def main() -> None:
    job_path, out = sys.argv[1], sys.argv[2]
    with open(job_path) as f:
        job = json.load(f)
    import warnings

    warnings.filterwarnings("ignore")
    try:
        seed_globals(int(job.get("seed", 0)))     # before any job: the train job's student code too
        JOBS[job["kind"]](job, out)
    except BaseException as e:  # noqa: BLE001 - student code may raise anything, SystemExit included
        with open(os.path.join(out, "error.json"), "w") as f:
            f.write(error_record(e))
    with open(os.path.join(out, "DONE"), "w") as f:
        f.write("done")
    sys.stdout.flush()
    os._exit(0)

