"""DAgger (Dataset Aggregation; Ross, Gordon & Bagnell, 2011).

Methods to edit (handout section 2, Algorithm 2):
    select_action  TODO 2a  the β-mixture's executed action and the expert's label    (Algorithm 2, line 6)
    aggregate      TODO 2b  D ← D ∪ D_i                                                (Algorithm 2, line 9)
    collect_round  TODO 2c  the mixture policy for n steps, labelling every state     (Algorithm 2, lines 4-8)
    train_round    TODO 2d  one round: collect with β_i, aggregate, retrain           (Algorithm 2, lines 3-10)

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

Run:  python run.py --agent dagger --env cheetah        Test:  python -m grader --self-check
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
    todo_methods = {"select_action": "core", "aggregate": "core",      # what a student writes in this file
                    "collect_round": "full", "train_round": "full"}     # (and in which scope)

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
        # ============ TODO 2a (DAgger: act and label; Algorithm 2, line 6) ============
        # The label stored in D is always the expert's action at this state. The executed action comes from the
        # mixture policy π_mix = β·π* + (1 − β)·π_i: with probability beta the expert's action, otherwise a *sample*
        # from the learner (not its mean). Flip one coin per call with self.rng (uniform in [0, 1)).
        # Framework pieces: self.expert_action and self.learner_action, each (obs_dim,) state → (act_dim,) env units.
        action = np.zeros(self.act_dim, dtype=np.float32)        # placeholder: replace
        expert_label = np.zeros(self.act_dim, dtype=np.float32)  # placeholder: replace
        # ========== END TODO 2a (DAgger: act and label; Algorithm 2, line 6) ==========
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
        # ============== TODO 2b (DAgger: aggregate; Algorithm 2, line 9) ==============
        # D ← D ∪ D_i: a new Dataset holding every pair of `dataset` (earlier rounds and the demos, in order)
        # followed by this round's (visited_obs[k], expert_labels[k]) pairs. Nothing is dropped or repeated.
        # Framework pieces (learning/demos.py): Dataset(obs, actions) builds one from two arrays, and a Dataset
        # has a method that returns a new one with another's rows appended.
        new_dataset = dataset  # placeholder: replace
        # ============ END TODO 2b (DAgger: aggregate; Algorithm 2, line 9) ============
        return new_dataset

    def collect_round(self, n: int, beta: float) -> Dataset:
        """One round's data: run the β-mixture policy in ``self.env`` for exactly ``n`` steps and label every visited
        state with the expert.

        Args:
            n: environment steps to take (= labelled pairs to return), >= 1.
            beta: probability of executing the expert's action at each step.
        Returns:
            Dataset(obs (n, obs_dim), labels (n, act_dim)): the states where each action was chosen, in the order
            visited, with the expert's env-unit action at each.
        """
        # ======== TODO 2c (DAgger: collect one round; Algorithm 2, lines 4-8) ========
        # self.env is a gymnasium env: reset() → (obs, info); step(action) → (obs, reward, terminated, truncated,
        # info). The framework seeds its resets and counts its steps; a round must start with a reset.
        # For t = 1..n: record the current state o_t, choose (executed action, label) at o_t with TODO 2a,
        # execute the action, and keep (o_t, label). Store the state the action was chosen at, not the next one.
        # An episode ends when `terminated` (the task failed or ended: e.g. the hopper fell) OR `truncated` (the
        # time limit) is true: the state returned with it must not be used to act; reset and go on until exactly
        # n pairs are stored. Stepping a finished episode, or more than n steps, is an error the framework reports.
        # Collect the rows in lists or preallocated (n, dim) arrays and return them as a Dataset (learning/demos.py).
        collected = Dataset.empty(self.obs_dim, self.act_dim)  # placeholder: replace
        # ====== END TODO 2c (DAgger: collect one round; Algorithm 2, lines 4-8) ======
        return collected

    def train_round(self, round_index: int) -> float:
        """Round ``round_index`` (1-based) of DAgger: collect with β_i, aggregate into ``self.dataset``, retrain.

        Returns:
            the mean loss of the retraining's last epoch (what ``fit`` returns), a float.
        """
        # ========== TODO 2d (DAgger: one round; Algorithm 2, lines 3-10) ==========
        # 1. β_i from the config's schedule (the framework's method self.beta, given the round's 1-based index).
        # 2. n: the round's size, samples_per_round as far as the sample budget allows (self.room tells how many
        #    of a wanted number of new samples may still be added; the framework refuses a round that adds more).
        # 3. D_i: collect n learner-visited, expert-labelled pairs with β_i (TODO 2c).
        # 4. self.dataset ← D ∪ D_i (TODO 2b): every round trains on all the data so far.
        # 5. Retrain on the whole aggregated dataset for self.cfg.epochs_per_round epochs (TODO 1b, called through
        #    self.train_on(dataset, epochs), which skips an empty dataset or 0 epochs) and return its loss.
        loss = float("nan")  # placeholder: replace
        # ======== END TODO 2d (DAgger: one round; Algorithm 2, lines 3-10) ========
        return loss

    def num_iterations(self) -> int:
        return 1 + self.cfg.rounds

    def train(self) -> None:
        # round 0 (Algorithm 2, line 1): BC on the demos, logged with β = 1 (the expert's data only); then rounds
        # 1..N, each train_round(i) (TODO 2d) under the sample budget: learning/imitation.py's train_in_rounds
        self.train_in_rounds(self.demo_dataset, lambda i: 1.0 if i == 0 else self.beta(i))
