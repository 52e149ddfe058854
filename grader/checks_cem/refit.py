"""The check of ``refit`` on crafted populations: the returned mean is the K best candidates' mean, the returned std
their std (÷K) floored at ``min_std``, each judged apart and each mistake named."""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from grader.answers import Field
from grader.checks_cem.sample import close_to, linear_params, same_draws
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit


# ---------------------------------------------------------------------------------------------- refit
@dataclass
class RefitCase:
    """One refit call: a population (n, P) with its scores (n,), elite_count k, min_std, and the agent's old
    self.mean, self.std (P,)."""

    cands: np.ndarray
    scores: np.ndarray
    k: int
    min_std: float
    old_mean: np.ndarray
    old_std: np.ndarray
    ties: bool = False

    @property
    def n(self) -> int:
        return len(self.scores)

    def label(self, i: int, total: int) -> str:
        tie = ", scores with ties away from the K-th" if self.ties else ""
        return f"population {i + 1} of {total} (N = {self.n}, K = {self.k}, min_std = {self.min_std:g}{tie})"


def best_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores (ties broken by position; the cases have none at the boundary)."""
    return np.argsort(-scores, kind="stable")[:k]


def reference_refit(cands: np.ndarray, scores: np.ndarray, k: int, min_std: float) -> tuple[np.ndarray, np.ndarray]:
    """The K best rows' mean and their std (÷K) floored at min_std, both (P,)."""
    elites = cands[best_rows(scores, k)]
    return elites.mean(axis=0), np.maximum(elites.std(axis=0), min_std)


def _population(rng: np.random.Generator, n: int, p: int) -> np.ndarray:
    """n candidates (n, P): per-coordinate spreads in [0.3, 3] (variance ≠ std), a quarter of the coordinates with a
    spread ≈ 1e-3 (their elite std falls below any floor)."""
    centers = rng.normal(0.0, 2.0, p)
    scales = np.exp(rng.uniform(np.log(0.3), np.log(3.0), p))
    tiny = rng.permutation(p) < max(1, p // 4)
    scales[tiny] = rng.uniform(5e-4, 2e-3, int(tiny.sum()))
    return centers + scales * rng.standard_normal((n, p))


def _distinct_scores(rng: np.random.Generator, n: int) -> np.ndarray:
    """n scores, all different (gaps ≥ 1.4, negative and positive), in random order."""
    return (rng.permutation(n) + rng.uniform(0.1, 0.9, n)) * 7.0 - 3.5 * n


def _tied_scores(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Scores whose three best are equal and whose three worst are equal; the K-1, K and K+1 best are unique sets."""
    ranks = np.arange(n, dtype=np.float64)       # 0 best
    ranks[:3] = 0
    ranks[n - 3:] = n - 3
    if k < 5 or n - k < 5:
        raise ValueError(f"a tied population needs K >= 5 and N - K >= 5 (N = {n}, K = {k}): use a batch >= 10")
    return (-ranks * 5.0 + 20.0)[rng.permutation(n)]


def refit_cases(v: Variant, p: int) -> list[RefitCase]:
    """Three populations of the variant: K = N/4 (distinct scores), K = 1 (the floor everywhere), K = N'/3 with ties
    among the best three and the worst three (any tie-breaking is right). K and min_std differ from the defaults."""
    rng = np.random.default_rng(v.seed)
    n = v.batch
    specs = [(n, max(3, n // 4), 0.05, False), (n, 1, 0.2, False), (n + 5, (n + 5) // 3, 0.03, True)]
    cases = []
    for size, k, min_std, ties in specs:
        cands = _population(rng, size, p)
        elite_center = cands.mean(axis=0)
        old_mean = elite_center + rng.choice([-1.0, 1.0], p) * rng.uniform(2.0, 4.0, p)
        old_std = rng.uniform(0.5, 1.5, p)
        scores = _tied_scores(rng, size, k) if ties else _distinct_scores(rng, size)
        cases.append(RefitCase(cands, scores, k, min_std, old_mean, old_std, ties))
    return cases


def check_cem_refit(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """refit on three crafted populations, each on a fresh agent with elite_count and min_std from its config."""
    elite_name, std_name = CEM_REFIT.part_names(v)
    p = linear_params(v.env)
    cases = refit_cases(v, p)
    c = len(cases)
    arrays = {"candidates": np.concatenate([x.cands for x in cases]),
              "scores": np.concatenate([x.scores for x in cases]),
              "old_mean": np.stack([x.old_mean for x in cases]), "old_std": np.stack([x.old_std for x in cases])}
    schema = {"code": Field((c,), "iu"), "sizes": Field((c, 2), "iu"), "mean": Field((c, p), "f"),
              "std": Field((c, p), "f"), "self_mean": Field((c, p), "f"), "self_std": Field((c, p), "f")}
    out, why = run_unit(ctx, CEM_REFIT, v, arrays, schema=schema,
                        cases=[[x.n, x.k, x.min_std] for x in cases])
    if out is None:
        return [CheckResult(elite_name, 0, 1, why), CheckResult(std_name, 0, 1, why)]
    answers = [RefitAnswer(int(out["code"][i]), tuple(int(s) for s in out["sizes"][i]), out["mean"][i],
                           out["std"][i], out["self_mean"][i], out["self_std"][i]) for i in range(c)]
    shared = _refit_return_problem(cases, answers, p)
    if shared:
        return [CheckResult(elite_name, 0, 1, shared), CheckResult(std_name, 0, 1, shared)]
    return [_refit_elite_part(elite_name, cases, answers), _refit_std_part(std_name, cases, answers)]


CEM_REFIT = CheckSpec(
    key="cem_refit", agent="cem", run=check_cem_refit, methods=("refit",), batch_in_name=True,
    public=(Variant(seed=302, env="hopper", batch=24),),
    parts=(
        Part("CEM refit: elites", 5.0,
             '`refit(candidates, scores)` on 3 crafted populations (K = N/4; K = 1; K = N/3 with ties only among the '
             'best three and the worst three, so any tie-breaking is right), `elite_count` and `min_std` set in the '
             'config (not the defaults): the returned mean is the mean of the K highest-scoring candidates. Feedback '
             'names the lowest scores as elites, K − 1 or K + 1 (or any other number of) elites, the first K rows, '
             'the mean of all candidates, self.mean/self.std assigned instead of returned, (std, mean) swapped'),
        Part("CEM refit: std and floor", 5.0,
             'the returned std is the elites\' per-coordinate std around their mean (÷K), raised to at least '
             '`min_std` (some coordinates\' elite std lies below it; with K = 1 all do), judged on the elites the '
             'returned mean averages. Feedback names ddof = 1 (÷(K − 1)), the variance, a missing floor, the floor '
             'added instead of np.maximum, np.minimum, another floor than self.cfg.min_std, the std around the old '
             'self.mean, the std of all candidates')),
    handout=("CEM refit",
             "on crafted populations: the returned mean is the mean of the K best candidates; the returned std their "
             "standard deviation (÷K), floored at min_std"))


@dataclass
class RefitAnswer:
    code: int                      # 0 returned a pair, 1 None, 2 something else
    sizes: tuple[int, int]         # elements of the returned mean and std (-1: not a pair)
    mean: np.ndarray               # (P,) NaN-padded
    std: np.ndarray
    self_mean: np.ndarray          # self.mean, self.std after the call
    self_std: np.ndarray


def _refit_return_problem(cases: list[RefitCase], answers: list[RefitAnswer], p: int) -> str:
    """What costs both parts: the placeholder, no pair returned, the wrong sizes, (std, mean) swapped."""
    if all(a.code == 0 and same_draws(a.mean, c.old_mean) and same_draws(a.std, c.old_std)
           for c, a in zip(cases, answers)):
        return "refit returns self.mean and self.std unchanged (the placeholder): fill in the TODO block"
    for i, (c, a) in enumerate(zip(cases, answers, strict=True)):
        ref_mean, ref_std = reference_refit(c.cands, c.scores, c.k, c.min_std)
        where = f" (on {c.label(i, len(cases))})"
        if a.code != 0:
            what = "None" if a.code == 1 else "something that is not a pair"
            if close_to(a.self_mean, ref_mean) or close_to(a.self_std, ref_std):
                return (f"refit returns {what} and assigns self.mean / self.std itself: return the pair (mean, std); "
                        "the framework assigns it" + where)
            return f"refit returns {what}, not the pair (mean, std)" + where
        if a.sizes != (p, p):
            return (f"refit returned a mean of {a.sizes[0]} and a std of {a.sizes[1]} numbers; both must have shape "
                    f"(num_params,) = ({p},)" + where)
        if close_to(a.mean, ref_std) and close_to(a.std, ref_mean):
            return "refit returns (std, mean): the framework expects (mean, std)" + where
    return ""


def _elite_sets(c: RefitCase) -> list[tuple[np.ndarray, str]]:
    """Named sets of rows a refit may average: the right one first, then the usual wrong ones."""
    order = best_rows(c.scores, c.n)
    k = c.k
    sets = [(order[:k], ""),
            (order[::-1][:k], f"the mean of the K = {k} lowest-scoring candidates: higher scores are better, keep the "
                              "K highest")]
    for j in range(1, c.n + 1):
        if j == k:
            continue
        if j == c.n:
            why = "the mean of all candidates, not of the K best (K = self.cfg.elite_count)"
        elif j in (k - 1, k + 1):
            why = (f"the mean of the {j} best candidates, not of K = self.cfg.elite_count = {k} (off by one: a slice "
                   "such as argsort(scores)[-K:] takes exactly K)")
        else:
            why = (f"the mean of the {j} best candidates, not of K = self.cfg.elite_count = {k} (use the config's "
                   "value, not a constant)")
        sets.append((order[:j], why))
        if j < c.n:
            sets.append((order[::-1][:j], f"the mean of the {j} lowest-scoring candidates: higher scores are better, "
                                          f"keep the K = {k} highest"))
    sets.append((np.arange(k), f"the mean of the first K = {k} candidates as they come, not of the K best: sort by "
                               "score"))
    sets.append((np.arange(c.n - k, c.n), f"the mean of the last K = {k} candidates as they come, not of the K best: "
                                          "sort by score"))
    return sets


def _matching_set(c: RefitCase, mean: np.ndarray) -> tuple[np.ndarray, str] | None:
    """The named set of rows whose mean the returned mean is, or None."""
    return next(((rows, why) for rows, why in _elite_sets(c) if close_to(mean, c.cands[rows].mean(axis=0))), None)


def averaged_rows(c: RefitCase, mean: np.ndarray) -> np.ndarray | None:
    """The rows whose plain mean ``mean`` (P,) is, whatever rule chose them, or None (not the mean of a set of rows).

    ``mean`` = Σᵢ wᵢ·candidates[i] with w = 1/j on j rows and 0 elsewhere; with P ≥ N (the variants' linear policies)
    the candidates are linearly independent, so least squares finds w, and the set is kept only if its mean is
    ``mean``."""
    if mean.shape != c.cands.shape[1:] or not np.all(np.isfinite(mean)):
        return None
    w = np.linalg.lstsq(c.cands.T, mean, rcond=None)[0]
    if w.max() <= 0:
        return None
    rows = np.flatnonzero(w > w.max() / 2)
    return rows if close_to(c.cands[rows].mean(axis=0), mean) else None


def _rows_text(c: RefitCase, rows: np.ndarray) -> str:
    """Which ranks (1 = highest score) a set of rows holds and which of the K best it leaves out."""
    rank = np.empty(c.n, dtype=int)
    rank[best_rows(c.scores, c.n)] = np.arange(1, c.n + 1)
    taken = sorted(int(r) for r in rank[rows])
    missed = sorted(set(range(1, c.k + 1)) - set(taken))
    what = "the candidate" if len(rows) == 1 else f"the {len(rows)} candidates"
    return (f"the mean of {what} ranked {_ranks(taken)} by score (1 = highest), not of the K = {c.k} best"
            + (f" (it leaves out {_ranks(missed, 'rank')})" if missed else "") + ": keep the K highest scores")


def _ranks(ranks: list[int], word: str = "", shown: int = 6) -> str:
    """``1, 2, 3`` (with ``word``: ``ranks 1, 2, 3``, ``rank 4``), the first ``shown`` and a count."""
    head = f"{word}{'s' if word and len(ranks) > 1 else ''} " if word else ""
    return head + ", ".join(map(str, ranks[:shown])) + (f", … ({len(ranks)} in all)" if len(ranks) > shown else "")


def _refit_elite_part(name: str, cases: list[RefitCase], answers: list[RefitAnswer]) -> CheckResult:
    for i, (c, a) in enumerate(zip(cases, answers, strict=True)):
        ref_mean = c.cands[best_rows(c.scores, c.k)].mean(axis=0)
        if close_to(a.mean, ref_mean):
            continue
        where = f" (on {c.label(i, len(cases))})"
        if not np.all(np.isfinite(a.mean)):
            return CheckResult(name, 0, 1, "the returned mean contains NaN or infinite values (an empty set of elites?)"
                                           + where)
        match = _matching_set(c, a.mean)
        if match is not None:
            return CheckResult(name, 0, 1, f"the returned mean is {match[1]}" + where)
        rows = averaged_rows(c, a.mean)
        if rows is not None:
            return CheckResult(name, 0, 1, f"the returned mean is {_rows_text(c, rows)}" + where)
        if close_to(a.mean, c.old_mean):
            return CheckResult(name, 0, 1, "the returned mean is the old self.mean: return the elites' mean" + where)
        j = int(np.argmax(np.abs(a.mean - ref_mean)))
        return CheckResult(name, 0, 1, f"the returned mean is not the mean of the K best candidates (coordinate {j}: "
                                       f"{a.mean[j]:.5g}, expected {ref_mean[j]:.5g})" + where)
    return CheckResult(name, 1, 1, f"the returned mean is the mean of the K best candidates on all {len(cases)} "
                                   "populations (ties broken either way)")


def _std_variants(elites: np.ndarray, cands: np.ndarray, old_mean: np.ndarray, min_std: float,
                  ) -> list[tuple[np.ndarray, list[str]]]:
    """Every combination of the usual std mistakes on ``elites`` (k, P), with the mistakes' names (none: right)."""
    k = len(elites)
    out = []
    for rows, around, ddof, power, floor in product(("elites", "all"), ("own", "old"), (0, 1), ("std", "var"),
                                                    ("max", "none", "add", "min")):
        x = elites if rows == "elites" else cands
        center = x.mean(axis=0) if around == "own" else old_mean
        denom = len(x) - ddof
        if denom <= 0:
            continue
        var = ((x - center) ** 2).sum(axis=0) / denom
        raw = np.sqrt(var) if power == "std" else var
        value = {"max": np.maximum(raw, min_std), "none": raw, "add": raw + min_std,
                 "min": np.minimum(raw, min_std)}[floor]
        names = []
        if rows == "all":
            names.append("it is the spread of all candidates, not of the elites")
        if around == "old":
            names.append("it is taken around the old self.mean instead of the elites' new mean")
        if ddof:
            names.append(f"it divides by K − 1 = {k - 1} (ddof=1) instead of K = {k}: use np.std's default ddof=0")
        if power == "var":
            names.append("it is the variance, not the standard deviation (take the square root)")
        names += {"max": [], "none": [f"the floor min_std = {min_std:g} is missing (np.maximum(std, "
                                      "self.cfg.min_std))"],
                  "add": ["min_std is added to the std instead of being a floor: np.maximum(std, min_std), not "
                          "std + min_std"],
                  "min": ["np.minimum caps the std at min_std instead of flooring it: use np.maximum"]}[floor]
        out.append((value, names))
    return out


def _floor_value(std: np.ndarray, raw: np.ndarray) -> float | None:
    """The floor c if ``std`` = max(raw, c) for one c (some coordinates raised), else None."""
    raised = std > raw * (1 + 1e-4) + 1e-6
    if not raised.any():
        return None
    c = float(np.median(std[raised]))
    return c if close_to(std, np.maximum(raw, c)) else None


def _refit_std_part(name: str, cases: list[RefitCase], answers: list[RefitAnswer]) -> CheckResult:
    """The std of the rows the returned mean averages (the right elites unless the elites part names others), so
    that a wrong choice of elites costs only the elites part."""
    judged_other = False
    for i, (c, a) in enumerate(zip(cases, answers, strict=True)):
        right = best_rows(c.scores, c.k)
        match = _matching_set(c, a.mean)
        rows = match[0] if match is not None else averaged_rows(c, a.mean)
        if rows is None or close_to(a.mean, c.cands[right].mean(axis=0)):
            rows = right
        judged_other = judged_other or set(rows.tolist()) != set(right.tolist())
        elites = c.cands[rows]
        want = np.maximum(elites.std(axis=0), c.min_std)
        if close_to(a.std, want):
            continue
        where = f" (on {c.label(i, len(cases))})"
        if not np.all(np.isfinite(a.std)):
            return CheckResult(name, 0, 1, "the returned std contains NaN or infinite values (K − 1 = 0 with ddof=1?)"
                                           + where)
        for value, names in _std_variants(elites, c.cands, c.old_mean, c.min_std):
            if names and close_to(a.std, value):
                return CheckResult(name, 0, 1, "the returned std is wrong: " + "; ".join(names) + where)
        c_floor = _floor_value(a.std, elites.std(axis=0))
        if c_floor is not None:
            return CheckResult(name, 0, 1, f"the std is floored at {c_floor:g}, not at self.cfg.min_std = "
                                           f"{c.min_std:g}" + where)
        if close_to(a.std, c.old_std):
            return CheckResult(name, 0, 1, "the returned std is the old self.std: return the elites' std" + where)
        j = int(np.argmax(np.abs(a.std - want)))
        return CheckResult(name, 0, 1, f"the returned std is not the elites' standard deviation floored at min_std "
                                       f"(coordinate {j}: {a.std[j]:.5g}, expected {want[j]:.5g})" + where)
    note = (" (for the candidates your mean averages: the elites part says which rows those should be)"
            if judged_other else "")
    return CheckResult(name, 1, 1, f"the returned std is the elites' standard deviation (÷K) floored at min_std on all "
                                   f"{len(cases)} populations{note}")
