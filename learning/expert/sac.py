"""SAC (Haarnoja et al., 2018) and TQC (Kuznetsov et al., 2020) expert trainers, written for this project.

SAC: a squashed Gaussian actor a = tanh(u), u ~ N(μ(s), σ(s)²), maximises
    E[min_j Q_j(s, a) - α log π(a|s)],
twin critics regress onto y = r + γ (1 - terminated) (min_j Q'_j(s', a') - α log π(a'|s')), a' ~ π(·|s'),
and the temperature α is tuned so that the policy's entropy stays near ``target_entropy`` (default -act_dim):
    loss(log α) = -log α · (log π(a|s) + target_entropy).

TQC replaces each critic by ``n_quantiles`` quantiles of the return distribution Z_j(s, a). The target pools
the quantiles of all target critics at (s', a'), sorts them and drops the ``drop_per_net · n_critics``
largest (this controls overestimation), and every critic's quantiles regress onto the pooled atoms with
the quantile Huber loss; the actor maximises the mean of all quantiles.

The actor's hidden layers and mean head are exactly a :class:`GaussianMLPPolicy`'s network, so the
deterministic expert (``tanh(μ(s))``) is written as an ordinary policy file by :meth:`SACTrainer.policy`;
the state-dependent std is used for training only. The loop, replay, checkpoints (exact resume and warm
start) and log are :class:`learning.expert.off_policy.OffPolicyTrainer`'s.
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
from torch import nn

from envs.builder import EnvConfig
from learning.expert.networks import QEnsemble, TensorHolder, adam
from learning.expert.off_policy import OffPolicyConfig, OffPolicyTrainer
from learning.normalizer import ObsNormalizer
from learning.policy import GaussianMLPPolicy, mlp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


@dataclass
class SACConfig(OffPolicyConfig):
    """SAC's settings (``trainer:`` section of ``data/agents/expert_<env>.yaml`` with ``algo: sac``)."""

    algo: str = "sac"
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    init_alpha: float = 1.0
    target_entropy: float | None = None            # None: -act_dim
    n_critics: int = 2
    critic_hidden_sizes: list[int] | None = None   # None: the actor's hidden_sizes

    ALGO = "sac"

    def validate(self) -> None:
        super().validate()
        for name in ("actor_lr", "critic_lr", "alpha_lr", "init_alpha"):
            if getattr(self, name) <= 0:
                raise ValueError(f"trainer.{name} must be positive")
        if self.n_critics < 1:
            raise ValueError("trainer.n_critics must be at least 1")
        if self.critic_hidden_sizes is not None and (not self.critic_hidden_sizes
                                                     or any(h <= 0 for h in self.critic_hidden_sizes)):
            raise ValueError("trainer.critic_hidden_sizes must be a non-empty list of positive widths (or absent)")


@dataclass
class TQCConfig(SACConfig):
    """TQC's settings (``algo: tqc``): SAC's plus the quantile critics'."""

    algo: str = "tqc"
    n_quantiles: int = 25
    drop_per_net: int = 2      # largest target atoms dropped per critic

    ALGO = "tqc"

    def validate(self) -> None:
        super().validate()
        if self.n_quantiles < 1 or not 0 <= self.drop_per_net < self.n_quantiles:
            raise ValueError("trainer.n_quantiles must be at least 1 and drop_per_net in [0, n_quantiles)")


class SquashedGaussianActor(nn.Module):
    """π(a|s): a = tanh(u), u ~ N(μ(s), σ(s)²). One MLP outputs [μ (act_dim), raw log σ (act_dim)].

    Observations pass through a fixed :class:`ObsNormalizer` (mean 0, var 1: a clip to [-10, 10]), as in
    the exported :class:`GaussianMLPPolicy`.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int]):
        super().__init__()
        self.act_dim = act_dim
        self.obs_normalizer = ObsNormalizer(obs_dim)
        self.net = mlp(obs_dim, 2 * act_dim, hidden_sizes)

    def forward(self, obs_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized obs (B, obs_dim) → μ (B, act_dim), log σ (B, act_dim) in [LOG_STD_MIN, LOG_STD_MAX]."""
        mu, raw = self.net(obs_n).split(self.act_dim, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw) + 1.0)
        return mu, log_std

    def sample(self, obs_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample a (B, act_dim) in (-1, 1) and log π(a|s) (B,).

        log π(a|s) = log N(u; μ, σ²) - Σ_i log(1 - tanh(u_i)²),
        with log(1 - tanh(u)²) = 2 (log 2 - u - softplus(-2u)) (stable for large |u|).
        """
        mu, log_std = self(obs_n)
        std = log_std.exp()
        u = mu + std * torch.randn_like(mu)
        log_prob = (-0.5 * ((u - mu) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
        return torch.tanh(u), log_prob


class SACTrainer(OffPolicyTrainer):
    """Trains an expert policy on one env with SAC; see the module docstring."""

    ALGO = "sac"

    def __init__(self, env_cfg: EnvConfig, cfg: SACConfig, out_dir: str | os.PathLike, progress: bool = True,
                 quiet: bool = False):
        super().__init__(env_cfg, cfg, out_dir, progress=progress, quiet=quiet)
        self.actor = SquashedGaussianActor(self.obs_dim, self.act_dim, cfg.hidden_sizes)
        self.critic = QEnsemble(self.obs_dim, self.act_dim, cfg.critic_hidden_sizes or cfg.hidden_sizes,
                                n=cfg.n_critics, out_dim=self.critic_out_dim)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.log_alpha = TensorHolder(torch.tensor(math.log(cfg.init_alpha)))
        self.target_entropy = -float(self.act_dim) if cfg.target_entropy is None else float(cfg.target_entropy)
        self.actor_opt = adam(self.actor.net.parameters(), cfg.actor_lr)
        self.critic_opt = adam(self.critic.parameters(), cfg.critic_lr)
        self.alpha_opt = adam(self.log_alpha.parameters(), cfg.alpha_lr)

    critic_out_dim = 1

    def saved_modules(self) -> dict[str, Any]:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target,
                "log_alpha": self.log_alpha, "actor_opt": self.actor_opt, "critic_opt": self.critic_opt,
                "alpha_opt": self.alpha_opt}

    def policy(self) -> GaussianMLPPolicy:
        """The deterministic actor tanh(μ(s)) as a plain policy (fixed exploration std 0.1, unused by experts)."""
        p = GaussianMLPPolicy(self.obs_dim, self.act_dim, self.cfg.hidden_sizes, self.action_low, self.action_high,
                              squash_mean=True, log_std_init=math.log(0.1), learn_std=False)
        sd = {k: v.detach().clone() for k, v in self.actor.net.state_dict().items()}
        last = max(int(k.split(".")[0]) for k in sd)
        for name in ("weight", "bias"):                 # the mean head: the first act_dim outputs
            sd[f"{last}.{name}"] = sd[f"{last}.{name}"][: self.act_dim].clone()
        p.net.load_state_dict(sd)
        p.obs_normalizer.load_state_dict(self.actor.obs_normalizer.state_dict())
        return p.eval()

    def explore_action(self, obs: np.ndarray) -> np.ndarray:
        # a ~ π(·|s): the stochastic policy explores by itself
        with torch.no_grad():
            a, _ = self.actor.sample(self.actor.obs_normalizer(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)))
        return a[0].numpy()

    # ---- the critic's target and losses (TQC overrides these three) -----------------------------
    def critic_target_values(self, nobs_n: torch.Tensor, next_act: torch.Tensor) -> torch.Tensor:
        """min_j Q'_j(s', a'): (B,)."""
        return self.critic_target(nobs_n, next_act).min(dim=0).values

    def critic_loss(self, q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """q (n, B), targets y (B,) → Σ_j mean_B (Q_j - y)²."""
        return F.mse_loss(q, y.unsqueeze(0).expand_as(q), reduction="none").mean(1).sum()

    def actor_q(self, obs_n: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The value the actor maximises at (s, a): min_j Q_j(s, a), (B,)."""
        return self.critic(obs_n, act).min(dim=0).values

    def update(self) -> None:
        cfg = self.cfg
        obs, act, rew, nobs, term = self.sample_batch()
        norm = self.actor.obs_normalizer
        alpha = self.log_alpha.value.exp().detach()
        with torch.no_grad():
            obs_n, nobs_n = norm(obs), norm(nobs)
            next_act, next_logp = self.actor.sample(nobs_n)
            # y = r + γ (1 - d) (Q'(s', a') - α log π(a'|s')): (B,) for SAC, (B, atoms) for TQC
            soft_q = self.critic_target_values(nobs_n, next_act) - alpha * _expand_like(next_logp, self.critic_out_dim)
            k = self.critic_out_dim
            y = _expand_like(rew, k) + cfg.gamma * _expand_like(1.0 - term, k) * soft_q
        q = self.critic(obs_n, act)
        critic_loss = self.critic_loss(q, y)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()

        self.critic.requires_grad_(False)
        new_act, logp = self.actor.sample(obs_n)
        actor_loss = (alpha * logp - self.actor_q(obs_n, new_act)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        self.critic.requires_grad_(True)

        alpha_loss = -(self.log_alpha.value * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()

        with torch.no_grad():
            torch._foreach_lerp_(list(self.critic_target.parameters()), list(self.critic.parameters()), cfg.tau)
        self.updates += 1
        self.last_losses.update({"Critic_Loss": float(critic_loss.detach()), "Actor_Loss": float(actor_loss.detach()),
                                 "Q_Mean": float(q.detach().mean()), "Alpha": float(alpha)})


class TQCTrainer(SACTrainer):
    """Trains an expert policy on one env with TQC (SAC with truncated quantile critics)."""

    ALGO = "tqc"

    @property
    def critic_out_dim(self) -> int:  # type: ignore[override]
        return self.cfg.n_quantiles

    def critic_target_values(self, nobs_n: torch.Tensor, next_act: torch.Tensor) -> torch.Tensor:
        """The pooled target atoms: all critics' quantiles at (s', a'), sorted, the largest dropped: (B, kept)."""
        z = self.critic_target(nobs_n, next_act)                               # (n, B, M)
        atoms = z.permute(1, 0, 2).reshape(z.shape[1], -1).sort(dim=1).values  # (B, n·M)
        kept = atoms.shape[1] - self.cfg.drop_per_net * self.cfg.n_critics
        return atoms[:, :kept]

    def critic_loss(self, q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Quantile Huber loss of the critics' quantiles q (n, B, M) against target atoms y (B, K).

        ρ_τ(δ) = |τ_m - 1{δ < 0}| · Huber(δ), δ = y_k - q_m, τ_m = (2m + 1) / 2M;
        averaged over atoms and batch, summed over critics (see :class:`QuantileHuberLoss`).
        """
        return QuantileHuberLoss.apply(q, y)

    def actor_q(self, obs_n: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The mean of all critics' quantiles at (s, a): (B,)."""
        return self.critic(obs_n, act).mean(dim=(0, 2))


class QuantileHuberLoss(torch.autograd.Function):
    """Σ_j mean_{b,m,k} |τ_m - 1{δ < 0}| · Huber(δ),  δ = y[b, k] - q[j, b, m], with its gradient in one pass.

    The (n, B, M, K) tensor of pairs is the cost of TQC; autograd would keep and revisit several copies of it.
    Here the forward computes the loss and the gradient together: with c = clip(δ, -1, 1),
    Huber(δ) = c (δ - c / 2) and ∂Huber/∂q = -c, so ∂loss/∂q[j, b, m] = -Σ_k w · c / (B·M·K).
    The targets y are constants (no gradient).
    """

    @staticmethod
    def forward(ctx, q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _, b, m = q.shape
        count = b * m * y.shape[-1]
        tau = ((torch.arange(m, dtype=q.dtype) + 0.5) / m).view(1, 1, m, 1)
        delta = y.detach()[None, :, None, :] - q.detach()[..., None]          # (n, B, M, K)
        weight = torch.where(delta < 0, 1.0 - tau, tau)                       # |τ - 1{δ<0}|
        c = delta.clamp(-1.0, 1.0)
        huber = delta.sub_(c, alpha=0.5).mul_(c)                               # in place: c (δ - c/2)
        loss = (weight * huber).sum(dim=(1, 2, 3)).sum() / count
        ctx.save_for_backward(weight.mul_(c).sum(-1).div_(-count))             # ∂loss/∂q: (n, B, M)
        return loss

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor, None]:
        (grad_q,) = ctx.saved_tensors
        return grad_out * grad_q, None


def _expand_like(x: torch.Tensor, out_dim: int) -> torch.Tensor:
    """(B,) → (B,) when out_dim == 1, else (B, 1) to broadcast against (B, atoms)."""
    return x if out_dim == 1 else x.unsqueeze(-1)
