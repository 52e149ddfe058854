"""DAgger (Dataset Aggregation; Ross, Gordon & Bagnell, 2011).

Methods to edit: select_action (TODO 2a) and aggregate (TODO 2b), handout section 2.

BC trains on the expert's state distribution but is tested on its own, so its errors compound.
DAgger collects data where the *learner* goes and asks the expert what it would have done there:

    D ← expert demonstrations;  π_1 ← BC on D
    for round i = 1 .. N:
        β_i ← schedule (e.g. β_i = β_0 · decay^(i-1))
        run the mixture policy: at each step execute the expert's action with probability β_i,
            otherwise a sample from the learner π_i; record the visited state o and the expert's label a*(o)
        D ← D ∪ {(o, a*(o))}                     (aggregate: keep every earlier round's data)
        π_{i+1} ← train on D

Because the learner is trained on the states it actually visits, its mistakes grow only linearly
with the horizon (O(εT)) instead of quadratically (O(εT²)) as for BC.

Run:  python run.py --agent dagger --env cheetah
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learning.bc_agent import BCAgent
from learning.demos import Dataset
from learning.imitation import RoundsConfig


@dataclass
class DAggerConfig(RoundsConfig):
    """DAgger settings (a1/dagger_<env>.yaml): rounds, samples_per_round, epochs_per_round and the β schedule."""

    beta_schedule: str = "exponential"  # exponential: β_i = beta0·beta_decay^(i-1); linear: beta0→0; constant: beta0
    beta0: float = 0.5
    beta_decay: float = 0.5

    def validate(self) -> None:
        super().validate()
        if self.demo_episodes < 1:
            raise ValueError("DAgger starts from BC on demos: demo_episodes must be >= 1")
        if self.beta_schedule not in ("exponential", "linear", "constant"):
            raise ValueError("beta_schedule must be one of exponential, linear, constant")
        if not (0.0 <= self.beta0 <= 1.0 and 0.0 <= self.beta_decay <= 1.0):
            raise ValueError("beta0 and beta_decay must lie in [0, 1]")


class DAggerAgent(BCAgent):
    config_class = DAggerConfig
    name = "dagger"
    todo_methods = ("select_action", "aggregate")  # what a student writes in this file

    def beta(self, round_index: int) -> float:
        """Probability of executing the expert's action in round ``round_index`` (1-based)."""
        cfg = self.cfg
        if cfg.beta_schedule == "constant":
            return cfg.beta0
        if cfg.beta_schedule == "linear":
            return cfg.beta0 * max(0.0, 1.0 - (round_index - 1) / max(1, cfg.rounds))
        return cfg.beta0 * cfg.beta_decay ** (round_index - 1)

    def select_action(self, obs: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """Choose the action to execute and the label to store for one visited state.

        Args:
            obs: the current raw observation, shape (obs_dim,).
            beta: probability of executing the expert's action instead of the learner's.
        Returns:
            action: the action the env executes, shape (act_dim,), env units.
            expert_label: the expert's action at ``obs``, shape (act_dim,), env units (what D stores).
        """
        # ========================= TODO 2a (DAgger: act and label) =========================
        # 1. The label is always the expert's action at this state: self.expert_action(obs)  (act_dim,)
        # 2. With probability beta (draw u = self.rng.random(); expert if u < beta) execute the expert's
        #    action; otherwise execute a *sample* from the learner: self.learner_action(obs)  (act_dim,)
        # Use self.rng for the coin flip so runs are reproducible.
        action = np.zeros(self.act_dim, dtype=np.float32)        # placeholder: replace
        expert_label = np.zeros(self.act_dim, dtype=np.float32)  # placeholder: replace
        # ======================= END TODO 2a (DAgger: act and label) =======================
        return action, expert_label

    def aggregate(self, dataset: Dataset, visited_obs: np.ndarray, expert_labels: np.ndarray) -> Dataset:
        """D ← D ∪ {(o, a*(o))}: add this round's learner-visited, expert-labelled states to the dataset.

        Args:
            dataset: the aggregated dataset so far, len N: ``dataset.obs`` (N, obs_dim),
                ``dataset.actions`` (N, act_dim).
            visited_obs: states visited in this round, shape (M, obs_dim).
            expert_labels: the expert's actions at those states, shape (M, act_dim), env units.
        Returns:
            the new dataset of length N + M, holding every old pair followed by the new ones.
        """
        # ========================= TODO 2b (DAgger: aggregate) =========================
        # Build Dataset(visited_obs, expert_labels) and append it to `dataset` with dataset.concat(...).
        # Keep every earlier round's data: DAgger trains on the union of all rounds.
        new_dataset = dataset  # placeholder: replace
        # ======================= END TODO 2b (DAgger: aggregate) =======================
        return new_dataset

    def num_iterations(self) -> int:
        return 1 + self.cfg.rounds

    def train(self) -> None:
        cfg = self.cfg
        for i in range(self.iteration, 1 + cfg.rounds):
            if i == 0:  # round 0: behavioral cloning on the demos
                self.dataset = self.demo_dataset()
                self.fit_normalizer(self.dataset)
                loss = self.fit(self.dataset, cfg.epochs)
                self.end_iteration(loss, beta=1.0)
                continue
            n = self.room(cfg.samples_per_round)    # the sample budget (max_samples) may cut the last round
            if n == 0:
                break
            beta = self.beta(i)
            rollout = self.rollout(n, lambda o: self.select_action(o, beta))   # learner-visited states + labels
            self.dataset = self.aggregate(self.dataset, rollout.obs, rollout.actions)
            loss = self.fit(self.dataset, cfg.epochs_per_round)
            self.end_iteration(loss, beta=beta)
