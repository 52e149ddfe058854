"""Behavioral cloning (BC): imitation as supervised learning.

Methods to edit: compute_loss (TODO 1, handout section 1).

Given expert demonstrations D = {(o_i, a*_i)}, BC fits the policy by maximum likelihood:

    min_θ  L(θ) = E_{(o, a*) ~ D} [ -log π_θ(a* | o) ]

Our policy is a diagonal Gaussian π_θ(a|o) = N(μ_θ(o), diag(σ_θ²)) over *normalized* actions
(each action dimension mapped from [low, high] to [-1, 1]), fed *normalized* observations
((o - mean) / std, statistics taken from the demos). For one sample the negative log-likelihood is

    -log π_θ(a|o) = Σ_j [ (a_j - μ_j)² / (2 σ_j²) + log σ_j + ½ log 2π ],

so BC is a σ-weighted regression onto the expert's actions that also learns how uncertain to be.

Because the learner is trained only on states the *expert* visits, its small mistakes take it to
states it has never seen, where it errs more: the errors compound (O(εT²) over a horizon T).
DAgger (dagger_agent.py) and noise injection (dart_agent.py) are two fixes.

Run:  python run.py --agent bc --env cheetah
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from learning.imitation import ImitationAgent, ImitationConfig


@dataclass
class BCConfig(ImitationConfig):
    """BC settings (a1/bc_<env>.yaml): demo_episodes, epochs, batch_size, learning_rate, ..."""


class BCAgent(ImitationAgent):
    config_class = BCConfig
    name = "bc"
    todo_methods = ("compute_loss",)  # what a student writes in this file

    def compute_loss(self, obs: torch.Tensor, expert_actions: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the expert's actions under the policy.

        Args:
            obs: raw observations, shape (B, obs_dim).
            expert_actions: the expert's actions in env units, shape (B, act_dim).
        Returns:
            loss: a scalar tensor (shape ()), differentiable w.r.t. the policy's parameters.
        """
        # ============================ TODO 1 (BC loss) ============================
        # Compute  loss = mean over the batch of  -log π(a*_n | o_n)  where
        #   o_n = self.policy.normalize_obs(obs)                      (B, obs_dim)
        #   a*_n = self.policy.normalize_action(expert_actions)        (B, act_dim), in [-1, 1]
        #   π(·|o_n) = self.policy.dist(o_n)   — a torch Distribution; .log_prob(a*_n) has shape (B,)
        # Both the observations and the actions must be normalized (the policy is evaluated that way).
        loss = torch.zeros((), requires_grad=True)  # placeholder: replace this line
        # ========================== END TODO 1 (BC loss) ==========================
        return loss

    def num_iterations(self) -> int:
        return max(1, -(-self.cfg.epochs // self.cfg.eval_every))

    def train(self) -> None:
        """BC: fit the policy to the first ``demo_episodes`` expert episodes for ``epochs`` epochs."""
        cfg = self.cfg
        if self.iteration == 0:
            self.dataset = self.demo_dataset()                # D = {(o, a*)} from the expert's demos
            self.fit_normalizer(self.dataset)                 # observation statistics from D
        for it in range(self.iteration, self.num_iterations()):
            epochs = min(cfg.eval_every, cfg.epochs - it * cfg.eval_every)
            loss = self.fit(self.dataset, epochs)             # minibatch Adam on compute_loss
            self.end_iteration(loss)                          # evaluate, log, checkpoint
