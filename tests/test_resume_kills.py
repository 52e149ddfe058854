"""Exact resume everywhere: kill each trainer at random instants (SIGINT, SIGTERM, SIGKILL), resume until it
finishes, and compare the weights and the log with an uninterrupted run, bit for bit."""
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, log_rows

needs_solution = pytest.mark.skipif(not (ROOT / "grader" / "solution").is_dir(),
                                    reason="reference solutions are not part of the student release")

DAGGER = ("agent: dagger\nenv: hopper\ndemo_episodes: 1\nepochs: 5\nrounds: 4\nsamples_per_round: 300\n"
          "epochs_per_round: 2\neval_episodes: 1\nfinal_eval_episodes: 1\n")
EXPERT = ("agent: expert\nenv: hopper\nmodel_file: unused.pt\ntrainer:\n  total_steps: 1500\n  start_steps: 100\n"
          "  learning_starts: 100\n  batch_size: 32\n  hidden_sizes: [32, 32]\n  eval_interval: 250\n"
          "  eval_episodes: 1\n  checkpoint_interval: 400\n")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)


def _imitation_cmd(cfg, out):
    return [sys.executable, "run.py", "--agent", "dagger", "--env", "hopper", "--solution", "--agent_config", str(cfg),
            "--out_dir", str(out), "--no_progress", "--no_tensorboard"]


def _expert_cmd(cfg, out):
    return [sys.executable, "tools/train_expert.py", "--env", "hopper", "--agent_config", str(cfg),
            "--run_dir", str(out), "--no_progress"]


def _run(cmd, kill_after=None, sig=None):
    """Run cmd; if kill_after is given, send sig after that many seconds. Returns the exit status."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(sig)
    _, err = proc.communicate(timeout=600)
    assert "Traceback" not in err or proc.returncode != 0 and sig == signal.SIGINT, err
    return proc.returncode


def _kill_and_resume(make_cmd, cfg, tmp_path, kills, seed):
    full = tmp_path / "full"
    t0 = time.time()
    assert _run(make_cmd(cfg, full)) == 0
    duration = time.time() - t0
    out = tmp_path / "killed"
    rng = random.Random(seed)
    for k in range(kills):
        resume = ["--resume"] if (out / "config.json").exists() else []
        rc = _run(make_cmd(cfg, out) + resume, kill_after=rng.uniform(0.1, 1.0) * duration, sig=SIGNALS[k % 3])
        if rc == 0:
            break  # finished before the signal
    for _ in range(3):
        resume = ["--resume"] if (out / "config.json").exists() else []
        if _run(make_cmd(cfg, out) + resume) == 0:
            break
    a = torch.load(full / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert log_rows(full / "log.txt") == log_rows(out / "log.txt")
    assert not list(out.glob(".*.tmp*"))


@needs_solution
@pytest.mark.parametrize("kills", [3, pytest.param(18, marks=pytest.mark.slow)])
def test_imitation_agent_resumes_exactly_after_kills(tmp_path, kills):
    cfg = tmp_path / "dagger.yaml"
    cfg.write_text(DAGGER)
    _kill_and_resume(_imitation_cmd, cfg, tmp_path, kills, seed=kills)


@pytest.mark.parametrize("kills", [3, pytest.param(18, marks=pytest.mark.slow)])
def test_expert_trainer_resumes_exactly_after_kills(tmp_path, kills):
    cfg = tmp_path / "expert.yaml"
    cfg.write_text(EXPERT)
    _kill_and_resume(_expert_cmd, cfg, tmp_path, kills, seed=kills)


def test_expert_trainer_stops_at_a_step_boundary_on_sigterm(tmp_path):
    """The state saved on SIGTERM is exactly the uninterrupted run's state at that step."""
    from envs.builder import resolve_env_config
    from learning.expert import TD3Config, TD3Trainer

    tiny = dict(total_steps=300, start_steps=50, learning_starts=50, batch_size=16, hidden_sizes=[16],
                eval_interval=100, eval_episodes=1, checkpoint_interval=1000)
    env = resolve_env_config("hopper")
    part = TD3Trainer(env, TD3Config(**tiny), tmp_path / "b", quiet=True)
    original = part.update

    def update_then_signal():
        original()
        if part.updates == 120:  # the signal lands in the middle of a step (after its update)
            signal.raise_signal(signal.SIGTERM)

    part.update = update_then_signal
    with pytest.raises(KeyboardInterrupt):
        part.run()
    assert part.step == 49 + 120  # updates start at step learning_starts (50)
    resumed = TD3Trainer(env, TD3Config(**tiny), tmp_path / "b", quiet=True)
    resumed.run(resume=True)
    full = TD3Trainer(env, TD3Config(**tiny), tmp_path / "a", quiet=True)
    full.run()
    for x, y in zip(full.actor.state_dict().values(), resumed.actor.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    assert log_rows(tmp_path / "a" / "log.txt") == log_rows(tmp_path / "b" / "log.txt")
