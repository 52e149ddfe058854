"""Grader checks. Every check builds its inputs here from its own seeded generator, runs student code
only in a child process (grader.sandbox) in a private workspace, reads back plain arrays and scores them
against references computed here.

A check returns :class:`CheckResult` items (one per scored part) so that one bug costs only its part.
"""
from __future__ import annotations

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
from learning.evaluation import evaluate_policy
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
    stub_files: list[str] = field(default_factory=list)       # student files replaced by the framework's stub
    unit_timeout: float = 120.0
    train_timeout: float = 600.0
    mem_mb: int = 2048

    def agent_job(self, agent: str, **extra: Any) -> dict[str, Any]:
        spec = self.manifest[agent]
        return {"agent": agent, "module": spec.module, "class_name": spec.class_name, **extra}

    def run(self, d: CheckDir, job: dict, timeout: float, references: dict[str, str] | None = None,
            data: list[Path] | None = None, oracle: dict | None = None) -> ChildResult:
        """Build ``d``'s workspace completely, then run the child on ``job``."""
        job = dict(job, reference=dict(references or {}))
        build_workspace(d, self.student_files, self.stub_files, sorted(set((references or {}).values())),
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


def _sample_obs(p: GaussianMLPPolicy, n: int, rng: np.random.Generator) -> np.ndarray:
    mean = p.obs_normalizer.mean.numpy()
    std = np.sqrt(p.obs_normalizer.var.numpy())
    return (mean + std * rng.normal(size=(n, p.obs_dim))).astype(np.float32)


def _tag(v: Variant) -> str:
    return f"{'hidden' if v.hidden else 'public'} variant, {v.env}"


def part_names(key: str, v: Variant) -> list[str]:
    """The scored parts of unit check ``key`` on variant ``v`` (names are the gradebook's columns)."""
    tag = _tag(v)
    return {"bc_loss": [f"BC loss ({tag}, batch {v.batch})"],
            "dagger_select": [f"DAgger label ({tag})", f"DAgger executed action ({tag})"],
            "dagger_aggregate": [f"DAgger aggregation ({tag})"],
            "dart_step": [f"Noise injection: clean label ({tag})",
                          f"Noise injection: noisy executed action ({tag})"]}[key]


# ----------------------------------------------------------------------------------------------- BC loss
def check_bc_loss(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    name, = part_names("bc_loss", v)
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = _bounds(act_dim, rng)
    pol = _policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=1.0)
    obs = _sample_obs(pol, v.batch, rng)
    act = rng.uniform(low, high, (v.batch, act_dim)).astype(np.float32)
    n_params = sum(p.numel() for p in pol.parameters())
    schema = {"loss": Field((), "f"), "has_graph": Field((), "b"), "grads": Field((n_params,), "f")}
    out, why = _unit(ctx, "bc", "bc_loss", v, {"obs": obs, "actions": act}, {"policy": pol}, schema=schema)
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    ref, ref_grads = _reference_bc(pol, obs, act)
    loss = float(out["loss"])
    if not np.isfinite(loss):
        return [CheckResult(name, 0, 1, f"loss is {loss}")]
    if abs(loss - ref) > 1e-4 * max(1.0, abs(ref)):
        return [CheckResult(name, 0, 1, f"loss {loss:.5f} differs from the mean negative log-likelihood {ref:.5f}"
                            + _bc_diagnosis(pol, obs, act, loss))]
    if not bool(out["has_graph"]):
        return [CheckResult(name, 0, 1, "the loss has the right value but carries no gradient (detached/no graph)")]
    grads = out["grads"]
    if grads.shape != ref_grads.shape or not np.allclose(grads, ref_grads, rtol=1e-3, atol=1e-5):
        return [CheckResult(name, 0, 1, "the loss has the right value but its gradients differ from the reference "
                                        "(part of the computation is detached or uses other tensors)")]
    return [CheckResult(name, 1, 1, f"loss {loss:.5f} matches the reference and gradients flow")]


def _reference_bc(pol: GaussianMLPPolicy, obs: np.ndarray, act: np.ndarray) -> tuple[float, np.ndarray]:
    pol.zero_grad(set_to_none=True)
    o, a = torch.as_tensor(obs), torch.as_tensor(act)
    loss = -pol.dist(pol.normalize_obs(o)).log_prob(pol.normalize_action(a)).mean()
    loss.backward()
    grads = np.concatenate([p.grad.double().reshape(-1).numpy() if p.grad is not None else np.zeros(p.numel())
                            for _, p in pol.named_parameters()])
    pol.zero_grad(set_to_none=True)
    return float(loss.detach()), grads


def _bc_diagnosis(pol, obs, act, loss) -> str:
    o, a = torch.as_tensor(obs), torch.as_tensor(act)
    with torch.no_grad():
        on, an = pol.normalize_obs(o), pol.normalize_action(a)
        cands = {
            "the sign is flipped (maximise the log-likelihood = minimise its negative)":
                pol.dist(on).log_prob(an).mean(),
            "observations are not normalized (use self.policy.normalize_obs)": -pol.dist(o).log_prob(an).mean(),
            "actions are not normalized (use self.policy.normalize_action)": -pol.dist(on).log_prob(a).mean(),
            "neither observations nor actions are normalized": -pol.dist(o).log_prob(a).mean(),
            "it sums over the batch instead of averaging": -pol.dist(on).log_prob(an).sum(),
            "it averages over action dimensions too (log_prob already sums them; take the mean over the batch only)":
                -pol.dist(on).base_dist.log_prob(an).mean(),
            "it is a mean-squared error, not the negative log-likelihood": ((pol.dist(on).mean - an) ** 2).mean(),
        }
    for why, val in cands.items():
        if abs(float(val) - loss) <= 1e-4 * max(1.0, abs(float(val))):
            return f": {why}"
    return ""


# ----------------------------------------------------------------------------------------------- DAgger
def check_dagger_select(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32)
    learner = _policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=0.2)
    expert = _policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.8)
    obs = _sample_obs(learner, v.batch, rng)
    betas = [1.0, 0.0, 0.35]
    repeats = 5
    schema = {f"{k}_{j}": Field((v.batch, repeats, act_dim), "f") for k in ("exec", "label") for j in range(len(betas))}
    out, why = _unit(ctx, "dagger", "dagger_select", v, {"obs": obs}, {"policy": learner, "expert": expert},
                     schema=schema, betas=betas, repeats=repeats)
    label_name, exec_name = part_names("dagger_select", v)
    if out is None:
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    expert_a = expert.act(obs).astype(np.float64)                       # (N, act_dim)
    with torch.no_grad():
        mean = learner.to_env_action(learner.mean_action(torch.as_tensor(obs))).numpy().astype(np.float64)
        std_n = torch.exp(learner.log_std).numpy().astype(np.float64)   # normalized units; bounds are ±1
    if all(not np.any(out[k]) for k in out):
        why = "select_action returns the placeholder zeros: fill in the TODO block"
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    if any(not np.all(np.isfinite(out[k])) for k in out):
        why = "select_action returned NaN or infinite values"
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    results = []
    label_ok = all(np.allclose(out[f"label_{j}"], expert_a[:, None, :], atol=1e-4) for j in range(len(betas)))
    if label_ok:
        results.append(CheckResult(label_name, 1, 1, "labels are the expert's actions for every β"))
    else:
        hint = ""
        if np.allclose(out["label_1"], out["exec_1"], atol=1e-6):
            hint = ": with β = 0 the label equals the executed (learner) action — label with the expert instead"
        elif not np.allclose(out["label_0"], expert_a[:, None, :], atol=1e-4):
            hint = ": even with β = 1 the label is not the expert's deterministic action (self.expert_action(obs))"
        results.append(CheckResult(label_name, 0, 1, "labels differ from the expert's actions" + hint))
    problems = []
    e1, e0, e35 = out["exec_0"], out["exec_1"], out["exec_2"]
    if not np.allclose(e1, expert_a[:, None, :], atol=1e-4):
        problems.append("with β = 1 the executed action is not always the expert's")
    is_expert0 = np.all(np.isclose(e0, expert_a[:, None, :], atol=1e-5), axis=-1)
    if is_expert0.mean() > 0.02:
        problems.append("with β = 0 the expert's action was executed")
    else:
        inside = np.abs(e0) < 0.999
        z = ((e0 - mean[:, None, :]) / std_n)[inside]
        if z.size < 50 or abs(z.mean()) > 0.2 or not 0.8 < z.std() < 1.2:
            if z.size and z.std() < 0.05:
                problems.append("with β = 0 the executed action is the learner's mean, not a sample from π "
                                "(use self.learner_action(obs))")
            elif z.size and np.allclose(e0[:, 0], e0[:, 1]):
                problems.append("with β = 0 the same learner sample is executed at every call (draw with self.rng)")
            else:
                problems.append(f"with β = 0 the executed actions are not samples from the learner's Gaussian "
                                f"(standardized mean {z.mean():.2f}, std {z.std():.2f}; expected 0 and 1)")
    frac = np.all(np.isclose(e35, expert_a[:, None, :], atol=1e-5), axis=-1).mean()
    if abs(frac - 0.35) > 0.12:
        problems.append(f"with β = 0.35 the expert's action was executed in {100 * frac:.0f}% of steps (expected ≈35%)")
    if problems:
        results.append(CheckResult(exec_name, 0, 1, "; ".join(problems)))
    else:
        results.append(CheckResult(exec_name, 1, 1, f"expert executed with probability β (β=0.35 → {100 * frac:.0f}%), "
                                                    "learner samples otherwise"))
    return results


def check_dagger_aggregate(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    name, = part_names("dagger_aggregate", v)
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    n_old, n_new = v.batch, max(3, v.batch // 2 + int(rng.integers(1, 9)))
    old_o = rng.normal(size=(n_old, obs_dim)).astype(np.float32)
    old_a = rng.uniform(-1, 1, (n_old, act_dim)).astype(np.float32)
    new_o = rng.normal(size=(n_new, obs_dim)).astype(np.float32)
    new_a = rng.uniform(-1, 1, (n_new, act_dim)).astype(np.float32)
    rows = 4 * (n_old + n_new)           # any 2-D shape (wrong ones get this check's own feedback), bounded size
    schema = {"obs": Field((None, None), "f", rows * obs_dim), "actions": Field((None, None), "f", rows * act_dim)}
    out, why = _unit(ctx, "dagger", "dagger_aggregate", v,
                     {"data_obs": old_o, "data_actions": old_a, "visited_obs": new_o, "labels": new_a}, schema=schema)
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    o, a = out["obs"], out["actions"]
    if o.ndim != 2 or a.ndim != 2 or o.shape[1] != obs_dim or a.shape[1] != act_dim or len(o) != len(a):
        return [CheckResult(name, 0, 1, f"the returned dataset has obs {o.shape} / actions {a.shape}")]
    if len(o) == n_old and np.allclose(o, old_o):
        return [CheckResult(name, 0, 1, "aggregate returns the dataset unchanged (the placeholder): append the "
                                        "new pairs")]
    if len(o) == n_new:
        return [CheckResult(name, 0, 1, f"the dataset holds only this round's {n_new} pairs: earlier rounds' data were "
                                        "dropped (DAgger aggregates: D ← D ∪ D_i)")]
    if len(o) != n_old + n_new:
        return [CheckResult(name, 0, 1, f"the dataset has {len(o)} pairs; expected {n_old} old + {n_new} new "
                                        f"= {n_old + n_new}")]
    want = _sorted_rows(np.concatenate([np.concatenate([old_o, new_o]), np.concatenate([old_a, new_a])], 1))
    got = _sorted_rows(np.concatenate([o, a], 1))
    if not np.allclose(want, got, atol=1e-6):
        return [CheckResult(name, 0, 1, "the dataset does not hold exactly the old pairs plus the new (visited state, "
                                        "expert label) pairs")]
    return [CheckResult(name, 1, 1, f"dataset grew from {n_old} to {n_old + n_new} with the new expert-labelled "
                                    "states")]


def _sorted_rows(x: np.ndarray) -> np.ndarray:
    x = np.round(x.astype(np.float64), 5)
    return x[np.lexsort(x.T[::-1])]


# ----------------------------------------------------------------------------------------------- noise injection
def check_dart_step(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = _bounds(act_dim, rng)
    expert = _policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.3)
    noise_std = float(rng.uniform(0.28, 0.4))   # away from the config default 0.2: a hardcoded σ shows
    obs = _sample_obs(expert, v.batch, rng)
    repeats = 4
    schema = {k: Field((v.batch, repeats, act_dim), "f") for k in ("exec", "label")}
    out, why = _unit(ctx, "dart", "dart_step", v, {"obs": obs}, {"policy": expert, "expert": expert},
                     schema=schema, noise_std=noise_std, repeats=repeats)
    label_name, noise_name = part_names("dart_step", v)
    if out is None:
        return [CheckResult(label_name, 0, 1, why), CheckResult(noise_name, 0, 1, why)]
    clean = expert.act(obs).astype(np.float64)[:, None, :]            # (N, 1, act_dim)
    exe, lab = out["exec"], out["label"]                                # (N, repeats, act_dim)
    if not np.any(exe) and not np.any(lab):
        why = "noisy_expert_step returns the placeholder zeros: fill in the TODO block"
        return [CheckResult(label_name, 0, 1, why), CheckResult(noise_name, 0, 1, why)]
    results = []
    if not np.all(np.isfinite(lab)):
        results.append(CheckResult(label_name, 0, 1, "the stored labels contain NaN or infinite values"))
    elif np.allclose(lab, clean, atol=1e-4):
        results.append(CheckResult(label_name, 1, 1, "labels are the expert's clean actions"))
    elif np.allclose(lab, exe, atol=1e-6):
        results.append(CheckResult(label_name, 0, 1, "the stored label is the noisy executed action; store the clean "
                                                     "expert action"))
    else:
        results.append(CheckResult(label_name, 0, 1, "labels differ from the expert's clean actions"))
    problems = _noise_problems(exe, clean, low.astype(np.float64), high.astype(np.float64), noise_std)
    if problems:
        results.append(CheckResult(noise_name, 0, 1, "; ".join(problems)))
    else:
        results.append(CheckResult(noise_name, 1, 1, f"executed = expert + N(0, σ²) with σ = "
                                                     f"{noise_std:.2f}·(high−low)/2 "
                                                     "in every dimension, clipped to the bounds, fresh at every call"))
    return results


def _pooled_excess_kurtosis(exe: np.ndarray, clean: np.ndarray, low: np.ndarray, high: np.ndarray,
                            sigma: np.ndarray) -> float:
    """Excess kurtosis of the standardized noise over all dimensions (unclipped samples only)."""
    inside = (exe > low + 1e-4) & (exe < high - 1e-4)
    z = ((exe - clean) / sigma)[inside]
    z = (z - z.mean()) / (z.std() + 1e-12)
    return float((z ** 4).mean() - 3.0)


def _noise_problems(exe: np.ndarray, clean: np.ndarray, low: np.ndarray, high: np.ndarray,
                    noise_std: float) -> list[str]:
    """What is wrong with the executed actions ``exe`` (N, R, act_dim) for clean actions ``clean`` (N, 1, act_dim)."""
    if not np.all(np.isfinite(exe)):
        return ["the executed actions contain NaN or infinite values"]
    outside = np.any(exe < low - 1e-5) or np.any(exe > high + 1e-5)
    wide = (low < -1.0 - 1e-3) | (high > 1.0 + 1e-3)
    unit_clip = np.any(np.isclose(np.abs(exe), 1.0, atol=1e-6)) and np.all(np.abs(exe) <= 1.0 + 1e-6)
    if unit_clip and (outside or not np.any(np.abs(exe)[..., wide] > 1.0 + 1e-4)):
        return ["executed actions are clipped to [-1, 1] instead of the env's bounds "
                "[self.action_low, self.action_high]"]
    if outside:
        return ["executed actions leave the action bounds (clip to [self.action_low, self.action_high])"]
    if exe.shape[1] > 1 and np.allclose(exe[:, 0], exe[:, 1]):
        return ["the same action is executed at every call for a given state: draw fresh noise with self.rng each time"]
    half = (high - low) / 2.0
    sigma = noise_std * half
    ratios, means, clipped = [], [], []
    for j in range(exe.shape[-1]):
        inside = (exe[..., j] > low[j] + 1e-4) & (exe[..., j] < high[j] - 1e-4)
        z = ((exe[..., j] - clean[..., j]) / sigma[j])[inside]
        if z.size < 40:
            return [f"almost every executed action of dimension {j} sits on a bound"]
        ratios.append(float(z.std()))
        means.append(float(z.mean()))
        clipped.append(1.0 - float(inside.mean()))
    ratios_a = np.asarray(ratios)
    if np.all(ratios_a < 0.05):
        return ["the executed action carries no noise"]
    if np.all((0.8 < ratios_a) & (ratios_a < 1.25)) and np.all(np.abs(means) < 0.25):
        kurt = _pooled_excess_kurtosis(exe, clean, low, high, sigma)
        if kurt < -0.6:
            return [f"the noise is not Gaussian (excess kurtosis {kurt:.2f}; a Gaussian has 0, uniform noise −1.2): "
                    "draw it with self.rng.normal"]
        return []
    clean_dims = np.asarray(clipped) < 0.05      # dimensions whose spread is not truncated by clipping
    scale = (ratios_a * half)[clean_dims]        # measured noise std / noise_std, in env units
    ratios_c = ratios_a[clean_dims]
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
    return [f"{hint} (measured std / expected σ per dimension: {detail}; expected 1.00)"]


# ----------------------------------------------------------------------------------------------- performance
def demo_rows(env: str, episodes: int) -> int:
    """Rows in the first ``episodes`` episodes of data/demos/<env>.npz."""
    with np.load(REPO_ROOT / "data" / "demos" / f"{env}.npz", allow_pickle=False) as f:
        return int(np.asarray(f["episode_lengths"])[:episodes].sum())


def export_expert(env: str, folder: Path) -> Path:
    """The expert of ``env`` as plain arrays for the supervisor's numpy oracle (grader-only folder)."""
    path = folder / f"expert_{env}.npz"
    if path.exists():
        return path
    policy, _ = load_policy(REPO_ROOT / "data" / "models" / f"expert_{env}.pt")
    if policy.activation not in ("relu", "tanh"):
        raise ValueError(f"the oracle supports relu/tanh experts, not {policy.activation}")
    linear = [m for m in policy.net if isinstance(m, torch.nn.Linear)]
    arrays = {f"w{i}": m.weight.detach().numpy() for i, m in enumerate(linear)}
    arrays.update({f"b{i}": m.bias.detach().numpy() for i, m in enumerate(linear)})
    norm = policy.obs_normalizer
    tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.npz"
    np.savez(tmp, n_layers=np.array(len(linear)), activation=np.array(policy.activation),
             squash=np.array(policy.squash_mean), obs_mean=norm.mean.numpy(), obs_var=norm.var.numpy(),
             obs_eps=np.array(norm.eps, np.float32), obs_clip=np.array(norm.clip, np.float32),
             action_low=policy.action_low.numpy(), action_high=policy.action_high.numpy(), **arrays)
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
    budget = max(0, int(config.get("max_samples", 0)) - demo_rows(env, int(config.get("demo_episodes", 0))))
    oracle = None
    if budget > 0:
        obs_dim, act_dim = env_dims(make_env(resolve_env_config(env)))
        oracle = {"expert_npz": str(export_expert(env, ctx.private)), "obs_dim": obs_dim, "act_dim": act_dim,
                  "budget": budget}
    d = new_check_dir(ctx.scratch, f"train_{agent}_{env}")
    try:
        job = ctx.agent_job(agent, kind="train", env=env, seed=int(seed), config=config)
        res = ctx.run(d, job, ctx.train_timeout, references=reference_modules(todo.depends_on),
                      data=[REPO_ROOT / "data" / "demos" / f"{env}.npz"], oracle=oracle)
        if res.oracle_over_budget or res.oracle_error or res.supervisor_error:
            return None, res.message()
        err = read_output(res, "error.json", 64 * 1024)
        if err is not None:
            _debug(res, err)
            return None, "training failed: " + describe_error(err, show_message=False)
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
    res = evaluate_policy(make_env(resolve_env_config(spec["env"])), policy, int(spec["eval_episodes"]), eval_seed,
                          "grader")
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

