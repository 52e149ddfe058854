"""The TD3 expert: its config and policy file (``config.py``), the trainer (``td3.py``) and its replay buffer.

The imitation framework needs only ``load_expert``; ``tools/train_expert.py`` and ``run.py --agent expert`` train.
"""
from learning.expert.config import AGENT_CONFIG_DIR, ExpertConfig, expert_config_path, expert_model_path
from learning.expert.config import load_expert, load_expert_config, td3_config
from learning.expert.replay_buffer import ReplayBuffer
from learning.expert.td3 import TD3Config, TD3Trainer

__all__ = ["AGENT_CONFIG_DIR", "ExpertConfig", "ReplayBuffer", "TD3Config", "TD3Trainer", "expert_config_path",
           "expert_model_path", "load_expert", "load_expert_config", "td3_config"]
