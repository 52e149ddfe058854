"""Augmented Random Search (Mania, Guy & Recht, 2018, "ARS V2-t") that polishes a trained actor, written for this
project.

An off-policy trainer's actor levels off where its critics stop showing it a better action (hopper: TQC held
3560–3610 from 840k to 1.1M steps, and three polishes at a lower learning rate did no better). ARS improves the
actor on the measured objective itself, its return, with no critic:

    θ: every weight and bias of the actor's network, s: each tensor's RMS in the starting policy (a per-tensor
    scale, so that one noise size suits layers of different magnitudes)
    each iteration:
        δ_1 .. δ_N ~ N(0, I)                                        (N = directions)
        r_k^± = return of θ ± ν s⊙δ_k, both on the same reset seeds  (ν = noise)
        keep the b directions with the largest max(r_k^+, r_k^-)     (b = top_directions)
        σ_R = std of those 2b returns
        θ ← θ + α / (b σ_R) · Σ_k (r_k^+ − r_k^-) s⊙δ_k              (α = step_size)

The rollouts act with the actor's mean action plus N(0, σ_a²) noise (σ_a = action_noise, drawn from each
episode's seed, so +δ and -δ meet the same noise). With σ_a = 0 the return climbed is the deterministic one, and
it can rise through a gait that falls after small errors: a poor expert to imitate (hopper, session 10: from
3622 to 3842, but BC on 25 of its demos reached 35%). With σ_a = 0.1 the gait must also recover from small
errors, as an imitator's must (hopper's shipped expert: BC on 25 of its demos reaches about 99%).

It starts from a policy file (``init_policy``: e.g. a TQC run's best model) and changes only the network's
layers; the observation normalizer, action scaling and log_std stay, so the result is an ordinary policy file.
Rollouts use a NumPy copy of the network (float64, ~5x faster than torch at batch size 1); the log's evaluations,
the snapshots and ``--install`` evaluate the saved torch policy, as for every expert.

Its whole state is θ, the RNG state and counters, a few hundred KB: ``checkpoint.pt`` alone continues the run
exactly on any machine (``--resume``; ``--save_compact`` then ``--warm_start`` continue it bit for bit, as there
is no replay to refill). A signal stops it at the next rollout boundary; the unfinished iteration is redone.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from envs.builder import EnvConfig, episode_seed
from learning.checkpoint import CheckpointError, atomic_torch_save, load_policy, safe_torch_load
from learning.evaluation import evaluate_policy
from learning.expert.base import ExpertTrainer
from learning.lifecycle import Run
from learning.policy import GaussianMLPPolicy
from util.config import REPO_ROOT, ConfigError, check_seed
from util.fsio import file_sha256

LOG_COLUMNS = ["Iteration", "Samples", "Wall_Time", "Train_Return", "Test_Return", "Test_Return_Std",
               "Step_Norm", "Episodes", "Steps_Per_Sec"]
NUMPY_ACTIVATIONS = {nn.ReLU: lambda x: np.maximum(x, 0.0), nn.Tanh: np.tanh}
CHECKPOINT_FORMAT = "il-mujoco-ars-checkpoint"


@dataclass
class ARSConfig:
    """ARS's settings (``trainer:`` section of an expert config with ``algo: ars``)."""

    algo: str = "ars"
    init_policy: str = ""         # the policy file to polish (relative to the repository root): a run's best_model.pt
    iterations: int = 300
    directions: int = 16          # N: random directions per iteration, each tried as +δ and -δ
    top_directions: int = 8       # b: the directions with the best returns that make the step
    noise: float = 0.02           # ν: perturbation size, relative to each tensor's RMS
    step_size: float = 0.01       # α
    episodes: int = 1             # reset seeds per direction (the same ones for +δ and -δ)
    action_noise: float = 0.0     # std of Gaussian noise on the rollouts' actions (normalized units; the same
    #                               noise for +δ and -δ): the return to climb is then the return under that noise,
    #                               which favours a gait that recovers from small errors (e.g. an imitator's)
    eval_interval: int = 10       # iterations per log row (an evaluation of the current actor)
    eval_episodes: int = 10
    checkpoint_interval: int = 10  # iterations
    seed: int = 0

    ALGO = "ars"

    def validate(self) -> None:
        if self.algo != self.ALGO:
            raise ValueError(f"trainer.algo must be '{self.ALGO}' for this trainer, got '{self.algo}'")
        if not self.init_policy:
            raise ValueError("trainer.init_policy must name the policy file to polish (e.g. "
                             "data/training/hopper/best_model.pt)")
        for name in ("iterations", "directions", "top_directions", "episodes", "eval_interval", "eval_episodes",
                     "checkpoint_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"trainer.{name} must be positive")
        if self.top_directions > self.directions:
            raise ValueError("trainer.top_directions must be at most trainer.directions")
        if not self.noise > 0 or not self.step_size > 0:
            raise ValueError("trainer.noise and trainer.step_size must be positive")
        if not self.action_noise >= 0:
            raise ValueError("trainer.action_noise must be at least 0")
        check_seed(self.seed, "trainer.seed")


def init_policy_path(cfg: ARSConfig) -> Path:
    p = Path(cfg.init_policy)
    return p if p.is_absolute() else REPO_ROOT / p


class ARSTrainer(ExpertTrainer):
    """Polishes ``init_policy`` by ARS on one env; see the module docstring. Same interface as the off-policy
    trainers (``run``), same run folder (log.txt, checkpoint.pt, model.pt, best_model.pt, snapshots/)."""

    ALGO = "ars"
    LOG_COLUMNS = LOG_COLUMNS

    def __init__(self, env_cfg: EnvConfig, cfg: ARSConfig, out_dir: str | os.PathLike, progress: bool = True,
                 quiet: bool = False):
        super().__init__(env_cfg, cfg, out_dir, progress, quiet)
        self.actor: GaussianMLPPolicy | None = None
        self.init_meta: dict[str, Any] = {}
        self.init_sha256 = ""
        self.scale = np.zeros(0)              # s: per-parameter noise scale (each tensor's RMS at the start)
        self._pending: dict[str, Any] | None = None   # the state at the start of the unfinished iteration
        # counters beyond ExpertTrainer's (all saved in the checkpoint; step: environment steps of the rollouts)
        self.row_returns: list[float] = []    # the iterations' mean rollout returns and step sizes since the last
        self.row_step_norms: list[float] = []  # log row (the next row averages them)

    # ------------------------------------------------------------------ θ as one vector
    def get_theta(self) -> np.ndarray:
        """θ: the network's parameters as one float64 vector (P,)."""
        return np.concatenate([p.detach().double().numpy().ravel() for p in self.actor.net.parameters()])

    def set_theta(self, theta: np.ndarray) -> None:
        offset = 0
        with torch.no_grad():
            for p in self.actor.net.parameters():
                n = p.numel()
                p.copy_(torch.from_numpy(theta[offset:offset + n].reshape(p.shape)))
                offset += n

    def start_fresh(self) -> None:
        """A new run: the actor, θ's noise scale and the starting policy's identity, from ``init_policy``."""
        path = init_policy_path(self.cfg)
        if not path.is_file():
            raise ConfigError(f"trainer.init_policy {self.cfg.init_policy} does not exist: name a policy file "
                              "(e.g. a run's best_model.pt, or a compact checkpoint's in data/training/<env>/).")
        self.actor, self.init_meta = load_policy(path, self.obs_dim, self.act_dim, self.env_cfg.env_id)
        self.init_sha256 = file_sha256(path)
        self.scale = np.concatenate([np.full(p.numel(), float(p.detach().double().pow(2).mean().sqrt()) + 1e-3)
                                     for p in self.actor.net.parameters()])

    def _numpy_layers(self, theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, Any]]:
        """The network at parameters θ as [(W (out, in), b (out,), activation or None)]."""
        layers, offset, modules = [], 0, list(self.actor.net)
        for i, m in enumerate(modules):
            if isinstance(m, nn.Linear):
                w_n, b_n = m.weight.numel(), m.bias.numel()
                w = theta[offset:offset + w_n].reshape(m.weight.shape)
                b = theta[offset + w_n:offset + w_n + b_n]
                offset += w_n + b_n
                act = None
                if i + 1 < len(modules) and not isinstance(modules[i + 1], nn.Linear):
                    kind = type(modules[i + 1])
                    if kind not in NUMPY_ACTIVATIONS:
                        raise ConfigError(f"ARS supports actors with ReLU or Tanh activations, not {kind.__name__}.")
                    act = NUMPY_ACTIVATIONS[kind]
                layers.append((w, b, act))
        return layers

    def rollout(self, theta: np.ndarray, seeds: list[int]) -> tuple[float, int]:
        """Mean return of the actor at θ (P,) over episodes reset with ``seeds`` (its mean action, plus
        ``action_noise`` drawn from each episode's seed); and their steps."""
        a = self.actor
        layers = self._numpy_layers(theta)
        mean = a.obs_normalizer.mean.double().numpy()
        std = np.sqrt(a.obs_normalizer.var.double().numpy() + a.obs_normalizer.eps)
        clip = a.obs_normalizer.clip
        low, high = a.action_low.double().numpy(), a.action_high.double().numpy()
        total, steps = 0.0, 0
        for seed in seeds:
            obs, _ = self.env.reset(seed=seed)
            noise = np.random.default_rng(seed)
            while True:
                x = np.clip((obs - mean) / std, -clip, clip)
                for w, b, act in layers:
                    x = w @ x + b
                    if act is not None:
                        x = act(x)
                u = np.tanh(x) if a.squash_mean else x
                if self.cfg.action_noise > 0:
                    u = u + self.cfg.action_noise * noise.standard_normal(u.shape)
                u = np.clip(u, -1.0, 1.0)
                obs, r, terminated, truncated, _ = self.env.step(low + (u + 1.0) * 0.5 * (high - low))
                total += float(r)
                steps += 1
                if terminated or truncated:
                    break
        self.episode += len(seeds)
        return total / len(seeds), steps

    # ------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "version": 1, "env_id": self.env_cfg.env_id,
            "actor_spec": self.actor.spec(), "actor": self.actor.state_dict(),
            "scale": torch.from_numpy(self.scale.copy()),
            "init_meta_json": json.dumps(self.init_meta), "init_sha256": self.init_sha256,
            "np_rng": self.rng.bit_generator.state,
            "counters": {"iteration": self.iteration, "step": self.step, "episode": self.episode,
                         "wall_time": self.wall_time, "cpu_time": self.cpu_time, "best_eval": self.best_eval,
                         "snapshots": [list(x) for x in self.snapshots], "warm_starts": self.warm_starts,
                         "row_returns": list(self.row_returns), "row_step_norms": list(self.row_step_norms)},
        }

    def load_state_dict(self, ck: Any, path: Path, hint: str) -> None:
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            found = ck.get("format") if isinstance(ck, dict) else None
            raise CheckpointError(f"{path} is not an ARS trainer checkpoint{f' (it is {found!r})' if found else ''}. "
                                  f"{hint}")
        if ck["env_id"] != self.env_cfg.env_id:
            raise CheckpointError(f"{path} is for {ck['env_id']}, not {self.env_cfg.env_id}. {hint}")
        self.actor = GaussianMLPPolicy.from_spec(ck["actor_spec"])
        self.actor.load_state_dict(ck["actor"])
        self.actor.eval()
        self.scale = ck["scale"].numpy().copy()
        self.init_meta, self.init_sha256 = json.loads(ck["init_meta_json"]), ck["init_sha256"]
        self.rng.bit_generator.state = ck["np_rng"]
        c = ck["counters"]
        self.iteration, self.step, self.episode = c["iteration"], c["step"], c["episode"]
        self.wall_time, self.cpu_time, self.best_eval = c["wall_time"], c["cpu_time"], c["best_eval"]
        self.snapshots = [(float(r), int(s)) for r, s in c["snapshots"]]
        self.warm_starts = c["warm_starts"]
        self.row_returns, self.row_step_norms = list(c["row_returns"]), list(c["row_step_norms"])

    def _read(self, path: Path, hint: str) -> None:
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}. {hint}")
        self.load_state_dict(safe_torch_load(path, "trainer checkpoint", hint), path, hint)

    def save_checkpoint(self) -> None:
        atomic_torch_save(self.state_dict(), self.checkpoint_path)

    def load_checkpoint(self) -> None:
        self._read(self.checkpoint_path, "Start again with --overwrite instead of --resume, or point --run_dir at a "
                   f"folder holding an ARS checkpoint for {self.env_cfg.env_id}.")

    def load_warm_start(self, source: Path) -> None:
        """Continue a compact checkpoint folder (or run folder) of an ARS run exactly (there is no replay)."""
        folder = source if source.is_dir() else source.parent
        self._read(folder / "checkpoint.pt", "--warm_start takes a compact checkpoint folder of an ARS run.")
        self.warm_starts += 1

    def policy(self) -> GaussianMLPPolicy:
        return self.actor

    def policy_meta(self) -> dict[str, Any]:
        import gymnasium
        import mujoco

        init = self.init_meta
        init_cpu = float(init.get("train_cpu_time_s") or 0.0)
        init_estimated = float(init.get("train_cpu_time_estimated_s") or 0.0)
        if not init_cpu:   # trained before CPU time was recorded: half its wall time, as tools/expert_report.py
            init_cpu = init_estimated = float(init.get("train_wall_time_s") or 0.0) / 2
        return {
            "env_id": self.env_cfg.env_id, "env_name": self.env_cfg.name,
            "algo": f"{init.get('algo', 'td3')}+ars",
            # what the expert cost in all: the starting policy's training, then this run's rollouts
            "train_steps": int(init.get("train_steps") or 0) + self.step,
            "train_wall_time_s": round(float(init.get("train_wall_time_s") or 0.0) + self.wall_time, 1),
            "train_cpu_time_s": round(init_cpu + self.cpu_time, 1),
            "train_cpu_time_estimated_s": round(init_estimated, 1),
            "refill_steps": init.get("refill_steps", 0), "seed": self.cfg.seed,
            "init_policy": self.cfg.init_policy, "init_sha256": self.init_sha256,
            "init_algo": init.get("algo", "td3"), "init_train_steps": init.get("train_steps"),
            "ars_steps": self.step, "ars_iterations": self.iteration,
            "ars_cpu_time_s": round(self.cpu_time, 1),
            "gymnasium_version": gymnasium.__version__, "mujoco_version": mujoco.__version__,
        }

    # ------------------------------------------------------------------ main loop
    def progress_total(self) -> int:
        return self.cfg.iterations

    def train(self) -> None:
        """Iterate until ``iterations`` (or the first iteration after ``max_steps`` more environment steps)."""
        cfg, run = self.cfg, self._run
        stop_step = None if self._max_steps is None else self.step + self._max_steps
        if self.iteration == 0 and self.best_eval == -float("inf"):   # the starting policy: row 0
            self._evaluate_and_log(run, train_return=float("nan"), step_norm=0.0, steps_per_sec=0.0)
        t_row, steps_row = time.time(), self.step
        while self.iteration < cfg.iterations and (stop_step is None or self.step < stop_step):
            self._pending = self.state_dict()          # the state to save if a signal cuts this iteration short
            ret, norm = self._iterate()
            self._pending = None
            self.row_returns.append(ret)
            self.row_step_norms.append(norm)
            run.advance(1)
            if self.iteration % cfg.eval_interval == 0:
                self.tick()
                now = time.time()
                self._evaluate_and_log(run, float(np.mean(self.row_returns)), float(np.mean(self.row_step_norms)),
                                       (self.step - steps_row) / max(1e-9, now - t_row))
                t_row, steps_row, self.row_returns, self.row_step_norms = time.time(), self.step, [], []
            if self.iteration % cfg.checkpoint_interval == 0:
                self.tick()
                self.save_checkpoint()

    def on_interrupt(self, at_step_boundary: bool) -> None:
        """A signal in an iteration (at a rollout boundary, or a second one anywhere in it): save the state at the
        iteration's start (the iteration is redone on resume)."""
        saved, self._pending = self._pending, None
        if saved is None:
            return
        self.tick()
        saved["counters"].update(wall_time=self.wall_time, cpu_time=self.cpu_time)
        atomic_torch_save(saved, self.checkpoint_path)
        print(f"\nInterrupted in iteration {saved['counters']['iteration'] + 1}: checkpoint saved to "
              f"{self.checkpoint_path}; continue with --resume.")

    def _iterate(self) -> tuple[float, float]:
        """One ARS iteration (module docstring); returns the mean return of its rollouts and |Δθ| / |θ|."""
        cfg = self.cfg
        theta = self.get_theta()
        deltas = self.rng.standard_normal((cfg.directions, theta.size))
        seeds = [episode_seed(cfg.seed, "ars", self.iteration * cfg.episodes + j) for j in range(cfg.episodes)]
        r_plus, r_minus = np.zeros(cfg.directions), np.zeros(cfg.directions)
        steps = 0
        for k, delta in enumerate(deltas):
            for sign, out in ((1.0, r_plus), (-1.0, r_minus)):
                self.step_boundary()
                out[k], n = self.rollout(theta + sign * cfg.noise * self.scale * delta, seeds)
                steps += n
        top = np.argsort(-np.maximum(r_plus, r_minus), kind="stable")[:cfg.top_directions]
        sigma_r = float(np.concatenate([r_plus[top], r_minus[top]]).std()) + 1e-6
        step = cfg.step_size / (cfg.top_directions * sigma_r) * ((r_plus[top] - r_minus[top]) @ deltas[top])
        change = self.scale * step
        self.set_theta(theta + change)
        self.step += steps
        self.iteration += 1
        return float(np.mean(np.concatenate([r_plus, r_minus]))), float(np.linalg.norm(change) / np.linalg.norm(theta))

    def _evaluate_and_log(self, run: Run, train_return: float, step_norm: float, steps_per_sec: float) -> None:
        cfg = self.cfg
        res = evaluate_policy(self.eval_env, self.actor, cfg.eval_episodes, cfg.seed, purpose="eval")
        meta = self.policy_meta()
        run.log({"Iteration": self.iteration, "Samples": meta["train_steps"], "Wall_Time": round(self.wall_time, 2),
                 "Train_Return": train_return, "Test_Return": res.mean, "Test_Return_Std": res.std,
                 "Step_Norm": step_norm, "Episodes": self.episode, "Steps_Per_Sec": round(steps_per_sec, 1)})
        run.advance(0, test=f"{res.mean:.0f}", best=f"{max(self.best_eval, res.mean):.0f}")
        self.keep_policy(self.actor, res.mean)
