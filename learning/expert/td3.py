"""TD3 (Fujimoto et al., 2018) expert trainer, written for this project.

Twin critics Q1, Q2 are trained towards the clipped double-Q target
    y = r + γ (1 - terminated) min_j Q'_j(s', clip(μ'(s') + clip(ε, -c, c), -1, 1)),  ε ~ N(0, σ_target²),
and the deterministic actor μ maximises Q1(s, μ(s)) every ``policy_delay`` critic updates; target
networks track the online ones by Polyak averaging with rate τ.

The actor is a :class:`GaussianMLPPolicy` with a tanh-squashed mean and a fixed std equal to the
exploration noise, so the expert is an ordinary policy file that any agent can load. The loop, replay,
checkpoints (exact resume and warm start) and log are :class:`learning.expert.off_policy.OffPolicyTrainer`'s.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from envs.builder import EnvConfig
from learning.expert.networks import QEnsemble, adam
from learning.expert.off_policy import LOG_COLUMNS, OffPolicyConfig, OffPolicyTrainer
from learning.policy import GaussianMLPPolicy

__all__ = ["LOG_COLUMNS", "TD3Config", "TD3Trainer"]


@dataclass
class TD3Config(OffPolicyConfig):
    """TD3's settings (``trainer:`` section of ``data/agents/expert_<env>.yaml`` with ``algo: td3``)."""

    algo: str = "td3"
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    expl_noise: float = 0.1            # std of Gaussian exploration noise (normalized action units)
    policy_noise: float = 0.2          # target policy smoothing noise std
    noise_clip: float = 0.5
    policy_delay: int = 2
    normalize_obs: bool = False        # keep running obs statistics inside the actor

    ALGO = "td3"

    def validate(self) -> None:
        super().validate()
        if self.policy_delay <= 0:
            raise ValueError("trainer.policy_delay must be positive")
        for name in ("actor_lr", "critic_lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"trainer.{name} must be positive")
        for name in ("expl_noise", "policy_noise", "noise_clip"):
            if getattr(self, name) < 0:
                raise ValueError(f"trainer.{name} must be at least 0")


class TD3Trainer(OffPolicyTrainer):
    """Trains an expert policy on one env with TD3; see the module docstring."""

    ALGO = "td3"

    def __init__(self, env_cfg: EnvConfig, cfg: TD3Config, out_dir: str | os.PathLike, progress: bool = True,
                 quiet: bool = False):
        super().__init__(env_cfg, cfg, out_dir, progress=progress, quiet=quiet)
        self.actor = GaussianMLPPolicy(
            self.obs_dim, self.act_dim, cfg.hidden_sizes, self.action_low, self.action_high,
            squash_mean=True, log_std_init=math.log(cfg.expl_noise) if cfg.expl_noise > 0 else -5.0, learn_std=False,
        )
        self.critic = QEnsemble(self.obs_dim, self.act_dim, cfg.hidden_sizes, n=2)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = adam(self.actor.net.parameters(), cfg.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)

    def saved_modules(self) -> dict[str, Any]:
        return {"actor": self.actor, "critic": self.critic, "actor_target": self.actor_target,
                "critic_target": self.critic_target, "actor_opt": self.actor_opt, "critic_opt": self.critic_opt}

    def policy(self) -> GaussianMLPPolicy:
        return self.actor

    @property
    def uses_obs_statistics(self) -> bool:
        return self.cfg.normalize_obs

    def update_obs_statistics(self, episode_obs: np.ndarray) -> None:
        self.actor.obs_normalizer.update(episode_obs)

    def explore_action(self, obs: np.ndarray) -> np.ndarray:
        # a = clip(μ(s) + ε, -1, 1),  ε ~ N(0, expl_noise²)
        with torch.no_grad():
            mean = self.actor.mean_action(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0].numpy()
        return mean + self.rng.normal(0.0, self.cfg.expl_noise, self.act_dim)

    def update(self) -> None:
        cfg = self.cfg
        obs, act, rew, nobs, term = self.sample_batch()
        norm = self.actor.obs_normalizer
        with torch.no_grad():
            obs_n, nobs_n = norm(obs), norm(nobs)
            noise = (torch.randn_like(act) * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_act = (torch.tanh(self.actor_target.net(nobs_n)) + noise).clamp(-1.0, 1.0)
            target_q = self.critic_target(nobs_n, next_act).min(dim=0).values
            y = rew + cfg.gamma * (1.0 - term) * target_q                      # (B,)
        q = self.critic(obs_n, act)                                            # (2, B)
        critic_loss = F.mse_loss(q, y.unsqueeze(0).expand_as(q), reduction="none").mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.updates += 1
        self.last_losses["Critic_Loss"] = float(critic_loss.detach())
        self.last_losses["Q_Mean"] = float(q.detach().mean())

        if self.updates % cfg.policy_delay == 0:
            self.critic.requires_grad_(False)
            actor_loss = -self.critic.member(obs_n, torch.tanh(self.actor.net(obs_n)), 0).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            self.critic.requires_grad_(True)
            self.last_losses["Actor_Loss"] = float(actor_loss.detach())
            with torch.no_grad():
                for tgt, src in ((self.actor_target.net, self.actor.net), (self.critic_target, self.critic)):
                    tp, sp = list(tgt.parameters()), list(src.parameters())
                    torch._foreach_lerp_(tp, sp, cfg.tau)
                self.actor_target.obs_normalizer.load_state_dict(self.actor.obs_normalizer.state_dict())
