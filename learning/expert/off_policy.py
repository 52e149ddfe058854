"""What every off-policy expert trainer shares: the environment loop, replay, evaluation, log, checkpoints (the run
itself, its clocks and interrupts are :class:`learning.trainer.Trainer`'s; model files, snapshots and the warm start's
run options :class:`learning.expert.base.ExpertTrainer`'s).

An algorithm (:mod:`learning.expert.td3`, :mod:`learning.expert.sac`) subclasses :class:`OffPolicyTrainer`
and supplies its networks and optimizers (``saved_modules``), its exploration action and one gradient
``update`` on a replay batch. It also supplies ``policy()``: the deterministic actor as an ordinary
:class:`GaussianMLPPolicy` (tanh-squashed mean), which is what is evaluated and written to ``model.pt``,
so every expert file has the same plain layout whatever algorithm trained it.

Two ways to continue a run:

* ``resume`` (exact): ``checkpoint.pt`` (networks, optimizers, RNG states, counters, the unfinished
  episode's MuJoCo state) and ``replay.npz`` (the replay data) are written together every
  ``checkpoint_interval`` steps, at the end and on Ctrl-C / SIGTERM. Signals act only between two
  environment steps and a step's log row is written before its checkpoint, so an interrupted-and-resumed
  run gives the same networks and the same log as an uninterrupted one, whatever the moment of the kill.
* ``warm_start`` (from a compact checkpoint, :func:`learning.expert.base.save_compact`): only ``checkpoint.pt``, ``log.txt`` and
  the candidate models, a few MB, small enough to commit (``data/training/<env>/``) and so to survive a
  move to a fresh machine. The replay buffer (hundreds of MB) is not kept: the warm-started run refills it
  with ``refill_steps`` environment steps of the current actor with its exploration noise, without
  updates, then trains on as before. It is deterministic (the same compact checkpoint gives the same run)
  but not bit-identical to a run that was never stopped, whose replay held older experience too.
  Warm-starting from a run folder that still holds its ``replay.npz`` loads that replay instead of refilling.
  Either way the new config's settings apply (e.g. a lower learning rate to polish a converged run).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.builder import EnvConfig, episode_seed, get_env_state, set_env_state
from learning.checkpoint import CheckpointError, atomic_torch_save, safe_torch_load
from learning.evaluation import evaluate_policy
from learning.expert.base import ExpertTrainer
from learning.expert.replay_buffer import ReplayBuffer
from learning.lifecycle import Run, settings_differences
from util.config import check_seed

LOG_COLUMNS = [
    "Iteration", "Samples", "Wall_Time", "Train_Return", "Test_Return", "Test_Return_Std",
    "Critic_Loss", "Actor_Loss", "Q_Mean", "Episodes", "Steps_Per_Sec",
]


@dataclass
class OffPolicyConfig:
    """Settings every off-policy trainer has (``trainer:`` section of ``data/agents/expert_<env>.yaml``)."""

    algo: str = ""
    total_steps: int = 1_000_000
    start_steps: int = 10_000          # uniform random actions before the actor acts
    learning_starts: int = 10_000      # first gradient update
    buffer_size: int = 1_000_000
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005                 # Polyak rate of the target networks
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])   # the actor (the shipped policy)
    eval_interval: int = 10_000        # one log row (iteration) per eval_interval steps
    eval_episodes: int = 5
    checkpoint_interval: int = 25_000
    refill_steps: int = 100_000        # warm start: environment steps that refill the replay before updates resume
    seed: int = 0

    ALGO = ""

    def validate(self) -> None:
        if self.algo != self.ALGO:
            raise ValueError(f"trainer.algo must be '{self.ALGO}' for this trainer, got '{self.algo}'")
        for name in ("total_steps", "buffer_size", "batch_size", "eval_interval", "checkpoint_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"trainer.{name} must be positive")
        for name in ("start_steps", "learning_starts", "refill_steps", "eval_episodes"):
            if getattr(self, name) < 0:
                raise ValueError(f"trainer.{name} must be at least 0")
        if not 0 < self.gamma < 1 or not 0 < self.tau <= 1:
            raise ValueError("trainer.gamma must be in (0,1) and tau in (0,1]")
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise ValueError("trainer.hidden_sizes must be a non-empty list of positive widths")
        check_seed(self.seed, "trainer.seed")


class OffPolicyTrainer(ExpertTrainer):
    """Trains an expert policy on one env by an off-policy actor-critic; see the module docstring.

    Subclasses build their networks in ``__init__`` (after calling this one) and implement
    ``saved_modules``, ``explore_action``, ``update`` and ``policy``.
    """

    LOG_COLUMNS = LOG_COLUMNS
    unit = "step"

    def __init__(self, env_cfg: EnvConfig, cfg: OffPolicyConfig, out_dir: str | os.PathLike, progress: bool = True,
                 quiet: bool = False):
        """``quiet``: no progress bar and no printed log rows."""
        super().__init__(env_cfg, cfg, out_dir, progress, quiet)
        self.replay = ReplayBuffer(self.obs_dim, self.act_dim, min(cfg.buffer_size, cfg.total_steps))

        # counters beyond ExpertTrainer's (all saved in the checkpoint)
        self.updates = 0
        self.cpu_time_estimated = 0.0     # the part of cpu_time that was estimated, not measured (older runs)
        self.refill_left = 0              # warm start: refill steps still to take before training goes on
        self.refill_steps_total = 0       # environment steps spent refilling replays (not counted in `step`)
        self.recent_returns: list[float] = []
        self.last_losses: dict[str, float] = {}
        self._obs: np.ndarray | None = None           # current observation of the unfinished episode
        self._ep_return = 0.0
        self._episode_obs: list[np.ndarray] = []

    # ------------------------------------------------------------------ what an algorithm supplies
    def saved_modules(self) -> dict[str, Any]:
        """Name → nn.Module / optimizer / tensor holder saved in (and restored from) the checkpoint."""
        raise NotImplementedError

    def explore_action(self, obs: np.ndarray) -> np.ndarray:
        """The behaviour action for raw obs (obs_dim,) after ``start_steps``: normalized, (act_dim,) in [-1, 1]."""
        raise NotImplementedError

    def update(self) -> None:
        """One gradient update from a replay batch; sets ``self.last_losses``; increments ``self.updates``."""
        raise NotImplementedError

    @property
    def uses_obs_statistics(self) -> bool:
        """Whether running observation statistics are kept (then each episode's observations are collected)."""
        return False

    def update_obs_statistics(self, episode_obs: np.ndarray) -> None:
        """Merge one finished episode's observations (T+1, obs_dim) into running statistics, if kept."""

    # ------------------------------------------------------------------ paths
    @property
    def replay_path(self) -> Path:
        return self.out_dir / "replay.npz"

    @property
    def checkpoint_format(self) -> str:
        return f"il-mujoco-{self.ALGO}-checkpoint"

    def sample_batch(self) -> tuple[torch.Tensor, ...]:
        """A uniform replay batch: obs (B, obs_dim), act (B, act_dim) normalized, rew (B,), next_obs (B, obs_dim),
        terminated (B,)."""
        idx = self.replay.sample_indices(self.cfg.batch_size, self.rng)
        return tuple(torch.from_numpy(x) for x in self.replay.get(idx))

    def _to_env_action(self, a: np.ndarray) -> np.ndarray:
        return self.action_low + (np.clip(a, -1.0, 1.0) + 1.0) * 0.5 * (self.action_high - self.action_low)

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": self.checkpoint_format,
            "version": 1,
            "env_id": self.env_cfg.env_id,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            **{name: m.state_dict() for name, m in self.saved_modules().items()},
            "torch_rng": torch.get_rng_state(),
            "np_rng": self.rng.bit_generator.state,
            "counters": {
                "step": self.step, "updates": self.updates, "episode": self.episode,
                "iteration": self.iteration, "wall_time": self.wall_time, "best_eval": self.best_eval,
                "cpu_time": self.cpu_time, "cpu_time_estimated": self.cpu_time_estimated,
                "replay_size": self.replay.size, "replay_ptr": self.replay.ptr,
                "refill_left": self.refill_left, "refill_steps_total": self.refill_steps_total,
                "warm_starts": self.warm_starts, "snapshots": [list(x) for x in self.snapshots],
            },
            "recent_returns": list(self.recent_returns),
            "last_losses": dict(self.last_losses),
            # the unfinished episode, so that a resumed run continues it exactly
            "episode_state": None if self._obs is None else {
                "obs": torch.from_numpy(np.asarray(self._obs, np.float32).copy()),
                "ep_return": self._ep_return,
                "episode_obs": torch.from_numpy(np.asarray(self._episode_obs, np.float32))
                if self.uses_obs_statistics else None,
                "env": get_env_state(self.env),
            },
        }

    def save_checkpoint(self) -> None:
        self.replay.save(self.replay_path)          # replay first: the checkpoint names its size
        atomic_torch_save(self.state_dict(), self.checkpoint_path)

    def _read_checkpoint(self, path: Path, hint: str) -> dict[str, Any]:
        ck = safe_torch_load(path, "trainer checkpoint", hint)
        if not isinstance(ck, dict) or ck.get("format") != self.checkpoint_format:
            found = ck.get("format") if isinstance(ck, dict) else None
            raise CheckpointError(f"{path} is not a {self.ALGO.upper()} trainer checkpoint"
                                  f"{f' (it is {found!r})' if found else ''}. {hint}")
        if ck["env_id"] != self.env_cfg.env_id or ck["obs_dim"] != self.obs_dim or ck["act_dim"] != self.act_dim:
            raise CheckpointError(f"{path} is for {ck['env_id']}, not {self.env_cfg.env_id}. {hint}")
        try:
            for name, m in self.saved_modules().items():
                m.load_state_dict(ck[name])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(
                f"{path} does not match the configured networks ({str(e).splitlines()[0]}). "
                "Continue with the same trainer config it was written with."
            ) from None
        return ck

    def _restore_counters(self, ck: dict[str, Any]) -> None:
        c = ck["counters"]
        torch.set_rng_state(ck["torch_rng"])
        self.rng.bit_generator.state = ck["np_rng"]
        self.step, self.updates, self.episode = c["step"], c["updates"], c["episode"]
        self.iteration, self.wall_time, self.best_eval = c["iteration"], c["wall_time"], c["best_eval"]
        self.refill_left = c.get("refill_left", 0)
        self.cpu_time = c.get("cpu_time", c["wall_time"])   # older checkpoints: wall time, an upper bound
        self.cpu_time_estimated = c.get("cpu_time_estimated", 0.0 if "cpu_time" in c else c["wall_time"])
        self.refill_steps_total = c.get("refill_steps_total", 0)
        self.warm_starts = c.get("warm_starts", 0)
        self.snapshots = [(float(r), int(st)) for r, st in c.get("snapshots", [])]
        self.recent_returns = list(ck["recent_returns"])
        self.last_losses = dict(ck["last_losses"])

    def load_checkpoint(self) -> None:
        """Exact resume from ``run_dir``: checkpoint.pt and replay.npz."""
        hint = (f"Start again with --overwrite instead of --resume, or point --run_dir at a folder holding a "
                f"{self.ALGO.upper()} checkpoint for {self.env_cfg.env_id}.")
        ck = self._read_checkpoint(self.checkpoint_path, hint)
        if not self.replay_path.is_file():
            raise CheckpointError(
                f"replay data {self.replay_path} is missing; cannot resume exactly. To continue from the networks "
                f"alone (the replay is refilled), use --warm_start {self.out_dir} with a new --run_dir.")
        self.replay.load(self.replay_path)
        c = ck["counters"]
        # the replay file can be newer than the checkpoint only if a save was cut between the two writes
        self.replay.size, self.replay.ptr = c["replay_size"], c["replay_ptr"]
        self._restore_counters(ck)
        ep = ck.get("episode_state")
        if ep is not None:
            self.env.reset(seed=episode_seed(self.cfg.seed, "train", self.episode))
            set_env_state(self.env, ep["env"])
            self._obs = ep["obs"].numpy().copy()
            self._ep_return = float(ep["ep_return"])
            self._episode_obs = list(ep["episode_obs"].numpy()) if ep.get("episode_obs") is not None else [self._obs]
        else:
            self._obs = None

    def load_warm_start(self, source: Path) -> None:
        """Continue from a compact checkpoint (networks, optimizers, RNG, counters; no replay) or a run folder.

        The unfinished episode is dropped (the next one starts). The config's learning rates replace the
        checkpoint's. A run folder's ``replay.npz`` (same machine) is loaded; otherwise no update happens during
        the next ``refill_steps`` steps, so the new replay holds the current actor's experience first.
        """
        path = source / "checkpoint.pt" if source.is_dir() else source
        hint = (f"--warm_start takes a compact checkpoint folder written by --save_compact (or a run folder) "
                f"of a {self.ALGO.upper()} run on {self.env_cfg.env_id}.")
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}. {hint}")
        # the optimizers' saved states carry the old run's learning rates; this run's config decides
        # (a lower learning rate to polish a converged run is a reason to warm start)
        optimizers = [m for m in self.saved_modules().values() if isinstance(m, torch.optim.Optimizer)]
        config_lrs = [[g["lr"] for g in opt.param_groups] for opt in optimizers]
        ck = self._read_checkpoint(path, hint)
        for opt, lrs in zip(optimizers, config_lrs, strict=True):
            for group, lr in zip(opt.param_groups, lrs, strict=True):
                group["lr"] = lr
        saved = path.parent / "config.json"
        if saved.is_file():   # e.g. a longer total_steps is a reason to warm start; say what changed
            try:
                diffs = settings_differences(json.loads(saved.read_text(encoding="utf-8")), self.run_settings())
            except (OSError, ValueError):
                diffs = ["(its config.json is unreadable)"]
            if diffs:
                print(f"note: this run's settings differ from the checkpoint's run: {'; '.join(diffs)}")
        self._restore_counters(ck)
        self.episode += 1
        self._obs = None
        self.recent_returns = []
        self.warm_starts += 1
        replay = path.parent / self.replay_path.name
        if replay.is_file():
            # a run folder on this machine: keep its experience (a replay of only the current actor's
            # steps is narrow, and critics fitted to it can mislead a converged actor)
            try:
                self.replay.load(replay)      # with the file's own size and write position
            except ValueError as e:           # e.g. another buffer_size: refill instead
                print(f"note: {e}; refilling instead.")
            else:
                self.refill_left = 0
                print(f"Warm start from {path} at step {self.step} (iteration {self.iteration}, best evaluation "
                      f"{self.best_eval:.1f}) with its replay ({self.replay.size} transitions from {replay}).")
                return
        refill = min(self.cfg.refill_steps, self.replay.capacity)
        self.refill_left = refill
        print(f"Warm start from {path} at step {self.step} (iteration {self.iteration}, best evaluation "
              f"{self.best_eval:.1f}): refilling the replay with {refill} steps before updates resume.")

    def policy_meta(self) -> dict[str, Any]:
        import gymnasium
        import mujoco

        return {
            "env_id": self.env_cfg.env_id, "env_name": self.env_cfg.name, "algo": self.ALGO,
            "train_steps": self.step, "train_wall_time_s": round(self.wall_time, 1),
            "train_cpu_time_s": round(self.cpu_time, 1),
            "train_cpu_time_estimated_s": round(self.cpu_time_estimated, 1), "seed": self.cfg.seed,
            "refill_steps": self.refill_steps_total, "warm_starts": self.warm_starts,
            "gymnasium_version": gymnasium.__version__, "mujoco_version": mujoco.__version__,
        }

    # ------------------------------------------------------------------ main loop
    def progress_total(self) -> int:
        return self.cfg.total_steps

    def progress_position(self) -> int:
        return self.step

    def train(self) -> None:
        """Step until ``total_steps`` (or ``max_steps`` more steps); inside :meth:`run`."""
        cfg, run = self.cfg, self._run
        stop_at = cfg.total_steps if self._max_steps is None else min(cfg.total_steps, self.step + self._max_steps)
        next_checkpoint = (self.step // cfg.checkpoint_interval + 1) * cfg.checkpoint_interval
        if self._obs is None:
            self._start_episode()
        t_iter, steps_iter = time.time(), self.step
        while self.step < stop_at:
            self.step_boundary()   # a signal stops the run here: the saved state is exactly an uninterrupted run's
            if self.refill_left > 0:   # warm start: refill the replay first (these steps are not counted)
                self._refill_step()
                continue
            self._env_step()
            run.advance(1)
            if self.step % cfg.eval_interval == 0:  # the row first: a kill before the checkpoint redoes both
                now = time.time()
                self.tick()
                row = self._evaluate_and_log(run, steps_per_sec=(self.step - steps_iter) / max(1e-9, now - t_iter))
                t_iter, steps_iter = time.time(), self.step
                run.advance(0, test=f"{row['Test_Return']:.0f}", best=f"{self.best_eval:.0f}")
            if self.step >= next_checkpoint:
                self.tick()
                self.save_checkpoint()
                next_checkpoint = (self.step // cfg.checkpoint_interval + 1) * cfg.checkpoint_interval

    def _start_episode(self) -> None:
        self._obs, _ = self.env.reset(seed=episode_seed(self.cfg.seed, "train", self.episode))
        self._ep_return, self._episode_obs = 0.0, [self._obs]

    def _act_and_store(self, explore_uniform: bool) -> tuple[bool, bool]:
        """Act once (uniformly or with the exploration policy) and store the transition.

        Returns (terminated, truncated)."""
        obs = self._obs
        if explore_uniform:
            a = self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
        else:
            a = np.clip(self.explore_action(obs), -1.0, 1.0).astype(np.float32)
        next_obs, r, terminated, truncated, _ = self.env.step(self._to_env_action(a))
        self.replay.add(obs, a, r, next_obs, terminated)
        self._ep_return += float(r)
        self._obs = next_obs
        if self.uses_obs_statistics:
            self._episode_obs.append(next_obs)
        return terminated, truncated

    def _end_episode_if(self, done: bool) -> None:
        if done:
            self.recent_returns.append(self._ep_return)
            self.episode += 1
            if self.uses_obs_statistics:
                self.update_obs_statistics(np.asarray(self._episode_obs))
            self._start_episode()

    def _env_step(self) -> None:
        """One environment step, its replay entry and (after learning_starts) one gradient update."""
        terminated, truncated = self._act_and_store(explore_uniform=self.step < self.cfg.start_steps)
        self.step += 1
        if self.step >= self.cfg.learning_starts:
            self.update()
        self._end_episode_if(terminated or truncated)

    def _refill_step(self) -> None:
        """Warm start: one step of the current actor (with its exploration) into the replay.

        No update, and ``step`` does not count it (``refill_steps_total`` does)."""
        terminated, truncated = self._act_and_store(explore_uniform=False)
        self.refill_steps_total += 1
        self.refill_left -= 1
        self._end_episode_if(terminated or truncated)
        if self.refill_left == 0:
            self.recent_returns = []   # the next log row's training return is the training episodes' only

    def _evaluate_and_log(self, run: Run, steps_per_sec: float) -> dict[str, float]:
        cfg = self.cfg
        policy = self.policy()
        res = evaluate_policy(self.eval_env, policy, cfg.eval_episodes, cfg.seed, purpose="eval")
        self.iteration += 1
        train_ret = float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")
        row = {
            "Iteration": self.iteration, "Samples": self.step, "Wall_Time": round(self.wall_time, 2),
            "Train_Return": train_ret, "Test_Return": res.mean, "Test_Return_Std": res.std,
            "Critic_Loss": self.last_losses.get("Critic_Loss", float("nan")),
            "Actor_Loss": self.last_losses.get("Actor_Loss", float("nan")),
            "Q_Mean": self.last_losses.get("Q_Mean", float("nan")),
            "Episodes": self.episode, "Steps_Per_Sec": round(steps_per_sec, 1),
        }
        run.log(row)
        self.recent_returns = []
        self.keep_policy(policy, res.mean)
        return row
