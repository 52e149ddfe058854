import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MUJOCO_GL", "egl")
# the tests' gradings claim sandbox uids from their own range (grader/README.md), apart from any real grading
os.environ.setdefault("GRADER_SANDBOX_UID_BASE", "64600")

import torch

torch.set_num_threads(1)

ENVS = ["cheetah", "walker", "hopper", "ant"]


def pytest_configure(config):
    """Under pytest-xdist each worker claims sandbox uids from a range of its own (256 uids each; from the default
    64600: none an account's, none the grader's own default 64100..64355), so that the tests that look for a sandbox
    uid's leftover processes see only their own worker's gradings. A worker inherits the controller's environment,
    so its range is set here, where the worker knows its id."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker:
        k, base = int(worker[2:]), int(os.environ["GRADER_SANDBOX_UID_BASE"])
        if base == 64600:
            base = [64600, 64900, 65200][k] if k < 3 else 63800 - 300 * (k - 3)
        else:
            base += 300 * k
        os.environ["GRADER_SANDBOX_UID_BASE"] = str(base)

# tiny budgets for agents that only need to run end to end
SMALL = {
    "bc": {"demo_episodes": 2, "epochs": 4, "eval_every": 2, "eval_episodes": 1, "final_eval_episodes": 1},
    "dagger": {"demo_episodes": 1, "epochs": 5, "rounds": 2, "samples_per_round": 300, "epochs_per_round": 2,
               "eval_episodes": 1, "final_eval_episodes": 1, "max_samples": 0},
    "dart": {"demo_episodes": 1, "epochs": 5, "rounds": 2, "samples_per_round": 300, "epochs_per_round": 2,
             "eval_episodes": 1, "final_eval_episodes": 1, "max_samples": 0},
}


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def run_cli(*args: str, timeout: float = 300, cwd: Path | None = None):
    """Run a repo script in a child process; returns CompletedProcess (text)."""
    import subprocess

    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, *args], cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def log_rows(path, drop=("Wall_Time", "Steps_Per_Sec")):
    """log.txt rows as text, without the timing columns (which differ between identical runs)."""
    lines = Path(path).read_text().splitlines()
    header = lines[0].split("\t")
    keep = [i for i, h in enumerate(header) if h not in drop]
    return [[ln.split("\t")[i] for i in keep] for ln in lines]


def interrupt_run_after(agent, iteration: int) -> None:
    """Run ``agent.run()`` until its ``iteration``-th ``end_iteration`` has returned (its checkpoint saved), then
    stop it as Ctrl-C would (the KeyboardInterrupt it raises is expected)."""
    end_iteration = agent.end_iteration

    def stop_after(*args, **kwargs):
        row = end_iteration(*args, **kwargs)
        if agent.iteration == iteration:
            raise KeyboardInterrupt
        return row

    agent.end_iteration = stop_after
    with pytest.raises(KeyboardInterrupt):
        agent.run()


def supervisor_spec(script: Path, folder: Path, timeout: int, *, oracle_budget: int | None = None, **extra) -> dict:
    """A spec for grader/supervisor.py alone: ``python script`` in ``folder`` (its stderr to ``folder/err``), no sandbox
    uid, no network namespace, ``timeout`` seconds of wall and CPU time; with ``oracle_budget``, cheetah's expert
    oracle answering that many distinct observations. ``extra`` keys replace the spec's."""
    oracle = None
    if oracle_budget is not None:
        from grader.performance import export_expert

        oracle = {"expert_npz": str(export_expert("cheetah", folder)), "obs_dim": 17, "act_dim": 6,
                  "budget": oracle_budget, "repo_root": str(ROOT)}
    return {"argv": [sys.executable, str(script)], "cwd": str(folder), "env": {"PATH": "/usr/bin:/bin"},
            "timeout": timeout, "uid": None, "netns": False, "clean_dirs": [], "stderr_path": str(folder / "err"),
            "limits": {"mem_bytes": 4 << 30, "cpu_s": timeout, "file_bytes": 1 << 26, "nproc": 64},
            "oracle": oracle, **extra}


def run_supervisor(spec: dict, folder: Path, timeout: float = 180) -> dict:
    """Run the supervisor alone on ``spec`` (written to ``folder/spec.json``); its JSON status."""
    import json
    import subprocess

    (folder / "spec.json").write_text(json.dumps(spec))
    p = subprocess.run([sys.executable, "-I", str(ROOT / "grader" / "supervisor.py"), str(folder / "spec.json")],
                       capture_output=True, text=True, timeout=timeout)
    return json.loads(p.stdout.strip().splitlines()[-1])
