"""Reference solution: DAgger's action choice, aggregation, one round's collection and the round."""
from __future__ import annotations

import numpy as np

from learning.demos import Dataset


def select_action(self, obs: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    expert_label = self.expert_action(obs)
    if self.rng.random() < beta:
        return expert_label, expert_label
    return self.learner_action(obs), expert_label


def aggregate(self, dataset: Dataset, visited_obs: np.ndarray, expert_labels: np.ndarray) -> Dataset:
    return dataset.concat(Dataset(visited_obs, expert_labels))


def collect_round(self, n: int, beta: float) -> Dataset:
    states = np.zeros((n, self.obs_dim), np.float32)
    labels = np.zeros((n, self.act_dim), np.float32)
    obs, _ = self.env.reset()
    for t in range(n):
        action, labels[t] = self.select_action(obs, beta)
        states[t] = obs
        obs, _, terminated, truncated, _ = self.env.step(action)
        if (terminated or truncated) and t + 1 < n:
            obs, _ = self.env.reset()
    return Dataset(states, labels)


def train_round(self, round_index: int) -> float:
    beta = self.beta(round_index)
    visited = self.collect_round(self.room(self.cfg.samples_per_round), beta)
    self.dataset = self.aggregate(self.dataset, visited.obs, visited.actions)
    return self.train_on(self.dataset, self.cfg.epochs_per_round)
