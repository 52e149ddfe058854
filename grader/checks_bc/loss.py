"""The check of ``BCAgent.compute_loss``: its gradients and its value over several calls on one agent, each mistake
named (a flipped sign, missing normalization, a sum for a mean, a constant offset, ...)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from grader.answers import Field
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit
from grader.loss_compare import close_grads, close_value, detached_problem, scale_problem, value_and_grads
from grader.unit_inputs import learner_policy, sample_obs, split_rows
from learning.policy import GaussianMLPPolicy

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _bc_sizes(v: Variant) -> list[int]:
    """Batch sizes of the consecutive compute_loss calls (as fit() makes them: several batches, one agent)."""
    return [v.batch, max(2, v.batch // 2 + 1), v.batch]


def check_bc_loss(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """Gradients (what training uses) and value of compute_loss over several calls on one agent."""
    grad_name, value_name = BC_LOSS.part_names(v)
    rng = np.random.default_rng(v.seed)
    pol, low, high = learner_policy(v.env, rng)
    act_dim = pol.act_dim
    sizes = _bc_sizes(v)
    obs = sample_obs(pol, sum(sizes), rng)
    act = rng.uniform(low, high, (sum(sizes), act_dim)).astype(np.float32)
    n_params = sum(p.numel() for p in pol.parameters())
    schema = {"loss": Field((len(sizes),), "f"), "has_graph": Field((len(sizes),), "b"),
              "grads": Field((len(sizes), n_params), "f")}
    arrays = {"obs": obs, "actions": act, "sizes": np.array(sizes, np.int64)}
    out, why = run_unit(ctx, BC_LOSS, v, arrays, {"policy": pol}, schema=schema)
    if out is None:
        return [CheckResult(grad_name, 0, 1, why), CheckResult(value_name, 0, 1, why)]
    k = len(sizes)
    losses = np.asarray(out["loss"], np.float64).reshape(k)
    has_graph = np.asarray(out["has_graph"]).reshape(k).astype(bool)
    grads = np.asarray(out["grads"], np.float64).reshape(k, -1)
    batches = split_rows(sizes, obs, act)
    refs = [_reference_bc(pol, o, a) for o, a in batches]
    if grads.shape[1] != refs[0][1].size:
        raise ValueError("gradient vector of the wrong size")
    if not np.any(losses) and not np.any(grads):
        why = "compute_loss returns the placeholder zero loss: fill in the TODO block"
        return [CheckResult(grad_name, 0, 1, why), CheckResult(value_name, 0, 1, why)]
    return [_bc_gradient_part(grad_name, pol, batches, refs, losses, has_graph, grads),
            _bc_value_part(value_name, pol, batches, refs, losses, grads)]


BC_LOSS = CheckSpec(
    key="bc_loss", agent="bc", run=check_bc_loss, batch_in_name=True, methods=("compute_loss",),
    public=(Variant(seed=101, env="hopper", batch=32),),
    parts=(   # a constant offset keeps the gradient points
        Part("BC loss: gradients", 10.0,
             '`compute_loss` called on 3 consecutive batches of one agent, `backward()` after each (as `fit()` does; '
             'custom, asymmetric action bounds and a non-trivial normalizer): its gradients w.r.t. every policy '
             "parameter equal the reference's at every call. This is what training uses, so a loss equal to the "
             'reference up to an additive constant (no ½·log 2π, the likelihood of env-unit actions, ...) keeps these '
             'points'),
        Part("BC loss: value", 5.0,
             'the value equals the mean NLL of the normalized actions given the normalized observations at every call '
             '(a loss detached from the policy but with the right value keeps these points and loses the gradient '
             'ones). Feedback names a flipped sign, missing or double normalization of observations or actions, a sum '
             'over the batch, a mean over action dimensions, MSE, a detached part (which parameters get no gradient), '
             'a scale factor, the missing ½·log 2π, env-unit likelihoods, and a loss that keeps state between calls')),
    handout_parts=(
        ("BC loss: gradients",
         'unit check against the reference on several seeded batches: the gradients of your loss (what training '
         "uses) equal the reference's. A loss that differs from the reference only by an additive constant (e.g. "
         'without ½·log 2π) has the same gradients and keeps these 10 points'),
        ("BC loss: value",
         'the loss value is the mean negative log-likelihood of the normalized actions given the normalized '
         'observations, constant included')))

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
        if not close_grads(grads[i], ref_g):
            why = _bc_diagnosis(pol, o, a, float(losses[i]), grads[i], ref, ref_g)
            later = (f" (call {i + 1} of {len(batches)}; the earlier calls were right: compute_loss must keep no "
                     "state between calls)" if i and not why else "")
            return CheckResult(name, 0, 1, "the gradients of the loss differ from the reference's"
                               + (f": {why}" if why else "") + later)
    offset = "" if all(close_value(float(x), r) for x, (r, _) in zip(losses, refs, strict=True)) else (
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
        if not close_value(loss, ref):
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
    return value_and_grads(list(pol.parameters()),
                           lambda: -pol.dist(pol.normalize_obs(o)).log_prob(pol.normalize_action(a)).mean())


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
    if close_grads(grads, ref_grads) and not close_value(loss, ref):
        why = _constant_name(loss - ref, pol.act_dim, pol.action_low.numpy(), pol.action_high.numpy())
        return (f"{why} — its gradients equal the reference's, so training is unaffected (the gradient points are "
                "kept)")
    o, a = torch.as_tensor(obs), torch.as_tensor(act)
    cands = {why: value_and_grads(list(pol.parameters()), fn) for why, fn in _bc_candidates(pol, o, a).items()}
    for why, (val, _) in cands.items():
        if close_value(loss, val):
            return why
    for why, (_, g) in cands.items():
        if close_grads(grads, g):
            return why
    names, params = zip(*pol.named_parameters())
    detached = detached_problem(list(names), list(params), grads, ref_grads)
    if detached:
        return detached
    if not np.any(grads):
        return "no gradient reaches the policy: the loss is cut from the policy's graph"
    return scale_problem(grads, ref_grads)
