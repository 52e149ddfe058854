"""The deterministic MLP actor in plain NumPy (float64 inside, float32 out): the expert's one computation.

Every place that asks the expert for an action computes it here, with the same arrays and the same code: a
student's run (``ImitationAgent.expert_action``), the grader's expert oracle (``grader/supervisor.py``, a process
without torch) and the grader's evaluation of a trained policy. So the labels a graded run receives are exactly the
labels the same run receives on a student's machine, whatever the number of threads, and float64 inside keeps the
float32 result independent of summation order (BLAS kernels, CPU features) except in ties far below float32's
resolution. This module imports NumPy only.

Arrays (:meth:`MLPActor.to_arrays`, also the oracle's ``.npz`` format): ``w0..w{L-1}`` (out, in), ``b0..b{L-1}``
(out,), ``n_layers``, ``activation`` (relu or tanh), ``squash`` (tanh on the output), ``obs_mean``, ``obs_var``
(obs_dim,), ``obs_eps``, ``obs_clip``, ``action_low``, ``action_high`` (act_dim,).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

ACTIVATIONS = ("relu", "tanh")


class MLPActor:
    """a(o) = low + (clip(head(net(clip((o - μ)/√(σ² + ε), ±c))), ±1) + 1)/2 · (high − low), head = tanh or identity."""

    def __init__(self, arrays: Mapping[str, np.ndarray]):
        n = int(arrays["n_layers"])
        if not 1 <= n <= 16:
            raise ValueError(f"an actor has 1 to 16 layers, not {n}")
        self.layers = [(np.asarray(arrays[f"w{i}"], np.float64), np.asarray(arrays[f"b{i}"], np.float64))
                       for i in range(n)]
        self.activation = str(arrays["activation"])
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"the actor supports {' and '.join(ACTIVATIONS)} activations, not {self.activation}")
        self.squash = bool(arrays["squash"])
        self.obs_mean = np.asarray(arrays["obs_mean"], np.float64)
        self.obs_std = np.sqrt(np.asarray(arrays["obs_var"], np.float64) + float(arrays["obs_eps"]))
        self.obs_clip = float(arrays["obs_clip"])
        self.action_low = np.asarray(arrays["action_low"], np.float64)
        self.action_high = np.asarray(arrays["action_high"], np.float64)
        self.obs_dim, self.act_dim = self.layers[0][0].shape[1], self.layers[-1][0].shape[0]
        for (w, b), (w_next, _) in zip(self.layers, self.layers[1:] + [(None, None)]):
            if b.shape != (w.shape[0],) or (w_next is not None and w_next.shape[1] != w.shape[0]):
                raise ValueError("the actor's layer shapes do not chain")
        if self.obs_mean.shape != (self.obs_dim,) or self.action_low.shape != (self.act_dim,):
            raise ValueError("the actor's normalizer or action bounds do not match its layers")
        self._arrays = {k: np.array(v) for k, v in arrays.items()}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._arrays.items()}

    def act(self, obs: np.ndarray, deterministic: bool = True, **_: object) -> np.ndarray:
        """obs (obs_dim,) or (N, obs_dim) → env action (act_dim,) or (N, act_dim), float32 (always the mean)."""
        x = np.asarray(obs, np.float32).astype(np.float64)
        single = x.ndim == 1
        x = np.clip((x.reshape(-1, self.obs_dim) - self.obs_mean) / self.obs_std, -self.obs_clip, self.obs_clip)
        for i, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0.0) if self.activation == "relu" else np.tanh(x)
        a = np.clip(np.tanh(x) if self.squash else x, -1.0, 1.0)
        out = (self.action_low + (a + 1.0) * 0.5 * (self.action_high - self.action_low)).astype(np.float32)
        return out[0] if single else out
