"""The env an imitation agent collects in (envs/training_env.py): seeded resets, counters, the collection rules."""
import dataclasses

import numpy as np
import pytest

from envs.builder import action_bounds, episode_seed, make_env, resolve_env_config
from envs.training_env import EpisodeError, TrainingEnv


def training_env(name="hopper", seed=3, max_episode_steps=None):
    cfg = resolve_env_config(name)
    if max_episode_steps is not None:
        cfg = dataclasses.replace(cfg, max_episode_steps=max_episode_steps)
    env = make_env(cfg)
    low, high = action_bounds(env)
    return TrainingEnv(env, seed, low, high)


def test_resets_are_seeded_from_the_run_seed_and_the_episode_count():
    a, b = training_env(), training_env()
    assert np.array_equal(a.reset()[0], b.reset()[0])
    second = a.reset()[0]
    plain = make_env(resolve_env_config("hopper"))
    assert np.allclose(second, plain.reset(seed=episode_seed(3, "train", 1))[0])
    assert a.episodes == 2 and a.steps == 0


def test_a_finished_episode_cannot_be_stepped_and_returns_are_counted():
    env = training_env()
    with pytest.raises(EpisodeError, match="finished episode"):
        env.step(np.zeros(3))                       # no reset yet
    env.reset()
    done, total, steps = False, 0.0, 0
    while not done:                                  # a hopper pushed hard falls within a few hundred steps
        _, r, term, trunc, _ = env.step(np.ones(3))
        total, steps, done = total + r, steps + 1, term or trunc
    with pytest.raises(EpisodeError, match="reset"):
        env.step(np.zeros(3))
    assert env.steps == steps and env.take_returns() == [pytest.approx(total)] and env.take_returns() == []


def test_truncation_ends_an_episode_too():
    env = training_env("cheetah", max_episode_steps=5)
    env.reset()
    flags = [env.step(np.zeros(6))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]
    with pytest.raises(EpisodeError):
        env.step(np.zeros(6))


def test_a_collection_starts_with_a_reset_and_takes_at_most_its_steps():
    env = training_env()
    env.reset()
    with env.collection(3):
        with pytest.raises(EpisodeError, match="finished episode"):
            env.step(np.zeros(3))                   # the episode before the collection does not carry over
        env.reset()
        for _ in range(3):
            env.step(np.zeros(3))
        with pytest.raises(EpisodeError, match="more environment steps"):
            env.step(np.zeros(3))
    assert env.steps_left() is None


def test_bad_actions_are_refused_and_actions_are_clipped_to_the_bounds():
    env = training_env()
    env.reset()
    with pytest.raises(EpisodeError, match="shape"):
        env.step(np.zeros(4))
    with pytest.raises(EpisodeError, match="NaN"):
        env.step(np.array([0.0, np.nan, 0.0]))
    env.trace = []
    ref = training_env()
    ref.reset()
    env.step(np.full(3, 50.0))                       # executed as the upper bound
    assert np.array_equal(env.trace[-1][2], ref.step(np.asarray(ref.action_high))[0])
    assert np.array_equal(env.trace[-1][1], np.full(3, 50.0, np.float32))   # the trace keeps what was passed
