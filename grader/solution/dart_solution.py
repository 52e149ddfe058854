"""Reference solution: noise-injected expert step."""
from __future__ import annotations

import numpy as np


def noisy_expert_step(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clean = self.expert_action(obs)
    sigma = self.cfg.noise_std * (self.action_high - self.action_low) / 2.0
    noisy = np.clip(clean + self.rng.normal(0.0, 1.0, self.act_dim) * sigma, self.action_low, self.action_high)
    return noisy.astype(np.float32), clean
