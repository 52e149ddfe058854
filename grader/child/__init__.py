"""Child-process side of the grader: runs student code on one job and writes plain-data results.

Run only by grader.runner, from a check's workspace, where this package is copied as ``grader_harness/`` beside its
entry script ``grader_child.py`` (a copy of ``__main__.py``): ``python -I -B grader_child.py JOB.json OUT_DIR``.
Writes OUT_DIR/result.npz (arrays only) or OUT_DIR/error.json, then OUT_DIR/DONE.
Nothing here decides a score: the parent checks the arrays against its own reference, and reads
error.json as untrusted data (it keeps only a whitelisted, shortened excerpt).
Expert queries and assignment 2's environment steps go over pipes to the trusted supervisor (:mod:`.remote`).
One job per check (:data:`JOBS`), in a module per agent family.
"""
import json
import os
import sys

from .agent import seed_globals
from .jobs_bc import job_bc_fit, job_bc_loss
from .jobs_cem import job_cem_iteration, job_cem_refit, job_cem_sample
from .jobs_pg import job_pg_actor_loss, job_pg_critic_loss, job_pg_estimate, job_pg_gae, job_pg_rtg, job_pg_update
from .jobs_rounds import (job_dagger_aggregate, job_dagger_collect, job_dagger_select, job_dart_collect, job_dart_step,
                          job_round)
from .jobs_train import job_inspect, job_train
from .plain import error_record

JOBS = {"bc_loss": job_bc_loss, "bc_fit": job_bc_fit, "dagger_select": job_dagger_select,
        "dagger_aggregate": job_dagger_aggregate, "dagger_collect": job_dagger_collect, "dagger_round": job_round,
        "dart_step": job_dart_step, "dart_collect": job_dart_collect, "dart_round": job_round,
        "cem_sample": job_cem_sample, "cem_refit": job_cem_refit, "cem_iteration": job_cem_iteration,
        "pg_rtg": job_pg_rtg, "pg_gae": job_pg_gae, "pg_actor_loss": job_pg_actor_loss,
        "pg_critic_loss": job_pg_critic_loss, "pg_estimate": job_pg_estimate, "pg_update": job_pg_update,
        "train": job_train, "inspect": job_inspect}


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

