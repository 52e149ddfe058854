"""Networks and optimizers the expert trainers share."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class QEnsemble(nn.Module):
    """``n`` independent Q(s, a) MLPs evaluated together with batched matmuls.

    forward(obs (B, obs_dim), act (B, act_dim)) → Q values (n, B), or (n, B, out_dim) when ``out_dim`` > 1
    (e.g. TQC's quantiles of the return).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int], n: int = 2, out_dim: int = 1):
        super().__init__()
        dims = [obs_dim + act_dim, *hidden_sizes, out_dim]
        self.n, self.out_dim = n, out_dim
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, o in zip(dims[:-1], dims[1:], strict=True):
            bound = 1.0 / math.sqrt(i)  # same init as nn.Linear
            self.weights.append(nn.Parameter(torch.empty(n, i, o).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, o).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, act], dim=-1).unsqueeze(0).expand(self.n, -1, -1)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)
            if k < last:
                x = F.relu(x)
        return x.squeeze(-1) if self.out_dim == 1 else x

    def member(self, obs: torch.Tensor, act: torch.Tensor, j: int = 0) -> torch.Tensor:
        """Q_j(s, a) only: (B,)."""
        x = torch.cat([obs, act], dim=-1)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.addmm(b[j], x, w[j])
            if k < last:
                x = F.relu(x)
        return x.squeeze(-1)


def adam(params, lr: float) -> torch.optim.Adam:
    """Adam, fused where this torch build has it (same math, fewer kernel launches)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


class TensorHolder(nn.Module):
    """One trainable tensor saved and restored like a module (e.g. SAC's log α)."""

    def __init__(self, value: torch.Tensor):
        super().__init__()
        self.value = nn.Parameter(value)
