"""Reference solution of learning/cem_agent.py's TODO methods (instructors only)."""
from __future__ import annotations

import numpy as np


def sample_candidates(self, n: int) -> np.ndarray:
    return self.mean + self.std * self.rng.standard_normal(size=(n, len(self.mean)))


def refit(self, candidates: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    elites = candidates[np.argsort(scores)[-self.cfg.elite_count:]]
    return elites.mean(axis=0), np.maximum(elites.std(axis=0), self.cfg.min_std)


def search_iteration(self) -> np.ndarray:
    population = self.sample_candidates(self.cfg.population)
    values = np.array([self.evaluate_candidate(theta) for theta in population])
    self.mean, self.std = self.refit(population, values)
    return values
