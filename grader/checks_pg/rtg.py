"""The reward-to-go check (``reward_to_go``): the values inside an episode and the episode boundaries are judged apart,
each named mistake computed here."""
from __future__ import annotations

import numpy as np

from grader.checks_pg.batches import (PG_CFG, Call, call_arrays, changed_inputs, close_to, first_difference, rtg_calls,
                                      split_calls, vector_schema)
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit

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


def rtg_ref(c: Call) -> np.ndarray:
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
    refs = [rtg_ref(c) for c, _ in cs]
    if all(close_to(x, r) for (_, x), r in zip(cs, refs)):
        if changed.any():
            return CheckResult(name, 0, 1, changed_inputs(changed, "reward_to_go"))
        return CheckResult(name, 1, 1, f"G_t right on {len(cs)} single episodes (γ = "
                                       f"{', '.join(f'{c.gamma:g}' for c, _ in cs)})")
    if not any(np.any(x) for _, x in cs):
        return CheckResult(name, 0, 1, "reward_to_go returns zeros (the placeholder?): fill in TODO 2a")
    for why in _rtg_other_values(cs[0][0]):
        if all(close_to(x, _rtg_other_values(c)[why]) for c, x in cs):
            return CheckResult(name, 0, 1, f"reward-to-go of a single episode: {why}")
    for why in _rtg_boundary_bugs(cs[0][0]):
        if all(close_to(x, _rtg_boundary_bugs(c)[why]) for c, x in cs):
            return CheckResult(name, 0, 1, f"reward-to-go of a single episode: {why}")
    return CheckResult(name, 0, 1, first_difference("the reward-to-go of a single episode (no critic)",
                                                     [c for c, _ in cs], [x for _, x in cs], refs))


def _rtg_boundary_part(name: str, calls: list[Call], outs: list[np.ndarray]) -> CheckResult:
    """Concatenated episodes with a critic's next values: the boundaries (any of the named sums inside)."""
    cs = [(c, x) for c, x in zip(calls, outs) if c.part == 1]
    refs = [rtg_ref(c) for c, _ in cs]
    desc = (f"{len(cs)} batches of concatenated episodes (terminations, truncations, one-step episodes, a batch cut at "
            f"the end; γ = {', '.join(f'{c.gamma:g}' for c, _ in cs)})")
    if all(close_to(x, r) for (_, x), r in zip(cs, refs)):
        return CheckResult(name, 1, 1, f"G_t right on {desc}")
    if not any(np.any(x) for _, x in cs):
        return CheckResult(name, 0, 1, "reward_to_go returns zeros (the placeholder?): fill in TODO 2a")
    for value in RTG_VALUE_BUGS:
        if all(close_to(x, _rtg(c.rewards, c.gamma, c.ends, c.ends & ~c.terminated, c.next_values, value=value))
               for c, x in cs):
            return CheckResult(name, 1, 1, f"the episode boundaries are right on {desc} (the sums inside an episode "
                                           "are not: see the values part)")
    for value in ("", *RTG_VALUE_BUGS):
        for why in _rtg_boundary_bugs(cs[0][0], value):
            if all(close_to(x, _rtg_boundary_bugs(c, value)[why]) for c, x in cs):
                tail = " (and the sums inside an episode are off too: see the values part)" if value else ""
                return CheckResult(name, 0, 1, f"on {desc}: {why}{tail}")
    return CheckResult(name, 0, 1, first_difference("the reward-to-go", [c for c, _ in cs], [x for _, x in cs], refs))


def check_pg_rtg(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """reward_to_go on single episodes (the values) and on batches of concatenated episodes (the boundaries)."""
    values_name, bounds_name = PG_RTG.part_names(v)
    calls = rtg_calls(v)
    out, why = run_unit(ctx, PG_RTG, v, call_arrays(calls), schema=vector_schema(calls),
                        cfg=PG_CFG)
    if out is None:
        return [CheckResult(values_name, 0, 1, why), CheckResult(bounds_name, 0, 1, why)]
    outs = split_calls(out["out"], calls)
    changed = np.asarray(out["changed"]).astype(bool)
    return [_rtg_values_part(values_name, calls, outs, changed), _rtg_boundary_part(bounds_name, calls, outs)]


PG_RTG = CheckSpec(
    key="pg_rtg", agent="pg", run=check_pg_rtg, methods=("reward_to_go",),
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
