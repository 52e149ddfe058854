"""Noise injection (DART; Laskey et al., 2017): make the expert show how to recover.

Methods to edit (handout section 3, Algorithm 3):
    noisy_expert_step  TODO 3a  one step's executed noisy action and clean label          (Algorithm 3, lines 5-7)
    collect_round      TODO 3b  the noisy expert in the env for n steps, storing clean labels (Algorithm 3, lines 3-9)
    train_round        TODO 3c  one round: collect, add to the dataset, retrain            (Algorithm 3, lines 2-11)

BC fails because the learner drifts into states the expert never visited. Instead of running the
learner (DAgger), we can perturb the *expert* while it demonstrates: execute a noisy action

    a_exec = clip(a*(o) + ε, low, high),   ε ~ N(0, (σ · (high - low) / 2)²)   (σ in normalized units)

so the expert is pushed off its own path and its next actions show how to get back, but store the
*clean* label a*(o) — we want the learner to imitate what the expert would do, not the noise.
The data are then used exactly like BC's: min_θ E[-log π_θ(a*|o)].

Run:  python run.py --agent dart --env cheetah        Test:  python -m grader --self-check
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learning.bc_agent import BCAgent
from learning.demos import Dataset
from learning.imitation import RoundsConfig


@dataclass
class DARTConfig(RoundsConfig):
    """Noise-injection settings (a1/dart_<env>.yaml): noise_std plus rounds, samples_per_round, epochs_per_round."""

    noise_std: float = 0.2            # σ of the injected Gaussian noise, in normalized action units

    def validate(self) -> None:
        super().validate()
        if self.noise_std < 0:
            raise ValueError("noise_std must be >= 0")


class DARTAgent(BCAgent):
    config_class = DARTConfig
    name = "dart"
    todo_methods = {"noisy_expert_step": "core",                       # what a student writes in this file
                    "collect_round": "full", "train_round": "full"}     # (and in which scope)

    def noisy_expert_step(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step of noise-injected data collection.

        Args:
            obs: the current raw observation, shape (obs_dim,).
        Returns:
            action: the noisy action the env executes, shape (act_dim,), env units, inside [low, high].
            clean_label: the expert's noise-free action at ``obs``, shape (act_dim,), env units (what D stores).
        """
        # ========== TODO 3a (noise injection: one step; Algorithm 3, lines 5-7) ==========
        # The label is the expert's clean action a* at obs (self.expert_action, (act_dim,), env units).
        # The executed action is a* plus Gaussian noise ε, drawn fresh at every call and independently in every
        # dimension with self.rng, whose standard deviation in dimension j is noise_std (self.cfg.noise_std, given
        # in normalized units where [low, high] spans [-1, 1]) converted to env units: the half-width of that
        # dimension's range, from self.action_low and self.action_high (act_dim,). The executed action must stay
        # inside [low, high] in every dimension (clip it); the label never carries noise.
        action = np.zeros(self.act_dim, dtype=np.float32)       # placeholder: replace
        clean_label = np.zeros(self.act_dim, dtype=np.float32)  # placeholder: replace
        # ======== END TODO 3a (noise injection: one step; Algorithm 3, lines 5-7) ========
        return action, clean_label

    def collect_round(self, n: int) -> Dataset:
        """One round's data: the noise-injected expert in ``self.env`` for exactly ``n`` steps, storing clean labels.

        Args:
            n: environment steps to take (= labelled pairs to return), >= 1.
        Returns:
            Dataset(obs (n, obs_dim), clean labels (n, act_dim)): each state where an action was chosen, in the
            order visited, with the expert's noise-free env-unit action there.
        """
        # ====== TODO 3b (noise injection: collect one round; Algorithm 3, lines 3-9) ======
        # self.env is a gymnasium env: reset() → (obs, info); step(action) → (obs, reward, terminated, truncated,
        # info); a round must start with a reset (the framework seeds it).
        # For t = 1..n (Algorithm 3): record o_t; query the expert and perturb its action (TODO 3a); execute the
        # noisy action; store (o_t, clean label). An episode ends at `terminated` OR `truncated`: then reset before
        # the next step, and go on until exactly n pairs are stored (the framework reports stepping a finished
        # episode, or taking more than n steps). Return the pairs as a Dataset (learning/demos.py).
        collected = Dataset.empty(self.obs_dim, self.act_dim)  # placeholder: replace
        # ==== END TODO 3b (noise injection: collect one round; Algorithm 3, lines 3-9) ====
        return collected

    def train_round(self, round_index: int) -> float:
        """Round ``round_index`` (1-based) of noise injection: collect, add to ``self.dataset``, retrain.

        Returns:
            the mean loss of the retraining's last epoch (what ``fit`` returns), a float.
        """
        # ========= TODO 3c (noise injection: one round; Algorithm 3, lines 2-11) =========
        # n = samples_per_round as far as the sample budget allows (self.room); collect n pairs (TODO 3b); the
        # dataset becomes the old pairs followed by the new ones (keep every earlier round's data); retrain on all
        # of it for self.cfg.epochs_per_round epochs through self.train_on (TODO 1b) and return that loss.
        loss = float("nan")  # placeholder: replace
        # ======= END TODO 3c (noise injection: one round; Algorithm 3, lines 2-11) =======
        return loss

    def num_iterations(self) -> int:
        return 1 + self.cfg.rounds

    def first_dataset(self) -> Dataset:
        """Round 0's data: the demos, or without any a first noisy round (the normalizer is fitted to it)."""
        demos = self.demo_dataset()
        if len(demos) > 0:
            return demos
        return self.collect(self.room(self.cfg.samples_per_round), self.collect_round)

    def train(self) -> None:
        # round 0: BC on first_dataset(); then rounds 1..N, each train_round(i) (TODO 3c) under the sample budget
        # (learning/imitation.py's train_in_rounds)
        self.train_in_rounds(self.first_dataset)
