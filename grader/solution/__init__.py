"""Reference solutions for the TODO blocks — instructors and TAs only; never shipped to students.

Each module defines only the TODO methods; :func:`solution_class` builds the agent class with the
student file's non-TODO code and these methods, so stubs and solutions cannot drift apart.
"""
from __future__ import annotations

from grader.solution import bc_solution, dagger_solution, dart_solution

# agent name → {method name: reference implementation}
SOLUTION_METHODS = {
    "bc": {"compute_loss": bc_solution.compute_loss},
    "dagger": {"compute_loss": bc_solution.compute_loss,
               "select_action": dagger_solution.select_action,
               "aggregate": dagger_solution.aggregate},
    "dart": {"compute_loss": bc_solution.compute_loss,
             "noisy_expert_step": dart_solution.noisy_expert_step},
}

# every TODO method, by the student file that holds it
TODO_METHODS = {
    "bc_agent.py": ("BCAgent", ["compute_loss"]),
    "dagger_agent.py": ("DAggerAgent", ["select_action", "aggregate"]),
    "dart_agent.py": ("DARTAgent", ["noisy_expert_step"]),
}


def solution_class(agent_cls: type, agent: str, only: list[str] | None = None) -> type:
    """Subclass ``agent_cls`` with the reference TODO methods (all of them, or just ``only``)."""
    methods = {k: v for k, v in SOLUTION_METHODS[agent].items() if only is None or k in only}
    return type(agent_cls.__name__, (agent_cls,), dict(methods, __module__=agent_cls.__module__,
                                                       __doc__=agent_cls.__doc__))
