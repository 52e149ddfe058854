"""The expert: a trained policy file plus its config (``data/agents/expert_<env>.yaml``)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from envs.builder import EnvConfig
from learning.checkpoint import load_policy
from learning.policy import GaussianMLPPolicy
from util.config import REPO_ROOT, ConfigError, from_dict, load_yaml_file

AGENT_CONFIG_DIR = REPO_ROOT / "data" / "agents"


@dataclass
class ExpertConfig:
    """Schema of ``data/agents/expert_<env>.yaml``; ``trainer``: the trainer's settings (``algo``: td3, sac, tqc or
    ars)."""

    agent: str
    env: str
    model_file: str
    trainer: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.agent != "expert":
            raise ValueError(f"agent must be 'expert', got '{self.agent}'")


def expert_config_path(env_name: str) -> Path:
    return AGENT_CONFIG_DIR / f"expert_{env_name}.yaml"


def load_expert_config(env_name: str, path: str | None = None) -> tuple[ExpertConfig, str]:
    """Load the expert config for ``env_name`` (or an explicit path). Returns (config, source path)."""
    p = Path(path) if path else expert_config_path(env_name)
    if not p.is_file():
        raise ConfigError(
            f"No expert config for env '{env_name}': {p} does not exist. "
            f"Create it (copy data/agents/expert_cheetah.yaml and change env/model_file) or pass --agent_config."
        )
    return from_dict(ExpertConfig, load_yaml_file(p), str(p)), str(p)


def trainer_classes(algo: str) -> tuple[type, type]:
    """(config dataclass, trainer class) for ``trainer.algo``: td3, sac, tqc, or ars (polishes a trained actor)."""
    from learning.expert.ars import ARSConfig, ARSTrainer
    from learning.expert.sac import SACConfig, SACTrainer, TQCConfig, TQCTrainer
    from learning.expert.td3 import TD3Config, TD3Trainer

    table = {"td3": (TD3Config, TD3Trainer), "sac": (SACConfig, SACTrainer), "tqc": (TQCConfig, TQCTrainer),
             "ars": (ARSConfig, ARSTrainer)}
    if algo not in table:
        raise ConfigError(f"trainer.algo must be one of {', '.join(sorted(table))}, got {algo!r}.")
    return table[algo]


def trainer_config(cfg: ExpertConfig, source: str, overrides: dict[str, Any] | None = None):
    """The validated trainer settings of an expert config (``trainer:`` section, ``algo`` defaults to td3)."""
    data = dict(cfg.trainer)
    config_cls, _ = trainer_classes(str(data.setdefault("algo", "td3")))
    names = {f.name for f in fields(config_cls)}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in names:
            raise ConfigError(f"--{key} does not apply to trainer.algo {data['algo']} ({source}); "
                              f"its settings are: {', '.join(sorted(names - {'algo'}))}.")
        data[key] = value
    return from_dict(config_cls, data, f"{source} (section 'trainer')")


def expert_model_path(cfg: ExpertConfig) -> Path:
    p = Path(cfg.model_file)
    return p if p.is_absolute() else REPO_ROOT / p


def load_expert(env_cfg: EnvConfig, obs_dim: int, act_dim: int, config_path: str | None = None) -> GaussianMLPPolicy:
    """Load the shipped expert for ``env_cfg`` (refusing a file made for another task)."""
    cfg, _ = load_expert_config(env_cfg.name, config_path)
    path = expert_model_path(cfg)
    policy, _ = load_policy(
        path, obs_dim=obs_dim, act_dim=act_dim, env_id=env_cfg.env_id,
        hint=f"Train it with: python tools/train_expert.py --env {env_cfg.name} --install",
    )
    return policy
