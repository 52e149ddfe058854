"""Observation normalizer, stored inside the policy so it is saved with the model."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ObsNormalizer(nn.Module):
    """Per-dimension ``(obs - mean) / std``, clipped to ``[-clip, clip]``.

    The statistics are buffers (saved in ``state_dict``), never trained by gradients.
    Fit them once on a dataset with :meth:`fit`, or keep them running with :meth:`update`.
    """

    def __init__(self, dim: int, clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.dim = dim
        self.clip = clip
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """obs: (..., dim) raw → (..., dim) normalized."""
        return ((obs - self.mean) / torch.sqrt(self.var + self.eps)).clamp(-self.clip, self.clip)

    @torch.no_grad()
    def fit(self, obs: np.ndarray | torch.Tensor) -> None:
        """Set mean/var from a batch of observations of shape (N, dim)."""
        x = torch.as_tensor(np.asarray(obs), dtype=torch.float64).reshape(-1, self.dim)
        if x.shape[0] == 0:
            raise ValueError("cannot fit a normalizer on zero observations")
        self.mean.copy_(x.mean(0).float())
        self.var.copy_(x.var(0, unbiased=False).float())
        self.count.fill_(float(x.shape[0]))

    @torch.no_grad()
    def update(self, obs: np.ndarray | torch.Tensor) -> None:
        """Merge a batch (N, dim) into the running statistics (parallel Welford)."""
        x = torch.as_tensor(np.asarray(obs), dtype=torch.float64).reshape(-1, self.dim)
        n_b = x.shape[0]
        if n_b == 0:
            return
        mean_b, var_b = x.mean(0), x.var(0, unbiased=False)
        n_a = float(self.count)
        if n_a == 0:
            self.mean.copy_(mean_b.float()); self.var.copy_(var_b.float()); self.count.fill_(float(n_b))
            return
        mean_a, var_a = self.mean.double(), self.var.double()
        n = n_a + n_b
        delta = mean_b - mean_a
        self.mean.copy_((mean_a + delta * n_b / n).float())
        self.var.copy_(((var_a * n_a + var_b * n_b + delta**2 * n_a * n_b / n) / n).float())
        self.count.fill_(n)
