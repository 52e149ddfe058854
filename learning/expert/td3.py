"""TD3 (Fujimoto et al., 2018) expert trainer, written for this project.

Twin critics Q1, Q2 are trained towards the clipped double-Q target
    y = r + γ (1 - terminated) min_j Q'_j(s', clip(μ'(s') + clip(ε, -c, c), -1, 1)),  ε ~ N(0, σ_target²),
and the deterministic actor μ maximises Q1(s, μ(s)) every ``policy_delay`` critic updates; target
networks track the online ones by Polyak averaging with rate τ.

The actor is a :class:`GaussianMLPPolicy` with a tanh-squashed mean and a fixed std equal to the
exploration noise, so the expert is an ordinary policy file that any agent can load.

Resuming: ``checkpoint.pt`` (networks, optimizers, RNG states, counters, the unfinished episode's
MuJoCo state) and ``replay.npz`` (the replay data) are written together every ``checkpoint_interval``
steps, at the end and on Ctrl-C / SIGTERM. Signals act only between two environment steps (the step
in progress, with its evaluation, finishes first), and a step's log row is written before its
checkpoint, so ``--resume`` continues exactly where the run stopped: an interrupted-and-resumed run
gives the same networks and the same log as an uninterrupted one, whatever the moment of the kill.
"""
from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from envs.builder import EnvConfig, action_bounds, env_dims, episode_seed, get_env_state, make_env, set_env_state
from learning.checkpoint import CheckpointError, atomic_torch_save, safe_torch_load, save_policy
from learning.evaluation import evaluate_policy
from learning.expert.replay_buffer import ReplayBuffer
from learning.lifecycle import Run
from learning.policy import GaussianMLPPolicy
from util.config import check_seed
from util.signals import StepBoundaryInterrupts

LOG_COLUMNS = [
    "Iteration", "Samples", "Wall_Time", "Train_Return", "Test_Return", "Test_Return_Std",
    "Critic_Loss", "Actor_Loss", "Q_Mean", "Episodes", "Steps_Per_Sec",
]


@dataclass
class TD3Config:
    """Hyper-parameters of the expert trainer (``trainer:`` section of ``data/agents/expert_<env>.yaml``)."""

    algo: str = "td3"
    total_steps: int = 1_000_000
    start_steps: int = 10_000          # uniform random actions before the actor acts
    learning_starts: int = 10_000      # first gradient update
    buffer_size: int = 1_000_000
    batch_size: int = 256
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    hidden_sizes: list[int] = field(default_factory=lambda: [256, 256])
    expl_noise: float = 0.1            # std of Gaussian exploration noise (normalized action units)
    policy_noise: float = 0.2          # target policy smoothing noise std
    noise_clip: float = 0.5
    policy_delay: int = 2
    normalize_obs: bool = False        # keep running obs statistics inside the actor
    eval_interval: int = 10_000        # one log row (iteration) per eval_interval steps
    eval_episodes: int = 5
    checkpoint_interval: int = 25_000
    seed: int = 0

    def validate(self) -> None:
        if self.algo != "td3":
            raise ValueError(f"trainer.algo must be 'td3' (the only trainer implemented), got '{self.algo}'")
        for name in ("total_steps", "buffer_size", "batch_size", "eval_interval", "checkpoint_interval", "policy_delay"):
            if getattr(self, name) <= 0:
                raise ValueError(f"trainer.{name} must be positive")
        if not 0 < self.gamma < 1 or not 0 < self.tau <= 1:
            raise ValueError("trainer.gamma must be in (0,1) and tau in (0,1]")
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise ValueError("trainer.hidden_sizes must be a non-empty list of positive widths")
        check_seed(self.seed, "trainer.seed")


class QEnsemble(nn.Module):
    """``n`` independent Q(s, a) MLPs evaluated together with batched matmuls.

    forward(obs (B, obs_dim), act (B, act_dim)) → Q values (n, B).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int], n: int = 2):
        super().__init__()
        dims = [obs_dim + act_dim, *hidden_sizes, 1]
        self.n = n
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, o in zip(dims[:-1], dims[1:]):
            bound = 1.0 / math.sqrt(i)  # same init as nn.Linear
            self.weights.append(nn.Parameter(torch.empty(n, i, o).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, o).uniform_(-bound, bound)))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, act], dim=-1).unsqueeze(0).expand(self.n, -1, -1)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if k < last:
                x = F.relu(x)
        return x.squeeze(-1)

    def member(self, obs: torch.Tensor, act: torch.Tensor, j: int = 0) -> torch.Tensor:
        """Q_j(s, a) only: (B,)."""
        x = torch.cat([obs, act], dim=-1)
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.addmm(b[j], x, w[j])
            if k < last:
                x = F.relu(x)
        return x.squeeze(-1)


def _adam(params, lr: float) -> torch.optim.Adam:
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


class TD3Trainer:
    """Trains an expert policy on one env; see module docstring."""

    def __init__(self, env_cfg: EnvConfig, cfg: TD3Config, run_dir: str | os.PathLike, progress: bool = True,
                 quiet: bool = False):
        """``quiet``: no progress bar and no printed log rows."""
        self.env_cfg, self.cfg = env_cfg, cfg
        self.run_dir = Path(run_dir)
        self.progress = progress and not quiet
        self.echo = not quiet
        self.env = make_env(env_cfg)
        self.eval_env = make_env(env_cfg)
        self.obs_dim, self.act_dim = env_dims(self.env)
        low, high = action_bounds(self.env)
        self.act_low, self.act_high = low, high

        torch.manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.actor = GaussianMLPPolicy(
            self.obs_dim, self.act_dim, cfg.hidden_sizes, low, high,
            squash_mean=True, log_std_init=math.log(cfg.expl_noise) if cfg.expl_noise > 0 else -5.0, learn_std=False,
        )
        self.critic = QEnsemble(self.obs_dim, self.act_dim, cfg.hidden_sizes, n=2)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = _adam(self.actor.net.parameters(), cfg.actor_lr)
        self.critic_opt = _adam(self.critic.parameters(), cfg.critic_lr)
        self.replay = ReplayBuffer(self.obs_dim, self.act_dim, min(cfg.buffer_size, cfg.total_steps))

        # counters (all saved in the checkpoint)
        self.step = 0
        self.updates = 0
        self.episode = 0
        self.iteration = 0
        self.wall_time = 0.0
        self.best_eval = -float("inf")
        self.recent_returns: list[float] = []
        self.last_losses: dict[str, float] = {}
        self._obs: np.ndarray | None = None           # current observation of the unfinished episode
        self._ep_return = 0.0
        self._episode_obs: list[np.ndarray] = []

    # ------------------------------------------------------------------ paths
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    @property
    def replay_path(self) -> Path:
        return self.run_dir / "replay.npz"

    # ------------------------------------------------------------------ update
    def _to_env_action(self, a: np.ndarray) -> np.ndarray:
        return self.act_low + (np.clip(a, -1.0, 1.0) + 1.0) * 0.5 * (self.act_high - self.act_low)

    def update(self) -> None:
        cfg = self.cfg
        idx = self.replay.sample_indices(cfg.batch_size, self.rng)
        obs, act, rew, nobs, term = (torch.from_numpy(x) for x in self.replay.get(idx))
        norm = self.actor.obs_normalizer
        with torch.no_grad():
            obs_n, nobs_n = norm(obs), norm(nobs)
            noise = (torch.randn_like(act) * cfg.policy_noise).clamp(-cfg.noise_clip, cfg.noise_clip)
            next_act = (torch.tanh(self.actor_target.net(nobs_n)) + noise).clamp(-1.0, 1.0)
            target_q = self.critic_target(nobs_n, next_act).min(dim=0).values
            y = rew + cfg.gamma * (1.0 - term) * target_q                      # (B,)
        q = self.critic(obs_n, act)                                            # (2, B)
        critic_loss = F.mse_loss(q, y.unsqueeze(0).expand_as(q), reduction="none").mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        self.updates += 1
        self.last_losses["Critic_Loss"] = float(critic_loss.detach())
        self.last_losses["Q_Mean"] = float(q.detach().mean())

        if self.updates % cfg.policy_delay == 0:
            self.critic.requires_grad_(False)
            actor_loss = -self.critic.member(obs_n, torch.tanh(self.actor.net(obs_n)), 0).mean()
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_opt.step()
            self.critic.requires_grad_(True)
            self.last_losses["Actor_Loss"] = float(actor_loss.detach())
            with torch.no_grad():
                for tgt, src in ((self.actor_target.net, self.actor.net), (self.critic_target, self.critic)):
                    tp, sp = list(tgt.parameters()), list(src.parameters())
                    torch._foreach_lerp_(tp, sp, cfg.tau)
                self.actor_target.obs_normalizer.load_state_dict(self.actor.obs_normalizer.state_dict())

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": "il-mujoco-td3-checkpoint",
            "version": 1,
            "env_id": self.env_cfg.env_id,
            "obs_dim": self.obs_dim,
            "act_dim": self.act_dim,
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "np_rng": self.rng.bit_generator.state,
            "counters": {
                "step": self.step, "updates": self.updates, "episode": self.episode,
                "iteration": self.iteration, "wall_time": self.wall_time, "best_eval": self.best_eval,
                "replay_size": self.replay.size, "replay_ptr": self.replay.ptr,
            },
            "recent_returns": list(self.recent_returns),
            "last_losses": dict(self.last_losses),
            # the unfinished episode, so that a resumed run continues it exactly
            "episode_state": None if self._obs is None else {
                "obs": torch.from_numpy(np.asarray(self._obs, np.float32).copy()),
                "ep_return": self._ep_return,
                "episode_obs": torch.from_numpy(np.asarray(self._episode_obs, np.float32)) if self.cfg.normalize_obs else None,
                "env": get_env_state(self.env),
            },
        }

    def save_checkpoint(self) -> None:
        self.replay.save(self.replay_path)          # replay first: the checkpoint names its size
        atomic_torch_save(self.state_dict(), self.checkpoint_path)

    def load_checkpoint(self) -> None:
        hint = (f"Start again with --overwrite instead of --resume, or point --run_dir at a folder holding a TD3 "
                f"checkpoint for {self.env_cfg.env_id}.")
        ck = safe_torch_load(self.checkpoint_path, "trainer checkpoint", hint)
        if not isinstance(ck, dict) or ck.get("format") != "il-mujoco-td3-checkpoint":
            raise CheckpointError(f"{self.checkpoint_path} is not a TD3 trainer checkpoint. {hint}")
        if ck["env_id"] != self.env_cfg.env_id or ck["obs_dim"] != self.obs_dim or ck["act_dim"] != self.act_dim:
            raise CheckpointError(f"{self.checkpoint_path} is for {ck['env_id']}, not {self.env_cfg.env_id}. {hint}")
        try:
            self.actor.load_state_dict(ck["actor"])
            self.critic.load_state_dict(ck["critic"])
            self.actor_target.load_state_dict(ck["actor_target"])
            self.critic_target.load_state_dict(ck["critic_target"])
            self.actor_opt.load_state_dict(ck["actor_opt"])
            self.critic_opt.load_state_dict(ck["critic_opt"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise CheckpointError(
                f"{self.checkpoint_path} does not match the configured networks ({str(e).splitlines()[0]}). "
                "Resume with the same trainer config it was written with."
            ) from None
        if not self.replay_path.is_file():
            raise CheckpointError(f"replay data {self.replay_path} is missing; cannot resume exactly. {hint}")
        self.replay.load(self.replay_path)
        c = ck["counters"]
        # the replay file can be newer than the checkpoint only if a save was cut between the two writes
        self.replay.size, self.replay.ptr = c["replay_size"], c["replay_ptr"]
        torch.set_rng_state(ck["torch_rng"])
        self.rng.bit_generator.state = ck["np_rng"]
        self.step, self.updates, self.episode = c["step"], c["updates"], c["episode"]
        self.iteration, self.wall_time, self.best_eval = c["iteration"], c["wall_time"], c["best_eval"]
        self.recent_returns = list(ck["recent_returns"])
        self.last_losses = dict(ck["last_losses"])
        ep = ck.get("episode_state")
        if ep is not None:
            self.env.reset(seed=episode_seed(self.cfg.seed, "train", self.episode))
            set_env_state(self.env, ep["env"])
            self._obs = ep["obs"].numpy().copy()
            self._ep_return = float(ep["ep_return"])
            self._episode_obs = list(ep["episode_obs"].numpy()) if ep.get("episode_obs") is not None else [self._obs]
        else:
            self._obs = None

    def policy_meta(self) -> dict[str, Any]:
        import gymnasium
        import mujoco

        return {
            "env_id": self.env_cfg.env_id, "env_name": self.env_cfg.name, "algo": "td3",
            "train_steps": self.step, "train_wall_time_s": round(self.wall_time, 1), "seed": self.cfg.seed,
            "gymnasium_version": gymnasium.__version__, "mujoco_version": mujoco.__version__,
        }

    # ------------------------------------------------------------------ main loop
    def run_settings(self) -> dict[str, Any]:
        """What defines this run (written to config.json; ``resume`` must match it)."""
        return {"agent": "expert", "env": self.env_cfg.name, "env_id": self.env_cfg.env_id, "config": asdict(self.cfg)}

    def train(self, resume: bool = False, max_steps: int | None = None, overwrite: bool = False) -> dict[str, float]:
        """Run until ``total_steps`` (or ``max_steps`` more steps, for tests); returns final stats.

        The run folder follows :class:`learning.lifecycle.Run`'s rules (lock; ``resume`` or ``overwrite``
        needed when it already holds a run). SIGINT/SIGTERM stop at the next step boundary with a checkpoint.
        """
        with Run(self.run_dir, self.run_settings(), resume=resume, overwrite=overwrite, progress=self.progress,
                 echo=self.echo, tensorboard=False) as run, StepBoundaryInterrupts() as signals:
            if run.resuming:
                self.load_checkpoint()
            run.start(LOG_COLUMNS, self.iteration if run.resuming else None, total=self.cfg.total_steps,
                      initial=self.step, desc=f"td3 {self.env_cfg.name}", unit="step", mininterval=5.0)
            self._train_loop(run, signals, max_steps)
        save_policy(self.run_dir / "model.pt", self.actor, self.policy_meta())
        return {"step": self.step, "best_eval": self.best_eval}

    def _train_loop(self, run: Run, signals: StepBoundaryInterrupts, max_steps: int | None) -> None:
        cfg = self.cfg
        stop_at = cfg.total_steps if max_steps is None else min(cfg.total_steps, self.step + max_steps)
        next_checkpoint = (self.step // cfg.checkpoint_interval + 1) * cfg.checkpoint_interval
        self._wall_base, self._session_start = self.wall_time, time.time()
        if self._obs is None:
            self._obs, _ = self.env.reset(seed=episode_seed(cfg.seed, "train", self.episode))
            self._ep_return, self._episode_obs = 0.0, [self._obs]
        t_iter, steps_iter = time.time(), self.step
        while self.step < stop_at:
            if signals.requested:  # a step boundary: the saved state is exactly an uninterrupted run's
                self._tick_wall_time()
                self.save_checkpoint()
                print(f"\nInterrupted at step {self.step}: checkpoint saved to {self.checkpoint_path}; "
                      "continue with --resume.")
                raise KeyboardInterrupt
            self._env_step()
            run.advance(1)
            if self.step % cfg.eval_interval == 0:  # the row first: a kill before the checkpoint redoes both
                now = time.time()
                self._tick_wall_time()
                row = self._evaluate_and_log(run, steps_per_sec=(self.step - steps_iter) / max(1e-9, now - t_iter))
                t_iter, steps_iter = time.time(), self.step
                run.advance(0, test=f"{row['Test_Return']:.0f}", best=f"{self.best_eval:.0f}")
            if self.step >= next_checkpoint:
                self._tick_wall_time()
                self.save_checkpoint()
                next_checkpoint = (self.step // cfg.checkpoint_interval + 1) * cfg.checkpoint_interval
        self._tick_wall_time()
        self.save_checkpoint()

    def _env_step(self) -> None:
        """One environment step, its replay entry and (after learning_starts) one TD3 update."""
        cfg = self.cfg
        obs = self._obs
        if self.step < cfg.start_steps:
            a = self.rng.uniform(-1.0, 1.0, self.act_dim).astype(np.float32)
        else:
            with torch.no_grad():
                mean = self.actor.mean_action(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0].numpy()
            a = np.clip(mean + self.rng.normal(0.0, cfg.expl_noise, self.act_dim), -1.0, 1.0).astype(np.float32)
        next_obs, r, terminated, truncated, _ = self.env.step(self._to_env_action(a))
        self.replay.add(obs, a, r, next_obs, terminated)
        self._ep_return += float(r)
        self._obs = next_obs
        if cfg.normalize_obs:
            self._episode_obs.append(next_obs)
        self.step += 1
        if self.step >= cfg.learning_starts:
            self.update()
        if terminated or truncated:
            self.recent_returns.append(self._ep_return)
            self.episode += 1
            if cfg.normalize_obs:
                self.actor.obs_normalizer.update(np.asarray(self._episode_obs))
            self._obs, _ = self.env.reset(seed=episode_seed(cfg.seed, "train", self.episode))
            self._ep_return, self._episode_obs = 0.0, [self._obs]

    def _tick_wall_time(self) -> None:
        """Total training wall time = time before this session + time in this session."""
        self.wall_time = self._wall_base + (time.time() - self._session_start)

    def _evaluate_and_log(self, run: Run, steps_per_sec: float) -> dict[str, float]:
        cfg = self.cfg
        res = evaluate_policy(self.eval_env, self.actor, cfg.eval_episodes, cfg.seed, purpose="eval")
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
        save_policy(self.run_dir / "model.pt", self.actor, self.policy_meta())
        if res.mean > self.best_eval:
            self.best_eval = res.mean
            save_policy(self.run_dir / "best_model.pt", self.actor, {**self.policy_meta(), "eval_return": res.mean})
        return row
