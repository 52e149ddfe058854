"""Expert demonstrations (``data/demos/<env>.npz``) and the supervised dataset built from them.

File layout (format version 2; all plain arrays, readable with ``np.load(..., allow_pickle=False)``),
with N = total steps and E = episodes:

    obs              (N, obs_dim) float32  observation before step t (the policy's input)
    actions          (N, act_dim) float32  expert action taken at step t, env units ([low, high])
    rewards          (N,)         float32  reward of step t
    terminated       (N,)         bool     step t ended the episode in a terminal state (e.g. the robot fell)
    truncated        (N,)         bool     step t ended the episode by the time limit
    final_obs        (E, obs_dim) float32  observation returned by episode e's last step (its last next-observation)
    episode_starts   (E,)         int64    first row of episode e (0, then the running sum of the lengths)
    episode_lengths  (E,)         int64    steps in episode e (>= 1)
    episode_returns  (E,)         float64  sum of episode e's rewards (accumulated in float64)
    episode_seeds    (E,)         int64    reset seed of episode e
    meta_json        ()           str      JSON: format, format_version, env id, library versions, expert checksum, ...

Step t of episode e is row ``episode_starts[e] + t``; its next observation is row ``episode_starts[e] + t + 1``,
or ``final_obs[e]`` for the episode's last step. Exactly the last step of each episode has
``terminated or truncated`` set.
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
from util.errors import UserError

DEMO_DIR = REPO_ROOT / "data" / "demos"
FORMAT_NAME = "il-mujoco-demos"
FORMAT_VERSION = 2
DEMO_KEYS = ("obs", "actions", "rewards", "terminated", "truncated", "final_obs", "episode_starts",
             "episode_lengths", "episode_returns", "episode_seeds", "meta_json")
# arrays with one row per step / per episode, and the dtype kind each must have (f float, b bool, i integer)
STEP_KEYS = {"obs": "f", "actions": "f", "rewards": "f", "terminated": "b", "truncated": "b"}
EPISODE_KEYS = {"final_obs": "f", "episode_starts": "i", "episode_lengths": "i", "episode_returns": "f",
                "episode_seeds": "i"}


class DemoError(UserError):
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
    """A validated demo file: ``data`` maps each key of :data:`DEMO_KEYS` to its array; ``meta`` is the parsed
    meta_json."""

    data: dict[str, np.ndarray]
    meta: dict[str, Any]
    path: Path

    @property
    def num_episodes(self) -> int:
        return int(len(self.data["episode_starts"]))

    def episode_slice(self, e: int) -> slice:
        """Rows of episode ``e`` in the step arrays (obs, actions, rewards, terminated, truncated)."""
        s = int(self.data["episode_starts"][e])
        return slice(s, s + int(self.data["episode_lengths"][e]))

    def episode(self, e: int) -> dict[str, np.ndarray]:
        """Episode ``e`` with T = its length: observations (T + 1, obs_dim) including the final one,
        actions (T, act_dim), rewards / terminations / truncations (T,)."""
        sl, d = self.episode_slice(e), self.data
        return {"observations": np.concatenate([d["obs"][sl], d["final_obs"][e][None]]),
                "actions": d["actions"][sl], "rewards": d["rewards"][sl],
                "terminations": d["terminated"][sl], "truncations": d["truncated"][sl]}

    def dataset(self, num_episodes: int | None = None) -> Dataset:
        """(obs, actions) of the first ``num_episodes`` episodes (all if None): exactly their rows."""
        n = self.num_episodes if num_episodes is None else int(num_episodes)
        if n < 1 or n > self.num_episodes:
            raise DemoError(f"{self.path} holds {self.num_episodes} episodes; asked for {n}. "
                            f"Use 1..{self.num_episodes} demo episodes or record more with "
                            f"tools/record_demos.py --episodes {n}.")
        end = self.episode_slice(n - 1).stop   # episodes are contiguous from row 0 (checked by load_demos)
        return Dataset(self.data["obs"][:end], self.data["actions"][:end])


def write_first_episodes(src: str | os.PathLike, dest: str | os.PathLike, num_episodes: int) -> int:
    """Write a demo file holding only the first ``num_episodes`` episodes of ``src`` (same format, validated on
    load); returns its rows. The grader gives a check exactly the demo rows its config grants, and nothing more."""
    demos = load_demos(src)
    n = int(num_episodes)
    if not 1 <= n <= demos.num_episodes:
        raise DemoError(f"{src} holds {demos.num_episodes} episodes; asked for {n}")
    rows = int(demos.data["episode_lengths"][:n].sum())
    out = {k: demos.data[k][:rows] for k in STEP_KEYS}
    out.update({k: demos.data[k][:n] for k in EPISODE_KEYS})
    meta = dict(demos.meta, episodes=n, note=f"the first {n} episodes of {Path(src).name}")
    np.savez(dest, meta_json=np.array(json.dumps(meta)), **out)
    return rows


def demo_path(env_name: str) -> Path:
    return DEMO_DIR / f"{env_name}.npz"


def _check_arrays(data: dict[str, np.ndarray], path: Path, make: str) -> None:
    """Raise DemoError (naming ``path`` and the first bad episode) unless ``data`` is a consistent demo set."""
    def bad(what: str, episode: int | None = None) -> DemoError:
        where = f" (first bad episode: {episode})" if episode is not None else ""
        return DemoError(f"{path} is inconsistent: {what}{where}. Re-create it with: {make}")

    kinds = {**STEP_KEYS, **EPISODE_KEYS}
    for k, kind in kinds.items():
        if data[k].dtype.kind != kind and not (kind == "i" and data[k].dtype.kind == "u"):
            want = {"f": "floating-point", "b": "bool", "i": "integer"}[kind]
            raise bad(f"'{k}' has dtype {data[k].dtype}, expected {want}")
    if data["meta_json"].dtype.kind != "U" or data["meta_json"].ndim != 0:
        raise bad(f"'meta_json' must be a single string, got {data['meta_json'].dtype} of shape "
                  f"{data['meta_json'].shape}")
    obs, act = data["obs"], data["actions"]
    if obs.ndim != 2 or act.ndim != 2:
        raise bad(f"obs and actions must be 2-D (steps, size), got {obs.shape} / {act.shape}")
    n = len(obs)
    lengths = data["episode_lengths"]
    if lengths.ndim != 1 or len(lengths) == 0:
        raise bad(f"episode_lengths must be a non-empty 1-D array, got shape {lengths.shape}")
    num_ep = len(lengths)
    for k in STEP_KEYS:
        want = (n,) + data[k].shape[1:] if k in ("obs", "actions") else (n,)
        if data[k].shape != want:
            raise bad(f"'{k}' has shape {data[k].shape}, expected {want} (one row per step of 'obs')")
    for k in EPISODE_KEYS:
        want = (num_ep, obs.shape[1]) if k == "final_obs" else (num_ep,)
        if data[k].shape != want:
            raise bad(f"'{k}' has shape {data[k].shape}, expected {want} (one row per episode)")
    if (lengths < 1).any():
        e = int(np.argmax(lengths < 1))
        raise bad(f"episode {e} has length {int(lengths[e])}; every episode needs at least one step", e)
    if int(lengths.sum()) != n:
        raise bad(f"episode_lengths add up to {int(lengths.sum())} steps but obs/actions/rewards have {n} rows")
    ends = np.cumsum(lengths)
    expected = ends - lengths
    starts = data["episode_starts"]
    if (starts != expected).any():
        e = int(np.argmax(starts != expected))
        raise bad(f"episode_starts[{e}] is {int(starts[e])} but episodes {0}..{e - 1} end at row {int(expected[e])} "
                  f"(episode_starts must be 0 followed by the running sum of episode_lengths)", e)
    for k in ("obs", "actions", "rewards"):
        row_ok = np.isfinite(data[k]).reshape(n, -1).all(axis=1)
        if not row_ok.all():
            r = int(np.argmin(row_ok))
            e = int(np.searchsorted(ends, r, side="right"))
            raise bad(f"'{k}' holds NaN or inf at row {r}", e)
    for k in ("final_obs", "episode_returns"):
        ep_ok = np.isfinite(data[k]).reshape(num_ep, -1).all(axis=1)
        if not ep_ok.all():
            e = int(np.argmin(ep_ok))
            raise bad(f"'{k}' holds NaN or inf", e)
    done = data["terminated"] | data["truncated"]
    last = np.zeros(n, bool)
    last[ends - 1] = True
    if (done != last).any():
        r = int(np.argmax(done != last))
        e = int(np.searchsorted(ends, r, side="right"))
        what = ("its last step is neither terminated nor truncated" if last[r]
                else f"it ends (terminated or truncated) at row {r}, before its last step")
        raise bad(f"episode {e}: {what}", e)


def load_demos(path: str | os.PathLike, env_id: str | None = None, obs_dim: int | None = None,
               act_dim: int | None = None, env_name: str | None = None) -> Demos:
    """Load and validate a demo file (no pickle). Refuses files for another task and inconsistent files.

    Raises :class:`DemoError` (a ValueError, which the command-line tools print as one ``error:`` line)
    naming the file and, where it applies, the first bad episode.
    """
    path = Path(path)
    make = f"python tools/record_demos.py --env {env_name or '<env>'} --episodes 25 --overwrite"
    if not path.is_file():
        raise DemoError(f"Demo file not found: {path}. Create it with: {make}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in DEMO_KEYS if k not in f.files]
            if missing == ["final_obs"]:
                raise DemoError(f"{path} was written by an older tools/record_demos.py (no 'final_obs' array, "
                                f"format version 1). Upgrade it with: python tools/record_demos.py --env "
                                f"{env_name or '<env>'} --out {path} --add_final_obs --overwrite")
            if missing:
                raise DemoError(f"{path} is not a demo file of this project (missing arrays: {', '.join(missing)}). "
                                f"Re-create it with: {make}")
            data = {k: f[k] for k in DEMO_KEYS}
    except DemoError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise DemoError(f"Refusing to load {path}: it holds pickled Python objects, which demo files must not. "
                            f"Re-create it with: {make}") from None
        raise DemoError(f"{path} is corrupt ({e}). Re-create it with: {make}") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise DemoError(f"{path} is corrupt or not an .npz file ({type(e).__name__}: {e}). "
                        f"Re-create it with: {make}") from None
    try:
        meta = json.loads(str(data["meta_json"]))
        if not isinstance(meta, dict):
            raise json.JSONDecodeError("not a JSON object", str(data["meta_json"]), 0)
    except json.JSONDecodeError:
        raise DemoError(f"{path} has unreadable metadata; re-create it with: {make}") from None
    if env_id is not None and meta.get("env_id") != env_id:
        raise DemoError(f"{path} holds demos for {meta.get('env_id')}, not {env_id}. "
                        f"Use the demo file for this env: {make}")
    _check_arrays(data, path, make)
    obs, act = data["obs"], data["actions"]
    if obs_dim is not None and obs.shape[1] != obs_dim:
        raise DemoError(f"{path} has observations of size {obs.shape[1]}, this env gives {obs_dim}: "
                        "the demos are for another task.")
    if act_dim is not None and act.shape[1] != act_dim:
        raise DemoError(f"{path} has actions of size {act.shape[1]}, this env takes {act_dim}: "
                        "the demos are for another task.")
    return Demos(data, meta, path)
