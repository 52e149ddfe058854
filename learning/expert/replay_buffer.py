"""Fixed-capacity replay buffer of transitions, stored as numpy arrays."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from util.fsio import atomic_save


class ReplayBuffer:
    """Ring buffer of (obs, action, reward, next_obs, terminated) transitions.

    ``terminated`` (not ``truncated``) is stored: a time-limit cut is not a real terminal
    state, so the critic still bootstraps through it.
    Actions are stored in normalized units ([-1, 1]).
    """

    FIELDS = ("obs", "actions", "rewards", "next_obs", "terminated")

    def __init__(self, obs_dim: int, act_dim: int, capacity: int):
        if capacity <= 0:
            raise ValueError("replay capacity must be positive")
        self.obs_dim, self.act_dim, self.capacity = obs_dim, act_dim, int(capacity)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, act_dim), np.float32)
        self.rewards = np.zeros((capacity,), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.terminated = np.zeros((capacity,), np.float32)
        self.ptr = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: np.ndarray, reward: float, next_obs: np.ndarray, terminated: bool) -> None:
        i = self.ptr
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = float(terminated)
        self.ptr = (self.ptr + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample_indices(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.size, size=batch_size)

    def get(self, idx: np.ndarray) -> tuple[np.ndarray, ...]:
        """Arrays for indices ``idx`` (B,): obs (B,obs_dim), actions (B,act_dim), rewards (B,), next_obs,
        terminated (B,)."""
        return self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminated[idx]

    def save(self, path: str | os.PathLike) -> None:
        """Write the filled part to ``path`` (.npz, uncompressed, atomically)."""
        n = self.size

        def save(tmp: Path) -> None:
            np.savez(tmp, obs=self.obs[:n], actions=self.actions[:n], rewards=self.rewards[:n],
                     next_obs=self.next_obs[:n], terminated=self.terminated[:n],
                     meta=np.array([self.ptr, self.size, self.capacity], np.int64))

        atomic_save(path, save, "replay file")

    def load(self, path: str | os.PathLike) -> None:
        with np.load(path, allow_pickle=False) as d:
            ptr, size, capacity = (int(v) for v in d["meta"])
            if capacity != self.capacity or d["obs"].shape[1] != self.obs_dim or d["actions"].shape[1] != self.act_dim:
                raise ValueError(f"replay file {path} does not match this buffer (capacity/obs/action sizes differ)")
            for name in self.FIELDS:
                getattr(self, name)[:size] = d[name]
            self.ptr, self.size = ptr, size
