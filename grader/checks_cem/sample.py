"""The check of ``sample_candidates`` (n independent draws of N(μ, diag(σ²)), every random number from ``self.rng``),
and what the CEM checks share (the linear policy's size, comparisons)."""
from __future__ import annotations

import numpy as np

from grader.answers import Field
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit
from grader.unit_inputs import task_dims

SIGMAS = 5.0                 # statistical tolerance of the sampling check, in standard errors
SMALL_CALLS = (1, 7)         # the small sample_candidates calls of every run (the large one is the variant's batch)


def linear_params(env: str) -> int:
    """P = (obs_dim + 1) · act_dim: the parameters of the linear policy (``hidden_sizes: []``) on ``env``."""
    obs_dim, act_dim = task_dims(env)
    return (obs_dim + 1) * act_dim


def same_draws(a: np.ndarray, b: np.ndarray) -> bool:
    """The same draws (NaN where both calls returned too few values)."""
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))


def close_to(a: np.ndarray, b: np.ndarray) -> bool:
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
    out, why = run_unit(ctx, CEM_SAMPLE, v, {"mean": mean, "std": std}, schema=schema,
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
    key="cem_sample", agent="cem", run=check_cem_sample, methods=("sample_candidates",),
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
    repeated = same_draws(first[0], first[1][:p])
    reproducible = all(same_draws(a, b) for a, b in zip(first, same_seed, strict=True))
    follows_rng = not all(same_draws(a, b) for a, b in zip(first, other_seed, strict=True))
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
