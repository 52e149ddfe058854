"""The check of ``search_iteration``: a population sampled, each candidate scored once in order, the scores returned,
the refit stored."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.answers import Field
from grader.checks_cem.refit import reference_refit
from grader.checks_cem.sample import close_to, linear_params, same_draws
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, have_solutions, run_unit


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
    out, why = run_unit(ctx, CEM_ITERATION, v,
                        {"mean": s.mean, "std": s.std, "target": s.target}, schema=schema,
                        tested=("search_iteration",), rng_seed=s.rng_seed,
                        cfg={"population": s.n, "elite_count": s.k, "min_std": s.min_std})
    if out is None:
        return [CheckResult(eval_name, 0, 1, why), CheckResult(refit_name, 0, 1, why)]
    evaluated = np.asarray(out["evaluated"], np.float64).reshape(-1, p)
    calls, bad = (int(x) for x in out["counts"])
    if calls == 0 and int(out["ret_code"][0]) == 1 and same_draws(out["mean_after"], s.mean):
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
    key="cem_iteration", agent="cem", run=check_cem_iteration, methods=("search_iteration",),
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
    if calls == n and same_draws(evaluated, ref):
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
        drawn = same_draws(evaluated[:first], ref[:first])
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
    if close_to(got, want):
        return CheckResult(name, 1, 1, f"the {n} sampled candidates were evaluated once each, in order, and their "
                                       "scores returned in that order")
    if close_to(np.sort(got), np.sort(want)):
        order = ("sorted ascending" if close_to(got, np.sort(want)) else
                 "sorted descending" if close_to(got, np.sort(want)[::-1]) else "in another order")
        return CheckResult(name, 0, 1, f"the returned scores are {order}: return them in the order the candidates "
                                       "were sampled (score i belongs to candidate i)")
    if close_to(got, -want):
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
    if close_to(mean, want_mean) and close_to(std, want_std):
        return CheckResult(name, 1, 1, "self.mean and self.std are the refit of the evaluated candidates")
    if len(evaluated) not in (0, s.n) and len(np.unique(evaluated, axis=0)) == len(evaluated) >= s.k:
        other_mean, other_std = reference_refit(evaluated, s.score(evaluated), s.k, s.min_std)
        if close_to(mean, other_mean) and close_to(std, other_std):
            return CheckResult(name, 1, 1, f"self.mean and self.std are the refit of the {len(evaluated)} evaluated "
                                           "candidates (the evaluation part says how many there should be)")
    if same_draws(mean, s.mean) and same_draws(std, s.std):
        return CheckResult(name, 0, 1, "self.mean and self.std are unchanged: store the refit's result "
                                       "(self.mean, self.std = self.refit(candidates, scores))")
    if close_to(mean, want_std) and close_to(std, want_mean):
        return CheckResult(name, 0, 1, "self.mean and self.std are swapped: refit returns (mean, std)")
    if second is not None and any(close_to(mean, reference_refit(second, scores, s.k, s.min_std)[0])
                                  for scores in (s.score(ref), s.score(second))):
        return CheckResult(name, 0, 1, "the refit is of a second population (sample_candidates called again), not of "
                                       "the candidates evaluated: refit the evaluated candidates with their scores")
    if close_to(mean, want_mean):
        return CheckResult(name, 0, 1, "self.mean is right but self.std is not the refit's std: store both")
    if close_to(std, want_std):
        return CheckResult(name, 0, 1, "self.std is right but self.mean is not the refit's mean: store both")
    return CheckResult(name, 0, 1, "self.mean and self.std are not the refit of the evaluated candidates with their "
                                   "scores")
