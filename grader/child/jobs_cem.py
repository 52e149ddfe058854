"""Jobs of the CEM checks: ``sample_candidates``, ``refit`` and ``search_iteration`` on fresh agents whose search
distribution and generator the parent sets."""
import os

from .agent import make_agent, seed_globals

MAX_CEM_EVALS = 4              # evaluate_candidate calls an iteration answer records: at most 4 × population + 4


def _float_array(x, what):
    """``x`` (NumPy array, torch tensor, list, ...) as a float64 NumPy array, or a TypeError naming ``what``."""
    import numpy as np

    try:
        if hasattr(x, "detach") and hasattr(x, "cpu"):
            x = x.detach().cpu().double().numpy()
        return np.array(np.asarray(x, np.float64), np.float64)
    except (TypeError, ValueError, RuntimeError, AttributeError):
        raise TypeError(f"{what} returned a {type(x).__name__}, not an array of numbers") from None


def _shape_row(x):
    """(ndim, first dim, second dim) of an array, -1 where it has no such dimension."""
    return [x.ndim, *(list(x.shape[:2]) + [-1, -1])[:2]]


def _padded(x, size):
    """The flat values of ``x``, cut or padded with NaN to ``size``."""
    import numpy as np

    flat = np.full(size, np.nan)
    v = x.reshape(-1)[:size]
    flat[:len(v)] = v
    return flat


def _cem_agent(job, mean, std, rng_seed, global_seed, cfg_over=None):
    """A fresh CEM agent whose search distribution is (mean, std) and whose self.rng is seeded with ``rng_seed``;
    the global RNGs seeded with ``global_seed``."""
    import numpy as np

    a = make_agent(job, cfg_over={"hidden_sizes": [], "eval_episodes": 0, "final_eval_episodes": 0,
                                  **(cfg_over or {})})
    a.mean, a.std = mean.copy(), std.copy()
    a.rng = np.random.default_rng(int(rng_seed))
    seed_globals(int(global_seed))
    return a


def job_cem_sample(job, out):
    """sample_candidates(n) for each n of each run (rng seed, global seed, sizes) of job["runs"], each run on a fresh
    agent with self.mean, self.std from in.npz. Writes, over all calls in order: values (sum n·P,) float64 (each
    call's values flat, cut or padded with NaN to n·P), shapes (C, 3) int64 (ndim, first and second dimension, -1:
    none), num_params (1,) int64."""
    import numpy as np

    with np.load(job["inputs"], allow_pickle=False) as f:
        mean, std = f["mean"], f["std"]
    values, shapes, num_params = [], [], 0
    for rng_seed, global_seed, sizes in job["runs"]:
        a = _cem_agent(job, mean, std, rng_seed, global_seed)
        num_params = a.num_params
        for n in sizes:
            x = _float_array(a.sample_candidates(int(n)), "sample_candidates")
            shapes.append(_shape_row(x))
            values.append(_padded(x, int(n) * a.num_params))
    np.savez(os.path.join(out, "result.npz"), values=np.concatenate(values), shapes=np.array(shapes, np.int64),
             num_params=np.array([num_params], np.int64))


def _pair(res, size):
    """refit's result as (code, mean, std, sizes): code 0 a pair, 1 None, 2 something else; mean and std flat float64
    (cut or padded with NaN to ``size``), sizes their element counts (-1: not a pair)."""
    import numpy as np

    nan = np.full(size, np.nan)
    if res is None:
        return 1, nan, nan, [-1, -1]
    try:
        m, s = res
    except (TypeError, ValueError):
        return 2, nan, nan, [-1, -1]
    m, s = _float_array(m, "refit (its mean)"), _float_array(s, "refit (its std)")
    return 0, _padded(m, size), _padded(s, size), [m.size, s.size]


def job_cem_refit(job, out):
    """refit(candidates, scores) for each case of job["cases"] (population N, elite_count K, min_std), each on a fresh
    agent whose self.mean, self.std are the case's old ones (in.npz: candidates (sum N, P), scores (sum N,),
    old_mean, old_std (cases, P)). Writes per case: code (C,) int64 (0 returned a pair, 1 None, 2 other), sizes
    (C, 2) int64, mean, std (C, P) float64 (the returned pair, NaN-padded), self_mean, self_std (C, P) float64
    (self.mean and self.std after the call, NaN-padded)."""
    import numpy as np

    with np.load(job["inputs"], allow_pickle=False) as f:
        cands, scores, old_mean, old_std = f["candidates"], f["scores"], f["old_mean"], f["old_std"]
    codes, sizes, means, stds, self_means, self_stds = [], [], [], [], [], []
    start = 0
    for i, (n, k, min_std) in enumerate(job["cases"]):
        a = _cem_agent(job, old_mean[i], old_std[i], job["seed"], job["seed"],
                       {"population": int(n), "elite_count": int(k), "min_std": float(min_std)})
        p = a.num_params
        code, m, s, sz = _pair(a.refit(cands[start:start + n].copy(), scores[start:start + n].copy()), p)
        start += n
        codes.append(code)
        sizes.append(sz)
        means.append(m)
        stds.append(s)
        self_means.append(_padded(_float_array(a.mean, "self.mean"), p))
        self_stds.append(_padded(_float_array(a.std, "self.std"), p))
    np.savez(os.path.join(out, "result.npz"), code=np.array(codes, np.int64), sizes=np.array(sizes, np.int64),
             mean=np.stack(means), std=np.stack(stds), self_mean=np.stack(self_means), self_std=np.stack(self_stds))


def job_cem_iteration(job, out):
    """One search_iteration on an agent (population, elite_count, min_std of job["cfg"]; self.mean, self.std from
    in.npz; self.rng seeded with job["rng_seed"]) whose evaluate_candidate is a recorder scoring θ as −‖θ − target‖²
    (no environment). Writes: evaluated (E, P) float64 (the arguments, in call order, at most MAX_CEM_EVALS ×
    population + 4), counts (2,) int64 (calls in all, calls whose argument was not P numbers), ret_code (1,) int64
    (0 returned something, 1 None), ret_shape (3,) int64, ret (population,) float64 (the returned scores, NaN-padded),
    state_sizes (2,) int64 and mean_after, std_after (P,) float64 (self.mean, self.std afterwards, NaN-padded);
    sampled (S, P) float64 the rows self.sample_candidates returned, call after call (at most as many as evaluated),
    sample_counts (2,) int64 (its calls, the rows of the first; -1: none)."""
    import numpy as np

    with np.load(job["inputs"], allow_pickle=False) as f:
        mean, std, target = f["mean"], f["std"], f["target"]
    a = _cem_agent(job, mean, std, job["rng_seed"], job["seed"], job["cfg"])
    p, n = a.num_params, int(job["cfg"]["population"])
    evaluated, counts = [], [0, 0]

    def evaluate_candidate(theta, *args, **kwargs):
        counts[0] += 1
        x = _float_array(theta, "the candidate passed to evaluate_candidate").reshape(-1)
        if x.size != p:
            counts[1] += 1
            return 0.0
        if len(evaluated) < MAX_CEM_EVALS * n + 4:
            evaluated.append(x)
        return float(-np.sum((x - target) ** 2))

    sampled, sample_counts = [], [0, -1]
    sample = type(a).sample_candidates

    def sample_candidates(size, *args, **kwargs):        # the population as drawn (the release's own method)
        x = sample(a, size, *args, **kwargs)
        sample_counts[0] += 1
        try:
            rows = _float_array(x, "sample_candidates").reshape(-1, p)
        except (TypeError, ValueError):
            return x
        if sample_counts[0] == 1:
            sample_counts[1] = len(rows)
        if sum(len(r) for r in sampled) + len(rows) <= MAX_CEM_EVALS * n + 4:
            sampled.append(rows)
        return x

    a.evaluate_candidate, a.sample_candidates = evaluate_candidate, sample_candidates
    res = a.search_iteration()
    ret = np.full(n, np.nan)
    shape = [-1, -1, -1]
    if res is not None:
        r = _float_array(res, "search_iteration")
        shape = _shape_row(r)
        ret = _padded(r, n)
    m, s = _float_array(a.mean, "self.mean"), _float_array(a.std, "self.std")
    np.savez(os.path.join(out, "result.npz"), evaluated=np.array(evaluated, np.float64).reshape(-1, p),
             counts=np.array(counts, np.int64), ret_code=np.array([int(res is None)], np.int64),
             ret_shape=np.array(shape, np.int64), ret=ret, state_sizes=np.array([m.size, s.size], np.int64),
             mean_after=_padded(m, p), std_after=_padded(s, p),
             sampled=np.concatenate(sampled) if sampled else np.zeros((0, p)),
             sample_counts=np.array(sample_counts, np.int64))
