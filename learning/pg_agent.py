"""The policy gradient: REINFORCE with reward-to-go, a learned baseline and generalized advantage estimation (GAE).

Methods to edit (handout a2, section 2, Algorithm 2):
    reward_to_go          TODO 2a  discounted reward-to-go over concatenated episodes     (Algorithm 2, line 4)
    gae_advantages        TODO 2b  GAE(λ) advantages from the critic's values             (Algorithm 2, line 5)
    actor_loss            TODO 2c  the surrogate loss whose gradient is the policy gradient (Algorithm 2, line 7)
    critic_loss           TODO 2d  the critic's squared error                             (Algorithm 2, line 8)
    estimate_advantages   TODO 2e  values → advantages and critic targets for a batch     (Algorithm 2, lines 3-6)
    update                TODO 2f  one actor step and critic_steps critic steps           (Algorithm 2, lines 3-8)

The objective is the expected return J(θ) = E_{τ~π_θ}[Σ_t γ^t r_t]. Its gradient (the lecture's REINFORCE) is

    ∇_θ J(θ) = E_τ [ Σ_t ∇_θ log π_θ(a_t|s_t) · Â_t ],

estimated from the T steps of a batch. Â_t says how much better a_t did than usual in s_t; three estimates, each
with less variance than the last:

    reward-to-go   Â_t = G_t = Σ_{t'≥t} γ^{t'-t} r_{t'}          (only rewards after a_t: a_t cannot change the past)
    baseline       Â_t = G_t − V_φ(s_t)                          (V_φ fit to G: subtracting it keeps the mean)
    GAE(λ)         Â_t = Σ_{l≥0} (γλ)^l δ_{t+l},  δ_t = r_t + γ V_φ(s_{t+1}) − V_φ(s_t)

The sums stop at the end of each episode. An episode that *terminated* has no future (V(s_{t+1}) = 0); one that was
*truncated* (time limit, end of the batch) would have gone on, and V_φ(s_{t+1}) stands in for what is missing.

Run:  python run.py --agent pg --env pendulum        Test:  python -m grader --assignment a2 --self-check
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from learning.policy_gradient import PolicyGradientAgent
from learning.policy_search import PolicySearchConfig, check_range
from learning.rollouts import Batch


@dataclass
class PGConfig(PolicySearchConfig):
    """Policy-gradient settings (a2/pg_<env>.yaml)."""

    batch_size: int = 5000            # environment steps per iteration (all envs together)
    num_envs: int = 5                 # envs collecting side by side; each takes batch_size / num_envs steps
    discount: float = 0.99            # γ
    gae_lambda: float = 0.97          # λ of GAE (1: Â = G − V; 0: Â = δ)
    baseline: bool = True             # learn V_φ and use it (False: Â = G, no critic)
    normalize_advantages: bool = True  # Â ← (Â − mean) / (std + 1e-8) over the batch
    normalize_obs: bool = True        # running observation statistics (updated after each batch)
    learning_rate: float = 0.005      # the actor's Adam step size
    critic_learning_rate: float = 0.005
    critic_steps: int = 5             # critic gradient steps per batch (full batch each)
    log_std_init: float = -0.5        # initial log σ of the Gaussian policy (normalized action units)

    def validate(self) -> None:
        super().validate()
        check_range(self, "discount", 0.0, 1.0)
        check_range(self, "gae_lambda", 0.0, 1.0)
        if self.num_envs < 1:
            raise ValueError(f"num_envs must be at least 1 (got {self.num_envs})")
        if self.batch_size < 1 or self.batch_size % self.num_envs:
            raise ValueError(f"batch_size must be a positive multiple of num_envs = {self.num_envs} "
                             f"(got {self.batch_size})")
        for key in ("learning_rate", "critic_learning_rate"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be positive (got {getattr(self, key):g})")
        if self.critic_steps < (1 if self.baseline else 0):
            raise ValueError(f"critic_steps must be at least 1 with baseline: true (got {self.critic_steps})")


class PGAgent(PolicyGradientAgent):
    config_class = PGConfig
    name = "pg"
    todo_methods = {"reward_to_go": "core", "gae_advantages": "core", "actor_loss": "core", "critic_loss": "core",
                    "estimate_advantages": "full", "update": "full"}

    def reward_to_go(self, rewards: np.ndarray, terminated: np.ndarray, ends: np.ndarray,
                     next_values: np.ndarray) -> np.ndarray:
        """Discounted reward-to-go of every step of a batch of concatenated episodes.

        Args:
            rewards: (T,) r_t.
            terminated: (T,) bool, s_{t+1} is terminal.
            ends: (T,) bool, step t is the last of its episode in the batch (terminated or truncated).
            next_values: (T,) V(s_{t+1}), used only where an episode was truncated (zeros without a critic).
        Returns:
            returns: (T,) float array, G_t (discount γ = self.cfg.discount).
        """
        # ============ TODO 2a (reward-to-go; Algorithm 2, line 4) ============
        # G_t = r_t + γ r_{t+1} + γ² r_{t+2} + ...  up to and including the last step of t's episode, then
        #       + γ^k V(s_end+1) if that episode was truncated rather than terminated (k: steps from t past the end).
        # Episodes never mix: an end cuts the sum. A double loop over t and t' is O(T²) (T is thousands); two
        # consecutive steps of one episode share all but one term of their sums: write down how G_t and G_{t+1}
        # are related, and what stands in for G_{t+1} at the last step of an episode, terminated or truncated.
        # Check by hand: rewards [1, 1, 1], ends [F, F, T], terminated [F, F, T], γ = 0.5  →  G = [1.75, 1.5, 1];
        # the same with terminated [F, F, F] (a time limit) and next_values [·, ·, 4]  →  G = [2.25, 2.5, 3].
        returns = np.zeros(len(rewards))  # placeholder: replace this line
        # ========== END TODO 2a (reward-to-go; Algorithm 2, line 4) ==========
        return returns

    def gae_advantages(self, rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray,
                       terminated: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Generalized advantage estimates of every step of a batch of concatenated episodes.

        Args:
            rewards: (T,) r_t.
            values: (T,) V(s_t).
            next_values: (T,) V(s_{t+1}).
            terminated, ends: (T,) bool, as in :meth:`reward_to_go`.
        Returns:
            advantages: (T,) float array, Â_t (γ = self.cfg.discount, λ = self.cfg.gae_lambda).
        """
        # =========== TODO 2b (GAE(λ); Algorithm 2, line 5) ===========
        # The TD error δ_t = r_t + γ V(s_{t+1}) − V(s_t), where a terminal s_{t+1} is worth 0 (a truncated one is
        # worth V(s_{t+1}): the episode would have gone on).
        # Â_t = δ_t + γλ δ_{t+1} + (γλ)² δ_{t+2} + ...  up to the last step of t's episode in the batch: a
        # discounted sum of δs cut at episode ends, as TODO 2a's is of rewards (with γλ for γ, and nothing after
        # the end: the bootstrap is already inside the last δ).
        # Special cases worth checking: λ = 0 gives Â_t = δ_t; λ = 1 gives Â_t = G_t − V(s_t) with TODO 2a's G
        # (when next_values[t] is values[t+1] inside each episode, as the critic's values of a real batch are).
        advantages = np.zeros(len(rewards))  # placeholder: replace this line
        # ========= END TODO 2b (GAE(λ); Algorithm 2, line 5) =========
        return advantages

    def actor_loss(self, obs: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
        """The surrogate loss L(θ) whose gradient is minus the policy-gradient estimate.

        Args:
            obs: (B, obs_dim) raw observations s_t.
            actions: (B, act_dim) the actions taken, in the policy's normalized units (as in ``Batch.actions``).
            advantages: (B,) Â_t, constants (no gradient flows into them).
        Returns:
            loss: scalar tensor (shape ()), differentiable w.r.t. the policy's parameters.
        """
        # ============ TODO 2c (actor loss; Algorithm 2, line 7) ============
        # L(θ) = −(1/B) Σ_t Â_t · log π_θ(a_t|s_t): its gradient is −(1/B) Σ_t Â_t ∇_θ log π_θ(a_t|s_t), so a
        # gradient *descent* step on L is an ascent step on J. π_θ(·|s) is the policy's torch Distribution on
        # normalized observations (self.policy.normalize_obs, self.policy.dist); its log-density of a whole
        # action vector has shape (B,). The actions are already in the policy's units: do not normalize them again.
        loss = torch.zeros((), requires_grad=True)  # placeholder: replace this line
        # ========== END TODO 2c (actor loss; Algorithm 2, line 7) ==========
        return loss

    def critic_loss(self, obs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The critic's regression loss.

        Args:
            obs: (B, obs_dim) raw observations s_t.
            targets: (B,) the values V_φ(s_t) should predict (constants).
        Returns:
            loss: scalar tensor, differentiable w.r.t. the critic's parameters.
        """
        # =========== TODO 2d (critic loss; Algorithm 2, line 8) ===========
        # The mean squared error (1/B) Σ_t (V_φ(s_t) − y_t)². self.value(obs) gives V_φ(s_t), shape (B,).
        loss = torch.zeros((), requires_grad=True)  # placeholder: replace this line
        # ========= END TODO 2d (critic loss; Algorithm 2, line 8) =========
        return loss

    def estimate_advantages(self, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        """Advantages for the actor and targets for the critic, for every step of ``batch``.

        Args:
            batch: T steps (``batch.obs`` (T, obs_dim), ``batch.rewards`` (T,), ``batch.next_obs``,
                ``batch.terminated``, ``batch.ends``; see learning/rollouts.py).
        Returns:
            (advantages, targets): two float arrays of shape (T,).
        """
        # ======= TODO 2e (advantages and targets; Algorithm 2, lines 3-6) =======
        # With self.cfg.baseline: the critic's V(s_t) and V(s_{t+1}) for the batch (self.value; no gradient
        # needed, NumPy results); targets = the reward-to-go of TODO 2a bootstrapped with V(s_{t+1});
        # advantages = GAE of TODO 2b.
        # Without a baseline there is no critic: V ≡ 0 everywhere, so advantages = targets = the reward-to-go.
        # With self.cfg.normalize_advantages, shift and scale the advantages to mean 0 and standard deviation 1
        # over the batch (add 1e-8 to the std; the population std, NumPy's default: over T steps ddof hardly
        # matters); the targets are never normalized.
        advantages, targets = np.zeros(len(batch)), np.zeros(len(batch))  # placeholder: replace
        # ===== END TODO 2e (advantages and targets; Algorithm 2, lines 3-6) =====
        return advantages, targets

    def update(self, batch: Batch) -> dict[str, float]:
        """One policy-gradient iteration's learning on ``batch``: one actor step, then critic steps.

        Returns:
            {"actor_loss": float, "critic_loss": float}: the actor's loss, and the critic's loss at its last
            step (NaN without a baseline).
        """
        # ======== TODO 2f (the update; Algorithm 2, lines 3-8) ========
        # Advantages and targets from TODO 2e (computed once, before anything changes). Then, on the whole batch
        # as float32 tensors: one gradient step of self.actor_optimizer on TODO 2c's loss, and, with a baseline,
        # self.cfg.critic_steps gradient steps of self.critic_optimizer on TODO 2d's loss, each on a freshly
        # computed loss. PyTorch adds every backward() into .grad until something clears it, and an optimizer
        # steps only the parameters it was built with. Report the losses as Python floats.
        out = {"actor_loss": float("nan"), "critic_loss": float("nan")}  # placeholder: replace
        # ====== END TODO 2f (the update; Algorithm 2, lines 3-8) ======
        return out

    def train(self) -> None:
        """The policy gradient: ``iterations`` times, collect a batch with the current policy and learn from it."""
        for it in range(self.iteration, self.cfg.iterations):
            batch = self.collect_batch()          # batch_size steps of π_θ (the framework)
            stats = self.run_update(batch)        # update (the TODO methods above), checked
            self.end_iteration(stats)             # evaluate, log, checkpoint
