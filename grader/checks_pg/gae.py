"""The GAE(λ) check (``gae_advantages``): the TD errors and the λ-recursion are judged apart, each named mistake
computed here."""
from __future__ import annotations

import numpy as np

from grader.checks_pg.batches import (PG_CFG, Call, call_arrays, changed_inputs, close_to, first_difference, gae_calls,
                                      split_calls, vector_schema)
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit

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


def gae_values(c: Call, delta: str = "", rec: str = "") -> np.ndarray:
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
    refs = [gae_values(c) for c, _ in cs]
    what = "δ_t (λ = 0)" if part == 0 else "the λ-recursion"
    desc = (f"{len(cs)} batches of concatenated episodes ((γ, λ) = "
            f"{', '.join(f'({c.gamma:g}, {c.lam:g})' for c, _ in cs)})")
    if all(close_to(x, r) for (_, x), r in zip(cs, refs)):
        if part == 0 and changed.any():
            return CheckResult(name, 0, 1, changed_inputs(changed, "gae_advantages"))
        return CheckResult(name, 1, 1, f"{what} right on {desc}")
    if not any(np.any(x) for _, x in cs):
        return CheckResult(name, 0, 1, "gae_advantages returns zeros (the placeholder?): fill in TODO 2b")
    own, other = (GAE_DELTA_BUGS, GAE_RECURSION_BUGS) if part == 0 else (GAE_RECURSION_BUGS, GAE_DELTA_BUGS)

    def variant(c: Call, mine: str, theirs: str) -> np.ndarray:
        return gae_values(c, delta=mine, rec=theirs) if part == 0 else gae_values(c, delta=theirs, rec=mine)

    for key in other:
        if all(close_to(x, variant(c, "", key)) for c, x in cs):
            if part == 0 and changed.any():
                return CheckResult(name, 0, 1, changed_inputs(changed, "gae_advantages"))
            return CheckResult(name, 1, 1, f"{what} right on {desc} (another mistake: see the other part)")
    for theirs in ("", *other):
        for key, why in own.items():
            if all(close_to(x, variant(c, key, theirs)) for c, x in cs):
                tail = " (and another mistake: see the other part)" if theirs else ""
                return CheckResult(name, 0, 1, f"on {desc}: {why}{tail}")
    return CheckResult(name, 0, 1, first_difference("the advantage", [c for c, _ in cs], [x for _, x in cs], refs,
                                                     extra="λ"))


def check_pg_gae(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """gae_advantages with λ = 0 (the TD errors) and λ > 0 (the recursion) on batches of concatenated episodes."""
    names = PG_GAE.part_names(v)
    calls = gae_calls(v)
    out, why = run_unit(ctx, PG_GAE, v, call_arrays(calls), schema=vector_schema(calls),
                        cfg=PG_CFG)
    if out is None:
        return [CheckResult(n, 0, 1, why) for n in names]
    outs = split_calls(out["out"], calls)
    changed = np.asarray(out["changed"]).astype(bool)
    return [_gae_part(names[0], calls, outs, 0, changed), _gae_part(names[1], calls, outs, 1, changed)]


PG_GAE = CheckSpec(
    key="pg_gae", agent="pg", run=check_pg_gae, methods=("gae_advantages",),
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
