"""Jobs of DAgger's and noise injection's checks: the action choice, the aggregation, the noisy step, the
collection loops (the env's answers recorded for the parent to replay) and the rounds."""
import os

from .agent import make_agent, seed_globals
from .plain import as_float, error_record


def _call_pairs(fn, obs, repeats, act_dim):
    """Call ``fn`` (one state → (executed, label)) ``repeats`` times over all states in turn, as a rollout calls it
    step after step; states are passed as float64 like the env's. Returns two (N, repeats, act_dim) float64 arrays."""
    import numpy as np

    exe = np.zeros((len(obs), repeats, act_dim))
    lab = np.zeros((len(obs), repeats, act_dim))
    for k in range(repeats):
        for i, o in enumerate(obs):
            e, l = fn(o.astype(np.float64))
            exe[i, k] = np.array(np.asarray(e, np.float64), np.float64).reshape(act_dim)
            lab[i, k] = np.array(np.asarray(l, np.float64), np.float64).reshape(act_dim)
    return exe, lab


def job_dagger_select(job, out):
    """select_action for each β in turn, ``repeats`` × N calls each, on one agent.
    Writes exec, label: (n_betas, N, repeats, act_dim) float64."""
    import numpy as np

    a = make_agent(job, job["policy"], job["expert"])
    seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        obs = f["obs"]
    exe, lab = zip(*(_call_pairs(lambda o, beta=beta: a.select_action(o, float(beta)), obs, job["repeats"], a.act_dim)
                     for beta in job["betas"]))
    np.savez(os.path.join(out, "result.npz"), exec=np.stack(exe), label=np.stack(lab))


MAX_AGG_ROWS = 5_000           # answers stay small: the rounds give a few hundred pairs


def job_dagger_aggregate(job, out):
    """aggregate over several rounds on one agent, as DAggerAgent.train calls it: self.dataset = aggregate(
    self.dataset, round's states, round's labels). Writes obs (T, obs_dim) float64 and actions (T, act_dim) float64:
    the datasets returned after each round, one after the other, and lengths (rounds,) int64 (T = lengths.sum())."""
    import numpy as np

    from learning.demos import Dataset

    a = make_agent(job, job["policy"])
    seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        demo_o, demo_a = f["data_obs"], f["data_actions"]
        visited, labels, sizes = f["visited_obs"], f["labels"], [int(n) for n in f["round_sizes"]]
    a.demo_dataset = lambda *args, **kwargs: Dataset(demo_o.copy(), demo_a.copy())    # the run's demos
    a.dataset = a.demo_dataset()
    rows_o, rows_a, lengths = [], [], []
    start = 0
    for k, n in enumerate(sizes, 1):
        new = a.aggregate(a.dataset, visited[start:start + n].copy(), labels[start:start + n].copy())
        start += n
        o = np.array(np.asarray(new.obs), dtype=np.float64)
        x = np.array(np.asarray(new.actions), dtype=np.float64)
        if o.ndim != 2 or x.ndim != 2 or o.shape[1] != a.obs_dim or x.shape[1] != a.act_dim or len(o) != len(x):
            raise ValueError(f"round {k}: aggregate returned a dataset with obs {o.shape} and actions {x.shape}; "
                             f"expected (n, {a.obs_dim}) and (n, {a.act_dim})")
        if sum(lengths) + len(o) > MAX_AGG_ROWS:
            raise ValueError(f"round {k}: aggregate returned {len(o)} pairs, far more than the rounds gave")
        rows_o.append(o)
        rows_a.append(x)
        lengths.append(len(o))
        a.dataset = new
    np.savez(os.path.join(out, "result.npz"), obs=np.concatenate(rows_o), actions=np.concatenate(rows_a),
             lengths=np.array(lengths, np.int64))


def job_dart_step(job, out):
    """noisy_expert_step ``repeats`` × N calls on one agent. Writes exec, label: (N, repeats, act_dim) float64."""
    import numpy as np

    a = make_agent(job, job["policy"], job["expert"], cfg_over={"noise_std": job["noise_std"]})
    seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        obs = f["obs"]
    exe, lab = _call_pairs(a.noisy_expert_step, obs, job["repeats"], a.act_dim)
    np.savez(os.path.join(out, "result.npz"), exec=exe, label=lab)


MAX_ROUND_ROWS = 5_000          # rows of the datasets and collections a round answer may hold (a few hundred expected)
MAX_ROUND_CALLS = 32            # collect_round or fit calls per round the answer records (one each expected)


def _round_rows(d):
    """(obs, labels) float64 of a Dataset, or None if ``d`` is not one."""
    import numpy as np

    from learning.demos import Dataset

    if not isinstance(d, Dataset):
        return None
    return np.array(d.obs, np.float64), np.array(d.actions, np.float64)


def _recorders(a, dagger, current, collects, collected, fits):
    """Wrap collect_round and fit on the instance ``a``: each call's arguments and result are appended to the lists
    (the class's methods, the reference's, run inside)."""
    cls = type(a)

    def collect_round(n, *args, **kwargs):
        beta = (args[0] if args else kwargs.get("beta")) if dagger else None
        rec = [current[0], as_float(n), as_float(beta) if dagger else float("nan"), -1.0]
        rec = [float("nan") if x is None else x for x in rec]
        if sum(1 for c in collects if c[0] == current[0]) >= MAX_ROUND_CALLS:
            raise ValueError(f"collect_round was called more than {MAX_ROUND_CALLS} times in round {current[0]}")
        collects.append(rec)
        data = cls.collect_round(a, n, *args, **kwargs)
        rows = _round_rows(data)
        if rows is not None:
            if sum(len(o) for o, _ in collected) + len(rows[0]) > MAX_ROUND_ROWS:
                raise ValueError("the rounds collected far more pairs than their n")
            rec[3] = float(len(rows[0]))
            collected.append(rows)
        return data

    def fit(dataset, epochs, *args, **kwargs):
        if sum(1 for f in fits if f[0] == current[0]) >= MAX_ROUND_CALLS:
            raise ValueError(f"fit was called more than {MAX_ROUND_CALLS} times in round {current[0]}")
        rows = _round_rows(dataset)
        rec = [current[0], -1.0, as_float(epochs), float("nan"), float("nan"), float("nan")]
        if rows is not None:
            rec[1], rec[3], rec[4] = float(len(rows[0])), float(rows[0].sum()), float(rows[1].sum())
        rec = [float("nan") if x is None else x for x in rec]
        fits.append(rec)
        loss = cls.fit(a, dataset, epochs, *args, **kwargs)
        value = as_float(loss)
        rec[5] = float("nan") if value is None else value
        return loss

    a.collect_round, a.fit = collect_round, fit


def _rounds(job, out):
    """Rounds 1..K of DAgger or noise injection through the framework's ``run_round`` (which enforces the sample
    budget), on one agent whose ``self.dataset`` starts as the given data (as if round 0 had run) and whose
    collect_round and fit (the reference's) are recorded. Writes:
    rounds (K, 7) float64: reached (0/1), len(self.dataset) before and after (-1: not a Dataset), env steps before and
    after, train_round's return as a float (NaN if none), 1 if it returned a number;
    collects (C, 4) float64: round, n, β (NaN for noise injection), pairs returned (-1: raised);
    collected_obs (R, obs_dim), collected_act (R, act_dim) float64: the pairs collect_round returned, in call order;
    data_obs (T, obs_dim), data_act (T, act_dim) float64: self.dataset after each reached round, one after the other;
    fits (F, 6) float64: round, dataset length (-1: not a Dataset), epochs, sum of its obs, sum of its labels, fit's
    return; error (1,) str: the record of the exception that stopped the rounds ("" if none); raised_in (1,) int64:
    0 none, 1 inside train_round, 2 in the framework's checks after it."""
    import numpy as np

    from learning.demos import Dataset

    dagger = job["agent"] == "dagger"
    a = make_agent(job, None, job["expert"], cfg_over=job["config"])
    seed_globals(job["seed"])
    with np.load(job["inputs"], allow_pickle=False) as f:
        demo_o, demo_a = f["data_obs"], f["data_actions"]
    a.demo_dataset = lambda *args, **kwargs: Dataset(demo_o.copy(), demo_a.copy())    # the run's demos
    a.dataset = a.demo_dataset()
    a.fit_normalizer(a.dataset)          # as round 0 does
    current, collects, collected, fits = [0], [], [], []
    _recorders(a, dagger, current, collects, collected, fits)
    inside = [False]
    rounds = np.full((job["rounds"], 7), np.nan)
    rounds[:, 0] = 0

    def train_round(i):
        inside[0] = True
        ret = type(a).train_round(a, i)
        inside[0] = False
        value = as_float(ret)
        rounds[i - 1, 5:] = (np.nan, 0.0) if value is None else (value, 1.0)
        return ret

    a.train_round = train_round
    data, error, raised_in = [], "", 0
    for i in range(1, job["rounds"] + 1):
        current[0] = i
        rounds[i - 1, :5] = (1, len(a.dataset), np.nan, a.env.steps, np.nan)
        inside[0] = False
        try:
            a.run_round(i)
        except Exception as e:  # noqa: BLE001 - the parent names the mistake; the message goes to the feedback
            error, raised_in = error_record(e), 1 if inside[0] else 2
        rows = _round_rows(a.dataset)
        rounds[i - 1, 2] = -1 if rows is None else len(rows[0])
        rounds[i - 1, 4] = a.env.steps
        if rows is not None:
            if sum(len(o) for o, _ in data) + len(rows[0]) > MAX_ROUND_ROWS:
                raise ValueError(f"round {i}: self.dataset holds {len(rows[0])} pairs, far more than the rounds gave")
            data.append(rows)
        if error:
            break

    def stack(parts, k, dim):
        return np.concatenate([p[k] for p in parts]) if parts else np.zeros((0, dim))

    np.savez(os.path.join(out, "result.npz"), rounds=rounds,
             collects=np.array(collects, np.float64).reshape(-1, 4), fits=np.array(fits, np.float64).reshape(-1, 6),
             collected_obs=stack(collected, 0, a.obs_dim), collected_act=stack(collected, 1, a.act_dim),
             data_obs=stack(data, 0, a.obs_dim), data_act=stack(data, 1, a.act_dim), error=np.array([error]),
             raised_in=np.array([raised_in], np.int64))


class _TooManyResets(RuntimeError):
    """A round reset the env far more often than n steps can need (a loop that only resets stops here)."""


class _BoundedTrace(list):
    """The env's record (TrainingEnv.trace) that refuses to grow past ``limit`` entries."""

    limit = 0

    def append(self, item):
        if len(self) >= self.limit:
            raise _TooManyResets("collect_round reset the env far more often than its n steps need")
        super().append(item)


# what a refused step or a wrong return value was, as codes: no text of the student's process reaches the parent (the
# workspace of a collection check holds reference code, grader/feedback.py)
REFUSALS = (("finished episode", 1), ("more environment steps", 2), ("needs an action of shape", 3), ("NaN", 4))
RETURN_TYPES = ((tuple, 1), (list, 2), (type(None), 3), (dict, 5))


job_dagger_round = job_dart_round = _rounds     # one job, two checks (grader/round_check.py)


def _return_code(data):
    """What collect_round returned instead of a Dataset: 1 tuple, 2 list, 3 None, 4 NumPy array, 5 dict, 0 other."""
    import numpy as np

    if isinstance(data, np.ndarray):
        return 4
    return next((code for kind, code in RETURN_TYPES if isinstance(data, kind)), 0)


def _collect_rounds(job, out, cfg_over=None):
    """collect_round for each (n, beta) of job["calls"] in turn (beta None: noise injection's collect_round(n)), each
    in its own ``with a.env.collection(n)`` block as the framework runs a round, in a TrainingEnv whose episodes end
    after job["max_steps"] steps. Stops after the first call that went wrong.

    Writes the env's record, every reset and step, R entries: kind (R,) int64 (0 reset, 1 step), seed (R,) int64
    (resets; -1 for steps), action (R, act_dim) float64 (steps: the action as passed), obs (R, obs_dim) float64 (the
    reset's or the step's returned observation), reward (R,) float64, terminated, truncated (R,) bool; per call (C):
    records (entries of the record), status (0 returned a Dataset, 1 the env refused a step (EpisodeError), 2 reset
    too often, 3 not run, 4 returned something else, 5 a Dataset of the wrong widths), detail (status 1: REFUSALS'
    code; status 4: _return_code), widths (C, 2) (the Dataset's obs and label widths), rows (pairs returned), kept
    (rows written, at most 2n + 2); and the returned pairs one call after the other: data_obs (sum kept, obs_dim),
    data_labels (sum kept, act_dim) float64."""
    import numpy as np

    from envs.builder import make_env, resolve_env_config
    from envs.training_env import EpisodeError, TrainingEnv
    from learning.demos import Dataset

    a = make_agent(job, job["policy"], job["expert"], cfg_over=cfg_over)
    env_cfg = resolve_env_config(job["env"])
    env_cfg.max_episode_steps = int(job["max_steps"])
    a.env = TrainingEnv(make_env(env_cfg), job["seed"], a.action_low, a.action_high)
    trace = _BoundedTrace()
    a.env.trace = trace
    seed_globals(job["seed"])
    calls = job["calls"]
    records, status, detail, widths, rows, kept = [], [], [], [], [], []
    data_o, data_x = [np.zeros((0, a.obs_dim))], [np.zeros((0, a.act_dim))]
    for n, beta in calls:
        start = len(trace)
        trace.limit = start + 3 * int(n) + 5
        code, why, data = 0, 0, None
        try:
            with a.env.collection(n):
                data = a.collect_round(int(n)) if beta is None else a.collect_round(int(n), float(beta))
        except EpisodeError as e:
            code, why = 1, next((c for text, c in REFUSALS if text in str(e)), 0)
        except _TooManyResets:
            code = 2
        o = x = np.zeros((0, 0))
        if code == 0 and not isinstance(data, Dataset):
            code, why = 4, _return_code(data)
        if code == 0:
            o = np.array(np.asarray(data.obs), dtype=np.float64)
            x = np.array(np.asarray(data.actions), dtype=np.float64)
            if o.ndim != 2 or x.ndim != 2 or o.shape[1] != a.obs_dim or x.shape[1] != a.act_dim or len(o) != len(x):
                code = 5
        records.append(len(trace) - start)
        status.append(code)
        detail.append(why)
        widths.append((o.shape[-1] if o.ndim else 0, x.shape[-1] if x.ndim else 0))
        keep = min(len(o), 2 * int(n) + 2) if code == 0 else 0
        rows.append(len(o) if code == 0 else 0)
        kept.append(keep)
        if code:
            break
        data_o.append(o[:keep])
        data_x.append(x[:keep])
    for _ in range(len(calls) - len(status)):
        records.append(0)
        status.append(3)
        detail.append(0)
        widths.append((0, 0))
        rows.append(0)
        kept.append(0)
    entries = list(trace)
    kind = np.array([0 if e[0] == "reset" else 1 for e in entries], np.int64)
    act = np.zeros((len(entries), a.act_dim))
    obs = np.zeros((len(entries), a.obs_dim))
    seed = np.full(len(entries), -1, np.int64)
    reward = np.zeros(len(entries))
    term = np.zeros(len(entries), bool)
    trunc = np.zeros(len(entries), bool)
    for i, e in enumerate(entries):
        if e[0] == "reset":
            seed[i], obs[i] = e[1], e[2]
        else:
            act[i], obs[i], reward[i], term[i], trunc[i] = e[1], e[2], e[3], e[4], e[5]
    np.savez(os.path.join(out, "result.npz"), kind=kind, seed=seed, action=act, obs=obs, reward=reward,
             terminated=term, truncated=trunc, records=np.array(records, np.int64),
             status=np.array(status, np.int64), detail=np.array(detail, np.int64),
             widths=np.array(widths, np.int64).reshape(-1, 2), rows=np.array(rows, np.int64),
             kept=np.array(kept, np.int64), data_obs=np.concatenate(data_o), data_labels=np.concatenate(data_x))


def job_dagger_collect(job, out):
    """DAgger's collect_round(n, beta) for each (n, beta) of job["calls"]: see :func:`_collect_rounds`."""
    _collect_rounds(job, out)


def job_dart_collect(job, out):
    """Noise injection's collect_round(n) for each n of job["calls"] (with noise_std job["noise_std"]): see
    :func:`_collect_rounds`."""
    _collect_rounds(job, out, cfg_over={"noise_std": job["noise_std"]})
