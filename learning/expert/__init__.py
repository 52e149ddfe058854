"""The expert: its config and policy file (``config.py``) and the trainers that make it.

``base.py`` holds what every expert trainer adds to :class:`learning.trainer.Trainer` (run options, model files,
snapshots, compact checkpoints); ``off_policy.py`` the loop, replay, checkpoints and warm start every off-policy
trainer shares; ``td3.py``, ``sac.py`` (SAC and TQC) the algorithms; ``networks.py`` the critics; ``ars.py``
polishes a trained actor by random search on its return. The imitation framework needs only ``load_expert``;
``tools/train_expert.py`` and ``run.py --agent expert`` train (``run()``, as every trainer).

Importing this package loads only ``config.py``: the trainer names (``TD3Trainer``, ``save_compact``, ...) are
imported from their modules on first use (PEP 562), so a run that only loads the expert never imports a trainer.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from learning.expert.config import (
           AGENT_CONFIG_DIR,
           ExpertConfig,
           expert_config_path,
           expert_model_path,
           load_expert,
           load_expert_config,
           trainer_classes,
           trainer_config,
)

if TYPE_CHECKING:   # what type checkers and editors see; at run time __getattr__ imports these on first use
    from learning.expert.ars import ARSConfig, ARSTrainer
    from learning.expert.base import save_compact
    from learning.expert.off_policy import OffPolicyConfig, OffPolicyTrainer
    from learning.expert.replay_buffer import ReplayBuffer
    from learning.expert.sac import SACConfig, SACTrainer, TQCConfig, TQCTrainer
    from learning.expert.td3 import TD3Config, TD3Trainer

# name → the submodule that defines it, imported on first access
_LAZY = {
    "ARSConfig": "ars", "ARSTrainer": "ars",
    "OffPolicyConfig": "off_policy", "OffPolicyTrainer": "off_policy", "save_compact": "base",
    "ReplayBuffer": "replay_buffer",
    "SACConfig": "sac", "SACTrainer": "sac", "TQCConfig": "sac", "TQCTrainer": "sac",
    "TD3Config": "td3", "TD3Trainer": "td3",
}

__all__ = ["AGENT_CONFIG_DIR", "ARSConfig", "ARSTrainer",
           "ExpertConfig", "OffPolicyConfig", "OffPolicyTrainer", "ReplayBuffer", "SACConfig",
           "SACTrainer", "TD3Config", "TD3Trainer", "TQCConfig", "TQCTrainer", "expert_config_path",
           "expert_model_path", "load_expert", "load_expert_config", "save_compact", "trainer_classes",
           "trainer_config"]


def __getattr__(name: str) -> Any:
    """A trainer name, imported from its submodule on first use and cached in this module."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
