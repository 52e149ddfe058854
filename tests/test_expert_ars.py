"""ARS, the polish of a trained actor by random search on its return: the update, exact continuation, config errors."""
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from envs.builder import action_bounds, env_dims, make_env, resolve_env_config
from learning.checkpoint import load_policy, save_policy
from learning.expert import ARSConfig, ARSTrainer, ExpertConfig, save_compact, trainer_config
from learning.policy import GaussianMLPPolicy
from util.config import REPO_ROOT, ConfigError

TINY = dict(iterations=4, directions=3, top_directions=2, episodes=1, eval_interval=2, eval_episodes=1,
            checkpoint_interval=1)


def _init_policy(path):
    """A small random hopper actor standing in for a trained one (its meta: what it cost)."""
    env = make_env(resolve_env_config("hopper"))
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(*env_dims(env), hidden_sizes=(16, 16), action_low=action_bounds(env)[0],
                               action_high=action_bounds(env)[1])
    save_policy(path, policy, {"env_id": "Hopper-v5", "algo": "tqc", "train_steps": 1000, "train_cpu_time_s": 7.0,
                               "train_wall_time_s": 9.0})
    return path


def _make(path, init, **kw):
    return ARSTrainer(resolve_env_config("hopper"), ARSConfig(init_policy=str(init), **{**TINY, **kw}), path,
                      quiet=True)


def _rows(path):
    from conftest import log_rows

    return log_rows(path)


def test_the_ars_step_follows_the_formula_and_climbs_a_known_objective(tmp_path):
    """With returns r(θ) = -|θ - θ*|², one iteration is exactly θ + α/(bσ_R) Σ_top (r+ - r-) s⊙δ, and iterations
    bring θ nearer θ*."""
    t = _make(tmp_path / "run", _init_policy(tmp_path / "init.pt"), iterations=40, directions=8, top_directions=4,
              noise=0.05, step_size=0.02)
    t.start_fresh()
    target = t.get_theta() + 0.3 * t.scale * np.random.default_rng(1).standard_normal(t.scale.size)

    def rollout(theta, seeds):
        return -float(np.sum(((theta - target) / t.scale) ** 2)), 10 * len(seeds)

    t.rollout = rollout
    theta0, rng_state = t.get_theta(), t.rng.bit_generator.state
    t._iterate()
    deltas = np.random.default_rng()
    deltas.bit_generator.state = rng_state
    d = deltas.standard_normal((8, theta0.size))
    rp = np.array([rollout(theta0 + 0.05 * t.scale * x, [0])[0] for x in d])
    rm = np.array([rollout(theta0 - 0.05 * t.scale * x, [0])[0] for x in d])
    top = np.argsort(-np.maximum(rp, rm), kind="stable")[:4]
    sigma = np.concatenate([rp[top], rm[top]]).std() + 1e-6
    expected = theta0 + t.scale * (0.02 / (4 * sigma)) * ((rp[top] - rm[top]) @ d[top])
    np.testing.assert_allclose(t.get_theta(), expected.astype(np.float32), rtol=0, atol=1e-6)
    assert t.step == 2 * 8 * 10 and t.iteration == 1

    start = -rollout(theta0, [0])[0]
    for _ in range(39):
        t._iterate()
    assert -rollout(t.get_theta(), [0])[0] < 0.75 * start      # 515 parameters, 8 directions: slow but sure


def test_an_interrupted_or_moved_ars_run_continues_exactly(tmp_path):
    """--resume after a stop (budget or a signal inside an iteration) and --warm_start from a compact copy give
    the same actor and the same log as a run that never stopped."""
    init = _init_policy(tmp_path / "init.pt")
    full = _make(tmp_path / "full", init)
    full.run()
    assert full.iteration == 4 and full.step > 0

    part = _make(tmp_path / "part", init)
    part.run(max_steps=1)                         # stops after its first iteration
    assert part.iteration == 1
    resumed = _make(tmp_path / "part", init)
    original, calls = resumed.rollout, []

    def rollout_then_signal(theta, seeds):        # SIGINT in the middle of the third iteration
        calls.append(1)
        if len(calls) == 2 * 3 + 3:
            signal.raise_signal(signal.SIGINT)
        return original(theta, seeds)

    resumed.rollout = rollout_then_signal
    with pytest.raises(KeyboardInterrupt):
        resumed.run(resume=True)
    again = _make(tmp_path / "part", init)
    assert torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)["counters"]["iteration"] == 2
    again.run(resume=True)
    assert np.array_equal(again.get_theta(), full.get_theta()) and again.step == full.step
    assert _rows(tmp_path / "part" / "log.txt") == _rows(tmp_path / "full" / "log.txt")

    stopped = _make(tmp_path / "stopped", init)
    stopped.run(max_steps=1)
    save_compact(tmp_path / "stopped", tmp_path / "compact")
    moved = _make(tmp_path / "moved", init)
    moved.run(warm_start=tmp_path / "compact")
    assert np.array_equal(moved.get_theta(), full.get_theta()) and moved.warm_starts == 1
    assert _rows(tmp_path / "moved" / "log.txt") == _rows(tmp_path / "full" / "log.txt")


def test_an_ars_expert_file_is_a_plain_policy_and_states_its_whole_cost(tmp_path):
    init = _init_policy(tmp_path / "init.pt")
    t = _make(tmp_path / "run", init)
    t.run()
    policy, meta = load_policy(tmp_path / "run" / "model.pt", 11, 3, "Hopper-v5")
    start, _ = load_policy(init)
    changed = [k for k, v in policy.state_dict().items() if not torch.equal(v, start.state_dict()[k])]
    assert changed and all(k.startswith("net.") for k in changed)        # normalizer, bounds, log_std kept
    assert meta["algo"] == "tqc+ars" and meta["train_steps"] == 1000 + t.step and meta["ars_steps"] == t.step
    assert meta["train_cpu_time_s"] == pytest.approx(7.0 + t.cpu_time, abs=0.1)
    assert meta["init_policy"] == str(init) and meta["ars_iterations"] == 4
    rows = _rows(tmp_path / "run" / "log.txt")
    assert [r[0] for r in rows[1:]] == ["0", "2", "4"] and rows[1][1] == "1000"   # row 0: the starting policy


def test_ars_settings_are_checked(tmp_path):
    cfg = ExpertConfig(agent="expert", env="hopper", model_file="x.pt",
                       trainer={"algo": "ars", "init_policy": "data/training/hopper/best_model.pt"})
    assert trainer_config(cfg, "c.yaml").iterations == ARSConfig().iterations
    with pytest.raises(ConfigError, match="--total_steps does not apply to trainer.algo ars"):
        trainer_config(cfg, "c.yaml", {"total_steps": 10})
    for bad, message in (({"top_directions": 20}, "at most"), ({"init_policy": ""}, "init_policy must name"),
                         ({"noise": 0.0}, "positive")):
        bad_cfg = ExpertConfig(agent="expert", env="hopper", model_file="x.pt",
                               trainer={**cfg.trainer, **bad})
        with pytest.raises(ConfigError, match=message):
            trainer_config(bad_cfg, "c.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        _make(tmp_path / "run", tmp_path / "missing.pt").run()

    path = tmp_path / "ars.yaml"
    path.write_text(yaml.safe_dump({"agent": "expert", "env": "hopper", "model_file": str(tmp_path / "e.pt"),
                                    "trainer": cfg.trainer}))
    out = subprocess.run([sys.executable, "tools/train_expert.py", "--env", "hopper", "--agent_config", str(path),
                          "--total_steps", "5", "--run_dir", str(tmp_path / "cli")],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count("error:") == 1 and "Traceback" not in out.stderr
    assert "--total_steps does not apply" in out.stderr and not (tmp_path / "cli").exists()


def test_rollout_action_noise_comes_from_the_episode_seed(tmp_path):
    """With action_noise the rollouts are still reproducible (noise drawn from each episode's seed, so +δ and -δ
    meet the same noise), and they differ from the noiseless ones."""
    init = _init_policy(tmp_path / "init.pt")
    noisy = _make(tmp_path / "a", init, action_noise=0.3)
    noisy.start_fresh()
    theta = noisy.get_theta()
    first = noisy.rollout(theta, [5, 6])
    assert noisy.rollout(theta, [5, 6]) == first
    plain = _make(tmp_path / "b", init)
    plain.start_fresh()
    assert plain.rollout(theta, [5, 6]) != first


def test_a_starting_policy_without_a_cpu_time_counts_half_its_wall_time_as_an_estimate(tmp_path):
    t = _make(tmp_path / "run", _init_policy(tmp_path / "init.pt"))
    t.init_meta = {"algo": "td3", "train_steps": 380000, "train_wall_time_s": 5000.0}   # an expert of before
    t.cpu_time, t.step = 100.0, 10
    meta = t.policy_meta()
    assert meta["train_cpu_time_s"] == 2600.0 and meta["train_cpu_time_estimated_s"] == 2500.0
    assert meta["algo"] == "td3+ars" and meta["train_steps"] == 380010
