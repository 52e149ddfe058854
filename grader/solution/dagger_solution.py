"""Reference solution: DAgger's action choice and aggregation."""
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
