"""Reference solution: the noise-injected expert step, one round's collection and the round."""
from __future__ import annotations

import numpy as np

from learning.demos import Dataset


def noisy_expert_step(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clean = self.expert_action(obs)
    sigma = self.cfg.noise_std * (self.action_high - self.action_low) / 2.0
    noisy = np.clip(clean + self.rng.normal(0.0, 1.0, self.act_dim) * sigma, self.action_low, self.action_high)
    return noisy.astype(np.float32), clean


def collect_round(self, n: int) -> Dataset:
    states, labels = [], []
    obs, _ = self.env.reset()
    while len(states) < n:
        noisy, clean = self.noisy_expert_step(obs)
        states.append(obs)
        labels.append(clean)
        obs, _, terminated, truncated, _ = self.env.step(noisy)
        if (terminated or truncated) and len(states) < n:
            obs, _ = self.env.reset()
    return Dataset(np.array(states), np.array(labels))


def train_round(self, round_index: int) -> float:
    noisy = self.collect_round(self.room(self.cfg.samples_per_round))
    self.dataset = self.dataset.concat(noisy)
    return self.train_on(self.dataset, self.cfg.epochs_per_round)
