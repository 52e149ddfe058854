"""How the loss checks (BC's ``compute_loss``, PG's ``actor_loss`` and ``critic_loss``) compare a student's loss with
the parent's: the value and the gradient of a loss, their tolerances, and the diagnoses every loss shares (a detached
part, a constant factor)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch


def value_and_grads(params: list[torch.nn.Parameter], loss_fn: Callable[[], torch.Tensor]) -> tuple[float, np.ndarray]:
    """The value of ``loss_fn()`` and its gradient w.r.t. ``params``, flat float64 (zeros where none reaches a
    parameter); the parameters' ``.grad`` are left cleared."""
    for p in params:
        p.grad = None
    loss = loss_fn()
    loss.backward()
    grads = np.concatenate([p.grad.double().reshape(-1).numpy() if p.grad is not None else np.zeros(p.numel())
                            for p in params])
    for p in params:
        p.grad = None
    return float(loss.detach()), grads


def close_value(x: float, ref: float) -> bool:
    return math.isfinite(x) and abs(x - ref) <= 1e-4 * max(1.0, abs(ref))


def close_grads(g: np.ndarray, ref: np.ndarray) -> bool:
    return g.shape == ref.shape and bool(np.all(np.isfinite(g))) and bool(np.allclose(g, ref, rtol=1e-3, atol=1e-5))


def detached_problem(names: list[str], params: list[torch.nn.Parameter], grads: np.ndarray,
                     ref_grads: np.ndarray) -> str:
    """The parameters no gradient reaches although the reference's does, named ("" if none, or if none reaches any)."""
    dead, pos = [], 0
    for pname, p in zip(names, params):
        seg = slice(pos, pos + p.numel())
        pos += p.numel()
        if not np.any(grads[seg]) and np.any(ref_grads[seg]):
            dead.append(pname)
    if dead and np.any(grads):
        return (f"no gradient reaches {', '.join(dead)}: part of the computation is detached (e.g. .detach(), "
                ".item(), numpy, or a new tensor from its values)")
    return ""


def scale_problem(grads: np.ndarray, ref_grads: np.ndarray) -> str:
    """The factor, if the gradient is the reference's times one ("" if not)."""
    scale = float(grads @ ref_grads / max(float(ref_grads @ ref_grads), 1e-30))
    if np.any(grads) and close_grads(grads, scale * ref_grads):
        return f"it is the reference loss times {scale:.4g} (a sum where a mean is due, or an extra factor)"
    return ""
