"""The expert: its config and policy file (``config.py``) and the trainers that make it.

``off_policy.py`` holds the loop, replay, checkpoints and warm start every off-policy trainer shares; ``td3.py``,
``sac.py`` (SAC and TQC) the algorithms; ``networks.py`` the critics; ``ars.py`` polishes a trained actor by random
search on its return. The imitation framework needs only ``load_expert``;
``tools/train_expert.py`` and ``run.py --agent expert`` train.
"""
from learning.expert.ars import ARSConfig, ARSTrainer
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
from learning.expert.off_policy import OffPolicyConfig, OffPolicyTrainer, save_compact
from learning.expert.replay_buffer import ReplayBuffer
from learning.expert.sac import SACConfig, SACTrainer, TQCConfig, TQCTrainer
from learning.expert.td3 import TD3Config, TD3Trainer

__all__ = ["AGENT_CONFIG_DIR", "ARSConfig", "ARSTrainer",
           "ExpertConfig", "OffPolicyConfig", "OffPolicyTrainer", "ReplayBuffer", "SACConfig",
           "SACTrainer", "TD3Config", "TD3Trainer", "TQCConfig", "TQCTrainer", "expert_config_path",
           "expert_model_path", "load_expert", "load_expert_config", "save_compact", "trainer_classes",
           "trainer_config"]
