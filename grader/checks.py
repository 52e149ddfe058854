"""Grader checks. Every check builds its inputs here from its own seeded generator, runs student code
only in a child process (grader.sandbox) in a private workspace, reads back plain arrays and scores them
against references computed here.

A check returns :class:`CheckResult` items (one per scored part) so that one bug costs only its part.
"""
from __future__ import annotations

import math
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from envs.builder import env_dims, make_env, resolve_env_config
from grader.answers import AnswerError, Field, Schema, read_answer
from grader.feedback import describe_error
from grader.sandbox import (CheckDir, ChildResult, SandboxPolicy, build_workspace, new_check_dir, read_output,
                            remove_check_dir, run_child, unpack_problem)
from learning.agents import TodoFile, todo_methods
from learning.checkpoint import CheckpointError, load_policy, save_policy
from learning.demos import write_first_episodes
from learning.evaluation import evaluate
from learning.policy import GaussianMLPPolicy
from util.config import REPO_ROOT


@dataclass
class CheckResult:
    name: str
    score: float
    max_score: float
    output: str
    visibility: str = "visible"
    tags: list[str] = field(default_factory=list)
    number: str = ""

    @property
    def passed(self) -> bool:
        return self.score >= self.max_score - 1e-9


@dataclass
class Variant:
    """One seeded instance of a unit check (public variants ship to students; hidden ones do not)."""

    seed: int
    env: str
    batch: int
    hidden: bool = False


@dataclass
class GradingContext:
    """What the checks need: the sandbox, the student's files, which are usable, limits, the TODO manifest."""

    policy: SandboxPolicy
    scratch: Path                     # sandbox uids may traverse it (each check folder is private)
    private: Path                     # grader-only folder
    student_files: dict[str, Path | None]
    manifest: dict[str, TodoFile]     # agent → its file, class and TODO methods
    present: dict[str, bool] = field(default_factory=dict)    # student file → present and importable
    problems: dict[str, str] = field(default_factory=dict)    # student file → why it is unusable
    unit_timeout: float = 120.0
    train_timeout: float = 600.0
    mem_mb: int = 2048

    def line_counts(self) -> dict[str, int]:
        """Student file name → its number of lines (a feedback line number must exist in the file)."""
        counts = {}
        for name, path in self.student_files.items():
            try:
                counts[name] = path.read_bytes().count(b"\n") + 1 if path is not None else 0
            except OSError:
                counts[name] = 0
        return counts

    def agent_job(self, agent: str, **extra: Any) -> dict[str, Any]:
        spec = self.manifest[agent]
        return {"agent": agent, "module": spec.module, "class_name": spec.class_name, "todo": list(spec.methods),
                **extra}

    def run(self, d: CheckDir, job: dict, timeout: float, references: dict[str, str] | None = None,
            data: list[Path | tuple[Path, str]] | None = None, oracle: dict | None = None) -> ChildResult:
        """Build ``d``'s workspace completely, then run the child on ``job``."""
        job = dict(job, reference=dict(references or {}))
        build_workspace(d, self.student_files, sorted(set((references or {}).values())),
                        [*env_files(), *(data or [])])
        return run_child(self.policy, d, self.private, job, timeout, self.mem_mb, oracle=oracle)


def env_files() -> list[Path]:
    return sorted((REPO_ROOT / "data" / "envs").glob("*.yaml"))


def reference_modules(methods: tuple[str, ...]) -> dict[str, str]:
    """TODO method → the grader/solution module holding its reference (``<agent>_solution``)."""
    owner = todo_methods()
    return {m: f"{owner[m]}_solution" for m in methods}


def _read_arrays(res: ChildResult, show_message: bool, schema: Schema) -> tuple[dict[str, np.ndarray] | None, str]:
    """Arrays written by the child, checked against ``schema`` (grader.answers), or (None, reason in the grader's
    words)."""
    err = read_output(res, "error.json", 64 * 1024)
    if err is not None:
        return None, describe_error(err, show_message)
    if not res.finished:
        return None, res.message()
    raw = read_output(res, "result.npz")
    if raw is None:
        return None, "no result was written"
    try:
        return read_answer(raw, schema), ""
    except AnswerError as e:
        return None, f"{e}: the answer is not what the grader's harness writes (did your code write its files?)"


def _unit(ctx: GradingContext, agent: str, kind: str, v: Variant, arrays: dict[str, np.ndarray],
          policies: dict[str, GaussianMLPPolicy] | None = None, *, schema: Schema,
          **job: Any) -> tuple[dict[str, np.ndarray] | None, str]:
    """Run one unit check's child: ``arrays`` go to in.npz, each policy to <key>.pt (its path is the job's ``key``);
    its answer must match ``schema`` (what grader/child.py's job writes; see grader.answers)."""
    file_name = ctx.manifest[agent].file_name
    if not ctx.present.get(file_name, False):
        return None, ctx.problems.get(file_name, f"learning/{file_name} is missing from the submission")
    d = new_check_dir(ctx.scratch, kind)
    try:
        for key, pol in (policies or {}).items():
            save_policy(d.inputs / f"{key}.pt", pol, {})
            job[key] = str(d.inputs / f"{key}.pt")
        np.savez(d.inputs / "in.npz", **arrays)
        job = ctx.agent_job(agent, kind=kind, env=v.env, seed=v.seed, inputs=str(d.inputs / "in.npz"), **job)
        return _read_arrays(ctx.run(d, job, ctx.unit_timeout), show_message=True, schema=schema)
    finally:
        remove_check_dir(d)


# ----------------------------------------------------------------------------------------------- inputs
def _policy(obs_dim: int, act_dim: int, rng: np.random.Generator, low: np.ndarray, high: np.ndarray,
            squash: bool, out_scale: float) -> GaussianMLPPolicy:
    """A random policy whose every parameter comes from ``rng`` (no global RNG: checks run in threads)."""
    p = GaussianMLPPolicy(obs_dim, act_dim, [32, 32], low, high, squash_mean=squash,
                          log_std_init=float(rng.uniform(-1.5, -0.7)), learn_std=True)
    with torch.no_grad():
        for layer in p.net:
            if isinstance(layer, torch.nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.copy_(torch.as_tensor(rng.uniform(-bound, bound, tuple(layer.weight.shape))))
                layer.bias.copy_(torch.as_tensor(rng.uniform(-bound, bound, tuple(layer.bias.shape))))
        p.net[-1].weight.mul_(out_scale)
        p.net[-1].bias.mul_(out_scale)
        p.log_std.copy_(torch.as_tensor(rng.uniform(-1.6, -0.8, act_dim), dtype=torch.float32))
    p.obs_normalizer.fit(rng.normal(rng.normal(0, 2, obs_dim), rng.uniform(0.5, 3.0, obs_dim), (500, obs_dim)))
    p.eval()
    return p


def _bounds(act_dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric bounds whose half-ranges differ a lot between dimensions (one < 0.55, one > 1.8)."""
    center = rng.uniform(-0.5, 0.5, act_dim)
    half = rng.uniform(0.3, 3.0, act_dim)
    i, j = rng.choice(act_dim, size=2, replace=False)
    half[i], half[j] = rng.uniform(0.3, 0.55), rng.uniform(1.8, 3.0)
    return (center - half).astype(np.float32), (center + half).astype(np.float32)


def _far_bounds(act_dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric bounds far from ±1 (|centre| in [1.5, 3], half-range in [0.3, 1.4]): an action in env units and
    the same action in normalized units differ by at least 0.8 in every dimension, so a unit mistake shows."""
    center = rng.choice([-1.0, 1.0], act_dim) * rng.uniform(1.5, 3.0, act_dim)
    half = rng.uniform(0.3, 1.4, act_dim)
    return (center - half).astype(np.float32), (center + half).astype(np.float32)


def _sample_obs(p: GaussianMLPPolicy, n: int, rng: np.random.Generator) -> np.ndarray:
    mean = p.obs_normalizer.mean.numpy()
    std = np.sqrt(p.obs_normalizer.var.numpy())
    return (mean + std * rng.normal(size=(n, p.obs_dim))).astype(np.float32)


def _tag(v: Variant) -> str:
    return f"{'hidden' if v.hidden else 'public'} variant, {v.env}"


def part_names(key: str, v: Variant) -> list[str]:
    """The scored parts of unit check ``key`` on variant ``v`` (names are the gradebook's columns)."""
    tag = _tag(v)
    return {"bc_loss": [f"BC loss: gradients ({tag}, batch {v.batch})", f"BC loss: value ({tag}, batch {v.batch})"],
            "dagger_select": [f"DAgger label ({tag})", f"DAgger executed action ({tag})"],
            "dagger_aggregate": [f"DAgger aggregation ({tag})"],
            "dart_step": [f"Noise injection: clean label ({tag})",
                          f"Noise injection: noisy executed action ({tag})"]}[key]


# ----------------------------------------------------------------------------------------------- BC loss
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _bc_sizes(v: Variant) -> list[int]:
    """Batch sizes of the consecutive compute_loss calls (as fit() makes them: several batches, one agent)."""
    return [v.batch, max(2, v.batch // 2 + 1), v.batch]


def check_bc_loss(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """Gradients (what training uses) and value of compute_loss over several calls on one agent."""
    grad_name, value_name = part_names("bc_loss", v)
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = _bounds(act_dim, rng)
    pol = _policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=1.0)
    sizes = _bc_sizes(v)
    obs = _sample_obs(pol, sum(sizes), rng)
    act = rng.uniform(low, high, (sum(sizes), act_dim)).astype(np.float32)
    n_params = sum(p.numel() for p in pol.parameters())
    schema = {"loss": Field((len(sizes),), "f"), "has_graph": Field((len(sizes),), "b"),
              "grads": Field((len(sizes), n_params), "f")}
    out, why = _unit(ctx, "bc", "bc_loss", v, {"obs": obs, "actions": act, "sizes": np.array(sizes, np.int64)},
                     {"policy": pol}, schema=schema)
    if out is None:
        return [CheckResult(grad_name, 0, 1, why), CheckResult(value_name, 0, 1, why)]
    k = len(sizes)
    losses = np.asarray(out["loss"], np.float64).reshape(k)
    has_graph = np.asarray(out["has_graph"]).reshape(k).astype(bool)
    grads = np.asarray(out["grads"], np.float64).reshape(k, -1)
    cuts = np.cumsum([0, *sizes])
    batches = [(obs[a:b], act[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    refs = [_reference_bc(pol, o, a) for o, a in batches]
    if grads.shape[1] != refs[0][1].size:
        raise ValueError("gradient vector of the wrong size")
    if not np.any(losses) and not np.any(grads):
        why = "compute_loss returns the placeholder zero loss: fill in the TODO block"
        return [CheckResult(grad_name, 0, 1, why), CheckResult(value_name, 0, 1, why)]
    return [_bc_gradient_part(grad_name, pol, batches, refs, losses, has_graph, grads),
            _bc_value_part(value_name, pol, batches, refs, losses, grads)]


def _close_value(x: float, ref: float) -> bool:
    return abs(x - ref) <= 1e-4 * max(1.0, abs(ref))


def _close_grads(g: np.ndarray, ref: np.ndarray) -> bool:
    return g.shape == ref.shape and bool(np.allclose(g, ref, rtol=1e-3, atol=1e-5))


def _bc_gradient_part(name: str, pol: GaussianMLPPolicy, batches: list[tuple[np.ndarray, np.ndarray]],
                      refs: list[tuple[float, np.ndarray]], losses: np.ndarray, has_graph: np.ndarray,
                      grads: np.ndarray) -> CheckResult:
    """Full points iff the gradients w.r.t. every policy parameter equal the reference's at every call."""
    if not has_graph.all():
        return CheckResult(name, 0, 1, "the loss carries no gradient (it is detached, or built from plain numbers): "
                                       "training cannot learn from it; build it from self.policy.dist(...)")
    if not np.all(np.isfinite(grads)):
        return CheckResult(name, 0, 1, "the gradients contain NaN or infinite values")
    for i, ((o, a), (ref, ref_g)) in enumerate(zip(batches, refs, strict=True)):
        if not _close_grads(grads[i], ref_g):
            why = _bc_diagnosis(pol, o, a, float(losses[i]), grads[i], ref, ref_g)
            later = (f" (call {i + 1} of {len(batches)}; the earlier calls were right: compute_loss must keep no "
                     "state between calls)" if i and not why else "")
            return CheckResult(name, 0, 1, "the gradients of the loss differ from the reference's"
                               + (f": {why}" if why else "") + later)
    offset = "" if all(_close_value(float(x), r) for x, (r, _) in zip(losses, refs, strict=True)) else (
        " (the value differs from the reference by a constant, which training does not see: see the value part)")
    return CheckResult(name, 1, 1, f"the gradients w.r.t. every policy parameter equal the reference's on "
                                   f"{len(batches)} consecutive batches{offset}")


def _bc_value_part(name: str, pol: GaussianMLPPolicy, batches: list[tuple[np.ndarray, np.ndarray]],
                   refs: list[tuple[float, np.ndarray]], losses: np.ndarray, grads: np.ndarray) -> CheckResult:
    """Full points iff the value is the mean negative log-likelihood at every call."""
    if not np.all(np.isfinite(losses)):
        return CheckResult(name, 0, 1, f"the loss is {losses[~np.isfinite(losses)][0]}")
    for i, ((o, a), (ref, ref_g)) in enumerate(zip(batches, refs, strict=True)):
        loss = float(losses[i])
        if not _close_value(loss, ref):
            why = _bc_diagnosis(pol, o, a, loss, grads[i], ref, ref_g)
            later = (f" (call {i + 1} of {len(batches)}; the earlier calls were right: compute_loss must keep no "
                     "state between calls)" if i and not why else "")
            return CheckResult(name, 0, 1, f"loss {loss:.5f} differs from the mean negative log-likelihood {ref:.5f}"
                               + (f": {why}" if why else "") + later)
    return CheckResult(name, 1, 1, f"the loss equals the mean negative log-likelihood on {len(batches)} consecutive "
                                   f"batches ({float(losses[0]):.5f}, ...)")


def _reference_bc(pol: GaussianMLPPolicy, obs: np.ndarray, act: np.ndarray) -> tuple[float, np.ndarray]:
    """The reference loss and its gradient (all parameters, concatenated in named_parameters order)."""
    o, a = torch.as_tensor(obs), torch.as_tensor(act)
    return _value_and_grads(pol, lambda: -pol.dist(pol.normalize_obs(o)).log_prob(pol.normalize_action(a)).mean())


def _value_and_grads(pol: GaussianMLPPolicy, loss_fn: Callable[[], torch.Tensor]) -> tuple[float, np.ndarray]:
    pol.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    grads = np.concatenate([p.grad.double().reshape(-1).numpy() if p.grad is not None else np.zeros(p.numel())
                            for _, p in pol.named_parameters()])
    pol.zero_grad(set_to_none=True)
    return float(loss.detach()), grads


def _bc_candidates(pol: GaussianMLPPolicy, o: torch.Tensor, a: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    """Realistic wrong losses, each named by its mistake."""
    def on() -> torch.Tensor:
        return pol.normalize_obs(o)

    def an() -> torch.Tensor:
        return pol.normalize_action(a)

    return {
        "the sign is flipped (maximise the log-likelihood = minimise its negative)":
            lambda: pol.dist(on()).log_prob(an()).mean(),
        "observations are not normalized (use self.policy.normalize_obs)":
            lambda: -pol.dist(o).log_prob(an()).mean(),
        "observations are normalized twice (self.policy.normalize_obs once; self.policy.dist takes normalized "
        "observations and does not normalize them again)":
            lambda: -pol.dist(pol.normalize_obs(on())).log_prob(an()).mean(),
        "actions are not normalized (use self.policy.normalize_action)":
            lambda: -pol.dist(on()).log_prob(a).mean(),
        "actions are normalized twice (self.policy.normalize_action once)":
            lambda: -pol.dist(on()).log_prob(pol.normalize_action(an())).mean(),
        "neither observations nor actions are normalized": lambda: -pol.dist(o).log_prob(a).mean(),
        "it sums over the batch instead of averaging (take the mean over the batch)":
            lambda: -pol.dist(on()).log_prob(an()).sum(),
        "it averages over action dimensions too (log_prob already sums them; take the mean over the batch only)":
            lambda: -pol.dist(on()).base_dist.log_prob(an()).mean(),
        "it is a mean-squared error, not the negative log-likelihood":
            lambda: ((pol.dist(on()).mean - an()) ** 2).mean(),
        "it is a squared error (summed over action dimensions), not the negative log-likelihood":
            lambda: ((pol.dist(on()).mean - an()) ** 2).sum(-1).mean(),
    }


def _constant_name(c: float, act_dim: int, low: np.ndarray, high: np.ndarray) -> str:
    """Name the constant ``c`` = student loss − reference loss (gradients equal)."""
    half_log_2pi = act_dim * HALF_LOG_2PI
    jacobian = float(np.sum(np.log((high.astype(np.float64) - low) / 2.0)))
    named = {-half_log_2pi: "it leaves out the constant ½·log 2π of each action dimension",
             half_log_2pi: "it adds the constant ½·log 2π of each action dimension twice",
             jacobian: "it is the likelihood of the actions in env units (it differs by Σ log((high − low)/2)); "
                       "use the normalized actions",
             jacobian - half_log_2pi: "it is the likelihood of the actions in env units and leaves out ½·log 2π per "
                                      "action dimension"}
    for value, why in named.items():
        if abs(c - value) <= 1e-3 * max(1.0, abs(value)):
            return why
    return f"it differs from the reference by the constant {c:+.5f}"


def _bc_diagnosis(pol: GaussianMLPPolicy, obs: np.ndarray, act: np.ndarray, loss: float, grads: np.ndarray,
                  ref: float, ref_grads: np.ndarray) -> str:
    """What is wrong with a loss of value ``loss`` and gradient ``grads`` ("" if not recognised)."""
    if _close_grads(grads, ref_grads) and not _close_value(loss, ref):
        why = _constant_name(loss - ref, pol.act_dim, pol.action_low.numpy(), pol.action_high.numpy())
        return (f"{why} — its gradients equal the reference's, so training is unaffected (the gradient points are "
                "kept)")
    o, a = torch.as_tensor(obs), torch.as_tensor(act)
    cands = {why: _value_and_grads(pol, fn) for why, fn in _bc_candidates(pol, o, a).items()}
    for why, (val, _) in cands.items():
        if _close_value(loss, val):
            return why
    for why, (_, g) in cands.items():
        if _close_grads(grads, g):
            return why
    dead = []
    pos = 0
    for pname, p in pol.named_parameters():
        seg = slice(pos, pos + p.numel())
        pos += p.numel()
        if not np.any(grads[seg]) and np.any(ref_grads[seg]):
            dead.append(pname)
    if dead and np.any(grads):
        return (f"no gradient reaches {', '.join(dead)}: part of the computation is detached "
                "(e.g. .detach(), .item(), numpy, or a new tensor from its values)")
    if not np.any(grads):
        return "no gradient reaches the policy: the loss is cut from the policy's graph"
    scale = float(grads @ ref_grads / max(ref_grads @ ref_grads, 1e-30))
    if _close_grads(grads, scale * ref_grads):
        return f"it is the reference loss times {scale:.4g} (a sum where a mean is due, or an extra factor)"
    return ""


# ----------------------------------------------------------------------------------------------- DAgger
DAGGER_BETAS = (1.0, 0.0, 0.35)
DAGGER_REPEATS = 8          # calls per state and β: 8 × batch calls per β on one agent, as a rollout makes them


def _to_normalized(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Env-unit actions (..., act_dim) → normalized units [-1, 1] (no clipping)."""
    return 2.0 * (x - low) / (high - low) - 1.0


def check_dagger_select(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """select_action over DAGGER_REPEATS × batch calls per β on one agent; bounds far from ±1 so units show."""
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = _far_bounds(act_dim, rng)
    learner = _policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=0.2)
    expert = _policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.8)
    obs = _sample_obs(learner, v.batch, rng)
    schema = {k: Field((len(DAGGER_BETAS), v.batch, DAGGER_REPEATS, act_dim), "f") for k in ("exec", "label")}
    out, why = _unit(ctx, "dagger", "dagger_select", v, {"obs": obs}, {"policy": learner, "expert": expert},
                     schema=schema, betas=list(DAGGER_BETAS), repeats=DAGGER_REPEATS)
    label_name, exec_name = part_names("dagger_select", v)
    if out is None:
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    shape = (len(DAGGER_BETAS), v.batch, DAGGER_REPEATS, act_dim)
    exe = np.asarray(out["exec"], np.float64).reshape(shape)
    lab = np.asarray(out["label"], np.float64).reshape(shape)
    if not np.any(exe) and not np.any(lab):
        why = "select_action returns the placeholder zeros: fill in the TODO block"
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    if not (np.all(np.isfinite(exe)) and np.all(np.isfinite(lab))):
        why = "select_action returned NaN or infinite values"
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    with torch.no_grad():
        o = torch.as_tensor(obs)
        expert_n = expert.mean_action(o).double().numpy()                  # (N, act_dim), normalized units
        mean_n = learner.mean_action(o).double().numpy()                    # (N, act_dim), normalized units
        std_n = torch.exp(learner.log_std).double().numpy()                # (act_dim,), normalized units
    expert_a = expert.act(obs).astype(np.float64)                          # (N, act_dim), env units
    ref = _DaggerRef(expert_a, expert_n, mean_n, std_n, low.astype(np.float64), high.astype(np.float64))
    return [_dagger_label_part(label_name, lab, exe, ref), _dagger_exec_part(exec_name, exe, ref)]


@dataclass
class _DaggerRef:
    expert: np.ndarray      # (N, act_dim) the expert's deterministic action, env units
    expert_n: np.ndarray    # (N, act_dim) the same in normalized units
    mean_n: np.ndarray      # (N, act_dim) the learner's mean, normalized units
    std_n: np.ndarray       # (act_dim,) the learner's std, normalized units
    low: np.ndarray
    high: np.ndarray


def _dagger_label_part(name: str, lab: np.ndarray, exe: np.ndarray, ref: _DaggerRef) -> CheckResult:
    """lab, exe: (n_betas, N, R, act_dim). The label must be the expert's env-unit action at every call."""
    want = ref.expert[None, :, None, :]
    if np.allclose(lab, want, atol=1e-4):
        return CheckResult(name, 1, 1, f"labels are the expert's actions at every call, for every β "
                                       f"({lab.shape[1] * lab.shape[2]} calls each)")
    if np.allclose(lab, ref.expert_n[None, :, None, :], atol=1e-4):
        hint = ("the label is in normalized units ([-1, 1]): store the expert's action in env units, as "
                "self.expert_action(obs) returns it")
    elif np.allclose(lab[1], exe[1], atol=1e-6):
        hint = "with β = 0 the label equals the executed (learner) action: label every state with the expert's action"
    elif not np.allclose(lab, lab[:, :, :1, :], atol=1e-6):
        hint = ("the label changes between calls for the same state: it must be the expert's deterministic action "
                "(self.expert_action(obs)), whoever acts")
    elif np.allclose(lab[0], want[0], atol=1e-4):
        hint = ("the label is the expert's action only when the expert acts: label every state with "
                "self.expert_action(obs)")
    else:
        hint = "they are not the expert's deterministic action (self.expert_action(obs))"
    return CheckResult(name, 0, 1, "labels differ from the expert's actions: " + hint)


def _is_expert(e: np.ndarray, ref: _DaggerRef) -> np.ndarray:
    """(N, R, act_dim) executed actions → (N, R) True where the expert's action was executed."""
    return np.all(np.isclose(e, ref.expert[:, None, :], atol=1e-5, rtol=0), axis=-1)


def _dagger_exec_part(name: str, exe: np.ndarray, ref: _DaggerRef) -> CheckResult:
    """β = 1 → the expert; β = 0 → fresh learner samples; β = 0.35 → the expert at ≈35% of the calls."""
    e1, e0, e35 = exe
    f1, f0, f35 = (float(_is_expert(e, ref).mean()) for e in exe)
    if f1 < 0.02 and f0 > 0.98:
        return CheckResult(name, 0, 1, "the coin is inverted: the expert acts with probability 1 − β (β = 1 → never, "
                                       "β = 0 → always); execute the expert's action when u < β")
    problems = []
    if f1 < 1.0:
        if np.allclose(e1, ref.expert_n[:, None, :], atol=1e-4):
            problems.append("with β = 1 the executed action is the expert's in normalized units ([-1, 1]): execute it "
                            "in env units, as self.expert_action(obs) returns it")
        else:
            problems.append(f"with β = 1 the executed action is the expert's at only {100 * f1:.0f}% of the calls")
    if f0 > 0.02:
        problems.append(f"with β = 0 the expert's action was executed at {100 * f0:.0f}% of the calls")
    else:
        problems += _learner_sample_problems(e0, ref)
    if not problems:
        problems += _coin_problems(_is_expert(e35, ref), 0.35)
    if problems:
        return CheckResult(name, 0, 1, "; ".join(problems))
    return CheckResult(name, 1, 1, f"expert executed with probability β, drawn fresh at each call (β = 0.35 → "
                                   f"{100 * f35:.0f}% of {e35.shape[0] * e35.shape[1]} calls), fresh learner samples "
                                   "otherwise")


def _learner_sample_problems(e0: np.ndarray, ref: _DaggerRef) -> list[str]:
    """e0 (N, R, act_dim): actions executed at β = 0 must be fresh samples of the learner's Gaussian (env units)."""
    en = _to_normalized(e0, ref.low, ref.high)
    inside = np.abs(en) < 0.999                          # samples clipped at a bound are left out
    z = (en - ref.mean_n[:, None, :]) / ref.std_n
    zi = z[inside]
    if zi.size >= 50 and abs(zi.mean()) < 0.2 and 0.8 < zi.std() < 1.2:
        if e0.shape[1] > 1 and np.allclose(e0[:, 0], e0[:, 1]):
            return ["with β = 0 the same learner sample is executed at every call for a given state (draw with "
                    "self.rng, e.g. self.learner_action(obs))"]
        shared = _shared_draw(z, inside)
        return [f"with β = 0 the learner's sample {shared}"] if shared else []
    zn = (e0 - ref.mean_n[:, None, :]) / ref.std_n      # the sample left in normalized units?
    if np.all(np.abs(e0) <= 1.0 + 1e-6) and abs(zn.mean()) < 0.2 and 0.8 < zn.std() < 1.2:
        return ["with β = 0 the executed learner action is in normalized units ([-1, 1]): execute it in env units "
                "(self.learner_action(obs))"]
    if zi.size and zi.std() < 0.05:
        return ["with β = 0 the executed action is the learner's mean, not a sample from π (use "
                "self.learner_action(obs))"]
    if e0.shape[1] > 1 and np.allclose(e0[:, 0], e0[:, 1]):
        return ["with β = 0 the same learner sample is executed at every call for a given state (draw with self.rng)"]
    return [f"with β = 0 the executed actions are not samples from the learner's Gaussian (standardized mean "
            f"{zi.mean() if zi.size else float('nan'):.2f}, std {zi.std() if zi.size else float('nan'):.2f}; "
            "expected 0 and 1)"]


def _coin_problems(is_expert: np.ndarray, beta: float) -> list[str]:
    """is_expert (N, R): who acted at each call for one β; the coin must be fresh and fair at every call."""
    frac = float(is_expert.mean())
    n = is_expert.size
    tol = max(0.08, 5.0 * math.sqrt(beta * (1 - beta) / n))
    if frac in (0.0, 1.0):
        who = "expert" if frac else "learner"
        return [f"with β = {beta} the {who} acted at every one of {n} calls: draw the coin fresh at each call "
                "(u = self.rng.random(); the expert acts if u < β)"]
    if abs(frac - (1 - beta)) < tol <= abs(frac - beta):
        return [f"with β = {beta} the expert acted at {100 * frac:.0f}% of the calls ≈ 1 − β: the expert must act "
                "when u < β, not u > β"]
    if abs(frac - beta) > tol:
        return [f"with β = {beta} the expert acted at {100 * frac:.0f}% of the calls (expected ≈{100 * beta:.0f}%)"]
    per_state = float(np.all(is_expert == is_expert[:, :1], axis=1).mean())
    chance = beta ** is_expert.shape[1] + (1 - beta) ** is_expert.shape[1]
    if per_state > max(0.5, 3 * chance):
        return [f"with β = {beta} the coin gives the same outcome at every call for a given state "
                f"({100 * per_state:.0f}% of states): it must be a fresh draw at each call (self.rng.random()), not "
                "a function of the state"]
    return []


def _shared_draw(z: np.ndarray, inside: np.ndarray) -> str:
    """z, inside (..., act_dim): standardized draws. Names dimensions that share one draw ("" if independent)."""
    z2, in2 = z.reshape(-1, z.shape[-1]), inside.reshape(-1, z.shape[-1])
    pairs = []
    dims = z2.shape[1]
    for i in range(dims):
        for j in range(i + 1, dims):
            m = in2[:, i] & in2[:, j]
            if m.sum() < 30 or z2[m, i].std() < 1e-9 or z2[m, j].std() < 1e-9:
                continue
            r = float(np.corrcoef(z2[m, i], z2[m, j])[0, 1])
            if abs(r) > 0.5:
                pairs.append((i, j, r))
    if not pairs:
        return ""
    if len(pairs) == dims * (dims - 1) // 2:
        return (f"uses one draw shared by every action dimension (correlation between dimensions up to "
                f"{max(abs(r) for *_, r in pairs):.2f}; expected ≈ 0): draw one independent value per dimension "
                "(size=self.act_dim)")
    i, j, r = pairs[0]
    return (f"is correlated between action dimensions ({i} and {j}: correlation {r:.2f}; expected ≈ 0): draw one "
            "independent value per dimension (size=self.act_dim)")


AGG_ROUNDS = 4              # aggregate is called this many times on one agent, fed back what it returned


def _agg_sizes(v: Variant, rng: np.random.Generator) -> list[int]:
    """Rows of the demos, then of each round (the last one cut short, as the sample budget may cut it)."""
    rounds = [max(3, v.batch // 2 + int(rng.integers(1, 9))) for _ in range(AGG_ROUNDS)]
    rounds[-1] = max(2, rounds[-1] // 2)
    return [v.batch, *rounds]


def check_dagger_aggregate(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """aggregate over AGG_ROUNDS rounds on one agent, as DAggerAgent.train calls it; any order of rows is fine."""
    name, = part_names("dagger_aggregate", v)
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = _far_bounds(act_dim, rng)
    pol = _policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.5)    # sets the agent's action units
    sizes = _agg_sizes(v, rng)
    parts_o = [rng.normal(size=(n, obs_dim)).astype(np.float32) for n in sizes]
    parts_a = [rng.uniform(low, high, (n, act_dim)).astype(np.float32) for n in sizes]
    rows = 4 * AGG_ROUNDS * sum(sizes)   # any 2-D shape (wrong ones get this check's own feedback), bounded size
    schema = {"obs": Field((None, None), "f", rows * obs_dim), "actions": Field((None, None), "f", rows * act_dim),
              "lengths": Field((AGG_ROUNDS,), "iu")}
    out, why = _unit(ctx, "dagger", "dagger_aggregate", v,
                     {"data_obs": parts_o[0], "data_actions": parts_a[0], "visited_obs": np.concatenate(parts_o[1:]),
                      "labels": np.concatenate(parts_a[1:]), "round_sizes": np.array(sizes[1:], np.int64)},
                     {"policy": pol}, schema=schema)
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    lengths = np.asarray(out["lengths"], np.int64).reshape(AGG_ROUNDS)
    o = np.asarray(out["obs"], np.float64).reshape(-1, obs_dim)
    a = np.asarray(out["actions"], np.float64).reshape(-1, act_dim)
    if np.any(lengths < 0) or lengths.sum() != len(o) or len(o) != len(a):
        raise ValueError("inconsistent aggregation answer")
    rows = _RowIndex(parts_o, parts_a, low.astype(np.float64), high.astype(np.float64))
    cuts = np.cumsum([0, *lengths])
    for k in range(1, AGG_ROUNDS + 1):
        problems = rows.problems(o[cuts[k - 1]:cuts[k]], a[cuts[k - 1]:cuts[k]], k)
        if problems:
            where = f"after round {k} of {AGG_ROUNDS}" + (" (the earlier rounds were right)" if k > 1 else "")
            return [CheckResult(name, 0, 1, f"{where}: " + "; ".join(problems))]
    return [CheckResult(name, 1, 1, f"after each of {AGG_ROUNDS} rounds on one agent the dataset holds exactly the "
                                    f"demos and every round so far ({' → '.join(str(n) for n in lengths)} pairs)")]


class _RowIndex:
    """The demo rows (source 0) and each round's rows (source k); finds where returned rows come from."""

    def __init__(self, parts_o: list[np.ndarray], parts_a: list[np.ndarray], low: np.ndarray, high: np.ndarray):
        self.sizes = [len(p) for p in parts_o]
        self.source = np.concatenate([np.full(n, k) for k, n in enumerate(self.sizes)])
        self.obs_key = {r.tobytes(): i for i, r in enumerate(np.concatenate(parts_o).astype(np.float32))}
        acts = np.concatenate(parts_a).astype(np.float64)
        self.act_key = {r.tobytes(): i for i, r in enumerate(acts.astype(np.float32))}
        self.acts_n = _to_normalized(acts, low, high)

    def problems(self, o: np.ndarray, a: np.ndarray, k: int) -> list[str]:
        """What is wrong with the dataset (o, a) returned by the k-th call (it must hold sources 0..k once each)."""
        io_ = np.array([self.obs_key.get(r.tobytes(), -1) for r in o.astype(np.float32)], np.int64)
        ia = np.array([self.act_key.get(r.tobytes(), -1) for r in a.astype(np.float32)], np.int64)
        want = int(np.sum(self.sizes[:k + 1]))
        if len(o) == want and np.all(io_ == ia) and np.all(io_ >= 0) and len(set(io_.tolist())) == want \
                and np.all(self.source[io_] <= k):
            return []
        problems = []
        if np.all(io_ >= 0) and np.any(ia < 0):
            changed = ia < 0
            if np.allclose(a[changed], self.acts_n[io_[changed]], atol=1e-4):
                return ["the labels were changed to normalized units: store the expert's labels as given (env units)"]
        if np.any(io_ < 0) or np.any(ia < 0):
            bad = int(np.sum((io_ < 0) | (ia < 0)))
            problems.append(f"{bad} of its {len(o)} rows are not among the given (state, label) pairs (were the "
                            "observations or labels changed?)")
        both = (io_ >= 0) & (ia >= 0)
        if np.any(both & (io_ != ia)):
            problems.append("states and labels are no longer paired (keep each visited state with its own label)")
        counts = np.bincount(io_[both & (io_ == ia)], minlength=len(self.source))    # intact pairs
        states = np.bincount(io_[io_ >= 0], minlength=len(self.source))                # states, whatever their label
        if np.any(counts > 1):
            problems.append(f"{int(np.sum(counts[counts > 1] - 1))} pairs appear more than once (each pair belongs in "
                            "the dataset once: the old dataset followed by the new pairs)")
        names = ["the demos"] + [f"round {i}" for i in range(1, AGG_ROUNDS + 1)]
        missing, partial = [], []
        for s in range(k + 1):
            have = int(np.sum(states[self.source == s] > 0))
            if have == 0:
                missing.append(names[s])
            elif have < self.sizes[s]:
                partial.append(f"{self.sizes[s] - have} of the {self.sizes[s]} pairs of {names[s]}")
        if k == 1 and len(o) == self.sizes[0] and missing == ["round 1"] and not partial:
            return ["aggregate returns the dataset unchanged (the placeholder?): append the new pairs"]
        if missing == [names[k]]:
            problems.append(f"this round's {self.sizes[k]} new pairs were not added")
        elif missing and names[k] not in missing:
            kept = [n for n in names[:k + 1] if n not in missing]
            problems.append(f"the dataset holds {' and '.join(kept)} only (dropped: {', '.join(missing)}): DAgger "
                            "keeps every round's data, D ← D ∪ D_i")
        elif missing:
            problems.append(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
        if partial:
            problems.append("missing: " + ", ".join(partial))
        if not problems:
            problems.append(f"the dataset has {len(o)} pairs; expected {want}")
        return problems


# ----------------------------------------------------------------------------------------------- noise injection
DART_REPEATS = 6            # calls per state on one agent: 6 × batch calls


def check_dart_step(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """noisy_expert_step over DART_REPEATS × batch calls on one agent (every action dimension, asymmetric bounds)."""
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = _bounds(act_dim, rng)
    expert = _policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.3)
    noise_std = float(rng.uniform(0.28, 0.4))   # away from the config default 0.2: a hardcoded σ shows
    obs = _sample_obs(expert, v.batch, rng)
    schema = {k: Field((v.batch, DART_REPEATS, act_dim), "f") for k in ("exec", "label")}
    out, why = _unit(ctx, "dart", "dart_step", v, {"obs": obs}, {"policy": expert, "expert": expert},
                     schema=schema, noise_std=noise_std, repeats=DART_REPEATS)
    label_name, noise_name = part_names("dart_step", v)
    if out is None:
        return [CheckResult(label_name, 0, 1, why), CheckResult(noise_name, 0, 1, why)]
    shape = (v.batch, DART_REPEATS, act_dim)
    exe = np.asarray(out["exec"], np.float64).reshape(shape)
    lab = np.asarray(out["label"], np.float64).reshape(shape)
    clean = expert.act(obs).astype(np.float64)[:, None, :]            # (N, 1, act_dim)
    if not np.any(exe) and not np.any(lab):
        why = "noisy_expert_step returns the placeholder zeros: fill in the TODO block"
        return [CheckResult(label_name, 0, 1, why), CheckResult(noise_name, 0, 1, why)]
    with torch.no_grad():
        clean_n = expert.mean_action(torch.as_tensor(obs)).double().numpy()[:, None, :]
    results = [_dart_label_part(label_name, lab, exe, clean, clean_n)]
    problems = _noise_problems(exe, clean, low.astype(np.float64), high.astype(np.float64), noise_std)
    if problems:
        results.append(CheckResult(noise_name, 0, 1, "; ".join(problems)))
    else:
        calls = exe.shape[0] * exe.shape[1]
        results.append(CheckResult(noise_name, 1, 1, f"executed = expert + N(0, σ²) with σ = {noise_std:.2f}·"
                                                     "(high−low)/2, independent in every dimension, clipped to the "
                                                     f"bounds, fresh at each of {calls} calls"))
    return results


def _dart_label_part(name: str, lab: np.ndarray, exe: np.ndarray, clean: np.ndarray,
                     clean_n: np.ndarray) -> CheckResult:
    """lab, exe (N, R, act_dim); clean, clean_n (N, 1, act_dim): the label must be the clean env-unit action."""
    if not np.all(np.isfinite(lab)):
        return CheckResult(name, 0, 1, "the stored labels contain NaN or infinite values")
    if np.allclose(lab, clean, atol=1e-4):
        return CheckResult(name, 1, 1, "labels are the expert's clean actions at every call")
    if np.allclose(lab, exe, atol=1e-6):
        return CheckResult(name, 0, 1, "the stored label is the noisy executed action; store the clean expert action")
    if np.allclose(lab, clean_n, atol=1e-4):
        return CheckResult(name, 0, 1, "the stored label is in normalized units ([-1, 1]): store the expert's action "
                                       "in env units, as self.expert_action(obs) returns it")
    if not np.allclose(lab, lab[:, :1], atol=1e-6):
        return CheckResult(name, 0, 1, "the stored label changes between calls for the same state: it must be the "
                                       "expert's clean action (no noise)")
    return CheckResult(name, 0, 1, "labels differ from the expert's clean actions")


def _pooled_excess_kurtosis(exe: np.ndarray, clean: np.ndarray, low: np.ndarray, high: np.ndarray,
                            sigma: np.ndarray) -> float:
    """Excess kurtosis of the standardized noise over all dimensions (unclipped samples only)."""
    inside = (exe > low + 1e-4) & (exe < high - 1e-4)
    z = ((exe - clean) / sigma)[inside]
    z = (z - z.mean()) / (z.std() + 1e-12)
    return float((z ** 4).mean() - 3.0)


def _bound_problems(exe: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[str]:
    """Clipping mistakes: [-1, 1] instead of the bounds, no clipping, swapped bounds."""
    outside = np.any(exe < low - 1e-5) or np.any(exe > high + 1e-5)
    wide = (low < -1.0 - 1e-3) | (high > 1.0 + 1e-3)
    unit_clip = np.any(np.isclose(np.abs(exe), 1.0, atol=1e-6)) and np.all(np.abs(exe) <= 1.0 + 1e-6)
    if unit_clip and (outside or not np.any(np.abs(exe)[..., wide] > 1.0 + 1e-4)):
        return ["executed actions are clipped to [-1, 1] instead of the env's bounds "
                "[self.action_low, self.action_high]"]
    if outside:
        return ["executed actions leave the action bounds (clip to [self.action_low, self.action_high])"]
    at_low, at_high = np.isclose(exe, low, atol=1e-6), np.isclose(exe, high, atol=1e-6)
    if np.all(at_low) or np.all(at_high):
        which = "lower bound self.action_low" if np.all(at_low) else "upper bound self.action_high"
        return [f"every executed action equals the {which}: the clip's bounds are swapped? "
                "(np.clip(x, self.action_low, self.action_high): the lower bound first)"]
    if np.mean(at_low | at_high) > 0.9:
        return ["almost every executed action sits on a bound: check the clip (np.clip(x, self.action_low, "
                "self.action_high)) and the noise's scale"]
    return []


def _noise_problems(exe: np.ndarray, clean: np.ndarray, low: np.ndarray, high: np.ndarray,
                    noise_std: float) -> list[str]:
    """What is wrong with the executed actions ``exe`` (N, R, act_dim) for clean actions ``clean`` (N, 1, act_dim)."""
    if not np.all(np.isfinite(exe)):
        return ["the executed actions contain NaN or infinite values"]
    bounds = _bound_problems(exe, low, high)
    if bounds:
        return bounds
    if exe.shape[1] > 1 and np.allclose(exe[:, 0], exe[:, 1]):
        noise = exe - clean
        if np.any(noise) and np.allclose(noise, noise[:1, :1]):
            return ["the same noise is added at every call: draw fresh noise with self.rng at each call"]
        return ["the same action is executed at every call for a given state: draw fresh noise with self.rng at "
                "each call"]
    half = (high - low) / 2.0
    sigma = noise_std * half
    inside = (exe > low + 1e-4) & (exe < high - 1e-4)
    z = (exe - clean) / sigma
    ratios, means, clipped = [], [], []
    for j in range(exe.shape[-1]):
        zj = z[..., j][inside[..., j]]
        if zj.size < 40:
            return [f"almost every executed action of dimension {j} sits on a bound"]
        ratios.append(float(zj.std()))
        means.append(float(zj.mean()))
        clipped.append(1.0 - float(inside[..., j].mean()))
    ratios_a = np.asarray(ratios)
    if np.all(ratios_a < 0.05):
        return ["the executed action carries no noise"]
    shared = _shared_draw(z, inside)
    if shared:
        return [f"the noise {shared}"]
    if np.all((0.8 < ratios_a) & (ratios_a < 1.25)) and np.all(np.abs(means) < 0.25):
        kurt = _pooled_excess_kurtosis(exe, clean, low, high, sigma)
        if kurt < -0.6:
            return [f"the noise is not Gaussian (excess kurtosis {kurt:.2f}; a Gaussian has 0, uniform noise −1.2): "
                    "draw it with self.rng.normal"]
        return []
    return [_scale_hint(ratios_a, np.asarray(means), np.asarray(clipped) < 0.05, half)]


def _scale_hint(ratios: np.ndarray, means: np.ndarray, clean_dims: np.ndarray, half: np.ndarray) -> str:
    """Name a wrong noise scale from the measured std / expected σ per dimension (``clean_dims``: little clipping)."""
    scale = (ratios * half)[clean_dims]          # measured noise std / noise_std, in env units
    ratios_c = ratios[clean_dims]
    if not clean_dims.any():
        hint = "the noise's spread differs from σ = noise_std·(high − low)/2"
    elif np.all(np.abs(scale - 1.0) < 0.25):
        hint = "σ misses the (high − low)/2 factor: scale the noise per dimension by self.cfg.noise_std·(high − low)/2"
    elif np.all(np.abs(ratios_c - 2.0) < 0.4):
        hint = "σ is twice the expected: use (high − low)/2, not (high − low)"
    elif np.all(np.abs(ratios_c / 10.0 - 1.0) < 0.25):
        hint = "σ is ten times the expected"
    elif np.any(np.abs(means) >= 0.25):
        hint = "the noise is not centred on the expert's action (mean ≠ 0)"
    else:
        hint = "the noise's spread differs from σ = noise_std·(high − low)/2 in some dimensions"
    detail = ", ".join(f"{r:.2f}" for r in ratios)
    return f"{hint} (measured std / expected σ per dimension: {detail}; expected 1.00)"


# ----------------------------------------------------------------------------------------------- performance
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
        obs_dim, act_dim = env_dims(make_env(resolve_env_config(env)))
        oracle = {"expert_npz": str(export_expert(env, ctx.private)), "obs_dim": obs_dim, "act_dim": act_dim,
                  "budget": budget}
    d = new_check_dir(ctx.scratch, f"train_{agent}_{env}")
    try:
        job = ctx.agent_job(agent, kind="train", env=env, seed=int(seed), config=config)
        res = ctx.run(d, job, ctx.train_timeout, references=reference_modules(todo.depends_on),
                      data=granted_demos(env, episodes, ctx.private), oracle=oracle)
        if res.oracle_over_budget or res.oracle_error or res.supervisor_error:
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
    finally:
        remove_check_dir(d)


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
    model, why = train_in_child(ctx, spec, seed)
    if model is None:
        return None, why
    policy, why = load_trained_policy(model, spec["env"])
    if policy is None:
        return None, why
    if copies_expert(policy, spec["env"]):
        return None, "the trained model carries the expert's weights instead of learned ones"
    # the NumPy actor (float64 inside): the same return for any thread count, on every path
    res = evaluate(make_env(resolve_env_config(spec["env"])), policy.deterministic_actor().act,
                   int(spec["eval_episodes"]), eval_seed, "grader")
    return float(res.mean), f"return {res.mean:.0f} ± {res.std:.0f} over {spec['eval_episodes']} hidden-seed episodes"


UNIT_CHECKS: dict[str, tuple[str, Callable[[GradingContext, Variant], list[CheckResult]]]] = {
    "bc_loss": ("bc", check_bc_loss),
    "dagger_select": ("dagger", check_dagger_select),
    "dagger_aggregate": ("dagger", check_dagger_aggregate),
    "dart_step": ("dart", check_dart_step),
}


def manifest_json(manifest: dict[str, TodoFile]) -> dict[str, dict[str, Any]]:
    return {k: {"module": v.module, "class_name": v.class_name, "methods": list(v.methods)}
            for k, v in manifest.items()}

