"""Noise injection (DART; Laskey et al., 2017): make the expert show how to recover.

Methods to edit: noisy_expert_step (TODO 3, handout section 3).

BC fails because the learner drifts into states the expert never visited. Instead of running the
learner (DAgger), we can perturb the *expert* while it demonstrates: execute a noisy action

    a_exec = clip(a*(o) + ε, low, high),   ε ~ N(0, (σ · (high - low) / 2)²)   (σ in normalized units)

so the expert is pushed off its own path and its next actions show how to get back, but store the
*clean* label a*(o) — we want the learner to imitate what the expert would do, not the noise.
The data are then used exactly like BC's: min_θ E[-log π_θ(a*|o)].

Run:  python run.py --agent dart --env cheetah
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learning.bc_agent import BCAgent
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
    todo_methods = ("noisy_expert_step",)  # what a student writes in this file

    def noisy_expert_step(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One step of noise-injected data collection.

        Args:
            obs: the current raw observation, shape (obs_dim,).
        Returns:
            action: the noisy action the env executes, shape (act_dim,), env units, inside [low, high].
            clean_label: the expert's noise-free action at ``obs``, shape (act_dim,), env units (what D stores).
        """
        # ========================= TODO 3 (noise injection) =========================
        # 1. clean = self.expert_action(obs)                                       (act_dim,)
        # 2. noise ε ~ N(0, σ²) per dimension with σ = self.cfg.noise_std · (self.action_high - self.action_low) / 2,
        #    drawn with self.rng.normal(...) so runs are reproducible                (act_dim,)
        # 3. execute clip(clean + ε, self.action_low, self.action_high); store the clean action as the label.
        action = np.zeros(self.act_dim, dtype=np.float32)       # placeholder: replace
        clean_label = np.zeros(self.act_dim, dtype=np.float32)  # placeholder: replace
        # ======================= END TODO 3 (noise injection) =======================
        return action, clean_label

    def num_iterations(self) -> int:
        return 1 + self.cfg.rounds

    def train(self) -> None:
        cfg = self.cfg
        for i in range(self.iteration, 1 + cfg.rounds):
            if i == 0:  # round 0: BC on the demos (if any)
                self.dataset = self.demo_dataset()
                if len(self.dataset) == 0:  # no demos: take the normalizer from a first noisy batch
                    self.dataset = self.rollout(self.room(cfg.samples_per_round), self.noisy_expert_step)
                self.fit_normalizer(self.dataset)
                loss = self.fit(self.dataset, cfg.epochs)
                self.end_iteration(loss)
                continue
            n = self.room(cfg.samples_per_round)    # the sample budget (max_samples) may cut the last round
            if n == 0:
                break
            noisy = self.rollout(n, self.noisy_expert_step)   # noisy executed actions, clean labels
            self.dataset = self.dataset.concat(noisy)
            loss = self.fit(self.dataset, cfg.epochs_per_round)
            self.end_iteration(loss)
