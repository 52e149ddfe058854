"""The crafted batches of concatenated episodes the reward-to-go and GAE checks call the student's method on
(terminations, truncations, a batch cut at the end, one-step episodes), and what their answers share: the arrays
sent, the schema, where a first difference lies."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.answers import Field
from grader.context import Variant

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


def random_episodes(rng: np.random.Generator, total: int, last_terminates: bool = False,
                    ) -> tuple[np.ndarray, np.ndarray]:
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


def random_rewards(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.normal(0.3, 1.0, n).astype(np.float32)


def rtg_calls(v: Variant) -> list[Call]:
    """Part 0 (values): single terminated episodes without a critic (next_values 0), γ random, 0, 1.
    Part 1 (boundaries): concatenated episodes with a critic's next values, γ random, 0.5, 1, 0."""
    rng = np.random.default_rng(v.seed)
    calls = []
    for gamma, n in ((float(rng.uniform(0.8, 0.97)), max(6, v.batch // 3)), (0.0, 5), (1.0, 7)):
        term, ends = _single(n)
        z = np.zeros(n, np.float32)
        calls.append(Call(random_rewards(rng, n), term, ends, z, z, gamma, 0.0, 0))
    for gamma in (float(rng.uniform(0.85, 0.97)), 0.5, 1.0, 0.0):
        term, ends = random_episodes(rng, v.batch, last_terminates=gamma == 0.5)
        _, nv = _values_like(rng, ends, consistent=False)
        calls.append(Call(random_rewards(rng, len(ends)), term, ends, nv, np.zeros_like(nv), gamma, 0.0, 1))
    return calls


def gae_calls(v: Variant) -> list[Call]:
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
        term, ends = random_episodes(rng, v.batch, last_terminates=i == 1)
        values, nv = _values_like(rng, ends, consistent)
        calls.append(Call(random_rewards(rng, len(ends)), term, ends, nv, values, gamma, lam, part))
    return calls


def call_arrays(calls: list[Call]) -> dict[str, np.ndarray]:
    return {"rewards": np.concatenate([c.rewards for c in calls]),
            "terminated": np.concatenate([c.terminated for c in calls]),
            "ends": np.concatenate([c.ends for c in calls]),
            "next_values": np.concatenate([c.next_values for c in calls]),
            "values": np.concatenate([c.values for c in calls]),
            "sizes": np.array([len(c.rewards) for c in calls], np.int64),
            "gammas": np.array([c.gamma for c in calls], np.float64),
            "lambdas": np.array([c.lam for c in calls], np.float64)}


def vector_schema(calls: list[Call]) -> dict[str, Field]:
    """What grader/child/jobs_pg.py's job_pg_rtg / job_pg_gae write."""
    return {"out": Field((sum(len(c.rewards) for c in calls),), "f"), "changed": Field((len(calls),), "b")}


def split_calls(out: np.ndarray, calls: list[Call]) -> list[np.ndarray]:
    cuts = np.cumsum([0] + [len(c.rewards) for c in calls])
    return [np.asarray(out[a:b], np.float64) for a, b in zip(cuts[:-1], cuts[1:])]


def close_to(x: np.ndarray, ref: np.ndarray) -> bool:
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


def first_difference(name: str, calls: list[Call], outs: list[np.ndarray], refs: list[np.ndarray],
                      extra: str = "") -> str:
    """The first call and step where the student's result differs from the reference, in words."""
    for k, (c, x, r) in enumerate(zip(calls, outs, refs)):
        if not close_to(x, r):
            bad = ~np.isclose(x, r, rtol=1e-4, atol=1e-4 * max(1.0, float(np.max(np.abs(r)))))
            t = int(np.argmax(bad))
            lam = f", λ = {c.lam:g}" if extra else ""
            return (f"{name} differs from the reference on a batch of {len(c.rewards)} steps (γ = {c.gamma:g}{lam}): "
                    f"at step {t}, {_where(c, t)}, got {x[t]:.5f}, expected {r[t]:.5f}")
    return ""


def changed_inputs(changed: np.ndarray, method: str) -> str:
    if not changed.any():
        return ""
    return (f"{method} changed its input arrays in place (the batch's own arrays: estimate_advantages uses them "
            "again afterwards): compute into a new array")
