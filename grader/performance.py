"""The performance checks: train the submission in a child (the student's TODO methods, reference code for the TODOs
its class inherits, only the demo episodes its config grants, expert queries answered by the supervisor's oracle
within the sample budget), load the model it wrote without pickle, refuse a copied expert, evaluate it in the grader
and score the return on a ramp.
"""
from __future__ import annotations

import ctypes
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from envs.builder import action_bounds, env_dims, make_env, resolve_env_config
from grader.context import CheckResult, GradingContext, reference_modules, twice
from grader.env_transform import EnvTransform
from grader.feedback import describe_error
from grader.isolation import SandboxError
from grader.runner import ChildResult, read_output, unpack_problem
from grader.unit_inputs import task_dims
from grader.workspace import new_check_dir, remove_check_dir
from learning.agents import POLICY_SEARCH_AGENTS
from learning.checkpoint import CheckpointError, load_policy
from learning.demos import write_first_episodes
from learning.evaluation import evaluate
from learning.policy import GaussianMLPPolicy
from util.config import REPO_ROOT


def demo_rows(env: str, episodes: int) -> int:
    """Rows in the first ``episodes`` episodes of data/demos/<env>.npz."""
    with np.load(REPO_ROOT / "data" / "demos" / f"{env}.npz", allow_pickle=False) as f:
        return int(np.asarray(f["episode_lengths"])[:episodes].sum())


def granted_demos(env: str, episodes: int, folder: Path) -> list[tuple[Path, str]]:
    """The demo file a training check's workspace holds: only the first ``episodes`` episodes (none for 0), so no
    code in the child, the student's or not, can train on expert labels the check did not grant."""
    if episodes <= 0:
        return []
    path = folder / f"demos_{env}_{episodes}.npz"
    if not path.exists():
        tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.npz"
        write_first_episodes(REPO_ROOT / "data" / "demos" / f"{env}.npz", tmp, episodes)
        os.replace(tmp, path)
    return [(path, f"data/demos/{env}.npz")]


def export_expert(env: str, folder: Path) -> Path:
    """The expert of ``env`` as plain arrays for the supervisor's oracle (grader-only folder): the arrays of its
    :class:`learning.actor.MLPActor`, the computation a student's run labels with."""
    path = folder / f"expert_{env}.npz"
    if path.exists():
        return path
    policy, _ = load_policy(REPO_ROOT / "data" / "models" / f"expert_{env}.pt")
    tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.npz"
    np.savez(tmp, **policy.actor_arrays())
    os.replace(tmp, path)
    return path


def train_in_child(ctx: GradingContext, spec: dict[str, Any], seed: int) -> tuple[Path | None, str]:
    """Train ``spec['agent']`` (the student's TODO methods, reference code for the TODOs it inherits) with the
    grader's config and ``seed``. Expert queries are answered by the supervisor within the sample budget."""
    agent, env = spec["agent"], spec["env"]
    todo = ctx.manifest[agent]
    if not ctx.present.get(todo.file_name, False):
        return None, ctx.problems.get(todo.file_name, f"learning/{todo.file_name} is missing")
    config = {"agent": agent, "env": env, **spec["config"], "seed": int(seed)}
    episodes = int(config.get("demo_episodes", 0))
    budget = max(0, int(config.get("max_samples", 0)) - demo_rows(env, episodes))
    oracle = None
    if budget > 0:
        obs_dim, act_dim = task_dims(env)
        oracle = {"expert_npz": str(export_expert(env, ctx.private)), "obs_dim": obs_dim, "act_dim": act_dim,
                  "budget": budget}
    d = new_check_dir(ctx.scratch, f"train_{agent}_{env}")
    try:
        job = ctx.agent_job(agent, kind="train", env=env, seed=int(seed), config=config)
        refs = reference_modules(agent, todo.depends_on + todo.reference_methods)
        res = ctx.run(d, job, ctx.train_timeout, references=refs,
                      data=granted_demos(env, episodes, ctx.private), oracle=oracle)
        return _trained_model(ctx, d, res)
    finally:
        remove_check_dir(d)


def train_policy_search(ctx: GradingContext, spec: dict[str, Any], seed: int) -> tuple[list[tuple[int, Path]], str]:
    """Assignment 2: train with the environment stepped by the supervisor (every step counted against the check's
    ``env_steps``, the task seen through its hidden transform), the child holding no simulator and evaluating nothing
    itself. Returns the models it saved, (iteration, file): one every ``snapshot_every`` iterations and the final
    one, or ([], why not)."""
    agent, env = spec["agent"], spec["env"]
    todo = ctx.manifest[agent]
    if not ctx.present.get(todo.file_name, False):
        return [], ctx.problems.get(todo.file_name, f"learning/{todo.file_name} is missing")
    config = {"agent": agent, "env": env, **spec["config"], "seed": int(seed), "eval_episodes": 0,
              "final_eval_episodes": 0}
    server = {"env": env, "budget": int(spec["env_steps"]), "transform_seed": int(spec["transform_seed"])}
    every = int(spec.get("snapshot_every", 0))
    d = new_check_dir(ctx.scratch, f"train_{agent}_{env}")
    try:
        job = ctx.agent_job(agent, kind="train", env=env, seed=int(seed), config=config, snapshot_every=every)
        refs = reference_modules(agent, todo.depends_on + todo.reference_methods)
        res = ctx.run(d, job, ctx.train_timeout, references=refs, env_server=server)
        final, why = _trained_model(ctx, d, res)
        if final is None:
            return [], why
        models = []
        iterations = int(config["iterations"])
        for k in range(every, iterations, every) if every > 0 else ():
            raw = read_output(res, f"model_{k}.pt")
            if raw is not None and not unpack_problem(raw):
                path = ctx.private / f"{d.path.name}_model_{k}.pt"
                path.write_bytes(raw)
                models.append((k, path))
        return models + [(iterations, final)], ""
    finally:
        remove_check_dir(d)


def _trained_model(ctx: GradingContext, d: Any, res: ChildResult) -> tuple[Path | None, str]:
    """The model file a training child wrote, copied to the grader's folder, or (None, why not)."""
    if res.oracle_over_budget or res.oracle_error or res.env_over_budget or res.env_error or res.supervisor_error:
        return None, res.message()
    err = read_output(res, "error.json", 64 * 1024)
    if err is not None:
        _debug(res, err)
        return None, "training failed: " + describe_error(err, show_message=False, line_counts=ctx.line_counts())
    if not res.finished:
        return None, res.message()
    raw = read_output(res, "model.pt")
    if raw is None:
        return None, "training produced no model file"
    problem = unpack_problem(raw)
    if problem:
        return None, f"the trained model could not be loaded safely ({problem})"
    model = ctx.private / f"{d.path.name}_model.pt"
    model.write_bytes(raw)
    return model, ""


def _debug(res: ChildResult, err: bytes | None) -> None:
    """GRADER_DEBUG=1: the child's full error on the grader's console (a TA's tool; never in results.json)."""
    if os.environ.get("GRADER_DEBUG"):
        print(f"[grader debug] {res.out.parent.name}: {(err or b'').decode('utf-8', 'replace')}", file=sys.stderr)


MAX_POLICY_PARAMS = 5_000_000


def load_trained_policy(path: Path, env: str) -> tuple[GaussianMLPPolicy | None, str]:
    """Load a child-written model into the grader's own policy class (weights only, bounded size)."""
    env_cfg = resolve_env_config(env)
    obs_dim, act_dim = env_dims(make_env(env_cfg))
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
        sizes = data["spec"]["hidden_sizes"]
        dims = [obs_dim, *[int(h) for h in sizes], act_dim]
        if len(sizes) > 16 or sum(a * b for a, b in zip(dims[:-1], dims[1:], strict=True)) > MAX_POLICY_PARAMS:
            return None, "the trained model is larger than the grader accepts"
        policy, _ = load_policy(path, obs_dim, act_dim, env_cfg.env_id)
    except CheckpointError as e:
        return None, f"the trained model could not be loaded safely: {str(e)[:200]}"
    except Exception as e:  # noqa: BLE001 - a malformed file is the submission's fault
        return None, f"the trained model could not be loaded ({type(e).__name__})"
    return policy, ""


def _first_layer_in_frame(policy: GaussianMLPPolicy, scale: torch.Tensor) -> torch.Tensor:
    """The first layer's weights (hidden, obs_dim) as they act on observations standardized by ``scale`` (obs_dim,):
    raw observations enter as W / std per input column (the policy's normalizer), so a copy whose input columns were
    rescaled together with its normalizer (the scale absorbed there) has the very same weights in this frame. A
    shift of the normalizer's mean changes only the bias (by W / std · shift), which is not compared."""
    norm = policy.obs_normalizer
    std = torch.sqrt(norm.var.double() + norm.eps)
    return policy.net[0].weight.detach().double() / std[None, :] * scale[None, :]


def copies_expert(policy: GaussianMLPPolicy, env: str) -> bool:
    """True if the first layer's units are (up to order and positive scale) the expert's: a copied expert. Both are
    compared on raw observations standardized by the demos' spread (:func:`_first_layer_in_frame`), so rescaling the
    input columns and absorbing the scale in the normalizer does not hide a copy."""
    expert, _ = load_policy(REPO_ROOT / "data" / "models" / f"expert_{env}.pt")
    if policy.net[0].weight.shape[1] != expert.net[0].weight.shape[1] or policy.net[0].weight.shape[0] < 4:
        return False
    with np.load(REPO_ROOT / "data" / "demos" / f"{env}.npz", allow_pickle=False) as f:
        scale = torch.as_tensor(np.asarray(f["obs"], np.float64).std(0) + 1e-6)
    a, b = _first_layer_in_frame(policy, scale), _first_layer_in_frame(expert, scale)
    a = a / (a.norm(dim=1, keepdim=True) + 1e-12)
    b = b / (b.norm(dim=1, keepdim=True) + 1e-12)
    best = (a @ b.T).max(dim=1).values          # each learned unit's closest expert unit
    return float(best.median()) > 0.9


def evaluate_trained(ctx: GradingContext, spec: dict[str, Any], seed: int, eval_seed: int) -> tuple[float | None, str]:
    """Train in a child, then load and evaluate in the grader (mean action). Returns (mean return, why not)."""
    if spec["agent"] in POLICY_SEARCH_AGENTS:
        return evaluate_policy_search(ctx, spec, seed, eval_seed)
    model, why = train_in_child(ctx, spec, seed)
    if model is None:
        return None, why
    # the grader's side once more if it raises (grader.context.twice); the training is not repeated
    return twice(lambda: _evaluate_model(model, spec, eval_seed), _evaluation_label(spec))


def _evaluation_label(spec: dict[str, Any]) -> str:
    """What the log calls a performance evaluation (calibration's specs carry no check name)."""
    return f"performance evaluation of {spec['agent']} on {spec['env']}"


def _evaluate_model(model: Path, spec: dict[str, Any], eval_seed: int) -> tuple[float | None, str]:
    """Assignment 1: load the trained model, screen it for the expert's weights, evaluate its mean action."""
    policy, why = load_trained_policy(model, spec["env"])
    if policy is None:
        return None, why
    if copies_expert(policy, spec["env"]):
        return None, "the trained model carries the expert's weights instead of learned ones"
    # the NumPy actor (float64 inside): the same return for any thread count, on every path
    res = evaluate(make_env(resolve_env_config(spec["env"])), policy.deterministic_actor().act,
                   int(spec["eval_episodes"]), eval_seed, "grader")
    return float(res.mean), f"return {res.mean:.0f} ± {res.std:.0f} over {spec['eval_episodes']} hidden-seed episodes"


def evaluate_policy_search(ctx: GradingContext, spec: dict[str, Any], seed: int,
                           eval_seed: int) -> tuple[float | None, str]:
    """Assignment 2: the best of the training's snapshots (the policy gradient's return is noisy from one batch to
    the next; the check asks whether the learner reached the return, as the handout's "reaches 1000 within 100k
    steps"), each evaluated by the grader on the task as the training saw it (its hidden transform)."""
    models, why = train_policy_search(ctx, spec, seed)
    if not models:
        return None, why
    return twice(lambda: _best_snapshot(models, spec, eval_seed), _evaluation_label(spec))


def _best_snapshot(models: list[tuple[int, Path]], spec: dict[str, Any], eval_seed: int) -> tuple[float | None, str]:
    """Assignment 2: evaluate every snapshot on the transformed task; the best return and which snapshot it was."""
    best: tuple[float, int, float] | None = None
    for iteration, path in models:
        policy, why = load_trained_policy(path, spec["env"])
        if policy is None:
            return None, why
        env = TransformedEnv(make_env(resolve_env_config(spec["env"])), spec["transform_seed"])
        res = evaluate(env, policy.deterministic_actor().act, int(spec["eval_episodes"]), eval_seed, "grader")
        if best is None or res.mean > best[0]:
            best = (res.mean, iteration, res.std)
    value, iteration, std = best
    return float(value), (f"best return {value:.0f} ± {std:.0f} over {spec['eval_episodes']} hidden-seed episodes "
                          f"(the policy after iteration {iteration}; {len(models)} snapshots evaluated)")


class TransformedEnv:
    """``env`` seen through an assignment-2 check's hidden transform (grader/env_transform.py), as its training saw
    it: reset and step for :func:`learning.evaluation.evaluate`."""

    def __init__(self, env: Any, transform_seed: int):
        from gymnasium.spaces import Box

        self.env = env
        obs_dim, _ = env_dims(env)
        self.transform = EnvTransform(int(transform_seed), obs_dim, *action_bounds(env))
        self.observation_space = env.observation_space
        self.action_space = Box(self.transform.low, self.transform.high, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return self.transform.observation(obs), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        t = self.transform
        obs, reward, terminated, truncated, info = self.env.step(np.clip(t.action(action), t.env_low, t.env_high))
        return t.observation(obs), reward, terminated, truncated, info


def ramp(value: float, low: float, full: float) -> float:
    """0 at or below ``low``, 1 at or above ``full``, linear in between."""
    if not np.isfinite(value):
        return 0.0
    if full <= low:
        return float(value >= full)
    return float(np.clip((value - low) / (full - low), 0.0, 1.0))


def release_freed_memory() -> None:
    """Hand the heap memory this process has freed back to the system (glibc's malloc_trim; nothing elsewhere): the
    grader's own memory counts in the container's limit while a training child runs (grader/README.md, budget)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def performance_check(ctx: GradingContext, spec: dict[str, Any]) -> CheckResult:
    name, pts = str(spec["name"]), float(spec["points"])
    release_freed_memory()                  # before the training child starts: the grading's peak is then
    try:
        value, why = evaluate_trained(ctx, spec, int(spec["train_seed"]), int(spec["eval_seed"]))
    except SandboxError:
        raise
    except Exception as e:  # noqa: BLE001 - a model the grader cannot evaluate (MemoryError included) costs this check
        value, why = None, f"the trained model could not be evaluated ({type(e).__name__})"
    if value is None:
        return CheckResult(name, 0, pts, why, tags=["performance"])
    frac = ramp(value, float(spec["low"]), float(spec["full"]))
    return CheckResult(name, round(frac * pts, 3), pts,
                       f"{why} (0 points at ≤ {spec['low']:.0f}, full at ≥ {spec['full']:.0f})", tags=["performance"])
