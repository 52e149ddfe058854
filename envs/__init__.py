"""Environment configs and the single env builder."""
from envs.builder import EnvConfig, action_bounds, available_envs, env_dims, episode_seed, make_env, resolve_env_config

__all__ = ["EnvConfig", "action_bounds", "available_envs", "env_dims", "episode_seed", "make_env", "resolve_env_config"]
