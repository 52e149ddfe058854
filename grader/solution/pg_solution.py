"""Reference solution of learning/pg_agent.py's TODO methods (instructors only)."""
from __future__ import annotations

import numpy as np
import torch

from learning.rollouts import Batch


def reward_to_go(self, rewards: np.ndarray, terminated: np.ndarray, ends: np.ndarray,
                 next_values: np.ndarray) -> np.ndarray:
    gamma = self.cfg.discount
    g = np.empty(len(rewards))
    future = 0.0
    for t in reversed(range(len(rewards))):
        if ends[t]:
            future = 0.0 if terminated[t] else float(next_values[t])
        future = float(rewards[t]) + gamma * future
        g[t] = future
    return g


def gae_advantages(self, rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
                   terminated: np.ndarray, ends: np.ndarray) -> np.ndarray:
    gamma, lam = self.cfg.discount, self.cfg.gae_lambda
    deltas = rewards + gamma * np.where(terminated, 0.0, next_values) - values
    adv = np.empty(len(rewards))
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = float(deltas[t]) + (0.0 if ends[t] else gamma * lam * running)
        adv[t] = running
    return adv


def actor_loss(self, obs: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    log_prob = self.policy.dist(self.policy.normalize_obs(obs)).log_prob(actions)
    return -(advantages * log_prob).mean()


def critic_loss(self, obs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return ((self.value(obs) - targets) ** 2).mean()


def estimate_advantages(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    if self.cfg.baseline:
        with torch.no_grad():
            values = self.value(torch.as_tensor(batch.obs)).numpy()
            next_values = self.value(torch.as_tensor(batch.next_obs)).numpy()
        y = self.reward_to_go(batch.rewards, batch.terminated, batch.ends, next_values)
        adv = self.gae_advantages(batch.rewards, values, next_values, batch.terminated, batch.ends)
    else:
        y = self.reward_to_go(batch.rewards, batch.terminated, batch.ends, np.zeros_like(batch.rewards))
        adv = y.copy()
    if self.cfg.normalize_advantages:
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    return adv, y


def update(self, batch: Batch) -> dict[str, float]:
    advantages, targets = self.estimate_advantages(batch)
    obs = torch.as_tensor(batch.obs)
    actions = torch.as_tensor(batch.actions)
    adv = torch.as_tensor(advantages, dtype=torch.float32)
    y = torch.as_tensor(targets, dtype=torch.float32)

    loss = self.actor_loss(obs, actions, adv)
    self.actor_optimizer.zero_grad(set_to_none=True)
    loss.backward()
    self.actor_optimizer.step()

    critic = float("nan")
    if self.cfg.baseline:
        for _ in range(self.cfg.critic_steps):
            c = self.critic_loss(obs, y)
            self.critic_optimizer.zero_grad(set_to_none=True)
            c.backward()
            self.critic_optimizer.step()
            critic = c.item()
    return {"actor_loss": loss.item(), "critic_loss": critic}
