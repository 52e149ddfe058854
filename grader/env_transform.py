"""The hidden change of coordinates of an assignment-2 performance check (NumPy only: the supervisor imports it).

A performance check of assignment 2 shows the child the task through a fixed transform drawn from the check's hidden
seed: the observation's coordinates permuted and their signs flipped, the action's coordinates permuted and flipped
among those with the same bounds. Learning is as easy as on the plain task (an observation normalizer and a linear
first layer absorb any permutation and sign), but a controller written before the check, for the plain task, is not
a controller of this one. The supervisor steps the real environment through it (the child holds no simulator); the
grader evaluates the trained policy through the same transform.
"""
from __future__ import annotations

import numpy as np


class EnvTransform:
    """o' = sign ⊙ o[perm] for observations; an action a' of the child is applied as a[act_perm] = act_sign ⊙ a'."""

    def __init__(self, seed: int, obs_dim: int, low: np.ndarray, high: np.ndarray):
        rng = np.random.default_rng(int(seed))
        self.obs_perm = rng.permutation(obs_dim)
        self.obs_sign = rng.choice([-1.0, 1.0], obs_dim)
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        act_dim = low.shape[0]
        self.act_perm = np.arange(act_dim)
        same_bounds = bool(np.all(low == low[0]) and np.all(high == high[0]))
        if same_bounds:                                      # only coordinates with equal bounds may trade places
            self.act_perm = rng.permutation(act_dim)
        symmetric = np.isclose(low, -high)
        self.act_sign = np.where(symmetric, rng.choice([-1.0, 1.0], act_dim), 1.0)
        self.low, self.high = low[self.act_perm].astype(np.float32), high[self.act_perm].astype(np.float32)
        self.env_low, self.env_high = low.astype(np.float32), high.astype(np.float32)   # the real task's bounds

    def observation(self, obs: np.ndarray) -> np.ndarray:
        """The real observation (obs_dim,) as the child sees it."""
        return (self.obs_sign * np.asarray(obs, np.float64)[self.obs_perm]).astype(np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        """The child's action (act_dim,) as the real environment receives it."""
        a = np.asarray(action, np.float64).reshape(-1)
        out = np.empty_like(a)
        out[self.act_perm] = self.act_sign * a
        return out.astype(np.float32)
