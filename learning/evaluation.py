"""Policy evaluation shared by run.py, the expert tools and the grader.

The policy is always run with its deterministic (mean) action; episode ``i`` resets with
``episode_seed(seed, purpose, i)`` so results are reproducible and seeds can be kept disjoint
from training (training uses purpose "train").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from envs.builder import episode_seed
from util.progress import progress_bar

# Held-out evaluation episodes (run.py --mode test, expert install, grader) reset with
# episode_seed(seed, TEST_PURPOSE, i); training uses the purpose "train", so the seeds never coincide.
TEST_PURPOSE = "test"
TEST_SEED = 0


@dataclass
class EvalResult:
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    terminated: list[bool] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns)) if self.returns else float("nan")

    @property
    def std(self) -> float:
        return float(np.std(self.returns)) if self.returns else float("nan")

    @property
    def survival_rate(self) -> float:
        """Fraction of episodes that did not terminate (fall) before the time limit."""
        return float(1.0 - np.mean(self.terminated)) if self.terminated else float("nan")


def evaluate(
    env,
    act_fn: Callable[[np.ndarray], np.ndarray],
    episodes: int,
    seed: int,
    purpose: str = "eval",
    progress: bool = False,
) -> EvalResult:
    """Run ``episodes`` episodes of ``act_fn`` (obs (obs_dim,) → env action (act_dim,))."""
    res = EvalResult()
    bar = progress_bar(progress, total=episodes, desc="evaluate", unit="ep", leave=False)
    for i in range(episodes):
        obs, _ = env.reset(seed=episode_seed(seed, purpose, i))
        total, length, term = 0.0, 0, False
        while True:
            obs, r, terminated, truncated, _ = env.step(act_fn(obs))
            total += float(r)
            length += 1
            if terminated or truncated:
                term = bool(terminated)
                break
        res.returns.append(total)
        res.lengths.append(length)
        res.terminated.append(term)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return res


def evaluate_policy(env, policy, episodes: int, seed: int, purpose: str = "eval", progress: bool = False) -> EvalResult:
    """Evaluate a :class:`GaussianMLPPolicy` with its deterministic mean action."""
    policy.eval()
    with torch.no_grad():
        return evaluate(env, lambda o: policy.act(o, deterministic=True), episodes, seed, purpose, progress)


def evaluate_mean_action(env, policy, episodes: int, seed: int, purpose: str = "eval") -> EvalResult:
    """Evaluate a :class:`GaussianMLPPolicy`'s mean action with the NumPy actor the grader evaluates with
    (``learning/actor.py``: float64 inside, about three times faster than torch on one observation); torch for an
    activation that actor does not have (elu, gelu), on a CPU copy of a policy kept on another device."""
    from learning.actor import ACTIVATIONS as ACTOR_ACTIVATIONS

    if policy.activation in ACTOR_ACTIVATIONS:
        return evaluate(env, policy.deterministic_actor().act, episodes, seed, purpose)
    if policy.action_low.device.type != "cpu":
        import copy

        policy = copy.deepcopy(policy).cpu()
    return evaluate_policy(env, policy, episodes, seed, purpose)
