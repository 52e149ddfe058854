"""The policy-gradient unit checks (``learning/pg_agent.py``): the reward-to-go and GAE(λ) over crafted batches of
concatenated episodes (terminations, time-limit truncations, a batch cut at the end, one-step episodes, several
discounts and λ), the actor's and the critic's losses (values and gradients over several calls on one agent).

Every input comes from the variant's seeded generator; the child (grader/child.py, ``job_pg_*``) only calls the
student's method and writes plain arrays; the references and the named wrong versions are computed here. A scalar
recursion is linear, so a mistake in one aspect (the values inside an episode, or the episode boundaries; the TD
errors, or the λ-recursion) is judged separately: a part passes when its aspect is right even if the other is wrong
(the other part names that mistake).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from envs.builder import env_dims, make_env, resolve_env_config
from grader.answers import Field
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit
from grader.unit_inputs import random_bounds, random_policy, sample_obs
from learning.policy import GaussianMLPPolicy, mlp

PG_CFG = {"batch_size": 1000, "num_envs": 1, "eval_episodes": 0, "final_eval_episodes": 0}


# ------------------------------------------------------------------------------------------------ crafted batches

@dataclass
class Call:
    """One call of reward_to_go or gae_advantages: its arrays (T,), γ, λ and which part judges it."""

    rewards: np.ndarray         # float32
    terminated: np.ndarray      # bool
    ends: np.ndarray            # bool
    next_values: np.ndarray     # float32
    values: np.ndarray          # float32 (GAE only)
    gamma: float
    lam: float
    part: int                   # index of the part that judges this call


def _episodes(rng: np.random.Generator, total: int, last_terminates: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(terminated, ends) of about ``total`` steps of concatenated episodes: terminations and time-limit truncations
    followed by more episodes, two one-step episodes (one terminated, one truncated), a last episode cut by the batch
    end (``last_terminates``: one that terminates at the batch's last step). Returns arrays of length T >= 12."""
    kinds = ["term", "trunc", "term1", "trunc1", "term", "trunc"]        # ...1: a one-step episode
    rng.shuffle(kinds)
    room = max(total, 14) - 4
    lengths = [1 if k.endswith("1") else 0 for k in kinds]
    free = [i for i, k in enumerate(kinds) if not k.endswith("1")]
    cuts = np.sort(rng.choice(np.arange(1, room), size=len(free), replace=False))
    for i, n in zip(free, np.diff(np.concatenate([[0], cuts]))):
        lengths[i] = int(max(2, n))
    term, ends = [], []
    for k, n in zip(kinds, lengths):
        term += [False] * (n - 1) + [k.startswith("term")]
        ends += [False] * (n - 1) + [True]
    tail = int(rng.integers(3, 6))                                          # cut by the batch end
    term += [False] * (tail - 1) + [last_terminates]
    ends += [False] * (tail - 1) + [True]
    return np.array(term, bool), np.array(ends, bool)


def _single(n: int) -> tuple[np.ndarray, np.ndarray]:
    term = np.zeros(n, bool)
    ends = np.zeros(n, bool)
    term[-1] = ends[-1] = True
    return term, ends


def _values_like(rng: np.random.Generator, ends: np.ndarray, consistent: bool) -> tuple[np.ndarray, np.ndarray]:
    """(values, next_values) float32: V(s_t) and V(s_{t+1}); ``consistent``: next_values[t] = values[t+1] inside
    episodes (as a real critic gives), else every next value drawn on its own."""
    v = rng.normal(0.5, 2.0, len(ends)).astype(np.float32)
    nv = rng.normal(0.5, 2.0, len(ends)).astype(np.float32)
    if consistent:
        inside = ~ends[:-1]
        nv[:-1][inside] = v[1:][inside]
    return v, nv


def _rewards(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(0.3, 1.0, n).astype(np.float32)


def _rtg_calls(v: Variant) -> list[Call]:
    """Part 0 (values): single terminated episodes without a critic (next_values 0), γ random, 0, 1.
    Part 1 (boundaries): concatenated episodes with a critic's next values, γ random, 0.5, 1, 0."""
    rng = np.random.default_rng(v.seed)
    calls = []
    for gamma, n in ((float(rng.uniform(0.8, 0.97)), max(6, v.batch // 3)), (0.0, 5), (1.0, 7)):
        term, ends = _single(n)
        z = np.zeros(n, np.float32)
        calls.append(Call(_rewards(rng, n), term, ends, z, z, gamma, 0.0, 0))
    for gamma in (float(rng.uniform(0.85, 0.97)), 0.5, 1.0, 0.0):
        term, ends = _episodes(rng, v.batch, last_terminates=gamma == 0.5)
        _, nv = _values_like(rng, ends, consistent=False)
        calls.append(Call(_rewards(rng, len(ends)), term, ends, nv, np.zeros_like(nv), gamma, 0.0, 1))
    return calls


def _gae_calls(v: Variant) -> list[Call]:
    """Part 0 (TD errors): λ = 0, next values consistent with the values or not, one batch ending in a termination.
    Part 1 (the λ-recursion): λ in {≈0.5, 0.97, 1, ≈0.8} with several γ (1 included), next values consistent with the
    values as a real critic's are (the λ-return form Â_t = G^λ_t − V(s_t) equals the sum of δs only then)."""
    rng = np.random.default_rng(v.seed + 1)
    plan = [(float(rng.uniform(0.85, 0.97)), 0.0, True, 0), (float(rng.uniform(0.85, 0.97)), 0.0, False, 0),
            (1.0, 0.0, False, 0),
            (float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.4, 0.6)), True, 1), (0.99, 0.97, True, 1),
            (float(rng.uniform(0.85, 0.97)), 1.0, True, 1), (1.0, float(rng.uniform(0.7, 0.9)), True, 1)]
    calls = []
    for i, (gamma, lam, consistent, part) in enumerate(plan):
        term, ends = _episodes(rng, v.batch, last_terminates=i == 1)
        values, nv = _values_like(rng, ends, consistent)
        calls.append(Call(_rewards(rng, len(ends)), term, ends, nv, values, gamma, lam, part))
    return calls


def _call_arrays(calls: list[Call]) -> dict[str, np.ndarray]:
    return {"rewards": np.concatenate([c.rewards for c in calls]),
            "terminated": np.concatenate([c.terminated for c in calls]),
            "ends": np.concatenate([c.ends for c in calls]),
            "next_values": np.concatenate([c.next_values for c in calls]),
            "values": np.concatenate([c.values for c in calls]),
            "sizes": np.array([len(c.rewards) for c in calls], np.int64),
            "gammas": np.array([c.gamma for c in calls], np.float64),
            "lambdas": np.array([c.lam for c in calls], np.float64)}


def _vector_schema(calls: list[Call]) -> dict[str, Field]:
    """What grader/child.py's job_pg_rtg / job_pg_gae write."""
    return {"out": Field((sum(len(c.rewards) for c in calls),), "f"), "changed": Field((len(calls),), "b")}


def _split(out: np.ndarray, calls: list[Call]) -> list[np.ndarray]:
    cuts = np.cumsum([0] + [len(c.rewards) for c in calls])
    return [np.asarray(out[a:b], np.float64) for a, b in zip(cuts[:-1], cuts[1:])]


def _close(x: np.ndarray, ref: np.ndarray) -> bool:
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    return x.shape == ref.shape and bool(np.all(np.isfinite(x))) and bool(np.allclose(x, ref, rtol=1e-4,
                                                                                      atol=1e-4 * scale))


def _where(c: Call, t: int) -> str:
    """Where step t lies in its batch, in the handout's words."""
    if c.ends[t]:
        what = ("a terminated episode" if c.terminated[t] else
                "the episode cut by the end of the batch" if t == len(c.ends) - 1 else "a truncated episode")
        return f"the last step of {what}"
    starts = t == 0 or c.ends[t - 1]
    return "the first step of an episode" if starts else "inside an episode"


def _first_difference(name: str, calls: list[Call], outs: list[np.ndarray], refs: list[np.ndarray],
                      extra: str = "") -> str:
    """The first call and step where the student's result differs from the reference, in words."""
    for k, (c, x, r) in enumerate(zip(calls, outs, refs)):
        if not _close(x, r):
            bad = ~np.isclose(x, r, rtol=1e-4, atol=1e-4 * max(1.0, float(np.max(np.abs(r)))))
            t = int(np.argmax(bad))
            lam = f", λ = {c.lam:g}" if extra else ""
            return (f"{name} differs from the reference on a batch of {len(c.rewards)} steps (γ = {c.gamma:g}{lam}): "
                    f"at step {t}, {_where(c, t)}, got {x[t]:.5f}, expected {r[t]:.5f}")
    return ""


def _changed_inputs(changed: np.ndarray, method: str) -> str:
    if not changed.any():
        return ""
    return (f"{method} changed its input arrays in place (the batch's own arrays: estimate_advantages uses them "
            "again afterwards): compute into a new array")


# ------------------------------------------------------------------------------------------------ reward-to-go

def _rtg(r: np.ndarray, g: float, cut: np.ndarray, boot: np.ndarray, nv: np.ndarray,
         late: bool = False, value: str = "") -> np.ndarray:
    """The reward-to-go with its boundary handling spelled out: before step t (going backwards) the running sum is
    reset where ``cut[t]``, to nv[t] where ``boot[t]`` and 0 elsewhere (``late``: the reset placed after step t's sum,
    one step late). ``value`` names a mistake inside the episodes ("" the right sum)."""
    r = r.astype(np.float64)
    nv = nv.astype(np.float64)
    gs = 1.0 if value == "undiscounted" else g
    out = np.zeros(len(r))
    future = 0.0
    for t in reversed(range(len(r))):
        if cut[t] and not late:
            future = nv[t] if boot[t] else 0.0
        x = future
        future = r[t] + gs * future
        out[t] = {"": future, "undiscounted": future, "no_r_t": gs * x, "next": x, "twice": g * future}[value]
        if cut[t] and late:
            future = nv[t] if boot[t] else 0.0
    return out


def _rtg_ref(c: Call) -> np.ndarray:
    return _rtg(c.rewards, c.gamma, c.ends, c.ends & ~c.terminated, c.next_values)


RTG_VALUE_BUGS = {
    "undiscounted": "the sums are not discounted (G_t = r_t + γ·r_{t+1} + γ²·r_{t+2} + ...: multiply by γ at each "
                    "step back)",
    "no_r_t": "G_t leaves out r_t (G_t = r_t + γ·G_{t+1}: the sum starts at the step's own reward)",
    "next": "G_t starts at r_{t+1} (G_t = r_t + γ·G_{t+1}: the sum starts at the step's own reward r_t)",
    "twice": "every G_t is multiplied by γ once too often (G_t = r_t + γ·G_{t+1}: r_t is not discounted)",
}


def _rtg_other_values(c: Call) -> dict[str, np.ndarray]:
    """Named wrong sums inside the episodes (the boundaries handled right)."""
    boot = c.ends & ~c.terminated
    named = {why: _rtg(c.rewards, c.gamma, c.ends, boot, c.next_values, value=k) for k, why in RTG_VALUE_BUGS.items()}
    named["the sums run forwards (over the rewards before t): G_t sums r_t and what comes after it, going backwards "
          "from each episode's last step"] = _forward_sums(c)
    named["the discount counts from the episode's first step (γ^{t'} instead of γ^{t'−t}): G_t = r_t + γ·G_{t+1}"] = \
        _from_start(c)
    return named


def _episode_bounds(ends: np.ndarray) -> list[tuple[int, int]]:
    last = np.flatnonzero(ends)
    starts = np.concatenate([[0], last[:-1] + 1])
    return list(zip(starts.tolist(), last.tolist()))


def _forward_sums(c: Call) -> np.ndarray:
    out = np.zeros(len(c.rewards))
    for s, e in _episode_bounds(c.ends):
        acc = 0.0
        for t in range(s, e + 1):
            acc = float(c.rewards[t]) + c.gamma * acc
            out[t] = acc
    return out


def _from_start(c: Call) -> np.ndarray:
    out = np.zeros(len(c.rewards))
    for s, e in _episode_bounds(c.ends):
        boot = 0.0 if c.terminated[e] else float(c.next_values[e]) * c.gamma ** (e + 1 - s)
        w = np.array([c.gamma ** (k - s) for k in range(s, e + 1)])
        terms = w * c.rewards[s:e + 1].astype(np.float64)
        out[s:e + 1] = np.cumsum(terms[::-1])[::-1] + boot
    return out


def _rtg_boundary_bugs(c: Call, value: str = "") -> dict[str, np.ndarray]:
    """Named wrong boundary handlings (with the sums inside an episode right, or wrong as ``value`` says)."""
    t, e, nv, g, r = c.terminated, c.ends, c.next_values, c.gamma, c.rewards
    none = np.zeros_like(e)
    return {
        "the sums run across episode ends into the next episode (reset the running sum at every end, ends[t])":
            _rtg(r, g, none, none, nv, value=value),
        "terminated and ends are swapped, or the sum is cut only at terminations: it runs from a truncated episode "
        "into the next one (cut at every end, ends[t]; bootstrap where ends[t] and not terminated[t])":
            _rtg(r, g, t, none, nv, value=value),
        "it bootstraps with next_values at terminations too (a terminal state is worth 0: only a truncated episode "
        "goes on)": _rtg(r, g, e, e, nv, value=value),
        "no bootstrap at truncations: a truncated episode (time limit or batch end) would have gone on, add "
        "γ·V(s_{t+1}) = γ·next_values[t] at its last step": _rtg(r, g, e, none, nv, value=value),
        "the reset at an episode end comes one step late (reset the running sum before adding the end step's reward)":
            _rtg(r, g, e, e & ~t, nv, late=True, value=value),
    }


def _rtg_values_part(name: str, calls: list[Call], outs: list[np.ndarray], changed: np.ndarray) -> CheckResult:
    """Single episodes without a critic: the discounted sums themselves."""
    cs = [(c, x) for c, x in zip(calls, outs) if c.part == 0]
    refs = [_rtg_ref(c) for c, _ in cs]
    if all(_close(x, r) for (_, x), r in zip(cs, refs)):
        if changed.any():
            return CheckResult(name, 0, 1, _changed_inputs(changed, "reward_to_go"))
        return CheckResult(name, 1, 1, f"G_t right on {len(cs)} single episodes (γ = "
                                       f"{', '.join(f'{c.gamma:g}' for c, _ in cs)})")
    if not any(np.any(x) for _, x in cs):
        return CheckResult(name, 0, 1, "reward_to_go returns zeros (the placeholder?): fill in TODO 2a")
    for why in _rtg_other_values(cs[0][0]):
        if all(_close(x, _rtg_other_values(c)[why]) for c, x in cs):
            return CheckResult(name, 0, 1, f"reward-to-go of a single episode: {why}")
    for why in _rtg_boundary_bugs(cs[0][0]):
        if all(_close(x, _rtg_boundary_bugs(c)[why]) for c, x in cs):
            return CheckResult(name, 0, 1, f"reward-to-go of a single episode: {why}")
    return CheckResult(name, 0, 1, _first_difference("the reward-to-go of a single episode (no critic)",
                                                     [c for c, _ in cs], [x for _, x in cs], refs))


def _rtg_boundary_part(name: str, calls: list[Call], outs: list[np.ndarray]) -> CheckResult:
    """Concatenated episodes with a critic's next values: the boundaries (any of the named sums inside)."""
    cs = [(c, x) for c, x in zip(calls, outs) if c.part == 1]
    refs = [_rtg_ref(c) for c, _ in cs]
    desc = (f"{len(cs)} batches of concatenated episodes (terminations, truncations, one-step episodes, a batch cut at "
            f"the end; γ = {', '.join(f'{c.gamma:g}' for c, _ in cs)})")
    if all(_close(x, r) for (_, x), r in zip(cs, refs)):
        return CheckResult(name, 1, 1, f"G_t right on {desc}")
    if not any(np.any(x) for _, x in cs):
        return CheckResult(name, 0, 1, "reward_to_go returns zeros (the placeholder?): fill in TODO 2a")
    for value in RTG_VALUE_BUGS:
        if all(_close(x, _rtg(c.rewards, c.gamma, c.ends, c.ends & ~c.terminated, c.next_values, value=value))
               for c, x in cs):
            return CheckResult(name, 1, 1, f"the episode boundaries are right on {desc} (the sums inside an episode "
                                           "are not: see the values part)")
    for value in ("", *RTG_VALUE_BUGS):
        for why in _rtg_boundary_bugs(cs[0][0], value):
            if all(_close(x, _rtg_boundary_bugs(c, value)[why]) for c, x in cs):
                tail = " (and the sums inside an episode are off too: see the values part)" if value else ""
                return CheckResult(name, 0, 1, f"on {desc}: {why}{tail}")
    return CheckResult(name, 0, 1, _first_difference("the reward-to-go", [c for c, _ in cs], [x for _, x in cs], refs))


def check_pg_rtg(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """reward_to_go on single episodes (the values) and on batches of concatenated episodes (the boundaries)."""
    values_name, bounds_name = PG_RTG.part_names(v)
    calls = _rtg_calls(v)
    out, why = run_unit(ctx, PG_RTG.agent, PG_RTG.job, v, _call_arrays(calls), schema=_vector_schema(calls),
                        cfg=PG_CFG)
    if out is None:
        return [CheckResult(values_name, 0, 1, why), CheckResult(bounds_name, 0, 1, why)]
    outs = _split(out["out"], calls)
    changed = np.asarray(out["changed"]).astype(bool)
    return [_rtg_values_part(values_name, calls, outs, changed), _rtg_boundary_part(bounds_name, calls, outs)]


PG_RTG = CheckSpec(
    key="pg_rtg", agent="pg", run=check_pg_rtg, job="pg_rtg", methods=("reward_to_go",),
    public=(Variant(seed=2101, env="pendulum", batch=40),),
    parts=(
        Part("PG reward-to-go: values", 5.0,
             '`reward_to_go` on single episodes without a critic (next values 0), γ random, 0 and 1: G_t = r_t + '
             'γ·G_{t+1} equals the reference at every step, and the input arrays are left unchanged. Feedback names '
             'undiscounted sums, G_t without r_t or starting at r_{t+1}, an extra γ, forward sums, the discount '
             'counted from the episode start, and arrays changed in place'),
        Part("PG reward-to-go: episode boundaries", 5.0,
             '`reward_to_go` on batches of concatenated episodes (terminations and time-limit truncations followed by '
             'more episodes, one-step episodes, the last episode cut by the batch end or terminated at its last '
             'step; the critic\'s next values '
             'everywhere; γ random, 0.5, 1 and 0): every sum stops at its episode\'s end and adds γ·V(s_{t+1}) after '
             'a truncation only. Judged apart from the values (a named mistake in the sums keeps these points). '
             'Feedback names sums leaking across ends, cutting only at terminations (terminated and ends swapped), '
             'bootstrapping at terminations, no bootstrap at truncations, a reset one step late')),
    handout=("PG reward-to-go",
             "unit check against the reference on seeded single episodes (the discounted sums) and batches of "
             "concatenated episodes (terminations, truncations, one-step episodes, a batch cut at the end: the episode "
             "boundaries), several γ including 0 and 1"))


# ------------------------------------------------------------------------------------------------ GAE

def _deltas(c: Call, how: str = "") -> np.ndarray:
    r, v, nv, t, e, g = (c.rewards.astype(np.float64), c.values.astype(np.float64), c.next_values.astype(np.float64),
                         c.terminated, c.ends, c.gamma)
    following = np.concatenate([v[1:], [nv[-1]]])
    if how == "no_mask":
        return r + g * nv - v
    if how == "ends_mask":
        return r + g * np.where(e, 0.0, nv) - v
    if how == "values_next":
        return r + g * np.where(t, 0.0, following) - v
    if how == "values_next0":
        return r + g * np.where(t, 0.0, np.concatenate([v[1:], [0.0]])) - v
    if how == "no_gamma":
        return r + np.where(t, 0.0, nv) - v
    if how == "flipped":
        return v - r - g * np.where(t, 0.0, nv)
    return r + g * np.where(t, 0.0, nv) - v


def _gae(c: Call, delta: str = "", rec: str = "") -> np.ndarray:
    """GAE with the TD errors (``delta``) and the recursion (``rec``) right ("") or wrong as named."""
    d = _deltas(c, delta)
    coef = {"": c.gamma * c.lam, "no_lambda": c.gamma, "no_gamma": c.lam}.get(rec, c.gamma * c.lam)
    cut = {"no_cut": np.zeros_like(c.ends), "term_cut": c.terminated}.get(rec, c.ends)
    out = np.zeros(len(d))
    running = 0.0
    for t in reversed(range(len(d))):
        if rec == "late":
            running = float(d[t]) + coef * running
            out[t] = running
            if c.ends[t]:
                running = 0.0
            continue
        running = float(d[t]) + (0.0 if cut[t] else coef * running)
        out[t] = running
    return out


GAE_DELTA_BUGS = {
    "no_mask": "δ_t bootstraps V(s_{t+1}) at terminations (a terminal state is worth 0: δ_t = r_t + γ·(1 − "
               "terminated_t)·V(s_{t+1}) − V(s_t))",
    "ends_mask": "δ_t drops V(s_{t+1}) at every episode end (mask with terminated, not ends: a truncated episode "
                 "would have gone on, its V(s_{t+1}) counts)",
    "values_next": "δ_t uses values[t+1] for V(s_{t+1}): use next_values[t] (values[t+1] is the next episode's first "
                   "state after an end, and need not equal next_values[t] anyway)",
    "values_next0": "δ_t uses values[t+1] for V(s_{t+1}): use next_values[t] (values[t+1] is the next episode's first "
                    "state after an end, and need not equal next_values[t] anyway)",
    "no_gamma": "δ_t leaves out γ (δ_t = r_t + γ·V(s_{t+1}) − V(s_t))",
    "flipped": "δ_t has the wrong sign (δ_t = r_t + γ·V(s_{t+1}) − V(s_t))",
}
GAE_RECURSION_BUGS = {
    "no_cut": "the (γλ) recursion is not cut at episode ends (Â_t = δ_t at an episode's last step, ends[t])",
    "term_cut": "the (γλ) recursion is cut only at terminations (cut at every end, ends[t]: after a truncation "
                "the next steps belong to another episode)",
    "no_lambda": "λ is ignored (Â_t = δ_t + γλ·Â_{t+1}; λ = self.cfg.gae_lambda)",
    "no_gamma": "the recursion leaves out γ (Â_t = δ_t + γλ·Â_{t+1})",
    "late": "the reset at an episode end comes one step late (Â_t = δ_t at the end step itself)",
}


def _gae_part(name: str, calls: list[Call], outs: list[np.ndarray], part: int, changed: np.ndarray) -> CheckResult:
    """Part 0 (TD errors, λ = 0; any named recursion mistake is not this part's) or part 1 (the λ-recursion; any
    named TD-error mistake is not this part's)."""
    cs = [(c, x) for c, x in zip(calls, outs) if c.part == part]
    refs = [_gae(c) for c, _ in cs]
    what = "δ_t (λ = 0)" if part == 0 else "the λ-recursion"
    desc = (f"{len(cs)} batches of concatenated episodes ((γ, λ) = "
            f"{', '.join(f'({c.gamma:g}, {c.lam:g})' for c, _ in cs)})")
    if all(_close(x, r) for (_, x), r in zip(cs, refs)):
        if part == 0 and changed.any():
            return CheckResult(name, 0, 1, _changed_inputs(changed, "gae_advantages"))
        return CheckResult(name, 1, 1, f"{what} right on {desc}")
    if not any(np.any(x) for _, x in cs):
        return CheckResult(name, 0, 1, "gae_advantages returns zeros (the placeholder?): fill in TODO 2b")
    own, other = (GAE_DELTA_BUGS, GAE_RECURSION_BUGS) if part == 0 else (GAE_RECURSION_BUGS, GAE_DELTA_BUGS)

    def variant(c: Call, mine: str, theirs: str) -> np.ndarray:
        return _gae(c, delta=mine, rec=theirs) if part == 0 else _gae(c, delta=theirs, rec=mine)

    for key in other:
        if all(_close(x, variant(c, "", key)) for c, x in cs):
            if part == 0 and changed.any():
                return CheckResult(name, 0, 1, _changed_inputs(changed, "gae_advantages"))
            return CheckResult(name, 1, 1, f"{what} right on {desc} (another mistake: see the other part)")
    for theirs in ("", *other):
        for key, why in own.items():
            if all(_close(x, variant(c, key, theirs)) for c, x in cs):
                tail = " (and another mistake: see the other part)" if theirs else ""
                return CheckResult(name, 0, 1, f"on {desc}: {why}{tail}")
    return CheckResult(name, 0, 1, _first_difference("the advantage", [c for c, _ in cs], [x for _, x in cs], refs,
                                                     extra="λ"))


def check_pg_gae(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """gae_advantages with λ = 0 (the TD errors) and λ > 0 (the recursion) on batches of concatenated episodes."""
    names = PG_GAE.part_names(v)
    calls = _gae_calls(v)
    out, why = run_unit(ctx, PG_GAE.agent, PG_GAE.job, v, _call_arrays(calls), schema=_vector_schema(calls),
                        cfg=PG_CFG)
    if out is None:
        return [CheckResult(n, 0, 1, why) for n in names]
    outs = _split(out["out"], calls)
    changed = np.asarray(out["changed"]).astype(bool)
    return [_gae_part(names[0], calls, outs, 0, changed), _gae_part(names[1], calls, outs, 1, changed)]


PG_GAE = CheckSpec(
    key="pg_gae", agent="pg", run=check_pg_gae, job="pg_gae", methods=("gae_advantages",),
    public=(Variant(seed=2202, env="pendulum", batch=40),),
    parts=(
        Part("PG GAE: TD errors", 5.0,
             '`gae_advantages` with λ = 0 (Â_t = δ_t) on batches of concatenated episodes (terminations, truncations, '
             'one-step episodes, a batch cut at the end or ending in a termination), γ random and 1, next values '
             'equal to the next step\'s value '
             'inside episodes or drawn on their own: δ_t = r_t + γ·(1 − terminated_t)·next_values[t] − values[t] '
             'at every step, the inputs left unchanged. Feedback names a bootstrap at terminations, a mask with ends, '
             'values[t+1] for next_values[t], a missing γ, a flipped sign, arrays changed in place'),
        Part("PG GAE: λ-recursion", 5.0,
             '`gae_advantages` with λ ≈ 0.5, 0.97, 1 and ≈ 0.8 and γ random, 0.99 and 1 on such batches, next '
             'values equal to the next step\'s value inside episodes (as a critic gives them: the λ-return form '
             'G^λ_t − V(s_t) is as right as the sum of δs): '
             'Â_t = δ_t + γλ·Â_{t+1}, cut at every end. Judged apart from the TD errors (a named mistake in δ keeps '
             'these points). Feedback names a recursion not cut at ends or cut only at terminations, λ ignored, γ '
             'missing, a reset one step late')),
    handout=("PG GAE",
             "unit check against the reference on seeded batches of concatenated episodes: the TD errors (λ = 0, with "
             "next values that do and do not equal the next step's value) and the λ-recursion (several λ and γ)"))


# ------------------------------------------------------------------------------------------------ actor loss

def _loss_sizes(v: Variant) -> list[int]:
    return [v.batch, max(2, v.batch // 2 + 1), v.batch]


def _flat(params: list[torch.nn.Parameter]) -> np.ndarray:
    return np.concatenate([p.grad.double().reshape(-1).numpy() if p.grad is not None else np.zeros(p.numel())
                           for p in params])


def _value_and_grads(params: list[torch.nn.Parameter], loss_fn: Callable[[], torch.Tensor]) -> tuple[float, np.ndarray]:
    for p in params:
        p.grad = None
    loss = loss_fn()
    loss.backward()
    grads = _flat(params)
    for p in params:
        p.grad = None
    return float(loss.detach()), grads


def _close_value(x: float, ref: float) -> bool:
    return math.isfinite(x) and abs(x - ref) <= 1e-4 * max(1.0, abs(ref))


def _close_grads(g: np.ndarray, ref: np.ndarray) -> bool:
    return g.shape == ref.shape and bool(np.all(np.isfinite(g))) and bool(np.allclose(g, ref, rtol=1e-3, atol=1e-5))


def _actor_ref(pol: GaussianMLPPolicy, o: torch.Tensor, a: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
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
    if _close_grads(grads, ref_grads) and not _close_value(loss, ref):
        return (f"it differs from the reference by the constant {loss - ref:+.5f} (e.g. ½·log 2π left out of a "
                "log-density written by hand): its gradients equal the reference's")
    cands = {why: _value_and_grads(params, fn) for why, fn in candidates.items()}
    for why, (val, g) in cands.items():
        if _close_value(loss, val) and (_close_grads(grads, g) or not np.any(grads)):
            return why.strip()
    for why, (_, g) in cands.items():
        if _close_grads(grads, g):
            return why.strip()
    for why, (val, _) in cands.items():
        if _close_value(loss, val):
            return why.strip()
    dead, pos = [], 0
    for pname, p in zip(names, params):
        seg = slice(pos, pos + p.numel())
        pos += p.numel()
        if not np.any(grads[seg]) and np.any(ref_grads[seg]):
            dead.append(pname)
    if dead and np.any(grads):
        return (f"no gradient reaches {', '.join(dead)}: part of the computation is detached (e.g. .detach(), "
                ".item(), numpy, or a new tensor from its values)")
    scale = float(grads @ ref_grads / max(float(ref_grads @ ref_grads), 1e-30))
    if np.any(grads) and _close_grads(grads, scale * ref_grads):
        return f"it is the reference loss times {scale:.4g} (a sum where a mean is due, or an extra factor)"
    return ""


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
    refs = [_value_and_grads(case.params, lambda b=b: case.ref(*b)) for b in case.batches]
    placeholder = not np.any(losses) and not np.any(grads)
    grad_ok, value_ok, why = True, True, ""
    for i, (b, (ref, ref_g)) in enumerate(zip(case.batches, refs)):
        g_ok, v_ok = graphs[i] and _close_grads(grads[i], ref_g), _close_value(float(losses[i]), ref)
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


def _loss_schema(k: int, n_params: int) -> dict[str, Field]:
    """What grader/child.py's job_pg_actor_loss / job_pg_critic_loss write."""
    return {"loss": Field((k,), "f"), "has_graph": Field((k,), "b"), "grads": Field((k, n_params), "f")}


def _pg_policy(v: Variant, rng: np.random.Generator) -> tuple[GaussianMLPPolicy, int, int]:
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(v.env)))
    low, high = random_bounds(act_dim, rng)
    pol = random_policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=1.0)
    return pol, obs_dim, act_dim


def check_pg_actor_loss(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """actor_loss's gradients and value over several calls on one agent."""
    grad_name, value_name = PG_ACTOR_LOSS.part_names(v)
    rng = np.random.default_rng(v.seed)
    pol, _, act_dim = _pg_policy(v, rng)
    sizes = _loss_sizes(v)
    n = sum(sizes)
    obs = sample_obs(pol, n, rng)
    act = rng.uniform(-1.3, 1.3, (n, act_dim)).astype(np.float32)          # some outside [-1, 1], as sampled
    adv = rng.normal(0.4, 1.5, n).astype(np.float32)
    params = list(pol.parameters())
    arrays = {"obs": obs, "actions": act, "advantages": adv, "sizes": np.array(sizes, np.int64)}
    schema = _loss_schema(len(sizes), sum(p.numel() for p in params))
    out, why = run_unit(ctx, PG_ACTOR_LOSS.agent, PG_ACTOR_LOSS.job, v, arrays, {"policy": pol}, schema=schema,
                        cfg=PG_CFG)
    if out is None:
        return [CheckResult(grad_name, 0, 1, why), CheckResult(value_name, 0, 1, why)]
    cuts = np.cumsum([0, *sizes])
    batches = [(torch.as_tensor(obs[a:b]), torch.as_tensor(act[a:b]), torch.as_tensor(adv[a:b]))
               for a, b in zip(cuts[:-1], cuts[1:])]
    case = LossCase(batches, params, [nm for nm, _ in pol.named_parameters()],
                    lambda o, a, d: _actor_ref(pol, o, a, d), lambda o, a, d: _actor_candidates(pol, o, a, d),
                    "actor_loss")
    return _loss_results(case, out, grad_name, value_name)


PG_ACTOR_LOSS = CheckSpec(
    key="pg_actor_loss", agent="pg", run=check_pg_actor_loss, job="pg_actor_loss", batch_in_name=True,
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
    pol, obs_dim, _ = _pg_policy(v, rng)
    critic = random_critic(obs_dim, rng)
    sizes = _loss_sizes(v)
    n = sum(sizes)
    obs = sample_obs(pol, n, rng)
    targets = rng.normal(1.0, 3.0, n).astype(np.float32)
    params = list(critic.parameters())
    arrays = {"obs": obs, "targets": targets, "sizes": np.array(sizes, np.int64), "critic": critic_vector(critic)}
    schema = _loss_schema(len(sizes), sum(p.numel() for p in params))
    out, why = run_unit(ctx, PG_CRITIC_LOSS.agent, PG_CRITIC_LOSS.job, v, arrays, {"policy": pol}, schema=schema,
                        cfg={**PG_CFG, "hidden_sizes": CRITIC_HIDDEN})
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    cuts = np.cumsum([0, *sizes])
    batches = [(torch.as_tensor(obs[a:b]), torch.as_tensor(targets[a:b])) for a, b in zip(cuts[:-1], cuts[1:])]
    case = LossCase(batches, params, [f"critic.{nm}" for nm, _ in critic.named_parameters()],
                    lambda o, y: ((critic(pol.normalize_obs(o)).squeeze(-1) - y) ** 2).mean(),
                    lambda o, y: _critic_candidates(pol, critic, o, y), "critic_loss")
    return _loss_results(case, out, None, name)


PG_CRITIC_LOSS = CheckSpec(
    key="pg_critic_loss", agent="pg", run=check_pg_critic_loss, job="pg_critic_loss", batch_in_name=True,
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


# ------------------------------------------------------------------------------------------------ estimate_advantages

BATCH_KEYS = ("obs", "actions", "rewards", "next_obs", "terminated", "ends")


def _pg_batch(rng: np.random.Generator, pol: GaussianMLPPolicy, total: int) -> dict[str, np.ndarray]:
    """A Batch's arrays (learning/rollouts.py): concatenated episodes, next_obs[t] = obs[t+1] inside an episode."""
    term, ends = _episodes(rng, total)
    n = len(ends)
    obs = sample_obs(pol, n, rng)
    next_obs = np.concatenate([obs[1:], sample_obs(pol, 1, rng)])
    next_obs[ends] = sample_obs(pol, int(ends.sum()), rng)
    return {"obs": obs, "actions": rng.uniform(-1.3, 1.3, (n, pol.act_dim)).astype(np.float32),
            "rewards": _rewards(rng, n), "next_obs": next_obs, "terminated": term, "ends": ends}


def _concat_batches(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    out = {k: np.concatenate([b[k] for b in batches]) for k in BATCH_KEYS}
    out["sizes"] = np.array([len(b["ends"]) for b in batches], np.int64)
    return out


def _critic_values(pol: GaussianMLPPolicy, critic: torch.nn.Module, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return critic(pol.normalize_obs(torch.as_tensor(obs))).squeeze(-1).numpy().astype(np.float32)


@dataclass
class Setting:
    """One estimate_advantages call's configuration."""

    baseline: bool
    normalize: bool
    gamma: float
    lam: float


def _normalized(x: np.ndarray, ddof: int = 0) -> np.ndarray:
    return (x - x.mean()) / (x.std(ddof=ddof) + 1e-8)


def _estimates(b: dict[str, np.ndarray], s: Setting, pol: GaussianMLPPolicy,
               critic: torch.nn.Module) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The reference (advantages, targets) under "" and the named wrong versions."""
    n = len(b["ends"])
    zeros = np.zeros(n, np.float32)
    v, nv = (_critic_values(pol, critic, b["obs"]), _critic_values(pol, critic, b["next_obs"])) if s.baseline \
        else (zeros, zeros)

    def call(values: np.ndarray, next_values: np.ndarray) -> Call:
        return Call(b["rewards"], b["terminated"], b["ends"], next_values, values, s.gamma, s.lam, 0)

    def norm(x: np.ndarray) -> np.ndarray:
        return _normalized(x) if s.normalize else x

    c = call(v, nv)
    g = _rtg_ref(c)
    adv = _gae(c) if s.baseline else g.copy()
    out = {"": (norm(adv), g)}
    if s.normalize:
        out["the advantages are not normalized (normalize_advantages is on: (Â − mean) / (std + 1e-8))"] = (adv, g)
        out["the targets are normalized too (only the advantages are; the critic fits the unnormalized returns)"] = \
            (_normalized(adv), _normalized(g))
    else:
        out["the advantages are normalized though normalize_advantages is off"] = (_normalized(adv), g)
    if s.baseline:
        same = call(v, v)
        out["V(s_{t+1}) is computed from batch.obs instead of batch.next_obs"] = (norm(_gae(same)), _rtg_ref(same))
        out["the targets are not bootstrapped: pass the critic's V(s_{t+1}) to reward_to_go as next_values"] = \
            (norm(adv), _rtg_ref(call(v, zeros)))
        out["the targets are the λ-return Â + V (GAE plus values): the critic's targets are the reward-to-go"] = \
            (norm(adv), adv + v)
        out["the advantages are the reward-to-go minus V(s_t), not GAE (gae_advantages)"] = (norm(g - v), g)
        out["the advantages are the reward-to-go: with a baseline they are GAE (gae_advantages)"] = (norm(g), g)
    else:
        out["without a baseline the advantages are the reward-to-go, not GAE with V ≡ 0 (equal only for λ = 1)"] = \
            (norm(_gae(call(zeros, zeros))), g)
        v1, nv1 = _critic_values(pol, critic, b["obs"]), _critic_values(pol, critic, b["next_obs"])
        c1 = call(v1, nv1)
        out["the critic is used though baseline is off (V ≡ 0: advantages = targets = the reward-to-go)"] = \
            (norm(_gae(c1)), _rtg_ref(c1))
    return out


def _estimate_matches(adv: np.ndarray, tgt: np.ndarray, pair: tuple[np.ndarray, np.ndarray], s: Setting) -> bool:
    ok_t = _close(tgt, pair[1])
    if _close(adv, pair[0]):
        return ok_t
    # the sample standard deviation (ddof 1) is as good a normalization
    return ok_t and s.normalize and _close(adv, pair[0] * pair[0].std() / max(pair[0].std(ddof=1), 1e-12))


def _settings(rng: np.random.Generator) -> list[Setting]:
    return [Setting(True, False, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.4, 0.8))),
            Setting(True, True, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.8, 0.97))),
            Setting(False, False, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.4, 0.8))),
            Setting(False, True, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.4, 0.8)))]


def check_pg_estimate(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """estimate_advantages with a given critic on crafted batches, baseline on/off × normalization on/off."""
    (name,) = PG_ESTIMATE.part_names(v)
    rng = np.random.default_rng(v.seed)
    pol, obs_dim, _ = _pg_policy(v, rng)
    critic = random_critic(obs_dim, rng)
    settings = _settings(rng)
    batches = [_pg_batch(rng, pol, v.batch) for _ in settings]
    arrays = {**_concat_batches(batches), "critic": critic_vector(critic),
              "settings": np.array([[s.baseline, s.normalize, s.gamma, s.lam] for s in settings], np.float64)}
    total = int(arrays["sizes"].sum())
    schema = {"advantages": Field((total,), "f"), "targets": Field((total,), "f"),
              "changed": Field((len(settings),), "b")}
    out, why = run_unit(ctx, PG_ESTIMATE.agent, PG_ESTIMATE.job, v, arrays, {"policy": pol}, schema=schema,
                        tested=("estimate_advantages",), cfg={**PG_CFG, "hidden_sizes": CRITIC_HIDDEN})
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    cuts = np.cumsum([0, *arrays["sizes"].tolist()])
    advs, tgts = np.asarray(out["advantages"], np.float64), np.asarray(out["targets"], np.float64)
    if not np.any(advs) and not np.any(tgts):
        return [CheckResult(name, 0, 1, "estimate_advantages returns zeros (the placeholder?): fill in TODO 2e")]
    for k, (s, b) in enumerate(zip(settings, batches)):
        adv, tgt = advs[cuts[k]:cuts[k + 1]], tgts[cuts[k]:cuts[k + 1]]
        named = _estimates(b, s, pol, critic)
        if _estimate_matches(adv, tgt, named[""], s):
            continue
        where = f"with baseline: {str(s.baseline).lower()}, normalize_advantages: {str(s.normalize).lower()}"
        why = next((w for w, pair in named.items() if w and _estimate_matches(adv, tgt, pair, s)), "")
        if not why:
            what = [x for x, ok in (("the advantages", _close(adv, named[""][0])),
                                    ("the targets", _close(tgt, named[""][1]))) if not ok]
            why = f"{' and '.join(what) or 'the result'} differ from the reference"
        return [CheckResult(name, 0, 1, f"{where}: {why}")]
    if np.asarray(out["changed"]).any():
        return [CheckResult(name, 0, 1, "estimate_advantages changed the batch's arrays in place")]
    return [CheckResult(name, 1, 1, "advantages and targets right with baseline on and off, normalization on and off")]


PG_ESTIMATE = CheckSpec(
    key="pg_estimate", agent="pg", run=check_pg_estimate, job="pg_estimate", methods=("estimate_advantages",),
    public=(Variant(seed=2505, env="hopper", batch=40),),
    parts=(
        Part("PG advantages and targets", 5.0,
             '`estimate_advantages` with a given critic (random weights, a non-trivial observation normalizer) on '
             'crafted batches of concatenated episodes, baseline on and off × normalize_advantages on and off '
             '(reference reward_to_go and gae_advantages): advantages and targets equal the reference (the '
             'normalization with the population or the sample standard deviation), the batch unchanged. Feedback '
             'names normalization missing or unasked, normalized targets, V(s_{t+1}) from obs, unbootstrapped '
             'targets, λ-return targets, G − V or G for advantages with a baseline, GAE with V ≡ 0 or the critic '
             'without one'),),
    handout=("PG advantages and targets",
             "unit check against the reference on seeded batches with a given critic: baseline on and off, "
             "advantage normalization on and off"))


# ------------------------------------------------------------------------------------------------ update

UPDATE_CALLS = 2
UPDATE_BUGS = {
    "no_zero_grad_actor": "the actor's gradients are not cleared before its step (call "
                          "self.actor_optimizer.zero_grad() before backward: gradients add up across calls)",
    "no_zero_grad_critic": "the critic's gradients are not cleared before each of its steps (zero_grad before each "
                           "backward: gradients add up across steps)",
    "recompute": "the advantages are recomputed after the critic's steps (compute advantages and targets once, "
                 "before anything changes)",
    "targets_each_step": "the targets are recomputed at each critic step from the updated critic (compute them once, "
                         "before anything changes)",
}


@dataclass
class UpdateSetup:
    """What the reference update needs: the start's weights, the settings, the batches."""

    pol: GaussianMLPPolicy
    critic: torch.nn.Module
    setting: Setting
    lr: float
    critic_lr: float
    critic_steps: int
    batches: list[dict[str, np.ndarray]]


def _set_vector(module: torch.nn.Module, vec: np.ndarray) -> None:
    torch.nn.utils.vector_to_parameters(torch.as_tensor(vec, dtype=torch.float32), module.parameters())


def _vector(module: torch.nn.Module) -> np.ndarray:
    return torch.nn.utils.parameters_to_vector(module.parameters()).detach().double().numpy()


def _simulate(u: UpdateSetup, bug: str, critic_before: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray,
                                                                                      float, float]]:
    """The update (with ``bug``, "" none) on each batch from the start's weights and fresh Adam optimizers; before
    call k the critic holds ``critic_before[k]`` (the student's own critic then, so that a critic mistake does not
    change the actor's reference). Returns per call (actor vector, critic vector, actor loss, last critic loss)."""
    import copy

    from learning.optim import Adam

    pol, critic = copy.deepcopy(u.pol), copy.deepcopy(u.critic)
    opt_a, opt_c = Adam(pol.parameters(), lr=u.lr), Adam(critic.parameters(), lr=u.critic_lr)
    out = []
    for b, before in zip(u.batches, critic_before):
        _set_vector(critic, before)

        def estimate() -> tuple[torch.Tensor, torch.Tensor]:
            adv, tgt = _estimates(b, u.setting, pol, critic)[""]
            return torch.as_tensor(adv, dtype=torch.float32), torch.as_tensor(tgt, dtype=torch.float32)

        obs, act = torch.as_tensor(b["obs"]), torch.as_tensor(b["actions"])
        adv, tgt = estimate()

        def actor_step(adv: torch.Tensor) -> float:
            if bug != "no_zero_grad_actor":
                opt_a.zero_grad(set_to_none=True)
            loss = _actor_ref(pol, obs, act, adv)
            loss.backward()
            opt_a.step()
            return float(loss.detach())

        a_loss = float("nan") if bug == "recompute" else actor_step(adv)
        c_loss = float("nan")
        for _ in range(u.critic_steps):
            if bug == "targets_each_step":
                _, tgt = estimate()
            if bug != "no_zero_grad_critic":
                opt_c.zero_grad(set_to_none=True)
            c = ((critic(pol.normalize_obs(obs)).squeeze(-1) - tgt) ** 2).mean()
            c.backward()
            opt_c.step()
            c_loss = float(c.detach())
        if bug == "recompute":
            a_loss = actor_step(estimate()[0])
        out.append((_vector(pol), _vector(critic), a_loss, c_loss))
    return out


def _close_params(x: np.ndarray, ref: np.ndarray, lr: float) -> bool:
    """Parameters after Adam steps: equal up to a small fraction of one step."""
    return x.shape == ref.shape and bool(np.all(np.isfinite(x))) and bool(np.allclose(x, ref, rtol=0,
                                                                                      atol=0.05 * lr + 1e-6))


def _update_part(name: str, u: UpdateSetup, out: dict[str, np.ndarray], actor: bool) -> CheckResult:
    """The actor's part (actor=True: its parameters, its steps, actor_loss) or the critic's."""
    k = len(u.batches)
    key, lr, what = ("actor", u.lr, "actor") if actor else ("critic", u.critic_lr, "critic")
    params = np.asarray(out[f"{key}_params"], np.float64).reshape(k, -1)
    steps = np.asarray(out["steps"], np.int64).reshape(k, 2)[:, 0 if actor else 1]
    losses = np.asarray(out["losses"], np.float64).reshape(k, 2)[:, 0 if actor else 1]
    critic_before = [_vector(u.critic), *np.asarray(out["critic_params"], np.float64).reshape(k, -1)[:-1]]
    ref = _simulate(u, "", critic_before)
    want = 1 if actor else u.critic_steps
    if not np.any(np.asarray(out["steps"])) and np.all(np.isnan(np.asarray(out["losses"], np.float64))):
        return CheckResult(name, 0, 1, "update is the placeholder (no optimizer step): fill in TODO 2f")
    for i in range(k):
        call = f"update call {i + 1} of {k}"
        if steps[i] != want:
            why = (f"self.{what}_optimizer took {steps[i]} steps in one update; expected {want} "
                   f"({'one actor step per batch' if actor else 'critic_steps'})")
            if steps[i] == 0:
                why += f": step self.{what}_optimizer (the framework's Adam; a new optimizer loses its state)"
            return CheckResult(name, 0, 1, f"{call}: {why}")
        if not _close_params(params[i], ref[i][0 if actor else 1], lr):
            why = next((text for bug, text in UPDATE_BUGS.items()
                        if _close_params(params[i], _simulate(u, bug, critic_before)[i][0 if actor else 1], lr)), "")
            return CheckResult(name, 0, 1, f"{call}: the {what}'s parameters after the update differ from one "
                                           f"reference {'step' if actor else 'series of steps'}"
                               + (f": {why}" if why else ""))
        loss_ref = ref[i][2 if actor else 3]
        if not _close_value(float(losses[i]), loss_ref):
            which = "the actor's loss (before its step)" if actor else "the critic's loss at its last step"
            return CheckResult(name, 0, 1, f"{call}: the returned {key}_loss {losses[i]:.5f} is not {which}, "
                                           f"{loss_ref:.5f}")
    done = ("one Adam step on the actor loss per update" if actor else
            f"{u.critic_steps} Adam steps on the critic loss per update")
    return CheckResult(name, 1, 1, f"{done}, over {k} consecutive updates, and the returned {key}_loss right")


def check_pg_update(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """update on consecutive batches from a known start: the actor's and the critic's parameters after each call equal
    the reference Adam steps (computed here), the steps counted, the returned losses."""
    actor_name, critic_name = PG_UPDATE.part_names(v)
    rng = np.random.default_rng(v.seed)
    pol, obs_dim, _ = _pg_policy(v, rng)
    critic = random_critic(obs_dim, rng)
    setting = Setting(True, True, float(rng.uniform(0.85, 0.97)), float(rng.uniform(0.8, 0.97)))
    u = UpdateSetup(pol, critic, setting, float(rng.uniform(0.003, 0.01)), float(rng.uniform(0.003, 0.01)),
                    int(rng.integers(3, 6)), [_pg_batch(rng, pol, v.batch) for _ in range(UPDATE_CALLS)])
    cfg = {**PG_CFG, "hidden_sizes": CRITIC_HIDDEN, "discount": setting.gamma, "gae_lambda": setting.lam,
           "baseline": True, "normalize_advantages": True, "learning_rate": u.lr, "critic_learning_rate": u.critic_lr,
           "critic_steps": u.critic_steps}
    arrays = {**_concat_batches(u.batches), "critic": critic_vector(critic)}
    k = UPDATE_CALLS
    n_actor, n_critic = sum(p.numel() for p in pol.parameters()), sum(p.numel() for p in critic.parameters())
    schema = {"actor_params": Field((k, n_actor), "f"), "critic_params": Field((k, n_critic), "f"),
              "steps": Field((k, 2), "i"), "losses": Field((k, 2), "f"), "returned": Field((k,), "b")}
    out, why = run_unit(ctx, PG_UPDATE.agent, PG_UPDATE.job, v, arrays, {"policy": pol}, schema=schema,
                        tested=("update",), cfg=cfg)
    if out is None:
        return [CheckResult(actor_name, 0, 1, why), CheckResult(critic_name, 0, 1, why)]
    return [_update_part(actor_name, u, out, True), _update_part(critic_name, u, out, False)]


PG_UPDATE = CheckSpec(
    key="pg_update", agent="pg", run=check_pg_update, job="pg_update", methods=("update",),
    public=(Variant(seed=2606, env="hopper", batch=40),),
    parts=(
        Part("PG update: actor step", 5.0,
             '`update` on 2 consecutive batches of one agent from a known start (random policy and critic weights, a '
             'non-trivial observation normalizer, fresh Adam optimizers, learning rates and critic_steps drawn; '
             'reference estimate_advantages, actor_loss and critic_loss): after each call the policy\'s parameters '
             'equal one reference Adam step on the actor loss of advantages computed before any step, '
             'self.actor_optimizer stepped once, and the returned actor_loss is that loss. Feedback names several '
             'actor steps, a new optimizer, gradients not cleared, advantages recomputed after the critic\'s steps'),
        Part("PG update: critic steps", 5.0,
             'after each call the critic\'s parameters equal critic_steps reference Adam steps on the critic loss of '
             'the targets computed before any step, self.critic_optimizer stepped critic_steps times, and the '
             'returned critic_loss is the loss at the last step. Judged apart from the actor. Feedback names missing '
             'or extra critic steps, gradients not cleared, targets recomputed at each step')),
    handout=("PG update",
             "unit check from a known start over two updates: one Adam step of the actor (5 points) and critic_steps "
             "Adam steps of the critic (5), with advantages and targets computed once before any step"))


CHECKS = (PG_RTG, PG_GAE, PG_ACTOR_LOSS, PG_CRITIC_LOSS, PG_ESTIMATE, PG_UPDATE)
