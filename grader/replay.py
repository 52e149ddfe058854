"""The parent's side of the collection checks (DAgger's and noise injection's ``collect_round``): the answer's schema,
its rounds (the env's record of every reset and step, split per ``collect_round`` call, and the pairs each returned),
the replay of that record in a fresh env, and what is wrong with a round's episodes and stored states.

The child (grader/child/jobs_rounds.py, ``_collect_rounds``) only records: every verdict here is computed from plain arrays, and
every word of its feedback is the grader's own (the check's workspace holds reference code, so no text of the student's
process may reach the feedback: grader/feedback.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.builder import EnvConfig, make_env
from grader.answers import Field, Schema
from grader.context import CheckResult
from grader.unit_inputs import random_policy
from learning.policy import GaussianMLPPolicy

RETURNED, REFUSED, RESET_LOOP, NOT_RUN, NOT_A_DATASET, WRONG_WIDTHS = range(6)   # a call's status (grader/child/jobs_rounds.py)
# the env's refusal (status REFUSED; grader/child/jobs_rounds.py's REFUSALS) and what was returned instead of a Dataset
FINISHED_EPISODE, TOO_MANY_STEPS, ACTION_SHAPE, ACTION_NAN = 1, 2, 3, 4
RETURN_NAMES = {1: "a tuple", 2: "a list", 3: "None", 4: "a NumPy array", 5: "a dict"}
STATE_ATOL = 1e-5


def time_limit(env: str, rng: np.random.Generator) -> int:
    """The episodes' time limit in a collection check: hopper (which random policies make fall within ~20-35 steps)
    gets one short enough that episodes end both ways; the others one that truncates several times per round."""
    return int(rng.integers(21, 26)) if env == "hopper" else int(rng.integers(40, 71))


@dataclass
class Collection:
    """One collection check's setup: the env config (its short time limit), dimensions, bounds and the two policies."""

    env_cfg: EnvConfig
    obs_dim: int
    act_dim: int
    low: np.ndarray
    high: np.ndarray
    learner: GaussianMLPPolicy
    expert: GaussianMLPPolicy


def collection_setup(env_name: str, rng: np.random.Generator, expert_scale: float) -> Collection:
    """The env of a collection check (``time_limit``), its dimensions and bounds, and random learner and expert."""
    from envs.builder import action_bounds, env_dims, resolve_env_config

    env_cfg = resolve_env_config(env_name)
    env_cfg.max_episode_steps = time_limit(env_name, rng)
    env = make_env(env_cfg)
    obs_dim, act_dim = env_dims(env)
    low, high = action_bounds(env)
    env.close()
    learner, expert = collection_policies(obs_dim, act_dim, rng, low, high, expert_scale=expert_scale)
    return Collection(env_cfg, obs_dim, act_dim, low, high, learner, expert)


def label_problems(r: "Round", expert: GaussianMLPPolicy, what: str, executed_as_label: str) -> list[str]:
    """The returned labels (n rows) must be the expert's env-unit action at each returned state; ``what`` names that
    action in the feedback ("action", "clean action"), ``executed_as_label`` the mistake of storing the executed one."""
    want = expert.act(r.data_obs.astype(np.float32), deterministic=True).astype(np.float64)
    close = np.all(np.isclose(r.data_labels, want, atol=1e-4, rtol=0), axis=1)
    if np.all(close):
        return []
    exe = r.executed()[:len(want)]
    if len(exe) == len(want) and np.allclose(r.data_labels, exe, atol=1e-6):
        return [executed_as_label]
    k = int(np.flatnonzero(~close)[0])
    return [f"label {k + 1} is not the expert's {what} at stored state {k + 1} (self.expert_action(o_t), env units)"]


def collection_policies(obs_dim: int, act_dim: int, rng: np.random.Generator, low: np.ndarray, high: np.ndarray,
                        expert_scale: float) -> tuple[GaussianMLPPolicy, GaussianMLPPolicy]:
    """(learner, expert): random policies in the env's own action bounds (the env clips to those)."""
    learner = random_policy(obs_dim, act_dim, rng, low, high, squash=False, out_scale=0.2)
    expert = random_policy(obs_dim, act_dim, rng, low, high, squash=True, out_scale=expert_scale)
    return learner, expert


def collect_schema(ns: list[int], obs_dim: int, act_dim: int) -> Schema:
    """What grader/child/jobs_rounds.py's ``_collect_rounds`` writes for calls of sizes ``ns``."""
    records = sum(3 * n + 5 for n in ns)
    rows = sum(2 * n + 2 for n in ns)
    c = len(ns)
    return {"kind": Field((None,), "iu", records), "seed": Field((None,), "iu", records),
            "action": Field((None, act_dim), "f", records * act_dim),
            "obs": Field((None, obs_dim), "f", records * obs_dim), "reward": Field((None,), "f", records),
            "terminated": Field((None,), "b", records), "truncated": Field((None,), "b", records),
            "records": Field((c,), "iu"), "status": Field((c,), "iu"), "detail": Field((c,), "iu"),
            "widths": Field((c, 2), "iu"), "rows": Field((c,), "iu"), "kept": Field((c,), "iu"),
            "data_obs": Field((None, obs_dim), "f", rows * obs_dim),
            "data_labels": Field((None, act_dim), "f", rows * act_dim)}


@dataclass
class Round:
    """One ``collect_round(n, ...)`` call: the env's record during it (R entries) and the pairs it returned."""

    n: int
    status: int
    detail: int             # status REFUSED: which refusal; NOT_A_DATASET: what was returned
    widths: tuple[int, int]  # the returned Dataset's obs and label widths
    kind: np.ndarray        # (R,) 0 reset, 1 step
    seed: np.ndarray        # (R,) reset seeds (-1 for steps)
    action: np.ndarray      # (R, act_dim) the action as passed to step (steps)
    obs: np.ndarray         # (R, obs_dim) the observation reset or step returned
    reward: np.ndarray      # (R,)
    terminated: np.ndarray  # (R,) bool
    truncated: np.ndarray   # (R,) bool
    rows: int               # pairs returned
    data_obs: np.ndarray    # (min(rows, 2n + 2), obs_dim)
    data_labels: np.ndarray  # (min(rows, 2n + 2), act_dim)

    @property
    def steps(self) -> int:
        return int(np.sum(self.kind == 1))

    def step_index(self) -> np.ndarray:
        """Record indices of the steps, (S,)."""
        return np.flatnonzero(self.kind == 1)

    def pre_states(self) -> np.ndarray:
        """(S, obs_dim): the state each step's action was chosen at (the observation recorded just before it)."""
        idx = self.step_index()
        out = np.full((len(idx), self.obs.shape[1]), np.nan)
        ok = idx > 0
        out[ok] = self.obs[idx[ok] - 1]
        return out

    def post_states(self) -> np.ndarray:
        """(S, obs_dim): the observation each step returned."""
        return self.obs[self.step_index()]

    def executed(self) -> np.ndarray:
        """(S, act_dim): the actions passed to env.step."""
        return self.action[self.step_index()]

    def episode_ends(self) -> tuple[int, int]:
        """(terminated, truncated-only) episode ends among the steps."""
        idx = self.step_index()
        term, trunc = self.terminated[idx], self.truncated[idx]
        return int(term.sum()), int((trunc & ~term).sum())


def read_rounds(out: dict[str, np.ndarray], ns: list[int], obs_dim: int, act_dim: int) -> list[Round]:
    """The answer split per call; ValueError if its parts disagree (not what the harness writes)."""
    kind = np.asarray(out["kind"], np.int64).reshape(-1)
    r_total = len(kind)
    records = np.asarray(out["records"], np.int64).reshape(-1)
    kept = np.asarray(out["kept"], np.int64).reshape(-1)
    rows = np.asarray(out["rows"], np.int64).reshape(-1)
    status = np.asarray(out["status"], np.int64).reshape(-1)
    detail = np.asarray(out["detail"], np.int64).reshape(-1)
    widths = np.asarray(out["widths"], np.int64).reshape(-1, 2)
    data_o = np.asarray(out["data_obs"], np.float64).reshape(-1, obs_dim)
    data_x = np.asarray(out["data_labels"], np.float64).reshape(-1, act_dim)
    arrays = {k: np.asarray(out[k]) for k in ("seed", "action", "obs", "reward", "terminated", "truncated")}
    if (np.any(records < 0) or records.sum() != r_total or np.any(kept < 0) or kept.sum() != len(data_o)
            or len(data_o) != len(data_x) or np.any(~np.isin(kind, (0, 1))) or np.any(~np.isin(status, range(6)))
            or np.any(kept > rows) or any(len(a) != r_total for a in arrays.values())):
        raise ValueError("inconsistent collection answer")
    rounds, r0, d0 = [], 0, 0
    for c, n in enumerate(ns):
        r1, d1 = r0 + int(records[c]), d0 + int(kept[c])
        rounds.append(Round(
            n=n, status=int(status[c]), detail=int(detail[c]), widths=(int(widths[c, 0]), int(widths[c, 1])),
            kind=kind[r0:r1],
            seed=np.asarray(arrays["seed"][r0:r1], np.int64), action=np.asarray(arrays["action"][r0:r1], np.float64),
            obs=np.asarray(arrays["obs"][r0:r1], np.float64), reward=np.asarray(arrays["reward"][r0:r1], np.float64),
            terminated=np.asarray(arrays["terminated"][r0:r1], bool),
            truncated=np.asarray(arrays["truncated"][r0:r1], bool), rows=int(rows[c]), data_obs=data_o[d0:d1],
            data_labels=data_x[d0:d1]))
        r0, d0 = r1, d1
    return rounds


def placeholder(rounds: list[Round]) -> bool:
    """Every call returned an empty Dataset without touching the env (the handout's stub)."""
    return all(r.status == RETURNED and r.rows == 0 and len(r.kind) == 0 for r in rounds)


def refusal(r: Round, limit: int, obs_dim: int, act_dim: int) -> str:
    """Why round ``r`` could not be scored (a status other than RETURNED), decided from its record and codes."""
    if r.status == RESET_LOOP:
        return (f"collect_round reset the env {int(np.sum(r.kind == 0))} times in a round of n = {r.n} steps and was "
                "stopped: reset at the start of the round and after an episode ends, then step")
    if r.status == NOT_A_DATASET:
        what = RETURN_NAMES.get(r.detail, "another object")
        return (f"collect_round returned {what}, not a Dataset: return Dataset(obs, labels) (learning/demos.py), "
                "e.g. Dataset(np.array(states), np.array(labels))")
    if r.status == WRONG_WIDTHS:
        return (f"collect_round returned a Dataset with obs of width {r.widths[0]} and labels of width "
                f"{r.widths[1]}; expected ({r.n}, {obs_dim}) and ({r.n}, {act_dim})")
    if r.detail == TOO_MANY_STEPS:
        return (f"collect_round took more than n = {r.n} environment steps (the env refused step {r.n + 1} with "
                "EpisodeError: the collection took more environment steps than its n): exactly n steps, one (state, "
                "label) pair each")
    if r.detail == ACTION_SHAPE:
        return f"env.step() got an action that is not of shape ({act_dim},) (the env refused it with EpisodeError)"
    if r.detail == ACTION_NAN:
        return "env.step() got an action with NaN or inf (the env refused it with EpisodeError)"
    said = " (the env raised EpisodeError: env.step() was called on a finished episode)"
    if len(r.kind) and r.kind[-1] == 1 and (r.terminated[-1] or r.truncated[-1]):
        k = r.steps
        if r.terminated[-1]:
            return (f"did not reset at termination: the episode terminated (e.g. the robot fell) at step {k} of the "
                    "round and env.step() was called again without env.reset(): reset after `terminated` or "
                    f"`truncated`{said}")
        return (f"did not reset at truncation: the episode reached its time limit ({limit} steps, `truncated` = True) "
                f"at step {k} of the round and env.step() was called again without env.reset(): an episode also ends "
                f"when `truncated` is true; reset after `terminated or truncated`{said}")
    if not np.any(r.kind == 0):
        return ("the round did not start with env.reset(): every collect_round call is a new collection, so reset "
                f"first (an episode never carries over from an earlier call){said}")
    return "the env refused a step (EpisodeError)"


def replay_problem(rounds: list[Round], env_cfg: EnvConfig, low: np.ndarray, high: np.ndarray) -> str:
    """Replay every round's record in a fresh env (the recorded reset seeds, the recorded actions clipped to the
    bounds): '' if every observation, reward and end flag is the same, else what differs."""
    env = make_env(env_cfg)
    try:
        live = False
        for c, r in enumerate(rounds, 1):
            for i in range(len(r.kind)):
                if r.kind[i] == 0:
                    got, _ = env.reset(seed=int(r.seed[i]))
                    live = True
                    same = np.allclose(np.asarray(got, np.float32), r.obs[i], atol=STATE_ATOL, rtol=1e-6)
                else:
                    if not live:
                        return f"call {c}: the record steps an episode that is not running"
                    a = np.clip(np.asarray(r.action[i], np.float32), low, high)
                    got, rew, term, trunc, _ = env.step(a)
                    live = not (term or trunc)
                    same = (np.allclose(np.asarray(got, np.float32), r.obs[i], atol=STATE_ATOL, rtol=1e-6)
                            and abs(float(rew) - r.reward[i]) <= 1e-4 * max(1.0, abs(float(rew)))
                            and bool(term) == r.terminated[i] and bool(trunc) == r.truncated[i])
                if not same:
                    return (f"call {c}, record {i + 1}: the env's record of your episodes does not replay in a fresh "
                            "env from its reset seeds and actions: collect in self.env through its reset() and "
                            "step() only, and leave its record alone")
    finally:
        env.close()
    return ""


def episode_problems(r: Round) -> list[str]:
    """A returned round's record: exactly n steps; no reset in the middle of a running episode (resets before the
    first step and after the last one are harmless)."""
    problems = []
    if r.steps != r.n:
        problems.append(f"took {r.steps} environment steps for n = {r.n}: exactly n steps, one per pair")
    steps_before = np.cumsum(r.kind == 1)
    for i in np.flatnonzero(r.kind == 0):
        if i == 0 or r.kind[i - 1] == 0 or steps_before[i] == r.steps:
            continue
        if not (r.terminated[i - 1] or r.truncated[i - 1]):
            problems.append(f"reset the env in the middle of a running episode (after step {steps_before[i]} of the "
                            "round, neither terminated nor truncated): reset only when an episode ends")
            break
    return problems


def state_problems(r: Round) -> list[str]:
    """The returned pairs: exactly n, and the states are the ones each step's action was chosen at, in order."""
    if r.rows != r.n:
        what = "an empty Dataset" if r.rows == 0 else f"{r.rows} pairs"
        return [f"returned {what} for n = {r.n}: one (state, label) pair per environment step, exactly n"]
    if not (np.all(np.isfinite(r.data_obs)) and np.all(np.isfinite(r.data_labels))):
        return ["the returned states or labels contain NaN or inf"]
    pre, post = r.pre_states(), r.post_states()
    m = min(len(pre), r.rows)
    got = r.data_obs[:m]
    if np.allclose(got, pre[:m], atol=STATE_ATOL, rtol=1e-6):
        return []
    if m and np.allclose(got, post[:m], atol=STATE_ATOL, rtol=1e-6):
        return ["the stored states are the next states (the observation env.step returned), one step late: store "
                "the state o_t at which the action was chosen, before stepping"]
    bad = int(np.flatnonzero(~np.all(np.isclose(got, pre[:m], atol=STATE_ATOL, rtol=1e-6), axis=1))[0])
    late = bool(np.allclose(got[bad], post[bad], atol=STATE_ATOL, rtol=1e-6))
    return [f"stored state {bad + 1} is not the state at which step {bad + 1}'s action was chosen"
            + (" (it is the next state, one step late)" if late else "")
            + ": store each step's state o_t, in the order visited"]


def episode_summary(rounds: list[Round]) -> str:
    """e.g. '14 episodes ended (6 terminated, 8 truncated)'."""
    term = sum(r.episode_ends()[0] for r in rounds)
    trunc = sum(r.episode_ends()[1] for r in rounds)
    return f"{term + trunc} episodes ended ({term} terminated, {trunc} truncated)"


def round_failure(rounds: list[Round], labels: list[str], env_cfg: EnvConfig, low: np.ndarray,
                  high: np.ndarray, obs_dim: int, act_dim: int) -> str:
    """Why no round can be scored (both parts get 0): the placeholder, a round the env stopped, pairs returned
    without any step in self.env, a record that does not replay; '' when the rounds can be scored."""
    if placeholder(rounds):
        return "collect_round returns the placeholder (an empty Dataset, no env step): fill in the TODO block"
    for r, label in zip(rounds, labels):
        if r.status not in (RETURNED, NOT_RUN):
            return f"in the {label} (n = {r.n}): {refusal(r, env_cfg.max_episode_steps, obs_dim, act_dim)}"
    for r, label in zip(rounds, labels):
        if r.steps == 0 and r.rows > 0:
            return (f"in the {label} (n = {r.n}): {r.rows} pairs were returned without a step in self.env: "
                    "collect in self.env, the framework's env (its resets are seeded and its steps counted)")
    return replay_problem(rounds, env_cfg, low, high)


def collection_part(name: str, found: list[tuple[str, str]], summary: str) -> CheckResult:
    """A collection check's part: 0 with the problems ``found`` (:func:`grouped`), or full marks with ``summary``."""
    return CheckResult(name, 0, 1, grouped(found)) if found else CheckResult(name, 1, 1, summary)


def grouped(found: list[tuple[str, str]]) -> str:
    """Feedback from (round label, problem) pairs, e.g. ("round with β = 0", ...): each problem once, with the rounds
    it occurred in ('' label: the problem names its round itself)."""
    rounds: dict[str, list[str]] = {}
    for label, problem in found:
        rounds.setdefault(problem, [])
        if label and label not in rounds[problem]:
            rounds[problem].append(label)
    return "; ".join(_where(ls) + p for p, ls in rounds.items())


def _where(labels: list[str]) -> str:
    """'in the round with β = 1: ', 'in the rounds with β = 1, with β = 0: ', '' for no label."""
    if len(labels) > 1:
        return "in the rounds " + ", ".join(label.removeprefix("round ") for label in labels) + ": "
    return f"in the {labels[0]}: " if labels else ""


def timeout_hint(why: str) -> str:
    """The child's failure, with a hint when it ran out of time (a loop that never returns)."""
    if why.startswith("timed out"):
        return (f"{why}: collect_round never returned; the loop must stop after exactly n steps and n stored pairs "
                "(the check's time limit stopped it)")
    return why
