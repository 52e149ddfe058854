"""The environment an imitation agent collects its data in: a gymnasium env with the run's bookkeeping around it.

Student code steps it like any gymnasium env (``obs, info = env.reset()``; ``obs, reward, terminated, truncated,
info = env.step(action)``), and it keeps what is not the algorithm:

* **seeding**: ``reset()`` without a seed starts training episode k with ``episode_seed(seed, "train", k)`` (the same
  seed gives the same episodes, and a resumed run the same as an uninterrupted one);
* **counting**: environment steps, finished episodes and their returns (the log's ``Env_Steps`` and ``Train_Return``);
* **rules**: a step needs a live episode (a reset first, and again after ``terminated`` or ``truncated``); each
  collection (a :meth:`collection` block) starts with a reset and may take at most its ``limit`` of steps — the sample
  budget, enforced here whatever the agent's code does;
* **safety**: the action must be a finite (act_dim,) array; it is clipped to the bounds before MuJoCo sees it.

``trace`` (off unless a list is given) records every reset and step as plain data: the grader replays it.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from envs.builder import episode_seed


class EpisodeError(RuntimeError):
    """A collection broke one of the environment's rules (stepping a finished episode, more steps than allowed)."""


class TrainingEnv:
    """``env`` (a gymnasium env) with seeded resets, step and episode counters, and the collection rules."""

    def __init__(self, env: Any, seed: int, action_low: np.ndarray, action_high: np.ndarray):
        self.env = env
        self.seed = int(seed)
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.action_low = np.asarray(action_low, np.float32)
        self.action_high = np.asarray(action_high, np.float32)
        self.act_dim = int(self.action_low.shape[0])
        self.episodes = 0             # training episodes started (the next reset's seed index)
        self.steps = 0                # environment steps taken
        self.finished_returns: list[float] = []   # returns of episodes finished since the last take_returns()
        self.trace: list[tuple] | None = None     # the grader's record: ("reset", seed, obs) / ("step", a, ...)
        self._live = False            # an episode is running and may be stepped
        self._return = 0.0
        self._limit: int | None = None   # steps still allowed in the current collection (None: outside one)

    # ------------------------------------------------------------------ gymnasium's interface
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """Start a new episode (seeded from the run's seed and the episode count unless ``seed`` is given)."""
        if seed is None:
            seed = episode_seed(self.seed, "train", self.episodes)
        obs, info = self.env.reset(seed=int(seed), options=options)
        self.episodes += 1
        self._live, self._return = True, 0.0
        obs = np.asarray(obs, np.float32)
        if self.trace is not None:
            self.trace.append(("reset", int(seed), obs.copy()))
        return obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Execute ``action`` (act_dim,), env units (clipped to the bounds); one environment step."""
        if not self._live:
            raise EpisodeError("env.step() was called on a finished episode: call env.reset() first, at the start "
                               "of each collection and again after every step that returned terminated or truncated")
        if self._limit is not None:
            if self._limit <= 0:
                raise EpisodeError("the collection took more environment steps than its n: one labelled sample "
                                   "per step, exactly n steps")
            self._limit -= 1
        a = np.asarray(action, np.float32)
        if a.shape != (self.act_dim,):
            a = a.reshape(-1) if a.size == self.act_dim else a
            if a.shape != (self.act_dim,):
                raise EpisodeError(f"env.step() needs an action of shape ({self.act_dim},), got {np.shape(action)}")
        if not np.all(np.isfinite(a)):
            raise EpisodeError("env.step() got an action with NaN or inf")
        obs, reward, terminated, truncated, info = self.env.step(np.clip(a, self.action_low, self.action_high))
        obs = np.asarray(obs, np.float32)
        self.steps += 1
        self._return += float(reward)
        if terminated or truncated:
            self._live = False
            self.finished_returns.append(self._return)
        if self.trace is not None:
            self.trace.append(("step", a.copy(), obs.copy(), float(reward), bool(terminated), bool(truncated)))
        return obs, float(reward), bool(terminated), bool(truncated), info

    # ------------------------------------------------------------------ the framework's side
    @contextmanager
    def collection(self, limit: int) -> Iterator[None]:
        """A block in which at most ``limit`` steps may be taken, starting with a reset (no episode carries over)."""
        self._live, self._limit = False, int(limit)
        try:
            yield
        finally:
            self._limit = None
            self._live = False

    def steps_left(self) -> int | None:
        return self._limit

    def take_returns(self) -> list[float]:
        """Returns of the episodes finished since the last call (then forgotten)."""
        out, self.finished_returns = self.finished_returns, []
        return out

    def close(self) -> None:
        self.env.close()

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped
