"""The framework's optimizer: torch's Adam, without the torch.compile plumbing that imports ``torch._dynamo``.

torch 2.x wraps ``Optimizer.step`` so that it calls ``torch._dynamo.graph_break()``, and marks ``add_param_group``,
``zero_grad``, ``state_dict`` and ``load_state_dict`` "not traceable" through ``torch._compile._disable_dynamo``; both
import ``torch._dynamo`` (and sympy: about 800 modules, 70 MB of memory and a second of CPU in every process that
trains) only for torch.compile's sake. Nothing here compiles. :class:`Adam` runs torch's own Adam update, the same
code on the same tensors (so the same bits), under ``torch.no_grad()`` as torch's wrapper does for a
non-differentiable optimizer, and :func:`skip_dynamo_import` gives each ``_disable_dynamo`` wrapper its own
undecorated method as the cached "disabled" version. On a torch without these wrappers both change nothing.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable

import torch

_COMPILE_FILE = "torch/_compile.py"
_ADAM_UPDATE: Callable[..., Any] = inspect.unwrap(torch.optim.Adam.step)   # torch's Adam.step, undecorated


def skip_dynamo_import() -> int:
    """Cache the undecorated method in each ``_disable_dynamo`` wrapper of ``torch.optim.Optimizer``; returns how
    many were set now (0 when this torch has none, or they were set before)."""
    done = 0
    for value in vars(torch.optim.Optimizer).values():
        code, raw = getattr(value, "__code__", None), getattr(value, "__wrapped__", None)
        if code is None or raw is None or code.co_name != "inner" or \
                _COMPILE_FILE not in code.co_filename.replace("\\", "/"):
            continue
        if getattr(raw, "__dynamo_disable", None) is None:
            setattr(raw, "__dynamo_disable", raw)
            done += 1
    return done


class Adam(torch.optim.Adam):
    """``torch.optim.Adam`` (same arguments, state and results); ``step`` skips torch.compile's graph breaks."""

    def __init__(self, params: Iterable[torch.nn.Parameter], **kwargs: Any):
        skip_dynamo_import()
        super().__init__(params, **kwargs)
        self.updates = 0              # calls of step(): the run's gradient steps

    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        """One Adam update of every parameter with a gradient (torch's own code; ``closure`` as in torch)."""
        self.updates += 1
        with torch.no_grad():
            return _ADAM_UPDATE(self, closure)
