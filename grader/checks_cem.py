"""The CEM unit checks: ``sample_candidates`` (n independent draws of N(μ, diag(σ²)), every random number from
``self.rng``), ``refit`` (mean and σ of the K best candidates, σ divided by K and floored at ``min_std``, returned) and
``search_iteration`` (a population sampled, each candidate scored once in order, the scores returned, the refit
stored), each mistake named.

The parent knows every input: the search distribution, the agents' generator seeds, the crafted populations and the
recorder's score function, so it computes the reference itself (the reference draw is
``mean + std * rng.standard_normal((n, P))`` with ``rng = np.random.default_rng(seed)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from envs.builder import env_dims, make_env, resolve_env_config
from grader.answers import Field
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, have_solutions, run_unit

SIGMAS = 5.0                 # statistical tolerance of the sampling check, in standard errors
SMALL_CALLS = (1, 7)         # the small sample_candidates calls of every run (the large one is the variant's batch)


def linear_params(env: str) -> int:
    """P = (obs_dim + 1) · act_dim: the parameters of the linear policy (``hidden_sizes: []``) on ``env``."""
    obs_dim, act_dim = env_dims(make_env(resolve_env_config(env)))
    return (obs_dim + 1) * act_dim


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """The same draws (NaN where both calls returned too few values)."""
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float32 rounding (a student may compute in float32 or with torch)."""
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and bool(np.allclose(a, b, rtol=1e-4, atol=1e-5))


# ---------------------------------------------------------------------------------------------- sample_candidates
def _sample_inputs(v: Variant, p: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, list[int]]]]:
    """The search distribution (μ far from 0 in every coordinate; σ in [0.1, 0.45] or [2.2, 4], so σ², √σ and 1
    differ from σ by ≥ 45% everywhere) and the runs (self.rng seed, global seed, sizes): run 1 repeats run 0's small
    calls with other global seeds, run 2 with another self.rng seed and run 0's global seed."""
    rng = np.random.default_rng(v.seed)
    mean = rng.choice([-1.0, 1.0], p) * rng.uniform(0.8, 3.0, p)
    low = rng.permutation(p) < (p + 1) // 2
    std = np.where(low, rng.uniform(0.1, 0.45, p), rng.uniform(2.2, 4.0, p))
    s1, s2, g1, g2 = (int(x) for x in rng.choice(2**31 - 1, 4, replace=False))
    small = list(SMALL_CALLS)
    return mean, std, [(s1, g1, [*small, v.batch]), (s1, g2, small), (s2, g1, small)]


def check_cem_sample(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """sample_candidates on fresh agents with known self.mean, self.std and self.rng: the distribution of a large
    call (mean, std, Gaussian, independent coordinates and candidates) and its randomness (self.rng only)."""
    dist_name, rng_name = CEM_SAMPLE.part_names(v)
    p = linear_params(v.env)
    mean, std, runs = _sample_inputs(v, p)
    sizes = [n for *_, ns in runs for n in ns]
    schema = {"values": Field((sum(sizes) * p,), "f"), "shapes": Field((len(sizes), 3), "iu"),
              "num_params": Field((1,), "iu")}
    out, why = run_unit(ctx, CEM_SAMPLE.agent, CEM_SAMPLE.job, v, {"mean": mean, "std": std}, schema=schema,
                        runs=runs)
    if out is None:
        return [CheckResult(dist_name, 0, 1, why), CheckResult(rng_name, 0, 1, why)]
    if int(out["num_params"][0]) != p:
        raise ValueError("the agent's policy has another number of parameters than the grader's")
    cuts = np.cumsum([0, *(n * p for n in sizes)])
    calls = [np.asarray(out["values"][a:b], np.float64) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    if np.all(np.concatenate(calls) == 0):
        why = "sample_candidates returns the placeholder zeros: fill in the TODO block"
        return [CheckResult(dist_name, 0, 1, why), CheckResult(rng_name, 0, 1, why)]
    shapes = np.asarray(out["shapes"], np.int64)
    return [_sample_distribution_part(dist_name, calls, shapes, sizes, mean, std),
            _sample_rng_part(rng_name, calls, runs)]


CEM_SAMPLE = CheckSpec(
    key="cem_sample", agent="cem", run=check_cem_sample, job="cem_sample", methods=("sample_candidates",),
    batch_in_name=True, public=(Variant(seed=301, env="hopper", batch=4000),),
    parts=(
        Part("CEM sample: distribution", 3.0,
             '`sample_candidates(n)` with known `self.mean` (far from 0) and `self.std` (some σ < 0.45, some > 2.2) '
             'for n = 1, 7 and a large n: shape (n, num_params) at every call; over the large call each coordinate\'s '
             'sample mean and std lie within 5 standard errors of μ and σ, the draws are Gaussian (kurtosis ≈ 3), '
             'coordinates uncorrelated, no candidate repeated. Feedback names σ² or √σ as the scale, the mean or σ '
             'left out, one ε shared by all candidates or all coordinates, uniform noise, a wrong shape'),
        Part("CEM sample: self.rng", 2.0,
             'every random number comes from `self.rng`: two fresh agents with the same `self.rng` seed give identical '
             'candidates even with the global generators (random, NumPy, torch) seeded differently; another '
             '`self.rng` seed gives other candidates; consecutive calls give new candidates. Feedback names the '
             'global NumPy/torch generator and a generator created inside the method')),
    handout=("CEM sampling",
             "over many draws with a known μ and σ: candidates of shape (n, num_params), per-coordinate mean μ and "
             "standard deviation σ, Gaussian and independent; every random number from self.rng"))


def _sample_distribution_part(name: str, calls: list[np.ndarray], shapes: np.ndarray, sizes: list[int],
                              mean: np.ndarray, std: np.ndarray) -> CheckResult:
    """Shapes of every call; statistics of the large call (run 0's last) against N(mean, diag(std²))."""
    p = len(mean)
    for (ndim, d0, d1), n in zip(shapes, sizes, strict=True):
        if (ndim, d0, d1) != (2, n, p):
            got = "(" + ", ".join(str(d) for d in (d0, d1)[:max(ndim, 0)]) + ("," if ndim == 1 else "") + ")"
            if ndim > 2:
                got = f"a {ndim}-dimensional array"
            hint = (": a single vector, one ε for all candidates? draw ε of shape (n, self.num_params)"
                    if ndim == 1 and n > 1 else "")
            return CheckResult(name, 0, 1, f"sample_candidates({n}) returned shape {got}, expected ({n}, {p}) "
                                           f"(n, self.num_params){hint}")
    n = sizes[len(SMALL_CALLS)]
    x = calls[len(SMALL_CALLS)].reshape(n, p)
    if not all(np.all(np.isfinite(c)) for c in calls):
        return CheckResult(name, 0, 1, "sample_candidates returned NaN or infinite values")
    problem = _distribution_problem(x, mean, std)
    if problem:
        return CheckResult(name, 0, 1, f"over sample_candidates({n}) ({n} candidates of {p} parameters): {problem}")
    return CheckResult(name, 1, 1, f"shape (n, {p}) at every call; over {n} candidates each coordinate's mean and std "
                                   f"match self.mean and self.std (within {SIGMAS:g} standard errors), Gaussian, "
                                   "independent coordinates and candidates")


def _distribution_problem(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> str:
    """'' if the rows of ``x`` (n, P) look like independent draws of N(mean, diag(std²)), else the mistake."""
    n, p = x.shape
    if np.ptp(x, axis=0).max() < 1e-12:
        return ("every candidate is the same vector: one ε shared by all candidates; draw a fresh ε for each "
                "(shape (n, self.num_params))")
    m_hat, s_hat = x.mean(axis=0), x.std(axis=0)
    if np.min(s_hat) < 1e-12:
        j = int(np.argmin(s_hat))
        return f"coordinate {j} never varies (std 0; self.std[{j}] = {std[j]:.3g})"
    zz = (x - m_hat) / s_hat
    kurt = float(np.mean(zz ** 4))
    if abs(kurt - 3.0) > 0.6:
        shape = "flat, like uniform noise (rng.random / rng.uniform)" if kurt < 3 else "heavy-tailed"
        return (f"the draws are not Gaussian (kurtosis {kurt:.2f}, a Gaussian's is 3: {shape}); draw ε with "
                "self.rng.standard_normal")
    problems = [w for w in (_mean_problem(m_hat, mean, s_hat, n), _std_problem(s_hat, std, n)) if w]
    if problems:
        return "; ".join(problems)
    return _independence_problem(x, zz)


def _mean_problem(m_hat: np.ndarray, mean: np.ndarray, s_hat: np.ndarray, n: int) -> str:
    """The sample mean against self.mean, in standard errors of the sample's own spread (a wrong scale is the std's
    mistake only)."""
    se = s_hat / np.sqrt(n)
    z = (m_hat - mean) / se
    if np.max(np.abs(z)) <= SIGMAS:
        return ""
    if np.max(np.abs(m_hat / se)) <= SIGMAS:
        return "the candidates are centred on 0, not on self.mean: θ_i = μ + σ ⊙ ε_i (the mean is left out)"
    if np.max(np.abs((m_hat + mean) / se)) <= SIGMAS:
        return "the candidates are centred on −self.mean: θ_i = μ + σ ⊙ ε_i"
    j = int(np.argmax(np.abs(z)))
    return (f"the per-coordinate mean differs from self.mean (coordinate {j}: {m_hat[j]:.4g}, self.mean {mean[j]:.4g}, "
            f"{abs(z[j]):.0f} standard errors off)")


def _std_problem(s_hat: np.ndarray, std: np.ndarray, n: int) -> str:
    rel = 1.0 / np.sqrt(2.0 * n)          # relative standard error of a sample std

    def matches(scale: np.ndarray) -> bool:
        return bool(np.max(np.abs(s_hat / scale - 1.0)) <= SIGMAS * rel)

    if matches(std):
        return ""
    named = ((std ** 2, "the scale is σ² (self.std squared, the variance): self.std is already the standard "
                        "deviation, θ_i = μ + σ ⊙ ε_i"),
             (np.sqrt(std), "the scale is √σ (the square root of self.std): self.std is already the standard "
                            "deviation, θ_i = μ + σ ⊙ ε_i"),
             (np.ones_like(std), "the spread is 1 in every coordinate: self.std is left out (θ_i = μ + σ ⊙ ε_i)"))
    for scale, why in named:
        if matches(scale):
            return why
    j = int(np.argmax(np.abs(s_hat / std - 1.0)))
    return (f"the per-coordinate standard deviation differs from self.std (coordinate {j}: {s_hat[j]:.4g}, self.std "
            f"{std[j]:.4g})")


def _independence_problem(x: np.ndarray, zz: np.ndarray) -> str:
    """'' if the coordinates are uncorrelated and no candidate repeats or follows the previous one."""
    n, p = x.shape
    if p > 1:
        corr = zz.T @ zz / n
        np.fill_diagonal(corr, 0.0)
        i, j = np.unravel_index(int(np.argmax(np.abs(corr))), corr.shape)
        pairs = p * (p - 1) / 2       # about max(6, 2 + √(2 ln pairs)) standard errors: no right sampler fails
        if abs(corr[i, j]) > max(6.0, 2.0 + np.sqrt(2.0 * np.log(pairs))) / np.sqrt(n):
            if np.min(np.abs(corr + np.eye(p))) > 0.99:
                return ("every coordinate of a candidate uses the same ε (the coordinates are perfectly correlated): "
                        "draw self.num_params independent values per candidate (shape (n, self.num_params))")
            return (f"coordinates {i} and {j} are correlated ({corr[i, j]:.2f}; independent draws give ≈ 0): "
                    "draw an independent value for every coordinate")
    repeats = n - len(np.unique(x, axis=0))
    if repeats:
        return (f"{repeats} of the {n} candidates are copies of others: draw a fresh ε for every candidate "
                "(shape (n, self.num_params))")
    lag = float(np.mean(zz[1:] * zz[:-1]))
    if abs(lag) > 6.0 / np.sqrt(n):
        return (f"consecutive candidates are correlated ({lag:.2f}; independent draws give ≈ 0): each candidate "
                "gets its own ε, not one built from the previous candidate")
    return ""


def _sample_rng_part(name: str, calls: list[np.ndarray], runs: list[tuple[int, int, list[int]]]) -> CheckResult:
    """Run 0's small calls against run 1's (same self.rng seed, other globals) and run 2's (other self.rng seed)."""
    k = len(SMALL_CALLS)
    first = calls[:k]
    same_seed = calls[len(runs[0][2]):len(runs[0][2]) + k]
    other_seed = calls[len(runs[0][2]) + k:len(runs[0][2]) + 2 * k]
    p = len(calls[0])
    repeated = _same(first[0], first[1][:p])
    reproducible = all(_same(a, b) for a, b in zip(first, same_seed, strict=True))
    follows_rng = not all(_same(a, b) for a, b in zip(first, other_seed, strict=True))
    if repeated and reproducible and not follows_rng:
        return CheckResult(name, 0, 1, "every call returns the same candidates whatever self.rng is: a generator is "
                                       "created (with a fixed seed) inside sample_candidates; draw from self.rng, "
                                       "which continues from call to call")
    if not reproducible and follows_rng:
        return CheckResult(name, 0, 1, "two agents with the same self.rng but differently seeded global generators "
                                       "gave different candidates: some random numbers come from a global generator "
                                       "(np.random.*, torch.randn, random); draw every one from self.rng")
    if not reproducible:
        return CheckResult(name, 0, 1, "the candidates do not come from self.rng: they change with the global "
                                       "generators' seed (np.random.*, torch.randn, random) and not with self.rng's; "
                                       "draw every random number from self.rng")
    if not follows_rng:
        return CheckResult(name, 0, 1, "another self.rng seed gave the same candidates: they do not come from "
                                       "self.rng (a generator of your own with a fixed seed?); draw them from self.rng")
    if repeated:
        return CheckResult(name, 0, 1, "consecutive calls return the same first candidate: the generator restarts at "
                                       "each call; draw from self.rng, which continues from call to call")
    return CheckResult(name, 1, 1, "the candidates come from self.rng only: the same seed gives the same candidates "
                                   "whatever the global generators' seeds, another seed other candidates, and each "
                                   "call new ones")


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
    out, why = run_unit(ctx, CEM_REFIT.agent, CEM_REFIT.job, v, arrays, schema=schema,
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
    key="cem_refit", agent="cem", run=check_cem_refit, job="cem_refit", methods=("refit",), batch_in_name=True,
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
    if all(a.code == 0 and _same(a.mean, c.old_mean) and _same(a.std, c.old_std) for c, a in zip(cases, answers)):
        return "refit returns self.mean and self.std unchanged (the placeholder): fill in the TODO block"
    for i, (c, a) in enumerate(zip(cases, answers, strict=True)):
        ref_mean, ref_std = reference_refit(c.cands, c.scores, c.k, c.min_std)
        where = f" (on {c.label(i, len(cases))})"
        if a.code != 0:
            what = "None" if a.code == 1 else "something that is not a pair"
            if _close(a.self_mean, ref_mean) or _close(a.self_std, ref_std):
                return (f"refit returns {what} and assigns self.mean / self.std itself: return the pair (mean, std); "
                        "the framework assigns it" + where)
            return f"refit returns {what}, not the pair (mean, std)" + where
        if a.sizes != (p, p):
            return (f"refit returned a mean of {a.sizes[0]} and a std of {a.sizes[1]} numbers; both must have shape "
                    f"(num_params,) = ({p},)" + where)
        if _close(a.mean, ref_std) and _close(a.std, ref_mean):
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
    return next(((rows, why) for rows, why in _elite_sets(c) if _close(mean, c.cands[rows].mean(axis=0))), None)


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
    return rows if _close(c.cands[rows].mean(axis=0), mean) else None


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
        if _close(a.mean, ref_mean):
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
        if _close(a.mean, c.old_mean):
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
    return c if _close(std, np.maximum(raw, c)) else None


def _refit_std_part(name: str, cases: list[RefitCase], answers: list[RefitAnswer]) -> CheckResult:
    """The std of the rows the returned mean averages (the right elites unless the elites part names others), so
    that a wrong choice of elites costs only the elites part."""
    judged_other = False
    for i, (c, a) in enumerate(zip(cases, answers, strict=True)):
        right = best_rows(c.scores, c.k)
        match = _matching_set(c, a.mean)
        rows = match[0] if match is not None else averaged_rows(c, a.mean)
        if rows is None or _close(a.mean, c.cands[right].mean(axis=0)):
            rows = right
        judged_other = judged_other or set(rows.tolist()) != set(right.tolist())
        elites = c.cands[rows]
        want = np.maximum(elites.std(axis=0), c.min_std)
        if _close(a.std, want):
            continue
        where = f" (on {c.label(i, len(cases))})"
        if not np.all(np.isfinite(a.std)):
            return CheckResult(name, 0, 1, "the returned std contains NaN or infinite values (K − 1 = 0 with ddof=1?)"
                                           + where)
        for value, names in _std_variants(elites, c.cands, c.old_mean, c.min_std):
            if names and _close(a.std, value):
                return CheckResult(name, 0, 1, "the returned std is wrong: " + "; ".join(names) + where)
        c_floor = _floor_value(a.std, elites.std(axis=0))
        if c_floor is not None:
            return CheckResult(name, 0, 1, f"the std is floored at {c_floor:g}, not at self.cfg.min_std = "
                                           f"{c.min_std:g}" + where)
        if _close(a.std, c.old_std):
            return CheckResult(name, 0, 1, "the returned std is the old self.std: return the elites' std" + where)
        j = int(np.argmax(np.abs(a.std - want)))
        return CheckResult(name, 0, 1, f"the returned std is not the elites' standard deviation floored at min_std "
                                       f"(coordinate {j}: {a.std[j]:.5g}, expected {want[j]:.5g})" + where)
    note = (" (for the candidates your mean averages: the elites part says which rows those should be)"
            if judged_other else "")
    return CheckResult(name, 1, 1, f"the returned std is the elites' standard deviation (÷K) floored at min_std on all "
                                   f"{len(cases)} populations{note}")


# ---------------------------------------------------------------------------------------------- search_iteration
@dataclass
class IterationSetup:
    mean: np.ndarray          # (P,) self.mean before the iteration
    std: np.ndarray           # (P,) self.std before
    target: np.ndarray        # (P,) the recorder scores θ as −‖θ − target‖²
    rng_seed: int             # self.rng's seed
    n: int                    # population
    k: int                    # elite_count
    min_std: float

    def draw(self, skip: int = 0) -> np.ndarray:
        """The reference sample_candidates(n) after ``skip`` earlier ones of n: (n, P)."""
        rng = np.random.default_rng(self.rng_seed)
        for _ in range(skip):
            rng.standard_normal((self.n, len(self.mean)))
        return self.mean + self.std * rng.standard_normal((self.n, len(self.mean)))

    def score(self, cands: np.ndarray) -> np.ndarray:
        return -np.sum((cands - self.target) ** 2, axis=-1)


def iteration_setup(v: Variant, p: int) -> IterationSetup:
    rng = np.random.default_rng(v.seed)
    mean = rng.normal(0.0, 1.0, p)
    std = rng.uniform(0.2, 1.0, p)
    target = mean + rng.normal(0.0, 0.5, p)
    return IterationSetup(mean, std, target, int(rng.integers(1, 2**31 - 1)), v.batch, max(2, v.batch // 5),
                          float(rng.uniform(0.04, 0.08)))


def check_cem_iteration(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """One search_iteration (reference sample_candidates and refit) with evaluate_candidate replaced by a recorder."""
    eval_name, refit_name = CEM_ITERATION.part_names(v)
    p = linear_params(v.env)
    s = iteration_setup(v, p)
    cap = 4 * s.n + 4
    schema = {"evaluated": Field((None, p), "f", max_items=cap * p), "counts": Field((2,), "iu"),
              "ret_code": Field((1,), "iu"), "ret_shape": Field((3,), "iu"), "ret": Field((s.n,), "f"),
              "state_sizes": Field((2,), "iu"), "mean_after": Field((p,), "f"), "std_after": Field((p,), "f"),
              "sampled": Field((None, p), "f", max_items=cap * p), "sample_counts": Field((2,), "iu")}
    out, why = run_unit(ctx, CEM_ITERATION.agent, CEM_ITERATION.job, v,
                        {"mean": s.mean, "std": s.std, "target": s.target}, schema=schema,
                        tested=("search_iteration",), rng_seed=s.rng_seed,
                        cfg={"population": s.n, "elite_count": s.k, "min_std": s.min_std})
    if out is None:
        return [CheckResult(eval_name, 0, 1, why), CheckResult(refit_name, 0, 1, why)]
    evaluated = np.asarray(out["evaluated"], np.float64).reshape(-1, p)
    calls, bad = (int(x) for x in out["counts"])
    if calls == 0 and int(out["ret_code"][0]) == 1 and _same(out["mean_after"], s.mean):
        why = "search_iteration is the placeholder (no candidate evaluated, None returned): fill in the TODO block"
        return [CheckResult(eval_name, 0, 1, why), CheckResult(refit_name, 0, 1, why)]
    ref, second = drawn_populations(s, np.asarray(out["sampled"], np.float64).reshape(-1, p),
                                    int(out["sample_counts"][1]))
    return [_iteration_eval_part(eval_name, s, ref, evaluated, calls, bad, out),
            _iteration_refit_part(refit_name, s, ref, second, evaluated, out)]


def drawn_populations(s: IterationSetup, sampled: np.ndarray, first: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The population sampled (n, P) and the next draw of n (None: unknown). The grader's own draw where the
    reference sample_candidates ran in the child (the instructors' copy); in a student release, whose child runs the
    student's own sample_candidates (any correct style), the rows it returned (``sampled``, ``first`` rows in its
    first call), if its first call drew the population."""
    if have_solutions() or first != s.n or len(sampled) < s.n:
        return s.draw(), s.draw(skip=1)
    return sampled[:s.n], sampled[s.n:2 * s.n] if len(sampled) >= 2 * s.n else None


CEM_ITERATION = CheckSpec(
    key="cem_iteration", agent="cem", run=check_cem_iteration, job="cem_iteration", methods=("search_iteration",),
    batch_in_name=True, public=(Variant(seed=303, env="pendulum", batch=30),),
    parts=(
        Part("CEM iteration: evaluation and scores", 3.0,
             '`search_iteration()` once, with the reference `sample_candidates` and `refit`, `population`, '
             '`elite_count`, `min_std` set in the config and `evaluate_candidate` replaced by a recorder (a known '
             'function of θ, no environment): exactly `population` candidates evaluated, each once, in the order '
             'sampled from `self.rng`; the returned scores are theirs, in that order, shape (population,). Feedback '
             'names a population size from elsewhere, candidates evaluated twice or in another order, scores sorted '
             'or not returned'),
        Part("CEM iteration: distribution stored", 2.0,
             '`self.mean` and `self.std` afterwards are the refit of the evaluated candidates with their scores. '
             'Feedback names a refit that is not stored, one of another population (sampled twice), swapped')),
    handout=("CEM iteration",
             "one iteration with a recording evaluate_candidate: population candidates sampled, each evaluated once "
             "in order, their scores returned, self.mean and self.std set to the refit"))


def _iteration_eval_part(name: str, s: IterationSetup, ref: np.ndarray, evaluated: np.ndarray, calls: int,
                         bad: int, out: dict[str, np.ndarray]) -> CheckResult:
    p = ref.shape[1]
    if bad:
        return CheckResult(name, 0, 1, f"evaluate_candidate got an argument that is not one parameter vector of "
                                       f"{p} numbers ({bad} of {calls} calls): pass one candidate θ_i at a time")
    problem = _evaluation_problem(s, ref, evaluated, calls)
    if problem:
        return CheckResult(name, 0, 1, problem)
    return _scores_result(name, s, ref, out)


def _evaluation_problem(s: IterationSetup, ref: np.ndarray, evaluated: np.ndarray, calls: int) -> str:
    """'' if the population was evaluated exactly once each, in the order sampled."""
    n = s.n
    if calls == n and _same(evaluated, ref):
        return ""
    rows_of_ref = [int(np.argmin(np.abs(ref - e).max(axis=1))) if np.abs(ref - e).max(axis=1).min() < 1e-9 else -1
                   for e in evaluated]
    if calls == 2 * n and len(evaluated) == 2 * n and sorted(rows_of_ref) == sorted(2 * list(range(n))):
        return (f"each of the {n} candidates is evaluated twice ({calls} calls of evaluate_candidate): evaluate each "
                "once and keep its score (every evaluation costs whole episodes)")
    if calls == n and sorted(rows_of_ref) == list(range(n)):
        return ("the candidates are evaluated in another order than sampled: evaluate them in the order "
                "sample_candidates returns them")
    if calls != n:
        first = min(calls, n, len(evaluated))
        drawn = _same(evaluated[:first], ref[:first])
        return (f"{calls} candidates were evaluated; the population is self.cfg.population = {n}"
                + (" (they are the first rows of sample_candidates' draw: the population size comes from elsewhere)"
                   if drawn and calls < n else ""))
    if any(r < 0 for r in rows_of_ref):
        return (f"the {n} evaluated candidates are not the population sample_candidates(self.cfg.population) draws "
                "from self.rng (sample them with self.sample_candidates)")
    return "some candidates were evaluated more than once and others not at all: evaluate each candidate once"


def _scores_result(name: str, s: IterationSetup, ref: np.ndarray, out: dict[str, np.ndarray]) -> CheckResult:
    n = s.n
    if int(out["ret_code"][0]) == 1:
        return CheckResult(name, 0, 1, "search_iteration returns None: return the scores, an array of shape "
                                       "(population,)")
    ndim, d0, _ = (int(x) for x in out["ret_shape"])
    if ndim != 1 or d0 != n:
        return CheckResult(name, 0, 1, f"search_iteration returned scores of shape "
                                       f"{_shape_text(ndim, d0, int(out['ret_shape'][2]))}, expected ({n},)")
    got = np.asarray(out["ret"], np.float64)
    want = s.score(ref)
    if _close(got, want):
        return CheckResult(name, 1, 1, f"the {n} sampled candidates were evaluated once each, in order, and their "
                                       "scores returned in that order")
    if _close(np.sort(got), np.sort(want)):
        order = ("sorted ascending" if _close(got, np.sort(want)) else
                 "sorted descending" if _close(got, np.sort(want)[::-1]) else "in another order")
        return CheckResult(name, 0, 1, f"the returned scores are {order}: return them in the order the candidates "
                                       "were sampled (score i belongs to candidate i)")
    if _close(got, -want):
        return CheckResult(name, 0, 1, "the returned scores have the wrong sign: return evaluate_candidate's values")
    return CheckResult(name, 0, 1, "the returned scores are not evaluate_candidate's values of the candidates")


def _shape_text(ndim: int, d0: int, d1: int) -> str:
    if ndim == 0:
        return "() (a single number)"
    if ndim == 1:
        return f"({d0},)"
    return f"({d0}, {d1}{', ...' if ndim > 2 else ''})"


def _iteration_refit_part(name: str, s: IterationSetup, ref: np.ndarray, second: np.ndarray | None,
                          evaluated: np.ndarray, out: dict[str, np.ndarray]) -> CheckResult:
    """self.mean, self.std afterwards: the refit of the sampled population, or of the candidates evaluated when
    another number of distinct ones was (a population size from elsewhere costs the evaluation part only)."""
    p = ref.shape[1]
    if tuple(int(x) for x in out["state_sizes"]) != (p, p):
        return CheckResult(name, 0, 1, f"afterwards self.mean has {int(out['state_sizes'][0])} and self.std "
                                       f"{int(out['state_sizes'][1])} numbers; both must be arrays of shape ({p},)")
    mean, std = np.asarray(out["mean_after"], np.float64), np.asarray(out["std_after"], np.float64)
    want_mean, want_std = reference_refit(ref, s.score(ref), s.k, s.min_std)
    if _close(mean, want_mean) and _close(std, want_std):
        return CheckResult(name, 1, 1, "self.mean and self.std are the refit of the evaluated candidates")
    if len(evaluated) not in (0, s.n) and len(np.unique(evaluated, axis=0)) == len(evaluated) >= s.k:
        other_mean, other_std = reference_refit(evaluated, s.score(evaluated), s.k, s.min_std)
        if _close(mean, other_mean) and _close(std, other_std):
            return CheckResult(name, 1, 1, f"self.mean and self.std are the refit of the {len(evaluated)} evaluated "
                                           "candidates (the evaluation part says how many there should be)")
    if _same(mean, s.mean) and _same(std, s.std):
        return CheckResult(name, 0, 1, "self.mean and self.std are unchanged: store the refit's result "
                                       "(self.mean, self.std = self.refit(candidates, scores))")
    if _close(mean, want_std) and _close(std, want_mean):
        return CheckResult(name, 0, 1, "self.mean and self.std are swapped: refit returns (mean, std)")
    if second is not None and any(_close(mean, reference_refit(second, scores, s.k, s.min_std)[0])
                                  for scores in (s.score(ref), s.score(second))):
        return CheckResult(name, 0, 1, "the refit is of a second population (sample_candidates called again), not of "
                                       "the candidates evaluated: refit the evaluated candidates with their scores")
    if _close(mean, want_mean):
        return CheckResult(name, 0, 1, "self.mean is right but self.std is not the refit's std: store both")
    if _close(std, want_std):
        return CheckResult(name, 0, 1, "self.std is right but self.mean is not the refit's mean: store both")
    return CheckResult(name, 0, 1, "self.mean and self.std are not the refit of the evaluated candidates with their "
                                   "scores")


CHECKS = (CEM_SAMPLE, CEM_REFIT, CEM_ITERATION)
