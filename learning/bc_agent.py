"""Behavioral cloning (BC): imitation as supervised learning.

Methods to edit (handout section 1, Algorithm 1):
    compute_loss   TODO 1a  the negative log-likelihood of the expert's actions      (Algorithm 1, line 4)
    fit            TODO 1b  the supervised training loop: epochs of shuffled minibatches (Algorithm 1, lines 2-6)

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

Run:  python run.py --agent bc --env cheetah        Test:  python -m grader --self-check
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from learning.demos import Dataset
from learning.imitation import ImitationAgent, ImitationConfig


@dataclass
class BCConfig(ImitationConfig):
    """BC settings (a1/bc_<env>.yaml): demo_episodes, epochs, batch_size, learning_rate, ..."""


class BCAgent(ImitationAgent):
    config_class = BCConfig
    name = "bc"
    todo_methods = {"compute_loss": "core", "fit": "full"}  # what a student writes in this file (and in which scope)

    def compute_loss(self, obs: torch.Tensor, expert_actions: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the expert's actions under the policy.

        Args:
            obs: raw observations, shape (B, obs_dim).
            expert_actions: the expert's actions in env units, shape (B, act_dim).
        Returns:
            loss: a scalar tensor (shape ()), differentiable w.r.t. the policy's parameters.
        """
        # ==================== TODO 1a (BC loss; Algorithm 1, line 4) ====================
        # The loss is  L = (1/B) Σ_n -log π(a*_n | o_n),  computed in the policy's own units:
        #   - the observations normalized by the policy's observation normalizer, (B, obs_dim);
        #   - the expert's actions mapped from [low, high] to [-1, 1], (B, act_dim);
        #   - π(·|o) is the torch Distribution the policy builds from normalized observations: a diagonal
        #     Gaussian whose log-density of a whole action vector has shape (B,) (summed over dimensions).
        # Framework pieces (learning/policy.py): self.policy.normalize_obs, self.policy.normalize_action,
        # self.policy.dist. Keep it differentiable: no .detach(), .item() or NumPy on the way.
        loss = torch.zeros((), requires_grad=True)  # placeholder: replace this line
        # ================== END TODO 1a (BC loss; Algorithm 1, line 4) ==================
        return loss

    def fit(self, dataset: Dataset, epochs: int) -> float:
        """Minimize ``self.compute_loss`` over ``dataset`` for ``epochs`` passes (epochs) of minibatch gradient steps.

        Args:
            dataset: the training pairs, len N >= 1: ``dataset.obs`` (N, obs_dim) raw observations,
                ``dataset.actions`` (N, act_dim) expert actions in env units (NumPy float32 arrays).
            epochs: number of passes over the dataset, >= 1.
        Returns:
            the mean of the minibatch losses of the last epoch, a Python float (the log's Loss column).
        """
        # ============== TODO 1b (BC training loop; Algorithm 1, lines 2-6) ==============
        # One epoch is one pass over the whole dataset in a fresh random order: every pair is used exactly once,
        # in minibatches of B = min(self.cfg.batch_size, N) pairs (a last batch smaller than B may be used or
        # dropped). For each minibatch: the loss of TODO 1a on that batch (torch tensors: torch.as_tensor turns the
        # NumPy rows into float32 tensors), then one gradient step of self.optimizer (Adam over the policy's
        # parameters): clear the old gradients, back-propagate this loss, update. Gradients must not accumulate
        # across batches.
        # Randomness: draw each epoch's order from self.rng (a seeded np.random.Generator, so that the same seed
        # gives the same run and a resumed run the same as an uninterrupted one).
        # Return the average minibatch loss of the last epoch as a float (detach it from the graph first).
        last_epoch_loss = float("nan")  # placeholder: replace
        # ============ END TODO 1b (BC training loop; Algorithm 1, lines 2-6) ============
        return last_epoch_loss

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
            loss = self.train_on(self.dataset, epochs)        # fit, on compute_loss (the TODO methods above)
            self.end_iteration(loss)                          # evaluate, log, checkpoint
