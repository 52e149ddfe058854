"""Agent registry: name → agent class and default config location."""
from __future__ import annotations

import importlib
from pathlib import Path

from util.config import REPO_ROOT, ConfigError

IMITATION_AGENTS = {
    "bc": ("learning.bc_agent", "BCAgent"),
    "dagger": ("learning.dagger_agent", "DAggerAgent"),
    "dart": ("learning.dart_agent", "DARTAgent"),
}
AGENT_NAMES = sorted([*IMITATION_AGENTS, "expert"])


def agent_class(name: str) -> type:
    if name not in IMITATION_AGENTS:
        raise ConfigError(f"Unknown agent '{name}'. Available agents: {', '.join(AGENT_NAMES)}.")
    module, cls = IMITATION_AGENTS[name]
    return getattr(importlib.import_module(module), cls)


def default_agent_config(agent: str, env_name: str) -> Path:
    """a1/<agent>_<env>.yaml (the student's tuned config)."""
    return REPO_ROOT / "a1" / f"{agent}_{env_name}.yaml"
