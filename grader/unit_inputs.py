"""Seeded inputs of the unit checks (random policies, action bounds, observations) and the sampling statistics the
DAgger and noise-injection checks share. Every value comes from the check's own generator (no global RNG: checks run
in threads).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from envs.builder import env_dims, make_env, resolve_env_config
from learning.policy import GaussianMLPPolicy


@lru_cache(maxsize=None)
def task_dims(env: str) -> tuple[int, int]:
    """(obs_dim, act_dim) of the task named ``env`` (a short name such as "hopper")."""
    return env_dims(make_env(resolve_env_config(env)))


def random_policy(obs_dim: int, act_dim: int, rng: np.random.Generator, low: np.ndarray, high: np.ndarray,
                  squash: bool, out_scale: float) -> GaussianMLPPolicy:
    """A random policy whose every parameter comes from ``rng`` (no global RNG: checks run in threads)."""
    p = GaussianMLPPolicy(obs_dim, act_dim, [32, 32], low, high, squash_mean=squash,
                          log_std_init=float(rng.uniform(-1.5, -0.7)), learn_std=True)
    with torch.no_grad():
        for layer in p.net:
            if isinstance(layer, torch.nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.copy_(torch.as_tensor(rng.uniform(-bound, bound, tuple(layer.weight.shape))))
                layer.bias.copy_(torch.as_tensor(rng.uniform(-bound, bound, tuple(layer.bias.shape))))
        p.net[-1].weight.mul_(out_scale)
        p.net[-1].bias.mul_(out_scale)
        p.log_std.copy_(torch.as_tensor(rng.uniform(-1.6, -0.8, act_dim), dtype=torch.float32))
    p.obs_normalizer.fit(rng.normal(rng.normal(0, 2, obs_dim), rng.uniform(0.5, 3.0, obs_dim), (500, obs_dim)))
    p.eval()
    return p


def learner_policy(env: str, rng: np.random.Generator) -> tuple[GaussianMLPPolicy, np.ndarray, np.ndarray]:
    """A learner's policy on task ``env`` (unsquashed mean, as the imitation and policy-gradient agents build it)
    with random asymmetric action bounds (:func:`random_bounds`) and every weight from ``rng``: (policy, low, high)."""
    obs_dim, act_dim = task_dims(env)
    low, high = random_bounds(act_dim, rng)
    return random_policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=1.0), low, high


def split_rows(sizes: list[int], *arrays: np.ndarray) -> list[tuple[np.ndarray, ...]]:
    """The rows of ``arrays`` (each (sum(sizes), ...)) cut into consecutive batches of ``sizes``: one tuple per call
    of the method under test, in the order the child made the calls."""
    cuts = np.cumsum([0, *sizes])
    return [tuple(x[a:b] for x in arrays) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def random_bounds(act_dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric bounds whose half-ranges differ a lot between dimensions (one < 0.55, one > 1.8)."""
    center = rng.uniform(-0.5, 0.5, act_dim)
    half = rng.uniform(0.3, 3.0, act_dim)
    i, j = rng.choice(act_dim, size=2, replace=False)
    half[i], half[j] = rng.uniform(0.3, 0.55), rng.uniform(1.8, 3.0)
    return (center - half).astype(np.float32), (center + half).astype(np.float32)


def far_bounds(act_dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric bounds far from ±1 (|centre| in [1.5, 3], half-range in [0.3, 1.4]): an action in env units and
    the same action in normalized units differ by at least 0.8 in every dimension, so a unit mistake shows."""
    center = rng.choice([-1.0, 1.0], act_dim) * rng.uniform(1.5, 3.0, act_dim)
    half = rng.uniform(0.3, 1.4, act_dim)
    return (center - half).astype(np.float32), (center + half).astype(np.float32)


def sample_obs(p: GaussianMLPPolicy, n: int, rng: np.random.Generator) -> np.ndarray:
    mean = p.obs_normalizer.mean.numpy()
    std = np.sqrt(p.obs_normalizer.var.numpy())
    return (mean + std * rng.normal(size=(n, p.obs_dim))).astype(np.float32)


def to_normalized(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Env-unit actions (..., act_dim) → normalized units [-1, 1] (no clipping)."""
    return 2.0 * (x - low) / (high - low) - 1.0


def shared_draw(z: np.ndarray, inside: np.ndarray) -> str:
    """z, inside (..., act_dim): standardized draws. Names dimensions that share one draw ("" if independent)."""
    z2, in2 = z.reshape(-1, z.shape[-1]), inside.reshape(-1, z.shape[-1])
    pairs = []
    dims = z2.shape[1]
    for i in range(dims):
        for j in range(i + 1, dims):
            m = in2[:, i] & in2[:, j]
            if m.sum() < 30 or z2[m, i].std() < 1e-9 or z2[m, j].std() < 1e-9:
                continue
            r = float(np.corrcoef(z2[m, i], z2[m, j])[0, 1])
            if abs(r) > 0.5:
                pairs.append((i, j, r))
    if not pairs:
        return ""
    if len(pairs) == dims * (dims - 1) // 2:
        return (f"uses one draw shared by every action dimension (correlation between dimensions up to "
                f"{max(abs(r) for *_, r in pairs):.2f}; expected ≈ 0): draw one independent value per dimension "
                "(size=self.act_dim)")
    i, j, r = pairs[0]
    return (f"is correlated between action dimensions ({i} and {j}: correlation {r:.2f}; expected ≈ 0): draw one "
            "independent value per dimension (size=self.act_dim)")
