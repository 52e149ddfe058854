"""Grader checks. Every check builds its inputs here (seeded), runs student code only in a child
process (grader.sandbox), reads back plain arrays and scores them against references computed here.

A check returns :class:`CheckResult` items (one per scored part) so that one bug costs only its part.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from envs.builder import env_dims, make_env, resolve_env_config
from grader.sandbox import ChildResult, run_child
from learning.checkpoint import CheckpointError, load_policy, save_policy
from learning.policy import GaussianMLPPolicy


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
    """What the checks need: the workspace (framework + student files), which files are present, limits."""

    workspace: Path
    present: dict[str, bool]          # student file name → present and importable
    problems: dict[str, str]          # student file name → why it is unusable
    unit_timeout: float = 120.0
    train_timeout: float = 600.0
    mem_mb: int = 2048
    scratch: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="grader_")))


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)
    return str(path)


def _read(res: ChildResult) -> tuple[dict[str, np.ndarray] | None, str]:
    """Arrays written by the child, or (None, reason)."""
    if res.tampered:
        return None, res.message()
    err = res.out_dir / "error.txt"
    if err.is_file():
        return None, "your code raised " + err.read_text(errors="replace")[:600]
    if not res.ok:
        if (res.out_dir / "DONE").is_file() or res.returncode == 0:
            return None, "the grading process ended early (sys.exit/os._exit or a crash in your code)"
        return None, res.message()
    try:
        with np.load(res.out_dir / "result.npz", allow_pickle=False) as f:
            return {k: np.array(f[k]) for k in f.files}, ""
    except Exception as e:  # noqa: BLE001 - anything unreadable is the submission's fault
        return None, f"unreadable result ({type(e).__name__})"


def _policy(obs_dim: int, act_dim: int, rng: np.random.Generator, low: np.ndarray, high: np.ndarray,
            squash: bool, out_scale: float) -> GaussianMLPPolicy:
    torch.manual_seed(int(rng.integers(1 << 31)))
    p = GaussianMLPPolicy(obs_dim, act_dim, [32, 32], low, high, squash_mean=squash,
                          log_std_init=float(rng.uniform(-1.5, -0.7)), learn_std=True)
    with torch.no_grad():
        p.net[-1].weight.mul_(out_scale)
        p.net[-1].bias.mul_(out_scale)
        if p.learn_std:
            p.log_std.copy_(torch.as_tensor(rng.uniform(-1.6, -0.8, act_dim), dtype=torch.float32))
    p.obs_normalizer.fit(rng.normal(rng.normal(0, 2, obs_dim), rng.uniform(0.5, 3.0, obs_dim), (500, obs_dim)))
    p.eval()
    return p


def _bounds(act_dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    center = rng.uniform(-0.5, 0.5, act_dim)
    half = rng.uniform(0.5, 2.0, act_dim)
    return (center - half).astype(np.float32), (center + half).astype(np.float32)


def _sample_obs(p: GaussianMLPPolicy, n: int, rng: np.random.Generator) -> np.ndarray:
    mean = p.obs_normalizer.mean.numpy()
    std = np.sqrt(p.obs_normalizer.var.numpy())
    return (mean + std * rng.normal(size=(n, p.obs_dim))).astype(np.float32)


# ----------------------------------------------------------------------------------------------- BC loss
def check_bc_loss(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    name = f"BC loss ({'hidden' if v.hidden else 'public'} variant, {v.env}, batch {v.batch})"
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = _bounds(act_dim, rng)
    pol = _policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=1.0)
    d = ctx.scratch / f"bc_{v.seed}"
    d.mkdir(parents=True, exist_ok=True)
    save_policy(d / "policy.pt", pol, {})
    obs = _sample_obs(pol, v.batch, rng)
    act = rng.uniform(low, high, (v.batch, act_dim)).astype(np.float32)
    job = {"kind": "bc_loss", "env": v.env, "policy": str(d / "policy.pt"), "seed": v.seed,
           "inputs": _npz(d / "in.npz", obs=obs, actions=act)}
    out, why = _run(ctx, "bc_agent.py", job)
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
    return float(loss), grads


def _bc_diagnosis(pol, obs, act, loss) -> str:
    o, a = torch.as_tensor(obs), torch.as_tensor(act)
    with torch.no_grad():
        on, an = pol.normalize_obs(o), pol.normalize_action(a)
        cands = {
            "the sign is flipped (maximise the log-likelihood = minimise its negative)": pol.dist(on).log_prob(an).mean(),
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
    tag = f"{'hidden' if v.hidden else 'public'} variant, {v.env}"
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = -np.ones(act_dim, np.float32), np.ones(act_dim, np.float32)
    learner = _policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=0.2)
    expert = _policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.8)
    d = ctx.scratch / f"dsel_{v.seed}"
    d.mkdir(parents=True, exist_ok=True)
    save_policy(d / "learner.pt", learner, {})
    save_policy(d / "expert.pt", expert, {})
    obs = _sample_obs(learner, v.batch, rng)
    betas = [1.0, 0.0, 0.35]
    repeats = 5
    job = {"kind": "dagger_select", "env": v.env, "policy": str(d / "learner.pt"), "expert": str(d / "expert.pt"),
           "seed": v.seed, "betas": betas, "repeats": repeats, "inputs": _npz(d / "in.npz", obs=obs)}
    label_name, exec_name = f"DAgger label ({tag})", f"DAgger executed action ({tag})"
    out, why = _run(ctx, "dagger_agent.py", job)
    if out is None:
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    expert_a = expert.act(obs).astype(np.float64)                       # (N, act_dim)
    with torch.no_grad():
        mean = learner.to_env_action(learner.mean_action(torch.as_tensor(obs))).numpy().astype(np.float64)
        std_n = torch.exp(learner.log_std).numpy().astype(np.float64)   # normalized units; bounds are ±1
    results = []
    if all(not np.any(out[k]) for k in out):
        why = "select_action returns the placeholder zeros: fill in the TODO block"
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    label_ok = all(np.allclose(out[f"label_{j}"], expert_a[:, None, :], atol=1e-4) for j in range(len(betas)))
    if label_ok:
        results.append(CheckResult(label_name, 1, 1, "labels are the expert's actions for every β"))
    else:
        lab = out["label_0"]
        hint = ""
        if np.allclose(out["label_1"], out["exec_1"], atol=1e-6):
            hint = ": with β = 0 the label equals the executed (learner) action — label with the expert instead"
        elif not np.allclose(lab, expert_a[:, None, :], atol=1e-4):
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
                problems.append("with β = 0 the executed action is the learner's mean, not a sample from π (use self.learner_action(obs))")
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
    name = f"DAgger aggregation ({'hidden' if v.hidden else 'public'} variant, {v.env})"
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    n_old, n_new = v.batch, max(3, v.batch // 2 + int(rng.integers(1, 9)))
    old_o = rng.normal(size=(n_old, obs_dim)).astype(np.float32)
    old_a = rng.uniform(-1, 1, (n_old, act_dim)).astype(np.float32)
    new_o = rng.normal(size=(n_new, obs_dim)).astype(np.float32)
    new_a = rng.uniform(-1, 1, (n_new, act_dim)).astype(np.float32)
    d = ctx.scratch / f"dagg_{v.seed}"
    d.mkdir(parents=True, exist_ok=True)
    job = {"kind": "dagger_aggregate", "env": v.env, "seed": v.seed,
           "inputs": _npz(d / "in.npz", data_obs=old_o, data_actions=old_a, visited_obs=new_o, labels=new_a)}
    out, why = _run(ctx, "dagger_agent.py", job)
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    o, a = out["obs"], out["actions"]
    if o.ndim != 2 or a.ndim != 2 or o.shape[1] != obs_dim or a.shape[1] != act_dim or len(o) != len(a):
        return [CheckResult(name, 0, 1, f"the returned dataset has obs {o.shape} / actions {a.shape}")]
    if len(o) == n_old and np.allclose(o, old_o):
        return [CheckResult(name, 0, 1, "aggregate returns the dataset unchanged (the placeholder): append the new pairs")]
    if len(o) == n_new:
        return [CheckResult(name, 0, 1, f"the dataset holds only this round's {n_new} pairs: earlier rounds' data were "
                                        "dropped (DAgger aggregates: D ← D ∪ D_i)")]
    if len(o) != n_old + n_new:
        return [CheckResult(name, 0, 1, f"the dataset has {len(o)} pairs; expected {n_old} old + {n_new} new = {n_old + n_new}")]
    want = _sorted_rows(np.concatenate([np.concatenate([old_o, new_o]), np.concatenate([old_a, new_a])], 1))
    got = _sorted_rows(np.concatenate([o, a], 1))
    if not np.allclose(want, got, atol=1e-6):
        return [CheckResult(name, 0, 1, "the dataset does not hold exactly the old pairs plus the new (visited state, "
                                        "expert label) pairs")]
    return [CheckResult(name, 1, 1, f"dataset grew from {n_old} to {n_old + n_new} with the new expert-labelled states")]


def _sorted_rows(x: np.ndarray) -> np.ndarray:
    x = np.round(x.astype(np.float64), 5)
    return x[np.lexsort(x.T[::-1])]


# ----------------------------------------------------------------------------------------------- noise injection
def check_dart_step(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    tag = f"{'hidden' if v.hidden else 'public'} variant, {v.env}"
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = _bounds(act_dim, rng)
    expert = _policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.3)
    noise_std = float(rng.uniform(0.15, 0.3))
    d = ctx.scratch / f"dart_{v.seed}"
    d.mkdir(parents=True, exist_ok=True)
    save_policy(d / "expert.pt", expert, {})
    obs = _sample_obs(expert, v.batch, rng)
    repeats = 4
    job = {"kind": "dart_step", "env": v.env, "policy": str(d / "expert.pt"), "expert": str(d / "expert.pt"),
           "seed": v.seed, "noise_std": noise_std, "repeats": repeats, "inputs": _npz(d / "in.npz", obs=obs)}
    label_name, noise_name = f"Noise injection: clean label ({tag})", f"Noise injection: noisy executed action ({tag})"
    out, why = _run(ctx, "dart_agent.py", job)
    if out is None:
        return [CheckResult(label_name, 0, 1, why), CheckResult(noise_name, 0, 1, why)]
    clean = expert.act(obs).astype(np.float64)[:, None, :]
    exe, lab = out["exec"], out["label"]
    results = []
    if not np.any(exe) and not np.any(lab):
        why = "noisy_expert_step returns the placeholder zeros: fill in the TODO block"
        return [CheckResult(label_name, 0, 1, why), CheckResult(noise_name, 0, 1, why)]
    if np.allclose(lab, clean, atol=1e-4):
        results.append(CheckResult(label_name, 1, 1, "labels are the expert's clean actions"))
    elif np.allclose(lab, exe, atol=1e-6):
        results.append(CheckResult(label_name, 0, 1, "the stored label is the noisy executed action; store the clean expert action"))
    else:
        results.append(CheckResult(label_name, 0, 1, "labels differ from the expert's clean actions"))
    sigma = noise_std * (high - low).astype(np.float64) / 2.0
    problems = []
    if np.any(exe < low - 1e-5) or np.any(exe > high + 1e-5):
        problems.append("executed actions leave the action bounds (clip to [low, high])")
    noise = exe - clean
    inside = (exe > low + 1e-4) & (exe < high - 1e-4)
    z = (noise / sigma)[inside]
    if z.size < 50:
        problems.append("almost every executed action sits on a bound")
    elif z.std() < 0.05:
        problems.append("the executed action carries no noise")
    elif abs(z.mean()) > 0.15 or not 0.8 < z.std() < 1.2:
        ratio = z.std()
        hint = ""
        if abs(ratio * noise_std / (noise_std * 1.0) - 1) > 0.2 and 0.8 < ratio * 2 / np.mean(high - low) * 1 < 1.2:
            hint = " (is the noise scaled by (high - low) / 2?)"
        problems.append(f"the noise has standardized mean {z.mean():.2f} and std {ratio:.2f}; expected 0 and 1 "
                        f"for σ = noise_std·(high − low)/2{hint}")
    if not problems and np.allclose(exe[:, 0], exe[:, 1]):
        problems.append("the same noise is drawn at every call (draw fresh noise with self.rng)")
    if problems:
        results.append(CheckResult(noise_name, 0, 1, "; ".join(problems)))
    else:
        results.append(CheckResult(noise_name, 1, 1, f"executed = expert + N(0, σ²) with σ = {noise_std:.2f}·(high−low)/2, "
                                                     "clipped to the bounds"))
    return results


# ----------------------------------------------------------------------------------------------- performance
def train_in_child(ctx: GradingContext, agent: str, env: str, config: dict[str, Any], student_methods: list[str],
                   student_file: str) -> tuple[Path | None, str]:
    job = {"kind": "train", "agent": agent, "env": env, "config": config, "student_methods": student_methods}
    res = run_child(ctx.workspace, job, ctx.train_timeout, ctx.mem_mb)
    if not ctx.present.get(student_file, False):
        return None, ctx.problems.get(student_file, f"learning/{student_file} is missing")
    out, why = _read_model(res)
    return out, why


def _read_model(res: ChildResult) -> tuple[Path | None, str]:
    if res.tampered:
        return None, res.message()
    err = res.out_dir / "error.txt"
    if err.is_file():
        return None, "training raised " + err.read_text(errors="replace")[:600]
    if not res.ok:
        return None, res.message() if res.timed_out or (res.returncode or 0) < 0 else \
            "the grading process ended early (sys.exit/os._exit or a crash in your code)"
    model = res.out_dir / "model.pt"
    return (model, "") if model.is_file() else (None, "training produced no model")


def _run(ctx: GradingContext, student_file: str, job: dict) -> tuple[dict[str, np.ndarray] | None, str]:
    if not ctx.present.get(student_file, False):
        return None, ctx.problems.get(student_file, f"learning/{student_file} is missing from the submission")
    return _read(run_child(ctx.workspace, job, ctx.unit_timeout, ctx.mem_mb))


def load_trained_policy(path: Path, env: str) -> tuple[GaussianMLPPolicy | None, str]:
    """Load a child-written model into the grader's own policy class (weights only)."""
    env_cfg = resolve_env_config(env)
    obs_dim, act_dim = env_dims(make_env(env_cfg))
    try:
        policy, _ = load_policy(path, obs_dim, act_dim, env_cfg.env_id)
    except CheckpointError as e:
        return None, f"the trained model could not be loaded safely: {e}"
    return policy, ""


UNIT_CHECKS: dict[str, tuple[str, Callable[[GradingContext, Variant], list[CheckResult]]]] = {
    "bc_loss": ("bc_agent.py", check_bc_loss),
    "dagger_select": ("dagger_agent.py", check_dagger_select),
    "dagger_aggregate": ("dagger_agent.py", check_dagger_aggregate),
    "dart_step": ("dart_agent.py", check_dart_step),
}
