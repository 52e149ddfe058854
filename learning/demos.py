"""Expert demonstrations (``data/demos/<env>.npz``) and the supervised dataset built from them.

File layout (all plain arrays, readable with ``np.load(..., allow_pickle=False)``):
    obs (N, obs_dim) float32, actions (N, act_dim) float32 (env units), rewards (N,) float32,
    terminated (N,) bool, truncated (N,) bool, episode_starts (E,) int64, episode_lengths (E,) int64,
    episode_returns (E,) float64, episode_seeds (E,) int64, meta_json () str.
Step t of episode e is row ``episode_starts[e] + t``.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from util.config import REPO_ROOT

DEMO_DIR = REPO_ROOT / "data" / "demos"
DEMO_KEYS = ("obs", "actions", "rewards", "terminated", "truncated", "episode_starts", "episode_lengths",
             "episode_returns", "episode_seeds", "meta_json")


class DemoError(ValueError):
    """A demonstration file is missing, unsafe, corrupt or for another task."""


@dataclass
class Dataset:
    """Supervised imitation data: observations (N, obs_dim) and expert action labels (N, act_dim), env units."""

    obs: np.ndarray
    actions: np.ndarray

    def __post_init__(self) -> None:
        self.obs = np.asarray(self.obs, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        if self.obs.ndim != 2 or self.actions.ndim != 2 or len(self.obs) != len(self.actions):
            raise ValueError(f"Dataset needs obs (N, obs_dim) and actions (N, act_dim) with equal N; "
                             f"got {self.obs.shape} and {self.actions.shape}")

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @staticmethod
    def empty(obs_dim: int, act_dim: int) -> "Dataset":
        return Dataset(np.zeros((0, obs_dim), np.float32), np.zeros((0, act_dim), np.float32))

    def concat(self, other: "Dataset") -> "Dataset":
        """New dataset holding this one's rows followed by ``other``'s."""
        return Dataset(np.concatenate([self.obs, other.obs]), np.concatenate([self.actions, other.actions]))


@dataclass
class Demos:
    data: dict[str, np.ndarray]
    meta: dict[str, Any]
    path: Path

    @property
    def num_episodes(self) -> int:
        return int(len(self.data["episode_starts"]))

    def episode_slice(self, e: int) -> slice:
        s = int(self.data["episode_starts"][e])
        return slice(s, s + int(self.data["episode_lengths"][e]))

    def dataset(self, num_episodes: int | None = None) -> Dataset:
        """(obs, actions) of the first ``num_episodes`` episodes (all if None)."""
        n = self.num_episodes if num_episodes is None else int(num_episodes)
        if n < 1 or n > self.num_episodes:
            raise DemoError(f"{self.path} holds {self.num_episodes} episodes; asked for {n}. "
                            f"Use 1..{self.num_episodes} demo episodes or record more with tools/record_demos.py --episodes {n}.")
        end = int(self.data["episode_starts"][n - 1] + self.data["episode_lengths"][n - 1])
        return Dataset(self.data["obs"][:end], self.data["actions"][:end])


def demo_path(env_name: str) -> Path:
    return DEMO_DIR / f"{env_name}.npz"


def load_demos(path: str | os.PathLike, env_id: str | None = None, obs_dim: int | None = None,
               act_dim: int | None = None, env_name: str | None = None) -> Demos:
    """Load and validate a demo file (no pickle). Refuses files for another task."""
    path = Path(path)
    make = f"python tools/record_demos.py --env {env_name or '<env>'} --episodes 25"
    if not path.is_file():
        raise DemoError(f"Demo file not found: {path}. Create it with: {make}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in DEMO_KEYS if k not in f.files]
            if missing:
                raise DemoError(f"{path} is not a demo file of this project (missing arrays: {', '.join(missing)}). Re-create it with: {make}")
            data = {k: f[k] for k in DEMO_KEYS}
    except DemoError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise DemoError(f"Refusing to load {path}: it holds pickled Python objects, which demo files must not. Re-create it with: {make}") from None
        raise DemoError(f"{path} is corrupt ({e}). Re-create it with: {make}") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise DemoError(f"{path} is corrupt or not an .npz file ({type(e).__name__}: {e}). Re-create it with: {make}") from None
    try:
        meta = json.loads(str(data["meta_json"]))
    except json.JSONDecodeError:
        raise DemoError(f"{path} has unreadable metadata; re-create it with: {make}") from None
    if env_id is not None and meta.get("env_id") != env_id:
        raise DemoError(f"{path} holds demos for {meta.get('env_id')}, not {env_id}. Use the demo file for this env: {make}")
    obs, act = data["obs"], data["actions"]
    if obs.ndim != 2 or act.ndim != 2 or len(obs) != len(act):
        raise DemoError(f"{path} has inconsistent obs/actions arrays {obs.shape} / {act.shape}. Re-create it with: {make}")
    if obs_dim is not None and obs.shape[1] != obs_dim:
        raise DemoError(f"{path} has observations of size {obs.shape[1]}, this env gives {obs_dim}: the demos are for another task.")
    if act_dim is not None and act.shape[1] != act_dim:
        raise DemoError(f"{path} has actions of size {act.shape[1]}, this env takes {act_dim}: the demos are for another task.")
    if int(data["episode_lengths"].sum()) != len(obs):
        raise DemoError(f"{path}: episode lengths do not add up to the number of steps. Re-create it with: {make}")
    return Demos(data, meta, path)
