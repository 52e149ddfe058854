"""Reference solutions for the TODO blocks — instructors and TAs only; never shipped to students.

Module ``<agent>_solution`` defines exactly the TODO methods of ``learning/<agent>_agent.py`` (as listed
by the manifest, learning.agents.todo_manifest); :func:`solution_class` builds the agent class with the
student file's non-TODO code and these methods, so stubs and solutions cannot drift apart.
"""
from __future__ import annotations

import importlib

from learning.agents import ASSIGNMENTS, todo_manifest, todo_owner


def reference(agent: str, method: str):
    """The reference implementation of the TODO ``method`` that ``agent`` runs."""
    return getattr(importlib.import_module(f"grader.solution.{todo_owner(agent, method)}_solution"), method)


# agent name → {TODO method it runs (its own and inherited, every scope): reference implementation}
SOLUTION_METHODS = {agent: {m: reference(agent, m) for m in spec.all_methods}
                    for assignment in ASSIGNMENTS for agent, spec in todo_manifest("full", assignment).items()}

# student file → (class, its own TODO methods, every scope), every assignment's; derived from the manifest
TODO_METHODS = {spec.file_name: (spec.class_name, list(spec.methods))
                for assignment in ASSIGNMENTS for spec in todo_manifest("full", assignment).values()}


def solution_class(agent_cls: type, agent: str, only: list[str] | None = None) -> type:
    """Subclass ``agent_cls`` with the reference TODO methods (all of them, or just ``only``)."""
    methods = {k: v for k, v in SOLUTION_METHODS[agent].items() if only is None or k in only}
    return type(agent_cls.__name__, (agent_cls,), dict(methods, __module__=agent_cls.__module__,
                                                       __doc__=agent_cls.__doc__))
