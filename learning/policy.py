"""Gaussian MLP policy with an observation normalizer and action scaling.

The network works in *normalized* spaces:
  * observations go through :class:`ObsNormalizer` (saved with the model);
  * actions live in ``[-1, 1]^act_dim``; :meth:`GaussianMLPPolicy.to_env_action` maps them to the
    env's bounds ``[low, high]`` and :meth:`GaussianMLPPolicy.normalize_action` maps env actions back.

``policy.dist(policy.normalize_obs(obs))`` is π(·|o), a diagonal Gaussian over normalized actions with
mean of shape (B, act_dim); the deterministic action is the mean (:meth:`GaussianMLPPolicy.mean_action`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.distributions import Independent, Normal

from learning.actor import ACTIVATIONS as ACTOR_ACTIVATIONS
from learning.actor import MLPActor
from learning.normalizer import ObsNormalizer

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


def mlp(in_dim: int, out_dim: int, hidden_sizes: Sequence[int], activation: str = "relu") -> nn.Sequential:
    """Plain MLP: Linear → act → ... → Linear (no output activation)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{activation}', choose from {sorted(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    last = in_dim
    for h in hidden_sizes:
        layers += [nn.Linear(last, int(h)), ACTIVATIONS[activation]()]
        last = int(h)
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class GaussianMLPPolicy(nn.Module):
    """π(a|o) = N(mean(o), diag(std²)) over normalized actions in [-1, 1].

    Args:
        obs_dim, act_dim: sizes of the flat observation and action vectors.
        hidden_sizes: widths of the hidden layers, e.g. (256, 256).
        action_low, action_high: env action bounds, shape (act_dim,).
        squash_mean: if True the mean is ``tanh(net(o))`` so it always lies in [-1, 1].
        log_std_init: initial value of the state-independent log standard deviation.
        learn_std: whether ``log_std`` is a trainable parameter.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int] = (256, 256),
        action_low: np.ndarray | Sequence[float] | None = None,
        action_high: np.ndarray | Sequence[float] | None = None,
        activation: str = "relu",
        squash_mean: bool = True,
        log_std_init: float = -1.0,
        learn_std: bool = True,
    ):
        super().__init__()
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.activation = activation
        self.squash_mean = bool(squash_mean)
        self.learn_std = bool(learn_std)
        self.obs_normalizer = ObsNormalizer(self.obs_dim)
        self.net = mlp(self.obs_dim, self.act_dim, self.hidden_sizes, activation)
        log_std = torch.full((self.act_dim,), float(log_std_init))
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)
        low = torch.as_tensor(-np.ones(act_dim) if action_low is None else np.asarray(action_low), dtype=torch.float32)
        high = torch.as_tensor(np.ones(act_dim) if action_high is None else np.asarray(action_high),
                               dtype=torch.float32)
        if low.shape != (self.act_dim,) or high.shape != (self.act_dim,):
            raise ValueError(f"action bounds must have shape ({self.act_dim},)")
        self.register_buffer("action_low", low)
        self.register_buffer("action_high", high)

    # ---- normalized space -------------------------------------------------------------
    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw obs (B, obs_dim) → normalized obs (B, obs_dim): (obs - mean) / std, clipped."""
        return self.obs_normalizer(obs)

    def dist(self, obs_n: torch.Tensor) -> Independent:
        """π(·|o) from *normalized* obs (B, obs_dim): Independent(Normal(mean (B, act_dim), std (B, act_dim)), 1).

        ``dist(obs_n).log_prob(a_n)`` gives log π(a_n|o) of shape (B,) for normalized actions a_n (B, act_dim).
        """
        out = self.net(obs_n)
        mean = torch.tanh(out) if self.squash_mean else out
        std = torch.exp(self.log_std.clamp(-20.0, 2.0)).expand_as(mean)
        return Independent(Normal(mean, std), 1)

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw obs (B, obs_dim) → mean normalized action (B, act_dim)."""
        out = self.net(self.obs_normalizer(obs))
        return torch.tanh(out) if self.squash_mean else out

    # ---- env space ---------------------------------------------------------------------
    def to_env_action(self, norm_action: torch.Tensor) -> torch.Tensor:
        """Normalized action in [-1, 1] (..., act_dim) → env action in [low, high]."""
        a = norm_action.clamp(-1.0, 1.0)
        return self.action_low + (a + 1.0) * 0.5 * (self.action_high - self.action_low)

    def normalize_action(self, env_action: torch.Tensor) -> torch.Tensor:
        """Env action (B, act_dim) in [low, high] → normalized action (B, act_dim) in [-1, 1]."""
        span = (self.action_high - self.action_low).clamp_min(1e-8)
        return (2.0 * (env_action - self.action_low) / span - 1.0).clamp(-1.0, 1.0)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True,
            generator: torch.Generator | np.random.Generator | None = None) -> np.ndarray:
        """numpy obs (obs_dim,) or (B, obs_dim) → numpy env action (act_dim,) or (B, act_dim).

        deterministic=True returns the mean; otherwise a sample mean + std·ε (ε from ``generator``),
        clipped to the action bounds.
        """
        x = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.action_low.device)
        single = x.dim() == 1
        if single:
            x = x.unsqueeze(0)
        mean = self.mean_action(x)
        if deterministic:
            a = mean
        else:
            std = torch.exp(self.log_std.clamp(-20.0, 2.0))
            if isinstance(generator, np.random.Generator):
                eps = torch.as_tensor(generator.standard_normal(tuple(mean.shape)), dtype=torch.float32,
                                      device=mean.device)
            else:
                eps = torch.randn(mean.shape, generator=generator).to(mean.device)
            a = mean + std * eps
        out = self.to_env_action(a).cpu().numpy()
        return out[0] if single else out

    def actor_arrays(self) -> dict[str, np.ndarray]:
        """The deterministic mean action as plain arrays (:class:`learning.actor.MLPActor`'s format)."""
        if self.activation not in ACTOR_ACTIVATIONS:
            raise ValueError(f"a plain-array actor supports {' and '.join(ACTOR_ACTIVATIONS)} activations, "
                             f"not {self.activation}")
        linear = [m for m in self.net if isinstance(m, nn.Linear)]
        arrays = {f"w{i}": m.weight.detach().cpu().numpy().copy() for i, m in enumerate(linear)}
        arrays.update({f"b{i}": m.bias.detach().cpu().numpy().copy() for i, m in enumerate(linear)})
        norm = self.obs_normalizer
        arrays.update(n_layers=np.array(len(linear)), activation=np.array(self.activation),
                      squash=np.array(self.squash_mean), obs_mean=norm.mean.cpu().numpy().copy(),
                      obs_var=norm.var.cpu().numpy().copy(), obs_eps=np.array(norm.eps, np.float32),
                      obs_clip=np.array(norm.clip, np.float32), action_low=self.action_low.cpu().numpy().copy(),
                      action_high=self.action_high.cpu().numpy().copy())
        return arrays

    def deterministic_actor(self) -> MLPActor:
        """A NumPy copy of the mean action (float64 inside): what the expert oracle and the grader's evaluation run."""
        return MLPActor(self.actor_arrays())

    # ---- (de)serialisation -------------------------------------------------------------
    def spec(self) -> dict:
        """Plain-data description used to rebuild the policy from a checkpoint."""
        return {
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "hidden_sizes": list(self.hidden_sizes),
            "activation": self.activation,
            "squash_mean": self.squash_mean,
            "learn_std": self.learn_std,
        }

    @classmethod
    def from_spec(cls, spec: dict) -> "GaussianMLPPolicy":
        return cls(
            obs_dim=spec["obs_dim"],
            act_dim=spec["act_dim"],
            hidden_sizes=spec["hidden_sizes"],
            activation=spec.get("activation", "relu"),
            squash_mean=spec.get("squash_mean", True),
            learn_std=spec.get("learn_std", True),
        )

