"""Child-process side of the grader: runs student code on one job and writes plain-data results.

Usage (by grader.sandbox only): python -I grader_child.py JOB.json OUT_DIR
Writes OUT_DIR/result.npz (arrays only) or OUT_DIR/error.txt, then OUT_DIR/DONE.
Nothing here decides a score: the parent checks the arrays against its own reference.
"""
import json
import os
import sys
import traceback

WS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, WS)

TODO = {"bc": ("learning.bc_agent", "BCAgent", ["compute_loss"]),
        "dagger": ("learning.dagger_agent", "DAggerAgent", ["select_action", "aggregate"]),
        "dart": ("learning.dart_agent", "DARTAgent", ["noisy_expert_step"])}
REF = {"compute_loss": ("grader_ref.bc_solution", "compute_loss"),
       "select_action": ("grader_ref.dagger_solution", "select_action"),
       "aggregate": ("grader_ref.dagger_solution", "aggregate"),
       "noisy_expert_step": ("grader_ref.dart_solution", "noisy_expert_step")}


def hybrid(agent: str, student_methods):
    """The student's agent class with reference methods for every TODO not in ``student_methods``."""
    import importlib

    module, cls_name, _ = TODO[agent]
    cls = getattr(importlib.import_module(module), cls_name)
    methods = {}
    chain = ["compute_loss"] + ([] if agent == "bc" else TODO[agent][2])
    have_ref = os.path.isdir(os.path.join(WS, "grader_ref"))  # absent in the student release's self-check
    for m in chain:
        if m not in student_methods and have_ref:
            mod, fn = REF[m]
            methods[m] = getattr(importlib.import_module(mod), fn)
    return type(cls_name, (cls,), methods)


def make_agent(agent, env_name, student_methods, policy_file=None, expert_file=None, seed=0, cfg_over=None):
    import numpy as np

    from envs.builder import resolve_env_config
    from learning.checkpoint import load_policy
    from util.config import from_dict

    cls = hybrid(agent, student_methods)
    cfg = from_dict(cls.config_class, {"agent": agent, "env": env_name, **(cfg_over or {})}, "grader config")
    a = cls(resolve_env_config(env_name), cfg, os.path.join(os.getcwd(), "agent_out"), progress=False)
    if policy_file:
        a.policy, _ = load_policy(policy_file)
        a.action_low = a.policy.action_low.numpy().copy()
        a.action_high = a.policy.action_high.numpy().copy()
    if expert_file:
        a._expert, _ = load_policy(expert_file)
    a.rng = np.random.default_rng(seed)
    return a


def job_bc_loss(job, out):
    import numpy as np
    import torch

    a = make_agent("bc", job["env"], ["compute_loss"], job["policy"], seed=job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        obs, act = torch.as_tensor(f["obs"]), torch.as_tensor(f["actions"])
    a.policy.zero_grad(set_to_none=True)
    loss = a.compute_loss(obs, act)
    if not isinstance(loss, torch.Tensor):
        raise TypeError(f"compute_loss returned {type(loss).__name__}, not a torch.Tensor")
    if loss.numel() != 1:
        raise TypeError(f"compute_loss returned a tensor of shape {tuple(loss.shape)}, not a scalar")
    value = float(loss.detach().reshape(()).item())
    has_graph = bool(loss.requires_grad)
    grads = []
    if has_graph:
        loss.reshape(()).backward()
    for _, p in a.policy.named_parameters():
        grads.append(np.zeros(p.numel(), np.float64) if p.grad is None else p.grad.detach().double().reshape(-1).numpy())
    np.savez(os.path.join(out, "result.npz"), loss=np.array(value, np.float64),
             has_graph=np.array(has_graph), grads=np.concatenate(grads))


def _call_pairs(fn, obs, repeats, act_dim):
    import numpy as np

    exe = np.zeros((len(obs), repeats, act_dim))
    lab = np.zeros((len(obs), repeats, act_dim))
    for k in range(repeats):
        for i, o in enumerate(obs):
            e, l = fn(o.copy())
            exe[i, k] = np.asarray(e, np.float64).reshape(act_dim)
            lab[i, k] = np.asarray(l, np.float64).reshape(act_dim)
    return exe, lab


def job_dagger_select(job, out):
    import numpy as np

    a = make_agent("dagger", job["env"], ["select_action"], job["policy"], job["expert"], seed=job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        obs = f["obs"]
    res = {}
    for j, beta in enumerate(job["betas"]):
        exe, lab = _call_pairs(lambda o: a.select_action(o, float(beta)), obs, job["repeats"], a.act_dim)
        res[f"exec_{j}"], res[f"label_{j}"] = exe, lab
    np.savez(os.path.join(out, "result.npz"), **res)


def job_dagger_aggregate(job, out):
    import numpy as np

    from learning.demos import Dataset

    a = make_agent("dagger", job["env"], ["aggregate"], seed=job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        d = Dataset(f["data_obs"], f["data_actions"])
        new = a.aggregate(d, f["visited_obs"].copy(), f["labels"].copy())
    obs = np.array(np.asarray(new.obs), dtype=np.float64)
    act = np.array(np.asarray(new.actions), dtype=np.float64)
    np.savez(os.path.join(out, "result.npz"), obs=obs, actions=act)


def job_dart_step(job, out):
    import numpy as np

    a = make_agent("dart", job["env"], ["noisy_expert_step"], job["policy"], job["expert"], seed=job["seed"],
                   cfg_over={"noise_std": job["noise_std"]})
    with np.load(job["inputs"], allow_pickle=False) as f:
        obs = f["obs"]
    exe, lab = _call_pairs(a.noisy_expert_step, obs, job["repeats"], a.act_dim)
    np.savez(os.path.join(out, "result.npz"), exec=exe, label=lab)


def job_train(job, out):
    import torch

    from util.config import from_dict

    torch.set_num_threads(1)
    agent = job["agent"]
    cls = hybrid(agent, job["student_methods"])
    cfg = from_dict(cls.config_class, job["config"], "grader performance config")
    from envs.builder import resolve_env_config

    a = cls(resolve_env_config(job["env"]), cfg, os.path.join(os.getcwd(), "train_out"), progress=False)
    a._logger_echo = False
    a.tensorboard = False
    a.run()
    a.save_model(os.path.join(out, "model.pt"))


def job_inspect(job, out):
    import importlib
    import inspect

    import numpy as np

    info = []
    for agent, (module, cls_name, methods) in TODO.items():
        try:
            cls = getattr(importlib.import_module(module), cls_name)
            for m in methods:
                ok = callable(getattr(cls, m, None)) and m in cls.__dict__
                sig = str(inspect.signature(getattr(cls, m))) if ok else ""
                info.append(f"{agent}:{m}:{int(ok)}:{sig}")
        except BaseException as e:  # noqa: BLE001 - report any import failure as data
            info.append(f"{agent}:IMPORT:0:{type(e).__name__}: {str(e)[:200]}")
    np.savez(os.path.join(out, "result.npz"), info=np.array(info))


JOBS = {"bc_loss": job_bc_loss, "dagger_select": job_dagger_select, "dagger_aggregate": job_dagger_aggregate,
        "dart_step": job_dart_step, "train": job_train, "inspect": job_inspect}


def main() -> None:
    job_path, out = sys.argv[1], sys.argv[2]
    with open(job_path) as f:
        job = json.load(f)
    import warnings

    warnings.filterwarnings("ignore")
    try:
        JOBS[job["kind"]](job, out)
    except BaseException as e:  # noqa: BLE001 - student code may raise anything, SystemExit included
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        student = [ln for ln in tb if "_agent.py" in ln]
        where = student[-1].strip().splitlines()[0] if student else ""
        with open(os.path.join(out, "error.txt"), "w") as f:
            f.write(f"{type(e).__name__}: {str(e)[:500]}" + (f" ({where})" if where else ""))
    with open(os.path.join(out, "DONE"), "w") as f:
        f.write("done")
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
