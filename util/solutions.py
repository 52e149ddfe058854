"""The one hook to the reference solutions (TAs only): looked up when ``--solution`` is asked for.

``grader/solution/`` is not part of the student release, and nothing in ``learning/`` or ``run.py``
imports it: :func:`learning.agents.build_agent` calls :func:`solution_hook` only when ``solution=True``.
"""
from __future__ import annotations

import importlib
from typing import Callable

from util.config import REPO_ROOT, ConfigError

SOLUTION_PACKAGE = "grader.solution"


def solution_hook() -> Callable[[type, str], type]:
    """``grader.solution.solution_class(agent_cls, agent)``: the agent class with the reference TODO methods."""
    if not (REPO_ROOT / "grader" / "solution" / "__init__.py").is_file():
        raise ConfigError("--solution: the reference solutions are not part of the student release.")
    return importlib.import_module(SOLUTION_PACKAGE).solution_class
