"""The DAgger unit checks: ``select_action`` (who acts with probability β, the label is always the expert's, in
env units), ``aggregate`` (the dataset keeps the demos and every round, each pair once) and ``collect_round`` (n steps
of the β-mixture in the env, a reset after every episode end, the states where the actions were chosen, labelled).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from grader.answers import Field
from grader.context import CheckResult, CheckSpec, GradingContext, Part, Variant, run_unit
from grader.replay import (Round, collect_schema, collection_part, collection_setup, episode_problems, episode_summary,
                           label_problems, read_rounds, round_failure, state_problems, timeout_hint)
from grader.round_check import round_check_spec
from grader.unit_inputs import far_bounds, random_policy, sample_obs, shared_draw, task_dims, to_normalized
from learning.policy import GaussianMLPPolicy


DAGGER_BETAS = (1.0, 0.0, 0.35)
DAGGER_REPEATS = 8          # calls per state and β: 8 × batch calls per β on one agent, as a rollout makes them


def check_dagger_select(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """select_action over DAGGER_REPEATS × batch calls per β on one agent; bounds far from ±1 so units show."""
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = task_dims(v.env)
    low, high = far_bounds(act_dim, rng)
    learner = random_policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=0.2)
    expert = random_policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.8)
    obs = sample_obs(learner, v.batch, rng)
    schema = {k: Field((len(DAGGER_BETAS), v.batch, DAGGER_REPEATS, act_dim), "f") for k in ("exec", "label")}
    out, why = run_unit(ctx, DAGGER_SELECT, v, {"obs": obs},
                        {"policy": learner, "expert": expert}, schema=schema, betas=list(DAGGER_BETAS),
                        repeats=DAGGER_REPEATS)
    label_name, exec_name = DAGGER_SELECT.part_names(v)
    if out is None:
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    shape = (len(DAGGER_BETAS), v.batch, DAGGER_REPEATS, act_dim)
    exe = np.asarray(out["exec"], np.float64).reshape(shape)
    lab = np.asarray(out["label"], np.float64).reshape(shape)
    if not np.any(exe) and not np.any(lab):
        why = "select_action returns the placeholder zeros: fill in the TODO block"
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    if not (np.all(np.isfinite(exe)) and np.all(np.isfinite(lab))):
        why = "select_action returned NaN or infinite values"
        return [CheckResult(label_name, 0, 1, why), CheckResult(exec_name, 0, 1, why)]
    with torch.no_grad():
        o = torch.as_tensor(obs)
        expert_n = expert.mean_action(o).double().numpy()                  # (N, act_dim), normalized units
        mean_n = learner.mean_action(o).double().numpy()                    # (N, act_dim), normalized units
        std_n = torch.exp(learner.log_std).double().numpy()                # (act_dim,), normalized units
    expert_a = expert.act(obs).astype(np.float64)                          # (N, act_dim), env units
    ref = _DaggerRef(expert_a, expert_n, mean_n, std_n, low.astype(np.float64), high.astype(np.float64))
    return [_dagger_label_part(label_name, lab, exe, ref), _dagger_exec_part(exec_name, exe, ref)]


DAGGER_SELECT = CheckSpec(
    key="dagger_select", agent="dagger", run=check_dagger_select, methods=("select_action",),
    public=(Variant(seed=202, env="hopper", batch=60),),
    parts=(
        Part("DAgger label", 5.0,
             '`select_action` called 8 × N times for each β ∈ {1, 0, 0.35} on one agent, with action bounds asymmetric'
             ' and far from ±1 (an action in normalized units differs from env units by ≥ 0.8 in every dimension): the'
             " label is the expert's deterministic env-unit action at every call. Feedback names a label in normalized"
             " units, the learner's action as label, a label that changes between calls"),
        Part("DAgger executed action", 5.0,
             "β=1 → the expert; β=0 → fresh samples of the learner's Gaussian (standardized mean ≈ 0, std ≈ 1, "
             'independent across action dimensions), in env units; β=0.35 → the expert at 35% ± max(8%, 5 binomial σ) '
             'of the calls, the coin fresh at each call (not constant, not a function of the state). Feedback names an'
             " inverted coin, a coin drawn once or from the state, the learner's mean, a stale or shared learner draw,"
             ' normalized-unit actions')),
    handout=("DAgger action and label",
             "over many calls: the executed action is the expert's with probability β (a fresh coin at every call), "
             "otherwise a fresh learner sample; the label is always the expert's action in env units"))


@dataclass
class _DaggerRef:
    expert: np.ndarray      # (N, act_dim) the expert's deterministic action, env units
    expert_n: np.ndarray    # (N, act_dim) the same in normalized units
    mean_n: np.ndarray      # (N, act_dim) the learner's mean, normalized units
    std_n: np.ndarray       # (act_dim,) the learner's std, normalized units
    low: np.ndarray
    high: np.ndarray


def _dagger_label_part(name: str, lab: np.ndarray, exe: np.ndarray, ref: _DaggerRef) -> CheckResult:
    """lab, exe: (n_betas, N, R, act_dim). The label must be the expert's env-unit action at every call."""
    want = ref.expert[None, :, None, :]
    if np.allclose(lab, want, atol=1e-4):
        return CheckResult(name, 1, 1, f"labels are the expert's actions at every call, for every β "
                                       f"({lab.shape[1] * lab.shape[2]} calls each)")
    if np.allclose(lab, ref.expert_n[None, :, None, :], atol=1e-4):
        hint = ("the label is in normalized units ([-1, 1]): store the expert's action in env units, as "
                "self.expert_action(obs) returns it")
    elif np.allclose(lab[1], exe[1], atol=1e-6):
        hint = "with β = 0 the label equals the executed (learner) action: label every state with the expert's action"
    elif not np.allclose(lab, lab[:, :, :1, :], atol=1e-6):
        hint = ("the label changes between calls for the same state: it must be the expert's deterministic action "
                "(self.expert_action(obs)), whoever acts")
    elif np.allclose(lab[0], want[0], atol=1e-4):
        hint = ("the label is the expert's action only when the expert acts: label every state with "
                "self.expert_action(obs)")
    else:
        hint = "they are not the expert's deterministic action (self.expert_action(obs))"
    return CheckResult(name, 0, 1, "labels differ from the expert's actions: " + hint)


def _is_expert(e: np.ndarray, ref: _DaggerRef) -> np.ndarray:
    """(N, R, act_dim) executed actions → (N, R) True where the expert's action was executed."""
    return np.all(np.isclose(e, ref.expert[:, None, :], atol=1e-5, rtol=0), axis=-1)


def _dagger_exec_part(name: str, exe: np.ndarray, ref: _DaggerRef) -> CheckResult:
    """β = 1 → the expert; β = 0 → fresh learner samples; β = 0.35 → the expert at ≈35% of the calls."""
    e1, e0, e35 = exe
    f1, f0, f35 = (float(_is_expert(e, ref).mean()) for e in exe)
    if f1 < 0.02 and f0 > 0.98:
        return CheckResult(name, 0, 1, "the coin is inverted: the expert acts with probability 1 − β (β = 1 → never, "
                                       "β = 0 → always); execute the expert's action when u < β")
    problems = []
    if f1 < 1.0:
        if np.allclose(e1, ref.expert_n[:, None, :], atol=1e-4):
            problems.append("with β = 1 the executed action is the expert's in normalized units ([-1, 1]): execute it "
                            "in env units, as self.expert_action(obs) returns it")
        else:
            problems.append(f"with β = 1 the executed action is the expert's at only {100 * f1:.0f}% of the calls")
    if f0 > 0.02:
        problems.append(f"with β = 0 the expert's action was executed at {100 * f0:.0f}% of the calls")
    else:
        problems += _learner_sample_problems(e0, ref)
    if not problems:
        problems += _coin_problems(_is_expert(e35, ref), 0.35)
    if problems:
        return CheckResult(name, 0, 1, "; ".join(problems))
    return CheckResult(name, 1, 1, f"expert executed with probability β, drawn fresh at each call (β = 0.35 → "
                                   f"{100 * f35:.0f}% of {e35.shape[0] * e35.shape[1]} calls), fresh learner samples "
                                   "otherwise")


def _learner_sample_problems(e0: np.ndarray, ref: _DaggerRef) -> list[str]:
    """e0 (N, R, act_dim): actions executed at β = 0 must be fresh samples of the learner's Gaussian (env units)."""
    en = to_normalized(e0, ref.low, ref.high)
    inside = np.abs(en) < 0.999                          # samples clipped at a bound are left out
    z = (en - ref.mean_n[:, None, :]) / ref.std_n
    zi = z[inside]
    if zi.size >= 50 and abs(zi.mean()) < 0.2 and 0.8 < zi.std() < 1.2:
        if e0.shape[1] > 1 and np.allclose(e0[:, 0], e0[:, 1]):
            return ["with β = 0 the same learner sample is executed at every call for a given state (draw with "
                    "self.rng, e.g. self.learner_action(obs))"]
        shared = shared_draw(z, inside)
        return [f"with β = 0 the learner's sample {shared}"] if shared else []
    zn = (e0 - ref.mean_n[:, None, :]) / ref.std_n      # the sample left in normalized units?
    if np.all(np.abs(e0) <= 1.0 + 1e-6) and abs(zn.mean()) < 0.2 and 0.8 < zn.std() < 1.2:
        return ["with β = 0 the executed learner action is in normalized units ([-1, 1]): execute it in env units "
                "(self.learner_action(obs))"]
    if zi.size and zi.std() < 0.05:
        return ["with β = 0 the executed action is the learner's mean, not a sample from π (use "
                "self.learner_action(obs))"]
    if e0.shape[1] > 1 and np.allclose(e0[:, 0], e0[:, 1]):
        return ["with β = 0 the same learner sample is executed at every call for a given state (draw with self.rng)"]
    return [f"with β = 0 the executed actions are not samples from the learner's Gaussian (standardized mean "
            f"{zi.mean() if zi.size else float('nan'):.2f}, std {zi.std() if zi.size else float('nan'):.2f}; "
            "expected 0 and 1)"]


def _coin_problems(is_expert: np.ndarray, beta: float) -> list[str]:
    """is_expert (N, R): who acted at each call for one β; the coin must be fresh and fair at every call."""
    frac = float(is_expert.mean())
    n = is_expert.size
    tol = max(0.08, 5.0 * math.sqrt(beta * (1 - beta) / n))
    if frac in (0.0, 1.0):
        who = "expert" if frac else "learner"
        return [f"with β = {beta} the {who} acted at every one of {n} calls: draw the coin fresh at each call "
                "(u = self.rng.random(); the expert acts if u < β)"]
    if abs(frac - (1 - beta)) < tol <= abs(frac - beta):
        return [f"with β = {beta} the expert acted at {100 * frac:.0f}% of the calls ≈ 1 − β: the expert must act "
                "when u < β, not u > β"]
    if abs(frac - beta) > tol:
        return [f"with β = {beta} the expert acted at {100 * frac:.0f}% of the calls (expected ≈{100 * beta:.0f}%)"]
    per_state = float(np.all(is_expert == is_expert[:, :1], axis=1).mean())
    chance = beta ** is_expert.shape[1] + (1 - beta) ** is_expert.shape[1]
    if per_state > max(0.5, 3 * chance):
        return [f"with β = {beta} the coin gives the same outcome at every call for a given state "
                f"({100 * per_state:.0f}% of states): it must be a fresh draw at each call (self.rng.random()), not "
                "a function of the state"]
    return []


AGG_ROUNDS = 4              # aggregate is called this many times on one agent, fed back what it returned


def _agg_sizes(v: Variant, rng: np.random.Generator) -> list[int]:
    """Rows of the demos, then of each round (the last one cut short, as the sample budget may cut it)."""
    rounds = [max(3, v.batch // 2 + int(rng.integers(1, 9))) for _ in range(AGG_ROUNDS)]
    rounds[-1] = max(2, rounds[-1] // 2)
    return [v.batch, *rounds]


def check_dagger_aggregate(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """aggregate over AGG_ROUNDS rounds on one agent, as DAggerAgent.train calls it; any order of rows is fine."""
    name, = DAGGER_AGGREGATE.part_names(v)
    rng = np.random.default_rng(v.seed)
    obs_dim, act_dim = task_dims(v.env)
    low, high = far_bounds(act_dim, rng)
    pol = random_policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=0.5)    # sets the agent's action units
    sizes = _agg_sizes(v, rng)
    parts_o = [rng.normal(size=(n, obs_dim)).astype(np.float32) for n in sizes]
    parts_a = [rng.uniform(low, high, (n, act_dim)).astype(np.float32) for n in sizes]
    rows = 4 * AGG_ROUNDS * sum(sizes)   # any 2-D shape (wrong ones get this check's own feedback), bounded size
    schema = {"obs": Field((None, None), "f", rows * obs_dim), "actions": Field((None, None), "f", rows * act_dim),
              "lengths": Field((AGG_ROUNDS,), "iu")}
    out, why = run_unit(ctx, DAGGER_AGGREGATE, v,
                        {"data_obs": parts_o[0], "data_actions": parts_a[0],
                         "visited_obs": np.concatenate(parts_o[1:]), "labels": np.concatenate(parts_a[1:]),
                         "round_sizes": np.array(sizes[1:], np.int64)},
                        {"policy": pol}, schema=schema)
    if out is None:
        return [CheckResult(name, 0, 1, why)]
    lengths = np.asarray(out["lengths"], np.int64).reshape(AGG_ROUNDS)
    o = np.asarray(out["obs"], np.float64).reshape(-1, obs_dim)
    a = np.asarray(out["actions"], np.float64).reshape(-1, act_dim)
    if np.any(lengths < 0) or lengths.sum() != len(o) or len(o) != len(a):
        raise ValueError("inconsistent aggregation answer")
    rows = _RowIndex(parts_o, parts_a, low.astype(np.float64), high.astype(np.float64))
    cuts = np.cumsum([0, *lengths])
    for k in range(1, AGG_ROUNDS + 1):
        problems = rows.problems(o[cuts[k - 1]:cuts[k]], a[cuts[k - 1]:cuts[k]], k)
        if problems:
            where = f"after round {k} of {AGG_ROUNDS}" + (" (the earlier rounds were right)" if k > 1 else "")
            return [CheckResult(name, 0, 1, f"{where}: " + "; ".join(problems))]
    return [CheckResult(name, 1, 1, f"after each of {AGG_ROUNDS} rounds on one agent the dataset holds exactly the "
                                    f"demos and every round so far ({' → '.join(str(n) for n in lengths)} pairs)")]


DAGGER_AGGREGATE = CheckSpec(
    key="dagger_aggregate", agent="dagger", run=check_dagger_aggregate,
    methods=("aggregate",),
    public=(Variant(seed=303, env="hopper", batch=40),),
    parts=(
        Part("DAgger aggregation", 10.0,
             '`aggregate` called for 4 rounds on one agent as `DAggerAgent.train` calls it (`self.dataset = '
             "aggregate(self.dataset, ...)`, fed back what it returned; `demo_dataset()` returns the run's demos): "
             'after every round the dataset holds exactly the demos and every round so far, each pair once (any order '
             'of rows). Feedback names the round and what went wrong: the placeholder, rounds or demos dropped (demos '
             'plus only the latest round, old data dropped every second call, a sliding window), duplicated pairs, '
             'states and labels unpaired, labels changed to normalized units'),),
    handout=("DAgger aggregation",
             'over several rounds on one agent: after every round the dataset holds the demos and every round so far, '
             'each pair once'))

COLLECT_BETAS = (1.0, 0.0, 0.5)     # one collect_round call each, n = the variant's batch, on one agent


def check_dagger_collect(ctx: GradingContext, v: Variant) -> list[CheckResult]:
    """collect_round(n, β) for each β of COLLECT_BETAS on one agent, each call a new collection (as run_round makes
    it), in an env whose episodes end within the round; select_action is the reference's. The env's record (every
    reset and step) is replayed in a fresh env, and every verdict is taken from it and the returned pairs."""
    states_name, episodes_name = DAGGER_COLLECT.part_names(v)
    c = collection_setup(v.env, np.random.default_rng(v.seed), expert_scale=0.8)
    env_cfg, obs_dim, act_dim, low, high, learner, expert = (c.env_cfg, c.obs_dim, c.act_dim, c.low, c.high,
                                                              c.learner, c.expert)
    ns = [v.batch] * len(COLLECT_BETAS)
    out, why = run_unit(ctx, DAGGER_COLLECT, v, {}, {"policy": learner, "expert": expert},
                        schema=collect_schema(ns, obs_dim, act_dim), tested=DAGGER_COLLECT.methods,
                        calls=[[n, b] for n, b in zip(ns, COLLECT_BETAS)], max_steps=env_cfg.max_episode_steps)
    if out is None:
        why = timeout_hint(why)
        return [CheckResult(states_name, 0, 1, why), CheckResult(episodes_name, 0, 1, why)]
    rounds = read_rounds(out, ns, obs_dim, act_dim)
    labels = [f"round with β = {b:g}" for b in COLLECT_BETAS]
    why = round_failure(rounds, labels, env_cfg, low, high, obs_dim, act_dim)
    if why:
        return [CheckResult(states_name, 0, 1, why), CheckResult(episodes_name, 0, 1, why)]
    lo, hi = low.astype(np.float64), high.astype(np.float64)
    state_found, episode_found, fracs = [], [], []
    for r, beta, label in zip(rounds, COLLECT_BETAS, labels):
        state_found += [(label, p) for p in state_problems(r) or label_problems(r, expert, "action", EXECUTED_LABEL)]
        episode_found += [(label, p) for p in episode_problems(r)]
        actions, frac = _collect_action_problems(r, beta, learner, expert, lo, hi)
        episode_found += [("", p) for p in actions]
        fracs.append(frac)
    n = v.batch
    return [
        collection_part(states_name, state_found,
                        f"{len(rounds)} rounds of n = {n} (β = 1, 0, 0.5): exactly n pairs each, the state at which "
                        "each action was chosen, in order, labelled with the expert's action"),
        collection_part(episodes_name, episode_found,
                        f"exactly n steps per round, {episode_summary(rounds)}, a reset after each; executed: the "
                        "expert with β = 1, learner samples with β = 0, the expert at "
                        f"{100 * fracs[2]:.0f}% of {n} steps with β = 0.5")]


DAGGER_COLLECT = CheckSpec(
    key="dagger_collect", agent="dagger", run=check_dagger_collect, methods=("collect_round",),
    public=(Variant(seed=505, env="hopper", batch=200),),
    parts=(
        Part("DAgger collection: states and labels", 5.0,
             '`collect_round(n, β)` called for β = 1, 0, 0.5 on one agent, each call a new collection as the framework '
             'runs a round, with the reference `select_action`, in an env whose episodes end within the round (hopper '
             'falls; a time limit of 21-70 steps truncates): it returns a Dataset of exactly n pairs, the states at '
             "which each step's action was chosen, in the order visited, labelled with the expert's action there. "
             'Feedback names the placeholder, n ± 1 pairs, the next state stored (one step late), the executed action '
             'stored as label, a return value that is not a Dataset'),
        Part("DAgger collection: episodes and actions", 5.0,
             "the env's record of every reset and step replays in a fresh env from its reset seeds and actions; each "
             'round starts with a reset, takes exactly n steps, resets after every `terminated` or `truncated` (never '
             'in the middle of an episode); the executed action is the expert\'s at every step with β = 1, a fresh '
             "learner sample (standardized ≈ N(0, 1)) with β = 0, the expert's at 50% ± 4.5 binomial σ of the steps "
             'with β = 0.5. Feedback names a missing reset at termination or at truncation (the env\'s message), more '
             'than n steps, a loop that never returns (the time limit), β ignored (always the expert), the learner\'s '
             'mean')),
    handout=("DAgger collection",
             "`collect_round` over several rounds: exactly n steps of the β-mixture, a reset after every episode end "
             "(terminated or truncated), the states where each action was chosen with the expert's labels"))



EXECUTED_LABEL = ("the stored label is the executed action (the learner's when it acts): store the expert's label, "
                  "select_action's second value, at every step")


def _collect_action_problems(r: Round, beta: float, learner: GaussianMLPPolicy, expert: GaussianMLPPolicy,
                             low: np.ndarray, high: np.ndarray) -> tuple[list[str], float]:
    """The actions a round executed (at the states they were chosen at) for its β; and the expert's share."""
    pre, exe = r.pre_states(), np.clip(r.executed(), low, high)        # as the env executed them
    if len(exe) == 0:
        return [], 0.0
    want = expert.act(pre.astype(np.float32), deterministic=True).astype(np.float64)
    frac = float(np.mean(np.all(np.isclose(exe, want, atol=1e-5, rtol=0), axis=1)))
    steps = len(exe)
    if beta == 1.0:
        if frac < 1.0:
            return [f"with β = 1 the expert's action was executed at only {100 * frac:.0f}% of the steps: execute "
                    "the action select_action returns first (with β = 1, the expert's)"], frac
        return [], frac
    if beta == 0.0:
        if frac > 0.02:
            hint = ": β is ignored? pass the round's β to select_action(obs, beta)" if frac > 0.98 else ""
            return [f"with β = 0 the expert's action was executed at {100 * frac:.0f}% of the steps{hint}"], frac
        with torch.no_grad():
            o = torch.as_tensor(pre.astype(np.float32))
            ref = _DaggerRef(want, expert.mean_action(o).double().numpy(), learner.mean_action(o).double().numpy(),
                             torch.exp(learner.log_std).double().numpy(), low, high)
        return _learner_sample_problems(exe[:, None, :], ref), frac
    tol = 4.5 * math.sqrt(beta * (1 - beta) / steps)
    if abs(frac - beta) > tol:
        hint = ": β is ignored? pass the round's β to select_action(obs, beta)" if frac > 0.98 else ""
        return [f"with β = {beta:g} the expert acted at {100 * frac:.0f}% of the {steps} steps (expected "
                f"{100 * beta:.0f}% ± {100 * tol:.0f}%){hint}"], frac
    return [], frac


class _RowIndex:
    """The demo rows (source 0) and each round's rows (source k); finds where returned rows come from."""

    def __init__(self, parts_o: list[np.ndarray], parts_a: list[np.ndarray], low: np.ndarray, high: np.ndarray):
        self.sizes = [len(p) for p in parts_o]
        self.source = np.concatenate([np.full(n, k) for k, n in enumerate(self.sizes)])
        self.obs_key = {r.tobytes(): i for i, r in enumerate(np.concatenate(parts_o).astype(np.float32))}
        acts = np.concatenate(parts_a).astype(np.float64)
        self.act_key = {r.tobytes(): i for i, r in enumerate(acts.astype(np.float32))}
        self.acts_n = to_normalized(acts, low, high)

    def problems(self, o: np.ndarray, a: np.ndarray, k: int) -> list[str]:
        """What is wrong with the dataset (o, a) returned by the k-th call (it must hold sources 0..k once each)."""
        io_ = np.array([self.obs_key.get(r.tobytes(), -1) for r in o.astype(np.float32)], np.int64)
        ia = np.array([self.act_key.get(r.tobytes(), -1) for r in a.astype(np.float32)], np.int64)
        want = int(np.sum(self.sizes[:k + 1]))
        if len(o) == want and np.all(io_ == ia) and np.all(io_ >= 0) and len(set(io_.tolist())) == want \
                and np.all(self.source[io_] <= k):
            return []
        problems = []
        if np.all(io_ >= 0) and np.any(ia < 0):
            changed = ia < 0
            if np.allclose(a[changed], self.acts_n[io_[changed]], atol=1e-4):
                return ["the labels were changed to normalized units: store the expert's labels as given (env units)"]
        if np.any(io_ < 0) or np.any(ia < 0):
            bad = int(np.sum((io_ < 0) | (ia < 0)))
            problems.append(f"{bad} of its {len(o)} rows are not among the given (state, label) pairs (were the "
                            "observations or labels changed?)")
        both = (io_ >= 0) & (ia >= 0)
        if np.any(both & (io_ != ia)):
            problems.append("states and labels are no longer paired (keep each visited state with its own label)")
        counts = np.bincount(io_[both & (io_ == ia)], minlength=len(self.source))    # intact pairs
        states = np.bincount(io_[io_ >= 0], minlength=len(self.source))                # states, whatever their label
        if np.any(counts > 1):
            problems.append(f"{int(np.sum(counts[counts > 1] - 1))} pairs appear more than once (each pair belongs in "
                            "the dataset once: the old dataset followed by the new pairs)")
        names = ["the demos"] + [f"round {i}" for i in range(1, AGG_ROUNDS + 1)]
        missing, partial = [], []
        for s in range(k + 1):
            have = int(np.sum(states[self.source == s] > 0))
            if have == 0:
                missing.append(names[s])
            elif have < self.sizes[s]:
                partial.append(f"{self.sizes[s] - have} of the {self.sizes[s]} pairs of {names[s]}")
        if k == 1 and len(o) == self.sizes[0] and missing == ["round 1"] and not partial:
            return ["aggregate returns the dataset unchanged (the placeholder?): append the new pairs"]
        if missing == [names[k]]:
            problems.append(f"this round's {self.sizes[k]} new pairs were not added")
        elif missing and names[k] not in missing:
            kept = [n for n in names[:k + 1] if n not in missing]
            problems.append(f"the dataset holds {' and '.join(kept)} only (dropped: {', '.join(missing)}): DAgger "
                            "keeps every round's data, D ← D ∪ D_i")
        elif missing:
            problems.append(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
        if partial:
            problems.append("missing: " + ", ".join(partial))
        if not problems:
            problems.append(f"the dataset has {len(o)} pairs; expected {want}")
        return problems


DAGGER_ROUND = round_check_spec(
    "dagger", "TODO 2d", seed=606,
    part=Part("DAgger round", 5.0,
              "`train_round` run for rounds 1–3 on one agent through the framework's `run_round` (which enforces the "
              'sample budget), from seeded data as if round 0 had run, with the reference `collect_round`, `aggregate` '
              'and `fit` recorded; β_0 and the decay drawn away from the defaults and `max_samples` cutting round 3: '
              'each round calls `collect_round` once with n = room(samples_per_round) and β = the schedule\'s β_i, '
              '`self.dataset` afterwards holds every earlier pair and the n new ones (any order), the policy is '
              'retrained once on the whole of it for `epochs_per_round` epochs (through `train_on` or `fit`), and the '
              "training's loss is returned. Feedback names the placeholder, a β that is hard-coded, constant or off by "
              'one round, n that ignores the budget, a dataset replaced instead of aggregated or with pairs dropped or '
              'duplicated, training on the new pairs only or before aggregating, `epochs` for `epochs_per_round`, no '
              'retraining, a loss other than the training\'s'),
    handout=("DAgger round",
             "over several rounds on one agent: each round collects room(samples_per_round) pairs with the schedule's "
             "β_i, aggregates them into the dataset and retrains on all of it for epochs_per_round epochs, returning "
             "the training's loss"))


CHECKS = (DAGGER_SELECT, DAGGER_AGGREGATE, DAGGER_COLLECT, DAGGER_ROUND)
