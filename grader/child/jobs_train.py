"""Jobs of the performance checks and the structure check: a whole training run (with the supervisor's expert
oracle or env server; snapshots for assignment 2) and which TODO methods the student's files define."""
import os

from .agent import student_class, student_module
from .plain import error_record
from .remote import RemoteExpert, use_remote_envs


def job_train(job, out):
    import torch

    from envs.builder import env_dims, make_env, resolve_env_config
    from learning.agents import build_agent

    torch.set_num_threads(1)
    env_cfg = resolve_env_config(job["env"])
    if os.environ.get("GRADER_ENV_FDS"):
        use_remote_envs(os.environ["GRADER_ENV_FDS"])
    expert = None
    fds = os.environ.get("GRADER_ORACLE_FDS")
    if fds:
        expert = RemoteExpert(fds, *env_dims(make_env(env_cfg)))
    a = build_agent(job["agent"], env_cfg, out_dir=os.path.join(os.getcwd(), "train_out"), config=job["config"],
                    agent_cls=student_class(job), expert=expert, quiet=True, progress=False)
    every = int(job.get("snapshot_every") or 0)
    if every > 0:            # the policy every `every` iterations, for the grader to evaluate (assignment 2)
        end_iteration = a.end_iteration

        def end_and_snapshot(*args, **kwargs):
            row = end_iteration(*args, **kwargs)
            if a.iteration % every == 0:
                a.save_model(os.path.join(out, f"model_{a.iteration}.pt"))
            return row

        a.end_iteration = end_and_snapshot
    a.run()
    a.save_model(os.path.join(out, "model.pt"))


def job_inspect(job, out):

    import numpy as np

    info = []
    for agent, spec in job["manifest"].items():
        try:
            cls = getattr(student_module(spec["module"]), spec["class_name"])
            for m in spec["methods"]:
                ok = callable(getattr(cls, m, None)) and m in cls.__dict__
                info.append(f"{agent}:{m}:{int(ok)}:")
        except BaseException as e:  # noqa: BLE001 - report any import failure as data
            info.append(f"{agent}:IMPORT:0:{error_record(e)}")
    np.savez(os.path.join(out, "result.npz"), info=np.array(info))
