"""The cross-entropy method (CEM): policy search without gradients.

Methods to edit (handout a2, section 1, Algorithm 1):
    sample_candidates   TODO 1a  draw candidate parameter vectors from the search distribution  (line 3)
    refit               TODO 1b  refit the search distribution to the elites, std floored        (lines 5-6)
    search_iteration    TODO 1c  one iteration: sample, evaluate, refit                          (lines 2-6)

CEM treats the return as a black box F(θ) of the policy's parameter vector θ and keeps a search distribution
N(μ, diag(σ²)) over θ. Each iteration it samples a population θ_1..θ_N, evaluates each (one or more episodes),
keeps the K best ("elites") and moves the distribution onto them:

    μ ← (1/K) Σ_{k∈elite} θ_k          σ_j ← max( sqrt((1/K) Σ_{k∈elite} (θ_{k,j} − μ_j)²),  σ_min )

The floor σ_min keeps the search from collapsing onto one point before it has found a good policy. No gradient
of F is ever taken: CEM only ranks candidates, so it does not care how the return depends on θ, only which θ did
better. The price is samples: every candidate costs whole episodes.

Run:  python run.py --agent cem --env pendulum        Test:  python -m grader --assignment a2 --self-check
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from learning.parameter_search import ParameterSearchAgent
from learning.policy_search import PolicySearchConfig


@dataclass
class CEMConfig(PolicySearchConfig):
    """CEM settings (a2/cem_<env>.yaml)."""

    hidden_sizes: list[int] = field(default_factory=list)   # [] : a linear policy a = tanh(W s_n + b)
    population: int = 50             # N: candidates per iteration
    elite_count: int = 10            # K: the best candidates the distribution is refit to
    init_std: float = 0.5            # σ at the start (μ starts at 0)
    min_std: float = 0.01            # σ_min: the floor on each σ_j after a refit
    episodes_per_candidate: int = 1  # episodes averaged into one candidate's score
    normalize_obs: bool = True       # keep running observation statistics (updated after each iteration)

    def validate(self) -> None:
        super().validate()
        if self.elite_count < 1:
            raise ValueError(f"elite_count must be at least 1 (got {self.elite_count})")
        if self.population < self.elite_count:
            raise ValueError(f"population must be at least elite_count = {self.elite_count} "
                             f"(got population {self.population})")
        if self.init_std <= 0:
            raise ValueError(f"init_std must be positive (got {self.init_std:g})")
        if self.min_std < 0:
            raise ValueError(f"min_std must be >= 0 (got {self.min_std:g})")
        if self.episodes_per_candidate < 1:
            raise ValueError(f"episodes_per_candidate must be at least 1 (got {self.episodes_per_candidate})")


class CEMAgent(ParameterSearchAgent):
    config_class = CEMConfig
    name = "cem"
    todo_methods = {"sample_candidates": "core", "refit": "core", "search_iteration": "full"}

    def sample_candidates(self, n: int) -> np.ndarray:
        """Draw ``n`` candidate parameter vectors from N(self.mean, diag(self.std²)).

        Args:
            n: number of candidates, >= 1.
        Returns:
            candidates: float array of shape (n, self.num_params); row i is θ_i.
        """
        # ================ TODO 1a (sample candidates; Algorithm 1, line 3) =================
        # θ_i = μ + σ ⊙ ε_i with ε_i ~ N(0, I) of the same length as μ, independently for each i (⊙: elementwise).
        # self.mean and self.std are NumPy arrays (num_params,). Draw every random number from self.rng (the
        # agent's seeded np.random.Generator): the same seed then gives the same run, and a resumed run the same
        # as an uninterrupted one.
        candidates = np.zeros((n, self.num_params))  # placeholder: replace this line
        # ============== END TODO 1a (sample candidates; Algorithm 1, line 3) ===============
        return candidates

    def refit(self, candidates: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fit the new search distribution to the elites.

        Args:
            candidates: (N, num_params) the population's parameter vectors.
            scores: (N,) their returns F(θ_i) (higher is better).
        Returns:
            (mean, std): two float arrays of shape (num_params,).
        """
        # ============ TODO 1b (refit to the elites; Algorithm 1, lines 5-6) =============
        # The elites are the K = self.cfg.elite_count candidates with the highest scores (ties broken any way).
        # mean: their per-coordinate average. std: their per-coordinate standard deviation around that mean
        # (divide by K, not K - 1), then raised to at least self.cfg.min_std in every coordinate.
        # Shapes: K rows of num_params each; both results are (num_params,).
        mean, std = self.mean, self.std  # placeholder: replace this line
        # ========== END TODO 1b (refit to the elites; Algorithm 1, lines 5-6) ===========
        return mean, std

    def search_iteration(self) -> np.ndarray:
        """One CEM iteration: sample ``population`` candidates, score each, refit ``self.mean`` and ``self.std``.

        Returns:
            scores: float array (population,), the return of each candidate in the order sampled.
        """
        # ============== TODO 1c (one CEM iteration; Algorithm 1, lines 2-6) ===============
        # A population of N = self.cfg.population candidates (TODO 1a); the score of each is
        # self.evaluate_candidate(θ_i) (the framework runs its episodes and counts their steps); the new search
        # distribution is the refit of TODO 1b, stored in self.mean and self.std (the framework then loads the
        # mean into the policy). Return the scores as an array of shape (N,).
        scores = None  # placeholder: replace
        # ============ END TODO 1c (one CEM iteration; Algorithm 1, lines 2-6) =============
        return scores

    def train(self) -> None:
        """CEM: ``iterations`` times, one population sampled, scored and refit to (Algorithm 1)."""
        for it in range(self.iteration, self.cfg.iterations):
            stats = self.run_iteration()          # search_iteration (the TODO methods above), checked
            self.end_iteration(stats)             # evaluate the mean policy, log, checkpoint
