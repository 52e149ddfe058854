"""The shipped experts and demonstrations."""
import json

import numpy as np
import pytest

from envs.builder import env_dims, make_env, resolve_env_config
from learning.demos import DemoError, demo_path, load_demos
from learning.evaluation import TEST_PURPOSE, TEST_SEED, evaluate_policy
from learning.expert import expert_model_path, load_expert, load_expert_config
from util.fsio import file_sha256

from conftest import ENVS


@pytest.mark.parametrize("name", ENVS)
def test_expert_loads_is_small_and_matches_its_documented_return(name):
    env_cfg = resolve_env_config(name)
    env = make_env(env_cfg)
    obs_dim, act_dim = env_dims(env)
    expert = load_expert(env_cfg, obs_dim, act_dim)
    cfg, _ = load_expert_config(name)
    path = expert_model_path(cfg)
    assert path.stat().st_size < 1_000_000
    doc = json.loads(path.with_suffix(".json").read_text())
    assert doc["sha256"] == file_sha256(path), "expert file changed since it was measured; re-run --install"
    # the first 3 of the documented 50 held-out episodes reproduce exactly
    res = evaluate_policy(env, expert, 3, TEST_SEED, TEST_PURPOSE)
    assert res.mean >= doc["return_mean"] - max(3 * doc["return_std"], 0.05 * abs(doc["return_mean"]))
    assert res.mean <= doc["return_mean"] + max(3 * doc["return_std"], 0.05 * abs(doc["return_mean"]))


@pytest.mark.parametrize("name", ENVS)
def test_demos_load_without_pickle_and_match_the_task(name):
    env_cfg = resolve_env_config(name)
    obs_dim, act_dim = env_dims(make_env(env_cfg))
    path = demo_path(name)
    assert path.stat().st_size < 5_000_000
    with np.load(path, allow_pickle=False) as f:
        assert f["obs"].dtype == np.float32
    demos = load_demos(path, env_cfg.env_id, obs_dim, act_dim, name)
    d = demos.data
    assert demos.num_episodes >= 25
    n = len(d["obs"])
    assert d["actions"].shape == (n, act_dim) and d["obs"].shape == (n, obs_dim)
    assert d["rewards"].shape == d["terminated"].shape == d["truncated"].shape == (n,)
    assert d["final_obs"].shape == (demos.num_episodes, obs_dim) and d["final_obs"].dtype == np.float32
    assert demos.meta["format_version"] == 2
    # each episode ends exactly once, with terminated or truncated
    for e in range(demos.num_episodes):
        sl = demos.episode_slice(e)
        ends = d["terminated"][sl] | d["truncated"][sl]
        assert ends[-1] and not ends[:-1].any()
        assert np.isclose(d["rewards"][sl].sum(), d["episode_returns"][e], rtol=1e-4, atol=1e-2)
    meta = demos.meta
    cfg, _ = load_expert_config(name)
    assert meta["env_id"] == env_cfg.env_id and meta["gymnasium_version"] and meta["mujoco_version"]
    assert meta["expert_sha256"] == file_sha256(expert_model_path(cfg)), "demos were recorded with another expert"
    assert len(demos.dataset(1)) == int(d["episode_lengths"][0])


@pytest.mark.parametrize("name,episode", [("hopper", 0), ("ant", 24)])
def test_replaying_stored_actions_reproduces_the_observations_and_final_obs(name, episode):
    """final_obs[e] is the observation after episode e's last action: replay the actions from the stored seed."""
    env_cfg = resolve_env_config(name)
    env = make_env(env_cfg)
    demos = load_demos(demo_path(name), env_cfg.env_id)
    d, sl = demos.data, demos.episode_slice(episode)
    obs, _ = env.reset(seed=int(d["episode_seeds"][episode]))
    for row in range(sl.start, sl.stop):
        assert np.array_equal(np.float32(obs), d["obs"][row]), f"step {row - sl.start}"
        obs, r, term, trunc, _ = env.step(d["actions"][row])
        assert np.float32(r) == d["rewards"][row] and term == d["terminated"][row] and trunc == d["truncated"][row]
    assert np.array_equal(np.float32(obs), d["final_obs"][episode])
    assert not np.array_equal(d["final_obs"][episode], d["obs"][sl.stop - 1])


def test_demos_of_another_task_are_refused():
    with pytest.raises(DemoError, match="HalfCheetah-v5"):
        load_demos(demo_path("cheetah"), "Hopper-v5", 11, 3)


def test_demo_with_pickled_objects_is_refused(tmp_path):
    p = tmp_path / "evil.npz"
    np.savez(p, obs=np.array([object()], dtype=object))
    with pytest.raises(DemoError, match="pickle|missing arrays"):
        load_demos(p)
    np.savez(p, **{k: np.zeros(1) for k in ("obs", "actions", "rewards", "terminated", "truncated", "final_obs",
                                           "episode_starts", "episode_lengths", "episode_returns", "episode_seeds")},
             meta_json=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DemoError, match="pickle"):
        load_demos(p)


def test_missing_demo_file_names_the_command(tmp_path):
    with pytest.raises(DemoError) as e:
        load_demos(tmp_path / "hopper.npz", env_name="hopper")
    assert "record_demos.py --env hopper" in str(e.value)


def test_corrupt_demo_file_is_refused(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(demo_path("hopper").read_bytes()[:1000])
    with pytest.raises(DemoError, match="corrupt"):
        load_demos(p)


def test_missing_expert_names_the_command(tmp_path):
    from learning.checkpoint import CheckpointError

    cfg = tmp_path / "expert_hopper.yaml"
    cfg.write_text(f"agent: expert\nenv: hopper\nmodel_file: {tmp_path / 'none.pt'}\n")
    with pytest.raises(CheckpointError) as e:
        load_expert(resolve_env_config("hopper"), 11, 3, str(cfg))
    assert "none.pt" in str(e.value) and "train_expert.py --env hopper" in str(e.value)
