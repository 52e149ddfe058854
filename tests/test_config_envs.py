"""Env builder, config validation and seeding."""
import json

import numpy as np
import pytest

from envs.builder import (EnvConfig, available_envs, env_dims, episode_seed, make_env, resolve_env_config)
from learning.expert import ExpertConfig, expert_model_path, load_expert_config, trainer_config
from util.config import REPO_ROOT, ConfigError, load_config

EXPECTED = {"cheetah": ("HalfCheetah-v5", 17, 6), "walker": ("Walker2d-v5", 17, 6),
            "hopper": ("Hopper-v5", 11, 3), "ant": ("Ant-v5", 105, 8)}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_short_names_build_the_v5_tasks(name):
    cfg = resolve_env_config(name)
    env_id, obs_dim, act_dim = EXPECTED[name]
    assert cfg.env_id == env_id and cfg.max_episode_steps == 1000
    assert env_dims(make_env(cfg)) == (obs_dim, act_dim)


def test_unknown_env_lists_available_names():
    with pytest.raises(ConfigError) as e:
        resolve_env_config("cheeta")
    msg = str(e.value)
    assert "cheeta" in msg and all(n in msg for n in available_envs())


def test_other_gymnasium_id_through_a_config_file(tmp_path):
    p = tmp_path / "swimmer.yaml"
    p.write_text("name: swimmer\nenv_id: Swimmer-v5\nmax_episode_steps: 50\nkwargs: {}\n")
    env = make_env(resolve_env_config(str(p)))
    env.reset(seed=0)
    steps = 0
    while True:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        if term or trunc:
            break
    assert steps == 50 and trunc and not term


@pytest.mark.parametrize("text,key", [
    ("name: x\nenv_id: Hopper-v5\ncolour: red\n", "colour"),
    ("name: x\nmax_episode_steps: 10\n", "env_id"),
    ("name: x\nenv_id: Hopper-v5\nmax_episode_steps: ten\n", "max_episode_steps"),
])
def test_bad_env_config_names_key_and_file(tmp_path, text, key):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(EnvConfig, p)
    assert key in str(e.value) and str(p) in str(e.value)


def test_malformed_and_missing_yaml(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="Malformed YAML"):
        load_config(EnvConfig, p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(EnvConfig, tmp_path / "nope.yaml")
    p.write_text("- a list\n- not a mapping\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(EnvConfig, p)


def test_unknown_gymnasium_id_is_a_clear_error(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("name: x\nenv_id: NoSuchEnv-v0\n")
    with pytest.raises(ConfigError, match="NoSuchEnv-v0"):
        make_env(resolve_env_config(str(p)))


def test_expert_trainer_config_is_validated(tmp_path):
    p = tmp_path / "expert_x.yaml"
    p.write_text("agent: expert\nenv: hopper\nmodel_file: m.pt\ntrainer:\n  batch_sise: 100\n")
    cfg, src = load_expert_config("hopper", str(p))
    with pytest.raises(ConfigError) as e:
        trainer_config(cfg, src)
    assert "batch_sise" in str(e.value) and str(p) in str(e.value)
    for name in ("cheetah", "walker", "hopper", "ant"):  # the shipped configs are valid and name the expert's algo
        cfg, src = load_expert_config(name)
        summary = json.loads(expert_model_path(cfg).with_suffix(".json").read_text())
        algo = summary.get("algo", "td3")                    # an ARS polish: "<its starting policy's>+ars"
        assert isinstance(cfg, ExpertConfig) and trainer_config(cfg, src).algo == algo.split("+")[-1]
    for path in sorted((REPO_ROOT / "data" / "training").glob("expert_*.yaml")):   # so are the runs in progress
        cfg, src = load_expert_config("", str(path))          # the file names its own task (env:)
        assert cfg.env in available_envs() and trainer_config(cfg, src).algo in ("td3", "sac", "tqc", "ars")


def test_episode_i_under_seed_s_is_reproducible():
    env = make_env(resolve_env_config("hopper"))
    first = env.reset(seed=episode_seed(3, "eval", 7))[0]
    env.reset(seed=episode_seed(3, "eval", 0))   # something else in between
    again = env.reset(seed=episode_seed(3, "eval", 7))[0]
    np.testing.assert_array_equal(first, again)
    assert episode_seed(3, "eval", 7) != episode_seed(3, "eval", 8)
    train = {episode_seed(0, "train", i) for i in range(5000)}
    test = {episode_seed(0, "test", i) for i in range(200)}
    assert not train & test, "evaluation seeds must be disjoint from training seeds"


def test_terminated_and_truncated_are_distinct():
    # Hopper falls (terminated) under random actions; HalfCheetah never terminates, only truncates.
    env = make_env(resolve_env_config("hopper"))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    while True:
        _, _, term, trunc, _ = env.step(rng.uniform(-1, 1, 3))
        if term or trunc:
            break
    assert term and not trunc
    env = make_env(EnvConfig(name="c", env_id="HalfCheetah-v5", max_episode_steps=20))
    env.reset(seed=0)
    for t in range(20):
        _, _, term, trunc, _ = env.step(np.zeros(6))
    assert trunc and not term


def test_cheetah_builds_silently_with_the_same_physics():
    """No 'settotalmass' deprecation warning, and the model is bit-identical to gymnasium's own compile."""
    import subprocess
    import sys

    from conftest import ROOT

    code = "from envs.builder import make_env, resolve_env_config; make_env(resolve_env_config('cheetah'))"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0 and "settotalmass" not in p.stdout + p.stderr, p.stdout + p.stderr

    import gymnasium as gym

    ours = make_env(resolve_env_config("cheetah"))
    theirs = gym.make("HalfCheetah-v5", max_episode_steps=1000)
    ma, mb = ours.unwrapped.model, theirs.unwrapped.model
    arrays = [n for n in dir(ma) if not n.startswith("_") and isinstance(getattr(ma, n, None), np.ndarray)]
    assert len(arrays) > 100
    assert [n for n in arrays if not np.array_equal(getattr(ma, n), getattr(mb, n))] == []
    assert (ma.stat.meanmass, ma.stat.meaninertia) == (mb.stat.meanmass, mb.stat.meaninertia)
    oa, _ = ours.reset(seed=3)
    ob, _ = theirs.reset(seed=3)
    for a in np.random.default_rng(0).uniform(-1, 1, (200, 6)):
        oa, ra, *_ = ours.step(a)
        ob, rb, *_ = theirs.step(a)
    assert np.array_equal(oa, ob) and ra == rb


def test_building_envs_in_threads_leaves_the_warning_filters_alone():
    """make_env silences gymnasium's build-time warnings with warnings.catch_warnings, which swaps the global filters
    list: threads building at once (the grader scores checks in threads) once restored each other's lists out of
    order and left "ignore every warning" installed for the rest of the process."""
    import threading
    import warnings

    make_env(resolve_env_config("hopper")).close()       # gymnasium's import adds its own filters once
    before = list(warnings.filters)

    def build():
        for _ in range(10):
            make_env(resolve_env_config("hopper")).close()

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert warnings.filters == before
