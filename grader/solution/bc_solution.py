"""Reference solution: BC loss."""
from __future__ import annotations

import torch


def compute_loss(self, obs: torch.Tensor, expert_actions: torch.Tensor) -> torch.Tensor:
    obs_n = self.policy.normalize_obs(obs)
    act_n = self.policy.normalize_action(expert_actions)
    return -self.policy.dist(obs_n).log_prob(act_n).mean()
