"""Agent registry and the one manifest of the student's TODO methods.

Each student agent class declares ``todo_methods`` (the methods written in its own file); everything
else (the grader, the release builder, calibration, tests) derives what it needs from :func:`todo_manifest`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from util.config import REPO_ROOT, ConfigError

IMITATION_AGENTS = {
    "bc": ("learning.bc_agent", "BCAgent"),
    "dagger": ("learning.dagger_agent", "DAggerAgent"),
    "dart": ("learning.dart_agent", "DARTAgent"),
}
AGENT_NAMES = sorted([*IMITATION_AGENTS, "expert"])


@dataclass(frozen=True)
class TodoFile:
    """One student file: ``learning/<file_name>`` holding ``class_name`` with the TODO ``methods``."""

    agent: str                 # agent name: bc, dagger, dart
    module: str                # learning.bc_agent
    class_name: str            # BCAgent
    methods: tuple[str, ...]   # TODO methods written in this file
    depends_on: tuple[str, ...]  # TODO methods of parent classes (other files) that this agent also runs

    @property
    def file_name(self) -> str:
        return self.module.rsplit(".", 1)[1] + ".py"

    @property
    def all_methods(self) -> tuple[str, ...]:
        """Every TODO method a full run of this agent calls: inherited ones first."""
        return self.depends_on + self.methods


def agent_class(name: str) -> type:
    if name not in IMITATION_AGENTS:
        raise ConfigError(f"Unknown agent '{name}'. Available agents: {', '.join(AGENT_NAMES)}.")
    module, cls = IMITATION_AGENTS[name]
    return getattr(importlib.import_module(module), cls)


def todo_manifest() -> dict[str, TodoFile]:
    """agent name → :class:`TodoFile`, read from the framework's own agent classes (``todo_methods``)."""
    out = {}
    for agent, (module, cls_name) in IMITATION_AGENTS.items():
        cls = agent_class(agent)
        inherited: list[str] = []
        for base in reversed(cls.__mro__[1:]):
            inherited += [m for m in base.__dict__.get("todo_methods", ()) if m not in inherited]
        out[agent] = TodoFile(agent, module, cls_name, tuple(cls.__dict__["todo_methods"]), tuple(inherited))
    return out


def todo_methods() -> dict[str, str]:
    """Every TODO method name → the agent whose file holds it."""
    return {m: agent for agent, spec in todo_manifest().items() for m in spec.methods}


def default_agent_config(agent: str, env_name: str) -> Path:
    """a1/<agent>_<env>.yaml (the student's tuned config)."""
    return REPO_ROOT / "a1" / f"{agent}_{env_name}.yaml"
