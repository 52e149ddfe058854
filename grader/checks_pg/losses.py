"""The loss checks (``actor_loss``, ``critic_loss``): values and gradients over several calls on one agent, against the
parent's own losses and the named wrong ones."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from grader.answers import Field
from grader.checks_pg.batches import PG_CFG
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit
from grader.loss_compare import close_grads, close_value, detached_problem, scale_problem, value_and_grads
from grader.unit_inputs import learner_policy, sample_obs, split_rows
from learning.policy import GaussianMLPPolicy, mlp

# ------------------------------------------------------------------------------------------------ actor loss

def _loss_sizes(v: Variant) -> list[int]:
    return [v.batch, max(2, v.batch // 2 + 1), v.batch]


def actor_ref(pol: GaussianMLPPolicy, o: torch.Tensor, a: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    return -(adv * pol.dist(pol.normalize_obs(o)).log_prob(a)).mean()


def _actor_candidates(pol: GaussianMLPPolicy, o: torch.Tensor, a: torch.Tensor,
                      adv: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    """Realistic wrong actor losses, each named by its mistake."""
    def lp(obs_n: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return pol.dist(obs_n).log_prob(act)

    def on() -> torch.Tensor:
        return pol.normalize_obs(o)

    adv_n0 = (adv - adv.mean()) / (adv.std(unbiased=False) + 1e-8)
    adv_n1 = (adv - adv.mean()) / (adv.std() + 1e-8)
    return {
        "the sign is flipped (minimise L = −mean(Â·log π): a descent step on L is an ascent step on J)":
            lambda: (adv * lp(on(), a)).mean(),
        "it sums over the batch instead of averaging (take the mean over the batch)":
            lambda: -(adv * lp(on(), a)).sum(),
        "the actions are normalized again (they are already in the policy's units: no normalize_action)":
            lambda: -(adv * lp(on(), pol.normalize_action(a))).mean(),
        "the actions are mapped to env units (they are already in the policy's units: use them as they are)":
            lambda: -(adv * lp(on(), pol.to_env_action(a))).mean(),
        "the observations are not normalized (use self.policy.normalize_obs)":
            lambda: -(adv * lp(o, a)).mean(),
        "the observations are normalized twice (self.policy.dist takes normalized observations)":
            lambda: -(adv * lp(pol.normalize_obs(on()), a)).mean(),
        "the advantages are normalized inside the loss (estimate_advantages does that, when configured; use them as "
        "given)": lambda: -(adv_n0 * lp(on(), a)).mean(),
        "the advantages are normalized inside the loss (estimate_advantages does that, when configured; use them as "
        "given) ": lambda: -(adv_n1 * lp(on(), a)).mean(),
        "it averages the log-density over action dimensions (log_prob of the whole action vector sums them)":
            lambda: -(adv * pol.dist(on()).base_dist.log_prob(a).mean(-1)).mean(),
        "it weights the probability, not the log-probability (L = −mean(Â·log π))":
            lambda: -(adv * lp(on(), a).exp()).mean(),
    }


def _diagnose_loss(candidates: dict[str, Callable[[], torch.Tensor]], params: list[torch.nn.Parameter],
                   names: list[str], loss: float, grads: np.ndarray, ref: float, ref_grads: np.ndarray) -> str:
    """What is wrong with a loss of value ``loss`` and gradient ``grads`` ("" if not recognised)."""
    if close_grads(grads, ref_grads) and not close_value(loss, ref):
        return (f"it differs from the reference by the constant {loss - ref:+.5f} (e.g. ½·log 2π left out of a "
                "log-density written by hand): its gradients equal the reference's")
    cands = {why: value_and_grads(params, fn) for why, fn in candidates.items()}
    for why, (val, g) in cands.items():
        if close_value(loss, val) and (close_grads(grads, g) or not np.any(grads)):
            return why.strip()
    for why, (_, g) in cands.items():
        if close_grads(grads, g):
            return why.strip()
    for why, (val, _) in cands.items():
        if close_value(loss, val):
            return why.strip()
    return detached_problem(names, params, grads, ref_grads) or scale_problem(grads, ref_grads)


@dataclass
class LossCase:
    """The consecutive calls of a loss check and the parameters whose gradients it compares."""

    batches: list[tuple[torch.Tensor, ...]]
    params: list[torch.nn.Parameter]
    names: list[str]
    ref: Callable[..., torch.Tensor]
    candidates: Callable[..., dict[str, Callable[[], torch.Tensor]]]
    method: str


def _loss_results(case: LossCase, out: dict[str, np.ndarray], grad_name: str | None,
                  value_name: str | None) -> list[CheckResult]:
    """The gradient part and the value part (either may be None: one part judges both)."""
    k = len(case.batches)
    losses = np.asarray(out["loss"], np.float64).reshape(k)
    graphs = np.asarray(out["has_graph"]).reshape(k).astype(bool)
    grads = np.asarray(out["grads"], np.float64).reshape(k, -1)
    refs = [value_and_grads(case.params, lambda b=b: case.ref(*b)) for b in case.batches]
    placeholder = not np.any(losses) and not np.any(grads)
    grad_ok, value_ok, why = True, True, ""
    for i, (b, (ref, ref_g)) in enumerate(zip(case.batches, refs)):
        g_ok, v_ok = graphs[i] and close_grads(grads[i], ref_g), close_value(float(losses[i]), ref)
        if not (g_ok and v_ok) and not why:
            why = _diagnose_loss(case.candidates(*b), case.params, case.names, float(losses[i]), grads[i], ref, ref_g)
            if not graphs[i] and v_ok:
                why = ("the loss carries no gradient (it is detached, or built from plain numbers): training cannot "
                       "learn from it; build it from the network's outputs")
            if i and not why:
                why = f"call {i + 1} of {k} (the earlier calls were right: {case.method} must keep no state)"
            if not why:
                why = f"call {i + 1}: loss {float(losses[i]):.5f}, expected {ref:.5f}"
        grad_ok, value_ok = grad_ok and g_ok, value_ok and v_ok
    if placeholder:
        why = f"{case.method} returns the placeholder zero loss: fill in the TODO block"
        grad_ok = value_ok = False
    results = []
    if grad_name is not None:
        results.append(CheckResult(grad_name, 1, 1, f"the gradients w.r.t. every parameter equal the reference's on "
                                                    f"{k} consecutive batches") if grad_ok else
                       CheckResult(grad_name, 0, 1, f"the gradients differ from the reference's: {why}"))
    if value_name is not None:
        ok = value_ok and (grad_name is not None or grad_ok)
        both = " equals" if grad_name is not None else " and its gradients w.r.t. every parameter equal"
        results.append(CheckResult(value_name, 1, 1, f"the loss{both} the reference on {k} consecutive "
                                                     f"batches ({float(losses[0]):.5f}, ...)") if ok else
                       CheckResult(value_name, 0, 1, f"the loss differs from the reference: {why}"))
    return results


def tensor_batches(sizes: list[int], *arrays: np.ndarray) -> list[tuple[torch.Tensor, ...]]:
    """:func:`grader.unit_inputs.split_rows` as tensors: one tuple per call of the loss."""
    return [tuple(map(torch.as_tensor, batch)) for batch in split_rows(sizes, *arrays)]


def _loss_schema(k: int, n_params: int) -> dict[str, Field]:
    """What grader/child/jobs_pg.py's job_pg_actor_loss / job_pg_critic_loss write."""
    return {"loss": Field((k,), "f"), "has_graph": Field((k,), "b"), "grads": Field((k, n_params), "f")}


def pg_policy(v: Variant, rng: np.random.Generator) -> GaussianMLPPolicy:
    """The agent's policy on ``v``'s task, random bounds and weights from ``rng`` (the unit inputs' learner)."""
    return learner_policy(v.env, rng)[0]


def pg_policy_and_critic(v: Variant, rng: np.random.Generator) -> tuple[GaussianMLPPolicy, torch.nn.Sequential]:
    """:func:`pg_policy`, then a critic of its observations (:func:`random_critic`), both from ``rng``."""
    pol = pg_policy(v, rng)
    return pol, random_critic(pol.obs_dim, rng)


def check_pg_actor_loss(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """actor_loss's gradients and value over several calls on one agent."""
    grad_name, value_name = PG_ACTOR_LOSS.part_names(v)
    rng = np.random.default_rng(v.seed)
    pol = pg_policy(v, rng)
    act_dim = pol.act_dim
    sizes = _loss_sizes(v)
    n = sum(sizes)
    obs = sample_obs(pol, n, rng)
    act = rng.uniform(-1.3, 1.3, (n, act_dim)).astype(np.float32)          # some outside [-1, 1], as sampled
    adv = rng.normal(0.4, 1.5, n).astype(np.float32)
    params = list(pol.parameters())
    arrays = {"obs": obs, "actions": act, "advantages": adv, "sizes": np.array(sizes, np.int64)}
    schema = _loss_schema(len(sizes), sum(p.numel() for p in params))
    out, why = run_unit(ctx, PG_ACTOR_LOSS, v, arrays, {"policy": pol}, schema=schema,
                        cfg=PG_CFG)
    if out is None:
        return [CheckResult(grad_name, 0, 1, why), CheckResult(value_name, 0, 1, why)]
    case = LossCase(tensor_batches(sizes, obs, act, adv), params, [nm for nm, _ in pol.named_parameters()],
                    lambda o, a, d: actor_ref(pol, o, a, d), lambda o, a, d: _actor_candidates(pol, o, a, d),
                    "actor_loss")
    return _loss_results(case, out, grad_name, value_name)


PG_ACTOR_LOSS = CheckSpec(
    key="pg_actor_loss", agent="pg", run=check_pg_actor_loss, batch_in_name=True,
    methods=("actor_loss",), public=(Variant(seed=2303, env="hopper", batch=32),),
    parts=(
        Part("PG actor loss: gradients", 7.0,
             '`actor_loss` called on 3 consecutive batches of one agent (random policy weights, a non-trivial '
             'observation normalizer, custom action bounds, normalized actions some outside [-1, 1], advantages '
             'with a non-zero mean), `backward()` after each: its gradients w.r.t. every policy parameter equal those '
             'of −mean(Â·log π(a|s)). A loss that differs by a constant keeps these points'),
        Part("PG actor loss: value", 3.0,
             'the value equals −mean(Â·log π(a|s)) at every call (a detached loss with the right value keeps these '
             'points). Feedback names a flipped sign, a sum, actions normalized again or mapped to env units, '
             'observations not normalized or normalized twice, advantages normalized inside the loss, a mean over '
             'action dimensions, π instead of log π, a detached log-probability, state kept between calls')),
    handout=("PG actor loss",
             "unit check against the reference on several seeded batches: the gradients (7 points) and the value (3) "
             "of −mean(Â·log π(a|s))"))


# ------------------------------------------------------------------------------------------------ critic loss

CRITIC_HIDDEN = [32, 16]


def random_critic(obs_dim: int, rng: np.random.Generator, hidden: list[int] = CRITIC_HIDDEN) -> torch.nn.Sequential:
    """The framework's critic (learning.policy.mlp, tanh) with every weight from ``rng``."""
    net = mlp(obs_dim, 1, hidden, "tanh")
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, torch.nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.copy_(torch.as_tensor(rng.uniform(-bound, bound, tuple(layer.weight.shape))))
                layer.bias.copy_(torch.as_tensor(rng.uniform(-bound, bound, tuple(layer.bias.shape))))
    return net


def critic_vector(net: torch.nn.Module) -> np.ndarray:
    return torch.nn.utils.parameters_to_vector(net.parameters()).detach().numpy().astype(np.float32)


def _critic_candidates(pol: GaussianMLPPolicy, critic: torch.nn.Module, o: torch.Tensor,
                       y: torch.Tensor) -> dict[str, Callable[[], torch.Tensor]]:
    def value() -> torch.Tensor:
        return critic(pol.normalize_obs(o)).squeeze(-1)

    return {
        "it has a factor ½ (the mean squared error (1/B)·Σ (V(s_t) − y_t)², no ½)":
            lambda: 0.5 * ((value() - y) ** 2).mean(),
        "it sums over the batch instead of averaging (take the mean)": lambda: ((value() - y) ** 2).sum(),
        "the critic gets raw observations (self.value(obs) normalizes them first)":
            lambda: ((critic(o).squeeze(-1) - y) ** 2).mean(),
        "the critic's output (B, 1) is compared with targets (B,): broadcasting makes a (B, B) matrix "
        "(self.value squeezes it to (B,))": lambda: ((critic(pol.normalize_obs(o)) - y) ** 2).mean(),
        "it is the absolute error, not the squared error": lambda: (value() - y).abs().mean(),
        "it is the square of the mean error, not the mean of the squared errors": lambda: (value() - y).mean() ** 2,
        "it is the root of the mean squared error": lambda: ((value() - y) ** 2).mean().sqrt(),
    }


def check_pg_critic_loss(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """critic_loss's value and gradients w.r.t. the critic over several calls on one agent."""
    (name,) = PG_CRITIC_LOSS.part_names(v)
    rng = np.random.default_rng(v.seed)
    pol, critic = pg_policy_and_critic(v, rng)
    sizes = _loss_sizes(v)
    n = sum(sizes)
    obs = sample_obs(pol, n, rng)
    targets = rng.normal(1.0, 3.0, n).astype(np.float32)
    params = list(critic.parameters())
    arrays = {"obs": obs, "targets": targets, "sizes": np.array(sizes, np.int64), "critic": critic_vector(critic)}
    schema = _loss_schema(len(sizes), sum(p.numel() for p in params))
    out, why = run_unit(ctx, PG_CRITIC_LOSS, v, arrays, {"policy": pol}, schema=schema,
                        cfg={**PG_CFG, "hidden_sizes": CRITIC_HIDDEN})
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    case = LossCase(tensor_batches(sizes, obs, targets), params,
                    [f"critic.{nm}" for nm, _ in critic.named_parameters()],
                    lambda o, y: ((critic(pol.normalize_obs(o)).squeeze(-1) - y) ** 2).mean(),
                    lambda o, y: _critic_candidates(pol, critic, o, y), "critic_loss")
    return _loss_results(case, out, None, name)


PG_CRITIC_LOSS = CheckSpec(
    key="pg_critic_loss", agent="pg", run=check_pg_critic_loss, batch_in_name=True,
    methods=("critic_loss",), public=(Variant(seed=2404, env="cheetah", batch=30),),
    parts=(
        Part("PG critic loss", 5.0,
             '`critic_loss` called on 3 consecutive batches of one agent (random critic weights, a non-trivial '
             'observation normalizer, random targets), `backward()` after each: its value and its gradients w.r.t. '
             'every critic parameter equal those of (1/B)·Σ (V(s_t) − y_t)² (either sign of the difference). Feedback '
             'names a factor ½, a sum, raw observations fed to the critic, a (B, 1) − (B,) broadcast, an absolute '
             'error, a detached loss'),),
    handout=("PG critic loss",
             "unit check against the reference on several seeded batches: the value and the gradients of the mean "
             "squared error of self.value(obs)"))
