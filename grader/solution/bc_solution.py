"""Reference solution: BC loss and training loop."""
from __future__ import annotations

import torch

from learning.demos import Dataset


def compute_loss(self, obs: torch.Tensor, expert_actions: torch.Tensor) -> torch.Tensor:
    obs_n = self.policy.normalize_obs(obs)
    act_n = self.policy.normalize_action(expert_actions)
    return -self.policy.dist(obs_n).log_prob(act_n).mean()


def fit(self, dataset: Dataset, epochs: int) -> float:
    obs = torch.as_tensor(dataset.obs, device=self.device)
    act = torch.as_tensor(dataset.actions, device=self.device)
    n = len(dataset)
    batch = min(self.cfg.batch_size, n)
    epoch_loss = float("nan")
    for _ in range(epochs):
        order = torch.as_tensor(self.rng.permutation(n), device=self.device)
        losses = []
        for start in range(0, n - batch + 1, batch):
            rows = order[start:start + batch]
            loss = self.compute_loss(obs[rows], act[rows])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        epoch_loss = sum(losses) / len(losses)
    return epoch_loss
